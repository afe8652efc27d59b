// Wires posrelay together: io_pool, router, routes, HTTP server, signals, shutdown.
#include "posrelay/app.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <condition_variable>
#include <ctime>
#include <mutex>

#include "posrelay/auth_limiter.hpp"
#include "posrelay/fanout/gateway.hpp"
#include "posrelay/http/notification_route.hpp"
#include "posrelay/http/operator_routes.hpp"
#include "posrelay/http/router.hpp"
#include "posrelay/http/server.hpp"
#include "posrelay/http/static_files.hpp"
#include "posrelay/ingest/memory_commit_sink.hpp"
#include "posrelay/ingest/notification_verifier.hpp"
#include "posrelay/io_pool.hpp"
#include "posrelay/log.hpp"
#include "posrelay/metrics/config_limits.hpp"
#include "posrelay/metrics/open_files.hpp"
#include "posrelay/midtrans/client.hpp"
#include "posrelay/orders/order_service.hpp"
#include "posrelay/poll/scheduler.hpp"
#include "posrelay/signals.hpp"
#include "posrelay/store/embedded_redis.hpp"
#include "posrelay/store/redis_store.hpp"
#include "posrelay/store/sentinel.hpp"
#include "posrelay/version.hpp"

namespace posrelay {

namespace asio = boost::asio;
namespace beast_http = boost::beast::http;

namespace {
// --io-threads 0: one io thread per usable core, but one fewer (at least one) when the
// embedded Redis shares those cores. Measured on 2 cores (README, Benchmarks): one io thread
// instead of two delivers 5,000 events/s to 10,000 terminals with ~20% less CPU in posrelay
// and ~10% less in Redis (bigger pipelined batches, no cross-thread hand-offs) at the same
// latency, and ingests notifications as fast.
unsigned io_threads_for(const config& c) {
    if (c.io_threads != 0) return c.io_threads;
    const unsigned cores = io_pool::usable_cores();
    const bool embedded_redis = c.store != "memory" && c.redis_url.empty();
    return embedded_redis && cores > 1 ? cores - 1 : cores;
}

ingest::notification_verifier make_verifier(const config& c) {
    std::map<std::string, std::string, std::less<>> keys;
    for (const auto& [merchant, key] : c.merchant_keys)
        keys.emplace(merchant, std::string(key.view()));
    return ingest::notification_verifier(std::string(c.default_server_key.view()), std::move(keys));
}
}  // namespace

struct app::impl {
    impl(config c, std::shared_ptr<ingest::commit_sink> s)
        : cfg(std::move(c)),
          pool(io_threads_for(cfg)),
          verifier(make_verifier(cfg)),
          tokens(fanout::make_token_verifier(cfg)),
          routes(registry),
          reloads_ok(registry.add_counter("posrelay_config_reloads_total",
                                          "Configuration reloads (SIGHUP) by outcome.",
                                          {{"outcome", "success"}})),
          reloads_failed(registry.add_counter("posrelay_config_reloads_total",
                                              "Configuration reloads (SIGHUP) by outcome.",
                                              {{"outcome", "failure"}})),
          last_reload(registry.add_gauge(
              "posrelay_config_last_reload_success_timestamp_seconds",
              "Unix time of the last successful configuration load (start or reload).")) {
        last_reload.set(static_cast<std::int64_t>(std::time(nullptr)));
        sink = s ? std::move(s) : make_sink();
        auth_failures = std::make_shared<auth_limiter>(cfg.terminal_auth_failures_per_minute);
        qr_unauthorized = &qr_refused("unauthorized");
        qr_limited = &qr_refused("rate_limited");
        notifications = std::make_unique<http::notification_route>(pool.size(), cfg.max_body_bytes,
                                                                   verifier, *sink, registry);
        notifications->audit(cfg.audit_log);
        if (redis) {
            operators =
                std::make_unique<http::operator_routes>(cfg.operator_token, *redis, redis.get());
            operators->control_terminals(
                *redis,
                std::chrono::duration_cast<std::chrono::seconds>(cfg.terminal_revocation_ttl),
                registry);
        }
        auto http_opts = http::server_options::from(cfg);
        // The Midtrans client serves terminal charges and the poll fallback: both need the
        // Redis store and the server key.
        if (redis && !cfg.default_server_key.empty()) {
            midtrans_api = std::make_unique<midtrans::client>(
                pool, midtrans::client_options::from(cfg), registry);
            // With --poll-rate 0 the scheduler still runs when it has claims to confirm.
            if (cfg.poll_rate > 0 || cfg.confirm_paid) {
                poller = std::make_unique<poll::scheduler>(pool, *redis, *midtrans_api,
                                                           poll::poll_options::from(cfg), registry);
            }
            if (cfg.confirm_paid) {
                notifications->on_confirming(
                    [this](std::string order_id) { poller->confirm(std::move(order_id)); });
            }
        } else if (cfg.confirm_paid && cfg.store != "memory") {
            log::line(log::level::warn,
                      "paid is not confirmed with Midtrans: --confirm-paid needs "
                      "POSRELAY_SERVER_KEY (notifications are applied as they come)");
        }
        if (redis && !tokens.load()->empty()) {
            auto gw_opts = fanout::gateway_options::from(cfg);
            gw_opts.tokens = tokens.load();
            gw_opts.auth_failures = auth_failures;  // one budget with the QR route
            if (!midtrans_api || cfg.public_url.empty()) {
                log::line(log::level::warn,
                          "terminal charges disabled: they need --public-url and "
                          "POSRELAY_SERVER_KEY");
            } else {
                orders = std::make_unique<orders::order_service>(
                    *redis, *midtrans_api, orders::service_options::from(cfg), registry);
                gw_opts.requests = [this](std::string terminal, std::string store,
                                          fanout::request_frame r) {
                    return orders->handle(std::move(terminal), std::move(store), std::move(r));
                };
            }
            terminals =
                std::make_unique<fanout::gateway>(pool, std::move(gw_opts), *redis, registry);
            http_opts.websocket_upgrade = [this](boost::asio::ip::tcp::socket sock,
                                                 http::request req, std::string client) {
                terminals->accept_websocket(std::move(sock), std::move(req), std::move(client));
            };
        }
        server = std::make_unique<http::http_server>(pool, std::move(http_opts), routes, registry);
        if (cfg.admin_listen) {
            admin_routes = std::make_unique<http::router>(registry, "admin_unmatched");
            admin_server = std::make_unique<http::http_server>(
                pool, http::server_options::admin_from(cfg), *admin_routes, registry);
        }
        registry
            .add_gauge("posrelay_build_info", "posrelay build: version and git commit (value 1).",
                       {{"version", POSRELAY_VERSION}, {"commit", std::string(git_commit())}})
            .set(1);
        registry.add_gauge_fn("posrelay_ready", "1 when /readyz answers 200 (ready for traffic).",
                              {}, [this] { return ready() ? 1.0 : 0.0; });
        registry.add_gauge("posrelay_io_threads", "io threads serving connections.")
            .set(static_cast<std::int64_t>(pool.size()));
        metrics::add_process_metrics(registry);
        metrics::add_config_limits(registry, cfg);
        (void)metrics::check_open_files(registry, fd_demand(), metrics::open_files_limit());
        add_routes();
    }

    // The connection limits in force, for the open-files check.
    metrics::fd_demand fd_demand() const {
        return {.http_connections = cfg.max_connections,
                .admin_connections = admin_server ? cfg.admin_max_connections : 0,
                .terminal_connections = terminals ? cfg.terminal_max_connections : 0,
                .midtrans_calls = midtrans_api ? cfg.midtrans_max_inflight : 0,
                .io_threads = pool.size()};
    }

    store::aof_rewrite_policy aof_policy() const {
        store::aof_rewrite_policy p;
        p.min_size = static_cast<std::int64_t>(cfg.redis_aof_min_size);
        p.quiet_bytes_per_second = static_cast<std::int64_t>(cfg.redis_aof_quiet_rate);
        p.max_growth = static_cast<std::int64_t>(cfg.redis_aof_max_growth);
        return p;
    }

    // The configured store: in memory, an external Redis, or the embedded redis-server.
    std::shared_ptr<ingest::commit_sink> make_sink() {
        if (cfg.store == "memory") return std::make_shared<ingest::memory_commit_sink>();
        store::redis_options ro;
        if (cfg.redis_url.empty()) {
            embedded = std::make_unique<store::embedded_redis>(
                store::embedded_redis_options{
                    .data_dir = cfg.data_dir,
                    .server = cfg.redis_server,
                    .appendfsync = cfg.redis_appendfsync,
                    .config_file = cfg.redis_config,
                    .aof_rewrite_scheduled = cfg.redis_aof_rewrite_scheduled,
                    .aof_policy = aof_policy()},
                registry);
            ro = embedded->connection_options();
        } else {
            ro = store::parse_redis_url(cfg.redis_url);
        }
        if (!cfg.redis_password.empty()) ro.password = cfg.redis_password;
        ro.sentinel_password = cfg.redis_sentinel_password;
        ro.connect_timeout = cfg.redis_connect_timeout;
        ro.command_timeout = cfg.redis_command_timeout;
        sentinel = store::attach_sentinel(ro, pool.context(0).get_executor(), registry);
        store::store_options so;
        using std::chrono::duration_cast;
        using std::chrono::seconds;
        so.dedup_ttl = duration_cast<seconds>(cfg.dedup_ttl);
        so.order_ttl = duration_cast<seconds>(cfg.order_ttl);
        so.stream_ttl = duration_cast<seconds>(cfg.stream_ttl);
        so.history_max = cfg.history_max;
        so.stream_maxlen = cfg.stream_maxlen;
        // Pending orders are enrolled for polling when this node can poll.
        if (cfg.poll_rate > 0 && !cfg.default_server_key.empty())
            so.poll_first_delay = cfg.poll_first_delay;
        // Claims are confirmed by this node's scheduler, which needs the server key.
        if (cfg.confirm_paid && !cfg.default_server_key.empty()) so.confirm_lease = cfg.poll_lease;
        so.node = poll::poll_options::from(cfg).node;
        so.replica_ack = {cfg.redis_min_replicas_ack, cfg.redis_replicas_ack_timeout};
        redis = std::make_shared<store::redis_store>(pool, std::move(ro), std::move(so), registry);
        return redis;
    }

    bool ready() const noexcept { return started.load() && !stopping.load() && sink->ready(); }

    // A reload: what `fresh` changes live is applied, each piece an immutable snapshot swapped
    // atomically (io threads never wait); the rest keeps its running value, logged. On the
    // signal thread. The only step that can fail (the TLS files) comes first.
    void apply(const config& fresh) {
        const reload_plan plan = plan_reload(cfg, fresh);
        config next = apply_live(cfg, fresh, plan);
        auto next_tokens = fanout::make_token_verifier(next);  // reads the key file; may throw
        if (terminals && terminals->has_tls())
            terminals->reload_tls(next.terminal_tls_cert, next.terminal_tls_key,
                                  next.terminal_tls_client_ca);
        verifier.set(make_verifier(next));
        if (midtrans_api) midtrans_api->set_server_key(next.default_server_key);
        if (poller) poller->set_merchant_auth(poll::poll_options::from(next).merchant_auth);
        if (operators) operators->set_token(next.operator_token);
        if (terminals) terminals->set_token_verifier(next_tokens);
        tokens.store(std::move(next_tokens));
        for (const auto& name : plan.needs_restart) {
            log::line(log::level::warn, "config option changed: needs a restart")
                .str("option", name)
                .str("kept", "the running value");
        }
        auto joined = [](const std::vector<std::string>& v) {
            std::string out;
            for (const auto& n : v)
                out += (out.empty() ? "" : ",") + n;
            return out;
        };
        log::line(log::level::info, "config reloaded")
            .str("changed", joined(plan.live))
            .str("secrets_changed", joined(plan.secrets))
            .str("needs_restart", joined(plan.needs_restart))
            .num("merchant_keys", static_cast<std::int64_t>(next.merchant_keys.size()))
            .str("log_level", log::to_string(next.log_level));
        log::set_level(next.log_level);
        cfg = std::move(next);  // read only on this thread from now on (io threads: never)
    }

    // Without --admin-listen one router serves everything. With it, the main listener keeps
    // what the internet must reach (notifications, terminal QR images; the terminal WebSocket
    // is taken before routing) and the admin listener the rest; elsewhere they are 404.
    void add_routes() {
        routes.add("notifications", "/v1/midtrans/notifications", beast_http::verb::post,
                   [this](http::request& req, const http::request_context& ctx) {
                       return notifications->handle(req, ctx);
                   });
        routes.on_reject("notifications", [this](std::string_view reason) {
            notifications->count_rejection(reason);
        });
        http::router& admin = admin_routes ? *admin_routes : routes;
        if (operators) {
            if (admin_routes) {
                if (orders)
                    routes.add("qr", "/v1/orders/*", beast_http::verb::get, order_get(true, false));
                admin.add("orders", "/v1/orders/*", beast_http::verb::get, order_get(false, true));
            } else {
                routes.add("orders", "/v1/orders/*", beast_http::verb::get,
                           order_get(orders != nullptr, true));
            }
            admin.add("orders_register", "/v1/orders", beast_http::verb::post,
                      [this](http::request& req, const http::request_context& ctx) {
                          return operators->register_order(req, ctx);
                      });
            admin.add("stores", "/v1/stores/*", beast_http::verb::get,
                      [this](http::request& req, const http::request_context& ctx) {
                          return operators->get_terminals(req, ctx);
                      });
            admin.add("stores", "/v1/stores/*", beast_http::verb::post,
                      [this](http::request& req, const http::request_context& ctx) {
                          return operators->revoke(req, ctx);
                      });
            admin.add("stores", "/v1/stores/*", beast_http::verb::delete_,
                      [this](http::request& req, const http::request_context& ctx) {
                          return operators->disconnect(req, ctx);
                      });
        }
        add_health_routes(admin);
        add_pos_page();
    }

    // GET /pos/ (--pos-page): the browser POS page, on the main listener beside the terminal
    // WebSocket and QR route it uses (same origin).
    void add_pos_page() {
        if (cfg.pos_page.empty()) return;
        pos_page = std::make_unique<http::static_files>(cfg.pos_page, "/pos/");
        routes.add("pos_page", "/pos*", beast_http::verb::get, pos_page->handler());
        log::line(log::level::info, "pos page")
            .str("dir", cfg.pos_page)
            .num("files", static_cast<std::int64_t>(pos_page->size()));
    }

    // GET /v1/orders/...: a terminal's QR image (path ending in /qr.png) when `qr`, the
    // operator's order view when `order`; anything else is 404.
    http::handler_fn order_get(bool qr, bool order) {
        return [this, qr, order](http::request& req, const http::request_context& ctx) {
            const std::string_view target(req.target().data(), req.target().size());
            if (qr && target.substr(0, target.find('?')).ends_with("/qr.png"))
                return qr_image(req, ctx);
            if (order) return operators->get_order(req, ctx);
            return not_found();
        };
    }
    static asio::awaitable<http::response> not_found() {
        co_return http::json_error(404, "not_found", "no such endpoint");
    }

    void add_health_routes(http::router& r) {
        r.add("metrics", "/metrics", beast_http::verb::get,
              [this](http::request&,
                     const http::request_context&) -> asio::awaitable<http::response> {
                  http::response res{beast_http::status::ok, 11};
                  res.set(beast_http::field::content_type,
                          "text/plain; version=0.0.4; charset=utf-8");
                  res.body() = registry.render();
                  co_return res;
              });
        r.add("healthz", "/healthz", beast_http::verb::get,
              [](http::request&, const http::request_context&) -> asio::awaitable<http::response> {
                  co_return http::json_response(200, R"({"status":"alive"})");
              });
        r.add("readyz", "/readyz", beast_http::verb::get,
              [this](http::request&,
                     const http::request_context&) -> asio::awaitable<http::response> {
                  // On a Redis Cluster: how many of the 16384 slots have a connected primary;
                  // with some (not all) covered the node still serves their orders: degraded.
                  std::string slots;
                  bool degraded = false;
                  if (const auto n = redis ? redis->cluster_slots_covered() : std::nullopt) {
                      slots = R"(,"redis_slots_covered":)" + std::to_string(*n);
                      degraded = *n < store::cluster::slot_count;
                  }
                  if (ready()) {
                      co_return http::json_response(200,
                                                    std::string(degraded ? R"({"status":"degraded")"
                                                                         : R"({"status":"ready")") +
                                                        slots + "}");
                  }
                  std::string why = stopping.load()   ? "shutting_down"
                                    : !started.load() ? "starting"
                                                      : "store_unavailable";
                  co_return http::json_response(
                      503, R"({"status":"not_ready","reason":")" + why + "\"" + slots + "}");
              });
    }

    // GET /v1/orders/{order_id}/qr.png for a terminal: Authorization: Bearer <its token>,
    // X-Terminal-Id and X-Store-Id; only orders of its store.
    // The token is checked first (a good one is never refused); a failure counts towards the
    // (address, terminal id) budget of failed authentications, shared with terminal handshakes;
    // past it failures are answered 429.
    asio::awaitable<http::response> qr_image(http::request& req, const http::request_context& ctx) {
        auto header = [&](auto f) {
            const auto h = req[f];
            return std::string(h.data(), h.size());
        };
        const std::string auth = header(beast_http::field::authorization);
        const std::string terminal = header("X-Terminal-Id");
        const std::string store_id = header("X-Store-Id");
        if (!qr_token_ok(auth, terminal, store_id)) {
            // Behind a trusted proxy ctx.client is the client; a terminal id is at most 64 bytes.
            const std::string key = auth_key(
                ctx.client, terminal.substr(0, std::min<std::size_t>(terminal.size(), 64)));
            if (const auto wait = auth_failures->blocked_for(key); wait != wait.zero())
                co_return qr_rate_limited(wait);
            auth_failures->failed(key);
            qr_unauthorized->inc();
            log::line(log::level::warn, "request rejected")
                .str("route", "qr_image")
                .str("reason", "unauthorized")
                .str("remote", ctx.remote);
            http::response res = http::json_error(
                401, "unauthorized",
                "a terminal token is required: Authorization: Bearer <token>, X-Terminal-Id, "
                "X-Store-Id");
            res.set(beast_http::field::www_authenticate, "Bearer");
            co_return res;
        }
        std::string_view path(req.target().data(), req.target().size());
        path = path.substr(0, path.find('?'));
        path.remove_suffix(std::string_view("/qr.png").size());
        const std::string_view id = path.substr(path.rfind('/') + 1);
        if (!midtrans::valid_order_id(id)) {
            co_return http::json_error(400, "invalid_value",
                                       "order_id must be 1-50 of A-Z a-z 0-9 - _ ~ .", "order_id");
        }
        auto img = co_await orders->qr_png(std::string(id), store_id);
        http::response res{static_cast<beast_http::status>(img.status), 11};
        res.set(beast_http::field::content_type, img.content_type);
        if (img.status == 200) res.set(beast_http::field::cache_control, "private, max-age=300");
        res.body() = *img.body;
        co_return res;
    }

    bool qr_token_ok(std::string_view auth, std::string_view terminal, std::string_view store_id) {
        constexpr std::string_view bearer = "Bearer ";
        if (!auth.starts_with(bearer) || !fanout::valid_id(terminal) || !fanout::valid_id(store_id))
            return false;
        const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
        const auto r = fanout::check_token(*tokens.load(), terminal, store_id,
                                           auth.substr(bearer.size()), now);
        return r.outcome == fanout::token_outcome::ok;
    }

    // 429 with Retry-After (whole seconds, rounded up) for an address past its failure budget.
    http::response qr_rate_limited(auth_limiter::clock::duration wait) {
        qr_limited->inc();
        http::response res = http::json_error(
            429, "rate_limited",
            "too many failed terminal authentications from this address; retry later");
        const auto secs = std::chrono::ceil<std::chrono::seconds>(wait).count();
        res.set(beast_http::field::retry_after, std::to_string(std::max<long long>(secs, 1)));
        return res;
    }
    metrics::counter& qr_refused(std::string reason) {
        return registry.add_counter("posrelay_qr_requests_refused_total",
                                    "QR-image requests refused: unauthorized (bad or missing "
                                    "terminal token), rate_limited (too many failures from the "
                                    "address).",
                                    {{"reason", std::move(reason)}});
    }

    config cfg;
    metrics::registry registry;
    io_pool pool;
    std::unique_ptr<store::embedded_redis> embedded;      // only without --redis-url
    std::shared_ptr<store::redis_store> redis;            // only with the redis store
    std::shared_ptr<store::sentinel_discovery> sentinel;  // only with redis-sentinel://
    std::shared_ptr<ingest::commit_sink> sink;
    ingest::verifier_slot verifier;  // replaced by a reload
    // Terminal token keys and policy (the gateway's and the QR route's); replaced by a reload.
    std::atomic<std::shared_ptr<const fanout::token_verifier>> tokens;
    http::router routes;
    metrics::counter& reloads_ok;
    metrics::counter& reloads_failed;
    metrics::gauge& last_reload;
    std::unique_ptr<http::notification_route> notifications;
    std::unique_ptr<http::operator_routes> operators;
    std::unique_ptr<midtrans::client> midtrans_api;  // with the redis store and a server key
    std::unique_ptr<orders::order_service> orders;
    std::unique_ptr<poll::scheduler> poller;     // with midtrans_api: polls and/or confirmations
    std::unique_ptr<fanout::gateway> terminals;  // only with the redis store and a terminal secret
    std::unique_ptr<http::http_server> server;
    std::unique_ptr<http::router> admin_routes;  // only with --admin-listen
    std::unique_ptr<http::http_server> admin_server;
    std::unique_ptr<http::static_files> pos_page;  // only with --pos-page
    std::shared_ptr<auth_limiter> auth_failures;   // terminal handshakes and the QR route
    metrics::counter* qr_unauthorized = nullptr;
    metrics::counter* qr_limited = nullptr;
    std::atomic<bool> started{false};
    std::atomic<bool> stopping{false};
    std::atomic<bool> stopped{false};
};

app::app(config cfg, std::shared_ptr<ingest::commit_sink> sink)
    : impl_(std::make_unique<impl>(std::move(cfg), std::move(sink))) {}

app::~app() {
    stop();
}

metrics::registry& app::registry() noexcept {
    return impl_->registry;
}
bool app::ready() const noexcept {
    return impl_->ready();
}

boost::asio::ip::tcp::endpoint app::start() {
    if (impl_->embedded) impl_->embedded->start();
    if (impl_->sentinel) impl_->sentinel->start(impl_->redis->connection_metrics());
    if (impl_->redis) impl_->redis->start();
    const auto ep = impl_->server->start();
    const auto admin_ep = impl_->admin_server ? impl_->admin_server->start() : ep;
    if (impl_->terminals) {
        (void)impl_->terminals->start();
    } else if (impl_->redis) {
        log::line(
            log::level::warn,
            "terminal gateway disabled: set POSRELAY_TERMINAL_SECRET to let terminals connect");
    }
    if (impl_->poller) impl_->poller->start();
    impl_->pool.start();
    impl_->started.store(true);
    log::line(log::level::info, "listening")
        .str("what", "http")
        .str("address", ep.address().to_string())
        .num("port", ep.port())
        .num("io_threads", static_cast<std::int64_t>(impl_->pool.size()));
    if (impl_->admin_server) {
        log::line(log::level::info, "listening")
            .str("what", "admin")
            .str("address", admin_ep.address().to_string())
            .num("port", admin_ep.port());
    }
    return ep;
}

void app::stop() {
    if (impl_->stopped.exchange(true)) return;
    impl_->stopping.store(true);
    if (impl_->poller) impl_->poller->stop();
    if (impl_->started.load()) {
        // Wait for the last connection to finish, at most --shutdown-timeout. The state is
        // shared: `drained` may still fire after a timeout, when the io threads are stopped.
        struct drain_state {
            std::mutex m;
            std::condition_variable cv;
            int remaining = 0;
        };
        auto st = std::make_shared<drain_state>();
        auto done = [st] {
            std::lock_guard lock(st->m);
            --st->remaining;
            st->cv.notify_all();
        };
        st->remaining = 1 + (impl_->terminals ? 1 : 0) + (impl_->admin_server ? 1 : 0);
        // Terminals get a goaway (reconnect to another node); HTTP requests in flight finish.
        if (impl_->terminals) impl_->terminals->shutdown(std::chrono::milliseconds(1000), done);
        impl_->server->shutdown(done);
        if (impl_->admin_server) impl_->admin_server->shutdown(done);
        std::unique_lock lock(st->m);
        if (!st->cv.wait_for(lock, impl_->cfg.shutdown_timeout,
                             [&] { return st->remaining <= 0; })) {
            log::line(log::level::warn, "shutdown timeout: closing remaining connections")
                .num("http_connections",
                     static_cast<std::int64_t>(impl_->server->open_connections()))
                .num("terminal_connections",
                     static_cast<std::int64_t>(impl_->terminals ? impl_->terminals->connections()
                                                                : 0));
        }
    }
    if (impl_->redis) impl_->redis->stop();
    if (impl_->sentinel) impl_->sentinel->stop();
    // Those stops are posted to the io threads: let them run (and the commands they fail run
    // their coroutines to the end) before the contexts stop. Stopped first, a Redis command
    // still pending (e.g. the last activity marks of the closing terminal sessions) kept its
    // coroutine and its connection alive in a cycle: a leak at every such exit (ASan).
    (void)impl_->pool.settle(std::chrono::seconds(1), 3);
    impl_->pool.stop(true);
    impl_->pool.join();
    if (impl_->embedded) impl_->embedded->stop();
}

stop_signals::stop_signals(bool catch_hup) : set_(ctx_, SIGINT, SIGTERM) {
    if (catch_hup) set_.add(SIGHUP);
}

int stop_signals::wait(const std::function<void()>& on_hup) {
    int caught = 0;
    std::function<void(const boost::system::error_code&, int)> handler =
        [&](const boost::system::error_code& ec, int sig) {
            if (ec) return;
            if (sig != SIGHUP) {
                caught = sig;
                return;
            }
            if (on_hup) on_hup();
            set_.async_wait(handler);
        };
    set_.async_wait(handler);
    ctx_.run();
    log::line(log::level::info, "shutting down").num("signal", caught);
    return caught;
}

bool app::reload(const std::function<config()>& load) {
    try {
        impl_->apply(load());
    } catch (const std::exception& e) {
        // config_error and TLS errors name files and options, never a secret value.
        impl_->reloads_failed.inc();
        log::line(log::level::error, "config reload failed").str("error", e.what());
        return false;
    }
    impl_->reloads_ok.inc();
    impl_->last_reload.set(static_cast<std::int64_t>(std::time(nullptr)));
    return true;
}

int app::run(std::function<config()> load) {
    stop_signals signals(true);  // before start() logs "listening"
    start();
    (void)signals.wait([&] {
        if (load) (void)reload(load);
    });
    stop();
    log::line(log::level::info, "stopped");
    return 0;
}

}  // namespace posrelay
