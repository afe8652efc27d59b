// `posrelay token TERMINAL_ID STORE_ID`: the operator's way to mint terminal tokens. The
// secret comes from where the server reads it — POSRELAY_TERMINAL_SECRET, the file named by
// POSRELAY_TERMINAL_SECRET_FILE, or $CREDENTIALS_DIRECTORY/terminal-secret — never from the
// command line, so it never shows in ps or shell history.
#include "posrelay/fanout/token_command.hpp"

#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>

#include "posrelay/fanout/protocol.hpp"

namespace posrelay::fanout {

namespace {

constexpr const char* usage =
    "usage: POSRELAY_TERMINAL_SECRET=... posrelay token TERMINAL_ID STORE_ID\n"
    "   or: POSRELAY_TERMINAL_SECRET_FILE=PATH posrelay token TERMINAL_ID STORE_ID\n"
    "Prints the token a terminal sends in its hello (see proto-docs/terminal-protocol.md).\n"
    "The secret is read as the server reads it: the variable, the file (a trailing newline\n"
    "is ignored), or $CREDENTIALS_DIRECTORY/terminal-secret.\n"
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

int run_token_command(int argc, char** argv, const char* const* envp) {
    if (argc == 3 && (std::string_view{argv[2]} == "--help" || std::string_view{argv[2]} == "-h")) {
        std::fputs(usage, stdout);
        return 0;
    }
    if (argc != 4) {
        std::fputs(usage, stderr);
        return 2;
    }
    const std::string_view terminal_id{argv[2]};
    const std::string_view store_id{argv[3]};
    if (!valid_id(terminal_id)) {
        std::fputs("posrelay token: TERMINAL_ID must be 1-64 of A-Z a-z 0-9 . _ -\n", stderr);
        return 2;
    }
    if (!valid_id(store_id)) {
        std::fputs("posrelay token: STORE_ID must be 1-64 of A-Z a-z 0-9 . _ -\n", stderr);
        return 2;
    }
    const auto found = find_secret(envp);
    if (!found.error.empty()) {
        std::fprintf(stderr, "posrelay token: %s\n", found.error.c_str());
        return 2;
    }
    const std::string_view secret = found.value;
    if (secret.empty()) {
        std::fprintf(stderr,
                     "posrelay token: %s is not set or empty (nor %s, nor "
                     "$CREDENTIALS_DIRECTORY/terminal-secret)\n",
                     terminal_secret_env, std::string{secret_file_env}.c_str());
        return 2;
    }
    if (secret.size() < recommended_secret_bytes) {
        std::fprintf(stderr, "posrelay token: warning: %s is shorter than %zu bytes\n",
                     terminal_secret_env, recommended_secret_bytes);
    }
    const std::string line = mint_token(secret, terminal_id, store_id) + '\n';
    if (std::fwrite(line.data(), 1, line.size(), stdout) != line.size() ||
        std::fflush(stdout) != 0) {
        std::fputs("posrelay token: cannot write to stdout\n", stderr);
        return 1;
    }
    return 0;
}

}  // namespace posrelay::fanout
