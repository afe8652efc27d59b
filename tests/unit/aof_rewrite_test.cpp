#include "posrelay/store/aof_rewrite.hpp"

#include <gtest/gtest.h>

namespace {

using namespace std::chrono_literals;
using posrelay::store::aof_rewrite_policy;
using posrelay::store::aof_rewrite_reason;
using posrelay::store::aof_sample;
using posrelay::store::decide_aof_rewrite;

constexpr std::int64_t MiB = 1024 * 1024;
const auto t0 = std::chrono::steady_clock::time_point{} + 1h;

aof_sample at(std::int64_t current_mib, std::int64_t base_mib, std::chrono::seconds when,
              bool rewriting = false) {
    return {current_mib * MiB, base_mib * MiB, rewriting, t0 + when};
}

struct row {
    const char* what;
    std::optional<aof_sample> previous;
    aof_sample now;
    std::optional<std::chrono::steady_clock::duration> since_last_asked;
    std::optional<aof_rewrite_reason> expected;
};

TEST(AofRewrite, WaitsForAQuietMomentAndIsBoundedBySize) {
    const aof_rewrite_policy p{};  // 64 MiB, 100%, quiet 64 KiB/s, max growth 1 GiB, 60 s
    const std::int64_t small = p.quiet_bytes_per_second * 5;  // 5 s at the quiet rate
    aof_sample quiet_now = at(200, 50, 5s);
    quiet_now.current_size = 200 * MiB + small;
    const row rows[] = {
        {"under the minimum size", at(60, 10, 0s), at(60, 10, 5s), std::nullopt, std::nullopt},
        {"not doubled since the last rewrite", at(90, 50, 0s), at(90, 50, 5s), std::nullopt,
         std::nullopt},
        {"due and quiet (no growth)", at(200, 50, 0s), at(200, 50, 5s), std::nullopt,
         aof_rewrite_reason::quiet},
        {"due and growing at exactly the quiet rate", at(200, 50, 0s), quiet_now, std::nullopt,
         aof_rewrite_reason::quiet},
        {"due but busy (10 MiB in 5 s)", at(190, 50, 0s), at(200, 50, 5s), std::nullopt,
         std::nullopt},
        {"busy and grown by the maximum: rewritten anyway", at(1064, 50, 0s), at(1074, 50, 5s),
         std::nullopt, aof_rewrite_reason::size},
        {"first reading, due, rate unknown", std::nullopt, at(200, 50, 5s), std::nullopt,
         std::nullopt},
        {"first reading, grown by the maximum", std::nullopt, at(1100, 50, 5s), std::nullopt,
         aof_rewrite_reason::size},
        {"a rewrite in progress", at(200, 50, 0s), at(200, 50, 5s, true), std::nullopt,
         std::nullopt},
        {"one was in progress at the last reading", at(200, 50, 0s, true), at(200, 50, 5s),
         std::nullopt, std::nullopt},
        {"asked 30 s ago (failed?): not again yet", at(200, 50, 0s), at(200, 50, 5s), 30s,
         std::nullopt},
        {"asked 60 s ago: again", at(200, 50, 0s), at(200, 50, 5s), 60s, aof_rewrite_reason::quiet},
        {"shrank between readings: rate unknown", at(300, 50, 0s), at(200, 50, 5s), std::nullopt,
         std::nullopt},
        {"clock did not move: rate unknown", at(200, 50, 5s), at(200, 50, 5s), std::nullopt,
         std::nullopt},
        {"no base size yet (0): due by size alone", at(70, 0, 0s), at(70, 0, 5s), std::nullopt,
         aof_rewrite_reason::quiet},
    };
    for (const auto& r : rows) {
        EXPECT_EQ(decide_aof_rewrite(r.previous, r.now, r.since_last_asked, p), r.expected)
            << r.what;
    }
}

TEST(AofRewrite, ThePolicyIsTheCallers) {
    aof_rewrite_policy p{};
    p.min_size = 1 * MiB;
    p.growth_percent = 50;
    p.quiet_bytes_per_second = 1 * MiB;
    p.max_growth = 8 * MiB;
    // 1.25× the base is not due at 50%, 1.5× is; 4 MiB in 5 s is under 1 MiB/s: quiet.
    EXPECT_EQ(decide_aof_rewrite(at(2, 2, 0s), at(5, 4, 5s), std::nullopt, p), std::nullopt);
    EXPECT_EQ(decide_aof_rewrite(at(2, 4, 0s), at(6, 4, 5s), std::nullopt, p),
              aof_rewrite_reason::quiet);
    EXPECT_EQ(decide_aof_rewrite(at(4, 4, 0s), at(12, 4, 5s), std::nullopt, p),
              aof_rewrite_reason::size);
}

}  // namespace
