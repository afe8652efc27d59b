// Start-up configuration: one option table read by Boost.Program_options from flags, the
// POSRELAY_* environment and an INI-style file (in that precedence), then validated;
// secrets come only from the environment or key files and never appear in messages.
#include "posrelay/config.hpp"
#include "posrelay/net/cidr.hpp"
#include "posrelay/store/redis_connection.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <optional>
#include <sstream>

namespace posrelay {

namespace po = boost::program_options;

// ---- endpoint and duration -------------------------------------------------------------

std::string endpoint::to_string() const {
    const bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

endpoint parse_endpoint(std::string_view s) {
    std::string_view host;
    std::string_view port;
    if (s.starts_with('[')) {
        const auto close = s.find(']');
        if (close == std::string_view::npos)
            throw std::invalid_argument("missing ']' after the IPv6 address");
        host = s.substr(1, close - 1);
        const auto rest = s.substr(close + 1);
        if (!rest.starts_with(':'))
            throw std::invalid_argument("missing port: expected [IPv6]:PORT");
        port = rest.substr(1);
        if (host.empty()) throw std::invalid_argument("empty host");
        for (char c : host) {
            if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.' && c != '%')
                throw std::invalid_argument("invalid IPv6 address");
        }
    } else {
        const auto colon = s.rfind(':');
        if (colon == std::string_view::npos)
            throw std::invalid_argument("missing port: expected HOST:PORT");
        host = s.substr(0, colon);
        port = s.substr(colon + 1);
        if (host.empty())
            throw std::invalid_argument("empty host: use 0.0.0.0 for every IPv4 address");
        if (host.find(':') != std::string_view::npos)
            throw std::invalid_argument("IPv6 addresses go in brackets, e.g. [::1]:8080");
        for (char c : host) {
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_')
                throw std::invalid_argument("invalid host name");
        }
    }
    if (port.empty()) throw std::invalid_argument("missing port: expected HOST:PORT");
    std::uint32_t p = 0;
    const auto r = std::from_chars(port.data(), port.data() + port.size(), p);
    if (r.ptr != port.data() + port.size() ||
        (r.ec != std::errc{} && r.ec != std::errc::result_out_of_range))
        throw std::invalid_argument("the port is not a number");
    if (r.ec == std::errc::result_out_of_range || p > 65535)
        throw std::invalid_argument("the port must be between 0 and 65535");
    return endpoint{std::string(host), static_cast<std::uint16_t>(p)};
}

std::chrono::milliseconds parse_duration(std::string_view s) {
    constexpr const char* expected =
        "expected a duration such as 250ms, 10s, 2m, 1h, 7d or 1.5 (seconds)";
    if (s.starts_with('-')) throw std::invalid_argument("negative durations are not allowed");
    // Number: digits with an optional fraction. Checked by hand because from_chars would
    // also take "inf", "nan" and exponents.
    std::size_t i = 0;
    std::size_t digits = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])))
        ++i, ++digits;
    if (i < s.size() && s[i] == '.') {
        ++i;
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])))
            ++i, ++digits;
    }
    if (digits == 0) throw std::invalid_argument(expected);
    const auto unit = s.substr(i);
    double ms_per_unit = 0;
    if (unit.empty() || unit == "s")
        ms_per_unit = 1e3;
    else if (unit == "ms")
        ms_per_unit = 1;
    else if (unit == "m")
        ms_per_unit = 60e3;
    else if (unit == "h")
        ms_per_unit = 3600e3;
    else if (unit == "d")
        ms_per_unit = 86400e3;
    else
        throw std::invalid_argument(expected);
    double value = 0;
    const auto r = std::from_chars(s.data(), s.data() + i, value, std::chars_format::fixed);
    if (r.ec != std::errc{} || r.ptr != s.data() + i) throw std::invalid_argument(expected);
    const double ms = std::round(value * ms_per_unit);
    if (ms > 1e12) throw std::invalid_argument("duration too long");  // ~31 years
    return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

namespace {

// ---- option values ---------------------------------------------------------------------

constexpr std::string_view env_prefix = "POSRELAY_";
constexpr const char* program = "posrelay";

// One option's value and how error messages name where it came from: "--io-threads",
// "POSRELAY_IO_THREADS" or "/etc/posrelay.conf:io-threads".
struct value_source {
    std::string value;
    std::string label;
};

// What the option table fills in: the config, plus key-file paths that are read only once
// every source has been merged.
struct settings {
    config cfg;
    std::optional<value_source> server_key_file;
    std::optional<value_source> merchant_keys_file;
    std::optional<value_source> operator_token_file;
    std::optional<value_source> terminal_secret_file;
    std::optional<value_source> redis_password_file;
    std::optional<value_source> redis_sentinel_password_file;
};

// A value as it may appear in an error message: non-secret options only, printable,
// bounded.
std::string shown(std::string_view v) {
    std::string out;
    for (char c : v.substr(0, 64))
        out += std::isprint(static_cast<unsigned char>(c)) ? c : '?';
    if (v.size() > 64) out += "...";
    return out;
}

[[noreturn]] void invalid(const value_source& src, std::string_view why) {
    throw config_error("invalid value for " + src.label + ": '" + shown(src.value) + "' (" +
                       std::string(why) + ")");
}

std::uint64_t whole_number(const value_source& src, std::uint64_t min, std::uint64_t max) {
    const std::string_view v = src.value;
    std::uint64_t n = 0;
    const auto r = std::from_chars(v.data(), v.data() + v.size(), n);
    const bool all_digits = !v.empty() && r.ptr == v.data() + v.size();
    if (!all_digits || (r.ec != std::errc{} && r.ec != std::errc::result_out_of_range))
        invalid(src, "expected a whole number");
    if (r.ec == std::errc::result_out_of_range || n < min || n > max)
        invalid(src, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return n;
}

std::chrono::milliseconds timeout(const value_source& src, bool zero_ok) {
    std::chrono::milliseconds d{};
    try {
        d = parse_duration(src.value);
    } catch (const std::invalid_argument& e) {
        invalid(src, e.what());
    }
    if (d.count() == 0 && !zero_ok) invalid(src, "must be greater than 0");
    return d;
}

std::string one_of(const value_source& src, std::initializer_list<std::string_view> allowed) {
    std::string list;
    for (auto a : allowed) {
        if (src.value == a) return src.value;
        list += list.empty() ? "" : ", ";
        list += a;
    }
    invalid(src, "expected one of " + list);
}

bool boolean(const value_source& src) {
    if (src.value == "true") return true;
    if (src.value == "false") return false;
    invalid(src, "expected true or false");
}

std::optional<endpoint> optional_endpoint(const value_source& src) {
    if (src.value == "off") return std::nullopt;
    try {
        return parse_endpoint(src.value);
    } catch (const std::invalid_argument& e) {
        invalid(src, std::string(e.what()) + ", or off");
    }
}

std::string path(const value_source& src) {
    if (src.value.empty()) invalid(src, "expected a file path");
    return src.value;
}

// An http(s) URL without credentials (they would be printed in logs). `api`: a base URL
// where plain http is refused unless the host is loopback (checked again by the client).
std::string web_url(const value_source& src, bool api) {
    const std::string_view v = src.value;
    const bool https = v.starts_with("https://");
    if (!https && !v.starts_with("http://")) invalid(src, "expected an http:// or https:// URL");
    const std::string_view rest = v.substr(https ? 8 : 7);
    const std::string_view authority = rest.substr(0, rest.find('/'));
    if (authority.empty()) invalid(src, "the URL has no host");
    if (authority.find('@') != std::string_view::npos)
        invalid(src, "the URL must not carry credentials");
    if (api && !https) {
        const std::string_view host = authority.substr(0, authority.rfind(':'));
        if (host != "localhost" && !host.starts_with("127.") && host != "[::1]")
            invalid(src, "plain http is allowed only for a loopback host (midtrans-sim)");
    }
    return src.value;
}

// ---- the option table ------------------------------------------------------------------
//
// Every option is one entry: its long flag (also its config-file key, and its environment
// variable POSRELAY_<NAME> with '-' as '_'), the help text, the default as shown by
// --help (keep it equal to the initialiser in struct config), and how to apply a value.
struct option_spec {
    std::string_view name;
    std::string_view value_name;
    std::string_view default_text;
    std::string_view help;
    void (*apply)(settings&, const value_source&);
    bool in_file = true;  // may be set in the config file
};

const option_spec option_table[] = {
    {"config", "FILE", "none",
     "Config file: `name = value` lines with the long option names below; '#' starts a "
     "comment.",
     [](settings& s, const value_source& v) { s.cfg.config_file = path(v); }, false},
    {"listen", "HOST:PORT", "0.0.0.0:8080",
     "Address for Midtrans notifications; [::]:PORT for IPv6, port 0 picks a free port.",
     [](settings& s, const value_source& v) {
         try {
             s.cfg.listen = parse_endpoint(v.value);
         } catch (const std::invalid_argument& e) {
             invalid(v, e.what());
         }
     }},
    {"admin-listen", "HOST:PORT", "off",
     "Address for /metrics, /healthz, /readyz and the operator API (/v1/orders), or off. When "
     "set, --listen serves only Midtrans notifications, the terminal WebSocket and terminal QR "
     "images; keep this one on a private address. off: --listen serves everything.",
     [](settings& s, const value_source& v) { s.cfg.admin_listen = optional_endpoint(v); }},
    {"admin-max-connections", "N", "64",
     "Open connections accepted at once on --admin-listen, 1 to 10000.",
     [](settings& s, const value_source& v) {
         s.cfg.admin_max_connections = whole_number(v, 1, 10'000);
     }},
    {"io-threads", "N", "0",
     "I/O threads, 0 to 256; 0 means one per usable CPU core (one fewer with the embedded Redis).",
     [](settings& s, const value_source& v) {
         s.cfg.io_threads = static_cast<unsigned>(whole_number(v, 0, 256));
     }},
    {"max-connections", "N", "10000",
     "Open connections accepted at once, 1 to 1000000; more wait in the listen backlog.",
     [](settings& s, const value_source& v) {
         s.cfg.max_connections = whole_number(v, 1, 1'000'000);
     }},
    {"header-timeout", "DUR", "10s",
     "Time allowed to receive a request's headers (from the accept for a new "
     "connection's first request).",
     [](settings& s, const value_source& v) { s.cfg.header_timeout = timeout(v, false); }},
    {"body-timeout", "DUR", "10s", "Time allowed to receive a request's body.",
     [](settings& s, const value_source& v) { s.cfg.body_timeout = timeout(v, false); }},
    {"idle-timeout", "DUR", "75s", "Time a keep-alive connection waits for its next request.",
     [](settings& s, const value_source& v) { s.cfg.idle_timeout = timeout(v, false); }},
    {"write-timeout", "DUR", "10s", "Time allowed to write a response.",
     [](settings& s, const value_source& v) { s.cfg.write_timeout = timeout(v, false); }},
    {"shutdown-timeout", "DUR", "10s",
     "On SIGTERM, time given to requests in flight before exiting; 0 exits at once.",
     [](settings& s, const value_source& v) { s.cfg.shutdown_timeout = timeout(v, true); }},
    {"max-header-bytes", "N", "8192",
     "Largest request header block (request line, fields and the empty line), 1024 to "
     "1048576 bytes; larger ones get 431.",
     [](settings& s, const value_source& v) {
         s.cfg.max_header_bytes = whole_number(v, 1024, 1024 * 1024);
     }},
    {"max-body-bytes", "N", "65536",
     "Largest notification body, 1024 to 16777216 bytes; larger ones get 413.",
     [](settings& s, const value_source& v) {
         s.cfg.max_body_bytes = whole_number(v, 1024, 16 * 1024 * 1024);
     }},
    {"log-level", "LEVEL", "info", "Lowest level logged: debug, info, warn or error.",
     [](settings& s, const value_source& v) {
         const auto l = log::parse_level(v.value);
         if (!l) invalid(v, "expected debug, info, warn or error");
         s.cfg.log_level = *l;
     }},
    {"audit-log", "BOOL", "true",
     "true or false: one info line per accepted notification (\"msg\":\"notification\": "
     "order_id, status, outcome, merchant, commit_ms, client, remote).",
     [](settings& s, const value_source& v) { s.cfg.audit_log = boolean(v); }},
    {"trusted-proxies", "CIDR[,CIDR...]", "none",
     "Proxies believed about the client's address, e.g. 127.0.0.1/32,10.0.0.0/8,::1/128: "
     "X-Forwarded-For from these peers names the client (walked right to left past them), "
     "and only these may send a PROXY protocol header.",
     [](settings& s, const value_source& v) {
         try {
             (void)net::parse_cidr_list(v.value);
         } catch (const std::invalid_argument& e) {
             invalid(v, e.what());
         }
         s.cfg.trusted_proxies = v.value == "none" ? std::string() : v.value;
     }},
    {"proxy-protocol", "BOOL", "false",
     "true or false: --listen connections from --trusted-proxies must open with a PROXY "
     "protocol header (v1 or v2), which names the client; other peers must not send one.",
     [](settings& s, const value_source& v) { s.cfg.proxy_protocol = boolean(v); }},
    {"terminal-proxy-protocol", "BOOL", "false",
     "true or false: like --proxy-protocol for the terminal TCP and TLS listeners (the header "
     "comes before the TLS handshake).",
     [](settings& s, const value_source& v) { s.cfg.terminal_proxy_protocol = boolean(v); }},
    {"store", "KIND", "redis",
     "Where updates are committed: redis, or memory (tests and benchmarks only: lost on exit).",
     [](settings& s, const value_source& v) {
         s.cfg.store = one_of(v, {"redis", "memory"});
     }},
    {"redis-url", "URL", "none (embedded redis-server)",
     "External Redis: redis://[user[:password]@]host[:port][/db] or unix:///path[?db=N]. "
     "A Redis Cluster: redis-cluster://[user[:password]@]host:port[,host:port...] (seeds). "
     "Sentinel: redis-sentinel://[user[:password]@]host[:port][,host[:port]...]/MASTER_NAME "
     "(the sentinels, port 26379 by default; the credentials are the master's). "
     "Unset: posrelay runs its own redis-server in --data-dir. A password belongs in "
     "POSRELAY_REDIS_URL or POSRELAY_REDIS_PASSWORD, never on the command line.",
     [](settings& s, const value_source& v) {
         store::redis_options o;
         try {
             o = store::parse_redis_url(v.value);
         } catch (const std::invalid_argument& e) {
             // Not invalid(): that would print the value, which may hold a password.
             throw config_error("invalid value for " + v.label + ": " + e.what());
         }
         if (!o.password.empty() && v.label.starts_with("--"))
             throw config_error(
                 "--redis-url must not carry a password on the command line: use "
                 "POSRELAY_REDIS_URL or POSRELAY_REDIS_PASSWORD");
         s.cfg.redis_url = v.value;
     }},
    {"data-dir", "DIR", "posrelay-data",
     "Directory of the embedded Redis (its unix socket and append-only file).",
     [](settings& s, const value_source& v) { s.cfg.data_dir = path(v); }},
    {"redis-server", "PATH", "redis-server",
     "The redis-server binary run for the embedded Redis (looked up on PATH).",
     [](settings& s, const value_source& v) { s.cfg.redis_server = path(v); }},
    {"redis-appendfsync", "POLICY", "everysec",
     "Embedded Redis fsync policy: always (no loss even on power failure, slower), everysec "
     "(a power failure may lose the last second; a crash of posrelay or Redis loses nothing) "
     "or no.",
     [](settings& s, const value_source& v) {
         s.cfg.redis_appendfsync = one_of(v, {"always", "everysec", "no"});
     }},
    {"redis-config", "FILE", "none",
     "A redis.conf the embedded Redis loads before posrelay's own settings, which win (unix "
     "socket, no TCP port, directory, appendonly, appendfsync, no RDB snapshots, log file, "
     "noeviction): for the rest, e.g. auto-aof-rewrite-min-size, hz, maxmemory.",
     [](settings& s, const value_source& v) { s.cfg.redis_config = path(v); }},
    {"redis-aof-rewrite", "MODE", "scheduled",
     "Embedded Redis: who starts AOF rewrites (each forks redis-server, which stalls commits "
     "for a while on a VM). scheduled: posrelay, when the file has doubled since the last "
     "rewrite (and is at least 64 MiB) and grows slower than --redis-aof-quiet-rate, or has "
     "grown by --redis-aof-max-growth whatever the load. redis: Redis's own auto-aof-rewrite-* "
     "rule (set it in --redis-config).",
     [](settings& s, const value_source& v) {
         s.cfg.redis_aof_rewrite_scheduled = one_of(v, {"scheduled", "redis"}) == "scheduled";
     }},
    {"redis-aof-rewrite-min-size", "BYTES", "67108864",
     "Scheduled AOF rewrites: no rewrite while the append-only file is smaller (Redis's "
     "auto-aof-rewrite-min-size).",
     [](settings& s, const value_source& v) {
         s.cfg.redis_aof_min_size = whole_number(v, 0, 1ULL << 50);
     }},
    {"redis-aof-quiet-rate", "BYTES", "65536",
     "Scheduled AOF rewrites: the embedded Redis's append-only file growing slower than this "
     "many bytes a second (over the last 5 s) counts as quiet (~50 events a second).",
     [](settings& s, const value_source& v) {
         s.cfg.redis_aof_quiet_rate = whole_number(v, 0, 1ULL << 40);
     }},
    {"redis-aof-max-growth", "BYTES", "1073741824",
     "Scheduled AOF rewrites: once the append-only file has grown by this much since the last "
     "rewrite, it is rewritten whatever the load (bounds the disk used and the load time at a "
     "restart). At least 1048576.",
     [](settings& s, const value_source& v) {
         s.cfg.redis_aof_max_growth = whole_number(v, 1024 * 1024, 1ULL << 50);
     }},
    {"redis-connect-timeout", "DUR", "2s", "Time allowed to connect (and AUTH) to Redis.",
     [](settings& s, const value_source& v) { s.cfg.redis_connect_timeout = timeout(v, false); }},
    {"redis-command-timeout", "DUR", "2s",
     "Time allowed for one Redis command; a commit that takes longer is answered 503.",
     [](settings& s, const value_source& v) { s.cfg.redis_command_timeout = timeout(v, false); }},
    {"redis-min-replicas-ack", "N", "0",
     "A notification, registration or reservation is answered as done only once this many "
     "Redis replicas have it (WAIT after the write); fewer within "
     "--redis-replicas-ack-timeout: 503 replicas_not_acknowledged (the retry is safe). 0: "
     "answered once the primary has it (a failover may lose the last writes).",
     [](settings& s, const value_source& v) {
         s.cfg.redis_min_replicas_ack = static_cast<unsigned>(whole_number(v, 0, 64));
     }},
    {"redis-replicas-ack-timeout", "DUR", "500ms",
     "How long a write waits for --redis-min-replicas-ack replicas; less than "
     "--redis-command-timeout.",
     [](settings& s, const value_source& v) {
         s.cfg.redis_replicas_ack_timeout = timeout(v, false);
     }},
    {"dedup-ttl", "DUR", "7d",
     "How long a committed (order, status) is remembered at least, to drop duplicates "
     "(Midtrans retries for about 6 hours); kept on the order record, so as long as "
     "--order-ttl when that is longer.",
     [](settings& s, const value_source& v) { s.cfg.dedup_ttl = timeout(v, false); }},
    {"order-ttl", "DUR", "30d",
     "How long an order record and its history are kept after its last change.",
     [](settings& s, const value_source& v) { s.cfg.order_ttl = timeout(v, false); }},
    {"history-max", "N", "32", "Status changes kept in an order's history, 1 to 1000.",
     [](settings& s, const value_source& v) { s.cfg.history_max = whole_number(v, 1, 1000); }},
    {"stream-maxlen", "N", "10000",
     "Events kept per terminal for resume (approximate), 100 to 10000000.",
     [](settings& s, const value_source& v) {
         s.cfg.stream_maxlen = whole_number(v, 100, 10'000'000);
     }},
    {"stream-ttl", "DUR", "7d", "How long an idle terminal's event stream is kept.",
     [](settings& s, const value_source& v) { s.cfg.stream_ttl = timeout(v, false); }},
    {"midtrans-url", "URL", "https://api.sandbox.midtrans.com",
     "Base URL of the Midtrans Core API: https://api.midtrans.com in production, the sandbox "
     "by default, or a loopback http:// URL of midtrans-sim.",
     [](settings& s, const value_source& v) { s.cfg.midtrans_url = web_url(v, true); }},
    {"public-url", "URL", "none",
     "posrelay's externally reachable base URL: Midtrans is told to notify "
     "URL/v1/midtrans/notifications (X-Override-Notification). Needed for terminal charges.",
     [](settings& s, const value_source& v) { s.cfg.public_url = web_url(v, false); }},
    {"midtrans-connect-timeout", "DUR", "5s", "Time allowed to connect (and TLS) to Midtrans.",
     [](settings& s, const value_source& v) {
         s.cfg.midtrans_connect_timeout = timeout(v, false);
     }},
    {"midtrans-timeout", "DUR", "15s",
     "Time allowed for one Midtrans API call once connected (request and full answer).",
     [](settings& s, const value_source& v) { s.cfg.midtrans_timeout = timeout(v, false); }},
    {"midtrans-max-inflight", "N", "512",
     "Midtrans API calls in flight at once, 1 to 100000; more are refused as busy.",
     [](settings& s, const value_source& v) {
         s.cfg.midtrans_max_inflight = whole_number(v, 1, 100'000);
     }},
    {"midtrans-ca-file", "PATH", "none",
     "Extra PEM CA bundle trusted for the Midtrans API, besides the system's.",
     [](settings& s, const value_source& v) { s.cfg.midtrans_ca_file = path(v); }},
    {"status-refresh-after", "DUR", "10s",
     "A terminal's status request asks Midtrans when the order is pending and its last update "
     "is older than this (the integration guide asks not to poll sooner than ~10 s).",
     [](settings& s, const value_source& v) { s.cfg.status_refresh_after = timeout(v, true); }},
    {"qr-cache-bytes", "N", "16777216",
     "Memory for cached QR code images served at /v1/orders/ID/qr.png, 0 to 1073741824.",
     [](settings& s, const value_source& v) {
         s.cfg.qr_cache_bytes = whole_number(v, 0, 1024ULL * 1024 * 1024);
     }},
    {"poll-rate", "N", "10",
     "Midtrans status calls per second for the whole fleet (shared through Redis), 0 to 10000; "
     "0 turns the poll fallback off.",
     [](settings& s, const value_source& v) {
         s.cfg.poll_rate = static_cast<unsigned>(whole_number(v, 0, 10'000));
     }},
    {"poll-burst", "N", "1",
     "Status calls allowed back to back after a quiet spell, 1 to 10000. 1 spaces calls evenly "
     "and keeps every second within --poll-rate; more lets bursts exceed it.",
     [](settings& s, const value_source& v) {
         s.cfg.poll_burst = static_cast<unsigned>(whole_number(v, 1, 10'000));
     }},
    {"poll-first-delay", "DUR", "10s",
     "First status poll of a pending order this long after it was charged or registered "
     "(a bare number is seconds).",
     [](settings& s, const value_source& v) { s.cfg.poll_first_delay = timeout(v, false); }},
    {"poll-max-interval", "DUR", "60s",
     "Longest time between two polls of a pending order (the backoff doubles up to it).",
     [](settings& s, const value_source& v) { s.cfg.poll_max_interval = timeout(v, false); }},
    {"poll-lease", "DUR", "30s",
     "A node's claim on a due order lapses after this; another node then polls it.",
     [](settings& s, const value_source& v) { s.cfg.poll_lease = timeout(v, false); }},
    {"poll-grace", "DUR", "10m",
     "After an order's expiry, time to wait for a final status before flagging it unknown.",
     [](settings& s, const value_source& v) { s.cfg.poll_grace = timeout(v, true); }},
    {"expire-below", "DUR", "15m",
     "Orders whose expiry is shorter than this are expired by posrelay at their deadline "
     "(Midtrans's own expiry is reliable only from 15 minutes).",
     [](settings& s, const value_source& v) { s.cfg.expire_below = timeout(v, true); }},
    {"poll-concurrency", "N", "32", "Status polls in flight per node, 1 to 10000.",
     [](settings& s, const value_source& v) {
         s.cfg.poll_concurrency = whole_number(v, 1, 10'000);
     }},
    {"confirm-paid", "BOOL", "true",
     "true or false. A notification that would make an order paid (or take paid away) is "
     "committed and answered at once, but reaches terminals only once Midtrans's GET status "
     "agrees (its signature does not cover the status). Confirmations go before polls in the "
     "fleet's --poll-rate budget; with --poll-rate 0 they still run, unmetered. Needs "
     "POSRELAY_SERVER_KEY and the redis store.",
     [](settings& s, const value_source& v) { s.cfg.confirm_paid = boolean(v); }},
    {"terminal-listen", "HOST:PORT", "0.0.0.0:7070",
     "Plain TCP listener for terminals (newline-delimited JSON), or off. Terminals connect only "
     "when POSRELAY_TERMINAL_SECRET is set.",
     [](settings& s, const value_source& v) { s.cfg.terminal_listen = optional_endpoint(v); }},
    {"terminal-tls-listen", "HOST:PORT", "off",
     "TLS listener for terminals (TLS 1.2+); needs --terminal-tls-cert and --terminal-tls-key.",
     [](settings& s, const value_source& v) { s.cfg.terminal_tls_listen = optional_endpoint(v); }},
    {"terminal-tls-cert", "PATH", "none", "PEM certificate chain of the terminal TLS listener.",
     [](settings& s, const value_source& v) { s.cfg.terminal_tls_cert = path(v); }},
    {"terminal-tls-key", "PATH", "none", "PEM private key of the terminal TLS listener.",
     [](settings& s, const value_source& v) { s.cfg.terminal_tls_key = path(v); }},
    {"terminal-tls-client-ca", "PATH", "none",
     "PEM CA bundle: when set, terminals must present a client certificate it signed.",
     [](settings& s, const value_source& v) { s.cfg.terminal_tls_client_ca = path(v); }},
    {"pos-page", "PATH", "off",
     "Directory of the browser POS page (clients/pos; installed in share/posrelay/pos), served "
     "at GET /pos/ on the main listener; off: not served. Read once at start.",
     [](settings& s, const value_source& v) { s.cfg.pos_page = v.value == "off" ? "" : path(v); }},
    {"terminal-max-connections", "N", "20000", "Terminal connections open at once, 1 to 1000000.",
     [](settings& s, const value_source& v) {
         s.cfg.terminal_max_connections = whole_number(v, 1, 1'000'000);
     }},
    {"terminal-handshake-timeout", "DUR", "10s",
     "Time a new terminal connection has to send hello.",
     [](settings& s, const value_source& v) {
         s.cfg.terminal_handshake_timeout = timeout(v, false);
     }},
    {"terminal-heartbeat", "DUR", "15s",
     "Ping interval on an idle terminal connection; a terminal silent for 3 intervals is closed.",
     [](settings& s, const value_source& v) { s.cfg.terminal_heartbeat = timeout(v, false); }},
    {"terminal-write-timeout", "DUR", "10s",
     "A write to a terminal blocked this long disconnects it as a slow consumer.",
     [](settings& s, const value_source& v) { s.cfg.terminal_write_timeout = timeout(v, false); }},
    {"terminal-max-frame-bytes", "N", "16384",
     "Largest frame a terminal may send, 256 to 1048576 bytes.",
     [](settings& s, const value_source& v) {
         s.cfg.terminal_max_frame_bytes = whole_number(v, 256, 1024 * 1024);
     }},
    {"terminal-send-queue-bytes", "N", "1048576",
     "Bytes queued for one terminal and not yet written (every frame); when full, events wait "
     "and its frames are not read.",
     [](settings& s, const value_source& v) {
         s.cfg.terminal_send_queue_bytes = whole_number(v, 4096, 1024ULL * 1024 * 1024);
     }},
    {"terminal-send-queue-frames", "N", "4096",
     "Frames queued for one terminal and not yet written; when full, events wait and its "
     "frames are not read.",
     [](settings& s, const value_source& v) {
         s.cfg.terminal_send_queue_frames = whole_number(v, 16, 1'000'000);
     }},
    {"terminal-max-inflight", "N", "1000",
     "Events sent to a terminal and not yet acknowledged, at most (flow control), 1 to 100000.",
     [](settings& s, const value_source& v) {
         s.cfg.terminal_max_inflight = whole_number(v, 1, 100'000);
     }},
    {"terminal-auth-failures-per-minute", "N", "10",
     "Failed terminal authentications (handshakes, QR-image requests) allowed per source "
     "address and minute; then refused.",
     [](settings& s, const value_source& v) {
         s.cfg.terminal_auth_failures_per_minute = whole_number(v, 1, 1'000'000);
     }},
    {"terminal-token-keys", "PATH", "none",
     "JWK set file of terminal token keys ({\"keys\":[...]}: kty oct for HS256, OKP Ed25519 "
     "for EdDSA, EC P-256 for ES256, each with its kid; public keys only). Re-read on SIGHUP. "
     "The terminal secret is kid \"default\".",
     [](settings& s, const value_source& v) { s.cfg.terminal_token_keys = path(v); }},
    {"terminal-token-max-ttl", "SECONDS", "2592000",
     "Terminal JWTs: exp - iat at most (30 days by default); 0: exp optional and unbounded.",
     [](settings& s, const value_source& v) {
         s.cfg.terminal_token_max_ttl =
             static_cast<std::int64_t>(whole_number(v, 0, 10ULL * 366 * 86400));
     }},
    {"terminal-token-skew", "SECONDS", "60",
     "Terminal JWTs: clock skew allowed on exp, nbf and iat, 0 to 3600.",
     [](settings& s, const value_source& v) {
         s.cfg.terminal_token_skew = static_cast<std::int64_t>(whole_number(v, 0, 3600));
     }},
    {"terminal-token-audience", "TEXT", "posrelay",
     "Terminal JWTs must name this in aud (a string or an array of strings), or off: aud "
     "not checked. 1-128 printable ASCII characters.",
     [](settings& s, const value_source& v) {
         if (v.value == "off") {
             s.cfg.terminal_token_audience.clear();
             return;
         }
         if (v.value.empty() || v.value.size() > 128 ||
             std::any_of(v.value.begin(), v.value.end(),
                         [](char c) { return c < 0x21 || c > 0x7e || c == '"' || c == '\\'; }))
             invalid(v, "expected 1-128 printable ASCII characters without quotes, or off");
         s.cfg.terminal_token_audience = v.value;
     }},
    {"terminal-token-v1", "BOOL", "true",
     "true or false. Accept v1 terminal tokens (no expiry, no kid) for migration; counted in "
     "posrelay_terminal_token_checks_total{kind=\"v1\"}. Set false once that stays at 0.",
     [](settings& s, const value_source& v) { s.cfg.terminal_token_v1 = boolean(v); }},
    {"terminal-revocation-ttl", "DUR", "30d",
     "How long a terminal's (or store's) revocation is kept in Redis: at least the longest "
     "token lifetime plus the clock skew allowance (v1 tokens never expire: retire them).",
     [](settings& s, const value_source& v) { s.cfg.terminal_revocation_ttl = timeout(v, false); }},
    {"terminal-max-observers", "N", "4",
     "Observer sessions (tokens with the observe claim) per terminal on one node, 0 to 64.",
     [](settings& s, const value_source& v) {
         s.cfg.terminal_max_observers = whole_number(v, 0, 64);
     }},
    {"terminal-socket-send-buffer", "N", "0",
     "SO_SNDBUF of terminal sockets in bytes; 0 keeps the kernel's default.",
     [](settings& s, const value_source& v) {
         s.cfg.terminal_socket_send_buffer = whole_number(v, 0, 64 * 1024 * 1024);
     }},
    {"server-key-file", "PATH", "none",
     "File holding the default Midtrans server key (surrounding whitespace ignored). "
     "Alternative to POSRELAY_SERVER_KEY.",
     [](settings& s, const value_source& v) {
         path(v);
         s.server_key_file = v;
     }},
    {"merchant-keys-file", "PATH", "none",
     "File of `merchant_id server_key` lines for merchants with their own key; '#' comments "
     "and blank lines ignored. Merged with POSRELAY_MERCHANT_KEYS.",
     [](settings& s, const value_source& v) {
         path(v);
         s.merchant_keys_file = v;
     }},
    {"operator-token-file", "PATH", "none",
     "File holding the operator API's bearer token (a trailing newline is ignored). "
     "Alternative to POSRELAY_OPERATOR_TOKEN.",
     [](settings& s, const value_source& v) {
         path(v);
         s.operator_token_file = v;
     }},
    {"terminal-secret-file", "PATH", "none",
     "File holding the key of the terminal tokens (a trailing newline is ignored). "
     "Alternative to POSRELAY_TERMINAL_SECRET.",
     [](settings& s, const value_source& v) {
         path(v);
         s.terminal_secret_file = v;
     }},
    {"redis-password-file", "PATH", "none",
     "File holding the Redis password (a trailing newline is ignored). Alternative to "
     "POSRELAY_REDIS_PASSWORD.",
     [](settings& s, const value_source& v) {
         path(v);
         s.redis_password_file = v;
     }},
    {"redis-sentinel-password-file", "PATH", "none",
     "File holding the password of the sentinels themselves (redis-sentinel://; the master's "
     "is POSRELAY_REDIS_PASSWORD). Alternative to POSRELAY_REDIS_SENTINEL_PASSWORD.",
     [](settings& s, const value_source& v) {
         path(v);
         s.redis_sentinel_password_file = v;
     }},
};

// WAIT runs on the commit's connection: its command timeout must leave it time to answer.
void check_replica_ack(const config& c) {
    if (c.redis_min_replicas_ack > 0 && c.redis_replicas_ack_timeout >= c.redis_command_timeout)
        throw config_error(
            "--redis-replicas-ack-timeout must be less than --redis-command-timeout");
}

// The admin listener on the port of another listener would share it (SO_REUSEPORT) and
// take part of that listener's traffic, or all of it for a more specific address: refused.
void check_admin_port(const config& c) {
    if (!c.admin_listen || c.admin_listen->port == 0) return;
    const std::pair<std::string_view, const std::optional<endpoint>*> others[] = {
        {"listen", nullptr},
        {"terminal-listen", &c.terminal_listen},
        {"terminal-tls-listen", &c.terminal_tls_listen}};
    for (const auto& [name, ep] : others) {
        const std::uint16_t port = ep == nullptr ? c.listen.port : (*ep ? (*ep)->port : 0);
        if (port == c.admin_listen->port)
            throw config_error("admin-listen and " + std::string(name) + " use the same port " +
                               std::to_string(port) +
                               ": give the admin listener a port of its own");
    }
}

// A PROXY header is accepted only from a trusted proxy: with none, the option is a mistake.
void check_proxy_protocol(const config& c) {
    if ((c.proxy_protocol || c.terminal_proxy_protocol) && c.trusted_proxies.empty())
        throw config_error(
            std::string(c.proxy_protocol ? "--proxy-protocol" : "--terminal-proxy-protocol") +
            " needs --trusted-proxies: only those peers may send a PROXY header");
}

std::string env_name(std::string_view option) {
    std::string out(env_prefix);
    for (char c : option)
        out += c == '-' ? '_' : static_cast<char>(std::toupper(c));
    return out;
}

const option_spec* find_option(std::string_view name) {
    for (const auto& o : option_table) {
        if (o.name == name) return &o;
    }
    return nullptr;
}

// POSRELAY_FOO_BAR -> "foo-bar" when that is an option, "" otherwise (not an option).
std::string env_name_mapper(std::string_view var) {
    if (!var.starts_with(env_prefix)) return {};
    std::string name;
    for (char c : var.substr(env_prefix.size()))
        name += c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    // Only upper-case spellings map: POSRELAY_io_threads is not an option name.
    if (env_name(name) != var || find_option(name) == nullptr) return {};
    return name;
}

bool read_directly(std::string_view var) {
    for (auto known : known_secret_env) {
        if (var == known) return true;
    }
    for (auto suffix : secret_env_suffixes) {
        if (var.ends_with(suffix)) return true;
    }
    return false;
}

po::options_description describe(bool for_file, bool with_cli_flags) {
    po::options_description desc;
    if (with_cli_flags) desc.add_options()("help,h", "")("version", "")("print-example-config", "");
    for (const auto& o : option_table) {
        if (for_file && !o.in_file) continue;
        desc.add_options()(std::string(o.name).c_str(), po::value<std::string>(), "");
    }
    return desc;
}

// ---- help ------------------------------------------------------------------------------

// Appends `text` word-wrapped to 90 columns, every line indented by six spaces.
void append_wrapped(std::string& out, std::string_view text) {
    constexpr std::size_t width = 90;
    constexpr std::string_view indent = "      ";
    std::size_t column = 0;
    while (!text.empty()) {
        const auto space = text.find(' ');
        const auto word = text.substr(0, space);
        text = space == std::string_view::npos ? std::string_view{} : text.substr(space + 1);
        if (column > 0 && column + 1 + word.size() > width) {
            out += '\n';
            column = 0;
        }
        if (column == 0) {
            out += indent;
            column = indent.size();
        } else {
            out += ' ';
            ++column;
        }
        out += word;
        column += word.size();
    }
    out += '\n';
}

std::string help_text() {
    std::string out = std::string("Usage: ") + program + " [OPTIONS]\n\n" +
                      "Relays Midtrans payment notifications to point-of-sale terminals.\n\n"
                      "Each option is taken from the first of these that sets it:\n"
                      "  1. the command-line flag        --max-connections=500\n"
                      "  2. the environment variable     POSRELAY_MAX_CONNECTIONS=500\n"
                      "  3. the config file (--config)   max-connections = 500\n"
                      "  4. the default shown below.\n"
                      "Empty environment variables are ignored. DUR is 250ms, 10s, 2m, 1h or a "
                      "number of seconds.\n\n"
                      "Secrets are never accepted on the command line. The default Midtrans "
                      "server key comes from\nPOSRELAY_SERVER_KEY or --server-key-file (not "
                      "both); keys of individual merchants from\n"
                      "POSRELAY_MERCHANT_KEYS=\"M1:key1,M2:key2\" and/or "
                      "--merchant-keys-file.\n\n"
                      "Options:\n"
                      "  -h, --help\n      Show this help and exit.\n"
                      "  --version\n      Print the version and exit.\n"
                      "  --print-example-config\n      Print an environment file (systemd "
                      "EnvironmentFile=) with every option\n      below commented out, and exit.\n";
    for (const auto& o : option_table) {
        out += "  --";
        out += o.name;
        out += ' ';
        out += o.value_name;
        out += '\n';
        append_wrapped(out, o.help);
        out += "      default: ";
        out += o.default_text;
        out += "; env: ";
        out += env_name(o.name);
        if (!o.in_file) out += "; not in the config file";
        out += '\n';
    }
    out +=
        "\nSecrets (the environment, or the file options above; never flags or the config file):\n"
        "  POSRELAY_SERVER_KEY\n      The default Midtrans server key (or --server-key-file).\n"
        "  POSRELAY_MERCHANT_KEYS\n      Per-merchant keys, \"M1:key1,M2:key2\" (and/or "
        "--merchant-keys-file).\n"
        "  POSRELAY_OPERATOR_TOKEN\n      Bearer token of the operator API (/v1/orders) (or "
        "--operator-token-file); unset:\n      the API answers 403.\n"
        "  POSRELAY_REDIS_PASSWORD\n      Redis password, overrides one in the URL (or "
        "--redis-password-file).\n"
        "  POSRELAY_REDIS_SENTINEL_PASSWORD\n      The sentinels' password with "
        "redis-sentinel:// (or --redis-sentinel-password-file).\n"
        "  POSRELAY_TERMINAL_SECRET\n      Key of the terminal tokens (posrelay token TERMINAL "
        "STORE) (or --terminal-secret-file);\n"
        "      HS256 kid \"default\"; unset and no --terminal-token-keys: terminals cannot "
        "connect.\n"
        "A variable and the matching file option are mutually exclusive (the merchant keys are "
        "merged).\nsystemd credentials: when $CREDENTIALS_DIRECTORY is set, the files server-key, "
        "merchant-keys,\noperator-token, terminal-secret, redis-password and "
        "redis-sentinel-password there are read\nfor each secret no variable or file option "
        "sets.\n"
        "\nSIGHUP reloads the configuration: the same flags and environment, the files read "
        "again.\nApplied live: the server and merchant keys, the operator token, the terminal "
        "secret and token keys (--terminal-token-*),\nthe terminal TLS certificate, key and client "
        "CA (new handshakes), and "
        "--log-level. Other changed\noptions are logged as needing a restart and keep their "
        "running value. A reload that fails\nkeeps the running configuration.\n"
        "\nSubcommands:\n"
        "  posrelay check-config [OPTIONS]\n      Load the configuration as a start would, "
        "validate it and print it (secrets redacted);\n      exit 0 when valid, 2 otherwise.\n"
        "  posrelay token TERMINAL STORE [--ttl SECONDS] [--kid K] [--observe] ...\n      Mint "
        "a terminal token (a JWT) with POSRELAY_TERMINAL_SECRET; --help for more.\n";
    return out;
}

// An EnvironmentFile= for systemd (or `set -a; . FILE`): every option as a commented-out
// POSRELAY_<NAME>=<default> line under its help text. Generated from the option table, so the
// shipped /etc/posrelay/posrelay.conf cannot miss an option.
std::string example_config_text() {
    std::string out =
        "# posrelay configuration: environment variables, read by the systemd unit\n"
        "# (EnvironmentFile=/etc/posrelay/posrelay.conf). Generated by `posrelay "
        "--print-example-config`.\n"
        "# Uncomment a line to change an option; see posrelay(1) for the order of precedence.\n"
        "# Secrets do not belong here: the unit passes them as systemd credentials (files\n"
        "# server-key, merchant-keys, operator-token, terminal-secret, redis-password,\n"
        "# redis-sentinel-password in\n"
        "# /etc/posrelay/credentials/, see LoadCredential= in posrelay.service).\n";
    for (const auto& o : option_table) {
        out += "\n# --";
        out += o.name;
        out += ' ';
        out += o.value_name;
        out += '\n';
        std::string wrapped;
        append_wrapped(wrapped, o.help);
        for (std::size_t start = 0; start < wrapped.size();) {
            const auto end = wrapped.find('\n', start);
            out += "#  ";
            out += std::string_view(wrapped).substr(start + 6, end - start - 6);
            out += '\n';
            start = end + 1;
        }
        out += "#";
        out += env_name(o.name);
        out += '=';
        if (!o.default_text.starts_with("none")) out += o.default_text;  // none: unset
        out += '\n';
    }
    return out;
}

// ---- reading files ---------------------------------------------------------------------

// Reads a whole (small) file; `what` names it in errors, e.g. "--server-key-file".
std::string read_file(const std::string& file, const std::string& what) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw config_error("cannot open " + what + " '" + file + "': " + std::strerror(errno));
    std::string out;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int err = errno;
            ::close(fd);
            throw config_error("cannot read " + what + " '" + file + "': " + std::strerror(err));
        }
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
        if (out.size() > (1u << 20)) {
            ::close(fd);
            throw config_error(what + " '" + file + "' is larger than 1 MiB");
        }
    }
    ::close(fd);
    return out;
}

bool is_space(char c) {
    return std::isspace(static_cast<unsigned char>(c)) != 0;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front()))
        s.remove_prefix(1);
    while (!s.empty() && is_space(s.back()))
        s.remove_suffix(1);
    return s;
}

std::vector<std::string_view> split_ws(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && is_space(s[i]))
            ++i;
        const auto start = i;
        while (i < s.size() && !is_space(s[i]))
            ++i;
        if (i > start) out.push_back(s.substr(start, i - start));
    }
    return out;
}

// ---- the three sources -----------------------------------------------------------------

// Options that look like an attempt to pass a secret get a pointer to the right place.
std::string secret_hint(std::string_view name) {
    std::string lower;
    for (char c : name)
        lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (std::string_view word : {"key", "secret", "token", "password"}) {
        if (lower.find(word) != std::string::npos)
            return "; secrets are never accepted on the command line or in the config file: "
                   "use POSRELAY_SERVER_KEY or --server-key-file, POSRELAY_MERCHANT_KEYS or "
                   "--merchant-keys-file (likewise --operator-token-file, --terminal-secret-file, "
                   "--redis-password-file)";
    }
    return {};
}

// "--server-key=SECRET" -> "--server-key"; "-sSECRET" -> "-s...": po puts the whole token
// in its message, and that token may hold a secret.
std::string flag_name_only(std::string_view token) {
    if (token.starts_with("--")) return std::string(token.substr(0, token.find('=')));
    if (token.size() > 2) return std::string(token.substr(0, 2)) + "...";
    return std::string(token);
}

po::variables_map parse_command_line(int argc, const char* const* argv) {
    const auto desc = describe(false, true);
    // No guessing: with it, "--server-key=X" would silently mean --server-key-file=X.
    const int style = po::command_line_style::default_style &
                      ~po::command_line_style::allow_guessing &
                      ~po::command_line_style::allow_sticky;
    po::variables_map vm;
    if (argc < 2) return vm;
    try {
        const auto parsed = po::command_line_parser(argc, argv).options(desc).style(style).run();
        for (const auto& o : parsed.options) {
            // Positional arguments are refused without showing them: one may be a secret.
            if (o.position_key >= 0 || o.string_key.empty())
                throw config_error(
                    "unexpected command-line argument: posrelay takes only --name=value "
                    "options (the argument is not shown: it may be a secret)");
        }
        po::store(parsed, vm);
    } catch (const po::unknown_option& e) {
        const auto name = flag_name_only(e.get_option_name());
        throw config_error("unrecognised option '" + name + "'" + secret_hint(name) +
                           "; see --help");
    } catch (const po::error& e) {
        // The other po errors name only the option ("the required argument for option
        // '--listen' is missing"), never a value.
        throw config_error(std::string("command line: ") + e.what());
    }
    return vm;
}

// The POSRELAY_* environment, as po::parse_environment would read it but from `envp`
// rather than the global `environ` (so callers and tests pass their own). Variables that
// are not options are either read elsewhere (secrets) or reported in `unknown`.
po::variables_map parse_env(const char* const* envp, std::map<std::string, std::string>& raw,
                            std::vector<std::string>& unknown) {
    const auto desc = describe(false, false);
    po::parsed_options parsed(&desc);
    for (auto p = envp; p != nullptr && *p != nullptr; ++p) {
        const std::string_view entry = *p;
        const auto eq = entry.find('=');
        if (eq == std::string_view::npos) continue;
        const auto var = entry.substr(0, eq);
        if (!var.starts_with(env_prefix)) continue;
        const auto value = entry.substr(eq + 1);
        raw[std::string(var)] = std::string(value);
        const auto name = env_name_mapper(var);
        if (name.empty()) {
            if (!read_directly(var)) unknown.emplace_back(var);
            continue;
        }
        if (value.empty()) continue;  // empty variables are ignored (documented in --help)
        po::option o;
        o.string_key = name;
        o.value.emplace_back(value);
        parsed.options.push_back(std::move(o));
    }
    po::variables_map vm;
    try {
        po::store(parsed, vm);
    } catch (const po::error& e) {
        throw config_error(std::string("environment: ") + e.what());
    }
    return vm;
}

po::variables_map parse_file(const std::string& file, const std::string& named_by) {
    const auto text = read_file(file, "config file (" + named_by + ")");
    const auto desc = describe(true, false);
    std::istringstream in(text);
    po::variables_map vm;
    try {
        po::store(po::parse_config_file(in, desc, false), vm);
    } catch (const po::unknown_option& e) {
        const auto name = e.get_option_name();
        throw config_error("unknown option '" + name + "' in config file " + file +
                           secret_hint(name));
    } catch (const po::invalid_config_file_syntax&) {
        // po's message quotes the line, which may hold a secret: find its number instead.
        std::size_t number = 0;
        std::istringstream lines(text);
        for (std::string l; std::getline(lines, l);) {
            ++number;
            const auto body = trim(std::string_view(l).substr(0, l.find('#')));
            if (!body.empty() && !body.starts_with('[') && body.find('=') == std::string::npos)
                break;
        }
        throw config_error(file + ":" + std::to_string(number) + ": expected 'name = value'");
    } catch (const po::error& e) {
        throw config_error("config file " + file + ": " + e.what());
    }
    return vm;
}

// ---- secrets ---------------------------------------------------------------------------

void add_merchant(std::map<std::string, std::string>& origin, config& cfg, std::string id,
                  std::string_view key, const std::string& where) {
    if (const auto it = origin.find(id); it != origin.end())
        throw config_error("merchant_id '" + shown(id) + "' is defined twice (" + it->second +
                           " and " + where + ")");
    origin.emplace(id, where);
    cfg.merchant_keys.emplace(std::move(id), secret(std::string(key)));
}

// A secret from its environment variable or its file (one line; the trailing newline is
// dropped), never both; nullopt when neither is set.
std::optional<secret> one_secret(const std::map<std::string, std::string>& env, const char* var,
                                 const std::optional<value_source>& file) {
    const auto it = env.find(var);
    const bool have_env = it != env.end() && !it->second.empty();
    if (have_env && file)
        throw config_error(std::string(var) + " and " + file->label +
                           " are mutually exclusive: set only one");
    if (have_env) return secret(it->second);
    if (!file) return std::nullopt;
    std::string text = read_file(file->value, file->label);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
        text.pop_back();
    if (text.empty()) throw config_error(file->label + " '" + file->value + "' is empty");
    if (text.find('\n') != std::string::npos)
        throw config_error(file->label + " '" + file->value + "' must hold one line");
    return secret(std::move(text));
}

// systemd credentials: $CREDENTIALS_DIRECTORY/<name> stands in for a secret's file when
// neither its file option nor its environment variable is set.
void use_credentials(settings& s, const std::map<std::string, std::string>& env,
                     const char* const* envp) {
    std::string dir;
    for (auto p = envp; p != nullptr && *p != nullptr; ++p) {
        const std::string_view entry = *p;
        if (entry.starts_with("CREDENTIALS_DIRECTORY=")) dir = entry.substr(22);
    }
    if (dir.empty()) return;
    struct slot {
        std::string_view name;
        const char* var;
        std::optional<value_source> settings::*file;
        std::string_view option;
    };
    const slot slots[] = {
        {"server-key", "POSRELAY_SERVER_KEY", &settings::server_key_file, "server-key-file"},
        {"merchant-keys", "POSRELAY_MERCHANT_KEYS", &settings::merchant_keys_file,
         "merchant-keys-file"},
        {"operator-token", "POSRELAY_OPERATOR_TOKEN", &settings::operator_token_file,
         "operator-token-file"},
        {"terminal-secret", "POSRELAY_TERMINAL_SECRET", &settings::terminal_secret_file,
         "terminal-secret-file"},
        {"redis-password", "POSRELAY_REDIS_PASSWORD", &settings::redis_password_file,
         "redis-password-file"},
        {"redis-sentinel-password", "POSRELAY_REDIS_SENTINEL_PASSWORD",
         &settings::redis_sentinel_password_file, "redis-sentinel-password-file"},
    };
    for (const auto& sl : slots) {
        const auto it = env.find(sl.var);
        if ((s.*sl.file) || (it != env.end() && !it->second.empty())) continue;
        const std::string file = dir + "/" + std::string(sl.name);
        if (::access(file.c_str(), F_OK) != 0) continue;
        s.*sl.file = value_source{file, "$CREDENTIALS_DIRECTORY/" + std::string(sl.name)};
        for (auto& o : s.cfg.options) {
            if (o.name == sl.option) o = {o.name, file, option_source::credentials};
        }
    }
}

void load_secrets(settings& s, const std::map<std::string, std::string>& env) {
    // Default server key: the environment or a file, never both.
    const auto env_key = env.find("POSRELAY_SERVER_KEY");
    const bool have_env_key = env_key != env.end() && !env_key->second.empty();
    if (have_env_key && s.server_key_file)
        throw config_error("POSRELAY_SERVER_KEY and " + s.server_key_file->label +
                           " are mutually exclusive: set only one");
    if (have_env_key) {
        const auto key = trim(env_key->second);
        if (key.empty()) throw config_error("POSRELAY_SERVER_KEY holds only whitespace");
        s.cfg.default_server_key = secret(std::string(key));
    } else if (s.server_key_file) {
        const auto& file = s.server_key_file->value;
        const auto text = read_file(file, s.server_key_file->label);
        const auto key = trim(text);
        if (key.empty()) throw config_error(s.server_key_file->label + " '" + file + "' is empty");
        if (split_ws(key).size() != 1)
            throw config_error(s.server_key_file->label + " '" + file +
                               "' must hold one key on one line");
        s.cfg.default_server_key = secret(std::string(key));
    }

    if (auto v = one_secret(env, "POSRELAY_OPERATOR_TOKEN", s.operator_token_file))
        s.cfg.operator_token = std::move(*v);
    if (auto v = one_secret(env, "POSRELAY_TERMINAL_SECRET", s.terminal_secret_file))
        s.cfg.terminal_secret = std::move(*v);
    if (auto v = one_secret(env, "POSRELAY_REDIS_PASSWORD", s.redis_password_file))
        s.cfg.redis_password = std::move(*v);
    if (auto v =
            one_secret(env, "POSRELAY_REDIS_SENTINEL_PASSWORD", s.redis_sentinel_password_file))
        s.cfg.redis_sentinel_password = std::move(*v);

    // Per-merchant keys: the file and the environment together, each merchant once.
    std::map<std::string, std::string> origin;  // merchant_id -> where it was defined
    if (s.merchant_keys_file) {
        const auto& file = s.merchant_keys_file->value;
        const auto text = read_file(file, s.merchant_keys_file->label);
        std::istringstream lines(text);
        std::size_t number = 0;
        for (std::string l; std::getline(lines, l);) {
            ++number;
            const auto body = trim(l);
            if (body.empty() || body.starts_with('#')) continue;
            const auto fields = split_ws(body);
            const auto where = file + ":" + std::to_string(number);
            if (fields.size() != 2)
                throw config_error(where + ": expected 'merchant_id server_key'");
            add_merchant(origin, s.cfg, std::string(fields[0]), fields[1], where);
        }
    }
    if (const auto it = env.find("POSRELAY_MERCHANT_KEYS"); it != env.end()) {
        std::string_view rest = it->second;
        std::size_t number = 0;
        while (!rest.empty()) {
            const auto comma = rest.find(',');
            const auto entry = trim(rest.substr(0, comma));
            rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
            ++number;
            if (entry.empty()) continue;  // "M1:k1," or ",,"
            const auto colon = entry.find(':');
            const auto id =
                colon == std::string_view::npos ? std::string_view{} : trim(entry.substr(0, colon));
            const auto key = colon == std::string_view::npos ? std::string_view{}
                                                             : trim(entry.substr(colon + 1));
            if (id.empty() || key.empty() || split_ws(id).size() != 1 || split_ws(key).size() != 1)
                throw config_error("POSRELAY_MERCHANT_KEYS: entry " + std::to_string(number) +
                                   " is not 'merchant_id:server_key'");
            add_merchant(origin, s.cfg, std::string(id), key, "POSRELAY_MERCHANT_KEYS");
        }
    }
}

// Highest precedence first: the first source that sets an option wins. Records every
// option's value and source in s.cfg.options.
void apply_options(settings& s, const po::variables_map& flags, const po::variables_map& env,
                   const po::variables_map& from_file, const std::string& file) {
    for (const auto& o : option_table) {
        const std::string name(o.name);
        const po::variables_map* from = nullptr;
        std::string label;
        option_source source = option_source::default_value;
        if (flags.count(name) > 0)
            from = &flags, label = "--" + name, source = option_source::flag;
        else if (env.count(name) > 0)
            from = &env, label = env_name(name), source = option_source::env;
        else if (from_file.count(name) > 0)
            from = &from_file, label = file + ":" + name, source = option_source::file;
        if (from == nullptr) {
            s.cfg.options.push_back({name, std::string(o.default_text), source});
            continue;
        }
        const auto value = (*from)[name].as<std::string>();
        o.apply(s, {value, label});
        s.cfg.options.push_back({name, value, source});
    }
}

}  // namespace

// ---- load_config -----------------------------------------------------------------------

cli_result load_config(int argc, const char* const* argv, const char* const* envp) {
    cli_result result;
    const auto flags = parse_command_line(argc, argv);
    if (flags.count("help") > 0) {
        result.action = cli_action::help;
        result.help_text = help_text();
        return result;
    }
    if (flags.count("version") > 0) {
        result.action = cli_action::version;
        return result;
    }
    if (flags.count("print-example-config") > 0) {
        result.action = cli_action::example_config;
        result.help_text = example_config_text();
        return result;
    }

    settings s;
    std::map<std::string, std::string> raw_env;  // every POSRELAY_* variable
    const auto env = parse_env(envp, raw_env, s.cfg.unknown_env);

    // The file is named by a flag or the environment; it cannot name itself.
    std::string file;
    std::string file_named_by;
    if (flags.count("config") > 0) {
        file = flags["config"].as<std::string>();
        file_named_by = "--config";
    } else if (env.count("config") > 0) {
        file = env["config"].as<std::string>();
        file_named_by = "POSRELAY_CONFIG";
    }
    po::variables_map from_file;
    if (!file.empty()) from_file = parse_file(file, file_named_by);

    apply_options(s, flags, env, from_file, file);
    use_credentials(s, raw_env, envp);
    load_secrets(s, raw_env);
    check_admin_port(s.cfg);
    check_proxy_protocol(s.cfg);
    check_replica_ack(s.cfg);
    result.cfg = std::move(s.cfg);
    return result;
}

// ---- reload and check-config -----------------------------------------------------------

std::string_view to_string(option_source s) noexcept {
    switch (s) {
        case option_source::default_value:
            return "default";
        case option_source::env:
            return "env";
        case option_source::file:
            return "file";
        case option_source::flag:
            return "flag";
        case option_source::credentials:
            return "credentials";
    }
    return "unknown";
}

bool reloadable_option(std::string_view name) noexcept {
    for (std::string_view live :
         {"log-level", "server-key-file", "merchant-keys-file", "operator-token-file",
          "terminal-secret-file", "terminal-tls-cert", "terminal-tls-key", "terminal-tls-client-ca",
          "terminal-token-keys", "terminal-token-max-ttl", "terminal-token-skew",
          "terminal-token-audience", "terminal-token-v1"}) {
        if (name == live) return true;
    }
    return false;
}

namespace {
bool same_keys(const config& a, const config& b) {
    if (a.merchant_keys.size() != b.merchant_keys.size()) return false;
    for (auto i = a.merchant_keys.begin(), j = b.merchant_keys.begin(); i != a.merchant_keys.end();
         ++i, ++j) {
        if (i->first != j->first || i->second.view() != j->second.view()) return false;
    }
    return true;
}
}  // namespace

reload_plan plan_reload(const config& before, const config& after) {
    reload_plan p;
    for (std::size_t i = 0; i < after.options.size(); ++i) {
        const auto& o = after.options[i];
        if (i < before.options.size() && before.options[i].name == o.name &&
            before.options[i].value == o.value)
            continue;
        (reloadable_option(o.name) ? p.live : p.needs_restart).push_back(o.name);
    }
    // A secret that appears or disappears turns a feature on or off: that needs a restart
    // (the terminal gateway, charges and polls start only with theirs).
    auto secret_changed = [&](std::string_view name, const secret& a, const secret& b,
                              bool live_when_both_set) {
        if (a.view() == b.view()) return;
        const bool live = live_when_both_set && !a.empty() && !b.empty();
        (live ? p.secrets : p.needs_restart).emplace_back(name);
    };
    secret_changed("server-key", before.default_server_key, after.default_server_key, true);
    if (!same_keys(before, after)) p.secrets.emplace_back("merchant-keys");
    // The operator API is served with the Redis store whether or not a token is set.
    if (before.operator_token.view() != after.operator_token.view())
        p.secrets.emplace_back("operator-token");
    secret_changed("terminal-secret", before.terminal_secret, after.terminal_secret, true);
    secret_changed("redis-password", before.redis_password, after.redis_password, false);
    secret_changed("redis-sentinel-password", before.redis_sentinel_password,
                   after.redis_sentinel_password, false);
    return p;
}

config apply_live(const config& running, const config& fresh, const reload_plan& plan) {
    config out = running;
    auto has = [](const std::vector<std::string>& v, std::string_view n) {
        return std::find(v.begin(), v.end(), n) != v.end();
    };
    out.log_level = fresh.log_level;
    out.terminal_tls_cert = fresh.terminal_tls_cert;
    out.terminal_tls_key = fresh.terminal_tls_key;
    out.terminal_tls_client_ca = fresh.terminal_tls_client_ca;
    out.terminal_token_keys = fresh.terminal_token_keys;
    out.terminal_token_max_ttl = fresh.terminal_token_max_ttl;
    out.terminal_token_skew = fresh.terminal_token_skew;
    out.terminal_token_audience = fresh.terminal_token_audience;
    out.terminal_token_v1 = fresh.terminal_token_v1;
    if (has(plan.secrets, "server-key")) out.default_server_key = fresh.default_server_key;
    if (has(plan.secrets, "merchant-keys")) out.merchant_keys = fresh.merchant_keys;
    if (has(plan.secrets, "operator-token")) out.operator_token = fresh.operator_token;
    if (has(plan.secrets, "terminal-secret")) out.terminal_secret = fresh.terminal_secret;
    for (std::size_t i = 0; i < out.options.size() && i < fresh.options.size(); ++i) {
        if (reloadable_option(out.options[i].name)) out.options[i] = fresh.options[i];
    }
    return out;
}

namespace {
// redis://user:password@host -> redis://user:<redacted>@host (a URL may carry a password).
std::string without_password(std::string_view url) {
    const auto scheme = url.find("://");
    const auto at = url.rfind('@');
    if (scheme == std::string_view::npos || at == std::string_view::npos || at < scheme)
        return std::string(url);
    const auto userinfo = url.substr(scheme + 3, at - scheme - 3);
    const auto colon = userinfo.find(':');
    const std::string user(colon == std::string_view::npos ? std::string_view{}
                                                           : userinfo.substr(0, colon));
    return std::string(url.substr(0, scheme + 3)) + user + ":<redacted>" +
           std::string(url.substr(at));
}
}  // namespace

std::string render_effective(const config& c) {
    std::string out =
        "# posrelay check-config: the effective configuration; each line's comment names its\n"
        "# source (default, env, file, flag, credentials). Secrets are never shown.\n";
    for (const auto& o : c.options) {
        const option_spec* spec = find_option(o.name);
        const bool no_value = o.source == option_source::default_value &&
                              std::string_view(o.value).starts_with("none");
        const bool commented = no_value || spec == nullptr || !spec->in_file;
        const std::string value = o.name == "redis-url" ? without_password(o.value) : o.value;
        out += (commented ? "# " : "") + o.name + " = " + value + "  # " +
               std::string(to_string(o.source)) + "\n";
    }
    auto state = [](const secret& s) { return s.empty() ? "<unset>" : "<set>"; };
    out += "# secrets\n# server-key = ";
    out += state(c.default_server_key);
    out += "\n# merchant-keys = ";
    out += c.merchant_keys.empty()
               ? std::string("<unset>")
               : "<redacted, " + std::to_string(c.merchant_keys.size()) + " merchant keys>";
    out += "\n# operator-token = ";
    out += state(c.operator_token);
    out += "\n# terminal-secret = ";
    out += state(c.terminal_secret);
    out += "\n# redis-password = ";
    out += state(c.redis_password);
    out += "\n# redis-sentinel-password = ";
    out += state(c.redis_sentinel_password);
    out += '\n';
    return out;
}

}  // namespace posrelay
