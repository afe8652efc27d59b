#include "posrelay/poll/scheduler.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <unistd.h>

#include <atomic>
#include <deque>

#include "posrelay/log.hpp"
#include "posrelay/midtrans/api.hpp"
#include "posrelay/poll/poll_script.hpp"

namespace posrelay::poll {

namespace asio = boost::asio;
using std::chrono::milliseconds;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

poll_options poll_options::from(const config& c) {
    poll_options o;
    o.rate = c.poll_rate;
    o.burst = c.poll_burst;
    o.first_delay = c.poll_first_delay;
    o.max_interval = c.poll_max_interval;
    o.lease = c.poll_lease;
    o.grace = c.poll_grace;
    o.expire_below = c.expire_below;
    o.concurrency = c.poll_concurrency;
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    o.node = std::string(host) + ":" + std::to_string(::getpid());
    return o;
}

milliseconds backoff(const poll_options& o, std::uint64_t attempts, std::mt19937_64& rng) {
    const auto shift = std::min<std::uint64_t>(attempts, 20);
    auto d = o.first_delay * (std::int64_t{1} << shift);
    if (d > o.max_interval || d.count() <= 0) d = o.max_interval;
    std::uniform_real_distribution<double> jitter(0.9, 1.1);
    return milliseconds(static_cast<std::int64_t>(static_cast<double>(d.count()) * jitter(rng)));
}

namespace {

using store::field_of;
using store::int_field;
}  // namespace

struct scheduler::impl : std::enable_shared_from_this<scheduler::impl> {
    impl(io_pool& p, store::redis_store& s, midtrans::client& a, poll_options o,
         metrics::registry& reg)
        : pool(p),
          store(s),
          api(a),
          opts(std::move(o)),
          timer(p.context(0)),
          slot(p.context(0)),
          rng(std::random_device{}()),
          due_gauge(reg.add_gauge("posrelay_poll_due_orders",
                                  "Orders in the fleet's poll schedule (pending, not final).")),
          overdue_gauge(reg.add_gauge(
              "posrelay_poll_oldest_overdue_seconds",
              "How late the most overdue scheduled poll is (0 when none is overdue).")),
          inflight_gauge(reg.add_gauge("posrelay_poll_inflight", "Polls in flight on this node.")),
          resolved(reg.add_counter("posrelay_poll_resolved_total",
                                   "Orders whose final status posrelay learned by polling (a "
                                   "notification was missed).")),
          takeovers(reg.add_counter("posrelay_poll_lease_takeovers_total",
                                    "Claims taken over from a node whose lease lapsed.")),
          unknown(reg.add_counter(
              "posrelay_poll_orders_unknown_total",
              "Orders past expiry plus grace with no final status: alert on any increase.")),
          expired(reg.add_counter("posrelay_poll_expired_total",
                                  "Orders expired by posrelay at their deadline (short expiry).")) {
        const std::string base = store.options().prefix + "{poll}:";
        due_key = base + "due";
        leases_key = base + "leases";
        rate_key = base + "rate";
        pause_key = base + "pause";
        for (auto outcome : {"pending", "final", "not_found", "rate_limited", "error", "expired"}) {
            calls[outcome] = &reg.add_counter(
                "posrelay_poll_calls_total",
                "Midtrans calls made by the poll scheduler by outcome.", {{"outcome", outcome}});
        }
        reg.add_counter_fn("posrelay_poll_rate_limit_wait_seconds_total",
                           "Time polls waited for the fleet-wide rate limit.", {},
                           [this] { return static_cast<double>(waited_ms.load()) / 1000.0; });
    }

    // EVAL of the poll script with `keys` and `args` (a plain function: g++ 12 rejects
    // braced lists inside co_await expressions).
    static std::vector<std::string> eval(std::initializer_list<std::string> keys,
                                         std::initializer_list<std::string> args) {
        std::vector<std::string> cmd;
        cmd.reserve(3 + keys.size() + args.size());
        cmd.emplace_back("EVAL");
        cmd.emplace_back(detail::poll_script);
        cmd.push_back(std::to_string(keys.size()));
        cmd.insert(cmd.end(), keys);
        cmd.insert(cmd.end(), args);
        return cmd;
    }

    asio::awaitable<void> done(const std::string& id, std::optional<std::int64_t> next_due) {
        auto cmd = eval({due_key, leases_key},
                        {"done", id, next_due ? std::to_string(*next_due) : std::string()});
        (void)co_await store.local().exec(std::move(cmd));
    }

    // Waits for the fleet's rate limit. False when stopping.
    asio::awaitable<bool> take_token() {
        const double interval = 1000.0 / opts.rate;
        // A little slack over a whole second so that network jitter between the grant and
        // Midtrans's receipt cannot squeeze rate+1 calls into one of Midtrans's seconds.
        const auto interval_ms = static_cast<std::int64_t>(interval * 1.02) + 1;
        const auto tau_ms = interval_ms * (static_cast<std::int64_t>(opts.burst) - 1);
        while (!stopping.load()) {
            auto cmd = eval({rate_key, pause_key},
                            {"take", std::to_string(interval_ms), std::to_string(tau_ms)});
            auto [ec, r] = co_await store.local().exec(std::move(cmd));
            std::int64_t wait = 500;
            if (!ec && r.type == store::redis_reply::kind::integer) wait = r.integer;
            if (wait == 0) co_return true;
            wait = std::min<std::int64_t>(wait, 5000);
            waited_ms += static_cast<std::uint64_t>(wait);
            timer.expires_after(milliseconds(wait));
            (void)co_await timer.async_wait(nothrow);
        }
        co_return false;
    }

    asio::awaitable<void> loop() {
        std::deque<std::pair<std::string, std::string>> queue;  // (order, lapsed claimer)
        auto last_stats = std::chrono::steady_clock::time_point{};
        while (!stopping.load()) {
            if (std::chrono::steady_clock::now() - last_stats > std::chrono::seconds(1)) {
                co_await update_stats();
                last_stats = std::chrono::steady_clock::now();
            }
            if (queue.empty()) {
                // About a second of the fleet's budget: short waits, so leases never lapse.
                const auto batch = std::clamp<unsigned>(opts.rate, 1, 200);
                auto cmd = eval({due_key, leases_key}, {"claim", std::to_string(opts.lease.count()),
                                                        std::to_string(batch), opts.node});
                auto [ec, r] = co_await store.local().exec(std::move(cmd));
                std::int64_t sleep_ms = 1000;
                if (!ec && r.type == store::redis_reply::kind::array && !r.elements.empty()) {
                    const std::size_t pairs_end = r.elements.size() - 1;  // then next due
                    for (std::size_t i = 0; i + 1 < pairs_end; i += 2) {
                        queue.emplace_back(r.elements[i].str, r.elements[i + 1].str);
                    }
                    const auto& next = r.elements.back().str;
                    if (!next.empty()) {
                        sleep_ms = std::clamp<std::int64_t>(
                            store::to_int64(next) - store::unix_ms_now(), 10, 1000);
                    }
                }
                if (queue.empty()) {
                    timer.expires_after(milliseconds(sleep_ms));
                    (void)co_await timer.async_wait(nothrow);
                    continue;
                }
            }
            while (inflight >= opts.concurrency && !stopping.load()) {
                slot.expires_after(std::chrono::seconds(1));
                (void)co_await slot.async_wait(nothrow);
            }
            if (!co_await take_token()) break;
            auto [id, previous] = std::move(queue.front());
            queue.pop_front();
            if (!previous.empty()) {
                takeovers.inc();
                log::line(log::level::info, "poll lease taken over")
                    .str("order_id", id)
                    .str("from", previous);
            }
            ++inflight;
            inflight_gauge.add(1);
            asio::co_spawn(pool.context(0), poll_one(id),
                           [self = shared_from_this()](std::exception_ptr e) {
                               --self->inflight;
                               self->inflight_gauge.sub(1);
                               self->slot.cancel();
                               log::escaped(e, "poll");
                           });
        }
    }

    asio::awaitable<void> update_stats() {
        auto [ec, n] = co_await store.local().exec(store::redis_command("ZCARD", due_key));
        if (!ec && n.type == store::redis_reply::kind::integer) due_gauge.set(n.integer);
        auto [ec2, first] = co_await store.local().exec(
            store::redis_command("ZRANGE", due_key, "0", "0", "WITHSCORES"));
        std::int64_t late = 0;
        if (!ec2 && first.elements.size() == 2)
            late = std::max<std::int64_t>(
                0, store::unix_ms_now() - store::to_int64(first.elements[1].str));
        overdue_gauge.set(late / 1000);
    }

    // Polls one claimed order and schedules its next poll (or drops it).
    asio::awaitable<void> poll_one(std::string id) {
        auto [ec, order] = co_await store.read_order(id);
        if (ec) {
            co_await done(id, store::unix_ms_now() + 5000);
            co_return;
        }
        if (!order) {
            co_await done(id, std::nullopt);
            co_return;
        }
        const auto& f = *order;
        const std::string st = field_of(f, "transaction_status");
        if (!st.empty()) {
            if (auto s = midtrans::parse_transaction_status(st);
                s && *s != midtrans::transaction_status::pending) {
                co_await done(id, std::nullopt);  // final (or beyond pending): nothing to learn
                co_return;
            }
        }
        const std::int64_t now = store::unix_ms_now();
        const std::int64_t created = int_field(f, "created_ms");
        std::int64_t expiry = int_field(f, "expiry_ms");
        if (expiry == 0) expiry = created + 15 * 60'000;
        const bool short_expiry = expiry - created < opts.expire_below.count();
        const std::uint64_t attempts = static_cast<std::uint64_t>(int_field(f, "poll_attempts"));
        (void)co_await store.local().exec(
            store::redis_command("HINCRBY", store.order_key(id), "poll_attempts", "1"));

        // Expire at the deadline, once: after a 412 (it changed meanwhile, e.g. Midtrans
        // expired it itself) the status call tells what it became.
        const bool expire_now = short_expiry && now >= expiry &&
                                field_of(f, "state") != "charging" &&
                                field_of(f, "expire_refused").empty();
        // (No co_await inside ?: — g++ 12 miscompiles it.)
        midtrans::http_result http;
        if (expire_now) {
            http = co_await api.expire(id);
        } else {
            http = co_await api.status(id);
        }
        std::optional<std::int64_t> next = now + backoff(opts, attempts + 1, rng).count();
        bool final_now = false;
        if (http.ec) {
            calls["error"]->inc();
        } else {
            auto a = midtrans::read_answer(http.status, http.body);
            if (http.status == 429 || a.status_code == "429") {
                calls["rate_limited"]->inc();
                const auto ra =
                    midtrans::parse_retry_after(http.retry_after).value_or(std::chrono::seconds(2));
                log::line(log::level::warn, "midtrans rate limited polling: pausing the fleet")
                    .num("pause_ms", static_cast<std::int64_t>(ra.count() * 1000));
                auto cmd = eval({pause_key}, {"pause", std::to_string(ra.count() * 1000)});
                (void)co_await store.local().exec(std::move(cmd));
                next = now + ra.count() * 1000 + 100;
            } else if (a.verdict == midtrans::answer_class::ok) {
                if (a.order_id.empty()) a.order_id = id;
                if (a.gross_amount.empty()) a.gross_amount = field_of(f, "gross_amount");
                auto u =
                    midtrans::to_status_update(a, ingest::update_source::poll, store::unix_ms_now(),
                                               expire_now ? "expire" : "");
                if (u) {
                    const bool is_final = u->status != midtrans::transaction_status::pending;
                    auto r = co_await store.commit(std::move(*u));
                    if (r.ec) {
                        calls["error"]->inc();
                    } else {
                        calls[expire_now ? "expired" : (is_final ? "final" : "pending")]->inc();
                        if (expire_now) expired.inc();
                        if (is_final) {
                            final_now = true;
                            if (r.outcome == ingest::commit_outcome::new_update && !expire_now)
                                resolved.inc();
                        }
                    }
                } else {
                    calls["error"]->inc();
                }
            } else if (a.status_code == "404") {
                calls["not_found"]->inc();
                if (field_of(f, "state") == "charging" && now - created > 120'000) {
                    // A reservation whose charge Midtrans never created: nothing to wait for.
                    (void)co_await store.release_charge(id, field_of(f, "terminal_id"));
                    final_now = true;
                }
            } else if (expire_now && a.status_code == "412") {
                store::order_fields refused{{"expire_refused", "1"}};
                (void)co_await store.set_order_fields(id, std::move(refused));
                calls["final"]->inc();  // it changed meanwhile: the status call comes next
                next = now;
            } else {
                calls["error"]->inc();
            }
        }
        if (final_now) {
            co_await done(id, std::nullopt);
            co_return;
        }
        if (now > expiry + opts.grace.count()) {
            // Past expiry and grace, polled once more, still not final.
            unknown.inc();
            log::line(log::level::error, "order status unknown after expiry")
                .str("order_id", id)
                .str("terminal_id", field_of(f, "terminal_id"))
                .num("expiry_ms", expiry);
            if (auto aec = co_await store.alert_unknown(id); aec) {
                co_await done(id, now + 5000);  // try the alert again
            }
            co_return;
        }
        // Never sleep past the deadline that needs an action: the expiry of a short-expiry
        // order, the end of the grace period of any.
        const std::int64_t deadline =
            short_expiry && now < expiry ? expiry : expiry + opts.grace.count() + 1;
        if (now < deadline) next = std::min(*next, deadline);
        co_await done(id, next);
    }

    io_pool& pool;
    store::redis_store& store;
    midtrans::client& api;
    poll_options opts;
    asio::steady_timer timer;
    asio::steady_timer slot;  // woken when a poll finishes
    std::mt19937_64 rng;
    std::string due_key, leases_key, rate_key, pause_key;
    std::atomic<bool> stopping{false};
    std::size_t inflight = 0;
    std::atomic<std::uint64_t> waited_ms{0};
    metrics::gauge& due_gauge;
    metrics::gauge& overdue_gauge;
    metrics::gauge& inflight_gauge;
    metrics::counter& resolved;
    metrics::counter& takeovers;
    metrics::counter& unknown;
    metrics::counter& expired;
    std::map<std::string, metrics::counter*, std::less<>> calls;
};

scheduler::scheduler(io_pool& pool, store::redis_store& store, midtrans::client& api,
                     poll_options o, metrics::registry& reg)
    : impl_(std::make_shared<impl>(pool, store, api, std::move(o), reg)) {}

scheduler::~scheduler() {
    stop();
}

void scheduler::start() {
    if (impl_->opts.rate == 0) return;
    auto self = impl_;
    asio::co_spawn(impl_->pool.context(0), self->loop(),
                   [self](std::exception_ptr e) { log::escaped(e, "poll loop"); });
}

void scheduler::stop() {
    if (impl_->stopping.exchange(true)) return;
    auto self = impl_;
    asio::post(impl_->pool.context(0), [self] {
        self->timer.cancel();
        self->slot.cancel();
    });
}

}  // namespace posrelay::poll
