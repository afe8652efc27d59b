// posrelay: the Midtrans notification relay. Parses configuration, then runs the service.
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "posrelay/app.hpp"
#include "posrelay/config.hpp"
#include "posrelay/fanout/gateway.hpp"
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

// argv or environ as it was at start: a reload loads the configuration from the same flags
// and environment (and reads the files again).
struct saved_strings {
    std::vector<std::string> strings;
    std::vector<const char*> pointers;  // NULL-terminated
    saved_strings(const char* const* begin, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i)
            strings.emplace_back(begin[i]);
        for (const auto& s : strings)
            pointers.push_back(s.c_str());
        pointers.push_back(nullptr);
    }
};

std::size_t count(const char* const* p) {
    std::size_t n = 0;
    while (p != nullptr && p[n] != nullptr)
        ++n;
    return n;
}

// posrelay check-config [OPTIONS]: the configuration loaded as a start would load it,
// printed as a config file with each option's source; secrets redacted.
int check_config(int argc, char** argv) {
    // argv without "check-config": the options as `posrelay [OPTIONS]` would see them.
    std::vector<const char*> args{argv[0]};
    for (int i = 2; i < argc; ++i)
        args.push_back(argv[i]);
    try {
        const auto cli = posrelay::load_config(static_cast<int>(args.size()), args.data(), environ);
        if (cli.action == posrelay::cli_action::help) {
            std::cout << cli.help_text;
            return 0;
        }
        posrelay::fanout::gateway::check_tls(cli.cfg);
        (void)posrelay::fanout::make_token_verifier(cli.cfg);  // the JWK set file, read and checked
        std::cout << posrelay::render_effective(cli.cfg);
        for (const auto& name : cli.cfg.unknown_env)
            std::cerr << "posrelay: warning: unknown environment variable ignored: " << name
                      << '\n';
        std::cerr << "posrelay: the configuration is valid\n";
        return 0;
    } catch (const posrelay::config_error& e) {
        std::fprintf(stderr, "posrelay: invalid configuration: %s\n", e.what());
        return 2;
    }
}
}  // namespace

int main(int argc, char** argv) {
    // A subcommand that needs no configuration: mint a terminal token.
    if (argc >= 2 && std::string_view{argv[1]} == "token") {
        return posrelay::fanout::run_token_command(argc, argv, environ);
    }
    if (argc >= 2 && std::string_view{argv[1]} == "check-config") return check_config(argc, argv);
    posrelay::cli_result cli;
    try {
        cli = posrelay::load_config(argc, argv, environ);
    } catch (const posrelay::config_error& e) {
        std::fprintf(stderr, "posrelay: %s\n(see posrelay --help)\n", e.what());
        return 2;
    }
    if (cli.action == posrelay::cli_action::help ||
        cli.action == posrelay::cli_action::example_config) {
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
    // SIGHUP is a reload request: ignored until app::run() catches it (while the service is
    // being built), never fatal.
    std::signal(SIGHUP, SIG_IGN);
    raise_fd_limit();
    const saved_strings args(argv, static_cast<std::size_t>(argc));
    const saved_strings env(environ, count(environ));
    auto load = [&] {
        return posrelay::load_config(argc, args.pointers.data(), env.pointers.data()).cfg;
    };
    try {
        posrelay::app service(std::move(cli.cfg));
        return service.run(load);
    } catch (const std::exception& e) {
        posrelay::log::line(posrelay::log::level::error, "fatal").str("error", e.what());
        return 1;
    }
}
