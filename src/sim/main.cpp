// midtrans-sim: a stand-in for Midtrans's Core API and notification sender, for posrelay's
// tests, demos and benchmarks. One io thread serves HTTP, runs order timers and sends
// notifications. The server key comes from MIDTRANS_SIM_SERVER_KEY only.

#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>

#include "posrelay/http/server.hpp"
#include "posrelay/io_pool.hpp"
#include "posrelay/log.hpp"
#include "posrelay/metrics/registry.hpp"
#include "posrelay/signals.hpp"
#include "sim_service.hpp"

namespace asio = boost::asio;
using namespace posrelay;

int main(int argc, char** argv) {
    sim::sim_cli cli;
    try {
        cli = sim::parse_sim_options(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "midtrans-sim: %s\n(see midtrans-sim --help)\n", e.what());
        return 2;
    }
    if (cli.help) {
        std::cout << cli.help_text;
        return 0;
    }
    const char* key = std::getenv("MIDTRANS_SIM_SERVER_KEY");
    if (!key || !*key) {
        std::fprintf(stderr, "midtrans-sim: set MIDTRANS_SIM_SERVER_KEY to the server key\n");
        return 2;
    }
    sim::sim_options& o = cli.opts;
    if (!o.notification_url.empty() && !o.notification_url.starts_with("http://")) {
        std::fprintf(stderr, "midtrans-sim: --notification-url must be an http:// URL\n");
        return 2;
    }
    log::set_level(o.log_level);
    std::signal(SIGPIPE, SIG_IGN);
    try {
        io_pool pool(1);
        metrics::registry registry;  // the server's and router's own metrics; not exposed
        http::router router(registry);
        sim::sim_service service(pool.context(0), o, key);
        service.add_routes(router);
        http::server_options so;
        so.listen = o.listen;
        so.max_body_bytes = 64 * 1024;
        so.websocket_path.clear();
        stop_signals signals;  // before the "listening" line: a stop right after it waits
        http::http_server server(pool, so, router, registry);
        const auto ep = server.start();
        const std::string host =
            ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string();
        std::string public_url = o.public_url.empty()
                                     ? "http://" + host + ":" + std::to_string(ep.port())
                                     : o.public_url;
        while (public_url.ends_with('/'))
            public_url.pop_back();
        service.set_public_url(public_url);
        pool.start();
        log::line(log::level::info, "listening")
            .str("what", "midtrans-sim")
            .str("address", ep.address().to_string())
            .num("port", ep.port())
            .str("public_url", public_url)
            .num("seed", static_cast<std::int64_t>(o.seed))
            .dbl("time_scale", o.time_scale);

        (void)signals.wait();
        // Requests in flight finish (at most 2 s); pending notifications are abandoned.
        std::mutex m;
        std::condition_variable cv;
        bool drained = false;
        server.shutdown([&] {
            std::lock_guard lock(m);
            drained = true;
            cv.notify_all();
        });
        {
            std::unique_lock lock(m);
            cv.wait_for(lock, std::chrono::seconds(2), [&] { return drained; });
        }
        pool.stop(true);
        pool.join();
        log::line(log::level::info, "stopped");
        return 0;
    } catch (const std::exception& e) {
        log::line(log::level::error, "fatal").str("error", e.what());
        return 1;
    }
}
