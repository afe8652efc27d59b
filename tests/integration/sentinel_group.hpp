// Test support: Redis Sentinel on loopback — a primary, its replicas and three sentinels
// (quorum 2, a master is down after 500 ms), real redis-server processes in temporary
// directories, stopped at the end (also on failure). Every wait has a deadline.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "process.hpp"
#include "redis_server.hpp"

namespace posrelay::test {

class sentinel_group {
public:
    static constexpr const char* master_name = "posrelay-test";

    sentinel_group() = default;
    ~sentinel_group();
    sentinel_group(const sentinel_group&) = delete;
    sentinel_group& operator=(const sentinel_group&) = delete;

    // Starts the primary, `replicas` replicas (waits until they are in sync) and `sentinels`
    // sentinels (waits until each knows the master and every replica).
    void start(int replicas = 1, int sentinels = 3);

    // redis-sentinel://127.0.0.1:P1,.../posrelay-test
    [[nodiscard]] std::string url() const;
    // The servers: [0] the first primary, then the replicas, in start order.
    [[nodiscard]] redis_server& node(std::size_t i) { return *nodes_.at(i); }
    // The node that is master now as the sentinel `via` sees it (its port), 0 when unknown.
    [[nodiscard]] std::uint16_t master_port(std::size_t via = 0) const;
    // The index in node() of the server listening on `port`.
    [[nodiscard]] std::size_t index_of(std::uint16_t port) const;
    // Sends `sig` to the sentinel `i` (SIGSTOP: silent but connected, as behind a partition).
    void signal_sentinel(std::size_t i, int sig) { sentinels_.at(i)->signal(sig); }
    // Runs redis-cli against the sentinel `i` (--raw, trailing newlines removed).
    [[nodiscard]] std::string sentinel_cli(std::size_t i, std::vector<std::string> args) const;
    // Waits until the sentinels name a master other than `old_port`, reachable and answering
    // ROLE master; its port (0 on timeout).
    [[nodiscard]] std::uint16_t wait_for_new_master(std::uint16_t old_port,
                                                    std::chrono::milliseconds limit,
                                                    std::size_t via = 0);
    // Waits until node(i) is a replica in sync that its master counts online.
    [[nodiscard]] bool wait_replica_up(std::size_t i, std::chrono::milliseconds limit);

private:
    std::string dir_;
    std::vector<std::unique_ptr<redis_server>> nodes_;
    std::vector<std::uint16_t> sentinel_ports_;
    std::vector<std::unique_ptr<child_process>> sentinels_;
};

}  // namespace posrelay::test
