// Wires posrelay together: io_pool, router, routes, HTTP server, signals, shutdown.
#include "posrelay/app.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <condition_variable>
#include <mutex>

#include "posrelay/http/notification_route.hpp"
#include "posrelay/http/router.hpp"
#include "posrelay/http/server.hpp"
#include "posrelay/ingest/memory_commit_sink.hpp"
#include "posrelay/ingest/notification_verifier.hpp"
#include "posrelay/io_pool.hpp"
#include "posrelay/log.hpp"

namespace posrelay {

namespace asio = boost::asio;
namespace beast_http = boost::beast::http;

namespace {
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
          pool(cfg.io_threads),
          sink(s ? std::move(s) : std::make_shared<ingest::memory_commit_sink>()),
          verifier(make_verifier(cfg)),
          routes(registry),
          notifications(pool.size(), cfg.max_body_bytes, verifier, *sink, registry),
          server(pool, http::server_options::from(cfg), routes, registry) {
        registry
            .add_gauge("posrelay_build_info", "posrelay build: version and git commit (value 1).",
                       {{"version", POSRELAY_VERSION}, {"commit", POSRELAY_GIT_COMMIT}})
            .set(1);
        registry.add_gauge_fn("posrelay_ready", "1 when /readyz answers 200 (ready for traffic).",
                              {}, [this] { return ready() ? 1.0 : 0.0; });
        registry.add_gauge("posrelay_io_threads", "io threads serving connections.")
            .set(static_cast<std::int64_t>(pool.size()));
        metrics::add_process_metrics(registry);
        add_routes();
    }

    bool ready() const noexcept { return started.load() && !stopping.load() && sink->ready(); }

    void add_routes() {
        routes.add("notifications", "/v1/midtrans/notifications", beast_http::verb::post,
                   [this](http::request& req, const http::request_context& ctx) {
                       return notifications.handle(req, ctx);
                   });
        routes.on_reject("notifications", [this](std::string_view reason) {
            notifications.count_rejection(reason);
        });
        routes.add("metrics", "/metrics", beast_http::verb::get,
                   [this](http::request&,
                          const http::request_context&) -> asio::awaitable<http::response> {
                       http::response res{beast_http::status::ok, 11};
                       res.set(beast_http::field::content_type,
                               "text/plain; version=0.0.4; charset=utf-8");
                       res.body() = registry.render();
                       res.prepare_payload();
                       co_return res;
                   });
        routes.add(
            "healthz", "/healthz", beast_http::verb::get,
            [](http::request&, const http::request_context&) -> asio::awaitable<http::response> {
                co_return http::json_response(200, R"({"status":"alive"})");
            });
        routes.add("readyz", "/readyz", beast_http::verb::get,
                   [this](http::request&,
                          const http::request_context&) -> asio::awaitable<http::response> {
                       if (ready()) co_return http::json_response(200, R"({"status":"ready"})");
                       std::string why = stopping.load()   ? "shutting_down"
                                         : !started.load() ? "starting"
                                                           : "store_unavailable";
                       co_return http::json_response(
                           503, R"({"status":"not_ready","reason":")" + why + "\"}");
                   });
    }

    config cfg;
    metrics::registry registry;
    io_pool pool;
    std::shared_ptr<ingest::commit_sink> sink;
    ingest::notification_verifier verifier;
    http::router routes;
    http::notification_route notifications;
    http::http_server server;
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
    const auto ep = impl_->server.start();
    impl_->pool.start();
    impl_->started.store(true);
    log::line(log::level::info, "listening")
        .str("what", "http")
        .str("address", ep.address().to_string())
        .num("port", ep.port())
        .num("io_threads", static_cast<std::int64_t>(impl_->pool.size()));
    return ep;
}

void app::stop() {
    if (impl_->stopped.exchange(true)) return;
    impl_->stopping.store(true);
    if (impl_->started.load()) {
        // Wait for the last connection to finish, at most --shutdown-timeout. The state is
        // shared: `drained` may still fire after a timeout, when the io threads are stopped.
        struct drain_state {
            std::mutex m;
            std::condition_variable cv;
            bool drained = false;
        };
        auto st = std::make_shared<drain_state>();
        impl_->server.shutdown([st] {
            std::lock_guard lock(st->m);
            st->drained = true;
            st->cv.notify_all();
        });
        std::unique_lock lock(st->m);
        if (!st->cv.wait_for(lock, impl_->cfg.shutdown_timeout, [&] { return st->drained; })) {
            log::line(log::level::warn, "shutdown timeout: closing remaining connections")
                .num("connections", static_cast<std::int64_t>(impl_->server.open_connections()));
        }
    }
    impl_->pool.stop(true);
    impl_->pool.join();
}

int app::run() {
    start();
    asio::io_context signals_ctx;
    asio::signal_set signals(signals_ctx, SIGINT, SIGTERM);
    int caught = 0;
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
        if (!ec) caught = sig;
    });
    signals_ctx.run();
    log::line(log::level::info, "shutting down").num("signal", caught);
    stop();
    log::line(log::level::info, "stopped");
    return 0;
}

}  // namespace posrelay
