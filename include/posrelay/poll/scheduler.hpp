// The status-poll fallback scheduler: no payment left unknown when a notification never
// comes, and no Midtrans rate limit broken.
//
// Every pending order posrelay routes has a due time in one Redis sorted set shared by the
// fleet (enrolled by the order script when the order is charged or registered, removed by it
// when the order becomes final). Each node claims due orders with a lease (no two nodes poll
// one order at once; a dead node's claims lapse and are taken over), takes a token from one
// fleet-wide GCRA rate limit in Redis, asks Midtrans for the status and commits the answer
// like a notification (source "poll"). A 429 pauses the whole fleet. Orders with an expiry
// under --expire-below are expired by posrelay at their deadline; an order past its expiry
// plus --poll-grace that is still not final after one more poll is flagged unknown.
//
// It also confirms paid (--confirm-paid, include/posrelay/midtrans/confirmation.hpp): a
// notification that would change whether an order is paid is committed as a claim and put in
// the fleet's confirmation set, leased to the node that committed it, which confirms at once
// (confirm()). The loop claims lapsed confirmations (that node died) ahead of due polls.
// Confirmation calls take the fleet's tokens with priority: they may borrow up to one second
// of the budget ahead, which ordinary polls then pay back. With --poll-rate 0 (no polling)
// confirmations still run, unmetered.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "posrelay/config.hpp"
#include "posrelay/io_pool.hpp"
#include "posrelay/metrics/registry.hpp"
#include "posrelay/midtrans/client.hpp"
#include "posrelay/store/order_store.hpp"
#include "posrelay/store/poll_schedule.hpp"
#include "posrelay/store/redis_store.hpp"

namespace posrelay::poll {

struct poll_options {
    unsigned rate = 10;  // status calls per second, whole fleet; 0 = no polling
    unsigned burst = 1;  // calls allowed at once after a quiet spell (1 = strictly spaced)
    std::chrono::milliseconds first_delay{10'000};        // after enrolment
    std::chrono::milliseconds max_interval{60'000};       // backoff cap
    std::chrono::milliseconds lease{30'000};              // a claim lapses after this
    std::chrono::milliseconds grace{10 * 60'000};         // after expiry, before "unknown"
    std::chrono::milliseconds expire_below{15 * 60'000};  // shorter expiries: posrelay expires
    std::size_t concurrency = 32;                         // polls in flight per node
    bool confirm_paid = true;                             // confirm claims (--confirm-paid)
    // merchant_id → the Authorization header of its key (POSRELAY_MERCHANT_KEYS): a claim of
    // that merchant's order is confirmed with its own key. In memory only, never logged.
    std::map<std::string, std::string, std::less<>> merchant_auth;
    std::string node;  // claimer name, for logs

    [[nodiscard]] static poll_options from(const config& c);
};

// The delay before the next poll of an order polled `attempts` times: first_delay doubling
// (10, 20, 40 s ...), capped at max_interval, with ±10% jitter.
[[nodiscard]] std::chrono::milliseconds backoff(const poll_options& o, std::uint64_t attempts,
                                                std::mt19937_64& rng);

class scheduler {
public:
    // On Redis: the poll schedule is the store's (store::redis_poll_schedule; its script is
    // added to the store, so before store.start()).
    scheduler(io_pool& pool, store::redis_store& store, midtrans::client& api, poll_options o,
              metrics::registry& reg);
    // On any order store and poll schedule (unit tests: the fakes of tests/support).
    scheduler(io_pool& pool, store::order_store& store, store::poll_schedule& schedule,
              midtrans::api_calls& api, poll_options o, metrics::registry& reg);
    ~scheduler();
    scheduler(const scheduler&) = delete;
    scheduler& operator=(const scheduler&) = delete;

    // Starts the node's poll loop on the first io thread.
    void start();
    // Confirms the claim of `order_id` now, on the calling io thread (a notification of this
    // node just committed it; the order is leased to this node). At most `concurrency` at once:
    // past that it waits for a slot (up to 10,000 waiting; past that the lease lapses and the
    // loop takes it). Must be called on an io thread.
    void confirm(std::string order_id);
    // Stops claiming; polls in flight finish on their own. Thread-safe.
    void stop();
    // A reload's merchant keys (poll_options::merchant_auth); confirmations from now on use
    // them. Thread-safe.
    void set_merchant_auth(std::map<std::string, std::string, std::less<>> merchant_auth);

    struct impl;

private:
    static void start_confirm(const std::shared_ptr<impl>& self, std::string order_id);
    std::shared_ptr<impl> impl_;
};

}  // namespace posrelay::poll
