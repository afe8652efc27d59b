// `posrelay token TERMINAL_ID STORE_ID [--ttl ...]`: the operator's way to mint terminal tokens
// (JWTs; v1 with --v1). The secret comes from where the server reads it — POSRELAY_TERMINAL_SECRET,
// the file named by POSRELAY_TERMINAL_SECRET_FILE, or $CREDENTIALS_DIRECTORY/terminal-secret —
// never from the command line, so it never shows in ps or shell history.
#include "posrelay/fanout/token_command.hpp"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>

#include "posrelay/fanout/protocol.hpp"
#include "posrelay/fanout/token_verifier.hpp"

namespace posrelay::fanout {

namespace {

constexpr const char* usage =
    "usage: posrelay token TERMINAL_ID STORE_ID [--ttl SECONDS] [--kid KID] [--observe]\n"
    "           [--audience TEXT|off] [--keys JWKS_FILE] [--private-key PEM_FILE] [--v1]\n"
    "Prints a terminal token (a JWT; proto-docs/terminal-protocol.md §11):\n"
    "  HS256 with the terminal secret (kid \"default\"), read as the server reads it:\n"
    "  POSRELAY_TERMINAL_SECRET, POSRELAY_TERMINAL_SECRET_FILE (a trailing newline is\n"
    "  ignored) or $CREDENTIALS_DIRECTORY/terminal-secret; never from the command line.\n"
    "  --kid KID      another HS256 key: the oct key KID of the JWK set named by --keys (or\n"
    "                 POSRELAY_TERMINAL_TOKEN_KEYS)\n"
    "  --private-key  sign EdDSA (Ed25519) or ES256 (P-256) with this PEM private key\n"
    "  --ttl SECONDS  exp = now + SECONDS (default 86400); 0: no exp\n"
    "  --observe      an observer's token (receives events, never acks or replaces)\n"
    "  --audience     aud (default: POSRELAY_TERMINAL_TOKEN_AUDIENCE, else posrelay); off: none\n"
    "  --v1           a v1 token instead (no expiry; for servers before JWTs)\n"
    "Ids: 1-64 of A-Z a-z 0-9 . _ -\n";

// Below this many bytes the secret is guessable offline from one token.
constexpr std::size_t recommended_secret_bytes = 32;

std::string_view find_env(const char* const* envp, std::string_view name) {
    if (envp == nullptr) return {};
    for (; *envp != nullptr; ++envp) {
        const std::string_view entry{*envp};
        if (entry.size() > name.size() && entry.substr(0, name.size()) == name &&
            entry[name.size()] == '=') {
            return entry.substr(name.size() + 1);
        }
    }
    return {};
}

constexpr std::string_view secret_file_env = "POSRELAY_TERMINAL_SECRET_FILE";
constexpr std::size_t max_secret_file_bytes = 64 * 1024;

std::string_view trim_space(std::string_view s) {
    while (!s.empty() && std::string_view{" \t\r\n"}.find(s.back()) != std::string_view::npos)
        s.remove_suffix(1);
    while (!s.empty() && std::string_view{" \t\r\n"}.find(s.front()) != std::string_view::npos)
        s.remove_prefix(1);
    return s;
}

struct secret_source {
    std::string value;  // empty: not found
    std::string error;  // set: refuse
};

std::optional<std::string> read_small_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::string text(max_secret_file_bytes + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (text.size() > max_secret_file_bytes) return std::nullopt;
    return text;
}

// The server's order: the variable, else its file, else the systemd credential; the variable
// and the file together are refused, as by the server.
secret_source find_secret(const char* const* envp) {
    const auto env = std::string{find_env(envp, terminal_secret_env)};
    const auto file = std::string{find_env(envp, secret_file_env)};
    if (!env.empty() && !file.empty())
        return {{},
                std::string{terminal_secret_env} + " and " + std::string{secret_file_env} +
                    " are mutually exclusive: set only one"};
    if (!env.empty()) return {env, {}};
    std::string path = file;
    std::string named = std::string{secret_file_env};
    if (path.empty()) {
        const auto dir = find_env(envp, "CREDENTIALS_DIRECTORY");
        if (dir.empty()) return {};
        path = std::string{dir} + "/terminal-secret";
        named = "$CREDENTIALS_DIRECTORY/terminal-secret";
        if (!std::ifstream(path)) return {};
    }
    const auto text = read_small_file(path);
    if (!text) return {{}, named + " '" + path + "' cannot be read (or is over 64 KiB)"};
    const auto secret = trim_space(*text);
    if (secret.empty()) return {{}, named + " '" + path + "' is empty"};
    return {std::string{secret}, {}};
}

}  // namespace

namespace {

struct token_args {
    std::string terminal_id;
    std::string store_id;
    std::int64_t ttl = 86400;
    std::string kid;
    std::string audience = "posrelay";
    std::string keys_file;
    std::string private_key_file;
    bool observe = false;
    bool v1 = false;
};

// Parses argv[2..]; "" on success, else the usage error.
std::string parse_args(int argc, char** argv, const char* const* envp, token_args& a) {
    if (argc < 4) return "TERMINAL_ID and STORE_ID are required";
    a.terminal_id = argv[2];
    a.store_id = argv[3];
    if (!valid_id(a.terminal_id)) return "TERMINAL_ID must be 1-64 of A-Z a-z 0-9 . _ -";
    if (!valid_id(a.store_id)) return "STORE_ID must be 1-64 of A-Z a-z 0-9 . _ -";
    a.keys_file = std::string{find_env(envp, "POSRELAY_TERMINAL_TOKEN_KEYS")};
    if (const auto aud = find_env(envp, "POSRELAY_TERMINAL_TOKEN_AUDIENCE"); !aud.empty())
        a.audience = aud == "off" ? std::string{} : std::string{aud};
    for (int i = 4; i < argc; ++i) {
        const std::string_view arg{argv[i]};
        if (arg == "--observe") {
            a.observe = true;
            continue;
        }
        if (arg == "--v1") {
            a.v1 = true;
            continue;
        }
        if (i + 1 >= argc) return "unknown option or missing value: " + std::string{arg};
        const std::string value{argv[++i]};
        if (arg == "--ttl") {
            const auto r = std::from_chars(value.data(), value.data() + value.size(), a.ttl);
            if (r.ec != std::errc{} || r.ptr != value.data() + value.size() || a.ttl < 0 ||
                a.ttl > 10LL * 366 * 86400)
                return "--ttl must be 0 to 316224000 seconds";
        } else if (arg == "--kid") {
            if (!valid_id(value)) return "--kid must be 1-64 of A-Z a-z 0-9 . _ -";
            a.kid = value;
        } else if (arg == "--audience") {
            a.audience = value == "off" ? std::string{} : value;
        } else if (arg == "--keys") {
            a.keys_file = value;
        } else if (arg == "--private-key") {
            a.private_key_file = value;
        } else {
            return "unknown option: " + std::string{arg};
        }
    }
    return {};
}

// The HS256 key of `kid` in the JWK set file; "" with `error` set when there is none.
std::string key_from_file(const std::string& file, const std::string& kid, std::string& error) {
    const auto text = read_small_file(file);
    if (!text) {
        error = "the key file '" + file + "' cannot be read";
        return {};
    }
    try {
        for (const auto& k : parse_jwks(*text)) {
            if (k.kid == kid && k.kind == token_kind::hs256) return std::string{k.mac_key.view()};
        }
        error = "no oct (HS256) key with kid " + kid + " in '" + file + "'";
    } catch (const std::invalid_argument& e) {
        error = "the key file '" + file + "': " + e.what();
    }
    return {};
}

// The token the arguments ask for; "" with `error` set on failure.
std::string mint(const token_args& a, const char* const* envp, std::string& error) {
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    mint_request r{a.terminal_id, a.store_id, now,        a.ttl == 0 ? 0 : now + a.ttl,
                   std::nullopt,  a.kid,      a.audience, a.observe};
    if (!a.private_key_file.empty()) {
        const auto pem = read_small_file(a.private_key_file);
        if (!pem) {
            error = "--private-key '" + a.private_key_file + "' cannot be read";
            return {};
        }
        return mint_jwt_pem(*pem, r);
    }
    if (!a.kid.empty() && a.kid != default_kid) {
        if (a.keys_file.empty()) {
            error = "--kid " + a.kid + " needs --keys (or POSRELAY_TERMINAL_TOKEN_KEYS)";
            return {};
        }
        const auto key = key_from_file(a.keys_file, a.kid, error);
        return key.empty() ? std::string{} : mint_jwt_hs256(key, r);
    }
    const auto found = find_secret(envp);
    if (!found.error.empty() || found.value.empty()) {
        error = !found.error.empty()
                    ? found.error
                    : std::string{terminal_secret_env} + " is not set or empty (nor " +
                          std::string{secret_file_env} +
                          ", nor $CREDENTIALS_DIRECTORY/terminal-secret)";
        return {};
    }
    if (found.value.size() < recommended_secret_bytes) {
        std::fprintf(stderr, "posrelay token: warning: %s is shorter than %zu bytes\n",
                     terminal_secret_env, recommended_secret_bytes);
    }
    if (a.v1) return mint_token(found.value, a.terminal_id, a.store_id);
    r.kid = std::string{default_kid};
    return mint_jwt_hs256(found.value, r);
}

}  // namespace

int run_token_command(int argc, char** argv, const char* const* envp) {
    if (argc == 3 && (std::string_view{argv[2]} == "--help" || std::string_view{argv[2]} == "-h")) {
        std::fputs(usage, stdout);
        return 0;
    }
    token_args a;
    if (const auto bad = parse_args(argc, argv, envp, a); !bad.empty()) {
        std::fprintf(stderr, "posrelay token: %s\n", bad.c_str());
        std::fputs(usage, stderr);
        return 2;
    }
    std::string error;
    std::string line;
    try {
        line = mint(a, envp, error);
    } catch (const std::exception& e) {
        error = e.what();
    }
    if (line.empty()) {
        std::fprintf(stderr, "posrelay token: %s\n", error.c_str());
        return 2;
    }
    line += '\n';
    if (std::fwrite(line.data(), 1, line.size(), stdout) != line.size() ||
        std::fflush(stdout) != 0) {
        std::fputs("posrelay token: cannot write to stdout\n", stderr);
        return 1;
    }
    return 0;
}

}  // namespace posrelay::fanout
