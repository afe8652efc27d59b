// posrelay's Redis key names (proto-docs/redis-keys.md, version 4).
#include "posrelay/store/keys.hpp"

#include <cstdint>
#include <optional>

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

std::string terminal_presence(std::string_view prefix, std::string_view store,
                              std::string_view terminal) {
    return store_key(prefix, store, ":t:", terminal, ":presence");
}

std::string store_terminals(std::string_view prefix, std::string_view store) {
    return store_key(prefix, store, ":terminals");
}

std::string order_timeline(std::string_view prefix, std::string_view store,
                           std::string_view order_id) {
    return store_key(prefix, store, ":o:", order_id, ":timeline");
}

std::string terminal_revocation(std::string_view prefix, std::string_view store,
                                std::string_view terminal) {
    return store_key(prefix, store, ":t:", terminal, ":revoked");
}

std::string store_revocation(std::string_view prefix, std::string_view store) {
    return store_key(prefix, store, ":revoked");
}

std::string_view hash_tag(std::string_view key) noexcept {
    const auto open = key.find('{');
    if (open == std::string_view::npos) return key;
    const auto close = key.find('}', open + 1);
    if (close == std::string_view::npos || close == open + 1) return key;
    return key.substr(open + 1, close - open - 1);
}

// ---- the poll schedule ---------------------------------------------------------------------

unsigned poll_bucket(std::string_view order_id) noexcept {
    std::uint32_t h = 2166136261u;
    for (unsigned char c : order_id) {
        h ^= c;
        h *= 16777619u;
    }
    return h % poll_buckets;
}

namespace {

std::string poll_key(std::string_view prefix, std::optional<unsigned> bucket,
                     std::string_view name) {
    std::string k(prefix);
    k += "{poll";
    if (bucket) {
        k += ':';
        k += std::to_string(*bucket);
    }
    k += "}:";
    k += name;
    return k;
}

}  // namespace

std::string poll_due(std::string_view prefix, unsigned bucket) {
    return poll_key(prefix, bucket, "due");
}
std::string poll_leases(std::string_view prefix, unsigned bucket) {
    return poll_key(prefix, bucket, "leases");
}
std::string poll_confirm(std::string_view prefix, unsigned bucket) {
    return poll_key(prefix, bucket, "confirm");
}
std::string poll_confirm_leases(std::string_view prefix, unsigned bucket) {
    return poll_key(prefix, bucket, "confirm_leases");
}
std::string poll_rate(std::string_view prefix) {
    return poll_key(prefix, std::nullopt, "rate");
}
std::string poll_pause(std::string_view prefix) {
    return poll_key(prefix, std::nullopt, "pause");
}
std::string legacy_poll_due(std::string_view prefix) {
    return poll_key(prefix, std::nullopt, "due");
}
std::string legacy_poll_leases(std::string_view prefix) {
    return poll_key(prefix, std::nullopt, "leases");
}
std::string legacy_poll_confirm(std::string_view prefix) {
    return poll_key(prefix, std::nullopt, "confirm");
}
std::string legacy_poll_confirm_leases(std::string_view prefix) {
    return poll_key(prefix, std::nullopt, "confirm_leases");
}

}  // namespace posrelay::store::keys
