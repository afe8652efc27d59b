// Operator control of terminals end to end (issue 16 items 2 and 3): revocation of a terminal
// and of a whole store, and the operator's disconnect, across two posrelay nodes on one
// redis-server; terminals over TCP. Prints the time from the revoke call to the live session
// closed on the other node (median of 10).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "posrelay/fanout/token_verifier.hpp"
#include "process.hpp"
#include "redis_server.hpp"
#include "terminal_conn.hpp"

namespace posrelay::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
namespace bhttp = boost::beast::http;

class TerminalRevocation : public ::testing::Test {
protected:
    static void SetUpTestSuite() { raise_fd_limit(); }
    void SetUp() override {
        redis_.start();
        a_ = start(extra_args());
        b_ = start(extra_args());
    }
    virtual std::vector<std::string> extra_args() const { return {}; }
    relay_node start(std::vector<std::string> extra) const {
        std::vector<std::string> args = {
            "--io-threads", "2", "--terminal-listen", "127.0.0.1:0", "--confirm-paid", "false"};
        args.insert(args.end(), extra.begin(), extra.end());
        return start_relay_node(std::move(args), relay_env(redis_.url()));
    }

    // An operator call on node `n`; `token` false: without the bearer token.
    static http_response call(const relay_node& n, bhttp::verb v, std::string_view target,
                              bool token = true) {
        std::map<std::string, std::string> h;
        if (token) h["Authorization"] = "Bearer " + std::string(test_operator_token);
        return http_client(n.p.admin_port).request(v, target, "", "application/json", h);
    }
    static boost::json::object json(const http_response& r) {
        return boost::json::parse(r.body()).as_object();
    }
    static double metric(const relay_node& n, std::string_view series) {
        return metric_value(http_client(n.p.admin_port).get("/metrics").body(), series);
    }

    redis_server redis_;
    relay_node a_, b_;
};

// The code of the next frame when it is an error ("" otherwise, "none" when nothing came).
std::string next_error(terminal_conn& c, milliseconds timeout = milliseconds(5000)) {
    for (;;) {
        const auto f = c.read_frame(timeout);
        if (!f) return "none";
        if (str(*f, "op") == "ping") continue;
        return str(*f, "op") == "error" ? str(*f, "code") : "";
    }
}

// The first frame a hello gets: "welcome", or the error's code.
std::string hello_answer(unsigned short port, std::string_view terminal, std::string_view store) {
    terminal_conn c(port);
    const auto f = c.handshake(terminal, store, {});
    return str(f, "op") == "welcome" ? "welcome" : str(f, "code");
}

// True when the connection still answers a ping.
bool alive(terminal_conn& c) {
    c.send_line(R"({"op":"ping","id":"still-there"})");
    for (;;) {
        const auto f = c.read_frame(seconds(5));
        if (!f) return false;
        if (str(*f, "op") == "pong") return str(*f, "id") == "still-there";
    }
}

TEST_F(TerminalRevocation, RevokeClosesTheSessionOnAnotherNodeWithinASecondAndEveryNodeRefuses) {
    terminal_conn bystander(b_.terminal_port);
    bystander.hello("T-KEEP", "S-1");
    std::vector<double> ms;
    for (int i = 0; i < 10; ++i) {
        const std::string t = "T-" + std::to_string(i);
        terminal_conn till(b_.terminal_port);
        till.hello(t, "S-1");
        const auto t0 = std::chrono::steady_clock::now();
        const auto r = call(a_, bhttp::verb::post, "/v1/stores/S-1/terminals/" + t + "/revoke");
        ASSERT_EQ(r.result_int(), 200) << r.body();
        ASSERT_EQ(next_error(till), "revoked") << t;
        ASSERT_TRUE(till.closed_within(seconds(5)));
        const auto took =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count();
        ms.push_back(took);
        EXPECT_LT(took, 1000.0) << t;
        const auto body = json(r);
        EXPECT_EQ(str(body, "status"), "revoked");
        EXPECT_EQ(str(body, "terminal_id"), t);
        EXPECT_GT(body.at("revoked_at").as_int64(), 0);
        EXPECT_GE(body.at("nodes_notified").as_int64(), 1);  // node B holds a terminal of S-1
        // Refused on every node, with the error code the protocol names.
        EXPECT_EQ(hello_answer(a_.terminal_port, t, "S-1"), "revoked");
        EXPECT_EQ(hello_answer(b_.terminal_port, t, "S-1"), "revoked");
    }
    std::sort(ms.begin(), ms.end());
    std::printf(
        "revoke call -> live session closed on another node: median %.1f ms "
        "(min %.1f, max %.1f, n=10)\n",
        (ms[4] + ms[5]) / 2, ms.front(), ms.back());
    // Another terminal of the store, and the same id in another store, are not revoked.
    EXPECT_TRUE(alive(bystander));
    EXPECT_EQ(hello_answer(a_.terminal_port, "T-0", "S-OTHER"), "welcome");
    EXPECT_EQ(metric(b_, R"(posrelay_terminal_sessions_closed_total{reason="revoked"})"), 10);
    EXPECT_EQ(metric(a_, R"(posrelay_terminal_revocations_total{scope="terminal"})"), 10);
    EXPECT_EQ(metric(a_, R"(posrelay_terminal_handshakes_total{outcome="revoked"})"), 10);
    EXPECT_EQ(metric(b_, R"(posrelay_terminal_handshakes_total{outcome="revoked"})"), 10);
}

TEST_F(TerminalRevocation, StoreWideRevokeClosesEveryTerminalOfTheStoreOnly) {
    terminal_conn a1(a_.terminal_port), b2(b_.terminal_port), other(b_.terminal_port);
    a1.hello("T-1", "S-2");
    b2.hello("T-2", "S-2", std::nullopt, true);
    other.hello("T-1", "S-3");
    const auto r = call(a_, bhttp::verb::post, "/v1/stores/S-2/revoke");
    ASSERT_EQ(r.result_int(), 200) << r.body();
    EXPECT_TRUE(json(r).at("terminal_id").is_null());
    EXPECT_EQ(next_error(a1), "revoked");
    EXPECT_EQ(next_error(b2), "revoked");
    EXPECT_TRUE(alive(other));
    for (const auto* n : {&a_, &b_}) {
        EXPECT_EQ(hello_answer(n->terminal_port, "T-1", "S-2"), "revoked");
        EXPECT_EQ(hello_answer(n->terminal_port, "T-NEW", "S-2"), "revoked");
    }
    EXPECT_EQ(metric(a_, R"(posrelay_terminal_revocations_total{scope="store"})"), 1);
    // Kept with a TTL (bounded), under the store's hash tag.
    const long ttl = std::stol(redis_.cli({"TTL", "posrelay:{s:S-2}:revoked"}));
    EXPECT_GT(ttl, 29L * 24 * 3600);
    EXPECT_LE(ttl, 30L * 24 * 3600);
}

TEST_F(TerminalRevocation, DeleteSessionDisconnectsOnAnotherNodeAndTheTerminalMayReconnect) {
    terminal_conn till(b_.terminal_port);
    till.hello("T-1", "S-5");
    const auto r = call(a_, bhttp::verb::delete_, "/v1/stores/S-5/terminals/T-1/session");
    ASSERT_EQ(r.result_int(), 202) << r.body();
    EXPECT_EQ(str(json(r), "status"), "disconnect_sent");
    EXPECT_EQ(next_error(till), "disconnected");
    EXPECT_TRUE(till.closed_within(seconds(5)));
    EXPECT_EQ(hello_answer(b_.terminal_port, "T-1", "S-5"), "welcome");
    EXPECT_EQ(hello_answer(a_.terminal_port, "T-1", "S-5"), "welcome");
    EXPECT_EQ(metric(b_, R"(posrelay_terminal_sessions_closed_total{reason="disconnected"})"), 1);
}

TEST_F(TerminalRevocation, OperatorControlNeedsTheTokenAndValidIds) {
    struct row {
        bhttp::verb verb;
        std::string target;
        bool token;
        int status;
        std::string error;
    } rows[] = {
        {bhttp::verb::post, "/v1/stores/S-1/terminals/T-1/revoke", false, 401, "unauthorized"},
        {bhttp::verb::delete_, "/v1/stores/S-1/terminals/T-1/session", false, 401, "unauthorized"},
        {bhttp::verb::post, "/v1/stores/S-1/revoke", false, 401, "unauthorized"},
        {bhttp::verb::post, "/v1/stores/S%201/revoke", true, 400, "invalid_value"},
        {bhttp::verb::post, "/v1/stores/S-1/terminals/T*1/revoke", true, 400, "invalid_value"},
        {bhttp::verb::delete_, "/v1/stores/S-1/terminals/" + std::string(65, 'x') + "/session",
         true, 400, "invalid_value"},
        {bhttp::verb::post, "/v1/stores/S-1/terminals/T-1/frob", true, 404, "not_found"},
        {bhttp::verb::post, "/v1/stores/S-1/terminals/T-1/revoke/x", true, 404, "not_found"},
        {bhttp::verb::delete_, "/v1/stores/S-1/session", true, 404, "not_found"},
        {bhttp::verb::delete_, "/v1/stores/S-1/terminals/T-1/revoke", true, 404, "not_found"},
    };
    for (const auto& r : rows) {
        const auto res = call(a_, r.verb, r.target, r.token);
        EXPECT_EQ(res.result_int(), r.status) << r.target << " " << res.body();
        EXPECT_EQ(str(json(res), "error"), r.error) << r.target;
    }
    // Nothing was revoked by the refused calls.
    EXPECT_EQ(hello_answer(a_.terminal_port, "T-1", "S-1"), "welcome");
}

// --terminal-revocation-ttl bounds how long a revocation is kept.
class TerminalRevocationTtl : public TerminalRevocation {
    std::vector<std::string> extra_args() const override {
        return {"--terminal-revocation-ttl", "1h"};
    }
};

TEST_F(TerminalRevocationTtl, ARevocationIsKeptForTheConfiguredTime) {
    const auto r = call(b_, bhttp::verb::post, "/v1/stores/S-6/terminals/T-1/revoke");
    ASSERT_EQ(r.result_int(), 200) << r.body();
    EXPECT_EQ(json(r).at("kept_seconds").as_int64(), 3600);
    const long ttl = std::stol(redis_.cli({"TTL", "posrelay:{s:S-6}:t:T-1:revoked"}));
    EXPECT_GT(ttl, 3500);
    EXPECT_LE(ttl, 3600);
    // With no node holding a terminal of the store, the answer says so.
    EXPECT_EQ(json(r).at("nodes_notified").as_int64(), 0);
    EXPECT_EQ(hello_answer(a_.terminal_port, "T-1", "S-6"), "revoked");
}

// ---- with JWTs: issued_at and the observe claim ----------------------------------------------

std::int64_t unix_now() {
    return std::chrono::duration_cast<seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// An HS256 JWT for (terminal, store) signed with the test terminal secret.
std::string jwt(std::string_view terminal, std::string_view store, std::int64_t iat,
                bool observe = false) {
    return fanout::mint_jwt_hs256(test_terminal_secret,
                                  {std::string(terminal), std::string(store), iat, iat + 600,
                                   std::nullopt, "", "posrelay", observe});
}

// Sends a hello with `token`; returns the first frame of the answer.
boost::json::object hello_with(terminal_conn& c, std::string_view terminal, std::string_view store,
                               std::string_view token) {
    boost::json::object h{{"op", "hello"},     {"v", 1},         {"terminal_id", terminal},
                          {"store_id", store}, {"token", token}, {"epoch", ""}};
    c.send_line(boost::json::serialize(h));
    const auto f = c.read_frame();
    if (!f) throw std::runtime_error("no answer to hello");
    return *f;
}
std::string answer_of(const boost::json::object& f) {
    return str(f, "op") == "welcome" ? "welcome" : str(f, "code");
}
std::string jwt_answer(unsigned short port, std::string_view terminal, std::string_view store,
                       std::string_view token) {
    terminal_conn c(port);
    return answer_of(hello_with(c, terminal, store, token));
}

TEST_F(TerminalRevocation, OnlyTokensIssuedAfterTheRevocationAreAccepted) {
    const std::int64_t before = unix_now() - 5;
    terminal_conn live(b_.terminal_port);
    ASSERT_EQ(answer_of(hello_with(live, "T-J", "S-J", jwt("T-J", "S-J", before))), "welcome");
    const auto r = call(a_, bhttp::verb::post, "/v1/stores/S-J/terminals/T-J/revoke");
    ASSERT_EQ(r.result_int(), 200) << r.body();
    const std::int64_t at = json(r).at("revoked_at").as_int64();
    EXPECT_EQ(next_error(live), "revoked");
    for (const auto* n : {&a_, &b_}) {
        EXPECT_EQ(jwt_answer(n->terminal_port, "T-J", "S-J", jwt("T-J", "S-J", before)), "revoked");
        EXPECT_EQ(jwt_answer(n->terminal_port, "T-J", "S-J", jwt("T-J", "S-J", at)), "revoked");
        // Issued the second after: accepted (iat within the clock skew allowance).
        EXPECT_EQ(jwt_answer(n->terminal_port, "T-J", "S-J", jwt("T-J", "S-J", at + 1)), "welcome");
    }
    // A session opened with a newer token stays when the old revocation is sent again.
    terminal_conn fresh(b_.terminal_port);
    ASSERT_EQ(answer_of(hello_with(fresh, "T-J", "S-J", jwt("T-J", "S-J", at + 1))), "welcome");
    EXPECT_EQ(metric(b_, R"(posrelay_terminal_token_checks_total{kind="hs256",outcome="revoked"})"),
              2);
    EXPECT_TRUE(alive(fresh));
}

// At most one observer per terminal and node here.
class TerminalObservers : public TerminalRevocation {
    std::vector<std::string> extra_args() const override {
        return {"--terminal-max-observers", "1"};
    }
};

TEST_F(TerminalObservers, AnObserverGetsTheTillsEventsNeverReplacesItAndIsClosedByRevocation) {
    const std::int64_t iat = unix_now() - 5;
    terminal_conn till(b_.terminal_port);
    till.hello("T-O", "S-O");
    terminal_conn watcher(a_.terminal_port);
    const auto w = hello_with(watcher, "T-O", "S-O", jwt("T-O", "S-O", iat, true));
    ASSERT_EQ(answer_of(w), "welcome") << boost::json::serialize(w);
    EXPECT_TRUE(w.at("observer").as_bool());
    EXPECT_TRUE(alive(till));  // not replaced
    EXPECT_TRUE(wait_until([&] { return metric(a_, "posrelay_terminal_observers") == 1; },
                           milliseconds(5000)));
    // Both get the till's event (the observer on another node).
    ASSERT_EQ(register_order(a_.p.port, "OBS-1", "T-O", "S-O"), 201);
    ASSERT_EQ(notify(a_.p.port, "OBS-1"), 200);
    const auto te = till.next_event();
    const auto oe = watcher.next_event();
    ASSERT_TRUE(te && oe);
    EXPECT_EQ(str(*te, "order_id"), "OBS-1");
    EXPECT_EQ(str(*oe, "order_id"), "OBS-1");
    EXPECT_EQ(te->at("seq"), oe->at("seq"));
    watcher.ack(oe->at("seq").as_int64());
    // The observer makes no requests.
    watcher.send_line(R"({"op":"status","id":"r1","order_id":"OBS-1"})");
    EXPECT_EQ(next_error(watcher), "bad_request");
    // The till reconnecting replaces only its own old session, not the observer.
    terminal_conn till2(b_.terminal_port);
    till2.hello("T-O", "S-O");
    EXPECT_EQ(next_error(till), "replaced");
    EXPECT_TRUE(alive(watcher));
    // Bounded per terminal and node: a second observer on node A is refused, on B accepted.
    EXPECT_EQ(jwt_answer(a_.terminal_port, "T-O", "S-O", jwt("T-O", "S-O", iat, true)),
              "too_many_observers");
    terminal_conn watcher_b(b_.terminal_port);
    ASSERT_EQ(answer_of(hello_with(watcher_b, "T-O", "S-O", jwt("T-O", "S-O", iat, true))),
              "welcome");
    // A disconnect ends the till's session only.
    ASSERT_EQ(call(a_, bhttp::verb::delete_, "/v1/stores/S-O/terminals/T-O/session").result_int(),
              202);
    EXPECT_EQ(next_error(till2), "disconnected");
    EXPECT_TRUE(alive(watcher));
    // A revocation closes the observers too, on every node.
    ASSERT_EQ(call(b_, bhttp::verb::post, "/v1/stores/S-O/terminals/T-O/revoke").result_int(), 200);
    EXPECT_EQ(next_error(watcher), "revoked");
    EXPECT_EQ(next_error(watcher_b), "revoked");
    EXPECT_TRUE(wait_until([&] { return metric(a_, "posrelay_terminal_observers") == 0; },
                           milliseconds(5000)));
    EXPECT_EQ(jwt_answer(a_.terminal_port, "T-O", "S-O", jwt("T-O", "S-O", iat, true)), "revoked");
}

}  // namespace
}  // namespace posrelay::test
