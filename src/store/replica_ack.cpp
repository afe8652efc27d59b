// WAIT after a write (include/posrelay/store/replica_ack.hpp).
//
// WAIT blocks its connection in Redis until it is answered: one WAIT per write would serialize
// a pipelined connection on the replicas' round trip. So writes share WAITs: a write whose
// reply is processed while a WAIT sent on its connection is unanswered joins that WAIT. It is
// covered by it: replies come in order and are delivered in order (posted), so the write's
// reply came before the WAIT's, i.e. the write was sent before the WAIT, and WAIT covers every
// write the connection sent before it.
#include "posrelay/store/replica_ack.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>
#include <map>
#include <memory>
#include <string>
#include <utility>

namespace posrelay::store {

namespace {

namespace asio = boost::asio;

// A WAIT sent and not yet answered, and those who joined it.
struct shared_wait {
    explicit shared_wait(const asio::any_io_executor& ex)
        : answered(ex, asio::steady_timer::time_point::max()) {}
    asio::steady_timer answered;  // cancelled once `ec` and `reply` are set
    bool done = false;
    boost::system::error_code ec;
    redis_reply reply;
};

// The unanswered WAIT of each connection (and replica count) of this thread. A connection is
// used by one thread only.
using wait_key = std::pair<const redis_connection*, unsigned>;
thread_local std::map<wait_key, std::weak_ptr<shared_wait>> unanswered;

// Sends WAIT, or joins the one unanswered on `link`; its error and reply.
asio::awaitable<std::pair<boost::system::error_code, redis_reply>> wait_once(
    redis_connection& link, const replica_ack_options& o) {
    const wait_key key{&link, o.replicas};
    if (auto w = unanswered[key].lock(); w && !w->done) {
        (void)co_await w->answered.async_wait(asio::as_tuple(asio::use_awaitable));
        co_return std::pair{w->ec, w->reply};
    }
    auto w = std::make_shared<shared_wait>(co_await asio::this_coro::executor);
    unanswered[key] = w;
    const std::string n = std::to_string(o.replicas);
    const std::string timeout = std::to_string(o.timeout.count());
    const std::array<std::string_view, 3> wait{"WAIT", n, timeout};
    auto [ec, r] = co_await link.exec(redis_args(wait));
    w->done = true;
    w->ec = ec;
    w->reply = r;
    w->answered.cancel();
    if (unanswered[key].lock() == w) unanswered.erase(key);
    co_return std::pair{ec, std::move(r)};
}

}  // namespace

boost::asio::awaitable<boost::system::error_code> wait_replicas(
    redis_client& client, std::string_view route_key, const replica_ack_options& o,
    std::optional<std::chrono::milliseconds> touch_ttl, metrics::counter& short_count) {
    if (o.replicas == 0) co_return boost::system::error_code{};
    // The connection that made the write: on a Cluster, the one to route_key's primary.
    const auto conn = client.connection_for(route_key);
    if (!conn) co_return make_error_code(redis_errc::not_connected);
    redis_connection& link = *conn;
    if (touch_ttl) {
        const std::string ms = std::to_string(touch_ttl->count());
        const std::array<std::string_view, 4> touch{"PEXPIRE", route_key, ms, "GT"};
        auto [ec, r] = co_await link.exec(redis_args(touch));
        if (ec) co_return ec;
        if (r.is_error()) co_return make_error_code(redis_errc::protocol_error);
    }
    auto [ec, r] = co_await wait_once(link, o);
    const auto outcome = wait_outcome(ec, r, o.replicas);
    // Not logged here: every write would log while a replica is down; the answer's own
    // rejection (503 replicas_not_acknowledged) is logged and counted by its route.
    if (outcome == redis_errc::replicas_not_acknowledged) short_count.inc();
    co_return outcome;
}

}  // namespace posrelay::store
