// `posrelay token TERMINAL_ID STORE_ID`: mints a terminal's token with the secret from
// POSRELAY_TERMINAL_SECRET (never from argv) and prints it on stdout.
#pragma once

namespace posrelay::fanout {

// The environment variable holding the terminal token secret.
inline constexpr const char* terminal_secret_env = "POSRELAY_TERMINAL_SECRET";

// Runs the subcommand; argv[1] is "token". `envp` is NULL-terminated like environ.
// Returns the exit status: 0 with the token and '\n' on stdout; 2 for a usage error, a
// missing secret or an invalid id (message on stderr); 1 when stdout cannot be written.
[[nodiscard]] int run_token_command(int argc, char** argv, const char* const* envp);

}  // namespace posrelay::fanout
