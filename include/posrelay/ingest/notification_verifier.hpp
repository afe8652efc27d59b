// Chooses the server key of a notification (by merchant_id, else the default) and checks
// its signature_key. Keys are held as secrets: never printed, compared in constant time.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "posrelay/ingest/status_update.hpp"

namespace posrelay::ingest {

enum class verify_result : std::uint8_t {
    ok,
    bad_signature,     // signature_key does not match
    unknown_merchant,  // no key for this merchant_id and no default key
};
[[nodiscard]] std::string_view to_string(verify_result r) noexcept;

class notification_verifier {
public:
    // default_key: may be empty (then every notification needs a known merchant_id).
    // merchant_keys: merchant_id → server key.
    notification_verifier(std::string default_key,
                          std::map<std::string, std::string, std::less<>> merchant_keys);

    [[nodiscard]] verify_result verify(const status_update& u) const;
    // The key for a merchant (nullopt: none). For the Midtrans API client.
    [[nodiscard]] std::optional<std::string_view> key_for(std::string_view merchant_id) const;
    [[nodiscard]] bool has_any_key() const noexcept;
    // Names the key key_for(merchant_id) picks, for binding an order to it: "m:" + merchant_id
    // for a merchant's own key, "default" for the default key, "" for none.
    [[nodiscard]] std::string signer_for(std::string_view merchant_id) const;

private:
    std::string default_key_;
    std::map<std::string, std::string, std::less<>> merchant_keys_;
};

// The verifier in use, replaced whole by a reload (SIGHUP): a request takes one snapshot and
// checks and names its signer with it. Thread-safe; get() never waits on a reload's I/O.
class verifier_slot {
public:
    explicit verifier_slot(notification_verifier v)
        : v_(std::make_shared<const notification_verifier>(std::move(v))) {}
    [[nodiscard]] std::shared_ptr<const notification_verifier> get() const noexcept {
        return v_.load();
    }
    void set(notification_verifier v) {
        v_.store(std::make_shared<const notification_verifier>(std::move(v)));
    }

private:
    std::atomic<std::shared_ptr<const notification_verifier>> v_;
};

}  // namespace posrelay::ingest
