// Redis Sentinel (redis-sentinel:// URLs): the master is asked of the sentinels before every
// (re)connect and checked with ROLE; a subscriber connection to a sentinel follows
// +switch-master, and every connection then reconnects to the new master. The decisions are
// pure functions below; sentinel_discovery is the Asio part.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>

#include "posrelay/metrics/registry.hpp"
#include "posrelay/store/redis_connection.hpp"

namespace posrelay::store {

// The answer to SENTINEL get-master-addr-by-name: [ip, port]; nullopt for nil (the sentinel
// does not know the name), an error, or anything malformed.
[[nodiscard]] std::optional<redis_address> master_address(const redis_reply& r);
// True when a ROLE reply names a master (["master", offset, replicas]).
[[nodiscard]] bool is_master_role(const redis_reply& r) noexcept;
// The new master named by a +switch-master pub/sub message (["message", "+switch-master",
// "<name> <old-ip> <old-port> <new-ip> <new-port>"]) when it is about `master_name`.
[[nodiscard]] std::optional<redis_address> switched_master(const redis_reply& message,
                                                           std::string_view master_name);

// Finds the master named by redis-sentinel:// options (sentinels asked in order, the answer
// checked with ROLE on the master, with the master's credentials) and follows failovers.
// resolve() may be awaited on any executor; the subscriber runs on the one given.
class sentinel_discovery final : public redis_discovery,
                                 public std::enable_shared_from_this<sentinel_discovery> {
public:
    // `master` are the redis-sentinel:// options (sentinels, master name, the master's and the
    // sentinels' credentials, timeouts); its discovery field is ignored.
    sentinel_discovery(boost::asio::any_io_executor ex, redis_options master,
                       metrics::registry& reg);
    ~sentinel_discovery() override;

    // Starts the subscriber (once), reporting into `rm` (the store's connection metrics).
    // resolve() works before it.
    void start(redis_metrics& rm);
    void stop() override;

    [[nodiscard]] boost::asio::awaitable<std::pair<boost::system::error_code, redis_address>>
    resolve() override;
    std::uint64_t watch(std::function<void(const redis_address&)> moved) override;
    void unwatch(std::uint64_t id) noexcept override;

    // The master last found or announced (for tests and logs).
    [[nodiscard]] std::optional<redis_address> last_master() const;

private:
    // Tells every watcher that the master moved to `to` (from the subscriber's executor).
    void moved(const redis_address& to, std::string_view why);
    [[nodiscard]] boost::asio::awaitable<std::optional<redis_address>> ask(
        const redis_address& sentinel) const;
    [[nodiscard]] boost::asio::awaitable<bool> is_master(const redis_address& at) const;
    boost::asio::awaitable<void> on_subscriber_connect();
    static boost::asio::awaitable<void> heartbeat(std::weak_ptr<sentinel_discovery> weak);

    boost::asio::any_io_executor ex_;
    redis_options opts_;
    metrics::counter& switches_;
    metrics::counter& failures_;
    std::shared_ptr<redis_connection> subscriber_;
    std::shared_ptr<boost::asio::steady_timer> heartbeat_timer_;  // cancelled by stop()
    mutable std::mutex mu_;                                       // guards what follows
    std::map<std::uint64_t, std::function<void(const redis_address&)>> watchers_;
    std::uint64_t next_id_ = 1;
    std::optional<redis_address> last_;
    bool stopped_ = false;
};

// When `o` names sentinels (redis-sentinel://): makes a sentinel_discovery for it with its
// subscriber on `ex` and sets o.discovery. Null otherwise. start() it, and stop() it at
// shutdown.
[[nodiscard]] std::shared_ptr<sentinel_discovery> attach_sentinel(redis_options& o,
                                                                  boost::asio::any_io_executor ex,
                                                                  metrics::registry& reg);

}  // namespace posrelay::store
