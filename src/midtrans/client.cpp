#include "posrelay/midtrans/client.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>

#include <atomic>
#include <map>
#include <variant>
#include <vector>

#include "posrelay/log.hpp"
#include "posrelay/midtrans/api.hpp"

namespace posrelay::midtrans {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

bool is_loopback_host(std::string_view host) noexcept {
    return host == "localhost" || host.starts_with("127.") || host == "::1" || host == "[::1]";
}

client_options client_options::from(const config& c) {
    client_options o;
    o.base_url = c.midtrans_url;
    o.server_key = c.default_server_key;
    if (!c.public_url.empty()) {
        std::string_view base = c.public_url;
        while (base.ends_with('/'))
            base.remove_suffix(1);
        o.notification_url = std::string(base) + "/v1/midtrans/notifications";
    }
    o.connect_timeout = c.midtrans_connect_timeout;
    o.request_timeout = c.midtrans_timeout;
    o.max_inflight = c.midtrans_max_inflight;
    o.ca_file = c.midtrans_ca_file;
    return o;
}

namespace {

// scheme://host:port, and the path prefix of the base URL.
struct origin {
    bool tls = true;
    std::string host;
    std::string port;
    std::string path;  // the rest: the base path or the target
    [[nodiscard]] std::string key() const {
        return (tls ? "https://" : "http://") + host + ":" + port;
    }
};

std::optional<origin> parse_origin(std::string_view url, std::string& why) {
    auto u = boost::urls::parse_uri(url);
    if (!u) {
        why = "not a URL";
        return std::nullopt;
    }
    origin o;
    if (u->scheme() == "https") {
        o.tls = true;
    } else if (u->scheme() == "http") {
        o.tls = false;
    } else {
        why = "the scheme must be https (or http for a loopback test server)";
        return std::nullopt;
    }
    o.host = u->host_address();
    if (o.host.empty()) {
        why = "no host";
        return std::nullopt;
    }
    o.port = u->has_port() ? std::string(u->port()) : (o.tls ? "443" : "80");
    if (!o.tls && !is_loopback_host(o.host)) {
        why = "plain http is allowed only for a loopback host (midtrans-sim); use https";
        return std::nullopt;
    }
    o.path = std::string(u->encoded_path());
    if (u->has_query()) o.path += "?" + std::string(u->encoded_query());
    return o;
}

constexpr std::string_view ops[] = {"charge", "status", "cancel", "expire", "fetch"};
constexpr std::string_view outcomes[] = {"2xx", "4xx", "429", "5xx", "timeout", "error", "busy"};

}  // namespace

struct client::impl : std::enable_shared_from_this<client::impl> {
    using tls_stream = beast::ssl_stream<beast::tcp_stream>;
    struct connection {
        std::variant<beast::tcp_stream, tls_stream> s;
        beast::flat_buffer buf;
        std::chrono::steady_clock::time_point idle_since;
        beast::tcp_stream& lowest() {
            if (auto* t = std::get_if<tls_stream>(&s)) return beast::get_lowest_layer(*t);
            return std::get<beast::tcp_stream>(s);
        }
    };
    using idle_map = std::map<std::string, std::vector<std::unique_ptr<connection>>>;

    impl(io_pool& p, client_options o, metrics::registry& reg)
        : pool(p),
          opts(std::move(o)),
          ssl_ctx(asio::ssl::context::tls_client),
          idle(p.size()),
          inflight_gauge(reg.add_gauge("posrelay_midtrans_inflight_requests",
                                       "Midtrans API calls in flight.")),
          opened(reg.add_counter(
              "posrelay_midtrans_connections_opened_total",
              "Connections opened to Midtrans (a low rate means keep-alive works).")) {
        std::string why;
        auto b = parse_origin(opts.base_url, why);
        if (!b) throw config_error("--midtrans-url " + opts.base_url + ": " + why);
        base = std::move(*b);
        while (base.path.ends_with('/'))
            base.path.pop_back();
        authorization =
            std::make_shared<const std::string>(basic_authorization(opts.server_key.view()));
        ssl_ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                            asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                            asio::ssl::context::no_tlsv1_1);
        ssl_ctx.set_default_verify_paths();
        if (!opts.ca_file.empty()) ssl_ctx.load_verify_file(opts.ca_file);
        ssl_ctx.set_verify_mode(asio::ssl::verify_peer);
        for (auto op : ops) {
            for (auto out : outcomes) {
                requests[std::string(op) + "/" + std::string(out)] =
                    &reg.add_counter("posrelay_midtrans_requests_total",
                                     "Midtrans API calls by operation and outcome.",
                                     {{"op", std::string(op)}, {"outcome", std::string(out)}});
            }
            durations[std::string(op)] = &reg.add_histogram(
                "posrelay_midtrans_request_duration_seconds",
                "Time from sending a Midtrans API call to its full answer (answered calls).",
                {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
                {{"op", std::string(op)}});
        }
    }

    std::unique_ptr<connection> take_idle(const std::string& key) {
        const auto i = io_pool::current_index();
        if (i == io_pool::npos) return nullptr;
        auto& v = idle[i][key];
        const auto now = std::chrono::steady_clock::now();
        while (!v.empty()) {
            auto c = std::move(v.back());
            v.pop_back();
            if (now - c->idle_since < opts.max_idle_time) return c;
        }
        return nullptr;
    }

    void give_back(const std::string& key, std::unique_ptr<connection> c) {
        const auto i = io_pool::current_index();
        if (i == io_pool::npos) return;
        auto& v = idle[i][key];
        if (v.size() >= opts.max_idle_per_host) return;
        c->idle_since = std::chrono::steady_clock::now();
        v.push_back(std::move(c));
    }

    asio::awaitable<std::pair<beast::error_code, std::unique_ptr<connection>>> connect(
        const origin& o) {
        auto ex = co_await asio::this_coro::executor;
        tcp::resolver resolver(ex);
        asio::steady_timer deadline(ex, opts.connect_timeout);
        deadline.async_wait([&resolver](beast::error_code ec) {
            if (!ec) resolver.cancel();
        });
        auto [rec, results] = co_await resolver.async_resolve(o.host, o.port, nothrow);
        deadline.cancel();
        if (rec) co_return std::pair{rec, nullptr};
        std::unique_ptr<connection> c;
        if (o.tls) {
            c.reset(new connection{tls_stream(ex, ssl_ctx), {}, {}});
        } else {
            c.reset(new connection{beast::tcp_stream(ex), {}, {}});
        }
        c->lowest().expires_after(opts.connect_timeout);
        auto [cec, ep] = co_await c->lowest().async_connect(results, nothrow);
        if (cec) co_return std::pair{cec, nullptr};
        opened.inc();
        c->lowest().socket().set_option(tcp::no_delay(true));
        if (auto* t = std::get_if<tls_stream>(&c->s)) {
            // SNI (SSL_set_tlsext_host_name is a macro with a C cast).
            if (SSL_ctrl(t->native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME,
                         TLSEXT_NAMETYPE_host_name, const_cast<char*>(o.host.c_str())) != 1) {
                co_return std::pair{beast::error_code(static_cast<int>(::ERR_get_error()),
                                                      asio::error::get_ssl_category()),
                                    nullptr};
            }
            t->set_verify_callback(asio::ssl::host_name_verification(o.host));
            auto [hec] = co_await t->async_handshake(asio::ssl::stream_base::client, nothrow);
            if (hec) co_return std::pair{hec, nullptr};
        }
        co_return std::pair{beast::error_code{}, std::move(c)};
    }

    template <class Stream>
    asio::awaitable<beast::error_code> exchange(Stream& s, beast::flat_buffer& buf,
                                                bhttp::request<bhttp::string_body>& req,
                                                bhttp::response_parser<bhttp::string_body>& parser,
                                                bool& sent) {
        auto [wec, wn] = co_await bhttp::async_write(s, req, nothrow);
        sent = true;
        if (wec) co_return wec;
        auto [rec, rn] = co_await bhttp::async_read(s, buf, parser, nothrow);
        co_return rec;
    }

    std::string_view outcome_of(const http_result& r) const {
        if (r.ec == asio::error::would_block) return "busy";
        if (r.ec == beast::error::timeout) return "timeout";
        if (r.ec) return "error";
        if (r.status == 429) return "429";
        if (r.status >= 500) return "5xx";
        if (r.status >= 400) return "4xx";
        return "2xx";
    }

    asio::awaitable<http_result> call(std::string_view op, bhttp::verb verb, const origin& o,
                                      std::string target, std::string body, bool with_key,
                                      bool override_notification, std::string auth = {}) {
        http_result r;
        if (inflight.fetch_add(1) >= opts.max_inflight) {
            inflight.fetch_sub(1);
            r.ec = asio::error::would_block;
            requests[std::string(op) + "/busy"]->inc();
            co_return r;
        }
        inflight_gauge.add(1);
        const auto started = std::chrono::steady_clock::now();
        bhttp::request<bhttp::string_body> req{verb, target, 11};
        req.set(bhttp::field::host, o.host);
        req.set(bhttp::field::user_agent, "posrelay/" POSRELAY_VERSION);
        req.set(bhttp::field::accept, "application/json");
        req.keep_alive(true);
        if (with_key)
            req.set(bhttp::field::authorization, auth.empty() ? *authorization.load() : auth);
        if (override_notification && !opts.notification_url.empty())
            req.set("X-Override-Notification", opts.notification_url);
        if (verb == bhttp::verb::post) {
            req.set(bhttp::field::content_type, "application/json");
            req.body() = std::move(body);
        }
        req.prepare_payload();
        const std::string key = o.key();
        // A reused connection may have been closed by the server while idle: an idempotent
        // GET is then tried once more on a new connection. A POST is not repeated here.
        for (int attempt = 0; attempt < 2; ++attempt) {
            auto c = take_idle(key);
            const bool reused = c != nullptr;
            if (!c) {
                auto [cec, fresh] = co_await connect(o);
                if (cec) {
                    r.ec = cec;
                    break;
                }
                c = std::move(fresh);
            }
            bhttp::response_parser<bhttp::string_body> parser;
            parser.body_limit(opts.max_response_bytes);
            parser.header_limit(16 * 1024);
            c->lowest().expires_after(opts.request_timeout);
            bool sent = false;
            beast::error_code ec;
            if (auto* t = std::get_if<tls_stream>(&c->s)) {
                ec = co_await exchange(*t, c->buf, req, parser, sent);
            } else {
                ec =
                    co_await exchange(std::get<beast::tcp_stream>(c->s), c->buf, req, parser, sent);
            }
            if (ec) {
                const bool stale =
                    reused && parser.got_some() == false &&
                    (ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
                     ec == asio::error::connection_reset || ec == asio::error::broken_pipe);
                if (stale && verb == bhttp::verb::get && attempt == 0) continue;
                r.ec = ec;
                r.sent = sent;
                break;
            }
            auto res = parser.release();
            r.status = res.result_int();
            r.content_type = std::string(res[bhttp::field::content_type]);
            r.retry_after = std::string(res[bhttp::field::retry_after]);
            r.body = std::move(res.body());
            r.sent = true;
            c->lowest().expires_never();
            if (res.keep_alive()) give_back(key, std::move(c));
            durations[std::string(op)]->observe(
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
            break;
        }
        inflight.fetch_sub(1);
        inflight_gauge.sub(1);
        requests[std::string(op) + "/" + std::string(outcome_of(r))]->inc();
        if (r.ec) {
            log::line(log::level::warn, "midtrans call failed")
                .str("op", op)
                .str("error", r.ec.message())
                .str("host", o.host)
                .num("sent", r.sent ? 1 : 0);
        }
        co_return r;
    }

    std::string api_target(std::string_view path) const { return base.path + std::string(path); }

    io_pool& pool;
    client_options opts;
    origin base;
    std::atomic<std::shared_ptr<const std::string>> authorization;  // the default key's
    asio::ssl::context ssl_ctx;
    std::vector<idle_map> idle;  // per io thread
    std::atomic<std::size_t> inflight{0};
    metrics::gauge& inflight_gauge;
    metrics::counter& opened;
    std::map<std::string, metrics::counter*> requests;
    std::map<std::string, metrics::histogram*> durations;
};

client::client(io_pool& pool, client_options o, metrics::registry& reg)
    : impl_(std::make_shared<impl>(pool, std::move(o), reg)) {}
client::~client() = default;

void client::set_server_key(const secret& key) {
    impl_->authorization.store(
        std::make_shared<const std::string>(basic_authorization(key.view())));
}

const client_options& client::options() const noexcept {
    return impl_->opts;
}

asio::awaitable<http_result> client::charge(std::string body) {
    co_return co_await impl_->call("charge", bhttp::verb::post, impl_->base,
                                   impl_->api_target("/v2/charge"), std::move(body), true, true);
}
asio::awaitable<http_result> client::status(std::string id, std::string authorization) {
    co_return co_await impl_->call("status", bhttp::verb::get, impl_->base,
                                   impl_->api_target("/v2/" + id + "/status"), {}, true, false,
                                   std::move(authorization));
}
asio::awaitable<http_result> client::cancel(std::string id) {
    co_return co_await impl_->call("cancel", bhttp::verb::post, impl_->base,
                                   impl_->api_target("/v2/" + id + "/cancel"), {}, true, false);
}
asio::awaitable<http_result> client::expire(std::string id) {
    co_return co_await impl_->call("expire", bhttp::verb::post, impl_->base,
                                   impl_->api_target("/v2/" + id + "/expire"), {}, true, false);
}
asio::awaitable<http_result> client::fetch(std::string url) {
    std::string why;
    auto o = parse_origin(url, why);
    if (!o) {
        http_result r;
        r.ec = asio::error::invalid_argument;
        co_return r;
    }
    const bool same_api = o->key() == impl_->base.key();
    std::string target = o->path.empty() ? "/" : o->path;
    co_return co_await impl_->call("fetch", bhttp::verb::get, *o, std::move(target), {}, same_api,
                                   false);
}

}  // namespace posrelay::midtrans
