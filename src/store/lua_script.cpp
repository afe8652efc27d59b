// lua_script: every script call is EVALSHA, with EVAL of the body on NOSCRIPT.
#include "posrelay/store/lua_script.hpp"

#include <boost/container/small_vector.hpp>

#include <charconv>
#include <stdexcept>

namespace posrelay::store {

boost::asio::awaitable<void> lua_script::load(redis_connection& conn) const {
    const std::string_view cmd[] = {"SCRIPT", "LOAD", body_};
    auto [ec, reply] = co_await conn.exec(redis_args(cmd));
    if (ec || reply.is_error()) {
        throw std::runtime_error("SCRIPT LOAD of the " + name_ +
                                 " script failed: " + (ec ? ec.message() : reply.str));
    }
    if (reply.str != sha_) {
        throw std::runtime_error("SCRIPT LOAD of the " + name_ + " script answered another SHA1");
    }
}

boost::asio::awaitable<std::pair<boost::system::error_code, redis_reply>> lua_script::exec(
    redis_client& conn, std::span<const std::string_view> keys, const script_header& header,
    redis_args args) const {
    co_return co_await run(conn, keys, header, args);
}

boost::asio::awaitable<std::pair<boost::system::error_code, redis_reply>> lua_script::exec(
    redis_connection& conn, std::span<const std::string_view> keys, const script_header& header,
    redis_args args) const {
    co_return co_await run(conn, keys, header, args);
}

template <typename Conn>
boost::asio::awaitable<std::pair<boost::system::error_code, redis_reply>> lua_script::run(
    Conn& conn, std::span<const std::string_view> keys, const script_header& header,
    redis_args args) const {
    char nkeys[24];
    const auto n = static_cast<std::size_t>(
        std::to_chars(nkeys, nkeys + sizeof nkeys, keys.size()).ptr - nkeys);
    // On the stack for the usual argument counts: a commit is the hot path.
    boost::container::small_vector<std::string_view, 40> cmd{"EVALSHA", sha_, {nkeys, n}};
    cmd.insert(cmd.end(), keys.begin(), keys.end());
    cmd.push_back(header.prefix);
    cmd.push_back(header.now_ms);
    cmd.insert(cmd.end(), args.begin(), args.end());
    auto result = co_await conn.exec(redis_args(cmd.data(), cmd.size()));
    if (needs_reload(result.first, result.second)) {
        reloads_.inc();
        cmd[0] = "EVAL";
        cmd[1] = body_;
        result = co_await conn.exec(redis_args(cmd.data(), cmd.size()));
    }
    co_return result;
}

}  // namespace posrelay::store
