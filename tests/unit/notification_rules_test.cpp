// Tests of the notification rules (issue 13): field shapes, amounts in cents, and every
// (transaction_status, fraud_status, status_code) against a table written out by hand.
#include "posrelay/ingest/notification_rules.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string>

namespace {

using namespace posrelay::ingest;
using posrelay::midtrans::fraud_status;
using ts = posrelay::midtrans::transaction_status;

TEST(NotificationRules, StatusCodeIsThreeDigits) {
    for (auto ok : {"200", "201", "202", "407", "000"})
        EXPECT_TRUE(valid_status_code(ok)) << ok;
    for (auto bad : {"", "1", "20", "2000", "not-a-code", "20a", " 200", "200 ", "+20", "２00"})
        EXPECT_FALSE(valid_status_code(bad)) << bad;
}

TEST(NotificationRules, GrossAmountHasTwoDecimalsAsMidtransSendsIt) {
    for (auto ok : {"1.00", "25000.00", "500000.00", "10000.50", "999999999999999.99"})
        EXPECT_TRUE(valid_gross_amount(ok)) << ok;
    for (auto bad : {"", "25000", "25000.0", "25000.000", "ten thousand", "-25000.00", "+25000.00",
                     "1e4", "1e4.00", "0.00", "025000.00", " 25000.00", "25000.00 ", "25,000.00",
                     ".00", "25000.", "25000.0a", "1000000000000000.00"})
        EXPECT_FALSE(valid_gross_amount(bad)) << bad;
}

TEST(NotificationRules, AmountsCompareInCents) {
    EXPECT_EQ(amount_cents("500000"), 50'000'000);
    EXPECT_EQ(amount_cents("500000.00"), 50'000'000);
    EXPECT_EQ(amount_cents("1000.00"), 100'000);
    EXPECT_EQ(amount_cents("10000.50"), 1'000'050);
    EXPECT_EQ(amount_cents("999999999999999.99"), 99'999'999'999'999'999);
    EXPECT_NE(amount_cents("500000"), amount_cents("1000.00"));
    for (auto bad : {"", "1e4", "-5", "5.0", "5.000", "ten", "1000000000000000", ".50", "5."})
        EXPECT_FALSE(amount_cents(bad).has_value()) << bad;
}

// Rows: transaction_status in declaration order; columns: fraud absent, accept, deny,
// challenge. Each cell: the consistent codes, space-separated ("" = none).
constexpr std::array<std::array<std::string_view, 4>, 12> expected_codes = {{
    {"201", "201", "201", "201"},                  // pending
    {"200", "200", "202", "201"},                  // authorize
    {"200", "200", "202", "201"},                  // capture
    {"200", "200", "", ""},                        // settlement
    {"202", "202", "202", "202"},                  // deny
    {"200 202", "200 202", "200 202", "200 202"},  // cancel
    {"407 202", "407 202", "407 202", "407 202"},  // expire
    {"202", "202", "202", "202"},                  // failure
    {"200", "200", "200", "200"},                  // refund
    {"200", "200", "200", "200"},                  // partial_refund
    {"200", "200", "200", "200"},                  // chargeback
    {"200", "200", "200", "200"},                  // partial_chargeback
}};

TEST(NotificationRules, StatusCodeTableOnEveryPair) {
    const std::array<std::optional<fraud_status>, 4> frauds = {
        std::nullopt, fraud_status::accept, fraud_status::deny, fraud_status::challenge};
    const auto statuses = posrelay::midtrans::all_transaction_statuses();
    ASSERT_EQ(statuses.size(), expected_codes.size());
    for (std::size_t s = 0; s < statuses.size(); ++s) {
        for (std::size_t f = 0; f < frauds.size(); ++f) {
            std::string got;
            for (auto c : expected_status_codes(statuses[s], frauds[f])) {
                if (!got.empty()) got += ' ';
                got += c;
            }
            EXPECT_EQ(got, expected_codes[s][f]) << to_string(statuses[s]) << " fraud " << f;
            // Every other 2xx/4xx code Midtrans uses is inconsistent.
            for (auto code : {"200", "201", "202", "407", "404", "500", "1", ""}) {
                const bool listed = (" " + std::string(expected_codes[s][f]) + " ")
                                        .find(" " + std::string(code) + " ") != std::string::npos;
                EXPECT_EQ(status_code_consistent(statuses[s], frauds[f], code),
                          listed && *code != '\0')
                    << to_string(statuses[s]) << " fraud " << f << " code " << code;
            }
        }
    }
}

status_update update(std::string_view order, std::string_view code, std::string_view gross,
                     ts status, std::optional<fraud_status> fraud = std::nullopt) {
    status_update u;
    u.set(field::order_id, order);
    u.set(field::status_code, code);
    u.set(field::gross_amount, gross);
    u.status = status;
    u.fraud = fraud;
    return u;
}

TEST(NotificationRules, CheckUpdateNamesTheFirstBadField) {
    struct row {
        status_update u;
        rule_errc code;
        field where;
    };
    const row rows[] = {
        {update("ORD-1", "200", "10000.00", ts::settlement), rule_errc::ok, field::order_id},
        {update("ORD-1", "201", "10000.00", ts::settlement), rule_errc::inconsistent_status,
         field::status_code},
        {update("ORD-1", "201", "10000.00", ts::capture, fraud_status::accept),
         rule_errc::inconsistent_status, field::status_code},
        {update("ORD-1", "201", "10000.00", ts::capture, fraud_status::challenge), rule_errc::ok,
         field::order_id},
        {update("INV-X20", "1", "25000.00", ts::settlement), rule_errc::invalid_value,
         field::status_code},
        {update("ORD 1", "200", "10000.00", ts::settlement), rule_errc::invalid_value,
         field::order_id},
        {update(std::string(51, 'a'), "200", "10000.00", ts::settlement), rule_errc::invalid_value,
         field::order_id},
        {update("a.b_c~d-E9", "200", "ten thousand", ts::settlement), rule_errc::invalid_value,
         field::gross_amount},
        {update("ORD-1", "not-a-code", "10000.00", ts::settlement), rule_errc::invalid_value,
         field::status_code},
        {update("ORD-1", "407", "10000.00", ts::expire), rule_errc::ok, field::order_id},
    };
    for (const auto& r : rows) {
        const auto e = check_update(r.u);
        EXPECT_EQ(e.code, r.code) << r.u.order_id() << " " << r.u.get(field::status_code);
        if (r.code != rule_errc::ok) {
            EXPECT_EQ(e.where, r.where) << e.message;
            EXPECT_FALSE(e.message.empty());
        }
    }
    EXPECT_EQ(to_string(rule_errc::inconsistent_status), "inconsistent_status");
    EXPECT_EQ(to_string(rule_errc::invalid_value), "invalid_value");
}

TEST(NotificationRules, BindingTable) {
    struct row {
        order_binding stored, update;
        binding_mismatch want;
    };
    const row rows[] = {
        // Nothing known yet: anything binds.
        {{"", "", ""}, {"default", "1000.00", "T1"}, binding_mismatch::none},
        // The same merchant, amount (written either way) and transaction.
        {{"default", "500000", "T1"}, {"default", "500000.00", "T1"}, binding_mismatch::none},
        {{"default", "500000.00", "T1"}, {"default", "500000.00", "T1"}, binding_mismatch::none},
        // An update without a signer (a poll, an API answer) is not a merchant's.
        {{"default", "500000", "T1"}, {"", "500000.00", "T1"}, binding_mismatch::none},
        {{"default", "500000", "T1"}, {"m:M-2", "500000.00", "T1"}, binding_mismatch::merchant},
        {{"m:M-2", "", ""}, {"default", "", ""}, binding_mismatch::merchant},
        {{"default", "500000", "T1"}, {"default", "1000.00", "T1"}, binding_mismatch::amount},
        {{"", "500000", ""}, {"", "500000.01", ""}, binding_mismatch::amount},
        {{"", "odd", ""}, {"", "odd", ""}, binding_mismatch::none},
        {{"", "odd", ""}, {"", "1.00", ""}, binding_mismatch::amount},
        {{"default", "500000", "T1"},
         {"default", "500000.00", "T2"},
         binding_mismatch::transaction},
        {{"default", "500000", ""}, {"default", "500000.00", "T2"}, binding_mismatch::none},
        // The merchant is checked first, then the amount, then the transaction.
        {{"default", "500000", "T1"}, {"m:M-2", "1.00", "T2"}, binding_mismatch::merchant},
        {{"default", "500000", "T1"}, {"default", "1.00", "T2"}, binding_mismatch::amount},
    };
    for (const auto& r : rows) {
        EXPECT_EQ(check_binding(r.stored, r.update), r.want)
            << r.stored.signer << "/" << r.stored.gross_amount << "/" << r.stored.transaction_id
            << " vs " << r.update.signer << "/" << r.update.gross_amount << "/"
            << r.update.transaction_id;
    }
    for (auto m :
         {binding_mismatch::merchant, binding_mismatch::amount, binding_mismatch::transaction}) {
        EXPECT_EQ(binding_mismatch_from(to_string(m)), m);
    }
    EXPECT_EQ(to_string(binding_mismatch::merchant), "merchant_mismatch");
    EXPECT_EQ(binding_mismatch_from("new"), binding_mismatch::none);
}

}  // namespace
