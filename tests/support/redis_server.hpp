// Test support: a real redis-server in a fresh temporary directory, on an ephemeral TCP port
// and/or a unix socket, started and stopped by the test; readiness is checked by connecting.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "process.hpp"

namespace posrelay::test {

struct redis_server_options {
    std::string password;     // requirepass; empty: none
    bool tcp = true;          // listen on 127.0.0.1:<ephemeral port>
    bool unix_socket = true;  // listen on <tmpdir>/redis.sock
    std::vector<std::string> extra_args;
};

// One redis-server child (REDIS_SERVER or /usr/bin/redis-server) with `--save "" --appendonly
// no`: nothing persists. Every wait is bounded; failures throw std::runtime_error with the
// server's output.
class redis_server {
public:
    redis_server() = default;
    ~redis_server();  // stops the server and removes its directory
    redis_server(const redis_server&) = delete;
    redis_server& operator=(const redis_server&) = delete;

    // Starts it and waits until every configured listener answers PING.
    void start(redis_server_options o = {});
    void kill();     // SIGKILL and reap: a crash (the unix socket file is left behind)
    void stop();     // SIGTERM and reap (SIGKILL after 10 s)
    void restart();  // starts again on the same port and socket path, empty
    [[nodiscard]] bool running() const noexcept { return proc_ != nullptr; }

    [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
    [[nodiscard]] const std::string& unix_path() const noexcept { return unix_path_; }
    // redis://[:password@]127.0.0.1:port, the password percent-encoded.
    [[nodiscard]] std::string url() const;
    // unix:///path/to/redis.sock (the password, if any, is not part of it).
    [[nodiscard]] std::string unix_url() const;
    // The output of the running (or last) server.
    [[nodiscard]] std::string output() const;
    // Runs redis-cli (/usr/bin/redis-cli) against it over the unix socket, authenticated
    // when a password is set; its output (--raw) without trailing newlines.
    [[nodiscard]] std::string cli(std::vector<std::string> args) const;

private:
    [[nodiscard]] bool launch();  // false: the server exited (e.g. port taken)
    [[nodiscard]] bool answers() const;

    redis_server_options opts_;
    std::string dir_;
    std::string unix_path_;
    std::uint16_t port_ = 0;
    std::unique_ptr<child_process> proc_;
    std::string last_output_;
};

// A free TCP port on 127.0.0.1 (bound to port 0, then closed: may be taken again).
[[nodiscard]] std::uint16_t pick_free_port();

}  // namespace posrelay::test
