// The Midtrans transaction status model: every transaction_status and fraud_status
// value, the transitions between them, and what "paid" means. Pure code, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace posrelay::midtrans {

// Every transaction_status value of ../shared/midtrans/FACTS.md.
enum class transaction_status : std::uint8_t {
    pending,
    authorize,
    capture,
    settlement,
    deny,
    cancel,
    expire,
    failure,
    refund,
    partial_refund,
    chargeback,
    partial_chargeback,
};

// Every fraud_status value Midtrans documents; absent is modelled as std::nullopt.
enum class fraud_status : std::uint8_t { accept, deny, challenge };

// All values, in declaration order, for exhaustive tests and tables.
[[nodiscard]] std::span<const transaction_status> all_transaction_statuses() noexcept;
[[nodiscard]] std::span<const fraud_status> all_fraud_statuses() noexcept;

// Wire names ("pending", "partial_chargeback", ...), exactly as Midtrans sends them.
[[nodiscard]] std::string_view to_string(transaction_status s) noexcept;
[[nodiscard]] std::string_view to_string(fraud_status f) noexcept;
// Parses a wire name; nullopt for anything Midtrans does not document (case-sensitive).
[[nodiscard]] std::optional<transaction_status> parse_transaction_status(
    std::string_view s) noexcept;
[[nodiscard]] std::optional<fraud_status> parse_fraud_status(std::string_view s) noexcept;

// True for statuses no notification can move away from (deny, cancel, expire,
// failure, refund, chargeback). settlement is not final: refunds and chargebacks follow it.
[[nodiscard]] bool is_final(transaction_status s) noexcept;

// True when a POS may hand over the goods: settlement with fraud accept or absent,
// or capture with fraud accept. Nothing else, ever.
[[nodiscard]] bool is_paid(transaction_status s, std::optional<fraud_status> f) noexcept;

// One observed state of an order.
struct order_state {
    transaction_status status;
    std::optional<fraud_status> fraud;
    friend bool operator==(const order_state&, const order_state&) = default;
};

// How an incoming update relates to what is stored.
enum class transition : std::uint8_t {
    forward,    // a legal move (or the first state seen): store it and fan it out
    duplicate,  // the stored state again: acknowledge, do nothing
    stale,      // out of order or illegal (a late pending after settlement): acknowledge, ignore
};
[[nodiscard]] std::string_view to_string(transition t) noexcept;

// Classifies `update` against `stored` (nullopt: nothing stored for the order yet).
// Rules (FACTS.md "transaction_status and its transitions"):
//   - nothing stored: forward, whatever the status (a settlement may arrive before its pending);
//   - same transaction_status: duplicate, except a fraud challenge resolved to accept/deny,
//     which is forward;
//   - a move listed in the transition table: forward;
//   - anything else (backwards, out of a final state, or not in the table): stale.
// Table: pending → authorize, capture, settlement, deny, cancel, expire, failure;
// authorize → capture, deny, cancel, expire, failure; capture → settlement, cancel, deny,
// refund, partial_refund, chargeback, partial_chargeback; settlement → refund, partial_refund,
// chargeback, partial_chargeback, deny; partial_refund → refund, chargeback, partial_chargeback;
// partial_chargeback → chargeback, refund. The Redis commit script implements the same
// table; a test checks that both agree on every pair.
[[nodiscard]] transition classify(std::optional<order_state> stored, order_state update) noexcept;

}  // namespace posrelay::midtrans
