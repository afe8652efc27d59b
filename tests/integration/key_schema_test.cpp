// Key schema version 4 (proto-docs/redis-keys.md) against a real redis-server: every key a
// store's script call touches is in the store's slot, a notification before its order's
// registration loses no status whichever node registers and commits in whichever order, and
// the records of version 3 (P{o:ID} holding the route) are read and moved on their next write.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include <future>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "posrelay/http/operator_routes.hpp"
#include "posrelay/io_pool.hpp"
#include "posrelay/store/keys.hpp"
#include "posrelay/store/redis_store.hpp"
#include "process.hpp"
#include "redis_server.hpp"

namespace posrelay::test {
namespace {

using midtrans::transaction_status;
namespace asio = boost::asio;

// One posrelay node's store: its own io thread, connection and route cache.
struct node {
    node(const redis_server& r, metrics::registry& reg,
         std::function<void(std::string_view)> hook = {}) {
        store::redis_options ro;
        ro.unix_path = r.unix_path();
        store::store_options so;
        so.step_hook = std::move(hook);
        store = std::make_unique<store::redis_store>(pool, ro, so, reg);
        store->start();
        pool.start();
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!store->ready() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::yield();
    }
    ~node() {
        store->stop();
        pool.stop(false);
        pool.join();
    }
    template <typename T>
    T run(asio::awaitable<T> a) {
        return asio::co_spawn(pool.context(0), std::move(a), asio::use_future).get();
    }
    ingest::commit_result commit(const std::string& order, transaction_status s) {
        ingest::status_update u;
        u.set(ingest::field::order_id, order);
        u.set(ingest::field::transaction_status, midtrans::to_string(s));
        u.set(ingest::field::gross_amount, "10000.00");
        u.status = s;
        return run(store->commit(std::move(u)));
    }
    store::register_result register_order(const std::string& order, const std::string& terminal,
                                          const std::string& store_id) {
        return run(store->register_order({order, "10000", terminal, store_id, 0}));
    }
    io_pool pool{1};
    std::unique_ptr<store::redis_store> store;
};

class KeySchema : public ::testing::Test {
protected:
    void SetUp() override {
        redis_.start();
        // Each node's steps of the move call the test's hook for it, when one is set.
        a_ = std::make_unique<node>(redis_, reg_a_, [this](std::string_view step) {
            if (hook_a_) hook_a_(step);
        });
        b_ = std::make_unique<node>(redis_, reg_b_, [this](std::string_view step) {
            if (hook_b_) hook_b_(step);
        });
        ASSERT_TRUE(a_->store->ready() && b_->store->ready());
    }
    void TearDown() override {
        a_.reset();
        b_.reset();
    }
    std::string cli(std::vector<std::string> args) { return redis_.cli(std::move(args)); }
    // The events in a terminal's stream naming `status`.
    std::size_t events_with(const std::string& stream, const std::string& order,
                            const std::string& status) {
        std::istringstream lines(cli({"XRANGE", stream, "-", "+"}));
        std::size_t n = 0;
        const std::string a = R"("order_id":")" + order + '"';
        const std::string b = R"("transaction_status":")" + status + '"';
        for (std::string line; std::getline(lines, line);) {
            if (line.find(a) != std::string::npos && line.find(b) != std::string::npos) ++n;
        }
        return n;
    }

    // Node B commits `status` of `order` while node A registers it to (T-MV, S-MV), A's steps
    // run inside B's step `at`: every interleaving of the two can be forced. Then the status
    // must be in the store's record, the terminal must have got it exactly once, and no record
    // may be left in the order's own slot.
    void expect_nothing_lost(const std::string& order, transaction_status status) {
        const std::string rec = "posrelay:{s:S-MV}:o:" + order;
        EXPECT_EQ(cli({"HGET", rec, "transaction_status"}), midtrans::to_string(status));
        EXPECT_EQ(cli({"HGET", rec, "terminal_id"}), "T-MV");
        EXPECT_EQ(events_with("posrelay:{s:S-MV}:t:T-MV:events", order,
                              std::string(midtrans::to_string(status))),
                  1u);
        EXPECT_EQ(cli({"EXISTS", "posrelay:{o:" + order + "}"}), "0");
    }
    void register_inside(const std::string& order, std::string at) {
        hook_b_ = [this, order, at, armed = true](std::string_view step) mutable {
            if (!armed || step != at) return;
            armed = false;
            EXPECT_EQ(a_->register_order(order, "T-MV", "S-MV").outcome,
                      store::register_outcome::created);
        };
    }

    std::function<void(std::string_view)> hook_a_, hook_b_;
    redis_server redis_;
    metrics::registry reg_a_, reg_b_;
    std::unique_ptr<node> a_, b_;
};

// Every key argument of every command the order script ran (MONITOR's "lua" lines) while a
// store's orders were reserved, registered, committed, confirmed and alerted and its terminals
// opened and rotated: each carries the store's hash tag, hence hashes to its slot (Redis
// Cluster hashes only the tag: equal tags, equal slots). The fleet's poll schedule
// (P{poll}:*, written by the same calls) is the documented exception.
TEST_F(KeySchema, EveryKeyAStoresScriptCallTouchesIsInTheStoresSlot) {
    child_process monitor("/usr/bin/redis-cli", {"-s", redis_.unix_path(), "MONITOR"});
    monitor.wait_for_line("OK");
    ASSERT_EQ(a_->register_order("SL-1", "T-1", "S-SLOT").outcome,
              store::register_outcome::created);
    (void)a_->run(a_->store->open_terminal("S-SLOT", "T-2", true));
    EXPECT_EQ(a_->commit("SL-1", transaction_status::pending).outcome,
              ingest::commit_outcome::new_update);
    EXPECT_EQ(b_->commit("SL-1", transaction_status::settlement).outcome,
              ingest::commit_outcome::new_update);
    const auto reserved =
        a_->run(a_->store->reserve_charge({"SL-2", "500", "T-1", "S-SLOT", 0, "default"}));
    EXPECT_EQ(reserved.outcome, store::reserve_outcome::created);
    EXPECT_FALSE(a_->run(a_->store->alert_unknown("SL-2")));
    const auto pos = a_->run(a_->store->open_terminal("S-SLOT", "T-1", false));
    (void)a_->run(a_->store->rotate_epoch("S-SLOT", "T-1", pos.second.epoch, ""));
    (void)cli({"ECHO", "end-of-test"});
    monitor.wait_for_line("end-of-test");

    std::size_t checked = 0;
    std::set<std::string> commands;
    const std::regex quoted(R"re("((?:[^"\\]|\\.)*)")re");
    std::istringstream lines(monitor.output());
    for (std::string line; std::getline(lines, line);) {
        if (line.find(" lua] ") == std::string::npos) continue;
        std::vector<std::string> args;
        for (std::sregex_iterator it(line.begin(), line.end(), quoted), end; it != end; ++it)
            args.push_back((*it)[1]);
        if (args.size() < 2 || args[0] == "TIME") continue;
        commands.insert(args[0]);
        const std::string_view tag = store::keys::hash_tag(args[1]);
        if (tag == "poll") continue;  // the poll schedule: not the store's (documented)
        EXPECT_EQ(tag, "s:S-SLOT") << line;
        ++checked;
    }
    EXPECT_GT(checked, 20u);
    for (const char* c : {"HSET", "XADD", "SPUBLISH", "ZADD", "HMGET", "EXPIRE"})
        EXPECT_TRUE(commands.contains(c)) << c << " not seen";
}

// A notification before the registration: committed in the order's own slot, then moved into
// the store's with the registration; the terminal gets the status, nothing is kept twice.
TEST_F(KeySchema, NotificationBeforeRegistrationLosesNoStatus) {
    EXPECT_EQ(a_->commit("NB-1", transaction_status::pending).outcome,
              ingest::commit_outcome::new_update);
    EXPECT_EQ(cli({"HGET", "posrelay:{o:NB-1}", "transaction_status"}), "pending");
    EXPECT_EQ(b_->commit("NB-1", transaction_status::settlement).outcome,
              ingest::commit_outcome::new_update);
    ASSERT_EQ(b_->register_order("NB-1", "T-NB", "S-NB").outcome, store::register_outcome::created);
    EXPECT_EQ(cli({"GET", "posrelay:{o:NB-1}:route"}), "S-NB");
    EXPECT_EQ(cli({"EXISTS", "posrelay:{o:NB-1}"}), "0");
    const std::string rec = "posrelay:{s:S-NB}:o:NB-1";
    EXPECT_EQ(cli({"HGET", rec, "transaction_status"}), "settlement");
    EXPECT_EQ(cli({"HGET", rec, "terminal_id"}), "T-NB");
    EXPECT_EQ(cli({"HGET", rec, "changes"}), "2");
    EXPECT_NE(cli({"HGET", rec, "h:1"}).find("|pending|"), std::string::npos);
    EXPECT_EQ(events_with("posrelay:{s:S-NB}:t:T-NB:events", "NB-1", "settlement"), 1u);
    // The retries of both notifications are duplicates, on either node (one reads the route
    // from Redis, the other from its cache).
    EXPECT_EQ(a_->commit("NB-1", transaction_status::pending).outcome,
              ingest::commit_outcome::duplicate);
    EXPECT_EQ(b_->commit("NB-1", transaction_status::settlement).outcome,
              ingest::commit_outcome::duplicate);
    EXPECT_EQ(cli({"EXISTS", "posrelay:{o:NB-1}"}), "0");
    // Read back through the store: the record and its history.
    const auto record = a_->run(a_->store->read_order_record("NB-1"));
    ASSERT_TRUE(record.second.has_value());
    const std::string json = posrelay::http::order_json("NB-1", *record.second);
    EXPECT_NE(json.find(R"("terminal_id":"T-NB")"), std::string::npos) << json;
}

// A registration interrupted after it wrote the route (its node died before moving the
// record): commits go to the store's slot meanwhile; the registration's retry moves the older
// record in, merging the histories, and the terminal gets the newest status once.
TEST_F(KeySchema, RegistrationInterruptedAfterTheRouteIsCompletedByItsRetry) {
    EXPECT_EQ(a_->commit("RI-1", transaction_status::pending).outcome,
              ingest::commit_outcome::new_update);
    ASSERT_EQ(cli({"SET", "posrelay:{o:RI-1}:route", "S-RI"}), "OK");  // the route, no more
    EXPECT_EQ(b_->commit("RI-1", transaction_status::settlement).outcome,
              ingest::commit_outcome::new_update);
    const std::string rec = "posrelay:{s:S-RI}:o:RI-1";
    EXPECT_EQ(cli({"HGET", rec, "transaction_status"}), "settlement");
    // The record is read where it is: the newest status.
    auto fields = a_->run(a_->store->read_order("RI-1"));
    ASSERT_TRUE(fields.second.has_value());
    EXPECT_EQ(store::field_of(*fields.second, "transaction_status"), "settlement");
    for (int i = 0; i < 2; ++i) {  // the retry, and one more: nothing changes
        const auto r = a_->register_order("RI-1", "T-RI", "S-RI");
        EXPECT_EQ(r.outcome,
                  i == 0 ? store::register_outcome::created : store::register_outcome::exists);
        EXPECT_EQ(cli({"EXISTS", "posrelay:{o:RI-1}"}), "0");
        EXPECT_EQ(cli({"HGET", rec, "transaction_status"}), "settlement");
        EXPECT_EQ(cli({"HGET", rec, "changes"}), "2");
        EXPECT_NE(cli({"HGET", rec, "h:1"}).find("|pending|"), std::string::npos);
        EXPECT_NE(cli({"HGET", rec, "h:2"}).find("|settlement|"), std::string::npos);
        EXPECT_EQ(cli({"HEXISTS", rec, "seen:pending|"}), "1");
        EXPECT_EQ(events_with("posrelay:{s:S-RI}:t:T-RI:events", "RI-1", "settlement"), 1u);
    }
}

// The interleavings of a commit on node B (no route found, written to the order's own slot,
// the route read again) with a registration on node A (route written, the old record read,
// moved, deleted), forced with the store's step hook.
//
// A registers after B wrote: A's move carries B's status; B finds the route and applies its
// update again (a duplicate).
TEST_F(KeySchema, CommitBeforeTheMoveIsMovedWithTheRecord) {
    register_inside("IL-1", "unrouted_written");
    EXPECT_EQ(b_->commit("IL-1", transaction_status::settlement).outcome,
              ingest::commit_outcome::new_update);
    expect_nothing_lost("IL-1", transaction_status::settlement);
}

// A registers (and moves the old record) after B found no route, before B writes: B's record
// is written after the move; B finds the route, moves it and applies its update there.
TEST_F(KeySchema, CommitAfterTheMoveIsAppliedAgainInTheStoresSlot) {
    EXPECT_EQ(a_->commit("IL-2", transaction_status::pending).outcome,
              ingest::commit_outcome::new_update);
    register_inside("IL-2", "route_missing");
    EXPECT_EQ(b_->commit("IL-2", transaction_status::settlement).outcome,
              ingest::commit_outcome::new_update);
    expect_nothing_lost("IL-2", transaction_status::settlement);
}

// B writes between A's read of the old record and its delete: A moves the record without B's
// status and deletes B's write with it; B finds the route and applies its update there.
TEST_F(KeySchema, CommitBetweenTheMovesReadAndDeleteIsAppliedAgain) {
    EXPECT_EQ(a_->commit("IL-3", transaction_status::pending).outcome,
              ingest::commit_outcome::new_update);
    std::promise<void> a_read, a_go;
    auto a_read_f = a_read.get_future();
    auto a_go_f = a_go.get_future().share();
    hook_a_ = [&, armed = true](std::string_view step) mutable {
        if (!armed || step != "adopt_read") return;
        armed = false;
        a_read.set_value();
        a_go_f.wait();  // until B has written
    };
    std::future<store::register_result> registered;
    hook_b_ = [&, armed = 2](std::string_view step) mutable {
        if (armed == 2 && step == "route_missing") {
            armed = 1;
            registered = asio::co_spawn(
                a_->pool.context(0),
                a_->store->register_order({"IL-3", "10000", "T-MV", "S-MV", 0}), asio::use_future);
            a_read_f.wait();  // A wrote the route and read the old record
        } else if (armed == 1 && step == "unrouted_written") {
            armed = 0;
            a_go.set_value();
            EXPECT_EQ(registered.get().outcome, store::register_outcome::created);
        }
    };
    EXPECT_EQ(b_->commit("IL-3", transaction_status::settlement).outcome,
              ingest::commit_outcome::new_update);
    expect_nothing_lost("IL-3", transaction_status::settlement);
    EXPECT_NE(cli({"HGET", "posrelay:{s:S-MV}:o:IL-3", "h:1"}).find("|pending|"),
              std::string::npos);
}

// Registration and notification of the same orders at once, on two nodes: whatever the
// interleaving (the commit before the route, between the route and the move, after the
// move), every order ends in its store's slot with its status, its terminal got it exactly
// once, and no record is left in the orders' own slots.
TEST_F(KeySchema, ConcurrentRegistrationAndCommitLoseNothing) {
    constexpr int orders = 200;
    std::thread registrar([&] {
        for (int i = 0; i < orders; ++i)
            EXPECT_EQ(a_->register_order("CC-" + std::to_string(i), "T-CC", "S-CC").outcome,
                      store::register_outcome::created);
    });
    for (int i = 0; i < orders; ++i) {
        EXPECT_EQ(b_->commit("CC-" + std::to_string(i), transaction_status::settlement).outcome,
                  ingest::commit_outcome::new_update);
    }
    registrar.join();
    std::size_t lost = 0, twice = 0, left = 0;
    for (int i = 0; i < orders; ++i) {
        const std::string id = "CC-" + std::to_string(i);
        if (cli({"HGET", "posrelay:{s:S-CC}:o:" + id, "transaction_status"}) != "settlement")
            ++lost;
        const auto n = events_with("posrelay:{s:S-CC}:t:T-CC:events", id, "settlement");
        if (n == 0) ++lost;
        if (n > 1) ++twice;
        if (cli({"EXISTS", "posrelay:{o:" + id + "}"}) != "0") ++left;
    }
    EXPECT_EQ(lost, 0u);
    EXPECT_EQ(twice, 0u);
    EXPECT_EQ(left, 0u);
}

// Upgrade from key schema version 3: a Redis filled as the previous version wrote it (the
// record of a routed order at P{o:ID}, with terminal_id and store_id). Read as it is; its next
// write (a notification, a registration, a charge) moves it to its store's slot first.
TEST_F(KeySchema, Version3RecordsAreReadAndMovedOnTheirNextWrite) {
    const auto v3 = [&](const std::string& id, const std::string& status) {
        ASSERT_EQ(cli({"HSET",
                       "posrelay:{o:" + id + "}",
                       "order_id",
                       id,
                       "terminal_id",
                       "T-V3",
                       "store_id",
                       "S-V3",
                       "gross_amount",
                       "10000",
                       "created_ms",
                       "1733450000000",
                       "registered_ms",
                       "1733450000000",
                       "expiry_ms",
                       "0",
                       "transaction_status",
                       status,
                       "fraud_status",
                       "",
                       "changes",
                       "1",
                       "seen:" + status + "|",
                       "1733450000001",
                       "h:1",
                       "1733450000001|notification|" + status + "||201"}),
                  "12");
        ASSERT_EQ(cli({"EXPIRE", "posrelay:{o:" + id + "}", "3600"}), "1");
    };
    v3("V3-1", "pending");
    v3("V3-2", "pending");
    v3("V3-3", "pending");
    // Read as it is (GET /v1/orders, the poller).
    auto f = a_->run(a_->store->read_order("V3-1"));
    ASSERT_TRUE(f.second.has_value());
    EXPECT_EQ(store::field_of(*f.second, "terminal_id"), "T-V3");
    // A notification: moved, then committed; the terminal gets it.
    EXPECT_EQ(a_->commit("V3-1", transaction_status::settlement).outcome,
              ingest::commit_outcome::new_update);
    const std::string rec = "posrelay:{s:S-V3}:o:V3-1";
    EXPECT_EQ(cli({"EXISTS", "posrelay:{o:V3-1}"}), "0");
    EXPECT_EQ(cli({"GET", "posrelay:{o:V3-1}:route"}), "S-V3");
    EXPECT_EQ(cli({"HGET", rec, "transaction_status"}), "settlement");
    EXPECT_EQ(cli({"HGET", rec, "changes"}), "2");
    EXPECT_EQ(events_with("posrelay:{s:S-V3}:t:T-V3:events", "V3-1", "settlement"), 1u);
    EXPECT_EQ(b_->commit("V3-1", transaction_status::pending).outcome,
              ingest::commit_outcome::duplicate);
    // A repeated registration: moved, and it is the same route.
    EXPECT_EQ(b_->register_order("V3-2", "T-V3", "S-V3").outcome, store::register_outcome::exists);
    EXPECT_EQ(cli({"HGET", "posrelay:{s:S-V3}:o:V3-2", "transaction_status"}), "pending");
    // A registration elsewhere is the conflict it was (the record stays in its own store).
    const auto other = b_->register_order("V3-3", "T-X", "S-X");
    EXPECT_EQ(other.outcome, store::register_outcome::conflict);
    EXPECT_EQ(other.detail, "T-V3/S-V3");
    EXPECT_EQ(cli({"GET", "posrelay:{o:V3-3}:route"}), "S-V3");
    // The poller gives up on one: moved, and its terminal is told.
    v3("V3-4", "pending");
    EXPECT_FALSE(a_->run(a_->store->alert_unknown("V3-4")));
    EXPECT_EQ(cli({"HGET", "posrelay:{s:S-V3}:o:V3-4", "state"}), "unknown");
    const auto events = cli({"XRANGE", "posrelay:{s:S-V3}:t:T-V3:events", "-", "+"});
    EXPECT_NE(events.find(R"("status_unknown":true)"), std::string::npos) << events;
    // A charge of a known order_id is refused, as before.
    const auto taken =
        a_->run(a_->store->reserve_charge({"V3-3", "10000", "T-X", "S-X", 0, "default"}));
    EXPECT_EQ(taken.outcome, store::reserve_outcome::taken);
    EXPECT_EQ(cli({"KEYS", "posrelay:{o:V3-*}"}), "");  // every version 3 record moved
}

// A server that answers every command with INFO text naming Redis 6.2.6: a node refuses it at
// connect (no sharded pub/sub before 7.0), with an error naming the version, and never uses it.
TEST(RedisVersionCheck, RedisBelow7IsRefusedAtConnect) {
    asio::io_context server_io;
    asio::ip::tcp::acceptor acceptor(server_io, {asio::ip::make_address("127.0.0.1"), 0});
    const std::string info = "# Server\r\nredis_version:6.2.6\r\n";
    const std::string reply = "$" + std::to_string(info.size()) + "\r\n" + info + "\r\n";
    asio::co_spawn(
        server_io,
        [&]() -> asio::awaitable<void> {
            for (;;) {
                auto sock = co_await acceptor.async_accept(asio::use_awaitable);
                char buf[512];
                boost::system::error_code ec;
                while (!ec) {
                    (void)co_await sock.async_read_some(
                        asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
                    if (!ec)
                        co_await asio::async_write(sock, asio::buffer(reply),
                                                   asio::redirect_error(asio::use_awaitable, ec));
                }
            }
        },
        asio::detached);
    std::thread server([&] { server_io.run(); });

    asio::io_context io;
    metrics::registry reg;
    store::redis_metrics m(reg);
    store::redis_options o;
    o.port = acceptor.local_endpoint().port();
    auto c = std::make_shared<store::redis_connection>(io.get_executor(), o, m);
    std::promise<std::string> refused;
    bool once = false;
    store::redis_connection* raw = c.get();
    c->start([&, raw]() -> asio::awaitable<void> {
        try {
            co_await store::require_redis_7(*raw);
        } catch (const std::exception& e) {
            if (!std::exchange(once, true)) refused.set_value(e.what());
            throw;
        }
    });
    auto f = refused.get_future();
    std::thread client([&] { io.run_for(std::chrono::seconds(10)); });
    ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    const std::string why = f.get();
    EXPECT_NE(why.find("Redis 6.2.6 is too old"), std::string::npos) << why;
    EXPECT_NE(why.find("7.0"), std::string::npos) << why;
    EXPECT_FALSE(c->connected());
    c->stop();
    io.stop();
    client.join();
    server_io.stop();
    server.join();
}

}  // namespace
}  // namespace posrelay::test
