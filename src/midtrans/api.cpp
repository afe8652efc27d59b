#include "posrelay/midtrans/api.hpp"

#include <openssl/evp.h>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <charconv>
#include <ctime>

#include "posrelay/ingest/notification_rules.hpp"
#include "posrelay/log.hpp"

namespace posrelay::midtrans {

namespace {
constexpr std::int64_t jakarta_offset_s = 7 * 3600;

std::string string_field(const boost::json::object& o, std::string_view name) {
    const auto* v = o.if_contains(name);
    if (v == nullptr) return {};
    if (v->is_string()) return std::string(v->get_string());
    if (v->is_int64()) return std::to_string(v->get_int64());
    return {};
}
}  // namespace

bool valid_order_id(std::string_view id) noexcept {
    if (id.empty() || id.size() > 50) return false;
    for (char c : id) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '~' || c == '.';
        if (!ok) return false;
    }
    return true;
}

std::optional<std::string> normalise_gross_amount(std::string_view s) {
    if (s.ends_with(".00")) s.remove_suffix(3);
    if (s.empty() || s.size() > 15 || s.front() == '0') return std::nullopt;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
    }
    return std::string(s);
}

std::optional<std::int64_t> parse_midtrans_time(std::string_view s) noexcept {
    // YYYY-MM-DD HH:MM:SS
    if (s.size() != 19 || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' ||
        s[16] != ':') {
        return std::nullopt;
    }
    auto num = [&](std::size_t pos, std::size_t len, int& out) {
        const auto r = std::from_chars(s.data() + pos, s.data() + pos + len, out);
        return r.ec == std::errc{} && r.ptr == s.data() + pos + len;
    };
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
    if (!num(0, 4, y) || !num(5, 2, mo) || !num(8, 2, d) || !num(11, 2, h) || !num(14, 2, mi) ||
        !num(17, 2, se)) {
        return std::nullopt;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return std::nullopt;
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    const std::time_t utc = ::timegm(&tm);
    return (static_cast<std::int64_t>(utc) - jakarta_offset_s) * 1000;
}

std::string format_midtrans_time(std::int64_t unix_ms) {
    const std::time_t t = static_cast<std::time_t>(unix_ms / 1000 + jakarta_offset_s);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[32];
    const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return std::string(buf, n);
}

std::string basic_authorization(std::string_view server_key) {
    std::string plain(server_key);
    plain += ':';
    std::string out(4 * ((plain.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(plain.data()),
                                  static_cast<int>(plain.size()));
    out.resize(static_cast<std::size_t>(n));
    OPENSSL_cleanse(plain.data(), plain.size());
    return "Basic " + out;
}

std::string_view to_string(payment_type p) noexcept {
    return p == payment_type::gopay ? "gopay" : "qris";
}

std::optional<payment_type> payment_type_from(std::string_view s) noexcept {
    if (s == "qris") return payment_type::qris;
    if (s == "gopay") return payment_type::gopay;
    return std::nullopt;
}

std::string charge_body(const charge_request& r) {
    boost::json::object body;
    body["payment_type"] = to_string(r.type);
    body["transaction_details"] = {{"order_id", r.order_id},
                                   {"gross_amount", static_cast<std::int64_t>(r.gross_amount)}};
    if (r.expiry) {
        body["custom_expiry"] = {{"expiry_duration", static_cast<std::int64_t>(r.expiry->count())},
                                 {"unit", "second"}};
    }
    if (r.type == payment_type::qris) body["qris"] = {{"acquirer", "gopay"}};
    if (!r.items_json.empty()) {
        boost::system::error_code ec;
        auto items = boost::json::parse(r.items_json, ec);
        if (!ec) body["item_details"] = std::move(items);
    }
    return boost::json::serialize(body);
}

api_answer read_answer(unsigned http_status, std::string_view body) {
    api_answer a;
    a.http_status = http_status;
    boost::system::error_code ec;
    const auto doc = boost::json::parse(body, ec);
    if (!ec && doc.is_object()) {
        const auto& o = doc.get_object();
        a.json = true;
        for (auto [name, out] : {std::pair{"status_code", &a.status_code},
                                 {"status_message", &a.status_message},
                                 {"transaction_id", &a.transaction_id},
                                 {"order_id", &a.order_id},
                                 {"gross_amount", &a.gross_amount},
                                 {"transaction_status", &a.transaction_status},
                                 {"fraud_status", &a.fraud_status},
                                 {"payment_type", &a.payment_type},
                                 {"transaction_time", &a.transaction_time},
                                 {"expiry_time", &a.expiry_time},
                                 {"channel_response_code", &a.channel_response_code},
                                 {"qr_string", &a.qr_string}}) {
            *out = string_field(o, name);
        }
        if (const auto* actions = o.if_contains("actions"); actions && actions->is_array()) {
            for (const auto& act : actions->get_array()) {
                if (!act.is_object()) continue;
                const auto name = string_field(act.get_object(), "name");
                if (name == "generate-qr-code")
                    a.qr_code_url = string_field(act.get_object(), "url");
                if (name == "deeplink-redirect") a.deeplink = string_field(act.get_object(), "url");
            }
        }
    }
    unsigned code = 0;
    std::from_chars(a.status_code.data(), a.status_code.data() + a.status_code.size(), code);
    const auto error_class = [](unsigned c) {
        if (c == 429 || c >= 500) return answer_class::retriable;
        return answer_class::refused;
    };
    if (http_status >= 400) {
        a.verdict = error_class(http_status);
    } else if (http_status < 200 || http_status >= 300 || !a.json) {
        a.verdict = answer_class::retriable;  // a redirect or a page that is not Midtrans's
    } else if (code >= 400 && code != 407) {
        a.verdict = error_class(code);
    } else if (a.transaction_status == "deny" && a.channel_response_code == "900") {
        a.verdict = answer_class::retriable;
    } else {
        a.verdict = answer_class::ok;
    }
    return a;
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view v) noexcept {
    while (!v.empty() && v.front() == ' ')
        v.remove_prefix(1);
    while (!v.empty() && v.back() == ' ')
        v.remove_suffix(1);
    unsigned long s = 0;
    const auto r = std::from_chars(v.data(), v.data() + v.size(), s);
    if (v.empty() || r.ec != std::errc{} || r.ptr != v.data() + v.size() || s > 86'400)
        return std::nullopt;
    return std::chrono::seconds(s);
}

std::optional<ingest::status_update> to_status_update(const api_answer& a,
                                                      ingest::update_source source,
                                                      std::int64_t now_ms,
                                                      std::string_view status_override) {
    const std::string_view status_text =
        status_override.empty() ? std::string_view(a.transaction_status) : status_override;
    const auto status = parse_transaction_status(status_text);
    if (!status || a.order_id.empty() || a.gross_amount.empty()) return std::nullopt;
    ingest::status_update u;
    u.status = *status;
    if (!a.fraud_status.empty()) {
        u.fraud = parse_fraud_status(a.fraud_status);
        if (!u.fraud) return std::nullopt;
    }
    u.source = source;
    u.received_unix_ms = now_ms;
    u.set(ingest::field::order_id, a.order_id);
    u.set(ingest::field::gross_amount, a.gross_amount);
    u.set(ingest::field::transaction_status, status_text);
    if (!a.fraud_status.empty()) u.set(ingest::field::fraud_status, a.fraud_status);
    for (auto [f, v] : {std::pair{ingest::field::status_code, &a.status_code},
                        {ingest::field::transaction_id, &a.transaction_id},
                        {ingest::field::payment_type, &a.payment_type},
                        {ingest::field::transaction_time, &a.transaction_time},
                        {ingest::field::expiry_time, &a.expiry_time},
                        {ingest::field::channel_response_code, &a.channel_response_code}}) {
        if (!v->empty()) u.set(f, *v);
    }
    // Trusted by transport (HTTPS with the server key), but a status that disagrees with its
    // own status_code is never applied (issue 13): reported instead.
    if (!ingest::valid_status_code(a.status_code) ||
        !ingest::status_code_consistent(u.status, u.fraud, a.status_code)) {
        log::line(log::level::warn, "midtrans answer refused: inconsistent status")
            .boolean("security", true)
            .str("reason", "inconsistent_status")
            .str("source", ingest::to_string(source))
            .str("order_id", a.order_id)
            .str("status_code", a.status_code)
            .str("transaction_status", status_text)
            .str("fraud_status", a.fraud_status);
        return std::nullopt;
    }
    return u;
}

}  // namespace posrelay::midtrans
