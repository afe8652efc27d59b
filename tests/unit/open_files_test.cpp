// The open-files check (include/posrelay/metrics/open_files.hpp): descriptors the configured
// connection limits need, and the gauge and warning at start.
#include <gtest/gtest.h>

#include "posrelay/log.hpp"
#include "posrelay/metrics/config_limits.hpp"
#include "posrelay/metrics/open_files.hpp"

namespace posrelay::metrics {
namespace {

TEST(OpenFiles, NeedIsEveryConnectionLimitPlusTheReserve) {
    struct row {
        const char* what;
        fd_demand d;
        std::uint64_t needed;
    } rows[] = {
        // 64 fixed + 8 per io thread, then the connections.
        {"nothing on", {.io_threads = 1}, 72},
        {"http only (store memory)", {.http_connections = 10'000, .io_threads = 2}, 10'080},
        {"admin listener",
         {.http_connections = 100, .admin_connections = 64, .io_threads = 1},
         236},
        {"terminals",
         {.http_connections = 10'000, .terminal_connections = 30'000, .io_threads = 1},
         40'072},
        // Midtrans: the calls in flight plus 16 kept-alive connections per io thread.
        {"midtrans", {.midtrans_calls = 512, .io_threads = 2}, 64 + 16 + 512 + 32},
        {"defaults, everything on, 4 threads",
         {.http_connections = 10'000,
          .admin_connections = 64,
          .terminal_connections = 20'000,
          .midtrans_calls = 512,
          .io_threads = 4},
         64 + 32 + 10'000 + 64 + 20'000 + 512 + 64},
    };
    for (const auto& r : rows)
        EXPECT_EQ(open_files_needed(r.d), r.needed) << r.what;
}

TEST(OpenFiles, GaugeAlwaysWarningOnlyBelowTheNeed) {
    const fd_demand d{.http_connections = 100, .terminal_connections = 30'000, .io_threads = 1};
    const std::uint64_t needed = open_files_needed(d);
    log::set_level(log::level::error);  // the warning itself is checked by the integration test
    registry low;
    EXPECT_EQ(check_open_files(low, d, 1024), needed);
    EXPECT_NE(low.render().find("posrelay_open_files_needed " + std::to_string(needed) + "\n"),
              std::string::npos);
    registry enough;
    EXPECT_EQ(check_open_files(enough, d, needed), needed);
    log::set_level(log::level::info);
}

TEST(OpenFiles, LimitOfThisProcessIsPositive) {
    EXPECT_GT(open_files_limit(), 0u);
}

// The limits alert rules divide by, under the agreed option labels.
TEST(ConfigLimits, ExportsTheConfiguredLimitsByOptionName) {
    config c;
    c.max_connections = 123;
    c.terminal_max_connections = 30'000;
    c.midtrans_max_inflight = 7;
    c.poll_concurrency = 9;
    c.max_body_bytes = 4096;
    const auto limits = config_limits(c);
    auto value = [&](std::string_view option) -> std::int64_t {
        for (const auto& [o, v] : limits)
            if (o == option) return v;
        return -1;
    };
    EXPECT_EQ(value("max_connections"), 123);
    EXPECT_EQ(value("terminal_max_connections"), 30'000);
    EXPECT_EQ(value("midtrans_max_inflight"), 7);
    EXPECT_EQ(value("poll_concurrency"), 9);
    EXPECT_EQ(value("max_body_bytes"), 4096);
    EXPECT_EQ(value("poll_rate"), 10);
    EXPECT_EQ(value("admin_max_connections"), 64);
    EXPECT_EQ(value("terminal_send_queue_bytes"), 1024 * 1024);
    registry reg;
    add_config_limits(reg, c);
    const auto text = reg.render();
    EXPECT_NE(text.find("# TYPE posrelay_config_limit gauge"), std::string::npos);
    EXPECT_NE(text.find(R"(posrelay_config_limit{option="terminal_max_connections"} 30000)"),
              std::string::npos)
        << text;
}

}  // namespace
}  // namespace posrelay::metrics
