// posrelay in-process with the in-memory commit sink: what a verified notification
// becomes (the StatusUpdate handed to the commit interface) and how outcomes are decided.
#include <gtest/gtest.h>

#include "http_client.hpp"
#include "posrelay/app.hpp"
#include "posrelay/ingest/memory_commit_sink.hpp"

namespace posrelay::test {
namespace {

using midtrans::fraud_status;
using midtrans::transaction_status;

class AppCommit : public ::testing::Test {
protected:
    void SetUp() override {
        config cfg;
        cfg.listen = {"127.0.0.1", 0};
        cfg.io_threads = 2;
        cfg.default_server_key = secret(std::string(test_server_key));
        cfg.merchant_keys.emplace("M-OTHER", secret("SB-Mid-server-OTHERKEY"));
        cfg.shutdown_timeout = std::chrono::seconds(5);
        sink_ = std::make_shared<ingest::memory_commit_sink>();
        app_ = std::make_unique<app>(std::move(cfg), sink_);
        port_ = app_->start().port();
    }
    void TearDown() override { app_->stop(); }

    int post(const notification_fields& f, std::string_view key = test_server_key) {
        http_client c(port_);
        return c.post(notifications_path, signed_notification(f, key)).result_int();
    }

    std::shared_ptr<ingest::memory_commit_sink> sink_;
    std::unique_ptr<app> app_;
    unsigned short port_ = 0;
};

TEST_F(AppCommit, VerifiedNotificationBecomesAStatusUpdate) {
    notification_fields f;
    f.order_id = "ORD-42";
    f.gross_amount = "25000.00";
    ASSERT_EQ(post(f), 200);
    const auto updates = sink_->committed();
    ASSERT_EQ(updates.size(), 1u);
    const auto& u = updates[0];
    EXPECT_EQ(u.order_id(), "ORD-42");
    EXPECT_EQ(u.get(ingest::field::gross_amount), "25000.00");
    EXPECT_EQ(u.get(ingest::field::transaction_id), f.transaction_id);
    EXPECT_EQ(u.get(ingest::field::payment_type), "gopay");
    EXPECT_EQ(u.get(ingest::field::merchant_id), "G000000001");
    EXPECT_EQ(u.get(ingest::field::settlement_time), "2026-11-24 10:00:09");
    EXPECT_EQ(u.status, transaction_status::settlement);
    EXPECT_EQ(u.fraud, fraud_status::accept);
    EXPECT_EQ(u.source, ingest::update_source::notification);
    EXPECT_TRUE(u.paid());
    EXPECT_GT(u.received_unix_ms, 0);
}

TEST_F(AppCommit, LatePendingAfterSettlementIsStale) {
    notification_fields settle;
    settle.order_id = "ORD-LATE";
    ASSERT_EQ(post(settle), 200);
    notification_fields pending = settle;
    pending.transaction_status = "pending";
    pending.status_code = "201";
    pending.fraud_status = "";
    ASSERT_EQ(post(pending), 200);  // acknowledged so Midtrans stops, but ignored
    EXPECT_EQ(sink_->count(ingest::commit_outcome::stale), 1u);
    const auto st = sink_->state_of("ORD-LATE");
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->status, transaction_status::settlement);
}

TEST_F(AppCommit, MerchantKeyChosenByMerchantId) {
    notification_fields f;
    f.order_id = "ORD-M";
    f.merchant_id = "M-OTHER";
    EXPECT_EQ(post(f, test_server_key), 401);  // the default key is not this merchant's
    EXPECT_EQ(post(f, "SB-Mid-server-OTHERKEY"), 200);
    EXPECT_EQ(sink_->committed().size(), 1u);
}

TEST_F(AppCommit, RejectedNotificationsAreNeverCommitted) {
    notification_fields f;
    f.order_id = "ORD-NOPE";
    EXPECT_EQ(post(f, "wrong"), 401);
    http_client c(port_);
    EXPECT_EQ(c.post(notifications_path, "{").result_int(), 400);
    EXPECT_TRUE(sink_->committed().empty());
}

}  // namespace
}  // namespace posrelay::test
