#include "tls_proxy.hpp"

#include <gtest/gtest.h>

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <memory>

#include "process.hpp"

namespace posrelay::test {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

void make_certificate(const std::filesystem::path& dir, const std::string& name,
                      const std::string& alt_names) {
    std::vector<std::string> args = {"req",
                                     "-x509",
                                     "-newkey",
                                     "ec",
                                     "-pkeyopt",
                                     "ec_paramgen_curve:prime256v1",
                                     "-nodes",
                                     "-days",
                                     "1",
                                     "-subj",
                                     "/CN=" + name,
                                     "-keyout",
                                     (dir / (name + ".key")).string(),
                                     "-out",
                                     (dir / (name + ".crt")).string()};
    if (!alt_names.empty()) {
        args.emplace_back("-addext");
        args.push_back("subjectAltName=" + alt_names);
    }
    const auto r = run_command("/usr/bin/openssl", args);
    ASSERT_EQ(r.code, 0) << r.output;
}

namespace {

// One relayed connection: the TLS side and the plain backend side, each direction copied by
// its own chain of reads and writes; either side closing ends both.
struct relay : std::enable_shared_from_this<relay> {
    relay(tcp::socket s, asio::ssl::context& ctx)
        : tls(std::move(s), ctx), plain(tls.get_executor()) {}

    asio::ssl::stream<tcp::socket> tls;
    tcp::socket plain;
    std::array<char, 16 * 1024> up{};    // TLS -> backend
    std::array<char, 16 * 1024> down{};  // backend -> TLS

    void close() {
        error_code ignored;
        tls.lowest_layer().close(ignored);
        plain.close(ignored);
    }
    // Copies `from` to `to` through `buf` until either side fails or closes.
    template <class From, class To, std::size_t N>
    static void pump(const std::shared_ptr<relay>& self, From& from, To& to,
                     std::array<char, N>& buf) {
        from.async_read_some(
            asio::buffer(buf), [self, &from, &to, &buf](error_code ec, std::size_t n) {
                if (ec) return self->close();
                asio::async_write(to, asio::buffer(buf.data(), n),
                                  [self, &from, &to, &buf](error_code wec, std::size_t) {
                                      if (wec) return self->close();
                                      pump(self, from, to, buf);
                                  });
            });
    }
};

}  // namespace

tls_proxy::tls_proxy(const std::string& cert_file, const std::string& key_file,
                     unsigned short backend_port)
    : ssl_(asio::ssl::context::tls_server),
      acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
      backend_port_(backend_port) {
    ssl_.use_certificate_chain_file(cert_file);
    ssl_.use_private_key_file(key_file, asio::ssl::context::pem);
    port_ = acceptor_.local_endpoint().port();
    accept_next();
    thread_ = std::thread([this] { ioc_.run(); });
}

tls_proxy::~tls_proxy() {
    ioc_.stop();
    if (thread_.joinable()) thread_.join();
}

void tls_proxy::accept_next() {
    acceptor_.async_accept([this](error_code ec, tcp::socket s) {
        if (ec) return;
        auto r = std::make_shared<relay>(std::move(s), ssl_);
        r->tls.async_handshake(asio::ssl::stream_base::server, [this, r](error_code hec) {
            if (hec) return r->close();
            ++handshakes_;
            r->plain.async_connect(
                tcp::endpoint(asio::ip::make_address("127.0.0.1"), backend_port_),
                [r](error_code cec) {
                    if (cec) return r->close();
                    relay::pump(r, r->tls, r->plain, r->up);
                    relay::pump(r, r->plain, r->tls, r->down);
                });
        });
        accept_next();
    });
}

}  // namespace posrelay::test
