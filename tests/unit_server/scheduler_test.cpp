// The poll scheduler (src/poll/scheduler.cpp) against the in-memory order store and poll
// schedule and a fake Midtrans: claim → poll → commit → done, the fleet pause after a 429,
// and a claim found by a poll put back in the confirmation set. The scheduler's io thread is
// the test's own (io_pool not started): single-threaded.
#include <gtest/gtest.h>

#include "posrelay/io_pool.hpp"
#include "posrelay/metrics/registry.hpp"
#include "posrelay/poll/scheduler.hpp"
#include "run_coro.hpp"
#include "store_fakes.hpp"

namespace posrelay::test {
namespace {

using std::chrono::seconds;
using store::poll_set;

class Scheduler : public ::testing::Test {
protected:
    void SetUp() override {
        const std::int64_t now = store::unix_ms_now();
        store_.put("O1", {{"terminal_id", "T1"},
                          {"store_id", "S1"},
                          {"gross_amount", "1000.00"},
                          {"created_ms", std::to_string(now - 1000)},
                          {"expiry_ms", std::to_string(now + 3600'000)}});
        schedule_.put(poll_set::due, "O1", now - 1);
        opts_.rate = 10;
        opts_.confirm_paid = false;
        opts_.node = "node-a";
    }
    void TearDown() override {
        if (!scheduler_) return;
        scheduler_->stop();
        (void)run_until(
            pool_.context(0), [] { return false; }, std::chrono::milliseconds(50));
    }
    void start() {
        scheduler_ = std::make_unique<poll::scheduler>(pool_, store_, schedule_, api_, opts_, reg_);
        scheduler_->start();
    }
    bool run_until_done() {
        return run_until(
            pool_.context(0), [&] { return !schedule_.calls_of("done").empty(); }, seconds(10));
    }
    static midtrans::http_result answer(unsigned status, std::string body) {
        midtrans::http_result r;
        r.sent = true;
        r.status = status;
        r.body = std::move(body);
        return r;
    }

    io_pool pool_{1};
    fake_order_store store_;
    fake_poll_schedule schedule_;
    fake_midtrans api_;
    metrics::registry reg_;
    poll::poll_options opts_;
    std::unique_ptr<poll::scheduler> scheduler_;
};

TEST_F(Scheduler, AClaimedOrderIsPolledCommittedAndDroppedWhenFinal) {
    api_.answer = [](const std::string&, const std::string&) {
        return answer(200, R"({"status_code":"200","transaction_status":"settlement",)"
                           R"("order_id":"O1","gross_amount":"1000.00","transaction_id":"tx-1"})");
    };
    start();
    ASSERT_TRUE(run_until_done());
    EXPECT_EQ(schedule_.calls_of("claim").front(), "claim due ");
    ASSERT_EQ(store_.commits.size(), 1u);
    EXPECT_EQ(store_.commits[0].status, midtrans::transaction_status::settlement);
    EXPECT_EQ(store_.commits[0].source, ingest::update_source::poll);
    EXPECT_EQ(schedule_.calls_of("done"), (std::vector<std::string>{"done due O1 drop"}));
    EXPECT_FALSE(schedule_.find(poll_set::due, "O1"));
    EXPECT_EQ(store::field_of(*store_.get("O1"), "poll_attempts"), "1");
    EXPECT_EQ(schedule_.calls_of("take").size(), 1u);  // one token of the fleet's budget
}

TEST_F(Scheduler, APendingAnswerIsPolledAgainLater) {
    api_.answer = [](const std::string&, const std::string&) {
        return answer(200, R"({"status_code":"201","transaction_status":"pending",)"
                           R"("order_id":"O1","gross_amount":"1000.00"})");
    };
    opts_.first_delay = std::chrono::milliseconds(10'000);
    start();
    ASSERT_TRUE(run_until_done());
    const auto e = schedule_.find(poll_set::due, "O1");
    ASSERT_TRUE(e);
    EXPECT_GT(e->due_ms, store::unix_ms_now() + 5'000);  // backoff: ~20 s (second attempt)
    EXPECT_TRUE(e->lease.empty());                       // its lease released
}

TEST_F(Scheduler, A429PausesTheWholeFleetForRetryAfter) {
    api_.answer = [](const std::string&, const std::string&) {
        auto r = answer(429, R"({"status_code":"429","status_message":"too many"})");
        r.retry_after = "3";
        return r;
    };
    start();
    ASSERT_TRUE(run_until_done());
    EXPECT_EQ(schedule_.pauses, (std::vector<std::chrono::milliseconds>{seconds(3)}));
    EXPECT_TRUE(store_.commits.empty());
    const auto e = schedule_.find(poll_set::due, "O1");
    ASSERT_TRUE(e);
    EXPECT_GE(e->due_ms, store::unix_ms_now() + 2'000);  // not before the pause ends
}

TEST_F(Scheduler, AStoreErrorReadingTheOrderRetriesSoonWithoutCallingMidtrans) {
    store_.faults.fail("read", boost::asio::error::timed_out);
    start();
    ASSERT_TRUE(run_until_done());
    EXPECT_EQ(api_.count("status"), 0u);
    const auto e = schedule_.find(poll_set::due, "O1");
    ASSERT_TRUE(e);
    EXPECT_LE(e->due_ms, store::unix_ms_now() + 5'000);
}

TEST_F(Scheduler, AClaimFoundByAPollIsPutInTheConfirmationSet) {
    // Its node died between the commit and the confirmation set (two calls, two slots).
    store::order_fields claim{{"claim", "settlement||200|1|0|"}};
    (void)run_coro(store_.set_order_fields("O1", claim));
    opts_.confirm_paid = true;
    start();
    ASSERT_TRUE(run_until(
        pool_.context(0), [&] { return !schedule_.calls_of("enrol").empty(); }, seconds(10)));
    EXPECT_EQ(schedule_.calls_of("enrol").front(), "enrol confirm O1");
}

}  // namespace
}  // namespace posrelay::test
