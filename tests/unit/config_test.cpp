// Tests of start-up configuration: defaults, flags > environment > file precedence,
// validation messages naming the option, secrets kept off argv and out of messages, key
// files, the help text, and the endpoint and duration parsers.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "load_config_args.hpp"
#include "posrelay/config.hpp"

using namespace std::chrono_literals;
using posrelay::cli_action;
using posrelay::cli_result;
using posrelay::config_error;

namespace {

constexpr const char* secret_value = "SB-Mid-server-TOPSECRET123";

cli_result load(std::vector<std::string> args, std::vector<std::string> env = {}) {
    return posrelay::test_support::load_config_args(std::move(args), env);
}

// The config_error message of a load that must fail ("" if it did not fail).
std::string error_of(std::vector<std::string> args, std::vector<std::string> env = {}) {
    try {
        (void)load(std::move(args), std::move(env));
    } catch (const config_error& e) {
        return e.what();
    }
    return "";
}

// A file under the test temp dir, removed at the end of the test.
class temp_file {
public:
    explicit temp_file(const std::string& text) {
        static std::atomic<int> n{0};
        path_ = ::testing::TempDir() + "posrelay_config_" + std::to_string(::getpid()) + "_" +
                std::to_string(n++);
        std::ofstream(path_) << text;
    }
    ~temp_file() { std::remove(path_.c_str()); }
    temp_file(const temp_file&) = delete;
    temp_file& operator=(const temp_file&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

TEST(Config, Defaults) {
    const auto r = load({});
    EXPECT_EQ(r.action, cli_action::run);
    const auto& c = r.cfg;
    EXPECT_EQ(c.config_file, "");
    EXPECT_EQ(c.listen.host, "0.0.0.0");
    EXPECT_EQ(c.listen.port, 8080);
    EXPECT_EQ(c.io_threads, 0u);
    EXPECT_EQ(c.max_connections, 10000u);
    EXPECT_EQ(c.header_timeout, 10s);
    EXPECT_EQ(c.body_timeout, 10s);
    EXPECT_EQ(c.idle_timeout, 75s);
    EXPECT_EQ(c.write_timeout, 10s);
    EXPECT_EQ(c.shutdown_timeout, 10s);
    EXPECT_EQ(c.max_header_bytes, 8192u);
    EXPECT_EQ(c.max_body_bytes, 65536u);
    EXPECT_EQ(c.log_level, posrelay::log::level::info);
    EXPECT_TRUE(c.default_server_key.empty());
    EXPECT_TRUE(c.merchant_keys.empty());
    EXPECT_TRUE(c.unknown_env.empty());
}

TEST(Config, EveryOptionFromFlags) {
    const auto r = load({"--listen=[::1]:9000", "--io-threads", "4", "--max-connections=5",
                         "--header-timeout=250ms", "--body-timeout=2m", "--idle-timeout=1h",
                         "--write-timeout=1.5", "--shutdown-timeout=0", "--max-header-bytes=1024",
                         "--max-body-bytes=16777216", "--log-level=debug"});
    const auto& c = r.cfg;
    EXPECT_EQ(c.listen.host, "::1");
    EXPECT_EQ(c.listen.port, 9000);
    EXPECT_EQ(c.io_threads, 4u);
    EXPECT_EQ(c.max_connections, 5u);
    EXPECT_EQ(c.header_timeout, 250ms);
    EXPECT_EQ(c.body_timeout, 2min);
    EXPECT_EQ(c.idle_timeout, 1h);
    EXPECT_EQ(c.write_timeout, 1500ms);
    EXPECT_EQ(c.shutdown_timeout, 0ms);
    EXPECT_EQ(c.max_header_bytes, 1024u);
    EXPECT_EQ(c.max_body_bytes, 16777216u);
    EXPECT_EQ(c.log_level, posrelay::log::level::debug);
}

TEST(Config, PrecedenceFlagsOverEnvOverFileOverDefaults) {
    temp_file file("# posrelay\nio-threads = 1\nmax-connections = 11 # trailing comment\n\n");
    const std::string cfg = "--config=" + file.path();
    const std::string env = "POSRELAY_IO_THREADS=2";

    EXPECT_EQ(load({cfg, "--io-threads=3"}, {env}).cfg.io_threads, 3u);
    EXPECT_EQ(load({cfg}, {env}).cfg.io_threads, 2u);
    EXPECT_EQ(load({cfg}).cfg.io_threads, 1u);
    EXPECT_EQ(load({cfg}).cfg.max_connections, 11u);
    EXPECT_EQ(load({cfg}).cfg.config_file, file.path());
    EXPECT_EQ(load({}, {env}).cfg.io_threads, 2u);
    EXPECT_EQ(load({}).cfg.io_threads, 0u);
    // The file may be named by the environment too; a flag still wins over both.
    EXPECT_EQ(load({}, {"POSRELAY_CONFIG=" + file.path()}).cfg.io_threads, 1u);
    EXPECT_EQ(load({"--io-threads=3"}, {"POSRELAY_CONFIG=" + file.path(), env}).cfg.io_threads, 3u);
    // An empty variable is ignored.
    EXPECT_EQ(load({cfg}, {"POSRELAY_IO_THREADS="}).cfg.io_threads, 1u);
}

TEST(Config, ValidationErrorsNameTheOption) {
    EXPECT_EQ(error_of({"--io-threads=abc"}),
              "invalid value for --io-threads: 'abc' (expected a whole number)");
    EXPECT_EQ(error_of({"--io-threads=257"}),
              "invalid value for --io-threads: '257' (must be between 0 and 256)");
    EXPECT_EQ(error_of({"--io-threads=-1"}),
              "invalid value for --io-threads: '-1' (expected a whole number)");
    EXPECT_EQ(error_of({"--io-threads=99999999999999999999999"}),
              "invalid value for --io-threads: '99999999999999999999999' (must be between 0 "
              "and 256)");

    const std::vector<std::pair<std::string, std::string>> bad = {
        {"--max-connections=0", "--max-connections"},
        {"--max-connections=1000001", "--max-connections"},
        {"--max-header-bytes=1023", "--max-header-bytes"},
        {"--max-header-bytes=1048577", "--max-header-bytes"},
        {"--max-body-bytes=1023", "--max-body-bytes"},
        {"--max-body-bytes=16777217", "--max-body-bytes"},
        {"--header-timeout=0", "--header-timeout"},
        {"--body-timeout=-1s", "--body-timeout"},
        {"--idle-timeout=soon", "--idle-timeout"},
        {"--write-timeout=10x", "--write-timeout"},
        {"--shutdown-timeout=-5", "--shutdown-timeout"},
        {"--listen=0.0.0.0", "--listen"},
        {"--listen=:8080", "--listen"},
        {"--listen=localhost:65536", "--listen"},
        {"--log-level=verbose", "--log-level"},
        {"--confirm-paid=yes", "--confirm-paid"},
    };
    for (const auto& [arg, option] : bad) {
        const auto msg = error_of({arg});
        EXPECT_EQ(msg.rfind("invalid value for " + option + ": '", 0), 0u) << arg << " -> " << msg;
    }
    EXPECT_NE(error_of({"--log-level=verbose"}).find("debug, info, warn or error"),
              std::string::npos);
    EXPECT_NE(error_of({"--listen=0.0.0.0"}).find("missing port"), std::string::npos);
    // An empty value: refused by program_options on the command line, by us in a file.
    EXPECT_NE(error_of({"--server-key-file="}).find("--server-key-file"), std::string::npos);
    temp_file file("server-key-file =\n");
    EXPECT_EQ(error_of({"--config=" + file.path()}),
              "invalid value for " + file.path() + ":server-key-file: '' (expected a file path)");
}

// The admin listener: off unless set; an address of its own, never a port another listener has
// (with SO_REUSEPORT the two would share it and split its traffic).
TEST(Config, AdminListenIsOffByDefaultAndNeedsAPortOfItsOwn) {
    EXPECT_FALSE(load({}).cfg.admin_listen.has_value());
    EXPECT_EQ(load({}).cfg.admin_max_connections, 64u);
    const auto r = load({"--admin-listen=127.0.0.1:9090", "--admin-max-connections=8"},
                        {"POSRELAY_LISTEN=0.0.0.0:8080"});
    ASSERT_TRUE(r.cfg.admin_listen.has_value());
    EXPECT_EQ(r.cfg.admin_listen->to_string(), "127.0.0.1:9090");
    EXPECT_EQ(r.cfg.admin_max_connections, 8u);
    EXPECT_FALSE(load({"--admin-listen=off"}).cfg.admin_listen.has_value());
    // Port 0 (a free port, tests) may be given to several listeners.
    EXPECT_EQ(error_of({"--listen=127.0.0.1:0", "--admin-listen=127.0.0.1:0"}), "");

    EXPECT_EQ(error_of({"--listen=0.0.0.0:8080", "--admin-listen=127.0.0.1:8080"}),
              "admin-listen and listen use the same port 8080: give the admin listener a port of "
              "its own");
    EXPECT_NE(error_of({"--admin-listen=[::1]:7070"}).find("admin-listen and terminal-listen"),
              std::string::npos);
    EXPECT_NE(error_of({"--terminal-tls-listen=0.0.0.0:7443", "--admin-listen=127.0.0.1:7443"})
                  .find("admin-listen and terminal-tls-listen"),
              std::string::npos);
    EXPECT_EQ(
        error_of({"--admin-listen=127.0.0.1"}).rfind("invalid value for --admin-listen: '", 0), 0u);
    EXPECT_NE(error_of({"--admin-max-connections=0"}).find("must be between 1 and 10000"),
              std::string::npos);
}

// Paid is confirmed unless the operator says otherwise, by any of the three sources.
TEST(Config, ConfirmPaidIsOnByDefault) {
    EXPECT_TRUE(load({}).cfg.confirm_paid);
    EXPECT_FALSE(load({"--confirm-paid=false"}).cfg.confirm_paid);
    EXPECT_FALSE(load({}, {"POSRELAY_CONFIRM_PAID=false"}).cfg.confirm_paid);
    EXPECT_TRUE(load({"--confirm-paid=true"}, {"POSRELAY_CONFIRM_PAID=false"}).cfg.confirm_paid);
    EXPECT_EQ(error_of({"--confirm-paid=off"}),
              "invalid value for --confirm-paid: 'off' (expected true or false)");
}

TEST(Config, AuditLogAndClientAddressOptions) {
    const auto d = load({}).cfg;
    EXPECT_TRUE(d.audit_log);
    EXPECT_TRUE(d.trusted_proxies.empty());
    EXPECT_FALSE(d.proxy_protocol);
    EXPECT_FALSE(d.terminal_proxy_protocol);
    EXPECT_FALSE(load({}, {"POSRELAY_AUDIT_LOG=false"}).cfg.audit_log);
    const auto c = load({"--trusted-proxies=127.0.0.1/32,10.0.0.0/8,::1/128",
                         "--proxy-protocol=true", "--terminal-proxy-protocol=true"})
                       .cfg;
    EXPECT_EQ(c.trusted_proxies, "127.0.0.1/32,10.0.0.0/8,::1/128");
    EXPECT_TRUE(c.proxy_protocol);
    EXPECT_TRUE(c.terminal_proxy_protocol);
    EXPECT_EQ(error_of({"--trusted-proxies=10.0.0.1/8"}),
              "invalid value for --trusted-proxies: '10.0.0.1/8' ('10.0.0.1/8': host bits are set "
              "(the network address has low bits past the prefix))");
    EXPECT_NE(error_of({}, {"POSRELAY_TRUSTED_PROXIES=10.0.0.0/8,nonsense"})
                  .find("POSRELAY_TRUSTED_PROXIES"),
              std::string::npos);
    // A PROXY header is taken only from a trusted proxy: with none, the switch is a mistake.
    EXPECT_EQ(error_of({"--terminal-proxy-protocol=true"}),
              "--terminal-proxy-protocol needs --trusted-proxies: only those peers may send a "
              "PROXY header");
    EXPECT_NE(error_of({"--proxy-protocol=true", "--trusted-proxies=none"}), "");
}

TEST(Config, ErrorsNameTheEnvironmentVariableOrFileOption) {
    EXPECT_EQ(error_of({}, {"POSRELAY_IO_THREADS=abc"}),
              "invalid value for POSRELAY_IO_THREADS: 'abc' (expected a whole number)");
    EXPECT_EQ(error_of({}, {"POSRELAY_HEADER_TIMEOUT=0"}),
              "invalid value for POSRELAY_HEADER_TIMEOUT: '0' (must be greater than 0)");
    temp_file file("max-body-bytes = 12\n");
    EXPECT_EQ(error_of({"--config=" + file.path()}),
              "invalid value for " + file.path() +
                  ":max-body-bytes: '12' (must be between 1024 and 16777216)");
}

TEST(Config, RefusesOptionGivenTwice) {
    EXPECT_NE(error_of({"--io-threads=1", "--io-threads=2"}).find("--io-threads"),
              std::string::npos);
}

TEST(Config, UnknownFileKeyRefused) {
    temp_file file("io-threads = 2\nio-thread = 3\n");
    const auto msg = error_of({"--config=" + file.path()});
    EXPECT_NE(msg.find("unknown option 'io-thread'"), std::string::npos) << msg;
    EXPECT_NE(msg.find(file.path()), std::string::npos) << msg;

    temp_file names_itself("config = /etc/other.conf\n");
    EXPECT_NE(error_of({"--config=" + names_itself.path()}).find("unknown option 'config'"),
              std::string::npos);
}

TEST(Config, MissingConfigFileNamed) {
    const auto msg = error_of({"--config=/nonexistent/posrelay.conf"});
    EXPECT_NE(msg.find("/nonexistent/posrelay.conf"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--config"), std::string::npos) << msg;
}

TEST(Config, SecretsNeverFromArgvAndNeverEchoed) {
    const std::vector<std::vector<std::string>> attempts = {
        {std::string("--server-key=") + secret_value},
        {"--server-key", secret_value},
        {"--server-key-fil", secret_value},  // no prefix guessing
        {std::string("--merchant-keys=M1:") + secret_value},
        {std::string("-s") + secret_value},
        {std::string("-h") + secret_value},
        {secret_value},  // positional
        {"--", secret_value},
        {"--log-level=info", secret_value},
    };
    for (const auto& args : attempts) {
        const auto msg = error_of(args);
        EXPECT_FALSE(msg.empty()) << args.back();
        EXPECT_EQ(msg.find("TOPSECRET"), std::string::npos) << msg;
    }
    const auto msg = error_of({std::string("--server-key=") + secret_value});
    EXPECT_NE(msg.find("unrecognised option '--server-key'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("POSRELAY_SERVER_KEY"), std::string::npos) << msg;
}

TEST(Config, SecretsInConfigFileRefusedWithoutEcho) {
    temp_file as_option(std::string("server-key = ") + secret_value + "\n");
    auto msg = error_of({"--config=" + as_option.path()});
    EXPECT_NE(msg.find("unknown option 'server-key'"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("TOPSECRET"), std::string::npos) << msg;

    temp_file bad_line(std::string("io-threads = 2\n") + secret_value + "\n");
    msg = error_of({"--config=" + bad_line.path()});
    EXPECT_EQ(msg, bad_line.path() + ":2: expected 'name = value'");
}

TEST(Config, DefaultServerKeyFromEnvOrFile) {
    EXPECT_EQ(load({}, {std::string("POSRELAY_SERVER_KEY=") + secret_value})
                  .cfg.default_server_key.view(),
              secret_value);

    temp_file key(std::string(secret_value) + "\n\n");
    EXPECT_EQ(load({"--server-key-file=" + key.path()}).cfg.default_server_key.view(),
              secret_value);
    EXPECT_EQ(load({}, {"POSRELAY_SERVER_KEY_FILE=" + key.path()}).cfg.default_server_key.view(),
              secret_value);

    auto msg = error_of({"--server-key-file=" + key.path()},
                        {std::string("POSRELAY_SERVER_KEY=") + secret_value});
    EXPECT_NE(msg.find("POSRELAY_SERVER_KEY"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--server-key-file"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("TOPSECRET"), std::string::npos) << msg;

    temp_file empty("\n  \n");
    EXPECT_NE(error_of({"--server-key-file=" + empty.path()}).find("is empty"), std::string::npos);
    temp_file two_lines(std::string(secret_value) + "\nsecond-TOPSECRET\n");
    msg = error_of({"--server-key-file=" + two_lines.path()});
    EXPECT_NE(msg.find("one key"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("TOPSECRET"), std::string::npos) << msg;
    EXPECT_NE(error_of({"--server-key-file=/nonexistent/key"}).find("--server-key-file"),
              std::string::npos);
}

TEST(Config, MerchantKeysFromFileAndEnvMerged) {
    temp_file keys(
        "# merchant_id server_key\n"
        "\n"
        "G111 key-one\n"
        "  G222\tkey-two   \n"
        "   # indented comment\n");
    const auto r = load({"--merchant-keys-file=" + keys.path()},
                        {"POSRELAY_MERCHANT_KEYS=G333:key-three, G444:key-four,"});
    const auto& m = r.cfg.merchant_keys;
    ASSERT_EQ(m.size(), 4u);
    EXPECT_EQ(m.at("G111").view(), "key-one");
    EXPECT_EQ(m.at("G222").view(), "key-two");
    EXPECT_EQ(m.at("G333").view(), "key-three");
    EXPECT_EQ(m.at("G444").view(), "key-four");
}

TEST(Config, MerchantDefinedTwiceNamesTheMerchantNotTheKey) {
    temp_file keys("G111 TOPSECRET-a\n");
    auto msg = error_of({"--merchant-keys-file=" + keys.path()},
                        {"POSRELAY_MERCHANT_KEYS=G111:TOPSECRET-b"});
    EXPECT_NE(msg.find("'G111'"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("TOPSECRET"), std::string::npos) << msg;

    msg = error_of({}, {"POSRELAY_MERCHANT_KEYS=G1:TOPSECRET-a,G1:TOPSECRET-b"});
    EXPECT_NE(msg.find("'G1'"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("TOPSECRET"), std::string::npos) << msg;

    temp_file twice("G5 TOPSECRET-a\nG5 TOPSECRET-b\n");
    msg = error_of({"--merchant-keys-file=" + twice.path()});
    EXPECT_NE(msg.find("'G5'"), std::string::npos) << msg;
    EXPECT_NE(msg.find(twice.path() + ":2"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("TOPSECRET"), std::string::npos) << msg;
}

TEST(Config, MalformedMerchantKeysNotEchoed) {
    auto msg = error_of({}, {"POSRELAY_MERCHANT_KEYS=G1:ok,TOPSECRET"});
    EXPECT_EQ(msg, "POSRELAY_MERCHANT_KEYS: entry 2 is not 'merchant_id:server_key'");
    temp_file keys("G1 key\nTOPSECRET\n");
    msg = error_of({"--merchant-keys-file=" + keys.path()});
    EXPECT_EQ(msg, keys.path() + ":2: expected 'merchant_id server_key'");
}

TEST(Config, UnknownEnvironmentCollected) {
    const auto r =
        load({}, {"POSRELAY_IO_THREAD=4", "POSRELAY_LISTEN=127.0.0.1:1",
                  "POSRELAY_REDIS_PASSWORD=x", "POSRELAY_API_TOKEN=x", "POSRELAY_WEBHOOK_SECRET=x",
                  "POSRELAY_OTHER_KEY=x", "POSRELAY_REDIS_URL=redis://x", "POSRELAY_SERVER_KEY=k",
                  "POSRELAY_MERCHANT_KEYS=", "POSRELAY_io_threads=3", "HOME=/root",
                  "NOT_POSRELAY_X=1", "POSRELAY_BOGUS="});
    EXPECT_EQ(
        r.cfg.unknown_env,
        (std::vector<std::string>{"POSRELAY_IO_THREAD", "POSRELAY_io_threads", "POSRELAY_BOGUS"}));
    EXPECT_EQ(r.cfg.listen.to_string(), "127.0.0.1:1");
    EXPECT_EQ(r.cfg.io_threads, 0u);
}

TEST(Config, HelpListsEveryOptionWithDefaultAndEnv) {
    const auto r = load({"--help"}, {"POSRELAY_IO_THREADS=abc"});  // help wins over errors
    EXPECT_EQ(r.action, cli_action::help);
    const auto& h = r.help_text;
    EXPECT_EQ(h.rfind("Usage: posrelay [OPTIONS]\n", 0), 0u) << h;
    EXPECT_LT(h.find("command-line flag"), h.find("environment variable"));
    EXPECT_LT(h.find("environment variable"), h.find("config file"));
    const std::vector<std::pair<std::string, std::string>> options = {
        {"config", "none"},
        {"listen", "0.0.0.0:8080"},
        {"io-threads", "0"},
        {"admin-listen", "off"},
        {"admin-max-connections", "64"},
        {"max-connections", "10000"},
        {"header-timeout", "10s"},
        {"body-timeout", "10s"},
        {"idle-timeout", "75s"},
        {"write-timeout", "10s"},
        {"shutdown-timeout", "10s"},
        {"max-header-bytes", "8192"},
        {"max-body-bytes", "65536"},
        {"log-level", "info"},
        {"server-key-file", "none"},
        {"merchant-keys-file", "none"},
    };
    for (const auto& [name, def] : options) {
        const auto at = h.find("  --" + name + " ");
        ASSERT_NE(at, std::string::npos) << name;
        std::string env = "POSRELAY_";
        for (char c : name)
            env += c == '-' ? '_' : static_cast<char>(std::toupper(c));
        const auto entry_end = h.find("\n  -", at + 1);
        const auto entry = h.substr(at, entry_end - at);
        EXPECT_NE(entry.find("default: " + def + "; env: " + env), std::string::npos) << entry;
    }
    EXPECT_NE(h.find("-h, --help"), std::string::npos);
    EXPECT_NE(h.find("--version"), std::string::npos);
    EXPECT_NE(h.find("POSRELAY_SERVER_KEY"), std::string::npos);
    EXPECT_NE(h.find("POSRELAY_MERCHANT_KEYS"), std::string::npos);

    EXPECT_EQ(load({"-h"}).action, cli_action::help);
}

TEST(Config, RedisSentinelUrlAndItsPasswords) {
    const std::string url = "redis-sentinel://s1:26379,s2:26380/mymaster";
    auto c = load({"--redis-url=" + url}).cfg;
    EXPECT_EQ(c.redis_url, url);
    EXPECT_TRUE(c.redis_sentinel_password.empty());
    // The sentinels' password: the environment or a file, never both, never a flag.
    c = load({}, {"POSRELAY_REDIS_URL=" + url,
                  std::string("POSRELAY_REDIS_SENTINEL_PASSWORD=") + secret_value})
            .cfg;
    EXPECT_EQ(c.redis_sentinel_password.view(), secret_value);
    temp_file file(std::string(secret_value) + "\n");
    c = load({"--redis-sentinel-password-file=" + file.path()}).cfg;
    EXPECT_EQ(c.redis_sentinel_password.view(), secret_value);
    const auto both = error_of({"--redis-sentinel-password-file=" + file.path()},
                               {"POSRELAY_REDIS_SENTINEL_PASSWORD=x"});
    EXPECT_NE(both.find("mutually exclusive"), std::string::npos) << both;
    // The master's password in a sentinel URL: not on the command line.
    const auto e =
        error_of({"--redis-url=redis-sentinel://:" + std::string(secret_value) + "@s1/mymaster"});
    EXPECT_NE(e.find("must not carry a password"), std::string::npos) << e;
    EXPECT_EQ(e.find(secret_value), std::string::npos);
    EXPECT_NE(posrelay::render_effective(c).find("# redis-sentinel-password = <set>"),
              std::string::npos);
    EXPECT_EQ(posrelay::render_effective(c).find(secret_value), std::string::npos);
}

TEST(Config, RedisMinReplicasAck) {
    auto c = load({}).cfg;
    EXPECT_EQ(c.redis_min_replicas_ack, 0u);
    EXPECT_EQ(c.redis_replicas_ack_timeout, 500ms);
    c = load({"--redis-min-replicas-ack=2", "--redis-replicas-ack-timeout=250ms"}).cfg;
    EXPECT_EQ(c.redis_min_replicas_ack, 2u);
    EXPECT_EQ(c.redis_replicas_ack_timeout, 250ms);
    EXPECT_NE(error_of({"--redis-min-replicas-ack=-1"}).find("redis-min-replicas-ack"),
              std::string::npos);
    EXPECT_NE(error_of({"--redis-min-replicas-ack=65"}).find("redis-min-replicas-ack"),
              std::string::npos);
    // WAIT must be answered before the command times out.
    const auto e = error_of({"--redis-min-replicas-ack=1", "--redis-replicas-ack-timeout=2s",
                             "--redis-command-timeout=2s"});
    EXPECT_NE(e.find("less than --redis-command-timeout"), std::string::npos) << e;
    EXPECT_EQ(error_of({"--redis-replicas-ack-timeout=5s"}), "");  // unused without acks
}

TEST(Config, Version) {
    EXPECT_EQ(load({"--version"}).action, cli_action::version);
}

TEST(ConfigEndpoint, Parses) {
    auto e = posrelay::parse_endpoint("0.0.0.0:8080");
    EXPECT_EQ(e.host, "0.0.0.0");
    EXPECT_EQ(e.port, 8080);
    e = posrelay::parse_endpoint("[::1]:0");
    EXPECT_EQ(e.host, "::1");
    EXPECT_EQ(e.port, 0);
    EXPECT_EQ(e.to_string(), "[::1]:0");
    e = posrelay::parse_endpoint("relay.example.com:65535");
    EXPECT_EQ(e.host, "relay.example.com");
    EXPECT_EQ(e.port, 65535);
    EXPECT_EQ(e.to_string(), "relay.example.com:65535");
}

TEST(ConfigEndpoint, Refuses) {
    for (const char* bad :
         {"", "0.0.0.0", "0.0.0.0:", ":8080", "host:65536", "host:99999999999", "host:80a",
          "host:-1", "[::1]", "[::1]8080", "[]:80", "[::1:80", "::1:80", "ho st:80", "[zz]:80"}) {
        EXPECT_THROW((void)posrelay::parse_endpoint(bad), std::invalid_argument) << bad;
    }
}

TEST(ConfigDuration, Parses) {
    EXPECT_EQ(posrelay::parse_duration("250ms"), 250ms);
    EXPECT_EQ(posrelay::parse_duration("10s"), 10s);
    EXPECT_EQ(posrelay::parse_duration("2m"), 2min);
    EXPECT_EQ(posrelay::parse_duration("7d"), 168h);
    EXPECT_EQ(posrelay::parse_duration("1h"), 1h);
    EXPECT_EQ(posrelay::parse_duration("1.5"), 1500ms);
    EXPECT_EQ(posrelay::parse_duration("0.1s"), 100ms);
    EXPECT_EQ(posrelay::parse_duration(".5m"), 30s);
    EXPECT_EQ(posrelay::parse_duration("0"), 0ms);
}

TEST(ConfigDuration, Refuses) {
    for (const char* bad : {"", "-1s", "-0", "abc", "10 s", "10S", "s", ".", "1e3", "inf", "nan",
                            "1.2.3", "+5s", "99999999999h"}) {
        EXPECT_THROW((void)posrelay::parse_duration(bad), std::invalid_argument) << bad;
    }
}

}  // namespace
