// Parses a Midtrans HTTP notification body (JSON) into a status_update with simdjson
// On-Demand. One parser per thread, reused for every body; no I/O.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "posrelay/ingest/status_update.hpp"

namespace posrelay::ingest {

// Why a body was refused. The names (to_string) are stable: they are the `error` of the
// JSON answer, the `reason` label of posrelay_notifications_rejected_total and of the log.
enum class parse_errc : std::uint8_t {
    ok,
    body_too_large,   // larger than the parser's capacity
    invalid_utf8,     // the body is not UTF-8
    malformed_json,   // not JSON, truncated, trailing bytes, too deep
    not_an_object,    // valid JSON but not an object
    missing_field,    // a required field is absent
    wrong_type,       // a known field is not a string (or null where a string is required)
    invalid_value,    // a string field with a value posrelay cannot accept (unknown status, empty,
                      // too long)
    duplicate_field,  // a known field appears twice (refused: which one was signed?)
};
[[nodiscard]] std::string_view to_string(parse_errc e) noexcept;

struct parse_error {
    parse_errc code = parse_errc::ok;
    std::optional<field> where;  // the offending field, when there is one
    std::string message;         // human-readable, safe to return and log (no secrets)
    [[nodiscard]] explicit operator bool() const noexcept { return code != parse_errc::ok; }
};

// Limits on single values, beyond the body size limit.
inline constexpr std::size_t max_field_bytes = 1024;
inline constexpr std::size_t max_json_depth = 32;

class notification_parser {
public:
    // `max_body_bytes`: the largest body accepted (bigger → body_too_large).
    explicit notification_parser(std::size_t max_body_bytes);

    // Parses `body` into `out` (source = notification; received_unix_ms left to the caller).
    // `body` must be readable for body.size() + simdjson::SIMDJSON_PADDING bytes
    // (a simdjson::padded_string_view guarantees it). Views into `body` are not kept:
    // `out` owns copies of every field, so `body` may be reused as soon as parse returns.
    // Required: order_id, status_code, gross_amount, signature_key, transaction_status,
    // all strings; fraud_status, when present and not null, must be a documented value.
    // Other kept fields are optional strings (null is treated as absent); unknown keys
    // are skipped whatever their type. Never throws.
    [[nodiscard]] parse_error parse(simdjson::padded_string_view body, status_update& out);

private:
    simdjson::ondemand::parser parser_;
    std::size_t max_body_bytes_;
};

}  // namespace posrelay::ingest
