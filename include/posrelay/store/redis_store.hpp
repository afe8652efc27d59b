// The Redis store: posrelay's durable commit. Every status update and every order
// registration is one call of the order script (src/store/order_script.lua), run by
// EVALSHA on the calling io thread's own pipelined connection. Key schema:
// proto-docs/redis-keys.md.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
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
#include "posrelay/store/order_store.hpp"
#include "posrelay/store/redis_client.hpp"
#include "posrelay/store/redis_connection.hpp"
#include "posrelay/store/replica_ack.hpp"
#include "posrelay/store/route_cache.hpp"
#include "posrelay/store/terminal_activity.hpp"
#include "posrelay/store/terminal_revocations.hpp"
#include "posrelay/store/terminal_streams.hpp"

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
    // Order → store routes remembered by this node (route_cache); 0: none, every commit
    // reads its order's route.
    std::size_t route_cache_entries = 65'536;
    // Tests only: called on the io thread at the named steps of moving a record into its
    // store's slot ("route_missing", "unrouted_written", "adopt_read"), so that a test can
    // force each interleaving of two nodes. Empty in production.
    std::function<void(std::string_view step)> step_hook;
    // --redis-min-replicas-ack: a commit, registration or reservation answered as done waits
    // for this many replicas (WAIT); fewer within the timeout: replicas_not_acknowledged.
    replica_ack_options replica_ack;
};

class redis_poll_schedule;

// Checks the server's version (INFO server) on a new connection: throws std::runtime_error
// naming it when it is below 7.0 (posrelay sends events by sharded pub/sub, SPUBLISH and
// SSUBSCRIBE, new in Redis 7.0). Used as (part of) a connection's on_connect.
[[nodiscard]] boost::asio::awaitable<void> require_redis_7(redis_connection& c);

// The order store, the terminal streams, the terminal activity and the terminal revocations
// on Redis.
class redis_store final : public order_store,
                          public terminal_streams,
                          public terminal_activity,
                          public terminal_revocations {
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
    // True while every io thread's connection is up. On a cluster: every slot's primary; or
    // some slots' (degraded) once all were covered, or 2 × the connect timeout after start().
    [[nodiscard]] bool ready() const noexcept override;
    // On a cluster (redis-cluster://): the fewest slots any io thread has a connected primary
    // for (16384: all); nullopt on one server. Every slot covered is remembered (ready()).
    [[nodiscard]] std::optional<std::size_t> cluster_slots_covered() const;
    // On a cluster: its slot map (node_for_key(), version() bumped on every change; see
    // redis_client.hpp); nullptr on one server.
    [[nodiscard]] std::shared_ptr<cluster_topology> cluster() const noexcept { return topology_; }

    // order_store (include/posrelay/store/order_store.hpp).
    [[nodiscard]] boost::asio::awaitable<register_result> register_order(
        order_registration r) override;
    [[nodiscard]] boost::asio::awaitable<resolve_result> resolve_claim(claim_resolution r) override;
    [[nodiscard]] boost::asio::awaitable<reserve_result> reserve_charge(
        order_registration r) override;
    [[nodiscard]] boost::asio::awaitable<boost::system::error_code> release_charge(
        std::string order_id, std::string terminal_id) override;
    [[nodiscard]] boost::asio::awaitable<boost::system::error_code> alert_unknown(
        std::string order_id) override;
    [[nodiscard]] boost::asio::awaitable<boost::system::error_code> set_order_fields(
        std::string order_id, order_fields fields) override;
    [[nodiscard]] boost::asio::awaitable<boost::system::error_code> count_attempt(
        std::string order_id, std::string field) override;
    [[nodiscard]] boost::asio::awaitable<
        std::pair<boost::system::error_code, std::optional<order_fields>>>
    read_order(std::string order_id) override;
    [[nodiscard]] boost::asio::awaitable<
        std::pair<boost::system::error_code, std::optional<order_record>>>
    read_order_record(std::string order_id) override;

    [[nodiscard]] const store_options& options() const noexcept { return sopts_; }
    // On a cluster, host and port are the first seed's: a plain redis_connection made from
    // them (the pub/sub feed) goes to that node only; cluster()->node_for_key() names a
    // slot's primary.
    [[nodiscard]] const redis_options& connection_options() const noexcept { return ropts_; }
    // The metrics every Redis connection of the process reports into (for extra connections).
    [[nodiscard]] redis_metrics& connection_metrics() noexcept { return redis_metrics_; }

    // The key holding the order's record (proto-docs/redis-keys.md, version 4): in its store's
    // slot once routed (the route read from this node's route cache, else from Redis), else
    // the unrouted record's key. A routed order whose record is still being moved (the route
    // is written first) may still have its record there: read_order and read_order_record
    // look in both.
    [[nodiscard]] boost::asio::awaitable<std::pair<boost::system::error_code, std::string>>
    locate_order(std::string order_id);
    // HINCRBY of one field of the order's record (the poll scheduler's attempt counters).
    [[nodiscard]] boost::asio::awaitable<boost::system::error_code> increment_order_field(
        std::string order_id, std::string field);

    // terminal_streams (include/posrelay/store/terminal_streams.hpp).
    [[nodiscard]] boost::asio::awaitable<std::pair<boost::system::error_code, terminal_position>>
    open_terminal(std::string store, std::string terminal, bool subscribe) override;
    [[nodiscard]] boost::asio::awaitable<std::pair<boost::system::error_code, terminal_position>>
    rotate_epoch(std::string store, std::string terminal, std::string expected,
                 std::string after_eid) override;
    [[nodiscard]] boost::asio::awaitable<std::pair<boost::system::error_code, terminal_position>>
    read_position(std::string store, std::string terminal) override;
    [[nodiscard]] boost::asio::awaitable<
        std::pair<boost::system::error_code, std::vector<stream_entry>>>
    read_range(std::string store, std::string terminal, std::uint64_t from, std::uint64_t to,
               std::uint64_t count) override;
    [[nodiscard]] boost::asio::awaitable<boost::system::error_code> renew_subscription(
        std::string store, std::string terminal) override;

    // terminal_activity (include/posrelay/store/terminal_activity.hpp; terminal_activity.cpp).
    [[nodiscard]] boost::asio::awaitable<boost::system::error_code> write_activity(
        std::string store, activity_batch batch) override;
    [[nodiscard]] boost::asio::awaitable<std::pair<boost::system::error_code, presence_record>>
    read_presence(std::string store, std::string terminal) override;
    [[nodiscard]] boost::asio::awaitable<std::pair<boost::system::error_code, presence_page>>
    list_presence(std::string store, std::string cursor, std::size_t limit) override;
    [[nodiscard]] boost::asio::awaitable<std::pair<boost::system::error_code, delivery_timeline>>
    read_timeline(std::string store, std::string order_id) override;
    // terminal_revocations (include/posrelay/store/terminal_revocations.hpp).
    [[nodiscard]] boost::asio::awaitable<std::pair<boost::system::error_code, revocation_times>>
    read_revocations(std::string store, std::string terminal) override;
    [[nodiscard]] boost::asio::awaitable<std::pair<boost::system::error_code, std::int64_t>> revoke(
        std::string store, std::string terminal, std::int64_t at,
        std::chrono::seconds keep) override;
    [[nodiscard]] boost::asio::awaitable<std::pair<boost::system::error_code, std::int64_t>>
    send_control(std::string store, std::string message) override;

private:
    // The Redis users inside src/store (the poll schedule) run their commands on the same
    // connections.
    friend class redis_poll_schedule;
    friend struct redis_store_test_access;  // tests only: the io thread's client
    // The calling io thread's connection. Internal to src/store: every other user goes through
    // the interfaces.
    [[nodiscard]] redis_client& local();
    // The TTL of an order's key: it holds the record, its history and its dedup marks.
    [[nodiscard]] std::chrono::seconds key_ttl() const noexcept {
        return std::max(sopts_.order_ttl, sopts_.dedup_ttl);
    }
    // EVALSHA the order script on the order's record (in its store's slot when routed; a
    // record of key schema version 3 is moved there first) with ARGV = the header (the prefix,
    // `now_ms`), then `args` (the mode first); EVAL on NOSCRIPT (lua_script). The views need
    // only live until the returned awaitable is awaited.
    boost::asio::awaitable<std::pair<boost::system::error_code, redis_reply>> run_script(
        std::string_view order_id, std::string_view now_ms, redis_args args);
    boost::asio::awaitable<std::pair<boost::system::error_code, redis_reply>> run_script(
        std::string_view order_id, std::string_view now_ms, const std::vector<std::string>& args);
    // The same with `keys`.
    boost::asio::awaitable<std::pair<boost::system::error_code, redis_reply>> eval_script(
        std::span<const std::string_view> keys, std::string_view now_ms, redis_args args);

    // The presence records of `terminals` of `store` (the activity script's 'read').
    boost::asio::awaitable<std::pair<boost::system::error_code, std::vector<presence_record>>>
    read_presences(const std::string& store, std::vector<std::string> terminals);

    // ---- routes (src/store/order_routes.cpp) ----
    // The order's store ("" when it has none yet): this node's cache, else GETEX of the
    // route (renewing its TTL). `cached` false: always read from Redis.
    boost::asio::awaitable<std::pair<boost::system::error_code, std::string>> find_route(
        std::string_view order_id, bool cached = true);
    // Routes the order to `wanted` unless it has a route (or a version 3 record names its
    // store); then moves a record written before the route into the store's slot. Returns
    // the order's store, which is `wanted` unless it was routed elsewhere before.
    boost::asio::awaitable<std::pair<boost::system::error_code, std::string>> claim_route(
        std::string order_id, std::string wanted);
    // Moves the unrouted record P{o:ID}, if any, into `store`'s slot (the script's adopt),
    // then deletes it. Every step is safe to repeat.
    boost::asio::awaitable<boost::system::error_code> adopt_unrouted(std::string_view order_id,
                                                                     std::string_view store);
    // The order script on the record in `store`'s slot ("" = the unrouted record).
    boost::asio::awaitable<std::pair<boost::system::error_code, redis_reply>> run_on(
        std::string_view store, std::string_view order_id, std::string_view now_ms,
        redis_args args);
    // A commit or confirm: on the routed record; an order without a route is written to its
    // unrouted record, then the route is read again and, if one appeared meanwhile (a
    // registration on another node), the record is adopted and the update applied there too.
    boost::asio::awaitable<std::pair<boost::system::error_code, redis_reply>> run_update(
        std::string_view order_id, std::string_view now_ms, redis_args args);
    [[nodiscard]] std::chrono::seconds route_ttl() const noexcept;
    // HGETALL of the order's record: the routed one, else (not routed, or routed and not moved
    // yet) the unrouted one.
    boost::asio::awaitable<std::pair<boost::system::error_code, redis_reply>> read_record(
        std::string_view order_id);
    boost::asio::awaitable<std::pair<boost::system::error_code, redis_reply>> reserve_on_route(
        const order_registration& reg, std::string_view now, const std::vector<std::string>& args);
    void step(std::string_view name) const;  // store_options::step_hook
    // Counts the events a script call reports sent (its reply's third element).
    void count_published(const redis_reply& reply) noexcept;
    // wait_replicas() for a write on the order's key when --redis-min-replicas-ack is set;
    // `wrote`: this call's script wrote (else the key is touched first).
    boost::asio::awaitable<boost::system::error_code> acknowledged(std::string_view order_id,
                                                                   bool wrote);

    // "now + poll_first_delay" in Unix ms, or "" when orders are not enrolled.
    [[nodiscard]] std::string first_poll_ms() const;
    // The poll schedule's buckets live in other Redis Cluster slots than the order: these are
    // separate calls around the order script's (keys::poll_due ...). enrol_due: ZADD NX, true
    // when added; unschedule: ZREM + HDEL of the lease; the confirmation set likewise.
    boost::asio::awaitable<bool> enrol_due(const std::string& order_id, const std::string& due_ms);
    boost::asio::awaitable<void> unschedule(const std::string& order_id, bool confirm);
    boost::asio::awaitable<void> add_claim(const std::string& order_id, std::int64_t due_ms);

    io_pool& pool_;
    redis_options ropts_;
    store_options sopts_;
    metrics::registry& registry_;
    redis_metrics redis_metrics_;
    lua_script order_script_;
    lua_script activity_script_;                              // presence and delivery timelines
    std::vector<std::shared_ptr<const lua_script>> scripts_;  // add_script(): loaded on connect too
    std::unique_ptr<cluster_metrics> cluster_metrics_;        // a cluster only
    std::shared_ptr<cluster_topology> topology_;              // a cluster only
    std::chrono::steady_clock::time_point started_at_;        // start(): the startup grace
    mutable std::atomic<bool> whole_once_{false};             // every slot covered since start()
    std::vector<std::shared_ptr<redis_client>> connections_;  // one per io thread
    metrics::counter* commits_[ingest::commit_outcome_count] = {};  // by commit_outcome
    metrics::counter& commit_errors_;
    metrics::counter& replicas_short_;  // wait_replicas() fell short
    metrics::histogram& commit_latency_;
    route_cache routes_;
    metrics::counter& route_hits_;
    metrics::counter& route_misses_;
    metrics::counter& adoptions_;
    metrics::counter& published_;  // events sent out by this node's script calls
};

}  // namespace posrelay::store
