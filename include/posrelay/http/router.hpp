// Routes a request to a handler by path and method, answers 404/405 itself, and counts
// every answer in posrelay_http_requests_total{route,code} and its latency histogram.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "posrelay/http/types.hpp"
#include "posrelay/metrics/registry.hpp"

namespace posrelay::http {

using handler_fn =
    std::function<boost::asio::awaitable<response>(request&, const request_context&)>;

class router {
public:
    // `unmatched_name`: the route label of requests no route matches; each router of a
    // registry needs its own (a route name is one series).
    explicit router(metrics::registry& reg, std::string unmatched_name = "unmatched");

    // Adds a route. `path` is exact, or a prefix when it ends in '*' ("/v1/orders/*").
    // `route_name` is the metric label (stable, low-cardinality). Routes are matched in
    // the order added. Not thread-safe: add every route before serving.
    void add(std::string route_name, std::string path, beast_http::verb method, handler_fn fn);

    // Answers one request: the matching handler, or 404 / 405 (with Allow). Never throws:
    // a handler's exception becomes a logged 500. Records metrics for the answer.
    [[nodiscard]] boost::asio::awaitable<response> handle(request& req, const request_context& ctx);

    // Called for answers the session gives without a handler (body or header too large,
    // malformed request), with the rejection reason, so a route can count its own rejections.
    using reject_hook = std::function<void(std::string_view reason)>;
    void on_reject(std::string_view route_name, reject_hook hook);

    // Records such an answer under the route the target would match, and calls its hook.
    void reject(std::string_view target, unsigned status, std::string_view reason,
                std::chrono::steady_clock::time_point started);

    // The route name a target matches (the unmatched name when none).
    [[nodiscard]] std::string_view route_of(std::string_view target) const noexcept;

private:
    // Per-route metrics. Counters per status code are registered on first use (a route
    // sees a handful of codes), then reached lock-free through `by_code`.
    struct route_metrics {
        std::string name;
        metrics::histogram* latency = nullptr;
        std::array<std::atomic<metrics::counter*>, 600> by_code{};
        reject_hook on_reject;
    };
    struct route {
        std::string path;
        bool prefix = false;
        std::vector<std::pair<beast_http::verb, handler_fn>> methods;
        route_metrics* stats = nullptr;
    };

    [[nodiscard]] const route* match(std::string_view path) const noexcept;
    route_metrics& metrics_for(std::string_view name);
    void count(route_metrics& m, unsigned status, std::chrono::steady_clock::time_point started);

    metrics::registry& registry_;
    std::mutex register_mutex_;  // guards lazy counter registration only
    std::vector<route> routes_;
    std::vector<std::unique_ptr<route_metrics>> stats_;
    route_metrics* unmatched_ = nullptr;
};

}  // namespace posrelay::http
