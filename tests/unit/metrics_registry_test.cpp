// Tests of the metrics registry: exact text rendering, sharded updates from several
// threads, histogram buckets, escaping, registration rules, and promtool's verdict.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "posrelay/metrics/registry.hpp"

namespace pm = posrelay::metrics;

namespace {

TEST(MetricsRegistry, RendersExactText) {
    pm::registry r;
    auto& ok = r.add_counter("posrelay_requests_total", "Requests served.", {{"code", "200"}});
    auto& failed = r.add_counter("posrelay_requests_total", "Requests served.", {{"code", "500"}});
    auto& conns = r.add_gauge("posrelay_connections", "Open connections.");
    auto& latency = r.add_histogram("posrelay_latency_seconds", "Request latency.", {0.005, 0.1, 1},
                                    {{"route", "/notify"}, {"method", "POST"}});
    r.add_gauge_fn("posrelay_queue_depth", "Queue depth.", {}, [] { return 2.5; });
    r.add_counter_fn("posrelay_work_seconds_total", "Work done.", {}, [] { return 3.0; });

    ok.inc();
    ok.inc(2);
    failed.inc();
    conns.set(7);
    conns.sub(11);
    latency.observe(0.001);
    latency.observe(0.05);
    latency.observe(0.05);
    latency.observe(7);

    EXPECT_EQ(r.render(),
              "# HELP posrelay_requests_total Requests served.\n"
              "# TYPE posrelay_requests_total counter\n"
              "posrelay_requests_total{code=\"200\"} 3\n"
              "posrelay_requests_total{code=\"500\"} 1\n"
              "# HELP posrelay_connections Open connections.\n"
              "# TYPE posrelay_connections gauge\n"
              "posrelay_connections -4\n"
              "# HELP posrelay_latency_seconds Request latency.\n"
              "# TYPE posrelay_latency_seconds histogram\n"
              "posrelay_latency_seconds_bucket{route=\"/notify\",method=\"POST\",le=\"0.005\"} 1\n"
              "posrelay_latency_seconds_bucket{route=\"/notify\",method=\"POST\",le=\"0.1\"} 3\n"
              "posrelay_latency_seconds_bucket{route=\"/notify\",method=\"POST\",le=\"1\"} 3\n"
              "posrelay_latency_seconds_bucket{route=\"/notify\",method=\"POST\",le=\"+Inf\"} 4\n"
              "posrelay_latency_seconds_sum{route=\"/notify\",method=\"POST\"} 7.101\n"
              "posrelay_latency_seconds_count{route=\"/notify\",method=\"POST\"} 4\n"
              "# HELP posrelay_queue_depth Queue depth.\n"
              "# TYPE posrelay_queue_depth gauge\n"
              "posrelay_queue_depth 2.5\n"
              "# HELP posrelay_work_seconds_total Work done.\n"
              "# TYPE posrelay_work_seconds_total counter\n"
              "posrelay_work_seconds_total 3\n");
}

TEST(MetricsRegistry, ShardedCounterSumsAcrossThreads) {
    pm::registry r;
    auto& c = r.add_counter("posrelay_events_total", "Events.");
    auto& h = r.add_histogram("posrelay_sizes_bytes", "Sizes.", {10, 100});
    constexpr int threads = 12;  // more than max_shards: some threads share a shard
    constexpr int per_thread = 50'000;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&] {
            for (int i = 0; i < per_thread; ++i) {
                c.inc();
                h.observe(i % 2 == 0 ? 5 : 50);
            }
        });
    }
    for (auto& t : pool)
        t.join();
    EXPECT_EQ(c.value(), std::uint64_t{threads} * per_thread);
    const auto snap = h.read();
    EXPECT_EQ(snap.count, std::uint64_t{threads} * per_thread);
    EXPECT_EQ(snap.cumulative[0], std::uint64_t{threads} * per_thread / 2);
    EXPECT_DOUBLE_EQ(snap.sum, threads * (per_thread / 2) * 55.0);
}

TEST(MetricsRegistry, ShardIndexIsStablePerThreadAndInRange) {
    const auto mine = pm::detail::shard_index();
    EXPECT_LT(mine, pm::max_shards);
    EXPECT_EQ(pm::detail::shard_index(), mine);
    std::size_t other = pm::max_shards;
    std::thread([&] { other = pm::detail::shard_index(); }).join();
    EXPECT_LT(other, pm::max_shards);
}

TEST(MetricsRegistry, HistogramBucketsAreCumulative) {
    pm::histogram h({1, 2, 3});
    for (double v : {0.5, 1.0, 1.5, 2.5, 2.9, 3.0, 100.0})
        h.observe(v);
    h.observe(-1);                                        // below every bound, adds 0 to sum
    h.observe(std::numeric_limits<double>::quiet_NaN());  // lands in +Inf, adds 0
    const auto snap = h.read();
    EXPECT_EQ(snap.cumulative, (std::vector<std::uint64_t>{3, 4, 7, 9}));
    EXPECT_EQ(snap.count, 9u);
    EXPECT_DOUBLE_EQ(snap.sum, 0.5 + 1.0 + 1.5 + 2.5 + 2.9 + 3.0 + 100.0);
}

TEST(MetricsRegistry, HistogramRefusesBadBounds) {
    EXPECT_THROW(pm::histogram({1, 1}), std::invalid_argument);
    EXPECT_THROW(pm::histogram({2, 1}), std::invalid_argument);
    EXPECT_THROW(pm::histogram({1, std::numeric_limits<double>::infinity()}),
                 std::invalid_argument);
}

TEST(MetricsRegistry, LatencyBucketsRenderAsPrometheusDoes) {
    pm::registry r;
    r.add_histogram("posrelay_wait_seconds", "Wait.", pm::latency_buckets());
    const auto text = r.render();
    std::string les;
    for (std::size_t pos = 0; (pos = text.find("le=\"", pos)) != std::string::npos;) {
        pos += 4;
        les += text.substr(pos, text.find('"', pos) - pos) + " ";
    }
    EXPECT_EQ(les,
              "0.0001 0.00025 0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 "
              "+Inf ");
}

TEST(MetricsRegistry, EscapesLabelValuesAndHelp) {
    EXPECT_EQ(pm::escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    pm::registry r;
    r.add_gauge("posrelay_odd", "Line one\nback\\slash \"quoted\".", {{"path", "C:\\x\n\"y\""}});
    EXPECT_EQ(r.render(),
              "# HELP posrelay_odd Line one\\nback\\\\slash \"quoted\".\n"
              "# TYPE posrelay_odd gauge\n"
              "posrelay_odd{path=\"C:\\\\x\\n\\\"y\\\"\"} 0\n");
}

TEST(MetricsRegistry, RendersSpecialValues) {
    pm::registry r;
    r.add_gauge_fn("posrelay_a", "A.", {{"v", "nan"}}, [] { return std::nan(""); });
    r.add_gauge_fn("posrelay_a", "A.", {{"v", "inf"}},
                   [] { return -std::numeric_limits<double>::infinity(); });
    r.add_gauge_fn("posrelay_a", "A.", {{"v", "big"}}, [] { return 1e20; });
    r.add_gauge_fn("posrelay_a", "A.", {{"v", "third"}}, [] { return 1.0 / 3; });
    EXPECT_EQ(r.render(),
              "# HELP posrelay_a A.\n# TYPE posrelay_a gauge\n"
              "posrelay_a{v=\"nan\"} NaN\n"
              "posrelay_a{v=\"inf\"} -Inf\n"
              "posrelay_a{v=\"big\"} 1e+20\n"
              "posrelay_a{v=\"third\"} 0.3333333333333333\n");
}

TEST(MetricsRegistry, DuplicateRegistrationThrows) {
    pm::registry r;
    r.add_counter("posrelay_x_total", "X.", {{"a", "1"}, {"b", "2"}});
    EXPECT_THROW(r.add_counter("posrelay_x_total", "X.", {{"a", "1"}, {"b", "2"}}),
                 std::logic_error);
    // The same label set in another order is the same series.
    EXPECT_THROW(r.add_counter("posrelay_x_total", "X.", {{"b", "2"}, {"a", "1"}}),
                 std::logic_error);
    EXPECT_NO_THROW(r.add_counter("posrelay_x_total", "X.", {{"a", "1"}, {"b", "3"}}));

    r.add_gauge("posrelay_y", "Y.");
    EXPECT_THROW(r.add_gauge("posrelay_y", "Y."), std::logic_error);
    EXPECT_THROW(r.add_gauge_fn("posrelay_y", "Y.", {{"k", "v"}}, [] { return 1.0; }),
                 std::logic_error);  // another kind under the same name
    EXPECT_THROW(r.add_histogram("posrelay_y", "Y.", {1}, {{"k", "v"}}), std::logic_error);
}

TEST(MetricsRegistry, RefusesNamesPromtoolWouldFlag) {
    pm::registry r;
    EXPECT_THROW(r.add_counter("posrelay_requests", "No _total."), std::logic_error);
    EXPECT_THROW(r.add_gauge("posrelay_open_total", "Gauge with _total."), std::logic_error);
    EXPECT_THROW(r.add_gauge("posrelay_sessions_count", "Reserved suffix."), std::logic_error);
    EXPECT_THROW(r.add_gauge("9lives", "Bad first character."), std::logic_error);
    EXPECT_THROW(r.add_gauge("posrelay-x", "Bad character."), std::logic_error);
    EXPECT_THROW(r.add_gauge("posrelay_z", "Z.", {{"le", "1"}}), std::logic_error);
    EXPECT_THROW(r.add_gauge("posrelay_z", "Z.", {{"__x", "1"}}), std::logic_error);
    EXPECT_THROW(r.add_gauge("posrelay_z", "Z.", {{"bad-name", "1"}}), std::logic_error);
    EXPECT_THROW(r.add_gauge("posrelay_z", "Z.", {{"a", "1"}, {"a", "2"}}), std::logic_error);
    EXPECT_THROW(r.add_gauge_fn("posrelay_z", "Z.", {}, {}), std::logic_error);
    EXPECT_EQ(r.render(), "");  // nothing half-registered
}

TEST(MetricsRegistry, ProcessMetricsReadProc) {
    pm::registry r;
    pm::add_process_metrics(r);
    const auto text = r.render();
    auto value = [&](const std::string& name) {
        const auto pos = text.find("\n" + name + " ");
        EXPECT_NE(pos, std::string::npos) << name;
        return std::stod(text.substr(pos + name.size() + 2));
    };
    EXPECT_GT(value("process_resident_memory_bytes"), 1024.0);
    EXPECT_GE(value("process_virtual_memory_bytes"), value("process_resident_memory_bytes"));
    EXPECT_GE(value("process_open_fds"), 3.0);
    EXPECT_GE(value("process_max_fds"), value("process_open_fds"));
    EXPECT_GE(value("process_cpu_seconds_total"), 0.0);
    const double now = static_cast<double>(std::time(nullptr));
    EXPECT_NEAR(value("process_start_time_seconds"), now, 3600.0);
    EXPECT_NE(text.find("# TYPE process_cpu_seconds_total counter\n"), std::string::npos);
}

// Runs `promtool check metrics` (lint included) on a registry holding every kind.
TEST(MetricsRegistry, PromtoolAcceptsRenderedText) {
    constexpr const char* promtool = "/usr/bin/promtool";
    if (::access(promtool, X_OK) != 0) GTEST_SKIP() << promtool << " is not installed";

    pm::registry r;
    r.add_counter("posrelay_notifications_total", "Notifications received.", {{"result", "ok"}})
        .inc(5);
    r.add_counter("posrelay_notifications_total", "Notifications received.",
                  {{"result", "bad \"sig\"\\\n"}});
    r.add_gauge("posrelay_terminals", "Connected terminals.").set(-3);
    auto& h = r.add_histogram("posrelay_request_duration_seconds", "Request duration.",
                              pm::latency_buckets(), {{"route", "/notify"}});
    for (double v : {0.00005, 0.003, 0.2, 4.0, 30.0})
        h.observe(v);
    r.add_histogram("posrelay_body_size_bytes", "Body sizes.", {256, 1024, 65536}).observe(700);
    r.add_gauge_fn("posrelay_queue_depth", "Queue depth.", {{"queue", "fanout"}},
                   [] { return 0.125; });
    r.add_counter_fn("posrelay_busy_seconds_total", "Busy time.", {}, [] { return 12.75; });
    pm::add_process_metrics(r);

    const auto text = r.render();
    const std::string file =
        ::testing::TempDir() + "posrelay_metrics_" + std::to_string(::getpid()) + ".prom";
    std::ofstream(file) << text;
    const std::string cmd = std::string(promtool) + " check metrics < " + file + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string output;
    char buf[512];
    while (const auto n = std::fread(buf, 1, sizeof buf, p))
        output.append(buf, n);
    const int status = ::pclose(p);
    std::remove(file.c_str());
    ASSERT_TRUE(WIFEXITED(status)) << output;
    EXPECT_EQ(WEXITSTATUS(status), 0) << "promtool said:\n" << output << "\non:\n" << text;
}

}  // namespace
