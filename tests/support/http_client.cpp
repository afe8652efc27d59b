// Blocking HTTP client and signed-notification builder for integration tests.
#include "http_client.hpp"

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/connect.hpp>

#include <thread>

#include "posrelay/midtrans/signature.hpp"

namespace posrelay::test {

namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

http_client::http_client(unsigned short port, std::chrono::milliseconds timeout) : socket_(ioc_) {
    socket_.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
    // Blocking reads and writes give up after `timeout` instead of hanging a test.
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

http_response http_client::request(http::verb method, std::string_view target, std::string body,
                                   std::string_view content_type,
                                   const std::map<std::string, std::string>& headers) {
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::user_agent, "Veritrans");
    if (!body.empty() || method == http::verb::post) {
        if (!content_type.empty()) req.set(http::field::content_type, content_type);
        req.body() = std::move(body);
        req.prepare_payload();
    }
    for (const auto& [k, v] : headers)
        req.set(k, v);
    http::write(socket_, req);
    http_response res;
    http::read(socket_, buffer_, res);
    return res;
}

std::string signed_notification(const notification_fields& f, std::string_view server_key) {
    const auto sig =
        midtrans::compute_signature(f.order_id, f.status_code, f.gross_amount, server_key);
    std::string body =
        R"({"transaction_time":"2026-11-24 10:00:00","transaction_status":")" +
        f.transaction_status + R"(","transaction_id":")" + f.transaction_id +
        R"(","status_message":"midtrans payment notification","status_code":")" + f.status_code +
        R"(","signature_key":")" + std::string(sig.data(), sig.size()) +
        R"(","settlement_time":"2026-11-24 10:00:09","payment_type":"gopay","order_id":")" +
        f.order_id + R"(","merchant_id":")" + f.merchant_id + R"(","gross_amount":")" +
        f.gross_amount + R"(","currency":"IDR")";
    if (!f.fraud_status.empty()) body += R"(,"fraud_status":")" + f.fraud_status + "\"";
    body += "}";
    return body;
}

double metric_value(std::string_view text, std::string_view series) {
    std::size_t pos = 0;
    while ((pos = text.find(series, pos)) != std::string_view::npos) {
        const bool line_start = pos == 0 || text[pos - 1] == '\n';
        const std::size_t after = pos + series.size();
        if (line_start && after < text.size() && text[after] == ' ') {
            const auto end = text.find('\n', after);
            return std::stod(std::string(text.substr(after + 1, end - after - 1)));
        }
        pos = after;
    }
    return -1;
}

bool wait_ready(unsigned short http_port, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        if (http_client(http_port).get("/readyz").result_int() == 200) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::yield();
    }
}

bool wait_metric(unsigned short http_port, std::string_view series, double at_least,
                 std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        if (metric_value(http_client(http_port).get("/metrics").body(), series) >= at_least)
            return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::yield();
    }
}

}  // namespace posrelay::test
