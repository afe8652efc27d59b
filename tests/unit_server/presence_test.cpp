// Terminal presence and order timelines as the operator API shows them
// (include/posrelay/http/operator_routes.hpp), and the io thread's activity recorder
// (src/fanout/gateway_recorder.hpp) batching sessions' marks against the in-memory store.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json/parse.hpp>

#include "../../src/fanout/gateway_recorder.hpp"
#include "posrelay/http/operator_routes.hpp"
#include "run_coro.hpp"
#include "store_fakes.hpp"

namespace posrelay::test {
namespace {

store::presence_record known(std::int64_t alive_until, std::int64_t closed = 0) {
    store::presence_record p;
    p.terminal = "T1";
    p.known = true;
    p.session = "s1";
    p.node = "node-a";
    p.transport = "tcp";
    p.remote = "10.0.0.7:5000";
    p.epoch = p.counter_epoch = "e1";
    p.connected_ms = 1000;
    p.alive_until_ms = alive_until;
    p.closed_ms = closed;
    p.sent_seq = 9;
    p.acked_seq = 7;
    p.last_seq = 12;
    return p;
}

TEST(Presence, OnlineWhileTheSessionIsOpenAndWithinItsLease) {
    struct row {
        store::presence_record p;
        std::int64_t now;
        bool online;
    };
    store::presence_record unknown;
    store::presence_record no_session = known(5000);
    no_session.session.clear();
    const row rows[] = {
        {known(5000), 4999, true},
        {known(5000), 5000, true},
        {known(5000), 5001, false},        // the node stopped renewing it (crashed)
        {known(5000, 3000), 4000, false},  // closed
        {unknown, 0, false},
        {no_session, 100, false},
    };
    for (const auto& r : rows)
        EXPECT_EQ(http::presence_online(r.p, r.now), r.online) << r.now;
}

TEST(Presence, JsonShowsWhatWasSentAckedAndWaiting) {
    const auto v = boost::json::parse(http::presence_json("S1", known(5000), 4000)).as_object();
    EXPECT_EQ(v.at("online").as_bool(), true);
    EXPECT_EQ(v.at("known").as_bool(), true);
    EXPECT_EQ(v.at("store_id").as_string(), "S1");
    EXPECT_EQ(v.at("terminal_id").as_string(), "T1");
    EXPECT_EQ(v.at("node").as_string(), "node-a");
    EXPECT_EQ(v.at("transport").as_string(), "tcp");
    EXPECT_EQ(v.at("remote").as_string(), "10.0.0.7:5000");
    EXPECT_EQ(v.at("connected_ms").as_int64(), 1000);
    EXPECT_TRUE(v.at("disconnected_ms").is_null());
    EXPECT_EQ(v.at("last_sent_seq").as_int64(), 9);
    EXPECT_EQ(v.at("last_acked_seq").as_int64(), 7);
    EXPECT_EQ(v.at("last_seq").as_int64(), 12);
    EXPECT_EQ(v.at("events_waiting").as_int64(), 5);
    EXPECT_EQ(v.at("subscribe_store").as_bool(), false);

    auto other_epoch = known(5000);
    other_epoch.counter_epoch = "e2";  // renumbered since: the numbers do not compare
    EXPECT_TRUE(boost::json::parse(http::presence_json("S1", other_epoch, 4000))
                    .as_object()
                    .at("events_waiting")
                    .is_null());

    store::presence_record unknown;
    unknown.terminal = "T9";
    unknown.last_seq = 3;
    const auto u = boost::json::parse(http::presence_json("S1", unknown, 4000)).as_object();
    EXPECT_EQ(u.at("online").as_bool(), false);
    EXPECT_EQ(u.at("known").as_bool(), false);
    EXPECT_TRUE(u.at("last_acked_seq").is_null());
    EXPECT_EQ(u.at("last_seq").as_int64(), 3);
}

TEST(Presence, TerminalsPathsAreParsed) {
    struct row {
        const char* target;
        bool ok;
        const char* store;
        const char* terminal;
        bool list;
    };
    const row rows[] = {
        {"/v1/stores/S1/terminals/T1", true, "S1", "T1", false},
        {"/v1/stores/S1/terminals/T1?x=1", true, "S1", "T1", false},
        {"/v1/stores/S1/terminals", true, "S1", "", true},
        {"/v1/stores/S1/terminals/", true, "S1", "", true},
        {"/v1/stores/S1/terminals?limit=5&cursor=T3", true, "S1", "", true},
        {"/v1/stores/S1/terminals/T1/session", false, "", "", false},
        {"/v1/stores/S1/terminalsX", false, "", "", false},
        {"/v1/stores/S1", false, "", "", false},
        {"/v1/stores/S1/orders/T1", false, "", "", false},
        {"/v1/orders/S1", false, "", "", false},
    };
    for (const auto& r : rows) {
        const auto p = http::parse_terminals_path(r.target);
        ASSERT_EQ(p.has_value(), r.ok) << r.target;
        if (!p) continue;
        EXPECT_EQ(p->store, r.store) << r.target;
        EXPECT_EQ(p->terminal, r.terminal) << r.target;
        EXPECT_EQ(p->list, r.list) << r.target;
    }
}

TEST(OrderTimeline, ParsedFromItsHashAndRenderedPerRecipient) {
    const store::order_record stored = {{"T2|4", "1700|0"},
                                        {"T1|9", "1500|1600"},
                                        {"T1|3", "0|1400"},
                                        {"omitted", "2"},
                                        {"junk", "x"}};
    const auto t = store::parse_timeline(stored);
    ASSERT_EQ(t.entries.size(), 3u);
    EXPECT_EQ(t.entries[0].terminal, "T1");
    EXPECT_EQ(t.entries[0].seq, 3u);
    EXPECT_EQ(t.omitted, 2u);

    const store::order_record record = {{"transaction_status", "settlement"}, {"store_id", "S1"}};
    const auto v = boost::json::parse(http::order_json("INV-1", record, t)).as_object();
    const auto& d = v.at("deliveries").as_array();
    ASSERT_EQ(d.size(), 3u);
    EXPECT_EQ(d[0].at("terminal_id").as_string(), "T1");
    EXPECT_TRUE(d[0].at("written_ms").is_null());  // the written mark was lost
    EXPECT_EQ(d[0].at("acked_ms").as_int64(), 1400);
    EXPECT_EQ(d[1].at("seq").as_int64(), 9);
    EXPECT_EQ(d[1].at("written_ms").as_int64(), 1500);
    EXPECT_EQ(d[2].at("terminal_id").as_string(), "T2");
    EXPECT_TRUE(d[2].at("acked_ms").is_null());  // not acknowledged (yet)
    EXPECT_EQ(v.at("deliveries_omitted").as_int64(), 2);
    EXPECT_EQ(v.at("paid").as_bool(), true);

    const auto none = boost::json::parse(http::order_json("INV-1", record, std::nullopt));
    EXPECT_TRUE(none.as_object().at("deliveries").is_null());
    // Without a timeline argument the body is as before.
    EXPECT_FALSE(
        boost::json::parse(http::order_json("INV-1", record)).as_object().contains("deliveries"));
}

// ---- the recorder --------------------------------------------------------------------------

struct recorder_fixture {
    boost::asio::io_context ctx;
    metrics::registry reg;
    fanout::detail::recorder_metrics m{reg};
    fake_terminal_activity store;
    std::shared_ptr<fanout::detail::activity_recorder> rec;
    explicit recorder_fixture(std::size_t max_marks = 8192) {
        rec = std::make_shared<fanout::detail::activity_recorder>(
            ctx.get_executor(), store, m,
            fanout::detail::recorder_options{std::chrono::milliseconds(5), max_marks});
    }
    void written(const char* store_id, const char* terminal, std::uint64_t seq) {
        rec->record([&](fanout::delivery_marks& d) {
            return d.written({store_id, terminal, "s"}, fanout::delivery_tag::of(seq, "O"), 1, 2);
        });
    }
};

TEST(ActivityRecorder, MarksOfManySessionsGoOutAsOneWritePerStore) {
    recorder_fixture f;
    for (std::uint64_t i = 1; i <= 50; ++i) {
        f.written("S1", i % 2 ? "T1" : "T2", i);
        f.written("S2", "T1", i);
    }
    EXPECT_EQ(f.store.batch_count(), 0u);  // nothing written on the sessions' stack
    ASSERT_TRUE(run_until(
        f.ctx, [&] { return f.store.batch_count() == 2; }, std::chrono::seconds(5)));
    f.ctx.restart();
    f.ctx.poll();
    EXPECT_EQ(f.store.batch_count(), 2u);
    std::lock_guard lock(f.store.mutex);
    EXPECT_EQ(f.store.batches[0].second.presence.size(), 2u);
    EXPECT_EQ(f.store.batches[0].second.timeline.size(), 50u);
    EXPECT_EQ(f.m.written.value(), 2u);
    EXPECT_EQ(f.m.dropped.value(), 0u);
}

TEST(ActivityRecorder, WhileAFlushIsInFlightMarksGatherBoundedAndTheExcessIsCounted) {
    recorder_fixture f(10);
    bool open = false;
    f.store.gate = [&] { return open; };
    f.written("S1", "T1", 1);
    // The first flush starts and waits in the store.
    ASSERT_TRUE(run_until(
        f.ctx, [&] { return f.rec->waiting() == 0; }, std::chrono::seconds(5)));
    for (std::uint64_t i = 2; i <= 30; ++i)
        f.written("S1", "T1", i);  // 1 presence entry + 9 timeline marks fit
    EXPECT_EQ(f.rec->waiting(), 10u);
    EXPECT_EQ(f.m.dropped.value(), 20u);
    open = true;
    ASSERT_TRUE(run_until(
        f.ctx, [&] { return f.store.batch_count() == 2; }, std::chrono::seconds(5)));
    std::lock_guard lock(f.store.mutex);
    EXPECT_EQ(f.store.batches[1].second.timeline.size(), 9u);
    EXPECT_EQ(f.store.batches[1].second.presence[0].sent_seq, 30u);  // coalesced: the newest
}

TEST(ActivityRecorder, AFailedWriteIsCountedAndLaterMarksStillGoOut) {
    recorder_fixture f;
    f.store.faults.fail("write_activity", boost::asio::error::timed_out);
    f.written("S1", "T1", 1);
    ASSERT_TRUE(run_until(
        f.ctx, [&] { return f.m.failed.value() == 1; }, std::chrono::seconds(5)));
    f.written("S1", "T1", 2);
    ASSERT_TRUE(run_until(
        f.ctx, [&] { return f.store.batch_count() == 1; }, std::chrono::seconds(5)));
    std::lock_guard lock(f.store.mutex);
    EXPECT_EQ(f.store.presence["S1/T1"].sent_seq, 0u);  // not opened: a non-open write of an
                                                        // unknown session changes nothing
}

TEST(ActivityRecorder, SessionIdsAreUnique) {
    EXPECT_NE(fanout::detail::new_session_id(), fanout::detail::new_session_id());
}

}  // namespace
}  // namespace posrelay::test
