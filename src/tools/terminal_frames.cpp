// Client-side frames of the terminal protocol: JSON building, Boost.JSON parsing of server
// frames, HMAC-SHA256 tokens (OpenSSL EVP_Q_mac) and the reconnect policy by outcome.
#include "tools/terminal_frames.hpp"

#include <openssl/evp.h>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <array>
#include <limits>
#include <stdexcept>

#include "posrelay/log.hpp"

namespace posrelay::tools {

namespace json = boost::json;

namespace {

// ,"key":"escaped value"
void append_string_field(std::string& out, std::string_view key, std::string_view value) {
    out += ',';
    log::append_json_member(out, key, value);
}

// A non-negative integer field. Missing: nullopt with ok = true; wrong type: ok = false.
std::optional<std::uint64_t> get_u64(const json::object& o, std::string_view key, bool& ok) {
    const auto* v = o.if_contains(key);
    if (v == nullptr || v->is_null()) return std::nullopt;
    if (v->is_uint64()) return v->get_uint64();
    if (v->is_int64() && v->get_int64() >= 0) return static_cast<std::uint64_t>(v->get_int64());
    ok = false;
    return std::nullopt;
}

std::optional<std::int64_t> get_i64(const json::object& o, std::string_view key, bool& ok) {
    const auto* v = o.if_contains(key);
    if (v == nullptr || v->is_null()) return std::nullopt;
    if (v->is_int64()) return v->get_int64();
    if (v->is_uint64() &&
        v->get_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return static_cast<std::int64_t>(v->get_uint64());
    }
    ok = false;
    return std::nullopt;
}

// A string field; missing → "" (ok stays true); wrong type → ok = false.
std::string get_str(const json::object& o, std::string_view key, bool& ok) {
    const auto* v = o.if_contains(key);
    if (v == nullptr || v->is_null()) return {};
    if (!v->is_string()) {
        ok = false;
        return {};
    }
    return std::string(v->get_string());
}

bool get_bool(const json::object& o, std::string_view key, bool& ok) {
    const auto* v = o.if_contains(key);
    if (v == nullptr || v->is_null()) return false;
    if (!v->is_bool()) {
        ok = false;
        return false;
    }
    return v->get_bool();
}

bool parse_welcome(const json::object& o, welcome_info& w, std::string& error) {
    bool ok = true;
    w.terminal_id = get_str(o, "terminal_id", ok);
    w.store_id = get_str(o, "store_id", ok);
    auto last = get_u64(o, "last_seq", ok);
    w.epoch = get_str(o, "epoch", ok);
    w.resume_from = get_u64(o, "resume_from", ok);
    auto hb = get_u64(o, "heartbeat_ms", ok);
    auto mfb = get_u64(o, "max_frame_bytes", ok);
    auto inflight = get_u64(o, "max_inflight", ok);
    w.node = get_str(o, "node", ok);
    w.subscribe_store = false;
    if (const auto* s = o.if_contains("subscribe"); s != nullptr && s->is_array()) {
        for (const auto& item : s->get_array()) {
            if (item.is_string() && item.get_string() == "store") w.subscribe_store = true;
        }
    }
    const auto* obs = o.if_contains("observer");
    w.observer = obs != nullptr && obs->is_bool() && obs->get_bool();
    if (!ok || !last) {
        error = "welcome: last_seq missing or a field of the wrong type";
        return false;
    }
    w.last_seq = *last;
    w.heartbeat = hb && *hb > 0 ? std::chrono::milliseconds(static_cast<std::int64_t>(*hb))
                                : default_heartbeat;
    w.max_frame_bytes = mfb && *mfb > 0 ? static_cast<std::size_t>(*mfb) : default_max_frame_bytes;
    w.max_inflight = inflight.value_or(0);
    return true;
}

bool parse_event(const json::object& o, event_info& e, std::string& error) {
    bool ok = true;
    auto seq = get_u64(o, "seq", ok);
    e.event_time_ms = get_i64(o, "event_time_ms", ok);
    e.order_id = get_str(o, "order_id", ok);
    e.transaction_status = get_str(o, "transaction_status", ok);
    e.terminal_id = get_str(o, "terminal_id", ok);
    e.store_id = get_str(o, "store_id", ok);
    e.epoch = get_str(o, "epoch", ok);
    e.eid = get_str(o, "eid", ok);
    e.paid = get_bool(o, "paid", ok);
    e.conflict.reset();
    if (const auto* c = o.if_contains("status_conflict"); c != nullptr && c->is_object()) {
        const auto& co = c->get_object();
        e.conflict =
            conflict_info{get_str(co, "previous_status", ok), get_str(co, "claimed_status", ok),
                          get_str(co, "midtrans_status", ok), get_bool(co, "applied", ok)};
    }
    if (!ok || !seq || *seq == 0) {
        error = "event: seq missing or not a positive integer, or a field of the wrong type";
        return false;
    }
    e.seq = *seq;
    return true;
}

bool parse_error(const json::object& o, error_info& e, std::string& error) {
    bool ok = true;
    e.code = get_str(o, "code", ok);
    e.message = get_str(o, "message", ok);
    e.fatal = get_bool(o, "fatal", ok);
    e.id = get_str(o, "id", ok);
    e.epoch = get_str(o, "epoch", ok);
    e.last_seq = get_u64(o, "last_seq", ok).value_or(0);
    if (!ok || e.code.empty()) {
        error = "error: code missing or a field of the wrong type";
        return false;
    }
    return true;
}

bool parse_result(const json::object& o, result_info& r, std::string& error) {
    bool ok = true;
    r.request = get_str(o, "request", ok);
    r.order_id = get_str(o, "order_id", ok);
    r.transaction_status = get_str(o, "transaction_status", ok);
    r.paid = get_bool(o, "paid", ok);
    r.gross_amount = get_str(o, "gross_amount", ok);
    r.payment_type = get_str(o, "payment_type", ok);
    r.qr_code_url = get_str(o, "qr_code_url", ok);
    r.qr_string = get_str(o, "qr_string", ok);
    r.deeplink = get_str(o, "deeplink", ok);
    r.expiry_time = get_str(o, "expiry_time", ok);
    if (!ok) {
        error = "result: a field of the wrong type";
        return false;
    }
    return true;
}

bool parse_goaway(const json::object& o, goaway_info& g, std::string& error) {
    bool ok = true;
    g.reason = get_str(o, "reason", ok);
    auto after = get_u64(o, "reconnect_after_ms", ok);
    if (!ok) {
        error = "goaway: a field of the wrong type";
        return false;
    }
    g.reconnect_after = std::chrono::milliseconds(static_cast<std::int64_t>(after.value_or(0)));
    return true;
}

}  // namespace

std::optional<transport> parse_transport(std::string_view s) noexcept {
    if (s == "tcp") return transport::tcp;
    if (s == "tls") return transport::tls;
    if (s == "ws") return transport::ws;
    if (s == "wss") return transport::wss;
    return std::nullopt;
}

std::string_view to_string(transport t) noexcept {
    switch (t) {
        case transport::tcp:
            return "tcp";
        case transport::tls:
            return "tls";
        case transport::ws:
            return "ws";
        case transport::wss:
            return "wss";
    }
    return "tcp";
}

std::string hello_json(const hello_params& h) {
    std::string out = R"({"op":"hello","v":)";
    out += std::to_string(terminal_protocol_version);
    append_string_field(out, "terminal_id", h.terminal_id);
    append_string_field(out, "store_id", h.store_id);
    append_string_field(out, "token", h.token);
    if (h.resume_from) {
        out += ",\"resume_from\":";
        out += std::to_string(*h.resume_from);
    }
    if (h.subscribe_store) out += R"(,"subscribe":["store"])";
    if (h.epoch) append_string_field(out, "epoch", *h.epoch);
    if (h.resume_from && !h.resume_eid.empty())
        append_string_field(out, "resume_eid", h.resume_eid);
    out += '}';
    return out;
}

std::string ack_json(std::uint64_t seq) {
    return R"({"op":"ack","seq":)" + std::to_string(seq) + "}";
}

std::string ping_json(std::string_view id) {
    std::string out = R"({"op":"ping")";
    append_string_field(out, "id", id);
    out += '}';
    return out;
}

std::string pong_json() {
    return R"({"op":"pong"})";
}

std::string charge_json(const midtrans::charge_request& r, std::string_view id) {
    std::string out = R"({"op":"charge")";
    append_string_field(out, "id", id);
    append_string_field(out, "order_id", r.order_id);
    out += ",\"gross_amount\":";
    out += std::to_string(r.gross_amount);
    append_string_field(out, "payment_type", midtrans::to_string(r.type));
    if (r.expiry) {
        out += ",\"expiry\":";
        out += std::to_string(r.expiry->count());
    }
    if (!r.items_json.empty()) {
        out += ",\"items\":";
        out += r.items_json;
    }
    out += '}';
    return out;
}

std::string order_request_json(std::string_view op, std::string_view id,
                               std::string_view order_id) {
    std::string out = R"({"op":")";
    log::append_json_escaped(out, op);
    out += '"';
    append_string_field(out, "id", id);
    append_string_field(out, "order_id", order_id);
    out += '}';
    return out;
}

bool parse_server_frame(std::string_view text, server_frame& out, std::string& error) {
    std::array<unsigned char, 4096> scratch;
    json::monotonic_resource mr(scratch.data(), scratch.size());
    boost::system::error_code ec;
    json::value v = json::parse(text, ec, &mr);
    if (ec) {
        error = "not JSON: " + ec.message();
        return false;
    }
    if (!v.is_object()) {
        error = "not a JSON object";
        return false;
    }
    const auto& o = v.get_object();
    const auto* op = o.if_contains("op");
    if (op == nullptr || !op->is_string()) {
        error = "no string \"op\"";
        return false;
    }
    out = server_frame{};
    out.op_name = std::string(op->get_string());
    bool ok = true;
    out.id = get_str(o, "id", ok);
    if (!ok) {
        error = out.op_name + ": \"id\" is not a string";
        return false;
    }
    if (out.op_name == "welcome") {
        out.op = server_op::welcome;
        return parse_welcome(o, out.welcome, error);
    }
    if (out.op_name == "event") {
        out.op = server_op::event;
        return parse_event(o, out.event, error);
    }
    if (out.op_name == "error") {
        out.op = server_op::error;
        return parse_error(o, out.error, error);
    }
    if (out.op_name == "goaway") {
        out.op = server_op::goaway;
        return parse_goaway(o, out.goaway, error);
    }
    if (out.op_name == "result") {
        out.op = server_op::result;
        return parse_result(o, out.result, error);
    }
    if (out.op_name == "ping") {
        out.op = server_op::ping;
    } else if (out.op_name == "pong") {
        out.op = server_op::pong;
    } else {
        out.op = server_op::other;
    }
    return true;
}

std::string mint_token(std::string_view secret, std::string_view terminal_id,
                       std::string_view store_id) {
    std::string msg = "posrelay-terminal-v1\n";
    msg += terminal_id;
    msg += '\n';
    msg += store_id;
    std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
    std::size_t len = 0;
    static const unsigned char empty_key = 0;
    const void* key = secret.empty() ? &empty_key : static_cast<const void*>(secret.data());
    if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key, secret.size(),
                  reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac.data(),
                  mac.size(), &len) == nullptr) {
        throw std::runtime_error("HMAC-SHA256 failed (OpenSSL)");
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string out = "v1.";
    for (std::size_t i = 0; i < len; ++i) {
        out += hex[mac[i] >> 4];
        out += hex[mac[i] & 0xf];
    }
    return out;
}

std::string_view to_string(outcome::kind k) noexcept {
    switch (k) {
        case outcome::kind::closed:
            return "closed";
        case outcome::kind::connect_failed:
            return "connect_failed";
        case outcome::kind::handshake_failed:
            return "handshake_failed";
        case outcome::kind::connection_lost:
            return "connection_lost";
        case outcome::kind::heartbeat_timeout:
            return "heartbeat_timeout";
        case outcome::kind::write_timeout:
            return "write_timeout";
        case outcome::kind::protocol_error:
            return "protocol_error";
        case outcome::kind::server_error:
            return "server_error";
        case outcome::kind::goaway:
            return "goaway";
    }
    return "unknown";
}

bool is_permanent_error_code(std::string_view code) noexcept {
    // A wrong token or version, a protocol bug in this client, or another device using the
    // terminal id (proto-docs/terminal-protocol.md §11): the same hello would fail again.
    static constexpr std::string_view permanent[] = {
        "bad_token",       "unsupported_version", "replaced",           "bad_frame",
        "frame_too_large", "unknown_op",          "handshake_required", "bad_ack",
        "token_expired",  // the same token stays expired: a new one is needed
        "revoked",        // likewise revoked (§17)
    };
    for (auto c : permanent) {
        if (c == code) return true;
    }
    return false;
}

next_step classify(const outcome& o) noexcept {
    switch (o.what) {
        case outcome::kind::closed:
            return next_step::stop;
        case outcome::kind::goaway:
            return next_step::reconnect_after;
        case outcome::kind::server_error:
            if (o.error.code == "resume_gap") return next_step::resync;
            if (o.error.code == "resync") return next_step::new_epoch;
            return is_permanent_error_code(o.error.code) ? next_step::give_up
                                                         : next_step::reconnect;
        default:
            return next_step::reconnect;
    }
}

std::chrono::milliseconds minimum_delay(const outcome& o) noexcept {
    // rate_limited: every handshake from this address is refused for the rest of the minute.
    if (o.what == outcome::kind::server_error && o.error.code == "rate_limited") {
        return std::chrono::seconds(60);
    }
    return std::chrono::milliseconds(0);
}

}  // namespace posrelay::tools
