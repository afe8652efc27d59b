// The Midtrans API shapes: authorization header, charge body, answer classification.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "posrelay/midtrans/api.hpp"

namespace posrelay::midtrans {
namespace {

TEST(MidtransApi, BasicAuthorizationMatchesTheDocumentedExample) {
    // FACTS.md: key SB-Mid-server-abc123cde456 → U0ItTWlkLXNlcnZlci1hYmMxMjNjZGU0NTY6
    EXPECT_EQ(basic_authorization("SB-Mid-server-abc123cde456"),
              "Basic U0ItTWlkLXNlcnZlci1hYmMxMjNjZGU0NTY6");
}

TEST(MidtransApi, ChargeBodyCarriesTheFieldsMidtransExpects) {
    charge_request r;
    r.order_id = "A-1";
    r.gross_amount = 10000;
    r.type = payment_type::gopay;
    r.expiry = std::chrono::seconds(300);
    r.items_json = R"([{"id":"x","price":10000,"quantity":1,"name":"Kopi"}])";
    const auto v = boost::json::parse(charge_body(r)).as_object();
    EXPECT_EQ(v.at("payment_type").as_string(), "gopay");
    EXPECT_EQ(v.at("transaction_details").at("order_id").as_string(), "A-1");
    EXPECT_EQ(v.at("transaction_details").at("gross_amount").as_int64(), 10000);
    EXPECT_EQ(v.at("custom_expiry").at("expiry_duration").as_int64(), 300);
    EXPECT_EQ(v.at("custom_expiry").at("unit").as_string(), "second");
    EXPECT_EQ(v.at("item_details").as_array().size(), 1u);
    EXPECT_FALSE(v.contains("qris"));

    r.type = payment_type::qris;
    r.expiry.reset();
    r.items_json.clear();
    const auto q = boost::json::parse(charge_body(r)).as_object();
    EXPECT_EQ(q.at("payment_type").as_string(), "qris");
    EXPECT_FALSE(q.contains("custom_expiry"));
    EXPECT_FALSE(q.contains("item_details"));
}

TEST(MidtransApi, ReadsAChargeAnswerWithItsActions) {
    const auto a =
        read_answer(200, R"({"status_code":"201","status_message":"GO-PAY billing created",
        "transaction_id":"e48447d1","order_id":"A1","gross_amount":"10000.00","payment_type":"gopay",
        "transaction_status":"pending","fraud_status":"accept","expiry_time":"2026-11-24 10:15:00",
        "actions":[{"name":"generate-qr-code","method":"GET","url":"https://x/v2/gopay/e48447d1/qr-code"},
                   {"name":"deeplink-redirect","method":"GET","url":"gojek://gopay/merchanttransfer?tref=1"},
                   {"name":"cancel","method":"POST","url":"https://x/v2/e48447d1/cancel","fields":[]}],
        "unknown_field":{"nested":[1,2]}})");
    EXPECT_EQ(a.verdict, answer_class::ok);
    EXPECT_EQ(a.transaction_id, "e48447d1");
    EXPECT_EQ(a.qr_code_url, "https://x/v2/gopay/e48447d1/qr-code");
    EXPECT_EQ(a.deeplink, "gojek://gopay/merchanttransfer?tref=1");
    EXPECT_EQ(a.expiry_time, "2026-11-24 10:15:00");
}

TEST(MidtransApi, ClassifiesByHttpStatusAndBodyStatusCode) {
    // Body status_code >= 400 is an error even with HTTP 200 (older API versions).
    EXPECT_EQ(
        read_answer(200, R"({"status_code":"404","status_message":"Transaction doesn't exist."})")
            .verdict,
        answer_class::refused);
    EXPECT_EQ(read_answer(404, R"({"status_code":"404"})").verdict, answer_class::refused);
    EXPECT_EQ(read_answer(200, R"({"status_code":"406"})").verdict, answer_class::refused);
    EXPECT_EQ(read_answer(412, R"({"status_code":"412"})").verdict, answer_class::refused);
    EXPECT_EQ(read_answer(401, "not json").verdict, answer_class::refused);
    // 407 is the success of /expire.
    EXPECT_EQ(read_answer(200, R"({"status_code":"407","transaction_status":"expire"})").verdict,
              answer_class::ok);
    EXPECT_EQ(read_answer(429, R"({"status_code":"429"})").verdict, answer_class::retriable);
    EXPECT_EQ(read_answer(200, R"({"status_code":"429"})").verdict, answer_class::retriable);
    EXPECT_EQ(read_answer(503, "").verdict, answer_class::retriable);
    EXPECT_EQ(read_answer(200, R"({"status_code":"500"})").verdict, answer_class::retriable);
    // A 2xx that is not Midtrans's JSON (a proxy page), and a redirect: retriable.
    EXPECT_EQ(read_answer(200, "<html>").verdict, answer_class::retriable);
    EXPECT_EQ(read_answer(302, "").verdict, answer_class::retriable);
    // GoPay deny with channel_response_code 900: intermittent, retriable; other denies final.
    EXPECT_EQ(read_answer(200, R"({"status_code":"202","transaction_status":"deny",
                                   "channel_response_code":"900"})")
                  .verdict,
              answer_class::retriable);
    EXPECT_EQ(read_answer(200, R"({"status_code":"202","transaction_status":"deny",
                                   "channel_response_code":"800"})")
                  .verdict,
              answer_class::ok);
}

TEST(MidtransApi, RetryAfterIsDeltaSeconds) {
    EXPECT_EQ(parse_retry_after("5"), std::chrono::seconds(5));
    EXPECT_EQ(parse_retry_after(" 30 "), std::chrono::seconds(30));
    EXPECT_FALSE(parse_retry_after(""));
    EXPECT_FALSE(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"));
    EXPECT_FALSE(parse_retry_after("-1"));
    EXPECT_FALSE(parse_retry_after("999999999"));
}

TEST(MidtransApi, OrderIdAndAmountRules) {
    EXPECT_TRUE(valid_order_id("A-1_b.c~d"));
    EXPECT_TRUE(valid_order_id(std::string(50, 'x')));
    EXPECT_FALSE(valid_order_id(std::string(51, 'x')));
    EXPECT_FALSE(valid_order_id(""));
    EXPECT_FALSE(valid_order_id("a b"));
    EXPECT_FALSE(valid_order_id("a/b"));
    EXPECT_EQ(normalise_gross_amount("10000.00"), "10000");
    EXPECT_FALSE(normalise_gross_amount("0"));
    EXPECT_FALSE(normalise_gross_amount("10.5"));
}

TEST(MidtransApi, TimesAreJakartaTime) {
    const auto ms = parse_midtrans_time("2026-11-24 17:00:00");
    ASSERT_TRUE(ms);
    EXPECT_EQ(*ms, 1795514400000);  // 10:00:00 UTC
    EXPECT_EQ(format_midtrans_time(*ms), "2026-11-24 17:00:00");
}

TEST(MidtransApi, AnswerBecomesAStatusUpdate) {
    const auto a =
        read_answer(200, R"({"status_code":"200","order_id":"A1","gross_amount":"10000.00",
        "transaction_status":"settlement","fraud_status":"accept","transaction_id":"t-1"})");
    const auto u = to_status_update(a, ingest::update_source::poll, 42);
    ASSERT_TRUE(u);
    EXPECT_EQ(u->order_id(), "A1");
    EXPECT_TRUE(u->paid());
    EXPECT_EQ(u->source, ingest::update_source::poll);
    EXPECT_EQ(u->received_unix_ms, 42);
    EXPECT_EQ(u->get(ingest::field::transaction_id), "t-1");

    // A cancel answer without transaction_status: the override names it.
    const auto c =
        read_answer(200, R"({"status_code":"200","order_id":"A1","gross_amount":"10000.00"})");
    EXPECT_FALSE(to_status_update(c, ingest::update_source::api, 1));
    const auto cu = to_status_update(c, ingest::update_source::api, 1, "cancel");
    ASSERT_TRUE(cu);
    EXPECT_EQ(cu->status, transaction_status::cancel);
    EXPECT_FALSE(cu->paid());
    // An unknown fraud_status is refused, not guessed.
    const auto f = read_answer(200, R"({"status_code":"200","order_id":"A1","gross_amount":"1.00",
        "transaction_status":"settlement","fraud_status":"maybe"})");
    EXPECT_FALSE(to_status_update(f, ingest::update_source::poll, 1));
}

// Issue 13: a GET status answer is trusted by transport, but a status that disagrees with
// its own status_code is never applied.
TEST(MidtransApi, InconsistentAnswerIsNotAStatusUpdate) {
    const auto edited = read_answer(200, R"({"status_code":"201","order_id":"A1",
        "gross_amount":"10000.00","transaction_status":"settlement","fraud_status":"accept"})");
    EXPECT_FALSE(to_status_update(edited, ingest::update_source::poll, 1));
    const auto challenge = read_answer(200, R"({"status_code":"201","order_id":"A1",
        "gross_amount":"10000.00","transaction_status":"capture","fraud_status":"accept"})");
    EXPECT_FALSE(to_status_update(challenge, ingest::update_source::poll, 1));
    const auto no_code = read_answer(
        200, R"({"order_id":"A1","gross_amount":"10000.00","transaction_status":"settlement"})");
    EXPECT_FALSE(to_status_update(no_code, ingest::update_source::poll, 1));
    // The consistent ones: pending 201, expire 407 (the expire API), deny 202.
    for (auto [code, status] : {std::pair{"201", "pending"}, {"407", "expire"}, {"202", "deny"}}) {
        const auto a = read_answer(200, std::string(R"({"status_code":")") + code +
                                            R"(","order_id":"A1","gross_amount":"10000.00",)"
                                            R"("transaction_status":")" +
                                            status + R"("})");
        EXPECT_TRUE(to_status_update(a, ingest::update_source::poll, 1)) << status;
    }
}

}  // namespace
}  // namespace posrelay::midtrans
