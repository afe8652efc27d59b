// Tests of the in-memory commit sink: dedup, the transition check and what is recorded.
#include "posrelay/ingest/memory_commit_sink.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <string>

namespace {

using namespace posrelay::ingest;
using posrelay::midtrans::fraud_status;
using posrelay::midtrans::order_state;
using posrelay::midtrans::transaction_status;

status_update make(std::string_view order_id, transaction_status s,
                   std::optional<fraud_status> f = std::nullopt) {
    status_update u;
    u.set(field::order_id, order_id);
    u.set(field::transaction_status, posrelay::midtrans::to_string(s));
    u.status = s;
    u.fraud = f;
    if (f) u.set(field::fraud_status, posrelay::midtrans::to_string(*f));
    return u;
}

TEST(memory_commit_sink, new_duplicate_and_stale) {
    memory_commit_sink sink;
    EXPECT_TRUE(sink.ready());
    EXPECT_FALSE(sink.state_of("ORD-1").has_value());

    auto r = sink.commit_now(make("ORD-1", transaction_status::pending));
    EXPECT_FALSE(r.ec);
    EXPECT_EQ(r.outcome, commit_outcome::new_update);
    EXPECT_FALSE(r.event_id.empty());

    r = sink.commit_now(make("ORD-1", transaction_status::pending));
    EXPECT_EQ(r.outcome, commit_outcome::duplicate);
    EXPECT_TRUE(r.event_id.empty());

    r = sink.commit_now(make("ORD-1", transaction_status::settlement, fraud_status::accept));
    EXPECT_EQ(r.outcome, commit_outcome::new_update);

    // A repeat of the earlier pending is caught by dedup before the transition check.
    r = sink.commit_now(make("ORD-1", transaction_status::pending));
    EXPECT_EQ(r.outcome, commit_outcome::duplicate);
    r = sink.commit_now(make("ORD-1", transaction_status::expire));
    EXPECT_EQ(r.outcome, commit_outcome::stale);
    EXPECT_EQ(sink.state_of("ORD-1"),
              (order_state{transaction_status::settlement, fraud_status::accept}));

    EXPECT_EQ(sink.count(commit_outcome::new_update), 2U);
    EXPECT_EQ(sink.count(commit_outcome::duplicate), 2U);
    EXPECT_EQ(sink.count(commit_outcome::stale), 1U);
    const auto committed = sink.committed();
    ASSERT_EQ(committed.size(), 2U);
    EXPECT_EQ(committed[0].status, transaction_status::pending);
    EXPECT_EQ(committed[1].status, transaction_status::settlement);
    EXPECT_EQ(committed[1].order_id(), "ORD-1");
}

TEST(memory_commit_sink, settlement_then_pending_stays_settlement) {
    memory_commit_sink sink;
    EXPECT_EQ(sink.commit_now(make("ORD-7", transaction_status::settlement)).outcome,
              commit_outcome::new_update);
    EXPECT_EQ(sink.commit_now(make("ORD-7", transaction_status::pending)).outcome,
              commit_outcome::stale);
    EXPECT_EQ(sink.state_of("ORD-7"), (order_state{transaction_status::settlement, std::nullopt}));
    // The late pending was not recorded as seen: it stays stale, not duplicate.
    EXPECT_EQ(sink.commit_now(make("ORD-7", transaction_status::pending)).outcome,
              commit_outcome::stale);
    EXPECT_EQ(sink.committed().size(), 1U);
}

TEST(memory_commit_sink, dedup_key_includes_fraud_status) {
    memory_commit_sink sink;
    EXPECT_EQ(sink.commit_now(make("ORD-2", transaction_status::capture, fraud_status::challenge))
                  .outcome,
              commit_outcome::new_update);
    EXPECT_EQ(
        sink.commit_now(make("ORD-2", transaction_status::capture, fraud_status::accept)).outcome,
        commit_outcome::new_update);
    EXPECT_EQ(sink.state_of("ORD-2"),
              (order_state{transaction_status::capture, fraud_status::accept}));
    EXPECT_EQ(
        sink.commit_now(make("ORD-2", transaction_status::capture, fraud_status::accept)).outcome,
        commit_outcome::duplicate);
    // Same status, fraud absent instead of accept: a duplicate by the transition rules.
    EXPECT_EQ(sink.commit_now(make("ORD-2", transaction_status::capture)).outcome,
              commit_outcome::duplicate);
}

TEST(memory_commit_sink, orders_are_independent) {
    memory_commit_sink sink;
    EXPECT_EQ(sink.commit_now(make("A", transaction_status::settlement)).outcome,
              commit_outcome::new_update);
    EXPECT_EQ(sink.commit_now(make("B", transaction_status::pending)).outcome,
              commit_outcome::new_update);
    // An order id that is a prefix of another does not collide in the dedup key.
    EXPECT_EQ(sink.commit_now(make("AB", transaction_status::settlement)).outcome,
              commit_outcome::new_update);
    EXPECT_EQ(sink.state_of("A")->status, transaction_status::settlement);
    EXPECT_EQ(sink.state_of("B")->status, transaction_status::pending);
    EXPECT_EQ(sink.committed().size(), 3U);
}

TEST(memory_commit_sink, commit_awaitable_gives_the_same_result) {
    memory_commit_sink sink;
    boost::asio::io_context io;
    auto first = boost::asio::co_spawn(io, sink.commit(make("ORD-9", transaction_status::pending)),
                                       boost::asio::use_future);
    io.run();
    const auto r = first.get();
    EXPECT_FALSE(r.ec);
    EXPECT_EQ(r.outcome, commit_outcome::new_update);
    io.restart();
    auto second = boost::asio::co_spawn(io, sink.commit(make("ORD-9", transaction_status::pending)),
                                        boost::asio::use_future);
    io.run();
    EXPECT_EQ(second.get().outcome, commit_outcome::duplicate);
}

TEST(memory_commit_sink, outcome_names) {
    EXPECT_EQ(to_string(commit_outcome::new_update), "new");
    EXPECT_EQ(to_string(commit_outcome::duplicate), "duplicate");
    EXPECT_EQ(to_string(commit_outcome::stale), "stale");
}

}  // namespace

namespace {

status_update bound(std::string_view signer, std::string_view gross, std::string_view txid,
                    transaction_status s = transaction_status::pending) {
    auto u = make("ORD-B", s);
    u.signer = signer;
    u.set(field::gross_amount, gross);
    u.set(field::transaction_id, txid);
    return u;
}

// The same binding as the Redis script: the first signer, and a new update's amount and
// transaction, bind the order; a refused update changes nothing.
TEST(memory_commit_sink, refuses_updates_bound_elsewhere) {
    memory_commit_sink sink;
    EXPECT_EQ(sink.commit_now(bound("default", "500000.00", "T1")).outcome,
              commit_outcome::new_update);
    auto r = sink.commit_now(bound("m:M-2", "500000.00", "T1", transaction_status::settlement));
    EXPECT_EQ(r.outcome, commit_outcome::refused);
    EXPECT_EQ(r.mismatch, binding_mismatch::merchant);
    r = sink.commit_now(bound("default", "1000.00", "T1", transaction_status::settlement));
    EXPECT_EQ(r.mismatch, binding_mismatch::amount);
    r = sink.commit_now(bound("default", "500000.00", "T2", transaction_status::settlement));
    EXPECT_EQ(r.mismatch, binding_mismatch::transaction);
    EXPECT_EQ(sink.count(commit_outcome::refused), 3u);
    EXPECT_EQ(sink.state_of("ORD-B")->status, transaction_status::pending);
    r = sink.commit_now(bound("default", "500000", "T1", transaction_status::settlement));
    EXPECT_EQ(r.outcome, commit_outcome::new_update);
    EXPECT_EQ(r.mismatch, binding_mismatch::none);
    EXPECT_EQ(to_string(commit_outcome::refused), "refused");
}

}  // namespace
