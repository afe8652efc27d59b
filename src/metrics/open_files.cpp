// Open files: what the configured limits need against RLIMIT_NOFILE (README, Open files).
#include "posrelay/metrics/open_files.hpp"

#include <sys/resource.h>

#include <limits>

#include "posrelay/log.hpp"

namespace posrelay::metrics {

std::uint64_t open_files_needed(const fd_demand& d) noexcept {
    std::uint64_t n = fixed_reserve_fds + per_thread_reserve_fds * d.io_threads;
    n += d.http_connections + d.admin_connections + d.terminal_connections;
    if (d.midtrans_calls > 0) n += d.midtrans_calls + midtrans_idle_fds_per_thread * d.io_threads;
    return n;
}

std::uint64_t open_files_limit() noexcept {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return std::numeric_limits<std::uint64_t>::max();
    return rl.rlim_cur;
}

std::uint64_t check_open_files(registry& reg, const fd_demand& d, std::uint64_t limit) {
    const std::uint64_t needed = open_files_needed(d);
    reg.add_gauge("posrelay_open_files_needed",
                  "Descriptors the configured connection limits need when all are reached "
                  "(compare with process_max_fds).")
        .set(static_cast<std::int64_t>(needed));
    if (limit < needed) {
        log::line(log::level::warn,
                  "open files limit below what the connection limits need: connections past it "
                  "fail to be accepted")
            .num("limit", static_cast<std::int64_t>(limit))
            .num("needed", static_cast<std::int64_t>(needed))
            .str("fix",
                 "raise the hard limit (LimitNOFILE= in the systemd unit, ulimit -n in a shell, "
                 "--ulimit nofile= for a container) or lower --max-connections, "
                 "--terminal-max-connections, --midtrans-max-inflight");
    }
    return needed;
}

}  // namespace posrelay::metrics
