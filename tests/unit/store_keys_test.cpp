// Redis key names (include/posrelay/store/keys.hpp), key schema version 4: every key of a
// store — its orders' records, its terminals' counters and streams, its subscribers, its
// channel — shares its hash tag, hence one Redis Cluster slot. The order script's key helpers
// spell the same names (the integration tests read them by these names).
#include <gtest/gtest.h>

#include "posrelay/store/keys.hpp"
#include "posrelay/store/redis_info.hpp"

namespace posrelay::store {
namespace {

TEST(StoreKeys, EveryKeyOfAStoreSharesItsHashTag) {
    EXPECT_EQ(keys::terminal_counter("posrelay:", "S-A", "POS-1"), "posrelay:{s:S-A}:t:POS-1:seq");
    EXPECT_EQ(keys::terminal_stream("posrelay:", "S-A", "POS-1"),
              "posrelay:{s:S-A}:t:POS-1:events");
    EXPECT_EQ(keys::store_subscribers("posrelay:", "S-A"), "posrelay:{s:S-A}:subs");
    EXPECT_EQ(keys::store_order("p:", "S-A", "INV-1"), "p:{s:S-A}:o:INV-1");
    EXPECT_EQ(keys::store_channel("p:", "S-A"), "p:{s:S-A}:feed");
    // POS-1 of another store is another terminal: other keys.
    EXPECT_NE(keys::terminal_stream("posrelay:", "S-B", "POS-1"),
              keys::terminal_stream("posrelay:", "S-A", "POS-1"));
    for (const auto& k :
         {keys::terminal_counter("p:", "S-A", "T"), keys::terminal_stream("p:", "S-A", "T"),
          keys::store_subscribers("p:", "S-A"), keys::store_order("p:", "S-A", "O-1"),
          keys::store_channel("p:", "S-A")}) {
        EXPECT_EQ(keys::hash_tag(k), "s:S-A") << k;
    }
}

TEST(StoreKeys, PresenceAndTimelineKeysAreInTheStoresSlot) {
    EXPECT_EQ(keys::terminal_presence("p:", "S-A", "POS-1"), "p:{s:S-A}:t:POS-1:presence");
    EXPECT_EQ(keys::store_terminals("p:", "S-A"), "p:{s:S-A}:terminals");
    EXPECT_EQ(keys::order_timeline("p:", "S-A", "INV-1"), "p:{s:S-A}:o:INV-1:timeline");
    for (const auto& k :
         {keys::terminal_presence("p:", "S-A", "T"), keys::store_terminals("p:", "S-A"),
          keys::order_timeline("p:", "S-A", "O-1")}) {
        EXPECT_EQ(keys::hash_tag(k), "s:S-A") << k;
    }
}

// The revocations live beside the terminal's other keys: the hello reads both in one MGET.
TEST(StoreKeys, RevocationsShareTheStoresHashTag) {
    EXPECT_EQ(keys::terminal_revocation("posrelay:", "S-A", "POS-1"),
              "posrelay:{s:S-A}:t:POS-1:revoked");
    EXPECT_EQ(keys::store_revocation("posrelay:", "S-A"), "posrelay:{s:S-A}:revoked");
    EXPECT_EQ(keys::hash_tag(keys::terminal_revocation("p:", "S-A", "T")), "s:S-A");
    EXPECT_EQ(keys::hash_tag(keys::store_revocation("p:", "S-A")), "s:S-A");
}

TEST(StoreKeys, AnOrdersRouteAndUnroutedRecordShareItsOwnTag) {
    EXPECT_EQ(keys::unrouted_order("p:", "INV-1"), "p:{o:INV-1}");
    EXPECT_EQ(keys::order_route("p:", "INV-1"), "p:{o:INV-1}:route");
    EXPECT_EQ(keys::hash_tag(keys::order_route("p:", "INV-1")), "o:INV-1");
    EXPECT_EQ(keys::hash_tag(keys::unrouted_order("p:", "INV-1")), "o:INV-1");
}

TEST(StoreKeys, HashTagFollowsRedisClusterRule) {
    struct row {
        const char* key;
        const char* tag;
    };
    for (const auto& r : {row{"a{b}c", "b"}, row{"{}x", "{}x"}, row{"no-tag", "no-tag"},
                          row{"a{b", "a{b"}, row{"{x}{y}", "x"}, row{"a{{b}}", "{b"}}) {
        EXPECT_EQ(keys::hash_tag(r.key), r.tag) << r.key;
    }
}

TEST(RedisVersion, ParsedFromInfo) {
    struct row {
        const char* info;
        std::optional<redis_version> v;
    };
    const row rows[] = {
        {"# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:0\r\n", redis_version{7, 0, 15}},
        {"redis_version:6.2.6\n", redis_version{6, 2, 6}},
        {"redis_version:7.2\r\n", redis_version{7, 2, 0}},
        {"redis_version:abc\r\n", std::nullopt},
        {"redis_version:7\r\n", std::nullopt},
        {"xredis_version:7.0.0\r\n", std::nullopt},
        {"# Server\r\n", std::nullopt},
        {"redis_version:7.0.1.2\r\n", std::nullopt},
    };
    for (const auto& r : rows) {
        const auto v = parse_redis_version(r.info);
        ASSERT_EQ(v.has_value(), r.v.has_value()) << r.info;
        if (v) {
            EXPECT_EQ(*v, *r.v) << r.info;
        }
    }
    EXPECT_LT((redis_version{6, 2, 14}), (redis_version{7, 0, 0}));
    EXPECT_GE((redis_version{7, 0, 15}), (redis_version{7, 0, 0}));
}

}  // namespace
}  // namespace posrelay::store
