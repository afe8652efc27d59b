// Tests of terminal tokens (HMAC-SHA256 known answers, verification against tampering and
// other ids) and of the `posrelay token` subcommand.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "posrelay/fanout/protocol.hpp"
#include "posrelay/fanout/token_command.hpp"

namespace {

using namespace posrelay::fanout;

constexpr std::string_view secret = "test-secret-0123456789abcdef012345";
// Python: "v1." + hmac.new(secret, b"posrelay-terminal-v1\nT-9\nS-1", sha256).hexdigest()
constexpr std::string_view token_t9_s1 =
    "v1.2e481f67a7972b058e33f05247eebab1fd4a653426b7952ac925667827a8821e";

TEST(TerminalToken, KnownAnswers) {
    EXPECT_EQ(mint_token(secret, "T-9", "S-1"), token_t9_s1);
    EXPECT_EQ(mint_token("k", "a", "b"),
              "v1.a77c848b054b349a51701cf59d0efffd1bbc09ed35f1d490b8451afd513e53eb");
}

TEST(TerminalToken, Deterministic) {
    EXPECT_EQ(mint_token(secret, "T-9", "S-1"), mint_token(secret, "T-9", "S-1"));
    EXPECT_EQ(mint_token(secret, "T-9", "S-1").size(), 67U);
}

TEST(TerminalToken, VerifyAcceptsItsOwnToken) {
    EXPECT_TRUE(verify_token(secret, "T-9", "S-1", token_t9_s1));
    const std::string id64(64, 'z');
    EXPECT_TRUE(verify_token(secret, id64, id64, mint_token(secret, id64, id64)));
}

TEST(TerminalToken, VerifyRefusesOtherIdsAndSecrets) {
    EXPECT_FALSE(verify_token(secret, "T-8", "S-1", token_t9_s1));  // another terminal
    EXPECT_FALSE(verify_token(secret, "T-9", "S-2", token_t9_s1));  // another store
    EXPECT_FALSE(verify_token(secret, "S-1", "T-9", token_t9_s1));  // swapped
    EXPECT_FALSE(verify_token("other-secret", "T-9", "S-1", token_t9_s1));
    // The separator keeps ("T-9", "S-1") apart from ("T-9\nS", "-1") and the like.
    EXPECT_NE(mint_token(secret, "T-9S", "-1"), mint_token(secret, "T-9", "S-1"));
}

TEST(TerminalToken, VerifyRefusesTamperedTokens) {
    const std::string good{token_t9_s1};
    for (std::size_t i = 0; i < good.size(); ++i) {
        std::string bad = good;
        bad[i] = bad[i] == 'a' ? 'b' : 'a';
        EXPECT_FALSE(verify_token(secret, "T-9", "S-1", bad)) << i;
    }
    EXPECT_FALSE(verify_token(secret, "T-9", "S-1", good.substr(0, good.size() - 1)));
    EXPECT_FALSE(verify_token(secret, "T-9", "S-1", good + "0"));
    EXPECT_FALSE(verify_token(secret, "T-9", "S-1", ""));
    std::string upper = good;
    for (auto& c : upper)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_FALSE(verify_token(secret, "T-9", "S-1", upper));  // lowercase hex only
    EXPECT_FALSE(verify_token(secret, "T-9", "S-1", "v2." + good.substr(3)));
}

TEST(TerminalToken, EmptySecret) {
    EXPECT_THROW((void)mint_token("", "T", "S"), std::invalid_argument);
    // Even a token minted with some secret never verifies against an empty one.
    EXPECT_FALSE(verify_token("", "T-9", "S-1", token_t9_s1));
}

// ---- posrelay token ---------------------------------------------------------------------

struct command_result {
    int status = -1;
    std::string out;
    std::string err;
};

command_result run(std::vector<std::string> args, std::vector<std::string> env) {
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<const char*> envp;
    for (const auto& e : env)
        envp.push_back(e.c_str());
    envp.push_back(nullptr);
    command_result r;
    testing::internal::CaptureStdout();
    testing::internal::CaptureStderr();
    r.status = run_token_command(static_cast<int>(args.size()), argv.data(), envp.data());
    r.err = testing::internal::GetCapturedStderr();
    r.out = testing::internal::GetCapturedStdout();
    return r;
}

const std::string secret_env = "POSRELAY_TERMINAL_SECRET=" + std::string{secret};

TEST(TokenCommand, PrintsTheToken) {
    const auto r = run({"posrelay", "token", "T-9", "S-1", "--v1"}, {"HOME=/x", secret_env});
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.out, std::string{token_t9_s1} + "\n");
    EXPECT_EQ(r.err, "");
}

TEST(TokenCommand, SecretOnlyFromTheEnvironment) {
    for (const auto& env :
         {std::vector<std::string>{}, std::vector<std::string>{"POSRELAY_TERMINAL_SECRET="},
          std::vector<std::string>{"POSRELAY_TERMINAL_SECRETX=abc"},
          std::vector<std::string>{"XPOSRELAY_TERMINAL_SECRET=abc"}}) {
        const auto r = run({"posrelay", "token", "T-9", "S-1"}, env);
        EXPECT_EQ(r.status, 2);
        EXPECT_EQ(r.out, "");
        EXPECT_NE(r.err.find("POSRELAY_TERMINAL_SECRET is not set"), std::string::npos) << r.err;
    }
}

// A secret in a file, as the server reads it (systemd credentials, Kubernetes secrets).
class TokenSecretFile : public testing::Test {
protected:
    void SetUp() override {
        std::string tmpl =
            (std::filesystem::temp_directory_path() / "posrelay-token-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::string write(const std::string& name, const std::string& text) {
        const auto path = (dir_ / name).string();
        std::ofstream(path, std::ios::binary) << text;
        return path;
    }
    std::filesystem::path dir_;
};

TEST_F(TokenSecretFile, FromTheFileVariableWithItsNewlineIgnored) {
    const auto path = write("secret", std::string{secret} + "\n");
    const auto r =
        run({"posrelay", "token", "T-9", "S-1", "--v1"}, {"POSRELAY_TERMINAL_SECRET_FILE=" + path});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, std::string{token_t9_s1} + "\n");
}

TEST_F(TokenSecretFile, FromTheSystemdCredential) {
    write("terminal-secret", std::string{secret});
    const auto r = run({"posrelay", "token", "T-9", "S-1", "--v1"},
                       {"CREDENTIALS_DIRECTORY=" + dir_.string()});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, std::string{token_t9_s1} + "\n");
}

TEST_F(TokenSecretFile, VariableAndFileTogetherAreRefused) {
    const auto path = write("secret", std::string{secret});
    const auto r = run({"posrelay", "token", "T-9", "S-1"},
                       {secret_env, "POSRELAY_TERMINAL_SECRET_FILE=" + path});
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find("mutually exclusive"), std::string::npos) << r.err;
}

TEST_F(TokenSecretFile, EmptyOrMissingFileIsAnErrorThatNamesTheFileNotTheSecret) {
    const auto empty = write("empty", "\n");
    const auto missing = (dir_ / "missing").string();
    for (const auto& path : {empty, missing}) {
        const auto r =
            run({"posrelay", "token", "T-9", "S-1"}, {"POSRELAY_TERMINAL_SECRET_FILE=" + path});
        EXPECT_EQ(r.status, 2);
        EXPECT_EQ(r.out, "");
        EXPECT_NE(r.err.find(path), std::string::npos) << r.err;
    }
}

TEST(TokenCommand, ShortSecretWarns) {
    const auto r = run({"posrelay", "token", "a", "b", "--v1"}, {"POSRELAY_TERMINAL_SECRET=k"});
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.out, "v1.a77c848b054b349a51701cf59d0efffd1bbc09ed35f1d490b8451afd513e53eb\n");
    EXPECT_NE(r.err.find("shorter than 32 bytes"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("=k"), std::string::npos);  // the secret is never printed
}

TEST(TokenCommand, InvalidIds) {
    const auto bad_terminal = run({"posrelay", "token", "T 9", "S-1"}, {secret_env});
    EXPECT_EQ(bad_terminal.status, 2);
    EXPECT_EQ(bad_terminal.out, "");
    EXPECT_NE(bad_terminal.err.find("TERMINAL_ID must be 1-64"), std::string::npos);
    const auto bad_store = run({"posrelay", "token", "T-9", std::string(65, 's')}, {secret_env});
    EXPECT_EQ(bad_store.status, 2);
    EXPECT_NE(bad_store.err.find("STORE_ID must be 1-64"), std::string::npos);
    const auto empty = run({"posrelay", "token", "", "S-1"}, {secret_env});
    EXPECT_EQ(empty.status, 2);
}

TEST(TokenCommand, Usage) {
    for (const auto& args : {std::vector<std::string>{"posrelay", "token"},
                             std::vector<std::string>{"posrelay", "token", "T-9"},
                             std::vector<std::string>{"posrelay", "token", "T", "S", "x"}}) {
        const auto r = run(args, {secret_env});
        EXPECT_EQ(r.status, 2);
        EXPECT_EQ(r.out, "");
        EXPECT_NE(r.err.find("usage: "), std::string::npos);
    }
    const auto help = run({"posrelay", "token", "--help"}, {});
    EXPECT_EQ(help.status, 0);
    EXPECT_NE(help.out.find("usage: "), std::string::npos);
}

}  // namespace
