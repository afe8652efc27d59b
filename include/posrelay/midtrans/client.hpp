// The Midtrans Core API client: HTTPS (certificate and host name verified, SNI) with
// Beast and asio::ssl, a keep-alive connection pool per io thread, connect and request
// deadlines, Basic authorization with the server key, and X-Override-Notification on
// charges. Plain HTTP is accepted only for a loopback host (midtrans-sim in tests and demos).
// Calls must be made on an io thread of the pool given to the constructor.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "posrelay/config.hpp"
#include "posrelay/io_pool.hpp"
#include "posrelay/metrics/registry.hpp"

namespace posrelay::midtrans {

struct client_options {
    std::string base_url = "https://api.sandbox.midtrans.com";
    secret server_key;
    std::string notification_url;  // sent as X-Override-Notification on charges; "" = none
    std::chrono::milliseconds connect_timeout{5'000};
    std::chrono::milliseconds request_timeout{15'000};  // write + answer, per attempt
    std::size_t max_idle_per_host = 16;                 // kept-alive connections per io thread
    std::chrono::milliseconds max_idle_time{30'000};    // older idle connections are closed
    std::size_t max_inflight = 512;                     // concurrent calls per process
    std::size_t max_response_bytes = 1024 * 1024;
    std::string ca_file;  // extra trusted CA (PEM) besides the system's; "" = system only

    [[nodiscard]] static client_options from(const config& c);
};

// The raw result of one HTTP exchange.
struct http_result {
    boost::system::error_code ec;  // no answer: connect/TLS/IO failure, timeout, busy
    bool sent = false;             // the request may have reached Midtrans (outcome unknown on ec)
    unsigned status = 0;
    std::string body;
    std::string content_type;
    std::string retry_after;
    [[nodiscard]] bool ok_transport() const noexcept { return !ec; }
};

// The Midtrans calls the order service and the poll scheduler make (client below; unit tests
// use a fake).
class api_calls {
public:
    virtual ~api_calls() = default;
    [[nodiscard]] virtual boost::asio::awaitable<http_result> charge(std::string body) = 0;
    // `authorization`: the Authorization header to send instead of the default key's (an order
    // of another merchant account); "" = the default.
    [[nodiscard]] virtual boost::asio::awaitable<http_result> status(std::string id,
                                                                     std::string authorization) = 0;
    [[nodiscard]] boost::asio::awaitable<http_result> status(std::string id) {
        return status(std::move(id), std::string());
    }
    [[nodiscard]] virtual boost::asio::awaitable<http_result> cancel(std::string id) = 0;
    [[nodiscard]] virtual boost::asio::awaitable<http_result> expire(std::string id) = 0;
    // GET an absolute URL Midtrans handed out (an action URL such as generate-qr-code). The
    // server key is sent only when the URL is on the API's own scheme, host and port.
    [[nodiscard]] virtual boost::asio::awaitable<http_result> fetch(std::string url) = 0;
    [[nodiscard]] virtual const client_options& options() const noexcept = 0;
};

class client final : public api_calls {
public:
    // Throws config_error when the base URL is not usable (scheme, host, plain HTTP to a
    // non-loopback host).
    client(io_pool& pool, client_options o, metrics::registry& reg);
    ~client() override;
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    using api_calls::status;
    [[nodiscard]] boost::asio::awaitable<http_result> charge(std::string body) override;
    [[nodiscard]] boost::asio::awaitable<http_result> status(std::string id,
                                                             std::string authorization) override;
    [[nodiscard]] boost::asio::awaitable<http_result> cancel(std::string id) override;
    [[nodiscard]] boost::asio::awaitable<http_result> expire(std::string id) override;
    [[nodiscard]] boost::asio::awaitable<http_result> fetch(std::string url) override;

    [[nodiscard]] const client_options& options() const noexcept override;
    // A reload's default server key: calls started from now on send it. Thread-safe.
    void set_server_key(const secret& key);

    struct impl;

private:
    std::shared_ptr<impl> impl_;
};

// True for 127.0.0.0/8, ::1 and "localhost".
[[nodiscard]] bool is_loopback_host(std::string_view host) noexcept;

}  // namespace posrelay::midtrans
