// The Redis store: posrelay's durable commit. Every status update and every order
// registration is one call of the order script (src/store/order_script.lua), run by
// EVALSHA on the calling io thread's own pipelined connection. Key schema:
// proto-docs/redis-keys.md.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "posrelay/ingest/commit_sink.hpp"
#include "posrelay/io_pool.hpp"
#include "posrelay/metrics/registry.hpp"
#include "posrelay/store/lua_script.hpp"
#include "posrelay/store/redis_connection.hpp"
#include "posrelay/store/replica_ack.hpp"

namespace posrelay::store {

struct store_options {
    std::string prefix = "posrelay:";  // every key starts with it
    // An order's dedup marks live on its record: the record's key is kept for the longer
    // of the two after its last change.
    std::chrono::seconds dedup_ttl{7 * 24 * 3600};   // Midtrans retries for ~6 h
    std::chrono::seconds order_ttl{30 * 24 * 3600};  // order record and history
    std::chrono::seconds stream_ttl{7 * 24 * 3600};  // a terminal's event stream, idle
    std::size_t history_max = 32;                    // status changes kept per order
    std::size_t stream_maxlen = 10'000;              // events kept per terminal (~)
    // Pending orders are enrolled in the poll schedule, first due this long after they are
    // charged or registered; 0: not enrolled (no node polls).
    std::chrono::milliseconds poll_first_delay{0};
    // Paid is confirmed with Midtrans (--confirm-paid): a notification that would change
    // whether an order is paid becomes a claim, leased to `node` for this long while it
    // confirms it (include/posrelay/midtrans/confirmation.hpp); 0: applied at once.
    std::chrono::milliseconds confirm_lease{0};
    std::string node;
    // --redis-min-replicas-ack: a commit, registration or reservation answered as done waits
    // for this many replicas (WAIT); fewer within the timeout: replicas_not_acknowledged.
    replica_ack_options replica_ack;
};

// Midtrans's answer to an order's claim, for redis_store::resolve_claim.
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
// Where a terminal's stream stands: its counter (the newest seq) and the epoch it counts in
// (proto-docs/redis-keys.md). `rotated`: this call started the epoch.
struct terminal_position {
    std::uint64_t seq = 0;
    std::string epoch;
    bool rotated = false;
};

using order_fields = std::map<std::string, std::string, std::less<>>;
// A field of an order record, "" when absent; as a whole number, 0 when absent or not one.
[[nodiscard]] std::string field_of(const order_fields& f, std::string_view name);
[[nodiscard]] std::int64_t int_field(const order_fields& f, std::string_view name);
// A whole number stored as decimal text (a field, a sorted-set score); 0 when not one.
[[nodiscard]] std::int64_t to_int64(std::string_view s) noexcept;
// The wall clock in Unix ms (the times stored on orders).
[[nodiscard]] std::int64_t unix_ms_now() noexcept;

class redis_store final : public ingest::commit_sink {
public:
    // One connection per io thread of `pool`, created by start().
    redis_store(io_pool& pool, redis_options ropts, store_options sopts, metrics::registry& reg);
    ~redis_store() override;

    void start();
    void stop();
    // Another script (the poll script) to SCRIPT LOAD on every connect, as the order script
    // is, so that its first EVALSHA finds it. Before start() (std::logic_error after).
    void add_script(std::shared_ptr<const lua_script> s);

    // Runs the order script's commit on the calling io thread's connection. Completes when
    // Redis has answered (the update is then in Redis) and, with options().replica_ack, its
    // replicas have it; or with ec: not connected, timeout, connection lost, an unexpected
    // reply, or replicas_not_acknowledged (the outcome is then filled in: the update is on the
    // primary only). register_order and reserve_charge likewise. Must be called on an io
    // thread of `pool`.
    [[nodiscard]] boost::asio::awaitable<ingest::commit_result> commit(
        ingest::status_update u) override;
    // True while every io thread's connection is up.
    [[nodiscard]] bool ready() const noexcept override;

    [[nodiscard]] boost::asio::awaitable<register_result> register_order(order_registration r);

    // Commits Midtrans's answer to an order's claim (the order script's 'confirm'); clears the
    // claim and takes the order out of the confirmation set, unless a newer claim came.
    [[nodiscard]] boost::asio::awaitable<resolve_result> resolve_claim(claim_resolution r);

    // Claims order_id for a charge by a terminal (state 'charging'); `taken` when the order
    // is already known (proto-docs/redis-keys.md).
    [[nodiscard]] boost::asio::awaitable<reserve_result> reserve_charge(order_registration r);
    // Removes a reservation whose charge Midtrans did not create (still 'charging', no
    // status, same terminal); otherwise leaves the order alone.
    [[nodiscard]] boost::asio::awaitable<boost::system::error_code> release_charge(
        std::string order_id, std::string terminal_id);
    // The poll scheduler gave up on the order: marks it unknown, takes it off the schedule
    // and sends its terminals an event with status_unknown (proto-docs/redis-keys.md).
    [[nodiscard]] boost::asio::awaitable<boost::system::error_code> alert_unknown(
        std::string order_id);
    // Sets fields of an existing order record (one HSET).
    [[nodiscard]] boost::asio::awaitable<boost::system::error_code> set_order_fields(
        std::string order_id, order_fields fields);
    // The order record's fields, plus the ones derived from its status and newest history
    // entry (paid "1"/"0", source, updated_ms, status_code); nullopt (and no ec) when unknown.
    [[nodiscard]] boost::asio::awaitable<
        std::pair<boost::system::error_code, std::optional<order_fields>>>
    read_order(std::string order_id);

    // The stored order as a JSON object with its history; nullopt (and no ec) when unknown.
    [[nodiscard]] boost::asio::awaitable<
        std::pair<boost::system::error_code, std::optional<std::string>>>
    order_json(std::string order_id);

    // The calling io thread's connection (for other Redis users on the same thread).
    [[nodiscard]] redis_connection& local();

    [[nodiscard]] const store_options& options() const noexcept { return sopts_; }
    [[nodiscard]] const redis_options& connection_options() const noexcept { return ropts_; }
    // The metrics every Redis connection of the process reports into (for extra connections).
    [[nodiscard]] redis_metrics& connection_metrics() noexcept { return redis_metrics_; }

    // Key names (also used by tests and documented in proto-docs/redis-keys.md).
    [[nodiscard]] std::string order_key(std::string_view order_id) const;

    // A terminal's hello: its position (a counter made, in a new epoch, when it has none; a
    // counter lost beside its stream starts a new epoch carrying the stream over), and its
    // store subscription renewed (`subscribe`) or ended. One atomic script call.
    [[nodiscard]] boost::asio::awaitable<std::pair<boost::system::error_code, terminal_position>>
    open_terminal(std::string store, std::string terminal, bool subscribe);
    // Starts a new epoch of the terminal's stream unless its epoch is no longer `expected`
    // (then the current position, rotated false). The events made after `after_eid` ("": all)
    // are carried into the new epoch, renumbered from 1.
    [[nodiscard]] boost::asio::awaitable<std::pair<boost::system::error_code, terminal_position>>
    rotate_epoch(std::string store, std::string terminal, std::string expected,
                 std::string after_eid);

private:
    // The TTL of an order's key: it holds the record, its history and its dedup marks.
    [[nodiscard]] std::chrono::seconds key_ttl() const noexcept {
        return std::max(sopts_.order_ttl, sopts_.dedup_ttl);
    }
    // EVALSHA the order script on the order's key with ARGV = the header (the prefix,
    // `now_ms`), then `args` (the mode first); EVAL on NOSCRIPT (lua_script). The views need
    // only live until the returned awaitable is awaited.
    boost::asio::awaitable<std::pair<boost::system::error_code, redis_reply>> run_script(
        std::string_view order_id, std::string_view now_ms, redis_args args);
    boost::asio::awaitable<std::pair<boost::system::error_code, redis_reply>> run_script(
        std::string_view order_id, std::string_view now_ms, const std::vector<std::string>& args);
    // The same with `keys`.
    boost::asio::awaitable<std::pair<boost::system::error_code, redis_reply>> eval_script(
        std::span<const std::string_view> keys, std::string_view now_ms, redis_args args);

    // wait_replicas() for a write on the order's key when --redis-min-replicas-ack is set;
    // `wrote`: this call's script wrote (else the key is touched first).
    boost::asio::awaitable<boost::system::error_code> acknowledged(std::string_view order_id,
                                                                   bool wrote);

    // "now + poll_first_delay" in Unix ms, or "" when orders are not enrolled.
    [[nodiscard]] std::string first_poll_ms() const;

    io_pool& pool_;
    redis_options ropts_;
    store_options sopts_;
    redis_metrics redis_metrics_;
    lua_script order_script_;
    std::vector<std::shared_ptr<const lua_script>> scripts_;  // add_script(): loaded on connect too
    std::vector<std::shared_ptr<redis_connection>> connections_;
    metrics::counter* commits_[ingest::commit_outcome_count] = {};  // by commit_outcome
    metrics::counter& commit_errors_;
    metrics::counter& replicas_short_;  // wait_replicas() fell short
    metrics::histogram& commit_latency_;
};

}  // namespace posrelay::store
