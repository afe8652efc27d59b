// The terminal gateway: long-lived terminal connections (plain TCP, TLS, WebSocket) speaking
// proto-docs/terminal-protocol.md. Authenticates terminals, replays missed events from their
// Redis stream, then delivers live events received on the node's pub/sub feed, in order,
// each once per connection, with acks, heartbeats, flow control and a slow-consumer policy.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "posrelay/auth_limiter.hpp"
#include "posrelay/config.hpp"
#include "posrelay/fanout/protocol.hpp"
#include "posrelay/fanout/token_verifier.hpp"
#include "posrelay/http/types.hpp"
#include "posrelay/io_pool.hpp"
#include "posrelay/metrics/registry.hpp"
#include "posrelay/net/cidr.hpp"
#include "posrelay/store/redis_store.hpp"

namespace posrelay::fanout {

struct gateway_options {
    std::optional<endpoint> tcp_listen;  // plain TCP, newline-delimited JSON
    std::optional<endpoint> tls_listen;  // TLS 1.2+, same framing
    std::string tls_cert_file;           // PEM chain
    std::string tls_key_file;            // PEM private key
    std::string tls_client_ca_file;      // set: client certificates required and verified
    // What tokens are checked against (terminal secret, JWK set, policy); unset: nothing verifies.
    std::shared_ptr<const token_verifier> tokens;
    std::size_t max_connections = 20'000;
    std::chrono::milliseconds handshake_timeout{10'000};
    std::chrono::milliseconds heartbeat{15'000};      // ping when idle; silence for 3x → closed
    std::chrono::milliseconds write_timeout{10'000};  // one write blocked longer → slow_consumer
    std::size_t max_frame_bytes = 16 * 1024;
    std::size_t send_queue_bytes = 1024 * 1024;  // queued, not yet written → slow_consumer
    std::size_t send_queue_frames = 4096;
    std::size_t max_inflight = 1000;            // events sent and not acked
    std::size_t auth_failures_per_minute = 10;  // per (source address, terminal id)
    // Failed authentications per (address, terminal id), shared with the QR route (one budget
    // for every check of a terminal token); unset: the gateway's own, auth_failures_per_minute.
    std::shared_ptr<auth_limiter> auth_failures;
    std::size_t socket_send_buffer = 0;  // SO_SNDBUF for terminal sockets; 0: kernel default
    // Peers believed about a client's address; with proxy_protocol, TCP and TLS connections
    // from them open with a PROXY header (read before TLS, within handshake_timeout) naming the
    // client; other peers must not send one (net/proxy_protocol.hpp).
    std::shared_ptr<const net::cidr_set> trusted_proxies;
    bool proxy_protocol = false;
    std::string node_name;  // shown in welcome
    // Answers a terminal's request (charge, cancel, expire, status) with a result or error
    // frame: (terminal_id, store_id, request). Unset: requests are answered bad_request.
    std::function<boost::asio::awaitable<std::string>(std::string, std::string, request_frame)>
        requests;
    std::size_t max_requests_inflight = 8;  // per connection; more are answered `busy`
    std::size_t max_observers = 4;          // observer sessions per terminal, on this node

    [[nodiscard]] static gateway_options from(const config& c);
};

class gateway {
public:
    gateway(io_pool& pool, gateway_options opts, store::redis_store& store, metrics::registry& reg);
    ~gateway();
    gateway(const gateway&) = delete;
    gateway& operator=(const gateway&) = delete;

    // Binds the listeners and starts the node's event feed. Returns the bound TCP and TLS
    // endpoints (port 0 → the real port). Throws on bind or TLS set-up failure.
    struct bound {
        std::optional<boost::asio::ip::tcp::endpoint> tcp;
        std::optional<boost::asio::ip::tcp::endpoint> tls;
    };
    bound start();

    // A WebSocket upgrade request on the HTTP port (path /v1/terminal): takes the socket.
    // Called on the HTTP connection's io thread.
    // `client`: the request's client address (X-Forwarded-For from a trusted proxy, or the peer).
    void accept_websocket(boost::asio::ip::tcp::socket socket, http::request req,
                          std::string client);

    // Stops accepting and tells every terminal to reconnect elsewhere (goaway), then closes.
    // `drained` is called when no terminal connection is left. Thread-safe; once.
    void shutdown(std::chrono::milliseconds reconnect_after, std::function<void()> drained);

    [[nodiscard]] std::size_t connections() const noexcept;

    // Reload (SIGHUP), from a thread that is not an io thread: files are read here.
    // With a TLS listener, new handshakes use a context made from these files; connections
    // keep theirs. Throws (the running context stays) on an unreadable file or a bad pair.
    [[nodiscard]] bool has_tls() const noexcept;
    void reload_tls(const std::string& cert, const std::string& key, const std::string& client_ca);
    // Loads the terminal TLS files as start() and reload_tls() do; throws config_error naming
    // the problem (posrelay check-config).
    static void check_tls(const config& c);
    // Handshakes from now on check tokens against `v` (a reload: secret, key file, policy);
    // connected terminals stay.
    void set_token_verifier(std::shared_ptr<const token_verifier> v);

    struct impl;

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace posrelay::fanout
