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

}  // namespace posrelay::store::keys
