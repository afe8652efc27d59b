// Types of @posrelay/terminal (proto-docs/terminal-protocol.md is the protocol's contract).

export type TransactionStatus = 'pending' | 'authorize' | 'capture' | 'settlement' | 'deny' |
  'cancel' | 'expire' | 'failure' | 'refund' | 'partial_refund' | 'chargeback' | 'partial_chargeback';

/** §4.2 `event`: a payment status change. Hand over goods only when `paid` is true. */
export interface PaymentEvent {
  op: 'event'; seq: number; epoch: string; eid: string;
  terminal_id: string; store_id: string; order_id: string;
  transaction_status: TransactionStatus; fraud_status: '' | 'accept' | 'deny' | 'challenge';
  gross_amount: string; transaction_id: string; source: 'notification' | 'poll' | 'api';
  event_time_ms: number; paid: boolean;
  status_conflict?: { previous_status: string; claimed_status: string; claimed_fraud_status: string;
    midtrans_status: string; applied: boolean };
  status_unknown?: boolean;
}
export interface Welcome {
  op: 'welcome'; v: number; terminal_id: string; store_id: string; last_seq: number; epoch: string;
  resume_from: number | null; heartbeat_ms: number; max_frame_bytes: number; max_inflight: number;
  subscribe: string[]; node: string;
  /** An observer session (a token with the observe claim, §17): requests reject with `observer`. */
  observer?: boolean;
}
export interface ErrorFrame {
  op: 'error'; code: string; message: string; fatal: boolean; id?: string;
  epoch?: string; last_seq?: number; [field: string]: unknown;
}
export interface ChargeResult {
  op: 'result'; id: string; request: 'charge'; order_id: string; transaction_id: string;
  transaction_status: TransactionStatus; gross_amount: string; payment_type: 'qris' | 'gopay';
  qr_code_url: string; qr_string: string; deeplink: string; expiry_time: string; expiry_ms: number;
  qr_image_url: string;
}
export interface StatusResult {
  op: 'result'; id: string; request: 'status'; order_id: string;
  transaction_status: TransactionStatus | null; fraud_status: string; paid: boolean;
  gross_amount: string; transaction_id: string; payment_type: string; [field: string]: unknown;
}
export interface CancelResult {
  op: 'result'; id: string; request: 'cancel' | 'expire'; order_id: string;
  transaction_status: TransactionStatus; status_code: string; status_message: string;
}
export interface Position { epoch: string; seq: number | null; eid: string }
export interface StateStore { load(): Position | null; save(p: Position): void }
export interface TransportHandlers { open(): void; frame(text: string): void; close(reason: string): void }
export interface Connection { send(text: string): void; close(): void }
export type Transport = (h: TransportHandlers) => Connection;
export type TokenSource = string | ((o: { fresh: boolean }) => string | Promise<string>);

export interface ClientOptions {
  transport: Transport; terminalId: string; storeId: string; token: TokenSource;
  subscribeStore?: boolean; state?: StateStore;
  backoff?: { minMs?: number; maxMs?: number; jitter?: number };
  ackFlushMs?: number; random?: () => number;
  timers?: { setTimeout(f: () => void, ms: number): unknown; clearTimeout(t: unknown): void; now(): number };
}
export interface ClientEvents {
  connect: Welcome;
  /** A new event, in seq order, once. Return a promise to delay the ack until it settles. */
  event: PaymentEvent;
  error: ErrorFrame | { code: string; message: string; fatal: boolean };
  disconnect: { reason: string };
  reconnecting: { delayMs: number };
  goaway: { op: 'goaway'; reason: string; reconnect_after_ms: number };
  /** The position was reset (resync: a new epoch; resume_gap: events lost). Open orders are
   *  re-read with `status` after the next welcome (each answer is a `status` event). */
  resync: { reason: 'resync' | 'resume_gap'; epoch?: string; last_seq?: number };
  status: StatusResult;
  handler_error: unknown;
}

export class RequestError extends Error { code: string; frame: ErrorFrame | null }

export class TerminalClient {
  constructor(options: ClientOptions);
  readonly position: Position | null;
  readonly connected: boolean;
  /** The last welcome named this an observer session: requests reject with code `observer`. */
  readonly observer: boolean;
  readonly openOrders: Map<string, string>;
  start(): this;
  stop(): void;
  ready(): Promise<void>;
  on<K extends keyof ClientEvents>(name: K, fn: (v: ClientEvents[K]) => unknown): () => void;
  off<K extends keyof ClientEvents>(name: K, fn: (v: ClientEvents[K]) => unknown): void;
  once<K extends keyof ClientEvents>(name: K): Promise<ClientEvents[K]>;
  charge(o: { orderId: string; grossAmount: number; paymentType?: 'qris' | 'gopay'; expiry?: number;
    items?: object[] }): Promise<ChargeResult>;
  cancel(orderId: string): Promise<CancelResult>;
  expire(orderId: string): Promise<CancelResult>;
  status(orderId: string): Promise<StatusResult>;
  request(op: string, fields: object): Promise<Record<string, unknown>>;
}

export const PROTOCOL_VERSION: 1;
export function isPaid(e: Pick<PaymentEvent, 'transaction_status' | 'fraud_status'>): boolean;
export function backoffDelay(attempt: number, o?: { minMs?: number; maxMs?: number; jitter?: number },
  random?: () => number): number;
export function memoryState(initial?: Position | null): StateStore;

// Node.js (import from '@posrelay/terminal' under Node): tcp://, tls://, ws://, wss://
export function lineTransport(url: string, o?: { tls?: object; connectTimeoutMs?: number }): Transport;
export function webSocketTransport(url: string, o?: { tls?: object; connectTimeoutMs?: number;
  headers?: Record<string, string> }): Transport;
export function transportFor(url: string, o?: object): Transport;
export function fileState(path: string): StateStore;
// Browsers: webSocketTransport(url) and localStorageState(key).
export function localStorageState(key: string): StateStore;
export function connect(o: Omit<ClientOptions, 'transport' | 'state'> & { url: string;
  stateFile?: string; storageKey?: string; transportOptions?: object }): TerminalClient;
