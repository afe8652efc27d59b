// posrelay on a real Redis Cluster (tests/support/redis_cluster.hpp): the routed client
// (slot routing, scripts on every primary, MOVED after a slot moved, ASK during a migration,
// a primary killed: its slots fail fast, the others keep working), and posrelay itself with
// POSRELAY_REDIS_URL=redis-cluster://... (/readyz slot coverage, notifications, metrics).
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <set>
#include <thread>

#include "http_client.hpp"
#include "posrelay/io_pool.hpp"
#include "posrelay/store/cluster_slots.hpp"
#include "posrelay/store/lua_script.hpp"
#include "posrelay/store/order_script.hpp"
#include "posrelay/store/redis_store.hpp"
#include "process.hpp"
#include "redis_cluster.hpp"
#include "terminal_conn.hpp"

namespace posrelay::store {
// redis_store's client of the calling io thread (private: only src/store and tests use it).
struct redis_store_test_access {
    static redis_client& local(redis_store& s) { return s.local(); }
};
}  // namespace posrelay::store

namespace posrelay::test {
namespace {

using namespace std::chrono_literals;
using store::redis_command;
using store::cluster::key_hash_slot;
using result = std::pair<boost::system::error_code, store::redis_reply>;

// ---- the store's client in-process ---------------------------------------------------------

class RedisClusterStore : public ::testing::Test {
protected:
    static void SetUpTestSuite() { raise_fd_limit(); }
    void SetUp() override { start_cluster({}); }
    // `first_seed`: put before the cluster's nodes in the URL (e.g. a dead one).
    void start_cluster(redis_cluster_options o, std::string first_seed = {}) {
        cluster_.start(o);
        std::string url = cluster_.url();
        if (!first_seed.empty())
            url.insert(url.find("127.0.0.1:"), first_seed + ",");  // after the credentials
        auto ro = store::parse_redis_url(url);
        ro.command_timeout = 1s;
        store_ = std::make_unique<store::redis_store>(pool_, ro, store::store_options{}, registry_);
        store_->start();
        pool_.start();
        ASSERT_TRUE(wait_until(
            [&] { return store_->cluster_slots_covered() == store::cluster::slot_count; }, 15s))
            << "slots covered: " << store_->cluster_slots_covered().value_or(0);
    }
    void TearDown() override {
        if (store_) store_->stop();
        pool_.stop(false);
        pool_.join();
    }

    // Runs `cmd` on io thread `t` through store.local().
    result exec(std::vector<std::string> cmd, std::size_t t = 0) {
        auto run = [this, cmd = std::move(cmd)]() -> boost::asio::awaitable<result> {
            co_return co_await store::redis_store_test_access::local(*store_).exec(cmd);
        };
        return boost::asio::co_spawn(pool_.context(t), run(), boost::asio::use_future).get();
    }
    // The reply's text, or the error code's message.
    std::string text(const result& r) {
        return r.first ? "ec: " + r.first.message() : r.second.str;
    }
    double metric(std::string_view series) { return metric_value(registry_.render(), series); }
    // A key whose slot is served by node `i` (as node 0 sees it).
    std::string key_on(std::size_t i, std::string_view stem = "k") {
        for (int n = 0;; ++n) {
            std::string k = std::string(stem) + std::to_string(n);
            if (cluster_.owner_of(key_hash_slot(k)) == static_cast<int>(i)) return k;
        }
    }

    redis_cluster cluster_;
    metrics::registry registry_;
    io_pool pool_{2};
    std::unique_ptr<store::redis_store> store_;
};

TEST_F(RedisClusterStore, CommandsGoToTheirSlotsPrimaryFromEveryIoThread) {
    EXPECT_EQ(store_->cluster_slots_covered(), store::cluster::slot_count);
    for (int i = 0; i < 60; ++i) {
        const std::string k = "key:" + std::to_string(i);
        const auto set = exec(redis_command("SET", k, "v" + std::to_string(i)), i % 2);
        ASSERT_EQ(text(set), "OK") << k;
        const int owner = cluster_.owner_of(key_hash_slot(k));
        ASSERT_GE(owner, 0);
        // Read on the owner itself: the key is there, not on another node.
        EXPECT_EQ(cluster_.cli(static_cast<std::size_t>(owner), {"GET", k}),
                  "v" + std::to_string(i));
        EXPECT_EQ(text(exec(redis_command("GET", k), (i + 1) % 2)), "v" + std::to_string(i));
    }
    // Keys of two slots in one command: Redis's CROSSSLOT, counted, never retried.
    const auto cross = exec(redis_command("MGET", "key:1", "key:2"));
    EXPECT_TRUE(cross.second.is_error() && cross.second.str.starts_with("CROSSSLOT"))
        << text(cross);
    EXPECT_EQ(metric(R"(posrelay_redis_cluster_errors_total{kind="crossslot"})"), 1);
    // Keyless commands go to some primary; the client never answers MOVED to its caller.
    EXPECT_EQ(text(exec(redis_command("PING"))), "PONG");
    EXPECT_EQ(metric(R"(posrelay_redis_cluster_redirects_total{kind="moved"})"), 0);
    EXPECT_EQ(metric("posrelay_redis_cluster_slots_covered"), 16384);
    for (std::size_t i = 0; i < cluster_.size(); ++i) {
        const std::string shard = "127.0.0.1:" + std::to_string(cluster_.node(i).port());
        EXPECT_EQ(metric(R"(posrelay_redis_cluster_shard_connections_up{shard=")" + shard + "\"}"),
                  2)
            << shard;
    }
}

// Scripts are loaded on every primary's connection; a script whose keys share a slot runs on
// that slot's primary; NOSCRIPT there (its cache flushed) is answered by EVAL.
TEST_F(RedisClusterStore, ScriptsRunOnTheirKeysPrimary) {
    metrics::registry reg;
    const store::lua_script order("order", store::detail::order_script, reg);
    for (std::size_t i = 0; i < cluster_.size(); ++i)
        EXPECT_EQ(cluster_.cli(i, {"SCRIPT", "EXISTS", order.sha()}), "1") << "node " << i;
    const store::lua_script s("pair",
                              "redis.call('SET', KEYS[1], ARGV[3]) "
                              "return redis.call('INCR', KEYS[2])",
                              reg);
    auto run = [&](std::string tag) {
        auto co = [&, tag]() -> boost::asio::awaitable<result> {
            const std::string a = "{" + tag + "}:a", b = "{" + tag + "}:b";
            const std::string_view keys[] = {a, b};
            const std::string_view args[] = {"x"};
            co_return co_await s.exec(store::redis_store_test_access::local(*store_), keys,
                                      {"p:", "0"}, store::redis_args(args));
        };
        return boost::asio::co_spawn(pool_.context(1), co(), boost::asio::use_future).get();
    };
    std::set<int> owners;
    for (int i = 0; i < 12; ++i) {
        const std::string tag = "store-" + std::to_string(i);
        const auto r = run(tag);
        ASSERT_FALSE(r.first) << r.first.message();
        ASSERT_EQ(r.second.type, store::redis_reply::kind::integer) << r.second.str;
        EXPECT_EQ(r.second.integer, 1);
        owners.insert(cluster_.owner_of(key_hash_slot(tag)));
    }
    EXPECT_GE(owners.size(), 2U);  // the tags spread over several primaries
    for (std::size_t i = 0; i < cluster_.size(); ++i)
        (void)cluster_.cli(i, {"SCRIPT", "FLUSH"});
    const auto again = run("store-0");
    ASSERT_FALSE(again.first);
    EXPECT_EQ(again.second.integer, 2);
    EXPECT_GE(metric_value(reg.render(), R"(posrelay_redis_script_loads_total{script="pair"})"), 1);
}

TEST_F(RedisClusterStore, MovedAfterTheSlotMovedIsFollowedAndTheMapPatched) {
    const std::string k = key_on(0);
    ASSERT_EQ(text(exec(redis_command("SET", k, "before"))), "OK");
    const auto slot = key_hash_slot(k);
    cluster_.move_slot(slot, 0, 1);
    ASSERT_EQ(cluster_.owner_of(slot, 1), 1);
    EXPECT_EQ(text(exec(redis_command("GET", k), 0)), "before");
    EXPECT_EQ(text(exec(redis_command("SET", k, "after"), 1)), "OK");
    EXPECT_EQ(cluster_.cli(1, {"GET", k}), "after");
    const double moved = metric(R"(posrelay_redis_cluster_redirects_total{kind="moved"})");
    EXPECT_GE(moved, 1);
    EXPECT_LE(moved, 2);  // once per io thread at most: the map is patched, then refreshed
    // Once the map is read again, the slot goes to its new primary directly.
    ASSERT_TRUE(wait_until(
        [&] {
            const auto n = store_->cluster()->node_for_key(k);
            return n && n->port == cluster_.node(1).port();
        },
        5s));
    for (int i = 0; i < 10; ++i)
        EXPECT_EQ(text(exec(redis_command("GET", k), i % 2)), "after");
    EXPECT_EQ(metric(R"(posrelay_redis_cluster_redirects_total{kind="moved"})"), moved);
}

TEST_F(RedisClusterStore, AskDuringAMigrationGoesToTheImportingNode) {
    const std::string k1 = key_on(0, "ask"), slot_s = std::to_string(key_hash_slot(k1));
    // A second key of the same slot (hash tag: the first key).
    const std::string k2 = "{" + k1 + "}:other";
    ASSERT_EQ(text(exec(redis_command("SET", k1, "moved-early"))), "OK");
    ASSERT_EQ(text(exec(redis_command("SET", k2, "still-here"))), "OK");
    // By hand: node 1 importing, node 0 migrating, only k1 migrated so far.
    ASSERT_EQ(cluster_.cli(1, {"CLUSTER", "SETSLOT", slot_s, "IMPORTING", cluster_.node_id(0)}),
              "OK");
    ASSERT_EQ(cluster_.cli(0, {"CLUSTER", "SETSLOT", slot_s, "MIGRATING", cluster_.node_id(1)}),
              "OK");
    ASSERT_EQ(cluster_.cli(0, {"MIGRATE", "127.0.0.1", std::to_string(cluster_.node(1).port()), k1,
                               "0", "5000"}),
              "OK");
    EXPECT_EQ(text(exec(redis_command("GET", k1))), "moved-early");    // ASK → node 1
    EXPECT_EQ(text(exec(redis_command("GET", k2), 1)), "still-here");  // node 0 still has it
    // Both keys at once: TRYAGAIN (one is migrated, the other not), retried 3 times, then the
    // error is the caller's.
    const auto both = exec(redis_command("MGET", k1, k2));
    EXPECT_TRUE(both.second.is_error() && both.second.str.starts_with("TRYAGAIN")) << text(both);
    EXPECT_EQ(metric(R"(posrelay_redis_cluster_errors_total{kind="tryagain"})"), 3);
    EXPECT_GE(metric(R"(posrelay_redis_cluster_redirects_total{kind="ask"})"), 1);
    EXPECT_EQ(metric(R"(posrelay_redis_cluster_redirects_total{kind="moved"})"), 0);
    // An ASK does not change the map: the slot is still node 0's.
    EXPECT_EQ(store_->cluster()->node_for_key(k1)->port, cluster_.node(0).port());
    cluster_.move_slot(key_hash_slot(k1), 0, 1);  // finish the migration
    EXPECT_EQ(text(exec(redis_command("GET", k2))), "still-here");
}

TEST_F(RedisClusterStore, APrimaryDownFailsItsSlotsFastAndTheOthersKeepWorking) {
    const std::string dead_key = key_on(2, "dead"), live0 = key_on(0, "live"),
                      live1 = key_on(1, "live");
    const auto version = store_->cluster()->version();
    cluster_.node(2).kill();
    // Its slots: failed fast (not sent) once the connection noticed, within the timeouts.
    ASSERT_TRUE(wait_until(
        [&] {
            const auto r = exec(redis_command("GET", dead_key));
            return r.first == store::redis_errc::not_connected;
        },
        10s));
    const auto started = std::chrono::steady_clock::now();
    const auto r = exec(redis_command("SET", dead_key, "x"), 1);
    EXPECT_EQ(r.first, store::redis_errc::not_connected) << text(r);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 200ms);
    // The other primaries keep serving theirs, from both io threads.
    for (std::size_t t = 0; t < 2; ++t) {
        EXPECT_EQ(text(exec(redis_command("SET", live0, "ok"), t)), "OK");
        EXPECT_EQ(text(exec(redis_command("SET", live1, "ok"), t)), "OK");
    }
    EXPECT_TRUE(store_->ready());  // degraded: the other slots are served
    const auto covered = store_->cluster_slots_covered().value_or(0);
    EXPECT_GT(covered, 0U);
    EXPECT_LT(covered, store::cluster::slot_count);
    EXPECT_GE(store_->cluster()->version(), version);
    EXPECT_EQ(metric("posrelay_redis_cluster_slots_covered"), static_cast<double>(covered));
    // Back: the same node restarts empty, is told who it is by nothing (its nodes.conf is
    // kept in its directory), and serves its slots again.
    cluster_.node(2).restart();
    cluster_.wait_ok();
    ASSERT_TRUE(wait_until(
        [&] { return store_->cluster_slots_covered() == store::cluster::slot_count; }, 15s));
    EXPECT_EQ(text(exec(redis_command("SET", dead_key, "back"))), "OK");
}

class RedisClusterFailover : public RedisClusterStore {
protected:
    void SetUp() override { start_cluster({.replicas = 1}); }
    result exec_at(std::string route_key, std::vector<std::string> cmd) {
        auto run = [&]() -> boost::asio::awaitable<result> {
            const std::vector<std::string_view> views(cmd.begin(), cmd.end());
            co_return co_await store::redis_store_test_access::local(*store_).exec_at(
                route_key, store::redis_args(views));
        };
        return boost::asio::co_spawn(pool_.context(0), run(), boost::asio::use_future).get();
    }
};

// A primary killed: its replica takes over (cluster-node-timeout 1 s) and posrelay's map
// follows, without a restart; WAIT through exec_at goes to the key's primary.
TEST_F(RedisClusterFailover, APrimaryKilledIsReplacedByItsReplica) {
    const std::string k = key_on(0, "failover");
    ASSERT_EQ(text(exec(redis_command("SET", k, "kept"))), "OK");
    const auto acked = exec_at(k, redis_command("WAIT", "1", "500"));
    ASSERT_FALSE(acked.first) << acked.first.message();
    EXPECT_EQ(acked.second.integer, 1);  // the write reached the replica before the kill
    cluster_.node(0).kill();
    const auto started = std::chrono::steady_clock::now();
    ASSERT_TRUE(wait_until([&] { return text(exec(redis_command("GET", k), 1)) == "kept"; }, 20s));
    const auto took = std::chrono::steady_clock::now() - started;
    ASSERT_TRUE(wait_until(
        [&] { return store_->cluster_slots_covered() == store::cluster::slot_count; }, 10s));
    const int owner = cluster_.owner_of(key_hash_slot(k), 1);
    EXPECT_GE(owner, 3);  // a replica (started after the primaries) is the primary now
    EXPECT_EQ(text(exec(redis_command("SET", k, "after"), 0)), "OK");
    EXPECT_GE(metric(R"(posrelay_redis_cluster_slot_map_refreshes_total{result="ok"})"), 2);
    std::cerr << "failover: slot served again after "
              << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
}

class RedisClusterDeadSeed : public RedisClusterStore {
protected:
    void SetUp() override { start_cluster({}, "127.0.0.1:" + std::to_string(pick_free_port())); }
};

// The first seed does not answer: the slot map comes from the next one.
TEST_F(RedisClusterDeadSeed, TheNextSeedAnswers) {
    EXPECT_EQ(store_->cluster_slots_covered(), store::cluster::slot_count);
    EXPECT_EQ(text(exec(redis_command("SET", "dead-seed", "1"))), "OK");
    EXPECT_GE(metric(R"(posrelay_redis_cluster_slot_map_refreshes_total{result="ok"})"), 1);
}

class RedisClusterAuth : public RedisClusterStore {
protected:
    void SetUp() override { start_cluster({.password = "cluster-Secret-7"}); }
};

TEST_F(RedisClusterAuth, EveryShardConnectionAuthenticates) {
    for (int i = 0; i < 20; ++i) {
        const std::string k = "auth:" + std::to_string(i);
        ASSERT_EQ(text(exec(redis_command("SET", k, "1"), i % 2)), "OK");
    }
    const std::string all = registry_.render();
    EXPECT_EQ(all.find("cluster-Secret-7"), std::string::npos);
}

// ---- posrelay with POSRELAY_REDIS_URL=redis-cluster://... -----------------------------------

class RedisClusterRelay : public ::testing::Test {
protected:
    static void SetUpTestSuite() { raise_fd_limit(); }
    void SetUp() override {
        cluster_.start();
        relay_ = start_posrelay(
            {"--io-threads", "2", "--redis-command-timeout", "500ms", "--confirm-paid", "false"},
            {{"POSRELAY_SERVER_KEY", std::string(test_server_key)},
             {"POSRELAY_REDIS_URL", cluster_.url()},
             {"POSRELAY_OPERATOR_TOKEN", "op-token-123"}});
        ASSERT_TRUE(wait_until([&] { return readyz().first == 200; }, 15s)) << readyz().second;
    }
    std::pair<int, std::string> readyz() {
        auto r = http_client(relay_.port).get("/readyz");
        return {r.result_int(), r.body()};
    }
    // A signed notification; pending (status 201) by default.
    int notify(const std::string& order_id, std::string status = "pending") {
        notification_fields f;
        f.order_id = order_id;
        f.status_code = status == "pending" ? "201" : "200";
        f.transaction_status = std::move(status);
        return http_client(relay_.port)
            .post(notifications_path, signed_notification(f, test_server_key))
            .result_int();
    }
    int get_order(const std::string& order_id) {
        return http_client(relay_.port)
            .request(boost::beast::http::verb::get, "/v1/orders/" + order_id, {}, {},
                     {{"Authorization", "Bearer op-token-123"}})
            .result_int();
    }

    redis_cluster cluster_;
    posrelay_process relay_;
};

TEST_F(RedisClusterRelay, ReadyzShowsSlotCoverage) {
    EXPECT_EQ(readyz().second, R"({"status":"ready","redis_slots_covered":16384})");
    const auto m = http_client(relay_.port).get("/metrics").body();
    EXPECT_EQ(metric_value(m, "posrelay_redis_cluster_slots_covered"), 16384);
    EXPECT_EQ(metric_value(m, "posrelay_ready"), 1);
}

// A pending notification of an order with no route yet touches only the order's key: a commit
// in the order's slot, on today's key schema.
TEST_F(RedisClusterRelay, NotificationsOfManyOrdersAndAPrimaryDown) {
    for (int i = 0; i < 40; ++i) {
        const std::string o = "CL-" + std::to_string(i);
        ASSERT_EQ(notify(o), 200) << o << relay_.proc->output();
        EXPECT_EQ(get_order(o), 200) << o;
    }
    // One primary down: its orders answer 503 (Midtrans retries), the others 200.
    // The node stays in service for the other slots: /readyz 200, "degraded", with coverage.
    cluster_.node(1).kill();
    ASSERT_TRUE(
        wait_until([&] { return readyz().second.find("degraded") != std::string::npos; }, 10s));
    const auto [ready_code, body] = readyz();
    EXPECT_EQ(ready_code, 200) << body;
    EXPECT_NE(body.find(R"("redis_slots_covered":)"), std::string::npos) << body;
    EXPECT_EQ(body.find(R"("redis_slots_covered":16384)"), std::string::npos) << body;
    int ok = 0, unavailable = 0;
    for (int i = 0; i < 40; ++i) {
        const std::string o = "CL-2-" + std::to_string(i);
        const int owner = cluster_.owner_of(key_hash_slot("o:" + o));
        const int code = notify(o);
        if (owner == 1) {
            EXPECT_EQ(code, 503) << o;
            ++unavailable;
        } else {
            EXPECT_EQ(code, 200) << o;
            ++ok;
        }
    }
    EXPECT_GT(ok, 0);
    EXPECT_GT(unavailable, 0);
}

// Orders registered to 10 stores (each store's keys in its own slot, key schema version 4),
// then a settlement and its retry each: every commit is one script call in one slot, the
// poll schedule's removal a separate call in its bucket's slot.
TEST_F(RedisClusterRelay, SettlementsOfManyOrders) {
    for (int i = 0; i < 40; ++i) {
        const std::string o = "CL-S-" + std::to_string(i);
        const std::string body =
            R"({"order_id":")" + o + R"(","gross_amount":"10000.00","terminal_id":"T-)" +
            std::to_string(i) + R"(","store_id":"S-)" + std::to_string(i % 10) + "\"}";
        const auto reg =
            http_client(relay_.port)
                .request(boost::beast::http::verb::post, "/v1/orders", body, "application/json",
                         {{"Authorization", "Bearer op-token-123"}});
        ASSERT_EQ(reg.result_int(), 201) << o << " " << reg.body() << relay_.proc->output();
        ASSERT_EQ(notify(o, "settlement"), 200) << o << relay_.proc->output();
        ASSERT_EQ(notify(o, "settlement"), 200) << o;  // the duplicate
        EXPECT_EQ(get_order(o), 200) << o;
    }
    const auto m = http_client(relay_.port).get("/metrics").body();
    EXPECT_EQ(metric_value(m, R"(posrelay_commits_total{outcome="new"})"), 40);
    EXPECT_EQ(metric_value(m, R"(posrelay_commits_total{outcome="duplicate"})"), 40);
}

// Startup: a node whose shards are not all connected yet is not ready; /readyz 200 there would let
// a load balancer send it requests that fail 503. With a primary already down when the node
// starts, it is kept out of service only for the startup grace (2 × --redis-connect-timeout),
// then serves the other slots, degraded. The old rule (ready at the first covered slot) answered
// 200 as soon as one shard was up: the CI flake of SettlementsOfManyOrders.
TEST(RedisClusterStartup, NotReadyUntilEverySlotIsCoveredOrTheGraceIsOver) {
    raise_fd_limit();
    redis_cluster cluster;
    cluster.start();
    cluster.node(1).kill();
    const auto started = std::chrono::steady_clock::now();
    auto relay = start_posrelay(
        {"--io-threads", "2", "--redis-connect-timeout", "3s", "--confirm-paid", "false"},
        {{"POSRELAY_SERVER_KEY", std::string(test_server_key)},
         {"POSRELAY_REDIS_URL", cluster.url()},
         {"POSRELAY_OPERATOR_TOKEN", "op-token-123"}});
    auto covered = [&] {
        return metric_value(http_client(relay.port).get("/metrics").body(),
                            "posrelay_redis_cluster_slots_covered");
    };
    ASSERT_TRUE(wait_until([&] { return covered() > 0; }, 5s)) << relay.proc->output();
    const auto r = http_client(relay.port).get("/readyz");
    if (std::chrono::steady_clock::now() - started < 5s) {  // well inside the 6 s grace
        EXPECT_EQ(r.result_int(), 503) << r.body();
    }
    ASSERT_TRUE(wait_until(
        [&] {
            const auto d = http_client(relay.port).get("/readyz");
            return d.result_int() == 200 && d.body().find("degraded") != std::string::npos;
        },
        15s))
        << relay.proc->output();
}

// The live feed on a Cluster: a store's channel lives in its slot, so the node SSUBSCRIBEs on
// a connection to that slot's primary; after the slot moves to another primary, the store is
// subscribed there and its terminal still gets every event.
class RedisClusterLiveFeed : public ::testing::Test {
protected:
    static void SetUpTestSuite() { raise_fd_limit(); }
    void SetUp() override {
        cluster_.start();
        node_ = start_relay_node(
            {"--io-threads", "2", "--terminal-listen", "127.0.0.1:0", "--confirm-paid", "false"},
            relay_env(cluster_.url()));
    }
    // The store's slot and the cluster node (index) owning it.
    std::pair<std::uint16_t, int> slot_of(const std::string& store) {
        const auto slot = key_hash_slot("s:" + store);
        return {slot, cluster_.owner_of(slot)};
    }
    redis_cluster cluster_;
    relay_node node_;
};

TEST_F(RedisClusterLiveFeed, EveryStoreOnEveryPrimaryAndAfterItsSlotMoves) {
    std::vector<std::unique_ptr<terminal_conn>> terms;
    std::set<int> owners;
    for (int i = 0; i < 9; ++i) {
        const std::string st = "S-LF-" + std::to_string(i);
        owners.insert(slot_of(st).second);
        terms.push_back(std::make_unique<terminal_conn>(node_.terminal_port));
        terms.back()->hello("T-" + std::to_string(i), st);
    }
    ASSERT_EQ(owners.size(), 3u) << "the stores should spread over the three primaries";
    auto settle_all = [&](const std::string& tag) {
        for (int i = 0; i < 9; ++i) {
            const std::string o = "LF-" + tag + "-" + std::to_string(i);
            ASSERT_EQ(register_order(node_.p.port, o, "T-" + std::to_string(i),
                                     "S-LF-" + std::to_string(i)),
                      201);
            ASSERT_EQ(notify(node_.p.port, o), 200) << node_.p.proc->output();
        }
        for (int i = 0; i < 9; ++i) {
            auto e = terms[static_cast<std::size_t>(i)]->next_event(std::chrono::seconds(10));
            ASSERT_TRUE(e) << "terminal " << i << " got no event for round " << tag;
            EXPECT_EQ(e->at("order_id").as_string(), "LF-" + tag + "-" + std::to_string(i));
            terms[static_cast<std::size_t>(i)]->ack(
                static_cast<std::uint64_t>(e->at("seq").as_int64()));
        }
    };
    settle_all("a");
    const auto [slot, from] = slot_of("S-LF-0");
    const int to = (from + 1) % 3;
    cluster_.move_slot(slot, static_cast<std::size_t>(from), static_cast<std::size_t>(to));
    settle_all("b");
    // The moved store is subscribed on its new primary (the keepalive follows the slot map).
    auto stores = [&] {
        return metric_value(http_client(node_.p.port).get("/metrics").body(),
                            "posrelay_event_feed_stores");
    };
    EXPECT_TRUE(wait_until([&] { return stores() == 9; }, std::chrono::seconds(5))) << stores();
}

}  // namespace
}  // namespace posrelay::test
