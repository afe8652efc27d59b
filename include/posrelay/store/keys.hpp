// posrelay's Redis key names, spelled once for C++ (the order script spells them once for Lua,
// in its key helpers). Schema: proto-docs/redis-keys.md. A terminal is (store, terminal):
// every key of a store, its terminals' counters and streams included, shares the hash tag
// {s:STORE}, so one store lives in one Redis Cluster slot.
#pragma once

#include <string>
#include <string_view>

namespace posrelay::store::keys {

// P{o:ORDER}: the order record.
[[nodiscard]] std::string order(std::string_view prefix, std::string_view order_id);
// P{s:STORE}:t:TERMINAL:seq: the terminal's counter, a hash {seq, epoch}.
[[nodiscard]] std::string terminal_counter(std::string_view prefix, std::string_view store,
                                           std::string_view terminal);
// P{s:STORE}:t:TERMINAL:events: the terminal's event stream (entry id SEQ-EID).
[[nodiscard]] std::string terminal_stream(std::string_view prefix, std::string_view store,
                                          std::string_view terminal);
// P{s:STORE}:subs: the store's subscribers, a sorted set scored by the last renewal (Unix ms).
[[nodiscard]] std::string store_subscribers(std::string_view prefix, std::string_view store);
// P events: the pub/sub channel every event is published on.
[[nodiscard]] std::string events_channel(std::string_view prefix);

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
