// The terminal gateway end to end: real posrelay processes, a real redis-server, terminals
// over TCP (and WebSocket, TLS), notifications over HTTP.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "posrelay/fanout/protocol.hpp"
#include "process.hpp"
#include "redis_server.hpp"
#include "terminal_conn.hpp"

namespace posrelay::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

relay_node start_node(const redis_server& r, std::vector<std::string> extra = {}) {
    // These tests post notifications for orders no Midtrans knows (and reach none): they are
    // about fan-out, so paid is not confirmed (paid_confirmation_test.cpp is about that).
    std::vector<std::string> args = {"--io-threads",   "2",    "--terminal-listen", "127.0.0.1:0",
                                     "--confirm-paid", "false"};
    args.insert(args.end(), extra.begin(), extra.end());
    return start_relay_node(std::move(args), relay_env(r.url()));
}

class TerminalGateway : public ::testing::Test {
protected:
    static void SetUpTestSuite() { raise_fd_limit(); }
    void SetUp() override {
        redis_.start();
        node_ = start_node(redis_);
    }
    unsigned short http() const { return node_.p.port; }
    unsigned short term() const { return node_.terminal_port; }

    redis_server redis_;
    relay_node node_;
};

// A string field of a frame ("" when absent or not a string).
std::string error_code_of(terminal_conn& c) {
    auto f = c.read_frame(seconds(5));
    if (!f || str(*f, "op") != "error") return "no error frame";
    return std::string(f->at("code").as_string());
}

TEST_F(TerminalGateway, BadFramesGetAnErrorFrameAndCloseWhileOthersAreServed) {
    terminal_conn good(term());
    good.hello("T-GOOD", "S-1");

    struct bad_case {
        std::string frame, code;
    } cases[] = {
        {"{not json", "bad_frame"},
        {std::string(20000, 'x'), "frame_too_large"},
        {R"({"op":"dance"})", "unknown_op"},
        {R"({"op":"hello","v":2,"terminal_id":"T","store_id":"S","token":"x"})",
         "unsupported_version"},
        {R"({"op":"hello","v":1,"terminal_id":"T-X","store_id":"S-1","token":"v1.00"})",
         "bad_token"},
        {R"({"op":"ack","seq":1})", "handshake_required"},
    };
    for (const auto& c : cases) {
        terminal_conn bad(term());
        bad.send_line(c.frame);
        EXPECT_EQ(error_code_of(bad), c.code) << c.frame.substr(0, 80);
        EXPECT_TRUE(bad.closed_within(seconds(5))) << c.code;
    }
    // The well-behaved terminal still gets its events.
    ASSERT_EQ(register_order(http(), "BF-1", "T-GOOD", "S-1"), 201);
    ASSERT_EQ(notify(http(), "BF-1"), 200);
    const auto ev = good.next_event();
    ASSERT_TRUE(ev.has_value());
    EXPECT_EQ(str(*ev, "order_id"), "BF-1");
}

TEST_F(TerminalGateway, NotificationReachesTheRightTerminalOnly) {
    terminal_conn mine(term()), other(term());
    mine.hello("T-A", "S-1");
    other.hello("T-B", "S-1");
    ASSERT_EQ(register_order(http(), "RT-1", "T-A", "S-1"), 201);
    ASSERT_EQ(notify(http(), "RT-1", "pending"), 200);
    ASSERT_EQ(notify(http(), "RT-1", "settlement"), 200);
    auto e1 = mine.next_event();
    auto e2 = mine.next_event();
    ASSERT_TRUE(e1 && e2);
    EXPECT_EQ(e1->at("seq").as_int64(), 1);
    EXPECT_EQ(str(*e1, "transaction_status"), "pending");
    EXPECT_FALSE(e1->at("paid").as_bool());
    EXPECT_EQ(e2->at("seq").as_int64(), 2);
    EXPECT_EQ(str(*e2, "transaction_status"), "settlement");
    EXPECT_TRUE(e2->at("paid").as_bool());
    EXPECT_EQ(str(*e2, "source"), "notification");
    EXPECT_FALSE(other.next_event(milliseconds(300)).has_value());  // T-B subscribed to nothing
}

// Issue 17: an order registered after its status arrived sends that status at once, with the
// status's own source (it was "" before: the source lives in the order's newest history entry).
TEST_F(TerminalGateway, RegisteringAnOrderWithAKnownStatusSendsItsSource) {
    terminal_conn till(term());
    till.hello("T-LATE", "S-1");
    ASSERT_EQ(notify(http(), "LATE-1", "settlement"), 200);  // not routed yet
    ASSERT_EQ(register_order(http(), "LATE-1", "T-LATE", "S-1"), 201);
    const auto ev = till.next_event();
    ASSERT_TRUE(ev.has_value());
    EXPECT_EQ(str(*ev, "order_id"), "LATE-1");
    EXPECT_EQ(str(*ev, "transaction_status"), "settlement");
    EXPECT_EQ(str(*ev, "source"), "notification");
}

TEST_F(TerminalGateway, StoreSubscriptionDeliversTheWholeStore) {
    terminal_conn manager(term());
    manager.hello("T-MGR", "S-7", std::nullopt, true);
    ASSERT_EQ(register_order(http(), "ST-1", "T-CASHIER", "S-7"), 201);
    ASSERT_EQ(notify(http(), "ST-1"), 200);
    const auto ev = manager.next_event();
    ASSERT_TRUE(ev.has_value());
    EXPECT_EQ(str(*ev, "order_id"), "ST-1");
    EXPECT_EQ(ev->at("seq").as_int64(), 1);  // the manager's own sequence
}

TEST_F(TerminalGateway, TwoNodesOneRedis) {
    relay_node b = start_node(redis_);
    terminal_conn t(b.terminal_port);
    t.hello("T-ON-B", "S-1");
    ASSERT_EQ(register_order(http(), "TN-1", "T-ON-B", "S-1"), 201);  // via node A
    ASSERT_EQ(notify(http(), "TN-1"), 200);                           // via node A
    const auto ev = t.next_event();
    ASSERT_TRUE(ev.has_value());
    EXPECT_EQ(str(*ev, "order_id"), "TN-1");
}

// Each node subscribes only to the channels of its own terminals' stores: node A (a terminal
// of S-A) receives none of S-B's events, node B none of S-A's, though every notification goes
// through node A. When a store's last terminal leaves a node, the node unsubscribes.
TEST_F(TerminalGateway, NodeReceivesOnlyTheEventsOfItsTerminalsStores) {
    relay_node b = start_node(redis_);
    const auto subscribers = [&](const std::string& store) {
        const std::string ch = "posrelay:{s:" + store + "}:feed";
        const auto out = redis_.cli({"PUBSUB", "SHARDNUMSUB", ch});
        return out.substr(out.find('\n') + 1);
    };
    const auto wait_subscribers = [&](const std::string& store, const std::string& n) {
        const auto deadline = std::chrono::steady_clock::now() + seconds(10);
        while (subscribers(store) != n && std::chrono::steady_clock::now() < deadline)
            std::this_thread::yield();
        return subscribers(store);
    };
    auto ta = std::make_unique<terminal_conn>(term());
    ta->hello("T-A", "S-A");
    terminal_conn tb(b.terminal_port);
    tb.hello("T-B", "S-B");
    ASSERT_EQ(wait_subscribers("S-A", "1"), "1");
    ASSERT_EQ(wait_subscribers("S-B", "1"), "1");
    constexpr int per_store = 5;
    for (int i = 0; i < per_store; ++i) {
        const auto n = std::to_string(i);
        ASSERT_EQ(register_order(http(), "NA-" + n, "T-A", "S-A"), 201);
        ASSERT_EQ(register_order(http(), "NB-" + n, "T-B", "S-B"), 201);
        ASSERT_EQ(notify(http(), "NA-" + n), 200);
        ASSERT_EQ(notify(http(), "NB-" + n), 200);
    }
    for (int i = 1; i <= per_store; ++i) {
        auto ea = ta->next_event();
        auto eb = tb.next_event();
        ASSERT_TRUE(ea.has_value() && eb.has_value());
        EXPECT_EQ(str(*ea, "store_id"), "S-A");
        EXPECT_EQ(str(*eb, "store_id"), "S-B");
    }
    // Events each node received per event committed: its own stores' only.
    const auto metrics_of = [](unsigned short port) {
        return http_client(port).get("/metrics").body();
    };
    const auto a = metrics_of(http()), bm = metrics_of(b.p.port);
    EXPECT_EQ(metric_value(a, "posrelay_events_published_total"), 2 * per_store);
    EXPECT_EQ(metric_value(a, "posrelay_event_feed_events_total"), per_store);
    EXPECT_EQ(metric_value(bm, "posrelay_event_feed_events_total"), per_store);
    EXPECT_EQ(metric_value(a, "posrelay_event_feed_unmatched_total"), 0);
    EXPECT_EQ(metric_value(a, "posrelay_event_feed_stores"), 1);
    // The last terminal of S-A leaves node A: A unsubscribes; B keeps S-B.
    ta.reset();
    EXPECT_EQ(wait_subscribers("S-A", "0"), "0");
    EXPECT_EQ(subscribers("S-B"), "1");
    const auto deadline = std::chrono::steady_clock::now() + seconds(10);
    while (metric_value(metrics_of(http()), "posrelay_event_feed_stores") != 0 &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
    }
    EXPECT_EQ(metric_value(metrics_of(http()), "posrelay_event_feed_stores"), 0);
}

// The live feed is a sharded pub/sub subscription to the channel of each store with a
// terminal on the node: an event published while a node is not subscribed never reaches it by
// pub/sub. Its subscriber connection is cut (CLIENT KILL TYPE pubsub), an event committed right
// away (through the node's other connections, which stay up) while it reconnects (≥ 100 ms
// backoff): the terminal must still get it, from its stream, once the node has resubscribed.
// Three times, and nothing twice.
TEST_F(TerminalGateway, LiveFeedCatchesUpAfterLosingItsSubscription) {
    const auto wait_subscribed = [&] {
        const auto deadline = std::chrono::steady_clock::now() + seconds(10);
        while (redis_.cli({"PUBSUB", "SHARDNUMSUB", "posrelay:{s:S-1}:feed"}) !=
                   "posrelay:{s:S-1}:feed\n1" &&
               std::chrono::steady_clock::now() < deadline) {
            std::this_thread::yield();
        }
    };
    terminal_conn t(term());
    t.hello("T-FEED", "S-1");
    // Whatever else is published on the channel is ignored.
    wait_subscribed();
    ASSERT_EQ(redis_.cli({"SPUBLISH", "posrelay:{s:S-1}:feed", "{not json"}), "1");
    ASSERT_EQ(redis_.cli({"SPUBLISH", "posrelay:{s:S-1}:feed", R"({"terminal_id":"T-FEED"})"}),
              "1");
    for (int i = 1; i <= 3; ++i) {
        const std::string order = "FD-" + std::to_string(i);
        ASSERT_EQ(register_order(http(), order, "T-FEED", "S-1"), 201);
        ASSERT_EQ(redis_.cli({"CLIENT", "KILL", "TYPE", "pubsub"}), "1") << "round " << i;
        ASSERT_EQ(notify(http(), order), 200);
        const auto ev = t.next_event(seconds(10));
        ASSERT_TRUE(ev.has_value()) << "round " << i;
        EXPECT_EQ(ev->at("seq").as_int64(), i);
        EXPECT_EQ(str(*ev, "order_id"), order);
        t.ack(static_cast<std::uint64_t>(i));
        wait_subscribed();  // resubscribed before the next round
    }
    EXPECT_FALSE(t.next_event(milliseconds(300)).has_value());  // nothing twice
    // The first subscription and three more, each counted.
    wait_metric(http(), "posrelay_event_feed_subscribes_total", 4);
    EXPECT_EQ(metric_value(http_client(http()).get("/metrics").body(),
                           "posrelay_event_feed_subscribes_total"),
              4);
}

TEST_F(TerminalGateway, KilledMidStreamResumesWithoutLossOrDuplicate) {
    constexpr int total = 40;
    for (int i = 0; i < total; ++i) {
        ASSERT_EQ(register_order(http(), "RS-" + std::to_string(i), "T-R", "S-1"), 201);
    }
    std::uint64_t processed = 0;
    {
        terminal_conn t(term());
        t.hello("T-R", "S-1");
        for (int i = 0; i < total / 2; ++i)
            ASSERT_EQ(notify(http(), "RS-" + std::to_string(i)), 200);
        // Process (and ack) only some of what arrives, then die without a goodbye.
        for (int i = 0; i < 7; ++i) {
            auto ev = t.next_event();
            ASSERT_TRUE(ev.has_value());
            processed = static_cast<std::uint64_t>(ev->at("seq").as_int64());
            t.ack(processed);
        }
    }
    for (int i = total / 2; i < total; ++i)
        ASSERT_EQ(notify(http(), "RS-" + std::to_string(i)), 200);
    terminal_conn t(term());
    const auto w = t.hello("T-R", "S-1", processed);
    EXPECT_EQ(w.at("last_seq").as_int64(), total);
    std::set<std::string> orders;
    for (std::uint64_t want = processed + 1; want <= total; ++want) {
        auto ev = t.next_event();
        ASSERT_TRUE(ev.has_value()) << "missing seq " << want;
        ASSERT_EQ(static_cast<std::uint64_t>(ev->at("seq").as_int64()), want);
        orders.insert(std::string(ev->at("order_id").as_string()));
        t.ack(want);
    }
    EXPECT_EQ(orders.size(), static_cast<std::size_t>(total - processed));
    EXPECT_FALSE(t.next_event(milliseconds(300)).has_value());  // nothing twice
}

TEST_F(TerminalGateway, ResumeBeyondRetentionIsResumeGap) {
    terminal_conn t(term());
    t.send_line(R"({"op":"hello","v":1,"terminal_id":"T-GAP","store_id":"S-1","token":")" +
                fanout::mint_token(test_terminal_secret, "T-GAP", "S-1") + R"(","resume_from":5})");
    const auto f = t.read_frame(seconds(5));
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(str(*f, "code"), "resume_gap");
    // The order of §8 (issue 17: the message said re-sync first): status needs a connection.
    EXPECT_NE(str(*f, "message").find("reconnect without resume_from, then re-sync"),
              std::string::npos)
        << str(*f, "message");
}

TEST_F(TerminalGateway, SecondConnectionReplacesTheFirst) {
    terminal_conn first(term());
    first.hello("T-DUP", "S-1");
    terminal_conn second(term());
    second.hello("T-DUP", "S-1");
    EXPECT_EQ(error_code_of(first), "replaced");
    ASSERT_EQ(register_order(http(), "DUP-1", "T-DUP", "S-1"), 201);
    ASSERT_EQ(notify(http(), "DUP-1"), 200);
    EXPECT_TRUE(second.next_event().has_value());
}

TEST_F(TerminalGateway, HandshakeTimeout) {
    relay_node n = start_node(redis_, {"--terminal-handshake-timeout", "300ms"});
    terminal_conn t(n.terminal_port);
    EXPECT_EQ(error_code_of(t), "handshake_timeout");
    EXPECT_TRUE(t.closed_within(seconds(5)));
}

TEST_F(TerminalGateway, SlowConsumerIsCutOffWhileOthersKeepReceiving) {
    relay_node n = start_node(
        redis_, {"--terminal-socket-send-buffer", "4096", "--terminal-send-queue-bytes", "8192",
                 "--terminal-max-inflight", "100000", "--terminal-write-timeout", "2s"});
    terminal_conn reader(n.terminal_port);
    reader.hello("T-READER", "S-SLOW");
    terminal_conn stalled(n.terminal_port, 4096);
    stalled.hello("T-STALLED", "S-SLOW", std::nullopt,
                  true);  // gets every event of the store, never reads
    std::atomic<bool> done{false};
    std::atomic<int> received{0};
    std::thread consume([&] {
        while (!done.load()) {
            try {
                if (auto ev = reader.next_event(milliseconds(200))) {
                    ++received;
                    reader.ack(static_cast<std::uint64_t>(ev->at("seq").as_int64()));
                }
            } catch (const std::exception& e) {
                ADD_FAILURE() << "reader: " << e.what();
                return;
            }
        }
    });
    // Bounded: at most 2,000 events, until the stalled terminal has been cut off.
    bool cut = false;
    int sent = 0;
    for (; sent < 2000 && !cut; ++sent) {
        const std::string id = "SL-" + std::to_string(sent);
        ASSERT_EQ(register_order(n.p.port, id, "T-READER", "S-SLOW"), 201);
        ASSERT_EQ(notify(n.p.port, id), 200);
        if (sent % 20 == 19) {
            cut = metric_value(http_client(n.p.port).get("/metrics").body(),
                               "posrelay_terminal_slow_consumer_disconnects_total") >= 1;
        }
    }
    // The stalled write is cut at the write timeout (2 s) even if the events came faster.
    if (!cut) cut = wait_metric(n.p.port, "posrelay_terminal_slow_consumer_disconnects_total", 1);
    EXPECT_TRUE(cut) << "after " << sent << " events";
    // The reader received everything meanwhile.
    const auto deadline = std::chrono::steady_clock::now() + seconds(10);
    while (received.load() < sent && std::chrono::steady_clock::now() < deadline)
        std::this_thread::yield();
    done = true;
    consume.join();
    EXPECT_EQ(received.load(), sent);
    EXPECT_TRUE(n.p.proc->output().find(R"("reason":"slow_consumer")") != std::string::npos);
    if (HasFailure()) std::cout << n.p.proc->output();
}

TEST_F(TerminalGateway, ThousandConcurrentTerminals) {
    constexpr int n = 1000;
    std::vector<std::unique_ptr<terminal_conn>> terms;
    for (int i = 0; i < n; ++i) {
        terms.push_back(std::make_unique<terminal_conn>(term()));
        terms.back()->hello("T-K" + std::to_string(i), "S-" + std::to_string(i % 50));
    }
    const auto m = http_client(http()).get("/metrics").body();
    EXPECT_EQ(metric_value(m, R"(posrelay_terminal_connections{transport="tcp"})"), n);
    // One payment for every tenth terminal: each gets its event, and only its own.
    for (int i = 0; i < n; i += 10) {
        const std::string id = "K-" + std::to_string(i);
        ASSERT_EQ(
            register_order(http(), id, "T-K" + std::to_string(i), "S-" + std::to_string(i % 50)),
            201);
        ASSERT_EQ(notify(http(), id), 200);
    }
    for (int i = 0; i < n; i += 10) {
        auto ev = terms[i]->next_event();
        ASSERT_TRUE(ev.has_value()) << i;
        EXPECT_EQ(str(*ev, "order_id"), "K-" + std::to_string(i));
    }
    EXPECT_FALSE(terms[1]->next_event(milliseconds(200)).has_value());
}

TEST_F(TerminalGateway, ShutdownSendsGoaway) {
    terminal_conn t(term());
    t.hello("T-BYE", "S-1");
    node_.p.proc->signal(SIGTERM);
    auto f = t.read_frame(seconds(10));
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(str(*f, "op"), "goaway");
    EXPECT_TRUE(t.closed_within(seconds(10)));
    EXPECT_EQ(node_.p.proc->wait_exit(seconds(15)), 0) << node_.p.proc->output();
}

}  // namespace
}  // namespace posrelay::test
