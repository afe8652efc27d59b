// Test support: runs midtrans-sim (the Midtrans stand-in) as a child process, talks to its
// control API, and receives its notifications on a loopback HTTP receiver.
#pragma once

#include <boost/json/object.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "http_client.hpp"
#include "process.hpp"

namespace posrelay::test {

inline constexpr std::string_view sim_server_key = "SB-Mid-server-test-sim-key";

struct sim_process {
    std::unique_ptr<child_process> proc;
    unsigned short port = 0;
    [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
};

// Starts midtrans-sim with `args` (plus --listen 127.0.0.1:0 unless given) and the key in
// MIDTRANS_SIM_SERVER_KEY; waits for its "listening" line.
sim_process start_midtrans_sim(std::vector<std::string> args,
                               std::string server_key = std::string(sim_server_key));

// "Basic base64(key:)", the Authorization header of the Core API.
[[nodiscard]] std::string sim_auth_header(std::string_view server_key = sim_server_key);

// Control API helpers (no auth). Each opens its own connection.
http_response sim_pay(unsigned short port, std::string_view order_id, std::string_view query = {});
http_response sim_config(unsigned short port, std::string json);
[[nodiscard]] boost::json::object sim_stats(unsigned short port);

// A loopback HTTP server that records every request (one per connection) and answers
// with the statuses of `answers` in turn, then 200. Runs on its own thread.
class notification_receiver {
public:
    struct received {
        std::string target;
        std::string user_agent;
        std::string content_type;
        std::string body;
        boost::json::object json;  // the body parsed (empty when not a JSON object)
        unsigned answered = 0;
    };

    explicit notification_receiver(std::vector<unsigned> answers = {});
    ~notification_receiver();
    notification_receiver(const notification_receiver&) = delete;
    notification_receiver& operator=(const notification_receiver&) = delete;

    // http://127.0.0.1:PORT/notify
    [[nodiscard]] std::string url() const;
    // Waits until at least `n` requests came; returns all of them. Throws on timeout.
    std::vector<received> wait_for(std::size_t n,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(10));
    [[nodiscard]] std::vector<received> all() const;

private:
    void accept_next();
    void handle(boost::asio::ip::tcp::socket s);

    std::vector<unsigned> answers_;
    boost::asio::io_context ioc_;
    boost::asio::ip::tcp::acceptor acceptor_;
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<received> received_;
    std::thread thread_;
};

}  // namespace posrelay::test
