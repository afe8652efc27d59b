// Tests of Midtrans signature computation and constant-time comparison against the
// recomputed vectors of FACTS.md.
#include "posrelay/midtrans/signature.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace posrelay::midtrans;

constexpr std::string_view node_key = "SB-Mid-server-GwUP_WGbJPXsDzsNEBRs8IYA";
constexpr std::string_view node_order = "order-id-node-1541395013";
constexpr std::string_view node_sig_decimals =
    "d302bfcb2db008f17343e4c3b56cb20a0b22d0951ede6a7cdbfcd31f4a5d0d89"
    "d0a5230c333dd2fc5803cfbe8567ad146fb3c574d4050a87b4d81661e5d870de";
constexpr std::string_view node_sig_no_decimals =
    "fe4fc7880e3ffc0c9794e4c2dd8d2fe0bc20625e4d7e78898787c1d75f136c29"
    "787c771c31b9b39de17a11f7cf2a476fea9c84fbe876617da1720686ac54f46c";
constexpr std::string_view php_key = "askvnoibnosifnboseofinbofinfgbiufglnbfg";
constexpr std::string_view php_sig =
    "edc076b21793ebe3e17926350f5b8ae67d902fe657b3d0aa31b932d5c127e237"
    "5d308a2bc94f3265ac2d80a1f181a79b997ac178a236fcff35af263fc4d4c231";

std::string_view view(const signature_hex& s) {
    return {s.data(), s.size()};
}

TEST(signature, node_vector_with_decimals) {
    const auto sig = compute_signature(node_order, "200", "200000.00", node_key);
    EXPECT_EQ(view(sig), node_sig_decimals);
    EXPECT_TRUE(verify_signature(node_sig_decimals, node_order, "200", "200000.00", node_key));
}

TEST(signature, node_vector_without_decimals_is_a_different_signature) {
    const auto sig = compute_signature(node_order, "200", "200000", node_key);
    EXPECT_EQ(view(sig), node_sig_no_decimals);
    EXPECT_NE(view(sig), node_sig_decimals);
    // gross_amount is hashed exactly as received, never re-formatted.
    EXPECT_FALSE(verify_signature(node_sig_decimals, node_order, "200", "200000", node_key));
    EXPECT_FALSE(verify_signature(node_sig_no_decimals, node_order, "200", "200000.00", node_key));
}

TEST(signature, php_docs_vector) {
    const auto sig = compute_signature("1111", "200", "100000.00", php_key);
    EXPECT_EQ(view(sig), php_sig);
    EXPECT_TRUE(verify_signature(php_sig, "1111", "200", "100000.00", php_key));
}

TEST(signature, any_change_breaks_verification) {
    EXPECT_FALSE(verify_signature(php_sig, "1112", "200", "100000.00", php_key));
    EXPECT_FALSE(verify_signature(php_sig, "1111", "201", "100000.00", php_key));
    EXPECT_FALSE(verify_signature(php_sig, "1111", "200", "100000.01", php_key));
    EXPECT_FALSE(verify_signature(php_sig, "1111", "200", "100000.00", node_key));
    // Moving bytes across the field boundary keeps the concatenation, hence the hash: the
    // documented scheme has no separator.
    EXPECT_TRUE(verify_signature(php_sig, "11112", "00", "100000.00", php_key));
}

TEST(signature, received_signature_must_be_exact_lowercase_hex) {
    std::string upper{php_sig};
    for (auto& ch : upper)
        ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    EXPECT_FALSE(verify_signature(upper, "1111", "200", "100000.00", php_key));
    EXPECT_FALSE(verify_signature(php_sig.substr(0, 127), "1111", "200", "100000.00", php_key));
    EXPECT_FALSE(verify_signature(std::string{php_sig} + "0", "1111", "200", "100000.00", php_key));
    EXPECT_FALSE(verify_signature("", "1111", "200", "100000.00", php_key));
    std::string flipped{php_sig};
    flipped.back() = flipped.back() == '1' ? '0' : '1';
    EXPECT_FALSE(verify_signature(flipped, "1111", "200", "100000.00", php_key));
}

TEST(signature, output_is_lowercase_hex) {
    const auto sig = compute_signature("", "", "", "");
    EXPECT_EQ(sig.size(), signature_hex_size);
    for (const char ch : sig) {
        EXPECT_TRUE((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')) << ch;
    }
    // SHA-512 of the empty string.
    EXPECT_EQ(view(sig),
              "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
              "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e");
}

TEST(signature, same_result_on_many_threads) {
    std::vector<std::thread> threads;
    std::vector<int> good(8, 0);
    for (std::size_t t = 0; t < good.size(); ++t) {
        threads.emplace_back([&good, t] {
            for (int i = 0; i < 200; ++i) {
                if (view(compute_signature("1111", "200", "100000.00", php_key)) == php_sig) {
                    ++good[t];
                }
            }
        });
    }
    for (auto& th : threads)
        th.join();
    for (const int g : good)
        EXPECT_EQ(g, 200);
}

TEST(constant_time_equal, cases) {
    EXPECT_TRUE(constant_time_equal("", ""));
    EXPECT_TRUE(constant_time_equal("secret-token", "secret-token"));
    EXPECT_FALSE(constant_time_equal("secret-token", "secret-tokeN"));
    EXPECT_FALSE(constant_time_equal("Secret-token", "secret-token"));
    EXPECT_FALSE(constant_time_equal("secret-token", "secret-token2"));
    EXPECT_FALSE(constant_time_equal("secret", ""));
    EXPECT_FALSE(constant_time_equal("", "secret"));
    // Embedded NULs are compared like any other byte.
    EXPECT_TRUE(constant_time_equal(std::string_view{"a\0b", 3}, std::string_view{"a\0b", 3}));
    EXPECT_FALSE(constant_time_equal(std::string_view{"a\0b", 3}, std::string_view{"a\0c", 3}));
    EXPECT_FALSE(constant_time_equal(std::string_view{"a\0b", 3}, "a"));
}

}  // namespace
