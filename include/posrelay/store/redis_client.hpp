// The Redis client of one io thread: what redis_store::local() returns. For redis:// and
// unix:// it is one pipelined redis_connection. For redis-cluster:// it holds one pipelined
// redis_connection per primary (made on the thread's executor) and routes each command by the
// slot of its key (cluster_slots.hpp): MOVED patches the slot map, asks for a refresh and
// sends the command again to the named node; ASK sends ASKING and the command to the named
// node, back to back; TRYAGAIN is retried after a short backoff. A command is sent 4 times at
// most; then the last reply is the caller's. A command for a slot whose primary is not
// connected fails fast with not_connected, the other slots keep working. The sharded pub/sub
// feed can find a key's primary with cluster_topology::node_for_key().
//
// The slot map is shared by the io threads (cluster_topology): read from CLUSTER SLOTS of a
// seed or known node at start, on MOVED, while some slot has no connected primary (every
// second) and every 30 s; never more than 10 times a second, never on a caller's path.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "posrelay/metrics/registry.hpp"
#include "posrelay/store/cluster_slots.hpp"
#include "posrelay/store/redis_connection.hpp"

namespace posrelay::store {

class redis_client;

// Metrics of a cluster client (one set per process).
struct cluster_metrics {
    explicit cluster_metrics(metrics::registry& reg);
    metrics::registry& reg;
    metrics::counter &moved, &ask;                  // posrelay_redis_cluster_redirects_total{kind}
    metrics::counter &refresh_ok, &refresh_failed;  // ..._slot_map_refreshes_total{result}
    metrics::counter &tryagain, &clusterdown, &crossslot;  // ..._cluster_errors_total{kind}
};

// The slot map shared by every io thread's client of one store, and its refresher (a
// coroutine on `ex`, which must be the executor of the first client added: it reads CLUSTER
// SLOTS on that client's connections when one is up, else on a control connection of its own
// to a known node or a seed).
class cluster_topology : public std::enable_shared_from_this<cluster_topology> {
public:
    // Runs on each shard connection's (re)connect, e.g. to load the scripts; nullptr: none.
    using connect_hook = std::function<redis_connection::on_connect_fn(redis_connection*)>;
    cluster_topology(boost::asio::any_io_executor ex, redis_options base, redis_metrics& rm,
                     cluster_metrics& cm, connect_hook hook);
    ~cluster_topology();

    // Starts the refresher (the first refresh at once); the clients added before are told of
    // every new map. Call add_client() first, start() once, stop() before destroying clients.
    void add_client(const std::shared_ptr<redis_client>& c);
    void start();
    void stop();

    // The current map (empty before the first refresh) and its version.
    [[nodiscard]] std::pair<std::shared_ptr<const cluster::slot_map>, std::uint64_t> snapshot()
        const;
    // Exports for other Redis users (the sharded pub/sub feed): the primary serving `key`'s
    // slot (nullopt when none is known), and a counter bumped on every change of the map
    // (poll it, or compare it with the value seen when subscribing).
    [[nodiscard]] std::optional<cluster::node_address> node_for_key(std::string_view key) const;
    [[nodiscard]] std::optional<cluster::node_address> node_for_slot(std::uint16_t slot) const;
    [[nodiscard]] std::uint64_t version() const noexcept { return version_.load(); }

    // Thread-safe, cheap, rate-limited by the refresher.
    void request_refresh();
    // A MOVED answer: `slot` is served by `node` now (patched at once when `node` is a known
    // primary), and the map is read again.
    void note_moved(std::uint16_t slot, const cluster::node_address& node);

    // The options of a connection to `node`: the URL's, at its address.
    [[nodiscard]] redis_options options_for(const cluster::node_address& node) const;
    [[nodiscard]] redis_metrics& connection_metrics() noexcept { return rm_; }
    [[nodiscard]] cluster_metrics& metrics() noexcept { return cm_; }
    [[nodiscard]] const connect_hook& hook() const noexcept { return hook_; }
    // The fewest slots any client has a connected primary for.
    [[nodiscard]] std::size_t slots_covered() const;

private:
    struct refresher;
    void publish(cluster::slot_map m);
    void register_shard_gauge(const std::string& name);

    boost::asio::any_io_executor ex_;
    redis_options base_;
    redis_metrics& rm_;
    cluster_metrics& cm_;
    connect_hook hook_;
    mutable std::mutex mu_;  // map_, clients_, gauges_
    std::shared_ptr<const cluster::slot_map> map_;
    std::vector<std::weak_ptr<redis_client>> clients_;
    std::vector<std::string> gauges_;  // shards with a connections-up gauge
    std::atomic<std::uint64_t> version_{0};
    std::shared_ptr<refresher> refresher_;
};

class redis_client : public std::enable_shared_from_this<redis_client> {
public:
    using result = std::pair<boost::system::error_code, redis_reply>;

    // One server: every command goes to `conn` (started by the owner).
    explicit redis_client(std::shared_ptr<redis_connection> conn);
    // A cluster: connections to the primaries `topo` names, made on `ex`.
    redis_client(boost::asio::any_io_executor ex, std::shared_ptr<cluster_topology> topo);
    ~redis_client();
    redis_client(const redis_client&) = delete;
    redis_client& operator=(const redis_client&) = delete;

    // As redis_connection::exec, routed by the command's key (command_route_key); a command
    // without one goes to any connected primary. Must be called on the client's io thread.
    // `args` must stay valid until the co_await ends (retries send it again): a temporary in
    // the co_await expression is fine.
    [[nodiscard]] boost::asio::awaitable<result> exec(redis_args args);
    [[nodiscard]] boost::asio::awaitable<result> exec(const std::vector<std::string>& args);
    // `args` on the primary of `route_key`'s slot, whatever the command (e.g. WAIT after a
    // commit of that key). One server: the same as exec(args).
    [[nodiscard]] boost::asio::awaitable<result> exec_at(std::string_view route_key,
                                                         redis_args args);

    // One server: its connection is up. A cluster: every slot has a connected primary.
    [[nodiscard]] bool connected() const;
    // The slots whose primary this client is connected to (one server: all or none).
    [[nodiscard]] std::size_t slots_covered() const;
    // Connections of this client to `shard` ("host:port") that are up (0 or 1).
    [[nodiscard]] int shard_up(std::string_view shard) const;
    [[nodiscard]] bool is_cluster() const noexcept { return topo_ != nullptr; }
    // The connection a command on `key` goes to: the one server's, or the connection to the
    // primary of key's slot (nullptr when the slot has no known owner). For commands that must
    // follow a write on the same connection (WAIT).
    [[nodiscard]] std::shared_ptr<redis_connection> connection_for(std::string_view key);
    // A connected connection to a primary of the map, nullptr when none (a cluster only).
    [[nodiscard]] std::shared_ptr<redis_connection> any_connected() const;

    // Brings the connections in line with the topology's map: sync() on the client's io
    // thread, sync_later() from any thread (posted to it).
    void sync();
    void sync_later();
    void stop();

private:
    boost::asio::awaitable<result> routed(std::optional<std::uint16_t> slot, redis_args args);
    boost::asio::awaitable<result> asking(std::shared_ptr<redis_connection> c, redis_args args);
    std::shared_ptr<redis_connection> for_slot(std::optional<std::uint16_t> slot);
    std::shared_ptr<redis_connection> to_node(const cluster::node_address& n);
    std::shared_ptr<redis_connection> make_connection(const cluster::node_address& n);

    std::shared_ptr<redis_connection> single_;
    boost::asio::any_io_executor ex_;
    std::shared_ptr<cluster_topology> topo_;
    mutable std::mutex mu_;  // the members below: read by connected() from other threads
    std::shared_ptr<const cluster::slot_map> map_;
    std::uint64_t version_ = 0;
    std::vector<std::shared_ptr<redis_connection>> by_node_;  // map_->nodes' connections
    std::map<std::string, std::shared_ptr<redis_connection>, std::less<>> conns_;  // by name
    bool stopped_ = false;
};

}  // namespace posrelay::store
