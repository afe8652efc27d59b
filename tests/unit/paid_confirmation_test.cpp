// The pure rules of paid confirmation: which updates are confirmed with Midtrans, which are
// conflicts, and what GET status's answer means for a claim (tables).
#include <gtest/gtest.h>

#include "posrelay/midtrans/confirmation.hpp"

namespace posrelay::midtrans {
namespace {

using ts = transaction_status;
using fs = fraud_status;
constexpr std::optional<order_state> none = std::nullopt;

order_state st(ts s, std::optional<fs> f = std::nullopt) {
    return {s, f};
}

TEST(PaidConfirmation, WhichUpdatesNeedConfirmation) {
    struct row {
        std::optional<order_state> stored;
        order_state update;
        bool confirm;
        bool conflict;
    } table[] = {
        // Not paid → paid: confirmed (the first status seen too).
        {none, st(ts::settlement), true, false},
        {none, st(ts::settlement, fs::accept), true, false},
        {st(ts::pending), st(ts::settlement), true, false},
        {st(ts::pending), st(ts::capture, fs::accept), true, false},
        {st(ts::capture, fs::challenge), st(ts::capture, fs::accept), true, false},
        // Paid → not paid: confirmed.
        {st(ts::settlement), st(ts::refund), true, false},
        {st(ts::settlement), st(ts::partial_refund), true, false},
        {st(ts::settlement), st(ts::chargeback), true, false},
        {st(ts::settlement), st(ts::deny), true, false},
        {st(ts::capture, fs::accept), st(ts::cancel), true, false},
        // Against the transition table and changing paid: conflicts (finding 2 and its reverse).
        {st(ts::cancel), st(ts::settlement), true, true},
        {st(ts::deny), st(ts::settlement), true, true},
        {st(ts::expire), st(ts::settlement, fs::accept), true, true},
        {st(ts::settlement), st(ts::cancel), true, true},
        {st(ts::settlement), st(ts::expire), true, true},
        // A late pending (or authorize, unaccepted capture) after settlement is reordering.
        {st(ts::settlement), st(ts::pending), false, false},
        {st(ts::settlement), st(ts::authorize), false, false},
        {st(ts::settlement), st(ts::capture, fs::challenge), false, false},
        {st(ts::capture, fs::accept), st(ts::capture, fs::challenge), false, false},
        // Paid does not change: applied (or refused) as before, no call.
        {none, st(ts::pending), false, false},
        {st(ts::pending), st(ts::cancel), false, false},
        {st(ts::pending), st(ts::expire), false, false},
        {st(ts::pending), st(ts::capture, fs::challenge), false, false},
        {st(ts::settlement), st(ts::settlement), false, false},
        {st(ts::cancel), st(ts::expire), false, false},
        {st(ts::refund), st(ts::chargeback), false, false},
        {st(ts::pending), st(ts::settlement, fs::deny), false, false},
    };
    for (const auto& r : table) {
        const std::string what =
            std::string(r.stored ? to_string(r.stored->status) : "none") + " -> " +
            std::string(to_string(r.update.status)) +
            (r.update.fraud ? "/" + std::string(to_string(*r.update.fraud)) : "");
        EXPECT_EQ(needs_confirmation(r.stored, r.update), r.confirm) << what;
        EXPECT_EQ(is_conflict(r.stored, r.update), r.conflict) << what;
    }
}

api_answer answer(unsigned http, std::string_view body) {
    return read_answer(http, body);
}

TEST(PaidConfirmation, WhatMidtransAnswerMeans) {
    using v = confirmation_verdict;
    struct row {
        order_state claim;
        std::optional<api_answer> a;
        v verdict;
        std::optional<ts> midtrans;
    } table[] = {
        // Midtrans agrees on paid: confirmed, its status committed.
        {st(ts::settlement),
         answer(200, R"({"status_code":"200","transaction_status":"settlement"})"), v::confirmed,
         ts::settlement},
        {st(ts::settlement),
         answer(200,
                R"({"status_code":"200","transaction_status":"capture","fraud_status":"accept"})"),
         v::confirmed, ts::capture},
        {st(ts::refund), answer(200, R"({"status_code":"200","transaction_status":"refund"})"),
         v::confirmed, ts::refund},
        {st(ts::cancel), answer(200, R"({"status_code":"407","transaction_status":"expire"})"),
         v::confirmed, ts::expire},
        // Midtrans disagrees: denied (its status still committed), or knows no such order.
        {st(ts::settlement), answer(200, R"({"status_code":"201","transaction_status":"pending"})"),
         v::denied, ts::pending},
        {st(ts::settlement),
         answer(200,
                R"({"status_code":"200","transaction_status":"settlement","fraud_status":"deny"})"),
         v::denied, ts::settlement},
        {st(ts::cancel), answer(200, R"({"status_code":"200","transaction_status":"settlement"})"),
         v::denied, ts::settlement},
        {st(ts::settlement),
         answer(404, R"({"status_code":"404","status_message":"Transaction doesn't exist."})"),
         v::denied, std::nullopt},
        {st(ts::settlement),
         answer(200, R"({"status_code":"404","status_message":"Transaction doesn't exist."})"),
         v::denied, std::nullopt},
        // No usable answer: asked again later, never a verdict.
        {st(ts::settlement), std::nullopt, v::retry, std::nullopt},
        {st(ts::settlement), answer(429, R"({"status_code":"429"})"), v::retry, std::nullopt},
        {st(ts::settlement), answer(503, "Service Unavailable"), v::retry, std::nullopt},
        {st(ts::settlement), answer(401, R"({"status_code":"401"})"), v::retry, std::nullopt},
        {st(ts::settlement), answer(404, "<html>not found</html>"), v::retry, std::nullopt},
        {st(ts::settlement), answer(200, R"({"status_code":"200","transaction_status":"paid"})"),
         v::retry, std::nullopt},
        {st(ts::settlement), answer(200, "<html>proxy</html>"), v::retry, std::nullopt},
    };
    for (const auto& r : table) {
        const auto d = judge_confirmation(r.claim, r.a);
        const std::string what =
            std::string(to_string(r.claim.status)) + " / " +
            (r.a ? std::to_string(r.a->http_status) + " " + r.a->transaction_status : "no answer");
        EXPECT_EQ(d.verdict, r.verdict) << what;
        EXPECT_EQ(d.midtrans.has_value(), r.midtrans.has_value()) << what;
        if (d.midtrans && r.midtrans) {
            EXPECT_EQ(d.midtrans->status, *r.midtrans) << what;
        }
    }
}

TEST(PaidConfirmation, ClaimsReadBackAsTheScriptWritesThem) {
    const auto c = parse_claim("settlement|accept|200|1795498439577|1|M-2");
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->state, st(ts::settlement, fs::accept));
    EXPECT_EQ(c->status_code, "200");
    EXPECT_EQ(c->at_ms, 1795498439577);
    EXPECT_TRUE(c->conflict);
    EXPECT_EQ(c->merchant_id, "M-2");
    const auto plain = parse_claim("refund||200|5|0|");
    ASSERT_TRUE(plain.has_value());
    EXPECT_EQ(plain->state, st(ts::refund));
    EXPECT_FALSE(plain->conflict);
    EXPECT_EQ(plain->merchant_id, "");
    for (std::string_view bad :
         {"", "settlement", "settlement|accept|200|5|0", "paid||200|5|0|",
          "settlement|maybe|200|5|0|", "settlement||200|x|0|", "settlement||200|5|2|"}) {
        EXPECT_FALSE(parse_claim(bad).has_value()) << bad;
    }
}

TEST(PaidConfirmation, RetryDelayDoublesUpToTheCap) {
    using std::chrono::milliseconds;
    EXPECT_EQ(confirmation_retry_delay(0, milliseconds(60'000)), milliseconds(1000));
    EXPECT_EQ(confirmation_retry_delay(1, milliseconds(60'000)), milliseconds(2000));
    EXPECT_EQ(confirmation_retry_delay(5, milliseconds(60'000)), milliseconds(32'000));
    EXPECT_EQ(confirmation_retry_delay(6, milliseconds(60'000)), milliseconds(60'000));
    EXPECT_EQ(confirmation_retry_delay(1000, milliseconds(60'000)), milliseconds(60'000));
}

}  // namespace
}  // namespace posrelay::midtrans
