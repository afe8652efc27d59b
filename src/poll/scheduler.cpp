#include "posrelay/poll/scheduler.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/container/small_vector.hpp>

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

#include "posrelay/log.hpp"
#include "posrelay/midtrans/api.hpp"
#include "posrelay/midtrans/confirmation.hpp"
#include "posrelay/store/redis_poll_schedule.hpp"

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
    o.confirm_paid = c.confirm_paid;
    for (const auto& [merchant, key] : c.merchant_keys)
        o.merchant_auth.emplace(merchant, midtrans::basic_authorization(key.view()));
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

using midtrans::confirmation_verdict;
using store::field_of;
using store::int_field;

// An entry claimed from the poll schedule or the confirmation set.
struct claimed {
    std::string id;
    std::string previous;  // the node whose lease lapsed, "" when none
    bool confirm = false;  // from the confirmation set
};
}  // namespace

struct scheduler::impl : std::enable_shared_from_this<scheduler::impl> {
    impl(io_pool& p, store::order_store& s, store::poll_schedule& ps, midtrans::api_calls& a,
         poll_options o, metrics::registry& reg)
        : pool(p),
          store(s),
          schedule(ps),
          api(a),
          opts(std::move(o)),
          merchant_auth(std::make_shared<const auth_map>(opts.merchant_auth)),
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
                                  "Orders expired by posrelay at their deadline (short expiry).")),
          claims_denied(reg.add_counter(
              "posrelay_paid_claims_denied_total",
              "Notifications claiming a change of paid that Midtrans's GET status did not confirm "
              "(never sent to terminals): a security event, alert on any increase.")),
          confirm_due_gauge(reg.add_gauge("posrelay_paid_confirmations_due",
                                          "Claims waiting for confirmation in the fleet's set.")),
          confirm_inflight_gauge(reg.add_gauge("posrelay_paid_confirmations_inflight",
                                               "Confirmations in flight on this node.")),
          confirm_waiting_gauge(reg.add_gauge(
              "posrelay_paid_confirmations_waiting",
              "Claims committed on this node waiting for a confirmation slot "
              "(--poll-concurrency in flight; at most 10,000, past that a claim waits for its "
              "lease to lapse).")),
          confirm_latency(reg.add_histogram(
              "posrelay_paid_confirmation_seconds",
              "From a notification's commit as a claim to the commit of Midtrans's confirming "
              "answer (the delay confirmation adds to a paid event).",
              metrics::latency_buckets())) {
        for (auto v : {confirmation_verdict::confirmed, confirmation_verdict::denied,
                       confirmation_verdict::retry}) {
            confirmations[static_cast<int>(v)] = &reg.add_counter(
                "posrelay_paid_confirmations_total",
                "Answers of Midtrans's GET status to claims, by outcome (confirmed, denied, retry: "
                "no usable answer, asked again later).",
                {{"outcome", std::string(midtrans::to_string(v))}});
        }
        for (int applied = 0; applied < 2; ++applied) {
            conflicts[applied] = &reg.add_counter(
                "posrelay_status_conflicts_total",
                "Updates changing whether an order is paid against the transition table "
                "(settlement after cancel, cancel after settlement...), confirmed with Midtrans "
                "and reported to terminals, by resolution (applied: Midtrans said so; rejected).",
                {{"resolution", applied ? "applied" : "rejected"}});
        }
        for (auto outcome : {"pending", "final", "not_found", "rate_limited", "error", "expired"}) {
            calls[outcome] = &reg.add_counter(
                "posrelay_poll_calls_total",
                "Midtrans calls made by the poll scheduler by outcome.", {{"outcome", outcome}});
        }
        reg.add_counter_fn("posrelay_poll_rate_limit_wait_seconds_total",
                           "Time polls waited for the fleet-wide rate limit.", {},
                           [this] { return static_cast<double>(waited_ms.load()) / 1000.0; });
    }

    // 'done' on the poll schedule (or, with `confirm`, the confirmation set): drops the entry,
    // or makes it due again at `next_due`, and releases its lease.
    asio::awaitable<void> done(const std::string& id, std::optional<std::int64_t> next_due,
                               bool confirm = false) {
        (void)co_await schedule.done(confirm ? store::poll_set::confirm : store::poll_set::due, id,
                                     next_due);
    }

    // Waits for the fleet's rate limit on `t`. A `priority` call (a confirmation) may run up to
    // one second of the budget ahead, which later ordinary polls pay back by waiting: it goes
    // first and still counts. With --poll-rate 0 there is no budget: true at once. False when
    // stopping.
    asio::awaitable<bool> take_token(asio::steady_timer& t, bool priority) {
        if (opts.rate == 0) co_return true;
        const double interval = 1000.0 / opts.rate;
        // A little slack over a whole second so that network jitter between the grant and
        // Midtrans's receipt cannot squeeze rate+1 calls into one of Midtrans's seconds.
        const auto interval_ms = static_cast<std::int64_t>(interval * 1.02) + 1;
        auto tau_ms = interval_ms * (static_cast<std::int64_t>(opts.burst) - 1);
        if (priority) tau_ms += interval_ms * static_cast<std::int64_t>(opts.rate);
        while (!stopping.load()) {
            auto [ec, granted] = co_await schedule.take(interval_ms, tau_ms);
            const std::int64_t wait = ec ? 500 : std::min<std::int64_t>(granted, 5000);
            if (wait == 0) co_return true;
            waited_ms += static_cast<std::uint64_t>(wait);
            t.expires_after(milliseconds(wait));
            (void)co_await t.async_wait(nothrow);
        }
        co_return false;
    }

    // Claims up to `max` due entries of `set` into `queue`: confirmations in front, polls
    // behind. Returns the set's earliest due time left (Unix ms), if any.
    asio::awaitable<std::optional<std::int64_t>> claim(store::poll_set set, unsigned max,
                                                       std::deque<claimed>& queue) {
        const bool confirm = set == store::poll_set::confirm;
        auto [ec, batch] = co_await schedule.claim(set, opts.lease, max, opts.node);
        if (ec) co_return std::nullopt;
        for (auto& e : batch.entries) {
            claimed c{std::move(e.order_id), std::move(e.previous), confirm};
            if (confirm) {
                queue.push_front(std::move(c));
            } else {
                queue.push_back(std::move(c));
            }
        }
        co_return batch.next_due_ms;
    }

    asio::awaitable<void> loop() {
        std::deque<claimed> queue;
        auto last_stats = std::chrono::steady_clock::time_point{};
        auto last_confirm = std::chrono::steady_clock::time_point{};
        while (!stopping.load()) {
            const auto now = std::chrono::steady_clock::now();
            if (now - last_stats > std::chrono::seconds(1)) {
                co_await update_stats();
                last_stats = now;
            }
            // Lapsed confirmations first (their node died), looked for at least once a second.
            if (opts.confirm_paid &&
                (queue.empty() || now - last_confirm > std::chrono::seconds(1))) {
                (void)co_await claim(store::poll_set::confirm, 16, queue);
                last_confirm = now;
            }
            if (queue.empty()) {
                std::int64_t sleep_ms = 1000;
                if (opts.rate > 0) {
                    // About a second of the fleet's budget: short waits, so leases never lapse.
                    const auto batch = std::clamp<unsigned>(opts.rate, 1, 200);
                    if (auto next = co_await claim(store::poll_set::due, batch, queue))
                        sleep_ms = std::clamp<std::int64_t>(*next - store::unix_ms_now(), 10, 1000);
                }
                if (queue.empty()) {
                    if (stopping.load()) break;  // stop() may have cancelled before this wait
                    timer.expires_after(milliseconds(sleep_ms));
                    (void)co_await timer.async_wait(nothrow);
                    continue;
                }
            }
            while (inflight >= opts.concurrency && !stopping.load()) {
                slot.expires_after(std::chrono::seconds(1));
                (void)co_await slot.async_wait(nothrow);
            }
            claimed c = std::move(queue.front());
            queue.pop_front();
            // A confirmation takes its (priority) token itself.
            if (!c.confirm && !co_await take_token(timer, false)) break;
            dispatch(std::move(c));
        }
    }

    // Starts the poll or confirmation of a claimed entry on the first io thread.
    void dispatch(claimed c) {
        if (!c.previous.empty()) {
            takeovers.inc();
            log::line(log::level::info,
                      c.confirm ? "confirmation lease taken over" : "poll lease taken over")
                .str("order_id", c.id)
                .str("from", c.previous);
        }
        ++inflight;
        inflight_gauge.add(1);
        auto work = c.confirm ? confirm_one(std::move(c.id)) : poll_one(std::move(c.id));
        asio::co_spawn(pool.context(0), std::move(work),
                       [self = shared_from_this()](std::exception_ptr e) {
                           --self->inflight;
                           self->inflight_gauge.sub(1);
                           self->slot.cancel();
                           log::escaped(e, "poll");
                       });
    }

    asio::awaitable<void> update_stats() {
        auto [ec, st] = co_await schedule.stats();
        if (ec) co_return;
        due_gauge.set(st.due);
        std::int64_t late = 0;
        if (st.oldest_due_ms)
            late = std::max<std::int64_t>(0, store::unix_ms_now() - *st.oldest_due_ms);
        overdue_gauge.set(late / 1000);
        confirm_due_gauge.set(st.confirm);
    }

    // Confirms the claim of order `id` with Midtrans's GET status and commits the answer (see
    // include/posrelay/midtrans/confirmation.hpp). For a claim this node just committed, or
    // one claimed from the confirmation set after its lease lapsed.
    asio::awaitable<void> confirm_one(std::string id) {
        auto [ec, order] = co_await store.read_order(id);
        if (ec) {
            co_await done(id, store::unix_ms_now() + 1000, true);
            co_return;
        }
        std::string text = order ? field_of(*order, "claim") : std::string();
        const auto held = midtrans::parse_claim(text);
        if (!held) {
            co_await done(id, std::nullopt, true);  // resolved meanwhile, or never a claim
            co_return;
        }
        asio::steady_timer wait(co_await asio::this_coro::executor);
        if (!co_await take_token(wait, true)) co_return;  // stopping: the lease lapses
        // The key that verified the notification: its merchant's, else the default.
        std::string auth;
        const auto keys = merchant_auth.load();
        if (const auto key = keys->find(held->merchant_id); key != keys->end()) auth = key->second;
        const midtrans::http_result http = co_await api.status(id, std::move(auth));
        std::optional<midtrans::api_answer> answer;
        if (!http.ec) answer = midtrans::read_answer(http.status, http.body);
        const auto d = midtrans::judge_confirmation(held->state, answer);
        std::optional<ingest::status_update> u;
        if (d.midtrans) {
            if (answer->order_id.empty()) answer->order_id = id;
            if (answer->gross_amount.empty())
                answer->gross_amount = field_of(*order, "gross_amount");
            u = midtrans::to_status_update(*answer, ingest::update_source::poll,
                                           store::unix_ms_now());
        }
        if (d.verdict == confirmation_verdict::retry || (d.midtrans && !u)) {
            co_await retry_confirm(id, *order, http, answer);
            co_return;
        }
        store::claim_resolution res;
        res.order_id = id;
        res.claim = std::move(text);
        res.denied = d.verdict == confirmation_verdict::denied;
        res.midtrans = std::move(u);
        auto r = co_await store.resolve_claim(std::move(res));
        if (r.ec) {
            co_await done(id, store::unix_ms_now() + 1000, true);
        } else if (r.outcome != "superseded") {
            report(id, *held, d, r);
        }
    }

    // No usable answer: ask again later (1 s doubling); a 429 pauses the whole fleet.
    asio::awaitable<void> retry_confirm(const std::string& id, const store::order_fields& f,
                                        const midtrans::http_result& http,
                                        const std::optional<midtrans::api_answer>& a) {
        confirmations[static_cast<int>(confirmation_verdict::retry)]->inc();
        (void)co_await store.count_attempt(id, "confirm_attempts");
        auto delay = midtrans::confirmation_retry_delay(
            static_cast<std::uint64_t>(int_field(f, "confirm_attempts")), opts.max_interval);
        if (http.status == 429 || (a && a->status_code == "429")) {
            const auto ra =
                midtrans::parse_retry_after(http.retry_after).value_or(std::chrono::seconds(2));
            (void)co_await schedule.pause(ra);
            delay = std::max<milliseconds>(delay, ra);
        }
        log::line(log::level::warn, "paid confirmation got no answer: retrying")
            .str("order_id", id)
            .num("http_status", http.status)
            .str("status_code", a ? std::string_view(a->status_code) : std::string_view{})
            .str("error", http.ec ? http.ec.message() : std::string())
            .num("retry_in_ms", delay.count());
        co_await done(id, store::unix_ms_now() + delay.count(), true);
    }

    // Metrics and log lines of a resolved claim: a denial is a security event; a conflict is
    // always reported (the order's terminals got its status_conflict event).
    void report(const std::string& id, const midtrans::claim& c,
                const midtrans::confirmation_decision& d, const store::resolve_result& r) {
        confirmations[static_cast<int>(d.verdict)]->inc();
        const std::string_view claimed_status = midtrans::to_string(c.state.status);
        const std::string_view said =
            d.midtrans ? midtrans::to_string(d.midtrans->status) : std::string_view("not_found");
        if (d.verdict == confirmation_verdict::confirmed) {
            const auto ms = std::max<std::int64_t>(0, store::unix_ms_now() - c.at_ms);
            confirm_latency.observe(static_cast<double>(ms) / 1000.0);
        } else {
            claims_denied.inc();
            log::line(log::level::warn, "paid claim denied by midtrans")
                .str("event", "security")
                .str("order_id", id)
                .str("claimed_status", claimed_status)
                .str("claimed_status_code", c.status_code)
                .str("midtrans_status", said);
        }
        if (!r.conflict) return;
        const bool applied = r.outcome == "new";
        conflicts[applied ? 1 : 0]->inc();
        log::line(log::level::warn, "status conflict")
            .str("order_id", id)
            .str("previous_status", r.previous_status)
            .str("claimed_status", claimed_status)
            .str("midtrans_status", said)
            .boolean("applied", applied);
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
        // A claim whose commit's node died before adding it to the confirmation set (a
        // separate call, another slot): added now, due at once (kept as is when present).
        if (opts.confirm_paid && !field_of(f, "claim").empty())
            (void)co_await schedule.enrol(store::poll_set::confirm, id, store::unix_ms_now(), "");
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
        (void)co_await store.count_attempt(id, "poll_attempts");

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
                (void)co_await schedule.pause(ra);
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
    store::order_store& store;
    store::poll_schedule& schedule;
    std::shared_ptr<store::poll_schedule> schedule_owner;  // the Redis one, when made here
    midtrans::api_calls& api;
    poll_options opts;
    // opts.merchant_auth as a reload left it: each confirmation reads one snapshot.
    using auth_map = std::map<std::string, std::string, std::less<>>;
    std::atomic<std::shared_ptr<const auth_map>> merchant_auth;
    asio::steady_timer timer;
    asio::steady_timer slot;  // woken when a poll finishes
    std::mt19937_64 rng;
    std::atomic<bool> stopping{false};
    // The poll loop runs (start() to its end): stop() waits for it, so that the io threads do
    // not stop under a loop suspended in a Redis call (its frame, and this, would leak).
    std::mutex loop_m;
    std::condition_variable loop_cv;
    bool loop_running = false;
    std::size_t inflight = 0;
    std::atomic<std::uint64_t> waited_ms{0};
    metrics::gauge& due_gauge;
    metrics::gauge& overdue_gauge;
    metrics::gauge& inflight_gauge;
    metrics::counter& resolved;
    metrics::counter& takeovers;
    metrics::counter& unknown;
    metrics::counter& expired;
    metrics::counter& claims_denied;
    metrics::gauge& confirm_due_gauge;
    metrics::gauge& confirm_inflight_gauge;
    metrics::gauge& confirm_waiting_gauge;
    metrics::histogram& confirm_latency;
    std::atomic<std::size_t> confirm_inflight{0};  // started by confirm(), any io thread
    // Claims of this node waiting for a slot, started as confirmations finish (bounded).
    static constexpr std::size_t max_confirm_waiting = 10'000;
    std::mutex confirm_waiting_mutex;
    std::deque<std::string> confirm_waiting;
    metrics::counter* confirmations[3];  // by confirmation_verdict
    metrics::counter* conflicts[2];      // rejected, applied
    std::map<std::string, metrics::counter*, std::less<>> calls;
};

scheduler::scheduler(io_pool& pool, store::redis_store& store, midtrans::client& api,
                     poll_options o, metrics::registry& reg) {
    auto schedule = std::make_shared<store::redis_poll_schedule>(store, reg);
    impl_ = std::make_shared<impl>(pool, store, *schedule, api, std::move(o), reg);
    impl_->schedule_owner = std::move(schedule);
}

scheduler::scheduler(io_pool& pool, store::order_store& store, store::poll_schedule& schedule,
                     midtrans::api_calls& api, poll_options o, metrics::registry& reg)
    : impl_(std::make_shared<impl>(pool, store, schedule, api, std::move(o), reg)) {}

scheduler::~scheduler() {
    stop();
}

void scheduler::start() {
    if (impl_->opts.rate == 0 && !impl_->opts.confirm_paid) return;
    auto self = impl_;
    {
        std::lock_guard lock(self->loop_m);
        self->loop_running = true;
    }
    asio::co_spawn(impl_->pool.context(0), self->loop(), [self](std::exception_ptr e) {
        log::escaped(e, "poll loop");
        std::lock_guard lock(self->loop_m);
        self->loop_running = false;
        self->loop_cv.notify_all();
    });
}

// Starts a confirmation on the calling io thread. When it finishes, the oldest claim waiting
// for a slot (if any) starts in its place.
void scheduler::start_confirm(const std::shared_ptr<impl>& self, std::string order_id) {
    self->confirm_inflight_gauge.add(1);
    asio::co_spawn(self->pool.context(io_pool::current_index()),
                   self->confirm_one(std::move(order_id)), [self](std::exception_ptr e) {
                       self->confirm_inflight_gauge.sub(1);
                       log::escaped(e, "paid confirmation");
                       std::optional<std::string> next;
                       {
                           std::lock_guard lock(self->confirm_waiting_mutex);
                           if (!self->confirm_waiting.empty() && !self->stopping.load()) {
                               next = std::move(self->confirm_waiting.front());
                               self->confirm_waiting.pop_front();
                               self->confirm_waiting_gauge.sub(1);
                           }
                       }
                       if (next) {
                           start_confirm(self, std::move(*next));  // keeps its slot
                       } else {
                           --self->confirm_inflight;
                       }
                   });
}

void scheduler::confirm(std::string order_id) {
    auto self = impl_;
    if (self->stopping.load()) return;  // the lease lapses: another node confirms
    if (self->confirm_inflight.fetch_add(1) >= self->opts.concurrency) {
        --self->confirm_inflight;
        std::lock_guard lock(self->confirm_waiting_mutex);
        // Busy: wait for a slot; past the bound the lease lapses and a loop takes the claim.
        if (self->confirm_waiting.size() < impl::max_confirm_waiting) {
            self->confirm_waiting.push_back(std::move(order_id));
            self->confirm_waiting_gauge.add(1);
        }
        return;
    }
    start_confirm(self, std::move(order_id));
}

void scheduler::set_merchant_auth(std::map<std::string, std::string, std::less<>> merchant_auth) {
    impl_->merchant_auth.store(std::make_shared<const impl::auth_map>(std::move(merchant_auth)));
}

void scheduler::stop() {
    if (impl_->stopping.exchange(true)) return;
    auto self = impl_;
    asio::post(impl_->pool.context(0), [self] {
        self->timer.cancel();
        self->slot.cancel();
    });
    // Off the io threads (app::stop): wait, bounded, for the loop to end while Redis is up.
    if (io_pool::current_index() < impl_->pool.size()) return;
    std::unique_lock lock(self->loop_m);
    self->loop_cv.wait_for(lock, std::chrono::seconds(3), [&] { return !self->loop_running; });
}

}  // namespace posrelay::poll
