// The poll schedule shared by the fleet (include/posrelay/poll/scheduler.hpp): the due set of
// pending orders and the confirmation set of claims, each split into buckets (keys.hpp), with
// leases, and the fleet-wide rate limit and pause. The Redis implementation
// (store/redis_poll_schedule.hpp) runs the poll script; tests/support has an in-memory fake.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace posrelay::store {

// Which set: orders due for a status poll, or claims due for a paid confirmation.
enum class poll_set : std::uint8_t { due, confirm };

struct claimed_entry {
    std::string order_id;
    std::string previous;  // the node whose lease lapsed on it, "" when none
};
struct claim_batch {
    std::vector<claimed_entry> entries;
    std::optional<std::int64_t> next_due_ms;  // the earliest due time left (Unix ms), if any
};
struct schedule_stats {
    std::int64_t due = 0;                       // entries of the due set
    std::int64_t confirm = 0;                   // entries of the confirmation set
    std::optional<std::int64_t> oldest_due_ms;  // the earliest due time of the due set
};

class poll_schedule {
public:
    virtual ~poll_schedule() = default;

    // Takes up to `max` entries of `set` whose due time has come, each leased to `node` for
    // `lease` (its due time pushed to now + lease: no other node takes it before).
    [[nodiscard]] virtual boost::asio::awaitable<std::pair<boost::system::error_code, claim_batch>>
    claim(poll_set set, std::chrono::milliseconds lease, unsigned max, std::string node) = 0;
    // Releases the lease of `order_id` and makes it due again at `next_due_ms`, or drops it
    // from the set (nullopt). An entry no longer in the set is not added back.
    [[nodiscard]] virtual boost::asio::awaitable<boost::system::error_code> done(
        poll_set set, std::string order_id, std::optional<std::int64_t> next_due_ms) = 0;
    // Enrols `order_id` in `set`, due at `due_ms`, unless it is already there (its due time is
    // kept). `node`: the lease holder recorded with it ("" = none). True when it was added.
    [[nodiscard]] virtual boost::asio::awaitable<std::pair<boost::system::error_code, bool>> enrol(
        poll_set set, std::string order_id, std::int64_t due_ms, std::string node) = 0;
    // The fleet's rate limit (GCRA, `interval_ms` per call, `tau_ms` of burst): 0 when a call
    // may be made now (and counts it), else the ms to wait.
    [[nodiscard]] virtual boost::asio::awaitable<std::pair<boost::system::error_code, std::int64_t>>
    take(std::int64_t interval_ms, std::int64_t tau_ms) = 0;
    // No call for the whole fleet during `ms` (a 429).
    [[nodiscard]] virtual boost::asio::awaitable<boost::system::error_code> pause(
        std::chrono::milliseconds ms) = 0;
    // Sizes of the sets, for the gauges.
    [[nodiscard]] virtual boost::asio::awaitable<
        std::pair<boost::system::error_code, schedule_stats>>
    stats() = 0;
};

}  // namespace posrelay::store
