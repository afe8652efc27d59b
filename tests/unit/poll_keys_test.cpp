// The poll schedule's keys (include/posrelay/store/keys.hpp): buckets each under their own hash
// tag (one Redis Cluster slot each), every script call's keys under one tag.
#include <gtest/gtest.h>

#include <array>
#include <set>
#include <string>

#include "posrelay/store/keys.hpp"

namespace posrelay::store {
namespace {

// The part of a key Redis Cluster hashes: between the first '{' and the next '}'.
std::string hash_tag(const std::string& key) {
    const auto open = key.find('{');
    const auto close = key.find('}', open + 1);
    if (open == std::string::npos || close == std::string::npos || close == open + 1) return key;
    return key.substr(open + 1, close - open - 1);
}

TEST(PollKeys, EachBucketHasItsOwnTagAndItsLeasesShareIt) {
    EXPECT_EQ(keys::poll_due("posrelay:", 3), "posrelay:{poll:3}:due");
    EXPECT_EQ(keys::poll_leases("posrelay:", 3), "posrelay:{poll:3}:leases");
    EXPECT_EQ(keys::poll_confirm("posrelay:", 15), "posrelay:{poll:15}:confirm");
    EXPECT_EQ(keys::poll_confirm_leases("posrelay:", 15), "posrelay:{poll:15}:confirm_leases");
    std::set<std::string> tags;
    for (unsigned b = 0; b < keys::poll_buckets; ++b) {
        const std::string tag = hash_tag(keys::poll_due("p:", b));
        // One script call ('claim', 'done') touches a set and its leases: one slot.
        EXPECT_EQ(hash_tag(keys::poll_leases("p:", b)), tag);
        EXPECT_EQ(hash_tag(keys::poll_confirm("p:", b)), tag);
        EXPECT_EQ(hash_tag(keys::poll_confirm_leases("p:", b)), tag);
        tags.insert(tag);
    }
    EXPECT_EQ(tags.size(), keys::poll_buckets);
    // 'take' touches the rate and the pause: one slot, the fleet's, no bucket's.
    EXPECT_EQ(hash_tag(keys::poll_rate("p:")), "poll");
    EXPECT_EQ(hash_tag(keys::poll_pause("p:")), "poll");
    EXPECT_EQ(tags.count("poll"), 0u);
}

TEST(PollKeys, TheSingleSetsOfKeySchemaV2KeepTheirNames) {
    EXPECT_EQ(keys::legacy_poll_due("posrelay:"), "posrelay:{poll}:due");
    EXPECT_EQ(keys::legacy_poll_leases("posrelay:"), "posrelay:{poll}:leases");
    EXPECT_EQ(keys::legacy_poll_confirm("posrelay:"), "posrelay:{poll}:confirm");
    EXPECT_EQ(keys::legacy_poll_confirm_leases("posrelay:"), "posrelay:{poll}:confirm_leases");
}

TEST(PollKeys, AnOrdersBucketIsFixedByItsIdAndOrdersSpreadOverAll) {
    // FNV-1a 32: a constant of the key schema (a changed function would strand entries).
    EXPECT_EQ(keys::poll_bucket(""), 2166136261u % keys::poll_buckets);
    EXPECT_EQ(keys::poll_bucket("ORDER-1"), keys::poll_bucket("ORDER-1"));
    std::array<unsigned, keys::poll_buckets> n{};
    for (int i = 0; i < 16'000; ++i) {
        const unsigned b = keys::poll_bucket("INV-" + std::to_string(i));
        ASSERT_LT(b, keys::poll_buckets);
        ++n[b];
    }
    for (unsigned b = 0; b < keys::poll_buckets; ++b) {
        EXPECT_GT(n[b], 800u) << b;
        EXPECT_LT(n[b], 1200u) << b;
    }
}

}  // namespace
}  // namespace posrelay::store
