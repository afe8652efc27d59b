// The Redis store: the order script run by EVALSHA (lua_script) on each io thread's own
// connection.
#include "posrelay/store/redis_store.hpp"

#include <boost/container/small_vector.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <stdexcept>

#include "posrelay/log.hpp"
#include "posrelay/store/activity_script.hpp"
#include "posrelay/store/keys.hpp"
#include "posrelay/store/order_script.hpp"

namespace posrelay::store {

namespace {

// The fields of an update kept on the order record, besides its status, fraud status and
// status code (which the script takes by position). Fewer fields make a cheaper commit: the
// ones left out (currency, status_message, transaction_type, channel_response_*) are fixed
// or free text for GoPay/QRIS, or card-only.
constexpr ingest::field kept_fields[] = {
    ingest::field::gross_amount,     ingest::field::transaction_id,  ingest::field::payment_type,
    ingest::field::transaction_time, ingest::field::settlement_time, ingest::field::expiry_time,
    ingest::field::merchant_id,      ingest::field::issuer,          ingest::field::acquirer,
};

// An integer in decimal, held on the stack: an argument view without a std::string.
class decimal {
public:
    template <typename Int>
    explicit decimal(Int v) noexcept {
        size_ = static_cast<std::size_t>(std::to_chars(buf_, buf_ + sizeof buf_, v).ptr - buf_);
    }
    [[nodiscard]] std::string_view view() const noexcept { return {buf_, size_}; }

private:
    char buf_[24];  // any 64-bit integer
    std::size_t size_ = 0;
};

// The order script's arguments for an update after the header (prefix, now_ms), shared by its
// modes 'commit' and 'confirm': the mode (ARGV[3]), the positional arguments (ARGV[4..12]), the
// mode's own two (ARGV[13], ARGV[14]), then the update's kept fields and its signer. Views:
// everything passed must outlive the call.
struct update_header {
    std::string_view mode;
    std::string_view order_id, status, source;  // status "" when the update names none
    std::string_view arg13, arg14;
};
using update_args =
    boost::container::small_vector<std::string_view, 16 + 2 * std::size(kept_fields)>;
struct update_numbers {
    decimal now_ms, ttl, history_max, stream_maxlen, stream_ttl;
};
update_args script_args(const update_header& h, const update_numbers& n,
                        const ingest::status_update& u) {
    update_args args{h.mode,
                     n.ttl.view(),
                     n.history_max.view(),
                     n.stream_maxlen.view(),
                     n.stream_ttl.view(),
                     h.order_id,
                     h.status,
                     u.fraud ? midtrans::to_string(*u.fraud) : std::string_view{},
                     h.source,
                     u.get(ingest::field::status_code),
                     h.arg13,
                     h.arg14};
    for (auto f : kept_fields) {
        if (!u.has(f)) continue;
        args.push_back(ingest::field_name(f));
        args.push_back(u.get(f));
    }
    if (!u.signer.empty()) {
        args.push_back("signer");
        args.push_back(u.signer);
    }
    return args;
}

// A poll or API answer refused by the order's binding: no HTTP answer reports it, so the
// store does (the notification route logs its own refusals).
void report_refusal(const ingest::status_update& u, ingest::binding_mismatch m) {
    if (u.source == ingest::update_source::notification) return;
    log::line(log::level::warn, "status update refused")
        .boolean("security", true)
        .str("reason", ingest::to_string(m))
        .str("source", ingest::to_string(u.source))
        .str("order_id", u.order_id())
        .str("transaction_id", u.get(ingest::field::transaction_id))
        .str("gross_amount", u.get(ingest::field::gross_amount));
}

}  // namespace

history_entry parse_history_entry(std::string_view entry) {
    std::string_view part[4];
    for (auto& p : part) {
        const auto bar = entry.find('|');
        p = entry.substr(0, bar);
        entry = bar == std::string_view::npos ? std::string_view{} : entry.substr(bar + 1);
    }
    return {part[0], part[1], part[2], part[3], entry};  // the status code last: whatever it holds
}

redis_store::redis_store(io_pool& pool, redis_options ropts, store_options sopts,
                         metrics::registry& reg)
    : pool_(pool),
      ropts_(std::move(ropts)),
      sopts_(std::move(sopts)),
      registry_(reg),
      redis_metrics_(reg),
      order_script_("order", detail::order_script, reg),
      activity_script_("activity", detail::activity_script, reg),
      commit_errors_(
          reg.add_counter("posrelay_commit_errors_total",
                          "Commits that failed (Redis down, timeout, bad reply): answered 503.")),
      replicas_short_(reg.add_counter(
          "posrelay_redis_replicas_not_acknowledged_total",
          "Writes answered as failed because fewer replicas than --redis-min-replicas-ack "
          "acknowledged them within --redis-replicas-ack-timeout (WAIT).")),
      commit_latency_(
          reg.add_histogram("posrelay_commit_duration_seconds",
                            "Time of one commit (the order script) in Redis, round trip.",
                            metrics::latency_buckets())),
      routes_(sopts_.route_cache_entries, std::chrono::hours(1)),
      route_hits_(reg.add_counter("posrelay_order_route_cache_total",
                                  "Order → store routes looked up in this node's memory (hit) "
                                  "or read from Redis (miss).",
                                  {{"result", "hit"}})),
      route_misses_(reg.add_counter("posrelay_order_route_cache_total",
                                    "Order → store routes looked up in this node's memory (hit) "
                                    "or read from Redis (miss).",
                                    {{"result", "miss"}})),
      adoptions_(reg.add_counter(
          "posrelay_order_adoptions_total",
          "Records written before their order was routed (or of key schema version 3) moved "
          "into their store's slot.")),
      published_(reg.add_counter("posrelay_events_published_total",
                                 "Events this node's commits sent out on their store's channel "
                                 "(SPUBLISH), one per recipient terminal.")) {
    for (auto o : {ingest::commit_outcome::new_update, ingest::commit_outcome::duplicate,
                   ingest::commit_outcome::stale, ingest::commit_outcome::confirming,
                   ingest::commit_outcome::refused}) {
        commits_[static_cast<int>(o)] =
            &reg.add_counter("posrelay_commits_total",
                             "Status updates committed, by outcome (new, duplicate, stale, "
                             "confirming, refused: bound to another merchant, amount or "
                             "transaction), from every source (notification, poll, api).",
                             {{"outcome", std::string(ingest::to_string(o))}});
    }
}

redis_store::~redis_store() {
    stop();
}

void redis_store::start() {
    // Load the scripts on every (re)connect of every connection so the first EVALSHA finds them.
    auto hook = [this](redis_connection* raw) -> redis_connection::on_connect_fn {
        return [raw, this]() -> boost::asio::awaitable<void> {
            co_await require_redis_7(*raw);
            co_await order_script_.load(*raw);
            co_await activity_script_.load(*raw);
            for (const auto& s : scripts_)
                co_await s->load(*raw);
        };
    };
    started_at_ = std::chrono::steady_clock::now();
    if (!ropts_.cluster_seeds.empty()) {
        cluster_metrics_ = std::make_unique<cluster_metrics>(registry_);
        topology_ = std::make_shared<cluster_topology>(pool_.context(0).get_executor(), ropts_,
                                                       redis_metrics_, *cluster_metrics_, hook);
        for (std::size_t i = 0; i < pool_.size(); ++i) {
            auto c = std::make_shared<redis_client>(pool_.context(i).get_executor(), topology_);
            topology_->add_client(c);
            connections_.push_back(std::move(c));
        }
        topology_->start();
    } else {
        for (std::size_t i = 0; i < pool_.size(); ++i) {
            auto c = std::make_shared<redis_connection>(pool_.context(i).get_executor(), ropts_,
                                                        redis_metrics_);
            c->start(hook(c.get()));
            connections_.push_back(std::make_shared<redis_client>(std::move(c)));
        }
    }
    log::line(log::level::info, "redis store started")
        .str("redis", ropts_.describe())
        .num("connections", static_cast<std::int64_t>(connections_.size()));
}

void redis_store::add_script(std::shared_ptr<const lua_script> s) {
    if (!connections_.empty()) throw std::logic_error("redis_store::add_script after start()");
    scripts_.push_back(std::move(s));
}

void redis_store::stop() {
    if (topology_) topology_->stop();
    for (auto& c : connections_)
        c->stop();
}

bool redis_store::ready() const noexcept {
    if (connections_.empty()) return false;
    // A Cluster with some primaries down still serves the other slots' orders: every node sees
    // the same cluster, so taking them all out of service would turn a partial outage into a
    // whole one. /readyz then says "degraded" with the coverage.
    if (topology_) {
        const std::size_t covered = *cluster_slots_covered();
        const bool grace_over =
            std::chrono::steady_clock::now() - started_at_ > 2 * ropts_.connect_timeout;
        return cluster::in_service(covered, whole_once_.load(std::memory_order_relaxed),
                                   grace_over);
    }
    for (const auto& c : connections_) {
        if (!c->connected()) return false;
    }
    return true;
}

std::optional<std::size_t> redis_store::cluster_slots_covered() const {
    if (!topology_) return std::nullopt;
    const std::size_t covered = topology_->slots_covered();
    if (covered >= cluster::slot_count) whole_once_.store(true, std::memory_order_relaxed);
    return covered;
}

redis_client& redis_store::local() {
    const std::size_t i = io_pool::current_index();
    if (i >= connections_.size()) {
        throw std::logic_error("redis_store used outside its io threads");
    }
    return *connections_[i];
}

boost::asio::awaitable<std::pair<boost::system::error_code, redis_reply>> redis_store::run_script(
    std::string_view order_id, std::string_view now_ms, redis_args args) {
    auto [ec, store] = co_await find_route(order_id);
    if (ec) co_return std::pair{ec, redis_reply{}};
    if (store.empty()) {
        // A record of key schema version 3 names its store: moved there first.
        const std::string old = keys::unrouted_order(sopts_.prefix, order_id);
        auto [hec, h] = co_await local().exec(redis_command("HGET", old, "store_id"));
        if (hec) co_return std::pair{hec, redis_reply{}};
        if (h.type == redis_reply::kind::string && !h.str.empty()) {
            auto [cec, routed] = co_await claim_route(std::string(order_id), h.str);
            if (cec) co_return std::pair{cec, redis_reply{}};
            store = std::move(routed);
        }
    }
    co_return co_await run_on(store, order_id, now_ms, args);
}

boost::asio::awaitable<std::pair<boost::system::error_code, redis_reply>> redis_store::eval_script(
    std::span<const std::string_view> keys, std::string_view now_ms, redis_args args) {
    const script_header header{sopts_.prefix, now_ms};
    co_return co_await order_script_.exec(local(), keys, header, args);
}

boost::asio::awaitable<std::pair<boost::system::error_code, redis_reply>> redis_store::run_script(
    std::string_view order_id, std::string_view now_ms, const std::vector<std::string>& args) {
    const std::vector<std::string_view> views(args.begin(), args.end());
    co_return co_await run_script(order_id, now_ms, redis_args(views));
}

boost::asio::awaitable<ingest::commit_result> redis_store::commit(ingest::status_update u) {
    const auto started = std::chrono::steady_clock::now();
    // Views of `u` and of the numbers below: no string is built per argument.
    const update_numbers n{decimal(u.received_unix_ms ? u.received_unix_ms : unix_ms_now()),
                           decimal(key_ttl().count()), decimal(sopts_.history_max),
                           decimal(sopts_.stream_maxlen), decimal(sopts_.stream_ttl.count())};
    const decimal lease(sopts_.confirm_lease.count());
    const auto args = script_args(
        {"commit", u.order_id(), midtrans::to_string(u.status), ingest::to_string(u.source),
         sopts_.confirm_lease.count() > 0 ? lease.view() : std::string_view{}, sopts_.node},
        n, u);
    auto [ec, reply] =
        co_await run_update(u.order_id(), n.now_ms.view(), redis_args(args.data(), args.size()));
    ingest::commit_result r;
    if (!ec && (reply.type != redis_reply::kind::array || reply.elements.size() < 2)) {
        ec = make_error_code(redis_errc::protocol_error);
        log::line(log::level::error, "unexpected commit reply")
            .str("reply", reply.is_error() ? std::string_view(reply.str) : "not an array");
    }
    if (ec) {
        commit_errors_.inc();
        r.ec = ec;
        co_return r;
    }
    const std::string& outcome = reply.elements[0].str;
    r.outcome = outcome == "new"          ? ingest::commit_outcome::new_update
                : outcome == "duplicate"  ? ingest::commit_outcome::duplicate
                : outcome == "confirming" ? ingest::commit_outcome::confirming
                : outcome == "refused"    ? ingest::commit_outcome::refused
                                          : ingest::commit_outcome::stale;
    if (r.outcome == ingest::commit_outcome::refused) {
        r.mismatch = ingest::binding_mismatch_from(reply.elements[1].str);
        report_refusal(u, r.mismatch);
    } else {
        r.event_id = std::move(reply.elements[1].str);
        count_published(reply);
        // Answered 200 next: replicated first. A duplicate or stale update wrote nothing now
        // (the first try may have been answered 503 after its WAIT fell short).
        const bool wrote = r.outcome == ingest::commit_outcome::new_update ||
                           r.outcome == ingest::commit_outcome::confirming;
        r.ec = co_await acknowledged(u.order_id(), wrote);
    }
    commits_[static_cast<int>(r.outcome)]->inc();
    // A final status: nothing left to poll for. Only register and reserve enrol an order, and
    // both route it; an order with no route has no event id and was never enrolled (an entry
    // left by a failed registration is dropped by the scheduler when it finds the order final).
    if (r.outcome == ingest::commit_outcome::new_update &&
        u.status != midtrans::transaction_status::pending && !r.event_id.empty()) {
        co_await unschedule(std::string(u.order_id()), false);
    } else if (r.outcome == ingest::commit_outcome::confirming) {
        co_await add_claim(std::string(u.order_id()),
                           to_int64(n.now_ms.view()) + sopts_.confirm_lease.count());
    }
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
    commit_latency_.observe(took.count());
    co_return r;
}

boost::asio::awaitable<boost::system::error_code> redis_store::acknowledged(
    std::string_view order_id, bool wrote) {
    if (sopts_.replica_ack.replicas == 0) co_return boost::system::error_code{};
    auto [lec, key] = co_await locate_order(std::string(order_id));  // the written record
    if (lec) co_return lec;
    std::optional<std::chrono::milliseconds> touch;
    if (!wrote) touch = std::chrono::duration_cast<std::chrono::milliseconds>(key_ttl());
    co_return co_await wait_replicas(local(), key, sopts_.replica_ack, touch, replicas_short_);
}

boost::asio::awaitable<resolve_result> redis_store::resolve_claim(claim_resolution c) {
    const ingest::status_update none;
    const ingest::status_update& u = c.midtrans ? *c.midtrans : none;
    const update_numbers n{decimal(unix_ms_now()), decimal(key_ttl().count()),
                           decimal(sopts_.history_max), decimal(sopts_.stream_maxlen),
                           decimal(sopts_.stream_ttl.count())};
    const auto args = script_args(
        {"confirm", c.order_id, c.midtrans ? midtrans::to_string(u.status) : std::string_view{},
         ingest::to_string(ingest::update_source::poll), c.claim, c.denied ? "1" : "0"},
        n, u);
    auto [ec, reply] =
        co_await run_update(c.order_id, n.now_ms.view(), redis_args(args.data(), args.size()));
    resolve_result r;
    if (!ec && (reply.type != redis_reply::kind::array || reply.elements.size() < 5)) {
        ec = make_error_code(redis_errc::protocol_error);
        log::line(log::level::error, "unexpected confirm reply")
            .str("reply", reply.is_error() ? std::string_view(reply.str) : "not an array");
    }
    if (ec) {
        r.ec = ec;
        co_return r;
    }
    count_published(reply);
    r.outcome = std::move(reply.elements[0].str);
    r.event_id = std::move(reply.elements[1].str);
    r.conflict = reply.elements[3].str == "1";
    r.previous_status = std::move(reply.elements[4].str);
    if (r.outcome == "superseded") co_return r;  // the newer claim keeps its entry
    co_await unschedule(c.order_id, true);
    if (r.outcome == "new" && u.status != midtrans::transaction_status::pending)
        co_await unschedule(c.order_id, false);
    co_return r;
}

boost::asio::awaitable<register_result> redis_store::register_order(order_registration reg) {
    const decimal now(unix_ms_now());
    std::vector<std::string> args;
    args.emplace_back("register");
    args.push_back(std::to_string(key_ttl().count()));
    args.push_back(std::to_string(sopts_.stream_maxlen));
    args.push_back(std::to_string(sopts_.stream_ttl.count()));
    args.push_back(reg.order_id);
    args.push_back(reg.gross_amount);
    args.push_back(reg.terminal_id);
    args.push_back(reg.store_id);
    args.push_back(std::to_string(reg.expiry_ms));
    const std::string due = first_poll_ms();
    args.push_back(due);
    // Enrolled first: a crash after the script leaves no pending order off the schedule (an
    // entry of an order that turns out final is dropped by the scheduler's first look).
    (void)co_await enrol_due(reg.order_id, due);
    register_result r;
    auto [rec, store] = co_await claim_route(reg.order_id, reg.store_id);
    if (rec) {
        r.ec = rec;
        co_return r;
    }
    const std::vector<std::string_view> views(args.begin(), args.end());
    auto [ec, reply] = co_await run_on(store, reg.order_id, now.view(), views);
    if (!ec && (reply.type != redis_reply::kind::array || reply.elements.size() < 2)) {
        ec = make_error_code(redis_errc::protocol_error);
    }
    if (ec) {
        r.ec = ec;
        co_return r;
    }
    const std::string& outcome = reply.elements[0].str;
    r.outcome = outcome == "created"  ? register_outcome::created
                : outcome == "exists" ? register_outcome::exists
                                      : register_outcome::conflict;
    r.detail = std::move(reply.elements[1].str);
    // Not created: the order was routed already (pending: it belongs on the schedule; final:
    // the scheduler drops the entry when it first looks), so the entry stays.
    count_published(reply);
    if (r.outcome != register_outcome::conflict)
        r.ec = co_await acknowledged(reg.order_id, r.outcome == register_outcome::created);
    co_return r;
}

boost::asio::awaitable<reserve_result> redis_store::reserve_charge(order_registration reg) {
    const decimal now(unix_ms_now());
    std::vector<std::string> args;
    args.emplace_back("reserve");
    args.push_back(std::to_string(key_ttl().count()));
    args.push_back(reg.order_id);
    args.push_back(reg.gross_amount);
    args.push_back(reg.terminal_id);
    args.push_back(reg.store_id);
    args.push_back(std::to_string(reg.expiry_ms));
    const std::string due = first_poll_ms();
    args.push_back(due);
    args.push_back(reg.signer);
    const bool enrolled = co_await enrol_due(reg.order_id, due);  // first: as register_order
    reserve_result r;
    auto [ec, reply] = co_await reserve_on_route(reg, now.view(), args);
    if (!ec && (reply.type != redis_reply::kind::array || reply.elements.size() < 2)) {
        ec = make_error_code(redis_errc::protocol_error);
    }
    if (ec) {
        r.ec = ec;
        co_return r;
    }
    r.outcome =
        reply.elements[0].str == "created" ? reserve_outcome::created : reserve_outcome::taken;
    r.current = std::move(reply.elements[1].str);
    // Taken by a reservation still charging (another charge of this order_id right now): its
    // entry, kept. Otherwise the entry added here goes (the order was not ours to enrol).
    if (enrolled && r.outcome == reserve_outcome::taken && r.current != "charging")
        co_await unschedule(reg.order_id, false);
    if (r.outcome == reserve_outcome::created) r.ec = co_await acknowledged(reg.order_id, true);
    co_return r;
}

// The reservation is made in the order's store's slot. An order already known without a
// route (a notification before it, or a record of key schema version 3) is taken, as it was
// before version 4: it is not routed by a reservation that fails.
boost::asio::awaitable<std::pair<boost::system::error_code, redis_reply>>
redis_store::reserve_on_route(const order_registration& reg, std::string_view now,
                              const std::vector<std::string>& args) {
    const std::vector<std::string_view> views(args.begin(), args.end());
    auto [ec, store] = co_await find_route(reg.order_id);
    if (ec) co_return std::pair{ec, redis_reply{}};
    if (store.empty()) {
        const std::string old = keys::unrouted_order(sopts_.prefix, reg.order_id);
        auto [hec, h] =
            co_await local().exec(redis_command("HMGET", old, "transaction_status", "state"));
        if (hec || h.type != redis_reply::kind::array || h.elements.size() < 2)
            co_return std::pair{hec ? hec : make_error_code(redis_errc::protocol_error),
                                redis_reply{}};
        auto [xec, x] = co_await local().exec(redis_command("EXISTS", old));
        if (xec) co_return std::pair{xec, redis_reply{}};
        if (x.integer == 1) {
            redis_reply taken;
            taken.type = redis_reply::kind::array;
            taken.elements.resize(2);
            taken.elements[0].str = "taken";
            const auto& known =
                h.elements[0].type == redis_reply::kind::string ? h.elements[0] : h.elements[1];
            taken.elements[1].str =
                known.type == redis_reply::kind::string ? known.str : "registered";
            co_return std::pair{boost::system::error_code{}, std::move(taken)};
        }
        auto [cec, routed] = co_await claim_route(reg.order_id, reg.store_id);
        if (cec) co_return std::pair{cec, redis_reply{}};
        store = std::move(routed);
    }
    co_return co_await run_on(store, reg.order_id, now, views);
}

boost::asio::awaitable<boost::system::error_code> redis_store::release_charge(
    std::string order_id, std::string terminal_id) {
    const decimal now(unix_ms_now());
    std::vector<std::string> args{"release", std::move(terminal_id), order_id};
    auto [ec, reply] = co_await run_script(order_id, now.view(), args);
    if (!ec && reply.is_error()) ec = make_error_code(redis_errc::protocol_error);
    if (!ec && !reply.elements.empty() && reply.elements[0].str == "released")
        co_await unschedule(order_id, false);
    co_return ec;
}

boost::asio::awaitable<boost::system::error_code> redis_store::alert_unknown(std::string order_id) {
    const decimal now(unix_ms_now());
    std::vector<std::string> args{"alert", std::to_string(sopts_.stream_maxlen),
                                  std::to_string(sopts_.stream_ttl.count()), order_id};
    auto [ec, reply] = co_await run_script(order_id, now.view(), args);
    if (!ec && reply.is_error()) ec = make_error_code(redis_errc::protocol_error);
    if (!ec) {
        count_published(reply);
        co_await unschedule(order_id, false);
    }
    co_return ec;
}

std::string redis_store::first_poll_ms() const {
    if (sopts_.poll_first_delay.count() <= 0) return {};
    return std::to_string(unix_ms_now() + sopts_.poll_first_delay.count());
}

boost::asio::awaitable<bool> redis_store::enrol_due(const std::string& order_id,
                                                    const std::string& due_ms) {
    if (due_ms.empty()) co_return false;
    const std::string key = keys::poll_due(sopts_.prefix, keys::poll_bucket(order_id));
    auto [ec, r] = co_await local().exec(redis_command("ZADD", key, "NX", due_ms, order_id));
    co_return !ec && r.type == redis_reply::kind::integer && r.integer == 1;
}

// Errors are left alone: an entry left behind is dropped by the scheduler when it finds the
// order final (or gone).
boost::asio::awaitable<void> redis_store::unschedule(const std::string& order_id, bool confirm) {
    const unsigned b = keys::poll_bucket(order_id);
    const std::string set =
        confirm ? keys::poll_confirm(sopts_.prefix, b) : keys::poll_due(sopts_.prefix, b);
    const std::string leases =
        confirm ? keys::poll_confirm_leases(sopts_.prefix, b) : keys::poll_leases(sopts_.prefix, b);
    (void)co_await local().exec(redis_command("ZREM", set, order_id));
    (void)co_await local().exec(redis_command("HDEL", leases, order_id));
}

// A claim is confirmed at once by this node (its lease); another node takes it over when the
// lease lapses. Lost only if this node dies between the commit and here: the scheduler's poll of
// the order then finds the claim and adds it (scheduler.cpp, poll_one).
boost::asio::awaitable<void> redis_store::add_claim(const std::string& order_id,
                                                    std::int64_t due_ms) {
    const unsigned b = keys::poll_bucket(order_id);
    (void)co_await local().exec(redis_command("ZADD", keys::poll_confirm(sopts_.prefix, b),
                                              std::to_string(due_ms), order_id));
    (void)co_await local().exec(
        redis_command("HSET", keys::poll_confirm_leases(sopts_.prefix, b), order_id, sopts_.node));
}

boost::asio::awaitable<boost::system::error_code> redis_store::set_order_fields(
    std::string order_id, order_fields fields) {
    auto [lec, key] = co_await locate_order(order_id);
    if (lec) co_return lec;
    std::vector<std::string> cmd{"HSET", std::move(key)};
    for (auto& [k, v] : fields) {
        cmd.push_back(k);
        cmd.push_back(std::move(v));
    }
    auto [ec, reply] = co_await local().exec(std::move(cmd));
    if (!ec && reply.is_error()) ec = make_error_code(redis_errc::protocol_error);
    co_return ec;
}

boost::asio::awaitable<std::pair<boost::system::error_code, std::optional<order_fields>>>
redis_store::read_order(std::string order_id) {
    auto [ec, reply] = co_await read_record(order_id);
    if (ec) co_return std::pair{ec, std::optional<order_fields>{}};
    if (reply.type != redis_reply::kind::array || reply.elements.empty())
        co_return std::pair{boost::system::error_code{}, std::optional<order_fields>{}};
    order_fields f;
    for (std::size_t i = 0; i + 1 < reply.elements.size(); i += 2)
        f.emplace(std::move(reply.elements[i].str), std::move(reply.elements[i + 1].str));
    // Derived: paid from the status; source, updated_ms, status_code from the newest
    // history entry "now|source|status|fraud|status_code".
    const auto status = f.find("transaction_status");
    const auto fraud = f.find("fraud_status");
    std::optional<midtrans::fraud_status> fs;
    if (fraud != f.end()) fs = midtrans::parse_fraud_status(fraud->second);
    const auto st =
        status == f.end() ? std::nullopt : midtrans::parse_transaction_status(status->second);
    f.emplace("paid", st && midtrans::is_paid(*st, fs) ? "1" : "0");
    if (auto changes = f.find("changes"); changes != f.end()) {
        if (auto h = f.find("h:" + changes->second);
            h != f.end() && std::count(h->second.begin(), h->second.end(), '|') >= 4) {
            const history_entry e = parse_history_entry(h->second);
            std::string updated(e.at_ms), source(e.source), code(e.status_code);
            f.emplace("updated_ms", std::move(updated));
            f.emplace("source", std::move(source));
            f.emplace("status_code", std::move(code));
        }
    }
    co_return std::pair{boost::system::error_code{}, std::optional<order_fields>{std::move(f)}};
}

boost::asio::awaitable<std::pair<boost::system::error_code, std::optional<order_record>>>
redis_store::read_order_record(std::string order_id) {
    auto [ec, fields] = co_await read_record(order_id);
    if (ec) co_return std::pair{ec, std::optional<order_record>{}};
    if (fields.type != redis_reply::kind::array || fields.elements.empty()) {
        co_return std::pair{boost::system::error_code{}, std::optional<order_record>{}};
    }
    order_record r;
    r.reserve(fields.elements.size() / 2);
    for (std::size_t i = 0; i + 1 < fields.elements.size(); i += 2)
        r.emplace_back(std::move(fields.elements[i].str), std::move(fields.elements[i + 1].str));
    co_return std::pair{boost::system::error_code{}, std::optional<order_record>{std::move(r)}};
}

boost::asio::awaitable<boost::system::error_code> redis_store::count_attempt(std::string order_id,
                                                                             std::string field) {
    co_return co_await increment_order_field(std::move(order_id), std::move(field));
}

std::int64_t unix_ms_now() noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string field_of(const order_fields& f, std::string_view name) {
    auto it = f.find(name);
    return it == f.end() ? std::string() : it->second;
}

std::int64_t to_int64(std::string_view s) noexcept {
    std::int64_t v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}

std::int64_t int_field(const order_fields& f, std::string_view name) {
    const auto it = f.find(name);
    return it == f.end() ? 0 : to_int64(it->second);
}

}  // namespace posrelay::store
