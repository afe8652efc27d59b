// Terminal tokens, version 2: JWTs (compact JWS, RFC 7515/7519) signed with HS256 (a secret
// chosen by `kid`), EdDSA (Ed25519) or ES256 (P-256) — the last two verified with public keys
// from a JWK set file, so a chain's backend can mint tokens while posrelay holds no signing
// secret. v1 tokens ("v1." + hex HMAC) are still accepted when the policy allows them.
// proto-docs/terminal-protocol.md §11. Verification is pure given the key set and `now`.
#pragma once

#include <openssl/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "posrelay/config.hpp"
#include "posrelay/fanout/token_claims.hpp"

namespace posrelay::fanout {

// The kid the terminal secret (POSRELAY_TERMINAL_SECRET or its file) signs HS256 tokens under.
inline constexpr std::string_view default_kid = "default";
// Bounds of every input: a token, a decoded header or claim set, a JWK set file.
inline constexpr std::size_t max_jwt_bytes = 2048;
inline constexpr std::size_t max_kid_bytes = 64;
inline constexpr std::size_t max_jwks_bytes = 256 * 1024;
inline constexpr std::size_t max_jwks_keys = 256;
inline constexpr std::size_t min_hmac_key_bytes = 32;  // JWK oct keys (RFC 7518 §3.2)

// A verification key. kind: hs256 (mac_key), eddsa or es256 (public_key).
struct token_key {
    std::string kid;
    token_kind kind = token_kind::hs256;
    secret mac_key;
    std::shared_ptr<EVP_PKEY> public_key;
};

struct token_policy {
    std::int64_t max_ttl = 30 * 86400;  // exp - iat at most, seconds; 0: exp optional, unbounded
    std::int64_t skew = 60;             // clock skew allowed on exp, nbf and iat, seconds
    std::string audience = "posrelay";  // required in aud; "": aud not checked
    bool accept_v1 = true;              // v1 tokens (checked against the terminal secret)
};

// An immutable snapshot: what a handshake checks tokens against. A reload swaps it whole.
struct token_verifier {
    std::vector<token_key> keys;  // distinct kids
    secret v1_secret;             // the terminal secret (also key "default" when set)
    token_policy policy;

    [[nodiscard]] const token_key* find(std::string_view kid) const noexcept;
    // No kid in the header: the one key of `kind`, if exactly one; else nullptr.
    [[nodiscard]] const token_key* only(token_kind kind) const noexcept;
    [[nodiscard]] bool empty() const noexcept { return keys.empty() && v1_secret.empty(); }
};

struct token_check {
    token_outcome outcome = token_outcome::malformed;
    token_claims claims;
};

// Checks `token` for (terminal_id, store_id) at Unix time `now`. Never throws; a failure
// names its reason in outcome and never echoes the token.
[[nodiscard]] token_check check_token(const token_verifier& v, std::string_view terminal_id,
                                      std::string_view store_id, std::string_view token,
                                      std::int64_t now);

// ---- pure decisions (table-tested) -------------------------------------------------------

// The time claims of a verified token, in Unix seconds.
struct token_times {
    std::optional<std::int64_t> exp;
    std::optional<std::int64_t> iat;
    std::optional<std::int64_t> nbf;
};
// ok, expired, not_yet_valid, missing_exp or ttl_too_long. Missing iat counts as malformed.
[[nodiscard]] token_outcome check_times(const token_times& t, const token_policy& p,
                                        std::int64_t now) noexcept;
// The JWS alg a key kind verifies: "HS256", "EdDSA", "ES256"; "" for v1.
[[nodiscard]] std::string_view alg_name(token_kind k) noexcept;
// The kind an alg names; nullopt for anything else ("none", "RS256", "HS512", ...).
[[nodiscard]] std::optional<token_kind> kind_of_alg(std::string_view alg) noexcept;
// Label values: "v1", "hs256", "eddsa", "es256"; and the outcome's name ("ok", "expired", ...).
[[nodiscard]] std::string_view to_string(token_kind k) noexcept;
[[nodiscard]] std::string_view to_string(token_outcome o) noexcept;

// base64url without padding (RFC 7515 §2); nullopt on any other character, '=' or a length
// that cannot be one.
[[nodiscard]] std::optional<std::string> base64url_decode(std::string_view in);
[[nodiscard]] std::string base64url_encode(std::string_view in);

// ---- key sets ---------------------------------------------------------------------------

// Parses a JWK set ({"keys":[...]}): kty oct (HS256, k at least 32 bytes), OKP (crv Ed25519)
// or EC (crv P-256); each with a distinct kid; `alg`, if present, must fit the kty; private
// members (d) are refused. Throws std::invalid_argument naming the key (never a secret).
[[nodiscard]] std::vector<token_key> parse_jwks(std::string_view json);

// The verifier a configuration describes: the terminal secret as kid "default", the keys of
// --terminal-token-keys (read now), the policy options. Throws config_error.
[[nodiscard]] std::shared_ptr<const token_verifier> make_token_verifier(const config& c);

// ---- minting ----------------------------------------------------------------------------

struct mint_request {
    std::string terminal_id;
    std::string store_id;
    std::int64_t iat = 0;
    std::int64_t exp = 0;  // 0: no exp
    std::optional<std::int64_t> nbf;
    std::string kid;       // "": no kid in the header
    std::string audience;  // "": no aud
    bool observe = false;
};
// An HS256 JWT. Throws std::invalid_argument on an empty secret.
[[nodiscard]] std::string mint_jwt_hs256(std::string_view mac_key, const mint_request& r);
// An EdDSA (Ed25519 key) or ES256 (P-256 key) JWT from a PEM private key. Throws
// std::invalid_argument for another key type or an unreadable PEM.
[[nodiscard]] std::string mint_jwt_pem(std::string_view pem, const mint_request& r);
// The claim set mint_* sign (JSON), exposed for tests.
[[nodiscard]] std::string claims_json(const mint_request& r);

}  // namespace posrelay::fanout
