// Redis connection URLs (redis://[[user]:password@]host[:port][/db], unix:///path[?db=N],
// redis-cluster://[[user]:password@]host:port[,host:port...],
// redis-sentinel://[[user]:password@]host[:port][,host[:port]...]/MASTER_NAME)
// and their password-free description for logs. Errors never echo the password.
#include <charconv>
#include <stdexcept>

#include "posrelay/store/redis_connection.hpp"

namespace posrelay::store {

namespace {

[[noreturn]] void fail(const std::string& why) {
    throw std::invalid_argument("invalid Redis URL: " + why);
}

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Decodes %XX escapes; `what` names the part in errors (its value is never echoed).
std::string percent_decode(std::string_view s, std::string_view what) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        const int hi = i + 1 < s.size() ? hex_value(s[i + 1]) : -1;
        const int lo = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
        if (hi < 0 || lo < 0) fail("bad %-escape in the " + std::string(what));
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return out;
}

// A decimal number in [lo, hi]; `what` names it in errors.
long long parse_number(std::string_view s, long long lo, long long hi, std::string_view what) {
    long long v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || p != s.data() + s.size() || v < lo || v > hi) {
        fail(std::string(what) + " '" + std::string(s) + "' is not a number in " +
             std::to_string(lo) + ".." + std::to_string(hi));
    }
    return v;
}

constexpr long long max_db = 1'000'000;  // far above any configured `databases`

// unix:///path[?db=N]
redis_options parse_unix(std::string_view rest) {
    redis_options o;
    std::string_view path = rest;
    if (const auto q = rest.find('?'); q != std::string_view::npos) {
        path = rest.substr(0, q);
        std::string_view query = rest.substr(q + 1);
        while (!query.empty()) {
            const auto amp = query.find('&');
            const std::string_view kv = query.substr(0, amp);
            query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
            const auto eq = kv.find('=');
            const std::string_view key = kv.substr(0, eq);
            if (key != "db" || eq == std::string_view::npos) {
                fail("unknown query parameter '" + std::string(key) + "' (only db=N)");
            }
            o.db = static_cast<int>(parse_number(kv.substr(eq + 1), 0, max_db, "db"));
        }
    }
    if (!path.starts_with('/')) fail("unix:// needs an absolute path (unix:///path/to/sock)");
    o.unix_path = percent_decode(path, "path");
    if (o.unix_path.size() < 2) fail("empty unix socket path");
    return o;
}

// host[:port] or [v6][:port]; `port` unchanged when the authority names none.
void parse_authority(std::string_view authority, std::string& host, std::uint16_t& port_out) {
    std::string_view port;
    if (authority.starts_with('[')) {  // [IPv6]
        const auto close = authority.find(']');
        if (close == std::string_view::npos) fail("unterminated '[' in the host");
        host = std::string(authority.substr(1, close - 1));
        const std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (!after.starts_with(':')) fail("unexpected characters after ']'");
            port = after.substr(1);
            if (port.empty()) fail("empty port");
        }
    } else {
        const auto colon = authority.find(':');
        host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) {
            port = authority.substr(colon + 1);
            if (port.empty()) fail("empty port");
        }
    }
    if (host.empty()) fail("empty host");
    if (!port.empty()) port_out = static_cast<std::uint16_t>(parse_number(port, 1, 65535, "port"));
}

// Credentials first, split at the last '@': whatever the password holds (even an unencoded
// '/' or '@') it is never parsed as host, port or db, so never echoed. Returns the rest.
std::string_view take_credentials(std::string_view rest, redis_options& o) {
    const auto at = rest.rfind('@');
    if (at == std::string_view::npos) return rest;
    const std::string_view userinfo = rest.substr(0, at);
    const auto colon = userinfo.find(':');
    if (colon == std::string_view::npos) fail("credentials must be [user]:password@");
    o.username = percent_decode(userinfo.substr(0, colon), "user name");
    o.password = secret(percent_decode(userinfo.substr(colon + 1), "password"));
    if (o.password.empty()) fail("empty password after ':'");
    return rest.substr(at + 1);
}

// redis://[[user]:password@]host[:port][/db]
redis_options parse_tcp(std::string_view rest) {
    redis_options o;
    rest = take_credentials(rest, o);
    const auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    if (slash != std::string_view::npos) {
        const std::string_view db = rest.substr(slash + 1);
        if (db.find_first_of("?#") != std::string_view::npos) {
            fail("query and fragment are not supported in redis:// URLs");
        }
        if (!db.empty()) o.db = static_cast<int>(parse_number(db, 0, max_db, "db"));
    }
    parse_authority(authority, o.host, o.port);
    return o;
}

// redis-cluster://[[user]:password@]host:port[,host:port...][/0]: the seed nodes; o.host and
// o.port are the first one's.
redis_options parse_cluster(std::string_view rest) {
    constexpr std::size_t max_seeds = 64;
    redis_options o;
    rest = take_credentials(rest, o);
    const auto slash = rest.find('/');
    std::string_view hosts = rest.substr(0, slash);
    if (slash != std::string_view::npos && rest.substr(slash + 1) != "" &&
        rest.substr(slash + 1) != "0") {
        fail("redis-cluster:// has only db 0 (Redis Cluster has no SELECT)");
    }
    while (true) {
        const auto comma = hosts.find(',');
        std::string host;
        std::uint16_t port = 6379;
        parse_authority(hosts.substr(0, comma), host, port);
        if (o.cluster_seeds.size() >= max_seeds) fail("more than 64 seed nodes");
        if (o.cluster_seeds.empty()) {
            o.host = host;
            o.port = port;
        }
        const bool v6 = host.find(':') != std::string::npos;
        o.cluster_seeds.push_back((v6 ? "[" + host + "]" : host) + ":" + std::to_string(port));
        if (comma == std::string_view::npos) break;
        hosts = hosts.substr(comma + 1);
    }
    return o;
}

constexpr std::size_t max_sentinels = 32;
constexpr std::size_t max_master_name = 256;

// redis-sentinel://[[user]:password@]host[:port][,host[:port]...]/MASTER_NAME
redis_options parse_sentinel(std::string_view rest) {
    redis_options o;
    rest = take_credentials(rest, o);
    const auto slash = rest.find('/');
    if (slash == std::string_view::npos)
        fail("redis-sentinel:// needs /MASTER_NAME after the hosts");
    std::string_view hosts = rest.substr(0, slash);
    const std::string_view name = rest.substr(slash + 1);
    if (name.empty()) fail("empty master name");
    if (name.size() > max_master_name) fail("master name longer than 256 bytes");
    for (const char c : name) {
        // Sentinel names are plain words; this also keeps '?', '#' and '/' out.
        if (c <= ' ' || c == '/' || c == '?' || c == '#' || c == 0x7f) {
            fail("the master name must be printable, without '/', '?', '#' or spaces");
        }
    }
    o.master_name = std::string(name);
    while (true) {
        const auto comma = hosts.find(',');
        redis_address a{{}, 26379};
        parse_authority(hosts.substr(0, comma), a.host, a.port);
        if (o.sentinels.size() == max_sentinels) fail("more than 32 sentinels");
        o.sentinels.push_back(std::move(a));
        if (comma == std::string_view::npos) break;
        hosts = hosts.substr(comma + 1);
    }
    o.host = o.sentinels.front().host;  // until the master is known; never connected to
    o.port = o.sentinels.front().port;
    return o;
}

}  // namespace

redis_options parse_redis_url(std::string_view url) {
    if (url.starts_with("redis://")) return parse_tcp(url.substr(8));
    if (url.starts_with("redis-cluster://")) return parse_cluster(url.substr(16));
    if (url.starts_with("redis-sentinel://")) return parse_sentinel(url.substr(17));
    if (url.starts_with("unix://")) return parse_unix(url.substr(7));
    if (url.starts_with("rediss://")) fail("TLS (rediss://) is not supported");
    fail(
        "expected redis://[[user]:password@]host[:port][/db], unix:///path[?db=N], "
        "redis-cluster://[[user]:password@]host:port[,host:port...] or "
        "redis-sentinel://[[user]:password@]host[:port][,host[:port]...]/MASTER_NAME");
}

std::string redis_address::describe() const {
    return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
           std::to_string(port);
}

std::string redis_options::describe() const {
    std::string out;
    if (!master_name.empty()) {  // sentinel:host:port,host:port/name
        out = "sentinel:";
        if (!username.empty()) out += username + "@";
        for (std::size_t i = 0; i < sentinels.size(); ++i) {
            if (i) out += ',';
            out += sentinels[i].describe();
        }
        return out + "/" + master_name;
    }
    if (!unix_path.empty()) {
        out = "unix:" + unix_path;
        if (db != 0) out += "?db=" + std::to_string(db);
        return out;
    }
    if (!username.empty()) out = username + "@";
    if (!cluster_seeds.empty()) {
        out = "cluster:" + out;
        for (std::size_t i = 0; i < cluster_seeds.size(); ++i)
            out += (i ? "," : "") + cluster_seeds[i];
        return out;
    }
    if (host.find(':') != std::string::npos) {
        out += "[" + host + "]";
    } else {
        out += host;
    }
    out += ":" + std::to_string(port) + "/" + std::to_string(db);
    return out;
}

}  // namespace posrelay::store
