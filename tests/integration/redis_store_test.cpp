// The Redis store against a real redis-server: commit outcomes, the Lua transition table
// against the C++ one, concurrency, Redis crashes and script flushes under load, the
// operator API, and the embedded redis-server mode.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "http_client.hpp"
#include "posrelay/http/operator_routes.hpp"
#include "posrelay/ingest/notification_rules.hpp"
#include "posrelay/io_pool.hpp"
#include "posrelay/midtrans/confirmation.hpp"
#include "posrelay/poll/poll_script.hpp"
#include "posrelay/store/keys.hpp"
#include "posrelay/store/lua_script.hpp"
#include "posrelay/store/order_script.hpp"
#include "posrelay/store/redis_store.hpp"
#include "process.hpp"
#include "redis_server.hpp"

namespace posrelay::test {
namespace {

namespace http = boost::beast::http;
using midtrans::transaction_status;

// ---- the store in-process ----------------------------------------------------------------

class RedisStore : public ::testing::Test {
protected:
    void SetUp() override {
        redis_.start();
        store::redis_options ro;
        ro.unix_path = redis_.unix_path();
        store_ = std::make_unique<store::redis_store>(pool_, ro, store_options_, registry_);
        store_->start();
        pool_.start();
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!store_->ready() && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::yield();
        }
        ASSERT_TRUE(store_->ready());
    }
    void TearDown() override {
        store_->stop();
        pool_.stop(false);
        pool_.join();
    }

    ingest::commit_result commit(std::string order_id, transaction_status s,
                                 std::optional<midtrans::fraud_status> f = std::nullopt) {
        ingest::status_update u;
        u.set(ingest::field::order_id, order_id);
        u.set(ingest::field::transaction_status, midtrans::to_string(s));
        u.set(ingest::field::gross_amount, "10000.00");
        u.status = s;
        u.fraud = f;
        return boost::asio::co_spawn(pool_.context(0), store_->commit(std::move(u)),
                                     boost::asio::use_future)
            .get();
    }

    store::register_result register_order(store::order_registration r) {
        return boost::asio::co_spawn(pool_.context(0), store_->register_order(std::move(r)),
                                     boost::asio::use_future)
            .get();
    }

    std::string order_json(std::string order_id) {
        auto [ec, record] =
            boost::asio::co_spawn(pool_.context(0), store_->read_order_record(order_id),
                                  boost::asio::use_future)
                .get();
        EXPECT_FALSE(ec) << ec.message();
        return record ? posrelay::http::order_json(order_id, *record) : "(not found)";
    }

    store::store_options store_options_;
    redis_server redis_;
    metrics::registry registry_;
    io_pool pool_{1};
    std::unique_ptr<store::redis_store> store_;
};

TEST_F(RedisStore, EveryCommitOutcome) {
    using ingest::commit_outcome;
    EXPECT_EQ(commit("O1", transaction_status::pending).outcome, commit_outcome::new_update);
    EXPECT_EQ(commit("O1", transaction_status::pending).outcome, commit_outcome::duplicate);
    EXPECT_EQ(commit("O1", transaction_status::settlement).outcome, commit_outcome::new_update);
    EXPECT_EQ(commit("O1", transaction_status::expire).outcome, commit_outcome::stale);
    EXPECT_EQ(redis_.cli({"HGET", "posrelay:{o:O1}", "transaction_status"}), "settlement");
    EXPECT_EQ(redis_.cli({"HGET", "posrelay:{o:O1}", "changes"}), "2");
    // The dedup marks live on the record, whose key has a retention (the longer of the two).
    EXPECT_EQ(redis_.cli({"HEXISTS", "posrelay:{o:O1}", "seen:pending|"}), "1");
    const auto ttl = std::stoll(redis_.cli({"TTL", "posrelay:{o:O1}"}));
    EXPECT_GT(ttl, store::store_options{}.dedup_ttl.count() - 60);
    EXPECT_LE(ttl, store::store_options{}.order_ttl.count());
}

// lua_script's SHA1 is the name Redis gives the script, for both scripts compiled in.
TEST_F(RedisStore, ScriptShaIsWhatScriptLoadAnswers) {
    metrics::registry reg;
    const store::lua_script order("order", store::detail::order_script, reg);
    const store::lua_script poll("poll", poll::detail::poll_script, reg);
    EXPECT_EQ(redis_.cli({"SCRIPT", "LOAD", std::string(order.body())}), order.sha());
    EXPECT_EQ(redis_.cli({"SCRIPT", "LOAD", std::string(poll.body())}), poll.sha());
    EXPECT_EQ(order.sha().size(), 40u);
    // Both take the same ARGV header (prefix, now_ms) and then the mode, ARGV[3].
    for (const auto* sha : {&order.sha(), &poll.sha()}) {
        const auto r = redis_.cli({"EVALSHA", *sha, "0", "posrelay:", "1", "no-such-mode"});
        EXPECT_NE(r.find("unknown mode no-such-mode"), std::string::npos) << r;
    }
}

// A script added once the connections run would not be loaded on them: refused.
TEST_F(RedisStore, AddScriptAfterStartIsRefused) {
    metrics::registry reg;
    auto late = std::make_shared<const store::lua_script>("late", "return 1", reg);
    EXPECT_THROW(store_->add_script(late), std::logic_error);
}

// After SCRIPT FLUSH the next commit still succeeds: one EVAL of the body, then EVALSHA.
TEST_F(RedisStore, ACommitAfterScriptFlushReloadsTheScriptOnce) {
    using ingest::commit_outcome;
    ASSERT_EQ(commit("SF1", transaction_status::pending).outcome, commit_outcome::new_update);
    const auto loads = [&] {
        return metric_value(registry_.render(),
                            R"(posrelay_redis_script_loads_total{script="order"})");
    };
    EXPECT_EQ(loads(), 0);
    ASSERT_EQ(redis_.cli({"SCRIPT", "FLUSH"}), "OK");
    EXPECT_EQ(commit("SF1", transaction_status::settlement).outcome, commit_outcome::new_update);
    EXPECT_EQ(loads(), 1);
    EXPECT_EQ(commit("SF2", transaction_status::pending).outcome, commit_outcome::new_update);
    EXPECT_EQ(loads(), 1);
    EXPECT_EQ(redis_.cli({"HGET", "posrelay:{o:SF1}", "transaction_status"}), "settlement");
}

// A short history: the oldest change is dropped; the rest read back in order.
class RedisStoreShortHistory : public RedisStore {
protected:
    void SetUp() override {
        store_options_.history_max = 2;
        RedisStore::SetUp();
    }
};

TEST_F(RedisStoreShortHistory, KeepsTheLastChangesInOrder) {
    ASSERT_EQ(commit("H1", transaction_status::pending).outcome,
              ingest::commit_outcome::new_update);
    ASSERT_EQ(commit("H1", transaction_status::settlement).outcome,
              ingest::commit_outcome::new_update);
    ASSERT_EQ(commit("H1", transaction_status::refund).outcome, ingest::commit_outcome::new_update);
    EXPECT_EQ(redis_.cli({"HEXISTS", "posrelay:{o:H1}", "h:1"}), "0");
    const std::string json = order_json("H1");
    const auto history = json.find(R"("history":[{"at_ms":)");
    ASSERT_NE(history, std::string::npos) << json;
    const auto settlement = json.find(R"("transaction_status":"settlement")", history);
    const auto refund = json.find(R"("transaction_status":"refund")", history);
    EXPECT_NE(settlement, std::string::npos) << json;
    EXPECT_NE(refund, std::string::npos) << json;
    EXPECT_LT(settlement, refund) << json;
    EXPECT_EQ(json.find(R"("transaction_status":"pending")"), std::string::npos) << json;
    EXPECT_EQ(json.find("seen:"), std::string::npos) << json;  // dedup marks are not shown
    // A pending sent again after the settlement is still a duplicate: its mark outlives the
    // history entry.
    EXPECT_EQ(commit("H1", transaction_status::pending).outcome, ingest::commit_outcome::duplicate);
}

TEST_F(RedisStore, LuaTransitionTableAgreesWithCppOnEveryPair) {
    using midtrans::classify;
    using midtrans::transition;
    int n = 0;
    for (auto a : midtrans::all_transaction_statuses()) {
        for (auto b : midtrans::all_transaction_statuses()) {
            const std::string id = "PAIR-" + std::to_string(n++);
            ASSERT_EQ(commit(id, a).outcome, ingest::commit_outcome::new_update);
            const auto got = commit(id, b).outcome;
            const auto want = classify(midtrans::order_state{a, std::nullopt}, {b, std::nullopt});
            const auto expected = want == transition::forward ? ingest::commit_outcome::new_update
                                  : want == transition::duplicate
                                      ? ingest::commit_outcome::duplicate
                                      : ingest::commit_outcome::stale;
            EXPECT_EQ(got, expected) << midtrans::to_string(a) << " -> " << midtrans::to_string(b);
        }
    }
    // A fraud challenge resolved on the same status is a forward move in both.
    ASSERT_EQ(commit("CH", transaction_status::capture, midtrans::fraud_status::challenge).outcome,
              ingest::commit_outcome::new_update);
    EXPECT_EQ(commit("CH", transaction_status::capture, midtrans::fraud_status::accept).outcome,
              ingest::commit_outcome::new_update);
}

// A store that confirms paid (--confirm-paid): notifications that would change whether an
// order is paid become claims.
class RedisStoreConfirming : public RedisStore {
protected:
    void SetUp() override {
        store_options_.confirm_lease = std::chrono::seconds(30);
        store_options_.node = "test-node";
        RedisStore::SetUp();
    }
    ingest::commit_result commit_from(ingest::update_source src, std::string order_id,
                                      midtrans::order_state s) {
        ingest::status_update u;
        u.set(ingest::field::order_id, order_id);
        u.set(ingest::field::transaction_status, midtrans::to_string(s.status));
        u.set(ingest::field::gross_amount, "10000.00");
        u.status = s.status;
        u.fraud = s.fraud;
        u.source = src;
        return boost::asio::co_spawn(pool_.context(0), store_->commit(std::move(u)),
                                     boost::asio::use_future)
            .get();
    }
};

TEST_F(RedisStoreConfirming, LuaClaimRuleAgreesWithCppOnEveryPair) {
    std::vector<midtrans::order_state> states;
    for (auto s : midtrans::all_transaction_statuses()) {
        states.push_back({s, std::nullopt});
        for (auto f : midtrans::all_fraud_statuses())
            states.push_back({s, f});
    }
    int n = 0, claims = 0;
    for (const auto& a : states) {
        for (const auto& b : states) {
            const std::string id = "CL-" + std::to_string(n++);
            // The stored status comes from a poll (never a claim), the update is a notification.
            ASSERT_EQ(commit_from(ingest::update_source::poll, id, a).outcome,
                      ingest::commit_outcome::new_update);
            const auto got = commit_from(ingest::update_source::notification, id, b).outcome;
            const bool same_mark = a == b;  // the dedup mark answers first
            const bool claim = !same_mark && midtrans::needs_confirmation(a, b);
            EXPECT_EQ(got == ingest::commit_outcome::confirming, claim)
                << midtrans::to_string(a.status) << "/" << (a.fraud ? to_string(*a.fraud) : "")
                << " -> " << midtrans::to_string(b.status) << "/"
                << (b.fraud ? to_string(*b.fraud) : "");
            claims += claim ? 1 : 0;
        }
    }
    // Every claim is in the fleet's confirmation set; a claim changed no order's status.
    // (A set of 16 buckets, each in its own slot; the single set of key schema v2 is unused.)
    long long in_set = 0;
    for (unsigned b = 0; b < store::keys::poll_buckets; ++b)
        in_set += std::stoll(redis_.cli({"ZCARD", store::keys::poll_confirm("posrelay:", b)}));
    EXPECT_EQ(in_set, claims);
    EXPECT_EQ(redis_.cli({"ZCARD", "posrelay:{poll}:confirm"}), "0");
    EXPECT_EQ(redis_.cli({"HGET", "posrelay:{o:CL-12}", "transaction_status"}),
              "pending");  // pending, then a settlement claim
    // The first status of an order that would make it paid is a claim too; a poll never is.
    EXPECT_EQ(commit_from(ingest::update_source::notification, "CL-FIRST",
                          {transaction_status::settlement, std::nullopt})
                  .outcome,
              ingest::commit_outcome::confirming);
    EXPECT_EQ(commit_from(ingest::update_source::poll, "CL-POLL",
                          {transaction_status::settlement, std::nullopt})
                  .outcome,
              ingest::commit_outcome::new_update);
}

// The script's check_binding against ingest::check_binding on every combination of a
// stored and an incoming signer, amount and transaction ("" = absent).
TEST_F(RedisStore, LuaBindingAgreesWithCppOnEveryCombination) {
    std::vector<ingest::order_binding> stored_all, update_all;
    for (std::string_view s : {"", "default", "m:M-2"}) {
        for (std::string_view t : {"", "T1", "T2"}) {
            for (std::string_view a : {"", "500000", "1000.00"})
                stored_all.push_back({s, a, t});
            for (std::string_view a : {"", "500000.00", "1000.00"})
                update_all.push_back({s, a, t});
        }
    }
    // The stored records, written in one call.
    std::vector<std::string> setup = {
        "EVAL",
        "for i = 1, #ARGV, 4 do local k = 'posrelay:{o:' .. ARGV[i] .. '}' "
        "redis.call('HSET', k, 'order_id', ARGV[i]) "
        "if ARGV[i+1] ~= '' then redis.call('HSET', k, 'signer', ARGV[i+1]) end "
        "if ARGV[i+2] ~= '' then redis.call('HSET', k, 'gross_amount', ARGV[i+2]) end "
        "if ARGV[i+3] ~= '' then redis.call('HSET', k, 'transaction_id', ARGV[i+3]) end end",
        "0"};
    std::vector<std::string> ids;
    for (const auto& stored : stored_all) {
        for (std::size_t u = 0; u < update_all.size(); ++u) {
            ids.push_back("BIND-" + std::to_string(ids.size()));
            for (auto v : {std::string_view(ids.back()), stored.signer, stored.gross_amount,
                           stored.transaction_id})
                setup.emplace_back(v);
        }
    }
    (void)redis_.cli(setup);
    std::size_t n = 0;
    std::vector<std::string> expected_signers;
    for (const auto& stored : stored_all) {
        for (const auto& update : update_all) {
            const std::string& id = ids[n++];
            ingest::status_update u;
            u.set(ingest::field::order_id, id);
            u.set(ingest::field::transaction_status, "pending");
            if (!update.gross_amount.empty())
                u.set(ingest::field::gross_amount, update.gross_amount);
            if (!update.transaction_id.empty())
                u.set(ingest::field::transaction_id, update.transaction_id);
            u.signer = update.signer;
            const auto r = boost::asio::co_spawn(pool_.context(0), store_->commit(std::move(u)),
                                                 boost::asio::use_future)
                               .get();
            const auto want = ingest::check_binding(stored, update);
            EXPECT_EQ(r.mismatch, want) << id;
            EXPECT_EQ(r.outcome == ingest::commit_outcome::refused,
                      want != ingest::binding_mismatch::none)
                << id;
            // The first signer is recorded, never replaced.
            expected_signers.emplace_back(!stored.signer.empty()                   ? stored.signer
                                          : want == ingest::binding_mismatch::none ? update.signer
                                                                                   : "");
        }
    }
    std::vector<std::string> read = {
        "EVAL",
        "local out = {} for i = 1, #ARGV do out[i] = redis.call('HGET', 'posrelay:{o:' .. "
        "ARGV[i] .. '}', 'signer') or '-' end return table.concat(out, ',')",
        "0"};
    read.insert(read.end(), ids.begin(), ids.end());
    std::string signers = redis_.cli(read);
    while (!signers.empty() && (signers.back() == '\n' || signers.back() == '\r'))
        signers.pop_back();
    std::string want;
    for (const auto& s : expected_signers) {
        if (!want.empty()) want += ',';
        want += s.empty() ? "-" : s;
    }
    EXPECT_EQ(signers, want);
}

// A charge through posrelay is made with the default key: its reservation binds the order to
// it, and to the charged amount, before any notification arrives.
TEST_F(RedisStore, ChargedOrderIsBoundToTheDefaultKeyAndItsAmount) {
    store::order_registration reg{"CH-1", "500000", "T-1", "S-1", 0, "default"};
    const auto r = boost::asio::co_spawn(pool_.context(0), store_->reserve_charge(reg),
                                         boost::asio::use_future)
                       .get();
    ASSERT_FALSE(r.ec);
    ASSERT_EQ(r.outcome, store::reserve_outcome::created);
    EXPECT_EQ(redis_.cli({"HGET", "posrelay:{s:S-1}:o:CH-1", "signer"}), "default");
    const auto commit_signed = [&](std::string signer, std::string gross) {
        ingest::status_update u;
        u.set(ingest::field::order_id, "CH-1");
        u.set(ingest::field::transaction_status, "settlement");
        u.set(ingest::field::gross_amount, gross);
        u.status = transaction_status::settlement;
        u.signer = std::move(signer);
        return boost::asio::co_spawn(pool_.context(0), store_->commit(std::move(u)),
                                     boost::asio::use_future)
            .get();
    };
    auto c = commit_signed("m:M-2", "500000.00");
    EXPECT_EQ(c.outcome, ingest::commit_outcome::refused);
    EXPECT_EQ(c.mismatch, ingest::binding_mismatch::merchant);
    c = commit_signed("default", "1000.00");
    EXPECT_EQ(c.mismatch, ingest::binding_mismatch::amount);
    EXPECT_EQ(redis_.cli({"HGET", "posrelay:{s:S-1}:o:CH-1", "gross_amount"}), "500000");
    EXPECT_EQ(commit_signed("default", "500000.00").outcome, ingest::commit_outcome::new_update);
}

class RedisStorePolling : public RedisStore {
protected:
    void SetUp() override {
        store_options_.poll_first_delay = std::chrono::seconds(60);  // orders are enrolled
        RedisStore::SetUp();
    }
};

// Only register and reserve enrol an order for polling, and both route it: the final status of
// an order posrelay never routed costs no schedule removal (two round trips before the answer,
// on every such notification); a routed order's takes it off the schedule.
TEST_F(RedisStorePolling, OnlyARoutedOrdersFinalStatusTakesItOffThePollSchedule) {
    const auto zrems = [&] {
        const auto stats = redis_.cli({"INFO", "commandstats"});
        const auto at = stats.find("cmdstat_zrem:calls=");
        return at == std::string::npos ? 0 : std::stoi(stats.substr(at + 19));
    };
    ASSERT_EQ(redis_.cli({"CONFIG", "RESETSTAT"}), "OK");
    EXPECT_EQ(commit("U-1", transaction_status::settlement).outcome,
              ingest::commit_outcome::new_update);
    EXPECT_EQ(commit("U-1", transaction_status::settlement).outcome,
              ingest::commit_outcome::duplicate);
    EXPECT_EQ(zrems(), 0);

    const auto reg = register_order({"R-2", "10000", "T-9", "S-1", 0});
    ASSERT_EQ(reg.outcome, store::register_outcome::created);
    const std::string due = store::keys::poll_due("posrelay:", store::keys::poll_bucket("R-2"));
    EXPECT_NE(redis_.cli({"ZSCORE", due, "R-2"}), "");
    EXPECT_EQ(commit("R-2", transaction_status::pending).outcome,
              ingest::commit_outcome::new_update);
    EXPECT_NE(redis_.cli({"ZSCORE", due, "R-2"}), "");  // still polled: not final
    EXPECT_EQ(commit("R-2", transaction_status::settlement).outcome,
              ingest::commit_outcome::new_update);
    EXPECT_EQ(redis_.cli({"ZSCORE", due, "R-2"}), "");
    EXPECT_EQ(zrems(), 1);
}

TEST_F(RedisStore, EventsGoToTheRoutedTerminalsStreamWithGapFreeSeq) {
    const auto reg = register_order({"R1", "10000", "T-9", "S-1", 0});
    ASSERT_FALSE(reg.ec);
    EXPECT_EQ(reg.outcome, store::register_outcome::created);
    EXPECT_EQ(commit("R1", transaction_status::pending).event_id, "T-9:1");
    EXPECT_EQ(commit("R1", transaction_status::settlement, midtrans::fraud_status::accept).event_id,
              "T-9:2");
    const auto events = redis_.cli({"XRANGE", "posrelay:{s:S-1}:t:T-9:events", "-", "+"});
    EXPECT_NE(events.find(R"("seq":2)"), std::string::npos) << events;
    EXPECT_NE(events.find(R"("paid":true)"), std::string::npos) << events;
    // Registering the same order elsewhere is a conflict; the same route is idempotent.
    const auto again = register_order({"R1", "10000", "T-9", "S-1", 0});
    EXPECT_EQ(again.outcome, store::register_outcome::exists);
    const auto other = register_order({"R1", "10000", "T-8", "S-1", 0});
    EXPECT_EQ(other.outcome, store::register_outcome::conflict);
}

// A store subscription lives as long as it is renewed (a hello, or the gateway's periodic
// renewal) within the stream TTL: the next commit of the store drops an older one, so a
// device that left the store (or the id) stops collecting its events.
TEST_F(RedisStore, StoreSubscriptionExpiresUnlessRenewed) {
    const auto open = [&](const char* terminal) {
        return boost::asio::co_spawn(pool_.context(0),
                                     store_->open_terminal("S-SUB", terminal, true),
                                     boost::asio::use_future)
            .get();
    };
    ASSERT_FALSE(open("T-OLD").first);
    ASSERT_FALSE(open("T-NEW").first);
    // T-OLD's last renewal is older than the stream TTL.
    const auto old_ms = store::unix_ms_now() - store_options_.stream_ttl.count() * 1000 - 60'000;
    ASSERT_EQ(redis_.cli({"ZADD", "posrelay:{s:S-SUB}:subs", std::to_string(old_ms), "T-OLD"}),
              "0");
    const auto reg = register_order({"SUB-1", "10000", "T-CASH", "S-SUB", 0});
    ASSERT_FALSE(reg.ec);
    EXPECT_EQ(commit("SUB-1", transaction_status::settlement).event_id, "T-CASH:1");
    EXPECT_EQ(redis_.cli({"XLEN", "posrelay:{s:S-SUB}:t:T-NEW:events"}), "1");
    EXPECT_EQ(redis_.cli({"XLEN", "posrelay:{s:S-SUB}:t:T-OLD:events"}), "0");
    EXPECT_EQ(redis_.cli({"ZRANGE", "posrelay:{s:S-SUB}:subs", "0", "-1"}), "T-NEW");
}

// A counter lost while its stream stays (a partial restore) starts a new epoch that carries
// the stream's events over, renumbered from 1: no seq is reused, nothing is dropped.
TEST_F(RedisStore, CounterLostBesideItsStreamStartsANewEpoch) {
    for (const char* o : {"EP-1", "EP-2", "EP-3"}) {
        ASSERT_FALSE(register_order({o, "10000", "T-EP", "S-EP", 0}).ec);
    }
    EXPECT_EQ(commit("EP-1", transaction_status::settlement).event_id, "T-EP:1");
    EXPECT_EQ(commit("EP-2", transaction_status::settlement).event_id, "T-EP:2");
    const std::string counter = "posrelay:{s:S-EP}:t:T-EP:seq";
    const std::string old_epoch = redis_.cli({"HGET", counter, "epoch"});
    ASSERT_FALSE(old_epoch.empty());
    ASSERT_EQ(redis_.cli({"DEL", counter}), "1");
    // Carried over as 1 and 2, the new event is 3, all in the new epoch.
    EXPECT_EQ(commit("EP-3", transaction_status::settlement).event_id, "T-EP:3");
    const std::string epoch = redis_.cli({"HGET", counter, "epoch"});
    EXPECT_NE(epoch, old_epoch);
    const auto events = redis_.cli({"XRANGE", "posrelay:{s:S-EP}:t:T-EP:events", "-", "+"});
    EXPECT_NE(events.find(R"("order_id":"EP-1")"), std::string::npos) << events;
    EXPECT_EQ(events.find(old_epoch), std::string::npos) << events;
    EXPECT_EQ(redis_.cli({"XLEN", "posrelay:{s:S-EP}:t:T-EP:events"}), "3");
    // A stream ahead of its counter (a counter restored alone) is the same case.
    ASSERT_EQ(redis_.cli({"HSET", counter, "seq", "1"}), "0");
    ASSERT_FALSE(register_order({"EP-4", "10000", "T-EP", "S-EP", 0}).ec);
    EXPECT_EQ(commit("EP-4", transaction_status::settlement).event_id, "T-EP:4");
    EXPECT_NE(redis_.cli({"HGET", counter, "epoch"}), epoch);
}

// ---- posrelay with an external Redis --------------------------------------------------------

constexpr std::string_view token = "op-token-123";

class RedisRelay : public ::testing::Test {
protected:
    static void SetUpTestSuite() { raise_fd_limit(); }
    void SetUp() override {
        redis_server_options o;
        // Persistence, so that a killed and restarted Redis still has what it acknowledged.
        o.extra_args = {"--appendonly", "yes", "--appendfsync", "everysec"};
        redis_.start(o);
        start_relay();
    }
    void start_relay(std::vector<std::string> extra = {}) {
        // Durability and dedup of notifications for orders no Midtrans knows: not confirmed.
        std::vector<std::string> args = {
            "--io-threads", "2", "--redis-command-timeout", "500ms", "--confirm-paid", "false"};
        args.insert(args.end(), extra.begin(), extra.end());
        relay_ = start_posrelay(args, {{"POSRELAY_SERVER_KEY", std::string(test_server_key)},
                                       {"POSRELAY_REDIS_URL", redis_.url()},
                                       {"POSRELAY_OPERATOR_TOKEN", std::string(token)}});
        wait_ready(true);
    }
    // Waits (bounded) until /readyz answers 200 (want) or 503 (!want).
    void wait_ready(bool want, std::chrono::seconds limit = std::chrono::seconds(15)) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            const int code = http_client(relay_.port).get("/readyz").result_int();
            if ((code == 200) == want) return;
            ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "readyz stayed " << code;
            std::this_thread::yield();
        }
    }
    http_response get_order(std::string_view id, std::string_view tok = token) {
        return http_client(relay_.port)
            .request(http::verb::get, "/v1/orders/" + std::string(id), {}, {},
                     {{"Authorization", "Bearer " + std::string(tok)}});
    }
    std::string metrics() { return http_client(relay_.port).get("/metrics").body(); }

    redis_server redis_;
    posrelay_process relay_;
};

TEST_F(RedisRelay, SameNotificationFiftyTimesConcurrentlyIsNewExactlyOnce) {
    notification_fields f;
    f.order_id = "ORD-50";
    const std::string body = signed_notification(f, test_server_key);
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 50; ++i) {
        threads.emplace_back([&] {
            if (http_client(relay_.port).post(notifications_path, body).result_int() == 200) ++ok;
        });
    }
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(ok.load(), 50);
    const auto m = metrics();
    EXPECT_EQ(metric_value(m, R"(posrelay_commits_total{outcome="new"})"), 1);
    EXPECT_EQ(metric_value(m, R"(posrelay_commits_total{outcome="duplicate"})"), 49);
    EXPECT_EQ(redis_.cli({"HGET", "posrelay:{o:ORD-50}", "changes"}), "1");
}

TEST_F(RedisRelay, LatePendingAfterSettlementIsStaleAndOrderStaysSettled) {
    notification_fields settle;
    settle.order_id = "ORD-LATE";
    ASSERT_EQ(http_client(relay_.port)
                  .post(notifications_path, signed_notification(settle, test_server_key))
                  .result_int(),
              200);
    notification_fields pending = settle;
    pending.transaction_status = "pending";
    pending.status_code = "201";
    pending.fraud_status = "";
    ASSERT_EQ(http_client(relay_.port)
                  .post(notifications_path, signed_notification(pending, test_server_key))
                  .result_int(),
              200);
    EXPECT_EQ(metric_value(metrics(), R"(posrelay_commits_total{outcome="stale"})"), 1);
    const auto res = get_order("ORD-LATE");
    ASSERT_EQ(res.result_int(), 200);
    EXPECT_NE(res.body().find(R"("transaction_status":"settlement")"), std::string::npos)
        << res.body();
    EXPECT_NE(res.body().find(R"("paid":true)"), std::string::npos) << res.body();
    EXPECT_NE(res.body().find(R"("history":[{)"), std::string::npos) << res.body();
}

TEST_F(RedisRelay, RedisKilledUnderLoadLosesNothingAnswered200) {
    constexpr int threads = 4;
    std::mutex m;
    std::set<std::string> acked;  // answered 200
    std::atomic<int> unavailable{0}, other{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> load;
    for (int t = 0; t < threads; ++t) {
        load.emplace_back([&, t] {
            // Bounded: at most 50,000 notifications a thread; stops when told.
            for (int i = 0; i < 50'000 && !stop.load(); ++i) {
                notification_fields f;
                f.order_id = "K" + std::to_string(t) + "-" + std::to_string(i);
                try {
                    http_client c(relay_.port);
                    const auto res =
                        c.post(notifications_path, signed_notification(f, test_server_key));
                    if (res.result_int() == 200) {
                        std::lock_guard lock(m);
                        acked.insert(f.order_id);
                    } else if (res.result_int() == 503) {
                        EXPECT_EQ(res[http::field::retry_after], "30");
                        ++unavailable;
                    } else {
                        ++other;
                    }
                } catch (const std::exception&) {
                    ++other;
                }
            }
        });
    }
    auto acked_count = [&] {
        std::lock_guard lock(m);
        return acked.size();
    };
    auto wait_acked = [&](std::size_t n) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (acked_count() < n && std::chrono::steady_clock::now() < deadline)
            std::this_thread::yield();
        ASSERT_GE(acked_count(), n);
    };
    wait_acked(300);
    redis_.kill();
    wait_ready(false);  // posrelay notices: /readyz goes 503
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (unavailable.load() < 20 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::yield();
    EXPECT_GE(unavailable.load(), 20);  // 503s were answered while Redis was down
    const std::size_t before_restart = acked_count();
    redis_.restart();
    wait_ready(true);  // reconnected by itself
    wait_acked(before_restart + 300);
    stop = true;
    for (auto& th : load)
        th.join();

    EXPECT_EQ(other.load(), 0);
    std::size_t missing = 0;
    std::string all;
    {
        std::lock_guard lock(m);
        for (const auto& id : acked) {
            if (redis_.cli({"EXISTS", "posrelay:{o:" + id + "}"}) != "1") ++missing;
        }
        std::cout << "[ redis kill ] answered 200: " << acked.size()
                  << ", answered 503: " << unavailable.load() << ", missing from Redis: " << missing
                  << "\n";
    }
    EXPECT_EQ(missing, 0u);
    EXPECT_GE(metric_value(metrics(), "posrelay_redis_reconnects_total"), 1);
}

TEST_F(RedisRelay, ScriptFlushMidRunRecovers) {
    auto post = [&](std::string id) {
        notification_fields f;
        f.order_id = std::move(id);
        return http_client(relay_.port)
            .post(notifications_path, signed_notification(f, test_server_key))
            .result_int();
    };
    ASSERT_EQ(post("SF-1"), 200);
    ASSERT_EQ(redis_.cli({"SCRIPT", "FLUSH"}), "OK");
    for (int i = 2; i < 10; ++i)
        EXPECT_EQ(post("SF-" + std::to_string(i)), 200);
    // One EVAL of the body re-cached it: the posts after the first went by EVALSHA again.
    EXPECT_EQ(metric_value(metrics(), R"(posrelay_redis_script_loads_total{script="order"})"), 1);
    EXPECT_EQ(redis_.cli({"EXISTS", "posrelay:{o:SF-9}"}), "1");
}

TEST_F(RedisRelay, SlowRedisPastTheDeadlineIs503) {
    std::thread sleeper([&] { (void)redis_.cli({"DEBUG", "SLEEP", "1.5"}); });
    // Wait (bounded) until Redis is really asleep: a PING through posrelay's path would
    // block too, so look for the sleeping client in the server itself is not possible;
    // instead post until a 503 comes back.
    int code = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    notification_fields f;
    f.order_id = "SLOW-1";
    while (code != 503 && std::chrono::steady_clock::now() < deadline) {
        const auto res = http_client(relay_.port)
                             .post(notifications_path, signed_notification(f, test_server_key));
        code = res.result_int();
        if (code == 503) {
            EXPECT_FALSE(res[http::field::retry_after].empty());
        }
    }
    sleeper.join();
    EXPECT_EQ(code, 503);
    EXPECT_GE(metric_value(metrics(), R"(posrelay_redis_errors_total{kind="timeout"})"), 1);
    // And it serves again once Redis is back.
    wait_ready(true);
    f.order_id = "SLOW-2";
    EXPECT_EQ(http_client(relay_.port)
                  .post(notifications_path, signed_notification(f, test_server_key))
                  .result_int(),
              200);
}

TEST_F(RedisRelay, OperatorApiNeedsTheToken) {
    EXPECT_EQ(get_order("X", "wrong").result_int(), 401);
    EXPECT_EQ(http_client(relay_.port).get("/v1/orders/X").result_int(), 401);
    EXPECT_EQ(get_order("NOPE").result_int(), 404);
    EXPECT_EQ(get_order("bad%20id").result_int(), 400);

    auto reg = [&](std::string body, std::string_view tok = token) {
        return http_client(relay_.port)
            .request(http::verb::post, "/v1/orders", std::move(body), "application/json",
                     {{"Authorization", "Bearer " + std::string(tok)}});
    };
    EXPECT_EQ(
        reg(R"({"order_id":"OP-1","gross_amount":"15000","terminal_id":"T1","store_id":"S1"})",
            "bad")
            .result_int(),
        401);
    EXPECT_EQ(reg(R"({"order_id":"OP-1","gross_amount":"15000","terminal_id":"T1","store_id":"S1",)"
                  R"("expiry_time":"2026-11-24 10:15:00"})")
                  .result_int(),
              201);
    EXPECT_EQ(
        reg(R"({"order_id":"OP-1","gross_amount":"15000","terminal_id":"T1","store_id":"S1"})")
            .result_int(),
        200);
    EXPECT_EQ(
        reg(R"({"order_id":"OP-1","gross_amount":"15000","terminal_id":"T2","store_id":"S1"})")
            .result_int(),
        409);
    const auto bad =
        reg(R"({"order_id":"OP-2","gross_amount":"-5","terminal_id":"T1","store_id":"S1"})");
    EXPECT_EQ(bad.result_int(), 400);
    EXPECT_NE(bad.body().find(R"("field":"gross_amount")"), std::string::npos);
    EXPECT_EQ(reg(R"({"gross_amount":"1","terminal_id":"T1","store_id":"S1"})").result_int(), 400);

    const auto order = get_order("OP-1");
    ASSERT_EQ(order.result_int(), 200);
    EXPECT_NE(order.body().find(R"("terminal_id":"T1")"), std::string::npos) << order.body();
    EXPECT_NE(order.body().find(R"("transaction_status":null)"), std::string::npos) << order.body();
    EXPECT_EQ(relay_.proc->output().find(token), std::string::npos);  // the token is never logged
}

// ---- the embedded redis-server ------------------------------------------------------------

TEST(EmbeddedRedis, StartsPersistsAcrossRestartAndStopsWithPosrelay) {
    char templ[] = "/tmp/posrelay-embedded-XXXXXX";
    ASSERT_NE(::mkdtemp(templ), nullptr);
    const std::string dir = templ;
    const std::map<std::string, std::string> env = {
        {"POSRELAY_SERVER_KEY", std::string(test_server_key)},
        {"POSRELAY_OPERATOR_TOKEN", std::string(token)}};
    long redis_pid = 0;
    {
        auto relay = start_posrelay(
            {"--data-dir", dir, "--io-threads", "1", "--confirm-paid", "false"}, env);
        redis_pid = json_int(relay.proc->wait_for_line("embedded redis ready"), "pid");
        notification_fields f;
        f.order_id = "EMB-1";
        ASSERT_TRUE(wait_ready(relay.port));
        ASSERT_EQ(http_client(relay.port)
                      .post(notifications_path, signed_notification(f, test_server_key))
                      .result_int(),
                  200);
        relay.proc->signal(SIGTERM);
        ASSERT_EQ(relay.proc->wait_exit(std::chrono::seconds(20)), 0) << relay.proc->output();
    }
    // The redis-server child is gone with posrelay.
    EXPECT_NE(::kill(static_cast<pid_t>(redis_pid), 0), 0);
    {
        auto relay = start_posrelay({"--data-dir", dir, "--io-threads", "1"}, env);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        int code = 0;
        http_response res;
        while (code != 200 && std::chrono::steady_clock::now() < deadline) {
            res = http_client(relay.port)
                      .request(http::verb::get, "/v1/orders/EMB-1", {}, {},
                               {{"Authorization", "Bearer " + std::string(token)}});
            code = res.result_int();
        }
        EXPECT_EQ(code, 200) << res.body();
        EXPECT_NE(res.body().find(R"("transaction_status":"settlement")"), std::string::npos);
        relay.proc->signal(SIGTERM);
        EXPECT_EQ(relay.proc->wait_exit(std::chrono::seconds(20)), 0) << relay.proc->output();
    }
    std::filesystem::remove_all(dir);
}

// --redis-config: the embedded Redis loads the operator's redis.conf, and posrelay's own
// settings (no TCP port, its directory, AOF on) still hold where the file says otherwise.
// Without --io-threads, posrelay runs one io thread per core it may use, one fewer (at
// least one) when its embedded Redis shares those cores.
TEST(EmbeddedRedis, DefaultIoThreadsLeaveACoreToTheEmbeddedRedis) {
    cpu_set_t set;
    CPU_ZERO(&set);
    ASSERT_EQ(::sched_getaffinity(0, sizeof set, &set), 0);
    const long cores = CPU_COUNT(&set);  // the child inherits this process's affinity
    char templ[] = "/tmp/posrelay-threads-XXXXXX";
    ASSERT_NE(::mkdtemp(templ), nullptr);
    const std::map<std::string, std::string> env = {
        {"POSRELAY_SERVER_KEY", std::string(test_server_key)}};
    {
        auto embedded = start_posrelay({"--data-dir", templ}, env);
        EXPECT_EQ(json_int(embedded.proc->wait_for_line(R"("what":"http")"), "io_threads"),
                  std::max(1L, cores - 1));
        auto memory = start_posrelay({"--store", "memory"}, env);
        EXPECT_EQ(json_int(memory.proc->wait_for_line(R"("what":"http")"), "io_threads"), cores);
    }
    std::filesystem::remove_all(templ);
}

TEST(EmbeddedRedis, LoadsAnOperatorConfigFileUnderPosrelaysOwnSettings) {
    char templ[] = "/tmp/posrelay-embedded-conf-XXXXXX";
    ASSERT_NE(::mkdtemp(templ), nullptr);
    const std::filesystem::path dir = templ;
    {
        std::ofstream conf(dir / "extra.conf");
        conf << "auto-aof-rewrite-min-size 1gb\nport 6399\ndir /tmp\nappendonly no\n";
    }
    auto relay = start_posrelay(
        {"--data-dir", (dir / "data").string(), "--io-threads", "1", "--terminal-listen", "off",
         "--redis-config", (dir / "extra.conf").string()},
        {{"POSRELAY_SERVER_KEY", std::string(test_server_key)}});
    (void)relay.proc->wait_for_line("embedded redis ready");
    const auto config_get = [&](const char* name) {
        const auto r =
            run_command("/usr/bin/redis-cli",
                        {"-s", (dir / "data" / "redis.sock").string(), "CONFIG", "GET", name});
        EXPECT_EQ(r.code, 0) << r.output;
        return r.output;
    };
    EXPECT_NE(config_get("auto-aof-rewrite-min-size").find("1073741824"), std::string::npos);
    // Scheduled AOF rewrites (the default): Redis's own are off.
    EXPECT_NE(config_get("auto-aof-rewrite-percentage").find("percentage\n0"), std::string::npos);
    EXPECT_NE(config_get("port").find("port\n0"), std::string::npos);
    EXPECT_NE(config_get("appendonly").find("appendonly\nyes"), std::string::npos);
    EXPECT_NE(config_get("dir").find((dir / "data").string()), std::string::npos);
    relay.proc->signal(SIGTERM);
    EXPECT_EQ(relay.proc->wait_exit(std::chrono::seconds(20)), 0);
    std::filesystem::remove_all(dir);
}

// Scheduled AOF rewrites: 2 MiB written at once make the file due (over the 1 MiB minimum,
// doubled); the reading that sees it grow fast waits, the next one (no growth: quiet) asks for
// the rewrite, once. With --redis-aof-rewrite redis, Redis's own rule is left on.
TEST(EmbeddedRedis, RewritesTheAofAtAQuietMomentOnceDue) {
    char templ[] = "/tmp/posrelay-aof-XXXXXX";
    ASSERT_NE(::mkdtemp(templ), nullptr);
    const std::filesystem::path dir = templ;
    const std::string sock = (dir / "data" / "redis.sock").string();
    const auto cli = [&](std::vector<std::string> args) {
        args.insert(args.begin(), {"-s", sock});
        return run_command("/usr/bin/redis-cli", args);
    };
    const std::map<std::string, std::string> env = {
        {"POSRELAY_SERVER_KEY", std::string(test_server_key)}};
    {
        auto relay =
            start_posrelay({"--data-dir", (dir / "data").string(), "--io-threads", "1",
                            "--terminal-listen", "off", "--redis-aof-rewrite-min-size", "1048576"},
                           env);
        (void)relay.proc->wait_for_line("embedded redis ready");
        ASSERT_TRUE(wait_ready(relay.port));
        const auto rewrites = [&] {
            return metric_value(http_client(relay.port).get("/metrics").body(),
                                R"(posrelay_embedded_redis_aof_rewrites_total{reason="quiet"})");
        };
        EXPECT_EQ(rewrites(), 0);
        const auto big =
            cli({"EVAL", "redis.call('SET', 'filler', string.rep('x', 2097152))", "0"});
        ASSERT_EQ(big.code, 0) << big.output;
        ASSERT_TRUE(wait_until([&] { return rewrites() == 1; }, std::chrono::seconds(30)))
            << relay.proc->output();
        const auto line = relay.proc->wait_for_line("embedded redis aof rewrite started");
        EXPECT_NE(line.find(R"("reason":"quiet")"), std::string::npos) << line;
        // Done, and not asked for again: the file is no longer due.
        ASSERT_TRUE(wait_until(
            [&] {
                return cli({"INFO", "persistence"}).output.find("aof_rewrite_in_progress:0") !=
                       std::string::npos;
            },
            std::chrono::seconds(30)));
        EXPECT_NE(cli({"INFO", "persistence"}).output.find("aof_last_bgrewrite_status:ok"),
                  std::string::npos);
        EXPECT_EQ(rewrites(), 1);
        relay.proc->signal(SIGTERM);
        EXPECT_EQ(relay.proc->wait_exit(std::chrono::seconds(20)), 0);
    }
    {
        auto relay = start_posrelay({"--data-dir", (dir / "data").string(), "--io-threads", "1",
                                     "--terminal-listen", "off", "--redis-aof-rewrite", "redis"},
                                    env);
        (void)relay.proc->wait_for_line("embedded redis ready");
        EXPECT_NE(cli({"CONFIG", "GET", "auto-aof-rewrite-percentage"}).output.find("\n100"),
                  std::string::npos);
        relay.proc->signal(SIGTERM);
        EXPECT_EQ(relay.proc->wait_exit(std::chrono::seconds(20)), 0);
    }
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace posrelay::test
