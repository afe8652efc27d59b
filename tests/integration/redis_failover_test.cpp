// Issue 14, items 5 and 6, against real redis-server processes on loopback: a connection
// that gets -READONLY (its server was demoted) reconnects through its discovery, which must
// name a master; the store on redis-sentinel:// follows a graceful switch (+switch-master)
// and a SIGKILLed primary, losing no acknowledged commit; with --redis-min-replicas-ack 1 a
// notification is answered 503 replicas_not_acknowledged while no replica has it, and its
// retry (a duplicate) 200 only once a replica does.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http_client.hpp"
#include "posrelay/io_pool.hpp"
#include "posrelay/metrics/registry.hpp"
#include "posrelay/store/redis_store.hpp"
#include "posrelay/store/sentinel.hpp"
#include "process.hpp"
#include "redis_server.hpp"
#include "sentinel_group.hpp"
#include "terminal_conn.hpp"

namespace posrelay::test {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using midtrans::transaction_status;

// ---- the connection: -READONLY and the discovery's ROLE check -----------------------------

// A discovery the test steers: it names `address` (changed by the test) and counts questions.
class steered_discovery final : public store::redis_discovery {
public:
    asio::awaitable<std::pair<boost::system::error_code, store::redis_address>> resolve() override {
        ++asked;
        std::lock_guard lock(mu);
        co_return std::pair{boost::system::error_code{}, address};
    }
    std::uint64_t watch(std::function<void(const store::redis_address&)>) override { return 1; }
    void unwatch(std::uint64_t) noexcept override {}
    void stop() override {}

    std::mutex mu;
    store::redis_address address;
    std::atomic<int> asked{0};
};

TEST(RedisFailover, ReadonlyReplyReconnectsThroughTheDiscoveryToAMaster) {
    redis_server a;
    redis_server b;
    redis_server_options ao;
    ao.extra_args = {"--repl-diskless-sync-delay", "0"};  // a full sync at once, not after 5 s
    a.start(ao);
    redis_server_options ro;
    ro.extra_args = {"--replicaof", "127.0.0.1", std::to_string(a.port()),
                     "--repl-diskless-sync-delay", "0"};
    b.start(ro);
    auto d = std::make_shared<steered_discovery>();
    d->address = {"127.0.0.1", b.port()};  // a replica first: ROLE must refuse it
    store::redis_options o;
    o.discovery = d;
    o.connect_timeout = 1s;
    o.reconnect_min = 10ms;
    o.reconnect_max = 50ms;
    metrics::registry reg;
    store::redis_metrics m(reg);
    asio::io_context io;
    auto c = std::make_shared<store::redis_connection>(io.get_executor(), o, m);
    c->start();
    auto run_until = [&](auto pred, std::chrono::milliseconds limit) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (!pred() && std::chrono::steady_clock::now() < deadline)
            io.run_for(10ms);
        return pred();
    };
    auto exec = [&](std::vector<std::string> cmd) {
        auto f = asio::co_spawn(io, c->exec(cmd), asio::use_future);
        (void)run_until([&] { return f.wait_for(0s) == std::future_status::ready; }, 5s);
        return f.get();
    };
    // Never connected to the replica, however often asked.
    EXPECT_TRUE(run_until([&] { return d->asked.load() >= 3; }, 5s));
    EXPECT_FALSE(c->connected());
    {
        std::lock_guard lock(d->mu);
        d->address = {"127.0.0.1", a.port()};
    }
    ASSERT_TRUE(run_until([&] { return c->connected(); }, 5s));
    EXPECT_FALSE(exec({"SET", "k", "1"}).first);

    // A failover behind the connection's back: b promoted, a demoted to its replica. The
    // connection still talks to a; its next write gets -READONLY and it moves to b.
    ASSERT_EQ(b.cli({"REPLICAOF", "NO", "ONE"}), "OK");
    ASSERT_EQ(a.cli({"REPLICAOF", "127.0.0.1", std::to_string(b.port())}), "OK");
    {
        std::lock_guard lock(d->mu);
        d->address = {"127.0.0.1", b.port()};
    }
    const int asked_before = d->asked.load();
    auto [ec, r] = exec({"SET", "k", "2"});
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_TRUE(r.is_error() && r.str.starts_with("READONLY")) << r.str;  // the command fails
    ASSERT_TRUE(run_until([&] { return d->asked.load() > asked_before && c->connected(); }, 5s));
    std::tie(ec, r) = exec({"SET", "k", "3"});
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(r.str, "OK");
    EXPECT_EQ(b.cli({"GET", "k"}), "3");
    c->stop();
    io.run_for(1s);
}

// ---- the store on redis-sentinel:// --------------------------------------------------------

class RedisSentinel : public ::testing::Test {
protected:
    void start_store(unsigned replicas_ack, std::chrono::milliseconds timeouts = 1s) {
        store::redis_options ro = store::parse_redis_url(group_.url());
        ro.connect_timeout = timeouts;
        ro.command_timeout = timeouts;
        ro.reconnect_min = 20ms;
        ro.reconnect_max = 200ms;
        discovery_ = store::attach_sentinel(ro, pool_.context(0).get_executor(), registry_);
        ASSERT_TRUE(discovery_);
        store::store_options so;
        so.replica_ack = {replicas_ack, timeouts / 2};
        store_ = std::make_unique<store::redis_store>(pool_, ro, so, registry_);
        discovery_->start(store_->connection_metrics());
        store_->start();
        pool_.start();
        ASSERT_TRUE(wait_until([&] { return store_->ready(); }, 10s));
    }
    void TearDown() override {
        if (store_) store_->stop();
        if (discovery_) discovery_->stop();
        pool_.stop(false);
        pool_.join();
    }
    ingest::commit_result commit(const std::string& order_id, transaction_status s) {
        ingest::status_update u;
        u.set(ingest::field::order_id, order_id);
        u.set(ingest::field::transaction_status, midtrans::to_string(s));
        u.set(ingest::field::gross_amount, "10000.00");
        u.status = s;
        return asio::co_spawn(pool_.context(0), store_->commit(std::move(u)), asio::use_future)
            .get();
    }
    double metric(std::string_view series) { return metric_value(registry_.render(), series); }
    // Every order in `ids` is stored on node(i), pending.
    void expect_stored(std::size_t node, const std::vector<std::string>& ids) {
        for (const auto& id : ids)
            EXPECT_EQ(
                group_.node(node).cli({"HGET", "posrelay:{o:" + id + "}", "transaction_status"}),
                "pending")
                << id << " acknowledged but lost";
    }

    sentinel_group group_;
    metrics::registry registry_;
    io_pool pool_{2};
    std::shared_ptr<store::sentinel_discovery> discovery_;
    std::unique_ptr<store::redis_store> store_;
};

// SENTINEL FAILOVER demotes the master without closing our connections: only +switch-master
// moves them. Once the switch is seen and they reconnected, the first commit succeeds (on
// the old master it would be refused -READONLY) and is acknowledged by the new replica.
TEST_F(RedisSentinel, FollowsAGracefulSwitchAndKeepsEveryAcknowledgedCommit) {
    group_.start(1, 3);
    start_store(1);
    std::vector<std::string> acked;
    for (int i = 0; i < 20; ++i) {
        const std::string id = "G-" + std::to_string(i);
        const auto r = commit(id, transaction_status::pending);
        ASSERT_FALSE(r.ec) << r.ec.message();
        acked.push_back(id);
    }
    const auto old_port = group_.master_port();
    const auto reconnects = metric("posrelay_redis_reconnects_total");
    ASSERT_EQ(group_.sentinel_cli(0, {"SENTINEL", "FAILOVER", sentinel_group::master_name}), "OK");
    const auto new_port = group_.wait_for_new_master(old_port, 20s);
    ASSERT_NE(new_port, 0) << "no failover";
    ASSERT_TRUE(wait_until(
        [&] {
            const auto m = discovery_->last_master();
            return metric("posrelay_redis_sentinel_switches_total") >= 1 && m &&
                   m->port == new_port &&
                   metric("posrelay_redis_reconnects_total") >= reconnects + 2 && store_->ready();
        },
        20s))
        << "the store did not follow +switch-master";
    // The old master is still a master (nothing but +switch-master told us to leave it; the
    // sentinels demote it some 8 s later): demoted now, as they would, so that once it is in
    // sync, WAIT 1 succeeds.
    (void)group_.node(group_.index_of(old_port))
        .cli({"REPLICAOF", "127.0.0.1", std::to_string(new_port)});
    ASSERT_TRUE(group_.wait_replica_up(group_.index_of(old_port), 20s));
    const auto r = commit("G-after", transaction_status::pending);
    EXPECT_FALSE(r.ec) << r.ec.message();
    EXPECT_EQ(r.outcome, ingest::commit_outcome::new_update);
    acked.push_back("G-after");
    expect_stored(group_.index_of(new_port), acked);
}

// The subscriber's sentinel goes silent (SIGSTOP: its socket stays open, as behind a
// partition): the heartbeat notices, the subscriber moves to another sentinel, and a switch
// announced there is followed. Without it the store would keep writing to the old master,
// which the sentinels leave a master for some 8 s after a SENTINEL FAILOVER.
TEST_F(RedisSentinel, ASilentSentinelIsLeftForAnother) {
    group_.start(1, 3);
    start_store(1, 400ms);
    const auto reconnects = metric("posrelay_redis_reconnects_total");
    group_.signal_sentinel(0, SIGSTOP);  // the subscriber's: it starts on the first sentinel
    ASSERT_TRUE(wait_until(
        [&] { return metric("posrelay_redis_reconnects_total") >= reconnects + 1; }, 10s))
        << "the silent sentinel was not noticed";
    const auto old_port = group_.master_port(1);
    ASSERT_EQ(group_.sentinel_cli(1, {"SENTINEL", "FAILOVER", sentinel_group::master_name}), "OK");
    const auto new_port = group_.wait_for_new_master(old_port, 20s, 1);
    ASSERT_NE(new_port, 0) << "no failover";
    ASSERT_TRUE(wait_until(
        [&] {
            const auto m = discovery_->last_master();
            return m && m->port == new_port && store_->ready();
        },
        10s))
        << "the switch was not followed";
    (void)group_.node(group_.index_of(old_port))
        .cli({"REPLICAOF", "127.0.0.1", std::to_string(new_port)});
    ASSERT_TRUE(group_.wait_replica_up(group_.index_of(old_port), 20s));
    ASSERT_TRUE(wait_until([&] { return !commit("S-1", transaction_status::pending).ec; }, 10s));
    EXPECT_EQ(group_.node(group_.index_of(new_port))
                  .cli({"HGET", "posrelay:{o:S-1}", "transaction_status"}),
              "pending");
}

// The primary is SIGKILLed under a steady stream of commits: after the failover commits reach
// the new master again (first refused replicas_not_acknowledged: it has no replica left, then
// acknowledged once the old node is back as its replica); every commit acknowledged before,
// during or after is on the new master.
TEST_F(RedisSentinel, SurvivesAKilledPrimaryWithNothingAcknowledgedLost) {
    group_.start(1, 3);
    start_store(1);
    std::mutex mu;
    std::vector<std::string> acked;
    std::atomic<int> short_of_replicas{0};
    std::atomic<bool> done{false};
    std::thread committer([&] {
        for (int i = 0; !done.load(); ++i) {
            const std::string id = "K-" + std::to_string(i);
            const auto r = commit(id, transaction_status::pending);
            if (r.ec == store::redis_errc::replicas_not_acknowledged) ++short_of_replicas;
            if (r.ec) {
                ::poll(nullptr, 0, 5);  // pacing while Redis is down (commits fail fast)
                continue;
            }
            std::lock_guard lock(mu);
            acked.push_back(id);
        }
    });
    const auto count = [&] {
        std::lock_guard lock(mu);
        return acked.size();
    };
    EXPECT_TRUE(wait_until([&] { return count() >= 20; }, 10s));
    const auto old_port = group_.master_port();
    const auto old_index = group_.index_of(old_port);
    group_.node(old_index).kill();
    const auto new_port = group_.wait_for_new_master(old_port, 20s);
    EXPECT_NE(new_port, 0) << "no failover";
    // The new master takes writes but has no replica: not acknowledged.
    EXPECT_TRUE(wait_until([&] { return short_of_replicas.load() >= 1; }, 20s));
    const auto before_restart = count();
    group_.node(old_index).restart();  // empty, then made a replica of the new master
    (void)group_.node(old_index).cli({"REPLICAOF", "127.0.0.1", std::to_string(new_port)});
    EXPECT_TRUE(group_.wait_replica_up(old_index, 20s));
    EXPECT_TRUE(wait_until([&] { return count() >= before_restart + 10; }, 20s));
    done = true;
    committer.join();
    ASSERT_NE(new_port, 0);
    std::lock_guard lock(mu);
    expect_stored(group_.index_of(new_port), acked);
    EXPECT_GE(metric("posrelay_redis_sentinel_switches_total"), 1);
}

// ---- --redis-min-replicas-ack through posrelay ---------------------------------------------

// Until the primary counts the replica online (its first ACK after the sync), WAIT does not.
bool wait_replica_online(const redis_server& primary, const redis_server& replica) {
    const std::string online = "port=" + std::to_string(replica.port()) + ",state=online";
    return wait_until(
        [&] {
            return primary.cli({"INFO", "replication"}).find(online) != std::string::npos;
        },
        10s);
}

// Reliability finding: a notification was answered 200 as soon as the primary had it; a
// failover before the replica had it lost an update Midtrans would never send again.
TEST(RedisReplicaAck, NotificationIsAnswered503UntilAReplicaHasIt) {
    redis_server primary;
    redis_server replica;
    redis_server_options po;
    po.extra_args = {"--repl-diskless-sync-delay", "0"};  // a full sync at once, not after 5 s
    primary.start(po);
    redis_server_options ro;
    ro.extra_args = {"--replicaof", "127.0.0.1", std::to_string(primary.port())};
    replica.start(ro);
    ASSERT_TRUE(wait_replica_online(primary, replica));
    auto node = start_posrelay(
        {"--io-threads", "1", "--redis-min-replicas-ack", "1", "--redis-replicas-ack-timeout", "1s",
         "--poll-rate", "0", "--confirm-paid=false"},
        relay_env(primary.url()));
    ASSERT_TRUE(wait_ready(node.admin_port));
    auto post = [&](const notification_fields& f) {
        http_client c(node.port);
        return c.post(notifications_path, signed_notification(f, test_server_key));
    };
    notification_fields f;
    f.order_id = "W-1";
    f.transaction_status = "pending";
    f.fraud_status = "";
    f.status_code = "201";
    EXPECT_EQ(post(f).result_int(), 200);

    // The replica leaves: the update reaches the primary only.
    ASSERT_EQ(replica.cli({"REPLICAOF", "NO", "ONE"}), "OK");
    f.transaction_status = "settlement";
    f.status_code = "200";
    auto res = post(f);
    EXPECT_EQ(res.result_int(), 503);
    EXPECT_NE(res.body().find(R"("error":"replicas_not_acknowledged")"), std::string::npos)
        << res.body();
    EXPECT_EQ(primary.cli({"HGET", "posrelay:{o:W-1}", "transaction_status"}), "settlement");
    // Midtrans's retry is a duplicate: still not on a replica, still 503.
    res = post(f);
    EXPECT_EQ(res.result_int(), 503) << res.body();
    // An order registration likewise names why (POST /v1/orders): stored on the primary only.
    auto register_w2 = [&] {
        http_client c(node.admin_port);
        return c.request(boost::beast::http::verb::post, "/v1/orders",
                         R"({"order_id":"W-2","gross_amount":"10000","terminal_id":"T-W",)"
                         R"("store_id":"S-W"})",
                         "application/json",
                         {{"Authorization", "Bearer " + std::string(test_operator_token)}});
    };
    auto reg = register_w2();
    EXPECT_EQ(reg.result_int(), 503) << reg.body();
    EXPECT_NE(reg.body().find(R"("error":"replicas_not_acknowledged")"), std::string::npos)
        << reg.body();

    // The replica is back and in sync: the retry is answered 200, and the replica has it.
    ASSERT_EQ(replica.cli({"REPLICAOF", "127.0.0.1", std::to_string(primary.port())}), "OK");
    ASSERT_TRUE(wait_replica_online(primary, replica));
    res = post(f);
    EXPECT_EQ(res.result_int(), 200) << res.body();
    EXPECT_EQ(replica.cli({"HGET", "posrelay:{o:W-1}", "transaction_status"}), "settlement");
    reg = register_w2();  // the retry: the order exists, and is now on the replica
    EXPECT_EQ(reg.result_int() / 100, 2) << reg.body();
    http_client c(node.admin_port);
    const auto metrics = c.get("/metrics").body();
    EXPECT_EQ(metric_value(
                  metrics,
                  R"(posrelay_notifications_rejected_total{reason="replicas_not_acknowledged"})"),
              2);
    // Both notifications and the registration.
    EXPECT_EQ(metric_value(metrics, "posrelay_redis_replicas_not_acknowledged_total"), 3);
    node.proc->signal(SIGTERM);
    EXPECT_TRUE(node.proc->wait_exit(10s).has_value());
}

// WAIT blocks its connection until answered: concurrent writes on one connection share WAITs
// (each joins the one sent and unanswered, which covers it) instead of queueing one each.
TEST(RedisReplicaAck, ConcurrentWritesShareWaits) {
    redis_server primary;
    redis_server replica;
    redis_server_options po;
    po.extra_args = {"--repl-diskless-sync-delay", "0"};
    primary.start(po);
    redis_server_options ro;
    ro.extra_args = {"--replicaof", "127.0.0.1", std::to_string(primary.port())};
    replica.start(ro);
    ASSERT_TRUE(wait_replica_online(primary, replica));
    metrics::registry reg;
    io_pool pool{1};
    store::store_options so;
    so.replica_ack = {1, 1000ms};
    store::redis_store st(pool, store::parse_redis_url(primary.url()), so, reg);
    st.start();
    pool.start();
    ASSERT_TRUE(wait_until([&] { return st.ready(); }, 10s));
    constexpr int writes = 300;
    std::atomic<int> acked{0};
    std::atomic<int> finished{0};
    for (int i = 0; i < writes; ++i) {
        ingest::status_update u;
        u.set(ingest::field::order_id, "C-" + std::to_string(i));
        u.set(ingest::field::transaction_status, "pending");
        u.status = transaction_status::pending;
        asio::co_spawn(
            pool.context(0),
            [&, u = std::move(u)]() mutable -> asio::awaitable<void> {
                const auto r = co_await st.commit(std::move(u));
                if (!r.ec) ++acked;
                ++finished;
            },
            asio::detached);
    }
    EXPECT_TRUE(wait_until([&] { return finished.load() == writes; }, 20s));
    EXPECT_EQ(acked.load(), writes);
    const auto stats = primary.cli({"INFO", "commandstats"});
    const auto at = stats.find("cmdstat_wait:calls=");
    ASSERT_NE(at, std::string::npos) << stats;
    const long waits = std::atol(stats.c_str() + at + 19);
    EXPECT_GE(waits, 1);
    EXPECT_LT(waits, writes / 2) << "WAITs were not shared";
    EXPECT_EQ(replica.cli({"DBSIZE"}), primary.cli({"DBSIZE"}));  // acknowledged: replicated
    st.stop();
    pool.stop(false);
    pool.join();
}

}  // namespace
}  // namespace posrelay::test
