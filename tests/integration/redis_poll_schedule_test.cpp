// The poll schedule on a real Redis (store::redis_poll_schedule): claims across the buckets,
// done, enrol, and the move of key schema v2's single sets into the buckets.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include <thread>

#include "posrelay/io_pool.hpp"
#include "posrelay/metrics/registry.hpp"
#include "posrelay/store/keys.hpp"
#include "posrelay/store/redis_poll_schedule.hpp"
#include "posrelay/store/redis_store.hpp"
#include "redis_server.hpp"

namespace posrelay::test {
namespace {

using store::poll_set;
namespace keys = store::keys;

class RedisPollSchedule : public ::testing::Test {
protected:
    void SetUp() override {
        redis_.start();
        store::redis_options ro;
        ro.unix_path = redis_.unix_path();
        store_ = std::make_unique<store::redis_store>(pool_, ro, store::store_options{}, registry_);
        schedule_ = std::make_unique<store::redis_poll_schedule>(*store_, registry_);
        store_->start();
        pool_.start();
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!store_->ready() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::yield();
        ASSERT_TRUE(store_->ready());
    }
    void TearDown() override {
        store_->stop();
        pool_.stop(false);
        pool_.join();
    }
    template <class T>
    T run(boost::asio::awaitable<T> a) {
        return boost::asio::co_spawn(pool_.context(0), std::move(a), boost::asio::use_future).get();
    }
    static std::string due_key(const std::string& id) {
        return keys::poll_due("posrelay:", keys::poll_bucket(id));
    }

    redis_server redis_;
    metrics::registry registry_;
    io_pool pool_{1};
    std::unique_ptr<store::redis_store> store_;
    std::unique_ptr<store::redis_poll_schedule> schedule_;
};

TEST_F(RedisPollSchedule, ClaimsReachEveryBucketAndDoneReleasesTheLease) {
    // 40 orders over the 16 buckets, all due.
    for (int i = 0; i < 40; ++i) {
        const std::string id = "B-" + std::to_string(i);
        auto [ec, added] = run(schedule_->enrol(poll_set::due, id, 1, ""));
        ASSERT_FALSE(ec) << ec.message();
        EXPECT_TRUE(added);
        EXPECT_EQ(redis_.cli({"ZSCORE", due_key(id), id}), "1");
    }
    EXPECT_FALSE(run(schedule_->enrol(poll_set::due, "B-0", 99, "")).second);  // NX: kept
    auto [ec, batch] = run(schedule_->claim(poll_set::due, std::chrono::seconds(30), 25, "n1"));
    ASSERT_FALSE(ec);
    EXPECT_EQ(batch.entries.size(), 25u);  // stops at max
    auto [ec2, rest] = run(schedule_->claim(poll_set::due, std::chrono::seconds(30), 100, "n1"));
    ASSERT_FALSE(ec2);
    EXPECT_EQ(rest.entries.size(), 15u);  // the others, from every bucket
    ASSERT_TRUE(rest.next_due_ms);        // all leased now: due at the lease's end
    EXPECT_GT(*rest.next_due_ms, store::unix_ms_now() + 20'000);
    EXPECT_EQ(redis_.cli({"HGET", keys::poll_leases("posrelay:", keys::poll_bucket("B-3")), "B-3"}),
              "n1");
    ASSERT_FALSE(run(schedule_->done(poll_set::due, "B-3", std::nullopt)));
    EXPECT_EQ(redis_.cli({"ZSCORE", due_key("B-3"), "B-3"}), "");
    EXPECT_EQ(
        redis_.cli({"HEXISTS", keys::poll_leases("posrelay:", keys::poll_bucket("B-3")), "B-3"}),
        "0");
    auto [sec, st] = run(schedule_->stats());
    ASSERT_FALSE(sec);
    EXPECT_EQ(st.due, 39);
}

TEST_F(RedisPollSchedule, TheV2SingleSetMovesIntoTheBucketsOnceWithItsLeases) {
    ASSERT_EQ(redis_.cli({"ZADD", "posrelay:{poll}:due", "5", "A", "5", "B"}), "2");
    ASSERT_EQ(redis_.cli({"HSET", "posrelay:{poll}:leases", "A", "gone:1"}), "1");
    // B is in both already (a move cut short by a crash): its bucket entry wins.
    ASSERT_EQ(redis_.cli({"ZADD", due_key("B"), "7", "B"}), "1");
    auto [ec, moved] = run(schedule_->migrate(poll_set::due));
    ASSERT_FALSE(ec);
    EXPECT_EQ(moved, 2u);
    EXPECT_EQ(redis_.cli({"ZSCORE", due_key("A"), "A"}), "5");
    EXPECT_EQ(redis_.cli({"ZSCORE", due_key("B"), "B"}), "7");
    EXPECT_EQ(redis_.cli({"EXISTS", "posrelay:{poll}:due", "posrelay:{poll}:leases"}), "0");
    EXPECT_EQ(run(schedule_->migrate(poll_set::due)).second, 0u);  // nothing left: idempotent
    auto [cec, batch] = run(schedule_->claim(poll_set::due, std::chrono::seconds(30), 10, "n2"));
    ASSERT_FALSE(cec);
    ASSERT_EQ(batch.entries.size(), 2u);
    for (const auto& e : batch.entries)
        EXPECT_EQ(e.previous, e.order_id == "A" ? "gone:1" : "") << e.order_id;
}

}  // namespace
}  // namespace posrelay::test
