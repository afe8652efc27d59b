// redis_connection against a real redis-server (TCP and unix socket): replies of every RESP2
// type, 10,000 pipelined commands, AUTH and SELECT, command timeouts, a killed and restarted
// server, queue_full and stop(). Every wait has a deadline; the io_context must run dry at the
// end of each test, which shows that stop() ends every coroutine.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "posrelay/log.hpp"
#include "posrelay/metrics/registry.hpp"
#include "posrelay/store/redis_connection.hpp"
#include "redis_server.hpp"

namespace posrelay::test {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using store::redis_command;
using store::redis_connection;
using store::redis_errc;
using store::redis_options;
using store::redis_reply;
using kind = redis_reply::kind;
using steady = std::chrono::steady_clock;

class RedisConnection : public ::testing::Test {
protected:
    // Options for the test server, over TCP or the unix socket, with short test timeouts.
    redis_options options(bool unix_socket = false) {
        redis_options o = store::parse_redis_url(unix_socket ? server_.unix_url() : server_.url());
        o.connect_timeout = 1s;
        o.command_timeout = 2s;
        o.reconnect_min = 10ms;
        o.reconnect_max = 100ms;
        return o;
    }
    std::shared_ptr<redis_connection> make(redis_options o) {
        return std::make_shared<redis_connection>(io_.get_executor(), std::move(o), metrics_);
    }

    // Runs `body` on io_ to its end, then lets io_ run dry: every connection must have been
    // stopped and every coroutine must have ended. Both are bounded.
    void run(const std::function<asio::awaitable<void>()>& body, std::chrono::seconds limit = 60s) {
        bool done = false;
        std::exception_ptr error;
        asio::co_spawn(io_, body(), [&](std::exception_ptr e) {
            done = true;
            error = std::move(e);
        });
        const auto deadline = steady::now() + limit;
        while (!done && steady::now() < deadline)
            io_.run_one_until(deadline);
        ASSERT_TRUE(done) << "test body did not finish in " << limit.count() << " s";
        if (error) std::rethrow_exception(error);
        io_.run_for(5s);
        EXPECT_TRUE(io_.stopped()) << "work left on the io_context after the test (a leak?)";
    }

    // Polls `pred` on an asio timer until it holds or `limit` passes.
    static asio::awaitable<bool> eventually(std::function<bool()> pred,
                                            std::chrono::milliseconds limit = 10s) {
        asio::steady_timer t(co_await asio::this_coro::executor);
        const auto deadline = steady::now() + limit;
        while (!pred()) {
            if (steady::now() >= deadline) co_return false;
            t.expires_after(5ms);
            co_await t.async_wait(asio::use_awaitable);
        }
        co_return true;
    }
    static asio::awaitable<void> sleep(std::chrono::milliseconds d) {
        asio::steady_timer t(co_await asio::this_coro::executor, d);
        co_await t.async_wait(asio::use_awaitable);
    }

    metrics::registry registry_;
    store::redis_metrics metrics_{registry_};
    asio::io_context io_;
    redis_server server_;
};

// Runs a test over TCP (false) and over the unix socket (true).
class RedisTransport : public RedisConnection, public ::testing::WithParamInterface<bool> {
protected:
    void SetUp() override { server_.start(); }
};
INSTANTIATE_TEST_SUITE_P(Redis, RedisTransport, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "unix" : "tcp"; });

TEST_P(RedisTransport, RepliesOfEveryType) {
    run([&]() -> asio::awaitable<void> {
        auto c = make(options(GetParam()));
        c->start();
        EXPECT_TRUE(co_await eventually([&] { return c->connected(); }));
        EXPECT_EQ(metrics_.connected.value(), 1);

        auto [ec, r] = co_await c->exec(redis_command("SET", "k", "v"));
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_EQ(r.type, kind::status);
        EXPECT_EQ(r.str, "OK");

        std::tie(ec, r) = co_await c->exec(redis_command("GET", "k"));
        EXPECT_EQ(r.type, kind::string);
        EXPECT_EQ(r.str, "v");

        const std::string binary("a\0b\r\nc", 6);  // bulk strings are binary-safe both ways
        std::tie(ec, r) = co_await c->exec(redis_command("SET", "bin", binary));
        std::tie(ec, r) = co_await c->exec(redis_command("GET", "bin"));
        EXPECT_EQ(r.str, binary);

        std::tie(ec, r) = co_await c->exec(redis_command("GET", "missing"));
        EXPECT_FALSE(ec);
        EXPECT_EQ(r.type, kind::nil);

        std::tie(ec, r) = co_await c->exec(redis_command("INCR", "n"));
        EXPECT_EQ(r.type, kind::integer);
        EXPECT_EQ(r.integer, 1);

        std::tie(ec, r) = co_await c->exec(redis_command("RPUSH", "l", "a", "", "c"));
        EXPECT_EQ(r.integer, 3);
        std::tie(ec, r) = co_await c->exec(redis_command("LRANGE", "l", "0", "-1"));
        EXPECT_EQ(r.type, kind::array);
        EXPECT_EQ(r.elements.size(), 3u);
        if (r.elements.size() == 3) {  // (no ASSERT_* in a coroutine: it would `return;`)
            EXPECT_EQ(r.elements[0].str, "a");
            EXPECT_EQ(r.elements[1].str, "");
            EXPECT_EQ(r.elements[2].str, "c");
        }

        std::tie(ec, r) = co_await c->exec(redis_command("EVAL", "return {1, {'x', false}}", "0"));
        EXPECT_EQ(r.type, kind::array);
        EXPECT_EQ(r.elements.size(), 2u);
        if (r.elements.size() == 2) {
            EXPECT_EQ(r.elements[0].integer, 1);
            EXPECT_EQ(r.elements[1].elements.size(), 2u);
            if (r.elements[1].elements.size() == 2) {
                EXPECT_EQ(r.elements[1].elements[1].type, kind::nil);
            }
        }

        // An error reply is a reply, not an error_code; it is counted.
        std::tie(ec, r) = co_await c->exec(redis_command("INCR", "k"));
        EXPECT_FALSE(ec);
        EXPECT_TRUE(r.is_error());
        EXPECT_NE(r.str.find("not an integer"), std::string::npos) << r.str;
        EXPECT_EQ(metrics_.err_reply.value(), 1u);

        EXPECT_EQ(metrics_.in_flight.value(), 0);
        EXPECT_GE(metrics_.latency.read().count, 10u);
        c->stop();
    });
    EXPECT_EQ(metrics_.connected.value(), 0);
}

TEST_P(RedisTransport, TenThousandPipelinedIncrs) {
    constexpr int n = 10'000;
    run([&]() -> asio::awaitable<void> {
        auto o = options(GetParam());
        o.max_pending = 2 * n;
        o.command_timeout = 20s;  // generous under sanitizers
        auto c = make(o);
        c->start();
        EXPECT_TRUE(co_await eventually([&] { return c->connected(); }));

        // All issued in the same turn: they are coalesced and replies come back in order.
        std::vector<long long> got(n, -1);
        int finished = 0, failed = 0;
        for (int i = 0; i < n; ++i) {
            asio::co_spawn(
                io_,
                [&, i]() -> asio::awaitable<void> {
                    auto [ec, r] = co_await c->exec(redis_command("INCR", "counter"));
                    if (ec || r.type != kind::integer) ++failed;
                    got[static_cast<std::size_t>(i)] = r.integer;
                    ++finished;
                },
                asio::detached);
        }
        EXPECT_TRUE(co_await eventually([&] { return finished == n; }, 30s));
        EXPECT_EQ(failed, 0);
        for (int i = 0; i < n; ++i) {
            if (got[static_cast<std::size_t>(i)] != i + 1) {
                ADD_FAILURE() << "command " << i << " got " << got[static_cast<std::size_t>(i)];
                break;
            }
        }
        auto [ec, r] = co_await c->exec(redis_command("GET", "counter"));
        EXPECT_EQ(r.str, std::to_string(n));
        EXPECT_EQ(metrics_.in_flight.value(), 0);
        c->stop();
    });
}

TEST_P(RedisTransport, KilledServerFailsFastAndReconnectsWhenBack) {
    run([&]() -> asio::awaitable<void> {
        auto o = options(GetParam());
        o.command_timeout = 10s;
        auto c = make(o);
        int connects = 0;
        std::string sha;
        // on_connect runs on every (re)connect before other traffic: a restarted server has
        // an empty script cache, so the script is loaded again.
        c->start([&, raw = c.get()]() -> asio::awaitable<void> {
            auto [ec, r] = co_await raw->exec(redis_command("SCRIPT", "LOAD", "return 42"));
            EXPECT_FALSE(ec) << ec.message();
            sha = r.str;
            ++connects;
        });
        EXPECT_TRUE(co_await eventually([&] { return c->connected(); }));
        EXPECT_EQ(connects, 1);
        auto [ec, r] = co_await c->exec(redis_command("EVALSHA", sha, "0"));
        EXPECT_EQ(r.integer, 42);

        // A command blocked in the server when it dies fails with connection_lost.
        bool blpop_done = false;
        boost::system::error_code blpop_ec;
        asio::co_spawn(
            io_,
            [&]() -> asio::awaitable<void> {
                auto [e, rr] = co_await c->exec(redis_command("BLPOP", "nothing", "30"));
                blpop_ec = e;
                blpop_done = true;
            },
            asio::detached);
        co_await sleep(50ms);  // let BLPOP reach the server (not needed for the outcome)
        const auto reconnects_before = metrics_.reconnects.value();
        server_.kill();
        EXPECT_TRUE(co_await eventually([&] { return blpop_done; }, 5s));
        EXPECT_EQ(blpop_ec, redis_errc::connection_lost) << blpop_ec.message();
        EXPECT_TRUE(co_await eventually([&] { return !c->connected(); }, 5s));

        // While down: fail fast, nothing waits for a timeout.
        const auto t0 = steady::now();
        std::tie(ec, r) = co_await c->exec(redis_command("GET", "k"));
        EXPECT_EQ(ec, redis_errc::not_connected);
        EXPECT_LT(steady::now() - t0, 500ms);
        EXPECT_GE(metrics_.err_not_connected.value(), 1u);
        EXPECT_GE(metrics_.err_connection_lost.value(), 1u);
        EXPECT_EQ(metrics_.connected.value(), 0);

        server_.restart();
        EXPECT_TRUE(co_await eventually([&] { return c->connected(); }, 20s));
        EXPECT_GT(metrics_.reconnects.value(), reconnects_before);
        EXPECT_EQ(connects, 2);
        std::tie(ec, r) = co_await c->exec(redis_command("EVALSHA", sha, "0"));
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_EQ(r.integer, 42) << r.str;
        c->stop();
    });
}

class RedisPlain : public RedisConnection {
protected:
    void SetUp() override { server_.start(); }
};

TEST_F(RedisPlain, OnlyOnConnectCommandsPassUntilItReturns) {
    run([&]() -> asio::awaitable<void> {
        auto c = make(options());
        bool outside_done = false;
        boost::system::error_code outside_ec;
        std::string sha;
        const auto load = [raw = c.get()](std::string body) -> asio::awaitable<std::string> {
            auto [ec, r] = co_await raw->exec(redis_command("SCRIPT", "LOAD", std::move(body)));
            co_return ec ? ec.message() : r.str;
        };
        c->start([&, raw = c.get()]() -> asio::awaitable<void> {
            // Someone else's command, issued while on_connect runs: refused, not sent.
            asio::co_spawn(
                io_,
                [&]() -> asio::awaitable<void> {
                    auto [ec, r] = co_await raw->exec(redis_command("PING"));
                    outside_ec = ec;
                    outside_done = true;
                },
                asio::detached);
            sha = co_await load("return 7");  // nested awaitables of on_connect pass
            auto [ec, r] = co_await raw->exec(redis_command("SCRIPT", "EXISTS", sha));
            EXPECT_EQ(r.elements.size(), 1u);
        });
        EXPECT_TRUE(co_await eventually([&] { return c->connected(); }));
        EXPECT_TRUE(outside_done);
        EXPECT_EQ(outside_ec, redis_errc::not_connected);
        auto [ec, r] = co_await c->exec(redis_command("EVALSHA", sha, "0"));
        EXPECT_EQ(r.integer, 7) << sha << " " << r.str;
        c->stop();
    });
}

TEST_F(RedisPlain, SelectsTheConfiguredDatabase) {
    run([&]() -> asio::awaitable<void> {
        auto o3 = options();
        o3.db = 3;
        auto c3 = make(o3);
        auto c0 = make(options());
        c3->start();
        c0->start();
        EXPECT_TRUE(co_await eventually([&] { return c3->connected() && c0->connected(); }));
        auto [ec, r] = co_await c3->exec(redis_command("SET", "only-in-3", "x"));
        EXPECT_EQ(r.str, "OK");
        std::tie(ec, r) = co_await c0->exec(redis_command("GET", "only-in-3"));
        EXPECT_EQ(r.type, kind::nil);
        std::tie(ec, r) = co_await c3->exec(redis_command("GET", "only-in-3"));
        EXPECT_EQ(r.str, "x");
        std::tie(ec, r) = co_await c3->exec(redis_command("CLIENT", "INFO"));
        EXPECT_NE(r.str.find(" db=3 "), std::string::npos) << r.str;
        c3->stop();
        c0->stop();
    });
}

TEST_F(RedisPlain, TimedOutCommandKeepsItsPlaceAndTheConnectionServesOn) {
    run([&]() -> asio::awaitable<void> {
        auto o = options();
        o.command_timeout = 500ms;  // DEBUG SLEEP 0.75 outlives it, but not 2 × 500 ms
        auto c = make(o);
        c->start();
        EXPECT_TRUE(co_await eventually([&] { return c->connected(); }));
        const auto t0 = steady::now();
        auto [ec, r] = co_await c->exec(redis_command("DEBUG", "SLEEP", "0.75"));
        EXPECT_EQ(ec, redis_errc::timeout) << ec.message() << " " << r.str;
        EXPECT_GE(steady::now() - t0, 490ms);
        EXPECT_LT(steady::now() - t0, 750ms);
        // Queued behind the sleeping command: its late "+OK" must be dropped, not given here.
        std::tie(ec, r) = co_await c->exec(redis_command("PING"));
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_EQ(r.str, "PONG");
        std::tie(ec, r) = co_await c->exec(redis_command("ECHO", "after"));
        EXPECT_EQ(r.str, "after");
        EXPECT_TRUE(c->connected());
        EXPECT_EQ(metrics_.reconnects.value(), 0u);
        EXPECT_EQ(metrics_.err_timeout.value(), 1u);
        EXPECT_EQ(metrics_.in_flight.value(), 0);
        c->stop();
    });
}

TEST_F(RedisPlain, ServerSilentForTwiceTheTimeoutIsDeclaredDead) {
    run([&]() -> asio::awaitable<void> {
        auto o = options();
        o.command_timeout = 100ms;  // DEBUG SLEEP 0.5 outlives 2 × 100 ms
        auto c = make(o);
        c->start();
        EXPECT_TRUE(co_await eventually([&] { return c->connected(); }));
        bool second_done = false;
        boost::system::error_code second_ec;
        auto [ec, r] = co_await c->exec(redis_command("DEBUG", "SLEEP", "0.5"));
        EXPECT_EQ(ec, redis_errc::timeout);
        // Sent after the timeout, still behind the sleep: the connection is dropped at 200 ms.
        asio::co_spawn(
            io_,
            [&]() -> asio::awaitable<void> {
                auto [e, rr] = co_await c->exec(redis_command("PING"));
                second_ec = e;
                second_done = true;
            },
            asio::detached);
        EXPECT_TRUE(co_await eventually([&] { return second_done; }, 5s));
        EXPECT_TRUE(second_ec == redis_errc::timeout || second_ec == redis_errc::connection_lost)
            << second_ec.message();
        EXPECT_TRUE(co_await eventually([&] { return metrics_.reconnects.value() >= 1; }, 5s));
        // It comes back by itself once the server is awake again.
        bool pong = false;
        const auto deadline = steady::now() + 10s;
        while (!pong && steady::now() < deadline) {
            std::tie(ec, r) = co_await c->exec(redis_command("PING"));
            pong = !ec && r.str == "PONG";
            if (!pong) co_await sleep(20ms);
        }
        EXPECT_TRUE(pong);
        EXPECT_GE(metrics_.err_connection_lost.value() + metrics_.err_timeout.value(), 2u);
        c->stop();
    });
}

TEST_F(RedisPlain, QueueFullBeyondMaxPending) {
    run([&]() -> asio::awaitable<void> {
        auto o = options();
        o.max_pending = 2;
        auto c = make(o);
        c->start();
        EXPECT_TRUE(co_await eventually([&] { return c->connected(); }));
        int ok = 0, full = 0, finished = 0;
        for (int i = 0; i < 5; ++i) {
            asio::co_spawn(
                io_,
                [&]() -> asio::awaitable<void> {
                    auto [ec, r] = co_await c->exec(redis_command("PING"));
                    if (!ec) ++ok;
                    if (ec == redis_errc::queue_full) ++full;
                    ++finished;
                },
                asio::detached);
        }
        EXPECT_TRUE(co_await eventually([&] { return finished == 5; }));
        EXPECT_EQ(ok, 2);
        EXPECT_EQ(full, 3);
        EXPECT_EQ(metrics_.err_queue_full.value(), 3u);
        auto [ec, r] = co_await c->exec(redis_command("PING"));  // room again
        EXPECT_FALSE(ec);
        c->stop();
    });
}

TEST_F(RedisPlain, StopCompletesPendingCommandsWithStopped) {
    run([&]() -> asio::awaitable<void> {
        auto o = options();
        o.command_timeout = 10s;
        auto c = make(o);
        c->start();
        EXPECT_TRUE(co_await eventually([&] { return c->connected(); }));
        int stopped = 0, finished = 0;
        for (int i = 0; i < 3; ++i) {
            asio::co_spawn(
                io_,
                [&, i]() -> asio::awaitable<void> {
                    auto [ec, r] =
                        co_await c->exec(redis_command("BLPOP", "empty" + std::to_string(i), "30"));
                    if (ec == redis_errc::stopped) ++stopped;
                    ++finished;
                },
                asio::detached);
        }
        EXPECT_TRUE(co_await eventually([&] { return metrics_.in_flight.value() == 3; }));
        c->stop();
        EXPECT_TRUE(co_await eventually([&] { return finished == 3; }, 2s));
        EXPECT_EQ(stopped, 3);
        EXPECT_FALSE(c->connected());
        auto [ec, r] = co_await c->exec(redis_command("PING"));
        EXPECT_EQ(ec, redis_errc::stopped);
        EXPECT_EQ(metrics_.in_flight.value(), 0);
        EXPECT_EQ(metrics_.connected.value(), 0);
        c.reset();  // destroying a stopped connection is fine
    });
}

TEST_F(RedisPlain, NotConnectedBeforeStartAndWhileNothingListens) {
    run([&]() -> asio::awaitable<void> {
        auto o = options();
        o.port = pick_free_port();  // nobody there
        auto c = make(o);
        auto [ec, r] = co_await c->exec(redis_command("PING"));
        EXPECT_EQ(ec, redis_errc::not_connected);
        c->start();
        EXPECT_TRUE(co_await eventually([&] { return metrics_.reconnects.value() >= 2; }));
        std::tie(ec, r) = co_await c->exec(redis_command("PING"));
        EXPECT_EQ(ec, redis_errc::not_connected);
        EXPECT_FALSE(c->connected());
        c->stop();
    });
}

TEST_F(RedisPlain, DestroyingTheConnectionStopsIt) {
    run([&]() -> asio::awaitable<void> {
        auto c = make(options());
        c->start();
        EXPECT_TRUE(co_await eventually([&] { return c->connected(); }));
        c.reset();  // the destructor stops it: the io_context must run dry
        co_return;
    });
}

// Captures log lines in a file while alive.
class log_capture {
public:
    log_capture() {
        char templ[] = "/tmp/posrelay-log-XXXXXX";
        fd_ = ::mkstemp(templ);
        path_ = templ;
        log::set_fd(fd_);
    }
    ~log_capture() {
        log::set_fd(2);
        ::close(fd_);
        ::unlink(path_.c_str());
    }
    log_capture(const log_capture&) = delete;
    log_capture& operator=(const log_capture&) = delete;
    [[nodiscard]] std::string text() const {
        std::ifstream in(path_);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }

private:
    int fd_ = -1;
    std::string path_;
};

constexpr const char* test_password = "s3cr3t/P@ss wörd";

class RedisAuth : public RedisConnection {
protected:
    void SetUp() override {
        redis_server_options o;
        o.password = test_password;
        server_.start(o);
    }
};

TEST_F(RedisAuth, AuthenticatesWithPasswordAndWithAclUser) {
    run([&]() -> asio::awaitable<void> {
        auto o = options();  // the URL carries the percent-encoded password
        EXPECT_EQ(o.password.view(), test_password);
        auto c = make(o);
        auto acl = o;
        acl.username = "default";  // AUTH username password (Redis 6+ ACL form)
        auto c2 = make(acl);
        c->start();
        c2->start();
        EXPECT_TRUE(co_await eventually([&] { return c->connected() && c2->connected(); }));
        auto [ec, r] = co_await c->exec(redis_command("PING"));
        EXPECT_EQ(r.str, "PONG");
        std::tie(ec, r) = co_await c2->exec(redis_command("ACL", "WHOAMI"));
        EXPECT_EQ(r.str, "default");
        c->stop();
        c2->stop();
    });
}

TEST_F(RedisAuth, WrongPasswordIsLoggedWithoutItAndRetried) {
    const log_capture logs;
    constexpr std::string_view wrong = "Wr0ng-Pa55w0rd-XYZ";
    run([&]() -> asio::awaitable<void> {
        auto o = options();
        o.password = secret(std::string(wrong));
        auto c = make(o);
        c->start();
        EXPECT_TRUE(co_await eventually([&] {
            return logs.text().find("redis auth failed") != std::string::npos &&
                   metrics_.reconnects.value() >= 2;
        }));
        EXPECT_FALSE(c->connected());
        auto [ec, r] = co_await c->exec(redis_command("PING"));
        EXPECT_EQ(ec, redis_errc::not_connected);
        c->stop();
    });
    const std::string text = logs.text();
    EXPECT_NE(text.find("WRONGPASS"), std::string::npos) << text;
    EXPECT_NE(text.find(R"("redis":"127.0.0.1:)"), std::string::npos) << text;
    EXPECT_EQ(text.find(wrong), std::string::npos) << text;
    EXPECT_EQ(text.find("Wr0ng"), std::string::npos) << text;
}

TEST_F(RedisAuth, MissingPasswordNeverBecomesReady) {
    run([&]() -> asio::awaitable<void> {
        auto o = options();
        o.password = {};
        auto c = make(o);
        int connects = 0;
        // Without AUTH the server answers NOAUTH; a failing on_connect drops the connection.
        c->start([&, raw = c.get()]() -> asio::awaitable<void> {
            auto [ec, r] = co_await raw->exec(redis_command("SCRIPT", "LOAD", "return 1"));
            ++connects;
            if (r.is_error()) throw std::runtime_error(r.str);
        });
        EXPECT_TRUE(co_await eventually([&] { return connects >= 2; }));
        EXPECT_FALSE(c->connected());
        c->stop();
    });
}

}  // namespace
}  // namespace posrelay::test
