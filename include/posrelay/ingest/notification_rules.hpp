// Which signed fields posrelay believes (issue 13). Midtrans signs only order_id +
// status_code + gross_amount + server key, as a plain concatenation: the fields must be
// exactly what Midtrans sends (else "INV-X"+"201"+... re-splits as "INV-X20"+"1"+...), and
// the unsigned transaction_status / fraud_status are believed only when they agree with the
// signed status_code. Pure functions, no I/O; the table is in proto-docs/redis-keys.md.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "posrelay/ingest/status_update.hpp"
#include "posrelay/midtrans/transaction_status.hpp"

namespace posrelay::ingest {

// Exactly three ASCII digits ("200").
[[nodiscard]] bool valid_status_code(std::string_view s) noexcept;

// A positive amount as Midtrans writes it in a notification: 1-15 digits without a leading
// zero, a point, exactly two digits ("25000.00"). No sign, exponent, space or separator.
[[nodiscard]] bool valid_gross_amount(std::string_view s) noexcept;

// An amount in whole cents, for comparing amounts written differently: "500000" (a
// registered or charged amount) and "500000.00" (a notification) are both 50'000'000.
// nullopt when `s` is neither form (or has more than 15 integer digits).
[[nodiscard]] std::optional<std::int64_t> amount_cents(std::string_view s) noexcept;

// The status_code values Midtrans sends with a transaction_status (and fraud_status):
//   pending 201; settlement 200 (fraud accept or absent; none with challenge or deny);
//   authorize and capture: 200 (accept or absent), 201 (challenge), 202 (deny);
//   deny 202; cancel 200 (the cancel API's answer) or 202 (notifications); expire 407 (the
//   expire API, notifications) or 202 (seen on notifications); failure 202;
//   refund, partial_refund, chargeback, partial_chargeback 200.
// Empty when no code is consistent.
[[nodiscard]] std::span<const std::string_view> expected_status_codes(
    midtrans::transaction_status s, std::optional<midtrans::fraud_status> f) noexcept;
[[nodiscard]] bool status_code_consistent(midtrans::transaction_status s,
                                          std::optional<midtrans::fraud_status> f,
                                          std::string_view status_code) noexcept;

enum class rule_errc : std::uint8_t {
    ok,
    invalid_value,        // order_id, status_code or gross_amount not as Midtrans sends it
    inconsistent_status,  // status_code disagrees with transaction_status / fraud_status
};
// Stable names: the `error` of the answer and the `reason` of the metric and log.
[[nodiscard]] std::string_view to_string(rule_errc e) noexcept;

struct rule_error {
    rule_errc code = rule_errc::ok;
    field where = field::order_id;  // the offending field (for a mismatch: status_code)
    std::string message;            // safe to return and log
    [[nodiscard]] explicit operator bool() const noexcept { return code != rule_errc::ok; }
};

// Checks an update from a notification or a GET status answer: order_id within Midtrans's
// limits, status_code three digits, gross_amount as above, and status_code consistent with
// the status. The first failure, in that order.
[[nodiscard]] rule_error check_update(const status_update& u);

// What an order is bound to (issue 13): the merchant whose key charged it or verified its
// first notification ("default" or "m:" + merchant_id), its amount (as registered, charged or
// first notified) and its Midtrans transaction. Each "" when not known (yet).
struct order_binding {
    std::string_view signer;
    std::string_view gross_amount;
    std::string_view transaction_id;
};

enum class binding_mismatch : std::uint8_t {
    none,
    merchant,     // verified with another merchant's key than the order's (answered 401)
    amount,       // another amount, compared in cents (409)
    transaction,  // another transaction_id: the order_id reused at Midtrans (409)
};
// "none", "merchant_mismatch", "amount_mismatch", "transaction_mismatch": the reason of the
// answer, metric and log; binding_mismatch_from is its inverse (none for anything else).
[[nodiscard]] std::string_view to_string(binding_mismatch m) noexcept;
[[nodiscard]] binding_mismatch binding_mismatch_from(std::string_view s) noexcept;

// Whether `update` may apply to an order bound as `stored`: a field empty on either side is
// not checked; otherwise merchant, then amount (amount_cents; text that is not an amount
// compares as text), then transaction must agree. The Redis commit script implements the
// same rule (check_binding in src/store/order_script.lua).
[[nodiscard]] binding_mismatch check_binding(const order_binding& stored,
                                             const order_binding& update) noexcept;

}  // namespace posrelay::ingest
