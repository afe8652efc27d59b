// posrelay's Redis key names (proto-docs/redis-keys.md).
#include "posrelay/store/keys.hpp"

namespace posrelay::store::keys {

namespace {

std::string store_tag(std::string_view prefix, std::string_view store, std::size_t extra) {
    std::string k;
    k.reserve(prefix.size() + store.size() + 5 + extra);
    k += prefix;
    k += "{s:";
    k += store;
    k += '}';
    return k;
}

std::string terminal_key(std::string_view prefix, std::string_view store, std::string_view terminal,
                         std::string_view suffix) {
    std::string k = store_tag(prefix, store, terminal.size() + suffix.size() + 3);
    k += ":t:";
    k += terminal;
    k += suffix;
    return k;
}

}  // namespace

std::string order(std::string_view prefix, std::string_view order_id) {
    std::string k;
    k.reserve(prefix.size() + order_id.size() + 4);
    k += prefix;
    k += "{o:";
    k += order_id;
    k += '}';
    return k;
}

std::string terminal_counter(std::string_view prefix, std::string_view store,
                             std::string_view terminal) {
    return terminal_key(prefix, store, terminal, ":seq");
}

std::string terminal_stream(std::string_view prefix, std::string_view store,
                            std::string_view terminal) {
    return terminal_key(prefix, store, terminal, ":events");
}

std::string store_subscribers(std::string_view prefix, std::string_view store) {
    std::string k = store_tag(prefix, store, 5);
    k += ":subs";
    return k;
}

std::string events_channel(std::string_view prefix) {
    std::string k(prefix);
    k += "events";
    return k;
}

}  // namespace posrelay::store::keys
