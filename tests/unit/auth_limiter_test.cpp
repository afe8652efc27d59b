// The failed-authentication limiter: N failures per address and window, then refused until
// the window ends; addresses independent; memory bounded.
#include <gtest/gtest.h>

#include "posrelay/auth_limiter.hpp"

namespace posrelay {
namespace {

using namespace std::chrono_literals;
using clock_type = auth_limiter::clock;

TEST(AuthLimiter, RefusesAfterNFailuresUntilTheWindowEnds) {
    auth_limiter l(3, 60s);
    const auto t0 = clock_type::time_point{} + 1000s;
    for (int i = 0; i < 3; ++i) {
        EXPECT_TRUE(l.allowed("10.0.0.1", t0 + std::chrono::seconds(i)));
        l.failed("10.0.0.1", t0 + std::chrono::seconds(i));
    }
    EXPECT_FALSE(l.allowed("10.0.0.1", t0 + 3s));
    EXPECT_EQ(l.blocked_for("10.0.0.1", t0 + 3s), 57s);  // the window began at the first failure
    EXPECT_EQ(l.blocked_for("10.0.0.1", t0 + 59s), 1s);
    EXPECT_TRUE(l.allowed("10.0.0.2", t0 + 3s));   // another address is not affected
    EXPECT_TRUE(l.allowed("10.0.0.1", t0 + 60s));  // the window ended: a fresh start
    l.failed("10.0.0.1", t0 + 60s);
    EXPECT_TRUE(l.allowed("10.0.0.1", t0 + 61s));
}

TEST(AuthLimiter, MemoryIsBounded) {
    auth_limiter l(1, 60s);
    const auto t0 = clock_type::time_point{} + 1000s;
    for (std::size_t i = 0; i < auth_limiter::max_tracked + 10; ++i)
        l.failed("a" + std::to_string(i), t0);
    EXPECT_EQ(l.tracked(), auth_limiter::max_tracked);
    // Once the entries expire, they are pruned to make room.
    l.failed("late", t0 + 61s);
    EXPECT_EQ(l.tracked(), 1u);
    EXPECT_FALSE(l.allowed("late", t0 + 62s));
}

TEST(AuthLimiter, AddressOfDropsThePort) {
    EXPECT_EQ(address_of("127.0.0.1:5040"), "127.0.0.1");
    EXPECT_EQ(address_of("::1:5040"), "::1");
    EXPECT_EQ(address_of("unknown"), "unknown");
}

}  // namespace
}  // namespace posrelay
