// The metrics production alerts need (issue 15), read from a running node: the configured
// limits, events sent to terminals and not yet acknowledged, the embedded Redis's memory and
// AOF, and the open-files check under a low RLIMIT_NOFILE.
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "http_client.hpp"
#include "posrelay/metrics/open_files.hpp"
#include "process.hpp"
#include "redis_server.hpp"
#include "terminal_conn.hpp"

namespace posrelay::test {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

double scrape(unsigned short port, std::string_view series) {
    return metric_value(http_client(port).get("/metrics").body(), series);
}

// A fresh directory under /tmp (a unix socket path must stay short), removed at the end.
class temp_dir {
public:
    temp_dir() {
        char templ[] = "/tmp/posrelay-ops-XXXXXX";
        if (::mkdtemp(templ) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = templ;
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    [[nodiscard]] const std::string& path() const { return path_; }

private:
    std::string path_;
};

TEST(OpsMetrics, LimitsUnackedEventsAndTheEmbeddedRedis) {
    temp_dir dir;
    const std::map<std::string, std::string> env = {
        {"POSRELAY_SERVER_KEY", std::string(test_server_key)},
        {"POSRELAY_OPERATOR_TOKEN", std::string(test_operator_token)},
        {"POSRELAY_TERMINAL_SECRET", std::string(test_terminal_secret)}};
    auto n = start_relay_node(
        {"--data-dir", dir.path(), "--io-threads", "1", "--terminal-listen", "127.0.0.1:0",
         "--confirm-paid", "false", "--admin-listen", "127.0.0.1:0", "--terminal-max-connections",
         "5000", "--poll-concurrency", "7", "--midtrans-url", "http://127.0.0.1:1"},
        env);
    const unsigned short admin = n.p.admin_port;
    const auto m = http_client(admin).get("/metrics").body();
    // The limits as configured, and the descriptors they need.
    EXPECT_EQ(metric_value(m, R"(posrelay_config_limit{option="terminal_max_connections"})"), 5000);
    EXPECT_EQ(metric_value(m, R"(posrelay_config_limit{option="poll_concurrency"})"), 7);
    EXPECT_EQ(metric_value(m, R"(posrelay_config_limit{option="max_connections"})"), 10000);
    EXPECT_EQ(metric_value(m, R"(posrelay_config_limit{option="midtrans_max_inflight"})"), 512);
    EXPECT_EQ(metric_value(m, R"(posrelay_config_limit{option="max_body_bytes"})"), 65536);
    const auto needed = metrics::open_files_needed({.http_connections = 10000,
                                                    .admin_connections = 64,
                                                    .terminal_connections = 5000,
                                                    .midtrans_calls = 512,
                                                    .io_threads = 1});
    EXPECT_EQ(metric_value(m, "posrelay_open_files_needed"), static_cast<double>(needed));
    // The embedded Redis, sampled once at start.
    EXPECT_GT(metric_value(m, "posrelay_embedded_redis_memory_bytes"), 100'000) << m;
    EXPECT_EQ(metric_value(m, "posrelay_embedded_redis_aof_rewrite_in_progress"), 0);
    const double aof_at_start = metric_value(m, "posrelay_embedded_redis_aof_bytes");
    EXPECT_GE(aof_at_start, 0);

    // Unacked: 1 while the terminal holds an event, 0 after its ack.
    const auto unacked = [&] { return scrape(admin, "posrelay_terminal_events_unacked"); };
    {
        terminal_conn t(n.terminal_port);
        t.hello("T-1", "S-1");
        EXPECT_EQ(unacked(), 0);
        ASSERT_EQ(register_order(admin, "UA-1", "T-1", "S-1"), 201);
        ASSERT_EQ(notify(n.p.port, "UA-1"), 200);
        const auto ev = t.next_event();
        ASSERT_TRUE(ev.has_value());
        EXPECT_TRUE(wait_until([&] { return unacked() == 1; }, seconds(5))) << unacked();
        t.ack(static_cast<std::uint64_t>(ev->at("seq").as_int64()));
        EXPECT_TRUE(wait_until([&] { return unacked() == 0; }, seconds(5))) << unacked();
        // Another event, never acked: the connection's share goes when it closes.
        ASSERT_EQ(register_order(admin, "UA-2", "T-1", "S-1"), 201);
        ASSERT_EQ(notify(n.p.port, "UA-2"), 200);
        ASSERT_TRUE(t.next_event().has_value());
        EXPECT_TRUE(wait_until([&] { return unacked() == 1; }, seconds(5))) << unacked();
    }
    EXPECT_TRUE(wait_until([&] { return unacked() == 0; }, seconds(5))) << unacked();

    // The commits grew the AOF; the next sample (every 5 s) shows it.
    EXPECT_TRUE(wait_until(
        [&] { return scrape(admin, "posrelay_embedded_redis_aof_bytes") > aof_at_start; },
        seconds(15)))
        << aof_at_start;
}

// posrelay run under `prlimit --nofile=1024:1024` (soft and hard limit 1,024, as systemd's
// default soft limit) against `redis`, with terminals.
std::unique_ptr<child_process> start_limited(const redis_server& redis,
                                             std::string terminal_max_connections) {
    std::vector<std::string> args = {"--nofile=1024:1024",
                                     POSRELAY_BINARY,
                                     "--listen",
                                     "127.0.0.1:0",
                                     "--io-threads",
                                     "1",
                                     "--max-connections",
                                     "100",
                                     "--terminal-listen",
                                     "127.0.0.1:0",
                                     "--confirm-paid",
                                     "false",
                                     "--terminal-max-connections",
                                     std::move(terminal_max_connections)};
    return std::make_unique<child_process>("/usr/bin/prlimit", std::move(args),
                                           relay_env(redis.url()));
}

// Needs: 64 + 8 (one io thread) + 100 HTTP + terminals + 512 + 16 (Midtrans, the server key
// is set).
TEST(OpenFiles, WarnsWhenTheLimitIsBelowWhatTheConnectionLimitsNeed) {
    if (::access("/usr/bin/prlimit", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/prlimit";
    redis_server redis;
    redis.start();
    auto p = start_limited(redis, "30000");
    const auto warning = p->wait_for_line("open files limit below");
    EXPECT_EQ(json_int(warning, "limit"), 1024);
    EXPECT_EQ(json_int(warning, "needed"), 30'700);
    EXPECT_NE(warning.find("LimitNOFILE="), std::string::npos) << warning;
    EXPECT_NE(warning.find("ulimit -n"), std::string::npos) << warning;
    EXPECT_NE(warning.find(R"("level":"warn")"), std::string::npos) << warning;
    const auto port = static_cast<unsigned short>(
        json_int(p->wait_for_line(R"("msg":"listening","what":"http")"), "port"));
    const auto m = http_client(port).get("/metrics").body();
    EXPECT_EQ(metric_value(m, "posrelay_open_files_needed"), 30'700);
    EXPECT_EQ(metric_value(m, "process_max_fds"), 1024);

    // Enough descriptors: no warning (it would come before "listening").
    auto fine = start_limited(redis, "100");
    const auto fine_port = static_cast<unsigned short>(
        json_int(fine->wait_for_line(R"("msg":"listening","what":"http")"), "port"));
    EXPECT_EQ(fine->output().find("open files limit"), std::string::npos) << fine->output();
    EXPECT_EQ(scrape(fine_port, "posrelay_open_files_needed"), 800);
}

}  // namespace
}  // namespace posrelay::test
