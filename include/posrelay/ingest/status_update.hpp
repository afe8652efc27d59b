// status_update: one observed status of one Midtrans order, from a notification, a
// status poll or an API answer. Every status change goes through the same commit as one.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "posrelay/midtrans/transaction_status.hpp"

namespace posrelay::ingest {

// Where an update came from.
enum class update_source : std::uint8_t { notification, poll, api };
[[nodiscard]] std::string_view to_string(update_source s) noexcept;

// The string fields of a Midtrans notification that posrelay keeps. The first five are
// required in a notification; the rest are kept when present.
enum class field : std::uint8_t {
    order_id,
    status_code,
    gross_amount,
    signature_key,
    transaction_status,
    fraud_status,
    transaction_id,
    payment_type,
    transaction_time,
    settlement_time,
    expiry_time,
    merchant_id,
    currency,
    status_message,
    issuer,
    acquirer,
    transaction_type,
    channel_response_code,
    channel_response_message,
    count_,
};
inline constexpr std::size_t field_count = static_cast<std::size_t>(field::count_);

// The JSON key of a field ("order_id", ...).
[[nodiscard]] std::string_view field_name(field f) noexcept;
// The field for a JSON key; nullopt for keys posrelay does not keep.
[[nodiscard]] std::optional<field> field_from_name(std::string_view name) noexcept;

// Owns its strings in one buffer (one allocation for a typical notification), so it can
// be moved across suspensions and threads freely. Copyable and movable.
class status_update {
public:
    status_update() = default;

    // Sets a field (replacing nothing: setting a field twice keeps the last value, the
    // parser refuses duplicates before it gets here).
    void set(field f, std::string_view value);
    [[nodiscard]] bool has(field f) const noexcept { return spans_[index(f)].present; }
    // The field's value, or "" when absent.
    [[nodiscard]] std::string_view get(field f) const noexcept;
    // Reserves room for `bytes` of field contents (avoids regrowth while parsing).
    void reserve(std::size_t bytes) { storage_.reserve(bytes); }

    // The parsed enums; set together with the string fields by whoever builds the update.
    midtrans::transaction_status status = midtrans::transaction_status::pending;
    std::optional<midtrans::fraud_status> fraud;
    update_source source = update_source::notification;
    // When posrelay received it, milliseconds since the Unix epoch.
    std::int64_t received_unix_ms = 0;
    // Whose server key verified it (notification_verifier::signer_for: "default" or
    // "m:" + merchant_id); "" for updates that carry no signature check (poll, api).
    std::string signer;

    [[nodiscard]] std::string_view order_id() const noexcept { return get(field::order_id); }
    [[nodiscard]] midtrans::order_state state() const noexcept { return {status, fraud}; }
    [[nodiscard]] bool paid() const noexcept { return midtrans::is_paid(status, fraud); }

private:
    struct span {
        std::uint32_t offset = 0;
        std::uint32_t size = 0;
        bool present = false;
    };
    static constexpr std::size_t index(field f) noexcept { return static_cast<std::size_t>(f); }

    std::string storage_;
    std::array<span, field_count> spans_{};
};

}  // namespace posrelay::ingest
