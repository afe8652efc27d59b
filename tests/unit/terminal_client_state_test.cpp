// Tests of the pure parts of the terminal client tools: the state file (read, atomic
// replace, foreign files refused), backoff bounds, the reconnect policy, frame building and
// parsing, token minting, posrelay-terminal's command line (tokens never from argv; request
// commands and their arguments) and the QR code it draws.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tools/terminal_frames.hpp"
#include "tools/terminal_options.hpp"
#include "tools/terminal_qr.hpp"
#include "tools/terminal_state.hpp"

using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace tools = posrelay::tools;

namespace {

class temp_dir {
public:
    temp_dir() {
        std::string tmpl = (fs::temp_directory_path() / "posrelay-terminal-XXXXXX").string();
        path_ = ::mkdtemp(tmpl.data()) ? fs::path(tmpl) : fs::path();
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    [[nodiscard]] std::string file(const std::string& name) const {
        return (path_ / name).string();
    }
    [[nodiscard]] std::vector<std::string> entries() const {
        std::vector<std::string> out;
        for (const auto& e : fs::directory_iterator(path_))
            out.push_back(e.path().filename().string());
        return out;
    }

private:
    fs::path path_;
};

void write_file(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

// ---- state file -------------------------------------------------------------------------

TEST(TerminalClientStateFile, MissingFileMeansNoResumePoint) {
    temp_dir dir;
    EXPECT_EQ(tools::read_state_file(dir.file("absent.json"), "T1", "S1"), std::nullopt);
}

TEST(TerminalClientStateFile, WriteThenReadRoundTrips) {
    temp_dir dir;
    const auto path = dir.file("state.json");
    tools::write_state_file(path, {"T1", "S1", 41});
    EXPECT_EQ(read_file(path),
              "{\"v\":1,\"terminal_id\":\"T1\",\"store_id\":\"S1\",\"last_seq\":41}\n");
    EXPECT_EQ(tools::read_state_file(path, "T1", "S1"), 41u);
}

// Version 2 keeps the epoch with the position (protocol §8), the eid of the last event, the
// open orders and whether their status must still be re-read after a resync.
TEST(TerminalClientStateFile, EpochAndOpenOrdersRoundTrip) {
    temp_dir dir;
    const auto path = dir.file("state.json");
    tools::terminal_state st{"T1", "S1", 7};
    st.epoch = "6753a1f012c3f";
    st.eid = "1733450000123456";
    st.open = {"A1", "B\"2"};
    st.resync = true;
    tools::write_state_file(path, st);
    EXPECT_EQ(read_file(path),
              "{\"v\":2,\"terminal_id\":\"T1\",\"store_id\":\"S1\",\"last_seq\":7,"
              "\"epoch\":\"6753a1f012c3f\",\"eid\":\"1733450000123456\",\"open\":[\"A1\","
              "\"B\\\"2\"],\"resync\":true}\n");
    const auto back = tools::read_state(path, "T1", "S1");
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->last_seq, 7u);
    EXPECT_EQ(back->epoch, "6753a1f012c3f");
    EXPECT_EQ(back->eid, "1733450000123456");
    EXPECT_EQ(back->open, (std::vector<std::string>{"A1", "B\"2"}));
    EXPECT_TRUE(back->resync);
    // A version 1 file has no epoch: the client sends "" and learns it from the welcome.
    write_file(path, "{\"v\":1,\"last_seq\":3}");
    const auto v1 = tools::read_state(path, "T1", "S1");
    ASSERT_TRUE(v1.has_value());
    EXPECT_FALSE(v1->epoch.has_value());
    EXPECT_TRUE(v1->open.empty());
}

TEST(TerminalClientStateFile, ReplaceIsAtomicAndLeavesNoTemporaryFiles) {
    temp_dir dir;
    const auto path = dir.file("state.json");
    for (std::uint64_t seq = 1; seq <= 50; ++seq) {
        tools::write_state_file(path, {"T1", "S1", seq});
        // A reader between two writes sees a complete file with the latest seq.
        ASSERT_EQ(tools::read_state_file(path, "T1", "S1"), seq);
    }
    EXPECT_EQ(dir.entries(), std::vector<std::string>{"state.json"});
}

TEST(TerminalClientStateFile, ReplacesTheFileInsteadOfRewritingIt) {
    temp_dir dir;
    const auto path = dir.file("state.json");
    tools::write_state_file(path, {"T1", "S1", 1});
    struct stat before {};
    ASSERT_EQ(::stat(path.c_str(), &before), 0);
    // A hard link to the old file keeps the old contents: the new state is a new inode.
    const auto link = dir.file("old.json");
    ASSERT_EQ(::link(path.c_str(), link.c_str()), 0);
    tools::write_state_file(path, {"T1", "S1", 2});
    struct stat after {};
    ASSERT_EQ(::stat(path.c_str(), &after), 0);
    EXPECT_NE(before.st_ino, after.st_ino);
    EXPECT_EQ(tools::read_state_file(link, "T1", "S1"), 1u);
    EXPECT_EQ(tools::read_state_file(path, "T1", "S1"), 2u);
}

TEST(TerminalClientStateFile, FailedWriteKeepsTheOldFile) {
    temp_dir dir;
    const auto path = dir.file("state.json");
    tools::write_state_file(path, {"T1", "S1", 7});
    EXPECT_THROW(tools::write_state_file(dir.file("no-such-dir/state.json"), {"T1", "S1", 8}),
                 tools::state_error);
    EXPECT_EQ(tools::read_state_file(path, "T1", "S1"), 7u);
    EXPECT_EQ(dir.entries(), std::vector<std::string>{"state.json"});
}

TEST(TerminalClientStateFile, AcceptsABareNumber) {
    temp_dir dir;
    const auto path = dir.file("state");
    write_file(path, "41\n");
    EXPECT_EQ(tools::read_state_file(path, "T1", "S1"), 41u);
}

TEST(TerminalClientStateFile, RefusesMalformedFiles) {
    temp_dir dir;
    const auto path = dir.file("state");
    for (const char* text :
         {"", "garbage", "41x", "-1", "{\"last_seq\":-3}", "{\"last_seq\":\"4\"}",
          "{\"terminal_id\":\"T1\"}", "[1]", "{\"last_seq\":1,\"store_id\":5}"}) {
        write_file(path, text);
        EXPECT_THROW((void)tools::read_state_file(path, "T1", "S1"), tools::state_error) << text;
    }
}

TEST(TerminalClientStateFile, RefusesAnotherTerminalsFile) {
    temp_dir dir;
    const auto path = dir.file("state.json");
    tools::write_state_file(path, {"T1", "S1", 5});
    try {
        (void)tools::read_state_file(path, "T2", "S1");
        FAIL() << "no error";
    } catch (const tools::state_error& e) {
        EXPECT_NE(std::string(e.what()).find("terminal T1"), std::string::npos) << e.what();
    }
    EXPECT_THROW((void)tools::read_state_file(path, "T1", "S9"), tools::state_error);
}

TEST(TerminalClientStateFile, RemoveToleratesAMissingFile) {
    temp_dir dir;
    const auto path = dir.file("state.json");
    tools::write_state_file(path, {"T1", "S1", 5});
    tools::remove_state_file(path);
    EXPECT_EQ(tools::read_state_file(path, "T1", "S1"), std::nullopt);
    EXPECT_NO_THROW(tools::remove_state_file(path));
}

// ---- backoff ----------------------------------------------------------------------------

TEST(TerminalClientBackoff, DoublesUpToTheCapWithJitterInTheUpperHalf) {
    tools::backoff b(250ms, 30s);
    std::chrono::milliseconds expected_ceiling = 250ms;
    for (int i = 0; i < 20; ++i) {
        EXPECT_EQ(b.ceiling(b.attempts()), expected_ceiling);
        tools::backoff lo = b;
        tools::backoff hi = b;
        const auto low = lo.next(0);
        const auto high = hi.next(~std::uint64_t{0});
        EXPECT_GE(low, expected_ceiling / 2);
        EXPECT_LE(high, expected_ceiling);
        for (std::uint64_t r : {1ULL, 12345ULL, 987654321ULL, 0xdeadbeefcafeULL}) {
            tools::backoff copy = b;
            const auto d = copy.next(r);
            EXPECT_GE(d, expected_ceiling / 2);
            EXPECT_LE(d, expected_ceiling);
        }
        (void)b.next(static_cast<std::uint64_t>(i) * 7919);
        expected_ceiling = std::min<std::chrono::milliseconds>(expected_ceiling * 2, 30s);
    }
    EXPECT_EQ(b.ceiling(1000), 30s);
}

TEST(TerminalClientBackoff, ResetStartsOver) {
    tools::backoff b(100ms, 5s);
    for (int i = 0; i < 10; ++i)
        (void)b.next(42);
    EXPECT_EQ(b.ceiling(b.attempts()), 5s);
    b.reset();
    EXPECT_EQ(b.attempts(), 0u);
    EXPECT_LE(b.next(~std::uint64_t{0}), 100ms);
}

TEST(TerminalClientBackoff, DegenerateBoundsStayPositive) {
    tools::backoff b(0ms, 0ms);
    for (int i = 0; i < 5; ++i) {
        const auto d = b.next(~std::uint64_t{0});
        EXPECT_GE(d, 0ms);
        EXPECT_LE(d, 1ms);
    }
}

TEST(TerminalClientBackoff, GoawayDelayIsTheServersPlusUpToAsMuchAgain) {
    EXPECT_EQ(tools::goaway_delay(500ms, 0), 500ms);
    EXPECT_EQ(tools::goaway_delay(500ms, 500), 1000ms);
    EXPECT_LE(tools::goaway_delay(500ms, ~std::uint64_t{0}), 1000ms);
    EXPECT_GE(tools::goaway_delay(500ms, ~std::uint64_t{0}), 500ms);
    EXPECT_EQ(tools::goaway_delay(0ms, 12345), 0ms);
    EXPECT_EQ(tools::goaway_delay(-5ms, 12345), 0ms);
}

// ---- reconnect policy -------------------------------------------------------------------

TEST(TerminalClientOutcome, ClassifiesEachWayAConnectionEnds) {
    using k = tools::outcome::kind;
    auto with_error = [](std::string code) {
        tools::outcome o;
        o.what = k::server_error;
        o.error.code = std::move(code);
        o.error.fatal = true;
        return tools::classify(o);
    };
    EXPECT_EQ(with_error("bad_token"), tools::next_step::give_up);
    EXPECT_EQ(with_error("unsupported_version"), tools::next_step::give_up);
    EXPECT_EQ(with_error("replaced"), tools::next_step::give_up);
    EXPECT_EQ(with_error("bad_ack"), tools::next_step::give_up);
    EXPECT_EQ(with_error("token_expired"), tools::next_step::give_up);  // issue 16
    EXPECT_EQ(with_error("revoked"), tools::next_step::give_up);  // the same token stays revoked
    for (const char* c : {"bad_frame", "frame_too_large", "unknown_op", "handshake_required"}) {
        EXPECT_EQ(with_error(c), tools::next_step::give_up) << c;
    }
    // Unknown codes are treated by their fatal flag: the connection ends, reconnect.
    EXPECT_EQ(with_error("some_future_code"), tools::next_step::reconnect);
    EXPECT_EQ(with_error("resume_gap"), tools::next_step::resync);
    EXPECT_EQ(with_error("resync"), tools::next_step::new_epoch);
    for (const char* c : {"rate_limited", "too_many_connections", "slow_consumer", "idle_timeout",
                          "handshake_timeout", "unavailable", "internal_error"}) {
        EXPECT_EQ(with_error(c), tools::next_step::reconnect) << c;
    }
    tools::outcome rl;
    rl.what = k::server_error;
    rl.error.code = "rate_limited";
    EXPECT_EQ(tools::minimum_delay(rl), 60s);
    rl.error.code = "slow_consumer";
    EXPECT_EQ(tools::minimum_delay(rl), 0ms);

    tools::outcome o;
    EXPECT_EQ(tools::classify(o), tools::next_step::stop);  // closed by us
    o.what = k::goaway;
    EXPECT_EQ(tools::classify(o), tools::next_step::reconnect_after);
    for (auto kind : {k::connect_failed, k::handshake_failed, k::connection_lost,
                      k::heartbeat_timeout, k::write_timeout, k::protocol_error}) {
        o.what = kind;
        EXPECT_EQ(tools::classify(o), tools::next_step::reconnect) << tools::to_string(kind);
    }
}

// ---- frames -----------------------------------------------------------------------------

TEST(TerminalClientFrames, BuildsClientFrames) {
    tools::hello_params h{"T1", "S1", "v1.abc", std::nullopt, false, std::nullopt, ""};
    EXPECT_EQ(tools::hello_json(h),
              R"({"op":"hello","v":1,"terminal_id":"T1","store_id":"S1","token":"v1.abc"})");
    h.resume_from = 41;
    h.subscribe_store = true;
    EXPECT_EQ(tools::hello_json(h),
              R"({"op":"hello","v":1,"terminal_id":"T1","store_id":"S1","token":"v1.abc",)"
              R"("resume_from":41,"subscribe":["store"]})");
    h.epoch = "6753a1f012c3f";
    h.resume_eid = "1733450000123456";
    EXPECT_EQ(tools::hello_json(h),
              R"({"op":"hello","v":1,"terminal_id":"T1","store_id":"S1","token":"v1.abc",)"
              R"("resume_from":41,"subscribe":["store"],"epoch":"6753a1f012c3f",)"
              R"("resume_eid":"1733450000123456"})");
    h.resume_from.reset();  // a fresh start names no eid; "" says it knows epochs
    h.epoch = "";
    EXPECT_EQ(tools::hello_json(h),
              R"({"op":"hello","v":1,"terminal_id":"T1","store_id":"S1","token":"v1.abc",)"
              R"("subscribe":["store"],"epoch":""})");
    h.terminal_id = "a\"b";
    EXPECT_NE(tools::hello_json(h).find(R"("terminal_id":"a\"b")"), std::string::npos);
    EXPECT_EQ(tools::ack_json(42), R"({"op":"ack","seq":42})");
    EXPECT_EQ(tools::ping_json("x"), R"({"op":"ping","id":"x"})");
    EXPECT_EQ(tools::pong_json(), R"({"op":"pong"})");

    posrelay::midtrans::charge_request r;
    r.order_id = "A1";
    r.gross_amount = 10000;
    EXPECT_EQ(tools::charge_json(r, "r1"),
              R"({"op":"charge","id":"r1","order_id":"A1","gross_amount":10000,)"
              R"("payment_type":"qris"})");
    r.type = posrelay::midtrans::payment_type::gopay;
    r.expiry = 900s;
    EXPECT_EQ(tools::charge_json(r, "r2"),
              R"({"op":"charge","id":"r2","order_id":"A1","gross_amount":10000,)"
              R"("payment_type":"gopay","expiry":900})");
    EXPECT_EQ(tools::order_request_json("status", "r3", "A1"),
              R"({"op":"status","id":"r3","order_id":"A1"})");
}

TEST(TerminalClientFrames, ParsesResults) {
    tools::server_frame f;
    std::string err;
    ASSERT_TRUE(tools::parse_server_frame(
        R"({"op":"result","id":"r1","request":"charge","order_id":"A1","transaction_id":"t",)"
        R"("transaction_status":"pending","gross_amount":"10000.00","payment_type":"qris",)"
        R"("qr_code_url":"http://m/qr","qr_string":"000201","deeplink":"",)"
        R"("expiry_time":"2026-11-24 10:15:00","expiry_ms":1795498439577})",
        f, err))
        << err;
    EXPECT_EQ(f.op, tools::server_op::result);
    EXPECT_EQ(f.id, "r1");
    EXPECT_EQ(f.result.request, "charge");
    EXPECT_EQ(f.result.order_id, "A1");
    EXPECT_EQ(f.result.transaction_status, "pending");
    EXPECT_EQ(f.result.gross_amount, "10000.00");
    EXPECT_EQ(f.result.qr_code_url, "http://m/qr");
    EXPECT_EQ(f.result.qr_string, "000201");
    EXPECT_EQ(f.result.expiry_time, "2026-11-24 10:15:00");
    // status of an order without a status yet: transaction_status null.
    ASSERT_TRUE(
        tools::parse_server_frame(R"({"op":"result","id":"r2","request":"status","order_id":"A1",)"
                                  R"("transaction_status":null,"paid":false})",
                                  f, err));
    EXPECT_EQ(f.result.transaction_status, "");
    EXPECT_FALSE(f.result.paid);
    EXPECT_FALSE(tools::parse_server_frame(R"({"op":"result","paid":"yes"})", f, err));
    EXPECT_FALSE(tools::parse_server_frame(R"({"op":"result","order_id":5})", f, err));
}

TEST(TerminalClientQr, DrawsTheSymbolTwoRowsPerLine) {
    // Version 1 (21 modules) plus a 2-module margin each side: 25 columns, 13 lines.
    const std::string qr = tools::qr_text("A1");
    ASSERT_FALSE(qr.empty());
    std::vector<std::string> lines;
    std::string::size_type start = 0;
    for (auto nl = qr.find('\n'); nl != std::string::npos; nl = qr.find('\n', start)) {
        lines.push_back(qr.substr(start, nl - start));
        start = nl + 1;
    }
    ASSERT_EQ(lines.size(), 13u);
    const std::string full = "\u2588";  // light over light: the margin rows
    std::string margin;
    for (int i = 0; i < 25; ++i)
        margin += full;
    EXPECT_EQ(lines[0], margin);
    // The finder pattern's top two rows after the 2-module margin: dark over dark (its
    // edges), then dark over light (its inside) five times, then its edge again.
    const std::string dark_over_light = "\u2584";
    std::string finder = full + full + " ";
    for (int i = 0; i < 5; ++i)
        finder += dark_over_light;
    finder += " ";
    EXPECT_TRUE(lines[1].starts_with(finder)) << lines[1];
    // Longer data, larger symbol; nothing for nothing or for too much.
    EXPECT_GT(tools::qr_text(std::string(200, 'x')).size(), qr.size());
    EXPECT_EQ(tools::qr_text(""), "");
    EXPECT_EQ(tools::qr_text(std::string(8000, 'x')), "");
}

TEST(TerminalClientFrames, ParsesWelcome) {
    tools::server_frame f;
    std::string err;
    ASSERT_TRUE(tools::parse_server_frame(
        R"({"op":"welcome","v":1,"terminal_id":"T1","store_id":"S1","last_seq":57,)"
        R"("resume_from":41,"heartbeat_ms":15000,"max_frame_bytes":16384,"max_inflight":1000,)"
        R"("subscribe":["store"],"node":"n1"})",
        f, err))
        << err;
    EXPECT_EQ(f.op, tools::server_op::welcome);
    EXPECT_EQ(f.welcome.terminal_id, "T1");
    EXPECT_EQ(f.welcome.last_seq, 57u);
    EXPECT_EQ(f.welcome.resume_from, 41u);
    EXPECT_EQ(f.welcome.heartbeat, 15000ms);
    EXPECT_EQ(f.welcome.max_frame_bytes, 16384u);
    EXPECT_EQ(f.welcome.max_inflight, 1000u);
    EXPECT_TRUE(f.welcome.subscribe_store);
    EXPECT_EQ(f.welcome.node, "n1");

    ASSERT_TRUE(tools::parse_server_frame(
        R"({"op":"welcome","last_seq":0,"resume_from":null,"subscribe":[]})", f, err));
    EXPECT_EQ(f.welcome.resume_from, std::nullopt);
    EXPECT_EQ(f.welcome.heartbeat, tools::default_heartbeat);
    EXPECT_FALSE(f.welcome.subscribe_store);

    EXPECT_FALSE(tools::parse_server_frame(R"({"op":"welcome"})", f, err));
    EXPECT_FALSE(tools::parse_server_frame(R"({"op":"welcome","last_seq":"5"})", f, err));

    // Epochs (protocol §8): the welcome's, an event's with its eid, and a resync error's.
    ASSERT_TRUE(
        tools::parse_server_frame(R"({"op":"welcome","last_seq":3,"epoch":"6753a"})", f, err));
    EXPECT_EQ(f.welcome.epoch, "6753a");
    ASSERT_TRUE(tools::parse_server_frame(
        R"({"op":"event","seq":2,"epoch":"6753a","eid":"1733450000123456","order_id":"A1"})", f,
        err));
    EXPECT_EQ(f.event.epoch, "6753a");
    EXPECT_EQ(f.event.eid, "1733450000123456");
    ASSERT_TRUE(tools::parse_server_frame(
        R"({"op":"error","code":"resync","message":"m","fatal":true,"epoch":"6753b","last_seq":4})",
        f, err));
    EXPECT_EQ(f.error.code, "resync");
    EXPECT_EQ(f.error.epoch, "6753b");
    EXPECT_EQ(f.error.last_seq, 4u);
}

TEST(TerminalClientFrames, ParsesEvent) {
    tools::server_frame f;
    std::string err;
    ASSERT_TRUE(tools::parse_server_frame(
        R"({"op":"event","seq":42,"order_id":"A1","transaction_status":"settlement",)"
        R"("fraud_status":"accept","gross_amount":"10000.00","transaction_id":"x",)"
        R"("source":"notification","event_time_ms":1795498439577,"paid":true,)"
        R"("terminal_id":"T1","store_id":"S1","future_field":{"a":[1,2]}})",
        f, err))
        << err;
    EXPECT_EQ(f.op, tools::server_op::event);
    EXPECT_EQ(f.event.seq, 42u);
    EXPECT_EQ(f.event.event_time_ms, 1795498439577);
    EXPECT_EQ(f.event.order_id, "A1");
    EXPECT_EQ(f.event.transaction_status, "settlement");
    EXPECT_EQ(f.event.terminal_id, "T1");
    EXPECT_TRUE(f.event.paid);

    EXPECT_FALSE(tools::parse_server_frame(R"({"op":"event","order_id":"A1"})", f, err));
    EXPECT_FALSE(tools::parse_server_frame(R"({"op":"event","seq":0})", f, err));
    EXPECT_FALSE(tools::parse_server_frame(R"({"op":"event","seq":-1})", f, err));
    EXPECT_FALSE(tools::parse_server_frame(R"({"op":"event","seq":1.5})", f, err));
    EXPECT_FALSE(tools::parse_server_frame(R"({"op":"event","seq":3,"order_id":7})", f, err));
}

TEST(TerminalClientFrames, ParsesErrorGoawayPingPongAndOthers) {
    tools::server_frame f;
    std::string err;
    ASSERT_TRUE(tools::parse_server_frame(
        R"({"op":"error","code":"bad_token","message":"no","fatal":true})", f, err));
    EXPECT_EQ(f.op, tools::server_op::error);
    EXPECT_EQ(f.error.code, "bad_token");
    EXPECT_TRUE(f.error.fatal);
    ASSERT_TRUE(tools::parse_server_frame(
        R"({"op":"error","code":"bad_request","message":"amount","fatal":false,"id":"r1"})", f,
        err));
    EXPECT_FALSE(f.error.fatal);
    EXPECT_EQ(f.error.id, "r1");
    EXPECT_FALSE(tools::parse_server_frame(R"({"op":"error","message":"x"})", f, err));

    ASSERT_TRUE(tools::parse_server_frame(
        R"({"op":"goaway","reason":"shutdown","reconnect_after_ms":500})", f, err));
    EXPECT_EQ(f.op, tools::server_op::goaway);
    EXPECT_EQ(f.goaway.reason, "shutdown");
    EXPECT_EQ(f.goaway.reconnect_after, 500ms);

    ASSERT_TRUE(tools::parse_server_frame(R"({"op":"ping"})", f, err));
    EXPECT_EQ(f.op, tools::server_op::ping);
    ASSERT_TRUE(tools::parse_server_frame(R"({"op":"pong","id":"c1"})", f, err));
    EXPECT_EQ(f.op, tools::server_op::pong);
    EXPECT_EQ(f.id, "c1");
    ASSERT_TRUE(tools::parse_server_frame(R"({"op":"charge_result","id":"r1"})", f, err));
    EXPECT_EQ(f.op, tools::server_op::other);
    EXPECT_EQ(f.op_name, "charge_result");

    for (const char* bad : {"", "nope", "[1]", "{}", R"({"op":5})", R"({"op":"pong","id":3})",
                            "{\"op\":\"ping\"", R"({"op":"ping"} trailing)"}) {
        EXPECT_FALSE(tools::parse_server_frame(bad, f, err)) << bad;
        EXPECT_FALSE(err.empty());
    }
}

TEST(TerminalClientFrames, MintsTheDocumentedToken) {
    // HMAC-SHA256("s3cret", "posrelay-terminal-v1\nT1\nS1"), computed independently
    // (Python's hmac module).
    EXPECT_EQ(tools::mint_token("s3cret", "T1", "S1"),
              "v1.b5348a58a84fa0f922291684432cab74bde7fe3d6a5d3ac8bc8cc3982f10ac7a");
    EXPECT_NE(tools::mint_token("s3cret", "T1", "S2"), tools::mint_token("s3cret", "T1", "S1"));
    // An empty secret is a valid (if useless) HMAC key.
    EXPECT_EQ(tools::mint_token("", "T1", "S1").size(), 3u + 64u);
}

// ---- command line -----------------------------------------------------------------------

namespace {

tools::terminal_cli parse(std::vector<std::string> args) {
    args.insert(args.begin(), "posrelay-terminal");
    std::vector<const char*> argv;
    for (const auto& a : args)
        argv.push_back(a.c_str());
    argv.push_back(nullptr);
    return tools::parse_terminal_cli(static_cast<int>(args.size()), argv.data());
}

std::string usage_error_of(std::vector<std::string> args) {
    try {
        (void)parse(std::move(args));
    } catch (const tools::usage_error& e) {
        return e.what();
    }
    return "";
}

const std::vector<std::string> base_args = {"--terminal", "T1", "--store", "S1"};

std::vector<std::string> with_base(std::vector<std::string> extra) {
    auto args = base_args;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
}

}  // namespace

TEST(TerminalClientCli, HelpWorksWithoutAnythingElse) {
    auto cli = parse({"--help"});
    EXPECT_EQ(cli.what, tools::terminal_cli::action::help);
    for (const char* opt : {"--connect",
                            "--transport",
                            "--tls-ca",
                            "--tls-cert",
                            "--tls-key",
                            "--tls-insecure",
                            "--sni",
                            "--terminal",
                            "--store",
                            "--token-file",
                            "--subscribe-store",
                            "--state-file",
                            "--ack-every",
                            "--no-ack",
                            "--no-read-after-welcome",
                            "--once",
                            "--exit-after-events",
                            "--timeout",
                            "POSRELAY_TERMINAL_TOKEN",
                            "listen"}) {
        EXPECT_NE(cli.help_text.find(opt), std::string::npos) << opt;
    }
}

TEST(TerminalClientCli, Defaults) {
    auto cli = parse(with_base({"listen"}));
    EXPECT_EQ(cli.what, tools::terminal_cli::action::listen);
    EXPECT_EQ(cli.connect.host, "127.0.0.1");
    EXPECT_EQ(cli.connect.port, 7070);
    EXPECT_EQ(cli.kind, tools::transport::tcp);
    EXPECT_EQ(cli.ws_path, "/v1/terminal");
    EXPECT_EQ(cli.ack_every, 1u);
    EXPECT_FALSE(cli.no_ack);
    EXPECT_TRUE(cli.read_after_welcome);
    EXPECT_FALSE(cli.once);
    EXPECT_EQ(cli.exit_after_events, std::nullopt);
    EXPECT_EQ(cli.timeout, std::nullopt);
    EXPECT_EQ(cli.resume_from, std::nullopt);
    EXPECT_EQ(cli.ack_flush, 100ms);
    EXPECT_EQ(cli.backoff_reset, 60s);
    // WebSocket is served on the HTTP port.
    EXPECT_EQ(parse(with_base({"--transport", "ws", "listen"})).connect.port, 8080);
    EXPECT_EQ(parse(with_base({"--transport", "tls", "listen"})).connect.port, 7070);
    EXPECT_EQ(parse(with_base({"--transport", "ws", "--connect", "h:1", "listen"})).connect.port,
              1);
}

TEST(TerminalClientCli, ParsesEveryOption) {
    auto cli = parse(with_base({"--connect",
                                "[::1]:9443",
                                "--transport",
                                "wss",
                                "--ws-path",
                                "/x",
                                "--tls-ca",
                                "ca.pem",
                                "--tls-cert",
                                "c.pem",
                                "--tls-key",
                                "k.pem",
                                "--tls-insecure",
                                "--sni",
                                "relay.example",
                                "--token-file",
                                "tok",
                                "--subscribe-store",
                                "--state-file",
                                "st.json",
                                "--resume-from",
                                "41",
                                "--ack-every",
                                "5",
                                "--no-ack",
                                "--no-read-after-welcome",
                                "--once",
                                "--exit-after-events",
                                "3",
                                "--timeout",
                                "1.5",
                                "--connect-timeout",
                                "2s",
                                "--write-timeout",
                                "3s",
                                "--backoff-min",
                                "10ms",
                                "--backoff-max",
                                "1m",
                                "--backoff-reset",
                                "5s",
                                "--ack-flush",
                                "0",
                                "--log-level",
                                "debug",
                                "listen"}));
    EXPECT_EQ(cli.connect.host, "::1");
    EXPECT_EQ(cli.connect.port, 9443);
    EXPECT_EQ(cli.kind, tools::transport::wss);
    EXPECT_EQ(cli.ws_path, "/x");
    EXPECT_EQ(cli.tls_ca, "ca.pem");
    EXPECT_EQ(cli.tls_cert, "c.pem");
    EXPECT_EQ(cli.tls_key, "k.pem");
    EXPECT_TRUE(cli.tls_insecure);
    EXPECT_EQ(cli.sni, "relay.example");
    EXPECT_EQ(cli.token_file, "tok");
    EXPECT_TRUE(cli.subscribe_store);
    EXPECT_EQ(cli.state_file, "st.json");
    EXPECT_EQ(cli.resume_from, 41u);
    EXPECT_EQ(cli.ack_every, 5u);
    EXPECT_TRUE(cli.no_ack);
    EXPECT_FALSE(cli.read_after_welcome);
    EXPECT_TRUE(cli.once);
    EXPECT_EQ(cli.exit_after_events, 3u);
    EXPECT_EQ(cli.timeout, 1500ms);
    EXPECT_EQ(cli.connect_timeout, 2s);
    EXPECT_EQ(cli.write_timeout, 3s);
    EXPECT_EQ(cli.backoff_min, 10ms);
    EXPECT_EQ(cli.backoff_max, 60s);
    EXPECT_EQ(cli.backoff_reset, 5s);
    EXPECT_EQ(cli.ack_flush, 0ms);
    EXPECT_EQ(cli.log_level, posrelay::log::level::debug);
}

TEST(TerminalClientCli, RefusesATokenOnTheCommandLineWithoutEchoingIt) {
    for (auto args : {with_base({"--token", "v1.deadbeef", "listen"}),
                      with_base({"--token=v1.deadbeef", "listen"}), with_base({"v1.deadbeef"}),
                      with_base({"listen", "v1.deadbeef"})}) {
        auto msg = usage_error_of(args);
        EXPECT_FALSE(msg.empty());
        EXPECT_EQ(msg.find("deadbeef"), std::string::npos) << msg;
    }
}

TEST(TerminalClientCli, ValidationErrorsNameTheOption) {
    EXPECT_NE(usage_error_of({"listen"}).find("--terminal"), std::string::npos);
    EXPECT_NE(usage_error_of({"--terminal", "T1", "listen"}).find("--store"), std::string::npos);
    EXPECT_NE(usage_error_of(base_args).find("listen"), std::string::npos);
    EXPECT_NE(usage_error_of(with_base({"stop"})).find("stop"), std::string::npos);
    EXPECT_NE(usage_error_of(with_base({"--transport", "udp", "listen"})).find("--transport"),
              std::string::npos);
    EXPECT_NE(usage_error_of(with_base({"--tls-ca", "x", "listen"})).find("tls"),
              std::string::npos);
    EXPECT_NE(usage_error_of(with_base({"--transport", "tls", "--tls-cert", "c", "listen"}))
                  .find("--tls-key"),
              std::string::npos);
    EXPECT_NE(usage_error_of(with_base({"--ack-every", "0", "listen"})).find("--ack-every"),
              std::string::npos);
    EXPECT_NE(usage_error_of(with_base({"--timeout", "soon", "listen"})).find("--timeout"),
              std::string::npos);
    EXPECT_NE(usage_error_of(with_base({"--connect", "nohost", "listen"})).find("--connect"),
              std::string::npos);
    EXPECT_NE(usage_error_of({"--terminal", "T 1", "--store", "S1", "listen"}).find("--terminal"),
              std::string::npos);
    EXPECT_NE(usage_error_of(with_base({"--bogus", "listen"})).find("bogus"), std::string::npos);
    EXPECT_NE(usage_error_of(with_base({"--backoff-min", "10s", "--backoff-max", "1s", "listen"}))
                  .find("--backoff-max"),
              std::string::npos);
}

TEST(TerminalClientCli, TokenFromFileOrEnvironment) {
    temp_dir dir;
    const auto file = dir.file("token");
    write_file(file, "  v1.fromfile\n");
    EXPECT_EQ(tools::load_token(file, "v1.fromenv"), "v1.fromfile");
    EXPECT_EQ(tools::load_token("", " v1.fromenv\n"), "v1.fromenv");
    EXPECT_THROW((void)tools::load_token("", nullptr), tools::usage_error);
    EXPECT_THROW((void)tools::load_token("", "  "), tools::usage_error);
    EXPECT_THROW((void)tools::load_token(dir.file("missing"), "v1.fromenv"), tools::usage_error);
    write_file(file, "\n");
    EXPECT_THROW((void)tools::load_token(file, nullptr), tools::usage_error);
    try {
        write_file(file, std::string(5000, 'a'));
        (void)tools::load_token(file, nullptr);
        FAIL() << "no error";
    } catch (const tools::usage_error& e) {
        EXPECT_EQ(std::string(e.what()).find("aaaa"), std::string::npos);
    }
}

TEST(TerminalClientCli, RequestCommands) {
    using action = tools::terminal_cli::action;
    auto charge = parse(with_base({"charge", "A-1", "10000"}));
    EXPECT_EQ(charge.what, action::charge);
    EXPECT_EQ(charge.order.order_id, "A-1");
    EXPECT_EQ(charge.order.gross_amount, 10000u);
    EXPECT_EQ(charge.order.type, posrelay::midtrans::payment_type::qris);
    EXPECT_EQ(charge.order.expiry, std::nullopt);
    EXPECT_FALSE(charge.wait);
    EXPECT_EQ(charge.timeout, 60s);  // a request is always bounded

    auto waiting = parse(with_base({"charge", "A-1", "10000.00", "--payment-type", "gopay",
                                    "--expiry", "120", "--wait", "--show-qr"}));
    EXPECT_EQ(waiting.order.gross_amount, 10000u);
    EXPECT_EQ(waiting.order.type, posrelay::midtrans::payment_type::gopay);
    EXPECT_EQ(waiting.order.expiry, 120s);
    EXPECT_TRUE(waiting.wait);
    EXPECT_TRUE(waiting.show_qr);
    EXPECT_EQ(waiting.timeout, 180s);  // the expiry plus a margin
    EXPECT_EQ(parse(with_base({"charge", "A-1", "5", "--wait"})).timeout, 960s);
    EXPECT_EQ(parse(with_base({"charge", "A-1", "5", "--timeout", "5s"})).timeout, 5s);

    for (auto [name, a] : {std::pair{"cancel", action::cancel},
                           {"expire", action::expire},
                           {"status", action::status}}) {
        auto cli = parse(with_base({name, "B.2~x"}));
        EXPECT_EQ(cli.what, a) << name;
        EXPECT_EQ(cli.order.order_id, "B.2~x");
        EXPECT_TRUE(tools::is_request(a));
        EXPECT_EQ(tools::to_string(a), name);
    }
    EXPECT_FALSE(tools::is_request(action::listen));
    EXPECT_EQ(parse(with_base({"listen"})).timeout, std::nullopt);

    EXPECT_NE(usage_error_of(with_base({"charge", "A1", "-1"})).find("-1"), std::string::npos);
    EXPECT_NE(usage_error_of(with_base({"charge", "A1", "1e3"})).find("AMOUNT"), std::string::npos);
    EXPECT_NE(usage_error_of(with_base({"charge", "A1", "007"})).find("AMOUNT"), std::string::npos);
    EXPECT_NE(usage_error_of(with_base({"status", "A1", "--exit-after-events", "1"}))
                  .find("--exit-after-events"),
              std::string::npos);
    EXPECT_NE(
        usage_error_of(with_base({"charge", "A1", "5", "--expiry", "604801"})).find("--expiry"),
        std::string::npos);
    // Something that looks like a token is never echoed.
    EXPECT_EQ(usage_error_of(with_base({"v1.secret"})).find("secret"), std::string::npos);
    EXPECT_EQ(usage_error_of(with_base({"listen", "v1.secret"})).find("secret"), std::string::npos);
}

TEST(TerminalClientCli, TransportNames) {
    for (auto t : {tools::transport::tcp, tools::transport::tls, tools::transport::ws,
                   tools::transport::wss}) {
        EXPECT_EQ(tools::parse_transport(tools::to_string(t)), t);
    }
    EXPECT_EQ(tools::parse_transport("TLS"), std::nullopt);
    EXPECT_TRUE(tools::uses_tls(tools::transport::wss));
    EXPECT_FALSE(tools::uses_tls(tools::transport::ws));
    EXPECT_TRUE(tools::uses_websocket(tools::transport::ws));
}

// --observe: listen only, never with a store subscription (an observer cannot change it).
TEST(TerminalClientCli, ObserveIsForListeningOnly) {
    EXPECT_TRUE(parse(with_base({"--observe", "listen"})).observe);
    EXPECT_FALSE(parse(with_base({"listen"})).observe);
    EXPECT_NE(usage_error_of(with_base({"--observe", "status", "A1"})).find("--observe"),
              std::string::npos);
    EXPECT_NE(
        usage_error_of(with_base({"--observe", "--subscribe-store", "listen"})).find("--observe"),
        std::string::npos);
    EXPECT_NE(parse({"--help"}).help_text.find("--observe"), std::string::npos);
}
