// Paid is confirmed with Midtrans (issue 13, findings 1 and 2): a notification that would make
// an order paid (or unpaid) is committed and answered 200, but its status reaches terminals
// only once GET status agrees. midtrans-sim is the Midtrans of these tests; it drops its own
// notifications, so the only notifications posrelay sees are the ones the test posts.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <set>

#include "midtrans_sim.hpp"
#include "process.hpp"
#include "redis_server.hpp"
#include "terminal_conn.hpp"

namespace posrelay::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class PaidConfirmation : public ::testing::Test {
protected:
    void SetUp() override {
        redis_.start();
        sim_ = start_midtrans_sim({"--drop-rate", "1.0"});
    }

    // A node polling only after a minute: within a test, every status call is a confirmation.
    relay_node start_node(std::vector<std::string> extra = {},
                          std::map<std::string, std::string> env = {},
                          const std::string& lease = "2s") {
        const auto port = pick_free_port();
        std::vector<std::string> args = {
            "--listen",           "127.0.0.1:" + std::to_string(port),
            "--io-threads",       "2",
            "--terminal-listen",  "127.0.0.1:0",
            "--midtrans-url",     sim_.url(),
            "--public-url",       "http://127.0.0.1:" + std::to_string(port),
            "--midtrans-timeout", "3s",
            "--poll-first-delay", "60s",
            "--poll-lease",       lease};
        args.insert(args.end(), extra.begin(), extra.end());
        auto all_env = relay_env(redis_.url(), sim_server_key);
        for (auto& [k, v] : env)
            all_env[k] = v;
        return start_relay_node(std::move(args), std::move(all_env));
    }

    // Charges order `id` (Rp 1,000) through terminal `t`: Midtrans (the sim) has it pending.
    // Returns once both the result and the order's pending event came.
    static void charge(terminal_conn& t, const std::string& id) {
        t.send_line(R"({"op":"charge","id":")" + id + R"(","order_id":")" + id +
                    R"(","gross_amount":1000})");
        bool result = false, pending = false;
        for (int i = 0; i < 50 && !(result && pending); ++i) {
            auto f = t.read_frame(seconds(10));
            if (!f) throw std::runtime_error("no answer to charge " + id);
            if (str(*f, "op") == "event") {
                t.ack(static_cast<std::uint64_t>(f->at("seq").as_int64()));
                pending = pending || str(*f, "order_id") == id;
            }
            if (str(*f, "op") == "error") throw std::runtime_error(boost::json::serialize(*f));
            result = result || (str(*f, "op") == "result" && str(*f, "id") == id);
        }
        if (!(result && pending)) throw std::runtime_error("charge " + id + " not seen through");
    }

    // The transaction as the sim holds it (GET /sim/orders/{id}: a status view with a valid
    // signature_key, i.e. the genuine notification body of its current status).
    boost::json::object sim_view(const std::string& id) const {
        const auto res = http_client(sim_.port).get("/sim/orders/" + id);
        if (res.result_int() != 200)
            throw std::runtime_error("sim order " + id + ": " + res.body());
        return boost::json::parse(res.body()).as_object();
    }

    // The genuine notification body of the order's current status at Midtrans (the sim's view
    // without its control-API extras).
    std::string genuine_body(const std::string& id) const {
        auto o = sim_view(id);
        for (auto k :
             {"qr_string", "notify_urls", "notification_attempts_total", "notification_attempts"})
            o.erase(k);
        return boost::json::serialize(o);
    }

    // A notification for `id` in `status`, signed with the server key: consistent (status_code
    // agrees with the status) and carrying the sim's transaction_id, so nothing but the
    // comparison with Midtrans can tell it is not genuine.
    std::string signed_body(const std::string& id, std::string_view status) const {
        notification_fields f;
        f.order_id = id;
        f.transaction_status = status;
        f.status_code = status == "settlement" ? "200" : status == "pending" ? "201" : "202";
        f.gross_amount = "1000.00";
        const auto view = sim_view(id);
        f.transaction_id = str(view, "transaction_id");
        f.merchant_id = str(view, "merchant_id");
        return signed_notification(f, sim_server_key);
    }

    static int post(unsigned short port, std::string body) {
        return http_client(port).post(notifications_path, std::move(body)).result_int();
    }

    // The next event of `t` for `order` (others are acked and skipped); nullopt after `timeout`.
    static std::optional<boost::json::object> event_for(terminal_conn& t, std::string_view order,
                                                        milliseconds timeout = seconds(10)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            const auto left = std::chrono::duration_cast<milliseconds>(
                deadline - std::chrono::steady_clock::now());
            auto e = t.next_event(std::max(left, milliseconds(1)));
            if (!e) return std::nullopt;
            t.ack(static_cast<std::uint64_t>(e->at("seq").as_int64()));
            if (str(*e, "order_id") == order) return e;
        }
        return std::nullopt;
    }

    static double metric(unsigned short port, std::string_view series) {
        return metric_value(http_client(port).get("/metrics").body(), series);
    }

    redis_server redis_;
    sim_process sim_;
};

// Finding 1 (the "paid only after confirmation" half): a settlement Midtrans does not have is
// answered 200 (Midtrans must not retry) but never reaches the terminal, and is reported.
TEST_F(PaidConfirmation, SettlementMidtransHasAsPendingIsNeverEmitted) {
    auto n = start_node();
    terminal_conn t(n.terminal_port);
    t.hello("T-C", "S-C");
    charge(t, "FC-1");
    ASSERT_EQ(post(n.p.port, signed_body("FC-1", "settlement")), 200);
    ASSERT_TRUE(wait_metric(n.p.port, "posrelay_paid_claims_denied_total", 1, seconds(10)));
    // No event at all for the order: the claim was not applied, Midtrans said pending.
    EXPECT_FALSE(event_for(t, "FC-1", milliseconds(500)).has_value());
    EXPECT_NE(n.p.proc->output().find("paid claim denied"), std::string::npos);
    // The order is still pending, not paid.
    const auto order = http_client(n.p.port).request(
        boost::beast::http::verb::get, "/v1/orders/FC-1", {}, "application/json",
        {{"Authorization", "Bearer " + std::string(test_operator_token)}});
    ASSERT_EQ(order.result_int(), 200);
    const auto o = boost::json::parse(order.body()).as_object();
    EXPECT_EQ(str(o, "transaction_status"), "pending");
    EXPECT_FALSE(o.at("paid").as_bool());
}

// The genuine case: Midtrans has the order settled; the terminal gets paid:true once GET status
// agreed, with one status call for the order.
TEST_F(PaidConfirmation, SettlementMidtransConfirmsIsEmittedAfterOneStatusCall) {
    auto n = start_node();
    terminal_conn t(n.terminal_port);
    t.hello("T-C", "S-C");
    charge(t, "FC-2");
    ASSERT_EQ(sim_pay(sim_.port, "FC-2").result_int(), 200);  // its notification is dropped
    ASSERT_EQ(post(n.p.port, genuine_body("FC-2")), 200);
    const auto e = event_for(t, "FC-2");
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(str(*e, "transaction_status"), "settlement");
    EXPECT_TRUE(e->at("paid").as_bool());
    EXPECT_EQ(str(*e, "source"), "poll");  // Midtrans's answer, not the notification's body
    EXPECT_EQ(e->if_contains("status_conflict"), nullptr);
    EXPECT_EQ(sim_stats(sim_.port).at("status_calls").as_int64(), 1);
    EXPECT_EQ(metric(n.p.port, "posrelay_paid_claims_denied_total"), 0);
    // Midtrans's retry of the same notification is a duplicate: no second call, no event.
    ASSERT_EQ(post(n.p.port, genuine_body("FC-2")), 200);
    EXPECT_FALSE(event_for(t, "FC-2", milliseconds(300)).has_value());
    EXPECT_EQ(sim_stats(sim_.port).at("status_calls").as_int64(), 1);
}

// Finding 2: a genuine-looking cancel (status_code 202) is committed final; then the customer's
// real settlement arrives. It must not be dropped as stale: confirmed with Midtrans, applied
// against the transition table, and reported as a status_conflict.
TEST_F(PaidConfirmation, SettlementAfterAForgedCancelReachesTheTerminalAsAConflict) {
    auto n = start_node();
    terminal_conn t(n.terminal_port);
    t.hello("T-C", "S-C");
    charge(t, "FC-3");
    ASSERT_EQ(post(n.p.port, signed_body("FC-3", "cancel")), 200);
    const auto cancel = event_for(t, "FC-3");
    ASSERT_TRUE(cancel.has_value());
    EXPECT_EQ(str(*cancel, "transaction_status"), "cancel");
    ASSERT_EQ(sim_pay(sim_.port, "FC-3").result_int(), 200);  // Midtrans: settled
    ASSERT_EQ(post(n.p.port, genuine_body("FC-3")), 200);
    const auto paid = event_for(t, "FC-3");
    ASSERT_TRUE(paid.has_value()) << "the genuine settlement was dropped";
    EXPECT_EQ(str(*paid, "transaction_status"), "settlement");
    EXPECT_TRUE(paid->at("paid").as_bool());
    ASSERT_TRUE(paid->contains("status_conflict"));
    const auto& c = paid->at("status_conflict").as_object();
    EXPECT_EQ(str(c, "previous_status"), "cancel");
    EXPECT_EQ(str(c, "claimed_status"), "settlement");
    EXPECT_EQ(str(c, "midtrans_status"), "settlement");
    EXPECT_TRUE(c.at("applied").as_bool());
    // Counted and logged once the commit returned (the event may come first).
    EXPECT_TRUE(
        wait_metric(n.p.port, R"(posrelay_status_conflicts_total{resolution="applied"})", 1));
    EXPECT_NE(n.p.proc->output().find("status conflict"), std::string::npos);
}

// The reverse conflict: a cancel for an order Midtrans settled is confirmed, refused (Midtrans
// says settlement) and still reported; paid stays true.
TEST_F(PaidConfirmation, CancelAfterSettlementIsReportedAndRefused) {
    auto n = start_node();
    terminal_conn t(n.terminal_port);
    t.hello("T-C", "S-C");
    charge(t, "FC-4");
    ASSERT_EQ(sim_pay(sim_.port, "FC-4").result_int(), 200);
    ASSERT_EQ(post(n.p.port, genuine_body("FC-4")), 200);
    const auto paid = event_for(t, "FC-4");
    ASSERT_TRUE(paid && paid->at("paid").as_bool());
    ASSERT_EQ(post(n.p.port, signed_body("FC-4", "cancel")), 200);
    const auto report = event_for(t, "FC-4");
    ASSERT_TRUE(report.has_value());
    EXPECT_EQ(str(*report, "transaction_status"), "settlement");
    EXPECT_TRUE(report->at("paid").as_bool());
    ASSERT_TRUE(report->contains("status_conflict"));
    const auto& c = report->at("status_conflict").as_object();
    EXPECT_EQ(str(c, "claimed_status"), "cancel");
    EXPECT_EQ(str(c, "midtrans_status"), "settlement");
    EXPECT_FALSE(c.at("applied").as_bool());
    EXPECT_TRUE(wait_metric(n.p.port, "posrelay_paid_claims_denied_total", 1));
    EXPECT_TRUE(
        wait_metric(n.p.port, R"(posrelay_status_conflicts_total{resolution="rejected"})", 1));
}

// A node that dies between the commit and the confirmation loses nothing: its lease lapses and
// another node's scheduler confirms.
TEST_F(PaidConfirmation, ConfirmationSurvivesTheNodeThatCommittedIt) {
    auto a = start_node();
    auto b = start_node();
    terminal_conn t(b.terminal_port);
    t.hello("T-C", "S-C");
    charge(t, "FC-5");
    ASSERT_EQ(sim_pay(sim_.port, "FC-5").result_int(), 200);
    const std::string body = genuine_body("FC-5");
    ASSERT_EQ(sim_config(sim_.port, R"({"down":true})").result_int(), 200);  // A cannot confirm
    ASSERT_EQ(post(a.p.port, body), 200);
    a.p.proc->signal(SIGKILL);
    ASSERT_TRUE(a.p.proc->wait_exit(seconds(5)).has_value());
    ASSERT_EQ(sim_config(sim_.port, R"({"down":false})").result_int(), 200);
    const auto e = event_for(t, "FC-5", seconds(20));
    ASSERT_TRUE(e.has_value());
    EXPECT_TRUE(e->at("paid").as_bool());
    // Counted once the confirm step returned: after its event went out (the confirmation set
    // entry is removed by a further call, in its own slot), so waited for.
    EXPECT_TRUE(
        wait_metric(b.p.port, R"(posrelay_paid_confirmations_total{outcome="confirmed"})", 1));
}

// With polling off (--poll-rate 0) paid is still confirmed: confirmations are not metered.
TEST_F(PaidConfirmation, ConfirmationRunsWithPollingOff) {
    auto n = start_node({"--poll-rate", "0"});
    terminal_conn t(n.terminal_port);
    t.hello("T-C", "S-C");
    charge(t, "FC-7");
    ASSERT_EQ(post(n.p.port, signed_body("FC-7", "settlement")), 200);
    ASSERT_TRUE(wait_metric(n.p.port, "posrelay_paid_claims_denied_total", 1));
    EXPECT_FALSE(event_for(t, "FC-7", milliseconds(300)).has_value());
    ASSERT_EQ(sim_pay(sim_.port, "FC-7").result_int(), 200);
    ASSERT_EQ(post(n.p.port, genuine_body("FC-7")), 200);  // not a duplicate of the denied one
    const auto e = event_for(t, "FC-7");
    ASSERT_TRUE(e.has_value());
    EXPECT_TRUE(e->at("paid").as_bool());
    EXPECT_EQ(sim_stats(sim_.port).at("status_calls").as_int64(), 2);
}

// An order of another merchant account is confirmed with that merchant's key (the key that
// verified its notification), not with the default one.
TEST_F(PaidConfirmation, AMerchantsOrderIsConfirmedWithThatMerchantsKey) {
    // Charged at the sim directly: posrelay's default key is another account's.
    const auto charged = http_client(sim_.port).request(
        boost::beast::http::verb::post, "/v2/charge",
        R"({"payment_type":"qris","transaction_details":{"order_id":"FC-8","gross_amount":1000}})",
        "application/json", {{"Authorization", sim_auth_header()}});
    ASSERT_EQ(charged.result_int(), 200) << charged.body();
    const std::string merchant = str(sim_view("FC-8"), "merchant_id");
    auto n =
        start_node({}, {{"POSRELAY_SERVER_KEY", "SB-Mid-server-another-account"},
                        {"POSRELAY_MERCHANT_KEYS", merchant + ":" + std::string(sim_server_key)}});
    terminal_conn t(n.terminal_port);
    t.hello("T-M", "S-M");
    ASSERT_EQ(register_order(n.p.port, "FC-8", "T-M", "S-M", "1000"), 201);
    ASSERT_EQ(sim_pay(sim_.port, "FC-8").result_int(), 200);
    ASSERT_EQ(post(n.p.port, genuine_body("FC-8")), 200);
    const auto e = event_for(t, "FC-8");
    ASSERT_TRUE(e.has_value());
    EXPECT_TRUE(e->at("paid").as_bool());
    EXPECT_EQ(sim_stats(sim_.port).at("unauthorized").as_int64(), 0);
}

// --confirm-paid=false keeps the old behaviour: the notification's status is applied at once.
// More claims at once than --poll-concurrency: the ones past the limit wait for a slot on the
// node that committed them, not for their lease to lapse (which would delay a paid event by
// --poll-lease, 30 s by default). A status budget of one call a second keeps the slot busy.
TEST_F(PaidConfirmation, ClaimsPastTheConcurrencyWaitForASlotNotForTheirLease) {
    auto n =
        start_node({"--poll-concurrency", "1", "--poll-rate", "1", "--poll-burst", "1"}, {}, "60s");
    terminal_conn t(n.terminal_port);
    t.hello("T-C", "S-C");
    const std::vector<std::string> ids = {"FQ-1", "FQ-2", "FQ-3", "FQ-4", "FQ-5", "FQ-6"};
    for (const auto& id : ids) {
        charge(t, id);
        ASSERT_EQ(sim_pay(sim_.port, id).result_int(), 200);  // its notification is dropped
    }
    for (const auto& id : ids)
        ASSERT_EQ(post(n.p.port, genuine_body(id)), 200);
    std::set<std::string> paid;
    const auto deadline = std::chrono::steady_clock::now() + seconds(20);
    while (paid.size() < ids.size() && std::chrono::steady_clock::now() < deadline) {
        auto e = t.next_event(milliseconds(500));
        if (!e) continue;
        t.ack(static_cast<std::uint64_t>(e->at("seq").as_int64()));
        if (e->at("paid").as_bool()) paid.insert(str(*e, "order_id"));
    }
    EXPECT_EQ(paid.size(), ids.size()) << "paid events within 20 s (the lease is 60 s)";
}

TEST_F(PaidConfirmation, ConfirmationCanBeTurnedOff) {
    auto n = start_node({"--confirm-paid", "false"});
    terminal_conn t(n.terminal_port);
    t.hello("T-C", "S-C");
    charge(t, "FC-6");
    ASSERT_EQ(post(n.p.port, signed_body("FC-6", "settlement")), 200);
    const auto e = event_for(t, "FC-6");
    ASSERT_TRUE(e.has_value());
    EXPECT_TRUE(e->at("paid").as_bool());
    EXPECT_EQ(str(*e, "source"), "notification");
    EXPECT_EQ(sim_stats(sim_.port).at("status_calls").as_int64(), 0);
}

}  // namespace
}  // namespace posrelay::test
