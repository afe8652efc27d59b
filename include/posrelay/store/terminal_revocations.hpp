// Terminal revocations and control messages (proto-docs/redis-keys.md, "Revocations and control
// messages"): when a terminal's (or a whole store's) tokens were revoked, read by every node at
// hello, and the control messages sent on the store's live channel. The Redis store implements
// it; tests/support has an in-memory fake. Errors are error_codes, never exceptions.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

namespace posrelay::store {

// Unix seconds of a terminal's own revocation and of its store's; 0: none (or expired).
struct revocation_times {
    std::int64_t terminal_at = 0;
    std::int64_t store_at = 0;
};

class terminal_revocations {
public:
    virtual ~terminal_revocations() = default;

    // Both revocations that concern (store, terminal), in one read.
    [[nodiscard]] virtual boost::asio::awaitable<
        std::pair<boost::system::error_code, revocation_times>>
    read_revocations(std::string store, std::string terminal) = 0;
    // Records a revocation of `terminal` ("": every terminal of `store`) at `at` (Unix seconds),
    // kept for `keep`. A later revocation already recorded is kept (never moved back). Returns
    // the revocation time in force.
    [[nodiscard]] virtual boost::asio::awaitable<std::pair<boost::system::error_code, std::int64_t>>
    revoke(std::string store, std::string terminal, std::int64_t at, std::chrono::seconds keep) = 0;
    // Sends `message` (fanout/control.hpp) on the store's live channel; returns how many
    // subscribers (nodes with a terminal of the store) received it.
    [[nodiscard]] virtual boost::asio::awaitable<std::pair<boost::system::error_code, std::int64_t>>
    send_control(std::string store, std::string message) = 0;
};

}  // namespace posrelay::store
