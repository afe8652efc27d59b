// Operator API: order lookup and registration, behind a bearer token.
#include "posrelay/http/operator_routes.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <utility>
#include <vector>

#include "posrelay/fanout/control.hpp"
#include "posrelay/fanout/protocol.hpp"
#include "posrelay/log.hpp"
#include "posrelay/midtrans/signature.hpp"
#include "posrelay/midtrans/transaction_status.hpp"
#include "posrelay/store/redis_connection.hpp"

namespace posrelay::http {

namespace {

// ---- GET /v1/orders/{id}: the stored record as JSON ---------------------------------------

bool is_numeric_field(std::string_view name) {
    return name.ends_with("_ms");
}

std::string_view json_ms(std::string_view digits) {
    const bool ok = !digits.empty() && digits.find_first_not_of("0123456789") == digits.npos;
    return ok ? digits : "null";
}

// One history entry as the JSON object GET /v1/orders shows.
void append_history_entry(std::string& json, std::string_view entry) {
    const store::history_entry h = store::parse_history_entry(entry);
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
    const store::history_entry h = store::parse_history_entry(entry);
    json += ',';
    log::append_json_member(json, "source", h.source);
    json += R"(,"updated_ms":)";
    json += json_ms(h.at_ms);
    json += ',';
    log::append_json_member(json, "status_code", h.status_code);
}

// The script's own fields, and the ones derived from the status and the history.
bool hidden_field(std::string_view name) {
    return name.starts_with("seen:") || name == "changes" || name == "order_id" || name == "paid" ||
           name == "source" || name == "updated_ms" || name == "status_code";
}

void append_field(std::string& json, std::string_view name, std::string_view value) {
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

// Percent-decoding is not needed: valid ids contain no reserved characters, and anything
// else is refused by valid_order_id.
std::string_view last_segment(std::string_view target) {
    const auto q = target.find('?');
    if (q != std::string_view::npos) target = target.substr(0, q);
    const auto slash = target.rfind('/');
    return target.substr(slash + 1);
}

// 503: Redis did not answer, or (--redis-min-replicas-ack) the write is on the primary and not
// yet on enough replicas; the operator may retry shortly (a retry of a registration is
// answered once it is replicated).
response store_unavailable(const boost::system::error_code& ec = {}) {
    response res =
        ec == store::redis_errc::replicas_not_acknowledged
            ? json_error(503, "replicas_not_acknowledged",
                         "the order is stored on the Redis primary but not yet on enough "
                         "replicas (--redis-min-replicas-ack), retry later")
            : json_error(503, "store_unavailable", "the order store is unavailable, retry later");
    res.set(beast_http::field::retry_after, "5");
    return res;
}

}  // namespace

// The order's delivery timeline, kept in its store's slot (none for an unrouted order).
boost::asio::awaitable<std::optional<store::delivery_timeline>> operator_routes::timeline_of(
    std::string_view order_id, const store::order_record& record) {
    if (activity_ == nullptr) co_return std::nullopt;
    const auto it = std::find_if(record.begin(), record.end(),
                                 [](const auto& f) { return f.first == "store_id"; });
    if (it == record.end() || it->second.empty()) co_return store::delivery_timeline{};
    auto [ec, t] = co_await activity_->read_timeline(it->second, std::string(order_id));
    if (ec) co_return std::nullopt;
    co_return std::move(t);
}

namespace {

// The order's JSON object without its closing brace.
std::string order_members(std::string_view order_id, const store::order_record& record) {
    std::string json = R"({"order_id":")";
    log::append_json_escaped(json, order_id);
    json += '"';
    std::optional<midtrans::transaction_status> status;
    std::optional<midtrans::fraud_status> fraud;
    std::vector<std::pair<unsigned long, std::string_view>> history;  // (N, entry) of 'h:N'
    for (const auto& [name, value] : record) {
        if (name.starts_with("h:")) {
            history.emplace_back(std::strtoul(name.c_str() + 2, nullptr, 10), value);
            continue;
        }
        if (hidden_field(name)) continue;
        if (name == "transaction_status") status = midtrans::parse_transaction_status(value);
        if (name == "fraud_status") fraud = midtrans::parse_fraud_status(value);
        append_field(json, name, value);
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
    json += ']';
    return json;
}

void append_ms_or_null(std::string& json, std::int64_t ms) {
    json += ms > 0 ? std::to_string(ms) : std::string("null");
}

}  // namespace

std::string order_json(std::string_view order_id, const store::order_record& record) {
    std::string json = order_members(order_id, record);
    json += '}';
    return json;
}

std::string order_json(std::string_view order_id, const store::order_record& record,
                       const std::optional<store::delivery_timeline>& timeline) {
    std::string json = order_members(order_id, record);
    if (!timeline) {
        json += R"(,"deliveries":null})";
        return json;
    }
    json += R"(,"deliveries":[)";
    for (std::size_t i = 0; i < timeline->entries.size(); ++i) {
        const auto& e = timeline->entries[i];
        if (i) json += ',';
        json += '{';
        log::append_json_member(json, "terminal_id", e.terminal);
        json += R"(,"seq":)";
        json += std::to_string(e.seq);
        json += R"(,"written_ms":)";
        append_ms_or_null(json, e.written_ms);
        json += R"(,"acked_ms":)";
        append_ms_or_null(json, e.acked_ms);
        json += '}';
    }
    json += R"(],"deliveries_omitted":)";
    json += std::to_string(timeline->omitted);
    json += '}';
    return json;
}

operator_routes::operator_routes(secret token, store::order_store& store,
                                 store::terminal_activity* activity)
    : token_(std::move(token)), store_(store), activity_(activity) {}

std::optional<response> operator_routes::authorise(const request& req,
                                                   const request_context& ctx) const {
    const auto token = token_.get();
    if (token->empty()) {
        return json_error(403, "operator_api_disabled",
                          "the operator API is disabled: set POSRELAY_OPERATOR_TOKEN");
    }
    const auto h = req[beast_http::field::authorization];
    const std::string_view auth(h.data(), h.size());
    constexpr std::string_view bearer = "Bearer ";
    if (!auth.starts_with(bearer) ||
        !midtrans::constant_time_equal(auth.substr(bearer.size()), token->view())) {
        log::line(log::level::warn, "request rejected")
            .str("route", "operator")
            .str("reason", "unauthorized")
            .str("remote", ctx.remote);
        response res = json_error(401, "unauthorized", "missing or wrong bearer token");
        res.set(beast_http::field::www_authenticate, "Bearer");
        return res;
    }
    return std::nullopt;
}

boost::asio::awaitable<response> operator_routes::get_order(request& req,
                                                            const request_context& ctx) {
    if (auto denied = authorise(req, ctx)) co_return std::move(*denied);
    const std::string_view target(req.target().data(), req.target().size());
    const std::string_view id = last_segment(target);
    if (!valid_order_id(id)) {
        co_return json_error(400, "invalid_value", "order_id must be 1-50 of A-Z a-z 0-9 - _ ~ .",
                             "order_id");
    }
    auto [ec, record] = co_await store_.read_order_record(std::string(id));
    if (ec) {
        co_return store_unavailable();
    }
    if (!record) co_return json_error(404, "order_not_found", "no such order");
    co_return json_response(200, order_json(id, *record, co_await timeline_of(id, *record)));
}

boost::asio::awaitable<response> operator_routes::register_order(request& req,
                                                                 const request_context& ctx) {
    if (auto denied = authorise(req, ctx)) co_return std::move(*denied);
    const auto ct = req[beast_http::field::content_type];
    if (!is_json_content_type(std::string_view(ct.data(), ct.size()))) {
        co_return json_error(415, "unsupported_media_type",
                             "Content-Type must be application/json");
    }
    boost::system::error_code jec;
    const boost::json::value doc = boost::json::parse(req.body(), jec);
    if (jec) co_return json_error(400, "malformed_json", "the body is not JSON: " + jec.message());
    const auto* obj = doc.if_object();
    if (obj == nullptr)
        co_return json_error(400, "not_an_object", "the body must be a JSON object");

    auto str = [&](std::string_view name, bool required,
                   std::string& out) -> std::optional<response> {
        const auto* v = obj->if_contains(name);
        if (v == nullptr || v->is_null()) {
            if (!required) return std::nullopt;
            return json_error(400, "missing_field", std::string(name) + " is required", name);
        }
        if (v->is_string()) {
            out = std::string(v->get_string());
        } else if (v->is_int64() && name == "gross_amount") {
            out = std::to_string(v->get_int64());
        } else {
            return json_error(400, "wrong_type", std::string(name) + " must be a string", name);
        }
        return std::nullopt;
    };
    store::order_registration reg;
    std::string gross, expiry;
    for (auto [name, required, out] :
         {std::tuple{"order_id", true, &reg.order_id}, std::tuple{"gross_amount", true, &gross},
          std::tuple{"terminal_id", true, &reg.terminal_id},
          std::tuple{"store_id", true, &reg.store_id}, std::tuple{"expiry_time", false, &expiry}}) {
        if (auto bad = str(name, required, *out)) co_return std::move(*bad);
    }
    if (!valid_order_id(reg.order_id)) {
        co_return json_error(400, "invalid_value", "order_id must be 1-50 of A-Z a-z 0-9 - _ ~ .",
                             "order_id");
    }
    const auto amount = normalise_gross_amount(gross);
    if (!amount) {
        co_return json_error(400, "invalid_value",
                             "gross_amount must be a positive whole number of rupiah",
                             "gross_amount");
    }
    reg.gross_amount = *amount;
    if (!fanout::valid_id(reg.terminal_id)) {
        co_return json_error(400, "invalid_value", "terminal_id must be 1-64 of A-Z a-z 0-9 - _ .",
                             "terminal_id");
    }
    if (!fanout::valid_id(reg.store_id)) {
        co_return json_error(400, "invalid_value", "store_id must be 1-64 of A-Z a-z 0-9 - _ .",
                             "store_id");
    }
    if (!expiry.empty()) {
        const auto ms = parse_midtrans_time(expiry);
        if (!ms) {
            co_return json_error(400, "invalid_value",
                                 "expiry_time must be 'YYYY-MM-DD HH:MM:SS' (Asia/Jakarta)",
                                 "expiry_time");
        }
        reg.expiry_ms = *ms;
    }
    const auto r = co_await store_.register_order(reg);
    if (r.ec) {
        co_return store_unavailable(r.ec);
    }
    std::string body = R"({"status":")";
    switch (r.outcome) {
        case store::register_outcome::created:
            body += R"(registered","order_id":")";
            log::append_json_escaped(body, reg.order_id);
            body += "\"}";
            log::line(log::level::info, "order registered")
                .str("order_id", reg.order_id)
                .str("terminal_id", reg.terminal_id)
                .str("store_id", reg.store_id);
            co_return json_response(201, std::move(body));
        case store::register_outcome::exists:
            body += R"(exists","order_id":")";
            log::append_json_escaped(body, reg.order_id);
            body += "\"}";
            co_return json_response(200, std::move(body));
        case store::register_outcome::conflict:
            break;
    }
    co_return json_error(
        409, "order_routed_elsewhere",
        "the order is already registered to another terminal/store (" + r.detail + ")",
        "terminal_id");
}

}  // namespace posrelay::http

namespace posrelay::http {

namespace {

// The next '/'-separated segment of `s` (consumed with its '/').
std::string_view next_segment(std::string_view& s) {
    const auto slash = s.find('/');
    const std::string_view seg = s.substr(0, slash);
    s = slash == std::string_view::npos ? std::string_view{} : s.substr(slash + 1);
    return seg;
}

// 400 naming the first of `store`, `terminal` (when not empty) that is not a valid id.
std::optional<response> invalid_ids(const store_path& p, bool terminal_required) {
    if (!fanout::valid_id(p.store)) {
        return json_error(400, "invalid_value", "store_id must be 1-64 of A-Z a-z 0-9 - _ .",
                          "store_id");
    }
    if ((terminal_required || !p.terminal.empty()) && !fanout::valid_id(p.terminal)) {
        return json_error(400, "invalid_value", "terminal_id must be 1-64 of A-Z a-z 0-9 - _ .",
                          "terminal_id");
    }
    return std::nullopt;
}

response control_unavailable(std::string_view what) {
    response res = json_error(503, "store_unavailable", what);
    res.set(beast_http::field::retry_after, "1");
    return res;
}

// {"store_id":"S","terminal_id":"T"|null
std::string target_json(const store_path& p) {
    std::string body = R"({"store_id":")";
    log::append_json_escaped(body, p.store);
    body += R"(","terminal_id":)";
    if (p.terminal.empty()) {
        body += "null";
    } else {
        body += '"';
        log::append_json_escaped(body, p.terminal);
        body += '"';
    }
    return body;
}

}  // namespace

std::optional<store_path> parse_store_path(std::string_view target) noexcept {
    constexpr std::string_view root = "/v1/stores/";
    target = target.substr(0, target.find('?'));
    if (!target.starts_with(root)) return std::nullopt;
    std::string_view rest = target.substr(root.size());
    store_path p;
    p.store = next_segment(rest);
    if (p.store.empty()) return std::nullopt;
    const std::string_view second = next_segment(rest);
    if (second == "terminals" && !rest.empty()) {
        p.terminal = next_segment(rest);
        if (p.terminal.empty()) return std::nullopt;
        p.action = next_segment(rest);
    } else {
        p.action = second;
    }
    if (!rest.empty()) return std::nullopt;  // more segments
    return p;
}

void operator_routes::control_terminals(store::terminal_revocations& revocations,
                                        std::chrono::seconds keep, metrics::registry& reg) {
    revocations_ = &revocations;
    revocation_keep_ = keep;
    constexpr auto help =
        "Revocations recorded through the operator API of this node, by scope (terminal, store).";
    revoked_terminals_ =
        &reg.add_counter("posrelay_terminal_revocations_total", help, {{"scope", "terminal"}});
    revoked_stores_ =
        &reg.add_counter("posrelay_terminal_revocations_total", help, {{"scope", "store"}});
    disconnects_ = &reg.add_counter(
        "posrelay_terminal_disconnect_requests_total",
        "Operator requests to end a terminal's live session (DELETE .../session), this node.");
}

// Records the revocation (kept in Redis: every node's hello refuses the tokens it covers),
// then sends it on the store's channel: every node closes the live sessions it covers.
boost::asio::awaitable<response> operator_routes::revoke(request& req, const request_context& ctx) {
    if (auto denied = authorise(req, ctx)) co_return std::move(*denied);
    const auto p = parse_store_path(std::string_view(req.target().data(), req.target().size()));
    if (!revocations_ || !p || p->action != "revoke")
        co_return json_error(404, "not_found", "no such endpoint");
    if (auto bad = invalid_ids(*p, false)) co_return std::move(*bad);
    const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
    auto [ec, at] = co_await revocations_->revoke(std::string(p->store), std::string(p->terminal),
                                                  now, revocation_keep_);
    if (ec) co_return control_unavailable("the revocation could not be recorded, retry");
    (p->terminal.empty() ? revoked_stores_ : revoked_terminals_)->inc();
    const fanout::control_message m{fanout::control_op::revoke, std::string(p->store),
                                    std::string(p->terminal), at};
    auto [sec, nodes] =
        co_await revocations_->send_control(std::string(p->store), fanout::format_control(m));
    log::line(log::level::info, "terminal tokens revoked")
        .str("store_id", p->store)
        .str("terminal_id", p->terminal.empty() ? std::string_view("*") : p->terminal)
        .num("revoked_at", at)
        .str("remote", ctx.remote);
    if (sec) {
        co_return control_unavailable(
            "the revocation is recorded (new handshakes are refused) but live sessions were not "
            "told: retry");
    }
    std::string body = R"({"status":"revoked",)" + target_json(*p).substr(1);
    body += R"(,"revoked_at":)" + std::to_string(at);
    body += R"(,"kept_seconds":)" + std::to_string(revocation_keep_.count());
    body += R"(,"nodes_notified":)" + std::to_string(nodes) + "}";
    co_return json_response(200, std::move(body));
}

// Sends a disconnect for the terminal on its store's channel: the node holding its session
// ends it with `disconnected` (the terminal may reconnect).
boost::asio::awaitable<response> operator_routes::disconnect(request& req,
                                                             const request_context& ctx) {
    if (auto denied = authorise(req, ctx)) co_return std::move(*denied);
    const auto p = parse_store_path(std::string_view(req.target().data(), req.target().size()));
    if (!revocations_ || !p || p->terminal.empty() || p->action != "session")
        co_return json_error(404, "not_found", "no such endpoint");
    if (auto bad = invalid_ids(*p, true)) co_return std::move(*bad);
    const fanout::control_message m{fanout::control_op::disconnect, std::string(p->store),
                                    std::string(p->terminal), 0};
    auto [ec, nodes] =
        co_await revocations_->send_control(std::string(p->store), fanout::format_control(m));
    if (ec) co_return control_unavailable("the disconnect could not be sent, retry");
    disconnects_->inc();
    log::line(log::level::info, "terminal session disconnect sent")
        .str("store_id", p->store)
        .str("terminal_id", p->terminal)
        .str("remote", ctx.remote);
    std::string body = R"({"status":"disconnect_sent",)" + target_json(*p).substr(1);
    body += R"(,"nodes_notified":)" + std::to_string(nodes) + "}";
    co_return json_response(202, std::move(body));
}

}  // namespace posrelay::http
