// What a verified terminal token says (proto-docs/terminal-protocol.md §11): the kind of
// token, its key id and times, and whether it opens an observer session. Shared by the token
// verifier (which fills it), the gateway's handshake (revocation, observers) and the QR route.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace posrelay::fanout {

enum class token_kind : std::uint8_t { v1, hs256, eddsa, es256 };

// Why a token was refused (or ok). Names are metric label values and log reasons.
enum class token_outcome : std::uint8_t {
    ok,
    malformed,       // not a v1 token nor a compact JWS, a bad header or claim set
    bad_signature,   // the MAC or signature does not verify (or the wrong terminal/store)
    unknown_kid,     // no key with this kid (or no kid where several keys could match)
    bad_alg,         // an algorithm not configured (alg none, or alg/key type confusion)
    expired,         // exp (plus the clock skew allowance) has passed
    not_yet_valid,   // nbf or iat (minus the skew) is in the future
    missing_exp,     // exp absent while --terminal-token-max-ttl is not 0
    ttl_too_long,    // exp - iat over --terminal-token-max-ttl
    wrong_audience,  // aud does not name this service
    v1_disabled,     // a v1 token while v1 tokens are not accepted
    revoked,         // issued at or before the terminal's (or its store's) revocation
    wrong_terminal,  // a valid JWT whose terminal_id/store_id claims are not the hello's
};

struct token_claims {
    token_kind kind = token_kind::v1;
    std::string kid;             // "" for v1 tokens
    std::int64_t issued_at = 0;  // iat, Unix seconds; 0 for v1 tokens (any revocation refuses them)
    std::int64_t expires_at = 0;  // exp, Unix seconds; 0: none
    bool observe = false;  // observer session: gets the terminal's events, never acks or replaces
};

}  // namespace posrelay::fanout
