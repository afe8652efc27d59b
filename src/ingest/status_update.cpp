// status_update: field names of a Midtrans notification and the single-buffer storage
// of the kept string fields.
#include "posrelay/ingest/status_update.hpp"

#include <cstdint>
#include <limits>
#include <stdexcept>

namespace posrelay::ingest {

namespace {

// Indexed by the enum value; must follow the declaration order of `field`.
constexpr std::array<std::string_view, field_count> field_names = {
    "order_id",
    "status_code",
    "gross_amount",
    "signature_key",
    "transaction_status",
    "fraud_status",
    "transaction_id",
    "payment_type",
    "transaction_time",
    "settlement_time",
    "expiry_time",
    "merchant_id",
    "currency",
    "status_message",
    "issuer",
    "acquirer",
    "transaction_type",
    "channel_response_code",
    "channel_response_message",
};

// Candidate fields by name length (at most three names share a length): one length test
// and usually a single comparison per key, on the hot path of every notification field.
constexpr std::size_t max_name_size = 24;
constexpr std::size_t max_same_size = 4;
struct by_size_table {
    std::array<std::array<std::uint8_t, max_same_size>, max_name_size + 1> fields{};
    std::array<std::uint8_t, max_name_size + 1> count{};
};
constexpr by_size_table make_by_size() {
    by_size_table t;
    for (std::size_t i = 0; i < field_names.size(); ++i) {
        const auto n = field_names[i].size();
        t.fields[n][t.count[n]++] = static_cast<std::uint8_t>(i);
    }
    return t;
}
constexpr by_size_table by_size = make_by_size();

}  // namespace

std::string_view to_string(update_source s) noexcept {
    switch (s) {
        case update_source::notification:
            return "notification";
        case update_source::poll:
            return "poll";
        case update_source::api:
            return "api";
    }
    return "unknown";
}

std::string_view field_name(field f) noexcept {
    const auto i = static_cast<std::size_t>(f);
    return i < field_names.size() ? field_names[i] : std::string_view{};
}

std::optional<field> field_from_name(std::string_view name) noexcept {
    if (name.size() > max_name_size) return std::nullopt;
    const auto n = name.size();
    for (std::size_t k = 0; k < by_size.count[n]; ++k) {
        const auto i = by_size.fields[n][k];
        if (field_names[i] == name) return static_cast<field>(i);
    }
    return std::nullopt;
}

void status_update::set(field f, std::string_view value) {
    const auto i = index(f);
    if (i >= field_count) throw std::out_of_range("status_update::set: no such field");
    // Offsets are 32-bit: the buffer of one update never comes near 4 GiB (bodies are capped).
    if (storage_.size() + value.size() > std::numeric_limits<std::uint32_t>::max()) {
        throw std::length_error("status_update: fields too large");
    }
    spans_[i] = span{static_cast<std::uint32_t>(storage_.size()),
                     static_cast<std::uint32_t>(value.size()), true};
    storage_.append(value);
}

std::string_view status_update::get(field f) const noexcept {
    const auto i = index(f);
    if (i >= field_count || !spans_[i].present) return {};
    return std::string_view{storage_}.substr(spans_[i].offset, spans_[i].size);
}

}  // namespace posrelay::ingest
