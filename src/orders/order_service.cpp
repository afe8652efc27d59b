#include "posrelay/orders/order_service.hpp"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "posrelay/http/types.hpp"
#include "posrelay/log.hpp"

namespace posrelay::orders {

namespace asio = boost::asio;
namespace json = boost::json;
using fanout::errc;

service_options service_options::from(const config& c) {
    service_options o;
    std::string_view base = c.public_url;
    while (base.ends_with('/'))
        base.remove_suffix(1);
    o.public_url = std::string(base);
    o.status_refresh_after = c.status_refresh_after;
    o.qr_cache_bytes = c.qr_cache_bytes;
    return o;
}

// ---- qr_cache ----------------------------------------------------------------------------

std::shared_ptr<const std::string> qr_cache::get(const std::string& order_id) {
    std::lock_guard lock(mutex_);
    auto it = index_.find(order_id);
    if (it == index_.end()) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->second;
}

void qr_cache::put(const std::string& order_id, std::shared_ptr<const std::string> png) {
    std::lock_guard lock(mutex_);
    if (png->size() > max_bytes_) return;
    if (auto it = index_.find(order_id); it != index_.end()) {
        bytes_ -= it->second->second->size();
        lru_.erase(it->second);
        index_.erase(it);
    }
    bytes_ += png->size();
    lru_.emplace_front(order_id, std::move(png));
    index_[order_id] = lru_.begin();
    while (bytes_ > max_bytes_ && !lru_.empty()) {
        bytes_ -= lru_.back().second->size();
        index_.erase(lru_.back().first);
        lru_.pop_back();
    }
}

std::size_t qr_cache::bytes() const {
    std::lock_guard lock(mutex_);
    return bytes_;
}

// ---- order_service -----------------------------------------------------------------------

namespace {

using store::field_of;
using store::int_field;
using store::unix_ms_now;

// `"a":"x","b":1` members for an error frame.
std::string members(const json::object& o) {
    std::string s = json::serialize(o);
    return s.size() > 2 ? s.substr(1, s.size() - 2) : std::string();
}

}  // namespace

struct order_service::request_ctx {
    std::string terminal_id;
    std::string store_id;
    std::string id;
    std::string op;
    json::object body;

    [[nodiscard]] std::string result(json::object fields) const {
        json::object out;
        out["op"] = "result";
        if (!id.empty()) out["id"] = id;
        out["request"] = op;
        for (auto& kv : fields)
            out[kv.key()] = std::move(kv.value());
        std::string s = json::serialize(out);
        s += '\n';
        return s;
    }
    [[nodiscard]] std::string error(errc code, std::string_view message,
                                    const json::object& extra = {}) const {
        return fanout::error_frame(code, message, false, id, members(extra));
    }
    [[nodiscard]] std::string bad_field(std::string_view field, std::string_view message) const {
        return error(errc::bad_request, message, json::object{{"field", field}});
    }
};

order_service::order_service(store::order_store& store, midtrans::api_calls& api, service_options o,
                             metrics::registry& reg)
    : store_(store),
      api_(api),
      opts_(std::move(o)),
      qr_(opts_.qr_cache_bytes),
      reg_(reg),
      charges_restored_(reg.add_counter(
          "posrelay_charges_restored_total",
          "Charges whose records Redis refused after Midtrans created them (a write error), "
          "written again once Redis took writes.")) {
    reg.add_gauge_fn("posrelay_qr_cache_bytes", "Bytes of QR images cached for terminals.", {},
                     [this] { return static_cast<double>(qr_.bytes()); });
}

void order_service::count(std::string_view op, std::string_view outcome) {
    std::string key = std::string(op) + '/' + std::string(outcome);
    metrics::counter* c = nullptr;
    {
        std::lock_guard lock(counters_mutex_);
        auto it = counters_.find(key);
        if (it == counters_.end()) {
            c = &reg_.add_counter("posrelay_terminal_requests_total",
                                  "Terminal requests (charge, cancel, expire, status) by outcome.",
                                  {{"op", std::string(op)}, {"outcome", std::string(outcome)}});
            counters_.emplace(std::move(key), c);
        } else {
            c = it->second;
        }
    }
    c->inc();
}

asio::awaitable<std::string> order_service::handle(std::string terminal_id, std::string store_id,
                                                   fanout::request_frame req) {
    request_ctx c{std::move(terminal_id), std::move(store_id), std::move(req.id), req.op, {}};
    boost::system::error_code ec;
    auto doc = json::parse(req.json, ec);
    if (ec || !doc.is_object()) {
        count(c.op, "bad_request");
        co_return c.error(errc::bad_request, "the request is not a JSON object");
    }
    c.body = std::move(doc.get_object());
    std::string answer;
    try {
        if (c.op == "charge") {
            answer = co_await charge(c);
        } else if (c.op == "cancel" || c.op == "expire") {
            answer = co_await change(c, c.op == "cancel");
        } else {
            answer = co_await status(c);
        }
    } catch (const std::exception& e) {
        log::line(log::level::error, "terminal request failed")
            .str("op", c.op)
            .str("terminal_id", c.terminal_id)
            .str("error", e.what());
        answer = c.error(errc::internal_error, "internal error; retry later");
    }
    // The outcome label: "ok" for a result, else the error code.
    std::string outcome = "ok";
    if (auto p = answer.find(R"("code":")");
        answer.starts_with(R"({"op":"error")") && p != std::string::npos) {
        const auto start = p + 8;
        outcome = answer.substr(start, answer.find('"', start) - start);
    }
    count(c.op, outcome);
    co_return answer;
}

namespace {
// order_id from a request: a valid Midtrans order_id, or an error message.
std::optional<std::string> order_id_of(const json::object& body, std::string& why) {
    const auto* v = body.if_contains("order_id");
    if (v == nullptr || !v->is_string()) {
        why = "order_id is required (a string)";
        return std::nullopt;
    }
    std::string id(v->get_string());
    if (!midtrans::valid_order_id(id)) {
        why = "order_id must be 1-50 of A-Z a-z 0-9 - _ ~ .";
        return std::nullopt;
    }
    return id;
}
}  // namespace

asio::awaitable<std::string> order_service::charge(request_ctx& c) {
    midtrans::charge_request r;
    std::string why;
    auto id = order_id_of(c.body, why);
    if (!id) co_return c.bad_field("order_id", why);
    r.order_id = std::move(*id);
    const auto* amount = c.body.if_contains("gross_amount");
    std::int64_t gross = 0;
    if (amount != nullptr && amount->is_int64()) gross = amount->get_int64();
    if (amount != nullptr && amount->is_uint64())
        gross = static_cast<std::int64_t>(std::min<std::uint64_t>(amount->get_uint64(), INT64_MAX));
    if (gross <= 0 || static_cast<std::uint64_t>(gross) > midtrans::max_gross_amount) {
        co_return c.bad_field("gross_amount",
                              "gross_amount must be a positive whole number of rupiah (a JSON "
                              "integer, at most 999999999999)");
    }
    r.gross_amount = static_cast<std::uint64_t>(gross);
    if (const auto* p = c.body.if_contains("payment_type"); p != nullptr && !p->is_null()) {
        auto t = p->is_string() ? midtrans::payment_type_from(p->get_string()) : std::nullopt;
        if (!t) co_return c.bad_field("payment_type", "payment_type must be \"qris\" or \"gopay\"");
        r.type = *t;
    }
    if (const auto* e = c.body.if_contains("expiry"); e != nullptr && !e->is_null()) {
        const std::int64_t s = e->is_int64() ? e->get_int64() : -1;
        if (s < midtrans::min_expiry.count() || s > midtrans::max_expiry.count()) {
            co_return c.bad_field("expiry",
                                  "expiry must be a whole number of seconds from 60 to 604800");
        }
        r.expiry = std::chrono::seconds(s);
    }
    if (const auto* items = c.body.if_contains("items"); items != nullptr && !items->is_null()) {
        if (!items->is_array() || items->get_array().size() > 100)
            co_return c.bad_field("items", "items must be an array of at most 100 item_details");
        for (const auto& it : items->get_array()) {
            if (!it.is_object())
                co_return c.bad_field("items",
                                      "each item must be an object (Midtrans item_details)");
        }
        r.items_json = json::serialize(*items);
    }

    const std::int64_t started = unix_ms_now();
    store::order_registration reg{r.order_id, std::to_string(r.gross_amount), c.terminal_id,
                                  c.store_id,
                                  started + std::chrono::duration_cast<std::chrono::milliseconds>(
                                                r.expiry.value_or(std::chrono::minutes(15)))
                                                .count(),
                                  // Charged with the default key: bound to it.
                                  "default"};
    auto reserved = co_await store_.reserve_charge(reg);
    if (reserved.ec) co_return c.error(errc::unavailable, "the order store is unavailable; retry");
    if (reserved.outcome == store::reserve_outcome::taken) {
        co_return c.error(errc::order_exists,
                          "order_id " + r.order_id + " is already in use (" + reserved.current +
                              "); charge with a new order_id",
                          json::object{{"current", reserved.current}});
    }

    auto http = co_await api_.charge(midtrans::charge_body(r));
    auto release = [&]() -> asio::awaitable<void> {
        if (auto ec = co_await store_.release_charge(r.order_id, c.terminal_id); ec) {
            log::line(log::level::warn, "charge reservation not released")
                .str("order_id", r.order_id)
                .str("error", ec.message());
        }
    };
    if (http.ec && !http.sent) {
        co_await release();
        co_return c.error(errc::unavailable, "Midtrans is unreachable (" + http.ec.message() +
                                                 "); nothing was charged, retry");
    }
    midtrans::api_answer a;
    if (!http.ec) a = midtrans::read_answer(http.status, http.body);
    // The answer is lost (timeout or reset after the request went out): ask whether the
    // charge exists instead of charging again. (An HTTP error answer, 5xx included, is
    // Midtrans saying it did not charge.)
    if (http.ec) {
        log::line(log::level::warn, "charge answer lost: asking status")
            .str("order_id", r.order_id)
            .str("error", http.ec.message());
        auto s = co_await refresh(r.order_id, ingest::update_source::api);
        if (s && s->verdict == midtrans::answer_class::ok && !s->transaction_status.empty()) {
            if (s->payment_type.empty()) s->payment_type = std::string(to_string(r.type));
            co_return co_await charged(c, reg, *s);
        }
        if (s && s->status_code == "404") {
            co_await release();
            co_return c.error(errc::unavailable,
                              "Midtrans did not create the charge; nothing was charged, retry");
        }
        co_return c.error(errc::unavailable,
                          "Midtrans did not answer; the charge outcome is unknown: ask status "
                          "for this order_id before charging again");
    }
    if (a.verdict == midtrans::answer_class::ok && a.transaction_status == "pending") {
        co_return co_await charged(c, reg, a);
    }
    json::object extra{
        {"status_code", a.status_code.empty() ? std::to_string(http.status) : a.status_code},
        {"status_message", a.status_message}};
    if (a.transaction_status == "deny") {
        // Midtrans created the transaction as denied: keep it (the order_id is used) and
        // tell the terminal's event stream too.
        if (auto u = midtrans::to_status_update(a, ingest::update_source::api, unix_ms_now()))
            (void)co_await store_.commit(std::move(*u));
        extra["channel_response_code"] = a.channel_response_code;
        extra["retriable"] = a.channel_response_code == "900";
        co_return c.error(errc::midtrans_error,
                          "Midtrans denied the charge" +
                              std::string(a.channel_response_code == "900"
                                              ? " (GoPay 900: intermittent; charge again with a "
                                                "new order_id)"
                                              : ""),
                          extra);
    }
    co_await release();
    if (a.verdict == midtrans::answer_class::retriable) {
        extra["retriable"] = true;
        if (auto ra = midtrans::parse_retry_after(http.retry_after))
            extra["retry_after_ms"] = ra->count() * 1000;
        co_return c.error(errc::unavailable,
                          "Midtrans is rate limiting or unavailable; nothing was charged, retry",
                          extra);
    }
    if (a.status_code == "406") {
        co_return c.error(errc::order_exists,
                          "Midtrans already has a transaction with order_id " + r.order_id +
                              "; charge with a new order_id",
                          extra);
    }
    extra["retriable"] = false;
    co_return c.error(errc::midtrans_error,
                      "Midtrans refused the charge: " +
                          (a.status_message.empty() ? std::string("no message") : a.status_message),
                      extra);
}

// A charge Midtrans created but whose records Redis refused: a write error (a full disk makes
// Redis refuse every write with MISCONF, and the reservation it acknowledged just before may
// be lost with the writes it could not append). Writes the route, the details and the pending
// status again, with backoff (1 s doubling to 60 s, about 10 minutes in all), until Redis takes
// them: the order is then routed and polled, so its payment reaches the terminal even when
// Midtrans's notifications were refused meanwhile and it stopped retrying.
asio::awaitable<void> order_service::keep_charge(store::order_registration reg,
                                                 store::order_fields f, midtrans::api_answer a) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    auto delay = std::chrono::seconds(1);
    for (int attempt = 1; attempt <= 14; ++attempt) {
        timer.expires_after(delay);
        (void)co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        delay = std::min(delay * 2, std::chrono::seconds(60));
        const auto routed = co_await store_.register_order(reg);
        if (routed.ec) continue;
        if (routed.outcome == store::register_outcome::conflict) break;  // not ours any more
        if (co_await store_.set_order_fields(reg.order_id, f)) continue;
        if (auto u = midtrans::to_status_update(a, ingest::update_source::api, unix_ms_now())) {
            if ((co_await store_.commit(std::move(*u))).ec) continue;
        }
        charges_restored_.inc();
        log::line(log::level::warn, "charge records written again after a store error")
            .str("order_id", reg.order_id)
            .num("attempt", attempt);
        co_return;
    }
    log::line(log::level::error, "charge records not restored: the order may not be routed")
        .str("order_id", reg.order_id)
        .str("terminal_id", reg.terminal_id)
        .str("store_id", reg.store_id);
}

asio::awaitable<std::string> order_service::charged(request_ctx& c,
                                                    const store::order_registration& reg,
                                                    const midtrans::api_answer& a) {
    const std::string order_id =
        a.order_id.empty() ? std::string(c.body.at("order_id").as_string()) : a.order_id;
    std::string qr_url = a.qr_code_url;
    if (qr_url.empty() && !a.transaction_id.empty()) {
        // Recovered through a status call, which has no actions: Midtrans's URL shape.
        std::string base = api_.options().base_url;
        while (base.ends_with('/'))
            base.pop_back();
        qr_url = base + "/v2/" + (a.payment_type == "gopay" ? "gopay" : "qris") + "/" +
                 a.transaction_id + "/qr-code";
    }
    store::order_fields f{{"state", "charged"},
                          {"transaction_id", a.transaction_id},
                          {"payment_type", a.payment_type},
                          {"qr_code_url", qr_url},
                          {"qr_string", a.qr_string},
                          {"deeplink", a.deeplink},
                          {"expiry_time", a.expiry_time}};
    std::int64_t expiry_ms = 0;
    if (auto ms = midtrans::parse_midtrans_time(a.expiry_time)) {
        expiry_ms = *ms;
        f.emplace("expiry_ms", std::to_string(expiry_ms));
    }
    bool stored = true;
    if (auto ec = co_await store_.set_order_fields(order_id, f); ec) {
        stored = false;
        log::line(log::level::warn, "charge details not stored: writing them again later")
            .str("order_id", order_id)
            .str("error", ec.message());
    }
    if (auto u = midtrans::to_status_update(a, ingest::update_source::api, unix_ms_now())) {
        auto r = co_await store_.commit(std::move(*u));
        if (r.ec) {
            stored = false;
            log::line(log::level::warn, "charge status not committed: writing it again later")
                .str("order_id", order_id)
                .str("error", r.ec.message());
        }
    }
    if (!stored) {
        store::order_registration route = reg;
        route.order_id = order_id;
        route.expiry_ms = expiry_ms != 0 ? expiry_ms : reg.expiry_ms;
        asio::co_spawn(co_await asio::this_coro::executor, keep_charge(std::move(route), f, a),
                       [](std::exception_ptr e) { log::escaped(e, "keep charge"); });
    }
    log::line(log::level::info, "order charged")
        .str("order_id", order_id)
        .str("transaction_id", a.transaction_id)
        .str("terminal_id", c.terminal_id)
        .str("store_id", c.store_id);
    json::object out{{"order_id", order_id},
                     {"transaction_id", a.transaction_id},
                     {"transaction_status", a.transaction_status},
                     {"gross_amount", a.gross_amount},
                     {"payment_type", a.payment_type},
                     {"qr_code_url", qr_url},
                     {"qr_string", a.qr_string},
                     {"deeplink", a.deeplink},
                     {"expiry_time", a.expiry_time},
                     {"expiry_ms", expiry_ms}};
    if (!opts_.public_url.empty())
        out["qr_image_url"] = opts_.public_url + "/v1/orders/" + order_id + "/qr.png";
    co_return c.result(std::move(out));
}

asio::awaitable<std::optional<midtrans::api_answer>> order_service::refresh(
    std::string order_id, ingest::update_source src) {
    auto http = co_await api_.status(order_id);
    if (http.ec) co_return std::nullopt;
    auto a = midtrans::read_answer(http.status, http.body);
    if (a.verdict == midtrans::answer_class::ok) {
        if (a.order_id.empty()) a.order_id = order_id;
        if (auto u = midtrans::to_status_update(a, src, unix_ms_now())) {
            auto r = co_await store_.commit(std::move(*u));
            if (r.ec) co_return std::nullopt;
        }
    }
    co_return a;
}

asio::awaitable<order_service::found_order> order_service::find_order(request_ctx& c) {
    found_order out;
    std::string why;
    auto id = order_id_of(c.body, why);
    if (!id) {
        out.refused = c.bad_field("order_id", why);
        co_return out;
    }
    out.id = *id;
    auto [ec, order] = co_await store_.read_order(out.id);
    if (ec) {
        out.refused = c.error(errc::unavailable, "the order store is unavailable; retry");
    } else if (!order || field_of(*order, "store_id") != c.store_id) {
        out.refused = c.error(errc::order_not_found, "no order " + out.id + " in this store");
    } else {
        out.order = std::move(*order);
    }
    co_return out;
}

asio::awaitable<std::string> order_service::change(request_ctx& c, bool cancel) {
    auto [id, order, refused] = co_await find_order(c);
    if (!refused.empty()) co_return refused;
    // (No co_await inside ?: — g++ 12 miscompiles it.)
    midtrans::http_result http;
    if (cancel) {
        http = co_await api_.cancel(id);
    } else {
        http = co_await api_.expire(id);
    }
    if (http.ec) {
        co_return c.error(errc::unavailable, "Midtrans did not answer (" + http.ec.message() +
                                                 "); the outcome is unknown: ask status");
    }
    auto a = midtrans::read_answer(http.status, http.body);
    json::object extra{
        {"status_code", a.status_code.empty() ? std::to_string(http.status) : a.status_code},
        {"status_message", a.status_message}};
    if (a.verdict != midtrans::answer_class::ok) {
        const bool retry = a.verdict == midtrans::answer_class::retriable;
        extra["retriable"] = retry;
        co_return c.error(retry ? errc::unavailable : errc::midtrans_error,
                          std::string("Midtrans refused to ") + (cancel ? "cancel" : "expire") +
                              ": " + a.status_message,
                          extra);
    }
    const std::string_view final_status = cancel ? "cancel" : "expire";
    if (a.order_id.empty()) a.order_id = id;
    if (a.gross_amount.empty()) a.gross_amount = field_of(order, "gross_amount");
    if (a.transaction_id.empty()) a.transaction_id = field_of(order, "transaction_id");
    if (auto u = midtrans::to_status_update(a, ingest::update_source::api, unix_ms_now(),
                                            final_status)) {
        auto r = co_await store_.commit(std::move(*u));
        if (r.ec) {
            log::line(log::level::warn,
                      "status change not committed (a notification will bring it)")
                .str("order_id", id)
                .str("error", r.ec.message());
        }
    }
    co_return c.result(json::object{{"order_id", id},
                                    {"transaction_status", final_status},
                                    {"status_code", extra["status_code"]},
                                    {"status_message", a.status_message}});
}

asio::awaitable<std::string> order_service::status(request_ctx& c) {
    auto [id, order, refused] = co_await find_order(c);
    if (!refused.empty()) co_return refused;
    const std::string st = field_of(order, "transaction_status");
    std::int64_t last = int_field(order, "updated_ms");
    if (last == 0) last = int_field(order, "created_ms");
    bool refreshed = false;
    if ((st.empty() || st == "pending") &&
        unix_ms_now() - last >= opts_.status_refresh_after.count()) {
        auto a = co_await refresh(id, ingest::update_source::poll);
        refreshed = a && a->verdict == midtrans::answer_class::ok;
        if (a && a->status_code == "404" && st.empty() && field_of(order, "state") == "charging") {
            // A reservation whose charge Midtrans never created.
            (void)co_await store_.release_charge(id, field_of(order, "terminal_id"));
            co_return c.error(errc::order_not_found,
                              "Midtrans has no transaction for " + id + "; it was never charged");
        }
        if (refreshed) {
            auto [ec2, again] = co_await store_.read_order(id);
            if (!ec2 && again) order = std::move(*again);
        }
    }
    const auto& f = order;
    const std::string status_now = field_of(f, "transaction_status");
    json::object out{{"order_id", id}};
    out["transaction_status"] = status_now.empty() ? json::value(nullptr) : json::value(status_now);
    out["fraud_status"] = field_of(f, "fraud_status");
    out["paid"] = field_of(f, "paid") == "1";
    for (auto name : {"gross_amount", "transaction_id", "payment_type", "qr_code_url", "qr_string",
                      "expiry_time", "source", "terminal_id", "store_id"}) {
        out[name] = field_of(f, name);
    }
    out["updated_ms"] = int_field(f, "updated_ms");
    out["refreshed"] = refreshed;
    co_return c.result(std::move(out));
}

asio::awaitable<order_service::image> order_service::qr_png(std::string order_id,
                                                            std::string store_id) {
    // The error body every posrelay HTTP answer uses (http::json_error).
    auto json_error = [](unsigned status, std::string_view error, std::string_view message) {
        return image{status, "application/json",
                     std::make_shared<const std::string>(
                         std::move(http::json_error(status, error, message).body()))};
    };
    auto [ec, order] = co_await store_.read_order(order_id);
    if (ec)
        co_return json_error(503, "store_unavailable",
                             "the order store is unavailable, retry later");
    if (!order || field_of(*order, "store_id") != store_id)
        co_return json_error(404, "order_not_found", "no such order in this store");
    if (auto hit = qr_.get(order_id)) co_return image{200, "image/png", std::move(hit)};
    const std::string url = field_of(*order, "qr_code_url");
    if (url.empty()) co_return json_error(404, "no_qr_code", "the order has no QR code");
    auto http = co_await api_.fetch(url);
    if (http.ec || http.status != 200)
        co_return json_error(502, "midtrans_error",
                             "the QR image could not be fetched from Midtrans");
    if (!http.content_type.starts_with("image/png") || http.body.size() > opts_.max_qr_bytes ||
        !http.body.starts_with("\x89PNG\r\n\x1a\n")) {
        co_return json_error(502, "midtrans_error", "Midtrans did not answer with a PNG image");
    }
    auto png = std::make_shared<const std::string>(std::move(http.body));
    qr_.put(order_id, png);
    co_return image{200, "image/png", std::move(png)};
}

}  // namespace posrelay::orders
