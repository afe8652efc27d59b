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

bool is_numeric_field(std::string_view name) {
    return name.ends_with("_ms");
}

// A history entry as the script writes it: "at_ms|source|status|fraud|status_code".
struct history_entry {
    std::string_view at_ms, source, status, fraud, status_code;
};

history_entry parse_history_entry(std::string_view entry) {
    std::string_view part[4];
    for (auto& p : part) {
        const auto bar = entry.find('|');
        p = entry.substr(0, bar);
        entry = bar == std::string_view::npos ? std::string_view{} : entry.substr(bar + 1);
    }
    return {part[0], part[1], part[2], part[3], entry};  // the status code last: whatever it holds
}

std::string_view json_ms(std::string_view digits) {
    const bool ok = !digits.empty() && digits.find_first_not_of("0123456789") == digits.npos;
    return ok ? digits : "null";
}

// One history entry as the JSON object GET /v1/orders shows.
void append_history_entry(std::string& json, std::string_view entry) {
    const history_entry h = parse_history_entry(entry);
    json += R"({"at_ms":)";
    json += json_ms(h.at_ms);
    json += ',';
    log::append_json_member(json, "source", h.source);
    json += ',';
    log::append_json_member(json, "transaction_status", h.status);
    json += ',';
    log::append_json_member(json, "fraud_status", h.fraud);
    json += ',';
    log::append_json_member(json, "status_code", h.status_code);
    json += '}';
}

// The record's fields the newest change tells: source, updated_ms, status_code.
void append_latest_change(std::string& json, std::string_view entry) {
    const history_entry h = parse_history_entry(entry);
    json += ',';
    log::append_json_member(json, "source", h.source);
    json += R"(,"updated_ms":)";
    json += json_ms(h.at_ms);
    json += ',';
    log::append_json_member(json, "status_code", h.status_code);
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

redis_store::redis_store(io_pool& pool, redis_options ropts, store_options sopts,
                         metrics::registry& reg)
    : pool_(pool),
      ropts_(std::move(ropts)),
      sopts_(std::move(sopts)),
      redis_metrics_(reg),
      order_script_("order", detail::order_script, reg),
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
                            metrics::latency_buckets())) {
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
    for (std::size_t i = 0; i < pool_.size(); ++i) {
        auto c = std::make_shared<redis_connection>(pool_.context(i).get_executor(), ropts_,
                                                    redis_metrics_);
        redis_connection* raw = c.get();
        // Load the scripts on every (re)connect so the first EVALSHA finds them.
        c->start([raw, this]() -> boost::asio::awaitable<void> {
            co_await order_script_.load(*raw);
            for (const auto& s : scripts_)
                co_await s->load(*raw);
        });
        connections_.push_back(std::move(c));
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
    for (auto& c : connections_)
        c->stop();
}

bool redis_store::ready() const noexcept {
    if (connections_.empty()) return false;
    for (const auto& c : connections_) {
        if (!c->connected()) return false;
    }
    return true;
}

redis_connection& redis_store::local() {
    const std::size_t i = io_pool::current_index();
    if (i >= connections_.size()) {
        throw std::logic_error("redis_store used outside its io threads");
    }
    return *connections_[i];
}

std::string redis_store::order_key(std::string_view order_id) const {
    return keys::order(sopts_.prefix, order_id);
}

boost::asio::awaitable<std::pair<boost::system::error_code, redis_reply>> redis_store::run_script(
    std::string_view order_id, std::string_view now_ms, redis_args args) {
    const std::string key = order_key(order_id);
    const std::string_view keys[] = {key};
    co_return co_await eval_script(keys, now_ms, args);
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
        co_await run_script(u.order_id(), n.now_ms.view(), redis_args(args.data(), args.size()));
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
        // Answered 200 next: replicated first. A duplicate or stale update wrote nothing now
        // (the first try may have been answered 503 after its WAIT fell short).
        const bool wrote = r.outcome == ingest::commit_outcome::new_update ||
                           r.outcome == ingest::commit_outcome::confirming;
        r.ec = co_await acknowledged(u.order_id(), wrote);
    }
    commits_[static_cast<int>(r.outcome)]->inc();
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
    commit_latency_.observe(took.count());
    co_return r;
}

boost::asio::awaitable<boost::system::error_code> redis_store::acknowledged(
    std::string_view order_id, bool wrote) {
    if (sopts_.replica_ack.replicas == 0) co_return boost::system::error_code{};
    const std::string key = order_key(order_id);
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
        co_await run_script(c.order_id, n.now_ms.view(), redis_args(args.data(), args.size()));
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
    r.outcome = std::move(reply.elements[0].str);
    r.event_id = std::move(reply.elements[1].str);
    r.conflict = reply.elements[3].str == "1";
    r.previous_status = std::move(reply.elements[4].str);
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
    args.push_back(first_poll_ms());
    auto [ec, reply] = co_await run_script(reg.order_id, now.view(), args);
    register_result r;
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
    args.push_back(first_poll_ms());
    args.push_back(reg.signer);
    auto [ec, reply] = co_await run_script(reg.order_id, now.view(), args);
    reserve_result r;
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
    if (r.outcome == reserve_outcome::created) r.ec = co_await acknowledged(reg.order_id, true);
    co_return r;
}

boost::asio::awaitable<boost::system::error_code> redis_store::release_charge(
    std::string order_id, std::string terminal_id) {
    const decimal now(unix_ms_now());
    std::vector<std::string> args{"release", std::move(terminal_id), order_id};
    auto [ec, reply] = co_await run_script(order_id, now.view(), args);
    if (!ec && reply.is_error()) ec = make_error_code(redis_errc::protocol_error);
    co_return ec;
}

boost::asio::awaitable<boost::system::error_code> redis_store::alert_unknown(std::string order_id) {
    const decimal now(unix_ms_now());
    std::vector<std::string> args{"alert", std::to_string(sopts_.stream_maxlen),
                                  std::to_string(sopts_.stream_ttl.count()), order_id};
    auto [ec, reply] = co_await run_script(order_id, now.view(), args);
    if (!ec && reply.is_error()) ec = make_error_code(redis_errc::protocol_error);
    co_return ec;
}

std::string redis_store::first_poll_ms() const {
    if (sopts_.poll_first_delay.count() <= 0) return {};
    return std::to_string(unix_ms_now() + sopts_.poll_first_delay.count());
}

boost::asio::awaitable<boost::system::error_code> redis_store::set_order_fields(
    std::string order_id, order_fields fields) {
    std::vector<std::string> cmd{"HSET", order_key(order_id)};
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
    auto [ec, reply] = co_await local().exec(redis_command("HGETALL", order_key(order_id)));
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

boost::asio::awaitable<std::pair<boost::system::error_code, std::optional<std::string>>>
redis_store::order_json(std::string order_id) {
    auto [ec, fields] = co_await local().exec(redis_command("HGETALL", order_key(order_id)));
    if (ec) co_return std::pair{ec, std::optional<std::string>{}};
    if (fields.type != redis_reply::kind::array || fields.elements.empty()) {
        co_return std::pair{boost::system::error_code{}, std::optional<std::string>{}};
    }
    std::string json = R"({"order_id":")";
    log::append_json_escaped(json, order_id);
    json += '"';
    std::optional<midtrans::transaction_status> status;
    std::optional<midtrans::fraud_status> fraud;
    std::vector<std::pair<unsigned long, std::string_view>> history;  // (N, entry) of 'h:N'
    for (std::size_t i = 0; i + 1 < fields.elements.size(); i += 2) {
        const std::string& name = fields.elements[i].str;
        const std::string& value = fields.elements[i + 1].str;
        if (name.starts_with("h:")) {
            history.emplace_back(std::strtoul(name.c_str() + 2, nullptr, 10), value);
            continue;
        }
        // The script's own fields, and the ones derived below.
        if (name.starts_with("seen:") || name == "changes" || name == "order_id" ||
            name == "paid" || name == "source" || name == "updated_ms" || name == "status_code") {
            continue;
        }
        if (name == "transaction_status") status = midtrans::parse_transaction_status(value);
        if (name == "fraud_status") fraud = midtrans::parse_fraud_status(value);
        json += ",\"";
        log::append_json_escaped(json, name);
        json += "\":";
        if (is_numeric_field(name)) {
            json += json_ms(value);
        } else if (name == "fraud_status" && value.empty()) {
            json += "null";
        } else {
            json += '"';
            log::append_json_escaped(json, value);
            json += '"';
        }
    }
    if (!status) json += R"(,"transaction_status":null)";
    json += R"(,"paid":)";
    json += status && midtrans::is_paid(*status, fraud) ? "true" : "false";
    std::sort(history.begin(), history.end());
    if (!history.empty()) append_latest_change(json, history.back().second);
    json += R"(,"history":[)";
    for (std::size_t i = 0; i < history.size(); ++i) {
        if (i) json += ',';
        append_history_entry(json, history[i].second);
    }
    json += "]}";
    co_return std::pair{boost::system::error_code{}, std::optional<std::string>{std::move(json)}};
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
