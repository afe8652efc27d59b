// Issue 13, findings 1, 3, 4 and 7: a notification is believed only when its signed fields
// are well formed and agree with its status, when it is signed by the order's merchant, for
// the order's amount and for the order's transaction. A real posrelay, a real redis-server,
// a terminal on the order's route: a refused notification is answered 4xx, counted, logged as
// a security event, never stored and never sent to the terminal.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "process.hpp"
#include "redis_server.hpp"
#include "terminal_conn.hpp"

namespace posrelay::test {
namespace {

using std::chrono::seconds;

constexpr std::string_view m2_key = "SB-Mid-server-M2KEY";

class NotificationBinding : public ::testing::Test {
protected:
    void SetUp() override {
        redis_.start();
        auto env = relay_env(redis_.url());
        env["POSRELAY_MERCHANT_KEYS"] = "M-2:" + std::string(m2_key);
        // The notification rules on their own: no Midtrans here to confirm paid statuses
        // (the second layer, tested by PaidConfirmation), so the marker settlements that
        // show the forged ones were not delivered reach the terminal unconfirmed.
        node_ = start_relay_node({"--io-threads", "2", "--terminal-listen", "127.0.0.1:0",
                                  "--log-level", "info", "--confirm-paid=false"},
                                 std::move(env));
        term_ = std::make_unique<terminal_conn>(node_.terminal_port);
        term_->hello("T-1", "S-1");
    }
    unsigned short http() const { return node_.p.port; }

    http_response post(const notification_fields& f, std::string_view key = test_server_key) {
        http_client c(http());
        return c.post(notifications_path, signed_notification(f, key));
    }
    // A signed body with one field's value replaced after signing (what an attacker who saw
    // a genuine notification can send).
    http_response post_edited(const notification_fields& signed_as, std::string_view from,
                              std::string_view to) {
        std::string body = signed_notification(signed_as, test_server_key);
        const auto at = body.find(from);
        EXPECT_NE(at, std::string::npos) << from;
        if (at != std::string::npos) body.replace(at, from.size(), to);
        http_client c(http());
        return c.post(notifications_path, body);
    }
    boost::json::object order(std::string_view id) {
        http_client c(http());
        const auto res = c.request(
            boost::beast::http::verb::get, "/v1/orders/" + std::string(id), {}, "application/json",
            {{"Authorization", "Bearer " + std::string(test_operator_token)}});
        EXPECT_EQ(res.result_int(), 200) << res.body();
        return boost::json::parse(res.body()).as_object();
    }
    double metric(std::string_view series) {
        http_client c(http());
        return metric_value(c.get("/metrics").body(), series);
    }
    // Sends a genuine settlement for a fresh marker order on the same route and reads events
    // until its event: any event before it (for `order_id`) was emitted by a refused update.
    void expect_no_event_for(std::string_view order_id) {
        const std::string marker = "MARK-" + std::string(order_id);
        ASSERT_EQ(register_order(http(), marker, "T-1", "S-1"), 201);
        ASSERT_EQ(notify(http(), marker), 200);
        for (int i = 0; i < 50; ++i) {
            auto e = term_->next_event(seconds(10));
            ASSERT_TRUE(e.has_value()) << "no event for the marker order";
            term_->ack(static_cast<std::uint64_t>(e->at("seq").as_int64()));
            EXPECT_NE(str(*e, "order_id"), order_id) << boost::json::serialize(*e);
            if (str(*e, "order_id") == marker) return;
        }
        FAIL() << "the marker event never came";
    }
    void expect_security_log(std::string_view reason) {
        const auto line = node_.p.proc->wait_for_line("\"reason\":\"" + std::string(reason) + "\"");
        EXPECT_NE(line.find(R"("security":true)"), std::string::npos) << line;
    }

    redis_server redis_;
    relay_node node_;
    std::unique_ptr<terminal_conn> term_;
};

// Finding 1: a genuinely signed pending (201) edited to settlement.
TEST_F(NotificationBinding, PendingEditedToSettlementIs400AndNeverApplied) {
    ASSERT_EQ(register_order(http(), "F1-A", "T-1", "S-1", "10000"), 201);
    notification_fields pending;
    pending.order_id = "F1-A";
    pending.status_code = "201";
    pending.transaction_status = "pending";
    const auto res = post_edited(pending, R"("transaction_status":"pending")",
                                 R"("transaction_status":"settlement")");
    EXPECT_EQ(res.result_int(), 400) << res.body();
    EXPECT_NE(res.body().find(R"("error":"inconsistent_status")"), std::string::npos) << res.body();
    EXPECT_NE(res.body().find(R"("field":"status_code")"), std::string::npos) << res.body();
    expect_security_log("inconsistent_status");
    EXPECT_EQ(metric(R"(posrelay_notifications_rejected_total{reason="inconsistent_status"})"), 1);
    const auto o = order("F1-A");
    EXPECT_TRUE(o.at("transaction_status").is_null()) << boost::json::serialize(o);
    expect_no_event_for("F1-A");
}

// Finding 1: a capture under fraud challenge (201) edited to fraud accept.
TEST_F(NotificationBinding, ChallengeEditedToAcceptIs400) {
    ASSERT_EQ(register_order(http(), "F1-B", "T-1", "S-1", "10000"), 201);
    notification_fields challenge;
    challenge.order_id = "F1-B";
    challenge.status_code = "201";
    challenge.transaction_status = "capture";
    challenge.fraud_status = "challenge";
    const auto res =
        post_edited(challenge, R"("fraud_status":"challenge")", R"("fraud_status":"accept")");
    EXPECT_EQ(res.result_int(), 400) << res.body();
    EXPECT_NE(res.body().find(R"("error":"inconsistent_status")"), std::string::npos) << res.body();
    // The genuine challenge itself is consistent and accepted.
    EXPECT_EQ(post(challenge).result_int(), 200);
    const auto e = term_->next_event(seconds(10));
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(str(*e, "fraud_status"), "challenge");
    EXPECT_FALSE(e->at("paid").as_bool());
}

// Finding 4: the signature input is a plain concatenation; fields are checked so that the
// signed pending of INV-X (201, 25000.00) cannot verify as INV-X20 with status_code "1".
TEST_F(NotificationBinding, ResplitSignatureIs400) {
    ASSERT_EQ(register_order(http(), "INV-X20", "T-1", "S-1", "25000"), 201);
    notification_fields genuine;
    genuine.order_id = "INV-X";
    genuine.status_code = "201";
    genuine.gross_amount = "25000.00";
    genuine.transaction_status = "pending";
    std::string body = signed_notification(genuine, test_server_key);
    body.replace(body.find(R"("order_id":"INV-X")"), 18, R"("order_id":"INV-X20")");
    body.replace(body.find(R"("status_code":"201")"), 19, R"("status_code":"1")");
    body.replace(body.find(R"("transaction_status":"pending")"), 30,
                 R"("transaction_status":"settlement")");
    http_client c(http());
    const auto res = c.post(notifications_path, body);
    EXPECT_EQ(res.result_int(), 400) << res.body();
    EXPECT_NE(res.body().find(R"("field":"status_code")"), std::string::npos) << res.body();
    EXPECT_TRUE(order("INV-X20").at("transaction_status").is_null());
    expect_no_event_for("INV-X20");
}

// Finding 4: fields that are not what Midtrans sends are refused, naming the field (the
// signature is valid over them: anyone with a key could not make them valid either).
TEST_F(NotificationBinding, MalformedSignedFieldsAre400) {
    struct bad {
        notification_fields f;
        std::string field;
    };
    std::vector<bad> cases;
    cases.push_back({{}, "status_code"});
    cases.back().f.status_code = "not-a-code";
    cases.push_back({{}, "gross_amount"});
    cases.back().f.gross_amount = "ten thousand";
    cases.push_back({{}, "gross_amount"});
    cases.back().f.gross_amount = "1e4";
    cases.push_back({{}, "gross_amount"});
    cases.back().f.gross_amount = "-10000.00";
    cases.push_back({{}, "order_id"});
    cases.back().f.order_id = "ORD 1";
    cases.push_back({{}, "order_id"});
    cases.back().f.order_id = std::string(51, 'A');
    for (auto& b : cases) {
        const auto res = post(b.f);
        EXPECT_EQ(res.result_int(), 400) << b.field << ": " << res.body();
        EXPECT_NE(res.body().find(R"("error":"invalid_value")"), std::string::npos) << res.body();
        EXPECT_NE(res.body().find("\"field\":\"" + b.field + "\""), std::string::npos)
            << res.body();
    }
    expect_security_log("invalid_value");
}

// Finding 3: a notification signed with another merchant's key for the default merchant's
// order is refused 401, counted and logged.
TEST_F(NotificationBinding, OtherMerchantsKeyIs401ForTheOrder) {
    ASSERT_EQ(register_order(http(), "F3-A", "T-1", "S-1", "10000"), 201);
    notification_fields pending;
    pending.order_id = "F3-A";
    pending.status_code = "201";
    pending.transaction_status = "pending";
    ASSERT_EQ(post(pending).result_int(), 200);  // default merchant's key: binds the order
    auto e = term_->next_event(seconds(10));
    ASSERT_TRUE(e.has_value());
    term_->ack(static_cast<std::uint64_t>(e->at("seq").as_int64()));
    notification_fields settle;
    settle.order_id = "F3-A";
    settle.merchant_id = "M-2";
    const auto res = post(settle, m2_key);
    EXPECT_EQ(res.result_int(), 401) << res.body();
    EXPECT_NE(res.body().find(R"("error":"merchant_mismatch")"), std::string::npos) << res.body();
    expect_security_log("merchant_mismatch");
    EXPECT_EQ(metric(R"(posrelay_notifications_rejected_total{reason="merchant_mismatch"})"), 1);
    EXPECT_EQ(str(order("F3-A"), "transaction_status"), "pending");
    expect_no_event_for("F3-A");
    // The order's own merchant still settles it.
    settle.merchant_id = "G000000001";
    EXPECT_EQ(post(settle).result_int(), 200);
}

// Finding 4: a correctly signed settlement of Rp 1,000 for an order registered at
// Rp 500,000 is refused; the amount stays, no paid event.
TEST_F(NotificationBinding, SettlementForAnotherAmountIsRefused) {
    ASSERT_EQ(register_order(http(), "F4-A", "T-1", "S-1", "500000"), 201);
    notification_fields settle;
    settle.order_id = "F4-A";
    settle.gross_amount = "1000.00";
    const auto res = post(settle);
    EXPECT_EQ(res.result_int(), 409) << res.body();
    EXPECT_NE(res.body().find(R"("error":"amount_mismatch")"), std::string::npos) << res.body();
    EXPECT_NE(res.body().find(R"("field":"gross_amount")"), std::string::npos) << res.body();
    expect_security_log("amount_mismatch");
    EXPECT_EQ(metric(R"(posrelay_notifications_rejected_total{reason="amount_mismatch"})"), 1);
    const auto o = order("F4-A");
    EXPECT_EQ(str(o, "gross_amount"), "500000") << boost::json::serialize(o);
    EXPECT_TRUE(o.at("transaction_status").is_null());
    expect_no_event_for("F4-A");
    // The same amount written as Midtrans writes it is the order's amount.
    settle.gross_amount = "500000.00";
    EXPECT_EQ(post(settle).result_int(), 200);
}

// Finding 7: Midtrans lets an order_id be reused after expire. The new transaction is
// refused (409, reported) rather than merged with the first.
TEST_F(NotificationBinding, ReusedOrderIdWithAnotherTransactionIsRefused) {
    ASSERT_EQ(register_order(http(), "F7-A", "T-1", "S-1", "10000"), 201);
    notification_fields first;
    first.order_id = "F7-A";
    first.transaction_id = "11111111-1111-1111-1111-111111111111";
    first.status_code = "201";
    first.transaction_status = "pending";
    ASSERT_EQ(post(first).result_int(), 200);
    first.status_code = "407";
    first.transaction_status = "expire";
    ASSERT_EQ(post(first).result_int(), 200);
    for (int i = 0; i < 2; ++i) {
        auto e = term_->next_event(seconds(10));
        ASSERT_TRUE(e.has_value());
        term_->ack(static_cast<std::uint64_t>(e->at("seq").as_int64()));
    }
    notification_fields second;
    second.order_id = "F7-A";
    second.transaction_id = "22222222-2222-2222-2222-222222222222";
    second.status_code = "201";
    second.transaction_status = "pending";
    auto res = post(second);
    EXPECT_EQ(res.result_int(), 409) << res.body();
    EXPECT_NE(res.body().find(R"("error":"transaction_mismatch")"), std::string::npos)
        << res.body();
    expect_security_log("transaction_mismatch");
    second.status_code = "200";
    second.transaction_status = "settlement";
    res = post(second);
    EXPECT_EQ(res.result_int(), 409) << res.body();
    EXPECT_EQ(metric(R"(posrelay_notifications_rejected_total{reason="transaction_mismatch"})"), 2);
    const auto o = order("F7-A");
    EXPECT_EQ(str(o, "transaction_status"), "expire");
    EXPECT_EQ(str(o, "transaction_id"), first.transaction_id);
    expect_no_event_for("F7-A");
}

}  // namespace
}  // namespace posrelay::test
