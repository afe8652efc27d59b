#include "posrelay/store/aof_rewrite.hpp"

namespace posrelay::store {

namespace {

bool due(const aof_sample& s, const aof_rewrite_policy& p) {
    if (s.current_size < p.min_size) return false;
    const std::int64_t base = s.base_size > 0 ? s.base_size : 1;
    return (s.current_size - base) * 100 >= base * p.growth_percent;
}

// Bytes per second the file grew by between the two readings; nullopt without two readings
// in order (or when it shrank: a rewrite happened in between, the rate is unknown).
std::optional<double> growth_rate(const std::optional<aof_sample>& previous,
                                  const aof_sample& now) {
    if (!previous || now.at <= previous->at || now.current_size < previous->current_size)
        return std::nullopt;
    const double seconds = std::chrono::duration<double>(now.at - previous->at).count();
    return static_cast<double>(now.current_size - previous->current_size) / seconds;
}

}  // namespace

std::optional<aof_rewrite_reason> decide_aof_rewrite(
    const std::optional<aof_sample>& previous, const aof_sample& now,
    std::optional<std::chrono::steady_clock::duration> since_last_asked,
    const aof_rewrite_policy& policy) {
    if (now.rewriting || (previous && previous->rewriting)) return std::nullopt;
    if (since_last_asked && *since_last_asked < policy.min_interval) return std::nullopt;
    if (!due(now, policy)) return std::nullopt;
    if (const auto rate = growth_rate(previous, now);
        rate && *rate <= static_cast<double>(policy.quiet_bytes_per_second)) {
        return aof_rewrite_reason::quiet;
    }
    if (now.current_size - now.base_size >= policy.max_growth) return aof_rewrite_reason::size;
    return std::nullopt;
}

}  // namespace posrelay::store
