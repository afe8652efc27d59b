// Resource bounds of a real posrelay (issue 13, finding 8): terminal connections closed before
// hello release their descriptor at once; a terminal flooding pings without reading is cut as
// a slow consumer with memory bounded (TCP, TLS, WebSocket); a fresh silent HTTP connection
// gets the header timeout; --max-header-bytes is exact; QR-route token failures are limited.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/websocket.hpp>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "posrelay/fanout/protocol.hpp"
#include "process.hpp"
#include "redis_server.hpp"
#include "terminal_conn.hpp"
#include "tls_proxy.hpp"

namespace posrelay::test {
namespace {

// How much a flooded posrelay's peak RSS may grow. Under AddressSanitizer freed memory waits in
// its quarantine (256 MiB by default) before reuse, so the peak measures the quarantine, not
// the send-queue bound: the bound is checked by the release build, the sanitizer build checks
// the cut and everything else.
#ifdef __SANITIZE_ADDRESS__
constexpr long max_growth_kib = 512 * 1024;
#else
constexpr long max_growth_kib = 24 * 1024;
#endif

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;
using std::chrono::seconds;

// ---- process probes ----------------------------------------------------------------------

std::size_t open_fds(pid_t pid) {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e :
         fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd"))
        ++n;
    return n;
}

// A "Name:   N kB" line of /proc/PID/status, in KiB (-1 when absent).
long status_kib(pid_t pid, std::string_view name) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.starts_with(name)) return std::stol(line.substr(name.size()));
    }
    return -1;
}

double metric(unsigned short port, std::string_view series) {
    return metric_value(http_client(port).get("/metrics").body(), series);
}

// Shuts `fd` down (unblocking whatever a thread does on it) unless disarmed within `limit`:
// bounds every blocking call of a synchronous client.
class deadline_guard {
public:
    deadline_guard(int fd, milliseconds limit)
        : thread_([this, fd, limit] {
              std::unique_lock lock(mutex_);
              if (!cv_.wait_for(lock, limit, [this] { return disarmed_; }))
                  ::shutdown(fd, SHUT_RDWR);
          }) {}
    ~deadline_guard() { disarm(); }
    void disarm() {
        {
            std::lock_guard lock(mutex_);
            disarmed_ = true;
        }
        cv_.notify_all();
        if (thread_.joinable()) thread_.join();
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    bool disarmed_ = false;
    std::thread thread_;
};

// ---- a synchronous terminal link over tcp, tls or ws --------------------------------------

class sync_link {
public:
    // Connects with SO_RCVBUF = `rcvbuf` (so a client that does not read stalls the server's
    // writes quickly) and does the transport's handshake.
    sync_link(std::string transport, unsigned short port, int rcvbuf)
        : transport_(std::move(transport)) {
        tcp::socket s(ioc_);
        s.open(tcp::v4());
        s.set_option(asio::socket_base::receive_buffer_size(rcvbuf));
        s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
        fd_ = s.native_handle();
        if (transport_ == "tls") {
            tls_ctx_.set_verify_mode(asio::ssl::verify_none);
            tls_ = std::make_unique<asio::ssl::stream<tcp::socket>>(std::move(s), tls_ctx_);
            tls_->handshake(asio::ssl::stream_base::client);
        } else if (transport_ == "ws") {
            ws_ = std::make_unique<beast::websocket::stream<tcp::socket>>(std::move(s));
            ws_->handshake("127.0.0.1", "/v1/terminal");
            ws_->text(true);
        } else {
            tcp_ = std::make_unique<tcp::socket>(std::move(s));
        }
    }
    [[nodiscard]] int fd() const noexcept { return fd_; }

    // `count` copies of `frame` (one JSON object, no newline). Throws when the link fails.
    void send_frames(const std::string& frame, int count) {
        if (ws_) {
            for (int i = 0; i < count; ++i)
                ws_->write(asio::buffer(frame));
            return;
        }
        std::string batch;
        batch.reserve((frame.size() + 1) * static_cast<std::size_t>(count));
        for (int i = 0; i < count; ++i)
            (batch += frame) += '\n';
        if (tls_)
            asio::write(*tls_, asio::buffer(batch));
        else
            asio::write(*tcp_, asio::buffer(batch));
    }

    std::string read_frame() {
        if (ws_) {
            beast::flat_buffer b;
            ws_->read(b);
            return beast::buffers_to_string(b.data());
        }
        std::size_t n = tls_ ? asio::read_until(*tls_, asio::dynamic_buffer(buf_), '\n')
                             : asio::read_until(*tcp_, asio::dynamic_buffer(buf_), '\n');
        std::string line = buf_.substr(0, n - 1);
        buf_.erase(0, n);
        return line;
    }

    // hello with a valid token; true when the welcome came.
    bool hello(const std::string& terminal, const std::string& store) {
        send_frames(R"({"op":"hello","v":1,"terminal_id":")" + terminal + R"(","store_id":")" +
                        store + R"(","token":")" +
                        fanout::mint_token(test_terminal_secret, terminal, store) + "\"}",
                    1);
        return read_frame().find(R"("op":"welcome")") != std::string::npos;
    }

private:
    std::string transport_;
    asio::io_context ioc_;
    asio::ssl::context tls_ctx_{asio::ssl::context::tls_client};
    std::unique_ptr<tcp::socket> tcp_;
    std::unique_ptr<asio::ssl::stream<tcp::socket>> tls_;
    std::unique_ptr<beast::websocket::stream<tcp::socket>> ws_;
    std::string buf_;
    int fd_ = -1;
};

// ---- terminal bounds ------------------------------------------------------------------------

class TerminalBounds : public ::testing::TestWithParam<std::string> {
protected:
    static void SetUpTestSuite() { raise_fd_limit(); }
    void SetUp() override {
        dir_ = fs::path(::testing::TempDir()) / ("posrelay-bounds-" + std::to_string(::getpid()));
        fs::create_directories(dir_);
        make_certificate(dir_, "server");
        redis_.start();
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    // A node with every terminal transport: TCP, TLS, and WebSocket on the HTTP port.
    relay_node start_node(std::vector<std::string> extra = {}) {
        std::vector<std::string> args = {"--io-threads",          "2",
                                         "--terminal-listen",     "127.0.0.1:0",
                                         "--terminal-tls-listen", "127.0.0.1:0",
                                         "--terminal-tls-cert",   (dir_ / "server.crt").string(),
                                         "--terminal-tls-key",    (dir_ / "server.key").string()};
        args.insert(args.end(), extra.begin(), extra.end());
        relay_node n = start_relay_node(std::move(args), relay_env(redis_.url()));
        tls_port_ = static_cast<unsigned short>(
            json_int(n.p.proc->wait_for_line(R"("what":"terminals-tls")"), "port"));
        return n;
    }
    unsigned short port_of(const relay_node& n, const std::string& transport) const {
        if (transport == "tls") return tls_port_;
        if (transport == "ws") return n.p.port;
        return n.terminal_port;
    }

    fs::path dir_;
    redis_server redis_;
    unsigned short tls_port_ = 0;
};

// Finding 8a: a connect+close before hello kept its session and descriptor for 3 heartbeats
// (45 s): handshake() returned on the read error without closing, and the sender then idled
// until the silence deadline. Defaults for every timeout, so none can do the releasing.
TEST_F(TerminalBounds, ConnectAndCloseBeforeHelloReleasesTheDescriptorAtOnce) {
    relay_node n = start_node();
    const pid_t pid = n.p.proc->pid();
    const std::size_t baseline = open_fds(pid);
    constexpr int plain = 300;  // half closed with FIN, half reset
    for (int i = 0; i < plain; ++i) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(n.terminal_port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        if (i % 2 == 1) {
            const linger reset{1, 0};
            ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        }
        ::close(fd);
    }
    constexpr int upgraded = 50;  // WebSocket: upgraded, then gone before hello
    for (int i = 0; i < upgraded; ++i) {
        asio::io_context ioc;
        beast::websocket::stream<tcp::socket> ws(ioc);
        ws.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), n.p.port));
        ws.handshake("127.0.0.1", "/v1/terminal");
    }
    const bool released = wait_until([&] { return open_fds(pid) <= baseline + 2; }, seconds(5));
    EXPECT_TRUE(released) << "posrelay holds " << open_fds(pid) << " descriptors, " << baseline
                          << " before the connections";
    // Every connection was seen (not still waiting in the listen backlog), and ended.
    EXPECT_TRUE(wait_metric(n.p.port,
                            R"(posrelay_terminal_handshakes_total{outcome="peer_closed"})",
                            plain / 2 + upgraded));
    const auto m = http_client(n.p.port).get("/metrics").body();
    EXPECT_EQ(metric_value(m, R"(posrelay_terminal_connections{transport="tcp"})"), 0);
    EXPECT_EQ(metric_value(m, R"(posrelay_terminal_connections{transport="ws"})"), 0);
}

// Finding 8b: pongs bypassed the send-queue bound; a terminal flooding pings without reading
// grew memory by hundreds of MiB before its write timed out. Now its reader stops at the
// bound and the stalled write cuts it as a slow consumer.
TEST_P(TerminalBounds, PingFloodWithoutReadingIsCutAndMemoryStaysBounded) {
    const std::string transport = GetParam();
    relay_node n = start_node({"--terminal-write-timeout", "3s"});
    const pid_t pid = n.p.proc->pid();
    sync_link link(transport, port_of(n, transport), 4096);
    deadline_guard guard(link.fd(), seconds(60));  // no blocking call outlives this test
    ASSERT_TRUE(link.hello("T-FLOOD", "S-FLOOD"));
    const long rss_before = status_kib(pid, "VmRSS:");
    // ~90-byte pings (a 64-byte id), each answered by a pong of the same size: 600,000 of them
    // queue ~110 MiB of pongs when nothing bounds them.
    const std::string ping = R"({"op":"ping","id":")" + std::string(64, 'p') + "\"}";
    std::atomic<long> sent{0};
    std::thread flood([&] {
        try {
            for (int i = 0; i < 600; ++i) {
                link.send_frames(ping, 1000);
                sent += 1000;
            }
        } catch (const std::exception&) {
            // the server cut the link (or the deadline guard shut it down)
        }
    });
    const bool cut =
        wait_metric(n.p.port, "posrelay_terminal_slow_consumer_disconnects_total", 1, seconds(30));
    ::shutdown(link.fd(), SHUT_RDWR);  // unblocks the flood thread either way
    flood.join();
    const long peak = status_kib(pid, "VmHWM:");
    EXPECT_TRUE(cut) << "pings sent: " << sent.load();
    EXPECT_LT(peak - rss_before, max_growth_kib)
        << "KiB of peak growth; pings sent before the cut: " << sent.load();
    EXPECT_GE(metric(n.p.port, "posrelay_terminal_reads_paused_total"), 1);
    EXPECT_NE(n.p.proc->output().find(R"("reason":"slow_consumer")"), std::string::npos);
    if (HasFailure()) std::cout << n.p.proc->output().substr(0, 20000);
}

INSTANTIATE_TEST_SUITE_P(Transports, TerminalBounds, ::testing::Values("tcp", "tls", "ws"));

// Beast answers WebSocket pings itself: the pong goes out under the stream's write lock, so a
// peer that floods control pings without reading stalls its own read (nothing is queued);
// the heartbeat's write then times out and cuts it.
TEST_F(TerminalBounds, WebSocketControlPingFloodStaysBounded) {
    relay_node n = start_node({"--terminal-write-timeout", "1s", "--terminal-heartbeat", "1s"});
    const pid_t pid = n.p.proc->pid();
    asio::io_context ioc;
    beast::websocket::stream<tcp::socket> ws(ioc);
    ws.next_layer().open(tcp::v4());
    ws.next_layer().set_option(asio::socket_base::receive_buffer_size(4096));
    ws.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), n.p.port));
    deadline_guard guard(ws.next_layer().native_handle(), seconds(60));
    ws.handshake("127.0.0.1", "/v1/terminal");
    ws.text(true);
    ws.write(
        asio::buffer(R"({"op":"hello","v":1,"terminal_id":"T-WSP","store_id":"S-1","token":")" +
                     fanout::mint_token(test_terminal_secret, "T-WSP", "S-1") + "\"}"));
    beast::flat_buffer welcome;
    ws.read(welcome);
    const long rss_before = status_kib(pid, "VmRSS:");
    std::atomic<long> sent{0};
    std::thread flood([&] {
        try {
            const beast::websocket::ping_data payload(std::string(125, 'c').c_str());
            for (int i = 0; i < 200'000; ++i) {
                ws.ping(payload);
                ++sent;
            }
        } catch (const std::exception&) {
        }
    });
    const bool cut =
        wait_metric(n.p.port, "posrelay_terminal_slow_consumer_disconnects_total", 1, seconds(30));
    ::shutdown(ws.next_layer().native_handle(), SHUT_RDWR);
    flood.join();
    EXPECT_TRUE(cut) << "pings sent: " << sent.load();
    EXPECT_LT(status_kib(pid, "VmHWM:") - rss_before, max_growth_kib);
}

// ---- HTTP bounds --------------------------------------------------------------------------

class HttpBounds : public ::testing::Test {
protected:
    static void SetUpTestSuite() { raise_fd_limit(); }
    void SetUp() override {
        server_ = start_posrelay({"--store", "memory", "--io-threads", "2", "--header-timeout",
                                  "500ms", "--idle-timeout", "60s", "--max-header-bytes", "8192"},
                                 {{"POSRELAY_SERVER_KEY", std::string(test_server_key)}});
    }
    posrelay_process server_;
};

// True when the server closes `fd` within `limit` (what it sends first is read and dropped).
bool closed_within(int fd, milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        const auto left =
            std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
        char b[4096];
        if (::recv(fd, b, sizeof b, 0) <= 0) return true;
    }
}

// Finding 8c: a fresh connection waited the keep-alive idle timeout (here 60 s) for its first
// byte; it gets the header timeout (500 ms). Between requests the idle timeout still applies.
TEST_F(HttpBounds, FreshSilentConnectionGetsTheHeaderTimeoutNotTheIdleTimeout) {
    http_client silent(server_.port);
    EXPECT_TRUE(closed_within(silent.socket().native_handle(), seconds(10)));
    EXPECT_TRUE(wait_metric(server_.port, R"(posrelay_http_timeouts_total{phase="header"})", 1));
    // After an answer the connection waits for the next request under the idle timeout: still
    // open after 3 header timeouts.
    http_client kept(server_.port);
    ASSERT_EQ(kept.get("/healthz").result_int(), 200);
    EXPECT_FALSE(closed_within(kept.socket().native_handle(), milliseconds(1500)));
    EXPECT_EQ(kept.get("/healthz").result_int(), 200);
}

// A request to /healthz whose header block (request line, fields, the empty line) is exactly
// `total` bytes; `in_target`: the padding goes in the query string instead of a field.
std::string request_of_size(std::size_t total, bool in_target) {
    const std::string fixed_target = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
    if (in_target) {
        const std::string head = "GET /healthz?";
        const std::string tail = " HTTP/1.1\r\nHost: x\r\n\r\n";
        return head + std::string(total - head.size() - tail.size(), 'q') + tail;
    }
    const std::string field = "X-Pad: ";
    const std::size_t pad = total - fixed_target.size() - field.size() - 4;
    return fixed_target + field + std::string(pad, 'h') + "\r\n\r\n";
}

// The status and body of the answer to `raw`, sent in two pieces.
std::pair<int, std::string> send_raw(unsigned short port, const std::string& raw) {
    http_client c(port);
    const int fd = c.socket().native_handle();
    const std::size_t half = raw.size() / 2;
    ::send(fd, raw.data(), half, MSG_NOSIGNAL);
    ::send(fd, raw.data() + half, raw.size() - half, MSG_NOSIGNAL);
    boost::beast::flat_buffer b;
    http_response res;
    boost::beast::error_code ec;
    boost::beast::http::read(c.socket(), b, res, ec);
    if (ec) return {-1, ec.message()};
    return {res.result_int(), res.body()};
}

// Finding 8d: Beast's header_limit bounds the request line and the fields separately, so
// ~12 KB of headers passed an 8 KiB limit. The whole header block now counts, exactly.
TEST_F(HttpBounds, MaxHeaderBytesIsExact) {
    for (const bool in_target : {false, true}) {
        auto [ok, ok_body] = send_raw(server_.port, request_of_size(8192, in_target));
        EXPECT_EQ(ok, 200) << "exactly the limit, in_target " << in_target << ": " << ok_body;
        auto [big, big_body] = send_raw(server_.port, request_of_size(8193, in_target));
        EXPECT_EQ(big, 431) << "one byte over, in_target " << in_target << ": " << big_body;
        EXPECT_NE(big_body.find(R"("error":"header_too_large")"), std::string::npos) << big_body;
    }
    // The finding's shape: a 6 KB request line and 6 KB of fields.
    const std::string split = "GET /healthz?" + std::string(6000, 'q') +
                              " HTTP/1.1\r\nHost: x\r\n" + "X-Pad: " + std::string(6000, 'h') +
                              "\r\n\r\n";
    EXPECT_EQ(send_raw(server_.port, split).first, 431);
}

// ---- the QR route ---------------------------------------------------------------------------

// Finding 8e: bad tokens on GET /v1/orders/{id}/qr.png were answered 401 without limit (a
// token-guessing oracle). They now count towards the limit of failed handshakes, per
// (address, terminal id).
TEST(QrRoute, TokenFailuresAreRateLimitedPerAddress) {
    raise_fd_limit();
    redis_server redis;
    redis.start();
    relay_node n =
        start_relay_node({"--io-threads", "2", "--terminal-listen", "127.0.0.1:0", "--midtrans-url",
                          "http://127.0.0.1:9", "--public-url", "http://127.0.0.1:9", "--poll-rate",
                          "0", "--terminal-auth-failures-per-minute", "3"},
                         relay_env(redis.url()));
    auto qr = [&](const std::string& token) {
        std::map<std::string, std::string> h = {{"X-Terminal-Id", "T-1"}, {"X-Store-Id", "S-1"}};
        if (!token.empty()) h["Authorization"] = "Bearer " + token;
        return http_client(n.p.port).request(boost::beast::http::verb::get, "/v1/orders/Q-1/qr.png",
                                             "", "", h);
    };
    EXPECT_EQ(qr("").result_int(), 401);
    EXPECT_EQ(qr("v1.bad").result_int(), 401);
    EXPECT_EQ(qr("v1.worse").result_int(), 401);
    const auto limited = qr("v1.again");
    EXPECT_EQ(limited.result_int(), 429);
    EXPECT_NE(limited.body().find(R"("error":"rate_limited")"), std::string::npos)
        << limited.body();
    EXPECT_FALSE(limited[boost::beast::http::field::retry_after].empty());
    // Issue 16 item 6: a right token from the same address is never refused (the token is
    // checked first; only failures are limited), on the QR route as at a handshake...
    EXPECT_NE(qr(fanout::mint_token(test_terminal_secret, "T-1", "S-1")).result_int(), 429);
    auto hello = [&](const std::string& token) {
        terminal_conn t(n.terminal_port);
        t.send_line(R"({"op":"hello","v":1,"terminal_id":"T-1","store_id":"S-1","token":")" +
                    token + "\"}");
        const auto f = t.read_frame(seconds(5));
        return f ? str(*f, "op") + ":" + str(*f, "code") : std::string("no answer");
    };
    EXPECT_EQ(hello(fanout::mint_token(test_terminal_secret, "T-1", "S-1")), "welcome:");
    // ... while a bad one for T-1 from this address waits out the window (one budget).
    EXPECT_EQ(hello("v1.bad"), "error:rate_limited");
    const auto m = http_client(n.p.port).get("/metrics").body();
    EXPECT_EQ(metric_value(m, R"(posrelay_qr_requests_refused_total{reason="unauthorized"})"), 3);
    EXPECT_EQ(metric_value(m, R"(posrelay_qr_requests_refused_total{reason="rate_limited"})"), 1);
}

}  // namespace
}  // namespace posrelay::test
