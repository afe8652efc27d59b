// Paid is confirmed with Midtrans: which notifications are held back until GET status agrees,
// and what Midtrans's answer means. The signature of a notification covers only order_id,
// status_code and gross_amount, so a status that changes whether an order is paid is believed
// only once Midtrans's status API (reached over the authenticated HTTPS client) says the same.
// Pure code, no I/O: the poll scheduler performs the calls, the order script the commits.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "posrelay/midtrans/api.hpp"
#include "posrelay/midtrans/transaction_status.hpp"

namespace posrelay::midtrans {

// True when a notification of `update` for an order in `stored` (nullopt: no status yet) must
// be confirmed before it is applied: it would change whether the order is paid (not paid →
// paid, or paid → refund, chargeback, deny, cancel, expire...). A pending, authorize or capture
// without fraud accept never is: it cannot make an order paid, and after a paid status it is
// ordinary reordering (stale). Polled and API answers are never confirmed: they come from
// Midtrans over the authenticated client. The order script applies the same rule (a test
// checks they agree on every pair).
[[nodiscard]] bool needs_confirmation(std::optional<order_state> stored,
                                      order_state update) noexcept;

// True when such an update is also a conflict: it changes whether the order is paid and is not
// a move of the transition table (settlement after cancel, deny or expire; cancel after
// settlement; ...). Conflicts are confirmed like any claim and always reported.
[[nodiscard]] bool is_conflict(std::optional<order_state> stored, order_state update) noexcept;

// A claim as the order record keeps it while it is confirmed (field `claim`):
// "status|fraud|status_code|at_ms|conflict|merchant_id" (conflict "1" or "0"; fraud and
// merchant_id "" when absent). The merchant picks the key of the GET status call.
struct claim {
    order_state state;
    std::string status_code;
    std::int64_t at_ms = 0;  // when the notification was committed (Unix ms)
    bool conflict = false;
    std::string merchant_id;
};
[[nodiscard]] std::optional<claim> parse_claim(std::string_view text);

enum class confirmation_verdict : std::uint8_t {
    confirmed,  // Midtrans agrees on whether the order is paid: apply Midtrans's status
    denied,     // Midtrans disagrees (or does not know the order): the claim is never emitted
    retry,      // no usable answer (transport error, 429, 5xx, a refusal): ask again later
};
[[nodiscard]] std::string_view to_string(confirmation_verdict v) noexcept;

struct confirmation_decision {
    confirmation_verdict verdict = confirmation_verdict::retry;
    // Midtrans's own status, to commit as a poll answer; nullopt when it named none (404).
    std::optional<order_state> midtrans;
};

// What GET status's answer (`answer`, nullopt when none came) means for `claimed`:
//   no answer, 429, 5xx and other refusals (401: a wrong key) → retry;
//   404 "Transaction doesn't exist" → denied, nothing to commit;
//   a status → confirmed when it is paid exactly when the claim is, else denied; either way
//   Midtrans's status is committed (it is the final word);
//   an answer naming no known status → retry.
[[nodiscard]] confirmation_decision judge_confirmation(order_state claimed,
                                                       const std::optional<api_answer>& answer);

// Delay before asking again after `attempts` answers that were no answer: 1 s doubling,
// capped at `cap`.
[[nodiscard]] std::chrono::milliseconds confirmation_retry_delay(
    std::uint64_t attempts, std::chrono::milliseconds cap) noexcept;

}  // namespace posrelay::midtrans
