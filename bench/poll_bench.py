#!/usr/bin/env python3
"""Poll-fallback benchmark driver (run by bench/poll_bench.sh).

Charges N orders through posrelay from T terminals (terminal protocol over TCP), pays them
all at midtrans-sim (which drops a share of the notifications), and measures, per order, the
time from payment to the terminal's settlement event. Prints a JSON summary.
"""
import asyncio, json, os, statistics, sys, time, urllib.request


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


class Terminal:
    def __init__(self, tid, store, token, host, port):
        self.tid, self.store, self.token, self.host, self.port = tid, store, token, host, port
        self.pending = {}           # request id -> future
        self.settled = {}           # order_id -> (monotonic time, source)
        self.events = 0

    async def connect(self):
        self.r, self.w = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        hello = {"op": "hello", "v": 1, "terminal_id": self.tid, "store_id": self.store,
                 "token": self.token}
        self.w.write((json.dumps(hello) + "\n").encode())
        welcome = json.loads(await self.r.readline())
        assert welcome["op"] == "welcome", welcome
        self.reader = asyncio.create_task(self.read_loop())

    async def read_loop(self):
        while True:
            line = await self.r.readline()
            if not line:
                return
            f = json.loads(line)
            op = f.get("op")
            if op == "event":
                self.events += 1
                if f.get("transaction_status") == "settlement" and f["order_id"] not in self.settled:
                    self.settled[f["order_id"]] = (time.monotonic(), f.get("source"))
                self.w.write(('{"op":"ack","seq":%d}\n' % f["seq"]).encode())
            elif op == "ping":
                self.w.write(b'{"op":"pong"}\n')
            elif op in ("result", "error") and f.get("id") in self.pending:
                self.pending.pop(f["id"]).set_result(f)

    async def charge(self, order_id, amount):
        fut = asyncio.get_running_loop().create_future()
        self.pending[order_id] = fut
        req = {"op": "charge", "id": order_id, "order_id": order_id, "gross_amount": amount}
        self.w.write((json.dumps(req) + "\n").encode())
        return await fut


async def main():
    host, port = os.environ["TERMINAL_HOST"], int(os.environ["TERMINAL_PORT"])
    sim = os.environ["SIM_URL"]
    n, terminals = int(os.environ.get("ORDERS", "10000")), int(os.environ.get("TERMINALS", "20"))
    deadline_s = float(os.environ.get("DEADLINE_S", "900"))
    tokens = json.loads(os.environ["TOKENS"])  # terminal_id -> token
    run = os.environ.get("RUN_ID", str(int(time.time())))
    ts = [Terminal(tid, "S-BENCH", tok, host, port) for tid, tok in tokens.items()][:terminals]
    for t in ts:
        await t.connect()
    per = (n + len(ts) - 1) // len(ts)
    orders = {}  # order_id -> terminal

    async def charge_some(t, ids):
        sem = asyncio.Semaphore(8)  # posrelay allows 8 requests in flight per connection
        async def one(oid):
            async with sem:
                res = await t.charge(oid, 1000)
                if res.get("op") != "result":
                    raise RuntimeError(json.dumps(res))
        await asyncio.gather(*(one(i) for i in ids))

    t0 = time.monotonic()
    jobs = []
    for k, t in enumerate(ts):
        ids = ["B%s-%d" % (run, k * per + i) for i in range(per) if k * per + i < n]
        for i in ids:
            orders[i] = t
        jobs.append(charge_some(t, ids))
    await asyncio.gather(*jobs)
    charge_s = time.monotonic() - t0
    print(f"charged {len(orders)} orders in {charge_s:.1f} s", file=sys.stderr)

    # Pay them all (the sim's control API), remembering when each was paid.
    paid_at = {}
    loop = asyncio.get_running_loop()
    def pay(ids):
        import http.client
        u = urllib.request.urlparse(sim)
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        for oid in ids:
            c.request("POST", f"/sim/orders/{oid}/pay")
            r = c.getresponse(); r.read()
            paid_at[oid] = time.monotonic()
            if r.status != 200:
                raise RuntimeError(f"pay {oid}: {r.status}")
    ids = list(orders)
    chunks = [ids[i::8] for i in range(8)]
    t1 = time.monotonic()
    await asyncio.gather(*(loop.run_in_executor(None, pay, c) for c in chunks))
    print(f"paid {len(ids)} orders in {time.monotonic() - t1:.1f} s", file=sys.stderr)

    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        done = sum(len(t.settled) for t in ts)
        if done >= len(orders):
            break
        await asyncio.sleep(0.5)
    lat_poll, lat_notif, missing = [], [], []
    for oid, t in orders.items():
        if oid not in t.settled:
            missing.append(oid)
            continue
        at, source = t.settled[oid]
        (lat_poll if source == "poll" else lat_notif).append(at - paid_at[oid])
    with urllib.request.urlopen(sim + "/sim/stats") as r:
        stats = json.loads(r.read())
    out = {
        "orders": len(orders), "settled_at_terminal": len(orders) - len(missing),
        "missing": len(missing),
        "by_poll": len(lat_poll), "by_notification": len(lat_notif),
        "poll_latency_p50_s": pct(lat_poll, 50), "poll_latency_p99_s": pct(lat_poll, 99),
        "poll_latency_max_s": max(lat_poll) if lat_poll else None,
        "notification_latency_p50_s": pct(lat_notif, 50), "notification_latency_p99_s": pct(lat_notif, 99),
        "sim_status_calls": stats.get("status_calls"),
        "sim_status_calls_max_in_any_second": stats.get("status_calls_max_in_any_second"),
        "sim_status_calls_429": stats.get("status_calls_429"),
        "sim_notifications_dropped": stats.get("notifications_dropped"),
        "charge_seconds": round(charge_s, 1),
    }
    print(json.dumps(out))
    return 0 if not missing else 1

sys.exit(asyncio.run(main()))
