// Redis Cluster decisions, pure: key slots, command routing keys, redirections, slot maps.
#include "posrelay/store/cluster_slots.hpp"

#include <algorithm>
#include <charconv>

namespace posrelay::store::cluster {

namespace {

bool iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c + 32) : c; };
               return lower(x) == lower(y);
           });
}

// Commands that name no key: they go to any node (or, with exec_at, to a given key's node).
constexpr std::string_view keyless[] = {
    "PING",     "INFO",     "SCRIPT",    "CLUSTER",    "ASKING",      "WAIT",         "WAITAOF",
    "CLIENT",   "CONFIG",   "DBSIZE",    "TIME",       "ECHO",        "HELLO",        "AUTH",
    "SELECT",   "FUNCTION", "COMMAND",   "READONLY",   "READWRITE",   "MULTI",        "EXEC",
    "DISCARD",  "FLUSHALL", "FLUSHDB",   "ROLE",       "LASTSAVE",    "SAVE",         "BGSAVE",
    "SLOWLOG",  "LATENCY",  "MEMORY",    "DEBUG",      "RANDOMKEY",   "SCAN",         "KEYS",
    "QUIT",     "RESET",    "SUBSCRIBE", "PSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "MONITOR",
    "SHUTDOWN", "SWAPDB",   "PUBSUB",    "LOLWUT",
};

std::optional<std::uint64_t> to_uint(std::string_view s) noexcept {
    std::uint64_t v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
    return v;
}

}  // namespace

std::uint16_t crc16(std::string_view s) noexcept {
    std::uint16_t crc = 0;
    for (const char ch : s) {
        crc ^= static_cast<std::uint16_t>(static_cast<unsigned char>(ch) << 8);
        for (int i = 0; i < 8; ++i)
            crc = (crc & 0x8000) ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021)
                                 : static_cast<std::uint16_t>(crc << 1);
    }
    return crc;
}

std::uint16_t key_hash_slot(std::string_view key) noexcept {
    if (const auto open = key.find('{'); open != std::string_view::npos) {
        const auto close = key.find('}', open + 1);
        if (close != std::string_view::npos && close > open + 1)
            key = key.substr(open + 1, close - open - 1);
    }
    return static_cast<std::uint16_t>(crc16(key) & (slot_count - 1));
}

std::optional<std::string_view> command_route_key(redis_args args) noexcept {
    if (args.size() < 2) return std::nullopt;
    const std::string_view name = args[0];
    for (const auto k : keyless) {
        if (iequals(name, k)) return std::nullopt;
    }
    if (iequals(name, "EVAL") || iequals(name, "EVALSHA") || iequals(name, "EVAL_RO") ||
        iequals(name, "EVALSHA_RO") || iequals(name, "FCALL") || iequals(name, "FCALL_RO")) {
        const auto n = args.size() > 2 ? to_uint(args[2]) : std::nullopt;
        if (!n || *n == 0 || args.size() < 4) return std::nullopt;
        return args[3];
    }
    if (iequals(name, "XREAD") || iequals(name, "XREADGROUP")) {
        for (std::size_t i = 1; i + 1 < args.size(); ++i) {
            if (iequals(args[i], "STREAMS")) return args[i + 1];
        }
        return std::nullopt;
    }
    return args[1];
}

std::string node_address::name() const {
    if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
    return host + ":" + std::to_string(port);
}

std::optional<node_address> parse_node_address(std::string_view s) {
    const auto colon = s.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || s.size() > 300) return std::nullopt;
    const auto port = to_uint(s.substr(colon + 1));
    if (!port || *port == 0 || *port > 65535) return std::nullopt;
    std::string_view host = s.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    return node_address{std::string(host), static_cast<std::uint16_t>(*port)};
}

std::optional<redirect> parse_redirect(const redis_reply& r) {
    if (!r.is_error()) return std::nullopt;
    std::string_view s = r.str;
    redirect d;
    if (s.starts_with("MOVED ")) {
        d.type = redirect::kind::moved;
        s.remove_prefix(6);
    } else if (s.starts_with("ASK ")) {
        d.type = redirect::kind::ask;
        s.remove_prefix(4);
    } else {
        return std::nullopt;
    }
    const auto space = s.find(' ');
    if (space == std::string_view::npos) return std::nullopt;
    const auto slot = to_uint(s.substr(0, space));
    auto node = parse_node_address(s.substr(space + 1));
    if (!slot || *slot >= slot_count || !node) return std::nullopt;
    d.slot = static_cast<std::uint16_t>(*slot);
    d.node = std::move(*node);
    return d;
}

cluster_error classify_error(const redis_reply& r) noexcept {
    if (!r.is_error()) return cluster_error::none;
    const std::string_view s = r.str;
    if (s.starts_with("TRYAGAIN")) return cluster_error::tryagain;
    if (s.starts_with("CLUSTERDOWN")) return cluster_error::clusterdown;
    if (s.starts_with("CROSSSLOT")) return cluster_error::crossslot;
    return cluster_error::none;
}

std::optional<std::size_t> slot_map::node_of(std::string_view name) const {
    for (std::size_t i = 0; i < nodes.size(); ++i) {
        if (nodes[i].name() == name) return i;
    }
    return std::nullopt;
}

std::size_t slot_map::assigned() const noexcept {
    return static_cast<std::size_t>(
        std::count_if(owner.begin(), owner.end(), [](auto o) { return o != no_owner; }));
}

std::optional<slot_map> parse_cluster_slots(const redis_reply& r, const node_address& answered_by) {
    constexpr std::size_t max_primaries = 1'000;
    if (r.type != redis_reply::kind::array || r.elements.size() > slot_count) return std::nullopt;
    slot_map m;
    for (const auto& e : r.elements) {
        if (e.type != redis_reply::kind::array || e.elements.size() < 3) return std::nullopt;
        const auto& a = e.elements;
        const auto& primary = a[2];
        if (a[0].type != redis_reply::kind::integer || a[1].type != redis_reply::kind::integer ||
            a[0].integer < 0 || a[1].integer < a[0].integer ||
            a[1].integer >= static_cast<long long>(slot_count) ||
            primary.type != redis_reply::kind::array || primary.elements.size() < 2 ||
            primary.elements[1].type != redis_reply::kind::integer ||
            primary.elements[1].integer <= 0 || primary.elements[1].integer > 65535) {
            return std::nullopt;
        }
        node_address n{primary.elements[0].str,
                       static_cast<std::uint16_t>(primary.elements[1].integer)};
        if (n.host.empty() || n.host == "?") n.host = answered_by.host;
        auto at = std::find(m.nodes.begin(), m.nodes.end(), n);
        if (at == m.nodes.end()) {
            if (m.nodes.size() >= max_primaries) return std::nullopt;
            at = m.nodes.insert(m.nodes.end(), std::move(n));
        }
        const auto idx = static_cast<std::uint16_t>(at - m.nodes.begin());
        for (auto s = a[0].integer; s <= a[1].integer; ++s)
            m.owner[static_cast<std::size_t>(s)] = idx;
    }
    return m;
}

}  // namespace posrelay::store::cluster
