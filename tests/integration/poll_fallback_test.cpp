// The status-poll fallback end to end: midtrans-sim drops every notification, so terminals
// learn statuses only through posrelay's polls; the sim counts the status calls it gets.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <ctime>
#include <set>
#include <thread>

#include "midtrans_sim.hpp"
#include "posrelay/fanout/protocol.hpp"
#include "posrelay/store/keys.hpp"
#include "process.hpp"
#include "redis_server.hpp"
#include "terminal_conn.hpp"

namespace posrelay::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

using node = relay_node;

class PollFallback : public ::testing::Test {
protected:
    void SetUp() override {
        redis_.start();
        sim_ = start_midtrans_sim({"--drop-rate", "1.0", "--time-scale", "600"});
    }

    node start_node(std::vector<std::string> extra = {}) {
        const auto port = pick_free_port();
        std::vector<std::string> args = {"--listen",
                                         "127.0.0.1:" + std::to_string(port),
                                         "--io-threads",
                                         "2",
                                         "--terminal-listen",
                                         "127.0.0.1:0",
                                         "--midtrans-url",
                                         sim_.url(),
                                         "--public-url",
                                         "http://127.0.0.1:" + std::to_string(port),
                                         "--midtrans-timeout",
                                         "3s",
                                         "--poll-first-delay",
                                         "1s",
                                         "--poll-max-interval",
                                         "2s",
                                         "--poll-lease",
                                         "2s"};
        // `extra` overrides a default of the same name.
        for (std::size_t i = 0; i + 1 < extra.size(); i += 2) {
            auto it = std::find(args.begin(), args.end(), extra[i]);
            if (it != args.end()) {
                *(it + 1) = extra[i + 1];
            } else {
                args.push_back(extra[i]);
                args.push_back(extra[i + 1]);
            }
        }
        return start_relay_node(std::move(args), relay_env(redis_.url(), sim_server_key));
    }

    // Charges `count` orders PREFIX-i through a terminal of `n`; returns the terminal.
    std::unique_ptr<terminal_conn> charge_all(const node& n, std::string_view prefix, int count) {
        auto t = std::make_unique<terminal_conn>(n.terminal_port);
        t->hello("T-P", "S-P");
        for (int i = 0; i < count; ++i) {
            const std::string id = std::string(prefix) + std::to_string(i);
            t->send_line(R"({"op":"charge","id":")" + id + R"(","order_id":")" + id +
                         R"(","gross_amount":1000})");
            for (;;) {
                auto f = t->read_frame(seconds(10));
                if (!f) throw std::runtime_error("no answer to charge " + id);
                if (str(*f, "op") == "event")
                    t->ack(static_cast<std::uint64_t>(f->at("seq").as_int64()));
                if (str(*f, "op") == "error") throw std::runtime_error(boost::json::serialize(*f));
                if (str(*f, "op") == "result" && str(*f, "id") == id) break;
            }
        }
        return t;
    }

    // Reads events until every order in `orders` has reached `status`; returns how many did.
    static std::size_t wait_for_status(terminal_conn& t, std::set<std::string> orders,
                                       std::string_view status, milliseconds timeout,
                                       std::string_view want_source = "poll") {
        const std::size_t total = orders.size();
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!orders.empty() && std::chrono::steady_clock::now() < deadline) {
            auto f = t.read_frame(milliseconds(200));
            if (!f) continue;
            if (str(*f, "op") == "ping") t.send_line(R"({"op":"pong"})");
            if (str(*f, "op") != "event") continue;
            t.ack(static_cast<std::uint64_t>(f->at("seq").as_int64()));
            if (str(*f, "transaction_status") == status &&
                (want_source.empty() || str(*f, "source") == want_source)) {
                orders.erase(str(*f, "order_id"));
            }
        }
        return total - orders.size();
    }

    static std::set<std::string> ids(std::string_view prefix, int count) {
        std::set<std::string> out;
        for (int i = 0; i < count; ++i)
            out.insert(std::string(prefix) + std::to_string(i));
        return out;
    }

    redis_server redis_;
    sim_process sim_;
};

// Calls of `command` Redis has counted (INFO commandstats); 0 when never called.
std::int64_t command_calls(const redis_server& r, std::string_view command) {
    const std::string info = r.cli({"INFO", "commandstats"});
    const std::string key = "cmdstat_" + std::string(command) + ":calls=";
    const auto at = info.find(key);
    return at == std::string::npos ? 0 : std::stoll(info.substr(at + key.size()));
}

// Both scripts are loaded on connect and run by EVALSHA: the poll loop's calls never send the
// body (they did, with EVAL, on every call). After SCRIPT FLUSH each script is sent once
// more, counted per script, and polling and commits go on.
TEST_F(PollFallback, ScriptsRunBySha1AndAreReloadedOnceAfterScriptFlush) {
    auto n = start_node({"--poll-rate", "10"});
    const auto evalsha_at_start = command_calls(redis_, "evalsha");
    // The idle loop claims about once a second.
    ASSERT_TRUE(wait_until([&] { return command_calls(redis_, "evalsha") >= evalsha_at_start + 3; },
                           seconds(15)));
    EXPECT_EQ(command_calls(redis_, "eval"), 0);

    ASSERT_EQ(redis_.cli({"SCRIPT", "FLUSH"}), "OK");
    auto t = charge_all(n, "F-", 1);
    ASSERT_EQ(sim_pay(sim_.port, "F-0").result_int(), 200);
    EXPECT_EQ(wait_for_status(*t, ids("F-", 1), "settlement", seconds(30)), 1u);
    const auto m = http_client(n.p.port).get("/metrics").body();
    EXPECT_EQ(metric_value(m, R"(posrelay_redis_script_loads_total{script="poll"})"), 1) << m;
    EXPECT_EQ(metric_value(m, R"(posrelay_redis_script_loads_total{script="order"})"), 1);
    // The activity script (the terminal's delivery marks) too, once its marks are flushed.
    EXPECT_TRUE(wait_until([&] { return command_calls(redis_, "eval") >= 3; }, seconds(10)));
    EXPECT_EQ(metric_value(http_client(n.p.port).get("/metrics").body(),
                           R"(posrelay_redis_script_loads_total{script="activity"})"),
              1);
    EXPECT_EQ(command_calls(redis_, "eval"), 3);  // one body per script, then EVALSHA again
}

TEST_F(PollFallback, EveryPaidOrderReachesItsTerminalByPollWithinTheBudget) {
    auto n = start_node({"--poll-rate", "10"});
    auto t = charge_all(n, "P-", 20);
    for (int i = 0; i < 20; ++i)
        ASSERT_EQ(sim_pay(sim_.port, "P-" + std::to_string(i)).result_int(), 200);
    EXPECT_EQ(wait_for_status(*t, ids("P-", 20), "settlement", seconds(30)), 20u);
    const auto stats = sim_stats(sim_.port);
    EXPECT_EQ(stats.at("notifications_acked").as_int64(), 0);  // every one was dropped
    EXPECT_GT(stats.at("status_calls").as_int64(), 0);
    EXPECT_LE(stats.at("status_calls_max_in_any_second").as_int64(), 10);
}

TEST_F(PollFallback, TwoNodesOneKilledNoOrderLeftUnpolled) {
    auto a = start_node({"--poll-rate", "20"});
    auto b = start_node({"--poll-rate", "20"});
    auto t = charge_all(b, "K-", 20);
    // Node A dies with whatever it had claimed; its leases lapse and B takes them over.
    a.p.proc->signal(SIGKILL);
    ASSERT_TRUE(a.p.proc->wait_exit(seconds(5)).has_value());
    for (int i = 0; i < 20; ++i)
        ASSERT_EQ(sim_pay(sim_.port, "K-" + std::to_string(i)).result_int(), 200);
    EXPECT_EQ(wait_for_status(*t, ids("K-", 20), "settlement", seconds(30)), 20u);
    EXPECT_LE(sim_stats(sim_.port).at("status_calls_max_in_any_second").as_int64(), 20);
}

TEST_F(PollFallback, RestartMidScheduleLosesNoSchedule) {
    auto n = start_node({"--poll-rate", "10", "--poll-first-delay", "30s"});
    { auto t = charge_all(n, "S-", 10); }
    n.p.proc->signal(SIGTERM);
    ASSERT_TRUE(n.p.proc->wait_exit(seconds(15)).has_value());
    for (int i = 0; i < 10; ++i)
        ASSERT_EQ(sim_pay(sim_.port, "S-" + std::to_string(i)).result_int(), 200);
    // The schedule lives in Redis: the restarted node polls them (they are due in 30 s from
    // their charge; wait long enough).
    auto again = start_node({"--poll-rate", "10"});
    terminal_conn t(again.terminal_port);
    t.hello("T-P", "S-P", std::uint64_t{0});
    EXPECT_EQ(wait_for_status(t, ids("S-", 10), "settlement", seconds(50)), 10u);
}

// Key schema v2 kept the schedule in one set, P{poll}:due (a Redis Cluster hot spot): entries a
// node of that version left there, leases included, are moved into the buckets and polled.
TEST_F(PollFallback, EntriesOfTheSingleV2ScheduleAreMovedIntoBucketsAndPolled) {
    auto n = start_node({"--poll-rate", "10", "--poll-first-delay", "60s"});
    { auto t = charge_all(n, "M-", 5); }
    n.p.proc->signal(SIGTERM);
    ASSERT_TRUE(n.p.proc->wait_exit(seconds(15)).has_value());
    for (int i = 0; i < 5; ++i) {
        const std::string id = "M-" + std::to_string(i);
        const std::string bucket = store::keys::poll_due("posrelay:", store::keys::poll_bucket(id));
        ASSERT_EQ(redis_.cli({"ZREM", bucket, id}), "1") << bucket;  // enrolled in its bucket
        ASSERT_EQ(redis_.cli({"ZADD", "posrelay:{poll}:due", "0", id}), "1");
        ASSERT_EQ(sim_pay(sim_.port, id).result_int(), 200);
    }
    // One of them claimed by a node that died.
    ASSERT_EQ(redis_.cli({"HSET", "posrelay:{poll}:leases", "M-0", "gone:1"}), "1");
    // And the single confirmation set: a claim's entry (of an order since gone) moves too.
    ASSERT_EQ(redis_.cli({"ZADD", "posrelay:{poll}:confirm", "0", "M-GONE"}), "1");
    ASSERT_EQ(redis_.cli({"HSET", "posrelay:{poll}:confirm_leases", "M-GONE", "gone:1"}), "1");
    auto again = start_node({"--poll-rate", "10"});
    terminal_conn t(again.terminal_port);
    t.hello("T-P", "S-P", std::uint64_t{0});
    EXPECT_EQ(wait_for_status(t, ids("M-", 5), "settlement", seconds(30)), 5u);
    EXPECT_EQ(redis_.cli({"ZCARD", "posrelay:{poll}:due"}), "0");
    EXPECT_EQ(redis_.cli({"HLEN", "posrelay:{poll}:leases"}), "0");
    EXPECT_TRUE(wait_until(
        [&] {
            return redis_.cli({"EXISTS", "posrelay:{poll}:confirm"}) == "0";
        },
        seconds(5)));
    EXPECT_EQ(redis_.cli({"EXISTS", "posrelay:{poll}:confirm_leases"}), "0");
    const auto m = http_client(again.p.port).get("/metrics").body();
    EXPECT_GE(metric_value(m, "posrelay_poll_lease_takeovers_total"), 1) << m;
}

TEST_F(PollFallback, A429StormSlowsPollingAndNothingBreaks) {
    // Midtrans allows 3 status calls a second; posrelay's budget is 20: most answers are 429
    // until posrelay pauses the fleet as Midtrans asks.
    ASSERT_EQ(sim_config(sim_.port, R"({"status_rate_limit":3})").result_int(), 200);
    auto n = start_node({"--poll-rate", "20"});
    auto t = charge_all(n, "Q-", 10);
    for (int i = 0; i < 10; ++i)
        ASSERT_EQ(sim_pay(sim_.port, "Q-" + std::to_string(i)).result_int(), 200);
    EXPECT_EQ(wait_for_status(*t, ids("Q-", 10), "settlement", seconds(40)), 10u);
    EXPECT_GT(sim_stats(sim_.port).at("status_calls_429").as_int64(), 0);
    EXPECT_EQ(http_client(n.p.port).get("/readyz").result_int(), 200);
    const auto metrics = http_client(n.p.port).get("/metrics").body();
    EXPECT_NE(metrics.find(R"(posrelay_poll_calls_total{outcome="rate_limited"})"),
              std::string::npos);
}

TEST_F(PollFallback, ShortExpiryOrdersAreExpiredByPosrelayAtTheirDeadline) {
    auto n = start_node({"--poll-rate", "10"});
    auto t = std::make_unique<terminal_conn>(n.terminal_port);
    t->hello("T-P", "S-P");
    t->send_line(R"({"op":"charge","id":"x","order_id":"X-1","gross_amount":1000,"expiry":60})");
    // Due at its deadline, 60 s after the charge: posrelay calls /expire then.
    std::set<std::string> want{"X-1"};
    EXPECT_EQ(wait_for_status(*t, want, "expire", seconds(75), ""), 1u);
}

TEST_F(PollFallback, AnOrderPastExpiryAndGraceWithNoFinalStatusIsFlaggedUnknown) {
    // Registered by the operator, expired a minute ago, and Midtrans has never heard of it
    // (status 404): one more poll, then the terminal is told the status is unknown.
    auto n = start_node({"--poll-rate", "10", "--poll-grace", "0s"});
    terminal_conn t(n.terminal_port);
    t.hello("T-U", "S-U");
    const auto past = std::chrono::system_clock::now() - std::chrono::minutes(1) +
                      std::chrono::hours(7);  // Asia/Jakarta
    const std::time_t tt = std::chrono::system_clock::to_time_t(past);
    std::tm tm{};
    ::gmtime_r(&tt, &tm);
    char expiry[32];
    std::strftime(expiry, sizeof expiry, "%Y-%m-%d %H:%M:%S", &tm);
    http_client h(n.p.port);
    const auto reg = h.request(
        boost::beast::http::verb::post, "/v1/orders",
        R"({"order_id":"U-1","gross_amount":"5000","terminal_id":"T-U","store_id":"S-U","expiry_time":")" +
            std::string(expiry) + "\"}",
        "application/json", {{"Authorization", "Bearer " + std::string(test_operator_token)}});
    ASSERT_EQ(reg.result_int(), 201) << reg.body();
    auto e = t.next_event(seconds(15));
    ASSERT_TRUE(e);
    EXPECT_EQ(str(*e, "order_id"), "U-1");
    EXPECT_TRUE(e->at("status_unknown").as_bool());
    EXPECT_FALSE(e->at("paid").as_bool());
    const auto metrics = http_client(n.p.port).get("/metrics").body();
    EXPECT_NE(metrics.find("posrelay_poll_orders_unknown_total 1"), std::string::npos);
}

}  // namespace
}  // namespace posrelay::test
