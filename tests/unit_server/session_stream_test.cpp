// The terminal session's stream decisions (src/fanout/gateway_stream.hpp) against the
// in-memory terminal streams: where a hello starts, when a new epoch begins, and the re-check
// of a connected terminal's stream.
#include <gtest/gtest.h>

#include "../../src/fanout/gateway_stream.hpp"
#include "run_coro.hpp"
#include "store_fakes.hpp"

namespace posrelay::test {
namespace {

using fanout::resume_claim;
using fanout::sent_ring;
using fanout::detail::open_stream;
using fanout::detail::open_verdict;
using fanout::detail::recheck_stream;
using fanout::detail::recheck_verdict;

constexpr const char* store_id = "S1";
constexpr const char* terminal_id = "T1";

fanout::detail::open_result open(fake_terminal_streams& s, resume_claim claim) {
    return run_coro(open_stream(s, store_id, terminal_id, true, claim));
}

TEST(SessionStream, AFreshHelloStartsAfterTheNewestEventAndSubscribes) {
    fake_terminal_streams s;
    for (int i = 0; i < 3; ++i)
        s.append(store_id, terminal_id);
    const auto r = open(s, {std::nullopt, std::string_view(""), std::nullopt});
    EXPECT_EQ(r.verdict, open_verdict::start);
    EXPECT_EQ(r.after, 3u);
    EXPECT_EQ(r.pos.epoch, "E1");
    EXPECT_FALSE(r.rotated_from);
    EXPECT_TRUE(s.at(store_id, terminal_id).subscribed);
}

TEST(SessionStream, AResumeWithTheSameEventAtItsSeqReplaysFromThere) {
    fake_terminal_streams s;
    for (int i = 0; i < 5; ++i)
        s.append(store_id, terminal_id);
    const auto r = open(s, {3, std::string_view("E1"), 1003});
    EXPECT_EQ(r.verdict, open_verdict::start);
    EXPECT_EQ(r.after, 3u);
    EXPECT_EQ(s.calls, (std::vector<std::string>{"open", "range"}));  // probed once
}

TEST(SessionStream, AResumeWhoseNextEventsAreTrimmedIsAGap) {
    fake_terminal_streams s;
    for (int i = 0; i < 5; ++i)
        s.append(store_id, terminal_id);
    auto& entries = s.at(store_id, terminal_id).entries;
    entries.erase(entries.begin(), entries.begin() + 4);  // only seq 5 is kept
    const auto r = open(s, {2, std::string_view("E1"), std::nullopt});
    EXPECT_EQ(r.verdict, open_verdict::gap);
}

TEST(SessionStream, AStreamBehindWhatTheTerminalSawStartsANewEpochThenResync) {
    fake_terminal_streams s;
    for (int i = 0; i < 2; ++i)
        s.append(store_id, terminal_id);
    // The terminal saw seq 5 of E1: Redis lost writes after handing them out.
    const auto r = open(s, {5, std::string_view("E1"), 1005});
    EXPECT_EQ(r.verdict, open_verdict::resync);
    ASSERT_TRUE(r.rotated_from);
    EXPECT_EQ(*r.rotated_from, "E1");
    EXPECT_EQ(r.pos.epoch, "E2");
    EXPECT_EQ(r.pos.seq, 0u);  // only events newer than its eid 1005 are carried: none
}

TEST(SessionStream, ASeqNamingAnotherEventRotatesToo) {
    fake_terminal_streams s;
    for (int i = 0; i < 4; ++i)
        s.append(store_id, terminal_id);
    const auto r = open(s, {3, std::string_view("E1"), 999});  // seq 3 is eid 1003 here
    EXPECT_EQ(r.verdict, open_verdict::resync);
    EXPECT_TRUE(r.rotated_from);
}

TEST(SessionStream, AnotherEpochIsResyncWithoutRotating) {
    fake_terminal_streams s;
    s.append(store_id, terminal_id);
    const auto r = open(s, {1, std::string_view("OLD"), 1});
    EXPECT_EQ(r.verdict, open_verdict::resync);
    EXPECT_FALSE(r.rotated_from);
    EXPECT_EQ(r.pos.epoch, "E1");
}

TEST(SessionStream, AStoreFailureOrTimeoutAtAnyStepIsUnavailable) {
    for (const char* step : {"open", "range", "rotate"}) {
        fake_terminal_streams s;
        for (int i = 0; i < 2; ++i)
            s.append(store_id, terminal_id);
        s.faults.fail(step, boost::asio::error::timed_out);
        // Probing (resume_from 1 < 2) reads the range; resume_from 5 rotates.
        const std::uint64_t from = std::string_view(step) == "rotate" ? 5 : 1;
        const auto r = open(s, {from, std::string_view("E1"), 1000 + from});
        EXPECT_EQ(r.verdict, open_verdict::unavailable) << step;
    }
}

TEST(SessionStream, RecheckIsOkWhileTheStreamHoldsWhatWasSent) {
    fake_terminal_streams s;
    sent_ring ring;
    for (int i = 0; i < 3; ++i)
        ring.push(s.append(store_id, terminal_id), 1001 + static_cast<std::uint64_t>(i));
    const auto r = run_coro(recheck_stream(s, store_id, terminal_id, "E1", 3, ring, false));
    EXPECT_EQ(r.verdict, recheck_verdict::ok);
    EXPECT_EQ(r.pos.seq, 3u);
    // A live event that reused a seq: rotate even though the stream looks fine.
    const auto reused = run_coro(recheck_stream(s, store_id, terminal_id, "E1", 3, ring, true));
    EXPECT_EQ(reused.verdict, recheck_verdict::resync);
    EXPECT_TRUE(reused.rotated_from);
}

TEST(SessionStream, RecheckOfALostCounterRotatesAndACountingElsewhereIsResync) {
    fake_terminal_streams s;
    sent_ring ring;
    ring.push(s.append(store_id, terminal_id), 1001);
    s.at(store_id, terminal_id).has_counter = false;  // Redis came back without it
    const auto r = run_coro(recheck_stream(s, store_id, terminal_id, "E1", 1, ring, false));
    EXPECT_EQ(r.verdict, recheck_verdict::resync);
    EXPECT_EQ(r.pos.epoch, "E2");
    const auto again = run_coro(recheck_stream(s, store_id, terminal_id, "E1", 1, ring, false));
    EXPECT_EQ(again.verdict, recheck_verdict::resync);  // E2 now: no second rotation
    EXPECT_FALSE(again.rotated_from);
    s.faults.fail("position", boost::asio::error::timed_out);
    const auto down = run_coro(recheck_stream(s, store_id, terminal_id, "E2", 1, ring, false));
    EXPECT_EQ(down.verdict, recheck_verdict::retry);
}

}  // namespace
}  // namespace posrelay::test
