// HTTP/1.1 server: per-thread SO_REUSEPORT acceptors and one coroutine per connection.
// A session is one loop: wait (idle deadline, between requests) → read header (header
// deadline; from the accept for the first request) → read body (body deadline) → route →
// write (write deadline) → repeat while keep-alive.
#include "posrelay/http/server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <charconv>
#include <mutex>
#include <optional>
#include <unordered_set>

#include "posrelay/listen.hpp"
#include "posrelay/log.hpp"
#include "posrelay/net/forwarded_for.hpp"
#include "posrelay/net/proxy_protocol.hpp"

namespace posrelay::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

server_options server_options::from(const config& c) {
    server_options o;
    o.listen = c.listen;
    o.max_connections = c.max_connections;
    o.header_timeout = c.header_timeout;
    o.body_timeout = c.body_timeout;
    o.idle_timeout = c.idle_timeout;
    o.write_timeout = c.write_timeout;
    o.max_header_bytes = c.max_header_bytes;
    o.max_body_bytes = c.max_body_bytes;
    o.trusted_proxies =
        std::make_shared<const net::cidr_set>(net::parse_cidr_list(c.trusted_proxies));
    o.proxy_protocol = c.proxy_protocol;
    return o;
}

server_options server_options::admin_from(const config& c) {
    server_options o = from(c);
    o.listen = c.admin_listen.value();
    o.max_connections = c.admin_max_connections;
    o.metrics_name = "admin_http";
    o.proxy_protocol = false;  // --proxy-protocol is the main listener's
    return o;
}

struct http_server::shared {
    shared(server_options o, router& r, metrics::registry& reg)
        : opts(std::move(o)),
          routes(r),
          open(reg.add_gauge(name("open_connections"), "HTTP connections open now.")),
          accepted(
              reg.add_counter(name("connections_accepted_total"), "HTTP connections accepted.")),
          rejected(reg.add_counter(name("connections_rejected_total"),
                                   "HTTP connections closed at once because the listener's "
                                   "connection limit (--max-connections, "
                                   "--admin-max-connections) was reached.")),
          timeout_idle(timeout_counter(reg, "idle")),
          timeout_header(timeout_counter(reg, "header")),
          timeout_body(timeout_counter(reg, "body")),
          timeout_write(timeout_counter(reg, "write")),
          forwarded_malformed(reg.add_counter(
              name("forwarded_for_malformed_total"),
              "Requests from a trusted proxy whose X-Forwarded-For was malformed (the peer's "
              "address was used).")) {
        if (!opts.trusted_proxies) opts.trusted_proxies = std::make_shared<const net::cidr_set>();
        if (opts.proxy_protocol) {
            for (const auto reason : net::proxy_refusal_reasons) {
                proxy_refused.emplace_back(
                    reason, &reg.add_counter(name("proxy_protocol_refused_total"),
                                             "Connections closed at their start: a PROXY header "
                                             "from a peer not in --trusted-proxies "
                                             "(untrusted_peer), none or a malformed one from a "
                                             "trusted peer, or none within the header deadline.",
                                             {{"reason", std::string(reason)}}));
            }
        }
    }

    void count_proxy_refused(std::string_view reason) {
        for (auto& [r, c] : proxy_refused) {
            if (r == reason) c->inc();
        }
    }

    [[nodiscard]] std::string name(std::string_view what) const {
        return "posrelay_" + opts.metrics_name + "_" + std::string(what);
    }
    metrics::counter& timeout_counter(metrics::registry& reg, std::string phase) {
        return reg.add_counter(name("timeouts_total"),
                               "HTTP connections closed by a deadline, by phase (idle keep-alive, "
                               "header read, body read, answer write).",
                               {{"phase", std::move(phase)}});
    }

    // Called when a connection ends; fires `drained` once the last one is gone after shutdown.
    void connection_closed() {
        open.sub(1);
        if (connections.fetch_sub(1) == 1 && stopping.load()) fire_drained();
    }
    void fire_drained() {
        std::function<void()> f;
        {
            std::lock_guard lock(drained_mutex);
            f = std::move(drained);
            drained = nullptr;
        }
        if (f) f();
    }

    server_options opts;
    router& routes;
    metrics::gauge& open;
    metrics::counter& accepted;
    metrics::counter& rejected;
    metrics::counter& timeout_idle;
    metrics::counter& timeout_header;
    metrics::counter& timeout_body;
    metrics::counter& timeout_write;
    metrics::counter& forwarded_malformed;
    std::vector<std::pair<std::string_view, metrics::counter*>> proxy_refused;
    std::atomic<std::size_t> connections{0};
    std::atomic<bool> stopping{false};
    std::mutex drained_mutex;
    std::function<void()> drained;
};

namespace {
class session;
}

struct http_server::worker {
    worker(asio::io_context& c, std::size_t i) : ioc(c), index(i) {}
    asio::io_context& ioc;
    std::size_t index;
    std::unique_ptr<tcp::acceptor> acceptor;
    std::unordered_set<session*> sessions;  // touched only on ioc's thread
};

namespace {

using parser_type = beast_http::request_parser<beast_http::string_body>;

std::string_view path_of(boost::beast::string_view target) {
    const std::string_view t(target.data(), target.size());
    return t.substr(0, t.find('?'));
}

std::string endpoint_string(const tcp::socket& s) {
    beast::error_code ec;
    const auto ep = s.remote_endpoint(ec);
    if (ec) return "unknown";
    return ep.address().to_string() + ":" + std::to_string(ep.port());
}

// The answer as bytes: status line, fields, Content-Length of the body as it is now (a
// Content-Length or Transfer-Encoding field a route set is not copied), body.
void serialize(const response& res, std::string& out) {
    out.clear();
    out += "HTTP/1.1 ";
    out += std::to_string(res.result_int());
    out += ' ';
    const auto reason = res.reason();
    out.append(reason.data(), reason.size());
    out += "\r\n";
    for (const auto& f : res) {
        if (f.name() == beast_http::field::content_length ||
            f.name() == beast_http::field::transfer_encoding)
            continue;
        const auto name = f.name_string();
        const auto value = f.value();
        out.append(name.data(), name.size());
        out += ": ";
        out.append(value.data(), value.size());
        out += "\r\n";
    }
    const unsigned code = res.result_int();
    if (code >= 200 && code != 204 && code != 304) {  // the others have no body (RFC 9110)
        out += "Content-Length: ";
        char len[24];
        out.append(len, std::to_chars(len, len + sizeof len, res.body().size()).ptr);
        out += "\r\n";
    }
    out += "\r\n";
    out += res.body();
}

// One HTTP connection. Lives on its worker's io_context; only that thread touches it.
class session : public std::enable_shared_from_this<session> {
public:
    session(tcp::socket s, std::shared_ptr<http_server::shared> sh,
            std::shared_ptr<http_server::worker> w)
        : stream_(std::move(s)), shared_(std::move(sh)), worker_(std::move(w)) {
        remote_ = endpoint_string(stream_.socket());
        beast::error_code ec;
        const auto peer = stream_.socket().remote_endpoint(ec);
        if (!ec) {
            const auto a = net::canonical(peer.address());
            peer_trusted_ = shared_->opts.trusted_proxies->contains(a);
            set_connection_client(a);
        } else {
            connection_client_ = "unknown";
        }
        worker_->sessions.insert(this);
    }
    ~session() {
        worker_->sessions.erase(this);
        shared_->connection_closed();
    }

    // Shutdown: an idle connection is closed now; a busy one after its current answer.
    void stop() {
        stopping_ = true;
        if (!busy_) stream_.cancel();
    }

    asio::awaitable<void> run() {
        const server_options& o = shared_->opts;
        beast::error_code ignored;
        // Answers are first written without waiting (most fit in the socket buffer at once).
        stream_.socket().non_blocking(true, ignored);
        // Reads ask for what the buffer can hold (at least 512 bytes): with room for a whole
        // notification (600 to 1,000 bytes) one read takes it, instead of two of 512.
        buffer_.reserve(4096);
        if (o.proxy_protocol && !co_await read_preamble()) {
            stream_.close();
            co_return;
        }
        for (bool first = true;; first = false) {
            if (stopping_ || shared_->stopping.load()) break;
            auto [ec, ph, started] = co_await read_request(first);
            if (ec) {
                if (ph == phase::idle) {
                    // Nothing of a request came: a keep-alive connection ends quietly.
                    if (ec == beast::error::timeout) shared_->timeout_idle.inc();
                    break;
                }
                co_await fail_read(
                    ec, started,
                    ph == phase::header ? shared_->timeout_header : shared_->timeout_body);
                co_return;
            }
            request req = parser_->release();
            if (shared_->opts.websocket_upgrade && beast::websocket::is_upgrade(req) &&
                path_of(req.target()) == shared_->opts.websocket_path) {
                // The connection now belongs to the terminal gateway.
                busy_ = false;
                stream_.socket().non_blocking(false, ignored);
                std::string client(client_of(req));
                shared_->opts.websocket_upgrade(stream_.release_socket(), std::move(req),
                                                std::move(client));
                co_return;
            }
            const request_context ctx{worker_->index, remote_, client_of(req), started};
            response res = co_await shared_->routes.handle(req, ctx);
            const bool keep = req.keep_alive() && !stopping_ && !shared_->stopping.load();
            res.keep_alive(keep);
            serialize(res, out_);
            // Try the write now; only what the socket does not take waits (write deadline).
            std::size_t written = stream_.socket().write_some(asio::buffer(out_), ec);
            if (ec == asio::error::would_block || ec == asio::error::try_again) {
                ec = {};
                written = 0;
            }
            if (!ec && written < out_.size()) {
                stream_.expires_after(o.write_timeout);
                auto [wec, n] = co_await asio::async_write(
                    stream_, asio::buffer(out_.data() + written, out_.size() - written),
                    use_nothrow);
                ec = wec;
            }
            busy_ = false;
            if (out_.capacity() > 64 * 1024)
                std::string().swap(out_);  // after a big /metrics answer
            if (ec) {
                if (ec == beast::error::timeout) shared_->timeout_write.inc();
                break;
            }
            if (!keep) {
                graceful_close();
                co_return;
            }
        }
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.close();
    }

private:
    // Where a request read stands: idle (no byte of it yet, on a kept-alive connection), header
    // (from its first byte, or from the connection's start for its first request), body
    // (from the complete header).
    enum class phase { idle, header, body };
    struct read_result {
        beast::error_code ec;
        phase ph = phase::idle;
        std::chrono::steady_clock::time_point started;
    };

    // Reads the next request into parser_, each phase under its deadline: the idle timeout
    // only between requests, the header timeout for a fresh connection (a silent socket must
    // not hold a connection slot for the idle timeout). The parser is rebuilt per message:
    // limits and state start fresh. It parses what is already buffered; the socket is read
    // only when more bytes are needed.
    asio::awaitable<read_result> read_request(bool first) {
        const server_options& o = shared_->opts;
        parser_.emplace();
        // Beast applies header_limit to the request line and to the fields separately;
        // header_over() makes the limit exact, Beast's own is the backstop.
        parser_->header_limit(static_cast<std::uint32_t>(o.max_header_bytes));
        parser_->body_limit(o.max_body_bytes);
        parser_->eager(false);  // put() stops at the header's end: its size is counted exactly
        read_result r{{}, first ? phase::header : phase::idle, std::chrono::steady_clock::now()};
        // The PROXY header, when read, started the first request's header deadline.
        if (first && !o.proxy_protocol) stream_.expires_after(o.header_timeout);
        std::size_t header_bytes = 0;  // consumed by the parser while in the header
        for (;;) {
            if (buffer_.size() > 0) {
                const bool in_header = !parser_->is_header_done();
                const std::size_t used = parser_->put(buffer_.data(), r.ec);
                buffer_.consume(used);
                if (in_header) header_bytes += used;
                if (r.ec == beast_http::error::need_more) r.ec = {};
                if (!r.ec && header_over(header_bytes)) r.ec = beast_http::error::header_limit;
                if (r.ec) {
                    if (r.ph == phase::idle)
                        r.ph = phase::header;  // bytes came: a request, refused
                    co_return r;
                }
            }
            if (r.ph != phase::body && parser_->is_header_done()) {
                r.ph = phase::body;
                busy_ = true;
                r.started = std::chrono::steady_clock::now();
                parser_->eager(true);
                if (!co_await start_body()) {
                    r.ec = asio::error::operation_aborted;  // nothing more can be answered
                    co_return r;
                }
                if (buffer_.size() > 0 && !parser_->is_done()) continue;  // body bytes buffered
            }
            if (parser_->is_done()) co_return r;
            if (r.ph == phase::idle && parser_->got_some()) {
                r.ph = phase::header;
                stream_.expires_after(o.header_timeout);
            } else if (r.ph == phase::idle) {
                if (stopping_ || shared_->stopping.load()) {
                    r.ec = asio::error::operation_aborted;
                    co_return r;
                }
                stream_.expires_after(o.idle_timeout);
            }
            auto [rec, n] = co_await stream_.async_read_some(
                buffer_.prepare(beast::read_size(buffer_, 16 * 1024)), use_nothrow);
            if (rec) {
                r.ec = rec;
                co_return r;
            }
            buffer_.commit(n);
        }
    }

    void set_connection_client(const net::address& a) {
        connection_client_ = a.to_string();
        client_trusted_ = shared_->opts.trusted_proxies->contains(a);
    }

    // The request's client: X-Forwarded-For when the connection's client (the peer, or the
    // PROXY header's source) is a trusted proxy, else that address. The view lives until the
    // next call.
    std::string_view client_of(const request& req) {
        if (!client_trusted_) return connection_client_;
        const auto range = req.equal_range("X-Forwarded-For");
        if (range.first == range.second) return connection_client_;
        std::string joined;  // several fields are one list (RFC 9110 5.3)
        for (auto it = range.first; it != range.second; ++it) {
            if (!joined.empty()) joined += ',';
            joined.append(it->value().data(), it->value().size());
        }
        const auto f = net::client_from_forwarded_for(joined, *shared_->opts.trusted_proxies);
        if (f.malformed) shared_->forwarded_malformed.inc();
        if (!f.client) return connection_client_;
        request_client_ = f.client->to_string();
        return request_client_;
    }

    // --proxy-protocol: reads the connection's first bytes until decide_preamble() decides,
    // under the header deadline (from the accept). Bytes past a header stay in buffer_ for the
    // first request. False when the connection is to be closed (refused, counted, or gone).
    asio::awaitable<bool> read_preamble() {
        stream_.expires_after(shared_->opts.header_timeout);
        for (;;) {
            const auto data = buffer_.data();
            const std::string_view got(static_cast<const char*>(data.data()), data.size());
            const auto d = net::decide_preamble(got, peer_trusted_);
            if (d.action == net::preamble_action::proceed) {
                buffer_.consume(d.consumed);
                if (d.client) set_connection_client(net::canonical(*d.client));
                co_return true;
            }
            if (d.action == net::preamble_action::refuse) {
                refuse_preamble(d.reason);
                co_return false;
            }
            auto [ec, n] = co_await stream_.async_read_some(
                buffer_.prepare(net::proxy_max_bytes - buffer_.size()), use_nothrow);
            if (ec == beast::error::timeout) refuse_preamble(net::refused_timeout);
            if (ec) co_return false;
            buffer_.commit(n);
        }
    }
    void refuse_preamble(std::string_view reason) {
        shared_->count_proxy_refused(reason);
        log::line(log::level::warn, "connection refused")
            .str("reason", reason)
            .str("what", "proxy_protocol")
            .str("remote", remote_);
    }

    // The header block (request line, fields and the empty line ending them) is over
    // --max-header-bytes: its consumed part plus, while it is incomplete, every byte buffered
    // (all of them belong to it: the parser found no end in them).
    [[nodiscard]] bool header_over(std::size_t header_bytes) const {
        const std::size_t pending = parser_->is_header_done() ? 0 : buffer_.size();
        return header_bytes + pending > shared_->opts.max_header_bytes;
    }

    // The header is complete: the body's deadline starts, and a client that asked for
    // 100-continue is told to send the body (curl and some HTTP stacks wait for it). False
    // when that answer could not be written.
    asio::awaitable<bool> start_body() {
        const server_options& o = shared_->opts;
        stream_.expires_after(o.body_timeout);
        if (parser_->is_done() ||
            !beast::iequals(parser_->get()[beast_http::field::expect], "100-continue"))
            co_return true;
        static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
        stream_.expires_after(o.write_timeout);
        auto [wec, n] = co_await asio::async_write(stream_, asio::buffer(cont.data(), cont.size()),
                                                   use_nothrow);
        stream_.expires_after(o.body_timeout);
        co_return !wec;
    }

    // A read failed: answer what deserves an answer (then close), count timeouts.
    asio::awaitable<void> fail_read(beast::error_code ec,
                                    std::chrono::steady_clock::time_point started,
                                    metrics::counter& timeouts) {
        if (ec == beast::error::timeout) {
            // tcp_stream has closed the socket: nothing can be answered.
            timeouts.inc();
            log::line(log::level::info, "connection timed out")
                .str("remote", remote_)
                .str("phase", &timeouts == &shared_->timeout_header ? "header" : "body");
            co_return;
        }
        if (ec == beast_http::error::end_of_stream || ec == beast_http::error::partial_message ||
            ec == asio::error::eof || ec == asio::error::connection_reset ||
            ec == asio::error::operation_aborted) {
            co_return;  // the peer went away (or shutdown cancelled an idle read)
        }
        const auto& req = parser_->get();
        const std::string_view target(req.target().data(), req.target().size());
        unsigned status = 400;
        std::string_view error = "bad_request";
        std::string message = "malformed HTTP request: " + ec.message();
        if (ec == beast_http::error::header_limit) {
            status = 431;
            error = "header_too_large";
            message = "request header larger than " +
                      std::to_string(shared_->opts.max_header_bytes) + " bytes";
        } else if (ec == beast_http::error::body_limit) {
            status = 413;
            error = "body_too_large";
            message = "request body larger than " + std::to_string(shared_->opts.max_body_bytes) +
                      " bytes";
        }
        shared_->routes.reject(target, status, error, started);
        log::line(log::level::warn, "request rejected")
            .str("route", shared_->routes.route_of(target))
            .str("reason", error)
            .num("status", status)
            .str("remote", remote_);
        response res = json_error(status, error, message);
        res.keep_alive(false);
        res.prepare_payload();  // written by Beast's serializer here, not serialize()
        stream_.expires_after(shared_->opts.write_timeout);
        auto [wec, n] = co_await beast_http::async_write(stream_, res, use_nothrow);
        if (!wec) co_await linger();
    }

    // After answering with unread input left (a refused body), read and drop what the peer
    // still sends for a short while, so our FIN is not turned into an RST that would
    // destroy the answer before the peer reads it (nginx's lingering_close).
    asio::awaitable<void> linger() {
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        stream_.expires_after(std::chrono::seconds(2));
        std::size_t dropped = 0;
        char sink[4096];
        while (dropped < 1024 * 1024) {
            auto [ec, n] = co_await stream_.async_read_some(asio::buffer(sink), use_nothrow);
            if (ec) break;
            dropped += n;
        }
    }

    // Close after a final answer: FIN first so the peer reads all of it.
    void graceful_close() {
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        stream_.close();
    }

    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::string out_;  // the serialised answer, capacity reused across requests
    std::optional<parser_type> parser_;
    std::shared_ptr<http_server::shared> shared_;
    std::shared_ptr<http_server::worker> worker_;
    std::string remote_;
    std::string connection_client_;  // the peer, or the PROXY header's source
    std::string request_client_;     // from X-Forwarded-For, for the current request
    bool peer_trusted_ = false;      // the TCP peer is in --trusted-proxies
    bool client_trusted_ = false;    // connection_client_ is (X-Forwarded-For is read)
    bool busy_ = false;
    bool stopping_ = false;
};

asio::awaitable<void> accept_loop(std::shared_ptr<http_server::shared> sh,
                                  std::shared_ptr<http_server::worker> w) {
    for (;;) {
        auto [ec, sock] = co_await w->acceptor->async_accept(use_nothrow);
        if (ec) {
            if (ec == asio::error::operation_aborted || sh->stopping.load()) co_return;
            log::line(log::level::error, "accept failed").str("error", ec.message());
            // Out of descriptors: back off briefly instead of spinning on the error.
            asio::steady_timer t(w->ioc, std::chrono::milliseconds(100));
            co_await t.async_wait(use_nothrow);
            continue;
        }
        if (sh->connections.load() >= sh->opts.max_connections) {
            sh->rejected.inc();
            beast::error_code ignored;
            sock.close(ignored);
            continue;
        }
        sh->connections.fetch_add(1);
        sh->open.add(1);
        sh->accepted.inc();
        beast::error_code ignored;
        sock.set_option(tcp::no_delay(true), ignored);
        auto s = std::make_shared<session>(std::move(sock), sh, w);
        asio::co_spawn(w->ioc, s->run(),
                       [s](std::exception_ptr e) { log::escaped(e, "http session"); });
    }
}

}  // namespace

http_server::http_server(io_pool& pool, server_options opts, router& r, metrics::registry& reg)
    : pool_(pool), shared_(std::make_shared<shared>(std::move(opts), r, reg)) {}

http_server::~http_server() = default;

tcp::endpoint http_server::start() {
    auto l = listen_on_every_thread(pool_, shared_->opts.listen);
    for (std::size_t i = 0; i < pool_.size(); ++i) {
        auto w = std::make_shared<worker>(pool_.context(i), i);
        w->acceptor = std::move(l.acceptors[i]);
        workers_.push_back(std::move(w));
    }
    for (auto& w : workers_) {
        asio::co_spawn(w->ioc, accept_loop(shared_, w),
                       [](std::exception_ptr e) { log::escaped(e, "http accept loop"); });
    }
    return l.bound;
}

void http_server::shutdown(std::function<void()> drained) {
    if (stopping_.exchange(true)) return;
    {
        std::lock_guard lock(shared_->drained_mutex);
        shared_->drained = std::move(drained);
    }
    shared_->stopping.store(true);
    for (auto& w : workers_) {
        asio::post(w->ioc, [w] {
            beast::error_code ignored;
            if (w->acceptor) w->acceptor->close(ignored);
            // Copy first: stop() may end a session, which erases itself from the set.
            std::vector<session*> live(w->sessions.begin(), w->sessions.end());
            for (session* s : live)
                s->stop();
        });
    }
    if (shared_->connections.load() == 0) shared_->fire_drained();
}

std::size_t http_server::open_connections() const noexcept {
    return shared_->connections.load();
}

}  // namespace posrelay::http
