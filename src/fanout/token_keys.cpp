// Terminal token keys: JWK sets (RFC 7517/7518/8037) → verification keys, the verifier a
// configuration describes, and JWT minting (HS256; EdDSA/ES256 from a PEM private key).
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <simdjson.h>

#include <array>
#include <fstream>
#include <stdexcept>

#include "posrelay/fanout/protocol.hpp"
#include "posrelay/fanout/token_verifier.hpp"

namespace posrelay::fanout {

namespace {

using std::invalid_argument;

struct pkey_deleter {
    void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};

std::shared_ptr<EVP_PKEY> ed25519_key(const std::string& x) {
    if (x.size() != 32) return nullptr;
    EVP_PKEY* k = EVP_PKEY_new_raw_public_key(
        EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(x.data()), x.size());
    return {k, pkey_deleter{}};
}

// A P-256 public key from its affine coordinates (checked to be on the curve by fromdata).
std::shared_ptr<EVP_PKEY> p256_key(const std::string& x, const std::string& y) {
    if (x.size() != 32 || y.size() != 32) return nullptr;
    std::string point = "\x04" + x + y;
    char group[] = "prime256v1";
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
        OSSL_PARAM_construct_end()};
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
    EVP_PKEY* k = nullptr;
    const bool ok =
        ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
        EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, const_cast<OSSL_PARAM*>(params)) == 1;
    EVP_PKEY_CTX_free(ctx);
    std::shared_ptr<EVP_PKEY> key{ok ? k : nullptr, pkey_deleter{}};
    if (!ok) EVP_PKEY_free(k);
    if (key) {  // fromdata does not check the point: a key off the curve is refused here
        EVP_PKEY_CTX* check = EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr);
        const bool on_curve = check && EVP_PKEY_public_check(check) == 1;
        EVP_PKEY_CTX_free(check);
        if (!on_curve) key.reset();
    }
    return key;
}

std::string member(simdjson::dom::object o, std::string_view name, const std::string& where) {
    simdjson::dom::element e;
    if (o.at_key(name).get(e) != simdjson::SUCCESS) return {};
    std::string_view s;
    if (e.get_string().get(s) != simdjson::SUCCESS)
        throw invalid_argument(where + ": \"" + std::string(name) + "\" must be a string");
    return std::string(s);
}

std::string b64_member(simdjson::dom::object o, std::string_view name, const std::string& where) {
    const auto text = member(o, name, where);
    auto bytes = base64url_decode(text);
    if (text.empty() || !bytes)
        throw invalid_argument(where + ": \"" + std::string(name) +
                               "\" must be base64url without padding");
    return std::move(*bytes);
}

token_key parse_jwk(simdjson::dom::object o, std::size_t index) {
    std::string where = "key " + std::to_string(index);
    token_key k;
    k.kid = member(o, "kid", where);
    if (!valid_id(k.kid)) throw invalid_argument(where + ": kid must be 1-64 of A-Z a-z 0-9 . _ -");
    where += " (kid " + k.kid + ")";
    const auto use = member(o, "use", where);
    if (!use.empty() && use != "sig") throw invalid_argument(where + ": use must be \"sig\"");
    if (!member(o, "d", where).empty())
        throw invalid_argument(where + ": holds a private key (d): give posrelay the public key");
    const auto kty = member(o, "kty", where);
    const auto crv = member(o, "crv", where);
    if (kty == "oct") {
        k.kind = token_kind::hs256;
        auto bytes = b64_member(o, "k", where);
        if (bytes.size() < min_hmac_key_bytes)
            throw invalid_argument(where + ": an HS256 key (k) must be at least 32 bytes");
        k.mac_key = secret(std::move(bytes));
    } else if (kty == "OKP" && crv == "Ed25519") {
        k.kind = token_kind::eddsa;
        k.public_key = ed25519_key(b64_member(o, "x", where));
    } else if (kty == "EC" && crv == "P-256") {
        k.kind = token_kind::es256;
        k.public_key = p256_key(b64_member(o, "x", where), b64_member(o, "y", where));
    } else {
        throw invalid_argument(where + ": kty must be oct, OKP (crv Ed25519) or EC (crv P-256)");
    }
    if (k.kind != token_kind::hs256 && !k.public_key)
        throw invalid_argument(where + ": not a valid " + kty + " public key");
    const auto alg = member(o, "alg", where);
    if (!alg.empty() && alg != alg_name(k.kind))
        throw invalid_argument(where + ": alg " + alg + " does not fit kty " + kty);
    return k;
}

}  // namespace

std::vector<token_key> parse_jwks(std::string_view json) {
    if (json.size() > max_jwks_bytes) throw invalid_argument("over 256 KiB");
    simdjson::dom::parser parser;
    const simdjson::padded_string padded(json);
    simdjson::dom::element doc;
    simdjson::dom::array keys;
    if (parser.parse(padded).get(doc) != simdjson::SUCCESS ||
        doc["keys"].get_array().get(keys) != simdjson::SUCCESS)
        throw invalid_argument("not a JWK set: a JSON object with a \"keys\" array");
    std::vector<token_key> out;
    for (const auto e : keys) {
        simdjson::dom::object o;
        if (out.size() >= max_jwks_keys) throw invalid_argument("more than 256 keys");
        if (e.get_object().get(o) != simdjson::SUCCESS)
            throw invalid_argument("key " + std::to_string(out.size()) + ": not an object");
        auto k = parse_jwk(o, out.size());
        for (const auto& other : out) {
            if (other.kid == k.kid) throw invalid_argument("kid " + k.kid + " appears twice");
        }
        out.push_back(std::move(k));
    }
    return out;
}

std::shared_ptr<const token_verifier> make_token_verifier(const config& c) {
    auto v = std::make_shared<token_verifier>();
    v->v1_secret = c.terminal_secret;
    v->policy.max_ttl = c.terminal_token_max_ttl;
    v->policy.skew = c.terminal_token_skew;
    v->policy.audience = c.terminal_token_audience;
    v->policy.accept_v1 = c.terminal_token_v1;
    if (!c.terminal_token_keys.empty()) {
        std::ifstream in(c.terminal_token_keys, std::ios::binary);
        std::string text(max_jwks_bytes + 1, '\0');
        if (in) in.read(text.data(), static_cast<std::streamsize>(text.size()));
        if (!in && !in.eof())
            throw config_error("--terminal-token-keys: '" + c.terminal_token_keys +
                               "' cannot be read");
        text.resize(static_cast<std::size_t>(in.gcount()));
        try {
            v->keys = parse_jwks(text);
        } catch (const invalid_argument& e) {
            throw config_error("--terminal-token-keys: '" + c.terminal_token_keys +
                               "': " + e.what());
        }
    }
    if (!c.terminal_secret.empty()) {
        if (v->find(default_kid))
            throw config_error("--terminal-token-keys: kid \"default\" is the terminal secret's");
        v->keys.push_back(
            token_key{std::string(default_kid), token_kind::hs256, c.terminal_secret, nullptr});
    }
    return v;
}

// ---- minting ----------------------------------------------------------------------------

namespace {

std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (const char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            static constexpr char hex[] = "0123456789abcdef";
            out += "\\u00";
            out += hex[(c >> 4) & 0xf];
            out += hex[c & 0xf];
        } else {
            out += c;
        }
    }
    return out + '"';
}

std::string header_json(token_kind k, std::string_view kid) {
    std::string h = "{\"alg\":\"" + std::string(alg_name(k)) + "\",\"typ\":\"JWT\"";
    if (!kid.empty()) h += ",\"kid\":" + json_string(kid);
    return h + "}";
}

struct md_ctx_deleter {
    void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};

// DER ECDSA-Sig-Value → JOSE's raw r||s.
std::string es256_raw(const std::string& der) {
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
    if (!sig) throw std::runtime_error("OpenSSL: bad ECDSA signature");
    std::string raw(64, '\0');
    auto* out = reinterpret_cast<unsigned char*>(raw.data());
    const bool ok = BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, 32) == 32 &&
                    BN_bn2binpad(ECDSA_SIG_get0_s(sig), out + 32, 32) == 32;
    ECDSA_SIG_free(sig);
    if (!ok) throw std::runtime_error("OpenSSL: bad ECDSA signature");
    return raw;
}

std::string sign_with(EVP_PKEY* key, token_kind kind, std::string_view input) {
    const std::unique_ptr<EVP_MD_CTX, md_ctx_deleter> ctx{EVP_MD_CTX_new()};
    const EVP_MD* md = kind == token_kind::es256 ? EVP_sha256() : nullptr;
    std::size_t n = 0;
    const auto* data = reinterpret_cast<const unsigned char*>(input.data());
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &n, data, input.size()) != 1)
        throw std::runtime_error("OpenSSL: cannot sign");
    std::string sig(n, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &n, data,
                       input.size()) != 1)
        throw std::runtime_error("OpenSSL: cannot sign");
    sig.resize(n);
    return kind == token_kind::es256 ? es256_raw(sig) : sig;
}

}  // namespace

std::string claims_json(const mint_request& r) {
    std::string c = "{\"terminal_id\":" + json_string(r.terminal_id) +
                    ",\"store_id\":" + json_string(r.store_id) +
                    ",\"iat\":" + std::to_string(r.iat);
    if (r.exp != 0) c += ",\"exp\":" + std::to_string(r.exp);
    if (r.nbf) c += ",\"nbf\":" + std::to_string(*r.nbf);
    if (!r.audience.empty()) c += ",\"aud\":" + json_string(r.audience);
    if (r.observe) c += ",\"observe\":true";
    return c + "}";
}

std::string mint_jwt_hs256(std::string_view mac_key, const mint_request& r) {
    if (mac_key.empty()) throw invalid_argument("the HS256 key is empty");
    const std::string input = base64url_encode(header_json(token_kind::hs256, r.kid)) + '.' +
                              base64url_encode(claims_json(r));
    std::array<unsigned char, 32> mac{};
    std::size_t n = 0;
    if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, mac_key.data(), mac_key.size(),
                  reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac.data(),
                  mac.size(), &n) == nullptr ||
        n != mac.size())
        throw std::runtime_error("OpenSSL: HMAC-SHA256 failed");
    return input + '.' +
           base64url_encode(std::string_view(reinterpret_cast<const char*>(mac.data()), n));
}

std::string mint_jwt_pem(std::string_view pem, const mint_request& r) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    std::unique_ptr<EVP_PKEY, pkey_deleter> key{
        bio ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr) : nullptr};
    BIO_free(bio);
    if (!key) throw invalid_argument("not a PEM private key");
    token_kind kind = token_kind::eddsa;
    if (EVP_PKEY_is_a(key.get(), "EC")) {
        char group[32] = {};
        std::size_t n = 0;
        if (EVP_PKEY_get_utf8_string_param(key.get(), OSSL_PKEY_PARAM_GROUP_NAME, group,
                                           sizeof group, &n) != 1 ||
            std::string_view(group) != "prime256v1")
            throw invalid_argument("an EC key must be on P-256 (ES256)");
        kind = token_kind::es256;
    } else if (!EVP_PKEY_is_a(key.get(), "ED25519")) {
        throw invalid_argument("the key must be Ed25519 (EdDSA) or P-256 (ES256)");
    }
    const std::string input =
        base64url_encode(header_json(kind, r.kid)) + '.' + base64url_encode(claims_json(r));
    return input + '.' + base64url_encode(sign_with(key.get(), kind, input));
}

}  // namespace posrelay::fanout
