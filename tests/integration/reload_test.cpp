// SIGHUP reloads the configuration (never kills): the real posrelay binary, its files
// rewritten, then `kill -HUP`. Merchant keys, the terminal secret, the TLS certificate and the
// log level change live; a broken file keeps the running config; nothing is disconnected.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>

#include <filesystem>
#include <fstream>

#include "http_client.hpp"
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
namespace asio = boost::asio;

// The subject CN of the certificate a TLS server on 127.0.0.1:port presents ("" on failure).
std::string served_cn(unsigned short port) {
    asio::io_context ioc;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.set_verify_mode(asio::ssl::verify_none);
    asio::ssl::stream<asio::ip::tcp::socket> s(ioc, ctx);
    boost::system::error_code ec;
    s.next_layer().connect({asio::ip::make_address("127.0.0.1"), port}, ec);
    if (!ec) s.handshake(asio::ssl::stream_base::client, ec);
    if (ec) return "";
    X509* cert = SSL_get1_peer_certificate(s.native_handle());
    if (cert == nullptr) return "";
    char cn[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    X509_free(cert);
    s.shutdown(ec);
    return cn;
}

// A hello with a token made with `secret`; the op of the server's first answer.
std::string hello_op(terminal_conn& c, std::string_view terminal, std::string_view store,
                     std::string_view secret) {
    boost::json::object h{{"op", "hello"},
                          {"v", 1},
                          {"terminal_id", terminal},
                          {"store_id", store},
                          {"token", fanout::mint_token(secret, terminal, store)}};
    c.send_line(boost::json::serialize(h));
    const auto f = c.read_frame();
    return f ? str(*f, "op") + ":" + str(*f, "code") : "no answer";
}

constexpr std::string_view reloads_ok = R"(posrelay_config_reloads_total{outcome="success"})";
constexpr std::string_view reloads_failed = R"(posrelay_config_reloads_total{outcome="failure"})";

class Reload : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::path(::testing::TempDir()) /
               ("posrelay-reload-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(dir_);
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    std::string file(const std::string& name) const { return (dir_ / name).string(); }
    void write(const std::string& name, const std::string& text) const {
        // Written beside and renamed: a reload never reads a half-written file.
        const auto tmp = file(name + ".tmp");
        std::ofstream(tmp) << text;
        fs::rename(tmp, file(name));
    }
    double metric(std::string_view series) const {
        return metric_value(http_client(relay_.port).get("/metrics").body(), series);
    }
    // SIGHUP, then waits until the outcome's counter passed `count`.
    void reload(std::string_view outcome_series, double count) {
        relay_.proc->signal(SIGHUP);
        ASSERT_TRUE(wait_metric(relay_.port, outcome_series, count)) << relay_.proc->output();
    }
    int post(const notification_fields& f, std::string_view key) const {
        return http_client(relay_.port)
            .post(notifications_path, signed_notification(f, key))
            .result_int();
    }

    fs::path dir_;
    posrelay_process relay_;
};

// Regression: SIGHUP killed posrelay (only SIGINT and SIGTERM were caught).
TEST_F(Reload, SighupReloadsInsteadOfKilling) {
    relay_ = start_posrelay({"--store", "memory", "--io-threads", "1"},
                            {{"POSRELAY_SERVER_KEY", std::string(test_server_key)}});
    relay_.proc->signal(SIGHUP);
    const auto line = relay_.proc->wait_for_line("config reloaded");
    EXPECT_EQ(http_client(relay_.port).get("/healthz").result_int(), 200);
    EXPECT_EQ(metric(reloads_ok), 1);
    EXPECT_EQ(metric(reloads_failed), 0);
    EXPECT_GT(metric("posrelay_config_last_reload_success_timestamp_seconds"), 1.6e9);
    EXPECT_EQ(relay_.proc->output().find(test_server_key), std::string::npos);
}

// A merchant added to --merchant-keys-file is accepted after SIGHUP; a broken file then
// fails the reload and the running keys stay.
TEST_F(Reload, MerchantKeyAddedToTheKeysFileIsAcceptedAfterReload) {
    write("merchants", "M1 m1-key-SECRET\n");
    relay_ = start_posrelay(
        {"--store", "memory", "--io-threads", "1", "--merchant-keys-file", file("merchants")},
        {{"POSRELAY_SERVER_KEY", std::string(test_server_key)}});
    notification_fields m2;
    m2.merchant_id = "M2";
    m2.order_id = "ORD-M2-1";
    EXPECT_EQ(post(m2, "m2-key-SECRET"), 401);
    write("merchants", "M1 m1-key-SECRET\nM2 m2-key-SECRET\n");
    reload(reloads_ok, 1);
    const auto line = relay_.proc->wait_for_line("config reloaded");
    EXPECT_NE(line.find(R"("secrets_changed":"merchant-keys")"), std::string::npos) << line;
    EXPECT_EQ(json_int(line, "merchant_keys"), 2);
    m2.order_id = "ORD-M2-2";
    EXPECT_EQ(post(m2, "m2-key-SECRET"), 200);

    write("merchants", "M1 m1-key-SECRET\nM3\n");  // broken: no key for M3
    reload(reloads_failed, 1);
    const auto failed = relay_.proc->wait_for_line("config reload failed");
    EXPECT_NE(failed.find("merchant_id server_key"), std::string::npos) << failed;
    EXPECT_EQ(metric(reloads_ok), 1);
    m2.order_id = "ORD-M2-3";
    EXPECT_EQ(post(m2, "m2-key-SECRET"), 200);  // the running keys stayed
    EXPECT_EQ(http_client(relay_.port).get("/healthz").result_int(), 200);
    EXPECT_EQ(relay_.proc->output().find("SECRET"), std::string::npos) << relay_.proc->output();
}

// An option that cannot change live is logged as needing a restart and keeps its value.
TEST_F(Reload, OptionsThatNeedARestartAreLoggedAndKept) {
    write("posrelay.conf", "max-body-bytes = 2048\n");
    relay_ = start_posrelay(
        {"--store", "memory", "--io-threads", "1", "--config", file("posrelay.conf")},
        {{"POSRELAY_SERVER_KEY", std::string(test_server_key)}});
    // --io-threads is a flag: the file cannot change it, so it is no change at all.
    write("posrelay.conf", "max-body-bytes = 4096\nmax-connections = 500\nio-threads = 2\n");
    reload(reloads_ok, 1);
    (void)relay_.proc->wait_for_line(R"("option":"max-connections")");
    (void)relay_.proc->wait_for_line(R"("option":"max-body-bytes")");
    const auto line = relay_.proc->wait_for_line("config reloaded");
    EXPECT_NE(line.find(R"("needs_restart":"max-connections,max-body-bytes")"), std::string::npos)
        << line;
    EXPECT_EQ(metric("posrelay_io_threads"), 1);
    // Still 2048: a 3000-byte body is refused as too large.
    const auto res = http_client(relay_.port).post(notifications_path, std::string(3000, ' '));
    EXPECT_EQ(res.result_int(), 413);
}

class ReloadTerminals : public Reload {
protected:
    void SetUp() override {
        Reload::SetUp();
        redis_.start();
    }
    // posrelay with the Redis store, a plain terminal listener and the secret in a file.
    void start_node(std::vector<std::string> extra = {}) {
        std::vector<std::string> args = {"--io-threads",
                                         "2",
                                         "--terminal-listen",
                                         "127.0.0.1:0",
                                         "--confirm-paid",
                                         "false",
                                         "--terminal-secret-file",
                                         file("terminal-secret"),
                                         "--config",
                                         file("posrelay.conf")};
        args.insert(args.end(), extra.begin(), extra.end());
        auto node =
            start_relay_node(args, {{"POSRELAY_SERVER_KEY", std::string(test_server_key)},
                                    {"POSRELAY_REDIS_URL", redis_.url()},
                                    {"POSRELAY_OPERATOR_TOKEN", std::string(test_operator_token)}});
        relay_ = std::move(node.p);
        terminal_port_ = node.terminal_port;
    }
    redis_server redis_;
    unsigned short terminal_port_ = 0;
};

// Terminal secret rotation: connected terminals stay and get their events; new handshakes
// need a token of the new secret. The log level changes live too (debug shows connects).
TEST_F(ReloadTerminals, TerminalSecretRotationKeepsConnectedTerminals) {
    write("terminal-secret", "old-terminal-SECRET\n");
    write("posrelay.conf", "log-level = info\n");
    start_node();
    terminal_conn before(terminal_port_);
    ASSERT_EQ(hello_op(before, "T-1", "S-1", "old-terminal-SECRET"), "welcome:");
    EXPECT_EQ(relay_.proc->output().find("terminal connected"), std::string::npos);

    write("terminal-secret", "new-terminal-SECRET\n");
    write("posrelay.conf", "log-level = debug\n");
    reload(reloads_ok, 1);
    const auto line = relay_.proc->wait_for_line("config reloaded");
    EXPECT_NE(line.find(R"("changed":"log-level")"), std::string::npos) << line;
    EXPECT_NE(line.find(R"("secrets_changed":"terminal-secret")"), std::string::npos) << line;

    terminal_conn fresh(terminal_port_);
    EXPECT_EQ(hello_op(fresh, "T-2", "S-1", "new-terminal-SECRET"), "welcome:");
    (void)relay_.proc->wait_for_line("terminal connected");  // debug, after the reload
    terminal_conn stale(terminal_port_);
    EXPECT_EQ(hello_op(stale, "T-3", "S-1", "old-terminal-SECRET"), "error:bad_token");

    // The terminal connected before the reload is still there and gets its event.
    ASSERT_EQ(register_order(relay_.port, "ORD-ROT-1", "T-1", "S-1"), 201);
    ASSERT_EQ(notify(relay_.port, "ORD-ROT-1"), 200);
    const auto ev = before.next_event(seconds(10));
    ASSERT_TRUE(ev.has_value());
    EXPECT_EQ(relay_.proc->output().find("SECRET"), std::string::npos) << relay_.proc->output();
}

// The TLS certificate swapped on disk: new handshakes see the new one after SIGHUP; a bad
// pair fails the reload and the running certificate stays.
TEST_F(ReloadTerminals, TlsCertificateSwapReachesNewHandshakes) {
    for (const char* name : {"first", "second"})
        make_certificate(dir_, name);
    write("terminal-secret", "terminal-SECRET\n");
    write("posrelay.conf", "\n");
    fs::copy_file(file("first.crt"), file("server.crt"));
    fs::copy_file(file("first.key"), file("server.key"));
    start_node({"--terminal-tls-listen", "127.0.0.1:0", "--terminal-tls-cert", file("server.crt"),
                "--terminal-tls-key", file("server.key")});
    const auto tls_port = static_cast<unsigned short>(
        json_int(relay_.proc->wait_for_line(R"("what":"terminals-tls")"), "port"));
    EXPECT_EQ(served_cn(tls_port), "first");

    fs::copy_file(file("second.crt"), file("server.crt.new"));
    fs::copy_file(file("second.key"), file("server.key.new"));
    fs::rename(file("server.crt.new"), file("server.crt"));
    fs::rename(file("server.key.new"), file("server.key"));
    reload(reloads_ok, 1);
    EXPECT_EQ(served_cn(tls_port), "second");

    fs::copy_file(file("first.crt"), file("server.crt.new"));  // key of "second": a bad pair
    fs::rename(file("server.crt.new"), file("server.crt"));
    reload(reloads_failed, 1);
    EXPECT_EQ(served_cn(tls_port), "second");
}

// check-config: the effective configuration with sources; secrets never printed; exit 2
// with the reason when invalid.
TEST_F(Reload, CheckConfigPrintsTheEffectiveConfigWithoutSecrets) {
    write("merchants", "M1 m1-key-SECRET\nM2 m2-key-SECRET\n");
    write("op", "operator-SECRET\n");
    auto r = run_command(POSRELAY_BINARY,
                         {"check-config", "--listen", "127.0.0.1:9", "--merchant-keys-file",
                          file("merchants"), "--operator-token-file", file("op")},
                         {{"POSRELAY_SERVER_KEY", "server-SECRET"},
                          {"POSRELAY_REDIS_URL", "redis://u:redis-SECRET@127.0.0.1:1"}});
    EXPECT_EQ(r.code, 0) << r.output;
    EXPECT_EQ(r.output.find("SECRET"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("listen = 127.0.0.1:9  # flag"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("merchant-keys = <redacted, 2 merchant keys>"), std::string::npos);
    EXPECT_NE(r.output.find("# operator-token = <set>"), std::string::npos);

    r = run_command(POSRELAY_BINARY, {"check-config", "--io-threads", "9999"});
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_NE(r.output.find("--io-threads"), std::string::npos) << r.output;
    r = run_command(POSRELAY_BINARY,
                    {"check-config", "--terminal-tls-listen", "127.0.0.1:0", "--terminal-tls-cert",
                     file("missing.crt"), "--terminal-tls-key", file("missing.key")});
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_NE(r.output.find("terminal TLS"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace posrelay::test
