// Midtrans notification body → status_update with simdjson On-Demand: one pass over the
// object in order, strict about the kept fields, loose (but still validating) about the rest.
#include "posrelay/ingest/notification_parser.hpp"

#include <algorithm>
#include <array>
#include <bitset>
#include <string>
#include <utility>

namespace posrelay::ingest {

namespace od = simdjson::ondemand;

std::string_view to_string(parse_errc e) noexcept {
    switch (e) {
        case parse_errc::ok:
            return "ok";
        case parse_errc::body_too_large:
            return "body_too_large";
        case parse_errc::invalid_utf8:
            return "invalid_utf8";
        case parse_errc::malformed_json:
            return "malformed_json";
        case parse_errc::not_an_object:
            return "not_an_object";
        case parse_errc::missing_field:
            return "missing_field";
        case parse_errc::wrong_type:
            return "wrong_type";
        case parse_errc::invalid_value:
            return "invalid_value";
        case parse_errc::duplicate_field:
            return "duplicate_field";
    }
    return "unknown";
}

namespace {

// The first five fields of `field` are required in a notification.
constexpr std::size_t required_fields = 5;
static_assert(static_cast<std::size_t>(field::transaction_status) == required_fields - 1);

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

// RFC 8259 number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? of any magnitude.
// simdjson's own number parsers would refuse valid but huge numbers, which unknown
// fields may carry.
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

// The key of a member, without copying it when it holds no escape (nearly always): the raw
// bytes are then the key. Stage 1 has checked that every string is closed and free of
// control characters, so the scan ends at the closing quote.
simdjson::error_code read_key(od::field& f, std::string_view& key) noexcept {
    const char* const start = f.key().raw();
    const char* end = start;
    while (*end != '"' && *end != '\\')
        ++end;
    if (*end == '"') {
        key = std::string_view{start, static_cast<std::size_t>(end - start)};
        return simdjson::SUCCESS;
    }
    return f.unescaped_key().get(key);
}

// Walks (and so validates) any value without keeping it, refusing containers nested
// deeper than max_json_depth. `depth` is the nesting level of `v` (the root object is 1);
// recursion is bounded by the same limit. On-Demand alone would skip unread values
// without checking their syntax or depth.
simdjson::error_code skip_value(od::value& v, std::size_t depth) noexcept {
    od::json_type type{};
    if (auto err = v.type().get(type)) return err;
    switch (type) {
        case od::json_type::object: {
            if (depth > max_json_depth) return simdjson::DEPTH_ERROR;
            od::object obj;
            if (auto err = v.get_object().get(obj)) return err;
            for (auto member : obj) {
                od::field f;
                if (auto err = std::move(member).get(f)) return err;
                std::string_view key;  // unescaping checks the key's escapes
                if (auto err = read_key(f, key)) return err;
                if (auto err = skip_value(f.value(), depth + 1)) return err;
            }
            return simdjson::SUCCESS;
        }
        case od::json_type::array: {
            if (depth > max_json_depth) return simdjson::DEPTH_ERROR;
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

parse_error make_error(parse_errc code, std::string message) {
    return parse_error{code, std::nullopt, std::move(message)};
}

parse_error field_error(parse_errc code, field f, std::string_view what) {
    std::string message{field_name(f)};
    message.append(what);
    return parse_error{code, f, std::move(message)};
}

// Errors of the bytes themselves (as opposed to the meaning of the fields).
parse_error syntax_error(simdjson::error_code err) {
    switch (err) {
        case simdjson::UTF8_ERROR:
            return make_error(parse_errc::invalid_utf8, "body is not valid UTF-8");
        case simdjson::CAPACITY:
        case simdjson::MEMALLOC:
            return make_error(parse_errc::body_too_large, "body cannot be buffered for parsing");
        case simdjson::EMPTY:
            return make_error(parse_errc::malformed_json, "body is empty");
        case simdjson::DEPTH_ERROR:
            return make_error(
                parse_errc::malformed_json,
                "JSON nested deeper than " + std::to_string(max_json_depth) + " levels");
        case simdjson::TRAILING_CONTENT:
            return make_error(parse_errc::malformed_json, "content after the JSON value");
        case simdjson::UNCLOSED_STRING:
            return make_error(parse_errc::malformed_json, "unterminated string");
        case simdjson::STRING_ERROR:
            return make_error(parse_errc::malformed_json, "invalid string escape");
        case simdjson::UNESCAPED_CHARS:
            return make_error(parse_errc::malformed_json, "unescaped control character in string");
        default:
            return make_error(parse_errc::malformed_json, "body is not valid JSON");
    }
}

// Validates a document that is not an object, so that broken JSON is reported as such
// rather than as not_an_object.
parse_error refuse_non_object(od::document& doc, od::json_type type) {
    simdjson::error_code err = simdjson::SUCCESS;
    if (type == od::json_type::array) {
        od::value root;
        err = doc.get_value().get(root);
        if (!err) err = skip_value(root, 1);
    } else if (type == od::json_type::string) {
        std::string_view s;
        err = doc.get_string().get(s);
    } else {
        std::string_view token;
        err = doc.raw_json_token().get(token);
        token = trim_right(token);
        if (!err && !is_json_number(token) && token != "true" && token != "false" &&
            token != "null") {
            err = simdjson::TAPE_ERROR;
        }
    }
    if (err) return syntax_error(err);
    // A root scalar is read in place: only a root array moves the iterator to the end.
    if (type == od::json_type::array && !at_end(doc))
        return syntax_error(simdjson::TRAILING_CONTENT);
    return make_error(parse_errc::not_an_object, "body must be a JSON object");
}

// What one pass over the root object collected: views into the parser's string buffer
// (valid until its next iterate) and the first error of meaning, in document order.
struct collected {
    std::array<std::string_view, field_count> values{};
    std::bitset<field_count> present;  // a string value was kept
    std::bitset<field_count> seen;     // the key appeared (even with null)
    std::optional<midtrans::transaction_status> status;
    std::optional<midtrans::fraud_status> fraud;
    parse_error first;

    void fail(parse_error e) {
        if (!first) first = std::move(e);
    }

    // Judges one string value of a kept field.
    void take(field f, std::string_view s) {
        const auto i = static_cast<std::size_t>(f);
        if (i < required_fields && s.empty()) {
            return fail(field_error(parse_errc::invalid_value, f, " must not be empty"));
        }
        if (s.size() > max_field_bytes) {
            return fail(
                field_error(parse_errc::invalid_value, f,
                            " is longer than " + std::to_string(max_field_bytes) + " bytes"));
        }
        if (f == field::transaction_status) {
            status = midtrans::parse_transaction_status(s);
            if (!status) {
                return fail(field_error(parse_errc::invalid_value, f, " is not a known status"));
            }
        } else if (f == field::fraud_status) {
            fraud = midtrans::parse_fraud_status(s);
            if (!fraud) {
                return fail(field_error(parse_errc::invalid_value, f, " is not a known value"));
            }
        }
        values[i] = s;
        present.set(i);
    }
};

}  // namespace

notification_parser::notification_parser(std::size_t max_body_bytes)
    : parser_(max_body_bytes), max_body_bytes_(max_body_bytes) {}

// One pass in document order. Errors of syntax (bad JSON, bad UTF-8, too deep, trailing
// bytes) win over errors of meaning, which are remembered (the first one) while the rest
// of the body is still walked; only a fully valid body with all required fields fills `out`.
parse_error notification_parser::parse(simdjson::padded_string_view body, status_update& out) {
    if (body.length() > max_body_bytes_) {
        return make_error(parse_errc::body_too_large,
                          "body is larger than " + std::to_string(max_body_bytes_) + " bytes");
    }
    od::document doc;
    if (auto err = parser_.iterate(body).get(doc)) return syntax_error(err);
    od::json_type type{};
    if (auto err = doc.type().get(type)) return syntax_error(err);
    if (type != od::json_type::object) return refuse_non_object(doc, type);

    od::object obj;
    if (auto err = doc.get_object().get(obj)) return syntax_error(err);
    collected c;
    for (auto member : obj) {
        od::field f;
        if (auto err = std::move(member).get(f)) return syntax_error(err);
        std::string_view key;
        if (auto err = read_key(f, key)) return syntax_error(err);
        od::value& v = f.value();
        const auto kept = field_from_name(key);
        if (!kept) {
            // Midtrans adds fields at any time: whatever else is there is skipped.
            if (auto err = skip_value(v, 2)) return syntax_error(err);
            continue;
        }
        const auto i = static_cast<std::size_t>(*kept);
        const bool repeated = c.seen.test(i);
        c.seen.set(i);
        od::json_type vt{};
        if (auto err = v.type().get(vt)) return syntax_error(err);
        if (vt == od::json_type::string) {
            std::string_view s;
            if (auto err = v.get_string().get(s)) return syntax_error(err);
            if (repeated) {
                c.fail(field_error(parse_errc::duplicate_field, *kept, " appears more than once"));
            } else {
                c.take(*kept, s);
            }
            continue;
        }
        if (auto err = skip_value(v, 2)) return syntax_error(err);
        if (repeated) {
            c.fail(field_error(parse_errc::duplicate_field, *kept, " appears more than once"));
        } else if (vt != od::json_type::null || i < required_fields) {
            // null stands for "absent" only where the field is optional.
            c.fail(field_error(parse_errc::wrong_type, *kept, " must be a string"));
        }
    }
    if (!at_end(doc)) return syntax_error(simdjson::TRAILING_CONTENT);
    if (c.first) return std::move(c.first);
    for (std::size_t i = 0; i < required_fields; ++i) {
        if (!c.present.test(i)) {
            return field_error(parse_errc::missing_field, static_cast<field>(i), " is required");
        }
    }

    std::size_t bytes = 0;
    for (const auto s : c.values)
        bytes += s.size();
    out = status_update{};
    out.reserve(bytes);
    for (std::size_t i = 0; i < field_count; ++i) {
        if (c.present.test(i)) out.set(static_cast<field>(i), c.values[i]);
    }
    out.status = *c.status;
    out.fraud = c.fraud;
    out.source = update_source::notification;
    return {};
}

}  // namespace posrelay::ingest
