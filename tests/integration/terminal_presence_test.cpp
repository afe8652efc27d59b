// Terminal presence and order delivery timelines end to end (issue 16, items 3 and 5): two
// posrelay nodes on one redis-server; a terminal's presence is read from the node that does not
// serve it, and an order's timeline shows when its event was written to the till and acked.
#include <gtest/gtest.h>

#include <csignal>
#include <string>

#include "process.hpp"
#include "redis_server.hpp"
#include "terminal_conn.hpp"

namespace posrelay::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A number member (-1 when absent, null or not a number: e.g. not recorded yet).
std::int64_t num(const boost::json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    return v && v->is_int64() ? v->as_int64() : -1;
}

class TerminalPresence : public ::testing::Test {
protected:
    void SetUp() override {
        redis_.start();
        // A short heartbeat: a crashed node's presence lapses after 3 of them.
        const std::vector<std::string> args{
            "--io-threads",         "2", "--terminal-listen", "127.0.0.1:0", "--confirm-paid=false",
            "--terminal-heartbeat", "1s"};
        a_ = start_relay_node(args, relay_env(redis_.url()));
        b_ = start_relay_node(args, relay_env(redis_.url()));
    }

    // GET with the operator token; the body as JSON (null when it is not JSON).
    boost::json::value get(unsigned short port, const std::string& target, int* status = nullptr,
                           bool auth = true) {
        http_client c(port);
        std::map<std::string, std::string> h;
        if (auth) h["Authorization"] = "Bearer " + std::string(test_operator_token);
        const auto res =
            c.request(boost::beast::http::verb::get, target, {}, "application/json", h);
        if (status) *status = res.result_int();
        boost::system::error_code ec;
        auto v = boost::json::parse(res.body(), ec);
        return ec ? boost::json::value() : v;
    }
    boost::json::object presence(unsigned short port, const std::string& store,
                                 const std::string& terminal) {
        return get(port, "/v1/stores/" + store + "/terminals/" + terminal).as_object();
    }
    // The order's delivery to `terminal` (null when there is none).
    boost::json::value delivery(unsigned short port, const std::string& order,
                                const std::string& terminal) {
        const auto v = get(port, "/v1/orders/" + order);
        const auto* d = v.as_object().if_contains("deliveries");
        if (d == nullptr || !d->is_array()) return nullptr;
        for (const auto& e : d->as_array())
            if (e.as_object().at("terminal_id").as_string() == terminal) return e;
        return nullptr;
    }

    redis_server redis_;
    relay_node a_, b_;
};

TEST_F(TerminalPresence, ATerminalOnOneNodeIsSeenOnlineFromTheOtherWithWhatItAcked) {
    terminal_conn t(a_.terminal_port);
    t.hello("T-P1", "S-P");
    ASSERT_TRUE(wait_until(
        [&] { return presence(b_.p.port, "S-P", "T-P1").at("online").as_bool(); }, seconds(10)));
    auto p = presence(b_.p.port, "S-P", "T-P1");
    EXPECT_EQ(p.at("transport").as_string(), "tcp");
    EXPECT_EQ(p.at("last_acked_seq").as_int64(), 0);
    EXPECT_FALSE(str(p, "node").empty());
    EXPECT_EQ(p.at("subscribe_store").as_bool(), false);

    ASSERT_EQ(register_order(b_.p.port, "PR-1", "T-P1", "S-P"), 201);
    ASSERT_EQ(notify(b_.p.port, "PR-1"), 200);
    const auto ev = t.next_event();
    ASSERT_TRUE(ev);
    const auto seq = ev->at("seq").as_int64();
    ASSERT_TRUE(
        wait_until([&] { return num(presence(b_.p.port, "S-P", "T-P1"), "last_sent_seq") == seq; },
                   seconds(10)));
    p = presence(b_.p.port, "S-P", "T-P1");
    EXPECT_EQ(p.at("last_acked_seq").as_int64(), 0);
    EXPECT_EQ(p.at("events_waiting").as_int64(), seq);
    t.ack(static_cast<std::uint64_t>(seq));
    ASSERT_TRUE(
        wait_until([&] { return num(presence(b_.p.port, "S-P", "T-P1"), "last_acked_seq") == seq; },
                   seconds(10)));
    EXPECT_EQ(num(presence(b_.p.port, "S-P", "T-P1"), "events_waiting"), 0);

    // The store's list, from either node.
    terminal_conn t2(b_.terminal_port);
    t2.hello("T-P2", "S-P", std::nullopt, true);
    ASSERT_TRUE(wait_until(
        [&] {
            const auto l = get(a_.p.port, "/v1/stores/S-P/terminals").as_object();
            return l.at("terminals").as_array().size() == 2;
        },
        seconds(10)));
    const auto page = get(a_.p.port, "/v1/stores/S-P/terminals?limit=1").as_object();
    ASSERT_EQ(page.at("terminals").as_array().size(), 1u);
    EXPECT_EQ(page.at("next_cursor").as_string(), "T-P1");
    const auto rest = get(a_.p.port, "/v1/stores/S-P/terminals?limit=1&cursor=T-P1").as_object();
    ASSERT_EQ(rest.at("terminals").as_array().size(), 1u);
    EXPECT_EQ(rest.at("terminals").as_array()[0].at("terminal_id").as_string(), "T-P2");
    EXPECT_EQ(rest.at("terminals").as_array()[0].at("subscribe_store").as_bool(), true);
    EXPECT_TRUE(rest.at("next_cursor").is_null());
}

TEST_F(TerminalPresence, ADisconnectedTerminalIsOfflineAndKeepsItsLastAck) {
    {
        terminal_conn t(a_.terminal_port);
        t.hello("T-D", "S-D");
        ASSERT_EQ(register_order(a_.p.port, "PD-1", "T-D", "S-D"), 201);
        ASSERT_EQ(notify(a_.p.port, "PD-1"), 200);
        const auto ev = t.next_event();
        ASSERT_TRUE(ev);
        t.ack(static_cast<std::uint64_t>(ev->at("seq").as_int64()));
        ASSERT_TRUE(wait_until(
            [&] { return num(presence(b_.p.port, "S-D", "T-D"), "last_acked_seq") == 1; },
            seconds(10)));
    }
    ASSERT_TRUE(wait_until(
        [&] { return !presence(b_.p.port, "S-D", "T-D").at("online").as_bool(); }, seconds(10)));
    const auto p = presence(b_.p.port, "S-D", "T-D");
    EXPECT_FALSE(p.at("disconnected_ms").is_null());
    EXPECT_EQ(p.at("last_acked_seq").as_int64(), 1);
    EXPECT_EQ(p.at("known").as_bool(), true);
}

// A session replaced on another node must not end the newer one's presence when it closes.
TEST_F(TerminalPresence, AnOldSessionsDisconnectLeavesTheNewerOneOnline) {
    auto old_conn = std::make_unique<terminal_conn>(a_.terminal_port);
    old_conn->hello("T-R", "S-R");
    ASSERT_TRUE(wait_until([&] { return presence(b_.p.port, "S-R", "T-R").at("online").as_bool(); },
                           seconds(10)));
    const std::string old_session = str(presence(b_.p.port, "S-R", "T-R"), "session_id");
    terminal_conn fresh(b_.terminal_port);
    fresh.hello("T-R", "S-R");
    ASSERT_TRUE(wait_until(
        [&] { return str(presence(a_.p.port, "S-R", "T-R"), "session_id") != old_session; },
        seconds(10)));
    const std::string node_b = str(presence(a_.p.port, "S-R", "T-R"), "node");
    old_conn.reset();  // the old session closes on node A
    // Node A has written the old session's end once its recorder flushed (its close counted).
    ASSERT_TRUE(wait_until(
        [&] {
            http_client c(a_.p.port);
            return metric_value(
                       c.get("/metrics").body(),
                       R"(posrelay_terminal_disconnects_total{reason="closed_by_peer"})") >= 1;
        },
        seconds(10)));
    // Many flushes later (they come every 5 ms): still the newer session, online.
    ASSERT_FALSE(
        wait_until([&] { return !presence(a_.p.port, "S-R", "T-R").at("online").as_bool(); },
                   milliseconds(500)));
    const auto p = presence(a_.p.port, "S-R", "T-R");
    EXPECT_EQ(str(p, "node"), node_b);
    EXPECT_TRUE(p.at("disconnected_ms").is_null());
}

TEST_F(TerminalPresence, ACrashedNodesTerminalTurnsOfflineWithinThreeHeartbeats) {
    terminal_conn t(a_.terminal_port);
    t.hello("T-C", "S-C");
    ASSERT_TRUE(wait_until([&] { return presence(b_.p.port, "S-C", "T-C").at("online").as_bool(); },
                           seconds(10)));
    a_.p.proc->signal(SIGKILL);
    ASSERT_TRUE(a_.p.proc->wait_exit(seconds(10)));
    ASSERT_TRUE(wait_until(
        [&] { return !presence(b_.p.port, "S-C", "T-C").at("online").as_bool(); }, seconds(6)));
}

TEST_F(TerminalPresence, BadRequestsAreNamed) {
    int st = 0;
    auto v = get(b_.p.port, "/v1/stores/S!/terminals/T", &st);
    EXPECT_EQ(st, 400);
    EXPECT_EQ(str(v.as_object(), "field"), "store_id");
    v = get(b_.p.port, "/v1/stores/S/terminals/T%20X", &st);
    EXPECT_EQ(st, 400);
    EXPECT_EQ(str(v.as_object(), "field"), "terminal_id");
    v = get(b_.p.port, "/v1/stores/S/terminals?limit=0", &st);
    EXPECT_EQ(st, 400);
    EXPECT_EQ(str(v.as_object(), "field"), "limit");
    v = get(b_.p.port, "/v1/stores/S/terminals/T/other", &st);
    EXPECT_EQ(st, 404);
    (void)get(b_.p.port, "/v1/stores/S/terminals/T", &st, false);
    EXPECT_EQ(st, 401);
    // A terminal never seen: online false, known false (not 404: any id may connect).
    v = get(b_.p.port, "/v1/stores/S-N/terminals/T-NEVER", &st);
    EXPECT_EQ(st, 200);
    EXPECT_EQ(v.as_object().at("online").as_bool(), false);
    EXPECT_EQ(v.as_object().at("known").as_bool(), false);
}

TEST_F(TerminalPresence, APaidOrdersTimelineShowsWrittenThenAckedForTheTill) {
    terminal_conn t(a_.terminal_port);
    t.hello("T-TL", "S-TL");
    ASSERT_EQ(register_order(b_.p.port, "TL-1", "T-TL", "S-TL"), 201);
    // Before any event: no deliveries.
    EXPECT_TRUE(get(b_.p.port, "/v1/orders/TL-1").as_object().at("deliveries").as_array().empty());
    ASSERT_EQ(notify(b_.p.port, "TL-1"), 200);
    const auto ev = t.next_event();
    ASSERT_TRUE(ev);
    const auto seq = ev->at("seq").as_int64();
    ASSERT_TRUE(
        wait_until([&] { return !delivery(b_.p.port, "TL-1", "T-TL").is_null(); }, seconds(10)));
    auto d = delivery(b_.p.port, "TL-1", "T-TL").as_object();
    EXPECT_EQ(d.at("seq").as_int64(), seq);
    EXPECT_TRUE(d.at("written_ms").is_int64());
    EXPECT_TRUE(d.at("acked_ms").is_null());  // not acked yet
    t.ack(static_cast<std::uint64_t>(seq));
    ASSERT_TRUE(wait_until(
        [&] { return delivery(b_.p.port, "TL-1", "T-TL").as_object().at("acked_ms").is_int64(); },
        seconds(10)));
    d = delivery(b_.p.port, "TL-1", "T-TL").as_object();
    EXPECT_GE(d.at("acked_ms").as_int64(), d.at("written_ms").as_int64());
    // The timeline lives as long as the record.
    const auto ttl = std::stol(redis_.cli({"PTTL", "posrelay:{s:S-TL}:o:TL-1:timeline"}));
    const auto record_ttl = std::stol(redis_.cli({"PTTL", "posrelay:{s:S-TL}:o:TL-1"}));
    EXPECT_GT(ttl, 0);
    EXPECT_LE(ttl, record_ttl + 1000);
}

}  // namespace
}  // namespace posrelay::test
