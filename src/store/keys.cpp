// posrelay's Redis key names (proto-docs/redis-keys.md).
#include "posrelay/store/keys.hpp"

#include <cstdint>
#include <optional>

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
