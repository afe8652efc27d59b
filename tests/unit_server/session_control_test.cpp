// A terminal session's side of operator control against the in-memory fakes: the revocation
// check at hello (src/fanout/gateway_control.hpp), the node's memory of recent revocations,
// and an observer's hello, which only reads its terminal's stream (gateway_stream.hpp).
#include <gtest/gtest.h>

#include "../../src/fanout/gateway_control.hpp"
#include "../../src/fanout/gateway_stream.hpp"
#include "run_coro.hpp"
#include "store_fakes.hpp"

namespace posrelay::test {
namespace {

using fanout::control_message;
using fanout::control_op;
using fanout::detail::check_revocation;
using fanout::detail::recent_revocations;
using fanout::detail::revocation_verdict;

revocation_verdict check(fake_terminal_revocations& r, std::int64_t issued_at) {
    return run_coro(check_revocation(r, "S1", "T1", issued_at));
}

TEST(SessionControl, TheHelloChecksTheTerminalsAndTheStoresRevocation) {
    fake_terminal_revocations r;
    EXPECT_EQ(check(r, 0), revocation_verdict::ok);
    (void)run_coro(r.revoke("S1", "T2", 100, std::chrono::seconds(60)));  // another terminal
    (void)run_coro(r.revoke("S2", "", 100, std::chrono::seconds(60)));    // another store
    EXPECT_EQ(check(r, 0), revocation_verdict::ok);
    (void)run_coro(r.revoke("S1", "T1", 100, std::chrono::seconds(60)));
    EXPECT_EQ(check(r, 0), revocation_verdict::revoked);  // a v1 token
    EXPECT_EQ(check(r, 100), revocation_verdict::revoked);
    EXPECT_EQ(check(r, 101), revocation_verdict::ok);
    (void)run_coro(r.revoke("S1", "", 200, std::chrono::seconds(60)));
    EXPECT_EQ(check(r, 101), revocation_verdict::revoked);
    EXPECT_EQ(check(r, 201), revocation_verdict::ok);
    // A revocation never moves back (a node with a slower clock revoking again).
    (void)run_coro(r.revoke("S1", "T1", 50, std::chrono::seconds(60)));
    EXPECT_EQ(r.revoked["S1/T1"], 100);
}

TEST(SessionControl, AStoreThatDoesNotAnswerRefusesTheHello) {
    fake_terminal_revocations r;
    r.faults.fail("read_revocations", boost::asio::error::timed_out);
    EXPECT_EQ(check(r, 0), revocation_verdict::unavailable);
    EXPECT_EQ(check(r, 0), revocation_verdict::ok);
}

TEST(SessionControl, RecentRevocationsAreKeptForAWhileAndBounded) {
    using clock = recent_revocations::clock;
    const auto t0 = clock::now();
    recent_revocations rec(3, std::chrono::seconds(60));
    rec.note({control_op::revoke, "S1", "T1", 100}, t0);
    rec.note({control_op::disconnect, "S1", "T2", 0}, t0);  // not a revocation: not noted
    rec.note({control_op::revoke, "S2", "", 300}, t0);
    EXPECT_EQ(rec.latest("S1", "T1", t0), 100);
    EXPECT_EQ(rec.latest("S1", "T2", t0), 0);
    EXPECT_EQ(rec.latest("S2", "T9", t0), 300);                           // the store's
    EXPECT_EQ(rec.latest("S1", "T1", t0 + std::chrono::seconds(61)), 0);  // forgotten
    // Bounded: the oldest entry goes first.
    rec.note({control_op::revoke, "S3", "T1", 1}, t0 + std::chrono::seconds(1));
    rec.note({control_op::revoke, "S4", "T1", 1}, t0 + std::chrono::seconds(2));
    EXPECT_EQ(rec.size(), 3u);
    EXPECT_EQ(rec.latest("S4", "T1", t0 + std::chrono::seconds(2)), 1);
    EXPECT_EQ(rec.latest("S3", "T1", t0 + std::chrono::seconds(2)), 1);
    EXPECT_EQ(rec.latest("S1", "T1", t0 + std::chrono::seconds(2)) +
                  rec.latest("S2", "T9", t0 + std::chrono::seconds(2)),
              300);  // S1/T1 went (the oldest, tied with S2/*, first in order); S2/* stayed
}

TEST(SessionControl, AnObserversHelloOnlyReadsTheStream) {
    fake_terminal_streams s;
    for (int i = 0; i < 3; ++i)
        s.append("S1", "T1");
    s.at("S1", "T1").subscribed = true;  // the till asked for its store's events
    const auto r = run_coro(fanout::detail::open_stream(
        s, "S1", "T1", false, {std::nullopt, std::string_view(""), std::nullopt}, true));
    EXPECT_EQ(r.verdict, fanout::detail::open_verdict::start);
    EXPECT_EQ(r.after, 3u);
    EXPECT_TRUE(s.at("S1", "T1").subscribed);  // left as the till has it
    EXPECT_EQ(std::count(s.calls.begin(), s.calls.end(), "open"), 0);
    // A terminal with no stream yet: nothing made for it.
    const auto none = run_coro(fanout::detail::open_stream(
        s, "S1", "T-NONE", false, {std::nullopt, std::string_view(""), std::nullopt}, true));
    EXPECT_EQ(none.verdict, fanout::detail::open_verdict::start);
    EXPECT_FALSE(s.at("S1", "T-NONE").has_counter);
}

}  // namespace
}  // namespace posrelay::test
