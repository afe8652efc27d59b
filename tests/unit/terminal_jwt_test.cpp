// Terminal JWTs (fanout/token_verifier.hpp): the time decisions, every outcome of
// check_token, algorithm confusion, alg none, kid rotation, malformed and oversize input,
// JWK set parsing, and `posrelay token` minting what the verifier accepts.
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "../support/jwk_keys.hpp"
#include "posrelay/fanout/protocol.hpp"
#include "posrelay/fanout/token_command.hpp"
#include "posrelay/fanout/token_verifier.hpp"

namespace {

using namespace posrelay::fanout;
using posrelay::test::b64;
using posrelay::test::jwk_of;
using posrelay::test::oct_jwk;
using posrelay::test::pem_of;
using posrelay::test::pkey;
using o = token_outcome;

constexpr std::int64_t now = 1'800'000'000;
const std::string secret32 = "0123456789abcdef0123456789abcdef";
const std::string other32 = "fedcba9876543210fedcba9876543210";

// ---- check_times ------------------------------------------------------------------------

TEST(TokenTimes, Table) {
    const token_policy p{3600, 60, "posrelay", true};
    const token_policy no_max{0, 60, "posrelay", true};
    struct row {
        token_times t;
        token_policy policy;
        token_outcome want;
    };
    const std::vector<row> rows = {
        {{now + 100, now, std::nullopt}, p, o::ok},
        {{now + 100, std::nullopt, std::nullopt}, p, o::malformed},  // iat required
        {{std::nullopt, now, std::nullopt}, p, o::missing_exp},
        {{std::nullopt, now, std::nullopt}, no_max, o::ok},
        {{now + 3600, now, std::nullopt}, p, o::ok},              // exactly the max TTL
        {{now + 3601, now, std::nullopt}, p, o::ttl_too_long},    // one second over
        {{now + 86400 * 365, now, std::nullopt}, no_max, o::ok},  // max-ttl 0: unbounded
        {{now - 1, now - 100, std::nullopt}, p, o::ok},           // expired 1 s ago, skew 60
        {{now - 59, now - 100, std::nullopt}, p, o::ok},          // exp + skew > now
        {{now - 60, now - 100, std::nullopt}, p, o::expired},     // exp + skew == now
        {{now - 61, now - 100, std::nullopt}, p, o::expired},
        {{now + 100, now + 60, std::nullopt}, p, o::ok},  // iat ahead within skew
        {{now + 100, now + 61, std::nullopt}, p, o::not_yet_valid},
        {{now + 100, now, now + 60}, p, o::ok},  // nbf within skew
        {{now + 100, now, now + 61}, p, o::not_yet_valid},
        {{now - 10, now, std::nullopt}, p, o::malformed},  // exp before iat
    };
    for (std::size_t i = 0; i < rows.size(); ++i)
        EXPECT_EQ(check_times(rows[i].t, rows[i].policy, now), rows[i].want) << "row " << i;
    const token_policy no_skew{3600, 0, "", true};
    EXPECT_EQ(check_times({now, now - 10, std::nullopt}, no_skew, now), o::expired);
    EXPECT_EQ(check_times({now + 1, now - 10, std::nullopt}, no_skew, now), o::ok);
}

TEST(TokenNames, AlgorithmsAndLabels) {
    EXPECT_EQ(kind_of_alg("HS256"), token_kind::hs256);
    EXPECT_EQ(kind_of_alg("EdDSA"), token_kind::eddsa);
    EXPECT_EQ(kind_of_alg("ES256"), token_kind::es256);
    for (const auto* bad : {"none", "None", "hs256", "HS512", "RS256", "PS256", "ES384", ""})
        EXPECT_FALSE(kind_of_alg(bad)) << bad;
    EXPECT_EQ(to_string(token_outcome::ok), "ok");
    EXPECT_EQ(to_string(token_outcome::unknown_kid), "unknown_kid");
    EXPECT_EQ(to_string(token_outcome::wrong_terminal), "wrong_terminal");
    EXPECT_EQ(to_string(token_kind::es256), "es256");
    EXPECT_EQ(to_string(errc::token_expired), "token_expired");
}

TEST(Base64Url, RoundTripAndRejects) {
    for (const std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\x00"})
        EXPECT_EQ(base64url_decode(base64url_encode(s)), s);
    EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
    EXPECT_FALSE(base64url_decode("Zm9v="));   // padding
    EXPECT_FALSE(base64url_decode("Zm+v"));    // base64, not base64url
    EXPECT_FALSE(base64url_decode("Z"));       // no length decodes to 1 char mod 4
    EXPECT_FALSE(base64url_decode("Zm9vYh"));  // non-zero leftover bits
    EXPECT_FALSE(base64url_decode("Zm 9"));
}

// ---- keys for the tests -----------------------------------------------------------------

struct fixture {
    pkey ed{EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")};
    pkey ec{EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")};
    token_verifier v;
    fixture() {
        v.keys = parse_jwks(R"({"keys":[)" + oct_jwk("k2", other32) + "," + jwk_of(ed.get(), "ed") +
                            "," + jwk_of(ec.get(), "ec") + "]}");
        v.keys.push_back(token_key{"default", token_kind::hs256, posrelay::secret(secret32), {}});
        v.v1_secret = posrelay::secret(secret32);
    }
};

mint_request req(std::string kid, std::int64_t ttl = 600) {
    return {"T-1",        "S-1",          now - 10,   now - 10 + ttl,
            std::nullopt, std::move(kid), "posrelay", false};
}

// header.payload.signature from raw JSON parts, HS256-signed with `key`.
std::string hs256_raw(const std::string& header, const std::string& payload,
                      const std::string& key) {
    const std::string input = base64url_encode(header) + "." + base64url_encode(payload);
    unsigned char mac[32];
    std::size_t n = 0;
    EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(),
              reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, sizeof mac,
              &n);
    return input + "." + b64(mac, n);
}

token_outcome outcome(const token_verifier& v, const std::string& token,
                      std::string_view terminal = "T-1", std::string_view store = "S-1") {
    return check_token(v, terminal, store, token, now).outcome;
}

// ---- check_token ------------------------------------------------------------------------

TEST(TokenCheck, EveryKindVerifies) {
    fixture f;
    auto r = check_token(f.v, "T-1", "S-1", mint_jwt_hs256(secret32, req("default")), now);
    EXPECT_EQ(r.outcome, o::ok);
    EXPECT_EQ(r.claims.kind, token_kind::hs256);
    EXPECT_EQ(r.claims.kid, "default");
    EXPECT_EQ(r.claims.issued_at, now - 10);
    EXPECT_EQ(r.claims.expires_at, now + 590);
    EXPECT_FALSE(r.claims.observe);
    EXPECT_EQ(outcome(f.v, mint_jwt_hs256(other32, req("k2"))), o::ok);
    r = check_token(f.v, "T-1", "S-1", mint_jwt_pem(pem_of(f.ed.get()), req("ed")), now);
    EXPECT_EQ(r.outcome, o::ok);
    EXPECT_EQ(r.claims.kind, token_kind::eddsa);
    r = check_token(f.v, "T-1", "S-1", mint_jwt_pem(pem_of(f.ec.get()), req("ec")), now);
    EXPECT_EQ(r.outcome, o::ok);
    EXPECT_EQ(r.claims.kind, token_kind::es256);
    auto obs = req("default");
    obs.observe = true;
    r = check_token(f.v, "T-1", "S-1", mint_jwt_hs256(secret32, obs), now);
    EXPECT_EQ(r.outcome, o::ok);
    EXPECT_TRUE(r.claims.observe);
    // v1 tokens while accepted
    r = check_token(f.v, "T-1", "S-1", mint_token(secret32, "T-1", "S-1"), now);
    EXPECT_EQ(r.outcome, o::ok);
    EXPECT_EQ(r.claims.kind, token_kind::v1);
    EXPECT_EQ(r.claims.issued_at, 0);
}

TEST(TokenCheck, Refusals) {
    fixture f;
    const auto good = mint_jwt_hs256(secret32, req("default"));
    EXPECT_EQ(outcome(f.v, good, "T-2"), o::wrong_terminal);
    EXPECT_EQ(outcome(f.v, good, "T-1", "S-2"), o::wrong_terminal);
    EXPECT_EQ(outcome(f.v, mint_jwt_hs256(other32, req("default"))), o::bad_signature);
    EXPECT_EQ(outcome(f.v, mint_jwt_hs256(secret32, req("nope"))), o::unknown_kid);
    // No kid: several HS256 keys could match.
    EXPECT_EQ(outcome(f.v, mint_jwt_hs256(secret32, req(""))), o::unknown_kid);
    // No kid and one key of the kind: that key.
    EXPECT_EQ(outcome(f.v, mint_jwt_pem(pem_of(f.ed.get()), req(""))), o::ok);
    auto aud = req("default");
    aud.audience = "someone-else";
    EXPECT_EQ(outcome(f.v, mint_jwt_hs256(secret32, aud)), o::wrong_audience);
    aud.audience = "";
    EXPECT_EQ(outcome(f.v, mint_jwt_hs256(secret32, aud)), o::wrong_audience);
    auto no_aud_check = f.v;
    no_aud_check.policy.audience = "";
    EXPECT_EQ(outcome(no_aud_check, mint_jwt_hs256(secret32, aud)), o::ok);
    EXPECT_EQ(outcome(f.v, mint_jwt_hs256(secret32, req("default", 86400 * 31))), o::ttl_too_long);
    auto old = req("default");
    old.iat = now - 1000;
    old.exp = now - 500;
    EXPECT_EQ(outcome(f.v, mint_jwt_hs256(secret32, old)), o::expired);
    auto later = req("default");
    later.nbf = now + 600;
    EXPECT_EQ(outcome(f.v, mint_jwt_hs256(secret32, later)), o::not_yet_valid);
    auto no_exp = req("default");
    no_exp.exp = 0;
    EXPECT_EQ(outcome(f.v, mint_jwt_hs256(secret32, no_exp)), o::missing_exp);
    auto v1_off = f.v;
    v1_off.policy.accept_v1 = false;
    EXPECT_EQ(outcome(v1_off, mint_token(secret32, "T-1", "S-1")), o::v1_disabled);
    EXPECT_EQ(outcome(f.v, mint_token(other32, "T-1", "S-1")), o::bad_signature);
}

TEST(TokenCheck, AlgNoneAndAlgorithmConfusion) {
    fixture f;
    const std::string body = claims_json(req("default"));
    // alg none, with or without a signature part.
    const std::string none =
        base64url_encode(R"({"alg":"none","kid":"default"})") + "." + base64url_encode(body) + ".";
    EXPECT_EQ(outcome(f.v, none), o::malformed);  // empty signature part
    EXPECT_EQ(outcome(f.v, none + "AAAA"), o::bad_alg);
    EXPECT_EQ(outcome(f.v, hs256_raw(R"({"alg":"HS512","kid":"default"})", body, secret32)),
              o::bad_alg);
    // HS256 "signed" with the Ed25519 public key's bytes as the MAC key, under the EdDSA kid.
    unsigned char x[32];
    std::size_t n = sizeof x;
    EVP_PKEY_get_raw_public_key(f.ed.get(), x, &n);
    const std::string pub(reinterpret_cast<const char*>(x), n);
    EXPECT_EQ(outcome(f.v, hs256_raw(R"({"alg":"HS256","kid":"ed"})", body, pub)), o::bad_alg);
    EXPECT_EQ(outcome(f.v, hs256_raw(R"({"alg":"HS256","kid":"ec"})", body, pub)), o::bad_alg);
    // An EdDSA or ES256 token naming the oct key's kid.
    EXPECT_EQ(outcome(f.v, mint_jwt_pem(pem_of(f.ed.get()), req("default"))), o::bad_alg);
    EXPECT_EQ(outcome(f.v, mint_jwt_pem(pem_of(f.ec.get()), req("k2"))), o::bad_alg);
    // ES256 signed by the right kind of key, under the other EC... the Ed25519 kid.
    EXPECT_EQ(outcome(f.v, mint_jwt_pem(pem_of(f.ec.get()), req("ed"))), o::bad_alg);
    // The right kind, another key: bad signature.
    pkey other{EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")};
    EXPECT_EQ(outcome(f.v, mint_jwt_pem(pem_of(other.get()), req("ed"))), o::bad_signature);
}

TEST(TokenCheck, MalformedAndOversize) {
    fixture f;
    const auto good = mint_jwt_hs256(secret32, req("default"));
    const auto dot1 = good.find('.');
    const auto dot2 = good.rfind('.');
    const std::string h = good.substr(0, dot1);
    const std::string p = good.substr(dot1 + 1, dot2 - dot1 - 1);
    const std::string s = good.substr(dot2 + 1);
    const std::string body = claims_json(req("default"));
    const std::vector<std::string> bad = {
        "",
        ".",
        "..",
        "a.b",
        h + "." + p,
        h + "." + p + "." + s + ".x",
        "." + p + "." + s,
        h + ".." + s,
        h + "=." + p + "." + s,
        h + "." + p + "." + s + "=",
        h + "." + p + "." + s.substr(1) + "+",
        base64url_encode("not json") + "." + p + "." + s,
        base64url_encode("[1]") + "." + p + "." + s,
        base64url_encode(R"({"kid":"default"})") + "." + p + "." + s,  // no alg
        base64url_encode(R"({"alg":"HS256","alg":"HS256","kid":"default"})") + "." + p + "." + s,
        base64url_encode(R"({"alg":"HS256","kid":"default","crit":["x"]})") + "." + p + "." + s,
        base64url_encode(R"({"alg":"HS256","kid":"default","typ":"JOSE+JSON"})") + "." + p + "." +
            s,
        base64url_encode(R"({"alg":"HS256","kid":")" + std::string(65, 'k') + "\"}") + "." + p +
            "." + s,
    };
    for (std::size_t i = 0; i < bad.size(); ++i)
        EXPECT_EQ(outcome(f.v, bad[i]), o::malformed) << i << ": " << bad[i];
    // A signed but malformed claim set.
    const std::string hdr = R"({"alg":"HS256","kid":"default"})";
    for (const std::string& claims : std::vector<std::string>{
             std::string("not json"), std::string(R"({"terminal_id":"T-1"})"),
             std::string(R"({"terminal_id":"T-1","store_id":"S-1","exp":"soon","iat":1})"),
             R"({"terminal_id":"T-1","store_id":"S-1","store_id":"S-1","iat":)" +
                 std::to_string(now) + "}",
             R"({"terminal_id":"T-1","store_id":"S-1","iat":1,"iat":2,"exp":3})",
             R"({"terminal_id":"T 1","store_id":"S-1","iat":1})",
             R"({"terminal_id":"T-1","store_id":"S-1","iat":-5,"exp":1})",
             R"({"terminal_id":"T-1","store_id":"S-1","iat":1e300,"exp":1})",
             R"({"terminal_id":"T-1","store_id":"S-1","iat":1,"exp":2,"observe":"yes"})",
             R"({"terminal_id":"T-1","store_id":"S-1","iat":1,"exp":2,"aud":[1]})"}) {
        EXPECT_EQ(outcome(f.v, hs256_raw(hdr, claims, secret32)), o::malformed) << claims;
    }
    // aud as an array naming posrelay among others.
    const auto arr = R"({"terminal_id":"T-1","store_id":"S-1","iat":)" + std::to_string(now) +
                     R"(,"exp":)" + std::to_string(now + 60) + R"(,"aud":["x","posrelay"]})";
    EXPECT_EQ(outcome(f.v, hs256_raw(hdr, arr, secret32)), o::ok);
    // Oversize: refused before any parsing.
    EXPECT_EQ(outcome(f.v, good + std::string(max_jwt_bytes, 'A')), o::malformed);
    EXPECT_EQ(outcome(f.v, std::string(max_jwt_bytes + 1, 'A')), o::malformed);
    // A tampered payload: bad signature.
    auto tampered = good;
    tampered[dot1 + 3] = tampered[dot1 + 3] == 'A' ? 'B' : 'A';
    EXPECT_EQ(outcome(f.v, tampered), o::bad_signature);
}

TEST(TokenCheck, KidRotation) {
    const auto v_old = [] {
        token_verifier v;
        v.keys = parse_jwks(R"({"keys":[)" + oct_jwk("k1", secret32) + "]}");
        return v;
    }();
    const auto v_both = [] {
        token_verifier v;
        v.keys = parse_jwks(R"({"keys":[)" + oct_jwk("k1", secret32) + "," +
                            oct_jwk("k2", other32) + "]}");
        return v;
    }();
    const auto v_new = [] {
        token_verifier v;
        v.keys = parse_jwks(R"({"keys":[)" + oct_jwk("k2", other32) + "]}");
        return v;
    }();
    const auto t1 = mint_jwt_hs256(secret32, req("k1"));
    const auto t2 = mint_jwt_hs256(other32, req("k2"));
    EXPECT_EQ(outcome(v_old, t1), o::ok);
    EXPECT_EQ(outcome(v_old, t2), o::unknown_kid);
    EXPECT_EQ(outcome(v_both, t1), o::ok);
    EXPECT_EQ(outcome(v_both, t2), o::ok);
    EXPECT_EQ(outcome(v_new, t1), o::unknown_kid);
    EXPECT_EQ(outcome(v_new, t2), o::ok);
    // A verifier with no key at all verifies nothing.
    EXPECT_EQ(outcome(token_verifier{}, t1), o::unknown_kid);
    EXPECT_EQ(outcome(token_verifier{}, mint_token(secret32, "T-1", "S-1")), o::bad_signature);
}

// ---- JWK sets ---------------------------------------------------------------------------

TEST(Jwks, Refusals) {
    pkey ed{EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")};
    const auto ed_jwk = jwk_of(ed.get(), "ed");
    const std::vector<std::pair<std::string, std::string>> bad = {
        {"[]", "not a JWK set"},
        {R"({"keys":{}})", "not a JWK set"},
        {R"({"keys":[1]})", "not an object"},
        {R"({"keys":[{"kty":"oct","k":"AAAA"}]})", "kid"},
        {R"({"keys":[)" + oct_jwk("a", "short") + "]}", "at least 32 bytes"},
        {R"({"keys":[)" + oct_jwk("a", secret32) + "," + oct_jwk("a", other32) + "]}",
         "appears twice"},
        {R"({"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"}]})", "kty must be"},
        {R"({"keys":[{"kty":"OKP","crv":"X25519","kid":"x","x":"AAAA"}]})", "kty must be"},
        {R"({"keys":[{"kty":"oct","kid":"a","alg":"ES256","k":")" + base64url_encode(secret32) +
             "\"}]}",
         "does not fit"},
        {R"({"keys":[{"kty":"oct","kid":"a","use":"enc","k":")" + base64url_encode(secret32) +
             "\"}]}",
         "use must be"},
        {ed_jwk.substr(0, ed_jwk.size() - 1) + R"(,"d":"AAAA"})", "private key"},
        {R"({"keys":[{"kty":"OKP","crv":"Ed25519","kid":"e","x":"AAAA"}]})", "not a valid"},
        {R"({"keys":[{"kty":"EC","crv":"P-256","kid":"c","x":")" + base64url_encode(secret32) +
             R"(","y":")" + base64url_encode(secret32) + "\"}]}",
         "not a valid"},  // not on the curve
    };
    for (const auto& [text, why] : bad) {
        const std::string json = text.starts_with("{\"kty\"") ? R"({"keys":[)" + text + "]}" : text;
        try {
            (void)parse_jwks(json);
            ADD_FAILURE() << "accepted: " << json;
        } catch (const std::invalid_argument& e) {
            EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
            EXPECT_EQ(std::string(e.what()).find(base64url_encode(secret32)), std::string::npos);
        }
    }
    EXPECT_THROW((void)parse_jwks(std::string(max_jwks_bytes + 1, ' ')), std::invalid_argument);
}

TEST(Jwks, AlgMemberThatFitsIsAccepted) {
    const auto keys =
        parse_jwks(R"({"keys":[{"kty":"oct","kid":"a","alg":"HS256","use":"sig","k":")" +
                   base64url_encode(secret32) + "\"}]}");
    ASSERT_EQ(keys.size(), 1U);
    EXPECT_EQ(keys[0].kind, token_kind::hs256);
    EXPECT_EQ(keys[0].mac_key.view(), secret32);
}

// ---- posrelay token ---------------------------------------------------------------------

std::pair<int, std::string> token_cli(std::vector<std::string> args, std::vector<std::string> env) {
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<const char*> envp;
    for (const auto& e : env)
        envp.push_back(e.c_str());
    envp.push_back(nullptr);
    testing::internal::CaptureStdout();
    testing::internal::CaptureStderr();
    const int status = run_token_command(static_cast<int>(args.size()), argv.data(), envp.data());
    (void)testing::internal::GetCapturedStderr();
    auto out = testing::internal::GetCapturedStdout();
    if (!out.empty() && out.back() == '\n') out.pop_back();
    return {status, out};
}

TEST(TokenCommandJwt, MintsWhatTheVerifierAccepts) {
    fixture f;
    const auto real_now = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
    const auto [status, token] =
        token_cli({"posrelay", "token", "T-1", "S-1", "--ttl", "120", "--observe"},
                  {"POSRELAY_TERMINAL_SECRET=" + secret32});
    ASSERT_EQ(status, 0);
    const auto r = check_token(f.v, "T-1", "S-1", token, real_now);
    EXPECT_EQ(r.outcome, o::ok);
    EXPECT_EQ(r.claims.kid, "default");
    EXPECT_TRUE(r.claims.observe);
    EXPECT_NEAR(static_cast<double>(r.claims.expires_at - r.claims.issued_at), 120, 0);
    EXPECT_EQ(check_token(f.v, "T-1", "S-1", token, real_now + 200).outcome, o::expired);
    // --kid needs a key file; an unknown option is a usage error.
    EXPECT_EQ(token_cli({"posrelay", "token", "T-1", "S-1", "--kid", "k2"},
                        {"POSRELAY_TERMINAL_SECRET=" + secret32})
                  .first,
              2);
    EXPECT_EQ(token_cli({"posrelay", "token", "T-1", "S-1", "--ttl", "-1"},
                        {"POSRELAY_TERMINAL_SECRET=" + secret32})
                  .first,
              2);
}

}  // namespace
