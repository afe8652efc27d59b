// The real posrelay binary on an ephemeral port, spoken to over HTTP: every answer of the
// notification endpoint, limits, timeouts, metrics, health, and graceful shutdown.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <thread>

#include "http_client.hpp"
#include "process.hpp"

namespace posrelay::test {
namespace {

namespace http = boost::beast::http;

class HttpEndpoint : public ::testing::Test {
protected:
    static void SetUpTestSuite() { raise_fd_limit(); }
    void SetUp() override {
        server_ = start_posrelay({"--store", "memory", "--io-threads", "2", "--header-timeout",
                                  "700ms", "--log-level", "info"},
                                 {{"POSRELAY_SERVER_KEY", std::string(test_server_key)}});
    }
    http_client client() { return http_client(server_.port); }
    std::string metrics() { return client().get("/metrics").body(); }

    posrelay_process server_;
};

TEST_F(HttpEndpoint, ValidNotificationIsAccepted) {
    auto c = client();
    const auto res = c.post(notifications_path, signed_notification({}, test_server_key));
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_EQ(res.body(), R"({"status":"accepted"})");
    EXPECT_EQ(res[http::field::content_type], "application/json");
    // A duplicate is acknowledged too (Midtrans must stop retrying), and counted as such.
    EXPECT_EQ(c.post(notifications_path, signed_notification({}, test_server_key)).result_int(),
              200);
    const auto m = metrics();
    EXPECT_EQ(metric_value(m, R"(posrelay_notifications_accepted_total{outcome="new"})"), 1);
    EXPECT_EQ(metric_value(m, R"(posrelay_notifications_accepted_total{outcome="duplicate"})"), 1);
}

TEST_F(HttpEndpoint, BadSignatureIs401AndLoggedWithoutSecrets) {
    notification_fields f;
    f.order_id = "ORD-BADSIG";
    std::string body = signed_notification(f, "SB-Mid-server-WRONGKEY");
    const auto res = client().post(notifications_path, body);
    EXPECT_EQ(res.result_int(), 401);
    EXPECT_NE(res.body().find(R"("error":"bad_signature")"), std::string::npos) << res.body();
    const auto line = server_.proc->wait_for_line(R"("reason":"bad_signature")");
    EXPECT_NE(line.find("ORD-BADSIG"), std::string::npos);
    EXPECT_EQ(server_.proc->output().find(test_server_key), std::string::npos);
    EXPECT_EQ(
        metric_value(metrics(), R"(posrelay_notifications_rejected_total{reason="bad_signature"})"),
        1);
}

TEST_F(HttpEndpoint, MalformedBodiesAre400NamingTheProblem) {
    auto c = client();
    struct bad {
        std::string body, error, field;
    } cases[] = {
        {"{", "malformed_json", ""},
        {"[1,2]", "not_an_object", ""},
        {R"({"status_code":"200"})", "missing_field", "order_id"},
        {R"({"order_id":12,"status_code":"200","gross_amount":"1","signature_key":"x","transaction_status":"settlement"})",
         "wrong_type", "order_id"},
        {std::string("{\"order_id\":\"\xff\"}"), "invalid_utf8", ""},
    };
    for (const auto& b : cases) {
        const auto res = c.post(notifications_path, b.body);
        EXPECT_EQ(res.result_int(), 400) << b.body;
        EXPECT_NE(res.body().find("\"error\":\"" + b.error + "\""), std::string::npos)
            << res.body();
        if (!b.field.empty()) {
            EXPECT_NE(res.body().find("\"field\":\"" + b.field + "\""), std::string::npos)
                << res.body();
        }
    }
    // The connection is kept alive across refusals, and the server still serves.
    EXPECT_EQ(c.post(notifications_path, signed_notification({}, test_server_key)).result_int(),
              200);
}

TEST_F(HttpEndpoint, OversizedBodyIs413) {
    std::string body = R"({"order_id":")" + std::string(70 * 1024, 'x') + R"("})";
    const auto res = client().post(notifications_path, body);
    EXPECT_EQ(res.result_int(), 413);
    EXPECT_NE(res.body().find("body_too_large"), std::string::npos);
    EXPECT_EQ(metric_value(metrics(),
                           R"(posrelay_notifications_rejected_total{reason="body_too_large"})"),
              1);
}

TEST_F(HttpEndpoint, WrongMethodIs405WithAllow) {
    const auto res = client().get(notifications_path);
    EXPECT_EQ(res.result_int(), 405);
    EXPECT_EQ(res[http::field::allow], "POST");
    EXPECT_NE(res.body().find("method_not_allowed"), std::string::npos);
}

TEST_F(HttpEndpoint, WrongContentTypeIs415) {
    const auto res =
        client().post(notifications_path, signed_notification({}, test_server_key), "text/plain");
    EXPECT_EQ(res.result_int(), 415);
    EXPECT_NE(res.body().find("unsupported_media_type"), std::string::npos);
    // With a charset parameter it is still JSON.
    const auto ok = client().post(notifications_path, signed_notification({}, test_server_key),
                                  "application/json; charset=utf-8");
    EXPECT_EQ(ok.result_int(), 200);
}

TEST_F(HttpEndpoint, UnknownPathIs404Json) {
    const auto res = client().get("/nope");
    EXPECT_EQ(res.result_int(), 404);
    EXPECT_NE(res.body().find(R"("error":"not_found")"), std::string::npos);
}

TEST_F(HttpEndpoint, HealthAndReadiness) {
    auto c = client();
    EXPECT_EQ(c.get("/healthz").result_int(), 200);
    const auto r = c.get("/readyz");
    EXPECT_EQ(r.result_int(), 200);
    EXPECT_EQ(r.body(), R"({"status":"ready"})");
}

TEST_F(HttpEndpoint, SlowHeadersAreCutOffByTheHeaderTimeout) {
    http_client c(server_.port);
    const int fd = c.socket().native_handle();
    const std::string head = "POST /v1/midtrans/notifications HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    ASSERT_EQ(::send(fd, head.data(), head.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(head.size()));
    // Trickle one byte each 100 ms; the header would take 60 s. The server must close the
    // connection once --header-timeout (700 ms) has passed: poll tells us when it does.
    const auto start = std::chrono::steady_clock::now();
    bool closed = false;
    for (int i = 0; i < 600 && !closed; ++i) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) > 0) {
            char b[256];
            closed = ::recv(fd, b, sizeof b, 0) <= 0;
            if (closed) break;
        }
        if (::send(fd, "a", 1, MSG_NOSIGNAL) != 1) closed = true;
    }
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_TRUE(closed);
    EXPECT_LT(took, std::chrono::seconds(5));
    EXPECT_GE(took, std::chrono::milliseconds(600));
    // Counted as the server closes: the client may see the close first (wait, bounded).
    EXPECT_TRUE(wait_until(
        [&] {
            return metric_value(metrics(), R"(posrelay_http_timeouts_total{phase="header"})") == 1;
        },
        std::chrono::seconds(5)))
        << metrics();
}

TEST_F(HttpEndpoint, ThousandConcurrentKeepAliveConnections) {
    constexpr int n = 1000;
    std::vector<std::unique_ptr<http_client>> clients;
    // Two rounds on every connection: the second proves each was kept alive. Each connection
    // sends its first request as soon as it is open: a fresh connection has the header
    // timeout (700 ms here) for it, not the idle timeout.
    for (int round = 0; round < 2; ++round) {
        for (int i = 0; i < n; ++i) {
            if (round == 0) clients.push_back(std::make_unique<http_client>(server_.port));
            notification_fields f;
            f.order_id = "ORD-KA-" + std::to_string(i);
            const auto res =
                clients[i]->post(notifications_path, signed_notification(f, test_server_key));
            ASSERT_EQ(res.result_int(), 200) << i;
        }
    }
    const auto m = metrics();
    EXPECT_GE(metric_value(m, "posrelay_http_open_connections"), n);
    EXPECT_EQ(metric_value(m, R"(posrelay_notifications_accepted_total{outcome="new"})"), n);
    EXPECT_EQ(metric_value(m, R"(posrelay_notifications_accepted_total{outcome="duplicate"})"), n);
}

TEST_F(HttpEndpoint, MetricsPassPromtool) {
    // Populate several families first, then check the real output with promtool.
    (void)client().post(notifications_path, signed_notification({}, test_server_key));
    (void)client().post(notifications_path, "{");
    (void)client().get("/nope");
    const auto res = client().get("/metrics");
    ASSERT_EQ(res.result_int(), 200);
    EXPECT_NE(res[http::field::content_type].find("text/plain; version=0.0.4"), std::string::npos);
    const std::string& m = res.body();
    for (const char* family :
         {"posrelay_http_requests_total", "posrelay_http_request_duration_seconds_bucket",
          "posrelay_notifications_accepted_total", "posrelay_notifications_rejected_total",
          "posrelay_http_open_connections", "posrelay_build_info",
          "process_resident_memory_bytes"}) {
        EXPECT_NE(m.find(family), std::string::npos) << family;
    }
    EXPECT_EQ(metric_value(m, R"(posrelay_http_requests_total{route="notifications",code="200"})"),
              1);
    EXPECT_EQ(metric_value(m, R"(posrelay_http_requests_total{route="notifications",code="400"})"),
              1);
    if (::access("/usr/bin/promtool", X_OK) != 0) GTEST_SKIP() << "promtool not installed";
    const std::string path = ::testing::TempDir() + "posrelay-metrics.txt";
    std::ofstream(path) << m;
    const auto r = run_command("/bin/sh", {"-c", "promtool check metrics < " + path});
    EXPECT_EQ(r.code, 0) << r.output;
}

TEST_F(HttpEndpoint, SigtermDuringLoadFinishesInFlightAndExitsZero) {
    constexpr int threads = 8;
    std::atomic<int> ok{0}, bad{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> load;
    for (int t = 0; t < threads; ++t) {
        load.emplace_back([&, t] {
            // Bounded: at most 20,000 requests a thread, until the server closes.
            try {
                http_client c(server_.port);
                for (int i = 0; i < 20000 && !stop.load(); ++i) {
                    notification_fields f;
                    f.order_id = "ORD-T" + std::to_string(t) + "-" + std::to_string(i);
                    const auto res =
                        c.post(notifications_path, signed_notification(f, test_server_key));
                    (res.result_int() == 200 && res.body() == R"({"status":"accepted"})" ? ok
                                                                                         : bad)++;
                    if (!res.keep_alive())
                        break;  // the server is draining: it said Connection: close
                }
            } catch (const std::exception&) {
                // connection closed by the shutdown between requests: expected
            }
        });
    }
    // Wait (bounded) until the load is really running, then ask for a graceful stop.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (ok.load() < 500 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::yield();
    ASSERT_GE(ok.load(), 500);
    server_.proc->signal(SIGTERM);
    const auto code = server_.proc->wait_exit(std::chrono::seconds(15));
    stop = true;
    for (auto& t : load)
        t.join();
    ASSERT_TRUE(code.has_value()) << "posrelay did not exit within 15 s of SIGTERM";
    EXPECT_EQ(*code, 0);
    EXPECT_EQ(bad.load(), 0);
    EXPECT_NE(server_.proc->output().find(R"("msg":"stopped")"), std::string::npos);
    // Nothing accepts on the port any more.
    EXPECT_THROW(http_client c(server_.port), boost::system::system_error);
}

TEST(Cli, VersionHelpAndInvalidConfig) {
    const auto v = run_command(POSRELAY_BINARY, {"--version"});
    EXPECT_EQ(v.code, 0);
    EXPECT_EQ(v.output.rfind("posrelay ", 0), 0u) << v.output;

    const auto h = run_command(POSRELAY_BINARY, {"--help"});
    EXPECT_EQ(h.code, 0);
    for (const char* opt : {"--listen", "--io-threads", "--header-timeout", "--max-body-bytes",
                            "--log-level", "--server-key-file", "--shutdown-timeout"}) {
        EXPECT_NE(h.output.find(opt), std::string::npos) << opt;
    }

    const auto bad = run_command(POSRELAY_BINARY, {"--io-threads", "many"});
    EXPECT_NE(bad.code, 0);
    EXPECT_NE(bad.output.find("--io-threads"), std::string::npos) << bad.output;

    // A key passed on the command line is refused without being echoed.
    const auto secret = run_command(POSRELAY_BINARY, {"--server-key=SB-Mid-server-SECRET123"});
    EXPECT_NE(secret.code, 0);
    EXPECT_EQ(secret.output.find("SECRET123"), std::string::npos) << secret.output;
}

}  // namespace
}  // namespace posrelay::test
