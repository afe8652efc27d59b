// Path/method dispatch with per-route request metrics.
#include "posrelay/http/router.hpp"

#include <boost/beast/http/field.hpp>

#include <exception>

#include "posrelay/log.hpp"

namespace posrelay::http {

namespace {
std::string_view path_of(std::string_view target) noexcept {
    const auto q = target.find('?');
    return q == std::string_view::npos ? target : target.substr(0, q);
}
}  // namespace

router::router(metrics::registry& reg, std::string unmatched_name) : registry_(reg) {
    unmatched_ = &metrics_for(unmatched_name);
}

router::route_metrics& router::metrics_for(std::string_view name) {
    for (auto& m : stats_) {
        if (m->name == name) return *m;
    }
    auto m = std::make_unique<route_metrics>();
    m->name = std::string(name);
    m->latency = &registry_.add_histogram(
        "posrelay_http_request_duration_seconds",
        "Time from a request's complete header to its answer being handed to the socket.",
        metrics::latency_buckets(), {{"route", m->name}});
    stats_.push_back(std::move(m));
    return *stats_.back();
}

void router::add(std::string route_name, std::string path, beast_http::verb method, handler_fn fn) {
    bool prefix = !path.empty() && path.back() == '*';
    if (prefix) path.pop_back();
    route_metrics& m = metrics_for(route_name);
    for (auto& r : routes_) {
        if (r.path == path && r.prefix == prefix) {
            r.methods.emplace_back(method, std::move(fn));
            return;
        }
    }
    routes_.push_back(route{std::move(path), prefix, {}, &m});
    routes_.back().methods.emplace_back(method, std::move(fn));
}

const router::route* router::match(std::string_view path) const noexcept {
    for (const auto& r : routes_) {
        if (r.prefix ? path.starts_with(r.path) && path.size() > r.path.size() : path == r.path) {
            return &r;
        }
    }
    return nullptr;
}

std::string_view router::route_of(std::string_view target) const noexcept {
    const route* r = match(path_of(target));
    return r ? std::string_view(r->stats->name) : std::string_view(unmatched_->name);
}

void router::count(route_metrics& m, unsigned status,
                   std::chrono::steady_clock::time_point started) {
    if (status >= m.by_code.size()) status = 500;
    metrics::counter* c = m.by_code[status].load(std::memory_order_acquire);
    if (c == nullptr) {
        std::lock_guard lock(register_mutex_);
        c = m.by_code[status].load(std::memory_order_relaxed);
        if (c == nullptr) {
            c = &registry_.add_counter("posrelay_http_requests_total",
                                       "HTTP requests answered, by route and status code.",
                                       {{"route", m.name}, {"code", std::to_string(status)}});
            m.by_code[status].store(c, std::memory_order_release);
        }
    }
    c->inc();
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
    m.latency->observe(took.count());
}

void router::on_reject(std::string_view route_name, reject_hook hook) {
    metrics_for(route_name).on_reject = std::move(hook);
}

void router::reject(std::string_view target, unsigned status, std::string_view reason,
                    std::chrono::steady_clock::time_point started) {
    const route* r = match(path_of(target));
    route_metrics& m = r ? *r->stats : *unmatched_;
    count(m, status, started);
    if (m.on_reject) m.on_reject(reason);
}

boost::asio::awaitable<response> router::handle(request& req, const request_context& ctx) {
    const std::string_view target(req.target().data(), req.target().size());
    const route* r = match(path_of(target));
    response res;
    if (r == nullptr) {
        res = json_error(404, "not_found", "no such endpoint");
        count(*unmatched_, 404, ctx.started);
        co_return res;
    }
    const handler_fn* fn = nullptr;
    for (const auto& [verb, f] : r->methods) {
        if (verb == req.method()) fn = &f;
    }
    if (fn == nullptr) {
        std::string allow;
        for (const auto& [verb, f] : r->methods) {
            if (!allow.empty()) allow += ", ";
            allow += std::string(beast_http::to_string(verb));
        }
        res = json_error(405, "method_not_allowed", "allowed: " + allow);
        res.set(beast_http::field::allow, allow);
        if (r->stats->on_reject) r->stats->on_reject("method_not_allowed");
        if (log::enabled(log::level::warn)) {
            log::line(log::level::warn, "request rejected")
                .str("route", r->stats->name)
                .str("reason", "method_not_allowed")
                .str("method",
                     std::string_view(req.method_string().data(), req.method_string().size()))
                .str("remote", ctx.remote);
        }
    } else {
        try {
            res = co_await (*fn)(req, ctx);
        } catch (const std::exception& e) {
            // A handler must not throw; if one does it is a bug: answer 500, log, keep serving.
            log::line(log::level::error, "handler failed")
                .str("route", r->stats->name)
                .str("error", e.what());
            res = json_error(500, "internal_error", "internal error");
        }
    }
    count(*r->stats, res.result_int(), ctx.started);
    co_return res;
}

}  // namespace posrelay::http
