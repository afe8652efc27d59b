// Sends Midtrans-style HTTP notifications: POST JSON with User-Agent Veritrans, retried by
// the receiver's answer on Midtrans's schedule (divided by --time-scale), with the fault
// settings applied (drop, duplicate, reorder, delay). Runs on one io_context; not
// thread-safe. At most `max_concurrent` attempts are in flight; the rest wait in a queue;
// at most `max_deliveries` deliveries are alive at once (more are dropped and counted).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "ledger.hpp"
#include "sim_options.hpp"

namespace posrelay::sim {

struct notifier_stats {
    std::uint64_t sent = 0;             // attempts made
    std::uint64_t acked = 0;            // attempts answered 2xx
    std::uint64_t failed_attempts = 0;  // non-2xx, timeout or connection error
    std::uint64_t dropped = 0;          // events never sent (--drop-rate)
    std::uint64_t duplicated = 0;       // events sent twice (--duplicate-rate)
    std::uint64_t reordered = 0;        // events held behind the order's next one
    std::uint64_t given_up = 0;         // deliveries out of retries
    std::uint64_t overflow = 0;         // deliveries refused: max_deliveries alive
};

// How many retries Midtrans makes after an answer (FACTS.md): 2xx none; 500 → 1;
// 503 → 4; 400/404 → 2; 301/302/303 → none; anything else and no answer → 5.
[[nodiscard]] int retries_after(int http_status) noexcept;

class notifier {
public:
    // Called after every attempt, with the transaction id, for its record.
    using attempt_hook = std::function<void(const std::string& transaction_id, attempt_record)>;

    notifier(boost::asio::io_context& ioc, const sim_options& opts, const fault_config& faults,
             random_source& rng, attempt_hook hook);

    // Notifies the event `body` describes (transaction_status `event`) to each URL, applying
    // the fault settings. `final_event`: the order will have no next event (never held).
    void notify(const transaction& t, std::string_view event, std::string body, bool final_event);

    [[nodiscard]] const notifier_stats& stats() const noexcept { return stats_; }
    void reset_stats() noexcept { stats_ = {}; }
    [[nodiscard]] std::size_t in_flight() const noexcept { return in_flight_; }
    [[nodiscard]] std::size_t queued() const noexcept { return waiters_.size(); }
    [[nodiscard]] std::size_t alive() const noexcept { return alive_; }

private:
    struct delivery {
        std::string transaction_id;
        std::string order_id;
        std::string event;
        std::string url;
        std::shared_ptr<const std::string> body;
        std::chrono::milliseconds delay{0};
        std::vector<delivery> followers;  // started once this one's first attempt ends
    };
    struct answer {
        int http_status = 0;
        std::string error;
    };

    void start(delivery d);
    boost::asio::awaitable<void> run(delivery d);
    boost::asio::awaitable<answer> post_once(const delivery& d);
    boost::asio::awaitable<void> acquire();
    void release();
    [[nodiscard]] std::chrono::milliseconds scaled(std::chrono::milliseconds d) const;

    boost::asio::io_context& ioc_;
    const sim_options& opts_;
    const fault_config& faults_;
    random_source& rng_;
    attempt_hook hook_;
    notifier_stats stats_;
    std::size_t in_flight_ = 0;
    std::size_t alive_ = 0;
    // Attempts waiting for a slot, woken in order by cancelling their timer.
    std::deque<std::shared_ptr<boost::asio::steady_timer>> waiters_;
    // Deliveries held by --reorder-rate until the order's next event, by transaction id.
    std::unordered_map<std::string, std::vector<delivery>> held_;
};

}  // namespace posrelay::sim
