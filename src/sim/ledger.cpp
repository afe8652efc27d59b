// Charge validation, transactions and Midtrans's answer and notification bodies.
#include "ledger.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include <cstdio>

#include "posrelay/midtrans/signature.hpp"

namespace posrelay::sim {

namespace json = boost::json;
using namespace std::chrono;

std::string random_source::uuid() {
    static constexpr char hex[] = "0123456789abcdef";
    const std::uint64_t a = gen_(), b = gen_();
    std::string s;
    s.reserve(36);
    for (int i = 0; i < 32; ++i) {
        const std::uint64_t w = i < 16 ? a : b;
        unsigned nibble = static_cast<unsigned>((w >> ((i % 16) * 4)) & 0xf);
        if (i == 12) nibble = 4;                 // version 4
        if (i == 16) nibble = 8 | (nibble & 3);  // RFC 4122 variant
        if (i == 8 || i == 12 || i == 16 || i == 20) s += '-';
        s += hex[nibble];
    }
    return s;
}

std::string random_source::digits(std::size_t n) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i)
        s += static_cast<char>('0' + below(10));
    return s;
}

std::string_view status_code_of(tx_status s) noexcept {
    switch (s) {
        case tx_status::settlement:
            return "200";
        case tx_status::deny:
        case tx_status::cancel:
            return "202";
        case tx_status::expire:
            return "407";
        default:  // pending (the sim uses no other status)
            return "201";
    }
}

std::string jakarta_time(sys_time t) {
    const auto local = floor<seconds>(t) + hours(7);
    const auto day = floor<days>(local);
    const year_month_day ymd{day};
    const hh_mm_ss hms{local - day};
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02ld:%02ld:%02ld", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<long>(hms.hours().count()), static_cast<long>(hms.minutes().count()),
                  static_cast<long>(hms.seconds().count()));
    return buf;
}

std::string error_body(const api_error& e, std::string_view id) {
    json::object o{{"status_code", std::to_string(e.status)}, {"status_message", e.message}};
    if (!e.validation_messages.empty()) {
        json::array a;
        for (const auto& m : e.validation_messages)
            a.emplace_back(m);
        o["validation_messages"] = std::move(a);
    }
    if (!id.empty()) o["id"] = id;
    return json::serialize(o);
}

bool valid_order_id(std::string_view id) noexcept {
    if (id.empty() || id.size() > 50) return false;
    for (const char c : id) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
        if (!ok) return false;
    }
    return true;
}

namespace {

api_error invalid(std::string message) {
    return {400, "One or more parameters in the payload is invalid.", {std::move(message)}};
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

// "YYYY-MM-DD HH:MM:SS +0700" (Midtrans's custom_expiry.order_time).
std::optional<sys_time> parse_order_time(std::string_view s) {
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0, oh = 0, om = 0, used = 0;
    char sign = 0;
    const std::string z(s);
    if (std::sscanf(z.c_str(), "%4d-%2d-%2d %2d:%2d:%2d %c%2d%2d%n", &y, &mo, &d, &h, &mi, &se,
                    &sign, &oh, &om, &used) != 9 ||
        static_cast<std::size_t>(used) != z.size() || (sign != '+' && sign != '-'))
        return std::nullopt;
    const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)},
                             day{static_cast<unsigned>(d)}};
    if (!ymd.ok() || h > 23 || mi > 59 || se > 59 || oh > 14 || om > 59) return std::nullopt;
    const auto offset = hours(oh) + minutes(om);
    sys_time t = sys_days(ymd) + hours(h) + minutes(mi) + seconds(se);
    return sign == '+' ? t - offset : t + offset;
}

std::optional<std::int64_t> positive_int(const json::value* v) {
    if (!v) return std::nullopt;
    if (v->is_int64() && v->get_int64() > 0) return v->get_int64();
    if (v->is_uint64() && v->get_uint64() <= 9'000'000'000'000'000ULL)
        return static_cast<std::int64_t>(v->get_uint64());
    return std::nullopt;
}

std::optional<api_error> parse_override(std::string_view header, std::vector<std::string>& out) {
    while (!header.empty()) {
        const auto comma = header.find(',');
        const auto item = trim(header.substr(0, comma));
        header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
        if (item.empty()) continue;
        if (out.size() == 3) return invalid("X-Override-Notification accepts at most 3 URLs");
        const auto u = boost::urls::parse_absolute_uri(item);
        if (!u || u->host().empty())
            return invalid("X-Override-Notification has an invalid URL: " + std::string(item));
        if (u->scheme() != "http")
            return invalid(
                "X-Override-Notification: midtrans-sim sends notifications over plain "
                "http only: " +
                std::string(item));
        out.emplace_back(item);
    }
    return std::nullopt;
}

}  // namespace

std::variant<charge_request, api_error> parse_charge(std::string_view body,
                                                     std::string_view override_urls, sys_time now) {
    boost::system::error_code ec;
    const json::value doc = json::parse(body, ec);
    if (ec || !doc.is_object()) return invalid("request body must be a JSON object");
    const json::object& o = doc.get_object();
    charge_request c;
    c.order_time = now;
    const auto* pt = o.if_contains("payment_type");
    if (!pt || !pt->is_string()) return invalid("payment_type is required");
    c.payment_type = std::string(pt->get_string());
    if (c.payment_type != "gopay" && c.payment_type != "qris")
        return invalid("payment_type " + c.payment_type + " is not supported (gopay or qris)");
    const auto* td = o.if_contains("transaction_details");
    if (!td || !td->is_object()) return invalid("transaction_details is required");
    const auto* oid = td->get_object().if_contains("order_id");
    if (!oid || !oid->is_string() || !valid_order_id(oid->get_string()))
        return invalid(
            "transaction_details.order_id must be 1 to 50 characters of A-Z a-z 0-9 - _ . ~");
    c.order_id = std::string(oid->get_string());
    const auto amount = positive_int(td->get_object().if_contains("gross_amount"));
    if (!amount) return invalid("transaction_details.gross_amount must be a positive integer");
    c.amount = *amount;
    if (const auto* ce = o.if_contains("custom_expiry")) {
        if (!ce->is_object()) return invalid("custom_expiry must be an object");
        const auto& e = ce->get_object();
        if (const auto* ot = e.if_contains("order_time")) {
            const auto t = ot->is_string() ? parse_order_time(ot->get_string()) : std::nullopt;
            if (!t)
                return invalid(
                    "custom_expiry.order_time must look like \"2017-10-04 12:00:00 +0700\"");
            c.order_time = *t;
        }
        const auto duration = positive_int(e.if_contains("expiry_duration"));
        if (!duration || *duration > 365LL * 24 * 3600)
            return invalid("custom_expiry.expiry_duration must be a positive integer");
        const auto* unit = e.if_contains("unit");
        // (Not `cond ? get_string() : ""`: that makes a temporary json::string and the view
        // would dangle.)
        std::string_view u;
        if (unit && unit->is_string()) u = unit->get_string();
        const std::int64_t factor = u == "second"   ? 1
                                    : u == "minute" ? 60
                                    : u == "hour"   ? 3600
                                    : u == "day"    ? 86400
                                                    : 0;
        if (factor == 0) return invalid("custom_expiry.unit must be second, minute, hour or day");
        c.expiry = seconds(*duration * factor);
    }
    if (auto err = parse_override(override_urls, c.notify_urls)) return *err;
    return c;
}

namespace {

std::string tlv(std::string_view id, std::string_view value) {
    char len[3];
    std::snprintf(len, sizeof len, "%02zu", value.size() % 100);
    return std::string(id) + len + std::string(value);
}

// CRC-16/CCITT-FALSE, as EMV QR codes use (field 63).
std::uint16_t crc16(std::string_view s) {
    std::uint16_t crc = 0xffff;
    for (const unsigned char c : s) {
        crc ^= static_cast<std::uint16_t>(c << 8);
        for (int i = 0; i < 8; ++i)
            crc = static_cast<std::uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

}  // namespace

std::string emv_qr_string(const transaction& t) {
    std::string compact;  // the transaction id without dashes: unique per transaction
    for (const char c : t.transaction_id)
        if (c != '-') compact += c;
    std::string s =
        tlv("00", "01") + tlv("01", "12") +
        tlv("26", tlv("00", "COM.GO-JEK.WWW") + tlv("01", "936009140000000001") +
                      tlv("02", t.merchant_id) + tlv("03", "UMI")) +
        tlv("51", tlv("00", "ID.CO.QRIS.WWW") + tlv("02", "ID1020000000001") + tlv("03", "UMI")) +
        tlv("52", "5812") + tlv("53", "360") + tlv("54", std::to_string(t.amount)) +
        tlv("58", "ID") + tlv("59", "MIDTRANS SIM") + tlv("60", "JAKARTA") + tlv("61", "12190") +
        tlv("62", tlv("01", t.order_id.substr(0, 25)) + tlv("05", compact.substr(0, 25))) + "6304";
    char crc[5];
    std::snprintf(crc, sizeof crc, "%04X", crc16(s));
    return s + crc;
}

json::object charge_answer(const transaction& t, std::string_view public_url) {
    const std::string base(public_url);
    const bool gopay = t.payment_type == "gopay";
    json::object o =
        change_answer(t, "201", gopay ? "GO-PAY billing created" : "QRIS transaction is created");
    o["expiry_time"] = t.expiry_time;
    json::array actions;
    auto action = [&](std::string_view name, std::string_view method, std::string url) {
        actions.push_back(
            json::object{{"name", name}, {"method", method}, {"url", std::move(url)}});
    };
    if (gopay) {
        action("generate-qr-code", "GET", base + "/v2/gopay/" + t.transaction_id + "/qr-code");
        action("deeplink-redirect", "GET",
               "gojek://gopay/merchanttransfer?tref=" + t.tref +
                   "&amount=" + std::to_string(t.amount) + "&activity=GP:RR");
        action("get-status", "GET", base + "/v2/" + t.transaction_id + "/status");
        action("cancel", "POST", base + "/v2/" + t.transaction_id + "/cancel");
        actions.back().as_object()["fields"] = json::array{};
    } else {
        action("generate-qr-code", "GET", base + "/v2/qris/" + t.transaction_id + "/qr-code");
    }
    o["actions"] = std::move(actions);
    if (!gopay) {
        o["qr_string"] = t.qr_string;
        o["acquirer"] = "gopay";
    }
    return o;
}

json::object transaction_view(const transaction& t, std::string_view status_message,
                              std::string_view server_key) {
    const auto code = status_code_of(t.status);
    const auto sig = midtrans::compute_signature(t.order_id, code, t.gross_amount, server_key);
    json::object o{{"transaction_time", t.transaction_time},
                   {"transaction_status", to_string(t.status)},
                   {"transaction_id", t.transaction_id},
                   {"status_message", status_message},
                   {"status_code", code},
                   {"signature_key", std::string_view(sig.data(), sig.size())}};
    if (t.status == tx_status::settlement) o["settlement_time"] = t.settlement_time;
    o["payment_type"] = t.payment_type;
    o["order_id"] = t.order_id;
    o["merchant_id"] = t.merchant_id;
    o["gross_amount"] = t.gross_amount;
    o["fraud_status"] = t.fraud_status;
    o["currency"] = "IDR";
    o["expiry_time"] = t.expiry_time;
    if (t.payment_type == "qris") o["acquirer"] = "gopay";
    if (t.status == tx_status::deny) {
        o["channel_response_code"] = "900";
        o["channel_response_message"] = "Intermittent Service Error";
    }
    return o;
}

json::object change_answer(const transaction& t, std::string_view status_code,
                           std::string_view status_message) {
    return {{"status_code", status_code},
            {"status_message", status_message},
            {"transaction_id", t.transaction_id},
            {"order_id", t.order_id},
            {"merchant_id", t.merchant_id},
            {"gross_amount", t.gross_amount},
            {"currency", "IDR"},
            {"payment_type", t.payment_type},
            {"transaction_time", t.transaction_time},
            {"transaction_status", to_string(t.status)},
            {"fraud_status", t.fraud_status}};
}

transaction* ledger::find(std::string_view id) {
    const std::string key(id);
    if (auto it = by_tid_.find(key); it != by_tid_.end()) return it->second.get();
    if (auto it = by_order_.find(key); it != by_order_.end()) return it->second;
    return nullptr;
}

std::variant<transaction*, api_error> ledger::create(const charge_request& c, sys_time now) {
    if (auto it = by_order_.find(c.order_id); it != by_order_.end()) {
        const auto s = it->second->status;
        if (s == tx_status::pending || s == tx_status::settlement)
            return api_error{406,
                             "The request could not be completed due to a conflict with the "
                             "current state of the target resource, please try again",
                             {}};
    }
    if (by_tid_.size() >= max_orders_)
        return api_error{500, "midtrans-sim: --max-orders transactions reached", {}};
    auto t = std::make_unique<transaction>();
    do {
        t->transaction_id = rng_.uuid();
    } while (by_tid_.contains(t->transaction_id));
    t->order_id = c.order_id;
    t->payment_type = c.payment_type;
    t->amount = c.amount;
    t->gross_amount = std::to_string(c.amount) + ".00";
    t->merchant_id = merchant_id_;
    t->transaction_time = jakarta_time(now);
    t->expires_at = c.order_time + c.expiry;
    t->expiry_time = jakarta_time(t->expires_at);
    t->tref = rng_.digits(19);
    for (int i = 0; i < 4; ++i)
        t->tref += static_cast<char>('A' + rng_.below(26));
    t->qr_string = emv_qr_string(*t);
    t->notify_urls = c.notify_urls;
    transaction* p = t.get();
    by_order_[c.order_id] = p;
    by_tid_.emplace(p->transaction_id, std::move(t));
    ++counts_[static_cast<std::size_t>(tx_status::pending)];
    return p;
}

bool ledger::transition(transaction& t, tx_status to, sys_time now) {
    if (t.status != tx_status::pending || to == tx_status::pending) return false;
    --counts_[static_cast<std::size_t>(t.status)];
    ++counts_[static_cast<std::size_t>(to)];
    t.status = to;
    if (to == tx_status::settlement) t.settlement_time = jakarta_time(now);
    return true;
}

}  // namespace posrelay::sim
