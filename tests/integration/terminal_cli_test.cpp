// posrelay-terminal, the reference client, against a real posrelay: events printed and
// acked, the state file kept, resume after a restart, over TCP and over WebSocket; request
// commands (charge, cancel, status) checked where no Midtrans is needed: argument
// validation, and the error frames posrelay answers when the order or Midtrans is missing.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "posrelay/fanout/protocol.hpp"
#include "posrelay/fanout/token_verifier.hpp"
#include "process.hpp"
#include "redis_server.hpp"
#include "terminal_conn.hpp"

namespace posrelay::test {
namespace {

using std::chrono::seconds;

class TerminalCli : public ::testing::Test {
protected:
    void SetUp() override {
        redis_.start();
        // Charges enabled, with a Midtrans that refuses every connection (port 1).
        auto n = start_relay_node(
            {"--io-threads", "2", "--terminal-listen", "127.0.0.1:0", "--store", "redis",
             "--public-url", "http://127.0.0.1:1", "--midtrans-url", "http://127.0.0.1:1",
             // notifications for orders no Midtrans knows: delivery, not confirmation
             "--confirm-paid", "false"},
            relay_env(redis_.url()));
        relay_ = std::move(n.p);
        terminal_port_ = n.terminal_port;
        state_ =
            ::testing::TempDir() + "posrelay-terminal-" + std::to_string(::getpid()) + ".state";
        std::filesystem::remove(state_);
    }
    void TearDown() override { std::filesystem::remove(state_); }

    // Runs `posrelay-terminal listen` until it has printed `events` events (bounded).
    std::unique_ptr<child_process> listen(std::string transport, unsigned short port, int events) {
        return std::make_unique<child_process>(
            POSRELAY_TERMINAL_BINARY,
            std::vector<std::string>{"--connect", "127.0.0.1:" + std::to_string(port),
                                     "--transport", transport, "--terminal", "T-CLI", "--store",
                                     "S-CLI", "--state-file", state_, "--exit-after-events",
                                     std::to_string(events), "--timeout", "20s", "--once",
                                     "listen"},
            std::map<std::string, std::string>{
                {"POSRELAY_TERMINAL_TOKEN",
                 fanout::mint_token(test_terminal_secret, "T-CLI", "S-CLI")}});
    }

    // Runs `posrelay-terminal ... ARGS` to completion as terminal T-CLI; `output` is its stdout
    // only (stderr discarded by the shell).
    run_result request(std::vector<std::string> args) {
        std::vector<std::string> argv{"-c",
                                      R"(exec "$0" "$@" 2>/dev/null)",
                                      POSRELAY_TERMINAL_BINARY,
                                      "--connect",
                                      "127.0.0.1:" + std::to_string(terminal_port_),
                                      "--terminal",
                                      "T-CLI",
                                      "--store",
                                      "S-CLI",
                                      "--once",
                                      "--timeout",
                                      "20s"};
        argv.insert(argv.end(), args.begin(), args.end());
        return run_command("/bin/sh", std::move(argv),
                           {{"POSRELAY_TERMINAL_TOKEN",
                             fanout::mint_token(test_terminal_secret, "T-CLI", "S-CLI")}});
    }

    redis_server redis_;
    posrelay_process relay_;
    unsigned short terminal_port_ = 0;
    std::string state_;
};

// --observe (protocol §17): the till's events printed without taking over its connection; with
// a token that has no observe claim the run ends at once (exit 1) instead of going on as the
// till.
TEST_F(TerminalCli, ObserveWatchesATillWithoutReplacingIt) {
    terminal_conn till(terminal_port_);
    till.hello("T-CLI", "S-CLI");
    const auto now =
        std::chrono::duration_cast<seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    const std::string observe_token = fanout::mint_jwt_hs256(
        test_terminal_secret,
        {"T-CLI", "S-CLI", now - 5, now + 600, std::nullopt, "", "posrelay", true});
    auto run = [&](const std::string& token) {
        return std::make_unique<child_process>(
            POSRELAY_TERMINAL_BINARY,
            std::vector<std::string>{"--connect", "127.0.0.1:" + std::to_string(terminal_port_),
                                     "--terminal", "T-CLI", "--store", "S-CLI", "--observe",
                                     "--exit-after-events", "1", "--timeout", "20s", "--once",
                                     "listen"},
            std::map<std::string, std::string>{{"POSRELAY_TERMINAL_TOKEN", token}});
    };
    auto cli = run(observe_token);
    cli->wait_for_line(R"("observer":true)");
    ASSERT_EQ(register_order(relay_.port, "OBS-CLI", "T-CLI", "S-CLI"), 201);
    ASSERT_EQ(notify(relay_.port, "OBS-CLI"), 200);
    ASSERT_EQ(cli->wait_exit(seconds(20)), 0) << cli->output();
    EXPECT_NE(cli->full_output(seconds(5)).find("OBS-CLI"), std::string::npos);
    const auto e = till.next_event();  // the till got it too, and was never replaced
    ASSERT_TRUE(e);
    EXPECT_EQ(str(*e, "order_id"), "OBS-CLI");
    // The till's own (v1) token with --observe: refused by the tool after the welcome.
    auto wrong = run(fanout::mint_token(test_terminal_secret, "T-CLI", "S-CLI"));
    EXPECT_EQ(wrong->wait_exit(seconds(20)), 1) << wrong->output();
    EXPECT_NE(wrong->full_output(seconds(5)).find("not_an_observer"), std::string::npos);
}

TEST_F(TerminalCli, PrintsAcksKeepsStateAndResumes) {
    for (const char* id : {"CLI-1", "CLI-2", "CLI-3"})
        ASSERT_EQ(register_order(relay_.port, id, "T-CLI", "S-CLI"), 201);
    {
        auto cli = listen("tcp", terminal_port_, 2);
        // Connected once the gateway counts the handshake.
        wait_metric(relay_.port, R"(posrelay_terminal_handshakes_total{outcome="ok"})", 1);
        ASSERT_EQ(notify(relay_.port, "CLI-1", "pending"), 200);
        ASSERT_EQ(notify(relay_.port, "CLI-1", "settlement"), 200);
        ASSERT_EQ(cli->wait_exit(seconds(20)), 0) << cli->output();
        const std::string out = cli->full_output(seconds(5));
        EXPECT_NE(out.find(R"("seq":1)"), std::string::npos) << out;
        EXPECT_NE(out.find(R"("seq":2)"), std::string::npos) << out;
        EXPECT_NE(out.find(R"("paid":true)"), std::string::npos) << out;
    }
    std::stringstream state;
    state << std::ifstream(state_).rdbuf();
    EXPECT_NE(state.str().find("2"), std::string::npos) << state.str();
    // While it is away, two more payments; over WebSocket it resumes after seq 2.
    ASSERT_EQ(notify(relay_.port, "CLI-2"), 200);
    ASSERT_EQ(notify(relay_.port, "CLI-3"), 200);
    auto cli = listen("ws", relay_.port, 2);
    ASSERT_EQ(cli->wait_exit(seconds(20)), 0) << cli->output();
    const std::string out = cli->full_output(seconds(5));
    EXPECT_EQ(out.find(R"("seq":2)"), std::string::npos) << out;  // nothing twice
    EXPECT_NE(out.find(R"("seq":3)"), std::string::npos) << out;
    EXPECT_NE(out.find(R"("seq":4)"), std::string::npos) << out;
    EXPECT_NE(out.find("CLI-3"), std::string::npos) << out;
}

// resync (protocol §8): a terminal whose state names an old epoch is told so, reads the new
// epoch from seq 0, re-reads the status of the orders it had open, and keeps the new epoch (and
// the eid of its last event) in its state file.
TEST_F(TerminalCli, ResyncRereadsOpenOrdersAndGoesOnInTheNewEpoch) {
    for (const char* id : {"CLI-R1", "CLI-R2"})
        ASSERT_EQ(register_order(relay_.port, id, "T-CLI", "S-CLI"), 201);
    ASSERT_EQ(notify(relay_.port, "CLI-R2", "pending"), 200);
    ASSERT_EQ(notify(relay_.port, "CLI-R2", "settlement"), 200);
    std::ofstream(state_) << R"({"v":2,"terminal_id":"T-CLI","store_id":"S-CLI","last_seq":5,)"
                          << R"("epoch":"0old0","eid":"","open":["CLI-R1"],"resync":false})";
    child_process cli(
        POSRELAY_TERMINAL_BINARY,
        std::vector<std::string>{"--connect", "127.0.0.1:" + std::to_string(terminal_port_),
                                 "--terminal", "T-CLI", "--store", "S-CLI", "--state-file", state_,
                                 "--exit-after-events", "2", "--timeout", "20s", "listen"},
        std::map<std::string, std::string>{
            {"POSRELAY_TERMINAL_TOKEN",
             fanout::mint_token(test_terminal_secret, "T-CLI", "S-CLI")}});
    ASSERT_EQ(cli.wait_exit(seconds(20)), 0) << cli.output();
    const std::string out = cli.full_output(seconds(5));
    EXPECT_NE(out.find(R"("code":"resync")"), std::string::npos) << out;  // logged on stderr
    EXPECT_NE(out.find(R"("request":"status")"), std::string::npos) << out;
    EXPECT_NE(out.find("CLI-R1"), std::string::npos) << out;  // its status re-read
    EXPECT_NE(out.find(R"("seq":2)"), std::string::npos) << out;
    std::stringstream state;
    state << std::ifstream(state_).rdbuf();
    const std::string epoch = redis_.cli({"HGET", "posrelay:{s:S-CLI}:t:T-CLI:seq", "epoch"});
    ASSERT_FALSE(epoch.empty());
    EXPECT_NE(state.str().find(R"("epoch":")" + epoch + '"'), std::string::npos) << state.str();
    EXPECT_NE(state.str().find(R"("last_seq":2)"), std::string::npos) << state.str();
    EXPECT_NE(state.str().find(R"("resync":false)"), std::string::npos) << state.str();
}

// The one line on stdout, which must be a single JSON frame.
std::string only_line(const run_result& r) {
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    return r.output.substr(0, r.output.find('\n'));
}

TEST_F(TerminalCli, StatusOfAnUnknownOrderPrintsTheErrorFrameAndExits5) {
    const auto r = request({"status", "NO-SUCH-ORDER"});
    EXPECT_EQ(r.code, 5) << r.output;
    const std::string line = only_line(r);
    EXPECT_TRUE(line.starts_with(R"({"op":"error")")) << line;
    EXPECT_NE(line.find(R"("code":"order_not_found")"), std::string::npos) << line;
    EXPECT_NE(line.find(R"("id":"cli-)"), std::string::npos) << line;  // the request's id
    EXPECT_NE(line.find("NO-SUCH-ORDER"), std::string::npos) << line;

    const auto c = request({"cancel", "NO-SUCH-ORDER"});
    EXPECT_EQ(c.code, 5) << c.output;
    EXPECT_NE(only_line(c).find(R"("code":"order_not_found")"), std::string::npos) << c.output;
}

TEST_F(TerminalCli, ChargeWithMidtransUnreachableIsRefusedAndLeavesNoOrder) {
    const auto r = request({"charge", "CLI-DOWN-1", "10000", "--payment-type", "gopay"});
    EXPECT_EQ(r.code, 5) << r.output;
    const std::string line = only_line(r);
    EXPECT_NE(line.find(R"("code":"unavailable")"), std::string::npos) << line;
    // Nothing half-created: the order_id is free again.
    const auto s = request({"status", "CLI-DOWN-1"});
    EXPECT_EQ(s.code, 5) << s.output;
    EXPECT_NE(only_line(s).find(R"("code":"order_not_found")"), std::string::npos) << s.output;
}

TEST(TerminalCliHelp, ListsItsOptionsWithoutAServer) {
    const auto r = run_command(POSRELAY_TERMINAL_BINARY, {"--help"});
    EXPECT_EQ(r.code, 0);
    for (const char* opt : {"--connect", "--transport", "--state-file", "--terminal", "--store",
                            "--tls-ca", "charge ORDER_ID AMOUNT", "cancel|expire|status ORDER_ID",
                            "--payment-type", "--expiry", "--wait", "--show-qr"}) {
        EXPECT_NE(r.output.find(opt), std::string::npos) << opt;
    }
}

// Bad arguments are usage errors (exit 2) that name the problem, before any connection.
TEST(TerminalCliArgs, RequestArgumentsAreValidatedWithoutAServer) {
    const std::vector<std::string> base{"--connect", "127.0.0.1:1", "--terminal",
                                        "T1",        "--store",     "S1"};
    const std::map<std::string, std::string> token{{"POSRELAY_TERMINAL_TOKEN", "v1.x"}};
    struct bad_case {
        std::vector<std::string> args;
        const char* message;
    };
    const std::vector<bad_case> cases = {
        {{"charge", "A1", "0"}, "AMOUNT"},
        {{"charge", "A1", "10.5"}, "AMOUNT"},
        {{"charge", "A1", "12abc"}, "AMOUNT"},
        {{"charge", "A1", "1000000000000"}, "AMOUNT"},
        {{"charge", "A1", "--", "-5"}, "AMOUNT"},
        {{"charge", "A1"}, "charge takes ORDER_ID AMOUNT"},
        {{"charge", "bad id!", "100"}, "ORDER_ID"},
        {{"charge", std::string(51, 'x'), "100"}, "ORDER_ID"},
        {{"charge", "A1", "100", "--payment-type", "card"}, "--payment-type"},
        {{"charge", "A1", "100", "--expiry", "59"}, "--expiry"},
        {{"charge", "A1", "100", "--expiry", "1h"}, "--expiry"},
        {{"status"}, "status takes ORDER_ID"},
        {{"cancel", "A1", "A2"}, "cancel takes ORDER_ID"},
        {{"status", "A1", "--wait"}, "--wait is for charge"},
        {{"expire", "A1", "--payment-type", "qris"}, "--payment-type is for charge"},
        {{"listen", "--wait"}, "--wait is for charge"},
        {{"refund", "A1"}, "unknown command 'refund'"},
    };
    for (const auto& c : cases) {
        auto args = base;
        args.insert(args.end(), c.args.begin(), c.args.end());
        const auto r = run_command(POSRELAY_TERMINAL_BINARY, args, token);
        EXPECT_EQ(r.code, 2) << c.args[0] << ": " << r.output;
        EXPECT_NE(r.output.find(c.message), std::string::npos) << c.message << ": " << r.output;
    }
}

}  // namespace
}  // namespace posrelay::test
