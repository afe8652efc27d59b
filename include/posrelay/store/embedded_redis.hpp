// The embedded Redis: with no --redis-url, posrelay runs its own redis-server as a child
// on a unix socket in its data directory, with AOF persistence, restarts it when it dies,
// samples its memory and AOF size for metrics, and stops it on shutdown.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "posrelay/metrics/registry.hpp"
#include "posrelay/store/aof_rewrite.hpp"
#include "posrelay/store/redis_connection.hpp"

namespace posrelay::store {

struct embedded_redis_options {
    std::string data_dir = "posrelay-data";
    std::string server = "redis-server";   // binary, PATH lookup
    std::string appendfsync = "everysec";  // always | everysec | no
    std::string config_file;  // a redis.conf loaded first (posrelay's own settings win); "" = none
    std::chrono::milliseconds ready_timeout{30'000};  // start-up, including loading the AOF
    // INFO is read this often for posrelay_embedded_redis_* (by the supervising thread).
    std::chrono::milliseconds info_interval{5'000};
    // true: Redis's own automatic AOF rewrites are off (auto-aof-rewrite-percentage 0) and
    // posrelay asks for one (BGREWRITEAOF) by aof_policy, at the INFO readings: when the file
    // is due and the load is quiet, or has grown by the policy's bound (aof_rewrite.hpp).
    // false: Redis's rule (auto-aof-rewrite-*, settable in config_file).
    bool aof_rewrite_scheduled = true;
    aof_rewrite_policy aof_policy{};
};

class embedded_redis {
public:
    embedded_redis(embedded_redis_options opts, metrics::registry& reg);
    ~embedded_redis();
    embedded_redis(const embedded_redis&) = delete;
    embedded_redis& operator=(const embedded_redis&) = delete;

    // Creates the data directory (mode 0700), takes its lock file (one posrelay per data
    // directory), starts redis-server, waits until it answers PING (bounded by
    // ready_timeout), then supervises it from a background thread: if it exits it is
    // started again with capped backoff; meanwhile it reads INFO every info_interval (a
    // blocking read on its own connection, bounded by 1 s, never on an io thread) into the
    // memory and AOF gauges. Throws std::runtime_error when it cannot start.
    void start();
    // Stops supervising, asks redis-server to shut down (SIGTERM: it writes its AOF and
    // exits), waits up to 10 s, then SIGKILL. Idempotent.
    void stop();

    [[nodiscard]] std::string socket_path() const;
    // Connection options for this server (unix socket, no password: the socket is 0700).
    [[nodiscard]] redis_options connection_options() const;
    [[nodiscard]] pid_t pid() const noexcept { return pid_.load(); }

private:
    pid_t spawn();
    void wait_ready(std::chrono::milliseconds timeout);
    void supervise();
    // Returns when `pidfd` signals the child's exit or stop() wakes the supervisor; reads
    // INFO every info_interval until then.
    void wait_for_exit(int pidfd);
    void sample_info();
    // Scheduled mode: asks for a rewrite when decide_aof_rewrite() says so (supervisor thread).
    void schedule_rewrite(const aof_sample& now);

    embedded_redis_options opts_;
    std::string dir_;  // absolute data dir
    int lock_fd_ = -1;
    std::atomic<pid_t> pid_{-1};
    std::thread supervisor_;
    std::mutex mutex_;
    std::condition_variable cv_;
    bool stopping_ = false;
    int wake_fd_ = -1;  // eventfd: wakes the supervisor on stop()
    metrics::counter& restarts_;
    metrics::gauge& memory_bytes_;
    metrics::gauge& aof_bytes_;
    metrics::gauge& aof_rewriting_;
    metrics::counter& rewrites_quiet_;  // rewrites posrelay asked for, by reason
    metrics::counter& rewrites_size_;
    metrics::counter& rewrite_failures_;
    std::optional<aof_sample> last_sample_;  // supervisor thread (and start(), before it runs)
    std::optional<std::chrono::steady_clock::time_point> last_asked_;
};

}  // namespace posrelay::store
