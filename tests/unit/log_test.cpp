// Tests of the JSON-lines logger: exact line layout (timestamp masked), JSON escaping
// including invalid UTF-8, level filtering, and whole lines under concurrent writers.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "posrelay/log.hpp"

namespace lg = posrelay::log;

namespace {

// Sends log output to a temporary file for the duration of a test.
class LogTest : public ::testing::Test {
protected:
    void SetUp() override {
        file_ = std::tmpfile();
        ASSERT_NE(file_, nullptr);
        lg::set_fd(::fileno(file_));
        lg::set_level(lg::level::debug);
    }
    void TearDown() override {
        lg::set_fd(2);
        lg::set_level(lg::level::info);
        if (file_ != nullptr) std::fclose(file_);
    }
    // Everything written so far.
    std::string output() const {
        std::string out;
        char buf[4096];
        off_t offset = 0;
        for (;;) {
            const auto n = ::pread(::fileno(file_), buf, sizeof buf, offset);
            if (n <= 0) break;
            out.append(buf, static_cast<std::size_t>(n));
            offset += n;
        }
        return out;
    }
    // The output with each timestamp replaced by TS; fails if one is not RFC 3339 UTC ms.
    std::string masked() const {
        static const std::regex ts(R"re("ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")re");
        const auto out = output();
        const auto masked_out = std::regex_replace(out, ts, "\"ts\":\"TS\"");
        EXPECT_EQ(std::count(out.begin(), out.end(), '\n'),
                  std::count(masked_out.begin(), masked_out.end(), '\n'));
        return masked_out;
    }
    std::FILE* file_ = nullptr;
};

std::string escaped(std::string_view s) {
    std::string out;
    lg::append_json_escaped(out, s);
    return out;
}

TEST_F(LogTest, WritesOneJsonLinePerCall) {
    lg::line(lg::level::warn, "notification rejected")
        .str("reason", "bad \"signature\"")
        .num("status", 401)
        .num("neg", -9'223'372'036'854'775'807 - 1)
        .dbl("ratio", 0.25)
        .dbl("nan", std::nan(""))
        .dbl("inf", std::numeric_limits<double>::infinity())
        .boolean("retry", false);
    lg::line(lg::level::info, "second");
    EXPECT_EQ(masked(),
              "{\"ts\":\"TS\",\"level\":\"warn\",\"msg\":\"notification rejected\","
              "\"reason\":\"bad \\\"signature\\\"\",\"status\":401,"
              "\"neg\":-9223372036854775808,\"ratio\":0.25,\"nan\":null,\"inf\":null,"
              "\"retry\":false}\n"
              "{\"ts\":\"TS\",\"level\":\"info\",\"msg\":\"second\"}\n");
}

TEST_F(LogTest, TimestampIsCurrentUtc) {
    lg::line(lg::level::info, "now");
    const auto out = output();
    ASSERT_GT(out.size(), 30u);
    const auto ts = out.substr(7, 24);  // after {"ts":"
    std::tm t{};
    ASSERT_NE(::strptime(ts.c_str(), "%Y-%m-%dT%H:%M:%S", &t), nullptr) << ts;
    const auto logged = ::timegm(&t);
    EXPECT_LE(std::abs(logged - std::time(nullptr)), 5) << ts;
    EXPECT_EQ(ts.back(), 'Z');
}

TEST_F(LogTest, EscapesKeysMessagesAndValues) {
    lg::line(lg::level::error, "a\nb\tc\\d").str("k\"ey", std::string("x\0y\x1f", 4));
    EXPECT_EQ(masked(),
              "{\"ts\":\"TS\",\"level\":\"error\",\"msg\":\"a\\nb\\tc\\\\d\","
              "\"k\\\"ey\":\"x\\u0000y\\u001f\"}\n");
}

TEST_F(LogTest, FiltersBelowLevel) {
    lg::set_level(lg::level::warn);
    EXPECT_FALSE(lg::enabled(lg::level::debug));
    EXPECT_FALSE(lg::enabled(lg::level::info));
    EXPECT_TRUE(lg::enabled(lg::level::warn));
    EXPECT_TRUE(lg::enabled(lg::level::error));
    lg::line(lg::level::info, "dropped").str("k", "v");
    lg::line(lg::level::debug, "dropped");
    lg::line(lg::level::error, "kept");
    EXPECT_EQ(masked(), "{\"ts\":\"TS\",\"level\":\"error\",\"msg\":\"kept\"}\n");
}

TEST_F(LogTest, ConcurrentLinesStayWhole) {
    constexpr int threads = 8;
    constexpr int lines = 500;
    const std::string payload(300, 'x');
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            for (int i = 0; i < lines; ++i)
                lg::line(lg::level::info, "m").num("t", t).str("p", payload);
        });
    }
    for (auto& th : pool)
        th.join();
    const auto out = masked();
    const std::regex whole(R"re(\{"ts":"TS","level":"info","msg":"m","t":\d,"p":"x{300}"\})re");
    std::size_t count = 0;
    for (std::size_t pos = 0; pos < out.size();) {
        const auto eol = out.find('\n', pos);
        ASSERT_NE(eol, std::string::npos);
        ASSERT_TRUE(std::regex_match(out.substr(pos, eol - pos), whole));
        ++count;
        pos = eol + 1;
    }
    EXPECT_EQ(count, std::size_t{threads} * lines);
}

TEST(LogLevels, ParseAndName) {
    for (auto l : {lg::level::debug, lg::level::info, lg::level::warn, lg::level::error})
        EXPECT_EQ(lg::parse_level(lg::to_string(l)), l);
    EXPECT_EQ(lg::parse_level("warning"), std::nullopt);
    EXPECT_EQ(lg::parse_level("INFO"), std::nullopt);
    EXPECT_EQ(lg::parse_level(""), std::nullopt);
}

TEST(LogEscape, ControlCharacters) {
    EXPECT_EQ(escaped("\"\\/"), "\\\"\\\\/");
    EXPECT_EQ(escaped("\b\f\n\r\t"), "\\b\\f\\n\\r\\t");
    EXPECT_EQ(escaped(std::string("\x00\x01\x1b\x1f\x7f", 5)),
              "\\u0000\\u0001\\u001b\\u001f\\u007f");
    EXPECT_EQ(escaped("plain ASCII ~"), "plain ASCII ~");
}

TEST(LogEscape, KeepsValidUtf8) {
    EXPECT_EQ(escaped("caf\xC3\xA9"), "caf\xC3\xA9");            // U+00E9
    EXPECT_EQ(escaped("\xE2\x82\xAC"), "\xE2\x82\xAC");          // U+20AC
    EXPECT_EQ(escaped("\xED\x9F\xBF"), "\xED\x9F\xBF");          // U+D7FF, below surrogates
    EXPECT_EQ(escaped("\xEE\x80\x80"), "\xEE\x80\x80");          // U+E000, above them
    EXPECT_EQ(escaped("\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");  // U+1F600
    EXPECT_EQ(escaped("\xF4\x8F\xBF\xBF"), "\xF4\x8F\xBF\xBF");  // U+10FFFF
    EXPECT_EQ(escaped("\xE2\x80\xA8"), "\xE2\x80\xA8");          // U+2028 is valid JSON
}

TEST(LogEscape, ReplacesInvalidUtf8) {
    const std::string r = "\\ufffd";
    EXPECT_EQ(escaped("\x80"), r);  // lone continuation byte
    EXPECT_EQ(escaped("a\xFF"
                      "b"),
              "a" + r + "b");                               // never valid
    EXPECT_EQ(escaped("\xC0\xAF"), r + r);                  // overlong '/', 2 bytes
    EXPECT_EQ(escaped("\xC1\xBF"), r + r);                  // overlong, 2 bytes
    EXPECT_EQ(escaped("\xE0\x80\xAF"), r + r + r);          // overlong, 3 bytes
    EXPECT_EQ(escaped("\xF0\x80\x80\xAF"), r + r + r + r);  // overlong, 4 bytes
    EXPECT_EQ(escaped("\xED\xA0\x80"), r + r + r);          // U+D800, a surrogate
    EXPECT_EQ(escaped("\xED\xBF\xBF"), r + r + r);          // U+DFFF
    EXPECT_EQ(escaped("\xF4\x90\x80\x80"), r + r + r + r);  // above U+10FFFF
    EXPECT_EQ(escaped("\xF5\x80\x80\x80"), r + r + r + r);  // lead byte out of range
    // Truncated sequences: the valid prefix is replaced by a single U+FFFD.
    EXPECT_EQ(escaped("\xC3"), r);
    EXPECT_EQ(escaped("\xE2\x82"), r);
    EXPECT_EQ(escaped("\xF0\x9F\x98"), r);
    EXPECT_EQ(escaped("\xE2\x82"
                      "A"),
              r + "A");
    EXPECT_EQ(escaped("\xF0\x9F\x98\xC3\xA9"), r + "\xC3\xA9");
}

}  // namespace
