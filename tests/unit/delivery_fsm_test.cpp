// Tests of delivery_fsm: the join of stream replay and live feed (no gap, no duplicate),
// the inflight limit and cumulative acks, by hand and by a randomised session simulation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <random>
#include <vector>

#include "posrelay/fanout/protocol.hpp"

namespace {

using posrelay::fanout::delivery_fsm;
using action = delivery_fsm::action;

TEST(DeliveryFsm, StartsAfterTheGivenSeq) {
    const delivery_fsm fsm{41, 8};
    EXPECT_EQ(fsm.sent(), 41U);
    EXPECT_EQ(fsm.acked(), 41U);
    EXPECT_EQ(fsm.inflight(), 0U);
    EXPECT_EQ(fsm.next_wanted(), 42U);
    EXPECT_TRUE(fsm.can_send());
    EXPECT_EQ(fsm.offer(41).what, action::drop);
    EXPECT_EQ(fsm.offer(1).what, action::drop);
    EXPECT_EQ(fsm.offer(42).what, action::send);
}

TEST(DeliveryFsm, FromZero) {
    delivery_fsm fsm{0, 1};
    EXPECT_EQ(fsm.offer(0).what, action::drop);
    EXPECT_EQ(fsm.offer(1).what, action::send);
    fsm.on_sent(1);
    EXPECT_EQ(fsm.sent(), 1U);
}

TEST(DeliveryFsm, SendsInOrderAndDropsDuplicates) {
    delivery_fsm fsm{10, 100};
    for (std::uint64_t seq = 11; seq <= 20; ++seq) {
        ASSERT_EQ(fsm.offer(seq).what, action::send);
        fsm.on_sent(seq);
        EXPECT_EQ(fsm.offer(seq).what, action::drop);  // a live copy after the replayed one
    }
    EXPECT_EQ(fsm.sent(), 20U);
    EXPECT_EQ(fsm.inflight(), 10U);
}

TEST(DeliveryFsm, GapMeansFetch) {
    const delivery_fsm fsm{10, 100};
    const auto d = fsm.offer(20);
    EXPECT_EQ(d.what, action::fetch);
    EXPECT_EQ(d.fetch_from, 11U);
    EXPECT_EQ(d.fetch_to, 19U);
    const auto one = fsm.offer(12);
    EXPECT_EQ(one.what, action::fetch);
    EXPECT_EQ(one.fetch_from, 11U);
    EXPECT_EQ(one.fetch_to, 11U);
}

// Resume from 5 while the stream holds up to 10; live event 11 arrives before the replay.
TEST(DeliveryFsm, LiveEventDuringReplay) {
    delivery_fsm fsm{5, 100};
    const auto d = fsm.offer(11);
    ASSERT_EQ(d.what, action::fetch);
    EXPECT_EQ(d.fetch_from, 6U);
    EXPECT_EQ(d.fetch_to, 10U);
    for (std::uint64_t seq = d.fetch_from; seq <= d.fetch_to; ++seq) {
        ASSERT_EQ(fsm.offer(seq).what, action::send);
        fsm.on_sent(seq);
        if (seq == 8) {
            // Live copies of events the replay already sent, and of a later one.
            EXPECT_EQ(fsm.offer(7).what, action::drop);
            EXPECT_EQ(fsm.offer(11).what, action::fetch);
        }
    }
    EXPECT_EQ(fsm.offer(11).what, action::send);  // the held live event, retried
    fsm.on_sent(11);
    EXPECT_EQ(fsm.offer(10).what, action::drop);  // the replay's batch read one more
    EXPECT_EQ(fsm.offer(12).what, action::send);
}

TEST(DeliveryFsm, InflightLimit) {
    delivery_fsm fsm{0, 3};
    for (std::uint64_t seq = 1; seq <= 3; ++seq) {
        ASSERT_EQ(fsm.offer(seq).what, action::send);
        fsm.on_sent(seq);
    }
    EXPECT_FALSE(fsm.can_send());
    EXPECT_EQ(fsm.offer(4).what, action::wait);
    EXPECT_EQ(fsm.offer(3).what, action::drop);   // duplicates are dropped even when full
    EXPECT_EQ(fsm.offer(6).what, action::fetch);  // a gap is reported even when full
    ASSERT_TRUE(fsm.on_ack(1));
    EXPECT_EQ(fsm.inflight(), 2U);
    EXPECT_EQ(fsm.next_wanted(), 4U);
    EXPECT_EQ(fsm.offer(fsm.next_wanted()).what, action::send);
    fsm.on_sent(4);
    EXPECT_EQ(fsm.offer(5).what, action::wait);
    ASSERT_TRUE(fsm.on_ack(4));
    EXPECT_EQ(fsm.inflight(), 0U);
    EXPECT_EQ(fsm.offer(5).what, action::send);
}

TEST(DeliveryFsm, CumulativeAcks) {
    delivery_fsm fsm{10, 100};
    EXPECT_TRUE(fsm.on_ack(10));   // nothing sent yet: acking the start is harmless
    EXPECT_FALSE(fsm.on_ack(11));  // beyond what was sent: bad_ack
    EXPECT_EQ(fsm.acked(), 10U);
    for (std::uint64_t seq = 11; seq <= 15; ++seq)
        fsm.on_sent(seq);
    EXPECT_TRUE(fsm.on_ack(13));
    EXPECT_EQ(fsm.acked(), 13U);
    EXPECT_EQ(fsm.inflight(), 2U);
    EXPECT_TRUE(fsm.on_ack(12));  // older: no change
    EXPECT_TRUE(fsm.on_ack(13));  // repeated: no change
    EXPECT_TRUE(fsm.on_ack(0));
    EXPECT_EQ(fsm.acked(), 13U);
    EXPECT_FALSE(fsm.on_ack(16));
    EXPECT_FALSE(fsm.on_ack(UINT64_MAX));
    EXPECT_EQ(fsm.acked(), 13U);
    EXPECT_TRUE(fsm.on_ack(15));
    EXPECT_EQ(fsm.acked(), 15U);
    EXPECT_EQ(fsm.inflight(), 0U);
}

TEST(DeliveryFsm, OutOfOrderOnSentIsABug) {
    delivery_fsm fsm{10, 100};
    EXPECT_DEBUG_DEATH(fsm.on_sent(12), "");
    EXPECT_EQ(fsm.sent(), 10U);  // release builds ignore it
    EXPECT_DEBUG_DEATH(fsm.on_sent(10), "");
    EXPECT_EQ(fsm.sent(), 10U);
}

// A session as the gateway runs it: events are appended to the stream (XADD) before they
// are published (live). The live feed may duplicate, reorder and lose messages; the terminal
// acks at random. Whatever happens, the terminal sees start+1..last exactly once, in order,
// and never more than max_inflight unacked events.
class session_sim {
public:
    session_sim(std::uint64_t start_after, std::uint64_t max_inflight, std::uint64_t stream_last)
        : fsm_(start_after, max_inflight),
          max_inflight_(max_inflight),
          stream_last_(stream_last),
          expected_next_(start_after + 1) {}

    // An event with `seq` is available (from the live feed).
    void offer(std::uint64_t seq) {
        const auto d = fsm_.offer(seq);
        if (d.what == action::fetch) {
            ASSERT_LE(d.fetch_to, stream_last_) << "fetch beyond the stream";
            ASSERT_EQ(d.fetch_from, fsm_.next_wanted());
            for (std::uint64_t s = d.fetch_from; s <= d.fetch_to; ++s) {
                if (!offer_one(s)) return;  // full: the rest comes from pump() after acks
            }
        }
        offer_one(seq);
    }
    // Reads on from the stream where the connection stopped: at connect (the replay),
    // after acks, and on the periodic catch-up that covers lost live messages.
    void pump() {
        while (fsm_.can_send() && fsm_.next_wanted() <= stream_last_)
            offer_one(fsm_.next_wanted());
    }
    void ack(std::uint64_t seq) {
        ASSERT_TRUE(fsm_.on_ack(seq));
        pump();
    }
    std::uint64_t append() { return ++stream_last_; }

    [[nodiscard]] const delivery_fsm& fsm() const { return fsm_; }
    [[nodiscard]] std::uint64_t stream_last() const { return stream_last_; }
    [[nodiscard]] const std::vector<std::uint64_t>& delivered() const { return delivered_; }

private:
    // False when the event could not go out (the connection is full).
    bool offer_one(std::uint64_t seq) {
        const auto d = fsm_.offer(seq);
        EXPECT_NE(d.what, action::fetch);
        if (d.what != action::send) return d.what == action::drop;
        EXPECT_EQ(seq, expected_next_);
        expected_next_ = seq + 1;
        delivered_.push_back(seq);
        fsm_.on_sent(seq);
        EXPECT_LE(fsm_.inflight(), max_inflight_);
        return true;
    }

    delivery_fsm fsm_;
    std::uint64_t max_inflight_;
    std::uint64_t stream_last_;
    std::uint64_t expected_next_;
    std::vector<std::uint64_t> delivered_;
};

TEST(DeliveryFsm, RandomisedReplayThenLive) {
    for (unsigned seed = 1; seed <= 300; ++seed) {
        SCOPED_TRACE(seed);
        std::mt19937_64 rng{seed};
        const auto below = [&](std::uint64_t n) { return rng() % n; };
        const std::uint64_t already = below(40);         // in the stream before connecting
        const std::uint64_t start = below(already + 1);  // resume_from (or last_seq)
        const std::uint64_t max_inflight = 1 + below(6);
        const std::uint64_t total = already + below(150);
        session_sim sim{start, max_inflight, already};
        if (below(2) == 0) sim.pump();  // the replay may start before or after live events

        std::deque<std::uint64_t> live;  // published, not yet received by this node
        // Events published just before the connection subscribed may still be in flight.
        for (std::uint64_t s = start + 1; s <= already; ++s) {
            if (below(3) == 0) live.push_back(s);
        }
        while (sim.stream_last() < total || !live.empty()) {
            const auto step = below(100);
            if (step < 35 && sim.stream_last() < total) {
                const std::uint64_t seq = sim.append();
                const auto fate = below(10);
                if (fate == 0) continue;  // lost
                const std::size_t copies = fate == 1 ? 2 : 1;
                for (std::size_t c = 0; c < copies; ++c) {
                    // Reordered by up to two places.
                    const std::size_t back = std::min<std::size_t>(live.size(), below(3));
                    live.insert(live.end() - static_cast<std::ptrdiff_t>(back), seq);
                }
            } else if (step < 75 && !live.empty()) {
                const std::uint64_t seq = live.front();
                live.pop_front();
                sim.offer(seq);
            } else if (step < 95) {
                const auto& fsm = sim.fsm();
                // Cumulative acks, sometimes stale.
                const std::uint64_t seq = fsm.acked() + below(fsm.sent() - fsm.acked() + 1);
                sim.ack(below(5) == 0 ? below(seq + 1) : seq);
            } else {
                sim.pump();
            }
            if (::testing::Test::HasFatalFailure()) return;
        }
        // The terminal acks everything; the catch-up delivers what live messages lost.
        while (sim.fsm().sent() < total || sim.fsm().acked() < sim.fsm().sent()) {
            sim.ack(sim.fsm().sent());
            sim.pump();
        }
        const auto& got = sim.delivered();
        ASSERT_EQ(got.size(), total - start);
        for (std::size_t i = 0; i < got.size(); ++i)
            ASSERT_EQ(got[i], start + 1 + i);
    }
}

}  // namespace
