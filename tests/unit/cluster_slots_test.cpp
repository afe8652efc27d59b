// Redis Cluster decisions: key slots (checked against redis-server 7.0.15's CLUSTER KEYSLOT),
// the key that routes a command, -MOVED/-ASK, CLUSTER SLOTS replies and slot coverage.
#include "posrelay/store/cluster_slots.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace posrelay::store;
using namespace posrelay::store::cluster;

namespace {

redis_reply str(std::string s) {
    redis_reply r;
    r.type = redis_reply::kind::string;
    r.str = std::move(s);
    return r;
}
redis_reply num(long long v) {
    redis_reply r;
    r.type = redis_reply::kind::integer;
    r.integer = v;
    return r;
}
redis_reply arr(std::vector<redis_reply> e) {
    redis_reply r;
    r.type = redis_reply::kind::array;
    r.elements = std::move(e);
    return r;
}
redis_reply err(std::string s) {
    redis_reply r;
    r.type = redis_reply::kind::error;
    r.str = std::move(s);
    return r;
}

std::optional<std::string> route(std::vector<std::string_view> args) {
    const auto k = command_route_key(redis_args(args));
    return k ? std::optional<std::string>(*k) : std::nullopt;
}

}  // namespace

TEST(ClusterSlots, Crc16XmodemCheckValue) {
    EXPECT_EQ(crc16("123456789"), 0x31C3);  // the CRC16/XMODEM check value
    EXPECT_EQ(crc16(""), 0);
}

// Values from `redis-cli CLUSTER KEYSLOT <key>` on redis-server 7.0.15 (cluster-enabled).
TEST(ClusterSlots, KeyHashSlotMatchesRedis) {
    const struct {
        std::string_view key;
        std::uint16_t slot;
    } table[] = {
        {"", 0},
        {"a", 15495},
        {"foo", 12182},
        {"bar", 5061},
        {"123456789", 12739},
        {"{user1000}.following", 3443},
        {"{user1000}.followers", 3443},
        {"foo{}{bar}", 8363},     // empty first tag: the whole key
        {"foo{{bar}}zap", 4015},  // tag "{bar"
        {"foo{bar}{zap}", 5061},  // the first tag only: "bar"
        {"{}", 15257},
        {"{", 4092},
        {"}", 12090},
        {"{a", 10276},  // no '}': the whole key
        {"a}", 5921},
        {"{a}", 15495},
        {"x{a}y", 15495},
        {"{{}}", 4092},  // tag "{"
        {"{}{a}", 13650},
        {"a{b}c{d}", 3300},
        {"hello world", 15332},
        {"posrelay:o:ORDER-1", 3714},
        {"posrelay:{s:store-7}:o:1", 6988},
        {"{posrelay}:x", 1982},
    };
    for (const auto& row : table)
        EXPECT_EQ(key_hash_slot(row.key), row.slot) << "key '" << row.key << "'";
}

TEST(ClusterSlots, CommandRouteKey) {
    EXPECT_EQ(route({"GET", "k"}), "k");
    EXPECT_EQ(route({"hset", "k", "f", "v"}), "k");
    EXPECT_EQ(route({"SPUBLISH", "chan", "msg"}), "chan");
    EXPECT_EQ(route({"SSUBSCRIBE", "chan"}), "chan");
    EXPECT_EQ(route({"EVALSHA", "abc", "2", "k1", "k2", "argv"}), "k1");
    EXPECT_EQ(route({"eval", "return 1", "1", "k1"}), "k1");
    EXPECT_EQ(route({"FCALL", "f", "1", "k1"}), "k1");
    EXPECT_EQ(route({"EVALSHA", "abc", "0", "argv"}), std::nullopt);
    EXPECT_EQ(route({"EVALSHA", "abc", "x", "k"}), std::nullopt);  // numkeys not a number
    EXPECT_EQ(route({"EVALSHA", "abc", "1"}), std::nullopt);       // numkeys past the end
    EXPECT_EQ(route({"XREAD", "COUNT", "5", "STREAMS", "s1", "s2", "0", "0"}), "s1");
    EXPECT_EQ(route({"XREADGROUP", "GROUP", "g", "c", "streams", "s", ">"}), "s");
    EXPECT_EQ(route({"PING"}), std::nullopt);
    EXPECT_EQ(route({"SCRIPT", "LOAD", "return 1"}), std::nullopt);
    EXPECT_EQ(route({"WAIT", "1", "100"}), std::nullopt);
    EXPECT_EQ(route({"INFO", "replication"}), std::nullopt);
    EXPECT_EQ(route({"cluster", "slots"}), std::nullopt);
    EXPECT_EQ(route({}), std::nullopt);
}

TEST(ClusterSlots, ParseRedirect) {
    const auto moved = parse_redirect(err("MOVED 3999 127.0.0.1:6381"));
    ASSERT_TRUE(moved);
    EXPECT_EQ(moved->type, redirect::kind::moved);
    EXPECT_EQ(moved->slot, 3999);
    EXPECT_EQ(moved->node.host, "127.0.0.1");
    EXPECT_EQ(moved->node.port, 6381);
    const auto ask = parse_redirect(err("ASK 16383 ::1:7000"));
    ASSERT_TRUE(ask);
    EXPECT_EQ(ask->type, redirect::kind::ask);
    EXPECT_EQ(ask->slot, 16383);
    EXPECT_EQ(ask->node.host, "::1");
    EXPECT_EQ(ask->node.name(), "[::1]:7000");
    for (const char* bad : {"MOVED 16384 h:1", "MOVED 1 h", "MOVED 1 h:0", "MOVED x h:1", "MOVED",
                            "ASK 1", "ERR MOVED 1 h:1", "NOSCRIPT x"}) {
        EXPECT_FALSE(parse_redirect(err(bad))) << bad;
    }
    EXPECT_FALSE(parse_redirect(str("MOVED 1 h:1")));  // not an error reply
}

TEST(ClusterSlots, ClassifyError) {
    EXPECT_EQ(classify_error(err("TRYAGAIN Multiple keys request during rehashing of slot")),
              cluster_error::tryagain);
    EXPECT_EQ(classify_error(err("CLUSTERDOWN The cluster is down")), cluster_error::clusterdown);
    EXPECT_EQ(classify_error(err("CROSSSLOT Keys in request don't hash to the same slot")),
              cluster_error::crossslot);
    EXPECT_EQ(classify_error(err("ERR x")), cluster_error::none);
    EXPECT_EQ(classify_error(str("TRYAGAIN")), cluster_error::none);
}

TEST(ClusterSlots, ParseClusterSlots) {
    const node_address me{"10.0.0.9", 7000};
    const auto reply = arr({
        arr({num(0), num(5460), arr({str("127.0.0.1"), num(7000), str("id1")}),
             arr({str("127.0.0.1"), num(7003), str("id4")})}),
        arr({num(5461), num(10922), arr({str(""), num(7001), str("id2")})}),
        arr({num(10923), num(16383), arr({str("127.0.0.1"), num(7000), str("id1")})}),
    });
    const auto m = parse_cluster_slots(reply, me);
    ASSERT_TRUE(m);
    ASSERT_EQ(m->nodes.size(), 2U);  // primaries only, each once
    EXPECT_EQ(m->nodes[0].name(), "127.0.0.1:7000");
    EXPECT_EQ(m->nodes[1].name(), "10.0.0.9:7001");  // "" host: the node that answered
    EXPECT_EQ(m->owner[0], 0);
    EXPECT_EQ(m->owner[5460], 0);
    EXPECT_EQ(m->owner[5461], 1);
    EXPECT_EQ(m->owner[16383], 0);
    EXPECT_EQ(m->assigned(), slot_count);
    EXPECT_EQ(m->node_of("10.0.0.9:7001"), 1U);
    EXPECT_EQ(m->node_of("nope:1"), std::nullopt);
}

TEST(ClusterSlots, ParseClusterSlotsPartialAndMalformed) {
    const node_address me{"h", 1};
    const auto partial =
        parse_cluster_slots(arr({arr({num(100), num(199), arr({str("h"), num(7000)})})}), me);
    ASSERT_TRUE(partial);
    EXPECT_EQ(partial->assigned(), 100U);
    EXPECT_EQ(partial->owner[99], slot_map::no_owner);
    EXPECT_TRUE(parse_cluster_slots(arr({}), me));  // no slot assigned yet
    EXPECT_FALSE(parse_cluster_slots(err("ERR This instance has cluster support disabled"), me));
    EXPECT_FALSE(parse_cluster_slots(arr({arr({num(5), num(4), arr({str("h"), num(1)})})}), me));
    EXPECT_FALSE(
        parse_cluster_slots(arr({arr({num(0), num(16384), arr({str("h"), num(1)})})}), me));
    EXPECT_FALSE(parse_cluster_slots(arr({arr({num(0), num(1), arr({str("h"), num(0)})})}), me));
    EXPECT_FALSE(parse_cluster_slots(arr({arr({num(0), num(1)})}), me));
    EXPECT_FALSE(parse_cluster_slots(arr({arr({num(0), num(1), str("h:1")})}), me));
}

TEST(ClusterSlots, SlotsCoveredCountsConnectedOwners) {
    slot_map m;
    m.nodes = {{"a", 1}, {"b", 2}, {"c", 3}};
    for (std::size_t s = 0; s < slot_count; ++s)
        m.owner[s] = s < 5000 ? 0 : s < 10000 ? 1 : s < 16000 ? 2 : slot_map::no_owner;
    EXPECT_EQ(slots_covered(m, [](std::size_t) { return true; }), 16000U);
    EXPECT_EQ(slots_covered(m, [](std::size_t i) { return i != 1; }), 11000U);
    EXPECT_EQ(slots_covered(m, [](std::size_t) { return false; }), 0U);
    EXPECT_EQ(slots_covered(slot_map{}, [](std::size_t) { return true; }), 0U);
}

TEST(ClusterSlots, InServiceWhenWholeOrDegradedAfterBeingWholeOrAfterTheGrace) {
    struct row {
        std::size_t covered;
        bool whole_once, grace_over, expected;
    };
    const row rows[] = {
        {slot_count, false, false, true},  // every slot: ready at once
        {slot_count, true, true, true},
        {11000, false, false, false},  // still connecting to its shards at startup
        {11000, true, false, true},    // lost a primary after being whole: degraded
        {11000, false, true, true},    // a primary down since startup: degraded after the grace
        {0, true, true, false},        // nothing covered: never
        {0, false, false, false},
    };
    for (const auto& r : rows) {
        EXPECT_EQ(in_service(r.covered, r.whole_once, r.grace_over), r.expected)
            << r.covered << " " << r.whole_once << " " << r.grace_over;
    }
}
