// Tests of Redis URL parsing (redis:// and unix://, percent-decoded credentials, bounds) and
// of describe(): neither an error message nor a description ever contains the password.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "posrelay/store/redis_connection.hpp"

using posrelay::store::parse_redis_url;
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

}  // namespace
