// Tests of Redis URL parsing (redis:// and unix://, percent-decoded credentials, bounds) and
// of describe(): neither an error message nor a description ever contains the password.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "posrelay/store/redis_connection.hpp"

using posrelay::store::parse_redis_url;
using posrelay::store::redis_address;
using posrelay::store::redis_options;

namespace {

// The std::invalid_argument message of a parse that must fail ("" if it did not fail).
std::string error_of(std::string_view url) {
    try {
        (void)parse_redis_url(url);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

TEST(RedisUrl, DefaultsForAHostOnly) {
    const redis_options o = parse_redis_url("redis://localhost");
    EXPECT_EQ(o.host, "localhost");
    EXPECT_EQ(o.port, 6379);
    EXPECT_EQ(o.db, 0);
    EXPECT_TRUE(o.unix_path.empty());
    EXPECT_TRUE(o.username.empty());
    EXPECT_TRUE(o.password.empty());
    EXPECT_EQ(o.describe(), "localhost:6379/0");
}

TEST(RedisUrl, PortAndDb) {
    const redis_options o = parse_redis_url("redis://127.0.0.1:7000/2");
    EXPECT_EQ(o.host, "127.0.0.1");
    EXPECT_EQ(o.port, 7000);
    EXPECT_EQ(o.db, 2);
    EXPECT_EQ(o.describe(), "127.0.0.1:7000/2");
    EXPECT_EQ(parse_redis_url("redis://h/").db, 0);
}

TEST(RedisUrl, BracketedIpv6) {
    const redis_options o = parse_redis_url("redis://[::1]:6380/1");
    EXPECT_EQ(o.host, "::1");
    EXPECT_EQ(o.port, 6380);
    EXPECT_EQ(o.describe(), "[::1]:6380/1");
    EXPECT_EQ(parse_redis_url("redis://[fe80::1]").port, 6379);
}

TEST(RedisUrl, PasswordOnlyIsPercentDecoded) {
    const redis_options o = parse_redis_url("redis://:p%40ss%2Fw%3Ard%20x@cache:6390/5");
    EXPECT_TRUE(o.username.empty());
    EXPECT_EQ(o.password.view(), "p@ss/w:rd x");
    EXPECT_EQ(o.host, "cache");
    EXPECT_EQ(o.port, 6390);
    EXPECT_EQ(o.db, 5);
    EXPECT_EQ(o.describe().find("p@ss"), std::string::npos);
}

TEST(RedisUrl, AclUserAndPassword) {
    const redis_options o = parse_redis_url("redis://relay%2Dapp:TopSecret42@10.0.0.7");
    EXPECT_EQ(o.username, "relay-app");
    EXPECT_EQ(o.password.view(), "TopSecret42");
    EXPECT_EQ(o.describe(), "relay-app@10.0.0.7:6379/0");
}

TEST(RedisUrl, UnencodedSlashAndAtInThePasswordStayInThePassword) {
    const redis_options o = parse_redis_url("redis://:pa/ss@wo@h:1/2");
    EXPECT_EQ(o.password.view(), "pa/ss@wo");
    EXPECT_EQ(o.host, "h");
    EXPECT_EQ(o.db, 2);
}

TEST(RedisUrl, UnixSocket) {
    const redis_options o = parse_redis_url("unix:///run/redis/redis.sock");
    EXPECT_EQ(o.unix_path, "/run/redis/redis.sock");
    EXPECT_EQ(o.db, 0);
    EXPECT_EQ(o.describe(), "unix:/run/redis/redis.sock");
    const redis_options d = parse_redis_url("unix:///tmp/r%20x.sock?db=4");
    EXPECT_EQ(d.unix_path, "/tmp/r x.sock");
    EXPECT_EQ(d.db, 4);
    EXPECT_EQ(d.describe(), "unix:/tmp/r x.sock?db=4");
}

TEST(RedisUrl, RejectsMalformedUrls) {
    for (const char* bad : {"",
                            "localhost:6379",
                            "http://h",
                            "redis://",
                            "redis://:6379",
                            "redis://h:",
                            "redis://h:0",
                            "redis://h:65536",
                            "redis://h:6x",
                            "redis://h/x",
                            "redis://h/-1",
                            "redis://h/1?x=2",
                            "redis://[::1",
                            "redis://[::1]x",
                            "unix://",
                            "unix://relative.sock",
                            "unix:///",
                            "unix:///s?foo=1",
                            "unix:///s?db=x",
                            "rediss://h"}) {
        EXPECT_NE(error_of(bad), "") << bad;
    }
}

TEST(RedisUrl, ErrorsNeverEchoThePassword) {
    for (const char* url : {"redis://SuperSecret42@h",         // no ':' before the password
                            "redis://:SuperSecret42%zz@h",     // bad escape in the password
                            "redis://:SuperSecret42%4@h",      // truncated escape
                            "redis://:SuperSecret42@h:99999",  // bad port after the credentials
                            "redis://user:SuperSecret42@h/notadb",  // bad db
                            "redis://:Super/Secret42@:1"}) {        // empty host
        const std::string e = error_of(url);
        EXPECT_NE(e, "") << url;
        EXPECT_EQ(e.find("SuperSecret42"), std::string::npos) << e;
        EXPECT_EQ(e.find("Secret42"), std::string::npos) << e;
    }
    EXPECT_EQ(error_of("redis://user:@h").find("user:"), std::string::npos);
}

TEST(RedisUrl, DescribeNeverContainsThePassword) {
    redis_options o;
    o.password = posrelay::secret("hunter2");
    EXPECT_EQ(o.describe(), "127.0.0.1:6379/0");
    o.unix_path = "/s.sock";
    o.db = 3;
    EXPECT_EQ(o.describe(), "unix:/s.sock?db=3");
}

TEST(SentinelUrl, SentinelsInOrderWithDefaultPortAndTheMasterName) {
    const auto o = parse_redis_url("redis-sentinel://s1,10.0.0.2:26380,[::1]/mymaster");
    ASSERT_EQ(o.sentinels.size(), 3u);
    EXPECT_EQ(o.sentinels[0], (redis_address{"s1", 26379}));
    EXPECT_EQ(o.sentinels[1], (redis_address{"10.0.0.2", 26380}));
    EXPECT_EQ(o.sentinels[2], (redis_address{"::1", 26379}));
    EXPECT_EQ(o.master_name, "mymaster");
    EXPECT_TRUE(o.password.empty());
    EXPECT_EQ(o.db, 0);
    EXPECT_EQ(o.describe(), "sentinel:s1:26379,10.0.0.2:26380,[::1]:26379/mymaster");
}

TEST(SentinelUrl, CredentialsAreTheMastersAndNeverDescribed) {
    const auto o = parse_redis_url("redis-sentinel://app:s%40cret,x@h1:1,h2:2/m");
    EXPECT_EQ(o.username, "app");
    EXPECT_EQ(o.password.view(), "s@cret,x");
    EXPECT_TRUE(o.sentinel_password.empty());  // never from the URL
    ASSERT_EQ(o.sentinels.size(), 2u);
    EXPECT_EQ(o.describe(), "sentinel:app@h1:1,h2:2/m");
    EXPECT_EQ(o.describe().find("cret"), std::string::npos);
}

TEST(SentinelUrl, RejectsMalformed) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"redis-sentinel://h1:26379", "MASTER_NAME"},
        {"redis-sentinel://h1/", "empty master name"},
        {"redis-sentinel:///m", "empty host"},
        {"redis-sentinel://h1,,h2/m", "empty host"},
        {"redis-sentinel://h1,/m", "empty host"},
        {"redis-sentinel://h1:0/m", "port"},
        {"redis-sentinel://h1:99999/m", "port"},
        {"redis-sentinel://h1:/m", "empty port"},
        {"redis-sentinel://h1/m/x", "master name"},
        {"redis-sentinel://h1/m?db=1", "master name"},
        {"redis-sentinel://h1/my master", "master name"},
        {"redis-sentinel://" + std::string(300, 'a') + "/m", ""},  // a long host is fine
        {"redis-sentinel://h1/" + std::string(257, 'm'), "longer than 256"},
    };
    for (const auto& [url, want] : cases) {
        const std::string e = error_of(url);
        if (want.empty()) {
            EXPECT_EQ(e, "") << url;
        } else {
            EXPECT_NE(e.find(want), std::string::npos) << url << " -> " << e;
        }
    }
    std::string many = "redis-sentinel://";
    for (int i = 0; i < 33; ++i)
        many += (i ? ",h" : "h") + std::to_string(i);
    EXPECT_NE(error_of(many + "/m").find("more than 32"), std::string::npos);
}

TEST(SentinelUrl, ErrorsNeverEchoThePassword) {
    for (const char* url : {"redis-sentinel://:hunter2@h1:0/m", "redis-sentinel://:hunter2@/m",
                            "redis-sentinel://u:hunter2@h1"}) {
        const std::string e = error_of(url);
        EXPECT_FALSE(e.empty()) << url;
        EXPECT_EQ(e.find("hunter2"), std::string::npos) << e;
    }
}

}  // namespace

TEST(RedisUrl, ClusterSeeds) {
    const redis_options o =
        parse_redis_url("redis-cluster://10.0.0.1:7000,10.0.0.2:7001,[::1]:7002");
    EXPECT_EQ(o.host, "10.0.0.1");  // the first seed: where a plain connection goes
    EXPECT_EQ(o.port, 7000);
    EXPECT_EQ(o.db, 0);
    ASSERT_EQ(o.cluster_seeds.size(), 3U);
    EXPECT_EQ(o.cluster_seeds[0], "10.0.0.1:7000");
    EXPECT_EQ(o.cluster_seeds[1], "10.0.0.2:7001");
    EXPECT_EQ(o.cluster_seeds[2], "[::1]:7002");
    EXPECT_EQ(o.describe(), "cluster:10.0.0.1:7000,10.0.0.2:7001,[::1]:7002");
    EXPECT_EQ(parse_redis_url("redis-cluster://h:7000/0").cluster_seeds.size(), 1U);
    EXPECT_EQ(parse_redis_url("redis-cluster://h").port, 6379);
    EXPECT_TRUE(parse_redis_url("redis://h:7000").cluster_seeds.empty());
}

TEST(RedisUrl, ClusterAuthAsForRedis) {
    const redis_options o = parse_redis_url("redis-cluster://app:p%40ss,w@rd@a:7000,b:7001");
    EXPECT_EQ(o.username, "app");
    EXPECT_EQ(o.password.view(), "p@ss,w@rd");  // split at the last '@': commas stay in it
    ASSERT_EQ(o.cluster_seeds.size(), 2U);
    EXPECT_EQ(o.describe(), "cluster:app@a:7000,b:7001");
    EXPECT_EQ(o.describe().find("p@ss"), std::string::npos);
}

TEST(RedisUrl, ClusterRefusesAnotherDbAndBadSeeds) {
    EXPECT_NE(error_of("redis-cluster://h:7000/1").find("db 0"), std::string::npos);
    EXPECT_NE(error_of("redis-cluster://h:7000,,h2:7001"), "");
    EXPECT_NE(error_of("redis-cluster://h:7000,h2:"), "");
    EXPECT_NE(error_of("redis-cluster://h:99999"), "");
    EXPECT_NE(error_of("redis-cluster://"), "");
    std::string many = "redis-cluster://h:1";
    for (int i = 0; i < 64; ++i)
        many += ",h:1";
    EXPECT_NE(error_of(many).find("64"), std::string::npos);
}

TEST(RedisUrl, ClusterErrorsNeverEchoThePassword) {
    for (const char* url :
         {"redis-cluster://:SuperSecret42@h:7000/3", "redis-cluster://:SuperSecret42@h:7000,h2:bad",
          "redis-cluster://:SuperSecret42%zz@h:7000"}) {
        const std::string e = error_of(url);
        EXPECT_NE(e, "") << url;
        EXPECT_EQ(e.find("SuperSecret42"), std::string::npos) << e;
    }
}
