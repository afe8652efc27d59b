// Redis Sentinel: master discovery (one short connection per question, each within the
// connect timeout) and the +switch-master subscriber (a redis_connection to the sentinels,
// one after another, resubscribed by its on_connect).
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <atomic>
#include <vector>

#include "detail/redis_pipeline.hpp"
#include "posrelay/log.hpp"
#include "posrelay/store/sentinel.hpp"

namespace posrelay::store {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

constexpr std::size_t max_answer_bytes = 64 * 1024;

// A short-lived connection: its socket, resolver and deadline, shared with the timer's handler.
struct probe {
    explicit probe(const asio::any_io_executor& ex) : sock(ex), resolver(ex), deadline(ex) {}
    asio::ip::tcp::socket sock;
    asio::ip::tcp::resolver resolver;
    asio::steady_timer deadline;
    std::vector<std::optional<redis_reply>> replies;
};

// Connects to `at`, AUTHs when `password` is set, sends `command` and returns its reply, all
// within `limit`; nullopt on any failure (refused, timeout, AUTH refused, malformed).
asio::awaitable<std::optional<redis_reply>> query_once(const redis_address& at,
                                                       std::string_view user,
                                                       const secret& password,
                                                       std::vector<std::string_view> command,
                                                       std::chrono::milliseconds limit) {
    const auto p = std::make_shared<probe>(co_await asio::this_coro::executor);
    p->deadline.expires_after(limit);
    p->deadline.async_wait([p](error_code ec) {
        if (ec) return;
        p->resolver.cancel();
        error_code ignored;
        p->sock.close(ignored);
    });
    detail::redis_pipeline pipe(4, limit);
    const auto now = detail::redis_clock::now();
    std::vector<std::string_view> auth{"AUTH"};
    if (!user.empty()) auth.push_back(user);
    auth.push_back(password.view());
    std::vector<redis_args> commands;
    if (!password.empty()) commands.emplace_back(auth);
    commands.emplace_back(command);
    p->replies.resize(commands.size());
    for (std::size_t i = 0; i < commands.size(); ++i) {
        auto h = [p, i](error_code ec, redis_reply r) {
            if (!ec) p->replies[i] = std::move(r);
        };
        if (pipe.push(commands[i], detail::redis_handler(std::move(h)), now))
            co_return std::nullopt;
    }
    auto [rec, results] =
        co_await p->resolver.async_resolve(at.host, std::to_string(at.port), use_tuple);
    error_code ec = rec;
    if (!ec) std::tie(ec, std::ignore) = co_await asio::async_connect(p->sock, results, use_tuple);
    std::string bytes;
    pipe.take_output(bytes);
    if (!ec)
        std::tie(ec, std::ignore) =
            co_await asio::async_write(p->sock, asio::buffer(bytes), use_tuple);
    std::array<char, 4096> buf{};
    std::vector<detail::redis_completion> done;
    std::size_t answered = 0;
    std::size_t received = 0;  // the answers are a few dozen bytes: anything huge is refused
    while (!ec && answered < commands.size()) {
        auto [rerr, n] = co_await p->sock.async_read_some(asio::buffer(buf), use_tuple);
        ec = rerr;
        if ((received += n) > max_answer_bytes) break;
        if (!ec && pipe.feed(buf.data(), n, detail::redis_clock::now(), done)) break;
        for (auto& c : done) {
            std::move(c.handler)(c.ec, std::move(c.reply));
            ++answered;
        }
        done.clear();
    }
    p->deadline.cancel();
    error_code ignored;
    p->sock.close(ignored);
    if (answered < commands.size()) co_return std::nullopt;
    for (std::size_t i = 0; i + 1 < commands.size(); ++i) {  // AUTH
        if (!p->replies[i] || p->replies[i]->is_error()) co_return std::nullopt;
    }
    co_return std::move(p->replies.back());
}

// The subscriber's discovery: the sentinels in turn, no ROLE check.
class sentinel_rotation final : public redis_discovery {
public:
    explicit sentinel_rotation(std::vector<redis_address> s) : sentinels_(std::move(s)) {}
    asio::awaitable<std::pair<error_code, redis_address>> resolve() override {
        const std::size_t i = next_++ % sentinels_.size();
        co_return std::pair{error_code{}, sentinels_[i]};
    }
    std::uint64_t watch(std::function<void(const redis_address&)>) override { return 0; }
    void unwatch(std::uint64_t) noexcept override {}
    void stop() override {}
    [[nodiscard]] bool masters_only() const noexcept override { return false; }

private:
    std::vector<redis_address> sentinels_;
    std::atomic<std::size_t> next_{0};
};

}  // namespace

sentinel_discovery::sentinel_discovery(asio::any_io_executor ex, redis_options master,
                                       metrics::registry& reg)
    : ex_(std::move(ex)),
      opts_(std::move(master)),
      switches_(reg.add_counter("posrelay_redis_sentinel_switches_total",
                                "Master switches seen (+switch-master of our master, or a "
                                "new master found after the subscriber reconnected).")),
      failures_(reg.add_counter("posrelay_redis_sentinel_discovery_failures_total",
                                "Master discoveries that failed: no sentinel named a master "
                                "that answered ROLE as a master.")) {
    opts_.discovery.reset();
}

sentinel_discovery::~sentinel_discovery() {
    stop();
}

void sentinel_discovery::start(redis_metrics& rm) {
    std::lock_guard lock(mu_);
    if (subscriber_ || stopped_) return;
    redis_options so;
    so.sentinels = opts_.sentinels;
    so.master_name = opts_.master_name;  // described as the sentinels (logs)
    so.password = opts_.sentinel_password;
    so.connect_timeout = opts_.connect_timeout;
    so.command_timeout = opts_.command_timeout;
    so.reconnect_min = opts_.reconnect_min;
    so.reconnect_max = opts_.reconnect_max;
    so.max_pending = 16;
    so.discovery = std::make_shared<sentinel_rotation>(opts_.sentinels);
    subscriber_ = std::make_shared<redis_connection>(ex_, std::move(so), rm);
    std::weak_ptr<sentinel_discovery> weak = weak_from_this();
    heartbeat_timer_ = std::make_shared<asio::steady_timer>(ex_);
    asio::co_spawn(ex_, heartbeat(weak), asio::detached);
    subscriber_->start(
        [weak]() -> asio::awaitable<void> {
            if (auto self = weak.lock()) co_await self->on_subscriber_connect();
        },
        [weak](redis_reply&& m) {
            auto self = weak.lock();
            if (!self) return;
            if (auto to = switched_master(m, self->opts_.master_name))
                self->moved(*to, "+switch-master");
        });
}

void sentinel_discovery::stop() {
    std::shared_ptr<redis_connection> sub;
    std::shared_ptr<asio::steady_timer> timer;
    {
        std::lock_guard lock(mu_);
        stopped_ = true;
        watchers_.clear();
        sub = std::move(subscriber_);
        timer = std::move(heartbeat_timer_);
    }
    if (sub) sub->stop();
    if (timer) asio::post(ex_, [timer] { timer->cancel(); });
}

// The subscriber only listens: a sentinel gone silent (a dead host, a partition) would go
// unnoticed, and with it every +switch-master. A PING every command timeout lets the
// connection's watchdog see it (no reply within twice the timeout: dropped, and the next
// sentinel tried).
asio::awaitable<void> sentinel_discovery::heartbeat(std::weak_ptr<sentinel_discovery> weak) {
    while (true) {
        std::shared_ptr<redis_connection> sub;
        std::shared_ptr<asio::steady_timer> timer;
        std::chrono::milliseconds every{};
        if (auto self = weak.lock()) {
            std::lock_guard lock(self->mu_);
            sub = self->subscriber_;
            timer = self->heartbeat_timer_;
            every = self->opts_.command_timeout;
        }
        if (!sub || !timer) co_return;  // stopped
        if (sub->connected()) (void)co_await sub->exec(redis_command("PING"));
        timer->expires_after(every);
        const auto [ec] = co_await timer->async_wait(use_tuple);
        if (ec) co_return;  // cancelled by stop()
    }
}

// Before subscribing, the master as this sentinel sees it: a switch missed while the
// subscriber was down is noticed here. (RESP2: no other command after SUBSCRIBE.)
asio::awaitable<void> sentinel_discovery::on_subscriber_connect() {
    std::shared_ptr<redis_connection> sub;
    {
        std::lock_guard lock(mu_);
        sub = subscriber_;
    }
    if (!sub) co_return;
    auto [ec, r] =
        co_await sub->exec(redis_command("SENTINEL", "get-master-addr-by-name", opts_.master_name));
    if (ec) throw std::runtime_error("SENTINEL get-master-addr-by-name: " + ec.message());
    if (const auto m = master_address(r)) {
        std::optional<redis_address> before = last_master();
        if (before && *before != *m) moved(*m, "sentinel reconnected");
    }
    std::tie(ec, r) = co_await sub->exec(redis_command("SUBSCRIBE", "+switch-master"));
    if (ec || r.is_error()) throw std::runtime_error("SUBSCRIBE +switch-master failed");
}

void sentinel_discovery::moved(const redis_address& to, std::string_view why) {
    std::vector<std::function<void(const redis_address&)>> notify;
    {
        std::lock_guard lock(mu_);
        if (stopped_) return;
        last_ = to;
        for (const auto& [id, fn] : watchers_)
            notify.push_back(fn);
    }
    switches_.inc();
    log::line(log::level::warn, "redis master switched")
        .str("master", opts_.master_name)
        .str("address", to.describe())
        .str("seen_by", why);
    for (auto& fn : notify)
        fn(to);
}

asio::awaitable<std::optional<redis_address>> sentinel_discovery::ask(
    const redis_address& sentinel) const {
    const std::array<std::string_view, 3> cmd{"SENTINEL", "get-master-addr-by-name",
                                              opts_.master_name};
    const auto r = co_await query_once(sentinel, {}, opts_.sentinel_password,
                                       {cmd.begin(), cmd.end()}, opts_.connect_timeout);
    if (!r) co_return std::nullopt;
    co_return master_address(*r);
}

asio::awaitable<bool> sentinel_discovery::is_master(const redis_address& at) const {
    const std::array<std::string_view, 1> cmd{"ROLE"};
    const auto r = co_await query_once(at, opts_.username, opts_.password, {cmd.begin(), cmd.end()},
                                       opts_.connect_timeout);
    co_return r&& is_master_role(*r);
}

asio::awaitable<std::pair<error_code, redis_address>> sentinel_discovery::resolve() {
    const auto keep = shared_from_this();  // alive while resolving
    for (const auto& sentinel : opts_.sentinels) {
        const auto m = co_await ask(sentinel);
        if (!m || !co_await is_master(*m)) continue;
        {
            std::lock_guard lock(mu_);
            last_ = *m;
        }
        co_return std::pair{error_code{}, *m};
    }
    failures_.inc();
    log::line(log::level::warn, "redis master not found")
        .str("master", opts_.master_name)
        .num("sentinels", static_cast<std::int64_t>(opts_.sentinels.size()));
    co_return std::pair{make_error_code(redis_errc::not_connected), redis_address{}};
}

std::uint64_t sentinel_discovery::watch(std::function<void(const redis_address&)> moved) {
    std::lock_guard lock(mu_);
    const auto id = next_id_++;
    if (!stopped_) watchers_.emplace(id, std::move(moved));
    return id;
}

void sentinel_discovery::unwatch(std::uint64_t id) noexcept {
    std::lock_guard lock(mu_);
    watchers_.erase(id);
}

std::optional<redis_address> sentinel_discovery::last_master() const {
    std::lock_guard lock(mu_);
    return last_;
}

std::shared_ptr<sentinel_discovery> attach_sentinel(redis_options& o,
                                                    boost::asio::any_io_executor ex,
                                                    metrics::registry& reg) {
    if (o.sentinels.empty()) return nullptr;
    auto d = std::make_shared<sentinel_discovery>(std::move(ex), o, reg);
    o.discovery = d;
    return d;
}

}  // namespace posrelay::store
