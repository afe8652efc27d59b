// midtrans-sim routes: Core API, QR images, order timers and the control API.
#include "sim_service.hpp"

#include <openssl/evp.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include "posrelay/http/types.hpp"
#include "posrelay/log.hpp"
#include "posrelay/midtrans/signature.hpp"
#include "qr_png.hpp"

namespace posrelay::sim {

namespace asio = boost::asio;
namespace json = boost::json;
namespace bhttp = boost::beast::http;
using namespace std::chrono;

namespace {

std::string basic_auth(std::string_view key) {
    const std::string plain = std::string(key) + ":";
    std::string out(4 * ((plain.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(plain.data()),
                                  static_cast<int>(plain.size()));
    out.resize(static_cast<std::size_t>(n));
    return "Basic " + out;
}

http::response json_answer(unsigned status, const json::object& o) {
    return http::json_response(status, json::serialize(o));
}

// The path of a target split on '/', without the query: "/v2/x/status" → {"v2","x","status"}.
std::vector<std::string_view> segments(std::string_view target) {
    target = target.substr(0, target.find('?'));
    std::vector<std::string_view> out;
    while (!target.empty()) {
        if (target.front() == '/') {
            target.remove_prefix(1);
            continue;
        }
        const auto slash = target.find('/');
        out.push_back(target.substr(0, slash));
        if (slash == std::string_view::npos) break;
        target.remove_prefix(slash);
    }
    return out;
}

std::string_view target_of(const http::request& req) {
    return {req.target().data(), req.target().size()};
}

const api_error not_found{404, "Transaction doesn't exist.", {}};
const api_error not_modifiable{412, "Merchant cannot modify the status of the transaction", {}};

std::string_view error_message(unsigned status) {
    switch (status) {
        case 429:
            return "Too many requests. Please try again later.";
        case 503:
            return "Sorry, we are unable to process your request right now. Please try again "
                   "later.";
        default:
            return "Sorry. Our system is recovering from unexpected issues. Please retry.";
    }
}

}  // namespace

sim_service::sim_service(asio::io_context& ioc, sim_options& opts, std::string server_key)
    : ioc_(ioc),
      opts_(opts),
      faults_(opts.faults),
      server_key_(std::move(server_key)),
      expected_auth_(basic_auth(server_key_)),
      rng_(opts.seed),
      ledger_(opts.merchant_id, opts.max_orders, rng_),
      notifier_(ioc, opts, opts.faults, rng_, [this](const std::string& tid, attempt_record r) {
          record_attempt(tid, std::move(r));
      }) {}

void sim_service::add_routes(http::router& r) {
    auto sync = [](auto fn) {
        return [fn](request& req, const http::request_context&) -> asio::awaitable<response> {
            co_return fn(req);
        };
    };
    auto api_route = sync([this](request& req) {
        auto res = api(req);
        log::line(log::level::info, "api")
            .str("method", std::string_view(req.method_string().data(), req.method_string().size()))
            .str("target", target_of(req))
            .num("status", res.result_int());
        return res;
    });
    // A slow Midtrans: the charge is made at once, its answer waits charge_delay_ms.
    r.add("charge", "/v2/charge", bhttp::verb::post,
          [this, api_route](request& req,
                            const http::request_context& ctx) -> asio::awaitable<response> {
              response res = co_await api_route(req, ctx);
              if (faults_.charge_delay_ms > 0) {
                  asio::steady_timer t(co_await asio::this_coro::executor);
                  t.expires_after(std::chrono::milliseconds(faults_.charge_delay_ms));
                  (void)co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
              }
              co_return res;
          });
    r.add("api", "/v2/*", bhttp::verb::get, api_route);
    r.add("api", "/v2/*", bhttp::verb::post, api_route);
    r.add("sim_config", "/sim/config", bhttp::verb::get,
          sync([this](request& req) { return control_config(req); }));
    r.add("sim_config", "/sim/config", bhttp::verb::post,
          sync([this](request& req) { return control_config(req); }));
    r.add("sim_stats", "/sim/stats", bhttp::verb::get,
          sync([this](request&) { return control_stats(); }));
    r.add("sim_stats_reset", "/sim/stats/reset", bhttp::verb::post, sync([this](request&) {
              stats_ = {};
              notifier_.reset_stats();
              status_window_.clear();
              return http::json_response(200, R"({"status":"ok"})");
          }));
    r.add("sim_orders", "/sim/orders/*", bhttp::verb::get,
          sync([this](request& req) { return control_order(req); }));
    r.add("sim_orders", "/sim/orders/*", bhttp::verb::post,
          sync([this](request& req) { return control_order(req); }));
}

http::response sim_service::midtrans_error(const api_error& e, bool with_id) {
    return http::json_response(e.status, error_body(e, with_id ? rng_.uuid() : std::string()));
}

bool sim_service::authorized(const request& req) const {
    const auto h = req[bhttp::field::authorization];
    return midtrans::constant_time_equal(std::string_view(h.data(), h.size()), expected_auth_);
}

http::response sim_service::api(request& req) {
    const auto seg = segments(target_of(req));  // seg[0] == "v2"
    const bool qr =
        seg.size() == 4 && (seg[1] == "gopay" || seg[1] == "qris") && seg[3] == "qr-code";
    if (faults_.down) {
        ++stats_.errors_injected;
        return midtrans_error({503, std::string(error_message(503)), {}});
    }
    if (qr) {  // public image URLs need no key, like Midtrans's
        if (req.method() != bhttp::verb::get)
            return midtrans_error({405, "HTTP method is not allowed", {}});
        return qr_code(seg[2]);
    }
    if (!authorized(req)) {
        ++stats_.unauthorized;
        return midtrans_error({401,
                               "Access denied due to unauthorized transaction, please check client "
                               "or server key",
                               {}});
    }
    if (rng_.chance(faults_.error_rate)) {
        ++stats_.errors_injected;
        return midtrans_error(
            {faults_.error_status, std::string(error_message(faults_.error_status)), {}});
    }
    if (seg.size() == 2 && seg[1] == "charge") return charge(req);
    if (seg.size() == 3) {
        const auto id = seg[1], verb = seg[2];
        const bool get = req.method() == bhttp::verb::get;
        if (verb == "status" && get) {
            ++stats_.status_calls;
            if (!admit_status_call()) {
                ++stats_.status_calls_429;
                return midtrans_error({429, std::string(error_message(429)), {}}, false);
            }
            auto* t = ledger_.find(id);
            return t ? status(*t) : midtrans_error(not_found);
        }
        if (verb == "cancel" && !get) {
            ++stats_.cancel_calls;
            return change_by_api(id, tx_status::cancel);
        }
        if (verb == "expire" && !get) {
            ++stats_.expire_calls;
            return change_by_api(id, tx_status::expire);
        }
    }
    return midtrans_error({404, "The requested resource is not found", {}});
}

http::response sim_service::charge(request& req) {
    const auto now = system_clock::now();
    const auto over = req["X-Override-Notification"];
    auto parsed = parse_charge(req.body(), std::string_view(over.data(), over.size()), now);
    if (auto* e = std::get_if<api_error>(&parsed)) {
        ++stats_.charge_errors;
        return midtrans_error(*e);
    }
    auto& c = std::get<charge_request>(parsed);
    if (c.notify_urls.empty() && !opts_.notification_url.empty())
        c.notify_urls.push_back(opts_.notification_url);
    auto created = ledger_.create(c, now);
    if (auto* e = std::get_if<api_error>(&created)) {
        ++stats_.charge_errors;
        return midtrans_error(*e);
    }
    transaction& t = *std::get<transaction*>(created);
    ++stats_.charges;
    log::line(log::level::info, "charge")
        .str("order_id", t.order_id)
        .str("transaction_id", t.transaction_id)
        .str("payment_type", t.payment_type)
        .num("amount", t.amount)
        .num("notify_urls", static_cast<std::int64_t>(t.notify_urls.size()));
    if (faults_.deny_next_charges > 0) {
        --faults_.deny_next_charges;
        ++stats_.charges_denied;
        (void)change(t, tx_status::deny);
        auto body = change_answer(t, "202",
                                  t.payment_type == "gopay" ? "GO-PAY transaction is rejected"
                                                            : "QRIS transaction is rejected");
        body["channel_response_code"] = "900";
        body["channel_response_message"] = "Intermittent Service Error";
        return json_answer(200, body);
    }
    arm_timers(t);
    if (opts_.notify_pending) notify(t);
    return json_answer(200, charge_answer(t, public_url_));
}

http::response sim_service::status(transaction& t) {
    return json_answer(200, transaction_view(t, "Success, transaction is found", server_key_));
}

http::response sim_service::change_by_api(std::string_view id, tx_status to) {
    auto* t = ledger_.find(id);
    if (!t) return midtrans_error(not_found);
    if (!change(*t, to)) return midtrans_error(not_modifiable, false);
    return to == tx_status::cancel
               ? json_answer(200, change_answer(*t, "200", "Success, transaction is canceled"))
               : json_answer(200, change_answer(*t, "407", "Success, transaction has expired"));
}

http::response sim_service::qr_code(std::string_view id) {
    ++stats_.qr_code_calls;
    auto* t = ledger_.find(id);
    if (!t) return midtrans_error(not_found);
    auto png = qr_png(t->qr_string);
    if (!png) return midtrans_error({500, "QR code could not be rendered", {}});
    response res{bhttp::status::ok, 11};
    res.set(bhttp::field::content_type, "image/png");
    res.body() = std::move(*png);
    res.prepare_payload();
    return res;
}

bool sim_service::admit_status_call() {
    const auto now = steady_clock::now();
    while (!status_window_.empty() && status_window_.front() <= now - seconds(1))
        status_window_.pop_front();
    if (faults_.status_rate_limit > 0 &&
        status_window_.size() >= static_cast<std::size_t>(faults_.status_rate_limit))
        return false;
    status_window_.push_back(now);
    stats_.status_calls_max_in_any_second =
        std::max<std::uint64_t>(stats_.status_calls_max_in_any_second, status_window_.size());
    return true;
}

bool sim_service::change(transaction& t, tx_status to) {
    if (!ledger_.transition(t, to, system_clock::now())) return false;
    timers_.erase(t.transaction_id);  // destroying the timers cancels them
    log::line(log::level::info, "transaction changed")
        .str("order_id", t.order_id)
        .str("transaction_id", t.transaction_id)
        .str("transaction_status", to_string(to))
        .str("fraud_status", t.fraud_status);
    notify(t);
    return true;
}

void sim_service::notify(const transaction& t) {
    if (t.notify_urls.empty()) return;
    notifier_.notify(
        t, to_string(t.status),
        json::serialize(transaction_view(t, "midtrans payment notification", server_key_)),
        t.status != tx_status::pending);
}

void sim_service::arm_timers(transaction& t) {
    auto timers = std::make_unique<order_timers>(ioc_);
    const std::string tid = t.transaction_id;
    // The handlers look the transaction up again: it may have changed, the timer then gone.
    auto fire = [this, tid](tx_status to) {
        return [this, tid, to](const boost::system::error_code& ec) {
            if (ec) return;
            if (auto* tx = ledger_.find(tid)) (void)change(*tx, to);
        };
    };
    timers->expiry.expires_after(
        duration_cast<steady_clock::duration>(t.expires_at - system_clock::now()));
    timers->expiry.async_wait(fire(tx_status::expire));
    if (faults_.auto_pay_after_ms > 0 && rng_.chance(faults_.auto_pay_rate)) {
        timers->auto_pay.expires_after(milliseconds(faults_.auto_pay_after_ms));
        timers->auto_pay.async_wait(fire(tx_status::settlement));
    }
    timers_[tid] = std::move(timers);
}

void sim_service::record_attempt(const std::string& transaction_id, attempt_record r) {
    auto* t = ledger_.find(transaction_id);
    if (!t) return;
    ++t->attempts_total;
    t->attempts.push_back(std::move(r));
    if (t->attempts.size() > transaction::max_attempt_records) t->attempts.pop_front();
}

http::response sim_service::control_order(request& req) {
    const auto target = target_of(req);
    const auto seg = segments(target);  // sim, orders, id[, action]
    if (seg.size() < 3 || seg.size() > 4)
        return http::json_error(404, "not_found", "use /sim/orders/{id}[/pay|/deny|/expire]");
    auto* t = ledger_.find(seg[2]);
    if (!t) return http::json_error(404, "unknown_order", "no transaction with this id");
    const bool get = req.method() == bhttp::verb::get;
    if (seg.size() == 3) {
        if (!get) return http::json_error(405, "method_not_allowed", "GET /sim/orders/{id}");
        auto o = transaction_view(*t, "Success, transaction is found", server_key_);
        o["qr_string"] = t->qr_string;
        json::array urls, attempts;
        for (const auto& u : t->notify_urls)
            urls.emplace_back(u);
        for (const auto& a : t->attempts) {
            json::object x{
                {"event", a.event}, {"url", a.url}, {"attempt", a.attempt}, {"at", a.at}};
            if (a.http_status) x["http_status"] = a.http_status;
            if (!a.error.empty()) x["error"] = a.error;
            x["duration_ms"] = a.duration_ms;
            attempts.push_back(std::move(x));
        }
        o["notify_urls"] = std::move(urls);
        o["notification_attempts_total"] = t->attempts_total;
        o["notification_attempts"] = std::move(attempts);
        return json_answer(200, o);
    }
    if (get) return http::json_error(405, "method_not_allowed", "POST /sim/orders/{id}/{action}");
    const auto action = seg[3];
    tx_status to;
    if (action == "pay") {
        to = tx_status::settlement;
    } else if (action == "deny") {
        to = tx_status::deny;
    } else if (action == "expire") {
        to = tx_status::expire;
    } else {
        return http::json_error(404, "unknown_action", "actions: pay, deny, expire");
    }
    if (t->status != tx_status::pending)
        return http::json_error(412, "not_pending",
                                "the transaction is " + std::string(to_string(t->status)));
    if (to == tx_status::settlement) {
        const auto u = boost::urls::parse_origin_form(target);
        if (u && u->params().contains("fraud_status")) {
            const auto f = (*u->params().find("fraud_status")).value;
            if (f != "accept" && f != "deny")
                return http::json_error(400, "bad_fraud_status", "fraud_status: accept or deny",
                                        "fraud_status");
            t->fraud_status = f;
            // As Midtrans's fraud detection does: a payment it denies is a deny (status_code
            // 202), never a settlement with fraud_status deny (no status_code fits that).
            if (f == "deny") to = tx_status::deny;
        }
    }
    (void)change(*t, to);
    log::line(log::level::info, "control").str("action", action).str("order_id", t->order_id);
    return json_answer(200, transaction_view(*t, "Success, transaction is found", server_key_));
}

http::response sim_service::control_config(request& req) {
    if (req.method() == bhttp::verb::post) {
        boost::system::error_code ec;
        const auto v = json::parse(req.body(), ec);
        if (ec || !v.is_object())
            return http::json_error(400, "bad_json", "the body must be a JSON object");
        if (auto err = apply_config(faults_, v.get_object()))
            return http::json_error(400, "bad_setting", *err);
        log::line(log::level::info, "config changed")
            .str("config", json::serialize(to_json(faults_)));
    }
    return json_answer(200, to_json(faults_));
}

http::response sim_service::control_stats() {
    const auto& n = notifier_.stats();
    const json::object o{{"charges", stats_.charges},
                         {"charges_denied", stats_.charges_denied},
                         {"charge_errors", stats_.charge_errors},
                         {"status_calls", stats_.status_calls},
                         {"status_calls_429", stats_.status_calls_429},
                         {"status_calls_max_in_any_second", stats_.status_calls_max_in_any_second},
                         {"cancel_calls", stats_.cancel_calls},
                         {"expire_calls", stats_.expire_calls},
                         {"qr_code_calls", stats_.qr_code_calls},
                         {"unauthorized", stats_.unauthorized},
                         {"errors_injected", stats_.errors_injected},
                         {"notifications_sent", n.sent},
                         {"notifications_acked", n.acked},
                         {"notifications_failed_attempts", n.failed_attempts},
                         {"notifications_dropped", n.dropped},
                         {"notifications_duplicated", n.duplicated},
                         {"notifications_reordered", n.reordered},
                         {"notifications_given_up", n.given_up},
                         {"notifications_overflow", n.overflow},
                         {"notifications_in_flight", notifier_.in_flight()},
                         {"notifications_queued", notifier_.queued()},
                         {"notifications_alive", notifier_.alive()},
                         {"orders", ledger_.size()},
                         {"orders_pending", ledger_.count(tx_status::pending)},
                         {"orders_settled", ledger_.count(tx_status::settlement)},
                         {"orders_denied", ledger_.count(tx_status::deny)},
                         {"orders_canceled", ledger_.count(tx_status::cancel)},
                         {"orders_expired", ledger_.count(tx_status::expire)}};
    return json_answer(200, o);
}

}  // namespace posrelay::sim
