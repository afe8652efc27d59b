// An asynchronous terminal-protocol client: one connection per instance (TCP, TLS, WebSocket
// or secure WebSocket), hello → welcome, events to a callback, acks, heartbeats. Used by
// posrelay-terminal, posrelay-terminal-load and in-process tests. Never blocks its executor.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tools/terminal_frames.hpp"

namespace posrelay::tools {

struct client_options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 7070;
    // When not empty: connect to these and skip name resolution (the load tool resolves once).
    std::vector<boost::asio::ip::tcp::endpoint> endpoints;
    transport kind = transport::tcp;
    std::string ws_path{default_ws_path};
    // Required for tls/wss: verification mode, CAs and client certificate are set on it.
    std::shared_ptr<boost::asio::ssl::context> tls;
    // TLS server name (SNI and certificate host check); "" = host. An IP literal host is
    // checked against the certificate's IP addresses and sends no SNI.
    std::string sni;
    bool verify_host = true;  // false with --tls-insecure

    hello_params hello;

    std::chrono::milliseconds connect_timeout{10'000};  // connect → welcome, all of it
    std::chrono::milliseconds write_timeout{10'000};
    std::chrono::milliseconds close_timeout{2'000};  // graceful close (WebSocket close frame)
    // The longest server frame accepted (protocol §3: at least 64 KiB); raised to the
    // welcome's max_frame_bytes if that is larger. Buffers grow only as frames need.
    std::size_t max_read_frame_bytes = 64 * 1024;
    // false: after the welcome, read nothing more (slow-consumer tests); a ping is still sent
    // every heartbeat_ms so the server's idle timeout does not end the connection.
    bool read_after_welcome = true;
    // Log connection steps and frames (not events) at debug level with this tag.
    bool log_frames = false;
};

struct client_handlers {
    std::function<void(const welcome_info&)> on_welcome;
    // `frame`: the event frame as received (no '\n'). Ack with terminal_client::ack().
    std::function<void(const event_info&, std::string_view frame)> on_event;
    // Error frames with fatal:false (answers to requests, warnings). Fatal ones end run().
    std::function<void(const error_info&, std::string_view frame)> on_error;
    // pong, results (answers to requests), ops this client does not know.
    std::function<void(const server_frame&, std::string_view frame)> on_other;
};

// In a test (link posrelay_terminal_client):
//
//   client_options o;
//   o.port = gateway_port;
//   o.hello = {"T1", "S1", mint_token(secret, "T1", "S1"), std::nullopt, false, "", ""};
//   std::shared_ptr<terminal_client> c;
//   client_handlers h;
//   h.on_event = [&](const event_info& e, std::string_view) {
//       seqs.push_back(e.seq);
//       c->ack(e.seq);
//   };
//   c = terminal_client::create(io.get_executor(), o, std::move(h));
//   asio::co_spawn(io, c->run(), [&](std::exception_ptr, outcome out) { ended = out; });
//   ... io.run_for(...); c->close();
//
// Reconnecting is the caller's loop: classify(outcome) tells what to do next
// (terminal_frames.hpp); backoff and goaway_delay how long to wait (terminal_state.hpp).
class terminal_client {
public:
    virtual ~terminal_client() = default;

    // Handlers run on the client's own strand (made from `ex`).
    [[nodiscard]] static std::shared_ptr<terminal_client> create(boost::asio::any_io_executor ex,
                                                                 client_options opts,
                                                                 client_handlers handlers);

    // Connects, says hello, waits for the welcome, then delivers frames until the connection
    // ends; returns how it ended. Call once. May be awaited from any executor.
    [[nodiscard]] virtual boost::asio::awaitable<outcome> run() = 0;

    // Thread-safe; cheap. Acks are cumulative: only the highest seq queued is sent.
    virtual void ack(std::uint64_t seq) = 0;
    virtual void ping(std::string id) = 0;
    // Sends a raw frame (one JSON object, no '\n'): requests (charge, ...) and tests.
    virtual void send(std::string frame) = 0;
    // Graceful: sends what is queued (acks first), closes (WebSocket close frame), then
    // run() returns outcome::kind::closed. Frames received meanwhile are dropped.
    virtual void close() = 0;
    // Immediate: closes the socket.
    virtual void abort() = 0;
};

}  // namespace posrelay::tools
