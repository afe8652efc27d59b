// Terminal tokens: "v1." + hex HMAC-SHA256(secret, "posrelay-terminal-v1\n" + terminal_id +
// "\n" + store_id), with OpenSSL 3 EVP_MAC, verified in constant time.
#include "posrelay/fanout/protocol.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "posrelay/midtrans/signature.hpp"

namespace posrelay::fanout {

namespace {

constexpr std::string_view token_prefix = "v1.";
constexpr std::string_view mac_domain = "posrelay-terminal-v1\n";
constexpr std::size_t sha256_size = 32;
constexpr std::size_t token_size = token_prefix.size() + 2 * sha256_size;

struct mac_deleter {
    void operator()(EVP_MAC* m) const noexcept { EVP_MAC_free(m); }
};
struct mac_ctx_deleter {
    void operator()(EVP_MAC_CTX* c) const noexcept { EVP_MAC_CTX_free(c); }
};

// Fetched once per process (thread-safe static init); a failure is a broken installation.
EVP_MAC* hmac() {
    static const std::unique_ptr<EVP_MAC, mac_deleter> mac{EVP_MAC_fetch(nullptr, "HMAC", nullptr)};
    if (!mac) throw std::runtime_error("OpenSSL: HMAC is not available");
    return mac.get();
}

bool update(EVP_MAC_CTX* ctx, std::string_view s) {
    return EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(s.data()), s.size()) == 1;
}

}  // namespace

// Tokens are minted at a handshake or by `posrelay token`, not per event: a context per call
// keeps this simple and thread-safe.
std::string mint_token(std::string_view secret, std::string_view terminal_id,
                       std::string_view store_id) {
    if (secret.empty()) throw std::invalid_argument("terminal token secret is empty");
    const std::unique_ptr<EVP_MAC_CTX, mac_ctx_deleter> ctx{EVP_MAC_CTX_new(hmac())};
    if (!ctx) throw std::runtime_error("OpenSSL: cannot allocate a MAC context");
    char digest_name[] = "SHA256";
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
        OSSL_PARAM_construct_end()};
    unsigned char mac[sha256_size];
    std::size_t mac_size = 0;
    // Ids cannot hold '\n' (valid_id), so the message is unambiguous.
    const bool ok = EVP_MAC_init(ctx.get(), reinterpret_cast<const unsigned char*>(secret.data()),
                                 secret.size(), params) == 1 &&
                    update(ctx.get(), mac_domain) && update(ctx.get(), terminal_id) &&
                    update(ctx.get(), "\n") && update(ctx.get(), store_id) &&
                    EVP_MAC_final(ctx.get(), mac, &mac_size, sizeof mac) == 1 &&
                    mac_size == sha256_size;
    if (!ok) throw std::runtime_error("OpenSSL: HMAC-SHA256 failed");

    static constexpr char hex[] = "0123456789abcdef";
    std::string token;
    token.reserve(token_size);
    token += token_prefix;
    for (const unsigned char b : mac) {
        token += hex[b >> 4];
        token += hex[b & 0x0f];
    }
    return token;
}

// An empty secret verifies nothing: an unconfigured gateway must not accept anyone. The
// length of a token is public, so a wrong length needs no MAC.
bool verify_token(std::string_view secret, std::string_view terminal_id, std::string_view store_id,
                  std::string_view token) {
    if (secret.empty() || token.size() != token_size) return false;
    return midtrans::constant_time_equal(token, mint_token(secret, terminal_id, store_id));
}

}  // namespace posrelay::fanout
