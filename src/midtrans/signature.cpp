// Midtrans signature_key computation (SHA-512, lowercase hex) with OpenSSL 3 EVP: the
// digest is fetched once per process, the digest context reused per thread.
#include "posrelay/midtrans/signature.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <memory>
#include <stdexcept>

namespace posrelay::midtrans {

namespace {

constexpr unsigned sha512_size = 64;
static_assert(signature_hex_size == 2 * sha512_size);

struct md_deleter {
    void operator()(EVP_MD* md) const noexcept { EVP_MD_free(md); }
};
struct md_ctx_deleter {
    void operator()(EVP_MD_CTX* ctx) const noexcept { EVP_MD_CTX_free(ctx); }
};

// Explicit fetch (OpenSSL 3): avoids the implicit provider lookup EVP_sha512() costs on
// every EVP_DigestInit. Thread-safe static init; a failure is a broken installation.
const EVP_MD* sha512() {
    static const std::unique_ptr<EVP_MD, md_deleter> md{EVP_MD_fetch(nullptr, "SHA512", nullptr)};
    if (!md) throw std::runtime_error("OpenSSL: SHA512 is not available");
    return md.get();
}

// One context per thread, reset by each EVP_DigestInit_ex2: no allocation per signature.
EVP_MD_CTX* thread_ctx() {
    thread_local const std::unique_ptr<EVP_MD_CTX, md_ctx_deleter> ctx{EVP_MD_CTX_new()};
    if (!ctx) throw std::runtime_error("OpenSSL: cannot allocate a digest context");
    return ctx.get();
}

}  // namespace

signature_hex compute_signature(std::string_view order_id, std::string_view status_code,
                                std::string_view gross_amount, std::string_view server_key) {
    EVP_MD_CTX* ctx = thread_ctx();
    unsigned char digest[sha512_size];
    unsigned int digest_size = 0;
    // Plain concatenation, server key last (FACTS.md): four updates hash the same bytes.
    const bool ok = EVP_DigestInit_ex2(ctx, sha512(), nullptr) == 1 &&
                    EVP_DigestUpdate(ctx, order_id.data(), order_id.size()) == 1 &&
                    EVP_DigestUpdate(ctx, status_code.data(), status_code.size()) == 1 &&
                    EVP_DigestUpdate(ctx, gross_amount.data(), gross_amount.size()) == 1 &&
                    EVP_DigestUpdate(ctx, server_key.data(), server_key.size()) == 1 &&
                    EVP_DigestFinal_ex(ctx, digest, &digest_size) == 1 &&
                    digest_size == sha512_size;
    if (!ok) throw std::runtime_error("OpenSSL: SHA-512 failed");

    static constexpr char hex[] = "0123456789abcdef";
    signature_hex out;
    for (unsigned i = 0; i < sha512_size; ++i) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 0x0f];
    }
    return out;
}

bool verify_signature(std::string_view received, std::string_view order_id,
                      std::string_view status_code, std::string_view gross_amount,
                      std::string_view server_key) {
    // The length of a signature is public: a wrong length needs no hashing.
    if (received.size() != signature_hex_size) return false;
    const signature_hex expected =
        compute_signature(order_id, status_code, gross_amount, server_key);
    return CRYPTO_memcmp(received.data(), expected.data(), signature_hex_size) == 0;
}

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    if (a.empty()) return true;
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace posrelay::midtrans
