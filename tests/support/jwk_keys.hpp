// Test keys for JWT terminal tokens: OpenSSL keys, their PEM and public JWKs (unit and
// integration tests mint EdDSA/ES256 tokens and write JWK sets with these).
#pragma once

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>
#include <string>
#include <string_view>

#include "posrelay/fanout/token_verifier.hpp"

namespace posrelay::test {

struct pkey_free {
    void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
using pkey = std::unique_ptr<EVP_PKEY, pkey_free>;

inline std::string pem_of(EVP_PKEY* k) {
    BIO* b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    const long n = BIO_get_mem_data(b, &data);
    std::string out(data, static_cast<std::size_t>(n));
    BIO_free(b);
    return out;
}

inline std::string b64(const unsigned char* p, std::size_t n) {
    return fanout::base64url_encode(std::string_view(reinterpret_cast<const char*>(p), n));
}

// The public JWK of an Ed25519 or P-256 key.
inline std::string jwk_of(EVP_PKEY* k, const std::string& kid) {
    if (EVP_PKEY_is_a(k, "ED25519")) {
        unsigned char x[32];
        std::size_t n = sizeof x;
        EVP_PKEY_get_raw_public_key(k, x, &n);
        return R"({"kty":"OKP","crv":"Ed25519","kid":")" + kid + R"(","x":")" + b64(x, n) + "\"}";
    }
    unsigned char pt[65];
    std::size_t n = 0;
    EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt, &n);
    return R"({"kty":"EC","crv":"P-256","kid":")" + kid + R"(","x":")" + b64(pt + 1, 32) +
           R"(","y":")" + b64(pt + 33, 32) + "\"}";
}

inline std::string oct_jwk(const std::string& kid, const std::string& key) {
    return R"({"kty":"oct","kid":")" + kid + R"(","k":")" + fanout::base64url_encode(key) + "\"}";
}

}  // namespace posrelay::test
