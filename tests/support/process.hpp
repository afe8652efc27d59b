// Test support: runs a real posrelay (or other) binary as a child process, captures its
// stderr, and waits on log lines and exit with deadlines (no sleeps).
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace posrelay::test {

class child_process {
public:
    // Starts `exe args...` with the parent's environment minus every POSRELAY_* variable,
    // plus `env`. stdout and stderr are captured (together).
    child_process(std::string exe, std::vector<std::string> args,
                  std::map<std::string, std::string> env = {});
    ~child_process();  // SIGKILL and reap if still running
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    [[nodiscard]] pid_t pid() const noexcept { return pid_; }

    // Waits until the output has a line containing `needle`; returns that line.
    // Throws std::runtime_error on timeout or if the process exits first.
    std::string wait_for_line(std::string_view needle,
                              std::chrono::milliseconds timeout = std::chrono::seconds(20));

    void signal(int sig);
    // Waits for exit; returns the exit code (128+signal when killed), nullopt on timeout.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);

    // Everything printed so far.
    [[nodiscard]] std::string output() const;
    // Everything printed, once the output pipe closed (after exit), or what there is at timeout.
    [[nodiscard]] std::string full_output(std::chrono::milliseconds timeout);

private:
    void reader_loop(int fd);

    pid_t pid_ = -1;
    int pidfd_ = -1;
    std::optional<int> exit_code_;
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::string output_;
    bool eof_ = false;
    std::thread reader_;
};

// Runs a command to completion (bounded by `timeout`); returns exit code and output.
struct run_result {
    int code = -1;
    std::string output;
};
run_result run_command(std::string exe, std::vector<std::string> args,
                       std::map<std::string, std::string> env = {},
                       std::chrono::milliseconds timeout = std::chrono::seconds(20));

// Appends --listen 127.0.0.1:0 unless `args` has a --listen already.
void add_default_listen(std::vector<std::string>& args);

// Starts posrelay with `args` (plus --listen 127.0.0.1:0 unless given) and waits for its
// "listening" line; the HTTP port it bound, and the port serving /metrics, /readyz and the
// operator API: the admin listener's with --admin-listen, else the same.
struct posrelay_process {
    std::unique_ptr<child_process> proc;
    unsigned short port = 0;
    unsigned short admin_port = 0;
};
posrelay_process start_posrelay(std::vector<std::string> args,
                                std::map<std::string, std::string> env = {});

// Extracts the integer value of "key":N from a JSON log line.
[[nodiscard]] long json_int(std::string_view line, std::string_view key);

// Raises the soft descriptor limit to the hard one (tests open many sockets).
void raise_fd_limit();

// Polls `done` every 10 ms until it holds or `limit` passes; its last answer.
template <class Pred>
bool wait_until(Pred done, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        ::poll(nullptr, 0, 10);
    }
    return true;
}

}  // namespace posrelay::test
