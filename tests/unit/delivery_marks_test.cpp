// Delivery marks (include/posrelay/fanout/delivery_marks.hpp): what sessions report is
// gathered per store, one presence entry per (terminal, session), bounded.
#include <gtest/gtest.h>

#include "posrelay/fanout/delivery_marks.hpp"

namespace posrelay::fanout {
namespace {

const session_ref a{"S1", "T1", "sess-a"};

store::presence_update open_of(std::string terminal, std::string session) {
    store::presence_update u;
    u.terminal = std::move(terminal);
    u.session = std::move(session);
    u.node = "n1";
    u.sent_seq = u.acked_seq = 4;
    return u;
}

TEST(DeliveryMarks, MarksOfOneSessionCoalesceIntoOnePresenceEntry) {
    delivery_marks m(100);
    ASSERT_TRUE(m.written(a, delivery_tag::of(5, "INV-1"), 1000, 46000));
    ASSERT_TRUE(m.written(a, delivery_tag::of(6, "INV-2"), 1001, 46001));
    ASSERT_TRUE(m.acked(a, 5, {delivery_tag::of(5, "INV-1")}, 1002, 46002));
    auto batches = m.take();
    ASSERT_EQ(batches.size(), 1u);
    EXPECT_EQ(batches[0].first, "S1");
    const auto& b = batches[0].second;
    ASSERT_EQ(b.presence.size(), 1u);
    EXPECT_FALSE(b.presence[0].open);
    EXPECT_EQ(b.presence[0].sent_seq, 6u);
    EXPECT_EQ(b.presence[0].acked_seq, 5u);
    EXPECT_EQ(b.presence[0].alive_until_ms, 46002);
    // The ack of seq 5 joined its written mark: one entry with both times.
    ASSERT_EQ(b.timeline.size(), 2u);
    EXPECT_EQ(b.timeline[0].order_id, "INV-1");
    EXPECT_EQ(b.timeline[0].written_ms, 1000);
    EXPECT_EQ(b.timeline[0].acked_ms, 1002);
    EXPECT_EQ(b.timeline[1].acked_ms, 0);
    EXPECT_TRUE(m.empty());
    EXPECT_TRUE(m.take().empty());
}

TEST(DeliveryMarks, AnAckWhoseWriteWasFlushedBeforeIsAnEntryOfItsOwn) {
    delivery_marks m(100);
    ASSERT_TRUE(m.written(a, delivery_tag::of(5, "INV-1"), 1000, 46000));
    (void)m.take();
    ASSERT_TRUE(m.acked(a, 5, {delivery_tag::of(5, "INV-1")}, 1002, 46002));
    auto batches = m.take();
    ASSERT_EQ(batches[0].second.timeline.size(), 1u);
    EXPECT_EQ(batches[0].second.timeline[0].written_ms, 0);
    EXPECT_EQ(batches[0].second.timeline[0].acked_ms, 1002);
}

TEST(DeliveryMarks, StoresAndSessionsAreKeptApart) {
    delivery_marks m(100);
    ASSERT_TRUE(m.opened("S1", open_of("T1", "new")));
    ASSERT_TRUE(m.closed({"S1", "T1", "old"}, 2000));  // the replaced session's end
    ASSERT_TRUE(m.alive({"S2", "T1", "x"}, 9000));
    ASSERT_TRUE(m.closed({"S1", "T1", "new"}, 3000));
    auto batches = m.take();
    ASSERT_EQ(batches.size(), 2u);
    const auto& s1 = batches[0].second;
    ASSERT_EQ(s1.presence.size(), 2u);
    EXPECT_EQ(s1.presence[0].session, "new");  // in the order they came
    EXPECT_TRUE(s1.presence[0].open);
    EXPECT_EQ(s1.presence[0].closed_ms, 3000);  // merged into its open
    EXPECT_EQ(s1.presence[0].sent_seq, 4u);
    EXPECT_EQ(s1.presence[1].session, "old");
    EXPECT_FALSE(s1.presence[1].open);
    EXPECT_EQ(batches[1].first, "S2");
}

TEST(DeliveryMarks, PastTheBoundNewMarksAreRefusedButWaitingEntriesStillUpdate) {
    delivery_marks m(3);
    ASSERT_TRUE(m.written(a, delivery_tag::of(1, "O-1"), 1, 10));  // presence + timeline: 2
    ASSERT_TRUE(m.written(a, delivery_tag::of(2, "O-2"), 2, 20));  // + timeline: 3
    EXPECT_EQ(m.size(), 3u);
    EXPECT_FALSE(m.written(a, delivery_tag::of(3, "O-3"), 3, 30));  // timeline refused
    EXPECT_FALSE(m.alive({"S1", "T2", "b"}, 40));                   // new entry refused
    EXPECT_FALSE(m.opened("S9", open_of("T1", "c")));               // new store refused
    EXPECT_TRUE(m.alive(a, 50));                                    // an update: kept
    auto batches = m.take();
    ASSERT_EQ(batches.size(), 1u);
    EXPECT_EQ(batches[0].second.timeline.size(), 2u);
    EXPECT_EQ(batches[0].second.presence[0].sent_seq, 3u);  // the seq still counts
    EXPECT_EQ(batches[0].second.presence[0].alive_until_ms, 50);
    EXPECT_TRUE(m.written(a, delivery_tag::of(4, "O-4"), 4, 60));  // room again after take
}

TEST(DeliveryMarks, AnEventWithoutAnOrderIdMarksPresenceOnly) {
    delivery_marks m(10);
    const auto too_long = delivery_tag::of(7, std::string(51, 'x'));
    EXPECT_EQ(too_long.order_id(), "");
    EXPECT_EQ(delivery_tag::of(7, std::string(50, 'x')).order_id(), std::string(50, 'x'));
    ASSERT_TRUE(m.written(a, too_long, 1, 2));
    auto batches = m.take();
    EXPECT_TRUE(batches[0].second.timeline.empty());
    EXPECT_EQ(batches[0].second.presence[0].sent_seq, 7u);
}

TEST(DeliveryMarks, EventOrderIdReadsTheTopLevelMember) {
    EXPECT_EQ(event_order_id(R"({"seq":1,"order_id":"INV-9","status_conflict":{"a":1}})"), "INV-9");
    EXPECT_EQ(event_order_id(R"({"seq":1})"), "");
    EXPECT_EQ(event_order_id("not json"), "");
    EXPECT_EQ(event_order_id(R"({"order_id":5})"), "");
}

}  // namespace
}  // namespace posrelay::fanout
