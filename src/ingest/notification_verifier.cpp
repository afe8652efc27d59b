// Picks the server key of a notification (merchant_id, else the default key) and checks
// its signature_key in constant time.
#include "posrelay/ingest/notification_verifier.hpp"

#include <utility>

#include "posrelay/midtrans/signature.hpp"

namespace posrelay::ingest {

std::string_view to_string(verify_result r) noexcept {
    switch (r) {
        case verify_result::ok:
            return "ok";
        case verify_result::bad_signature:
            return "bad_signature";
        case verify_result::unknown_merchant:
            return "unknown_merchant";
    }
    return "unknown";
}

notification_verifier::notification_verifier(
    std::string default_key, std::map<std::string, std::string, std::less<>> merchant_keys)
    : default_key_(std::move(default_key)), merchant_keys_(std::move(merchant_keys)) {
    // An empty server key would make every signature computable by anyone: such an entry
    // is no key at all.
    std::erase_if(merchant_keys_, [](const auto& kv) { return kv.second.empty(); });
}

// The merchant's own key when configured, else the default key, else none.
std::optional<std::string_view> notification_verifier::key_for(std::string_view merchant_id) const {
    if (auto it = merchant_keys_.find(merchant_id); it != merchant_keys_.end()) {
        return std::string_view{it->second};
    }
    if (!default_key_.empty()) return std::string_view{default_key_};
    return std::nullopt;
}

std::string notification_verifier::signer_for(std::string_view merchant_id) const {
    if (merchant_keys_.contains(merchant_id)) return "m:" + std::string(merchant_id);
    return default_key_.empty() ? std::string{} : std::string{"default"};
}

bool notification_verifier::has_any_key() const noexcept {
    return !default_key_.empty() || !merchant_keys_.empty();
}

verify_result notification_verifier::verify(const status_update& u) const {
    const auto key = key_for(u.get(field::merchant_id));
    if (!key) return verify_result::unknown_merchant;
    const bool good =
        midtrans::verify_signature(u.get(field::signature_key), u.get(field::order_id),
                                   u.get(field::status_code), u.get(field::gross_amount), *key);
    return good ? verify_result::ok : verify_result::bad_signature;
}

}  // namespace posrelay::ingest
