// posrelay: the Midtrans notification relay. Parses configuration, then runs the service.
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <exception>
#include <iostream>
#include <string_view>

#include "posrelay/app.hpp"
#include "posrelay/config.hpp"
#include "posrelay/fanout/token_command.hpp"
#include "posrelay/log.hpp"
#include "posrelay/version.hpp"

extern char** environ;

namespace {
// Raise the soft descriptor limit to the hard one: every connection is a descriptor
// (what nginx's worker_rlimit_nofile and Redis's maxclients adjustment do).
void raise_fd_limit() {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)::setrlimit(RLIMIT_NOFILE, &rl);
    }
}
}  // namespace

int main(int argc, char** argv) {
    // A subcommand that needs no configuration: mint a terminal token.
    if (argc >= 2 && std::string_view{argv[1]} == "token") {
        return posrelay::fanout::run_token_command(argc, argv, environ);
    }
    posrelay::cli_result cli;
    try {
        cli = posrelay::load_config(argc, argv, environ);
    } catch (const posrelay::config_error& e) {
        std::fprintf(stderr, "posrelay: %s\n(see posrelay --help)\n", e.what());
        return 2;
    }
    if (cli.action == posrelay::cli_action::help) {
        std::cout << cli.help_text;
        return 0;
    }
    if (cli.action == posrelay::cli_action::version) {
        std::cout << "posrelay " << POSRELAY_VERSION << " (" << posrelay::git_commit() << ")\n";
        return 0;
    }
    posrelay::log::set_level(cli.cfg.log_level);
    for (const auto& name : cli.cfg.unknown_env) {
        posrelay::log::line(posrelay::log::level::warn, "unknown environment variable ignored")
            .str("name", name);
    }
    std::signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    try {
        posrelay::app service(std::move(cli.cfg));
        return service.run();
    } catch (const std::exception& e) {
        posrelay::log::line(posrelay::log::level::error, "fatal").str("error", e.what());
        return 1;
    }
}
