// Midtrans Core API shapes posrelay uses: what a charge request carries, how an answer is
// read and classified (ok, refused, retriable), and the field rules Midtrans applies.
// Pure code, no I/O: the HTTP client is midtrans/client.hpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "posrelay/ingest/status_update.hpp"

namespace posrelay::midtrans {

// Midtrans order_id rules: 1-50 of A-Z a-z 0-9 - _ ~ .
[[nodiscard]] bool valid_order_id(std::string_view id) noexcept;
// A positive whole number of rupiah: "10000" or "10000.00" (normalised to "10000");
// nullopt otherwise.
[[nodiscard]] std::optional<std::string> normalise_gross_amount(std::string_view s);
// "2026-11-24 10:15:00" in Midtrans's time zone (Asia/Jakarta, UTC+7) → Unix ms.
[[nodiscard]] std::optional<std::int64_t> parse_midtrans_time(std::string_view s) noexcept;
// Unix ms → "2026-11-24 10:15:00" (Asia/Jakarta).
[[nodiscard]] std::string format_midtrans_time(std::int64_t unix_ms);

// "Basic " + base64(server_key + ":"), the Authorization header of every API call.
[[nodiscard]] std::string basic_authorization(std::string_view server_key);

enum class payment_type : std::uint8_t { qris, gopay };
[[nodiscard]] std::string_view to_string(payment_type p) noexcept;
[[nodiscard]] std::optional<payment_type> payment_type_from(std::string_view s) noexcept;

// What a terminal asks to charge. gross_amount in whole rupiah.
struct charge_request {
    std::string order_id;
    std::uint64_t gross_amount = 0;
    payment_type type = payment_type::qris;
    std::optional<std::chrono::seconds> expiry;  // custom_expiry; Midtrans's default is 15 min
    std::string items_json;                      // a JSON array of item_details, or ""
};
// Largest accepted amount (Midtrans's own limits are lower per payment type).
inline constexpr std::uint64_t max_gross_amount = 999'999'999'999ULL;
inline constexpr std::chrono::seconds min_expiry{60};
inline constexpr std::chrono::seconds max_expiry{7 * 24 * 3600};

// The JSON body of POST /v2/charge.
[[nodiscard]] std::string charge_body(const charge_request& r);

// How an answer is to be treated.
enum class answer_class : std::uint8_t {
    ok,         // the call did what was asked
    refused,    // a final error (4xx): do not repeat the same call
    retriable,  // 5xx, 429, GoPay 900: the same call may succeed later
};

// The fields of a Core API answer posrelay reads. Unknown fields are ignored.
struct api_answer {
    unsigned http_status = 0;
    std::string status_code;  // the body's; "" when the body had none
    std::string status_message;
    std::string transaction_id;
    std::string order_id;
    std::string gross_amount;
    std::string transaction_status;
    std::string fraud_status;
    std::string payment_type;
    std::string transaction_time;
    std::string expiry_time;
    std::string channel_response_code;
    std::string qr_string;
    std::string qr_code_url;  // actions[name=generate-qr-code].url
    std::string deeplink;     // actions[name=deeplink-redirect].url
    answer_class verdict = answer_class::refused;
    bool json = false;  // the body was a JSON object
};

// Reads and classifies an answer. HTTP status and body status_code are both checked: a body
// status_code >= 400 is an error except 407 (expired, the success of /expire); a 2xx with a
// non-JSON body is retriable (a proxy's page), a deny with channel_response_code 900 too.
[[nodiscard]] api_answer read_answer(unsigned http_status, std::string_view body);

// Retry-After: delta-seconds only (Midtrans sends no dates); nullopt when absent or invalid.
[[nodiscard]] std::optional<std::chrono::seconds> parse_retry_after(std::string_view v) noexcept;

// The status an answer describes (a charge, status, cancel or expire answer), as an update
// for the commit, like a notification's; nullopt when it names no known transaction_status
// or lacks order_id/gross_amount, and when its status_code is not three digits or disagrees
// with the status (ingest::status_code_consistent; logged as a security event: never
// applied). `status_override` replaces transaction_status (cancel and expire answers of older
// API versions omit it).
[[nodiscard]] std::optional<ingest::status_update> to_status_update(
    const api_answer& a, ingest::update_source source, std::int64_t now_ms,
    std::string_view status_override = {});

}  // namespace posrelay::midtrans
