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

// The part of a key (or shard channel) Redis Cluster hashes: the text between the first '{'
// and the next '}' when that is not empty, else the whole key.
[[nodiscard]] std::string_view hash_tag(std::string_view key) noexcept;

}  // namespace posrelay::store::keys
