// A pipelined, non-blocking Redis connection on one Asio executor, speaking RESP2: commands
// are written as RESP by the pipeline, replies parsed by hiredis 0.14's reply reader
// (redisReader, the sans-io part of hiredis); Asio moves the bytes. Reconnects by itself with
// capped, jittered backoff; while disconnected, commands fail fast.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "posrelay/config.hpp"
#include "posrelay/metrics/registry.hpp"

namespace posrelay::store {

// posrelay's own Redis errors (category "posrelay.redis").
enum class redis_errc {
    not_connected = 1,  // the connection is down (reconnecting): failed fast, not sent
    timeout,            // no reply within the command timeout
    queue_full,         // too many commands pending
    connection_lost,    // sent, but the connection broke before the reply (may have run!)
    protocol_error,     // the reply could not be parsed
    stopped,            // the connection was stopped
    // WAIT (wait_replicas): fewer replicas than asked acknowledged the write within the timeout.
    // The write is on the primary; answering success could lose it in a failover.
    replicas_not_acknowledged,
};
[[nodiscard]] const boost::system::error_category& redis_category() noexcept;
[[nodiscard]] boost::system::error_code make_error_code(redis_errc e) noexcept;

// A TCP address: a server, a sentinel, a master named by Sentinel.
struct redis_address {
    std::string host;
    std::uint16_t port = 0;
    bool operator==(const redis_address&) const = default;
    // "host:port" ("[v6]:port"): for logs.
    [[nodiscard]] std::string describe() const;
};

// Where a connection connects when the address is not fixed (Redis Sentinel: the current
// master). Shared by every connection of a process; thread-safe.
class redis_discovery {
public:
    virtual ~redis_discovery() = default;
    // The address to connect to now: awaited before every connect attempt, on the
    // connection's executor; completes within its own deadline, with an address or an error
    // (the attempt then fails and is retried after the reconnect backoff).
    [[nodiscard]] virtual boost::asio::awaitable<
        std::pair<boost::system::error_code, redis_address>>
    resolve() = 0;
    // `moved` is called, from any thread, with the new address when it changed (a
    // failover): a connection elsewhere then drops and reconnects through resolve().
    // unwatch(id) ends it.
    virtual std::uint64_t watch(std::function<void(const redis_address& to)> moved) = 0;
    virtual void unwatch(std::uint64_t id) noexcept = 0;
    // Ends whatever the discovery runs in the background (e.g. its subscriber). Idempotent.
    virtual void stop() = 0;
    // True: only a master is kept (ROLE checked after AUTH, a replica dropped and the
    // discovery asked again). False for addresses of other kinds (a sentinel).
    [[nodiscard]] virtual bool masters_only() const noexcept { return true; }
};

// Where and how to connect. Parsed from a URL:
//   redis://[[user]:password@]host[:port][/db]   (port 6379, db 0 by default)
//   unix:///path/to/redis.sock[?db=N]            (password from POSRELAY_REDIS_PASSWORD)
//   redis-cluster://[[user]:password@]host:port[,host:port...]   (seed nodes; db 0 only)
//   redis-sentinel://[[user]:password@]host[:port][,host[:port]...]/MASTER_NAME
//       (sentinel port 26379 by default; the credentials are the master's)
struct redis_options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 6379;
    std::string unix_path;  // non-empty: connect to this unix socket instead of host:port
    std::string username;   // ACL user; empty: AUTH with password only
    secret password;        // empty: no AUTH
    int db = 0;             // SELECT when non-zero
    // redis-cluster://: the seed nodes, "host:port" each (host/port: the first); empty: one
    // server. A redis_connection ignores it (include/posrelay/store/redis_client.hpp).
    std::vector<std::string> cluster_seeds;
    std::chrono::milliseconds connect_timeout{2'000};
    std::chrono::milliseconds command_timeout{2'000};
    std::chrono::milliseconds reconnect_min{100};
    std::chrono::milliseconds reconnect_max{5'000};
    std::size_t max_pending = 8'192;  // commands written or queued, awaiting replies

    // redis-sentinel://: the sentinels, in the URL's order, and the master's name. The
    // sentinels' own password (AUTH to a sentinel; not the master's) is set apart from the URL.
    std::vector<redis_address> sentinels;
    std::string master_name;
    secret sentinel_password;
    // Set: asked where to connect before every connect attempt (host and port unused), and
    // only a master is kept (ROLE checked after AUTH; a replica is dropped and asked again).
    std::shared_ptr<redis_discovery> discovery;

    // "127.0.0.1:6379/0" or "unix:/path": for logs. Never contains the password.
    [[nodiscard]] std::string describe() const;
};
// Throws std::invalid_argument naming the problem (never echoing the password).
[[nodiscard]] redis_options parse_redis_url(std::string_view url);

// A reply, owned. RESP2 types.
struct redis_reply {
    enum class kind : std::uint8_t { string, status, error, integer, nil, array };
    kind type = kind::nil;
    std::string str;  // string, status, error
    long long integer = 0;
    std::vector<redis_reply> elements;  // array

    [[nodiscard]] bool is_error() const noexcept { return type == kind::error; }
};

// A command's arguments as views: exec() formats them onto the connection's output at once,
// so they need only live until the exec() awaitable is awaited. The hot paths (commits) build
// these over their own buffers, without a string per argument.
using redis_args = std::span<const std::string_view>;

// Builds a command's arguments: exec(redis_command("SET", key, value)). Prefer it to a braced
// list: g++ 12 rejects `co_await c.exec({"GET", key})` ("array used as initializer").
template <typename... Args>
[[nodiscard]] std::vector<std::string> redis_command(Args&&... args) {
    std::vector<std::string> v;
    v.reserve(sizeof...(Args));
    (v.emplace_back(std::forward<Args>(args)), ...);
    return v;
}

// Metrics shared by every connection of a process (register once, pass to each).
struct redis_metrics {
    explicit redis_metrics(metrics::registry& reg);
    metrics::histogram& latency;   // posrelay_redis_command_duration_seconds
    metrics::counter& reconnects;  // posrelay_redis_reconnects_total
    metrics::gauge& in_flight;     // posrelay_redis_commands_in_flight
    metrics::gauge& connected;     // posrelay_redis_connections_up
    metrics::counter &err_not_connected, &err_timeout, &err_queue_full, &err_connection_lost,
        &err_protocol, &err_reply;  // posrelay_redis_errors_total{kind}
};

class redis_connection : public std::enable_shared_from_this<redis_connection> {
public:
    // Everything runs on `ex` (one io thread); exec() must be called from it.
    redis_connection(boost::asio::any_io_executor ex, redis_options opts, redis_metrics& m);
    ~redis_connection();

    // Starts the connect/reconnect loop (once; later calls are ignored). `on_connect`
    // (optional) runs after each successful connect+AUTH+SELECT, before connected() turns
    // true (e.g. to SCRIPT LOAD): only the commands its coroutine awaits (it runs on a
    // strand of the executor of its own) are sent; other exec() calls keep failing with
    // not_connected until it returns. If it throws, the connection is dropped and retried.
    // Capture the connection in it by raw pointer or weak_ptr, not shared_ptr (a cycle
    // until stop()); the callable is kept alive while its coroutine runs.
    //
    // `on_push` (optional) makes this a subscriber connection: pub/sub messages Redis pushes
    // after a SUBSCRIBE (RESP2 arrays ["message", channel, payload]) are handed to it, in
    // order, on the connection's executor, instead of being taken as replies. Subscriptions
    // end with the connection: SUBSCRIBE again in `on_connect`.
    using on_connect_fn = std::function<boost::asio::awaitable<void>()>;
    using on_push_fn = std::function<void(redis_reply&& message)>;
    void start(on_connect_fn on_connect = {}, on_push_fn on_push = {});
    // Closes the connection and fails every pending command with `stopped`; the internal
    // coroutines then end. Idempotent; may be called from any thread (posted to the
    // executor). The destructor calls it: destroy the connection before its io_context.
    void stop();

    // Sends one command (pipelined: commands issued in the same turn go out in one write).
    // Completes with the reply, or with an error: not_connected (fail fast while down),
    // queue_full, timeout, connection_lost, protocol_error, stopped. A Redis error reply
    // (-ERR ...) is not an error_code: it is a reply of kind error. Never completes inline:
    // the awaiting coroutine resumes through a post. The connection object may be
    // destroyed while a command is awaited (its state is shared with the operation).
    // Per-operation cancellation is not supported: every command ends within its timeout.
    // `args` is written to the output buffer as soon as the returned awaitable is awaited; it
    // need not outlive that (a temporary in the co_await expression is fine).
    [[nodiscard]] boost::asio::awaitable<std::pair<boost::system::error_code, redis_reply>> exec(
        redis_args args);
    [[nodiscard]] boost::asio::awaitable<std::pair<boost::system::error_code, redis_reply>> exec(
        const std::vector<std::string>& args);

    [[nodiscard]] bool connected() const noexcept;

    // Drops the connection now (its pending commands fail with connection_lost) and connects
    // again at once, through the discovery when there is one. Any thread. A -READONLY reply
    // (the server is a replica now: a demoted master) does the same by itself, after the
    // command that got it has completed with that reply.
    void reconnect();

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace posrelay::store

namespace boost::system {
template <>
struct is_error_code_enum<posrelay::store::redis_errc> : std::true_type {};
}  // namespace boost::system
