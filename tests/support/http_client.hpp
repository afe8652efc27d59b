// Test support: a small blocking HTTP/1.1 client (Beast) with socket timeouts, plus
// helpers to build signed Midtrans notifications.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <map>
#include <string>
#include <string_view>

namespace posrelay::test {

using http_response = boost::beast::http::response<boost::beast::http::string_body>;

class http_client {
public:
    explicit http_client(unsigned short port,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // Sends one request on the (kept-alive) connection and reads the answer. Throws
    // boost::system::system_error on connection errors and timeouts.
    http_response request(boost::beast::http::verb method, std::string_view target,
                          std::string body = {}, std::string_view content_type = "application/json",
                          const std::map<std::string, std::string>& headers = {});
    http_response get(std::string_view target) {
        return request(boost::beast::http::verb::get, target);
    }
    http_response post(std::string_view target, std::string body,
                       std::string_view content_type = "application/json") {
        return request(boost::beast::http::verb::post, target, std::move(body), content_type);
    }
    boost::asio::ip::tcp::socket& socket() noexcept { return socket_; }

private:
    boost::asio::io_context ioc_;
    boost::asio::ip::tcp::socket socket_;
    boost::beast::flat_buffer buffer_;
};

// A notification body signed with `server_key` (the shape Midtrans sends).
struct notification_fields {
    std::string order_id = "ORD-1";
    std::string status_code = "200";
    std::string gross_amount = "10000.00";
    std::string transaction_status = "settlement";
    std::string fraud_status = "accept";
    std::string merchant_id = "G000000001";
    std::string transaction_id = "8b82e549-2a48-47a9-8cb1-fb36060b88f3";
};
[[nodiscard]] std::string signed_notification(const notification_fields& f,
                                              std::string_view server_key);

// Value of an unlabelled or labelled sample in Prometheus text, e.g.
// metric_value(text, "posrelay_http_timeouts_total{phase=\"header\"}"); -1 when absent.
[[nodiscard]] double metric_value(std::string_view text, std::string_view series);

inline constexpr std::string_view test_server_key = "SB-Mid-server-TESTKEY";
inline constexpr std::string_view notifications_path = "/v1/midtrans/notifications";

// Polls GET /readyz until it answers 200 (the node's Redis connections are up), at most
// `limit`; false if it never did.
bool wait_ready(unsigned short http_port,
                std::chrono::milliseconds limit = std::chrono::seconds(10));

// Polls GET /metrics until `series` (as metric_value names it) reaches `at_least`, at most
// `limit`; false if it never did.
bool wait_metric(unsigned short http_port, std::string_view series, double at_least,
                 std::chrono::milliseconds limit = std::chrono::seconds(10));

}  // namespace posrelay::test
