// Terminal JWTs: the pure decisions (times, algorithms, names), base64url, and check_token —
// header, key by kid, signature (OpenSSL 3 EVP), then the claim set (simdjson DOM).
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include <simdjson.h>

#include <array>
#include <memory>

#include "posrelay/fanout/protocol.hpp"
#include "posrelay/fanout/token_verifier.hpp"

namespace posrelay::fanout {

namespace {

constexpr char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
// NumericDate bounds (0 .. 9999-12-31): no arithmetic on them can overflow.
constexpr std::int64_t max_time = 253'402'300'799;
constexpr std::size_t max_aud_entries = 16;

int b64_value(char c) noexcept {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

}  // namespace

std::optional<std::string> base64url_decode(std::string_view in) {
    if (in.size() % 4 == 1) return std::nullopt;
    std::string out;
    out.reserve(in.size() * 3 / 4);
    std::uint32_t acc = 0;
    int bits = 0;
    for (const char c : in) {
        const int v = b64_value(c);
        if (v < 0) return std::nullopt;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    // Non-zero leftover bits: not the canonical encoding of any bytes.
    if (bits > 0 && (acc & ((1U << bits) - 1)) != 0) return std::nullopt;
    return out;
}

std::string base64url_encode(std::string_view in) {
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::uint32_t acc = 0;
    int bits = 0;
    for (const char c : in) {
        acc = (acc << 8) | static_cast<unsigned char>(c);
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out += b64url[(acc >> bits) & 0x3f];
        }
    }
    if (bits > 0) out += b64url[(acc << (6 - bits)) & 0x3f];
    return out;
}

std::string_view alg_name(token_kind k) noexcept {
    switch (k) {
        case token_kind::hs256:
            return "HS256";
        case token_kind::eddsa:
            return "EdDSA";
        case token_kind::es256:
            return "ES256";
        case token_kind::v1:
            break;
    }
    return "";
}

std::optional<token_kind> kind_of_alg(std::string_view alg) noexcept {
    for (const auto k : {token_kind::hs256, token_kind::eddsa, token_kind::es256}) {
        if (alg == alg_name(k)) return k;
    }
    return std::nullopt;
}

std::string_view to_string(token_kind k) noexcept {
    switch (k) {
        case token_kind::v1:
            return "v1";
        case token_kind::hs256:
            return "hs256";
        case token_kind::eddsa:
            return "eddsa";
        case token_kind::es256:
            return "es256";
    }
    return "unknown";
}

std::string_view to_string(token_outcome o) noexcept {
    switch (o) {
        case token_outcome::ok:
            return "ok";
        case token_outcome::malformed:
            return "malformed";
        case token_outcome::bad_signature:
            return "bad_signature";
        case token_outcome::unknown_kid:
            return "unknown_kid";
        case token_outcome::bad_alg:
            return "bad_alg";
        case token_outcome::expired:
            return "expired";
        case token_outcome::not_yet_valid:
            return "not_yet_valid";
        case token_outcome::missing_exp:
            return "missing_exp";
        case token_outcome::ttl_too_long:
            return "ttl_too_long";
        case token_outcome::wrong_audience:
            return "wrong_audience";
        case token_outcome::v1_disabled:
            return "v1_disabled";
        case token_outcome::revoked:
            return "revoked";
        case token_outcome::wrong_terminal:
            return "wrong_terminal";
    }
    return "unknown";
}

token_outcome check_times(const token_times& t, const token_policy& p, std::int64_t now) noexcept {
    if (!t.iat) return token_outcome::malformed;
    if (t.exp && *t.exp < *t.iat) return token_outcome::malformed;
    if (!t.exp && p.max_ttl > 0) return token_outcome::missing_exp;
    if (t.exp && p.max_ttl > 0 && *t.exp - *t.iat > p.max_ttl) return token_outcome::ttl_too_long;
    if (t.exp && now >= *t.exp + p.skew) return token_outcome::expired;
    if (*t.iat > now + p.skew) return token_outcome::not_yet_valid;
    if (t.nbf && *t.nbf > now + p.skew) return token_outcome::not_yet_valid;
    return token_outcome::ok;
}

const token_key* token_verifier::find(std::string_view kid) const noexcept {
    for (const auto& k : keys) {
        if (k.kid == kid) return &k;
    }
    return nullptr;
}

const token_key* token_verifier::only(token_kind kind) const noexcept {
    const token_key* found = nullptr;
    for (const auto& k : keys) {
        if (k.kind != kind) continue;
        if (found) return nullptr;
        found = &k;
    }
    return found;
}

namespace {

struct jwt_header {
    std::string alg;
    std::optional<std::string> kid;
};
struct jwt_body {
    std::string terminal_id;
    std::string store_id;
    token_times times;
    std::vector<std::string> aud;
    bool observe = false;
};

simdjson::dom::parser& json_parser() {
    thread_local simdjson::dom::parser p(max_jwt_bytes);
    return p;
}

// The decoded part parsed as a JSON object; false when it is not one.
bool parse_object(std::string_view text, simdjson::dom::object& out) {
    // The DOM copies what it keeps (strings included): `padded` may go after the parse.
    const simdjson::padded_string padded(text);
    simdjson::dom::element doc;
    if (json_parser().parse(padded).get(doc) != simdjson::SUCCESS) return false;
    return doc.get_object().get(out) == simdjson::SUCCESS;
}

bool parse_header(std::string_view text, jwt_header& h) {
    simdjson::dom::object obj;
    if (!parse_object(text, obj)) return false;
    bool seen_alg = false;
    for (const auto field : obj) {
        const std::string_view key = field.key;
        std::string_view s;
        if (key == "crit") return false;  // no extension is understood
        if (key != "alg" && key != "kid" && key != "typ") continue;
        if (field.value.get_string().get(s) != simdjson::SUCCESS) return false;
        if (key == "alg") {
            if (seen_alg) return false;
            seen_alg = true;
            h.alg = s;
        } else if (key == "kid") {
            if (h.kid || s.size() > max_kid_bytes) return false;
            h.kid = std::string(s);
        } else if (s != "JWT") {
            return false;
        }
    }
    return seen_alg;
}

bool time_value(simdjson::dom::element e, std::optional<std::int64_t>& out) {
    if (out) return false;  // a duplicate claim
    std::int64_t i = 0;
    double d = 0;
    if (e.get_int64().get(i) == simdjson::SUCCESS) {
        out = i;
    } else if (e.get_double().get(d) == simdjson::SUCCESS && d >= 0 &&
               d <= static_cast<double>(max_time)) {
        out = static_cast<std::int64_t>(d);
    } else {
        return false;
    }
    return *out >= 0 && *out <= max_time;
}

bool aud_value(simdjson::dom::element e, std::vector<std::string>& out, bool& seen) {
    if (seen) return false;
    seen = true;
    std::string_view s;
    if (e.get_string().get(s) == simdjson::SUCCESS) {
        out.emplace_back(s);
        return true;
    }
    simdjson::dom::array a;
    if (e.get_array().get(a) != simdjson::SUCCESS) return false;
    for (const auto v : a) {
        if (out.size() >= max_aud_entries || v.get_string().get(s) != simdjson::SUCCESS)
            return false;
        out.emplace_back(s);
    }
    return true;
}

bool id_value(simdjson::dom::element e, std::string& out) {
    std::string_view s;
    if (!out.empty() || e.get_string().get(s) != simdjson::SUCCESS || !valid_id(s)) return false;
    out = s;
    return true;
}

bool parse_body(std::string_view text, jwt_body& b) {
    simdjson::dom::object obj;
    if (!parse_object(text, obj)) return false;
    bool seen_aud = false;
    bool seen_observe = false;
    for (const auto field : obj) {
        const std::string_view key = field.key;
        bool ok = true;
        if (key == "terminal_id") {
            ok = id_value(field.value, b.terminal_id);
        } else if (key == "store_id") {
            ok = id_value(field.value, b.store_id);
        } else if (key == "exp") {
            ok = time_value(field.value, b.times.exp);
        } else if (key == "iat") {
            ok = time_value(field.value, b.times.iat);
        } else if (key == "nbf") {
            ok = time_value(field.value, b.times.nbf);
        } else if (key == "aud") {
            ok = aud_value(field.value, b.aud, seen_aud);
        } else if (key == "observe") {
            ok = !seen_observe && field.value.get_bool().get(b.observe) == simdjson::SUCCESS;
            seen_observe = true;
        }
        if (!ok) return false;
    }
    return !b.terminal_id.empty() && !b.store_id.empty();
}

struct md_ctx_deleter {
    void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};

// JOSE's raw r||s (32 + 32 bytes) as the DER ECDSA-Sig-Value OpenSSL verifies.
std::string es256_der(std::string_view raw) {
    ECDSA_SIG* sig = ECDSA_SIG_new();
    if (!sig) return {};
    const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
    BIGNUM* r = BN_bin2bn(p, 32, nullptr);
    BIGNUM* s = BN_bin2bn(p + 32, 32, nullptr);
    std::string der;
    if (r && s && ECDSA_SIG_set0(sig, r, s) == 1) {
        r = s = nullptr;  // owned by sig
        unsigned char* out = nullptr;
        const int n = i2d_ECDSA_SIG(sig, &out);
        if (n > 0) der.assign(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n));
        OPENSSL_free(out);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return der;
}

bool verify_signature(const token_key& key, std::string_view input, std::string_view sig) {
    const auto* data = reinterpret_cast<const unsigned char*>(input.data());
    if (key.kind == token_kind::hs256) {
        std::array<unsigned char, 32> mac{};
        std::size_t n = 0;
        const auto k = key.mac_key.view();
        if (sig.size() != mac.size() || k.empty() ||
            EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, k.data(), k.size(), data,
                      input.size(), mac.data(), mac.size(), &n) == nullptr ||
            n != mac.size())
            return false;
        return CRYPTO_memcmp(mac.data(), sig.data(), mac.size()) == 0;
    }
    if (sig.size() != 64 || !key.public_key) return false;
    const std::string der = key.kind == token_kind::es256 ? es256_der(sig) : std::string(sig);
    if (der.empty()) return false;
    const std::unique_ptr<EVP_MD_CTX, md_ctx_deleter> ctx{EVP_MD_CTX_new()};
    const EVP_MD* md = key.kind == token_kind::es256 ? EVP_sha256() : nullptr;
    return ctx &&
           EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key.public_key.get()) == 1 &&
           EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(der.data()),
                            der.size(), data, input.size()) == 1;
}

bool has_audience(const std::vector<std::string>& aud, std::string_view want) {
    for (const auto& a : aud) {
        if (a == want) return true;
    }
    return false;
}

token_check check_v1(const token_verifier& v, std::string_view terminal_id,
                     std::string_view store_id, std::string_view token) {
    token_check r;
    r.claims.kind = token_kind::v1;
    if (!v.policy.accept_v1) {
        r.outcome = token_outcome::v1_disabled;
    } else {
        r.outcome = verify_token(v.v1_secret.view(), terminal_id, store_id, token)
                        ? token_outcome::ok
                        : token_outcome::bad_signature;
    }
    return r;
}

// The header, and the key it names; outcome ok when the signature may be checked with it.
token_outcome pick_key(const token_verifier& v, std::string_view header_b64, token_check& r,
                       const token_key*& key) {
    const auto text = base64url_decode(header_b64);
    jwt_header h;
    if (!text || !parse_header(*text, h)) return token_outcome::malformed;
    const auto kind = kind_of_alg(h.alg);
    if (!kind) return token_outcome::bad_alg;
    r.claims.kind = *kind;
    if (h.kid) r.claims.kid = *h.kid;
    key = h.kid ? v.find(*h.kid) : v.only(*kind);
    if (!key) return token_outcome::unknown_kid;
    // An oct key never verifies EdDSA/ES256, a public key never HS256 (alg confusion).
    if (key->kind != *kind) return token_outcome::bad_alg;
    return token_outcome::ok;
}

token_outcome check_body(const token_verifier& v, std::string_view terminal_id,
                         std::string_view store_id, std::string_view body_b64, token_check& r,
                         std::int64_t now) {
    const auto text = base64url_decode(body_b64);
    jwt_body b;
    if (!text || !parse_body(*text, b)) return token_outcome::malformed;
    r.claims.issued_at = b.times.iat.value_or(0);
    r.claims.expires_at = b.times.exp.value_or(0);
    r.claims.observe = b.observe;
    if (b.terminal_id != terminal_id || b.store_id != store_id)
        return token_outcome::wrong_terminal;
    if (!v.policy.audience.empty() && !has_audience(b.aud, v.policy.audience))
        return token_outcome::wrong_audience;
    return check_times(b.times, v.policy, now);
}

}  // namespace

token_check check_token(const token_verifier& v, std::string_view terminal_id,
                        std::string_view store_id, std::string_view token, std::int64_t now) {
    token_check r;
    if (token.size() > max_jwt_bytes) return r;  // malformed
    if (token.starts_with("v1.")) return check_v1(v, terminal_id, store_id, token);
    r.claims.kind = token_kind::hs256;
    const auto dot1 = token.find('.');
    const auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos ||
        dot1 == 0 || dot2 == dot1 + 1 || dot2 + 1 == token.size())
        return r;
    const token_key* key = nullptr;
    try {
        r.outcome = pick_key(v, token.substr(0, dot1), r, key);
        if (r.outcome != token_outcome::ok) return r;
        const auto sig = base64url_decode(token.substr(dot2 + 1));
        if (!sig) {
            r.outcome = token_outcome::malformed;
            return r;
        }
        if (!verify_signature(*key, token.substr(0, dot2), *sig)) {
            r.outcome = token_outcome::bad_signature;
            return r;
        }
        r.outcome =
            check_body(v, terminal_id, store_id, token.substr(dot1 + 1, dot2 - dot1 - 1), r, now);
    } catch (const std::exception&) {  // allocation: refuse, never crash a handshake
        r.outcome = token_outcome::malformed;
    }
    return r;
}

}  // namespace posrelay::fanout
