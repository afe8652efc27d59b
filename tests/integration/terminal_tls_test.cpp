// The terminal gateway's TLS listener end to end: throwaway self-signed certificates made by
// the openssl CLI, a real posrelay and redis-server, and posrelay-terminal over TLS. A terminal
// gets its event; plain TCP on the TLS port is closed without a welcome; with a client CA, a
// terminal without a certificate (or with one the CA did not sign) is refused.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <filesystem>
#include <thread>

#include "posrelay/fanout/protocol.hpp"
#include "process.hpp"
#include "redis_server.hpp"
#include "terminal_conn.hpp"
#include "tls_proxy.hpp"

namespace posrelay::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
namespace fs = std::filesystem;

class TerminalTls : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::path(::testing::TempDir()) / ("posrelay-tls-" + std::to_string(::getpid()));
        fs::create_directories(dir_);
        for (const char* name : {"server", "client", "stranger"})
            make_certificate(dir_, name);
        redis_.start();
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    std::string file(const char* name) const { return (dir_ / name).string(); }

    // Starts posrelay with only the TLS terminal listener; `client_ca`: require client certs.
    void start_relay(bool client_ca) {
        std::vector<std::string> args = {
            "--io-threads", "2", "--terminal-listen", "off", "--terminal-tls-listen", "127.0.0.1:0",
            "--terminal-tls-cert", file("server.crt"), "--terminal-tls-key", file("server.key"),
            // notifications for orders no Midtrans knows
            "--confirm-paid", "false"};
        if (client_ca) {
            args.push_back("--terminal-tls-client-ca");
            args.push_back(file("client.crt"));
        }
        relay_ = start_posrelay(args, relay_env(redis_.url()));
        tls_port_ = static_cast<unsigned short>(
            json_int(relay_.proc->wait_for_line(R"("what":"terminals-tls")"), "port"));
        ASSERT_TRUE(wait_metric("posrelay_ready", 1)) << relay_.proc->output();
    }

    double metric(std::string_view series) const {
        return metric_value(http_client(relay_.port).get("/metrics").body(), series);
    }
    bool wait_metric(std::string_view series, double at_least) const {
        return test::wait_metric(relay_.port, series, at_least);
    }

    // posrelay-terminal over TLS (server certificate not verified: it is self-signed), once,
    // exiting after one event; `cert`: the client certificate to present, if any.
    std::unique_ptr<child_process> terminal(const std::string& id, const char* cert = nullptr) {
        std::vector<std::string> args = {"--connect",
                                         "127.0.0.1:" + std::to_string(tls_port_),
                                         "--transport",
                                         "tls",
                                         "--tls-insecure",
                                         "--terminal",
                                         id,
                                         "--store",
                                         "S-TLS",
                                         "--exit-after-events",
                                         "1",
                                         "--connect-timeout",
                                         "5s",
                                         "--timeout",
                                         "20s",
                                         "--once"};
        if (cert != nullptr) {
            args.insert(args.end(), {"--tls-cert", file((std::string(cert) + ".crt").c_str()),
                                     "--tls-key", file((std::string(cert) + ".key").c_str())});
        }
        args.push_back("listen");
        return std::make_unique<child_process>(
            POSRELAY_TERMINAL_BINARY, std::move(args),
            std::map<std::string, std::string>{
                {"POSRELAY_TERMINAL_TOKEN",
                 fanout::mint_token(test_terminal_secret, id, "S-TLS")}});
    }

    // Registers an order for `id`, connects it over TLS, pays the order, and checks the
    // terminal prints the paid event and exits 0.
    void expect_event_over_tls(const std::string& id, const char* cert = nullptr) {
        const std::string order = "ORD-" + id;
        ASSERT_EQ(register_order(relay_.port, order, id, "S-TLS"), 201);
        const double ok_before =
            std::max(0.0, metric(R"(posrelay_terminal_handshakes_total{outcome="ok"})"));
        auto cli = terminal(id, cert);
        ASSERT_TRUE(
            wait_metric(R"(posrelay_terminal_handshakes_total{outcome="ok"})", ok_before + 1))
            << cli->output();
        EXPECT_EQ(metric(R"(posrelay_terminal_connections{transport="tls"})"), 1);
        ASSERT_EQ(notify(relay_.port, order), 200);
        ASSERT_EQ(cli->wait_exit(seconds(20)), 0) << cli->output();
        const std::string out = cli->full_output(seconds(5));
        EXPECT_NE(out.find(R"("order_id":")" + order + '"'), std::string::npos) << out;
        EXPECT_NE(out.find(R"("paid":true)"), std::string::npos) << out;
    }

    fs::path dir_;
    redis_server redis_;
    posrelay_process relay_;
    unsigned short tls_port_ = 0;
};

TEST_F(TerminalTls, TerminalGetsItsEventOverTls) {
    start_relay(false);
    expect_event_over_tls("T-TLS-1");
}

TEST_F(TerminalTls, PlainTcpOnTheTlsPortIsClosedWithoutAWelcome) {
    start_relay(false);
    std::string received;
    {
        terminal_conn plain(tls_port_);
        plain.send_line(
            R"({"op":"hello","v":1,"terminal_id":"T-PLAIN","store_id":"S-TLS","token":")" +
            fanout::mint_token(test_terminal_secret, "T-PLAIN", "S-TLS") + R"("})");
        // Read raw bytes (at most a TLS alert) until the server closes, bounded.
        const auto deadline = std::chrono::steady_clock::now() + seconds(10);
        bool closed = false;
        while (!closed && std::chrono::steady_clock::now() < deadline) {
            pollfd p{plain.fd(), POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            char buf[4096];
            const ssize_t n = ::recv(plain.fd(), buf, sizeof buf, 0);
            if (n <= 0) {
                closed = true;
            } else {
                received.append(buf, static_cast<std::size_t>(n));
            }
        }
        EXPECT_TRUE(closed) << "the server kept a plain-TCP connection open on the TLS port";
    }
    EXPECT_EQ(received.find("welcome"), std::string::npos) << received;
    EXPECT_LT(received.size(), 64u) << "more than a TLS alert came back";
    EXPECT_TRUE(wait_metric(R"(posrelay_terminal_handshakes_total{outcome="transport_error"})", 1));
    // The listener keeps serving TLS terminals.
    expect_event_over_tls("T-TLS-2");
}

TEST_F(TerminalTls, ClientCertificateRequiredWhenAClientCaIsConfigured) {
    start_relay(true);
    // No certificate, then one the client CA did not sign: refused before any hello (exit 4:
    // --once and the connection failed), and nothing counted as a successful handshake.
    for (const char* cert : {static_cast<const char*>(nullptr), "stranger"}) {
        auto cli = terminal("T-TLS-NOCERT", cert);
        EXPECT_EQ(cli->wait_exit(seconds(20)), 4) << cli->output();
        EXPECT_EQ(cli->output().find(R"("msg":"connected")"), std::string::npos) << cli->output();
    }
    EXPECT_TRUE(wait_metric(R"(posrelay_terminal_handshakes_total{outcome="transport_error"})", 2));
    EXPECT_EQ(metric(R"(posrelay_terminal_handshakes_total{outcome="ok"})"), 0);
    // The certificate the CA names gets in.
    expect_event_over_tls("T-TLS-3", "client");
}

}  // namespace
}  // namespace posrelay::test
