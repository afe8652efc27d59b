// Tests of server-key selection (merchant_id, default key) and signature checking of a
// parsed notification.
#include "posrelay/ingest/notification_verifier.hpp"

#include <gtest/gtest.h>

#include <string>

#include "posrelay/midtrans/signature.hpp"

namespace {

using namespace posrelay::ingest;
using keys = std::map<std::string, std::string, std::less<>>;

constexpr std::string_view php_key = "askvnoibnosifnboseofinbofinfgbiufglnbfg";
constexpr std::string_view php_sig =
    "edc076b21793ebe3e17926350f5b8ae67d902fe657b3d0aa31b932d5c127e237"
    "5d308a2bc94f3265ac2d80a1f181a79b997ac178a236fcff35af263fc4d4c231";

// The FACTS.md PHP vector as an update, optionally with a merchant_id.
status_update php_update(std::string_view merchant_id = {}) {
    status_update u;
    u.set(field::order_id, "1111");
    u.set(field::status_code, "200");
    u.set(field::gross_amount, "100000.00");
    u.set(field::signature_key, php_sig);
    u.set(field::transaction_status, "settlement");
    u.status = posrelay::midtrans::transaction_status::settlement;
    if (!merchant_id.empty()) u.set(field::merchant_id, merchant_id);
    return u;
}

TEST(notification_verifier, default_key) {
    const notification_verifier v{std::string{php_key}, {}};
    EXPECT_TRUE(v.has_any_key());
    EXPECT_EQ(v.verify(php_update()), verify_result::ok);
    EXPECT_EQ(v.verify(php_update("G000000001")), verify_result::ok);

    auto tampered = php_update();
    tampered.set(field::gross_amount, "100000");
    EXPECT_EQ(v.verify(tampered), verify_result::bad_signature);
    auto unsigned_update = php_update();
    unsigned_update.set(field::signature_key, "");
    EXPECT_EQ(v.verify(unsigned_update), verify_result::bad_signature);
}

TEST(notification_verifier, wrong_default_key_is_bad_signature) {
    const notification_verifier v{"SB-Mid-server-GwUP_WGbJPXsDzsNEBRs8IYA", {}};
    EXPECT_EQ(v.verify(php_update()), verify_result::bad_signature);
}

TEST(notification_verifier, merchant_key_chosen_by_merchant_id) {
    const notification_verifier v{
        "default-key-that-does-not-sign-it",
        keys{{"G000000001", std::string{php_key}}, {"G000000002", "another-merchant-key"}}};
    EXPECT_EQ(v.verify(php_update("G000000001")), verify_result::ok);
    EXPECT_EQ(v.verify(php_update("G000000002")), verify_result::bad_signature);
    // No merchant_id: the default key, which does not match.
    EXPECT_EQ(v.verify(php_update()), verify_result::bad_signature);
    EXPECT_EQ(v.key_for("G000000001"), php_key);
    EXPECT_EQ(v.key_for("G000000002"), "another-merchant-key");
}

TEST(notification_verifier, unknown_merchant_without_default_key) {
    const notification_verifier v{"", keys{{"G000000001", std::string{php_key}}}};
    EXPECT_TRUE(v.has_any_key());
    EXPECT_EQ(v.verify(php_update("G000000001")), verify_result::ok);
    EXPECT_EQ(v.verify(php_update("G999999999")), verify_result::unknown_merchant);
    EXPECT_EQ(v.verify(php_update()), verify_result::unknown_merchant);
    EXPECT_FALSE(v.key_for("G999999999").has_value());
}

TEST(notification_verifier, unknown_merchant_with_default_key_uses_the_default) {
    const notification_verifier v{std::string{php_key}, keys{{"G000000001", "merchant-one-key"}}};
    EXPECT_EQ(v.verify(php_update("G999999999")), verify_result::ok);
    EXPECT_EQ(v.key_for("G999999999"), php_key);
    // The known merchant's own key is used, not the default.
    EXPECT_EQ(v.verify(php_update("G000000001")), verify_result::bad_signature);
}

TEST(notification_verifier, empty_keys_are_no_keys) {
    const notification_verifier none{"", {}};
    EXPECT_FALSE(none.has_any_key());
    EXPECT_EQ(none.verify(php_update()), verify_result::unknown_merchant);
    // An empty merchant key must not make "signature over an empty key" acceptable.
    const notification_verifier empty_merchant{"", keys{{"G000000001", ""}}};
    EXPECT_FALSE(empty_merchant.has_any_key());
    EXPECT_FALSE(empty_merchant.key_for("G000000001").has_value());
    auto u = php_update("G000000001");
    const auto sig = posrelay::midtrans::compute_signature("1111", "200", "100000.00", "");
    u.set(field::signature_key, std::string_view{sig.data(), sig.size()});
    EXPECT_EQ(empty_merchant.verify(u), verify_result::unknown_merchant);
}

TEST(notification_verifier, result_names) {
    EXPECT_EQ(to_string(verify_result::ok), "ok");
    EXPECT_EQ(to_string(verify_result::bad_signature), "bad_signature");
    EXPECT_EQ(to_string(verify_result::unknown_merchant), "unknown_merchant");
}

}  // namespace
