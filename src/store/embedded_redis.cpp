// The embedded redis-server child: spawn, readiness check, supervision, shutdown.
#include "posrelay/store/embedded_redis.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "posrelay/log.hpp"
#include "posrelay/store/redis_info.hpp"

namespace posrelay::store {

namespace {

int pidfd_open(pid_t pid) {
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

// A unix socket connected to `path`, sends and receives bounded by `timeout`; -1 on failure.
int connect_unix(const std::string& path, timeval timeout) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// The text of INFO (the default sections, memory and persistence among them: every Redis
// version takes the command without arguments), read on a blocking connection with 1 s
// timeouts (the supervising thread, or start-up); nullopt on any failure. At most 256 KiB.
std::optional<std::string> query_info(const std::string& path) {
    constexpr std::size_t max_bytes = 256 * 1024;
    const int fd = connect_unix(path, timeval{1, 0});
    if (fd < 0) return std::nullopt;
    static constexpr char cmd[] = "*1\r\n$4\r\nINFO\r\n";
    std::optional<std::string> out;
    if (::send(fd, cmd, sizeof cmd - 1, MSG_NOSIGNAL) == sizeof cmd - 1) {
        std::string buf;
        char chunk[16 * 1024];
        for (;;) {
            const auto reply = read_info_reply(buf, max_bytes);
            if (reply.st == info_reply::state::complete) out = std::string(reply.body);
            if (reply.st != info_reply::state::incomplete) break;
            const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            buf.append(chunk, static_cast<std::size_t>(n));
        }
    }
    ::close(fd);
    return out;
}

// One command over a blocking connection, each step bounded by `timeout` (start-up or the
// supervising thread, never an io thread); the first line of its reply ("+OK", "-ERR ..."), or
// nullopt when Redis could not be reached or did not answer.
std::optional<std::string> simple_command(const std::string& path, std::string_view resp,
                                          timeval timeout) {
    const int fd = connect_unix(path, timeout);
    if (fd < 0) return std::nullopt;
    std::optional<std::string> line;
    if (::send(fd, resp.data(), resp.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(resp.size())) {
        std::string buf;
        char chunk[512];
        while (buf.find("\r\n") == std::string::npos && buf.size() < 4096) {
            const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            buf.append(chunk, static_cast<std::size_t>(n));
        }
        if (const auto end = buf.find("\r\n"); end != std::string::npos) line = buf.substr(0, end);
    }
    ::close(fd);
    return line;
}

// One PING (start-up only). True on +PONG; -LOADING (AOF being read) and connection errors are
// false.
bool ping(const std::string& path) {
    return simple_command(path, "*1\r\n$4\r\nPING\r\n", timeval{0, 500'000}) == "+PONG";
}

metrics::counter& rewrites_counter(metrics::registry& reg, const char* reason) {
    return reg.add_counter("posrelay_embedded_redis_aof_rewrites_total",
                           "AOF rewrites posrelay asked the embedded Redis for (scheduled mode), "
                           "by reason: quiet (due, and the file grew slowly), size (grown by "
                           "the bound, whatever the load).",
                           {{"reason", reason}});
}

}  // namespace

embedded_redis::embedded_redis(embedded_redis_options opts, metrics::registry& reg)
    : opts_(std::move(opts)),
      restarts_(reg.add_counter("posrelay_embedded_redis_restarts_total",
                                "Times the embedded redis-server died and was started again.")),
      memory_bytes_(reg.add_gauge("posrelay_embedded_redis_memory_bytes",
                                  "Memory the embedded Redis uses for its data (INFO "
                                  "used_memory), sampled every 5 s.")),
      aof_bytes_(reg.add_gauge("posrelay_embedded_redis_aof_bytes",
                               "Size of the embedded Redis's append-only file (INFO "
                               "aof_current_size), sampled every 5 s.")),
      aof_rewriting_(reg.add_gauge("posrelay_embedded_redis_aof_rewrite_in_progress",
                                   "1 while the embedded Redis rewrites its append-only file "
                                   "(INFO aof_rewrite_in_progress), sampled every 5 s.")),
      rewrites_quiet_(rewrites_counter(reg, "quiet")),
      rewrites_size_(rewrites_counter(reg, "size")),
      rewrite_failures_(reg.add_counter(
          "posrelay_embedded_redis_aof_rewrite_refusals_total",
          "BGREWRITEAOF calls the embedded Redis refused or did not answer (scheduled mode); "
          "retried after a minute.")) {
    dir_ = std::filesystem::absolute(opts_.data_dir).lexically_normal().string();
    if (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
}

embedded_redis::~embedded_redis() {
    stop();
}

std::string embedded_redis::socket_path() const {
    return dir_ + "/redis.sock";
}

redis_options embedded_redis::connection_options() const {
    redis_options o;
    o.unix_path = socket_path();
    return o;
}

void embedded_redis::start() {
    std::error_code ec;
    std::filesystem::create_directories(opts_.data_dir, ec);
    if (ec)
        throw std::runtime_error("cannot create --data-dir '" + opts_.data_dir +
                                 "': " + ec.message());
    ::chmod(dir_.c_str(), 0700);
    // A unix socket path is limited to ~107 bytes.
    if (socket_path().size() >= sizeof(sockaddr_un{}.sun_path)) {
        throw std::runtime_error("--data-dir path too long for a unix socket: " + dir_);
    }
    lock_fd_ = ::open((dir_ + "/posrelay.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd_ < 0 || ::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
        throw std::runtime_error("--data-dir '" + dir_ +
                                 "' is in use by another posrelay (lock file posrelay.lock)");
    }
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
    pid_ = spawn();
    wait_ready(opts_.ready_timeout);
    log::line(log::level::info, "embedded redis ready")
        .str("socket", socket_path())
        .num("pid", pid_.load())
        .str("appendfsync", opts_.appendfsync);
    sample_info();
    supervisor_ = std::thread([this] { supervise(); });
}

pid_t embedded_redis::spawn() {
    // Everything the child needs is built before fork: after it, only async-signal-safe calls.
    std::vector<std::string> args = {
        opts_.server,
        "--port",
        "0",  // no TCP: the unix socket only
        "--unixsocket",
        socket_path(),
        "--unixsocketperm",
        "700",
        "--dir",
        dir_,
        "--appendonly",
        "yes",
        "--appendfsync",
        opts_.appendfsync,
        "--save",
        "",
        "--daemonize",
        "no",
        "--logfile",
        dir_ + "/redis.log",
        "--maxmemory-policy",
        "noeviction",
    };
    // Scheduled mode: no rewrite of Redis's own; posrelay asks for them (schedule_rewrite).
    if (opts_.aof_rewrite_scheduled) {
        args.insert(args.end(), {"--auto-aof-rewrite-percentage", "0"});
    }
    // redis-server reads its config file (first argument) and then the options after it,
    // which override the file: the socket, directory and persistence above always hold.
    if (!opts_.config_file.empty()) args.insert(args.begin() + 1, opts_.config_file);
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
        // If posrelay dies without stopping us (SIGKILL), the kernel stops redis too.
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (::getppid() == 1) ::_exit(1);  // posrelay died before prctl took effect
        ::setpgid(0, 0);  // Ctrl-C in a terminal goes to posrelay, which stops redis in order
        ::execvp(argv[0], argv.data());
        ::_exit(127);
    }
    return pid;
}

void embedded_redis::wait_ready(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const int pidfd = pidfd_open(pid_);
    while (std::chrono::steady_clock::now() < deadline) {
        if (ping(socket_path())) {
            if (pidfd >= 0) ::close(pidfd);
            return;
        }
        // Wait a little, but wake at once if the child exits (bad binary, bad config).
        pollfd p{pidfd, POLLIN, 0};
        if (pidfd >= 0 && ::poll(&p, 1, 50) > 0) {
            ::close(pidfd);
            int status = 0;
            ::waitpid(pid_, &status, 0);
            pid_ = -1;
            throw std::runtime_error("embedded redis-server ('" + opts_.server +
                                     "') exited at start (status " + std::to_string(status) +
                                     "); see " + dir_ + "/redis.log");
        }
    }
    if (pidfd >= 0) ::close(pidfd);
    throw std::runtime_error(
        "embedded redis-server did not answer PING within the start-up timeout; see " + dir_ +
        "/redis.log");
}

void embedded_redis::supervise() {
    for (;;) {
        // Wait for the child to exit, or for stop().
        const pid_t pid = pid_.load();
        const int pidfd = pidfd_open(pid);
        wait_for_exit(pidfd);
        if (pidfd >= 0) ::close(pidfd);
        {
            std::lock_guard lock(mutex_);
            if (stopping_) return;
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
        pid_ = -1;
        restarts_.inc();
        log::line(log::level::error, "embedded redis exited: restarting")
            .num("pid", pid)
            .num("status", status);
        // Start it again: capped exponential backoff until it answers PING, or stop().
        for (auto backoff = std::chrono::milliseconds(200);;
             backoff = std::min(backoff * 2, std::chrono::milliseconds(10'000))) {
            pollfd w{wake_fd_, POLLIN, 0};
            if (::poll(&w, 1, static_cast<int>(backoff.count())) > 0) return;
            try {
                pid_ = spawn();
                wait_ready(opts_.ready_timeout);
                log::line(log::level::info, "embedded redis restarted").num("pid", pid_.load());
                break;
            } catch (const std::exception& e) {
                log::line(log::level::error, "embedded redis restart failed")
                    .str("error", e.what());
                if (const pid_t stuck = pid_.exchange(-1); stuck > 0) {
                    ::kill(stuck, SIGKILL);
                    ::waitpid(stuck, nullptr, 0);
                }
            }
        }
    }
}

void embedded_redis::wait_for_exit(int pidfd) {
    pollfd fds[2] = {{pidfd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    for (;;) {
        const int n = ::poll(fds, 2, static_cast<int>(opts_.info_interval.count()));
        if (n < 0 && errno == EINTR) continue;
        if (n != 0) return;
        sample_info();
    }
}

// One INFO over a fresh connection to the unix socket, each step bounded by 1 s; the gauges
// keep their last values when it fails (redis-server busy, restarting, or gone).
void embedded_redis::sample_info() {
    const auto body = query_info(socket_path());
    if (!body) return;
    const redis_info info = parse_redis_info(*body);
    if (info.used_memory) memory_bytes_.set(*info.used_memory);
    if (info.aof_current_size) aof_bytes_.set(*info.aof_current_size);
    if (info.aof_rewrite_in_progress) aof_rewriting_.set(*info.aof_rewrite_in_progress);
    if (opts_.aof_rewrite_scheduled && info.aof_current_size && info.aof_base_size) {
        schedule_rewrite(aof_sample{.current_size = *info.aof_current_size,
                                    .base_size = *info.aof_base_size,
                                    .rewriting = info.aof_rewrite_in_progress.value_or(0) != 0,
                                    .at = std::chrono::steady_clock::now()});
    }
}

void embedded_redis::schedule_rewrite(const aof_sample& now) {
    std::optional<std::chrono::steady_clock::duration> since;
    if (last_asked_) since = now.at - *last_asked_;
    const auto reason = decide_aof_rewrite(last_sample_, now, since, opts_.aof_policy);
    last_sample_ = now;
    if (!reason) return;
    last_asked_ = now.at;
    static constexpr std::string_view cmd = "*1\r\n$12\r\nBGREWRITEAOF\r\n";
    const auto reply = simple_command(socket_path(), cmd, timeval{1, 0});
    const bool started = reply && reply->starts_with("+");
    const char* why = *reason == aof_rewrite_reason::quiet ? "quiet" : "size";
    if (started) (*reason == aof_rewrite_reason::quiet ? rewrites_quiet_ : rewrites_size_).inc();
    if (!started) rewrite_failures_.inc();
    log::line(started ? log::level::info : log::level::warn,
              started ? "embedded redis aof rewrite started" : "embedded redis aof rewrite refused")
        .str("reason", why)
        .num("aof_bytes", now.current_size)
        .num("aof_base_bytes", now.base_size)
        .str("reply", reply.value_or("no answer"));
}

void embedded_redis::stop() {
    {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
        stopping_ = true;
    }
    if (wake_fd_ >= 0) {
        const std::uint64_t one = 1;
        (void)!::write(wake_fd_, &one, sizeof one);
    }
    if (supervisor_.joinable()) supervisor_.join();
    const pid_t pid = pid_.exchange(-1);
    if (pid > 0) {
        const int pidfd = pidfd_open(pid);
        ::kill(pid, SIGTERM);
        pollfd p{pidfd, POLLIN, 0};
        if (pidfd < 0 || ::poll(&p, 1, 10'000) <= 0) {
            log::line(log::level::warn, "embedded redis did not stop in 10 s: killing")
                .num("pid", pid);
            ::kill(pid, SIGKILL);
        }
        if (pidfd >= 0) ::close(pidfd);
        int status = 0;
        ::waitpid(pid, &status, 0);
        log::line(log::level::info, "embedded redis stopped").num("pid", pid);
    }
    if (wake_fd_ >= 0) ::close(wake_fd_);
    wake_fd_ = -1;
    if (lock_fd_ >= 0) ::close(lock_fd_);
    lock_fd_ = -1;
}

}  // namespace posrelay::store
