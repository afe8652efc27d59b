// The io threads' Redis clients: one connection (redis://, unix://) or one per cluster primary
// routed by slot, and the cluster's shared slot map with its refresher. Decisions (slots,
// redirections, CLUSTER SLOTS replies) are cluster_slots.cpp's.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>

#include "posrelay/log.hpp"
#include "posrelay/store/redis_client.hpp"

namespace posrelay::store {

namespace asio = boost::asio;
using boost::system::error_code;
using cluster::node_address;
using cluster::slot_map;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr int max_attempts = 4;  // a command is sent at most this often (redirects, TRYAGAIN)
constexpr auto min_refresh_interval = std::chrono::milliseconds(100);
constexpr auto refresh_while_partial = std::chrono::seconds(1);
constexpr auto refresh_while_whole = std::chrono::seconds(30);

metrics::counter& redirects(metrics::registry& reg, std::string kind) {
    return reg.add_counter("posrelay_redis_cluster_redirects_total",
                           "Redis Cluster redirections answered: moved (the slot has a new "
                           "primary: the map is read again) or ask (a slot in migration).",
                           {{"kind", std::move(kind)}});
}
metrics::counter& refreshes(metrics::registry& reg, std::string result) {
    return reg.add_counter("posrelay_redis_cluster_slot_map_refreshes_total",
                           "Reads of the Redis Cluster slot map (CLUSTER SLOTS), by result.",
                           {{"result", std::move(result)}});
}
metrics::counter& cluster_errors(metrics::registry& reg, std::string kind) {
    return reg.add_counter("posrelay_redis_cluster_errors_total",
                           "Redis Cluster error replies: tryagain (retried after a short "
                           "backoff), clusterdown, crossslot (keys of one command in several "
                           "slots: a bug).",
                           {{"kind", std::move(kind)}});
}

std::vector<node_address> seeds_of(const redis_options& o) {
    std::vector<node_address> out;
    for (const auto& s : o.cluster_seeds) {
        if (auto n = cluster::parse_node_address(s)) out.push_back(std::move(*n));
    }
    return out;
}

redis_client::result not_connected() {
    return {make_error_code(redis_errc::not_connected), redis_reply{}};
}

}  // namespace

cluster_metrics::cluster_metrics(metrics::registry& r)
    : reg(r),
      moved(redirects(r, "moved")),
      ask(redirects(r, "ask")),
      refresh_ok(refreshes(r, "ok")),
      refresh_failed(refreshes(r, "failed")),
      tryagain(cluster_errors(r, "tryagain")),
      clusterdown(cluster_errors(r, "clusterdown")),
      crossslot(cluster_errors(r, "crossslot")) {}

// ---- the slot map's refresher ------------------------------------------------------------

// The refresher's state, touched on the topology's executor only (but `requested`).
struct cluster_topology::refresher {
    explicit refresher(const asio::any_io_executor& ex) : wake(ex), pause(ex) {}
    asio::steady_timer wake, pause;
    std::atomic<bool> requested{false};
    bool stopped = false;
    bool failing = false;  // the last refresh failed (logged once per run of failures)
    std::shared_ptr<redis_connection> control;  // to one node, for CLUSTER SLOTS
    node_address control_node;
    std::size_t next = 0;  // the next candidate when the control connection is down
    // The reply of the control connection's on_connect, and the timer it cancels.
    struct probe {
        explicit probe(const asio::any_io_executor& ex) : done(ex) {}
        asio::steady_timer done;
        std::optional<redis_reply> reply;
    };
    std::shared_ptr<probe> waiting;

    static asio::awaitable<void> run(std::shared_ptr<cluster_topology> self);
    static asio::awaitable<std::optional<slot_map>> fetch(std::shared_ptr<cluster_topology> self);
    static asio::awaitable<std::optional<redis_reply>> open(std::shared_ptr<cluster_topology> self,
                                                            const node_address& n);
};

// Opens the control connection to `n`; its on_connect reads CLUSTER SLOTS (the first reply
// is awaited, within the connect and command timeouts).
asio::awaitable<std::optional<redis_reply>> cluster_topology::refresher::open(
    std::shared_ptr<cluster_topology> self, const node_address& n) {
    refresher& r = *self->refresher_;
    auto p = std::make_shared<probe>(self->ex_);
    r.control = std::make_shared<redis_connection>(self->ex_, self->options_for(n), self->rm_);
    r.control_node = n;
    redis_connection* raw = r.control.get();
    r.control->start([raw, p]() -> asio::awaitable<void> {
        auto [ec, reply] = co_await raw->exec(redis_command("CLUSTER", "SLOTS"));
        if (!ec && !p->reply) p->reply = std::move(reply);
        p->done.cancel();
    });
    r.waiting = p;
    p->done.expires_after(self->base_.connect_timeout + self->base_.command_timeout);
    (void)co_await p->done.async_wait(use_tuple);
    r.waiting.reset();
    co_return std::move(p->reply);
}

// CLUSTER SLOTS from the control connection, or from the next known node or seed that
// answers; nullopt when none does.
asio::awaitable<std::optional<slot_map>> cluster_topology::refresher::fetch(
    std::shared_ptr<cluster_topology> self) {
    refresher& r = *self->refresher_;
    std::vector<node_address> candidates = seeds_of(self->base_);
    if (auto [m, v] = self->snapshot(); m) {
        for (const auto& n : m->nodes) {
            if (std::find(candidates.begin(), candidates.end(), n) == candidates.end())
                candidates.insert(candidates.begin(), n);
        }
    }
    // First a connection already up: the first client's (on this executor) to a primary.
    if (!(r.control && r.control->connected())) {
        std::shared_ptr<redis_client> first;
        {
            std::lock_guard lock(self->mu_);
            if (!self->clients_.empty()) first = self->clients_.front().lock();
        }
        if (auto c = first ? first->any_connected() : nullptr) {
            auto [ec, reply] = co_await c->exec(redis_command("CLUSTER", "SLOTS"));
            const node_address seed{self->base_.host, self->base_.port};
            if (!ec) {
                if (auto m = cluster::parse_cluster_slots(reply, seed)) co_return m;
            }
        }
    }
    for (std::size_t tried = 0; tried <= candidates.size() && !r.stopped; ++tried) {
        std::optional<redis_reply> reply;
        if (r.control && r.control->connected()) {
            auto [ec, rep] = co_await r.control->exec(redis_command("CLUSTER", "SLOTS"));
            if (!ec) reply = std::move(rep);
        } else if (!candidates.empty()) {
            if (r.control) r.control->stop();
            reply = co_await open(self, candidates[r.next++ % candidates.size()]);
        }
        if (reply) {
            if (auto m = cluster::parse_cluster_slots(*reply, r.control_node)) co_return m;
            log::line(log::level::warn, "redis cluster slots reply refused")
                .str("redis", r.control_node.name())
                .str("error", reply->is_error() ? std::string_view(reply->str) : "malformed");
        }
        if (r.control) r.control->stop();
        r.control.reset();
    }
    co_return std::nullopt;
}

asio::awaitable<void> cluster_topology::refresher::run(std::shared_ptr<cluster_topology> self) {
    refresher& r = *self->refresher_;
    while (!r.stopped) {
        r.requested = false;
        auto m = co_await fetch(self);
        if (r.stopped) break;
        if (m) {
            self->cm_.refresh_ok.inc();
            r.failing = false;
            self->publish(std::move(*m));
        } else {
            self->cm_.refresh_failed.inc();
            if (!r.failing) {
                log::line(log::level::warn, "redis cluster slot map unavailable")
                    .str("redis", self->base_.describe());
            }
            r.failing = true;
        }
        r.pause.expires_after(min_refresh_interval);
        (void)co_await r.pause.async_wait(use_tuple);
        if (r.stopped) break;
        if (r.requested) continue;
        const bool whole = m && self->slots_covered() == cluster::slot_count;
        r.wake.expires_after(whole ? refresh_while_whole : refresh_while_partial);
        (void)co_await r.wake.async_wait(use_tuple);  // or cancelled by request_refresh()
    }
    if (r.control) r.control->stop();
    r.control.reset();
}

// ---- cluster_topology ------------------------------------------------------------------

cluster_topology::cluster_topology(asio::any_io_executor ex, redis_options base, redis_metrics& rm,
                                   cluster_metrics& cm, connect_hook hook)
    : ex_(std::move(ex)),
      base_(std::move(base)),
      rm_(rm),
      cm_(cm),
      hook_(std::move(hook)),
      refresher_(std::make_shared<refresher>(ex_)) {}

cluster_topology::~cluster_topology() = default;

void cluster_topology::add_client(const std::shared_ptr<redis_client>& c) {
    std::lock_guard lock(mu_);
    clients_.push_back(c);
}

void cluster_topology::start() {
    const std::weak_ptr<cluster_topology> weak = weak_from_this();
    cm_.reg.add_gauge_fn(
        "posrelay_redis_cluster_slots_covered",
        "Redis Cluster slots (of 16384) whose primary every io thread is connected to.", {},
        [weak] {
            const auto t = weak.lock();
            return t ? static_cast<double>(t->slots_covered()) : 0.0;
        });
    asio::co_spawn(ex_, refresher::run(shared_from_this()), [](const std::exception_ptr& e) {
        if (e) log::escaped(e, "redis cluster refresher");
    });
}

void cluster_topology::stop() {
    asio::post(ex_, [r = refresher_] {
        r->stopped = true;
        r->wake.cancel();
        r->pause.cancel();
        if (r->waiting) r->waiting->done.cancel();
        if (r->control) r->control->stop();
    });
}

std::pair<std::shared_ptr<const slot_map>, std::uint64_t> cluster_topology::snapshot() const {
    std::lock_guard lock(mu_);
    return {map_, version_.load()};
}

std::optional<node_address> cluster_topology::node_for_slot(std::uint16_t slot) const {
    const auto [m, v] = snapshot();
    if (!m || slot >= cluster::slot_count) return std::nullopt;
    const auto o = m->owner[slot];
    if (o == slot_map::no_owner) return std::nullopt;
    return m->nodes[o];
}

std::optional<node_address> cluster_topology::node_for_key(std::string_view key) const {
    return node_for_slot(cluster::key_hash_slot(key));
}

void cluster_topology::request_refresh() {
    if (refresher_->requested.exchange(true)) return;
    asio::post(ex_, [r = refresher_] { r->wake.cancel(); });
}

void cluster_topology::note_moved(std::uint16_t slot, const node_address& node) {
    {
        std::lock_guard lock(mu_);
        if (map_) {
            const auto it = std::find(map_->nodes.begin(), map_->nodes.end(), node);
            const auto idx = static_cast<std::uint16_t>(it - map_->nodes.begin());
            if (it != map_->nodes.end() && map_->owner[slot] != idx) {
                auto patched = std::make_shared<slot_map>(*map_);
                patched->owner[slot] = idx;
                map_ = std::move(patched);
                ++version_;
            }
        }
    }
    request_refresh();
}

redis_options cluster_topology::options_for(const node_address& node) const {
    redis_options o = base_;
    o.host = node.host;
    o.port = node.port;
    o.cluster_seeds.clear();
    return o;
}

std::size_t cluster_topology::slots_covered() const {
    std::vector<std::shared_ptr<redis_client>> clients;
    {
        std::lock_guard lock(mu_);
        for (const auto& w : clients_) {
            if (auto c = w.lock()) clients.push_back(std::move(c));
        }
    }
    if (clients.empty()) return 0;
    std::size_t fewest = cluster::slot_count;
    for (const auto& c : clients)
        fewest = std::min(fewest, c->slots_covered());
    return fewest;
}

// A new map (unchanged: nothing happens): published, its new shards given a gauge, every
// client told to connect to its primaries.
void cluster_topology::publish(slot_map m) {
    std::vector<std::shared_ptr<redis_client>> clients;
    std::vector<std::string> new_shards;
    {
        std::lock_guard lock(mu_);
        if (map_ && map_->nodes == m.nodes && map_->owner == m.owner) return;
        for (const auto& n : m.nodes) {
            std::string name = n.name();
            if (std::find(gauges_.begin(), gauges_.end(), name) == gauges_.end()) {
                gauges_.push_back(name);
                new_shards.push_back(std::move(name));
            }
        }
        map_ = std::make_shared<const slot_map>(std::move(m));
        ++version_;
        for (const auto& w : clients_) {
            if (auto c = w.lock()) clients.push_back(std::move(c));
        }
    }
    // Outside mu_: a scrape holds the registry's lock while its gauges take mu_.
    for (const auto& name : new_shards)
        register_shard_gauge(name);
    const auto [now, v] = snapshot();
    log::line(log::level::info, "redis cluster slot map")
        .num("primaries", static_cast<std::int64_t>(now->nodes.size()))
        .num("slots_assigned", static_cast<std::int64_t>(now->assigned()))
        .num("version", static_cast<std::int64_t>(v));
    for (const auto& c : clients)
        c->sync_later();
}

void cluster_topology::register_shard_gauge(const std::string& name) {
    const std::weak_ptr<cluster_topology> weak = weak_from_this();
    cm_.reg.add_gauge_fn("posrelay_redis_cluster_shard_connections_up",
                         "Connections up to each Redis Cluster primary (one per io thread when "
                         "all are up).",
                         {{"shard", name}}, [weak, name] {
                             const auto t = weak.lock();
                             if (!t) return 0.0;
                             std::vector<std::shared_ptr<redis_client>> clients;
                             {
                                 std::lock_guard lock(t->mu_);
                                 for (const auto& w : t->clients_) {
                                     if (auto c = w.lock()) clients.push_back(std::move(c));
                                 }
                             }
                             int up = 0;
                             for (const auto& c : clients)
                                 up += c->shard_up(name);
                             return static_cast<double>(up);
                         });
}

// ---- redis_client ------------------------------------------------------------------------

redis_client::redis_client(std::shared_ptr<redis_connection> conn) : single_(std::move(conn)) {}

redis_client::redis_client(asio::any_io_executor ex, std::shared_ptr<cluster_topology> topo)
    : ex_(std::move(ex)), topo_(std::move(topo)) {}

redis_client::~redis_client() {
    stop();
}

void redis_client::stop() {
    std::lock_guard lock(mu_);
    stopped_ = true;
    if (single_) single_->stop();
    for (auto& [name, c] : conns_)
        c->stop();
}

void redis_client::sync_later() {
    asio::post(ex_, [weak = weak_from_this()] {
        if (auto self = weak.lock()) self->sync();
    });
}

std::shared_ptr<redis_connection> redis_client::make_connection(const node_address& n) {
    auto c =
        std::make_shared<redis_connection>(ex_, topo_->options_for(n), topo_->connection_metrics());
    c->start(topo_->hook() ? topo_->hook()(c.get()) : nullptr);
    return c;
}

void redis_client::sync() {
    if (!topo_) return;
    const auto [m, v] = topo_->snapshot();
    std::lock_guard lock(mu_);
    if (stopped_ || !m || v == version_) return;
    std::vector<std::shared_ptr<redis_connection>> by_node;
    std::map<std::string, std::shared_ptr<redis_connection>, std::less<>> next;
    for (const auto& n : m->nodes) {
        const std::string name = n.name();
        const auto it = conns_.find(name);
        auto c = it != conns_.end() ? it->second : make_connection(n);
        by_node.push_back(c);
        next.emplace(name, std::move(c));
    }
    for (auto& [name, c] : conns_) {
        if (!next.contains(name)) c->stop();
    }
    conns_ = std::move(next);
    by_node_ = std::move(by_node);
    map_ = m;
    version_ = v;
}

std::shared_ptr<redis_connection> redis_client::connection_for(std::string_view key) {
    if (single_) return single_;
    return for_slot(cluster::key_hash_slot(key));
}

std::shared_ptr<redis_connection> redis_client::for_slot(std::optional<std::uint16_t> slot) {
    if (topo_->version() != version_) sync();
    std::lock_guard lock(mu_);
    if (!map_ || by_node_.empty()) return nullptr;
    if (!slot) {
        for (const auto& c : by_node_) {
            if (c->connected()) return c;
        }
        return by_node_.front();
    }
    const auto o = map_->owner[*slot];
    if (o == slot_map::no_owner || o >= by_node_.size()) return nullptr;
    return by_node_[o];
}

std::shared_ptr<redis_connection> redis_client::to_node(const node_address& n) {
    std::lock_guard lock(mu_);
    const std::string name = n.name();
    if (const auto it = conns_.find(name); it != conns_.end()) return it->second;
    auto c = make_connection(n);
    if (!stopped_) conns_.emplace(name, c);
    return c;
}

asio::awaitable<redis_client::result> redis_client::asking(std::shared_ptr<redis_connection> c,
                                                           redis_args args) {
    using namespace asio::experimental::awaitable_operators;
    // Both are written at once, back to back: no other command of this thread can come
    // between ASKING and the command it is meant for.
    const std::string_view ask[] = {"ASKING"};
    auto [asked, r] = co_await (c->exec(redis_args(ask)) && c->exec(args));
    co_return std::move(r);
}

// Sends `args` to the primary of `slot` (any primary when none), following redirections.
asio::awaitable<redis_client::result> redis_client::routed(std::optional<std::uint16_t> slot,
                                                           redis_args args) {
    auto c = for_slot(slot);
    if (!c) {
        topo_->request_refresh();
        topo_->connection_metrics().err_not_connected.inc();
        co_return not_connected();
    }
    cluster_metrics& cm = topo_->metrics();
    bool ask = false;
    for (int attempt = 1;; ++attempt) {
        // Not `ask ? co_await ... : co_await ...`: g++ 12 miscompiles co_await in a ?: operand.
        result r;
        if (ask) {
            r = co_await asking(c, args);
        } else {
            r = co_await c->exec(args);
        }
        ask = false;
        if (r.first) {
            if (r.first == redis_errc::not_connected || r.first == redis_errc::connection_lost)
                topo_->request_refresh();
            co_return r;
        }
        if (attempt >= max_attempts) co_return r;
        if (const auto d = cluster::parse_redirect(r.second)) {
            if (d->type == cluster::redirect::kind::moved) {
                cm.moved.inc();
                topo_->note_moved(d->slot, d->node);
            } else {
                cm.ask.inc();
                ask = true;
            }
            c = to_node(d->node);
            continue;
        }
        switch (cluster::classify_error(r.second)) {
            case cluster::cluster_error::tryagain: {
                cm.tryagain.inc();
                asio::steady_timer backoff(co_await asio::this_coro::executor);
                backoff.expires_after(std::chrono::milliseconds(20 * attempt));
                (void)co_await backoff.async_wait(use_tuple);
                continue;
            }
            case cluster::cluster_error::clusterdown:
                cm.clusterdown.inc();
                topo_->request_refresh();
                break;
            case cluster::cluster_error::crossslot:
                cm.crossslot.inc();
                break;
            case cluster::cluster_error::none:
                break;
        }
        co_return r;
    }
}

// Not coroutines: on one server the connection's own awaitable is returned, without a frame
// of ours around it (the commit's hot path costs what it did before the cluster client).
asio::awaitable<redis_client::result> redis_client::exec(redis_args args) {
    if (single_) return single_->exec(args);
    const auto key = cluster::command_route_key(args);
    return routed(key ? std::optional(cluster::key_hash_slot(*key)) : std::nullopt, args);
}

asio::awaitable<redis_client::result> redis_client::exec(const std::vector<std::string>& args) {
    const std::vector<std::string_view> views(args.begin(), args.end());
    co_return co_await exec(redis_args(views));
}

asio::awaitable<redis_client::result> redis_client::exec_at(std::string_view route_key,
                                                            redis_args args) {
    if (single_) return single_->exec(args);
    return routed(cluster::key_hash_slot(route_key), args);
}

bool redis_client::connected() const {
    if (single_) return single_->connected();
    return slots_covered() == cluster::slot_count;
}

std::size_t redis_client::slots_covered() const {
    if (single_) return single_->connected() ? cluster::slot_count : 0;
    std::lock_guard lock(mu_);
    if (!map_) return 0;
    return cluster::slots_covered(
        *map_, [this](std::size_t i) { return i < by_node_.size() && by_node_[i]->connected(); });
}

std::shared_ptr<redis_connection> redis_client::any_connected() const {
    std::lock_guard lock(mu_);
    for (const auto& c : by_node_) {
        if (c->connected()) return c;
    }
    return nullptr;
}

int redis_client::shard_up(std::string_view shard) const {
    std::lock_guard lock(mu_);
    const auto it = conns_.find(shard);
    return it != conns_.end() && it->second->connected() ? 1 : 0;
}

}  // namespace posrelay::store
