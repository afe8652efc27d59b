// terminal_client: one connection on a strand. Three coroutines after the welcome: the
// reader (frames → callbacks), the writer (queued frames, coalesced cumulative acks) and the
// ticker (client pings, heartbeat and write deadlines). abort_io() closes the socket, which
// ends every pending operation; the first recorded outcome is what run() returns.
#include "tools/terminal_client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <openssl/err.h>

#include <deque>
#include <optional>

#include "posrelay/log.hpp"

namespace posrelay::tools {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using clock_type = std::chrono::steady_clock;
using strand_type = asio::strand<asio::any_io_executor>;
using tls_socket = ssl::stream<tcp::socket>;

constexpr auto use_awaitable = asio::use_awaitable;
constexpr std::size_t read_chunk = 4096;

// A frame longer than the limit (line transports): reported like WebSocket's message_too_big.
const error_code frame_too_large_ec = make_error_code(asio::error::message_size);

bool is_ip_literal(const std::string& host) {
    error_code ec;
    (void)asio::ip::make_address(host, ec);
    return !ec;
}

// SNI and the certificate host check on a TLS stream about to handshake.
void prepare_tls(tls_socket& s, const client_options& o, error_code& ec) {
    const std::string& name = o.sni.empty() ? o.host : o.sni;
    if (!is_ip_literal(name)) {
        // SSL_set_tlsext_host_name is a macro with a C-style cast; call what it expands to.
        if (SSL_ctrl(s.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                     const_cast<char*>(name.c_str())) != 1) {
            ec = error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category());
            return;
        }
    }
    if (o.verify_host) s.set_verify_callback(ssl::host_name_verification(name));
}

// One frame at a time over some stream; read() returns a view valid until the next read().
class frame_transport {
public:
    virtual ~frame_transport() = default;
    virtual tcp::socket& socket() = 0;
    // TLS and/or WebSocket handshakes, after the TCP connect.
    virtual asio::awaitable<void> handshake(const client_options& o, error_code& ec) = 0;
    virtual asio::awaitable<std::string_view> read(error_code& ec) = 0;
    virtual asio::awaitable<void> write(std::string_view frame, error_code& ec) = 0;
    // After the last write: WebSocket close handshake, or a TCP FIN.
    virtual asio::awaitable<void> close_gracefully(error_code& ec) = 0;
    virtual void set_max_frame(std::size_t bytes) = 0;
};

// Newline-delimited JSON over TCP or TLS. Reads in small chunks: the buffer stays about one
// frame large, which is what lets one process hold thousands of connections.
template <class Stream>
class line_transport final : public frame_transport {
public:
    line_transport(const strand_type& ex, ssl::context* ctx) : stream_(make(ex, ctx)) {}

    tcp::socket& socket() override {
        if constexpr (std::is_same_v<Stream, tls_socket>) {
            return stream_.next_layer();
        } else {
            return stream_;
        }
    }

    asio::awaitable<void> handshake(const client_options& o, error_code& ec) override {
        if constexpr (std::is_same_v<Stream, tls_socket>) {
            prepare_tls(stream_, o, ec);
            if (ec) co_return;
            co_await stream_.async_handshake(ssl::stream_base::client,
                                             asio::redirect_error(use_awaitable, ec));
        }
        co_return;
    }

    asio::awaitable<std::string_view> read(error_code& ec) override {
        if (consumed_ > 0) {
            buf_.erase(0, consumed_);
            consumed_ = 0;
            scanned_ = 0;
        }
        for (;;) {
            auto nl = buf_.find('\n', scanned_);
            if (nl != std::string::npos) {
                consumed_ = nl + 1;
                std::string_view frame(buf_.data(), nl);
                if (frame.ends_with('\r')) frame.remove_suffix(1);
                co_return frame;
            }
            scanned_ = buf_.size();
            if (buf_.size() > limit_) {
                ec = frame_too_large_ec;
                co_return std::string_view{};
            }
            const auto old = buf_.size();
            buf_.resize(old + read_chunk);
            auto n = co_await stream_.async_read_some(asio::buffer(buf_.data() + old, read_chunk),
                                                      asio::redirect_error(use_awaitable, ec));
            buf_.resize(old + n);
            if (ec) co_return std::string_view{};
        }
    }

    asio::awaitable<void> write(std::string_view frame, error_code& ec) override {
        wbuf_.assign(frame);
        wbuf_ += '\n';
        co_await asio::async_write(stream_, asio::buffer(wbuf_),
                                   asio::redirect_error(use_awaitable, ec));
        if (wbuf_.capacity() > 64 * 1024) std::string().swap(wbuf_);
    }

    asio::awaitable<void> close_gracefully(error_code& ec) override {
        // A FIN (no TLS close_notify: that would need reading, which the reader owns). The
        // reader then drains until the server closes, so nothing unread causes a reset.
        (void)socket().shutdown(tcp::socket::shutdown_send, ec);
        co_return;
    }

    void set_max_frame(std::size_t bytes) override { limit_ = bytes + 2; }

private:
    static Stream make(const strand_type& ex, ssl::context* ctx) {
        if constexpr (std::is_same_v<Stream, tls_socket>) {
            return Stream(ex, *ctx);
        } else {
            return Stream(ex);
        }
    }

    Stream stream_;
    std::string buf_;
    std::size_t consumed_ = 0;  // bytes of the frame last returned, erased at the next read
    std::size_t scanned_ = 0;   // bytes already searched for '\n'
    std::size_t limit_ = default_max_frame_bytes + 2;
    std::string wbuf_;
};

// One JSON object per WebSocket text message, over TCP or TLS.
template <class Next>
class ws_transport final : public frame_transport {
public:
    ws_transport(const strand_type& ex, ssl::context* ctx) : ws_(make(ex, ctx)) {
        ws_.read_message_max(default_max_frame_bytes + 2);
    }

    tcp::socket& socket() override { return beast::get_lowest_layer(ws_); }

    asio::awaitable<void> handshake(const client_options& o, error_code& ec) override {
        if constexpr (std::is_same_v<Next, tls_socket>) {
            prepare_tls(ws_.next_layer(), o, ec);
            if (ec) co_return;
            co_await ws_.next_layer().async_handshake(ssl::stream_base::client,
                                                      asio::redirect_error(use_awaitable, ec));
            if (ec) co_return;
        }
        ws_.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
            req.set(beast::http::field::user_agent, "posrelay-terminal");
        }));
        ws_.text(true);
        std::string host_header =
            o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host;
        host_header += ":" + std::to_string(o.port);
        co_await ws_.async_handshake(host_header, o.ws_path,
                                     asio::redirect_error(use_awaitable, ec));
    }

    asio::awaitable<std::string_view> read(error_code& ec) override {
        buf_.clear();
        co_await ws_.async_read(buf_, asio::redirect_error(use_awaitable, ec));
        if (ec) co_return std::string_view{};
        co_return std::string_view(static_cast<const char*>(buf_.data().data()), buf_.size());
    }

    asio::awaitable<void> write(std::string_view frame, error_code& ec) override {
        co_await ws_.async_write(asio::buffer(frame.data(), frame.size()),
                                 asio::redirect_error(use_awaitable, ec));
    }

    asio::awaitable<void> close_gracefully(error_code& ec) override {
        co_await ws_.async_close(websocket::close_code::normal,
                                 asio::redirect_error(use_awaitable, ec));
    }

    void set_max_frame(std::size_t bytes) override { ws_.read_message_max(bytes + 2); }

private:
    using stream_type = websocket::stream<Next>;
    static stream_type make(const strand_type& ex, ssl::context* ctx) {
        if constexpr (std::is_same_v<Next, tls_socket>) {
            return stream_type(ex, *ctx);
        } else {
            (void)ctx;
            return stream_type(ex);
        }
    }

    stream_type ws_;
    beast::flat_buffer buf_;
};

std::unique_ptr<frame_transport> make_transport(const strand_type& ex, const client_options& o) {
    if (uses_tls(o.kind) && !o.tls) {
        throw std::invalid_argument("terminal_client: tls/wss needs client_options::tls");
    }
    switch (o.kind) {
        case transport::tcp:
            return std::make_unique<line_transport<tcp::socket>>(ex, nullptr);
        case transport::tls:
            return std::make_unique<line_transport<tls_socket>>(ex, o.tls.get());
        case transport::ws:
            return std::make_unique<ws_transport<tcp::socket>>(ex, nullptr);
        case transport::wss:
            return std::make_unique<ws_transport<tls_socket>>(ex, o.tls.get());
    }
    throw std::invalid_argument("terminal_client: unknown transport");
}

bool is_frame_too_large(const error_code& ec) {
    return ec == frame_too_large_ec || ec == websocket::error::message_too_big;
}

class client_impl final : public terminal_client, public std::enable_shared_from_this<client_impl> {
public:
    client_impl(asio::any_io_executor ex, client_options o, client_handlers h)
        : strand_(asio::make_strand(ex)),
          opts_(std::move(o)),
          handlers_(std::move(h)),
          transport_(make_transport(strand_, opts_)),
          deadline_(strand_),
          tick_(strand_),
          wake_(strand_),
          hold_(strand_) {
        transport_->set_max_frame(opts_.max_read_frame_bytes);
    }

    asio::awaitable<outcome> run() override {
        auto self = shared_from_this();
        co_return co_await asio::co_spawn(strand_, self->do_run(), use_awaitable);
    }

    void ack(std::uint64_t seq) override {
        asio::dispatch(strand_, [self = shared_from_this(), seq] {
            if (seq > self->ack_pending_) {
                self->ack_pending_ = seq;
                self->wake_.cancel();
            }
        });
    }
    void ping(std::string id) override { send(ping_json(id)); }
    void send(std::string frame) override {
        asio::dispatch(strand_, [self = shared_from_this(), f = std::move(frame)]() mutable {
            self->enqueue(std::move(f));
        });
    }
    void close() override {
        asio::dispatch(strand_, [self = shared_from_this()] {
            self->set_outcome(outcome{});  // kind::closed, unless it already ended otherwise
            if (self->welcomed_) {
                self->begin_close();
            } else {
                self->abort_io();
            }
        });
    }
    void abort() override {
        asio::dispatch(strand_, [self = shared_from_this()] {
            self->set_outcome(outcome{});
            self->abort_io();
        });
    }

private:
    asio::awaitable<outcome> do_run() {
        auto self = shared_from_this();
        try {
            co_await run_connection();
        } catch (...) {
            abort_io();  // a handler threw: stop the writer and the ticker, then rethrow
            throw;
        }
        abort_io();
        co_return outcome_.value_or(outcome{});
    }

    asio::awaitable<void> run_connection() {
        if (!outcome_) co_await connect_and_handshake();
        if (!outcome_) {
            co_spawn(strand_, writer_loop(), asio::detached);
            co_spawn(strand_, ticker_loop(), asio::detached);
            if (opts_.read_after_welcome) {
                co_await read_loop();
            } else {
                // Wait until the writer or the ticker ends the connection.
                error_code ec;
                while (!aborted_) {
                    hold_.expires_at(clock_type::time_point::max());
                    co_await hold_.async_wait(asio::redirect_error(use_awaitable, ec));
                }
            }
        }
    }

    void fail(outcome::kind k, error_code ec, std::string detail) {
        outcome o;
        o.what = k;
        o.ec = ec;
        o.detail = std::move(detail);
        if (ec) o.detail += ": " + ec.message();
        set_outcome(std::move(o));
    }

    asio::awaitable<void> connect_and_handshake() {
        auto self = shared_from_this();
        deadline_.expires_after(opts_.connect_timeout);
        deadline_.async_wait([self](error_code ec) {
            if (ec || self->welcomed_ || self->aborted_) return;
            self->fail(
                self->connected_ ? outcome::kind::handshake_failed : outcome::kind::connect_failed,
                {}, "no welcome within the connect timeout");
            self->abort_io();
        });

        error_code ec;
        std::vector<tcp::endpoint> endpoints = opts_.endpoints;
        if (endpoints.empty()) {
            resolver_.emplace(strand_);
            auto results = co_await resolver_->async_resolve(
                opts_.host, std::to_string(opts_.port), asio::redirect_error(use_awaitable, ec));
            if (outcome_) co_return;
            if (ec) co_return fail(outcome::kind::connect_failed, ec, "resolve " + opts_.host);
            for (const auto& r : results)
                endpoints.push_back(r.endpoint());
        }
        co_await asio::async_connect(transport_->socket(), endpoints,
                                     asio::redirect_error(use_awaitable, ec));
        if (outcome_) co_return;
        if (ec) co_return fail(outcome::kind::connect_failed, ec, "connect");
        connected_ = true;
        (void)transport_->socket().set_option(tcp::no_delay(true), ec);

        co_await transport_->handshake(opts_, ec);
        if (outcome_) co_return;
        if (ec) {
            co_return fail(
                outcome::kind::connect_failed, ec,
                uses_websocket(opts_.kind) ? "WebSocket/TLS handshake" : "TLS handshake");
        }
        co_await transport_->write(hello_json(opts_.hello), ec);
        if (outcome_) co_return;
        if (ec) co_return fail(outcome::kind::handshake_failed, ec, "sending hello");

        auto text = co_await transport_->read(ec);
        if (outcome_) co_return;
        if (ec) {
            if (is_frame_too_large(ec)) {
                co_return fail(outcome::kind::protocol_error, {}, "frame too large");
            }
            co_return fail(outcome::kind::handshake_failed, ec, "waiting for the welcome");
        }
        server_frame f;
        std::string err;
        if (!parse_server_frame(text, f, err)) {
            co_return fail(outcome::kind::protocol_error, {}, "instead of a welcome: " + err);
        }
        if (f.op == server_op::error) {
            outcome o;
            o.what = outcome::kind::server_error;
            o.error = f.error;
            o.detail = "error " + f.error.code + ": " + f.error.message;
            set_outcome(std::move(o));
            co_return;
        }
        if (f.op == server_op::goaway) {
            outcome o;
            o.what = outcome::kind::goaway;
            o.goaway = f.goaway;
            o.detail = "goaway before the welcome: " + f.goaway.reason;
            set_outcome(std::move(o));
            co_return;
        }
        if (f.op != server_op::welcome) {
            co_return fail(outcome::kind::protocol_error, {},
                           "expected a welcome, got op \"" + f.op_name + "\"");
        }
        welcomed_ = true;
        deadline_.cancel();
        heartbeat_ = f.welcome.heartbeat;
        transport_->set_max_frame(std::max(opts_.max_read_frame_bytes, f.welcome.max_frame_bytes));
        last_heard_ = last_sent_ = clock_type::now();
        if (handlers_.on_welcome) handlers_.on_welcome(f.welcome);
    }

    asio::awaitable<void> read_loop() {
        error_code ec;
        server_frame f;
        std::string err;
        while (!aborted_) {
            auto text = co_await transport_->read(ec);
            if (ec) {
                if (is_frame_too_large(ec)) {
                    fail(outcome::kind::protocol_error, {}, "frame too large");
                } else if (ec == websocket::error::closed || ec == asio::error::eof) {
                    fail(outcome::kind::connection_lost, {}, "closed by the server");
                } else {
                    fail(outcome::kind::connection_lost, ec, "read");
                }
                co_return;
            }
            last_heard_ = clock_type::now();
            if (closing_) continue;  // draining until the server closes
            if (!parse_server_frame(text, f, err)) {
                fail(outcome::kind::protocol_error, {}, err);
                co_return;
            }
            switch (f.op) {
                case server_op::event:
                    if (handlers_.on_event) handlers_.on_event(f.event, text);
                    break;
                case server_op::ping:
                    log_frame("ping", {});
                    enqueue(pong_json());
                    break;
                case server_op::error:
                    if (f.error.fatal) {
                        outcome o;
                        o.what = outcome::kind::server_error;
                        o.error = f.error;
                        o.detail = "error " + f.error.code + ": " + f.error.message;
                        set_outcome(std::move(o));
                        begin_close();
                    } else if (handlers_.on_error) {
                        handlers_.on_error(f.error, text);
                    }
                    break;
                case server_op::goaway: {
                    outcome o;
                    o.what = outcome::kind::goaway;
                    o.goaway = f.goaway;
                    o.detail = "goaway: " + f.goaway.reason;
                    set_outcome(std::move(o));
                    begin_close();
                    break;
                }
                case server_op::welcome:
                    fail(outcome::kind::protocol_error, {}, "a second welcome");
                    co_return;
                case server_op::pong:
                case server_op::result:
                case server_op::other:
                    log_frame(f.op_name, f.id);
                    if (handlers_.on_other) handlers_.on_other(f, text);
                    break;
            }
        }
    }

    asio::awaitable<void> writer_loop() {
        auto self = shared_from_this();
        error_code ec;
        std::string frame;
        while (!aborted_) {
            if (!queue_.empty()) {
                frame = std::move(queue_.front());
                queue_.pop_front();
            } else if (ack_pending_ > ack_sent_) {
                frame = ack_json(ack_pending_);
                ack_sent_ = ack_pending_;
            } else if (closing_) {
                co_await transport_->close_gracefully(ec);
                // WebSocket: the close handshake is done. TCP/TLS: the reader drains until
                // the server closes (bounded by the close deadline); without a reader, now.
                if (uses_websocket(opts_.kind) || !opts_.read_after_welcome || ec) abort_io();
                co_return;
            } else {
                wake_.expires_at(clock_type::time_point::max());
                co_await wake_.async_wait(asio::redirect_error(use_awaitable, ec));
                continue;
            }
            writing_ = true;
            write_started_ = clock_type::now();
            co_await transport_->write(frame, ec);
            writing_ = false;
            last_sent_ = clock_type::now();
            if (ec) {
                if (!aborted_) fail(outcome::kind::connection_lost, ec, "write");
                abort_io();
                co_return;
            }
        }
    }

    asio::awaitable<void> ticker_loop() {
        auto self = shared_from_this();
        error_code ec;
        std::uint64_t pings = 0;
        auto last_ping = clock_type::now();
        while (!aborted_) {
            const auto now = clock_type::now();
            const auto hb = heartbeat_;
            if (writing_ && now - write_started_ >= opts_.write_timeout) {
                fail(outcome::kind::write_timeout, {}, "a write stalled");
                abort_io();
                co_return;
            }
            if (opts_.read_after_welcome && now - last_heard_ >= 3 * hb) {
                fail(outcome::kind::heartbeat_timeout, {}, "nothing heard for 3 x heartbeat_ms");
                abort_io();
                co_return;
            }
            if (!closing_ && now - last_ping >= hb) {
                // Heard nothing for 2 x heartbeat (is the server there?), or sent nothing for
                // that long (the server needs something within 3 x). Without a reader: every
                // heartbeat, to keep the server's idle timeout away.
                const bool quiet = opts_.read_after_welcome
                                       ? now - last_heard_ >= 2 * hb || now - last_sent_ >= 2 * hb
                                       : now - last_sent_ >= hb;
                if (quiet) {
                    last_ping = now;
                    enqueue(ping_json("c" + std::to_string(++pings)));
                }
            }
            auto next = now + opts_.write_timeout / 2;
            if (opts_.read_after_welcome) {
                for (auto t : {last_heard_ + 2 * hb, last_heard_ + 3 * hb, last_sent_ + 2 * hb}) {
                    if (t > now) next = std::min(next, t);
                }
            } else {
                next = std::min(next, std::max(last_sent_, last_ping) + hb);
            }
            next = std::max(next, now + std::chrono::milliseconds(5));
            tick_.expires_at(next);
            co_await tick_.async_wait(asio::redirect_error(use_awaitable, ec));
        }
    }

    void enqueue(std::string frame) {
        if (aborted_ || closing_) return;
        queue_.push_back(std::move(frame));
        wake_.cancel();
    }

    void begin_close() {
        if (closing_ || aborted_) return;
        closing_ = true;
        deadline_.expires_after(opts_.close_timeout);
        deadline_.async_wait([self = shared_from_this()](error_code ec) {
            if (!ec) self->abort_io();
        });
        wake_.cancel();
    }

    void set_outcome(outcome o) {
        if (outcome_) return;
        o.welcomed = welcomed_;
        outcome_ = std::move(o);
    }

    void abort_io() {
        if (aborted_) return;
        aborted_ = true;
        if (!outcome_) set_outcome(outcome{});
        error_code ignored;
        if (resolver_) resolver_->cancel();
        (void)transport_->socket().close(ignored);
        deadline_.cancel();
        tick_.cancel();
        wake_.cancel();
        hold_.cancel();
    }

    void log_frame(std::string_view op, std::string_view id) {
        if (opts_.log_frames && log::enabled(log::level::debug)) {
            log::line(log::level::debug, "frame received")
                .str("terminal_id", opts_.hello.terminal_id)
                .str("op", op)
                .str("id", id);
        }
    }

    strand_type strand_;
    client_options opts_;
    client_handlers handlers_;
    std::unique_ptr<frame_transport> transport_;
    std::optional<tcp::resolver> resolver_;
    asio::steady_timer deadline_;  // connect → welcome, then the graceful-close bound
    asio::steady_timer tick_;
    asio::steady_timer wake_;  // the writer waits on it; cancel() wakes it
    asio::steady_timer hold_;  // without a reader, run() waits on it

    std::optional<outcome> outcome_;
    bool connected_ = false;
    bool welcomed_ = false;
    bool closing_ = false;
    bool aborted_ = false;
    bool writing_ = false;
    std::chrono::milliseconds heartbeat_ = default_heartbeat;
    clock_type::time_point last_heard_{};
    clock_type::time_point last_sent_{};
    clock_type::time_point write_started_{};
    std::deque<std::string> queue_;
    std::uint64_t ack_pending_ = 0;
    std::uint64_t ack_sent_ = 0;
};

}  // namespace

std::shared_ptr<terminal_client> terminal_client::create(boost::asio::any_io_executor ex,
                                                         client_options opts,
                                                         client_handlers handlers) {
    return std::make_shared<client_impl>(std::move(ex), std::move(opts), std::move(handlers));
}

}  // namespace posrelay::tools
