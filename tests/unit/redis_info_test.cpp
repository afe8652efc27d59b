// INFO parsing for the embedded Redis's metrics (include/posrelay/store/redis_info.hpp).
#include <gtest/gtest.h>

#include <string>

#include "posrelay/store/redis_info.hpp"

namespace posrelay::store {
namespace {

// An excerpt of a real Redis 7.0 INFO reply.
constexpr std::string_view sample =
    "# Server\r\nredis_version:7.0.15\r\nprocess_id:4242\r\n\r\n"
    "# Memory\r\nused_memory:1089616\r\nused_memory_human:1.04M\r\nused_memory_rss:"
    "7811072\r\nused_memory_peak:1133120\r\n\r\n"
    "# Persistence\r\nloading:0\r\naof_enabled:1\r\naof_rewrite_in_progress:0\r\n"
    "aof_rewrite_scheduled:0\r\naof_current_size:18262\r\naof_base_size:88\r\n";

TEST(RedisInfo, FieldsByExactName) {
    EXPECT_EQ(info_field(sample, "used_memory"), 1089616);
    EXPECT_EQ(info_field(sample, "used_memory_rss"), 7811072);
    EXPECT_EQ(info_field(sample, "aof_current_size"), 18262);
    EXPECT_EQ(info_field(sample, "process_id"), 4242);
    EXPECT_EQ(info_field(sample, "used_memory_human"), std::nullopt);  // "1.04M"
    EXPECT_EQ(info_field(sample, "used"), std::nullopt);               // a prefix only
    EXPECT_EQ(info_field(sample, "memory"), std::nullopt);             // inside a name
    EXPECT_EQ(info_field(sample, "Memory"), std::nullopt);             // a section header
    EXPECT_EQ(info_field(sample, "absent"), std::nullopt);
    EXPECT_EQ(info_field("a:1\nb:-2\n", "b"), -2);  // LF line ends
    EXPECT_EQ(info_field("a:", "a"), std::nullopt);
    EXPECT_EQ(info_field("a:99999999999999999999", "a"), std::nullopt);
    EXPECT_EQ(info_field("", "a"), std::nullopt);
}

TEST(RedisInfo, TheExportedFields) {
    const auto i = parse_redis_info(sample);
    EXPECT_EQ(i.used_memory, 1089616);
    EXPECT_EQ(i.aof_current_size, 18262);
    EXPECT_EQ(i.aof_rewrite_in_progress, 0);
    EXPECT_EQ(i.aof_base_size, 88);
    // AOF off: its fields are absent, the gauges keep their values.
    const auto off = parse_redis_info("# Memory\r\nused_memory:5\r\n# Persistence\r\n");
    EXPECT_EQ(off.used_memory, 5);
    EXPECT_FALSE(off.aof_current_size.has_value());
    EXPECT_FALSE(off.aof_rewrite_in_progress.has_value());
    EXPECT_FALSE(off.aof_base_size.has_value());
}

TEST(RedisInfo, ReplyIsReadWhenComplete) {
    using st = info_reply::state;
    const std::string whole = "$11\r\nused_memory\r\n";
    // Every prefix is incomplete; the whole is complete.
    for (std::size_t n = 0; n < whole.size(); ++n)
        EXPECT_EQ(read_info_reply(whole.substr(0, n), 1024).st, st::incomplete) << n;
    const auto r = read_info_reply(whole, 1024);
    EXPECT_EQ(r.st, st::complete);
    EXPECT_EQ(r.body, "used_memory");
    EXPECT_EQ(read_info_reply("$0\r\n\r\n", 1024).body, "");

    struct bad {
        std::string reply, why;
    } invalid[] = {
        {"-ERR unknown command\r\n", "an error"},
        {"+OK\r\n", "another type"},
        {"$-1\r\n", "a null bulk"},
        {"$abc\r\n", "not a length"},
        {"$\r\n", "no length"},
        {"$2000\r\n", "over the bound"},
        {"$3\r\nabcde", "no CRLF after the body"},
        {"$" + std::string(40, '9'), "a header without end"},
    };
    for (const auto& b : invalid)
        EXPECT_EQ(read_info_reply(b.reply, 1024).st, st::invalid) << b.why;
}

}  // namespace
}  // namespace posrelay::store
