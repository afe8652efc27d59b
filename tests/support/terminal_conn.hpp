// Test support: a blocking terminal connection (plain TCP, newline-delimited JSON) with
// read deadlines, tokens, and helpers to register orders and post signed notifications.
#pragma once

#include <boost/json.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "http_client.hpp"
#include "process.hpp"

namespace posrelay::test {

inline constexpr std::string_view test_terminal_secret = "terminal-secret-for-tests";
inline constexpr std::string_view test_operator_token = "operator-token-for-tests";

// A string member of a frame or JSON answer; "" when absent or not a string.
inline std::string str(const boost::json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

class terminal_conn {
public:
    // Connects to 127.0.0.1:port. `rcvbuf` > 0 sets SO_RCVBUF before connecting.
    explicit terminal_conn(unsigned short port, int rcvbuf = 0);
    ~terminal_conn();
    terminal_conn(const terminal_conn&) = delete;
    terminal_conn& operator=(const terminal_conn&) = delete;

    void send_line(std::string_view json);  // appends '\n'
    void send_raw(std::string_view bytes);
    // The next frame, or nullopt when the deadline passes; throws when the server closed.
    std::optional<boost::json::object> read_frame(
        std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // True when the server closes the connection within `timeout` (frames before are skipped).
    bool closed_within(std::chrono::milliseconds timeout);

    // hello with a valid token; returns the welcome (throws on anything else).
    boost::json::object hello(std::string_view terminal, std::string_view store,
                              std::optional<std::uint64_t> resume_from = std::nullopt,
                              bool subscribe_store = false);
    // hello with a valid token and optional protocol fields; returns the first frame the
    // server answers (a welcome or an error), or throws on a timeout or a closed connection.
    struct hello_options {
        std::optional<std::uint64_t> resume_from;
        bool subscribe_store = false;
        std::optional<std::string> epoch;       // the epoch of resume_from ("" = none yet)
        std::optional<std::string> resume_eid;  // the eid of the event at resume_from
    };
    boost::json::object handshake(std::string_view terminal, std::string_view store,
                                  const hello_options& o);
    // Reads frames until an event comes (pings answered with pong, skipped).
    std::optional<boost::json::object> next_event(
        std::chrono::milliseconds timeout = std::chrono::seconds(10));
    void ack(std::uint64_t seq);
    int fd() const noexcept { return fd_; }

private:
    int fd_ = -1;
    std::string buf_;
};

// The environment of a test node: `server_key`, the test operator token and terminal secret,
// and the Redis at `redis_url`.
std::map<std::string, std::string> relay_env(std::string_view redis_url,
                                             std::string_view server_key = test_server_key);

// A posrelay node with a plain-TCP terminal listener.
struct relay_node {
    posrelay_process p;
    unsigned short terminal_port = 0;
};
// Starts posrelay with `args` (including `--terminal-listen 127.0.0.1:0`) and `env`, reads
// the terminal port it bound from its log, and waits until it is ready (wait_ready, on the
// admin listener when there is one).
relay_node start_relay_node(std::vector<std::string> args, std::map<std::string, std::string> env);

// POST /v1/orders with the test operator token; returns the HTTP status.
int register_order(unsigned short http_port, std::string_view order_id, std::string_view terminal,
                   std::string_view store, std::string_view gross = "10000");
// A signed settlement (or `status`) notification for order_id; returns the HTTP status.
int notify(unsigned short http_port, std::string_view order_id,
           std::string_view status = "settlement", std::string_view gross = "10000.00");

}  // namespace posrelay::test
