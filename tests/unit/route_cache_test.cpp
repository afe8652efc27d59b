// The node's order → store route cache (include/posrelay/store/route_cache.hpp): bounded,
// least recently used out first, an entry used for at most max_age.
#include <gtest/gtest.h>

#include "posrelay/store/route_cache.hpp"

namespace posrelay::store {
namespace {

using namespace std::chrono_literals;
using clock_t_ = route_cache::clock;

TEST(RouteCache, RemembersUpToCapacityDroppingTheLeastRecentlyUsed) {
    route_cache c(2, 1h);
    const auto t = clock_t_::time_point{} + 10h;
    c.put("O-1", "S-A", t);
    c.put("O-2", "S-B", t);
    EXPECT_EQ(c.get("O-1", t), "S-A");  // O-1 used: O-2 is now the least recent
    c.put("O-3", "S-C", t);
    EXPECT_EQ(c.size(), 2u);
    EXPECT_EQ(c.get("O-2", t), std::nullopt);
    EXPECT_EQ(c.get("O-1", t), "S-A");
    EXPECT_EQ(c.get("O-3", t), "S-C");
}

TEST(RouteCache, AnEntryIsUsedForAtMostMaxAge) {
    route_cache c(8, 1h);
    const auto t = clock_t_::time_point{} + 10h;
    c.put("O-1", "S-A", t);
    EXPECT_EQ(c.get("O-1", t + 59min), "S-A");
    EXPECT_EQ(c.get("O-1", t + 1h), std::nullopt);  // read again (renews the route's TTL)
    EXPECT_EQ(c.size(), 0u);
    c.put("O-1", "S-A", t + 1h);
    EXPECT_EQ(c.get("O-1", t + 90min), "S-A");
}

TEST(RouteCache, PutAgainRefreshesAndZeroCapacityRemembersNothing) {
    route_cache c(1, 1h);
    const auto t = clock_t_::time_point{} + 10h;
    c.put("O-1", "S-A", t);
    c.put("O-1", "S-A", t + 50min);
    EXPECT_EQ(c.get("O-1", t + 100min), "S-A");
    EXPECT_EQ(c.size(), 1u);
    route_cache none(0, 1h);
    none.put("O-1", "S-A", t);
    EXPECT_EQ(none.get("O-1", t), std::nullopt);
}

}  // namespace
}  // namespace posrelay::store
