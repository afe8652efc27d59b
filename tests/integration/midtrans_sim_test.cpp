// midtrans-sim, the Midtrans stand-in, spoken to over HTTP: Core API answer shapes and
// errors, QR images, signed notifications to a loopback receiver, retries, faults, the
// status rate limit and denied charges.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <csignal>
#include <regex>

#include "midtrans_sim.hpp"
#include "posrelay/midtrans/signature.hpp"

namespace posrelay::test {
namespace {

namespace http = boost::beast::http;
namespace json = boost::json;

std::string charge_body(std::string_view type, std::string_view order_id, long amount = 10000,
                        std::string_view extra = {}) {
    return R"({"payment_type":")" + std::string(type) + R"(","transaction_details":{"order_id":")" +
           std::string(order_id) + R"(","gross_amount":)" + std::to_string(amount) + "}" +
           std::string(extra) + "}";
}

json::object body_of(const http_response& res) {
    const auto v = json::parse(res.body());
    return v.is_object() ? v.get_object() : json::object{};
}

std::string str(const json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->get_string()) : std::string("<absent>");
}

std::int64_t num(const json::object& o, std::string_view key) {
    return o.at(key).to_number<std::int64_t>();
}

// The signature of a status or notification body verifies with the key it was made with.
bool signed_with(const json::object& o, std::string_view key) {
    return midtrans::verify_signature(str(o, "signature_key"), str(o, "order_id"),
                                      str(o, "status_code"), str(o, "gross_amount"), key);
}

class MidtransSim : public ::testing::Test {
protected:
    void start(std::vector<std::string> args = {}) { sim_ = start_midtrans_sim(std::move(args)); }

    // A Core API call with the right key (unless `auth` says otherwise).
    http_response api(http::verb method, std::string target, std::string body = {},
                      std::map<std::string, std::string> headers = {},
                      std::optional<std::string> auth = std::nullopt) {
        headers["Authorization"] = auth.value_or(sim_auth_header());
        return http_client(sim_.port).request(method, target, std::move(body), "application/json",
                                              headers);
    }
    http_response charge(std::string body, std::string notify_url = {}) {
        std::map<std::string, std::string> h;
        if (!notify_url.empty()) h["X-Override-Notification"] = notify_url;
        return api(http::verb::post, "/v2/charge", std::move(body), h);
    }
    http_response status(std::string_view id) {
        return api(http::verb::get, "/v2/" + std::string(id) + "/status");
    }
    // Waits until the sim logged (and so counted) attempt `n` of an order's notification.
    void wait_attempt(std::string_view order_id, std::string_view event, std::string_view url,
                      int n) {
        (void)sim_.proc->wait_for_line(
            R"("order_id":")" + std::string(order_id) + R"(","event":")" + std::string(event) +
            R"(","url":")" + std::string(url) + R"(","attempt":)" + std::to_string(n) + ",");
    }

    sim_process sim_;
};

TEST_F(MidtransSim, GopayChargeHasMidtransShape) {
    start({"--seed", "42"});
    const auto res = charge(charge_body("gopay", "ORD-G1", 25000));
    ASSERT_EQ(res.result_int(), 200) << res.body();
    const auto o = body_of(res);
    EXPECT_EQ(str(o, "status_code"), "201");
    EXPECT_EQ(str(o, "status_message"), "GO-PAY billing created");
    EXPECT_EQ(str(o, "order_id"), "ORD-G1");
    EXPECT_EQ(str(o, "gross_amount"), "25000.00");
    EXPECT_EQ(str(o, "currency"), "IDR");
    EXPECT_EQ(str(o, "payment_type"), "gopay");
    EXPECT_EQ(str(o, "transaction_status"), "pending");
    EXPECT_EQ(str(o, "fraud_status"), "accept");
    const std::string tid = str(o, "transaction_id");
    EXPECT_TRUE(std::regex_match(
        tid, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")))
        << tid;
    const std::regex time_re(R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)");
    EXPECT_TRUE(std::regex_match(str(o, "transaction_time"), time_re));
    EXPECT_TRUE(std::regex_match(str(o, "expiry_time"), time_re));
    EXPECT_GT(str(o, "expiry_time"), str(o, "transaction_time"));  // default 15 min later
    const auto& actions = o.at("actions").as_array();
    ASSERT_EQ(actions.size(), 4u);
    auto action = [&](std::size_t i) { return actions[i].as_object(); };
    EXPECT_EQ(str(action(0), "name"), "generate-qr-code");
    EXPECT_EQ(str(action(0), "url"), sim_.url() + "/v2/gopay/" + tid + "/qr-code");
    EXPECT_EQ(str(action(1), "name"), "deeplink-redirect");
    EXPECT_TRUE(std::regex_match(
        str(action(1), "url"),
        std::regex(R"(gojek://gopay/merchanttransfer\?tref=\w+&amount=25000&activity=GP:RR)")))
        << str(action(1), "url");
    EXPECT_EQ(str(action(2), "name"), "get-status");
    EXPECT_EQ(str(action(2), "url"), sim_.url() + "/v2/" + tid + "/status");
    EXPECT_EQ(str(action(3), "name"), "cancel");
    EXPECT_EQ(str(action(3), "method"), "POST");
    EXPECT_EQ(str(action(3), "url"), sim_.url() + "/v2/" + tid + "/cancel");

    // The same seed and calls give the same transaction id.
    auto again = start_midtrans_sim({"--seed", "42"});
    const auto res2 =
        http_client(again.port)
            .request(http::verb::post, "/v2/charge", charge_body("gopay", "ORD-G1", 25000),
                     "application/json", {{"Authorization", sim_auth_header()}});
    EXPECT_EQ(str(body_of(res2), "transaction_id"), tid);
}

TEST_F(MidtransSim, QrisChargeHasQrStringAndAcquirer) {
    start();
    const auto a = body_of(charge(charge_body("qris", "ORD-Q1")));
    const auto b = body_of(charge(charge_body("qris", "ORD-Q2")));
    EXPECT_EQ(str(a, "status_code"), "201");
    EXPECT_EQ(str(a, "status_message"), "QRIS transaction is created");
    EXPECT_EQ(str(a, "acquirer"), "gopay");
    EXPECT_TRUE(str(a, "qr_string").starts_with("000201"));
    EXPECT_NE(str(a, "qr_string"), str(b, "qr_string"));
    const auto& actions = a.at("actions").as_array();
    ASSERT_EQ(actions.size(), 1u);
    EXPECT_EQ(str(actions[0].as_object(), "url"),
              sim_.url() + "/v2/qris/" + str(a, "transaction_id") + "/qr-code");
}

TEST_F(MidtransSim, WrongOrMissingKeyIs401) {
    start();
    const auto wrong = api(http::verb::post, "/v2/charge", charge_body("gopay", "ORD-K"), {},
                           sim_auth_header("SB-Mid-server-WRONG"));
    EXPECT_EQ(wrong.result_int(), 401);
    const auto o = body_of(wrong);
    EXPECT_EQ(str(o, "status_code"), "401");
    EXPECT_EQ(str(o, "status_message"),
              "Access denied due to unauthorized transaction, please check client or server key");
    EXPECT_NE(str(o, "id"), "<absent>");
    EXPECT_EQ(http_client(sim_.port).get("/v2/ORD-K/status").result_int(), 401);
    EXPECT_EQ(status("ORD-K").result_int(), 404);  // never created
    EXPECT_EQ(sim_.proc->output().find(sim_server_key), std::string::npos);
}

TEST_F(MidtransSim, InvalidChargesAre400WithValidationMessages) {
    start();
    const std::vector<std::string> bad = {
        "not json",
        charge_body("credit_card", "ORD-1"),
        charge_body("gopay", std::string(51, 'a')),
        charge_body("gopay", "ORD 1"),
        charge_body("gopay", ""),
        charge_body("gopay", "ORD-1", 0),
        charge_body("gopay", "ORD-1", -5),
        R"({"payment_type":"gopay","transaction_details":{"order_id":"ORD-1","gross_amount":"100"}})",
        R"({"payment_type":"gopay","transaction_details":{"order_id":"ORD-1","gross_amount":10.5}})",
        charge_body("gopay", "ORD-1", 100,
                    R"(,"custom_expiry":{"expiry_duration":5,"unit":"week"})"),
    };
    for (const auto& body : bad) {
        const auto res = charge(body);
        EXPECT_EQ(res.result_int(), 400) << body;
        const auto o = body_of(res);
        EXPECT_EQ(str(o, "status_code"), "400") << body;
        EXPECT_TRUE(o.contains("validation_messages")) << res.body();
    }
    // X-Override-Notification: at most 3 URLs, plain http only.
    EXPECT_EQ(charge(charge_body("gopay", "ORD-2"), "http://a/1,http://a/2,http://a/3,http://a/4")
                  .result_int(),
              400);
    EXPECT_EQ(charge(charge_body("gopay", "ORD-3"), "https://example.com/n").result_int(), 400);
    EXPECT_EQ(
        charge(charge_body("gopay", "ORD-4"), "http://a/1, http://a/2,http://a/3").result_int(),
        200);
    EXPECT_EQ(num(sim_stats(sim_.port), "charges"), 1);
}

TEST_F(MidtransSim, DuplicateOrderIs406UntilCanceled) {
    start();
    const auto first = body_of(charge(charge_body("gopay", "ORD-D")));
    const auto dup = charge(charge_body("gopay", "ORD-D"));
    EXPECT_EQ(dup.result_int(), 406);
    EXPECT_EQ(str(body_of(dup), "status_code"), "406");

    const auto cancel = api(http::verb::post, "/v2/ORD-D/cancel");
    EXPECT_EQ(cancel.result_int(), 200);
    EXPECT_EQ(str(body_of(cancel), "status_code"), "200");
    EXPECT_EQ(str(body_of(cancel), "status_message"), "Success, transaction is canceled");
    EXPECT_EQ(str(body_of(cancel), "transaction_status"), "cancel");

    const auto reuse = charge(charge_body("gopay", "ORD-D"));
    ASSERT_EQ(reuse.result_int(), 200);
    const std::string new_tid = str(body_of(reuse), "transaction_id");
    EXPECT_NE(new_tid, str(first, "transaction_id"));
    // The order id names the newest transaction; the old one is still found by its id.
    EXPECT_EQ(str(body_of(status("ORD-D")), "transaction_id"), new_tid);
    EXPECT_EQ(str(body_of(status(str(first, "transaction_id"))), "transaction_status"), "cancel");
    // Settled: still not reusable.
    ASSERT_EQ(sim_pay(sim_.port, "ORD-D").result_int(), 200);
    EXPECT_EQ(charge(charge_body("gopay", "ORD-D")).result_int(), 406);
}

TEST_F(MidtransSim, StatusIsFoundSignedOr404) {
    start();
    const auto missing = status("NO-SUCH-ORDER");
    EXPECT_EQ(missing.result_int(), 404);
    EXPECT_EQ(str(body_of(missing), "status_code"), "404");
    EXPECT_EQ(str(body_of(missing), "status_message"), "Transaction doesn't exist.");

    const auto c = body_of(charge(charge_body("qris", "ORD-S", 777)));
    for (const auto& id : {std::string("ORD-S"), str(c, "transaction_id")}) {
        const auto o = body_of(status(id));
        EXPECT_EQ(str(o, "status_code"), "201");
        EXPECT_EQ(str(o, "transaction_status"), "pending");
        EXPECT_EQ(str(o, "status_message"), "Success, transaction is found");
        EXPECT_EQ(str(o, "gross_amount"), "777.00");
        EXPECT_TRUE(signed_with(o, sim_server_key)) << o;
        EXPECT_FALSE(signed_with(o, "SB-Mid-server-other"));
    }
    ASSERT_EQ(sim_pay(sim_.port, "ORD-S").result_int(), 200);
    const auto paid = body_of(status("ORD-S"));
    EXPECT_EQ(str(paid, "status_code"), "200");
    EXPECT_EQ(str(paid, "transaction_status"), "settlement");
    EXPECT_NE(str(paid, "settlement_time"), "<absent>");
    EXPECT_TRUE(signed_with(paid, sim_server_key));
}

TEST_F(MidtransSim, SettledCannotBeCanceledOrExpired) {
    start();
    (void)charge(charge_body("gopay", "ORD-C"));
    ASSERT_EQ(sim_pay(sim_.port, "ORD-C").result_int(), 200);
    for (const auto* verb : {"cancel", "expire"}) {
        const auto res = api(http::verb::post, std::string("/v2/ORD-C/") + verb);
        EXPECT_EQ(res.result_int(), 412) << verb;
        EXPECT_EQ(str(body_of(res), "status_code"), "412");
        EXPECT_EQ(str(body_of(res), "status_message"),
                  "Merchant cannot modify the status of the transaction");
    }
    EXPECT_EQ(sim_pay(sim_.port, "ORD-C").result_int(), 412);
    EXPECT_EQ(api(http::verb::post, "/v2/NOPE/cancel").result_int(), 404);
    EXPECT_EQ(sim_pay(sim_.port, "NOPE").result_int(), 404);
}

TEST_F(MidtransSim, ExpireAnswers407) {
    start();
    (void)charge(charge_body("gopay", "ORD-E"));
    const auto res = api(http::verb::post, "/v2/ORD-E/expire");
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_EQ(str(body_of(res), "status_code"), "407");
    EXPECT_EQ(str(body_of(res), "status_message"), "Success, transaction has expired");
    const auto o = body_of(status("ORD-E"));
    EXPECT_EQ(str(o, "transaction_status"), "expire");
    EXPECT_EQ(str(o, "status_code"), "407");
    EXPECT_EQ(charge(charge_body("gopay", "ORD-E")).result_int(), 200);  // reusable
}

TEST_F(MidtransSim, QrCodeIsAPng) {
    start();
    const auto c = body_of(charge(charge_body("gopay", "ORD-PNG")));
    const std::string path = "/v2/gopay/" + str(c, "transaction_id") + "/qr-code";
    const auto res = http_client(sim_.port).get(path);  // no key needed
    ASSERT_EQ(res.result_int(), 200);
    EXPECT_EQ(res[http::field::content_type], "image/png");
    const std::string& png = res.body();
    ASSERT_GT(png.size(), 33u);
    EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
    EXPECT_EQ(png.substr(12, 4), "IHDR");
    auto be32 = [&](std::size_t at) {
        std::uint32_t v = 0;
        for (std::size_t i = 0; i < 4; ++i)
            v = (v << 8) | static_cast<unsigned char>(png[at + i]);
        return v;
    };
    const auto width = be32(16), height = be32(20);
    EXPECT_EQ(width, height);
    EXPECT_GE(width, 21u * 4);  // at least a version-1 symbol at 4 px per module
    EXPECT_EQ(http_client(sim_.port)
                  .get("/v2/qris/00000000-0000-4000-8000-000000000000/qr-code")
                  .result_int(),
              404);
}

TEST_F(MidtransSim, NotificationsAreSignedAndDelivered) {
    notification_receiver rx;
    start();
    const auto c = body_of(charge(charge_body("gopay", "ORD-N", 100), rx.url()));
    auto got = rx.wait_for(1);
    EXPECT_EQ(got[0].target, "/notify");
    EXPECT_EQ(got[0].user_agent, "Veritrans");
    EXPECT_EQ(got[0].content_type, "application/json");
    const auto& pending = got[0].json;
    EXPECT_EQ(str(pending, "transaction_status"), "pending");
    EXPECT_EQ(str(pending, "status_code"), "201");
    EXPECT_EQ(str(pending, "status_message"), "midtrans payment notification");
    EXPECT_EQ(str(pending, "transaction_id"), str(c, "transaction_id"));
    EXPECT_TRUE(signed_with(pending, sim_server_key)) << got[0].body;

    ASSERT_EQ(sim_pay(sim_.port, "ORD-N").result_int(), 200);
    got = rx.wait_for(2);
    const auto& settled = got[1].json;
    EXPECT_EQ(str(settled, "transaction_status"), "settlement");
    EXPECT_EQ(str(settled, "status_code"), "200");
    EXPECT_EQ(str(settled, "gross_amount"), "100.00");
    EXPECT_EQ(str(settled, "fraud_status"), "accept");
    EXPECT_EQ(str(settled, "currency"), "IDR");
    EXPECT_NE(str(settled, "settlement_time"), "<absent>");
    EXPECT_TRUE(signed_with(settled, sim_server_key)) << got[1].body;

    // The order's record shows both attempts.
    wait_attempt("ORD-N", "settlement", rx.url(), 1);
    const auto order = body_of(http_client(sim_.port).get("/sim/orders/ORD-N"));
    EXPECT_EQ(num(order, "notification_attempts_total"), 2);
    const auto s = sim_stats(sim_.port);
    EXPECT_EQ(num(s, "notifications_acked"), 2);
    EXPECT_EQ(num(s, "orders_settled"), 1);
}

TEST_F(MidtransSim, OrdersExpireByThemselves) {
    notification_receiver rx;
    start({"--notify-pending", "no"});
    (void)charge(charge_body("qris", "ORD-X", 100,
                             R"(,"custom_expiry":{"expiry_duration":1,"unit":"second"})"),
                 rx.url());
    const auto got = rx.wait_for(1, std::chrono::seconds(5));
    EXPECT_EQ(str(got[0].json, "transaction_status"), "expire");
    EXPECT_EQ(str(got[0].json, "status_code"), "407");
    EXPECT_TRUE(signed_with(got[0].json, sim_server_key));
}

TEST_F(MidtransSim, NotificationIsRetriedAfter503) {
    notification_receiver rx({503});
    // 2 minutes / 6000 = 20 ms to the first retry; the answer deadline 9 h / 6000 = 5.4 s
    // (the 15 s default would be 2.5 ms, a timeout on a loaded machine).
    start({"--time-scale", "6000", "--notify-timeout", "9h", "--notify-pending", "no"});
    (void)charge(charge_body("gopay", "ORD-R"), rx.url());
    ASSERT_EQ(sim_pay(sim_.port, "ORD-R").result_int(), 200);
    const auto got = rx.wait_for(2);
    EXPECT_EQ(got[0].answered, 503u);
    EXPECT_EQ(got[1].answered, 200u);
    EXPECT_EQ(got[1].body, got[0].body);  // the same notification again
    wait_attempt("ORD-R", "settlement", rx.url(), 2);
    const auto s = sim_stats(sim_.port);
    EXPECT_EQ(num(s, "notifications_failed_attempts"), 1);
    EXPECT_EQ(num(s, "notifications_acked"), 1);
}

TEST_F(MidtransSim, RedirectIsNotRetriedAnd500OnlyOnce) {
    notification_receiver rx({302, 500, 500});
    start({"--time-scale", "6000", "--notify-timeout", "9h", "--notify-pending", "no"});
    (void)charge(charge_body("gopay", "ORD-302"), rx.url());
    ASSERT_EQ(sim_pay(sim_.port, "ORD-302").result_int(), 200);  // 302: given up at once
    (void)rx.wait_for(1);
    (void)charge(charge_body("gopay", "ORD-500"), rx.url());
    ASSERT_EQ(sim_pay(sim_.port, "ORD-500").result_int(), 200);  // 500, one retry (500)
    const auto got = rx.wait_for(3);
    EXPECT_EQ(str(got[1].json, "order_id"), "ORD-500");
    EXPECT_EQ(str(got[2].json, "order_id"), "ORD-500");
    // Both deliveries end given up, so no fourth request can come.
    (void)sim_.proc->wait_for_line(R"("msg":"notification given up","order_id":"ORD-500")");
    const auto s = sim_stats(sim_.port);
    EXPECT_EQ(num(s, "notifications_given_up"), 2);
    EXPECT_EQ(num(s, "notifications_sent"), 3);
    EXPECT_EQ(rx.all().size(), 3u);
}

TEST_F(MidtransSim, DropAndDuplicateFaults) {
    notification_receiver rx;
    start();
    ASSERT_EQ(sim_config(sim_.port, R"({"drop_rate":1})").result_int(), 200);
    (void)charge(charge_body("gopay", "ORD-F"), rx.url());  // pending: dropped
    ASSERT_EQ(sim_config(sim_.port, R"({"drop_rate":0,"duplicate_rate":1})").result_int(), 200);
    ASSERT_EQ(sim_pay(sim_.port, "ORD-F").result_int(), 200);  // settlement: twice
    const auto got = rx.wait_for(2);
    EXPECT_EQ(str(got[0].json, "transaction_status"), "settlement");
    EXPECT_EQ(got[0].body, got[1].body);
    const auto s = sim_stats(sim_.port);
    EXPECT_EQ(num(s, "notifications_dropped"), 1);
    EXPECT_EQ(num(s, "notifications_duplicated"), 1);
    const auto cfg = body_of(http_client(sim_.port).get("/sim/config"));
    EXPECT_EQ(cfg.at("duplicate_rate").to_number<double>(), 1.0);
    EXPECT_EQ(sim_config(sim_.port, R"({"drop_rate":2})").result_int(), 400);
    EXPECT_EQ(sim_config(sim_.port, R"({"no_such_setting":1})").result_int(), 400);
}

TEST_F(MidtransSim, ReorderSendsPendingAfterSettlement) {
    notification_receiver rx;
    start({"--reorder-rate", "1"});
    (void)charge(charge_body("gopay", "ORD-O"), rx.url());  // pending: held
    ASSERT_EQ(sim_pay(sim_.port, "ORD-O").result_int(), 200);
    const auto got = rx.wait_for(2);
    EXPECT_EQ(str(got[0].json, "transaction_status"), "settlement");
    EXPECT_EQ(str(got[1].json, "transaction_status"), "pending");
    EXPECT_EQ(num(sim_stats(sim_.port), "notifications_reordered"), 1);
}

TEST_F(MidtransSim, StatusRateLimitAnswers429) {
    start({"--status-rate-limit", "5"});
    (void)charge(charge_body("gopay", "ORD-L"));
    http_client c(sim_.port);
    int ok = 0, limited = 0;
    for (int i = 0; i < 30; ++i) {
        const auto res = c.request(http::verb::get, "/v2/ORD-L/status", {}, {},
                                   {{"Authorization", sim_auth_header()}});
        if (res.result_int() == 429) {
            ++limited;
            EXPECT_EQ(str(body_of(res), "status_code"), "429");
        } else {
            ++ok;
            EXPECT_EQ(res.result_int(), 200);
        }
    }
    EXPECT_GT(limited, 0);
    const auto s = sim_stats(sim_.port);
    EXPECT_EQ(num(s, "status_calls"), 30);
    EXPECT_EQ(num(s, "status_calls_429"), limited);
    EXPECT_LE(num(s, "status_calls_max_in_any_second"), 5);
    EXPECT_GE(num(s, "status_calls_max_in_any_second"), 1);
}

TEST_F(MidtransSim, DenyNextChargesThenOrderIsReusable) {
    start();
    ASSERT_EQ(sim_config(sim_.port, R"({"deny_next_charges":1})").result_int(), 200);
    const auto denied = charge(charge_body("gopay", "ORD-DN"));
    EXPECT_EQ(denied.result_int(), 200);
    const auto o = body_of(denied);
    EXPECT_EQ(str(o, "status_code"), "202");
    EXPECT_EQ(str(o, "transaction_status"), "deny");
    EXPECT_EQ(str(o, "status_message"), "GO-PAY transaction is rejected");
    EXPECT_EQ(str(o, "channel_response_code"), "900");
    const auto again = body_of(charge(charge_body("gopay", "ORD-DN")));
    EXPECT_EQ(str(again, "status_code"), "201");
    EXPECT_EQ(str(again, "transaction_status"), "pending");
}

TEST_F(MidtransSim, InjectedErrorsAndDown) {
    start({"--error-rate", "1", "--error-status", "503"});
    const auto res = charge(charge_body("gopay", "ORD-ERR"));
    EXPECT_EQ(res.result_int(), 503);
    EXPECT_EQ(str(body_of(res), "status_code"), "503");
    ASSERT_EQ(sim_config(sim_.port, R"({"error_rate":0,"down":true})").result_int(), 200);
    EXPECT_EQ(status("ORD-ERR").result_int(), 503);
    ASSERT_EQ(sim_config(sim_.port, R"({"down":false})").result_int(), 200);
    EXPECT_EQ(charge(charge_body("gopay", "ORD-ERR")).result_int(), 200);
}

TEST_F(MidtransSim, RefusesToStartWithoutKey) {
    const auto r = run_command(MIDTRANS_SIM_BINARY, {"--listen", "127.0.0.1:0"},
                               {{"MIDTRANS_SIM_SERVER_KEY", ""}});
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.output.find("MIDTRANS_SIM_SERVER_KEY"), std::string::npos);
}

}  // namespace
}  // namespace posrelay::test

namespace posrelay::test {
namespace {

// A supervisor (systemd, a test fixture) may stop a process as soon as it said "listening":
// that SIGTERM must take the graceful path (exit 0), never the default action (143).
TEST(StopSignal, SigtermRightAfterListeningExitsCleanly) {
    for (int i = 0; i < 3; ++i) {
        auto sim = start_midtrans_sim({});
        sim.proc->signal(SIGTERM);
        const auto code = sim.proc->wait_exit(std::chrono::seconds(10));
        ASSERT_TRUE(code.has_value()) << "midtrans-sim did not exit within 10 s of SIGTERM";
        EXPECT_EQ(*code, 0) << sim.proc->output();

        auto relay = start_posrelay({"--terminal-listen", "off", "--store", "memory"},
                                    {{"POSRELAY_SERVER_KEY", "SB-Mid-server-x"}});
        relay.proc->signal(SIGTERM);
        const auto rcode = relay.proc->wait_exit(std::chrono::seconds(10));
        ASSERT_TRUE(rcode.has_value()) << "posrelay did not exit within 10 s of SIGTERM";
        EXPECT_EQ(*rcode, 0) << relay.proc->output();
    }
}

}  // namespace
}  // namespace posrelay::test
