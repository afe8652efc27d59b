// Tests of the Midtrans status model: wire names, is_paid, is_final and every transition
// against a table written out by hand (not derived from the code under test).
#include "posrelay/midtrans/transaction_status.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string>

namespace {

using namespace posrelay::midtrans;
using ts = transaction_status;

// Rows: stored status; columns: update status; both in declaration order:
// pending authorize capture settlement deny cancel expire failure refund partial_refund
// chargeback partial_chargeback. F = forward, D = duplicate, S = stale. Fraud absent.
constexpr std::array<std::string_view, 12> expected_table = {
    // pe au ca se de ca ex fa re pr ch pc
    "DFFFFFFFSSSS",  // pending
    "SDFSFFFFSSSS",  // authorize
    "SSDFFFSSFFFF",  // capture
    "SSSDFSSSFFFF",  // settlement
    "SSSSDSSSSSSS",  // deny
    "SSSSSDSSSSSS",  // cancel
    "SSSSSSDSSSSS",  // expire
    "SSSSSSSDSSSS",  // failure
    "SSSSSSSSDSSS",  // refund
    "SSSSSSSSFDFF",  // partial_refund
    "SSSSSSSSSSDS",  // chargeback
    "SSSSSSSSFSFD",  // partial_chargeback
};

constexpr std::array<std::string_view, 12> wire_names = {
    "pending", "authorize", "capture", "settlement",     "deny",       "cancel",
    "expire",  "failure",   "refund",  "partial_refund", "chargeback", "partial_chargeback",
};

transition from_letter(char c) {
    switch (c) {
        case 'F':
            return transition::forward;
        case 'D':
            return transition::duplicate;
        default:
            return transition::stale;
    }
}

TEST(transaction_status, lists_every_value_in_declaration_order) {
    const auto all = all_transaction_statuses();
    ASSERT_EQ(all.size(), wire_names.size());
    for (std::size_t i = 0; i < all.size(); ++i) {
        EXPECT_EQ(static_cast<std::size_t>(all[i]), i);
        EXPECT_EQ(to_string(all[i]), wire_names[i]);
    }
    const auto frauds = all_fraud_statuses();
    ASSERT_EQ(frauds.size(), 3U);
    EXPECT_EQ(to_string(frauds[0]), "accept");
    EXPECT_EQ(to_string(frauds[1]), "deny");
    EXPECT_EQ(to_string(frauds[2]), "challenge");
}

TEST(transaction_status, parses_wire_names_exactly) {
    for (std::size_t i = 0; i < wire_names.size(); ++i) {
        const auto parsed = parse_transaction_status(wire_names[i]);
        ASSERT_TRUE(parsed.has_value()) << wire_names[i];
        EXPECT_EQ(static_cast<std::size_t>(*parsed), i);
    }
    EXPECT_EQ(parse_fraud_status("accept"), fraud_status::accept);
    EXPECT_EQ(parse_fraud_status("deny"), fraud_status::deny);
    EXPECT_EQ(parse_fraud_status("challenge"), fraud_status::challenge);
    for (const std::string_view bad : {"", "Settlement", "SETTLEMENT", "settlement ", "paid",
                                       "partial-refund", "settle", "pendingx"}) {
        EXPECT_FALSE(parse_transaction_status(bad).has_value()) << bad;
    }
    for (const std::string_view bad : {"", "Accept", "accepted", "reject"}) {
        EXPECT_FALSE(parse_fraud_status(bad).has_value()) << bad;
    }
}

TEST(transaction_status, final_statuses) {
    EXPECT_TRUE(is_final(ts::deny));
    EXPECT_TRUE(is_final(ts::cancel));
    EXPECT_TRUE(is_final(ts::expire));
    EXPECT_TRUE(is_final(ts::failure));
    EXPECT_TRUE(is_final(ts::refund));
    EXPECT_TRUE(is_final(ts::chargeback));
    EXPECT_FALSE(is_final(ts::pending));
    EXPECT_FALSE(is_final(ts::authorize));
    EXPECT_FALSE(is_final(ts::capture));
    EXPECT_FALSE(is_final(ts::settlement));
    EXPECT_FALSE(is_final(ts::partial_refund));
    EXPECT_FALSE(is_final(ts::partial_chargeback));
}

TEST(transaction_status, is_paid_over_every_status_and_fraud) {
    const std::array<std::optional<fraud_status>, 4> frauds = {
        std::nullopt, fraud_status::accept, fraud_status::deny, fraud_status::challenge};
    int paid = 0;
    for (const auto s : all_transaction_statuses()) {
        for (const auto f : frauds) {
            const bool expected = (s == ts::settlement && (!f || f == fraud_status::accept)) ||
                                  (s == ts::capture && f == fraud_status::accept);
            EXPECT_EQ(is_paid(s, f), expected)
                << to_string(s) << " / " << (f ? to_string(*f) : "absent");
            paid += is_paid(s, f) ? 1 : 0;
        }
    }
    EXPECT_EQ(paid, 3);  // settlement+absent, settlement+accept, capture+accept
}

TEST(transaction_status, nothing_stored_is_always_forward) {
    for (const auto s : all_transaction_statuses()) {
        EXPECT_EQ(classify(std::nullopt, {s, std::nullopt}), transition::forward) << to_string(s);
        for (const auto f : all_fraud_statuses()) {
            EXPECT_EQ(classify(std::nullopt, {s, f}), transition::forward) << to_string(s);
        }
    }
}

TEST(transaction_status, every_pair_matches_the_written_table) {
    const auto all = all_transaction_statuses();
    ASSERT_EQ(all.size(), expected_table.size());
    for (std::size_t from = 0; from < all.size(); ++from) {
        ASSERT_EQ(expected_table[from].size(), all.size());
        for (std::size_t to = 0; to < all.size(); ++to) {
            const order_state stored{all[from], std::nullopt};
            const order_state update{all[to], std::nullopt};
            EXPECT_EQ(classify(stored, update), from_letter(expected_table[from][to]))
                << to_string(all[from]) << " -> " << to_string(all[to]);
        }
    }
}

TEST(transaction_status, late_pending_after_settlement_is_stale) {
    EXPECT_EQ(classify(order_state{ts::settlement, fraud_status::accept},
                       order_state{ts::pending, std::nullopt}),
              transition::stale);
    EXPECT_EQ(classify(order_state{ts::settlement, std::nullopt},
                       order_state{ts::pending, fraud_status::accept}),
              transition::stale);
    EXPECT_EQ(
        classify(order_state{ts::expire, std::nullopt}, order_state{ts::pending, std::nullopt}),
        transition::stale);
}

TEST(transaction_status, settlement_before_its_pending) {
    // Out of order delivery: settlement first, then the pending that preceded it.
    const order_state settled{ts::settlement, fraud_status::accept};
    EXPECT_EQ(classify(std::nullopt, settled), transition::forward);
    EXPECT_EQ(classify(settled, {ts::pending, fraud_status::accept}), transition::stale);
}

TEST(transaction_status, fraud_challenge_resolution_on_the_same_status) {
    const order_state challenged{ts::capture, fraud_status::challenge};
    EXPECT_EQ(classify(challenged, {ts::capture, fraud_status::accept}), transition::forward);
    EXPECT_EQ(classify(challenged, {ts::capture, fraud_status::deny}), transition::forward);
    EXPECT_EQ(classify(challenged, {ts::capture, fraud_status::challenge}), transition::duplicate);
    EXPECT_EQ(classify(challenged, {ts::capture, std::nullopt}), transition::duplicate);
    // Nothing else changes a state without a status change.
    EXPECT_EQ(classify(order_state{ts::capture, fraud_status::accept},
                       {ts::capture, fraud_status::challenge}),
              transition::duplicate);
    EXPECT_EQ(
        classify(order_state{ts::settlement, std::nullopt}, {ts::settlement, fraud_status::accept}),
        transition::duplicate);
    EXPECT_EQ(classify(order_state{ts::settlement, fraud_status::accept},
                       {ts::settlement, fraud_status::accept}),
              transition::duplicate);
}

TEST(transaction_status, transition_names) {
    EXPECT_EQ(to_string(transition::forward), "forward");
    EXPECT_EQ(to_string(transition::duplicate), "duplicate");
    EXPECT_EQ(to_string(transition::stale), "stale");
}

}  // namespace
