// posrelay-terminal, the reference client, against a real posrelay: events printed and
// acked, the state file kept, resume after a restart, over TCP and over WebSocket.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "posrelay/fanout/protocol.hpp"
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
        relay_ = start_posrelay({"--io-threads", "2", "--terminal-listen", "127.0.0.1:0"},
                                {{"POSRELAY_SERVER_KEY", std::string(test_server_key)},
                                 {"POSRELAY_REDIS_URL", redis_.url()},
                                 {"POSRELAY_OPERATOR_TOKEN", std::string(test_operator_token)},
                                 {"POSRELAY_TERMINAL_SECRET", std::string(test_terminal_secret)}});
        terminal_port_ = static_cast<unsigned short>(
            json_int(relay_.proc->wait_for_line(R"("what":"terminals")"), "port"));
        const auto deadline = std::chrono::steady_clock::now() + seconds(10);
        while (http_client(relay_.port).get("/readyz").result_int() != 200 &&
               std::chrono::steady_clock::now() < deadline) {
            std::this_thread::yield();
        }
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

    redis_server redis_;
    posrelay_process relay_;
    unsigned short terminal_port_ = 0;
    std::string state_;
};

TEST_F(TerminalCli, PrintsAcksKeepsStateAndResumes) {
    for (const char* id : {"CLI-1", "CLI-2", "CLI-3"})
        ASSERT_EQ(register_order(relay_.port, id, "T-CLI", "S-CLI"), 201);
    {
        auto cli = listen("tcp", terminal_port_, 2);
        // Connected once the gateway counts the handshake.
        const auto deadline = std::chrono::steady_clock::now() + seconds(10);
        while (metric_value(http_client(relay_.port).get("/metrics").body(),
                            R"(posrelay_terminal_handshakes_total{outcome="ok"})") < 1 &&
               std::chrono::steady_clock::now() < deadline) {
            std::this_thread::yield();
        }
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

TEST(TerminalCliHelp, ListsItsOptionsWithoutAServer) {
    const auto r = run_command(POSRELAY_TERMINAL_BINARY, {"--help"});
    EXPECT_EQ(r.code, 0);
    for (const char* opt :
         {"--connect", "--transport", "--state-file", "--terminal", "--store", "--tls-ca"}) {
        EXPECT_NE(r.output.find(opt), std::string::npos) << opt;
    }
}

}  // namespace
}  // namespace posrelay::test
