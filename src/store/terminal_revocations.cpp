// terminal_revocations on Redis: a revocation is a string of Unix seconds with a TTL, one per
// terminal and one per store, under the store's hash tag (read together by one MGET at hello);
// control messages go out by SPUBLISH on the store's channel. Keys: include/posrelay/store/
// keys.hpp; semantics: proto-docs/redis-keys.md, "Revocations and control messages".
#include <cstdlib>

#include "posrelay/store/keys.hpp"
#include "posrelay/store/redis_store.hpp"

namespace posrelay::store {

namespace {

// Keeps the later of the recorded revocation and ARGV[1] (two nodes' clocks may disagree: a
// revocation never moves back), with the TTL ARGV[2] seconds; returns the time in force.
// Revocations are rare: EVAL (no script cache needed).
constexpr std::string_view revoke_lua =
    "local old = tonumber(redis.call('GET', KEYS[1]) or '0') or 0 "
    "local at = math.max(old, tonumber(ARGV[1])) "
    "redis.call('SET', KEYS[1], string.format('%d', at), 'EX', ARGV[2]) "
    "return at";

std::int64_t seconds_of(const redis_reply& r) {
    if (r.type != redis_reply::kind::string) return 0;
    return std::strtoll(r.str.c_str(), nullptr, 10);
}

}  // namespace

boost::asio::awaitable<std::pair<boost::system::error_code, revocation_times>>
redis_store::read_revocations(std::string store, std::string terminal) {
    auto [ec, r] = co_await local().exec(
        redis_command("MGET", keys::terminal_revocation(sopts_.prefix, store, terminal),
                      keys::store_revocation(sopts_.prefix, store)));
    revocation_times t;
    if (ec) co_return std::pair{ec, t};
    if (r.type != redis_reply::kind::array || r.elements.size() != 2)
        co_return std::pair{make_error_code(redis_errc::protocol_error), t};
    t.terminal_at = seconds_of(r.elements[0]);
    t.store_at = seconds_of(r.elements[1]);
    co_return std::pair{boost::system::error_code{}, t};
}

boost::asio::awaitable<std::pair<boost::system::error_code, std::int64_t>> redis_store::revoke(
    std::string store, std::string terminal, std::int64_t at, std::chrono::seconds keep) {
    const std::string key = terminal.empty()
                                ? keys::store_revocation(sopts_.prefix, store)
                                : keys::terminal_revocation(sopts_.prefix, store, terminal);
    auto [ec, r] = co_await local().exec(
        redis_command("EVAL", revoke_lua, "1", key, std::to_string(at),
                      std::to_string(std::max<std::int64_t>(keep.count(), 1))));
    if (ec) co_return std::pair{ec, std::int64_t{0}};
    if (r.type != redis_reply::kind::integer)
        co_return std::pair{make_error_code(redis_errc::protocol_error), std::int64_t{0}};
    co_return std::pair{boost::system::error_code{}, static_cast<std::int64_t>(r.integer)};
}

boost::asio::awaitable<std::pair<boost::system::error_code, std::int64_t>>
redis_store::send_control(std::string store, std::string message) {
    auto [ec, r] = co_await local().exec(
        redis_command("SPUBLISH", keys::store_channel(sopts_.prefix, store), message));
    if (ec) co_return std::pair{ec, std::int64_t{0}};
    if (r.type != redis_reply::kind::integer)
        co_return std::pair{make_error_code(redis_errc::protocol_error), std::int64_t{0}};
    co_return std::pair{boost::system::error_code{}, static_cast<std::int64_t>(r.integer)};
}

}  // namespace posrelay::store
