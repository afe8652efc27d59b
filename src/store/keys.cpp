// posrelay's Redis key names (proto-docs/redis-keys.md, version 4).
#include "posrelay/store/keys.hpp"

namespace posrelay::store::keys {

namespace {

std::string tagged(std::string_view prefix, std::string_view kind, std::string_view id,
                   std::size_t extra) {
    std::string k;
    k.reserve(prefix.size() + id.size() + 4 + kind.size() + extra);
    k += prefix;
    k += '{';
    k += kind;
    k += id;
    k += '}';
    return k;
}

std::string store_key(std::string_view prefix, std::string_view store, std::string_view a,
                      std::string_view b = {}, std::string_view c = {}) {
    std::string k = tagged(prefix, "s:", store, a.size() + b.size() + c.size());
    k += a;
    k += b;
    k += c;
    return k;
}

}  // namespace

std::string store_order(std::string_view prefix, std::string_view store,
                        std::string_view order_id) {
    return store_key(prefix, store, ":o:", order_id);
}

std::string unrouted_order(std::string_view prefix, std::string_view order_id) {
    return tagged(prefix, "o:", order_id, 0);
}

std::string order_route(std::string_view prefix, std::string_view order_id) {
    std::string k = tagged(prefix, "o:", order_id, 6);
    k += ":route";
    return k;
}

std::string terminal_counter(std::string_view prefix, std::string_view store,
                             std::string_view terminal) {
    return store_key(prefix, store, ":t:", terminal, ":seq");
}

std::string terminal_stream(std::string_view prefix, std::string_view store,
                            std::string_view terminal) {
    return store_key(prefix, store, ":t:", terminal, ":events");
}

std::string store_subscribers(std::string_view prefix, std::string_view store) {
    return store_key(prefix, store, ":subs");
}

std::string store_channel(std::string_view prefix, std::string_view store) {
    return store_key(prefix, store, ":feed");
}

std::string_view hash_tag(std::string_view key) noexcept {
    const auto open = key.find('{');
    if (open == std::string_view::npos) return key;
    const auto close = key.find('}', open + 1);
    if (close == std::string_view::npos || close == open + 1) return key;
    return key.substr(open + 1, close - open - 1);
}

}  // namespace posrelay::store::keys
