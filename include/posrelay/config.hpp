// posrelay's configuration: built-in defaults < config file < POSRELAY_* environment
// variables < command-line flags. Secrets (server keys) come only from the environment or
// from files, never from argv, and are never printed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "posrelay/log.hpp"

namespace posrelay {

// A secret string: no operator<<, no formatting; use view() only where the secret is used.
class secret {
public:
    secret() = default;
    explicit secret(std::string v) : v_(std::move(v)) {}
    [[nodiscard]] std::string_view view() const noexcept { return v_; }
    [[nodiscard]] bool empty() const noexcept { return v_.empty(); }

private:
    std::string v_;
};

// A secret a reload (SIGHUP) may replace: a reader takes one snapshot per check. Thread-safe;
// get() never waits on the reload's file reading.
class secret_slot {
public:
    explicit secret_slot(secret s = {}) : v_(std::make_shared<const secret>(std::move(s))) {}
    [[nodiscard]] std::shared_ptr<const secret> get() const noexcept { return v_.load(); }
    void set(secret s) { v_.store(std::make_shared<const secret>(std::move(s))); }

private:
    std::atomic<std::shared_ptr<const secret>> v_;
};

// HOST:PORT; HOST may be an IPv4 address, a bracketed IPv6 address or a name
// (resolved at start-up). Port 0 picks a free port (logged at start-up).
struct endpoint {
    std::string host;
    std::uint16_t port = 0;
    [[nodiscard]] std::string to_string() const;
};
// Parses "HOST:PORT" / "[v6]:PORT"; throws std::invalid_argument with a reason.
[[nodiscard]] endpoint parse_endpoint(std::string_view s);
// Parses "250ms", "10s", "2m", "1h", "7d" or a bare number of seconds ("1.5"); throws
// std::invalid_argument. Negative durations are refused.
[[nodiscard]] std::chrono::milliseconds parse_duration(std::string_view s);

// Where an option's value came from (check-config prints it; a reload compares them).
enum class option_source : std::uint8_t { default_value, env, file, flag, credentials };
[[nodiscard]] std::string_view to_string(option_source s) noexcept;
struct effective_option {
    std::string name;   // the long option name, e.g. "io-threads"
    std::string value;  // as given, or the default as --help shows it
    option_source source = option_source::default_value;
    bool operator==(const effective_option&) const = default;
};

struct config {
    std::string config_file;  // --config; "" when none
    endpoint listen{"0.0.0.0", 8080};
    // Metrics, health, readiness and the operator API on their own listener; nullopt ("off"):
    // --listen serves them too.
    std::optional<endpoint> admin_listen;
    std::size_t admin_max_connections = 64;
    unsigned io_threads = 0;  // 0: one per usable core (one fewer with the embedded Redis)
    std::size_t max_connections = 10000;
    std::chrono::milliseconds header_timeout{10'000};
    std::chrono::milliseconds body_timeout{10'000};
    std::chrono::milliseconds idle_timeout{75'000};
    std::chrono::milliseconds write_timeout{10'000};
    std::chrono::milliseconds shutdown_timeout{10'000};
    std::size_t max_header_bytes = 8 * 1024;
    std::size_t max_body_bytes = 64 * 1024;
    log::level log_level = log::level::info;
    bool audit_log = true;  // one info line per accepted notification
    // Peers believed about a client's address (X-Forwarded-For, PROXY headers): CIDR list,
    // validated at load ("" = none; net::parse_cidr_list reads it).
    std::string trusted_proxies;
    bool proxy_protocol = false;           // --listen: PROXY header from trusted peers
    bool terminal_proxy_protocol = false;  // terminal TCP/TLS listeners: likewise

    // Midtrans server keys: the default (POSRELAY_SERVER_KEY or --server-key-file) and
    // per merchant_id (POSRELAY_MERCHANT_KEYS or --merchant-keys-file).
    secret default_server_key;
    std::map<std::string, secret, std::less<>> merchant_keys;

    // The store. "redis" (default) or "memory" (for tests and benchmarks: nothing survives
    // a restart). With "redis" and no URL, posrelay runs its own redis-server in data_dir.
    std::string store = "redis";
    std::string redis_url;  // redis://[user:pass@]host:port[/db] or unix:///path; "" = embedded
    std::string data_dir = "posrelay-data";
    std::string redis_server = "redis-server";   // the embedded server's binary (PATH lookup)
    std::string redis_appendfsync = "everysec";  // embedded: always | everysec | no
    std::string redis_config;                    // embedded: extra redis.conf ("" = none)
    bool redis_aof_rewrite_scheduled = true;     // embedded: posrelay schedules AOF rewrites
    std::uint64_t redis_aof_min_size = 64ULL * 1024 * 1024;      // bytes: not due below
    std::uint64_t redis_aof_quiet_rate = 64 * 1024;              // bytes/s: quiet below
    std::uint64_t redis_aof_max_growth = 1024ULL * 1024 * 1024;  // bytes: rewrite anyway
    std::chrono::milliseconds redis_connect_timeout{2'000};
    std::chrono::milliseconds redis_command_timeout{2'000};
    std::chrono::milliseconds dedup_ttl{7LL * 24 * 3600 * 1000};
    std::chrono::milliseconds order_ttl{30LL * 24 * 3600 * 1000};
    std::chrono::milliseconds stream_ttl{7LL * 24 * 3600 * 1000};
    std::size_t history_max = 32;
    std::size_t stream_maxlen = 10'000;
    secret redis_password;  // POSRELAY_REDIS_PASSWORD (overrides a password in the URL)
    // redis-sentinel://: the sentinels' own password (POSRELAY_REDIS_SENTINEL_PASSWORD).
    secret redis_sentinel_password;
    // A write answered as done waits for this many replicas (WAIT), at most this long.
    unsigned redis_min_replicas_ack = 0;
    std::chrono::milliseconds redis_replicas_ack_timeout{500};

    // Operator HTTP API bearer token (POSRELAY_OPERATOR_TOKEN); empty: the API is disabled.
    secret operator_token;

    // Midtrans Core API client and the terminal charge flow.
    std::string midtrans_url = "https://api.sandbox.midtrans.com";
    std::string public_url;  // posrelay's external base URL; "" = charges disabled
    std::chrono::milliseconds midtrans_connect_timeout{5'000};
    std::chrono::milliseconds midtrans_timeout{15'000};
    std::size_t midtrans_max_inflight = 512;
    std::string midtrans_ca_file;
    std::chrono::milliseconds status_refresh_after{10'000};
    std::size_t qr_cache_bytes = 16 * 1024 * 1024;

    // The status-poll fallback (include/posrelay/poll/scheduler.hpp).
    unsigned poll_rate = 10;
    unsigned poll_burst = 1;
    std::chrono::milliseconds poll_first_delay{10'000};
    std::chrono::milliseconds poll_max_interval{60'000};
    std::chrono::milliseconds poll_lease{30'000};
    std::chrono::milliseconds poll_grace{10 * 60'000};
    std::chrono::milliseconds expire_below{15 * 60'000};
    std::size_t poll_concurrency = 32;
    // Paid is confirmed with Midtrans (include/posrelay/midtrans/confirmation.hpp).
    bool confirm_paid = true;

    // Terminal gateway (proto-docs/terminal-protocol.md). Off without POSRELAY_TERMINAL_SECRET.
    std::optional<endpoint> terminal_listen = endpoint{"0.0.0.0", 7070};  // nullopt: "off"
    std::optional<endpoint> terminal_tls_listen;
    std::string terminal_tls_cert;
    std::string terminal_tls_key;
    std::string terminal_tls_client_ca;
    std::string pos_page;  // --pos-page: the browser POS page's directory ("": not served)
    std::size_t terminal_max_connections = 20'000;
    std::chrono::milliseconds terminal_handshake_timeout{10'000};
    std::chrono::milliseconds terminal_heartbeat{15'000};
    std::chrono::milliseconds terminal_write_timeout{10'000};
    std::size_t terminal_max_frame_bytes = 16 * 1024;
    std::size_t terminal_send_queue_bytes = 1024 * 1024;
    std::size_t terminal_send_queue_frames = 4096;
    std::size_t terminal_max_inflight = 1000;
    std::size_t terminal_auth_failures_per_minute = 10;
    std::size_t terminal_socket_send_buffer = 0;
    secret terminal_secret;  // POSRELAY_TERMINAL_SECRET
    // Terminal JWTs (fanout/token_verifier.hpp); all reloadable (the key file is re-read).
    std::string terminal_token_keys;                   // JWK set file; "": none
    std::int64_t terminal_token_max_ttl = 30 * 86400;  // seconds; 0: exp optional
    std::int64_t terminal_token_skew = 60;             // seconds
    std::string terminal_token_audience = "posrelay";  // "": aud not checked
    bool terminal_token_v1 = true;                     // v1 tokens accepted

    // A revocation is kept this long (proto-docs/redis-keys.md, "Revocations").
    std::chrono::milliseconds terminal_revocation_ttl{30LL * 24 * 3600 * 1000};
    std::size_t terminal_max_observers = 4;  // observer sessions per terminal and node

    // Unknown POSRELAY_* environment variables seen (a typo?): logged as warnings at start.
    std::vector<std::string> unknown_env;
    // Every option of the table, in table order, with its value and source (no secrets:
    // secret files are named by their path).
    std::vector<effective_option> options;
};

// ---- reload (SIGHUP) -------------------------------------------------------------------

// What a reload would change, from the running config `before` to the fresh `after`:
// options applied live, options that need a restart (kept at their running value), and the
// secrets that changed ("server-key", "merchant-keys", "operator-token", "terminal-secret",
// "redis-password", "redis-sentinel-password"; the Redis passwords need a restart).
struct reload_plan {
    std::vector<std::string> live;
    std::vector<std::string> needs_restart;
    std::vector<std::string> secrets;
};
// True for the options a reload applies: the log level, key and secret files, terminal TLS.
[[nodiscard]] bool reloadable_option(std::string_view name) noexcept;
[[nodiscard]] reload_plan plan_reload(const config& before, const config& after);
// The running config with what `plan` applies live taken from `fresh`: the log level, the
// terminal TLS files, the secrets in plan.secrets and the reloadable options' entries.
[[nodiscard]] config apply_live(const config& running, const config& fresh,
                                const reload_plan& plan);

// The effective configuration as a config file: every option as `name = value  # source`
// (options that cannot be in a file, or without a value, commented out), then the secrets
// as comments: <set>, <unset> or <redacted, N merchant keys>; never a secret value.
[[nodiscard]] std::string render_effective(const config& c);

// POSRELAY_* environment variables that are not options but are read directly by other
// code (secrets, URLs that may carry credentials): never reported in config::unknown_env.
// Add a name here when a feature starts reading one. Variables whose names end in one of
// secret_env_suffixes are skipped as well.
inline constexpr std::string_view known_secret_env[] = {
    "POSRELAY_SERVER_KEY",
    "POSRELAY_MERCHANT_KEYS",
    "POSRELAY_CONFIG",
    "POSRELAY_OPERATOR_TOKEN",
    "POSRELAY_REDIS_PASSWORD",
    "POSRELAY_TERMINAL_SECRET",
    "POSRELAY_REDIS_SENTINEL_PASSWORD",
};
// systemd credentials (LoadCredential=, $CREDENTIALS_DIRECTORY): these file names there are
// read when no flag, variable or config file sets the same secret.
inline constexpr std::string_view credential_names[] = {
    "server-key",      "merchant-keys",  "operator-token",
    "terminal-secret", "redis-password", "redis-sentinel-password"};
inline constexpr std::string_view secret_env_suffixes[] = {"_TOKEN", "_SECRET", "_PASSWORD", "_KEY",
                                                           "_URL"};

// An invalid configuration. what() names the option and the reason, never a secret value.
class config_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class cli_action { run, help, version, example_config };
struct cli_result {
    cli_action action = cli_action::run;
    config cfg;
    // cli_action::help: every option with its default; cli_action::example_config: the
    // environment file of --print-example-config.
    std::string help_text;
};

// Reads flags (argv), the environment (envp, NULL-terminated like environ) and the
// config file named by --config / POSRELAY_CONFIG, the key and secret files, and the
// systemd credentials in $CREDENTIALS_DIRECTORY. Throws config_error.
[[nodiscard]] cli_result load_config(int argc, const char* const* argv, const char* const* envp);

}  // namespace posrelay
