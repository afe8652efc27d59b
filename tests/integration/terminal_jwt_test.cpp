// Terminal JWTs end to end (issue 16 items 1, 6, 7): real posrelay processes, real Redis,
// terminals over TCP. Tokens from `posrelay token` (the acceptance form) and from keys a
// test holds; expiry answered token_expired; kid rotation by SIGHUP; EdDSA and ES256 from a
// JWK set; failed-handshake limits that spare a good till behind a shared address.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>

#include "jwk_keys.hpp"
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
        // The output holds stderr too (a short-secret warning): the token is the last line.
        auto out = r.output;
        while (!out.empty() && (out.back() == '\n'))
            out.pop_back();
        out = out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);
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

// EdDSA and ES256 tokens verified with public keys from --terminal-token-keys; the gateway
// holds no signing secret for them. Then rotation by SIGHUP: a new key accepted, a removed
// one refused, connected terminals kept.
TEST_F(TerminalJwt, JwkSetKeysAndRotationBySighup) {
    pkey ed{EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")};
    pkey ec{EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")};
    const std::string hs_old = "old-hs256-key-0123456789abcdef0123";
    const std::string hs_new = "new-hs256-key-0123456789abcdef0123";
    write("keys.json", R"({"keys":[)" + jwk_of(ed.get(), "ed-1") + "," + jwk_of(ec.get(), "ec-1") +
                           "," + oct_jwk("hs-old", hs_old) + "]}");
    start({"--terminal-token-keys", file("keys.json")});
    const auto ed_token =
        fanout::mint_jwt_pem(pem_of(ed.get()), claims("T-ED", "S-K", 300, "ed-1"));
    const auto ec_token =
        fanout::mint_jwt_pem(pem_of(ec.get()), claims("T-EC", "S-K", 300, "ec-1"));
    EXPECT_EQ(answer(term(), "T-ED", "S-K", ed_token), "welcome:");
    EXPECT_EQ(answer(term(), "T-EC", "S-K", ec_token), "welcome:");
    EXPECT_LE(ec_token.size(), fanout::max_jwt_bytes);
    EXPECT_EQ(metric(R"(posrelay_terminal_token_checks_total{kind="eddsa",outcome="ok"})"), 1);
    EXPECT_EQ(metric(R"(posrelay_terminal_token_checks_total{kind="es256",outcome="ok"})"), 1);
    // The EdDSA key's kid with an HS256 token: algorithm confusion, refused.
    std::string message;
    EXPECT_EQ(answer(term(), "T-ED", "S-K",
                     fanout::mint_jwt_hs256(hs_old, claims("T-ED", "S-K", 300, "ed-1")), &message),
              "error:bad_token");
    EXPECT_NE(message.find("bad_alg"), std::string::npos) << message;

    // A till stays connected across the rotation.
    terminal_conn kept(term());
    kept.send_line(boost::json::serialize(boost::json::object{
        {"op", "hello"},
        {"v", 1},
        {"terminal_id", "T-KEPT"},
        {"store_id", "S-K"},
        {"token", fanout::mint_jwt_hs256(hs_old, claims("T-KEPT", "S-K", 300, "hs-old"))}}));
    ASSERT_EQ(str(kept.read_frame().value(), "op"), "welcome");
    const auto new_token = fanout::mint_jwt_hs256(hs_new, claims("T-NEW", "S-K", 300, "hs-new"));
    EXPECT_EQ(answer(term(), "T-NEW", "S-K", new_token, &message), "error:bad_token");
    EXPECT_NE(message.find("unknown_kid"), std::string::npos) << message;
    // Rotate: hs-new added, hs-old and ec-1 removed.
    write("keys.json",
          R"({"keys":[)" + jwk_of(ed.get(), "ed-1") + "," + oct_jwk("hs-new", hs_new) + "]}");
    node_.p.proc->signal(SIGHUP);
    ASSERT_TRUE(
        wait_metric(node_.p.admin_port, R"(posrelay_config_reloads_total{outcome="success"})", 1))
        << node_.p.proc->output();
    EXPECT_EQ(answer(term(), "T-NEW", "S-K", new_token), "welcome:");
    EXPECT_EQ(answer(term(), "T-EC", "S-K", ec_token, &message), "error:bad_token");
    EXPECT_NE(message.find("unknown_kid"), std::string::npos) << message;
    EXPECT_EQ(answer(term(), "T-OLD", "S-K",
                     fanout::mint_jwt_hs256(hs_old, claims("T-OLD", "S-K", 300, "hs-old"))),
              "error:bad_token");
    EXPECT_EQ(answer(term(), "T-ED", "S-K", ed_token), "welcome:");
    // A broken key file fails the reload; the running keys stay.
    write("keys.json", R"({"keys":[{"kty":"oct","kid":"x","k":"c2hvcnQ"}]})");
    node_.p.proc->signal(SIGHUP);
    ASSERT_TRUE(
        wait_metric(node_.p.admin_port, R"(posrelay_config_reloads_total{outcome="failure"})", 1));
    EXPECT_EQ(answer(term(), "T-NEW", "S-K", new_token), "welcome:");
    // The kept till was never disconnected: it still answers a ping.
    kept.send_line(R"({"op":"ping","id":"still-here"})");
    const auto pong = kept.read_frame();
    ASSERT_TRUE(pong);
    EXPECT_EQ(str(*pong, "op"), "pong");
    // Keys never reach the log.
    const auto out = node_.p.proc->output();
    for (const auto& k : {hs_old, hs_new, std::string(test_terminal_secret)})
        EXPECT_EQ(out.find(k), std::string::npos) << k;
}

// check-config reads and checks the key file as a start would.
TEST_F(TerminalJwt, CheckConfigRefusesABadKeyFile) {
    write("keys.json", R"({"keys":[{"kty":"oct","kid":"x","k":"c2hvcnQ"}]})");
    auto env = relay_env(redis_.url());
    auto r = run_command(POSRELAY_BINARY,
                         {"check-config", "--terminal-token-keys", file("keys.json")}, env);
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_NE(r.output.find("at least 32 bytes"), std::string::npos) << r.output;
    write("keys.json", R"({"keys":[)" + oct_jwk("x", "0123456789abcdef0123456789abcdef") + "]}");
    r = run_command(POSRELAY_BINARY, {"check-config", "--terminal-token-keys", file("keys.json")},
                    env);
    EXPECT_EQ(r.code, 0) << r.output;
}

// Issue 16 item 6: a till behind the same address as 50 clients with bad tokens still
// connects, whether they claim their own terminal ids or the till's. Before, 10 failures from
// the address refused every handshake from it, the till's included (rate_limited).
TEST_F(TerminalJwt, TillBehindAnAddressSharedWithFiftyBadClientsConnects) {
    start();  // --terminal-auth-failures-per-minute 10 (the default)
    const auto good = fanout::mint_jwt_hs256(test_terminal_secret, claims("T-TILL", "S-NAT", 300));
    const auto bad =
        fanout::mint_jwt_hs256("not-the-secret-0123456789abcdef", claims("T-TILL", "S-NAT", 300));
    int bad_token = 0;
    int rate_limited = 0;
    for (int i = 0; i < 50; ++i) {  // their own terminal ids
        const auto id = "T-BAD-" + std::to_string(i);
        const auto a = answer(term(), id, "S-NAT", "v1.0000");
        bad_token += a == "error:bad_token";
        rate_limited += a == "error:rate_limited";
    }
    EXPECT_EQ(bad_token, 50);
    EXPECT_EQ(answer(term(), "T-TILL", "S-NAT", good), "welcome:");
    bad_token = rate_limited = 0;
    for (int i = 0; i < 50; ++i) {  // the till's id
        const auto a = answer(term(), "T-TILL", "S-NAT", bad);
        bad_token += a == "error:bad_token";
        rate_limited += a == "error:rate_limited";
    }
    EXPECT_EQ(bad_token, 10);  // then the (address, T-TILL) budget is spent
    EXPECT_EQ(rate_limited, 40);
    EXPECT_EQ(answer(term(), "T-TILL", "S-NAT", good), "welcome:");
    std::printf(
        "[ figure ] till behind an address with 50 bad clients: connected 2/2; bad clients "
        "with own ids: 50 bad_token; with the till's id: %d bad_token, %d rate_limited\n",
        bad_token, rate_limited);
}

}  // namespace
}  // namespace posrelay::test
