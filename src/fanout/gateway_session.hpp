// A terminal connection: handshake, then a reader loop (acks, pings, requests) and a sender
// loop (replay from the terminal's stream, live events, heartbeats, error frames). Templated
// on the transport (plain TCP, TLS, WebSocket); everything runs on the connection's io thread.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/container/flat_map.hpp>
#include <boost/container/small_vector.hpp>

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "gateway_control.hpp"
#include "gateway_shared.hpp"
#include "gateway_stream.hpp"
#include "posrelay/fanout/control.hpp"
#include "posrelay/fanout/epoch.hpp"
#include "posrelay/fanout/protocol.hpp"
#include "posrelay/fanout/token_claims.hpp"
#include "posrelay/log.hpp"
#include "posrelay/store/terminal_streams.hpp"

namespace posrelay::fanout::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
inline constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// ---- transports -------------------------------------------------------------------------
// Each offers: handshake(), read_frame(), write(frames), cancel(), close(), socket().

// Newline-delimited JSON over a byte stream (tcp::socket or ssl::stream).
template <class Stream>
class line_framing {
public:
    // Bytes already read from the stream (after a PROXY header): framed before any new read.
    void preload(std::string bytes) { buf_ = std::move(bytes); }

    // Reads one frame (without '\n' / "\r\n") into `out`. too_large: no '\n' within max bytes.
    asio::awaitable<beast::error_code> read_frame(Stream& s, std::string& out, std::size_t max,
                                                  bool& too_large) {
        too_large = false;
        auto [ec, n] =
            co_await asio::async_read_until(s, asio::dynamic_buffer(buf_, max + 1), '\n', nothrow);
        if (ec == asio::error::not_found) {
            too_large = true;
            co_return ec;
        }
        if (ec) co_return ec;
        std::size_t len = n - 1;
        if (len > 0 && buf_[len - 1] == '\r') --len;
        out.assign(buf_.data(), len);
        buf_.erase(0, n);
        // An idle connection keeps no big buffer: frames are small, acks tiny.
        if (buf_.empty() && buf_.capacity() > 1024) std::string().swap(buf_);
        co_return beast::error_code{};
    }

    template <class Frames>
    asio::awaitable<beast::error_code> write(Stream& s, const Frames& frames) {
        // On the stack for the usual batch (one or a few frames): no allocation per write.
        boost::container::small_vector<asio::const_buffer, 8> bufs;
        bufs.reserve(frames.size());
        for (const auto& f : frames)
            bufs.emplace_back(asio::buffer(*f.data));
        auto [ec, n] = co_await asio::async_write(s, bufs, nothrow);
        co_return ec;
    }

private:
    std::string buf_;
};

// Newline-delimited JSON over plain TCP (Stream = tcp::socket) or TLS (ssl::stream).
template <class Stream>
class line_transport {
public:
    static constexpr bool tls = !std::is_same_v<Stream, tcp::socket>;
    static constexpr std::string_view name = tls ? "tls" : "tcp";

    template <class... Args>
    explicit line_transport(Args&&... args) : s_(std::forward<Args>(args)...) {}

    asio::awaitable<beast::error_code> handshake() {
        if constexpr (tls) {
            if (!early_.empty()) {  // TLS bytes read with the PROXY header
                auto [ec, used] = co_await s_.async_handshake(asio::ssl::stream_base::server,
                                                              asio::buffer(early_), nothrow);
                std::string().swap(early_);
                co_return ec;
            }
            auto [ec] = co_await s_.async_handshake(asio::ssl::stream_base::server, nothrow);
            co_return ec;
        } else {
            co_return beast::error_code{};
        }
    }
    // Bytes read from the socket before the session started (what followed a PROXY header).
    void preload(std::string bytes) {
        if constexpr (tls) {
            early_ = std::move(bytes);
        } else {
            framing_.preload(std::move(bytes));
        }
    }
    asio::awaitable<beast::error_code> read_frame(std::string& out, std::size_t max,
                                                  bool& too_large) {
        return framing_.read_frame(s_, out, max, too_large);
    }
    template <class Frames>
    asio::awaitable<beast::error_code> write(const Frames& frames) {
        return framing_.write(s_, frames);
    }
    tcp::socket& socket() {
        if constexpr (tls) {
            return s_.next_layer();
        } else {
            return s_;
        }
    }
    void cancel() {
        beast::error_code ec;
        socket().cancel(ec);
    }
    void close() {
        beast::error_code ec;
        socket().shutdown(tcp::socket::shutdown_both, ec);
        socket().close(ec);
    }

private:
    Stream s_;
    line_framing<Stream> framing_;
    std::string early_;  // TLS: handshake bytes already read
};

using tcp_transport = line_transport<tcp::socket>;
using tls_transport = line_transport<asio::ssl::stream<tcp::socket>>;

// WebSocket text messages on the HTTP port: one frame per message, no '\n'.
class ws_transport {
public:
    ws_transport(tcp::socket s, http::request req) : ws_(std::move(s)), req_(std::move(req)) {}
    static constexpr std::string_view name = "ws";
    asio::awaitable<beast::error_code> handshake() {
        ws_.text(true);
        ws_.auto_fragment(false);
        auto [ec] = co_await ws_.async_accept(req_, nothrow);
        http::request().swap(req_);
        co_return ec;
    }
    // Reads the message in pieces, so that one over `max` is answered with frame_too_large
    // (§3) instead of beast's own close 1009: reading stops at max + 1 bytes.
    asio::awaitable<beast::error_code> read_frame(std::string& out, std::size_t max,
                                                  bool& too_large) {
        too_large = false;
        binary_ = false;
        beast::flat_buffer buf;
        do {
            auto [ec, n] = co_await ws_.async_read_some(buf, max + 1 - buf.size(), nothrow);
            if (ec) co_return ec;
            if (buf.size() > max) {
                too_large = true;
                co_return beast::websocket::error::message_too_big;
            }
        } while (!ws_.is_message_done());
        binary_ = ws_.got_binary();
        out = beast::buffers_to_string(buf.data());
        co_return beast::error_code{};
    }
    // True when the last message read was binary: frames are text messages (§2).
    bool binary() const { return binary_; }
    template <class Frames>
    asio::awaitable<beast::error_code> write(const Frames& frames) {
        for (const auto& f : frames) {
            const std::string& d = *f.data;
            const std::size_t len = !d.empty() && d.back() == '\n' ? d.size() - 1 : d.size();
            auto [ec, n] = co_await ws_.async_write(asio::buffer(d.data(), len), nothrow);
            if (ec) co_return ec;
        }
        co_return beast::error_code{};
    }
    tcp::socket& socket() { return ws_.next_layer(); }
    void cancel() {
        beast::error_code ec;
        ws_.next_layer().cancel(ec);
    }
    void close() {
        beast::error_code ec;
        ws_.next_layer().shutdown(tcp::socket::shutdown_both, ec);
        ws_.next_layer().close(ec);
    }

private:
    beast::websocket::stream<tcp::socket> ws_;
    http::request req_;
    bool binary_ = false;
};

// ---- the session ------------------------------------------------------------------------

// Who a connection speaks for: `client` (an address, no port) keys the failed-handshake
// limiter; `remote` names it in logs ("ip:port" when the port is known). Both are the TCP
// peer's unless a trusted proxy named the client (PROXY header, X-Forwarded-For).
struct session_origin {
    std::string client;
    std::string remote;
};

template <class Transport>
class terminal_session final : public session_base,
                               public std::enable_shared_from_this<terminal_session<Transport>> {
public:
    template <class... Args>
    terminal_session(std::shared_ptr<gateway_shared> g, std::size_t thread, session_origin origin,
                     Args&&... args)
        : t_(std::forward<Args>(args)...),
          g_(std::move(g)),
          thread_(thread),
          client_(std::move(origin.client)),
          remote_(std::move(origin.remote)),
          timer_(t_.socket().get_executor()),
          watchdog_(t_.socket().get_executor()),
          room_(t_.socket().get_executor()),
          fsm_(0, 1) {
        g_->transport_gauge(Transport::name).add(1);
    }
    ~terminal_session() override {
        g_->transport_gauge(Transport::name).sub(1);
        g_->queue_bytes.sub(static_cast<std::int64_t>(queue_bytes_));
        g_->unacked.sub(static_cast<std::int64_t>(fsm_.inflight()));
        if (attached_ && observer_) {
            g_->hub.detach_observer(session_hub::key(store_id_, terminal_id_), this);
            g_->observers.sub(1);
        } else if (attached_) {
            g_->hub.detach(session_hub::key(store_id_, terminal_id_), this);
        }
        g_->connection_closed();
    }

    asio::any_io_executor executor() override { return t_.socket().get_executor(); }

    // Bytes already read from the socket (after a PROXY header). Before start().
    void preload(std::string bytes) {
        if constexpr (requires { t_.preload(std::move(bytes)); }) t_.preload(std::move(bytes));
    }

    void start() {
        auto self = this->shared_from_this();
        asio::co_spawn(executor(), run(),
                       [self](std::exception_ptr e) { log::escaped(e, "terminal session"); });
    }

    // ---- called on the session's executor (posted by the hub or the gateway) ----

    // A live event of this terminal. Before the welcome the epoch is not known yet: it is
    // kept like any other (the handshake drops what it already counts). After it, an event of
    // another epoch, or reusing a seq already sent with another eid, means the stream lost
    // writes: the stream is checked (and the terminal told `resync`) instead of dropping it.
    void on_live(const live_meta& m, std::shared_ptr<const std::string> frame) override {
        if (closing_) return;
        if (welcomed_) {
            switch (check_live(m.seq, m.epoch_view(), m.eid, epoch_, fsm_.sent(), ring_)) {
                case live_action::accept:
                    break;
                case live_action::duplicate:
                    return;
                case live_action::reused:
                    return start_verify(true);
                case live_action::verify:
                    return start_verify(false);
            }
        }
        if (m.seq > live_max_) live_max_ = m.seq;
        // Keep what fits; anything not kept is fetched from the stream when its turn comes.
        if (m.seq > fsm_.sent() && live_.size() < g_->opts.max_inflight) {
            live_.emplace(m.seq, live_event{std::move(frame), m.event_ms, m.eid,
                                            delivery_tag::of(m.seq, m.order_view())});
        }
        wake();
    }

    void kick(errc code, std::string_view message) override {
        if (closing_) return;
        g_->count_disconnect(to_string(code));
        if (code != errc::replaced && code != errc::idle_timeout) {
            log::line(log::level::info, "terminal disconnected")
                .str("terminal_id", terminal_id_)
                .str("reason", to_string(code))
                .str("remote", remote_);
        }
        push_control(error_frame(code, message, true));
        closing_ = true;
        wake();
    }

    void goaway(std::chrono::milliseconds reconnect_after) override {
        if (closing_) return;
        push_control(goaway_frame("shutdown", static_cast<std::uint64_t>(reconnect_after.count())));
        g_->count_disconnect("shutdown");
        closing_ = true;
        wake();
        // Not yet past the handshake: nothing to finish, stop waiting for hello.
        if (!welcomed_) t_.cancel();
    }

    // The live feed resubscribed: events may have been missed, and Redis may have come back
    // with fewer writes than it acknowledged. The stream is re-read and checked; so are the
    // revocations (a revoke message sent while the store was not subscribed was missed).
    void recheck() override {
        start_verify(false);
        recheck_revocation();
    }

    // A control message of this session's store (fanout/control.hpp).
    void on_control(const control_message& m) override {
        if (closing_ || !attached_) return;
        const session_identity me{store_id_, terminal_id_, claims_.issued_at, observer_};
        switch (decide_control(m, me)) {
            case control_action::ignore:
                return;
            case control_action::close_revoked:
                return close_revoked();
            case control_action::close_disconnected:
                g_->closed_disconnected.inc();
                kick(errc::disconnected, "an operator ended this session; reconnect after a pause");
                return;
        }
    }

    void renew_subscription() override {
        if (closing_ || !welcomed_ || !subscribed_ || observer_) return;
        auto self = this->shared_from_this();
        asio::co_spawn(
            executor(),
            [self]() -> asio::awaitable<void> {
                (void)co_await self->g_->streams.renew_subscription(self->store_id_,
                                                                    self->terminal_id_);
            },
            asio::detached);
    }

private:
    struct live_event {
        std::shared_ptr<const std::string> data;
        std::int64_t event_ms = 0;
        std::uint64_t eid = 0;
        delivery_tag tag;
    };
    struct out_frame {
        std::shared_ptr<const std::string> data;
        std::int64_t event_ms = 0;  // for live events: delivery latency
        delivery_tag tag{};         // events: seq and order, for the delivery marks
    };

    void wake() { timer_.cancel(); }

    // Queues a frame that is not an event (pong, request answer, error, goaway, ping). It counts
    // against the same bound as events, and the bound holds because of who pushes: the reader
    // pushes at most one frame per frame read and reads only while reader_room(); a session
    // has at most max_requests_inflight answers pending, one ping per idle heartbeat and one
    // final error or goaway. So the queue exceeds its bound by at most those few frames.
    void push_control(std::string frame) {
        auto p = std::make_shared<const std::string>(std::move(frame));
        queue_bytes_ += p->size();
        g_->queue_bytes.add(static_cast<std::int64_t>(p->size()));
        queue_.push_back(out_frame{std::move(p), 0});
    }

    // Room in the send queue for more events. Producing stops when it is full and resumes once
    // the writer has drained it; a terminal that cannot drain it is caught by the write
    // timeout (slow_consumer), so a full queue never blocks anyone else.
    [[nodiscard]] bool room() const noexcept {
        return queue_.size() < g_->opts.send_queue_frames &&
               queue_bytes_ < g_->opts.send_queue_bytes;
    }

    // Room for the reader to take another frame from the terminal: everything not yet written
    // (the queue and the batch being written) is under the bound. A terminal that sends
    // without reading fills it with answers to its own frames; the reader then stops reading
    // (its frames wait in its own socket, the kernel's flow control slows it down) until the
    // writer drains the queue, and a write stalled past the write timeout cuts it as a slow
    // consumer. Redis's client-output-buffer-limit, with TCP back-pressure for the soft part.
    [[nodiscard]] bool reader_room() const noexcept {
        return queue_.size() + writing_.size() < g_->opts.send_queue_frames &&
               queue_bytes_ + writing_bytes_ < g_->opts.send_queue_bytes;
    }

    // Suspends the reader until reader_room() (the writer wakes it after each write) or the
    // session closes; false when it closed.
    asio::awaitable<bool> wait_for_room() {
        if (!closing_ && !reader_room()) {
            g_->reads_paused.inc();
            while (!closing_ && !reader_room()) {
                room_.expires_at(asio::steady_timer::time_point::max());
                (void)co_await room_.async_wait(nothrow);
            }
        }
        co_return !closing_;
    }

    void push_event(std::shared_ptr<const std::string> frame, std::int64_t event_ms,
                    const delivery_tag& tag) {
        queue_bytes_ += frame->size();
        g_->queue_bytes.add(static_cast<std::int64_t>(frame->size()));
        queue_.push_back(out_frame{std::move(frame), event_ms, tag});
        // At most max_inflight: events sent and not acked (an observer records nothing).
        if (!observer_) unacked_tags_.push_back(tag);
    }

    // ---- delivery marks: presence and order timelines (gateway_recorder.hpp) ----
    // One call each in the handshake, write, ack, heartbeat and close paths; the marks go to
    // this io thread's recorder, which writes them to the store a few ms later.

    [[nodiscard]] static std::int64_t now_ms() noexcept { return store::unix_ms_now(); }
    // Until when this session vouches for the terminal being online: the silence deadline
    // (3 heartbeats); renewed by every write and every idle heartbeat.
    [[nodiscard]] std::int64_t alive_until() const noexcept {
        return now_ms() + 3 * static_cast<std::int64_t>(g_->opts.heartbeat.count());
    }
    [[nodiscard]] session_ref self_ref() const noexcept {
        return {store_id_, terminal_id_, session_id_};
    }
    void record_opened() {
        if (observer_) return;  // an observer is not the terminal: no presence, no timeline
        store::presence_update u;
        u.terminal = terminal_id_;
        u.session = session_id_;
        // host:pid (as the poll leases name it): two nodes on one host are told apart.
        u.node = g_->store.options().node.empty() ? g_->opts.node_name : g_->store.options().node;
        u.transport = std::string(Transport::name);
        u.remote = remote_;
        u.epoch = epoch_;
        u.subscribe_store = subscribed_;
        u.connected_ms = now_ms();
        u.sent_seq = u.acked_seq = fsm_.sent();
        u.alive_until_ms = alive_until();
        g_->recorder(thread_).record(
            [&](delivery_marks& m) { return m.opened(store_id_, std::move(u)); });
    }
    void record_written(const std::vector<out_frame>& batch) {
        if (observer_) return;  // an observer is not the terminal: no presence, no timeline
        const std::int64_t now = now_ms(), until = alive_until();
        g_->recorder(thread_).record([&](delivery_marks& m) {
            bool ok = true;
            for (const auto& f : batch)
                if (f.tag.seq != 0) ok = m.written(self_ref(), f.tag, now, until) && ok;
            return ok;
        });
    }
    void record_acked(std::uint64_t upto) {
        if (observer_) return;  // an observer is not the terminal: no presence, no timeline
        std::vector<delivery_tag> tags;
        while (!unacked_tags_.empty() && unacked_tags_.front().seq <= upto) {
            tags.push_back(unacked_tags_.front());
            unacked_tags_.pop_front();
        }
        g_->recorder(thread_).record([&](delivery_marks& m) {
            return m.acked(self_ref(), upto, tags, now_ms(), alive_until());
        });
    }
    void record_alive() {
        if (observer_) return;  // an observer is not the terminal: no presence, no timeline
        g_->recorder(thread_).record(
            [&](delivery_marks& m) { return m.alive(self_ref(), alive_until()); });
    }
    void record_closed() {
        if (observer_) return;  // an observer is not the terminal: no presence, no timeline
        g_->recorder(thread_).record(
            [&](delivery_marks& m) { return m.closed(self_ref(), now_ms()); });
    }

    // The delivery state moves, and the node's count of unacked events with it (the session
    // takes its remaining share off when it ends): no scan of the connections at scrape time.
    void sent(std::uint64_t seq) {
        const std::uint64_t before = fsm_.inflight();
        fsm_.on_sent(seq);
        g_->unacked.add(static_cast<std::int64_t>(fsm_.inflight() - before));
    }
    [[nodiscard]] bool acked(std::uint64_t seq) {
        const std::uint64_t before = fsm_.inflight();
        const bool ok = fsm_.on_ack(seq);
        g_->unacked.sub(static_cast<std::int64_t>(before - fsm_.inflight()));
        return ok;
    }

    // Arms the watchdog: if it fires before being cancelled, the transport is cancelled.
    void arm_watchdog(std::chrono::milliseconds d, errc reason) {
        watchdog_.expires_after(d);
        watchdog_.async_wait([w = this->weak_from_this(), reason](beast::error_code ec) {
            if (ec) return;
            if (auto s = w.lock()) s->on_watchdog(reason);
        });
    }
    void on_watchdog(errc reason) {
        if (reason == errc::slow_consumer) {
            g_->count_disconnect("slow_consumer");
            g_->slow_consumers.inc();
            log::line(log::level::warn, "terminal disconnected")
                .str("terminal_id", terminal_id_)
                .str("reason", "slow_consumer")
                .str("detail", "a write took longer than the write timeout")
                .str("remote", remote_);
            closing_ = true;
            dead_ = true;
            t_.close();
            return;
        }
        // Handshake timeout: tell the terminal, then close.
        g_->count_handshake("timeout");
        kick(reason, "no hello within the handshake timeout");
        t_.cancel();
    }

    asio::awaitable<void> run() {
        arm_watchdog(g_->opts.handshake_timeout, errc::handshake_timeout);
        if (auto ec = co_await t_.handshake(); ec) {
            watchdog_.cancel();
            if (!closing_) g_->count_handshake("transport_error");
            t_.close();
            co_return;
        }
        co_await handshake();
        watchdog_.cancel();
        if (!welcomed_ && !closing_) {
            // The terminal closed or reset the connection before hello (a read error with
            // nothing to answer): release the socket now, not at the silence deadline.
            g_->count_handshake("peer_closed");
            t_.close();
            co_return;
        }
        auto self = this->shared_from_this();
        asio::co_spawn(executor(), sender(),
                       [self](std::exception_ptr e) { log::escaped(e, "terminal sender"); });
        if (welcomed_) co_await reader();
    }

    // Reads hello, authenticates, attaches to the hub, reads the terminal's last seq, and
    // queues the welcome. On failure queues an error frame and sets closing_.
    asio::awaitable<void> handshake() {
        std::string frame;
        bool too_large = false;
        if (auto ec = co_await t_.read_frame(frame, g_->opts.max_frame_bytes, too_large); ec) {
            if (too_large) {
                g_->count_handshake("bad_frame");
                kick(errc::frame_too_large, "frame larger than max_frame_bytes");
            }
            co_return;
        }
        if (closing_) co_return;
        client_frame f;
        parse_failure err;
        if (!parse(frame, f, err)) {
            g_->count_handshake("bad_frame");
            kick(err.code, err.message);
            co_return;
        }
        if (f.kind != frame_kind::hello) {
            g_->count_handshake("bad_frame");
            kick(errc::handshake_required, "the first frame must be hello");
            co_return;
        }
        const token_check checked = g_->check_token(f.hello);
        if (checked.outcome != token_outcome::ok) {
            refuse_token(f.hello, checked);
            co_return;
        }
        claims_ = checked.claims;  // issued_at 0 for v1 tokens: any revocation refuses them
        if (!co_await check_revocation_at_hello(f.hello)) co_return;
        terminal_id_ = f.hello.terminal_id;
        store_id_ = f.hello.store_id;
        observer_ = claims_.observe;
        aware_ = f.hello.epoch.has_value();
        subscribed_ = f.hello.subscribe_store && !observer_;
        // Attach first, then read the position: an event committed in between is either
        // counted in it or arrives live; none falls between the two.
        if (!join_hub()) co_return;
        const auto start = co_await position(f.hello);
        if (!start || closing_) co_return;
        fsm_ = delivery_fsm(start->after, g_->opts.max_inflight);
        for (auto it = live_.begin(); it != live_.end() && it->first <= fsm_.sent();)
            it = live_.erase(it);
        welcome_info w;
        w.terminal_id = terminal_id_;
        w.store_id = store_id_;
        w.last_seq = start->last_seq;
        w.epoch = epoch_;
        w.resume_from = f.hello.resume_from;
        w.heartbeat_ms = static_cast<std::uint64_t>(g_->opts.heartbeat.count());
        w.max_frame_bytes = g_->opts.max_frame_bytes;
        w.max_inflight = g_->opts.max_inflight;
        w.subscribe_store = subscribed_;
        w.observer = observer_;
        w.node = g_->opts.node_name;
        push_control(welcome_frame(w));
        welcomed_ = true;
        record_opened();
        if (verify_after_welcome_) start_verify(false);
        g_->count_handshake("ok");
        log::line(log::level::debug, "terminal connected")
            .str("terminal_id", terminal_id_)
            .str("store_id", store_id_)
            .str("transport", Transport::name)
            .str("remote", remote_);
    }

    // A token that did not verify. Verified first, a good token is never refused for others'
    // failures; a failure counts towards the (address, terminal id) budget, past which the
    // answer is rate_limited. The message names the reason, never the token.
    void refuse_token(const hello_frame& h, const token_check& checked) {
        const auto key = auth_key(client_, h.terminal_id);
        if (!g_->auth.allowed(key)) {
            g_->count_handshake("rate_limited");
            kick(errc::rate_limited,
                 "too many failed handshakes for this terminal from this address; retry later");
            return;
        }
        g_->auth.failed(key);
        const bool expired = checked.outcome == token_outcome::expired;
        g_->count_handshake(expired ? "token_expired" : "bad_token");
        log::line(log::level::warn, "terminal handshake rejected")
            .str("reason", to_string(checked.outcome))
            .str("token_kind", to_string(checked.claims.kind))
            .str("terminal_id", h.terminal_id)
            .str("remote", remote_);
        if (expired) {
            kick(errc::token_expired, "the token has expired (exp): the terminal needs a new one");
        } else {
            kick(errc::bad_token,
                 std::string("the token was refused: ") + std::string(to_string(checked.outcome)));
        }
    }

    // Where delivery starts: after `after` (resume_from, or last_seq for a fresh start).
    struct start_point {
        std::uint64_t after = 0;
        std::uint64_t last_seq = 0;
    };
    // Opens the terminal's stream (its counter, its store subscription) and decides the resume
    // (gateway_stream.hpp): resume, fresh start, resume_gap, or resync — after a new epoch when
    // the stream is behind what the terminal saw in this one. nullopt: an error frame is queued.
    asio::awaitable<std::optional<start_point>> position(const hello_frame& h) {
        const resume_claim claim{h.resume_from,
                                 h.epoch ? std::optional<std::string_view>(*h.epoch) : std::nullopt,
                                 h.resume_eid};
        auto r = co_await open_stream(g_->streams, store_id_, terminal_id_, subscribed_, claim,
                                      observer_);
        if (r.rotated_from) note_rotation(*r.rotated_from, r.pos);
        if (closing_) co_return std::nullopt;
        switch (r.verdict) {
            case open_verdict::start:
                break;
            case open_verdict::unavailable:
                co_return unavailable();
            case open_verdict::gap:
                g_->count_handshake("resume_gap");
                kick(errc::resume_gap,
                     "events after resume_from are no longer kept: reconnect without "
                     "resume_from, then re-sync the status of open orders");
                co_return std::nullopt;
            case open_verdict::resync:
                g_->count_handshake(aware_ ? "resync" : "resume_gap");
                end_resync(r.pos.epoch, r.pos.seq);
                co_return std::nullopt;
        }
        epoch_ = r.pos.epoch;
        live_max_ = std::max(live_max_, r.pos.seq);
        co_return start_point{r.after, r.pos.seq};
    }

    std::optional<start_point> unavailable() {
        g_->count_handshake("unavailable");
        kick(errc::unavailable, "the event store is unavailable; retry later");
        return std::nullopt;
    }

    // ---- operator control: revocation, observers (fanout/control.hpp) ----

    // Right after the token check: a token issued at or before its terminal's (or its
    // store's) revocation is refused with `revoked`; when the store cannot tell, `unavailable`
    // (a revocation is never skipped). True when the hello may go on.
    asio::awaitable<bool> check_revocation_at_hello(const hello_frame& h) {
        const auto v = co_await check_revocation(g_->revocations, h.store_id, h.terminal_id,
                                                 claims_.issued_at);
        if (closing_) co_return false;
        switch (v) {
            case revocation_verdict::ok:
                co_return true;
            case revocation_verdict::unavailable:
                (void)unavailable();
                co_return false;
            case revocation_verdict::revoked:
                break;
        }
        g_->count_handshake("revoked");
        g_->count_token(claims_.kind, token_outcome::revoked);
        log::line(log::level::warn, "terminal handshake rejected")
            .str("reason", "revoked")
            .str("terminal_id", h.terminal_id)
            .str("store_id", h.store_id)
            .str("remote", remote_);
        kick(errc::revoked, "this terminal's token was revoked: a new token is needed");
        co_return false;
    }

    // Joins the hub: as the terminal's own session (the one before is told `replaced`; the
    // hub key is (store, terminal): POS-1 of another store is another terminal), or as one of
    // its observers (bounded). Then applies a revocation the feed received between the hello's
    // check and now (no session of the terminal was there to get it). False when refused.
    bool join_hub() {
        const std::string key = session_hub::key(store_id_, terminal_id_);
        if (observer_) {
            if (!g_->hub.attach_observer(key, this->shared_from_this(), g_->opts.max_observers)) {
                g_->count_handshake("too_many_observers");
                kick(errc::too_many_observers, "this terminal has the most observers allowed");
                return false;
            }
            g_->observers.add(1);
        } else if (auto old = g_->hub.attach(key, this->shared_from_this())) {
            asio::post(old->executor(), [old] {
                old->kick(errc::replaced, "another connection of this terminal took over");
            });
        }
        attached_ = true;
        if (!is_revoked(claims_.issued_at, g_->recent.latest(store_id_, terminal_id_), 0))
            return true;
        g_->count_handshake("revoked");
        kick(errc::revoked, "this terminal's token was revoked: a new token is needed");
        return false;
    }

    // Re-reads the revocations (after the feed (re)subscribed); a store error keeps the session.
    void recheck_revocation() {
        if (closing_ || !attached_) return;
        auto self = this->shared_from_this();
        asio::co_spawn(
            executor(),
            [self]() -> asio::awaitable<void> {
                const auto v =
                    co_await check_revocation(self->g_->revocations, self->store_id_,
                                              self->terminal_id_, self->claims_.issued_at);
                if (v == revocation_verdict::revoked) self->close_revoked();
            },
            [](std::exception_ptr e) { log::escaped(e, "terminal revocation check"); });
    }

    void close_revoked() {
        if (closing_) return;
        g_->closed_revoked.inc();
        kick(errc::revoked, "this terminal's token was revoked: a new token is needed");
    }

    // A new epoch of the terminal's stream began here (it was behind what was sent).
    void note_rotation(std::string_view old_epoch, const store::terminal_position& pos) {
        g_->rotations.inc();
        log::line(log::level::warn, "terminal stream behind what was sent: new epoch")
            .str("terminal_id", terminal_id_)
            .str("store_id", store_id_)
            .str("old_epoch", old_epoch)
            .str("epoch", pos.epoch)
            .num("carried", static_cast<std::int64_t>(pos.seq));
    }

    // Tells the terminal its position is in an old epoch (fatal): it re-reads its orders'
    // status and reconnects in `epoch` from seq 0. A client that sent no epoch in its hello
    // does not know `resync`: it gets resume_gap, which it does know.
    void end_resync(std::string_view epoch, std::uint64_t last_seq) {
        if (closing_) return;
        if (!aware_) {
            kick(errc::resume_gap,
                 "this terminal's events were renumbered: reconnect without resume_from, then "
                 "re-sync the status of open orders");
            return;
        }
        g_->resyncs.inc();
        g_->count_disconnect("resync");
        log::line(log::level::warn, "terminal told to resync")
            .str("terminal_id", terminal_id_)
            .str("store_id", store_id_)
            .str("epoch", epoch)
            .str("remote", remote_);
        push_control(resync_frame(epoch, last_seq));
        closing_ = true;
        wake();
    }

    // Checks the terminal's stream against what this connection sent (fanout/epoch.hpp):
    // newer events are fetched, a changed epoch or a stream behind what was sent ends in
    // `resync`. One check at a time; production pauses meanwhile, until the check could be
    // made (a store error is retried with backoff: nothing is sent that was not checked).
    // `reused`: a live event already showed a seq naming another event.
    void start_verify(bool reused) {
        if (closing_) return;
        if (!welcomed_) {
            // The feed (re)subscribed during the handshake, maybe after the position was read:
            // verify once welcomed.
            verify_after_welcome_ = true;
            return;
        }
        if (verifying_) {
            verify_again_ = true;
            return;
        }
        verifying_ = true;
        auto self = this->shared_from_this();
        asio::co_spawn(
            executor(),
            [self, reused]() -> asio::awaitable<void> {
                bool r = reused;
                auto pause = std::chrono::milliseconds(100);
                asio::steady_timer retry(self->executor());
                do {
                    self->verify_again_ = false;
                    if (!co_await self->verify_stream(r)) {
                        retry.expires_after(pause);
                        (void)co_await retry.async_wait(nothrow);
                        pause = std::min(pause * 2, std::chrono::milliseconds(2000));
                        self->verify_again_ = true;
                        continue;
                    }
                    r = false;
                } while (self->verify_again_ && !self->closing_);
                self->verifying_ = false;
                self->wake();
            },
            [](std::exception_ptr e) { log::escaped(e, "terminal stream check"); });
    }

    // False when the store could not answer (retry).
    asio::awaitable<bool> verify_stream(bool reused) {
        auto r = co_await recheck_stream(g_->streams, store_id_, terminal_id_, epoch_, fsm_.sent(),
                                         ring_, reused);
        if (r.rotated_from) note_rotation(*r.rotated_from, r.pos);
        if (closing_) co_return true;
        switch (r.verdict) {
            case recheck_verdict::retry:
                co_return false;
            case recheck_verdict::ok:
                if (r.pos.seq > live_max_) live_max_ = r.pos.seq;
                co_return true;
            case recheck_verdict::resync:
                break;
        }
        end_resync(r.pos.epoch, r.pos.seq);
        co_return true;
    }

    bool parse(std::string& frame, client_frame& f, parse_failure& err) {
        if constexpr (requires { t_.binary(); }) {
            if (t_.binary()) {
                err = {errc::bad_frame, "frames are WebSocket text messages, not binary"};
                return false;
            }
        }
        frame.reserve(frame.size() + simdjson::SIMDJSON_PADDING);
        return g_->parser(thread_).parse(
            simdjson::padded_string_view(frame.data(), frame.size(), frame.capacity()), f, err);
    }

    asio::awaitable<void> reader() {
        std::string frame;
        while (co_await wait_for_room()) {
            bool too_large = false;
            if (auto ec = co_await t_.read_frame(frame, g_->opts.max_frame_bytes, too_large); ec) {
                if (too_large)
                    kick(errc::frame_too_large, "frame larger than max_frame_bytes");
                else if (!closing_) {
                    closing_ = true;
                    dead_ = true;
                    g_->count_disconnect("closed_by_peer");
                    wake();
                }
                co_return;
            }
            last_rx_ = std::chrono::steady_clock::now();
            client_frame f;
            parse_failure err;
            if (!parse(frame, f, err)) {
                kick(err.code, err.message);
                co_return;
            }
            switch (f.kind) {
                case frame_kind::ack:
                    if (!acked(f.ack.seq)) {
                        kick(errc::bad_ack, "ack.seq is beyond the last event sent");
                        co_return;
                    }
                    g_->acks.inc();
                    record_acked(f.ack.seq);
                    wake();
                    break;
                case frame_kind::ping:
                    push_control(pong_frame_for(f.ping.id));
                    wake();
                    break;
                case frame_kind::pong:
                    break;
                case frame_kind::hello:
                    kick(errc::handshake_required, "hello was already received");
                    co_return;
                case frame_kind::request:
                    start_request(std::move(f.request));
                    break;
            }
        }
    }

    // Runs a request beside the reader (acks and pings keep flowing); its answer is queued
    // like any control frame. At most max_requests_inflight at once per connection.
    void start_request(request_frame r) {
        if (observer_) {
            push_control(error_frame(errc::bad_request, "an observer session makes no requests",
                                     false, r.id));
        } else if (!r.id_error.empty()) {
            push_control(error_frame(errc::bad_request, r.id_error, false));
        } else if (!g_->opts.requests) {
            push_control(error_frame(errc::bad_request, "requests are not enabled on this server",
                                     false, r.id));
        } else if (requests_inflight_ >= g_->opts.max_requests_inflight) {
            push_control(error_frame(errc::busy, "too many requests in flight on this connection",
                                     false, r.id));
        } else {
            ++requests_inflight_;
            auto self = this->shared_from_this();
            asio::co_spawn(
                executor(),
                [self, r = std::move(r)]() mutable -> asio::awaitable<void> {
                    std::string answer = co_await self->g_->opts.requests(
                        self->terminal_id_, self->store_id_, std::move(r));
                    --self->requests_inflight_;
                    if (self->closing_) co_return;
                    self->push_control(std::move(answer));
                    self->wake();
                },
                [](std::exception_ptr e) { log::escaped(e, "terminal request"); });
        }
        wake();
    }

    // Fetches [from, to] from the terminal's stream and queues them in order.
    // Returns false when the session must stop (gap, slow consumer, store error → retry later).
    asio::awaitable<bool> fetch(std::uint64_t from, std::uint64_t to) {
        const std::uint64_t count = std::min<std::uint64_t>(to - from + 1, 256);
        auto [ec, entries] =
            co_await g_->streams.read_range(store_id_, terminal_id_, from, to, count);
        if (closing_) co_return false;
        if (ec) {
            fetch_error_ = true;  // store unreachable: try again on the next tick
            co_return true;
        }
        fetch_error_ = false;
        if (entries.empty() || entries[0].seq != fsm_.sent() + 1 || entries[0].epoch != epoch_) {
            // Renumbered in a new epoch (resync), or really gone (resume_gap).
            (void)co_await verify_stream(false);
            kick(errc::resume_gap,
                 "events are no longer kept: reconnect without resume_from, then re-sync the "
                 "status of open orders");
            co_return false;
        }
        for (const auto& entry : entries) {
            const std::uint64_t seq = entry.seq;
            if (seq != fsm_.sent() + 1 || !fsm_.can_send() || !room()) break;
            if (!entry.complete) break;
            if (entry.epoch != epoch_) break;
            push_event(std::make_shared<const std::string>(event_frame(entry.event)), 0,
                       delivery_tag::of(seq, event_order_id(entry.event)));
            sent(seq);
            ring_.push(seq, entry.eid);
            g_->replayed.inc();
        }
        co_return true;
    }

    asio::awaitable<void> sender() {
        using clock = std::chrono::steady_clock;
        last_rx_ = clock::now();
        auto last_tx = clock::now();
        const auto hb = g_->opts.heartbeat;
        for (;;) {
            // 1. Produce: events in seq order, from the live feed or the stream.
            while (welcomed_ && !closing_ && !fetch_error_ && !verifying_ && fsm_.can_send() &&
                   room() && live_max_ > fsm_.sent()) {
                const std::uint64_t next = fsm_.sent() + 1;
                if (auto it = live_.find(next); it != live_.end()) {
                    push_event(std::move(it->second.data), it->second.event_ms, it->second.tag);
                    ring_.push(next, it->second.eid);
                    live_.erase(it);
                    sent(next);
                    continue;
                }
                const std::uint64_t to =
                    live_.empty() ? live_max_ : std::min(live_max_, live_.begin()->first - 1);
                if (!co_await fetch(next, std::max(to, next))) break;
            }
            for (auto it = live_.begin(); it != live_.end() && it->first <= fsm_.sent();)
                it = live_.erase(it);
            // 2. Write everything queued in one gathered write.
            if (!queue_.empty() && !dead_) {
                std::vector<out_frame>& batch = writing_;  // kept: its capacity is reused
                batch.swap(queue_);
                writing_bytes_ = queue_bytes_;
                queue_bytes_ = 0;
                arm_watchdog(g_->opts.write_timeout, errc::slow_consumer);
                const auto ec = co_await t_.write(batch);
                watchdog_.cancel();
                g_->queue_bytes.sub(static_cast<std::int64_t>(writing_bytes_));
                writing_bytes_ = 0;
                if (ec) {
                    closing_ = true;
                    dead_ = true;
                    break;
                }
                last_tx = clock::now();
                const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count();
                for (const auto& f : batch) {
                    if (f.data->starts_with(R"({"op":"event")")) g_->delivered.inc();
                    if (f.event_ms > 0)
                        g_->latency.observe(static_cast<double>(now_ms - f.event_ms) / 1000.0);
                }
                record_written(batch);
                batch.clear();
                // After a replay burst, an idle connection keeps no big array.
                if (batch.capacity() > 64) std::vector<out_frame>().swap(batch);
                room_.cancel();  // the reader may be waiting for the queue to drain
                continue;
            }
            if (closing_ || dead_) break;
            // 3. Idle: wait for work, a heartbeat, or the peer's silence deadline.
            const auto now = clock::now();
            if (now - last_rx_ > 3 * hb) {
                kick(errc::idle_timeout, "nothing received within 3 heartbeats");
                continue;
            }
            if (welcomed_ && now - last_tx >= hb) {
                push_control(ping_server_frame());
                record_alive();
                continue;
            }
            auto next_tick =
                std::min(last_tx + hb, last_rx_ + 3 * hb + std::chrono::milliseconds(1));
            if (fetch_error_) {
                next_tick = std::min(next_tick, now + std::chrono::milliseconds(500));
                fetch_error_ = false;  // retry after the pause
            }
            timer_.expires_at(next_tick);
            (void)co_await timer_.async_wait(nothrow);
        }
        // Closing: the error/goaway frame (if any) is written; now end the connection.
        t_.close();
        room_.cancel();
        if (welcomed_) record_closed();
    }

    Transport t_;
    std::shared_ptr<gateway_shared> g_;
    std::size_t thread_;
    std::string client_;
    std::string remote_;
    asio::steady_timer timer_;     // the sender's sleep; cancelled to wake it
    asio::steady_timer watchdog_;  // handshake and write deadlines
    asio::steady_timer room_;      // the reader's wait for room in the send queue
    delivery_fsm fsm_;
    std::string terminal_id_, store_id_;
    std::string session_id_ = new_session_id();  // names this connection in its presence
    std::deque<delivery_tag> unacked_tags_;      // events queued, not yet acknowledged
    std::string epoch_;                          // the epoch this connection's seqs count in
    sent_ring ring_;           // the last events sent: a reused seq is told from a late copy
    bool aware_ = false;       // the hello carried an epoch: the client knows `resync`
    bool subscribed_ = false;  // the hello asked for the store's events
    bool verifying_ = false;   // a stream check runs: production pauses
    bool verify_again_ = false;
    bool verify_after_welcome_ = false;
    // Live events not yet sent, bounded by max_inflight; usually none or one: a sorted vector
    // (no node allocated per event, capacity kept between events).
    boost::container::flat_map<std::uint64_t, live_event> live_;
    std::uint64_t live_max_ = 0;  // newest seq known to exist
    std::vector<out_frame> queue_;
    std::vector<out_frame> writing_;  // the batch being written (swapped with queue_)
    std::size_t queue_bytes_ = 0;
    std::size_t writing_bytes_ = 0;  // bytes of the batch being written
    std::chrono::steady_clock::time_point last_rx_ = std::chrono::steady_clock::now();
    bool welcomed_ = false;
    bool closing_ = false;
    bool dead_ = false;  // the transport is unusable: do not write
    bool attached_ = false;
    bool fetch_error_ = false;
    std::size_t requests_inflight_ = 0;
    token_claims claims_;    // what the hello's token said
    bool observer_ = false;  // an observer session (claims_.observe): not the till's own
};

}  // namespace posrelay::fanout::detail
