// The order store: every read and write of an order record (proto-docs/redis-keys.md). The
// Redis store implements it (one order script call per write); tests/support has an in-memory
// fake. Errors are error_codes (store down, timeout, unexpected reply), never exceptions.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "posrelay/ingest/commit_sink.hpp"
#include "posrelay/ingest/status_update.hpp"

namespace posrelay::store {

// Midtrans's answer to an order's claim, for order_store::resolve_claim.
struct claim_resolution {
    std::string order_id;
    std::string claim;  // the order's `claim` field as read before asking Midtrans
    bool denied = false;
    // Midtrans's status as an update (source poll); nullopt when it named none (404).
    std::optional<ingest::status_update> midtrans;
};
struct resolve_result {
    boost::system::error_code ec;
    std::string outcome;          // new (Midtrans's status applied) | unchanged | superseded
    std::string event_id;         // the event sent for it, "" when none
    bool conflict = false;        // the claim or the answer was a status conflict (reported)
    std::string previous_status;  // the order's status before ("" when none)
};

// An order created outside posrelay (or charged through a terminal), to route its updates.
struct order_registration {
    std::string order_id;
    std::string gross_amount;
    std::string terminal_id;
    std::string store_id;
    std::int64_t expiry_ms = 0;  // Unix ms; 0 when unknown
    // Whose server key charges it ("default", or "m:" + merchant_id): the order is bound to
    // that merchant (reserve only; "" = none, the first notification binds it).
    std::string signer = {};
};

enum class register_outcome : std::uint8_t { created, exists, conflict };

struct register_result {
    boost::system::error_code ec;
    register_outcome outcome = register_outcome::created;
    std::string detail;  // event id for created (when a status was already known); existing route
                         // for conflict
};

enum class reserve_outcome : std::uint8_t { created, taken };
struct reserve_result {
    boost::system::error_code ec;
    reserve_outcome outcome = reserve_outcome::created;
    std::string current;  // taken: the order's status, or its state when it has none
};

using order_fields = std::map<std::string, std::string, std::less<>>;
// A field of an order record, "" when absent; as a whole number, 0 when absent or not one.
[[nodiscard]] std::string field_of(const order_fields& f, std::string_view name);
[[nodiscard]] std::int64_t int_field(const order_fields& f, std::string_view name);
// A whole number stored as decimal text (a field, a sorted-set score); 0 when not one.
[[nodiscard]] std::int64_t to_int64(std::string_view s) noexcept;
// The wall clock in Unix ms (the times stored on orders).
[[nodiscard]] std::int64_t unix_ms_now() noexcept;

// An order record as stored: its fields in the store's order (history entries 'h:N', dedup
// marks 'seen:...' and the script's bookkeeping included), for GET /v1/orders/{id}.
using order_record = std::vector<std::pair<std::string, std::string>>;

// A history entry `h:N` of an order record, as the order script writes it:
// "at_ms|source|transaction_status|fraud_status|status_code" (views into the entry).
struct history_entry {
    std::string_view at_ms, source, status, fraud, status_code;
};
[[nodiscard]] history_entry parse_history_entry(std::string_view entry);

class order_store : public ingest::commit_sink {
public:
    // commit() and ready() come from ingest::commit_sink.

    // Routes an order to a terminal and store; enrols it for polling when pending.
    [[nodiscard]] virtual boost::asio::awaitable<register_result> register_order(
        order_registration r) = 0;
    // Commits Midtrans's answer to an order's claim; clears the claim and takes the order out
    // of the confirmation set, unless a newer claim came.
    [[nodiscard]] virtual boost::asio::awaitable<resolve_result> resolve_claim(
        claim_resolution r) = 0;
    // Claims order_id for a charge by a terminal (state 'charging'); `taken` when the order
    // is already known (proto-docs/redis-keys.md).
    [[nodiscard]] virtual boost::asio::awaitable<reserve_result> reserve_charge(
        order_registration r) = 0;
    // Removes a reservation whose charge Midtrans did not create (still 'charging', no
    // status, same terminal); otherwise leaves the order alone.
    [[nodiscard]] virtual boost::asio::awaitable<boost::system::error_code> release_charge(
        std::string order_id, std::string terminal_id) = 0;
    // The poll scheduler gave up on the order: marks it unknown, takes it off the schedule
    // and sends its terminals an event with status_unknown.
    [[nodiscard]] virtual boost::asio::awaitable<boost::system::error_code> alert_unknown(
        std::string order_id) = 0;
    // Sets fields of an existing order record.
    [[nodiscard]] virtual boost::asio::awaitable<boost::system::error_code> set_order_fields(
        std::string order_id, order_fields fields) = 0;
    // Adds 1 to a counter field of the order record (poll_attempts, confirm_attempts).
    [[nodiscard]] virtual boost::asio::awaitable<boost::system::error_code> count_attempt(
        std::string order_id, std::string field) = 0;
    // The order record's fields, plus the ones derived from its status and newest history
    // entry (paid "1"/"0", source, updated_ms, status_code); nullopt (and no ec) when unknown.
    [[nodiscard]] virtual boost::asio::awaitable<
        std::pair<boost::system::error_code, std::optional<order_fields>>>
    read_order(std::string order_id) = 0;
    // The order record as stored (nothing derived); nullopt (and no ec) when unknown.
    [[nodiscard]] virtual boost::asio::awaitable<
        std::pair<boost::system::error_code, std::optional<order_record>>>
    read_order_record(std::string order_id) = 0;
};

}  // namespace posrelay::store
