// midtrans-sim configuration: start-up options (command line) and the fault settings that
// the control API can change at run time (POST /sim/config).
#pragma once

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "posrelay/config.hpp"
#include "posrelay/log.hpp"

namespace posrelay::sim {

// Everything /sim/config can change. Rates are probabilities in [0, 1].
struct fault_config {
    double drop_rate = 0;                // a notification event is never sent
    double duplicate_rate = 0;           // ... is sent twice
    double reorder_rate = 0;             // ... is held and sent after the order's next one
    std::int64_t notify_delay_ms = 0;    // minimum delay before a first attempt
    std::int64_t notify_jitter_ms = 0;   // plus uniform [0, jitter]
    double error_rate = 0;               // /v2 calls answered with error_status
    unsigned error_status = 500;         // 500, 503 or 429
    std::int64_t status_rate_limit = 0;  // GET status calls per second; 0 = unlimited
    std::int64_t deny_next_charges = 0;  // the next N charges are denied
    std::int64_t charge_delay_ms = 0;    // a charge's answer is sent this long after it is made
    std::int64_t auto_pay_after_ms = 0;  // 0 = off
    double auto_pay_rate = 1;            // fraction of orders auto-paid
    bool down = false;                   // every /v2 call 503, notifications held
};

// Applies the keys of `o` to `f`. All or nothing: on the first unknown key or bad value,
// `f` is untouched and the reason is returned.
[[nodiscard]] std::optional<std::string> apply_config(fault_config& f,
                                                      const boost::json::object& o);
[[nodiscard]] boost::json::object to_json(const fault_config& f);

struct sim_options {
    endpoint listen{"127.0.0.1", 8090};
    std::string public_url;        // "" = http://<bound address>
    std::string notification_url;  // default destination; "" = none
    std::string merchant_id = "G123456789";
    std::uint64_t seed = 0;
    double time_scale = 1;
    std::chrono::milliseconds notify_timeout{15'000};
    bool notify_pending = true;
    std::size_t max_orders = 1'000'000;
    std::size_t max_notifications = 100'000;  // deliveries alive (waiting, queued, in flight)
    std::size_t max_concurrent_notifications = 256;
    log::level log_level = log::level::info;
    fault_config faults;
};

struct sim_cli {
    bool help = false;
    std::string help_text;
    sim_options opts;
};

// Parses the command line; throws std::invalid_argument naming the bad option.
[[nodiscard]] sim_cli parse_sim_options(int argc, const char* const* argv);

}  // namespace posrelay::sim
