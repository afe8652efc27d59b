// Test support: a real Redis Cluster of redis-server processes (redis_server.hpp) on loopback:
// N primaries and R replicas per primary, each in its own temporary directory, formed by
// `redis-cli --cluster create`, and waited for (bounded, no fixed sleeps) until every node
// reports cluster_state:ok. Everything is stopped by the destructor, also after a failure.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "redis_server.hpp"

namespace posrelay::test {

struct redis_cluster_options {
    int primaries = 3;
    int replicas = 0;  // per primary
    std::string password = {};
    int node_timeout_ms = 1'000;  // cluster-node-timeout: how soon a dead primary fails over
    // cluster-require-full-coverage: with false, the other primaries keep serving their slots
    // while one primary (without a replica) is down.
    bool require_full_coverage = false;
};

class redis_cluster {
public:
    redis_cluster() = default;
    ~redis_cluster();
    redis_cluster(const redis_cluster&) = delete;
    redis_cluster& operator=(const redis_cluster&) = delete;

    // Starts the nodes, forms the cluster (16384 slots spread over the primaries) and waits
    // until it is ok. Throws std::runtime_error with redis-cli's output on failure.
    void start(redis_cluster_options o = {});
    void stop();  // every node, SIGTERM

    [[nodiscard]] std::size_t size() const noexcept { return nodes_.size(); }
    [[nodiscard]] redis_server& node(std::size_t i) { return *nodes_.at(i); }
    // redis-cluster://[:password@]127.0.0.1:p0,127.0.0.1:p1,... (every node a seed).
    [[nodiscard]] std::string url() const;
    // redis-cli --raw against node i (authenticated), its output without trailing newlines.
    [[nodiscard]] std::string cli(std::size_t i, std::vector<std::string> args) const;
    [[nodiscard]] std::string node_id(std::size_t i) const;
    // The index of the node serving `slot` as a primary, as node `asked` sees it (-1: none).
    [[nodiscard]] int owner_of(std::uint16_t slot, std::size_t asked = 0) const;
    // True when every running node says cluster_state:ok and every replica's link to its
    // primary is up.
    [[nodiscard]] bool ok() const;
    // Waits (bounded) until ok(); throws with the nodes' CLUSTER INFO when it does not come.
    void wait_ok(std::chrono::milliseconds limit = std::chrono::seconds(30)) const;
    // Moves `slot` and its keys from node `from` to node `to` (both primaries): SETSLOT
    // IMPORTING/MIGRATING, MIGRATE of every key, SETSLOT NODE on every node.
    void move_slot(std::uint16_t slot, std::size_t from, std::size_t to);

private:
    redis_cluster_options opts_;
    std::vector<std::unique_ptr<redis_server>> nodes_;
};

}  // namespace posrelay::test
