// The poll schedule on Redis (include/posrelay/store/poll_schedule.hpp): the poll script
// (src/poll/poll_script.lua) run by EVALSHA on the store's connections. Keys: keys.hpp.
#pragma once

#include <memory>
#include <string>

#include "posrelay/metrics/registry.hpp"
#include "posrelay/store/lua_script.hpp"
#include "posrelay/store/poll_schedule.hpp"
#include "posrelay/store/redis_store.hpp"

namespace posrelay::store {

class redis_poll_schedule final : public poll_schedule {
public:
    // Adds the poll script to `store` (SCRIPT LOAD on connect): before store.start().
    redis_poll_schedule(redis_store& store, metrics::registry& reg);

    [[nodiscard]] boost::asio::awaitable<std::pair<boost::system::error_code, claim_batch>> claim(
        poll_set set, std::chrono::milliseconds lease, unsigned max, std::string node) override;
    [[nodiscard]] boost::asio::awaitable<boost::system::error_code> done(
        poll_set set, std::string order_id, std::optional<std::int64_t> next_due_ms) override;
    [[nodiscard]] boost::asio::awaitable<std::pair<boost::system::error_code, bool>> enrol(
        poll_set set, std::string order_id, std::int64_t due_ms, std::string node) override;
    [[nodiscard]] boost::asio::awaitable<std::pair<boost::system::error_code, std::int64_t>> take(
        std::int64_t interval_ms, std::int64_t tau_ms) override;
    [[nodiscard]] boost::asio::awaitable<boost::system::error_code> pause(
        std::chrono::milliseconds ms) override;
    [[nodiscard]] boost::asio::awaitable<std::pair<boost::system::error_code, schedule_stats>>
    stats() override;

    // Moves entries of the single set of key schema v2 (keys::legacy_poll_due ...) into the
    // buckets (up to 256 per call; stats() calls it). Returns how many were moved.
    [[nodiscard]] boost::asio::awaitable<std::pair<boost::system::error_code, std::size_t>> migrate(
        poll_set set);

private:
    boost::asio::awaitable<boost::system::error_code> count(poll_set set, std::int64_t& size,
                                                            std::optional<std::int64_t>* oldest);
    boost::asio::awaitable<std::pair<boost::system::error_code, redis_reply>> run(
        std::span<const std::string_view> keys, std::span<const std::string_view> args);

    redis_store& store_;
    std::shared_ptr<const lua_script> script_;
    unsigned cursor_ = 0;  // the bucket the next claim starts at (one loop: no lock needed)
};

}  // namespace posrelay::store
