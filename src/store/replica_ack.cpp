// WAIT after a write (include/posrelay/store/replica_ack.hpp).
#include "posrelay/store/replica_ack.hpp"

#include <array>
#include <string>

namespace posrelay::store {

boost::asio::awaitable<boost::system::error_code> wait_replicas(
    redis_connection& link, [[maybe_unused]] std::string_view route_key,
    const replica_ack_options& o, std::optional<std::chrono::milliseconds> touch_ttl,
    metrics::counter& short_count) {
    if (o.replicas == 0) co_return boost::system::error_code{};
    if (touch_ttl) {
        const std::string ms = std::to_string(touch_ttl->count());
        const std::array<std::string_view, 4> touch{"PEXPIRE", route_key, ms, "GT"};
        auto [ec, r] = co_await link.exec(redis_args(touch));
        if (ec) co_return ec;
        if (r.is_error()) co_return make_error_code(redis_errc::protocol_error);
    }
    const std::string n = std::to_string(o.replicas);
    const std::string timeout = std::to_string(o.timeout.count());
    const std::array<std::string_view, 3> wait{"WAIT", n, timeout};
    auto [ec, r] = co_await link.exec(redis_args(wait));
    const auto outcome = wait_outcome(ec, r, o.replicas);
    // Not logged here: every write would log while a replica is down; the answer's own
    // rejection (503 replicas_not_acknowledged) is logged and counted by its route.
    if (outcome == redis_errc::replicas_not_acknowledged) short_count.inc();
    co_return outcome;
}

}  // namespace posrelay::store
