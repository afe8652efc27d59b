// --admin-listen end to end: metrics, health, readiness and the operator API only on the admin
// listener; notifications, the terminal WebSocket and QR images only on the main one; one
// listener for everything without it; the admin listener's own connection limit.
#include <gtest/gtest.h>
#include <poll.h>

#include <boost/beast/websocket.hpp>

#include <string>

#include "http_client.hpp"
#include "process.hpp"
#include "redis_server.hpp"
#include "terminal_conn.hpp"

namespace posrelay::test {
namespace {

namespace http = boost::beast::http;
namespace asio = boost::asio;
using std::chrono::milliseconds;
using std::chrono::seconds;

const std::map<std::string, std::string> operator_auth = {
    {"Authorization", "Bearer " + std::string(test_operator_token)}};

int status_of(unsigned short port, http::verb method, std::string_view target,
              std::string body = {}) {
    return http_client(port)
        .request(method, target, std::move(body), "application/json", operator_auth)
        .result_int();
}

// True when a WebSocket handshake for the terminal path succeeds on `port`.
bool websocket_upgrades(unsigned short port) {
    asio::io_context ioc;
    boost::beast::websocket::stream<asio::ip::tcp::socket> ws(ioc);
    ws.next_layer().connect({asio::ip::make_address("127.0.0.1"), port});
    boost::system::error_code ec;
    ws.handshake("127.0.0.1", "/v1/terminal", ec);
    return !ec;
}

class AdminListener : public ::testing::Test {
protected:
    void SetUp() override { redis_.start(); }
    // A node with terminals and terminal charges (hence the QR route): Midtrans is a closed
    // loopback port, never reached by these tests.
    relay_node start(std::vector<std::string> extra) {
        std::vector<std::string> args = {"--io-threads",      "1",
                                         "--terminal-listen", "127.0.0.1:0",
                                         "--confirm-paid",    "false",
                                         "--public-url",      "https://relay.example",
                                         "--midtrans-url",    "http://127.0.0.1:1"};
        args.insert(args.end(), extra.begin(), extra.end());
        return start_relay_node(std::move(args), relay_env(redis_.url()));
    }
    redis_server redis_;
};

TEST_F(AdminListener, SplitsTheRoutesBetweenTheTwoListeners) {
    const auto n = start({"--admin-listen", "127.0.0.1:0"});
    const unsigned short main = n.p.port;
    const unsigned short admin = n.p.admin_port;
    ASSERT_NE(main, admin);
    n.p.proc->wait_for_line(R"("msg":"listening","what":"admin","address":"127.0.0.1")");

    // Metrics, health, readiness and the operator API: admin only; 404 JSON on the main one.
    for (const char* path : {"/metrics", "/healthz", "/readyz", "/v1/orders/ADM-1"}) {
        const auto res = http_client(main).get(path);
        EXPECT_EQ(res.result_int(), 404) << path;
        EXPECT_EQ(res.body(),
                  R"({"status":"rejected","error":"not_found","message":"no such endpoint"})")
            << path;
        EXPECT_EQ(res[http::field::content_type], "application/json") << path;
    }
    EXPECT_EQ(status_of(main, http::verb::post, "/v1/orders", R"({"order_id":"ADM-1"})"), 404);
    EXPECT_EQ(http_client(admin).get("/metrics").result_int(), 200);
    EXPECT_EQ(http_client(admin).get("/healthz").result_int(), 200);
    EXPECT_EQ(http_client(admin).get("/readyz").result_int(), 200);
    EXPECT_EQ(register_order(admin, "ADM-1", "T-1", "S-1"), 201);
    EXPECT_EQ(status_of(admin, http::verb::get, "/v1/orders/ADM-1"), 200);

    // Notifications, the terminal WebSocket and QR images: main only.
    EXPECT_EQ(notify(main, "ADM-1"), 200);
    EXPECT_EQ(notify(admin, "ADM-1"), 404);
    EXPECT_TRUE(websocket_upgrades(main));
    EXPECT_FALSE(websocket_upgrades(admin));
    // The QR route answers on the main listener (401: no terminal token), not on the admin one.
    const auto qr = http_client(main).get("/v1/orders/ADM-1/qr.png");
    EXPECT_EQ(qr.result_int(), 401);
    EXPECT_NE(qr.body().find(R"("error":"unauthorized")"), std::string::npos) << qr.body();

    // Counted under their own route names, on the admin listener's metrics: the main
    // listener's unmatched requests, its QR route (the operator's order path there too), and
    // the admin listener's unmatched (the notification and the WebSocket upgrade).
    const auto m = http_client(admin).get("/metrics").body();
    EXPECT_EQ(metric_value(m, R"(posrelay_http_requests_total{route="unmatched",code="404"})"), 4);
    EXPECT_EQ(metric_value(m, R"(posrelay_http_requests_total{route="qr",code="404"})"), 1);
    EXPECT_EQ(metric_value(m, R"(posrelay_http_requests_total{route="qr",code="401"})"), 1);
    EXPECT_EQ(
        metric_value(m, R"(posrelay_http_requests_total{route="admin_unmatched",code="404"})"), 2);
    EXPECT_GE(metric_value(m, "posrelay_admin_http_connections_accepted_total"), 4);
    EXPECT_EQ(metric_value(m, R"(posrelay_config_limit{option="admin_max_connections"})"), 64);
}

TEST_F(AdminListener, WithoutItOneListenerServesEverything) {
    const auto n = start({});
    const unsigned short port = n.p.port;
    EXPECT_EQ(n.p.admin_port, port);
    EXPECT_EQ(n.p.proc->output().find(R"("what":"admin")"), std::string::npos);
    EXPECT_EQ(http_client(port).get("/metrics").result_int(), 200);
    EXPECT_EQ(http_client(port).get("/healthz").result_int(), 200);
    EXPECT_EQ(http_client(port).get("/readyz").result_int(), 200);
    EXPECT_EQ(register_order(port, "ONE-1", "T-1", "S-1"), 201);
    EXPECT_EQ(status_of(port, http::verb::get, "/v1/orders/ONE-1"), 200);
    EXPECT_EQ(notify(port, "ONE-1"), 200);
    EXPECT_TRUE(websocket_upgrades(port));
    EXPECT_EQ(http_client(port).get("/v1/orders/ONE-1/qr.png").result_int(), 401);
    const auto m = http_client(port).get("/metrics").body();
    EXPECT_EQ(metric_value(m, "posrelay_admin_http_open_connections"), -1);  // no such series
    EXPECT_EQ(metric_value(m, R"(posrelay_http_requests_total{route="orders",code="401"})"), 1);
}

// The admin listener has its own small limit: past it, connections are closed at once and
// counted; the main listener is not affected.
TEST_F(AdminListener, HasItsOwnConnectionLimit) {
    const auto n = start({"--admin-listen", "127.0.0.1:0", "--admin-max-connections", "1"});
    http_client held(n.p.admin_port);  // kept alive: holds the only slot
    ASSERT_EQ(held.get("/healthz").result_int(), 200);
    http_client refused(n.p.admin_port);
    EXPECT_THROW((void)refused.get("/healthz"), boost::system::system_error);
    EXPECT_EQ(notify(n.p.port, "LIM-1"), 200);
    const auto m = held.get("/metrics").body();
    EXPECT_EQ(metric_value(m, "posrelay_admin_http_connections_rejected_total"), 1);
    EXPECT_EQ(metric_value(m, "posrelay_admin_http_open_connections"), 1);
    EXPECT_EQ(metric_value(m, "posrelay_http_connections_rejected_total"), 0);
}

}  // namespace
}  // namespace posrelay::test
