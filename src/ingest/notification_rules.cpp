// The rules of notification_rules.hpp: field shapes, amounts in cents and the
// status_code table.
#include "posrelay/ingest/notification_rules.hpp"

#include <array>

#include "posrelay/midtrans/api.hpp"

namespace posrelay::ingest {

namespace {

using midtrans::fraud_status;
using ts = midtrans::transaction_status;

constexpr std::size_t max_amount_digits = 15;

bool digits_only(std::string_view s) noexcept {
    for (char c : s) {
        if (c < '0' || c > '9') return false;
    }
    return true;
}

constexpr std::array<std::string_view, 1> code_200 = {"200"};
constexpr std::array<std::string_view, 1> code_201 = {"201"};
constexpr std::array<std::string_view, 1> code_202 = {"202"};
constexpr std::array<std::string_view, 2> code_cancel = {"200", "202"};
constexpr std::array<std::string_view, 2> code_expire = {"407", "202"};

// Card flows (authorize, capture): the fraud status picks the code.
std::span<const std::string_view> by_fraud(std::optional<fraud_status> f) noexcept {
    if (f == fraud_status::challenge) return code_201;
    if (f == fraud_status::deny) return code_202;
    return code_200;
}

}  // namespace

bool valid_status_code(std::string_view s) noexcept {
    return s.size() == 3 && digits_only(s);
}

bool valid_gross_amount(std::string_view s) noexcept {
    const auto point = s.find('.');
    if (point == std::string_view::npos || s.size() - point != 3) return false;
    const auto whole = s.substr(0, point);
    return !whole.empty() && whole.size() <= max_amount_digits && whole.front() != '0' &&
           digits_only(whole) && digits_only(s.substr(point + 1));
}

std::optional<std::int64_t> amount_cents(std::string_view s) noexcept {
    std::string_view whole = s, cents = "00";
    if (const auto point = s.find('.'); point != std::string_view::npos) {
        whole = s.substr(0, point);
        cents = s.substr(point + 1);
        if (cents.size() != 2) return std::nullopt;
    }
    if (whole.empty() || whole.size() > max_amount_digits || !digits_only(whole) ||
        !digits_only(cents)) {
        return std::nullopt;
    }
    std::int64_t v = 0;
    for (char c : whole)
        v = v * 10 + (c - '0');
    return v * 100 + (cents[0] - '0') * 10 + (cents[1] - '0');
}

std::span<const std::string_view> expected_status_codes(ts s,
                                                        std::optional<fraud_status> f) noexcept {
    switch (s) {
        case ts::pending:
            return code_201;
        case ts::authorize:
        case ts::capture:
            return by_fraud(f);
        case ts::settlement:
            if (f == fraud_status::challenge || f == fraud_status::deny) return {};
            return code_200;
        case ts::deny:
        case ts::failure:
            return code_202;
        case ts::cancel:
            return code_cancel;
        case ts::expire:
            return code_expire;
        case ts::refund:
        case ts::partial_refund:
        case ts::chargeback:
        case ts::partial_chargeback:
            return code_200;
    }
    return {};
}

bool status_code_consistent(ts s, std::optional<fraud_status> f,
                            std::string_view status_code) noexcept {
    for (auto code : expected_status_codes(s, f)) {
        if (code == status_code) return true;
    }
    return false;
}

std::string_view to_string(rule_errc e) noexcept {
    switch (e) {
        case rule_errc::ok:
            return "ok";
        case rule_errc::invalid_value:
            return "invalid_value";
        case rule_errc::inconsistent_status:
            return "inconsistent_status";
    }
    return "unknown";
}

rule_error check_update(const status_update& u) {
    if (!midtrans::valid_order_id(u.order_id())) {
        return {rule_errc::invalid_value, field::order_id,
                "order_id must be 1-50 of A-Z a-z 0-9 - _ ~ ."};
    }
    const auto code = u.get(field::status_code);
    if (!valid_status_code(code)) {
        return {rule_errc::invalid_value, field::status_code, "status_code must be three digits"};
    }
    if (!valid_gross_amount(u.get(field::gross_amount))) {
        return {rule_errc::invalid_value, field::gross_amount,
                "gross_amount must be an amount with two decimals, e.g. \"25000.00\""};
    }
    if (!status_code_consistent(u.status, u.fraud, code)) {
        std::string m = "status_code ";
        m += code;
        m += " does not agree with transaction_status ";
        m += midtrans::to_string(u.status);
        if (u.fraud) {
            m += " and fraud_status ";
            m += midtrans::to_string(*u.fraud);
        }
        return {rule_errc::inconsistent_status, field::status_code, std::move(m)};
    }
    return {};
}

std::string_view to_string(binding_mismatch m) noexcept {
    switch (m) {
        case binding_mismatch::none:
            return "none";
        case binding_mismatch::merchant:
            return "merchant_mismatch";
        case binding_mismatch::amount:
            return "amount_mismatch";
        case binding_mismatch::transaction:
            return "transaction_mismatch";
    }
    return "unknown";
}

binding_mismatch binding_mismatch_from(std::string_view s) noexcept {
    for (auto m :
         {binding_mismatch::merchant, binding_mismatch::amount, binding_mismatch::transaction}) {
        if (to_string(m) == s) return m;
    }
    return binding_mismatch::none;
}

binding_mismatch check_binding(const order_binding& stored, const order_binding& update) noexcept {
    const auto both = [](std::string_view a, std::string_view b) {
        return !a.empty() && !b.empty();
    };
    if (both(stored.signer, update.signer) && stored.signer != update.signer) {
        return binding_mismatch::merchant;
    }
    if (both(stored.gross_amount, update.gross_amount)) {
        const auto a = amount_cents(stored.gross_amount);
        const auto b = amount_cents(update.gross_amount);
        const bool same = a && b ? *a == *b : stored.gross_amount == update.gross_amount;
        if (!same) return binding_mismatch::amount;
    }
    if (both(stored.transaction_id, update.transaction_id) &&
        stored.transaction_id != update.transaction_id) {
        return binding_mismatch::transaction;
    }
    return binding_mismatch::none;
}

}  // namespace posrelay::ingest
