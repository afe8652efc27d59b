// Terminal frames → client_frame with simdjson On-Demand: one validating pass over the
// object that keeps the known fields, then the rules of the frame's op. Never throws.
#include "posrelay/fanout/protocol.hpp"

#include <charconv>
#include <cstdint>
#include <string>
#include <utility>

namespace posrelay::fanout {

namespace od = simdjson::ondemand;

std::string_view to_string(errc e) noexcept {
    switch (e) {
        case errc::bad_frame:
            return "bad_frame";
        case errc::frame_too_large:
            return "frame_too_large";
        case errc::unknown_op:
            return "unknown_op";
        case errc::unsupported_version:
            return "unsupported_version";
        case errc::handshake_required:
            return "handshake_required";
        case errc::handshake_timeout:
            return "handshake_timeout";
        case errc::bad_token:
            return "bad_token";
        case errc::rate_limited:
            return "rate_limited";
        case errc::too_many_connections:
            return "too_many_connections";
        case errc::resume_gap:
            return "resume_gap";
        case errc::bad_ack:
            return "bad_ack";
        case errc::slow_consumer:
            return "slow_consumer";
        case errc::idle_timeout:
            return "idle_timeout";
        case errc::replaced:
            return "replaced";
        case errc::bad_request:
            return "bad_request";
        case errc::unavailable:
            return "unavailable";
        case errc::internal_error:
            return "internal_error";
        case errc::order_exists:
            return "order_exists";
        case errc::order_not_found:
            return "order_not_found";
        case errc::midtrans_error:
            return "midtrans_error";
        case errc::busy:
            return "busy";
        case errc::resync:
            return "resync";
        case errc::token_expired:
            return "token_expired";
        case errc::revoked:
            return "revoked";
        case errc::disconnected:
            return "disconnected";
        case errc::too_many_observers:
            return "too_many_observers";
    }
    return "internal_error";
}

bool valid_id(std::string_view id) noexcept {
    if (id.empty() || id.size() > 64) return false;
    for (const char c : id) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

bool valid_epoch(std::string_view e) noexcept {
    if (e.size() > 24) return false;
    for (const char c : e) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'))) return false;
    }
    return true;
}

namespace {

// Nesting allowed inside unknown fields (the root object is level 1).
constexpr std::size_t max_depth = 32;
constexpr std::size_t max_token_bytes = 2048;  // an ES256 JWT with long ids fits
constexpr std::size_t max_request_id_bytes = 64;

bool is_json_space(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// raw_json_token() includes the whitespace up to the next token.
std::string_view trim_right(std::string_view s) noexcept {
    while (!s.empty() && is_json_space(s.back()))
        s.remove_suffix(1);
    return s;
}

bool is_digit(char c) noexcept {
    return c >= '0' && c <= '9';
}

// RFC 8259 number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, any magnitude.
// On-Demand does not check a number it is not asked to convert.
bool is_json_number(std::string_view s) noexcept {
    std::size_t i = 0;
    const auto digits = [&] {
        const std::size_t start = i;
        while (i < s.size() && is_digit(s[i]))
            ++i;
        return i > start;
    };
    if (i < s.size() && s[i] == '-') ++i;
    if (i < s.size() && s[i] == '0') {
        ++i;
    } else if (!digits()) {
        return false;
    }
    if (i < s.size() && s[i] == '.') {
        ++i;
        if (!digits()) return false;
    }
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
        if (!digits()) return false;
    }
    return i == s.size();
}

// Walks (and so validates) a value without keeping it; `depth` is the nesting level of
// `v`. On-Demand alone would skip an unread value without checking its syntax.
simdjson::error_code skip_value(od::value& v, std::size_t depth) noexcept {
    od::json_type type{};
    if (auto err = v.type().get(type)) return err;
    switch (type) {
        case od::json_type::object: {
            if (depth > max_depth) return simdjson::DEPTH_ERROR;
            od::object obj;
            if (auto err = v.get_object().get(obj)) return err;
            for (auto member : obj) {
                od::field f;
                if (auto err = std::move(member).get(f)) return err;
                std::string_view key;  // unescaping checks the key's escapes
                if (auto err = f.unescaped_key().get(key)) return err;
                if (auto err = skip_value(f.value(), depth + 1)) return err;
            }
            return simdjson::SUCCESS;
        }
        case od::json_type::array: {
            if (depth > max_depth) return simdjson::DEPTH_ERROR;
            od::array arr;
            if (auto err = v.get_array().get(arr)) return err;
            for (auto element : arr) {
                od::value e;
                if (auto err = std::move(element).get(e)) return err;
                if (auto err = skip_value(e, depth + 1)) return err;
            }
            return simdjson::SUCCESS;
        }
        case od::json_type::string: {
            std::string_view s;
            return v.get_string().get(s);
        }
        case od::json_type::number:
            return is_json_number(trim_right(v.raw_json_token())) ? simdjson::SUCCESS
                                                                  : simdjson::NUMBER_ERROR;
        case od::json_type::boolean: {
            const auto t = trim_right(v.raw_json_token());
            return t == "true" || t == "false" ? simdjson::SUCCESS : simdjson::T_ATOM_ERROR;
        }
        case od::json_type::null:
            return trim_right(v.raw_json_token()) == "null" ? simdjson::SUCCESS
                                                            : simdjson::N_ATOM_ERROR;
    }
    return simdjson::TAPE_ERROR;
}

// True when the whole document has been consumed (no trailing content).
bool at_end(od::document& doc) noexcept {
    return doc.current_location().error() == simdjson::OUT_OF_BOUNDS;
}

// The fields any op of version 1 reads. Others are skipped (after validation).
enum class key : std::uint8_t {
    op,
    v,
    terminal_id,
    store_id,
    token,
    resume_from,
    subscribe,
    seq,
    id,
    epoch,
    resume_eid,
    count
};
constexpr std::string_view key_names[] = {"op",    "v",           "terminal_id", "store_id",
                                          "token", "resume_from", "subscribe",   "seq",
                                          "id",    "epoch",       "resume_eid"};
static_assert(std::size(key_names) == static_cast<std::size_t>(key::count));

std::optional<key> key_from_name(std::string_view name) noexcept {
    for (std::size_t i = 0; i < std::size(key_names); ++i) {
        if (key_names[i] == name) return static_cast<key>(i);
    }
    return std::nullopt;
}

// What the pass saw of one known field (its first occurrence). Views point into the
// parser's string buffer or the frame: valid until the next iterate.
struct slot {
    unsigned count = 0;
    od::json_type type = od::json_type::null;
    std::string_view text;  // the string, or the number's token
    // Arrays (subscribe): whether every entry is a string, and the entries seen.
    bool all_strings = true;
    unsigned store_entries = 0;
    unsigned other_entries = 0;
};

struct fields {
    slot slots[static_cast<std::size_t>(key::count)];
    [[nodiscard]] const slot& operator[](key k) const noexcept {
        return slots[static_cast<std::size_t>(k)];
    }
    slot& operator[](key k) noexcept { return slots[static_cast<std::size_t>(k)]; }
};

// Keeps the value of a known field in `s` (the first time; a repeat is only validated).
simdjson::error_code take(od::value& v, slot& s) noexcept {
    ++s.count;
    od::json_type type{};
    if (auto err = v.type().get(type)) return err;
    if (s.count > 1) return skip_value(v, 2);
    s.type = type;
    switch (type) {
        case od::json_type::string:
            return v.get_string().get(s.text);
        case od::json_type::number:
            s.text = trim_right(v.raw_json_token());
            return is_json_number(s.text) ? simdjson::SUCCESS : simdjson::NUMBER_ERROR;
        case od::json_type::array: {
            od::array arr;
            if (auto err = v.get_array().get(arr)) return err;
            for (auto element : arr) {
                od::value e;
                if (auto err = std::move(element).get(e)) return err;
                od::json_type et{};
                if (auto err = e.type().get(et)) return err;
                if (et != od::json_type::string) {
                    s.all_strings = false;
                    if (auto err = skip_value(e, 3)) return err;
                    continue;
                }
                std::string_view entry;
                if (auto err = e.get_string().get(entry)) return err;
                ++(entry == "store" ? s.store_entries : s.other_entries);
            }
            return simdjson::SUCCESS;
        }
        default:
            return skip_value(v, 2);
    }
}

bool fail(parse_failure& err, errc code, std::string message) {
    err.code = code;
    err.message = std::move(message);
    return false;
}

// Errors of the bytes themselves, as opposed to the meaning of the fields.
bool syntax_failure(parse_failure& err, simdjson::error_code e) {
    switch (e) {
        case simdjson::UTF8_ERROR:
            return fail(err, errc::bad_frame, "frame is not valid UTF-8");
        case simdjson::CAPACITY:
            return fail(err, errc::frame_too_large, "frame is too large");
        case simdjson::EMPTY:
            return fail(err, errc::bad_frame, "frame is empty");
        case simdjson::DEPTH_ERROR:
            return fail(err, errc::bad_frame,
                        "frame nests deeper than " + std::to_string(max_depth) + " levels");
        case simdjson::TRAILING_CONTENT:
            return fail(err, errc::bad_frame, "content after the JSON object");
        default:
            return fail(err, errc::bad_frame, "frame is not valid JSON");
    }
}

// A non-negative integer of at most 64 bits: digits only (no sign, fraction or exponent).
std::optional<std::uint64_t> to_uint64(std::string_view token) noexcept {
    if (token.empty() || !is_digit(token.front())) return std::nullopt;
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), n);
    if (ec != std::errc{} || end != token.data() + token.size()) return std::nullopt;
    return n;
}

// The checks shared by every field: present at most once.
bool once(const fields& f, key k, parse_failure& err) {
    if (f[k].count <= 1) return true;
    return fail(err, errc::bad_frame,
                std::string{key_names[static_cast<std::size_t>(k)]} + " appears more than once");
}

// An optional string of at most `max` bytes (null = absent). `out` empty when absent.
bool optional_string(const fields& f, key k, std::size_t max, std::string_view& out,
                     parse_failure& err) {
    out = {};
    if (!once(f, k, err)) return false;
    const slot& s = f[k];
    if (s.count == 0 || s.type == od::json_type::null) return true;
    if (s.type != od::json_type::string || s.text.size() > max) {
        return fail(err, errc::bad_frame,
                    std::string{key_names[static_cast<std::size_t>(k)]} +
                        " must be a string of at most " + std::to_string(max) + " bytes");
    }
    out = s.text;
    return true;
}

bool route_id(const fields& f, key k, std::string_view& out, parse_failure& err) {
    if (!once(f, k, err)) return false;
    const slot& s = f[k];
    if (s.count == 0 || s.type != od::json_type::string || !valid_id(s.text)) {
        return fail(err, errc::bad_frame,
                    std::string{key_names[static_cast<std::size_t>(k)]} +
                        " must be 1-64 of A-Z a-z 0-9 . _ -");
    }
    out = s.text;
    return true;
}

// A non-negative integer; `required` false: absent or null gives nullopt.
bool sequence(const fields& f, key k, bool required, std::optional<std::uint64_t>& out,
              parse_failure& err) {
    out.reset();
    if (!once(f, k, err)) return false;
    const slot& s = f[k];
    if (!required && (s.count == 0 || s.type == od::json_type::null)) return true;
    if (s.count == 0 || s.type != od::json_type::number || !(out = to_uint64(s.text))) {
        return fail(err, errc::bad_frame,
                    std::string{key_names[static_cast<std::size_t>(k)]} +
                        " must be a non-negative integer");
    }
    return true;
}

bool parse_hello(const fields& f, hello_frame& out, parse_failure& err) {
    // The version first: a later version's hello may carry other fields.
    if (!once(f, key::v, err)) return false;
    const slot& v = f[key::v];
    if (v.count == 0 || v.type != od::json_type::number ||
        v.text.find_first_of(".eE") != std::string_view::npos) {
        return fail(err, errc::bad_frame, "v must be an integer");
    }
    if (v.text != "1") {
        return fail(err, errc::unsupported_version,
                    "v is not a supported protocol version (supported: 1)");
    }
    std::string_view terminal_id;
    std::string_view store_id;
    if (!route_id(f, key::terminal_id, terminal_id, err)) return false;
    if (!route_id(f, key::store_id, store_id, err)) return false;
    if (!once(f, key::token, err)) return false;
    const slot& token = f[key::token];
    if (token.count == 0 || token.type != od::json_type::string ||
        token.text.size() > max_token_bytes) {
        return fail(
            err, errc::bad_frame,
            "token must be a string of at most " + std::to_string(max_token_bytes) + " bytes");
    }
    std::optional<std::uint64_t> resume_from;
    if (!sequence(f, key::resume_from, false, resume_from, err)) return false;
    if (!once(f, key::subscribe, err)) return false;
    const slot& sub = f[key::subscribe];
    bool subscribe_store = false;
    if (sub.count != 0 && sub.type != od::json_type::null) {
        if (sub.type != od::json_type::array || !sub.all_strings) {
            return fail(err, errc::bad_frame, "subscribe must be an array of strings");
        }
        if (sub.other_entries != 0) {
            return fail(err, errc::bad_frame, "subscribe may only contain \"store\"");
        }
        if (sub.store_entries > 1) {
            return fail(err, errc::bad_frame, "subscribe lists \"store\" more than once");
        }
        subscribe_store = sub.store_entries == 1;
    }
    if (!once(f, key::epoch, err) || !once(f, key::resume_eid, err)) return false;
    const slot& epoch = f[key::epoch];
    const bool has_epoch = epoch.count != 0 && epoch.type != od::json_type::null;
    if (has_epoch && (epoch.type != od::json_type::string || !valid_epoch(epoch.text))) {
        return fail(err, errc::bad_frame, "epoch must be a string of at most 24 of 0-9 a-z");
    }
    const slot& eid = f[key::resume_eid];
    std::optional<std::uint64_t> resume_eid;
    if (eid.count != 0 && eid.type != od::json_type::null) {
        if (eid.type == od::json_type::string) resume_eid = to_uint64(eid.text);
        if (!resume_eid || eid.text.size() > 20) {
            return fail(err, errc::bad_frame, "resume_eid must be a string of at most 20 digits");
        }
    }
    out.version = protocol_version;
    out.epoch = has_epoch ? std::optional<std::string>(std::string(epoch.text)) : std::nullopt;
    out.resume_eid = resume_eid;
    out.terminal_id.assign(terminal_id);
    out.store_id.assign(store_id);
    out.token.assign(token.text);
    out.resume_from = resume_from;
    out.subscribe_store = subscribe_store;
    return true;
}

bool is_request_op(std::string_view op) noexcept {
    for (const auto r : request_ops) {
        if (r == op) return true;
    }
    return false;
}

}  // namespace

frame_parser::frame_parser(std::size_t max_frame_bytes)
    : parser_(max_frame_bytes), max_frame_bytes_(max_frame_bytes) {}

// One pass in document order keeps the known fields (views), validating everything else;
// errors of syntax win over errors of meaning. Then the op decides which fields count.
// `out` is written only on success.
bool frame_parser::parse(simdjson::padded_string_view frame, client_frame& out,
                         parse_failure& err) {
    if (frame.length() > max_frame_bytes_) {
        return fail(err, errc::frame_too_large,
                    "frame is larger than " + std::to_string(max_frame_bytes_) + " bytes");
    }
    od::document doc;
    if (auto e = parser_.iterate(frame).get(doc)) return syntax_failure(err, e);
    od::json_type type{};
    if (auto e = doc.type().get(type)) return syntax_failure(err, e);
    if (type != od::json_type::object) {
        return fail(err, errc::bad_frame, "frame must be a JSON object");
    }
    od::object obj;
    if (auto e = doc.get_object().get(obj)) return syntax_failure(err, e);
    fields f;
    for (auto member : obj) {
        od::field field;
        if (auto e = std::move(member).get(field)) return syntax_failure(err, e);
        std::string_view name;
        if (auto e = field.unescaped_key().get(name)) return syntax_failure(err, e);
        const auto k = key_from_name(name);
        if (auto e = k ? take(field.value(), f[*k]) : skip_value(field.value(), 2)) {
            return syntax_failure(err, e);
        }
    }
    if (!at_end(doc)) return syntax_failure(err, simdjson::TRAILING_CONTENT);

    if (!once(f, key::op, err)) return false;
    const slot& op_slot = f[key::op];
    if (op_slot.count == 0) return fail(err, errc::bad_frame, "op is required");
    if (op_slot.type != od::json_type::string) {
        return fail(err, errc::bad_frame, "op must be a string");
    }
    const std::string_view op = op_slot.text;
    if (op == "hello") {
        if (!parse_hello(f, out.hello, err)) return false;
        out.kind = frame_kind::hello;
        return true;
    }
    if (op == "ack") {
        std::optional<std::uint64_t> seq;
        if (!sequence(f, key::seq, true, seq, err)) return false;
        out.kind = frame_kind::ack;
        out.ack.seq = *seq;
        return true;
    }
    if (op == "ping") {
        std::string_view id;
        if (!optional_string(f, key::id, max_request_id_bytes, id, err)) return false;
        out.kind = frame_kind::ping;
        out.ping.id.assign(id);
        return true;
    }
    if (op == "pong") {
        out.kind = frame_kind::pong;
        return true;
    }
    if (is_request_op(op)) {
        // An invalid id is an error about the request, never fatal (§13): kept in id_error.
        std::string_view id;
        parse_failure id_err;
        const bool id_ok = optional_string(f, key::id, max_request_id_bytes, id, id_err);
        out.kind = frame_kind::request;
        out.request.op.assign(op);
        out.request.id.assign(id_ok ? id : std::string_view{});
        out.request.id_error = id_ok ? std::string{} : std::move(id_err.message);
        out.request.json.assign(frame.data(), frame.length());
        return true;
    }
    return fail(err, errc::unknown_op, "op is not an operation of protocol version 1");
}

}  // namespace posrelay::fanout
