// The terminal gateway: listeners, the hub, the failed-handshake limiter, and the node's live
// event feed (sharded pub/sub on the channels of its terminals' stores, dispatched to this
// node's connections).
#include "posrelay/fanout/gateway.hpp"

#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <simdjson.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>

#include "gateway_session.hpp"
#include "gateway_shared.hpp"
#include "posrelay/fanout/epoch.hpp"
#include "posrelay/listen.hpp"
#include "posrelay/log.hpp"
#include "posrelay/net/proxy_protocol.hpp"
#include "posrelay/store/cluster_slots.hpp"
#include "posrelay/store/keys.hpp"

namespace posrelay::fanout {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using detail::nothrow;

gateway_options gateway_options::from(const config& c) {
    gateway_options o;
    o.tcp_listen = c.terminal_listen;
    o.tls_listen = c.terminal_tls_listen;
    o.tls_cert_file = c.terminal_tls_cert;
    o.tls_key_file = c.terminal_tls_key;
    o.tls_client_ca_file = c.terminal_tls_client_ca;
    o.tokens = make_token_verifier(c);
    o.max_connections = c.terminal_max_connections;
    o.handshake_timeout = c.terminal_handshake_timeout;
    o.heartbeat = c.terminal_heartbeat;
    o.write_timeout = c.terminal_write_timeout;
    o.max_frame_bytes = c.terminal_max_frame_bytes;
    o.send_queue_bytes = c.terminal_send_queue_bytes;
    o.send_queue_frames = c.terminal_send_queue_frames;
    o.max_inflight = c.terminal_max_inflight;
    o.auth_failures_per_minute = c.terminal_auth_failures_per_minute;
    o.socket_send_buffer = c.terminal_socket_send_buffer;
    o.max_observers = c.terminal_max_observers;
    o.trusted_proxies =
        std::make_shared<const net::cidr_set>(net::parse_cidr_list(c.trusted_proxies));
    o.proxy_protocol = c.terminal_proxy_protocol;
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    o.node_name = host;
    return o;
}

namespace detail {

// ---- hub ----------------------------------------------------------------------------------

std::string session_hub::key(std::string_view store, std::string_view terminal) {
    std::string k;
    k.reserve(store.size() + terminal.size() + 1);
    k += store;
    k += '/';
    k += terminal;
    return k;
}

std::string_view session_hub::store_of(std::string_view key) {
    return key.substr(0, key.find('/'));
}

std::shared_ptr<session_base> session_hub::attach(const std::string& key,
                                                  std::shared_ptr<session_base> s) {
    std::lock_guard lock(mutex_);
    auto [it, added] = sessions_.try_emplace(key);
    auto old = it->second.lock();
    it->second = s;
    if (added) {
        const auto c = refs_.acquire(store_of(key));
        if (c == feed_refs::change::subscribe && on_store_) on_store_(store_of(key), true);
        if (c == feed_refs::change::over_limit) {
            log::line(log::level::error, "live feed: too many stores on this node")
                .str("store_id", store_of(key));
        }
    }
    return old;
}

void session_hub::detach(const std::string& key, const session_base* s) {
    std::lock_guard lock(mutex_);
    const auto it = sessions_.find(key);
    if (it == sessions_.end()) return;
    const auto cur = it->second.lock();
    if (cur && cur.get() != s) return;
    sessions_.erase(it);
    if (refs_.release(store_of(key)) == feed_refs::change::unsubscribe && on_store_)
        on_store_(store_of(key), false);
}

bool session_hub::attach_observer(const std::string& key, std::shared_ptr<session_base> s,
                                  std::size_t max) {
    std::lock_guard lock(mutex_);
    // An entry whose session is being destroyed stays until its destructor detaches it (and
    // releases its count): found by its address, its weak_ptr having expired.
    auto& list = observers_[key];
    if (list.size() >= max) {
        if (list.empty()) observers_.erase(key);
        return false;
    }
    const auto c = refs_.acquire(store_of(key));
    if (c == feed_refs::change::over_limit) {
        if (list.empty()) observers_.erase(key);
        return false;
    }
    list.emplace_back(s.get(), s);
    if (c == feed_refs::change::subscribe && on_store_) on_store_(store_of(key), true);
    return true;
}

void session_hub::detach_observer(const std::string& key, const session_base* s) {
    std::lock_guard lock(mutex_);
    const auto it = observers_.find(key);
    if (it == observers_.end()) return;
    auto& list = it->second;
    const auto n = std::erase_if(list, [s](const auto& e) { return e.first == s; });
    if (list.empty()) observers_.erase(it);
    if (n > 0 && refs_.release(store_of(key)) == feed_refs::change::unsubscribe && on_store_)
        on_store_(store_of(key), false);
}

void session_hub::add_observers(std::string_view key,
                                std::vector<std::shared_ptr<session_base>>& out) const {
    if (observers_.empty()) return;
    const auto it = observers_.find(key);
    if (it == observers_.end()) return;
    for (const auto& [raw, w] : it->second) {
        if (auto p = w.lock()) out.push_back(std::move(p));
    }
}

bool session_hub::dispatch(std::string_view key, const live_meta& m,
                           std::shared_ptr<const std::string> frame) {
    std::shared_ptr<session_base> s;
    std::vector<std::shared_ptr<session_base>> watchers;
    {
        std::lock_guard lock(mutex_);
        if (const auto it = sessions_.find(key); it != sessions_.end()) s = it->second.lock();
        add_observers(key, watchers);
    }
    for (auto& w : watchers)
        asio::post(w->executor(), [w, m, frame] { w->on_live(m, frame); });
    if (!s) return !watchers.empty();
    asio::post(s->executor(),
               [s, m, frame = std::move(frame)]() mutable { s->on_live(m, std::move(frame)); });
    return true;
}

std::vector<std::shared_ptr<session_base>> session_hub::of_terminal(std::string_view key) const {
    std::vector<std::shared_ptr<session_base>> out;
    std::lock_guard lock(mutex_);
    if (const auto it = sessions_.find(key); it != sessions_.end()) {
        if (auto s = it->second.lock()) out.push_back(std::move(s));
    }
    add_observers(key, out);
    return out;
}

std::vector<std::shared_ptr<session_base>> session_hub::of_store(std::string_view store) const {
    std::vector<std::shared_ptr<session_base>> out;
    std::lock_guard lock(mutex_);
    auto of_this_store = [&](std::string_view k) {
        return k.size() > store.size() && k[store.size()] == '/' && k.starts_with(store);
    };
    for (const auto& [k, w] : sessions_) {
        if (!of_this_store(k)) continue;
        if (auto s = w.lock()) out.push_back(std::move(s));
    }
    for (const auto& [k, list] : observers_) {
        if (of_this_store(k)) add_observers(k, out);
    }
    return out;
}

std::vector<std::shared_ptr<session_base>> session_hub::all() const {
    std::vector<std::shared_ptr<session_base>> out;
    std::lock_guard lock(mutex_);
    for (const auto& [id, w] : sessions_) {
        if (auto s = w.lock()) out.push_back(std::move(s));
    }
    for (const auto& [k, list] : observers_)
        add_observers(k, out);
    return out;
}

// ---- shared state ----------------------------------------------------------------------

gateway_shared::gateway_shared(gateway_options o, store::redis_store& s, metrics::registry& reg,
                               std::size_t threads)
    : opts(std::move(o)),
      tokens(opts.tokens ? opts.tokens : std::make_shared<const token_verifier>()),
      store(s),
      registry(reg),
      hub(opts.max_connections),
      auth_owner(opts.auth_failures
                     ? opts.auth_failures
                     : std::make_shared<auth_limiter>(opts.auth_failures_per_minute)),
      auth(*auth_owner),
      tcp_connections(reg.add_gauge("posrelay_terminal_connections",
                                    "Terminal connections open, by transport.",
                                    {{"transport", "tcp"}})),
      tls_connections(reg.add_gauge("posrelay_terminal_connections",
                                    "Terminal connections open, by transport.",
                                    {{"transport", "tls"}})),
      ws_connections(reg.add_gauge("posrelay_terminal_connections",
                                   "Terminal connections open, by transport.",
                                   {{"transport", "ws"}})),
      queue_bytes(
          reg.add_gauge("posrelay_terminal_send_queue_bytes",
                        "Bytes queued for terminals and not yet written, all connections.")),
      unacked(reg.add_gauge(
          "posrelay_terminal_events_unacked",
          "Events sent to terminals and not yet acknowledged, all connections (each at most "
          "--terminal-max-inflight).")),
      delivered(reg.add_counter("posrelay_terminal_events_delivered_total",
                                "Events written to terminal sockets.")),
      replayed(
          reg.add_counter("posrelay_terminal_events_replayed_total",
                          "Events read back from a terminal's stream (resume, or missed live).")),
      acks(reg.add_counter("posrelay_terminal_acks_total", "Ack frames received from terminals.")),
      slow_consumers(
          reg.add_counter("posrelay_terminal_slow_consumer_disconnects_total",
                          "Terminals disconnected because they did not read fast enough.")),
      reads_paused(reg.add_counter(
          "posrelay_terminal_reads_paused_total",
          "Times a terminal connection stopped reading because its send queue was full (the "
          "terminal sends faster than it reads; a write stalled past the write timeout then "
          "cuts it as a slow consumer).")),
      rejected_connections(
          reg.add_counter("posrelay_terminal_connections_rejected_total",
                          "Terminal connections refused at the connection limit.")),
      feed_events(reg.add_counter(
          "posrelay_event_feed_events_total",
          "Events received on the node's live feed (sharded pub/sub: the channels of the stores "
          "of this node's terminals).")),
      feed_subscribes(reg.add_counter(
          "posrelay_event_feed_subscribes_total",
          "Subscriptions of the node's live feed made (the first, then one per lost Redis "
          "connection); after each, every terminal connection re-reads its stream.")),
      feed_unmatched(reg.add_counter(
          "posrelay_event_feed_unmatched_total",
          "Events received on the live feed for a terminal not connected to this node (another "
          "terminal of a store it serves).")),
      feed_stores(reg.add_gauge("posrelay_event_feed_stores",
                                "Stores whose channel the node's live feed is subscribed to "
                                "(SSUBSCRIBE): those with a terminal connected to this node.")),
      resyncs(reg.add_counter("posrelay_terminal_resyncs_total",
                              "Terminals told `resync`: their position was in an old epoch, or "
                              "their stream was found behind what they had been sent.")),
      rotations(reg.add_counter(
          "posrelay_terminal_epoch_rotations_total",
          "New epochs of a terminal's stream started by the gateway (a stream found behind "
          "what was handed out: Redis lost writes).")),
      observers(reg.add_gauge("posrelay_terminal_observers",
                              "Observer sessions connected to this node (tokens with the observe "
                              "claim: a terminal's events, no acks counted, never replacing).")),
      closed_revoked(reg.add_counter(
          "posrelay_terminal_sessions_closed_total",
          "Live terminal sessions (observers included) closed by operator control, by reason.",
          {{"reason", "revoked"}})),
      closed_disconnected(reg.add_counter(
          "posrelay_terminal_sessions_closed_total",
          "Live terminal sessions (observers included) closed by operator control, by reason.",
          {{"reason", "disconnected"}})),
      control_received(reg.add_counter(
          "posrelay_event_feed_control_messages_total",
          "Control messages (revoke, disconnect) received on the node's live feed.")),
      control_invalid(reg.add_counter(
          "posrelay_event_feed_invalid_messages_total",
          "Messages on the live feed that are neither an event nor a valid control message "
          "(ignored).")),
      latency(reg.add_histogram(
          "posrelay_terminal_delivery_latency_seconds",
          "From an event's commit to its frame written to the terminal's socket (live events).",
          metrics::latency_buckets())) {
    for (std::size_t i = 0; i < threads; ++i)
        parsers_.push_back(std::make_unique<frame_parser>(opts.max_frame_bytes));
    for (std::size_t k = 0; k < token_kinds; ++k) {
        for (std::size_t j = 0; j < token_outcomes; ++j) {
            token_checks_[k * token_outcomes + j] = &reg.add_counter(
                "posrelay_terminal_token_checks_total",
                "Terminal token checks (handshakes), by token kind (v1, hs256, eddsa, es256) and "
                "outcome (ok, expired, unknown_kid, bad_signature, revoked, ...).",
                {{"kind", std::string(to_string(static_cast<token_kind>(k)))},
                 {"outcome", std::string(to_string(static_cast<token_outcome>(j)))}});
        }
    }
    for (auto outcome : {"ok", "bad_token", "token_expired", "bad_frame", "timeout", "rate_limited",
                         "resume_gap", "resync", "unavailable", "transport_error", "peer_closed",
                         "revoked", "too_many_observers"}) {
        (void)labelled(handshakes_, "posrelay_terminal_handshakes_total",
                       "Terminal handshakes, by outcome.", "outcome", outcome);
    }
    for (auto reason : {"slow_consumer", "revoked", "disconnected"}) {
        (void)labelled(disconnects_, "posrelay_terminal_disconnects_total",
                       "Terminal connections ended, by reason.", "reason", reason);
    }
    if (!opts.trusted_proxies) opts.trusted_proxies = std::make_shared<const net::cidr_set>();
    if (opts.proxy_protocol) {
        for (const auto reason : net::proxy_refusal_reasons)
            count_proxy_refused(reason, 0);
    }
}

void gateway_shared::count_proxy_refused(std::string_view reason, int n) {
    auto& c = labelled(proxy_refused_, "posrelay_terminal_proxy_protocol_refused_total",
                       "Terminal TCP/TLS connections closed at their start: a PROXY header from "
                       "a peer not in --trusted-proxies (untrusted_peer), none or a malformed one "
                       "from a trusted peer, or none within the handshake timeout.",
                       "reason", reason);
    if (n > 0) c.inc();
}

metrics::gauge& gateway_shared::transport_gauge(std::string_view transport) {
    if (transport == "tls") return tls_connections;
    if (transport == "ws") return ws_connections;
    return tcp_connections;
}

metrics::counter& gateway_shared::labelled(
    std::vector<std::pair<std::string, metrics::counter*>>& table, const char* name,
    const char* help, const char* label, std::string_view value) {
    std::lock_guard lock(counters_mutex_);
    for (auto& [v, c] : table) {
        if (v == value) return *c;
    }
    auto& c = registry.add_counter(name, help, {{label, std::string(value)}});
    table.emplace_back(std::string(value), &c);
    return c;
}

token_check gateway_shared::check_token(const hello_frame& h) {
    const auto v = tokens.load();
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    auto r = fanout::check_token(*v, h.terminal_id, h.store_id, h.token, now);
    count_token(r.claims.kind, r.outcome);
    return r;
}

void gateway_shared::count_token(token_kind kind, token_outcome outcome) noexcept {
    const auto k = static_cast<std::size_t>(kind);
    const auto o = static_cast<std::size_t>(outcome);
    if (k < token_kinds && o < token_outcomes) token_checks_[k * token_outcomes + o]->inc();
}

void gateway_shared::count_handshake(std::string_view outcome) {
    labelled(handshakes_, "posrelay_terminal_handshakes_total", "Terminal handshakes, by outcome.",
             "outcome", outcome)
        .inc();
}

void gateway_shared::count_disconnect(std::string_view reason) {
    labelled(disconnects_, "posrelay_terminal_disconnects_total",
             "Terminal connections ended, by reason.", "reason", reason)
        .inc();
}

void gateway_shared::connection_closed() {
    if (connections.fetch_sub(1) == 1 && stopping.load()) {
        std::function<void()> f;
        {
            std::lock_guard lock(drained_mutex);
            f = std::move(drained);
            drained = nullptr;
        }
        if (f) f();
    }
}

}  // namespace detail

// ---- the gateway ------------------------------------------------------------------------

struct gateway::impl : std::enable_shared_from_this<gateway::impl> {
    impl(io_pool& p, gateway_options o, store::redis_store& s, metrics::registry& reg)
        : pool(p),
          shared(std::make_shared<detail::gateway_shared>(std::move(o), s, reg, p.size())) {
        for (std::size_t i = 0; i < p.size(); ++i) {
            shared->recorders.push_back(std::make_shared<detail::activity_recorder>(
                p.context(i).get_executor(), s, shared->activity_metrics));
        }
    }

    io_pool& pool;
    std::shared_ptr<detail::gateway_shared> shared;
    // The TLS listener's context; a reload swaps in a new one for new handshakes (a
    // connection's SSL object keeps its own context alive).
    std::atomic<std::shared_ptr<asio::ssl::context>> tls;
    std::vector<std::unique_ptr<tcp::acceptor>> acceptors;  // acceptor i lives on context i % size
    // The live feed's subscriber connections, by Redis node ("host:port"; "" on one Redis):
    // on Redis Cluster a store's channel is carried by the connection to its slot's primary.
    // Made on context 0; links_mu guards the map against stop_feed() from another thread.
    std::map<std::string, std::shared_ptr<store::redis_connection>, std::less<>> links;
    std::mutex links_mu;
    std::atomic<bool> feed_stop{false};
    asio::steady_timer keepalive{pool.context(0)};  // the feed's PING, on context 0
    simdjson::ondemand::parser feed_parser;         // on context 0 only

    std::string remote_of(const tcp::socket& s) {
        beast::error_code ec;
        const auto ep = s.remote_endpoint(ec);
        return ec ? std::string("unknown")
                  : ep.address().to_string() + ":" + std::to_string(ep.port());
    }

    // Admission: false (and the socket is closed) at the connection limit or when stopping.
    bool admit(tcp::socket& sock) {
        if (shared->stopping.load()) return false;
        if (shared->connections.load() >= shared->opts.max_connections) {
            shared->rejected_connections.inc();
            // Best effort, non-blocking: the error frame fits in the socket buffer.
            const std::string f = error_frame(errc::too_many_connections,
                                              "the server is at its connection limit", true);
            beast::error_code ec;
            sock.non_blocking(true, ec);
            sock.write_some(asio::buffer(f), ec);
            sock.close(ec);
            return false;
        }
        shared->connection_opened();
        beast::error_code ec;
        sock.set_option(tcp::no_delay(true), ec);
        if (shared->opts.socket_send_buffer > 0) {
            sock.set_option(asio::socket_base::send_buffer_size(
                                static_cast<int>(shared->opts.socket_send_buffer)),
                            ec);
        }
        return true;
    }

    asio::awaitable<void> accept_loop(tcp::acceptor& acc, std::size_t thread, bool use_tls) {
        for (;;) {
            auto [ec, sock] = co_await acc.async_accept(nothrow);
            if (ec) {
                if (ec == asio::error::operation_aborted || shared->stopping.load()) co_return;
                log::line(log::level::error, "terminal accept failed").str("error", ec.message());
                asio::steady_timer t(acc.get_executor(), std::chrono::milliseconds(100));
                co_await t.async_wait(nothrow);
                continue;
            }
            if (!admit(sock)) continue;
            if (shared->opts.proxy_protocol) {
                // The header is awaited on its own coroutine: the accept loop goes on.
                asio::co_spawn(acc.get_executor(),
                               proxied_start(shared_from_this(), std::move(sock), thread, use_tls),
                               [](std::exception_ptr e) { log::escaped(e, "terminal preamble"); });
                continue;
            }
            detail::session_origin origin{peer_address(sock), remote_of(sock)};
            start_session(std::move(sock), thread, use_tls, std::move(origin), {});
        }
    }

    void start_session(tcp::socket sock, std::size_t thread, bool use_tls,
                       detail::session_origin origin, std::string early) {
        if (use_tls) {
            const auto ctx = tls.load();
            auto s = std::make_shared<detail::terminal_session<detail::tls_transport>>(
                shared, thread, std::move(origin), std::move(sock), *ctx);
            s->preload(std::move(early));
            s->start();
        } else {
            auto s = std::make_shared<detail::terminal_session<detail::tcp_transport>>(
                shared, thread, std::move(origin), std::move(sock));
            s->preload(std::move(early));
            s->start();
        }
    }

    static std::string peer_address(const tcp::socket& s) {
        beast::error_code ec;
        const auto ep = s.remote_endpoint(ec);
        return ec ? std::string("unknown") : net::canonical(ep.address()).to_string();
    }

    // --terminal-proxy-protocol: reads the connection's first bytes until decide_preamble()
    // decides (within the handshake timeout), then starts the session with the client the
    // header names and the bytes that followed it (plain frames, or the TLS ClientHello).
    // A refused connection is counted, logged and closed.
    static asio::awaitable<void> proxied_start(std::shared_ptr<impl> self, tcp::socket sock,
                                               std::size_t thread, bool use_tls) {
        const auto& sh = self->shared;
        beast::error_code ec;
        const auto peer = sock.remote_endpoint(ec);
        const bool trusted = !ec && sh->opts.trusted_proxies->contains(peer.address());
        std::string remote = self->remote_of(sock);
        // The deadline: a flag the timer sets, checked on this same thread before touching sock.
        auto expired = std::make_shared<bool>(false);
        auto finished = std::make_shared<bool>(false);
        asio::steady_timer deadline(sock.get_executor(), sh->opts.handshake_timeout);
        deadline.async_wait([&sock, expired, finished](beast::error_code e) {
            if (e || *finished) return;
            *expired = true;
            beast::error_code ignored;
            sock.cancel(ignored);
        });
        std::string buf;
        std::string_view refused;
        net::preamble_decision d;
        for (;;) {
            d = net::decide_preamble(buf, trusted);
            if (d.action != net::preamble_action::read_more) break;
            const std::size_t have = buf.size();
            buf.resize(net::proxy_max_bytes);
            auto [rec, n] = co_await sock.async_read_some(
                asio::buffer(buf.data() + have, buf.size() - have), nothrow);
            buf.resize(have + n);
            if (rec) {
                if (*expired) refused = net::refused_timeout;
                break;
            }
        }
        *finished = true;
        deadline.cancel();
        if (d.action == net::preamble_action::refuse) refused = d.reason;
        if (d.action != net::preamble_action::proceed) {
            if (!refused.empty()) {
                sh->count_proxy_refused(refused);
                log::line(log::level::warn, "connection refused")
                    .str("reason", refused)
                    .str("what", "terminal_proxy_protocol")
                    .str("remote", remote);
            }
            beast::error_code ignored;
            sock.close(ignored);
            sh->connection_closed();
            co_return;
        }
        detail::session_origin origin{peer_address(sock), std::move(remote)};
        if (d.client) {
            origin.client = net::canonical(*d.client).to_string();
            origin.remote = origin.client + ":" + std::to_string(d.client_port);
        }
        buf.erase(0, d.consumed);
        self->start_session(std::move(sock), thread, use_tls, std::move(origin), std::move(buf));
    }

    void listen(const endpoint& where, bool use_tls, std::optional<tcp::endpoint>& bound) {
        auto l = listen_on_every_thread(pool, where);
        const tcp::endpoint ep = l.bound;
        for (std::size_t i = 0; i < l.acceptors.size(); ++i) {
            auto self = shared_from_this();
            tcp::acceptor& ref = *l.acceptors[i];
            acceptors.push_back(std::move(l.acceptors[i]));
            asio::co_spawn(
                pool.context(i), accept_loop(ref, i, use_tls),
                [self](std::exception_ptr e) { log::escaped(e, "terminal accept loop"); });
        }
        bound = ep;
        log::line(log::level::info, "listening")
            .str("what", use_tls ? "terminals-tls" : "terminals")
            .str("address", ep.address().to_string())
            .num("port", ep.port());
    }

    // Throws (boost::system::system_error) when a file is unreadable or the pair invalid.
    static std::shared_ptr<asio::ssl::context> make_tls(const std::string& cert,
                                                        const std::string& key,
                                                        const std::string& client_ca) {
        auto c = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
        c->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
        c->use_certificate_chain_file(cert);
        c->use_private_key_file(key, asio::ssl::context::pem);
        if (!client_ca.empty()) {
            c->load_verify_file(client_ca);
            c->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
        }
        return c;
    }
    void setup_tls() {
        const auto& o = shared->opts;
        tls.store(make_tls(o.tls_cert_file, o.tls_key_file, o.tls_client_ca_file));
    }

    // The node's live feed (proto-docs/redis-keys.md, "Live delivery"): a subscriber
    // connection SSUBSCRIBEd to the channel of each store with a terminal on this node (the
    // hub counts them: feed_refs), each event dispatched to the connection of its terminal.
    // Whenever a store's subscription is made, the connections of its terminals re-check their
    // streams (recheck); after the connection is (re)made, every connection does: what was
    // published while this node was not subscribed is then fetched from the stream, so nothing
    // committed is left unsent, and a stream that came back behind what was sent (Redis lost
    // writes) starts a new epoch and a `resync`.
    void start_feed() {
        std::weak_ptr<impl> weak = weak_from_this();
        shared->hub.on_store(
            [weak, ex = pool.context(0).get_executor()](std::string_view store, bool subscribe) {
                asio::post(ex, [weak, store = std::string(store), subscribe] {
                    if (auto self = weak.lock()) self->want(store, subscribe);
                });
            });
        asio::post(pool.context(0), [self = shared_from_this()] {
            if (!self->shared->store.cluster()) (void)self->link_to("");  // one Redis: at once
        });
        asio::co_spawn(pool.context(0), keepalive_loop(shared_from_this()),
                       [](std::exception_ptr e) { log::escaped(e, "event feed keepalive"); });
    }

    // The subscriber connection to `node` ("" = the store's one Redis), made and started on
    // first use (context 0). After every (re)connect it subscribes again to the channels it
    // carries, and every connection of this node re-checks its stream.
    store::redis_connection* link_to(const std::string& node) {
        if (auto it = links.find(node); it != links.end()) return it->second.get();
        store::redis_options o = shared->store.connection_options();
        if (!node.empty()) {
            const auto addr = store::cluster::parse_node_address(node);
            if (!addr) return nullptr;
            o.cluster_seeds.clear();
            o.host = addr->host;
            o.port = addr->port;
        }
        auto link = std::make_shared<store::redis_connection>(pool.context(0).get_executor(), o,
                                                              shared->store.connection_metrics());
        store::redis_connection* raw = link.get();
        {
            const std::lock_guard lock(links_mu);
            if (feed_stop.load()) return nullptr;
            links.emplace(node, link);
        }
        std::weak_ptr<impl> weak = weak_from_this();
        link->start(
            [weak, raw]() -> asio::awaitable<void> {
                auto self = weak.lock();
                if (!self) co_return;
                co_await store::require_redis_7(*raw);
                std::erase_if(self->subscribed, [&](const auto& e) { return e.second == raw; });
                self->shared->feed_stores.set(static_cast<std::int64_t>(self->subscribed.size()));
                if (!co_await self->sync(raw, false)) throw std::runtime_error("SSUBSCRIBE failed");
                self->shared->feed_subscribes.inc();
                for (auto& s : self->shared->hub.all())
                    asio::post(s->executor(), [s] { s->recheck(); });
            },
            [weak](store::redis_reply&& message) {
                if (auto self = weak.lock()) self->on_published(message.elements.back().str);
            });
        return raw;
    }

    // ---- which stores the feed subscribes to (all on context 0) ----
    std::set<std::string, std::less<>> wanted;  // stores with a terminal on this node
    // Stores SSUBSCRIBEd (acknowledged), with the link that carries each.
    std::map<std::string, store::redis_connection*, std::less<>> subscribed;
    std::uint64_t topology_seen = 0;  // the cluster slot map's version the links follow
    bool syncing = false;

    [[nodiscard]] std::string channel(std::string_view store) const {
        return store::keys::store_channel(shared->store.options().prefix, store);
    }
    // The connection that carries `channel`'s subscription: on one Redis the feed connection;
    // on Redis Cluster the one to the primary owning the channel's slot (a shard channel's
    // messages come only from there). nullptr while the slot has no known owner.
    store::redis_connection* link_for(std::string_view channel_name) {
        const auto topology = shared->store.cluster();
        if (!topology) return link_to("");
        const auto owner = topology->node_for_key(channel_name);
        return owner ? link_to(owner->name()) : nullptr;
    }

    // The hub's news: a store's first terminal arrived (subscribe) or its last left.
    void want(const std::string& store, bool subscribe) {
        if (subscribe) {
            wanted.insert(store);
        } else {
            wanted.erase(store);
        }
        if (!syncing) {
            asio::co_spawn(pool.context(0), sync_detached(shared_from_this()), asio::detached);
        }
    }
    static asio::awaitable<void> sync_detached(std::shared_ptr<impl> self) {
        if (self->syncing) co_return;
        self->syncing = true;
        (void)co_await self->sync(nullptr, true);
        self->syncing = false;
    }

    // Brings the subscriptions carried by `link` (every link when null) to `wanted`: one
    // SSUBSCRIBE or SUNSUBSCRIBE per channel (each gets its own reply; on Cluster a command's
    // channels must share a slot), in rounds until nothing changed meanwhile. A store whose
    // slot moved to another primary is subscribed there (and left on the old link). After a
    // store's SSUBSCRIBE, its terminals' connections re-read their streams (`recheck`). False
    // at the first failure (its link is down: its on_connect syncs it again).
    asio::awaitable<bool> sync(store::redis_connection* link, bool recheck) {
        for (;;) {
            auto todo = subscription_changes(link);
            if (todo.empty()) co_return true;
            for (const auto& [st, target] : todo) {
                if (!co_await apply_change(st, target, recheck)) co_return false;
            }
        }
    }
    // (store, the link to subscribe it on; nullptr: unsubscribe) for the links `only` carries.
    std::vector<std::pair<std::string, store::redis_connection*>> subscription_changes(
        store::redis_connection* only) {
        std::vector<std::pair<std::string, store::redis_connection*>> todo;
        for (const auto& st : wanted) {
            store::redis_connection* target = link_for(channel(st));
            const auto it = subscribed.find(st);
            if (target == nullptr || (it != subscribed.end() && it->second == target)) continue;
            // A link still coming up is synced by its own on_connect (the only one it runs).
            if (only == nullptr ? target->connected() : only == target) {
                todo.emplace_back(st, target);
            }
        }
        for (const auto& [st, carrier] : subscribed) {
            if (wanted.contains(st) || (only != nullptr && only != carrier)) continue;
            todo.emplace_back(st, nullptr);
        }
        return todo;
    }
    asio::awaitable<bool> apply_change(const std::string& st, store::redis_connection* target,
                                       bool recheck) {
        const std::string ch = channel(st);
        if (const auto it = subscribed.find(st); it != subscribed.end()) {
            // Unsubscribed, or moved to another primary: leave the old link (best effort: a
            // link that lost its connection has no subscription left anyway).
            store::redis_connection* old = it->second;
            subscribed.erase(it);
            shared->feed_stores.set(static_cast<std::int64_t>(subscribed.size()));
            if (old->connected()) {
                (void)co_await old->exec(store::redis_command("SUNSUBSCRIBE", ch));
            }
        }
        if (target == nullptr) co_return true;
        auto [ec, r] = co_await target->exec(store::redis_command("SSUBSCRIBE", ch));
        if (ec || r.is_error()) {
            log::line(log::level::warn, "live feed subscription failed")
                .str("store_id", st)
                .str("error", ec ? ec.message() : r.str);
            co_return false;
        }
        subscribed.emplace(st, target);
        shared->feed_stores.set(static_cast<std::int64_t>(subscribed.size()));
        if (recheck) {
            for (auto& s : shared->hub.of_store(st))
                asio::post(s->executor(), [s] { s->recheck(); });
        }
        co_return true;
    }

    // One published event JSON (store_id, terminal_id, seq, epoch, eid, event_time_ms among
    // its members), dispatched to the connection of (store_id, terminal_id) on this node.
    // A control message (fanout/control.hpp) goes to the sessions it names, after it is noted
    // (a session joining the hub right after checks the note).
    void on_published(std::string& message) {
        switch (classify_feed_message(message)) {
            case feed_message::event:
                shared->feed_events.inc();
                if (!dispatch_event(message)) shared->feed_unmatched.inc();
                return;
            case feed_message::control:
                if (const auto m = parse_control(message)) return dispatch_control(*m);
                break;
            case feed_message::unknown:
                break;
        }
        shared->control_invalid.inc();
    }
    void dispatch_control(const control_message& m) {
        shared->control_received.inc();
        shared->recent.note(m);
        const auto targets =
            m.terminal_id.empty()
                ? shared->hub.of_store(m.store_id)
                : shared->hub.of_terminal(detail::session_hub::key(m.store_id, m.terminal_id));
        auto msg = std::make_shared<const control_message>(m);
        for (const auto& s : targets)
            asio::post(s->executor(), [s, msg] { s->on_control(*msg); });
    }
    bool dispatch_event(std::string& event) {
        event.reserve(event.size() + simdjson::SIMDJSON_PADDING);
        std::string_view terminal, store, epoch, eid, order;
        detail::live_meta m;
        simdjson::ondemand::document doc;
        if (feed_parser.iterate(event.data(), event.size(), event.capacity()).get(doc))
            return false;
        simdjson::ondemand::object o;
        if (doc.get_object().get(o)) return false;
        for (auto field : o) {
            std::string_view key;
            if (field.unescaped_key().get(key)) return false;
            std::string_view* text = key == "terminal_id" ? &terminal
                                     : key == "store_id"  ? &store
                                     : key == "epoch"     ? &epoch
                                     : key == "eid"       ? &eid
                                     : key == "order_id"  ? &order
                                                          : nullptr;
            if (text != nullptr) {
                if (field.value().get_string().get(*text)) return false;
            } else if (key == "seq") {
                if (field.value().get_uint64().get(m.seq)) return false;
            } else if (key == "event_time_ms") {
                if (field.value().get_int64().get(m.event_ms)) return false;
            }
        }
        if (terminal.empty() || store.empty() || m.seq == 0 || epoch.size() > sizeof m.epoch ||
            terminal.size() > 64 || store.size() > 64) {
            return false;
        }
        m.eid = parse_eid(eid).value_or(0);
        std::copy(epoch.begin(), epoch.end(), m.epoch);
        m.epoch_size = static_cast<std::uint8_t>(epoch.size());
        if (order.size() <= sizeof m.order_id) {
            std::copy(order.begin(), order.end(), m.order_id);
            m.order_id_size = static_cast<std::uint8_t>(order.size());
        }
        // The hub key "STORE/TERMINAL" on the stack: no allocation per event.
        char key[130];
        std::copy(store.begin(), store.end(), key);
        key[store.size()] = '/';
        std::copy(terminal.begin(), terminal.end(), key + store.size() + 1);
        return shared->hub.dispatch(std::string_view(key, store.size() + 1 + terminal.size()), m,
                                    std::make_shared<const std::string>(event_frame(event)));
    }

    // A subscribed connection sends nothing of its own: a PING a second lets its watchdog
    // notice a dead path to Redis (no reply → reconnect → resubscribe and recheck).
    // It also renews the store subscriptions of this node's terminals, well within the stream
    // TTL after which an unrenewed one expires (a quarter of it, at most an hour).
    static asio::awaitable<void> keepalive_loop(std::shared_ptr<impl> self) {
        const auto renew_every =
            std::clamp<std::chrono::seconds>(self->shared->store.options().stream_ttl / 4,
                                             std::chrono::seconds(1), std::chrono::hours(1));
        auto renewed = std::chrono::steady_clock::now();
        while (!self->feed_stop.load()) {
            self->keepalive.expires_after(std::chrono::seconds(1));
            co_await self->keepalive.async_wait(nothrow);
            if (self->feed_stop.load()) break;
            for (const auto& [node, link] : self->links) {
                if (link->connected()) (void)co_await link->exec(store::redis_command("PING"));
            }
            // A change that came while a link was coming up (its on_connect had already
            // synced), or a slot that moved to another primary, is caught up here.
            if (!self->syncing && self->out_of_sync()) {
                asio::co_spawn(self->pool.context(0), sync_detached(self), asio::detached);
            }
            if (std::chrono::steady_clock::now() - renewed >= renew_every) {
                renewed = std::chrono::steady_clock::now();
                for (auto& s : self->shared->hub.all())
                    asio::post(s->executor(), [s] { s->renew_subscription(); });
            }
        }
    }

    // True when `wanted` and `subscribed` differ, or the cluster's slot map changed.
    bool out_of_sync() {
        if (const auto topology = shared->store.cluster()) {
            const std::uint64_t v = topology->version();
            if (v != topology_seen) {
                topology_seen = v;
                return true;
            }
        }
        if (wanted.size() != subscribed.size()) return true;
        return !std::equal(wanted.begin(), wanted.end(), subscribed.begin(),
                           [](const auto& w, const auto& s) { return w == s.first; });
    }

    void stop_feed() {
        {
            const std::lock_guard lock(links_mu);
            feed_stop.store(true);
            for (auto& [node, link] : links)
                link->stop();
        }
        asio::post(pool.context(0), [self = shared_from_this()] { self->keepalive.cancel(); });
    }
};

gateway::gateway(io_pool& pool, gateway_options opts, store::redis_store& store,
                 metrics::registry& reg)
    : impl_(std::make_shared<impl>(pool, std::move(opts), store, reg)) {}

gateway::~gateway() {
    impl_->stop_feed();
}

gateway::bound gateway::start() {
    bound b;
    auto& o = impl_->shared->opts;
    if (o.tls_listen) impl_->setup_tls();
    if (o.tcp_listen) impl_->listen(*o.tcp_listen, false, b.tcp);
    if (o.tls_listen) impl_->listen(*o.tls_listen, true, b.tls);
    impl_->start_feed();
    return b;
}

bool gateway::has_tls() const noexcept {
    return impl_->shared->opts.tls_listen.has_value();
}

void gateway::reload_tls(const std::string& cert, const std::string& key,
                         const std::string& client_ca) {
    if (!has_tls()) return;
    auto c = impl::make_tls(cert, key, client_ca);  // throws: the running context stays
    impl_->tls.store(std::move(c));
}

void gateway::check_tls(const config& c) {
    if (!c.terminal_tls_listen) return;
    if (c.terminal_tls_cert.empty() || c.terminal_tls_key.empty())
        throw config_error(
            "--terminal-tls-listen needs --terminal-tls-cert and --terminal-tls-key");
    try {
        (void)impl::make_tls(c.terminal_tls_cert, c.terminal_tls_key, c.terminal_tls_client_ca);
    } catch (const std::exception& e) {
        throw config_error(std::string("terminal TLS (--terminal-tls-cert, --terminal-tls-key, "
                                       "--terminal-tls-client-ca): ") +
                           e.what());
    }
}

void gateway::set_token_verifier(std::shared_ptr<const token_verifier> v) {
    impl_->shared->tokens.store(std::move(v));
}

void gateway::accept_websocket(tcp::socket socket, http::request req, std::string client) {
    if (!impl_->admit(socket)) return;
    const std::size_t thread = io_pool::current_index();
    // Logs name the client; with its port when it is the peer itself.
    detail::session_origin origin{client, impl_->remote_of(socket)};
    if (impl::peer_address(socket) != client) origin.remote = std::move(client);
    auto s = std::make_shared<detail::terminal_session<detail::ws_transport>>(
        impl_->shared, thread < impl_->pool.size() ? thread : 0, std::move(origin),
        std::move(socket), std::move(req));
    s->start();
}

void gateway::shutdown(std::chrono::milliseconds reconnect_after, std::function<void()> drained) {
    auto& sh = *impl_->shared;
    if (sh.stopping.exchange(true)) return;
    {
        std::lock_guard lock(sh.drained_mutex);
        sh.drained = std::move(drained);
    }
    for (std::size_t i = 0; i < impl_->acceptors.size(); ++i) {
        tcp::acceptor* acc = impl_->acceptors[i].get();
        asio::post(acc->get_executor(), [acc] {
            beast::error_code ec;
            acc->close(ec);
        });
    }
    for (auto& s : sh.hub.all()) {
        asio::post(s->executor(), [s, reconnect_after] { s->goaway(reconnect_after); });
    }
    impl_->stop_feed();
    if (sh.connections.load() == 0) {
        std::function<void()> f;
        {
            std::lock_guard lock(sh.drained_mutex);
            f = std::move(sh.drained);
            sh.drained = nullptr;
        }
        if (f) f();
    }
}

std::size_t gateway::connections() const noexcept {
    return impl_->shared->connections.load();
}

}  // namespace posrelay::fanout
