// The Midtrans status model: wire names of transaction_status / fraud_status, the
// transition table (FACTS.md) and the classification of an update against a stored state.
#include "posrelay/midtrans/transaction_status.hpp"

#include <array>
#include <cstddef>
#include <cstdint>

namespace posrelay::midtrans {

namespace {

using ts = transaction_status;

constexpr std::array<transaction_status, 12> all_statuses = {
    ts::pending, ts::authorize,      ts::capture,    ts::settlement,
    ts::deny,    ts::cancel,         ts::expire,     ts::failure,
    ts::refund,  ts::partial_refund, ts::chargeback, ts::partial_chargeback,
};
constexpr std::array<fraud_status, 3> all_frauds = {fraud_status::accept, fraud_status::deny,
                                                    fraud_status::challenge};

// Indexed by the enum value; must follow the declaration order of the header.
constexpr std::array<std::string_view, all_statuses.size()> status_names = {
    "pending", "authorize", "capture", "settlement",     "deny",       "cancel",
    "expire",  "failure",   "refund",  "partial_refund", "chargeback", "partial_chargeback",
};
constexpr std::array<std::string_view, all_frauds.size()> fraud_names = {"accept", "deny",
                                                                         "challenge"};

constexpr std::size_t idx(transaction_status s) noexcept {
    return static_cast<std::size_t>(s);
}

// One bit per target status: the legal moves out of each status (header comment and
// FACTS.md). Final statuses have no outgoing move.
constexpr std::uint16_t bit(transaction_status s) noexcept {
    return static_cast<std::uint16_t>(1U << idx(s));
}
constexpr std::array<std::uint16_t, all_statuses.size()> make_moves() noexcept {
    std::array<std::uint16_t, all_statuses.size()> m{};
    m[idx(ts::pending)] = bit(ts::authorize) | bit(ts::capture) | bit(ts::settlement) |
                          bit(ts::deny) | bit(ts::cancel) | bit(ts::expire) | bit(ts::failure);
    m[idx(ts::authorize)] =
        bit(ts::capture) | bit(ts::deny) | bit(ts::cancel) | bit(ts::expire) | bit(ts::failure);
    m[idx(ts::capture)] = bit(ts::settlement) | bit(ts::cancel) | bit(ts::deny) | bit(ts::refund) |
                          bit(ts::partial_refund) | bit(ts::chargeback) |
                          bit(ts::partial_chargeback);
    m[idx(ts::settlement)] = bit(ts::refund) | bit(ts::partial_refund) | bit(ts::chargeback) |
                             bit(ts::partial_chargeback) | bit(ts::deny);
    m[idx(ts::partial_refund)] =
        bit(ts::refund) | bit(ts::chargeback) | bit(ts::partial_chargeback);
    m[idx(ts::partial_chargeback)] = bit(ts::chargeback) | bit(ts::refund);
    return m;
}
constexpr auto moves = make_moves();

}  // namespace

std::span<const transaction_status> all_transaction_statuses() noexcept {
    return all_statuses;
}
std::span<const fraud_status> all_fraud_statuses() noexcept {
    return all_frauds;
}

std::string_view to_string(transaction_status s) noexcept {
    const auto i = idx(s);
    return i < status_names.size() ? status_names[i] : std::string_view{"unknown"};
}

std::string_view to_string(fraud_status f) noexcept {
    const auto i = static_cast<std::size_t>(f);
    return i < fraud_names.size() ? fraud_names[i] : std::string_view{"unknown"};
}

std::optional<transaction_status> parse_transaction_status(std::string_view s) noexcept {
    for (std::size_t i = 0; i < status_names.size(); ++i) {
        if (status_names[i] == s) return all_statuses[i];
    }
    return std::nullopt;
}

std::optional<fraud_status> parse_fraud_status(std::string_view s) noexcept {
    for (std::size_t i = 0; i < fraud_names.size(); ++i) {
        if (fraud_names[i] == s) return all_frauds[i];
    }
    return std::nullopt;
}

bool is_final(transaction_status s) noexcept {
    switch (s) {
        case ts::deny:
        case ts::cancel:
        case ts::expire:
        case ts::failure:
        case ts::refund:
        case ts::chargeback:
            return true;
        default:
            return false;
    }
}

bool is_paid(transaction_status s, std::optional<fraud_status> f) noexcept {
    if (s == ts::settlement) return !f || *f == fraud_status::accept;
    if (s == ts::capture) return f == fraud_status::accept;
    return false;
}

std::string_view to_string(transition t) noexcept {
    switch (t) {
        case transition::forward:
            return "forward";
        case transition::duplicate:
            return "duplicate";
        case transition::stale:
            return "stale";
    }
    return "unknown";
}

transition classify(std::optional<order_state> stored, order_state update) noexcept {
    // A settlement may arrive before its pending: whatever comes first is taken.
    if (!stored) return transition::forward;
    if (stored->status == update.status) {
        // Only a resolved fraud challenge moves an order without a status change.
        const bool resolved =
            stored->fraud == fraud_status::challenge &&
            (update.fraud == fraud_status::accept || update.fraud == fraud_status::deny);
        return resolved ? transition::forward : transition::duplicate;
    }
    const auto from = idx(stored->status);
    const auto to = idx(update.status);
    if (from < moves.size() && to < moves.size() && (moves[from] & bit(update.status)) != 0) {
        return transition::forward;
    }
    return transition::stale;
}

}  // namespace posrelay::midtrans
