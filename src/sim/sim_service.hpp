// midtrans-sim's HTTP routes and state: the Core API (/v2/...), QR images, order timers
// (expiry, auto-pay), and the control API (/sim/...). Everything runs on one io thread:
// the routes, the timers and the notifier share that thread and need no locks.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "ledger.hpp"
#include "notifier.hpp"
#include "posrelay/http/router.hpp"
#include "sim_options.hpp"

namespace posrelay::sim {

struct api_stats {
    std::uint64_t charges = 0;  // transactions created (denied ones included)
    std::uint64_t charges_denied = 0;
    std::uint64_t charge_errors = 0;  // charge calls answered 4xx/5xx
    std::uint64_t status_calls = 0;
    std::uint64_t status_calls_429 = 0;
    std::uint64_t status_calls_max_in_any_second = 0;
    std::uint64_t cancel_calls = 0;
    std::uint64_t expire_calls = 0;
    std::uint64_t qr_code_calls = 0;
    std::uint64_t unauthorized = 0;
    std::uint64_t errors_injected = 0;  // --error-rate and down answers
};

class sim_service {
public:
    // `opts` and `server_key` must outlive the service.
    sim_service(boost::asio::io_context& ioc, sim_options& opts, std::string server_key);
    sim_service(const sim_service&) = delete;
    sim_service& operator=(const sim_service&) = delete;

    // Registers every route. Call before serving.
    void add_routes(http::router& r);
    // The base of action URLs (known once the listener is bound). Call before serving.
    void set_public_url(std::string url) { public_url_ = std::move(url); }

private:
    using request = http::request;
    using response = http::response;

    response api(request& req);  // /v2/...: down, auth, injected errors, then dispatch
    response charge(request& req);
    response status(transaction& t);
    response change_by_api(std::string_view id, tx_status to);
    response qr_code(std::string_view id);
    response control_order(request& req);
    response control_config(request& req);
    response control_stats();

    [[nodiscard]] response midtrans_error(const api_error& e, bool with_id = true);
    [[nodiscard]] bool authorized(const request& req) const;
    // True when a status call now stays within --status-rate-limit (and records it).
    bool admit_status_call();
    // Moves a pending transaction to `to`, stops its timers and notifies. False when it
    // was not pending.
    bool change(transaction& t, tx_status to);
    void notify(const transaction& t);
    void arm_timers(transaction& t);
    void record_attempt(const std::string& transaction_id, attempt_record r);

    boost::asio::io_context& ioc_;
    sim_options& opts_;
    fault_config& faults_;
    std::string server_key_;
    std::string expected_auth_;  // "Basic base64(key:)"
    std::string public_url_;
    random_source rng_;
    ledger ledger_;
    notifier notifier_;
    api_stats stats_;
    // Timestamps of admitted status calls in the last second (a sliding window).
    std::deque<std::chrono::steady_clock::time_point> status_window_;
    struct order_timers {
        explicit order_timers(boost::asio::io_context& c) : expiry(c), auto_pay(c) {}
        boost::asio::steady_timer expiry;
        boost::asio::steady_timer auto_pay;
    };
    // Timers of pending transactions, by transaction id (erased, so cancelled, when final).
    std::unordered_map<std::string, std::unique_ptr<order_timers>> timers_;
};

}  // namespace posrelay::sim
