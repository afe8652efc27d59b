// The simulated Midtrans ledger, with no I/O: charge validation, transactions and their
// status transitions, and the JSON bodies Midtrans answers and notifies with. Every random
// choice comes from one seeded generator, so a run with the same --seed and the same calls
// gives the same ids.
#pragma once

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "posrelay/midtrans/transaction_status.hpp"

namespace posrelay::sim {

using sys_time = std::chrono::system_clock::time_point;

// Deterministic randomness (mt19937_64 and our own mappings, no std distributions).
class random_source {
public:
    explicit random_source(std::uint64_t seed) : gen_(seed) {}
    [[nodiscard]] double uniform01() { return static_cast<double>(gen_() >> 11) * 0x1.0p-53; }
    [[nodiscard]] bool chance(double p) { return p > 0 && uniform01() < p; }
    [[nodiscard]] std::int64_t below(std::int64_t n) {  // [0, n), n > 0
        return static_cast<std::int64_t>(gen_() % static_cast<std::uint64_t>(n));
    }
    [[nodiscard]] std::string uuid();  // 8-4-4-4-12 lowercase hex, version 4 layout
    [[nodiscard]] std::string digits(std::size_t n);

private:
    std::mt19937_64 gen_;
};

// The sim uses pending, settlement, deny, cancel and expire of posrelay's status model.
using tx_status = midtrans::transaction_status;
using midtrans::to_string;
// status_code of a status or notification body describing a transaction in `s`.
[[nodiscard]] std::string_view status_code_of(tx_status s) noexcept;

// "YYYY-MM-DD HH:MM:SS" in Asia/Jakarta time (fixed UTC+7), as Midtrans writes times.
[[nodiscard]] std::string jakarta_time(sys_time t);

// One notification attempt, as GET /sim/orders/{id} shows it.
struct attempt_record {
    std::string event;  // transaction_status notified
    std::string url;
    int attempt = 1;      // 1 = first try
    std::string at;       // jakarta_time
    int http_status = 0;  // 0: no answer
    std::string error;    // "timeout", "connect: ..." when no answer
    std::int64_t duration_ms = 0;
};

struct transaction {
    std::string transaction_id;
    std::string order_id;
    std::string payment_type;  // gopay | qris
    std::int64_t amount = 0;
    std::string gross_amount;  // "N.00", exactly as answered and signed
    std::string merchant_id;
    std::string transaction_time;
    std::string expiry_time;
    std::string settlement_time;  // when settled
    sys_time expires_at;
    tx_status status = tx_status::pending;
    std::string fraud_status = "accept";
    std::string qr_string;
    std::string tref;  // GoPay deeplink reference
    std::vector<std::string> notify_urls;
    std::deque<attempt_record> attempts;  // the latest max_attempt_records
    std::uint64_t attempts_total = 0;
    static constexpr std::size_t max_attempt_records = 64;
};

// A Midtrans error answer: HTTP status == body status_code.
struct api_error {
    unsigned status = 400;
    std::string message;
    std::vector<std::string> validation_messages;
};
[[nodiscard]] std::string error_body(const api_error& e, std::string_view id);

// A charge request that passed validation.
struct charge_request {
    std::string payment_type;
    std::string order_id;
    std::int64_t amount = 0;
    sys_time order_time;
    std::chrono::seconds expiry{15 * 60};
    std::vector<std::string> notify_urls;  // from X-Override-Notification; empty = default
};

// Validates a /v2/charge body and its X-Override-Notification header (up to 3 http URLs).
[[nodiscard]] std::variant<charge_request, api_error> parse_charge(std::string_view body,
                                                                   std::string_view override_urls,
                                                                   sys_time now);

// True for 1..50 characters of [A-Za-z0-9-_.~] (Midtrans's order_id alphabet).
[[nodiscard]] bool valid_order_id(std::string_view id) noexcept;

// A QRIS-like EMV merchant-presented payload (TLV fields, CRC-16/CCITT trailer), unique per
// transaction.
[[nodiscard]] std::string emv_qr_string(const transaction& t);

// Bodies. The status view is also the notification body (with another status_message).
[[nodiscard]] boost::json::object charge_answer(const transaction& t, std::string_view public_url);
[[nodiscard]] boost::json::object transaction_view(const transaction& t,
                                                   std::string_view status_message,
                                                   std::string_view server_key);
// The answer of a successful cancel (status_code "200") or expire ("407").
[[nodiscard]] boost::json::object change_answer(const transaction& t, std::string_view status_code,
                                                std::string_view status_message);

// Transactions by id. An order_id maps to its newest transaction; old ones stay findable
// by transaction_id. Only the io thread touches it.
class ledger {
public:
    ledger(std::string merchant_id, std::size_t max_orders, random_source& rng)
        : merchant_id_(std::move(merchant_id)), max_orders_(max_orders), rng_(rng) {}

    // nullptr when neither a transaction_id nor an order_id.
    [[nodiscard]] transaction* find(std::string_view id);
    // Creates the transaction for `c` (pending), or the error Midtrans would answer
    // (406 when the order_id is pending or settled, 500 past --max-orders).
    [[nodiscard]] std::variant<transaction*, api_error> create(const charge_request& c,
                                                               sys_time now);
    // Moves a pending transaction to `to` (settlement sets settlement_time). False when it
    // is not pending.
    bool transition(transaction& t, tx_status to, sys_time now);

    [[nodiscard]] std::size_t count(tx_status s) const noexcept {
        return counts_[static_cast<std::size_t>(s)];
    }
    [[nodiscard]] std::size_t size() const noexcept { return by_tid_.size(); }

private:
    std::string merchant_id_;
    std::size_t max_orders_;
    random_source& rng_;
    std::unordered_map<std::string, std::unique_ptr<transaction>> by_tid_;
    std::unordered_map<std::string, transaction*> by_order_;
    std::size_t counts_[static_cast<std::size_t>(tx_status::partial_chargeback) + 1] = {};
};

}  // namespace posrelay::sim
