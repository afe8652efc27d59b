// A real redis-server for integration tests: temporary directory, ephemeral port, unix
// socket; readiness by connecting and PING with deadlines, no fixed sleeps.
#include "redis_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string_view>

namespace posrelay::test {

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

int remaining_ms(steady::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
    return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Connects (non-blocking, bounded), sends PING and waits for any reply line: "+PONG", or
// "-NOAUTH" when a password is required. True when the server answered.
bool ping(const sockaddr* addr, socklen_t len, int family) {
    const int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    const auto deadline = steady::now() + 1s;
    bool ok = false;
    do {
        if (::connect(fd, addr, len) != 0) {
            if (errno != EINPROGRESS) break;
            pollfd p{fd, POLLOUT, 0};
            if (::poll(&p, 1, remaining_ms(deadline)) != 1) break;
            int err = 0;
            socklen_t elen = sizeof err;
            if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0) break;
        }
        constexpr std::string_view cmd = "PING\r\n";
        if (::send(fd, cmd.data(), cmd.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(cmd.size()))
            break;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, remaining_ms(deadline)) != 1) break;
        char c = 0;
        ok = ::recv(fd, &c, 1, 0) == 1 && (c == '+' || c == '-');
    } while (false);
    ::close(fd);
    return ok;
}

std::string percent_encode(std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
            out += ch;
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

}  // namespace

std::uint16_t pick_free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        ::close(fd);
        throw std::runtime_error("bind port 0: " + std::string(std::strerror(errno)));
    }
    ::close(fd);
    return ntohs(a.sin_port);
}

redis_server::~redis_server() {
    try {
        stop();
    } catch (...) {  // a destructor must not throw; the child is SIGKILLed by its owner
    }
    if (!dir_.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
}

void redis_server::start(redis_server_options o) {
    if (running()) throw std::logic_error("redis_server already running");
    opts_ = std::move(o);
    if (dir_.empty()) {
        std::string templ = "/tmp/posrelay-redis-XXXXXX";  // short: sun_path holds 108 bytes
        if (::mkdtemp(templ.data()) == nullptr) {
            throw std::runtime_error("mkdtemp: " + std::string(std::strerror(errno)));
        }
        dir_ = templ;
    }
    unix_path_ = opts_.unix_socket ? dir_ + "/redis.sock" : std::string();
    // The port was free a moment ago; someone may take it first: then pick another.
    for (int attempt = 0; attempt < 5; ++attempt) {
        port_ = opts_.tcp ? pick_free_port() : 0;
        if (launch()) return;
    }
    throw std::runtime_error("redis-server did not start; output:\n" + last_output_);
}

void redis_server::restart() {
    if (running()) stop();
    for (int attempt = 0; attempt < 5; ++attempt) {
        if (launch()) return;
    }
    throw std::runtime_error("redis-server did not restart; output:\n" + last_output_);
}

bool redis_server::launch() {
    const char* exe = ::getenv("REDIS_SERVER");
    std::vector<std::string> args = {"--port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--dir",
                                     dir_,
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--daemonize",
                                     "no",
                                     "--enable-debug-command",
                                     "local"};  // tests use DEBUG SLEEP
    if (!unix_path_.empty()) {
        args.insert(args.end(), {"--unixsocket", unix_path_, "--unixsocketperm", "700"});
    }
    if (!opts_.password.empty()) args.insert(args.end(), {"--requirepass", opts_.password});
    args.insert(args.end(), opts_.extra_args.begin(), opts_.extra_args.end());
    proc_ = std::make_unique<child_process>(exe != nullptr ? exe : "/usr/bin/redis-server",
                                            std::move(args));
    const auto deadline = steady::now() + 10s;
    while (steady::now() < deadline) {
        if (answers()) return true;
        // Paces the retries and notices at once if the server exited (port in use...).
        if (proc_->wait_exit(20ms)) break;
    }
    last_output_ = proc_->full_output(2s);
    proc_.reset();
    return false;
}

bool redis_server::answers() const {
    if (!unix_path_.empty()) {
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::memcpy(a.sun_path, unix_path_.c_str(), unix_path_.size() + 1);
        if (!ping(reinterpret_cast<const sockaddr*>(&a), sizeof a, AF_UNIX)) return false;
    }
    if (opts_.tcp) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(port_);
        if (!ping(reinterpret_cast<const sockaddr*>(&a), sizeof a, AF_INET)) return false;
    }
    return true;
}

void redis_server::kill() {
    if (!proc_) return;
    proc_->signal(SIGKILL);
    (void)proc_->wait_exit(10s);
    last_output_ = proc_->full_output(2s);
    proc_.reset();
}

void redis_server::stop() {
    if (!proc_) return;
    proc_->signal(SIGTERM);
    if (!proc_->wait_exit(10s)) {
        proc_->signal(SIGKILL);
        (void)proc_->wait_exit(10s);
    }
    last_output_ = proc_->full_output(2s);
    proc_.reset();
}

std::string redis_server::url() const {
    std::string u = "redis://";
    if (!opts_.password.empty()) u += ":" + percent_encode(opts_.password) + "@";
    return u + "127.0.0.1:" + std::to_string(port_);
}

std::string redis_server::unix_url() const {
    return "unix://" + unix_path_;
}

std::string redis_server::output() const {
    return proc_ ? proc_->output() : last_output_;
}

std::string redis_server::cli(std::vector<std::string> args) const {
    std::vector<std::string> full = {"-s", unix_path_, "--raw"};
    full.insert(full.end(), args.begin(), args.end());
    std::map<std::string, std::string> env;
    if (!opts_.password.empty()) env["REDISCLI_AUTH"] = opts_.password;  // not on the command line
    auto res = run_command("/usr/bin/redis-cli", full, env);
    while (!res.output.empty() && res.output.back() == '\n')
        res.output.pop_back();
    return res.output;
}

}  // namespace posrelay::test
