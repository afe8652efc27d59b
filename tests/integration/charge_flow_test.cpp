// The charge flow end to end: a terminal charges through posrelay, midtrans-sim plays
// Midtrans (charge, notifications, cancel, expire, faults), Redis is real.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "midtrans_sim.hpp"
#include "posrelay/fanout/protocol.hpp"
#include "process.hpp"
#include "redis_server.hpp"
#include "terminal_conn.hpp"
#include "tls_proxy.hpp"

namespace posrelay::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A terminal that sends requests and keeps the events it sees meanwhile.
struct client {
    terminal_conn conn;
    std::vector<boost::json::object> events;
    int next_id = 0;

    explicit client(unsigned short port) : conn(port) {}

    // Sends a request and returns its answer (result or error), reading events meanwhile.
    boost::json::object request(std::string op, std::string fields,
                                milliseconds timeout = seconds(15)) {
        const std::string id = "r" + std::to_string(++next_id);
        conn.send_line(R"({"op":")" + op + R"(","id":")" + id + "\"" +
                       (fields.empty() ? "" : "," + fields) + "}");
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            auto f = conn.read_frame(milliseconds(200));
            if (!f) continue;
            const auto op_of = str(*f, "op");
            if (op_of == "ping") conn.send_line(R"({"op":"pong"})");
            if (op_of == "event") keep(*f);
            if ((op_of == "result" || op_of == "error") && str(*f, "id") == id) return *f;
        }
        throw std::runtime_error("no answer to " + op);
    }
    void keep(const boost::json::object& e) {
        events.push_back(e);
        conn.ack(static_cast<std::uint64_t>(e.at("seq").as_int64()));
    }
    // Waits until an event for `order` with `status` was seen; returns it.
    boost::json::object wait_event(std::string_view order, std::string_view status,
                                   milliseconds timeout = seconds(15)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            for (const auto& e : events) {
                if (str(e, "order_id") == order && str(e, "transaction_status") == status) return e;
            }
            if (std::chrono::steady_clock::now() >= deadline)
                throw std::runtime_error("no " + std::string(status) + " event for " +
                                         std::string(order));
            if (auto f = conn.read_frame(milliseconds(200)); f) {
                if (str(*f, "op") == "ping") conn.send_line(R"({"op":"pong"})");
                if (str(*f, "op") == "event") keep(*f);
            }
        }
    }
    // The statuses seen for `order`, in order.
    std::vector<std::string> statuses(std::string_view order) const {
        std::vector<std::string> out;
        for (const auto& e : events) {
            if (str(e, "order_id") == order) out.push_back(str(e, "transaction_status"));
        }
        return out;
    }
};

class ChargeFlow : public ::testing::Test {
protected:
    void SetUp() override {
        redis_.start();
        sim_ = start_midtrans_sim({"--time-scale", "600"});
        start_relay(sim_.url());
    }

    void start_relay(const std::string& midtrans_url, std::vector<std::string> extra = {}) {
        const auto port = pick_free_port();
        std::vector<std::string> args = {
            "--listen",           "127.0.0.1:" + std::to_string(port),
            "--io-threads",       "2",
            "--terminal-listen",  "127.0.0.1:0",
            "--midtrans-url",     midtrans_url,
            "--public-url",       "http://127.0.0.1:" + std::to_string(port),
            "--midtrans-timeout", "3s",
            "--poll-rate",        "0"};
        args.insert(args.end(), extra.begin(), extra.end());
        auto n = start_relay_node(std::move(args), relay_env(redis_.url(), sim_server_key));
        relay_ = std::move(n.p);
        term_port_ = n.terminal_port;
    }

    std::unique_ptr<client> terminal(std::string_view id = "T-1", std::string_view store = "S-1") {
        auto c = std::make_unique<client>(term_port_);
        c->conn.hello(id, store);
        return c;
    }

    redis_server redis_;
    sim_process sim_;
    posrelay_process relay_;
    unsigned short term_port_ = 0;
};

TEST_F(ChargeFlow, TerminalChargesCustomerPaysTerminalLearnsPaid) {
    auto t = terminal();
    auto r = t->request("charge", R"("order_id":"A-1","gross_amount":10000,"payment_type":"qris")");
    ASSERT_EQ(str(r, "op"), "result") << boost::json::serialize(r);
    EXPECT_EQ(str(r, "request"), "charge");
    EXPECT_EQ(str(r, "transaction_status"), "pending");
    EXPECT_EQ(str(r, "gross_amount"), "10000.00");
    EXPECT_FALSE(str(r, "transaction_id").empty());
    EXPECT_FALSE(str(r, "qr_string").empty());
    EXPECT_NE(str(r, "qr_code_url").find("/v2/qris/"), std::string::npos);
    EXPECT_FALSE(str(r, "expiry_time").empty());
    const auto pending = t->wait_event("A-1", "pending");
    EXPECT_FALSE(pending.at("paid").as_bool());

    ASSERT_EQ(sim_pay(sim_.port, "A-1").result_int(), 200);
    const auto paid = t->wait_event("A-1", "settlement");
    EXPECT_TRUE(paid.at("paid").as_bool());
    // The sim's notification said settlement; posrelay confirmed it with GET status and sent
    // Midtrans's answer (--confirm-paid, on by default).
    EXPECT_EQ(str(paid, "source"), "poll");
    EXPECT_EQ(str(paid, "transaction_id"), str(r, "transaction_id"));

    auto s = t->request("status", R"("order_id":"A-1")");
    EXPECT_EQ(str(s, "transaction_status"), "settlement");
    EXPECT_TRUE(s.at("paid").as_bool());

    // The QR image through posrelay: only for an authenticated terminal of the store.
    http_client h(relay_.port);
    const std::string token(fanout::mint_token(test_terminal_secret, "T-1", "S-1"));
    auto img = h.request(
        boost::beast::http::verb::get, "/v1/orders/A-1/qr.png", "", "",
        {{"Authorization", "Bearer " + token}, {"X-Terminal-Id", "T-1"}, {"X-Store-Id", "S-1"}});
    EXPECT_EQ(img.result_int(), 200);
    EXPECT_TRUE(img.body().starts_with("\x89PNG\r\n\x1a\n"));
    auto other = h.request(
        boost::beast::http::verb::get, "/v1/orders/A-1/qr.png", "", "",
        {{"Authorization", "Bearer " + fanout::mint_token(test_terminal_secret, "T-9", "S-2")},
         {"X-Terminal-Id", "T-9"},
         {"X-Store-Id", "S-2"}});
    EXPECT_EQ(other.result_int(), 404);
    EXPECT_EQ(h.get("/v1/orders/A-1/qr.png").result_int(), 401);
}

TEST_F(ChargeFlow, CancelAndExpireReachTheTerminal) {
    auto t = terminal();
    ASSERT_EQ(str(t->request("charge", R"("order_id":"C-1","gross_amount":5000)"), "op"), "result");
    ASSERT_EQ(
        str(t->request("charge", R"("order_id":"E-1","gross_amount":5000,"payment_type":"gopay")"),
            "op"),
        "result");
    auto c = t->request("cancel", R"("order_id":"C-1")");
    ASSERT_EQ(str(c, "op"), "result") << boost::json::serialize(c);
    EXPECT_EQ(str(c, "transaction_status"), "cancel");
    t->wait_event("C-1", "cancel");
    auto e = t->request("expire", R"("order_id":"E-1")");
    ASSERT_EQ(str(e, "op"), "result") << boost::json::serialize(e);
    EXPECT_EQ(str(e, "status_code"), "407");
    t->wait_event("E-1", "expire");
    // Not pending any more: Midtrans answers 412, the terminal gets it as midtrans_error.
    auto again = t->request("cancel", R"("order_id":"C-1")");
    EXPECT_EQ(str(again, "code"), "midtrans_error");
    EXPECT_EQ(str(again, "status_code"), "412");
    // Another store's terminal cannot touch the order.
    auto other = terminal("T-2", "S-2");
    EXPECT_EQ(str(other->request("status", R"("order_id":"C-1")"), "code"), "order_not_found");
}

TEST_F(ChargeFlow, RequestValidationAndDuplicateOrderIds) {
    auto t = terminal();
    auto bad = t->request("charge", R"("order_id":"A 1","gross_amount":1)");
    EXPECT_EQ(str(bad, "code"), "bad_request");
    EXPECT_EQ(str(bad, "field"), "order_id");
    EXPECT_FALSE(bad.at("fatal").as_bool());
    EXPECT_EQ(str(t->request("charge", R"("order_id":"A2","gross_amount":"100")"), "field"),
              "gross_amount");
    EXPECT_EQ(str(t->request("charge", R"("order_id":"A2","gross_amount":0)"), "field"),
              "gross_amount");
    EXPECT_EQ(str(t->request("charge", R"("order_id":"A2","gross_amount":1,"payment_type":"card")"),
                  "field"),
              "payment_type");
    EXPECT_EQ(str(t->request("charge", R"("order_id":"A2","gross_amount":1,"expiry":5)"), "field"),
              "expiry");
    ASSERT_EQ(str(t->request("charge", R"("order_id":"D-1","gross_amount":7000)"), "op"), "result");
    auto dup = t->request("charge", R"("order_id":"D-1","gross_amount":7000)");
    EXPECT_EQ(str(dup, "code"), "order_exists");
    EXPECT_EQ(str(dup, "current"), "pending");
    // The connection is still usable.
    EXPECT_EQ(str(t->request("status", R"("order_id":"D-1")"), "transaction_status"), "pending");
}

TEST_F(ChargeFlow, GopayDeny900IsReportedRetriable) {
    ASSERT_EQ(sim_config(sim_.port, R"({"deny_next_charges":1})").result_int(), 200);
    auto t = terminal();
    auto r = t->request("charge", R"("order_id":"G-1","gross_amount":9000,"payment_type":"gopay")");
    EXPECT_EQ(str(r, "code"), "midtrans_error") << boost::json::serialize(r);
    EXPECT_EQ(str(r, "channel_response_code"), "900");
    EXPECT_TRUE(r.at("retriable").as_bool());
    t->wait_event("G-1", "deny");
    // The order_id is used; a new one charges fine.
    EXPECT_EQ(str(t->request("charge", R"("order_id":"G-1","gross_amount":9000)"), "code"),
              "order_exists");
    EXPECT_EQ(str(t->request("charge", R"("order_id":"G-2","gross_amount":9000)"), "op"), "result");
}

// Redis acknowledged the reservation, then lost it and refused every write while Midtrans
// created the charge (a full disk: Redis answers what it could not append to its AOF, then
// refuses writes with MISCONF; bench/full_disk.sh found it). The charge's records are written
// again once Redis takes writes, so the order is routed and the payment reaches the terminal.
TEST_F(ChargeFlow, ChargeWhoseRecordsRedisLostIsRoutedAgain) {
    ASSERT_EQ(sim_config(sim_.port, R"({"charge_delay_ms":1500})").result_int(), 200);
    auto t = terminal();
    // While Midtrans holds the charge's answer: the reservation is lost, writes are refused.
    std::thread fault([this] {
        const auto deadline = std::chrono::steady_clock::now() + seconds(10);
        while (redis_.cli({"EXISTS", "posrelay:{s:S-1}:o:K-1"}) != "1" &&
               std::chrono::steady_clock::now() < deadline) {
            std::this_thread::yield();
        }
        // The record and its route (key schema version 4: proto-docs/redis-keys.md).
        (void)redis_.cli({"DEL", "posrelay:{s:S-1}:o:K-1", "posrelay:{o:K-1}:route"});
        (void)redis_.cli({"CONFIG", "SET", "min-replicas-to-write", "1"});
    });
    auto r = t->request("charge", R"("order_id":"K-1","gross_amount":4000)");
    fault.join();
    ASSERT_EQ(str(r, "op"), "result") << boost::json::serialize(r);  // Midtrans charged it
    (void)redis_.cli({"CONFIG", "SET", "min-replicas-to-write", "0"});
    ASSERT_EQ(sim_config(sim_.port, R"({"charge_delay_ms":0})").result_int(), 200);

    t->wait_event("K-1", "pending");
    ASSERT_EQ(sim_pay(sim_.port, "K-1").result_int(), 200);
    EXPECT_TRUE(t->wait_event("K-1", "settlement").at("paid").as_bool());
    EXPECT_EQ(redis_.cli({"HGET", "posrelay:{s:S-1}:o:K-1", "terminal_id"}), "T-1");
    EXPECT_EQ(redis_.cli({"GET", "posrelay:{o:K-1}:route"}), "S-1");
}

TEST_F(ChargeFlow, MidtransDownLeavesNothingHalfCreated) {
    ASSERT_EQ(sim_config(sim_.port, R"({"down":true})").result_int(), 200);
    auto t = terminal();
    auto r = t->request("charge", R"("order_id":"M-1","gross_amount":3000)");
    EXPECT_EQ(str(r, "code"), "unavailable") << boost::json::serialize(r);
    EXPECT_EQ(str(t->request("status", R"("order_id":"M-1")"), "code"), "order_not_found");
    ASSERT_EQ(sim_config(sim_.port, R"({"down":false})").result_int(), 200);
    // The same order_id charges once Midtrans is back.
    EXPECT_EQ(str(t->request("charge", R"("order_id":"M-1","gross_amount":3000)"), "op"), "result");
}

TEST_F(ChargeFlow, MidtransUnreachableLeavesNothingHalfCreated) {
    relay_.proc.reset();
    start_relay("http://127.0.0.1:" + std::to_string(pick_free_port()));
    auto t = terminal();
    auto r = t->request("charge", R"("order_id":"U-1","gross_amount":3000)");
    EXPECT_EQ(str(r, "code"), "unavailable") << boost::json::serialize(r);
    EXPECT_NE(str(r, "message").find("nothing was charged"), std::string::npos);
    EXPECT_EQ(str(t->request("status", R"("order_id":"U-1")"), "code"), "order_not_found");
}

// Midtrans's API is HTTPS: posrelay verifies its certificate against the CA file (or the
// system's CAs) and the URL's host name. midtrans-sim gets a TLS front with throwaway
// certificates; a charge goes through only when both checks pass, and a failed check
// charges nothing.
TEST_F(ChargeFlow, ChargesOverHttpsOnlyWithAVerifiedCertificate) {
    namespace fs = std::filesystem;
    const fs::path dir =
        fs::path(::testing::TempDir()) / ("posrelay-https-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    make_certificate(dir, "localhost", "DNS:localhost,IP:127.0.0.1");
    make_certificate(dir, "elsewhere", "DNS:elsewhere.example");
    const auto file = [&](const char* name) { return (dir / name).string(); };
    tls_proxy good(file("localhost.crt"), file("localhost.key"), sim_.port);
    tls_proxy wrong_name(file("elsewhere.crt"), file("elsewhere.key"), sim_.port);
    const auto https = [](const tls_proxy& p) {
        return "https://localhost:" + std::to_string(p.port());
    };

    // Trusted CA, matching name: the charge, then the payment, go through.
    relay_.proc.reset();
    start_relay(https(good), {"--midtrans-ca-file", file("localhost.crt")});
    {
        auto t = terminal();
        auto r = t->request("charge", R"("order_id":"S-1","gross_amount":7000)");
        ASSERT_EQ(str(r, "op"), "result") << boost::json::serialize(r);
        EXPECT_GE(good.handshakes(), 1u);
        ASSERT_EQ(sim_pay(sim_.port, "S-1").result_int(), 200);
        EXPECT_TRUE(t->wait_event("S-1", "settlement").at("paid").as_bool());
        EXPECT_EQ(str(t->request("status", R"("order_id":"S-1")"), "transaction_status"),
                  "settlement");
    }
    const auto charges = sim_stats(sim_.port).at("charges").as_int64();

    // The certificate is not signed by a trusted CA (only the system's CAs are trusted).
    relay_.proc.reset();
    start_relay(https(good));
    {
        auto t = terminal();
        auto r = t->request("charge", R"("order_id":"S-2","gross_amount":7000)");
        EXPECT_EQ(str(r, "code"), "unavailable") << boost::json::serialize(r);
        EXPECT_EQ(str(t->request("status", R"("order_id":"S-2")"), "code"), "order_not_found");
    }

    // Trusted, but issued for another host name.
    relay_.proc.reset();
    start_relay(https(wrong_name), {"--midtrans-ca-file", file("elsewhere.crt")});
    {
        auto t = terminal();
        auto r = t->request("charge", R"("order_id":"S-3","gross_amount":7000)");
        EXPECT_EQ(str(r, "code"), "unavailable") << boost::json::serialize(r);
        EXPECT_EQ(str(t->request("status", R"("order_id":"S-3")"), "code"), "order_not_found");
    }
    // Neither refused connection sent a request: Midtrans saw no further charge.
    EXPECT_EQ(sim_stats(sim_.port).at("charges").as_int64(), charges);
    std::error_code ec;
    fs::remove_all(dir, ec);
}

TEST_F(ChargeFlow, DuplicatedAndReorderedNotificationsReachTheTerminalOnceInOrder) {
    ASSERT_EQ(sim_config(sim_.port, R"({"duplicate_rate":1.0,"reorder_rate":1.0})").result_int(),
              200);
    auto t = terminal();
    for (int i = 0; i < 5; ++i) {
        const std::string id = "R-" + std::to_string(i);
        ASSERT_EQ(
            str(t->request("charge", R"("order_id":")" + id + R"(","gross_amount":1000)"), "op"),
            "result");
        ASSERT_EQ(sim_pay(sim_.port, id).result_int(), 200);
    }
    for (int i = 0; i < 5; ++i)
        t->wait_event("R-" + std::to_string(i), "settlement");
    // Wait until the sim delivered every notification (duplicates included), then check.
    const auto deadline = std::chrono::steady_clock::now() + seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
        auto s = sim_stats(sim_.port);
        if (s.at("notifications_acked").as_int64() >= 20) break;
        if (auto f = t->conn.read_frame(milliseconds(50)); f && str(*f, "op") == "event")
            t->keep(*f);
    }
    while (auto f = t->conn.read_frame(milliseconds(300))) {
        if (str(*f, "op") == "event") t->keep(*f);
    }
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(t->statuses("R-" + std::to_string(i)),
                  (std::vector<std::string>{"pending", "settlement"}));
    }
}

}  // namespace
}  // namespace posrelay::test
