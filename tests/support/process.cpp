// Child-process control for integration tests: spawn, capture output, wait with deadlines.
#include "process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>

extern char** environ;

namespace posrelay::test {

child_process::child_process(std::string exe, std::vector<std::string> args,
                             std::map<std::string, std::string> env) {
    std::vector<std::string> envs;
    for (char** e = environ; *e != nullptr; ++e) {
        std::string_view kv(*e);
        if (kv.starts_with("POSRELAY_")) continue;
        const auto name = kv.substr(0, kv.find('='));
        if (env.contains(std::string(name))) continue;
        envs.emplace_back(kv);
    }
    for (const auto& [k, v] : env)
        envs.push_back(k + "=" + v);

    std::vector<char*> argv;
    argv.push_back(exe.data());
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : envs)
        envp.push_back(e.data());
    envp.push_back(nullptr);

    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    const int rc = ::posix_spawn(&pid_, exe.c_str(), &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[1]);
    if (rc != 0) {
        ::close(fds[0]);
        throw std::runtime_error("posix_spawn " + exe + ": " + std::strerror(rc));
    }
    pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    reader_ = std::thread([this, fd = fds[0]] { reader_loop(fd); });
}

child_process::~child_process() {
    if (!exit_code_) {
        ::kill(pid_, SIGKILL);
        (void)wait_exit(std::chrono::seconds(10));
    }
    if (reader_.joinable()) reader_.join();
    if (pidfd_ >= 0) ::close(pidfd_);
}

void child_process::reader_loop(int fd) {
    char buf[8192];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        std::lock_guard lock(mutex_);
        if (n <= 0) {
            eof_ = true;
            cv_.notify_all();
            break;
        }
        output_.append(buf, static_cast<std::size_t>(n));
        cv_.notify_all();
    }
    ::close(fd);
}

std::string child_process::wait_for_line(std::string_view needle,
                                         std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    std::string found;
    const bool ok = cv_.wait_for(lock, timeout, [&] {
        std::size_t start = 0;
        while (start < output_.size()) {
            std::size_t end = output_.find('\n', start);
            if (end == std::string::npos) break;  // only complete lines
            std::string_view line(output_.data() + start, end - start);
            if (line.find(needle) != std::string_view::npos) {
                found = std::string(line);
                return true;
            }
            start = end + 1;
        }
        return eof_;
    });
    if (!ok || found.empty()) {
        throw std::runtime_error("no line with '" + std::string(needle) + "' (" +
                                 (ok ? "process exited" : "timeout") + "); output:\n" + output_);
    }
    return found;
}

void child_process::signal(int sig) {
    ::kill(pid_, sig);
}

std::optional<int> child_process::wait_exit(std::chrono::milliseconds timeout) {
    if (exit_code_) return exit_code_;
    pollfd p{pidfd_, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (r <= 0) return std::nullopt;
    int status = 0;
    if (::waitpid(pid_, &status, 0) != pid_) return std::nullopt;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return exit_code_;
}

std::string child_process::full_output(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return eof_; });
    return output_;
}

std::string child_process::output() const {
    std::lock_guard lock(mutex_);
    return output_;
}

run_result run_command(std::string exe, std::vector<std::string> args,
                       std::map<std::string, std::string> env, std::chrono::milliseconds timeout) {
    child_process p(std::move(exe), std::move(args), std::move(env));
    run_result r;
    auto code = p.wait_exit(timeout);
    if (!code) throw std::runtime_error("command did not finish in time");
    r.code = *code;
    r.output = p.full_output(std::chrono::seconds(5));
    return r;
}

void add_default_listen(std::vector<std::string>& args) {
    bool has_listen = false;
    for (const auto& a : args)
        has_listen = has_listen || a.starts_with("--listen");
    if (!has_listen) {
        args.emplace_back("--listen");
        args.emplace_back("127.0.0.1:0");
    }
}

posrelay_process start_posrelay(std::vector<std::string> args,
                                std::map<std::string, std::string> env) {
    add_default_listen(args);
    bool admin = false;  // --admin-listen=X or --admin-listen X, X not "off"
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i].starts_with("--admin-listen="))
            admin = args[i] != "--admin-listen=off";
        else if (args[i] == "--admin-listen" && i + 1 < args.size())
            admin = args[i + 1] != "off";
    }
    posrelay_process p;
    // POSRELAY_TEST_BINARY runs the tests against another build (e.g. the parent commit's, to
    // see a regression test fail before its fix).
    const char* other = std::getenv("POSRELAY_TEST_BINARY");
    p.proc = std::make_unique<child_process>(
        other != nullptr && *other != '\0' ? other : POSRELAY_BINARY, std::move(args),
        std::move(env));
    const std::string line = p.proc->wait_for_line(R"("msg":"listening","what":"http")");
    p.port = static_cast<unsigned short>(json_int(line, "port"));
    p.admin_port = admin
                       ? static_cast<unsigned short>(json_int(
                             p.proc->wait_for_line(R"("msg":"listening","what":"admin")"), "port"))
                       : p.port;
    return p;
}

long json_int(std::string_view line, std::string_view key) {
    const std::string pat = "\"" + std::string(key) + "\":";
    const auto pos = line.find(pat);
    if (pos == std::string_view::npos)
        throw std::runtime_error("no " + pat + " in " + std::string(line));
    return std::stol(std::string(line.substr(pos + pat.size())));
}

void raise_fd_limit() {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)::setrlimit(RLIMIT_NOFILE, &rl);
    }
}

}  // namespace posrelay::test
