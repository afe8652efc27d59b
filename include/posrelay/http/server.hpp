// The HTTP/1.1 server: one SO_REUSEPORT acceptor per io thread, one coroutine per
// connection, keep-alive, per-phase deadlines, size limits, and a graceful shutdown
// that finishes in-flight requests.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "posrelay/config.hpp"
#include "posrelay/http/router.hpp"
#include "posrelay/io_pool.hpp"
#include "posrelay/metrics/registry.hpp"
#include "posrelay/net/cidr.hpp"

namespace posrelay::http {

struct server_options {
    endpoint listen{"127.0.0.1", 0};
    std::size_t max_connections = 10000;
    std::chrono::milliseconds header_timeout{10'000};  // first byte of a request → header complete
    std::chrono::milliseconds body_timeout{10'000};    // header complete → body complete
    std::chrono::milliseconds idle_timeout{75'000};    // keep-alive wait for the next request
    std::chrono::milliseconds write_timeout{10'000};   // writing one answer
    std::size_t max_header_bytes = 8 * 1024;
    std::size_t max_body_bytes = 64 * 1024;
    // A WebSocket upgrade request for `websocket_path` is handed over with its socket
    // (the terminal gateway); unset: such requests are routed like any other.
    std::string websocket_path = "/v1/terminal";
    // `client`: the request's client address (request_context::client).
    std::function<void(boost::asio::ip::tcp::socket, request, std::string client)>
        websocket_upgrade;
    // Peers believed about the client's address (X-Forwarded-For; PROXY headers when
    // proxy_protocol); null or empty: none, the peer is the client.
    std::shared_ptr<const net::cidr_set> trusted_proxies;
    // Connections from trusted proxies open with a PROXY header (net/proxy_protocol.hpp),
    // read under the header deadline; refusals counted in
    // posrelay_<metrics_name>_proxy_protocol_refused_total{reason}.
    bool proxy_protocol = false;
    // Names this server's connection metrics: posrelay_<metrics_name>_open_connections, ...
    // Each server of a registry needs its own.
    std::string metrics_name = "http";

    [[nodiscard]] static server_options from(const config& c);
    // The admin listener (--admin-listen, which must be set): its own address, connection
    // limit and metric names, the other limits and deadlines of --listen.
    [[nodiscard]] static server_options admin_from(const config& c);
};

class http_server {
public:
    http_server(io_pool& pool, server_options opts, router& r, metrics::registry& reg);
    ~http_server();
    http_server(const http_server&) = delete;
    http_server& operator=(const http_server&) = delete;

    // Binds the listen address on every io thread and starts accepting. Returns the
    // bound endpoint (the real port when the configured one is 0). Throws
    // boost::system::system_error when the address cannot be bound.
    boost::asio::ip::tcp::endpoint start();

    // Stops accepting, closes idle keep-alive connections, and lets each busy connection
    // finish its current request (answered with Connection: close). `drained` is called
    // once, from an io thread, when no connection is left. Thread-safe; call once.
    void shutdown(std::function<void()> drained);

    [[nodiscard]] std::size_t open_connections() const noexcept;
    [[nodiscard]] bool stopping() const noexcept { return stopping_.load(); }

    struct worker;  // per io thread state (acceptor, sessions)
    struct shared;  // state every session reads (options, metrics, router)

private:
    io_pool& pool_;
    std::shared_ptr<shared> shared_;
    std::vector<std::shared_ptr<worker>> workers_;
    std::atomic<bool> stopping_{false};
};

}  // namespace posrelay::http
