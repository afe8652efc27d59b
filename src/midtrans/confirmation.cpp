// Which notifications are confirmed with Midtrans, and what its answer means (pure).
#include "posrelay/midtrans/confirmation.hpp"

#include <algorithm>
#include <charconv>

namespace posrelay::midtrans {

namespace {
bool paid(std::optional<order_state> s) noexcept {
    return s && is_paid(s->status, s->fraud);
}
}  // namespace

bool needs_confirmation(std::optional<order_state> stored, order_state update) noexcept {
    // A late pending, authorize or unaccepted capture claims no outcome: after a paid status
    // it is ordinary reordering (stale), and it never makes an order paid.
    const bool early = update.status == transaction_status::pending ||
                       update.status == transaction_status::authorize ||
                       (update.status == transaction_status::capture && !paid(update));
    return !early && paid(stored) != paid(update);
}

bool is_conflict(std::optional<order_state> stored, order_state update) noexcept {
    return needs_confirmation(stored, update) && classify(stored, update) == transition::stale;
}

std::optional<claim> parse_claim(std::string_view text) {
    std::string_view part[6];  // the merchant_id last: whatever it holds
    for (std::size_t i = 0; i < 5; ++i) {
        const auto bar = text.find('|');
        if (bar == std::string_view::npos) return std::nullopt;
        part[i] = text.substr(0, bar);
        text = text.substr(bar + 1);
    }
    part[5] = text;
    claim c;
    const auto status = parse_transaction_status(part[0]);
    if (!status) return std::nullopt;
    c.state.status = *status;
    if (!part[1].empty()) {
        c.state.fraud = parse_fraud_status(part[1]);
        if (!c.state.fraud) return std::nullopt;
    }
    c.status_code = std::string(part[2]);
    const auto r = std::from_chars(part[3].data(), part[3].data() + part[3].size(), c.at_ms);
    if (r.ec != std::errc{} || r.ptr != part[3].data() + part[3].size()) return std::nullopt;
    if (part[4] != "0" && part[4] != "1") return std::nullopt;
    c.conflict = part[4] == "1";
    c.merchant_id = std::string(part[5]);
    return c;
}

std::string_view to_string(confirmation_verdict v) noexcept {
    switch (v) {
        case confirmation_verdict::confirmed:
            return "confirmed";
        case confirmation_verdict::denied:
            return "denied";
        case confirmation_verdict::retry:
            return "retry";
    }
    return "unknown";
}

confirmation_decision judge_confirmation(order_state claimed,
                                         const std::optional<api_answer>& answer) {
    confirmation_decision d;
    if (!answer) return d;  // retry
    // Midtrans's own "Transaction doesn't exist" (a 404 page of something else is retried).
    if (answer->status_code == "404") {
        d.verdict = confirmation_verdict::denied;
        return d;
    }
    if (answer->verdict != answer_class::ok) return d;  // 429, 5xx, 401...: retry
    const auto status = parse_transaction_status(answer->transaction_status);
    std::optional<fraud_status> fraud;
    if (!answer->fraud_status.empty()) fraud = parse_fraud_status(answer->fraud_status);
    if (!status || (!answer->fraud_status.empty() && !fraud)) return d;  // retry
    d.midtrans = order_state{*status, fraud};
    d.verdict = paid(d.midtrans) == paid(claimed) ? confirmation_verdict::confirmed
                                                  : confirmation_verdict::denied;
    return d;
}

std::chrono::milliseconds confirmation_retry_delay(std::uint64_t attempts,
                                                   std::chrono::milliseconds cap) noexcept {
    const auto shift = std::min<std::uint64_t>(attempts, 20);
    const std::chrono::milliseconds d{1000LL << shift};
    return std::max(std::chrono::milliseconds(1), std::min(d, cap));
}

}  // namespace posrelay::midtrans
