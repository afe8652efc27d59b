// Tests of the pure parts of a reload and of check-config: which options changed between two
// loads, which of them need a restart, what a reload applies; secrets from files and systemd
// credentials; the effective config as printed, with every secret redacted.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "load_config_args.hpp"
#include "posrelay/config.hpp"

using posrelay::config_error;

namespace {

namespace fs = std::filesystem;

posrelay::config load(std::vector<std::string> args, std::vector<std::string> env = {}) {
    return posrelay::test_support::load_config_args(std::move(args), env).cfg;
}

std::string error_of(std::vector<std::string> args, std::vector<std::string> env = {}) {
    try {
        (void)load(std::move(args), std::move(env));
    } catch (const config_error& e) {
        return e.what();
    }
    return "";
}

// A fresh directory under the test temp dir, removed at the end of the test.
class temp_dir {
public:
    temp_dir() {
        static std::atomic<int> n{0};
        path_ = fs::path(::testing::TempDir()) /
                ("posrelay_reload_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
        fs::create_directories(path_);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    std::string write(const std::string& name, const std::string& text) const {
        const auto p = (path_ / name).string();
        std::ofstream(p) << text;
        return p;
    }
    std::string path() const { return path_.string(); }

private:
    fs::path path_;
};

TEST(ReloadPlan, NothingChangedIsAnEmptyPlan) {
    const auto a = load({"--listen", "127.0.0.1:1"}, {"POSRELAY_SERVER_KEY=k1"});
    const auto p = posrelay::plan_reload(a, a);
    EXPECT_TRUE(p.live.empty());
    EXPECT_TRUE(p.needs_restart.empty());
    EXPECT_TRUE(p.secrets.empty());
}

TEST(ReloadPlan, SortsChangedOptionsIntoLiveAndNeedsRestart) {
    temp_dir d;
    const auto file = d.write("posrelay.conf", "log-level = info\nio-threads = 2\n");
    const auto before = load({"--config", file});
    d.write("posrelay.conf",
            "log-level = debug\nio-threads = 3\nlisten = 127.0.0.1:9\n"
            "terminal-tls-cert = /x.crt\nredis-url = redis://127.0.0.1:1\n");
    const auto after = load({"--config", file});
    const auto p = posrelay::plan_reload(before, after);
    EXPECT_EQ(p.live, (std::vector<std::string>{"log-level", "terminal-tls-cert"}));
    EXPECT_EQ(p.needs_restart, (std::vector<std::string>{"listen", "io-threads", "redis-url"}));
}

TEST(ReloadPlan, ReloadableOptionsAreTheKeysSecretsTlsAndLogLevel) {
    struct row {
        const char* name;
        bool live;
    } rows[] = {
        {"log-level", true},
        {"server-key-file", true},
        {"merchant-keys-file", true},
        {"operator-token-file", true},
        {"terminal-secret-file", true},
        {"terminal-tls-cert", true},
        {"terminal-tls-key", true},
        {"terminal-tls-client-ca", true},
        {"listen", false},
        {"io-threads", false},
        {"store", false},
        {"redis-url", false},
        {"redis-password-file", false},
        {"redis-sentinel-password-file", false},
        {"redis-min-replicas-ack", false},
        {"terminal-tls-listen", false},
        {"max-connections", false},
        {"data-dir", false},
    };
    for (const auto& r : rows)
        EXPECT_EQ(posrelay::reloadable_option(r.name), r.live) << r.name;
}

TEST(ReloadPlan, SecretsThatChangeAreNamedAndTheirAppearanceNeedsARestart) {
    const auto before = load({}, {"POSRELAY_SERVER_KEY=k1", "POSRELAY_MERCHANT_KEYS=M1:a",
                                  "POSRELAY_TERMINAL_SECRET=s1", "POSRELAY_OPERATOR_TOKEN=t1"});
    const auto rotated =
        load({}, {"POSRELAY_SERVER_KEY=k2", "POSRELAY_MERCHANT_KEYS=M1:a,M2:b",
                  "POSRELAY_TERMINAL_SECRET=s2", "POSRELAY_OPERATOR_TOKEN=t2",
                  "POSRELAY_REDIS_PASSWORD=p", "POSRELAY_REDIS_SENTINEL_PASSWORD=sp"});
    auto p = posrelay::plan_reload(before, rotated);
    EXPECT_EQ(p.secrets, (std::vector<std::string>{"server-key", "merchant-keys", "operator-token",
                                                   "terminal-secret"}));
    EXPECT_EQ(p.needs_restart,
              (std::vector<std::string>{"redis-password", "redis-sentinel-password"}));
    // The terminal gateway runs only with a secret: removing it needs a restart.
    const auto none = load({}, {"POSRELAY_SERVER_KEY=k1", "POSRELAY_MERCHANT_KEYS=M1:a",
                                "POSRELAY_OPERATOR_TOKEN=t1"});
    p = posrelay::plan_reload(before, none);
    EXPECT_TRUE(p.secrets.empty());
    EXPECT_EQ(p.needs_restart, (std::vector<std::string>{"terminal-secret"}));
}

TEST(ReloadPlan, ApplyLiveTakesOnlyWhatChangesLive) {
    temp_dir d;
    const auto file = d.write("posrelay.conf", "log-level = info\nio-threads = 2\n");
    const auto running = load({"--config", file}, {"POSRELAY_MERCHANT_KEYS=M1:a"});
    d.write("posrelay.conf", "log-level = warn\nio-threads = 5\n");
    const auto fresh = load({"--config", file}, {"POSRELAY_MERCHANT_KEYS=M1:a,M2:b"});
    const auto plan = posrelay::plan_reload(running, fresh);
    const auto next = posrelay::apply_live(running, fresh, plan);
    EXPECT_EQ(next.log_level, posrelay::log::level::warn);
    EXPECT_EQ(next.io_threads, 2u);  // needs a restart: kept
    EXPECT_EQ(next.merchant_keys.size(), 2u);
    // A second reload of the same files sees only what still differs: io-threads.
    const auto again = posrelay::plan_reload(next, fresh);
    EXPECT_TRUE(again.live.empty());
    EXPECT_TRUE(again.secrets.empty());
    EXPECT_EQ(again.needs_restart, (std::vector<std::string>{"io-threads"}));
}

TEST(SecretFiles, EachSecretComesFromItsFileWithoutTheTrailingNewline) {
    temp_dir d;
    const auto c = load({"--operator-token-file", d.write("op", "op-token\n"),
                         "--terminal-secret-file", d.write("ts", "term secret\r\n"),
                         "--redis-password-file", d.write("rp", "redis-pw")});
    EXPECT_EQ(c.operator_token.view(), "op-token");
    EXPECT_EQ(c.terminal_secret.view(), "term secret");
    EXPECT_EQ(c.redis_password.view(), "redis-pw");
}

TEST(SecretFiles, FileAndVariableAreMutuallyExclusiveAndEmptyFilesRefused) {
    temp_dir d;
    const auto f = d.write("op", "op-token\n");
    auto e = error_of({"--operator-token-file", f}, {"POSRELAY_OPERATOR_TOKEN=x"});
    EXPECT_NE(e.find("mutually exclusive"), std::string::npos) << e;
    e = error_of(
        {}, {"POSRELAY_TERMINAL_SECRET_FILE=" + d.write("ts", "a"), "POSRELAY_TERMINAL_SECRET=b"});
    EXPECT_NE(e.find("mutually exclusive"), std::string::npos) << e;
    e = error_of({"--redis-password-file", d.write("empty", "\n")});
    EXPECT_NE(e.find("is empty"), std::string::npos) << e;
    e = error_of({"--terminal-secret-file", d.write("two", "a\nb\n")});
    EXPECT_NE(e.find("one line"), std::string::npos) << e;
    e = error_of({"--operator-token-file", d.path() + "/missing"});
    EXPECT_NE(e.find("cannot open --operator-token-file"), std::string::npos) << e;
}

TEST(SecretFiles, SystemdCredentialsFillWhatNoOtherSourceSets) {
    temp_dir d;
    d.write("server-key", "cred-server-key\n");
    d.write("merchant-keys", "M9 cred-m9\n");
    d.write("operator-token", "cred-op\n");
    d.write("terminal-secret", "cred-ts\n");
    const auto c =
        load({}, {"CREDENTIALS_DIRECTORY=" + d.path(), "POSRELAY_TERMINAL_SECRET=env-ts"});
    EXPECT_EQ(c.default_server_key.view(), "cred-server-key");
    ASSERT_EQ(c.merchant_keys.size(), 1u);
    EXPECT_EQ(c.merchant_keys.at("M9").view(), "cred-m9");
    EXPECT_EQ(c.operator_token.view(), "cred-op");
    EXPECT_EQ(c.terminal_secret.view(), "env-ts");  // the variable wins; no conflict
    EXPECT_TRUE(c.redis_password.empty());          // no such credential
    const auto text = posrelay::render_effective(c);
    EXPECT_NE(text.find("operator-token-file = " + d.path() + "/operator-token  # credentials"),
              std::string::npos)
        << text;
    // A file option given explicitly wins over the credential.
    temp_dir other;
    const auto c2 = load({"--operator-token-file", other.write("tok", "flag-op")},
                         {"CREDENTIALS_DIRECTORY=" + d.path()});
    EXPECT_EQ(c2.operator_token.view(), "flag-op");
}

TEST(CheckConfig, PrintsEveryOptionWithItsSourceAndNoSecret) {
    temp_dir d;
    const auto file = d.write("posrelay.conf", "io-threads = 3\n");
    const auto c = load({"--config", file, "--listen", "127.0.0.1:9", "--merchant-keys-file",
                         d.write("mk", "M1 mkey-one-SECRET\nM2 mkey-two-SECRET\n")},
                        {"POSRELAY_SERVER_KEY=server-SECRET", "POSRELAY_OPERATOR_TOKEN=op-SECRET",
                         "POSRELAY_MAX_CONNECTIONS=77",
                         "POSRELAY_REDIS_URL=redis://u:redis-SECRET@127.0.0.1:6379"});
    const auto text = posrelay::render_effective(c);
    EXPECT_EQ(text.find("SECRET"), std::string::npos) << text;
    for (const char* want :
         {"\nlisten = 127.0.0.1:9  # flag\n", "\nio-threads = 3  # file\n",
          "\nmax-connections = 77  # env\n", "\nidle-timeout = 75s  # default\n",
          "\nredis-url = redis://u:<redacted>@127.0.0.1:6379  # env\n",
          "\n# config = " /* not allowed in a file: commented */, "\n# server-key = <set>\n",
          "\n# merchant-keys = <redacted, 2 merchant keys>\n", "\n# operator-token = <set>\n",
          "\n# terminal-secret = <unset>\n"}) {
        EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
    }
    // Every option of the table is there: as many option lines as --help lists options.
    EXPECT_EQ(c.options.size(),
              static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) - 9);
    // What it prints loads back to the same options.
    const auto printed = d.write("printed.conf", text);
    const auto back = load({"--config", printed});
    EXPECT_EQ(back.io_threads, 3u);
    EXPECT_EQ(back.listen.to_string(), "127.0.0.1:9");
}

}  // namespace
