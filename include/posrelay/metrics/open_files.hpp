// Open files: the descriptors posrelay's configured connection limits need, and the start-up
// check that the open-files limit (RLIMIT_NOFILE) allows them, with its metric.
#pragma once

#include <cstdint>

#include "posrelay/metrics/registry.hpp"

namespace posrelay::metrics {

// The connection limits in force: 0 for a part that is off.
struct fd_demand {
    std::uint64_t http_connections = 0;      // --max-connections
    std::uint64_t admin_connections = 0;     // --admin-max-connections, with --admin-listen
    std::uint64_t terminal_connections = 0;  // --terminal-max-connections, with the gateway
    std::uint64_t midtrans_calls = 0;        // --midtrans-max-inflight, with the Midtrans client
    std::uint64_t io_threads = 1;
};

// Besides the connections: standard streams, the log, the data-dir lock, the embedded
// Redis's eventfd, pidfd and INFO socket, the signal set, /proc reads at scrape time, the
// live feed's Redis connection, CA files read at start.
inline constexpr std::uint64_t fixed_reserve_fds = 64;
// Per io thread: its io_context (epoll, eventfd, timerfd), one acceptor per listener (HTTP,
// admin, terminal TCP, terminal TLS) and its Redis connection.
inline constexpr std::uint64_t per_thread_reserve_fds = 8;
// Per io thread, with the Midtrans client: kept-alive connections beside those in flight
// (midtrans::client_options::max_idle_per_host).
inline constexpr std::uint64_t midtrans_idle_fds_per_thread = 16;

// Descriptors needed when every limit is reached at once.
[[nodiscard]] std::uint64_t open_files_needed(const fd_demand& d) noexcept;

// The soft RLIMIT_NOFILE of the process now (no limit: UINT64_MAX).
[[nodiscard]] std::uint64_t open_files_limit() noexcept;

// Sets posrelay_open_files_needed and, when `limit` (the soft limit, already raised to the
// hard one) is below the need, logs a warning naming both and how to raise it. Returns the
// need.
std::uint64_t check_open_files(registry& reg, const fd_demand& d, std::uint64_t limit);

}  // namespace posrelay::metrics
