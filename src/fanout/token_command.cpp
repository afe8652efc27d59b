// `posrelay token TERMINAL_ID STORE_ID`: the operator's way to mint terminal tokens. The
// secret comes only from the environment, so it never shows in ps or shell history.
#include "posrelay/fanout/token_command.hpp"

#include <cstdio>
#include <string>
#include <string_view>

#include "posrelay/fanout/protocol.hpp"

namespace posrelay::fanout {

namespace {

constexpr const char* usage =
    "usage: POSRELAY_TERMINAL_SECRET=... posrelay token TERMINAL_ID STORE_ID\n"
    "Prints the token a terminal sends in its hello (see proto-docs/terminal-protocol.md).\n"
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
    const std::string_view secret = find_env(envp, terminal_secret_env);
    if (secret.empty()) {
        std::fprintf(stderr,
                     "posrelay token: %s is not set or empty (the secret is read only from the "
                     "environment)\n",
                     terminal_secret_env);
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
