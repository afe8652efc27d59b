// When the embedded Redis's append-only file is rewritten. A rewrite forks redis-server; on a VM
// each copy-on-write fault of the fork costs ~17 µs (bench/fork_cow_bench), so a rewrite while
// commits pour in stalls them for tens of milliseconds. Redis's own rule (auto-aof-rewrite-*)
// rewrites when the file has doubled, whatever the load. posrelay's rule, in scheduled mode:
// the same "due" test, but the rewrite waits for a quiet moment (the file growing slower than
// a set rate), and happens anyway once the growth since the last rewrite reaches a bound, so
// the file, the disk it takes and the time to load it at a restart stay bounded. Pure.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace posrelay::store {

// One reading of INFO persistence.
struct aof_sample {
    std::int64_t current_size = 0;  // aof_current_size
    std::int64_t base_size = 0;     // aof_base_size: the size after the last rewrite (or load)
    bool rewriting = false;         // aof_rewrite_in_progress
    std::chrono::steady_clock::time_point at;
};

struct aof_rewrite_policy {
    std::int64_t min_size = 64LL * 1024 * 1024;       // Redis's auto-aof-rewrite-min-size default
    std::int64_t growth_percent = 100;                // Redis's auto-aof-rewrite-percentage default
    std::int64_t quiet_bytes_per_second = 64 * 1024;  // growing slower than this: quiet
    std::int64_t max_growth = 1024LL * 1024 * 1024;   // then rewrite whatever the load
    std::chrono::seconds min_interval{60};            // between two rewrites posrelay asks for
};

enum class aof_rewrite_reason { quiet, size };

// Whether to ask for a rewrite (BGREWRITEAOF) now, and why; nullopt: not now. `previous` is
// the reading before `now` (nullopt at the first): the growth rate comes from the two.
// `since_last_asked`: time since posrelay last asked for a rewrite (nullopt: never).
// Not while one is in progress, nor within min_interval of the last one asked for (a failing
// rewrite, e.g. a full disk, is not retried in a loop); not before the file is due: at least
// min_size and grown by growth_percent over its base size. Then: quiet, or grown by max_growth.
[[nodiscard]] std::optional<aof_rewrite_reason> decide_aof_rewrite(
    const std::optional<aof_sample>& previous, const aof_sample& now,
    std::optional<std::chrono::steady_clock::duration> since_last_asked,
    const aof_rewrite_policy& policy);

}  // namespace posrelay::store
