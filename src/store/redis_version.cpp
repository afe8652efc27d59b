// The Redis version posrelay needs (7.0: sharded pub/sub), checked on every new connection.
#include <stdexcept>

#include "posrelay/store/redis_info.hpp"
#include "posrelay/store/redis_store.hpp"

namespace posrelay::store {

boost::asio::awaitable<void> require_redis_7(redis_connection& c) {
    auto [ec, r] = co_await c.exec(redis_command("INFO", "server"));
    if (ec) throw std::runtime_error("INFO server: " + ec.message());
    if (r.type != redis_reply::kind::string)
        throw std::runtime_error("INFO server: unexpected reply");
    const auto v = parse_redis_version(r.str);
    if (!v) throw std::runtime_error("INFO server: no redis_version");
    if (*v < redis_version{7, 0, 0}) {
        throw std::runtime_error("Redis " + std::to_string(v->major) + "." +
                                 std::to_string(v->minor) + "." + std::to_string(v->patch) +
                                 " is too old: posrelay needs Redis 7.0 or later (events go out "
                                 "by sharded pub/sub, SPUBLISH and SSUBSCRIBE)");
    }
}

}  // namespace posrelay::store
