// One Lua script run in Redis: its name, body and SHA1, and the one way every script call is
// made (EVALSHA; on NOSCRIPT, EVAL with the body, which caches it again). The order script
// and the poll script both go through it.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "posrelay/metrics/registry.hpp"
#include "posrelay/store/redis_client.hpp"
#include "posrelay/store/redis_connection.hpp"

namespace posrelay::store {

// The SHA1 of `s` in lowercase hex: the name Redis gives a script (SCRIPT LOAD's reply).
[[nodiscard]] std::string sha1_hex(std::string_view s);

// True when an EVALSHA's outcome means Redis does not have the script (its cache was flushed,
// or the server restarted): send the body with EVAL. A transport error is never a NOSCRIPT.
[[nodiscard]] bool needs_reload(const boost::system::error_code& ec,
                                const redis_reply& reply) noexcept;

// The head of every script call's ARGV, the same for every mode of every script: ARGV[1] the
// key prefix, ARGV[2] now in Unix ms (the node's clock; a script may use Redis's TIME instead,
// as the poll script does). ARGV[3] is the mode, then the mode's own arguments.
struct script_header {
    std::string_view prefix;
    std::string_view now_ms;
};

class lua_script {
public:
    // `name` labels posrelay_redis_script_loads_total{script}; `body` must outlive the
    // script (the scripts are string constants compiled into the binary).
    lua_script(std::string name, std::string_view body, metrics::registry& reg);
    lua_script(const lua_script&) = delete;
    lua_script& operator=(const lua_script&) = delete;

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] std::string_view body() const noexcept { return body_; }
    [[nodiscard]] const std::string& sha() const noexcept { return sha_; }

    // SCRIPT LOAD on `conn` (e.g. on each connect); throws std::runtime_error when Redis
    // refuses it or names it by another SHA1 than sha().
    boost::asio::awaitable<void> load(redis_connection& conn) const;

    // EVALSHA with `keys` and ARGV = `header`, then `args` (the mode first) on `conn`; on
    // NOSCRIPT, EVAL with the body (counted as a reload). The views need only live until the
    // returned awaitable is awaited. Thread-safe: one script may run on the connections of
    // several io threads at once. Through a redis_client (store.local()), the call goes to
    // the primary of the first key's slot (on a cluster, every key must be in that slot).
    boost::asio::awaitable<std::pair<boost::system::error_code, redis_reply>> exec(
        redis_client& conn, std::span<const std::string_view> keys, const script_header& header,
        redis_args args) const;
    boost::asio::awaitable<std::pair<boost::system::error_code, redis_reply>> exec(
        redis_connection& conn, std::span<const std::string_view> keys, const script_header& header,
        redis_args args) const;

private:
    template <typename Conn>
    boost::asio::awaitable<std::pair<boost::system::error_code, redis_reply>> run(
        Conn& conn, std::span<const std::string_view> keys, const script_header& header,
        redis_args args) const;

    std::string name_;
    std::string_view body_;
    std::string sha_;
    metrics::counter& reloads_;
};

}  // namespace posrelay::store
