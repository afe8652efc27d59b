// The posrelay service assembled from its configuration: io threads, HTTP server, routes,
// ingest pipeline, metrics; run until SIGTERM/SIGINT, then shut down gracefully.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <functional>
#include <memory>

#include "posrelay/config.hpp"
#include "posrelay/ingest/commit_sink.hpp"
#include "posrelay/metrics/registry.hpp"

namespace posrelay {

class app {
public:
    // `sink`: where verified updates are committed; null → an in-memory sink.
    explicit app(config cfg, std::shared_ptr<ingest::commit_sink> sink = nullptr);
    ~app();
    app(const app&) = delete;
    app& operator=(const app&) = delete;

    // Binds and starts serving on the io threads; returns the HTTP endpoint bound.
    boost::asio::ip::tcp::endpoint start();

    // Graceful shutdown: stop accepting, finish in-flight requests (bounded by
    // --shutdown-timeout), stop the io threads. Blocks the calling thread. Idempotent.
    void stop();

    // start(), then block until SIGTERM or SIGINT, then stop(). Returns the exit code.
    // On SIGHUP, `load` (when set) loads the configuration again (the same flags and
    // environment, the files read again) and reload() applies it.
    int run(std::function<config()> load = {});

    // One reload: `load` loads the configuration again, then what can change live is applied
    // (keys, secrets, terminal TLS, log level) and changed options that need a restart are
    // logged. A load or TLS failure applies nothing. Counted in
    // posrelay_config_reloads_total, logged ("config reloaded" / "config reload failed").
    // Call from a thread that is not an io thread: files are read here. Returns success.
    bool reload(const std::function<config()>& load);

    [[nodiscard]] metrics::registry& registry() noexcept;
    [[nodiscard]] bool ready() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace posrelay
