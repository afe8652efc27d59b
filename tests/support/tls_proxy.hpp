// Test support for TLS: throwaway certificates made by the openssl CLI, and a loopback TLS
// front (a TLS listener whose connections are relayed as plain TCP to a backend port), which
// puts HTTPS in front of midtrans-sim the way Midtrans's API is HTTPS.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>

namespace posrelay::test {

// A self-signed EC certificate and its key (PEM) in `dir`, named NAME.crt and NAME.key, with
// subject CN=NAME and, when `alt_names` is given, that subjectAltName ("DNS:localhost,...").
// Fails the current test (ASSERT) when openssl fails.
void make_certificate(const std::filesystem::path& dir, const std::string& name,
                      const std::string& alt_names = {});

// Accepts TLS on 127.0.0.1 (an ephemeral port) with `cert_file`/`key_file`; each connection,
// once its handshake succeeded, is relayed byte for byte to 127.0.0.1:`backend_port`. A failed
// handshake just closes the connection. Runs on its own thread until destroyed.
class tls_proxy {
public:
    tls_proxy(const std::string& cert_file, const std::string& key_file,
              unsigned short backend_port);
    ~tls_proxy();
    tls_proxy(const tls_proxy&) = delete;
    tls_proxy& operator=(const tls_proxy&) = delete;

    [[nodiscard]] unsigned short port() const { return port_; }
    // Connections whose TLS handshake completed.
    [[nodiscard]] unsigned handshakes() const { return handshakes_.load(); }

private:
    void accept_next();

    boost::asio::io_context ioc_;
    boost::asio::ssl::context ssl_;
    boost::asio::ip::tcp::acceptor acceptor_;
    unsigned short backend_port_;
    unsigned short port_ = 0;
    std::atomic<unsigned> handshakes_{0};
    std::thread thread_;
};

}  // namespace posrelay::test
