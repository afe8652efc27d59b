// The audit line and the client address end to end: one "notification" line per accepted
// notification (none with --audit-log false); X-Forwarded-For believed only from a trusted
// peer; PROXY protocol v1/v2 headers on the HTTP and terminal (TCP and TLS) listeners, only
// from trusted peers. Loopback: the test connects from 127.0.0.2 (trusted) or 127.0.0.1.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <filesystem>
#include <string>

#include "http_client.hpp"
#include "posrelay/fanout/protocol.hpp"
#include "process.hpp"
#include "redis_server.hpp"
#include "terminal_conn.hpp"
#include "tls_proxy.hpp"

namespace posrelay::test {
namespace {

using namespace std::string_literals;
using std::chrono::milliseconds;
using std::chrono::seconds;
namespace asio = boost::asio;

constexpr const char* trusted_ip = "127.0.0.2";
constexpr const char* untrusted_ip = "127.0.0.1";

// A TCP connection to 127.0.0.1:port from `local_ip`.
int connect_from(const char* local_ip, unsigned short port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    ::inet_pton(AF_INET, local_ip, &local.sin_addr);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
        ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
        ::close(fd);
        throw std::runtime_error("connect_from failed");
    }
    return fd;
}

// Sends `bytes` from `local_ip` and reads until the server closes (at most 10 s).
std::string exchange(const char* local_ip, unsigned short port, const std::string& bytes) {
    const int fd = connect_from(local_ip, port);
    (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    std::string got;
    const auto deadline = std::chrono::steady_clock::now() + seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        char buf[4096];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        got.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return got;
}

std::string notification_request(const std::string& order, const std::string& extra = {}) {
    notification_fields f;
    f.order_id = order;
    const auto body = signed_notification(f, test_server_key);
    return "POST /v1/midtrans/notifications HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
           "Content-Type: application/json\r\n" +
           extra + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

const std::string v2_sig = "\r\n\r\n\0\r\nQUIT\n"s;
// A v2 PROXY TCP4 header: 203.0.113.<last>:port -> 10.0.0.1:443.
std::string v2_tcp4(unsigned char last, unsigned short port) {
    std::string h = v2_sig + "\x21\x11\x00\x0C"s + "\xCB\x00\x71"s;
    h += static_cast<char>(last);
    h += "\x0A\x00\x00\x01"s;
    h += static_cast<char>(port >> 8);
    h += static_cast<char>(port & 0xFF);
    h += "\x01\xBB"s;
    return h;
}

std::size_t count_of(const std::string& text, std::string_view needle) {
    std::size_t n = 0;
    for (auto p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1))
        ++n;
    return n;
}

// ---- HTTP: the audit line, X-Forwarded-For, PROXY protocol ------------------------------

class HttpNode : public ::testing::Test {
protected:
    void start(std::vector<std::string> extra) {
        std::vector<std::string> args = {"--store", "memory",           "--io-threads",
                                         "1",       "--header-timeout", "2s"};
        args.insert(args.end(), extra.begin(), extra.end());
        p_ = start_posrelay(args, {{"POSRELAY_SERVER_KEY", std::string(test_server_key)}});
    }
    double metric(std::string_view series) const {
        return metric_value(http_client(p_.port).get("/metrics").body(), series);
    }
    posrelay_process p_;
};

using AuditLog = HttpNode;
using HttpClientAddress = HttpNode;
using HttpProxyProtocol = HttpNode;

TEST_F(AuditLog, OneLinePerAcceptedNotificationWithItsFields) {
    start({});
    EXPECT_EQ(notify(p_.port, "AUD-1"), 200);
    const auto line = p_.proc->wait_for_line(R"("msg":"notification")");
    for (const char* field :
         {R"("order_id":"AUD-1")", R"("status":"settlement")", R"("outcome":"new")",
          R"("merchant":"G000000001")", R"("commit_ms":)", R"("client":"127.0.0.1")",
          R"("remote":"127.0.0.1:)", R"("level":"info")"})
        EXPECT_NE(line.find(field), std::string::npos) << field << " in " << line;
    EXPECT_EQ(line.find(test_server_key), std::string::npos);
    EXPECT_EQ(notify(p_.port, "AUD-1"), 200);  // a duplicate is accepted, and audited
    p_.proc->wait_for_line(R"("outcome":"duplicate")");
    // A refused notification is not audited (it has its own warn line).
    http_client c(p_.port);
    EXPECT_EQ(c.post(notifications_path, R"({"order_id":"X"})").result_int(), 400);
    p_.proc->wait_for_line(R"("msg":"notification rejected")");
    EXPECT_EQ(count_of(p_.proc->output(), R"("msg":"notification",)"), 2u) << p_.proc->output();
}

TEST_F(AuditLog, NoneWhenSwitchedOff) {
    start({"--audit-log", "false"});
    EXPECT_EQ(notify(p_.port, "AUD-2"), 200);
    EXPECT_EQ(metric(R"(posrelay_notifications_accepted_total{outcome="new"})"), 1);
    EXPECT_EQ(p_.proc->output().find(R"("msg":"notification",)"), std::string::npos)
        << p_.proc->output();
}

TEST_F(HttpClientAddress, ForwardedForIsBelievedOnlyFromATrustedPeer) {
    start({"--trusted-proxies", "127.0.0.2/32,10.0.0.0/8"});
    const std::string xff = "X-Forwarded-For: 192.0.2.1, 198.51.100.7, 10.1.2.3\r\n";
    auto res = exchange(trusted_ip, p_.port, notification_request("XFF-1", xff));
    EXPECT_NE(res.find("HTTP/1.1 200"), std::string::npos) << res;
    auto line = p_.proc->wait_for_line(R"("order_id":"XFF-1")");
    EXPECT_NE(line.find(R"("client":"198.51.100.7","remote":"127.0.0.2:)"), std::string::npos)
        << line;
    // From a peer not trusted, the header is ignored.
    res = exchange(untrusted_ip, p_.port, notification_request("XFF-2", xff));
    EXPECT_NE(res.find("HTTP/1.1 200"), std::string::npos) << res;
    line = p_.proc->wait_for_line(R"("order_id":"XFF-2")");
    EXPECT_NE(line.find(R"("client":"127.0.0.1","remote":"127.0.0.1:)"), std::string::npos) << line;
    // Malformed from a trusted peer: the peer, counted.
    res = exchange(trusted_ip, p_.port,
                   notification_request("XFF-3", "X-Forwarded-For: 198.51.100.7, bogus\r\n"));
    EXPECT_NE(res.find("HTTP/1.1 200"), std::string::npos) << res;
    line = p_.proc->wait_for_line(R"("order_id":"XFF-3")");
    EXPECT_NE(line.find(R"("client":"127.0.0.2")"), std::string::npos) << line;
    EXPECT_EQ(metric("posrelay_http_forwarded_for_malformed_total"), 1);
}

TEST_F(HttpProxyProtocol, HeadersFromTrustedPeersNameTheClientOthersAreRefused) {
    start({"--trusted-proxies", "127.0.0.2/32", "--proxy-protocol", "true"});
    auto res =
        exchange(trusted_ip, p_.port,
                 "PROXY TCP4 203.0.113.7 10.0.0.1 51000 443\r\n" + notification_request("PP-1"));
    EXPECT_NE(res.find("HTTP/1.1 200"), std::string::npos) << res;
    auto line = p_.proc->wait_for_line(R"("order_id":"PP-1")");
    EXPECT_NE(line.find(R"("client":"203.0.113.7")"), std::string::npos) << line;
    res = exchange(trusted_ip, p_.port, v2_tcp4(8, 40000) + notification_request("PP-2"));
    EXPECT_NE(res.find("HTTP/1.1 200"), std::string::npos) << res;
    line = p_.proc->wait_for_line(R"("order_id":"PP-2")");
    EXPECT_NE(line.find(R"("client":"203.0.113.8")"), std::string::npos) << line;
    // An untrusted peer without a header is served as itself.
    res = exchange(untrusted_ip, p_.port, notification_request("PP-3"));
    EXPECT_NE(res.find("HTTP/1.1 200"), std::string::npos) << res;
    line = p_.proc->wait_for_line(R"("order_id":"PP-3")");
    EXPECT_NE(line.find(R"("client":"127.0.0.1")"), std::string::npos) << line;
    // Refused, without an answer: a header from an untrusted peer, none from a trusted one,
    // a malformed one, and none within the header deadline.
    EXPECT_EQ(exchange(untrusted_ip, p_.port,
                       "PROXY TCP4 203.0.113.9 10.0.0.1 1 2\r\n" + notification_request("PP-4")),
              "");
    EXPECT_EQ(exchange(trusted_ip, p_.port, notification_request("PP-5")), "");
    EXPECT_EQ(exchange(trusted_ip, p_.port, "PROXY TCP4 nonsense\r\n"), "");
    EXPECT_EQ(exchange(trusted_ip, p_.port, "PROXY TCP4 203.0"), "");
    const auto m = http_client(p_.port).get("/metrics").body();
    for (const char* reason : {"untrusted_peer", "missing", "malformed", "timeout"}) {
        EXPECT_EQ(metric_value(
                      m, "posrelay_http_proxy_protocol_refused_total{reason=\""s + reason + "\"}"),
                  1)
            << reason;
    }
    EXPECT_EQ(p_.proc->output().find(R"("order_id":"PP-4")"), std::string::npos);
    EXPECT_EQ(metric_value(m, R"(posrelay_notifications_accepted_total{outcome="new"})"), 3);
}

// ---- terminals ----------------------------------------------------------------------------

class TerminalProxyProtocol : public ::testing::Test {
protected:
    void SetUp() override { redis_.start(); }
    void start(std::vector<std::string> extra) {
        std::vector<std::string> args = {"--io-threads",
                                         "1",
                                         "--confirm-paid",
                                         "false",
                                         "--trusted-proxies",
                                         "127.0.0.2/32",
                                         "--terminal-proxy-protocol",
                                         "true",
                                         "--terminal-auth-failures-per-minute",
                                         "1",
                                         "--terminal-handshake-timeout",
                                         "2s"};
        args.insert(args.end(), extra.begin(), extra.end());
        p_ = start_posrelay(args, relay_env(redis_.url()));
        ASSERT_TRUE(wait_ready(p_.port));
    }
    static std::string bad_hello(const std::string& terminal) {
        return R"({"op":"hello","v":1,"terminal_id":")" + terminal +
               R"(","store_id":"S-PP","token":"bad"})" + "\n";
    }
    redis_server redis_;
    posrelay_process p_;
};

TEST_F(TerminalProxyProtocol, TheHeaderNamesTheClientForLogsAndTheAuthLimiter) {
    start({"--terminal-listen", "127.0.0.1:0"});
    const auto port = static_cast<unsigned short>(
        json_int(p_.proc->wait_for_line(R"("what":"terminals")"), "port"));
    const std::string client_a = "PROXY TCP4 203.0.113.21 10.0.0.1 40001 7070\r\n";
    const std::string client_b = "PROXY TCP4 203.0.113.22 10.0.0.1 40002 7070\r\n";
    auto res = exchange(trusted_ip, port, client_a + bad_hello("T-A"));
    EXPECT_NE(res.find(R"("code":"bad_token")"), std::string::npos) << res;
    const auto line = p_.proc->wait_for_line(R"("terminal_id":"T-A")");
    EXPECT_NE(line.find(R"("remote":"203.0.113.21:40001")"), std::string::npos) << line;
    // One failure per minute: client A is now limited for T-A; client B behind the same proxy,
    // claiming the same terminal, is not (the key is the client the header names).
    res = exchange(trusted_ip, port, client_a + bad_hello("T-A"));
    EXPECT_NE(res.find(R"("code":"rate_limited")"), std::string::npos) << res;
    res = exchange(trusted_ip, port, client_b + bad_hello("T-A"));
    EXPECT_NE(res.find(R"("code":"bad_token")"), std::string::npos) << res;
    // A header from an untrusted peer, or none from the trusted one: closed without a frame.
    EXPECT_EQ(exchange(untrusted_ip, port, client_b + bad_hello("T-C")), "");
    EXPECT_EQ(exchange(trusted_ip, port, bad_hello("T-D")), "");
    // An untrusted peer without a header is served as itself.
    res = exchange(untrusted_ip, port, bad_hello("T-E"));
    EXPECT_NE(res.find(R"("code":"bad_token")"), std::string::npos) << res;
    const auto m = http_client(p_.port).get("/metrics").body();
    EXPECT_EQ(metric_value(
                  m, R"(posrelay_terminal_proxy_protocol_refused_total{reason="untrusted_peer"})"),
              1);
    EXPECT_EQ(
        metric_value(m, R"(posrelay_terminal_proxy_protocol_refused_total{reason="missing"})"), 1);
}

// The WebSocket upgrade on the HTTP listener takes the request's client: X-Forwarded-For from a
// trusted proxy names it in the handshake's log line.
TEST_F(TerminalProxyProtocol, WebSocketTerminalsGetTheForwardedClient) {
    start({"--terminal-listen", "off"});
    for (const char* from : {trusted_ip, untrusted_ip}) {
        asio::io_context ioc;
        boost::beast::websocket::stream<asio::ip::tcp::socket> ws(ioc);
        ws.next_layer().assign(asio::ip::tcp::v4(), connect_from(from, p_.port));
        ws.set_option(boost::beast::websocket::stream_base::decorator(
            [](boost::beast::websocket::request_type& req) {
                req.set("X-Forwarded-For", "198.51.100.40");
            }));
        ws.handshake("127.0.0.1", "/v1/terminal");
        const std::string terminal = from == trusted_ip ? "T-WS-1" : "T-WS-2";
        const std::string hello = bad_hello(terminal);
        ws.write(asio::buffer(hello.data(), hello.size() - 1));
        const auto line = p_.proc->wait_for_line(R"("terminal_id":")" + terminal + '"');
        const std::string expected =
            from == trusted_ip ? R"("remote":"198.51.100.40")" : R"("remote":"127.0.0.1:)";
        EXPECT_NE(line.find(expected), std::string::npos) << line;
    }
    // The failed-handshake limit is keyed on the forwarded client (and the terminal id): with one
    // failure a minute, 198.51.100.40 is limited for T-WS-1; 198.51.100.41 is not.
    auto code_for = [&](const char* forwarded) {
        asio::io_context ioc;
        boost::beast::websocket::stream<asio::ip::tcp::socket> ws(ioc);
        ws.next_layer().assign(asio::ip::tcp::v4(), connect_from(trusted_ip, p_.port));
        ws.set_option(boost::beast::websocket::stream_base::decorator(
            [forwarded](boost::beast::websocket::request_type& req) {
                req.set("X-Forwarded-For", forwarded);
            }));
        ws.handshake("127.0.0.1", "/v1/terminal");
        const std::string hello = bad_hello("T-WS-1");
        ws.write(asio::buffer(hello.data(), hello.size() - 1));
        boost::beast::flat_buffer buf;
        ws.read(buf);
        return boost::beast::buffers_to_string(buf.data());
    };
    EXPECT_NE(code_for("198.51.100.40").find(R"("code":"rate_limited")"), std::string::npos);
    EXPECT_NE(code_for("198.51.100.41").find(R"("code":"bad_token")"), std::string::npos);
}

TEST_F(TerminalProxyProtocol, OverTlsTheHeaderComesBeforeTheHandshake) {
    namespace fs = std::filesystem;
    const fs::path dir =
        fs::path(::testing::TempDir()) / ("posrelay-pp-tls-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    make_certificate(dir, "server");
    start({"--terminal-listen", "off", "--terminal-tls-listen", "127.0.0.1:0",
           "--terminal-tls-cert", (dir / "server.crt").string(), "--terminal-tls-key",
           (dir / "server.key").string()});
    const auto port = static_cast<unsigned short>(
        json_int(p_.proc->wait_for_line(R"("what":"terminals-tls")"), "port"));
    asio::io_context ioc;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.set_verify_mode(asio::ssl::verify_none);
    asio::ssl::stream<asio::ip::tcp::socket> tls(ioc, ctx);
    tls.next_layer().assign(asio::ip::tcp::v4(), connect_from(trusted_ip, port));
    asio::write(tls.next_layer(), asio::buffer(v2_tcp4(31, 40031)));
    tls.handshake(asio::ssl::stream_base::client);
    asio::write(tls, asio::buffer(bad_hello("T-TLS")));
    std::string answer;
    boost::system::error_code ec;
    asio::read_until(tls, asio::dynamic_buffer(answer), '\n', ec);
    EXPECT_NE(answer.find(R"("code":"bad_token")"), std::string::npos) << answer << ec.message();
    const auto line = p_.proc->wait_for_line(R"("terminal_id":"T-TLS")");
    EXPECT_NE(line.find(R"("remote":"203.0.113.31:40031")"), std::string::npos) << line;
    std::error_code ignored;
    fs::remove_all(dir, ignored);
}

}  // namespace
}  // namespace posrelay::test
