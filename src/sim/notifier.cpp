// Notification delivery: one coroutine per delivery (delay, attempt, retry schedule).
#include "notifier.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <array>

#include "posrelay/http/types.hpp"
#include "posrelay/log.hpp"

namespace posrelay::sim {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using http::use_nothrow;
using namespace std::chrono;

namespace {
// Midtrans retries about 2, 10, 30, 90 and 210 minutes after the first try.
constexpr std::array<int, 5> retry_minutes = {2, 10, 30, 90, 210};
constexpr std::size_t max_answer_bytes = 64 * 1024;
}  // namespace

int retries_after(int s) noexcept {
    if (s >= 200 && s < 300) return 0;
    if (s == 500) return 1;
    if (s == 503) return 4;
    if (s == 400 || s == 404) return 2;
    if (s == 301 || s == 302 || s == 303) return 0;
    return 5;
}

notifier::notifier(asio::io_context& ioc, const sim_options& opts, const fault_config& faults,
                   random_source& rng, attempt_hook hook)
    : ioc_(ioc), opts_(opts), faults_(faults), rng_(rng), hook_(std::move(hook)) {}

milliseconds notifier::scaled(milliseconds d) const {
    return milliseconds(std::max<std::int64_t>(
        1, static_cast<std::int64_t>(static_cast<double>(d.count()) / opts_.time_scale)));
}

void notifier::notify(const transaction& t, std::string_view event, std::string body,
                      bool final_event) {
    auto shared_body = std::make_shared<const std::string>(std::move(body));
    std::vector<delivery> fresh;
    for (const auto& url : t.notify_urls) {
        if (rng_.chance(faults_.drop_rate)) {
            ++stats_.dropped;
            log::line(log::level::info, "notification dropped")
                .str("order_id", t.order_id)
                .str("event", event)
                .str("url", url);
            continue;
        }
        const int copies = rng_.chance(faults_.duplicate_rate) ? 2 : 1;
        if (copies == 2) ++stats_.duplicated;
        for (int i = 0; i < copies; ++i) {
            delivery d{
                t.transaction_id,
                t.order_id,
                std::string(event),
                url,
                shared_body,
                milliseconds(faults_.notify_delay_ms + rng_.below(faults_.notify_jitter_ms + 1)),
                {}};
            fresh.push_back(std::move(d));
        }
    }
    std::vector<delivery> earlier;
    if (auto it = held_.find(t.transaction_id); it != held_.end()) {
        earlier = std::move(it->second);
        held_.erase(it);
    }
    // Only an event with a successor can be held: the successor releases it.
    if (!final_event && !fresh.empty() && rng_.chance(faults_.reorder_rate)) {
        ++stats_.reordered;
        auto& h = held_[t.transaction_id];
        for (auto& d : earlier)
            h.push_back(std::move(d));
        for (auto& d : fresh)
            h.push_back(std::move(d));
        return;
    }
    if (fresh.empty()) {
        for (auto& d : earlier)
            start(std::move(d));
        return;
    }
    // Held deliveries go out after the first attempt of this event's first delivery ends.
    fresh.front().followers = std::move(earlier);
    for (auto& d : fresh)
        start(std::move(d));
}

void notifier::start(delivery d) {
    if (alive_ >= opts_.max_notifications) {
        ++stats_.overflow;
        log::line(log::level::warn, "notification refused: --max-notifications alive")
            .str("order_id", d.order_id)
            .str("event", d.event);
        for (auto& f : d.followers)
            start(std::move(f));
        return;
    }
    ++alive_;
    asio::co_spawn(ioc_, run(std::move(d)), [this](std::exception_ptr e) {
        --alive_;
        log::escaped(e, "notification delivery");
    });
}

asio::awaitable<void> notifier::acquire() {
    if (in_flight_ < opts_.max_concurrent_notifications) {
        ++in_flight_;
        co_return;
    }
    // Bounded: every waiter is an alive delivery, at most --max-notifications.
    auto waiter = std::make_shared<asio::steady_timer>(ioc_, steady_clock::time_point::max());
    waiters_.push_back(waiter);
    (void)co_await waiter->async_wait(use_nothrow);  // cancelled by release(): slot handed over
}

void notifier::release() {
    if (waiters_.empty()) {
        --in_flight_;
        return;
    }
    waiters_.front()->cancel();
    waiters_.pop_front();
}

asio::awaitable<void> notifier::run(delivery d) {
    asio::steady_timer timer(ioc_);
    if (d.delay.count() > 0) {
        timer.expires_after(d.delay);
        (void)co_await timer.async_wait(use_nothrow);
    }
    const auto first_try = steady_clock::now();
    for (int attempt = 1;; ++attempt) {
        // While the simulated Midtrans is down, due attempts wait for it to come back.
        while (faults_.down) {
            timer.expires_after(milliseconds(100));
            (void)co_await timer.async_wait(use_nothrow);
        }
        co_await acquire();
        const auto started = steady_clock::now();
        const answer a = co_await post_once(d);
        release();
        const auto took = duration_cast<milliseconds>(steady_clock::now() - started).count();
        const bool ok = a.http_status >= 200 && a.http_status < 300;
        ++stats_.sent;
        ++(ok ? stats_.acked : stats_.failed_attempts);
        {
            log::line l(log::level::info, "notification attempt");
            l.str("order_id", d.order_id)
                .str("event", d.event)
                .str("url", d.url)
                .num("attempt", attempt);
            if (a.http_status) l.num("http_status", a.http_status);
            if (!a.error.empty()) l.str("error", a.error);
            l.num("duration_ms", took);
        }
        hook_(d.transaction_id,
              attempt_record{d.event, d.url, attempt, jakarta_time(system_clock::now()),
                             a.http_status, a.error, took});
        for (auto& f : d.followers)
            start(std::move(f));
        d.followers.clear();
        if (ok) co_return;
        if (attempt > retries_after(a.http_status)) {
            ++stats_.given_up;
            log::line(log::level::info, "notification given up")
                .str("order_id", d.order_id)
                .str("event", d.event)
                .str("url", d.url)
                .num("attempts", attempt);
            co_return;
        }
        // Retry `attempt` at about its slot after the first try, ±10 % jitter.
        const double jitter = 0.9 + 0.2 * rng_.uniform01();
        const auto offset = milliseconds(static_cast<std::int64_t>(
            retry_minutes[static_cast<std::size_t>(attempt - 1)] * 60'000.0 * jitter));
        timer.expires_at(first_try + scaled(offset));
        (void)co_await timer.async_wait(use_nothrow);
    }
}

asio::awaitable<notifier::answer> notifier::post_once(const delivery& d) {
    const auto u = boost::urls::parse_absolute_uri(d.url);  // validated at charge time
    if (!u) co_return answer{0, "bad url"};
    const std::string host = u->host_address();
    const std::string port = u->has_port() ? std::string(u->port()) : "80";
    std::string target(u->encoded_target());
    if (target.empty()) target = "/";

    asio::ip::tcp::resolver resolver(ioc_);
    beast::tcp_stream stream(ioc_);
    stream.expires_after(scaled(opts_.notify_timeout));
    auto [rec, endpoints] = co_await resolver.async_resolve(host, port, use_nothrow);
    if (rec) co_return answer{0, "resolve: " + rec.message()};
    auto [cec, ep] = co_await stream.async_connect(endpoints, use_nothrow);
    (void)ep;
    auto failed = [](std::string_view phase, const boost::system::error_code& ec) {
        return answer{0, ec == beast::error::timeout ? std::string("timeout")
                                                     : std::string(phase) + ": " + ec.message()};
    };
    if (cec) co_return failed("connect", cec);

    bhttp::request<bhttp::string_body> req{bhttp::verb::post, target, 11};
    req.set(bhttp::field::host, std::string(u->encoded_host_and_port()));
    req.set(bhttp::field::user_agent, "Veritrans");
    req.set(bhttp::field::content_type, "application/json");
    req.set(bhttp::field::accept, "application/json");
    req.keep_alive(false);
    req.body() = *d.body;
    req.prepare_payload();
    auto [wec, wn] = co_await bhttp::async_write(stream, req, use_nothrow);
    (void)wn;
    if (wec) co_return failed("write", wec);
    beast::flat_buffer buf;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(max_answer_bytes);
    auto [rdec, rn] = co_await bhttp::async_read(stream, buf, parser, use_nothrow);
    (void)rn;
    if (rdec) co_return failed("read", rdec);
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    co_return answer{static_cast<int>(parser.get().result_int()), {}};
}

}  // namespace posrelay::sim
