// posrelay's Redis key names, spelled once for C++ (the order script spells them once for Lua,
// in its key helpers). Schema (version 4): proto-docs/redis-keys.md. Every key of a store —
// its orders' records, its terminals' counters and streams, its subscribers, its live channel —
// shares the hash tag {s:STORE}, so one store lives in one Redis Cluster slot. An order's
// route (which store holds it) and a record not routed yet carry {o:ORDER}.
#pragma once

#include <string>
#include <string_view>

namespace posrelay::store::keys {

// P{s:STORE}:o:ORDER: the record of an order routed to STORE.
[[nodiscard]] std::string store_order(std::string_view prefix, std::string_view store,
                                      std::string_view order_id);
// P{o:ORDER}: the record of an order not routed yet (a notification before its
// registration; and every record of key schema version 3).
[[nodiscard]] std::string unrouted_order(std::string_view prefix, std::string_view order_id);
// P{o:ORDER}:route: the order's store id, written once by reserve or register.
[[nodiscard]] std::string order_route(std::string_view prefix, std::string_view order_id);
// P{s:STORE}:t:TERMINAL:seq: the terminal's counter, a hash {seq, epoch}.
[[nodiscard]] std::string terminal_counter(std::string_view prefix, std::string_view store,
                                           std::string_view terminal);
// P{s:STORE}:t:TERMINAL:events: the terminal's event stream (entry id SEQ-EID).
[[nodiscard]] std::string terminal_stream(std::string_view prefix, std::string_view store,
                                          std::string_view terminal);
// P{s:STORE}:subs: the store's subscribers, a sorted set scored by the last renewal (Unix ms).
[[nodiscard]] std::string store_subscribers(std::string_view prefix, std::string_view store);
// P{s:STORE}:feed: the sharded pub/sub channel (SPUBLISH) the store's events go out on.
[[nodiscard]] std::string store_channel(std::string_view prefix, std::string_view store);
// P{s:STORE}:t:TERMINAL:revoked: the terminal's revocation, Unix seconds (a string).
[[nodiscard]] std::string terminal_revocation(std::string_view prefix, std::string_view store,
                                              std::string_view terminal);
// P{s:STORE}:revoked: the store-wide revocation of every terminal of STORE, Unix seconds.
[[nodiscard]] std::string store_revocation(std::string_view prefix, std::string_view store);

// P{s:STORE}:t:TERMINAL:presence: the terminal's presence, a hash (session, node, ...).
[[nodiscard]] std::string terminal_presence(std::string_view prefix, std::string_view store,
                                            std::string_view terminal);
// P{s:STORE}:terminals: the store's terminals with a presence record (sorted set, score 0:
// listed in id order).
[[nodiscard]] std::string store_terminals(std::string_view prefix, std::string_view store);
// P{s:STORE}:o:ORDER:timeline: the delivery timeline of an order routed to STORE.
[[nodiscard]] std::string order_timeline(std::string_view prefix, std::string_view store,
                                         std::string_view order_id);

// The part of a key (or shard channel) Redis Cluster hashes: the text between the first '{'
// and the next '}' when that is not empty, else the whole key.
[[nodiscard]] std::string_view hash_tag(std::string_view key) noexcept;

// ---- the poll schedule (src/poll/poll_script.lua) ------------------------------------------
// The due set and the confirmation set are split into poll_buckets buckets, each under its own
// hash tag {poll:N} (its own Redis Cluster slot) with its own leases; the fleet-wide rate limit
// and pause live under {poll}. An order's bucket is fixed by its id (poll_bucket): changing
// poll_buckets would strand entries, so it is a constant of the key schema.
inline constexpr unsigned poll_buckets = 16;
// The bucket of an order: FNV-1a (32 bit) of its id, modulo poll_buckets.
[[nodiscard]] unsigned poll_bucket(std::string_view order_id) noexcept;
// P{poll:N}:due / :leases — bucket N of the poll schedule (order_id → due Unix ms) and its
// leases (order_id → node).
[[nodiscard]] std::string poll_due(std::string_view prefix, unsigned bucket);
[[nodiscard]] std::string poll_leases(std::string_view prefix, unsigned bucket);
// P{poll:N}:confirm / :confirm_leases — bucket N of the confirmation set and its leases.
[[nodiscard]] std::string poll_confirm(std::string_view prefix, unsigned bucket);
[[nodiscard]] std::string poll_confirm_leases(std::string_view prefix, unsigned bucket);
// P{poll}:rate / P{poll}:pause — the fleet's GCRA state and its 429 pause (one slot).
[[nodiscard]] std::string poll_rate(std::string_view prefix);
[[nodiscard]] std::string poll_pause(std::string_view prefix);
// P{poll}:due, :leases, :confirm, :confirm_leases — the single sets before buckets (key schema
// v2): drained into the buckets by the scheduler (store::redis_poll_schedule::migrate).
[[nodiscard]] std::string legacy_poll_due(std::string_view prefix);
[[nodiscard]] std::string legacy_poll_leases(std::string_view prefix);
[[nodiscard]] std::string legacy_poll_confirm(std::string_view prefix);
[[nodiscard]] std::string legacy_poll_confirm_leases(std::string_view prefix);

}  // namespace posrelay::store::keys
