// Asio glue of the pipelined Redis connection: a connect/reconnect loop and, per live
// connection, one writer, one reader and one timeout watchdog coroutine. What to send, which
// reply belongs to whom and what timed out is decided by detail::redis_pipeline (sans-io).
#include "posrelay/store/redis_connection.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <atomic>
#include <exception>
#include <optional>
#include <random>

#include "detail/redis_pipeline.hpp"
#include "posrelay/log.hpp"
#include "posrelay/store/sentinel.hpp"

namespace posrelay::store {

namespace asio = boost::asio;
using boost::system::error_code;
using detail::redis_clock;
using detail::redis_completion;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

metrics::counter& error_counter(metrics::registry& reg, std::string kind) {
    return reg.add_counter("posrelay_redis_errors_total",
                           "Redis commands that failed, by kind: not_connected (failed fast while "
                           "down), timeout, queue_full, connection_lost, protocol, reply (an "
                           "error reply from Redis).",
                           {{"kind", std::move(kind)}});
}

// One TCP or unix-socket connection with its timers and pipeline. A new one is made for each
// connect attempt, so coroutines of a dead connection never touch its successor.
struct session {
    session(const asio::any_io_executor& ex, const redis_options& o)
        : sock(ex),
          resolver(ex),
          wake(ex, redis_clock::time_point::max()),
          watchdog(ex),
          down(ex, redis_clock::time_point::max()),
          pipe(o.max_pending, o.command_timeout),
          target{o.host, o.port} {}

    asio::generic::stream_protocol::socket sock;
    asio::ip::tcp::resolver resolver;
    asio::steady_timer wake;      // the writer waits here for output; exec() cancels it
    asio::steady_timer watchdog;  // connect deadline, then command timeouts
    asio::steady_timer down;      // the connect loop waits here while up; close() cancels it
    detail::redis_pipeline pipe;
    redis_address target;      // opts' host and port, or what the discovery named
    std::string writing;       // the bytes of the write in flight
    std::size_t counted = 0;   // pipe.size() as last added to the in-flight gauge
    bool writer_idle = false;  // the writer waits on `wake`
    bool connect_timed_out = false;
    bool closed = false;
    bool up = false;  // counted in posrelay_redis_connections_up
    std::string close_reason;
};

bool is_readonly_error(const redis_reply& r) noexcept {
    return r.is_error() && std::string_view(r.str).starts_with("READONLY");
}

std::string exception_message(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
        return "unknown exception";
    }
}

// Runs `a` on `ex`; an exception escaping it is a bug, logged rather than lost.
void spawn(const asio::any_io_executor& ex, asio::awaitable<void> a, const char* what) {
    asio::co_spawn(ex, std::move(a), [what](const std::exception_ptr& e) {
        if (e) {
            log::line(log::level::error, "redis coroutine failed")
                .str("coroutine", what)
                .str("error", exception_message(e));
        }
    });
}

}  // namespace

redis_metrics::redis_metrics(metrics::registry& reg)
    : latency(reg.add_histogram("posrelay_redis_command_duration_seconds",
                                "Redis command latency, from exec() to its reply.",
                                metrics::latency_buckets())),
      reconnects(reg.add_counter("posrelay_redis_reconnects_total",
                                 "Redis reconnect attempts after a failed connect or a lost "
                                 "connection.")),
      in_flight(reg.add_gauge("posrelay_redis_commands_in_flight",
                              "Redis commands queued or sent whose reply is still owed.")),
      connected(
          reg.add_gauge("posrelay_redis_connections_up", "Redis connections connected and ready.")),
      err_not_connected(error_counter(reg, "not_connected")),
      err_timeout(error_counter(reg, "timeout")),
      err_queue_full(error_counter(reg, "queue_full")),
      err_connection_lost(error_counter(reg, "connection_lost")),
      err_protocol(error_counter(reg, "protocol")),
      err_reply(error_counter(reg, "reply")) {}

// The shared state of a redis_connection. Touched only on `ex`. Its coroutines hold it by
// shared_ptr and all end once stop() closed the session and cancelled the backoff timer.
struct redis_connection::impl {
    // down: connecting or waiting to reconnect (exec fails fast); handshake: only AUTH and
    // SELECT pass; on_connect: only commands awaited by the on_connect callback pass.
    enum class phase : std::uint8_t { idle, down, handshake, on_connect, ready, stopped };
    // Who issues a command: exec() of the owner or of on_connect, or the handshake.
    enum class origin : std::uint8_t { user, on_connect, handshake };

    impl(asio::any_io_executor e, redis_options o, redis_metrics& mm)
        : ex(std::move(e)), opts(std::move(o)), m(mm), backoff(ex), rng(std::random_device{}()) {}

    // `internal`: AUTH/SELECT of the handshake. Otherwise a command comes from on_connect
    // when the coroutine awaiting it runs on on_connect's strand.
    template <typename Token>
    auto async_exec(redis_args args, bool internal, Token&& token) {
        return asio::async_initiate<Token, void(error_code, redis_reply)>(
            [this](auto handler, redis_args a, bool in) {
                origin from = in ? origin::handshake : origin::user;
                if (!in && on_connect_ex &&
                    asio::any_io_executor(asio::get_associated_executor(handler, ex)) ==
                        *on_connect_ex) {
                    from = origin::on_connect;
                }
                start_exec(a, detail::redis_handler(std::move(handler)), from);
            },
            token, args, internal);
    }

    using ptr = std::shared_ptr<impl>;
    using session_ptr = std::shared_ptr<session>;
    // The coroutines; each holds the state it uses by shared_ptr.
    static asio::awaitable<void> run(ptr self);
    static asio::awaitable<error_code> connect(ptr self, session_ptr s);
    static asio::awaitable<std::optional<std::string>> handshake(ptr self);
    static asio::awaitable<std::optional<std::string>> check_master(ptr self);
    static asio::awaitable<bool> discover(ptr self, session_ptr s);
    static asio::awaitable<void> writer(ptr self, session_ptr s);
    static asio::awaitable<void> reader(ptr self, session_ptr s);
    static asio::awaitable<void> watchdog(ptr self, session_ptr s);

    void start_exec(redis_args args, detail::redis_handler h, origin from);
    void deliver(std::vector<redis_completion>& done);
    void sync_in_flight(session& s);
    void close(const std::shared_ptr<session>& s, redis_errc why, std::string reason);
    void stop();
    void reconnect_now(std::string reason);
    static void follow(const ptr& self);
    void moved(const redis_address& to);
    [[nodiscard]] std::chrono::milliseconds backoff_delay(unsigned attempt);

    asio::any_io_executor ex;
    redis_options opts;
    redis_metrics& m;
    on_connect_fn on_connect;
    on_push_fn on_push;
    std::optional<asio::any_io_executor> on_connect_ex;  // set while on_connect runs
    phase state = phase::idle;
    std::atomic<bool> up{false};  // read by connected() from any thread
    std::shared_ptr<session> current;
    asio::steady_timer backoff;
    std::minstd_rand rng;
    std::optional<std::uint64_t> watch_id;  // registered with opts.discovery
    bool hurry = false;                     // reconnect_now(): the next attempt without backoff
};

// Connects s->sock to the unix socket or to the first host address that answers, all
// within connect_timeout (on expiry the timer cancels the resolver and closes the socket).
asio::awaitable<error_code> redis_connection::impl::connect(ptr self, session_ptr s) {
    const redis_options& o = self->opts;
    s->watchdog.expires_after(o.connect_timeout);
    s->watchdog.async_wait([s](error_code ec) {
        if (ec) return;  // cancelled: connected (or failed) in time
        s->connect_timed_out = true;
        s->resolver.cancel();
        error_code ignored;
        s->sock.close(ignored);
    });
    std::vector<asio::generic::stream_protocol::endpoint> targets;
    error_code ec;
    if (!o.unix_path.empty()) {
        targets.emplace_back(asio::local::stream_protocol::endpoint(o.unix_path));
    } else if (const auto addr = asio::ip::make_address(s->target.host, ec); !ec) {
        targets.emplace_back(asio::ip::tcp::endpoint(addr, s->target.port));  // no resolver
    } else {
        auto [rec, results] = co_await s->resolver.async_resolve(
            s->target.host, std::to_string(s->target.port), use_tuple);
        for (const auto& r : results)
            targets.emplace_back(r.endpoint());
        ec = rec;
    }
    if (targets.empty() && !ec) ec = asio::error::host_not_found;
    for (const auto& target : targets) {
        if (s->connect_timed_out || s->closed) break;
        error_code ignored;
        s->sock.close(ignored);
        s->sock.open(target.protocol(), ec);
        if (ec) continue;
        std::tie(ec) = co_await s->sock.async_connect(target, use_tuple);
        if (!ec) break;
    }
    s->watchdog.cancel();
    if (s->connect_timed_out) co_return asio::error::timed_out;
    if (!ec && o.unix_path.empty()) {
        error_code ignored;  // small commands must not wait for Nagle
        s->sock.set_option(asio::ip::tcp::no_delay(true), ignored);
    }
    co_return ec;
}

// Writes everything queued since the last write in one async_write; sleeps when idle.
asio::awaitable<void> redis_connection::impl::writer(ptr self, session_ptr s) {
    while (!s->closed) {
        if (!s->pipe.has_output()) {
            s->writer_idle = true;
            (void)co_await s->wake.async_wait(use_tuple);  // cancelled by exec() or close()
            s->writer_idle = false;
            continue;
        }
        s->pipe.take_output(s->writing);
        auto [ec, n] = co_await asio::async_write(s->sock, asio::buffer(s->writing), use_tuple);
        if (s->closed) co_return;
        if (ec) self->close(s, redis_errc::connection_lost, "write: " + ec.message());
    }
}

// Reads replies and completes their commands in order; every reply already buffered is
// handled before the next read.
asio::awaitable<void> redis_connection::impl::reader(ptr self, session_ptr s) {
    std::array<char, 16 * 1024> buf{};
    std::vector<redis_completion> done;
    std::vector<redis_reply> pushes;
    while (!s->closed) {
        auto [ec, n] = co_await s->sock.async_read_some(asio::buffer(buf), use_tuple);
        if (s->closed) co_return;
        if (ec) {
            self->close(s, redis_errc::connection_lost,
                        ec == asio::error::eof ? "closed by the server" : "read: " + ec.message());
            co_return;
        }
        const error_code perr = s->pipe.feed(buf.data(), n, redis_clock::now(), done,
                                             self->on_push ? &pushes : nullptr);
        self->sync_in_flight(*s);
        const bool demoted = std::any_of(done.begin(), done.end(), [](const redis_completion& c) {
            return !c.ec && is_readonly_error(c.reply);
        });
        self->deliver(done);
        if (demoted) {
            // Talking to a replica (a demoted master): every write would fail the same way.
            self->close(s, redis_errc::connection_lost, "READONLY: the server is a replica");
            co_return;
        }
        for (auto& p : pushes) {
            if (s->closed || !self->on_push) break;  // the handler may stop the connection
            self->on_push(std::move(p));
        }
        pushes.clear();
        if (perr) self->close(s, redis_errc::protocol_error, "malformed or unexpected reply");
    }
}

// Times commands out (they keep their place: replies are positional) and declares the
// connection dead when the oldest command waits for twice the command timeout.
asio::awaitable<void> redis_connection::impl::watchdog(ptr self, session_ptr s) {
    std::vector<redis_completion> done;
    while (!s->closed) {
        s->watchdog.expires_at(s->pipe.next_deadline());
        (void)co_await s->watchdog.async_wait(use_tuple);  // or cancelled: recompute
        if (s->closed) co_return;
        const auto now = redis_clock::now();
        s->pipe.expire(now, done);
        self->deliver(done);
        if (s->pipe.dead(now)) {
            self->close(s, redis_errc::connection_lost,
                        "no reply within twice the command timeout");
        }
    }
}

// AUTH and SELECT. Returns why they failed, or nullopt. A refused AUTH is logged with
// Redis's answer, which never contains the password.
asio::awaitable<std::optional<std::string>> redis_connection::impl::handshake(ptr self) {
    const redis_options& o = self->opts;
    if (!o.password.empty()) {
        // Views: the password is not copied into another string.
        std::vector<std::string_view> args{"AUTH"};
        if (!o.username.empty()) args.emplace_back(o.username);
        args.push_back(o.password.view());
        auto [ec, r] = co_await self->async_exec(args, true, use_tuple);
        if (ec) co_return "AUTH: " + ec.message();
        if (r.is_error()) {
            log::line(log::level::error, "redis auth failed")
                .str("redis", o.describe())
                .str("error", r.str);
            co_return "AUTH refused: " + r.str;
        }
    }
    if (o.db != 0) {
        const std::string db = std::to_string(o.db);
        const std::array<std::string_view, 2> args{"SELECT", db};
        auto [ec, r] = co_await self->async_exec(args, true, use_tuple);
        if (ec) co_return "SELECT: " + ec.message();
        if (r.is_error()) co_return "SELECT refused: " + r.str;
    }
    if (o.discovery && o.discovery->masters_only()) co_return co_await check_master(self);
    co_return std::nullopt;
}

// A discovered address must be a master's: a sentinel's answer may be stale (a failover under
// way), and a replica would answer every write -READONLY.
asio::awaitable<std::optional<std::string>> redis_connection::impl::check_master(ptr self) {
    const std::array<std::string_view, 1> args{"ROLE"};
    auto [ec, r] = co_await self->async_exec(args, true, use_tuple);
    if (ec) co_return "ROLE: " + ec.message();
    if (!is_master_role(r)) co_return "not a master (ROLE), asking the discovery again";
    co_return std::nullopt;
}

// Asks the discovery where to connect (when there is one) and sets s->target. False when it
// failed or the session was closed meanwhile (stop(), reconnect_now()).
asio::awaitable<bool> redis_connection::impl::discover(ptr self, session_ptr s) {
    const auto d = self->opts.discovery;
    if (!d) co_return true;
    auto [ec, addr] = co_await d->resolve();
    if (s->closed) co_return false;
    if (ec) {
        self->close(s, redis_errc::connection_lost,
                    ec == redis_errc::not_connected ? "the discovery found no master"
                                                    : "discovery: " + ec.message());
        co_return false;
    }
    s->target = std::move(addr);
    co_return true;
}

// Connect, handshake, on_connect, serve until the connection drops; back off; repeat.
asio::awaitable<void> redis_connection::impl::run(ptr self) {
    unsigned attempt = 0;
    while (self->state != phase::stopped) {
        auto s = std::make_shared<session>(self->ex, self->opts);
        self->current = s;
        bool was_up = false;
        const error_code ec = co_await discover(self, s)
                                  ? co_await connect(self, s)
                                  : make_error_code(redis_errc::not_connected);
        if (s->closed) {
            // Closed while resolving or connecting (reconnect_now(), stop()): close_reason says.
        } else if (ec) {
            self->close(s, redis_errc::connection_lost, "connect: " + ec.message());
        } else {
            spawn(self->ex, reader(self, s), "redis reader");
            spawn(self->ex, writer(self, s), "redis writer");
            spawn(self->ex, watchdog(self, s), "redis watchdog");
            self->state = phase::handshake;
            std::optional<std::string> failure = co_await handshake(self);
            if (failure) self->close(s, redis_errc::connection_lost, std::move(*failure));
            if (auto cb = self->on_connect; cb && !s->closed) {  // a copy outlives its coroutine
                // It runs on a strand of its own, so that its commands are told apart from
                // the owner's, which keep failing fast until it is done.
                self->state = phase::on_connect;
                self->on_connect_ex = asio::make_strand(self->ex);
                auto [eptr] = co_await asio::co_spawn(*self->on_connect_ex, cb(), use_tuple);
                self->on_connect_ex.reset();
                if (eptr) {
                    self->close(s, redis_errc::connection_lost,
                                "on_connect failed: " + exception_message(eptr));
                }
            }
            if (!s->closed) {
                self->state = phase::ready;
                s->up = was_up = true;
                self->up = true;
                self->m.connected.add(1);
                attempt = 0;
                {
                    log::line l(log::level::info, "redis connected");  // written at scope end
                    l.str("redis", self->opts.describe());
                    if (self->opts.discovery) l.str("address", s->target.describe());
                }
                (void)co_await s->down.async_wait(use_tuple);  // cancelled by close()
            }
        }
        self->close(s, redis_errc::connection_lost, "connection closed");  // no-op if closed
        if (self->state == phase::stopped) break;
        const auto delay =
            self->hurry ? std::chrono::milliseconds(0) : self->backoff_delay(attempt++);
        self->hurry = false;
        log::line(log::level::warn, was_up ? "redis disconnected" : "redis connect failed")
            .str("redis", self->opts.describe())
            .str("error", s->close_reason)
            .num("retry_in_ms", delay.count());
        s.reset();
        self->backoff.expires_after(delay);
        // Cancelled by stop(), or by reconnect_now() (which then needs no further hurry).
        (void)co_await self->backoff.async_wait(use_tuple);
        self->hurry = false;
        if (self->state == phase::stopped) break;
        self->m.reconnects.inc();
    }
    self->current.reset();
}

void redis_connection::impl::start_exec(redis_args args, detail::redis_handler h, origin from) {
    const auto fail = [&](redis_errc e) {
        asio::post(ex, asio::append(std::move(h), make_error_code(e), redis_reply{}));
    };
    if (state == phase::stopped) return fail(redis_errc::stopped);
    const bool open =
        current && !current->closed &&
        (state == phase::ready || (from == origin::on_connect && state == phase::on_connect) ||
         (from == origin::handshake && state == phase::handshake));
    if (!open) {
        m.err_not_connected.inc();
        return fail(redis_errc::not_connected);
    }
    session& s = *current;
    if (const error_code ec = s.pipe.push(args, std::move(h), redis_clock::now())) {
        (ec == redis_errc::queue_full ? m.err_queue_full : m.err_protocol).inc();
        return fail(static_cast<redis_errc>(ec.value()));
    }
    sync_in_flight(s);
    if (s.writer_idle) s.wake.cancel();
    if (s.pipe.deadline_moved_earlier()) s.watchdog.cancel();  // re-arm for this deadline
}

// Counts and posts completions: a caller never resumes on the stack that completed it.
void redis_connection::impl::deliver(std::vector<redis_completion>& done) {
    for (auto& c : done) {
        if (!c.ec) {
            m.latency.observe(std::chrono::duration<double>(c.latency).count());
            if (c.reply.is_error()) m.err_reply.inc();
        } else if (c.ec == redis_errc::timeout) {
            m.err_timeout.inc();
        } else if (c.ec == redis_errc::connection_lost) {
            m.err_connection_lost.inc();
        } else if (c.ec == redis_errc::protocol_error) {
            m.err_protocol.inc();
        }
        asio::post(ex, asio::append(std::move(c.handler), c.ec, std::move(c.reply)));
    }
    done.clear();
}

void redis_connection::impl::sync_in_flight(session& s) {
    const auto now = s.pipe.size();
    m.in_flight.add(static_cast<std::int64_t>(now) - static_cast<std::int64_t>(s.counted));
    s.counted = now;
}

// Ends a session once: closes the socket, wakes its coroutines (they see `closed` and
// return) and fails every command it still owes with `why`.
void redis_connection::impl::close(const std::shared_ptr<session>& s, redis_errc why,
                                   std::string reason) {
    if (s->closed) return;
    s->closed = true;
    s->close_reason = std::move(reason);
    error_code ignored;
    s->sock.close(ignored);
    s->resolver.cancel();
    s->wake.cancel();
    s->watchdog.cancel();
    s->down.cancel();
    if (s->up) {
        s->up = false;
        m.connected.sub(1);
    }
    if (current == s) {
        up = false;
        if (state != phase::stopped) state = phase::down;
    }
    std::vector<redis_completion> done;
    s->pipe.fail_all(why, done);
    sync_in_flight(*s);
    deliver(done);
}

void redis_connection::impl::stop() {
    if (state == phase::stopped) return;
    state = phase::stopped;
    if (watch_id && opts.discovery) opts.discovery->unwatch(*watch_id);
    watch_id.reset();
    on_connect = nullptr;  // may hold references the owner wants released
    on_push = nullptr;
    backoff.cancel();
    if (current) close(current, redis_errc::stopped, "stopped");
}

// Drops the session (connected, connecting or resolving) and skips the next backoff; a
// backoff under way ends at once.
void redis_connection::impl::reconnect_now(std::string reason) {
    if (state == phase::stopped || state == phase::idle) return;
    hurry = true;
    if (current && !current->closed) {
        close(current, redis_errc::connection_lost, std::move(reason));
    } else {
        backoff.cancel();
    }
}

// A failover (the discovery's address changed): drop and reconnect to the new address.
void redis_connection::impl::follow(const ptr& self) {
    std::weak_ptr<impl> weak = self;
    self->watch_id = self->opts.discovery->watch([weak](const redis_address& to) {
        if (auto p = weak.lock()) asio::post(p->ex, [p, to] { p->moved(to); });
    });
}

// Unless already connected or connecting there.
void redis_connection::impl::moved(const redis_address& to) {
    if (current && !current->closed && current->target == to) return;
    reconnect_now("the master moved to " + to.describe());
}

// Full jitter between reconnect_min and a cap that doubles per failed attempt up to
// reconnect_max, so a fleet does not reconnect in lockstep after a Redis restart.
std::chrono::milliseconds redis_connection::impl::backoff_delay(unsigned attempt) {
    const long long lo = std::max<long long>(opts.reconnect_min.count(), 0);
    const long long hi = std::max<long long>(opts.reconnect_max.count(), lo);
    long long cap = std::max<long long>(lo, 1);
    for (unsigned i = 0; i < attempt && cap < hi; ++i)
        cap *= 2;
    cap = std::min(cap, hi);
    return std::chrono::milliseconds(std::uniform_int_distribution<long long>(lo, cap)(rng));
}

redis_connection::redis_connection(asio::any_io_executor ex, redis_options opts, redis_metrics& m)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(opts), m)) {}

redis_connection::~redis_connection() {
    stop();
}

void redis_connection::start(on_connect_fn on_connect, on_push_fn on_push) {
    asio::dispatch(impl_->ex,
                   [self = impl_, cb = std::move(on_connect), push = std::move(on_push)]() mutable {
                       if (self->state != impl::phase::idle) return;
                       self->state = impl::phase::down;
                       self->on_connect = std::move(cb);
                       self->on_push = std::move(push);
                       if (self->opts.discovery) impl::follow(self);
                       spawn(self->ex, impl::run(self), "redis connect loop");
                   });
}

void redis_connection::stop() {
    asio::dispatch(impl_->ex, [self = impl_] { self->stop(); });
}

asio::awaitable<std::pair<error_code, redis_reply>> redis_connection::exec(redis_args args) {
    const auto self = impl_;  // the operation keeps the state alive, not *this
    auto [ec, reply] = co_await self->async_exec(args, false, use_tuple);
    co_return std::pair{ec, std::move(reply)};
}

asio::awaitable<std::pair<error_code, redis_reply>> redis_connection::exec(
    const std::vector<std::string>& args) {
    const std::vector<std::string_view> views(args.begin(), args.end());
    co_return co_await exec(redis_args(views));
}

bool redis_connection::connected() const noexcept {
    return impl_->up.load();
}

void redis_connection::reconnect() {
    asio::dispatch(impl_->ex, [self = impl_] { self->reconnect_now("reconnect requested"); });
}

}  // namespace posrelay::store
