// Terminal identity and sequence epochs end to end (issue 13, findings 5 and 6): a terminal is
// (store, terminal) everywhere, and a seq never names two events, even after Redis lost writes.
// Real posrelay, real redis-server, terminals over TCP.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "process.hpp"
#include "redis_server.hpp"
#include "terminal_conn.hpp"

namespace posrelay::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class TerminalIdentity : public ::testing::Test {
protected:
    void SetUp() override {
        redis_.start();
        // Routing and sequence numbers, not paid confirmation (no Midtrans here): the
        // settlements posted are delivered unconfirmed.
        node_ = start_relay_node(
            {"--io-threads", "2", "--terminal-listen", "127.0.0.1:0", "--confirm-paid=false"},
            relay_env(redis_.url()));
    }
    unsigned short http() const { return node_.p.port; }
    unsigned short term() const { return node_.terminal_port; }

    // Copies every key whose name matches `pattern` aside (DUMP, inside Redis) ...
    int backup(const std::string& pattern) {
        return std::stoi(
            redis_.cli({"EVAL",
                        "local ks = redis.call('KEYS', ARGV[1]) for _, k in ipairs(ks) do "
                        "redis.call('SET', 'backup|' .. k, redis.call('DUMP', k)) end return #ks",
                        "0", pattern}));
    }
    // ... and puts them back (RESTORE ... REPLACE): Redis as a backup left it, the writes
    // since then lost.
    int restore(const std::string& pattern) {
        return std::stoi(redis_.cli(
            {"EVAL",
             "local ks = redis.call('KEYS', 'backup|' .. ARGV[1]) for _, b in ipairs(ks) do "
             "redis.call('RESTORE', string.sub(b, 8), 0, redis.call('GET', b), 'REPLACE') end "
             "return #ks",
             "0", pattern}));
    }

    redis_server redis_;
    relay_node node_;
};

// Reads events (acking each) until every order of `want` was seen or the deadline passes.
// A `resync` error is followed as the protocol says: reconnect in the epoch it names from
// seq 0. Returns the orders seen; `resyncs` counts the resync frames.
struct follower {
    follower(unsigned short p, std::string t, std::string s)
        : port(p), terminal(std::move(t)), store(std::move(s)) {}
    unsigned short port;
    std::string terminal, store;
    std::unique_ptr<terminal_conn> conn;
    std::string epoch;
    std::uint64_t last = 0;
    std::string last_eid;
    int resyncs = 0;

    void connect(std::optional<std::uint64_t> resume_from) {
        conn = std::make_unique<terminal_conn>(port);
        terminal_conn::hello_options o;
        o.resume_from = resume_from;
        o.epoch = epoch;
        if (resume_from && !last_eid.empty()) o.resume_eid = last_eid;
        const auto f = conn->handshake(terminal, store, o);
        if (str(f, "op") == "welcome") {
            epoch = str(f, "epoch");
            if (!resume_from) last = static_cast<std::uint64_t>(f.at("last_seq").as_int64());
            return;
        }
        on_error(f);
    }
    void on_error(const boost::json::object& f) {
        if (str(f, "code") != "resync") {
            throw std::runtime_error("unexpected frame: " + boost::json::serialize(f));
        }
        ++resyncs;
        epoch = str(f, "epoch");
        last = 0;
        last_eid.clear();
        connect(0);
    }
    std::set<std::string> collect(const std::set<std::string>& want,
                                  std::chrono::milliseconds timeout = seconds(10)) {
        std::set<std::string> seen;
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline && resyncs < 4) {
            std::optional<boost::json::object> f;
            try {
                f = conn->read_frame(milliseconds(100));
            } catch (const std::exception&) {
                connect(last);  // closed after an error frame already handled
                continue;
            }
            if (!f) {
                bool all = true;
                for (const auto& w : want)
                    all = all && seen.contains(w);
                if (all) break;
                continue;
            }
            const std::string op = str(*f, "op");
            if (op == "ping") conn->send_line(R"({"op":"pong"})");
            if (op == "error") on_error(*f);
            if (op != "event") continue;
            const auto seq = static_cast<std::uint64_t>(f->at("seq").as_int64());
            if (seq <= last) continue;  // already processed: what a terminal must do
            last = seq;
            last_eid = str(*f, "eid");
            seen.insert(str(*f, "order_id"));
            conn->ack(seq);
        }
        return seen;
    }
};

// Finding 5: POS-1 of store S-A and POS-1 of store S-B are two terminals. Connected at once,
// neither replaces the other, and each gets its own store's events only.
TEST_F(TerminalIdentity, SameTerminalIdInTwoStoresIsTwoTerminals) {
    terminal_conn a(term()), b(term());
    a.hello("POS-1", "S-A");
    b.hello("POS-1", "S-B");
    ASSERT_EQ(register_order(http(), "XA-1", "POS-1", "S-A"), 201);
    ASSERT_EQ(register_order(http(), "XB-1", "POS-1", "S-B"), 201);
    ASSERT_EQ(notify(http(), "XA-1"), 200);
    ASSERT_EQ(notify(http(), "XB-1"), 200);
    const auto ea = a.next_event(seconds(5));
    ASSERT_TRUE(ea.has_value()) << "S-A's POS-1 got no event (kicked?)";
    EXPECT_EQ(str(*ea, "order_id"), "XA-1");
    EXPECT_EQ(str(*ea, "store_id"), "S-A");
    const auto eb = b.next_event(seconds(5));
    ASSERT_TRUE(eb.has_value());
    EXPECT_EQ(str(*eb, "order_id"), "XB-1");
    EXPECT_EQ(str(*eb, "store_id"), "S-B");
    // Nothing else for either: no other store's event, no `replaced`.
    EXPECT_FALSE(a.next_event(milliseconds(300)).has_value());
    EXPECT_FALSE(b.next_event(milliseconds(300)).has_value());
}

// Finding 5: a device moved from S-A to S-B (a new token for (S-B, POS-9)) is a different
// terminal: it never receives S-A's events, its old store subscription included.
TEST_F(TerminalIdentity, MovedDeviceNoLongerReceivesItsOldStoresEvents) {
    {
        terminal_conn old_home(term());
        old_home.hello("POS-9", "S-A", std::nullopt, true);
    }
    terminal_conn moved(term());
    moved.hello("POS-9", "S-B", std::nullopt, true);
    ASSERT_EQ(register_order(http(), "MV-A", "POS-2", "S-A"), 201);
    ASSERT_EQ(notify(http(), "MV-A"), 200);
    ASSERT_EQ(register_order(http(), "MV-B", "POS-2", "S-B"), 201);
    ASSERT_EQ(notify(http(), "MV-B"), 200);
    const auto ev = moved.next_event(seconds(5));
    ASSERT_TRUE(ev.has_value());
    EXPECT_EQ(str(*ev, "order_id"), "MV-B");  // S-B's event; S-A's never came first
    EXPECT_FALSE(moved.next_event(milliseconds(300)).has_value());
}

// Finding 6: Redis is restored two writes behind (a backup, a lagging replica promoted) while
// one terminal is connected and another is away. The next genuine settlements reuse no seq
// silently: the connected terminal and the resuming one each get them (after a `resync`).
TEST_F(TerminalIdentity, RedisRestoredTwoWritesBehindLosesNoLaterEvent) {
    for (const char* o : {"LC-1", "LC-2", "LC-3", "LC-4", "LC-5", "LC-6"})
        ASSERT_EQ(register_order(http(), o, "T-LOSS-C", "S-L"), 201);
    for (const char* o : {"LR-1", "LR-2", "LR-3", "LR-4", "LR-5", "LR-6"})
        ASSERT_EQ(register_order(http(), o, "T-LOSS-R", "S-L"), 201);
    follower c{term(), "T-LOSS-C", "S-L"}, r{term(), "T-LOSS-R", "S-L"};
    c.connect(std::nullopt);
    r.connect(std::nullopt);
    for (const char* o : {"LC-1", "LC-2", "LR-1", "LR-2"})
        ASSERT_EQ(notify(http(), o), 200);
    ASSERT_EQ(c.collect({"LC-1", "LC-2"}), (std::set<std::string>{"LC-1", "LC-2"}));
    ASSERT_EQ(r.collect({"LR-1", "LR-2"}), (std::set<std::string>{"LR-1", "LR-2"}));
    // Each terminal's counter (:seq) and stream (:events), not its presence.
    ASSERT_EQ(backup("posrelay:*T-LOSS-?:[se]*"), 4);
    for (const char* o : {"LC-3", "LC-4", "LR-3", "LR-4"})
        ASSERT_EQ(notify(http(), o), 200);
    ASSERT_EQ(c.collect({"LC-3", "LC-4"}), (std::set<std::string>{"LC-3", "LC-4"}));
    ASSERT_EQ(r.collect({"LR-3", "LR-4"}), (std::set<std::string>{"LR-3", "LR-4"}));
    r.conn.reset();                                     // away, its resume point kept
    ASSERT_EQ(restore("posrelay:*T-LOSS-?:[se]*"), 4);  // the last two writes of each are lost

    for (const char* o : {"LC-5", "LC-6", "LR-5", "LR-6"})
        ASSERT_EQ(notify(http(), o), 200);
    const auto got_c = c.collect({"LC-5", "LC-6"});
    EXPECT_TRUE(got_c.contains("LC-5") && got_c.contains("LC-6"))
        << "the connected terminal dropped events whose seq was reused";
    r.connect(r.last);
    const auto got_r = r.collect({"LR-5", "LR-6"});
    EXPECT_TRUE(got_r.contains("LR-5") && got_r.contains("LR-6"))
        << "the resuming terminal never got events whose seq was reused";
    // Each was told: a new epoch, never a reused seq.
    EXPECT_EQ(c.resyncs, 1);
    EXPECT_EQ(r.resyncs, 1);
    if (HasFailure()) std::cout << node_.p.proc->output();
}

// Redis comes back empty (its data lost, say a restore of nothing) under a connected terminal:
// the next event of the terminal is seq 1 of a new epoch, which the connection notices (its
// stream checks retry until Redis answers again), so the terminal is told `resync` and gets it.
TEST_F(TerminalIdentity, RedisBackEmptyUnderAConnectedTerminal) {
    follower c(term(), "T-EMPTY", "S-E");
    c.connect(std::nullopt);
    ASSERT_EQ(register_order(http(), "EM-1", "T-EMPTY", "S-E"), 201);
    ASSERT_EQ(notify(http(), "EM-1"), 200);
    ASSERT_EQ(c.collect({"EM-1"}), (std::set<std::string>{"EM-1"}));
    redis_.kill();
    redis_.restart();
    ASSERT_TRUE(wait_ready(http()));
    int registered = 0;
    for (int i = 0; i < 100 && registered != 201; ++i) {
        registered = register_order(http(), "EM-2", "T-EMPTY", "S-E");
        if (registered != 201) wait_ready(http());
    }
    ASSERT_EQ(registered, 201);
    ASSERT_EQ(notify(http(), "EM-2"), 200);
    const auto got = c.collect({"EM-2"});
    EXPECT_TRUE(got.contains("EM-2")) << "the event reusing seq 1 was dropped";
    EXPECT_EQ(c.resyncs, 1);
    if (HasFailure()) std::cout << node_.p.proc->output();
}

// A terminal resuming in an epoch that is not its stream's gets `resync` naming the current
// epoch; reconnecting there from seq 0 replays the epoch. A client without epochs resuming past
// the stream gets resume_gap, which it knows.
TEST_F(TerminalIdentity, ResumingInAnOldEpochIsToldResync) {
    ASSERT_EQ(register_order(http(), "OE-1", "T-OE", "S-OE"), 201);
    std::string epoch;
    {
        terminal_conn t(term());
        const auto w = t.handshake("T-OE", "S-OE", {std::nullopt, false, "", std::nullopt});
        ASSERT_EQ(str(w, "op"), "welcome");
        epoch = str(w, "epoch");
        ASSERT_FALSE(epoch.empty());
        EXPECT_EQ(w.at("last_seq").as_int64(), 0);
        ASSERT_EQ(notify(http(), "OE-1"), 200);
        const auto ev = t.next_event();
        ASSERT_TRUE(ev.has_value());
        EXPECT_EQ(str(*ev, "epoch"), epoch);
        EXPECT_FALSE(str(*ev, "eid").empty());
    }
    terminal_conn old(term());
    const auto f = old.handshake("T-OE", "S-OE", {1, false, "0old0", std::nullopt});
    EXPECT_EQ(str(f, "op"), "error");
    EXPECT_EQ(str(f, "code"), "resync");
    EXPECT_EQ(str(f, "epoch"), epoch);
    EXPECT_TRUE(f.at("fatal").as_bool());
    EXPECT_TRUE(old.closed_within(seconds(5)));
    terminal_conn again(term());
    const auto w = again.handshake("T-OE", "S-OE", {0, false, epoch, std::nullopt});
    ASSERT_EQ(str(w, "op"), "welcome");
    const auto ev = again.next_event();
    ASSERT_TRUE(ev.has_value());
    EXPECT_EQ(str(*ev, "order_id"), "OE-1");
    terminal_conn v1(term());
    const auto gap = v1.handshake("T-OE", "S-OE", {9, false, std::nullopt, std::nullopt});
    EXPECT_EQ(str(gap, "code"), "resume_gap");
}

}  // namespace
}  // namespace posrelay::test
