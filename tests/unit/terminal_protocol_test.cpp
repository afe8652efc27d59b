// Tests of the terminal protocol frames: every accepted client frame, every refusal (with
// its code and message), and the exact text of every server frame.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>
#include <utility>
#include <vector>

#include "posrelay/fanout/protocol.hpp"

namespace {

using namespace posrelay::fanout;

constexpr std::size_t max_frame = 16384;
constexpr std::string_view token_67 =
    "v1.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

struct result {
    bool ok = false;
    client_frame frame;
    parse_failure err;
};

result parse(std::string_view text, std::size_t max = max_frame) {
    frame_parser parser{max};
    const simdjson::padded_string padded{text};
    result r;
    r.ok = parser.parse(padded, r.frame, r.err);
    return r;
}

// A hello with `extra` members appended (each a raw `"key":value` string).
std::string hello(std::string_view extra = {}) {
    std::string s = R"({"op":"hello","v":1,"terminal_id":"T-9","store_id":"S_1.a","token":")";
    s += token_67;
    s += '"';
    if (!extra.empty()) {
        s += ',';
        s += extra;
    }
    s += '}';
    return s;
}

void expect_failure(std::string_view text, errc code, std::string_view message) {
    SCOPED_TRACE(std::string{text.substr(0, 200)});
    const result r = parse(text);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(to_string(r.err.code), to_string(code));
    EXPECT_EQ(r.err.message, message);
}

// The builders promise valid JSON objects: check with simdjson's DOM parser.
void expect_valid_json_line(const std::string& frame) {
    ASSERT_FALSE(frame.empty());
    EXPECT_EQ(frame.back(), '\n');
    EXPECT_EQ(frame.find('\n'), frame.size() - 1) << "one line only";
    simdjson::dom::parser dom;
    simdjson::dom::element root;
    ASSERT_EQ(dom.parse(frame).get(root), simdjson::SUCCESS) << frame;
    EXPECT_TRUE(root.is_object());
}

// ---- accepted frames --------------------------------------------------------------------

TEST(TerminalFrameParser, HelloMinimal) {
    const result r = parse(hello());
    ASSERT_TRUE(r.ok) << r.err.message;
    EXPECT_EQ(r.frame.kind, frame_kind::hello);
    EXPECT_EQ(r.frame.hello.version, 1);
    EXPECT_EQ(r.frame.hello.terminal_id, "T-9");
    EXPECT_EQ(r.frame.hello.store_id, "S_1.a");
    EXPECT_EQ(r.frame.hello.token, token_67);
    EXPECT_FALSE(r.frame.hello.resume_from.has_value());
    EXPECT_FALSE(r.frame.hello.subscribe_store);
}

TEST(TerminalFrameParser, HelloWithResumeAndSubscribe) {
    const result r = parse(hello(R"("resume_from":41,"subscribe":["store"])"));
    ASSERT_TRUE(r.ok) << r.err.message;
    ASSERT_TRUE(r.frame.hello.resume_from.has_value());
    EXPECT_EQ(*r.frame.hello.resume_from, 41U);
    EXPECT_TRUE(r.frame.hello.subscribe_store);
}

TEST(TerminalFrameParser, HelloOptionalFieldsNullOrEmpty) {
    const result r = parse(hello(R"("resume_from":null,"subscribe":null)"));
    ASSERT_TRUE(r.ok) << r.err.message;
    EXPECT_FALSE(r.frame.hello.resume_from.has_value());
    EXPECT_FALSE(r.frame.hello.subscribe_store);

    const result empty = parse(hello(R"("resume_from":0,"subscribe":[])"));
    ASSERT_TRUE(empty.ok) << empty.err.message;
    EXPECT_EQ(empty.frame.hello.resume_from, 0U);
    EXPECT_FALSE(empty.frame.hello.subscribe_store);
}

TEST(TerminalFrameParser, HelloLargestValues) {
    const std::string id64(64, 'x');
    const std::string token256(256, 't');
    const std::string text = R"({"op":"hello","v":1,"terminal_id":")" + id64 + R"(","store_id":")" +
                             id64 + R"(","token":")" + token256 +
                             R"(","resume_from":18446744073709551615})";
    const result r = parse(text);
    ASSERT_TRUE(r.ok) << r.err.message;
    EXPECT_EQ(r.frame.hello.terminal_id, id64);
    EXPECT_EQ(r.frame.hello.token, token256);
    EXPECT_EQ(r.frame.hello.resume_from, UINT64_MAX);
}

TEST(TerminalFrameParser, FieldsInAnyOrderUnknownFieldsIgnored) {
    const std::string text =
        R"( { "extra":{"nested":[1,2.5e3,{"a":null}],"b":true}, "token":"x", "store_id":"S",)"
        R"( "future":"field", "v":1, "terminal_id":"T", "seq":"ignored", "id":7,)"
        R"( "op":"hello" } )";
    const result r = parse(text);
    ASSERT_TRUE(r.ok) << r.err.message;
    EXPECT_EQ(r.frame.hello.terminal_id, "T");
    EXPECT_EQ(r.frame.hello.store_id, "S");
    EXPECT_EQ(r.frame.hello.token, "x");
}

TEST(TerminalFrameParser, EscapedKeysAndValues) {
    const result r = parse(
        R"({"o\u0070":"hello","v":1,"terminal_id":"T\u002d1","store_id":"S","token":"a\"b\\c"})");
    ASSERT_TRUE(r.ok) << r.err.message;
    EXPECT_EQ(r.frame.hello.terminal_id, "T-1");
    EXPECT_EQ(r.frame.hello.token, "a\"b\\c");
}

TEST(TerminalFrameParser, EmptyTokenIsLeftToVerification) {
    const result r = parse(R"({"op":"hello","v":1,"terminal_id":"T","store_id":"S","token":""})");
    ASSERT_TRUE(r.ok) << r.err.message;
    EXPECT_EQ(r.frame.hello.token, "");
}

TEST(TerminalFrameParser, CarriageReturnIsWhitespace) {
    const result r = parse("{\"op\":\"pong\"}\r");
    ASSERT_TRUE(r.ok) << r.err.message;
    EXPECT_EQ(r.frame.kind, frame_kind::pong);
}

TEST(TerminalFrameParser, Ack) {
    const result r = parse(R"({"op":"ack","seq":12345678901234})");
    ASSERT_TRUE(r.ok) << r.err.message;
    EXPECT_EQ(r.frame.kind, frame_kind::ack);
    EXPECT_EQ(r.frame.ack.seq, 12345678901234U);
    const result zero = parse(R"({"seq":0,"op":"ack"})");
    ASSERT_TRUE(zero.ok) << zero.err.message;
    EXPECT_EQ(zero.frame.ack.seq, 0U);
}

TEST(TerminalFrameParser, PingWithAndWithoutId) {
    const result r = parse(R"({"op":"ping","id":"p-1"})");
    ASSERT_TRUE(r.ok) << r.err.message;
    EXPECT_EQ(r.frame.kind, frame_kind::ping);
    EXPECT_EQ(r.frame.ping.id, "p-1");
    const result bare = parse(R"({"op":"ping"})");
    ASSERT_TRUE(bare.ok);
    EXPECT_EQ(bare.frame.ping.id, "");
    const result null_id = parse(R"({"op":"ping","id":null})");
    ASSERT_TRUE(null_id.ok);
    EXPECT_EQ(null_id.frame.ping.id, "");
    const result id64 = parse(R"({"op":"ping","id":")" + std::string(64, 'i') + R"("})");
    ASSERT_TRUE(id64.ok);
    EXPECT_EQ(id64.frame.ping.id.size(), 64U);
}

TEST(TerminalFrameParser, Pong) {
    const result r = parse(R"({"op":"pong","id":{"whatever":1}})");
    ASSERT_TRUE(r.ok) << r.err.message;
    EXPECT_EQ(r.frame.kind, frame_kind::pong);
}

TEST(TerminalFrameParser, RequestsKeepTheWholeFrame) {
    for (const auto op : request_ops) {
        const std::string text = R"({"op":")" + std::string{op} +
                                 R"(","id":"r-7","order_id":"A1","gross_amount":"10000"})";
        const result r = parse(text);
        ASSERT_TRUE(r.ok) << r.err.message;
        EXPECT_EQ(r.frame.kind, frame_kind::request);
        EXPECT_EQ(r.frame.request.op, op);
        EXPECT_EQ(r.frame.request.id, "r-7");
        EXPECT_EQ(r.frame.request.json, text);
    }
    const result no_id = parse(R"({"op":"status","order_id":"A1"})");
    ASSERT_TRUE(no_id.ok);
    EXPECT_EQ(no_id.frame.request.id, "");
}

TEST(TerminalFrameParser, ParserIsReusable) {
    frame_parser parser{max_frame};
    client_frame frame;
    parse_failure err;
    const simdjson::padded_string bad{std::string_view{"{nope"}};
    EXPECT_FALSE(parser.parse(bad, frame, err));
    for (int i = 0; i < 3; ++i) {
        const simdjson::padded_string good{hello()};
        ASSERT_TRUE(parser.parse(good, frame, err)) << err.message;
        EXPECT_EQ(frame.hello.terminal_id, "T-9");
        const simdjson::padded_string ack{std::string_view{R"({"op":"ack","seq":3})"}};
        ASSERT_TRUE(parser.parse(ack, frame, err));
        EXPECT_EQ(frame.kind, frame_kind::ack);
    }
}

// ---- refused frames ---------------------------------------------------------------------

TEST(TerminalFrameParser, NotJson) {
    expect_failure("", errc::bad_frame, "frame is empty");
    expect_failure("   ", errc::bad_frame, "frame is empty");
    expect_failure("hello", errc::bad_frame, "frame is not valid JSON");
    expect_failure(R"({"op":"ping")", errc::bad_frame, "frame is not valid JSON");
    expect_failure(R"({"op":"ping",})", errc::bad_frame, "frame is not valid JSON");
    expect_failure(R"({"op":'ping'})", errc::bad_frame, "frame is not valid JSON");
    expect_failure(R"({"op":"ping","x":01})", errc::bad_frame, "frame is not valid JSON");
    expect_failure(R"({"op":"ping","x":tru})", errc::bad_frame, "frame is not valid JSON");
    expect_failure(R"({"op":"ping","x":nul})", errc::bad_frame, "frame is not valid JSON");
    expect_failure(R"({"op":"ping","x":"\q"})", errc::bad_frame, "frame is not valid JSON");
    expect_failure(R"({"op":"ping","x":[1,]})", errc::bad_frame, "frame is not valid JSON");
    expect_failure("{\"op\":\"ping\",\"x\":\"a\tb\"}", errc::bad_frame, "frame is not valid JSON");
}

TEST(TerminalFrameParser, TruncatedAtEveryLength) {
    const std::string full = hello(R"("resume_from":5,"subscribe":["store"],"x":[{"y":1}])");
    for (std::size_t n = 0; n < full.size(); ++n) {
        const result r = parse(std::string_view{full}.substr(0, n));
        EXPECT_FALSE(r.ok) << n;
        EXPECT_EQ(r.err.code, errc::bad_frame) << n;
    }
}

TEST(TerminalFrameParser, NotUtf8) {
    expect_failure("{\"op\":\"ping\",\"id\":\"\xff\"}", errc::bad_frame,
                   "frame is not valid UTF-8");
    expect_failure("{\"op\":\"ping\",\"x\xc3\":1}", errc::bad_frame, "frame is not valid UTF-8");
}

TEST(TerminalFrameParser, NotAnObject) {
    for (const auto text : {"[]", R"(["op","ping"])", "1", R"("ping")", "null", "true"}) {
        expect_failure(text, errc::bad_frame, "frame must be a JSON object");
    }
}

TEST(TerminalFrameParser, TrailingContent) {
    expect_failure(R"({"op":"ping"} {"op":"ping"})", errc::bad_frame,
                   "content after the JSON object");
    // Some trailing bytes are already refused as JSON syntax; the code is the same.
    for (const auto text : {R"({"op":"ping"}x)", R"({"op":"ping"}})", R"({"op":"ping"}])",
                            R"({"op":"ping"]})", R"({"op":"ping"} 1)", R"({"op":"ping"},)"}) {
        SCOPED_TRACE(text);
        const result r = parse(text);
        EXPECT_FALSE(r.ok);
        EXPECT_EQ(r.err.code, errc::bad_frame);
    }
    expect_failure("{\"op\":\"ping\"}\n{\"op\":\"pong\"}", errc::bad_frame,
                   "content after the JSON object");
}

TEST(TerminalFrameParser, TooDeep) {
    std::string deep = R"({"op":"ping","x":)";
    for (int i = 0; i < 40; ++i)
        deep += '[';
    for (int i = 0; i < 40; ++i)
        deep += ']';
    deep += '}';
    expect_failure(deep, errc::bad_frame, "frame nests deeper than 32 levels");
}

// §3: the frame's own object is level 1, so a value may hold 31 levels (32 in all).
TEST(TerminalFrameParser, NestingCountsTheFrameObjectAsLevelOne) {
    const auto nested = [](int levels) {
        return R"({"op":"ping","x":)" + std::string(levels, '[') + std::string(levels, ']') + "}";
    };
    EXPECT_TRUE(parse(nested(31)).ok);
    expect_failure(nested(32), errc::bad_frame, "frame nests deeper than 32 levels");
}

TEST(TerminalFrameParser, FrameTooLarge) {
    const std::string text = R"({"op":"ping","pad":")" + std::string(100, 'x') + R"("})";
    const result fits = parse(text, text.size());
    EXPECT_TRUE(fits.ok) << fits.err.message;
    const result r = parse(text, text.size() - 1);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.err.code, errc::frame_too_large);
    EXPECT_EQ(r.err.message, "frame is larger than " + std::to_string(text.size() - 1) + " bytes");
    // Larger than the limit is refused before parsing, even when it is not JSON at all.
    const result junk = parse(std::string(100, '\xff'), 99);
    EXPECT_EQ(junk.err.code, errc::frame_too_large);
}

TEST(TerminalFrameParser, Op) {
    expect_failure("{}", errc::bad_frame, "op is required");
    expect_failure(R"({"seq":1})", errc::bad_frame, "op is required");
    expect_failure(R"({"op":1})", errc::bad_frame, "op must be a string");
    expect_failure(R"({"op":null})", errc::bad_frame, "op must be a string");
    expect_failure(R"({"op":["ping"]})", errc::bad_frame, "op must be a string");
    expect_failure(R"({"op":"ping","op":"pong"})", errc::bad_frame, "op appears more than once");
}

TEST(TerminalFrameParser, UnknownOp) {
    for (const auto op : {"", "PING", "hello ", "welcome", "event", "error", "goaway", "refund"}) {
        expect_failure(R"({"op":")" + std::string{op} + R"("})", errc::unknown_op,
                       "op is not an operation of protocol version 1");
    }
}

TEST(TerminalFrameParser, UnknownOpStillNeedsValidJson) {
    expect_failure(R"({"op":"nope","x":[})", errc::bad_frame, "frame is not valid JSON");
}

TEST(TerminalFrameParser, HelloVersion) {
    const std::string base = R"("op":"hello","terminal_id":"T","store_id":"S","token":"t")";
    expect_failure("{" + base + "}", errc::bad_frame, "v must be an integer");
    expect_failure("{" + base + R"(,"v":"1"})", errc::bad_frame, "v must be an integer");
    expect_failure("{" + base + R"(,"v":1.0})", errc::bad_frame, "v must be an integer");
    expect_failure("{" + base + R"(,"v":1e0})", errc::bad_frame, "v must be an integer");
    expect_failure("{" + base + R"(,"v":null})", errc::bad_frame, "v must be an integer");
    expect_failure("{" + base + R"(,"v":1,"v":1})", errc::bad_frame, "v appears more than once");
    for (const auto v : {"0", "2", "-1", "99999999999999999999999"}) {
        expect_failure("{" + base + R"(,"v":)" + v + "}", errc::unsupported_version,
                       "v is not a supported protocol version (supported: 1)");
    }
    // The version is judged first: a v2 hello may have different fields.
    expect_failure(R"({"op":"hello","v":2})", errc::unsupported_version,
                   "v is not a supported protocol version (supported: 1)");
}

TEST(TerminalFrameParser, HelloIds) {
    const std::string tid_msg = "terminal_id must be 1-64 of A-Z a-z 0-9 . _ -";
    const std::string sid_msg = "store_id must be 1-64 of A-Z a-z 0-9 . _ -";
    const auto with = [](std::string_view tid, std::string_view sid) {
        return std::string{R"({"op":"hello","v":1,"token":"t")"} + std::string{tid} +
               std::string{sid} + "}";
    };
    expect_failure(with("", R"(,"store_id":"S")"), errc::bad_frame, tid_msg);
    expect_failure(with(R"(,"terminal_id":"T")", ""), errc::bad_frame, sid_msg);
    for (const auto bad : {R"("")", R"("T 1")", R"("T/1")", R"("T:1")", R"("Tä")", R"("T\n")",
                           R"(1)", R"(null)", R"(["T"])"}) {
        expect_failure(with(std::string{R"(,"terminal_id":)"} + bad, R"(,"store_id":"S")"),
                       errc::bad_frame, tid_msg);
        expect_failure(with(R"(,"terminal_id":"T")", std::string{R"(,"store_id":)"} + bad),
                       errc::bad_frame, sid_msg);
    }
    const std::string id65(65, 'x');
    expect_failure(with(R"(,"terminal_id":")" + id65 + "\"", R"(,"store_id":"S")"), errc::bad_frame,
                   tid_msg);
    expect_failure(with(R"(,"terminal_id":"T","terminal_id":"T")", R"(,"store_id":"S")"),
                   errc::bad_frame, "terminal_id appears more than once");
}

// Issue 16: the limit fits a JWT (ES256 with long ids), 2048 bytes.
TEST(TerminalFrameParser, HelloToken) {
    const std::string msg = "token must be a string of at most 2048 bytes";
    const std::string base = R"("op":"hello","v":1,"terminal_id":"T","store_id":"S")";
    expect_failure("{" + base + "}", errc::bad_frame, msg);
    expect_failure("{" + base + R"(,"token":null})", errc::bad_frame, msg);
    expect_failure("{" + base + R"(,"token":12})", errc::bad_frame, msg);
    const std::string long_token(2049, 's');
    const result r = parse("{" + base + R"(,"token":")" + long_token + "\"}");
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.err.code, errc::bad_frame);
    EXPECT_EQ(r.err.message, msg);
    EXPECT_EQ(r.err.message.find(long_token.substr(0, 8)), std::string::npos);  // no echo
    expect_failure("{" + base + R"(,"token":"a","token":"b"})", errc::bad_frame,
                   "token appears more than once");
}

TEST(TerminalFrameParser, HelloResumeFrom) {
    const std::string msg = "resume_from must be a non-negative integer";
    for (const auto bad :
         {"-1", "1.5", "1e3", "-0", R"("5")", "true", "[5]", "18446744073709551616"}) {
        expect_failure(hello(std::string{R"("resume_from":)"} + bad), errc::bad_frame, msg);
    }
    expect_failure(hello(R"("resume_from":1,"resume_from":2)"), errc::bad_frame,
                   "resume_from appears more than once");
}

TEST(TerminalFrameParser, HelloSubscribe) {
    expect_failure(hello(R"("subscribe":"store")"), errc::bad_frame,
                   "subscribe must be an array of strings");
    expect_failure(hello(R"("subscribe":{"store":true})"), errc::bad_frame,
                   "subscribe must be an array of strings");
    expect_failure(hello(R"("subscribe":["store",1])"), errc::bad_frame,
                   "subscribe must be an array of strings");
    expect_failure(hello(R"("subscribe":[null])"), errc::bad_frame,
                   "subscribe must be an array of strings");
    expect_failure(hello(R"("subscribe":["orders"])"), errc::bad_frame,
                   "subscribe may only contain \"store\"");
    expect_failure(hello(R"("subscribe":["store","Store"])"), errc::bad_frame,
                   "subscribe may only contain \"store\"");
    expect_failure(hello(R"("subscribe":[""])"), errc::bad_frame,
                   "subscribe may only contain \"store\"");
    expect_failure(hello(R"("subscribe":["store","store"])"), errc::bad_frame,
                   "subscribe lists \"store\" more than once");
    expect_failure(hello(R"("subscribe":[],"subscribe":["store"])"), errc::bad_frame,
                   "subscribe appears more than once");
}

TEST(TerminalFrameParser, AckSeq) {
    const std::string msg = "seq must be a non-negative integer";
    expect_failure(R"({"op":"ack"})", errc::bad_frame, msg);
    for (const auto bad : {"-1", "2.0", "1E2", R"("3")", "null", "{}", "18446744073709551616"}) {
        expect_failure(std::string{R"({"op":"ack","seq":)"} + bad + "}", errc::bad_frame, msg);
    }
    expect_failure(R"({"op":"ack","seq":1,"seq":2})", errc::bad_frame,
                   "seq appears more than once");
}

TEST(TerminalFrameParser, PingIds) {
    const std::string msg = "id must be a string of at most 64 bytes";
    const std::string id65 = '"' + std::string(65, 'i') + '"';
    for (const auto& bad : {std::string{"1"}, std::string{"[]"}, id65}) {
        expect_failure(R"({"op":"ping","id":)" + bad + "}", errc::bad_frame, msg);
    }
    expect_failure(R"({"op":"ping","id":"a","id":"b"})", errc::bad_frame,
                   "id appears more than once");
}

// Issue 17: an invalid request id is an error about the request (§13: never fatal), so the
// frame parses as a request carrying id_error; it was a fatal bad_frame before.
TEST(TerminalFrameParser, InvalidRequestIdsAreKeptForANonFatalAnswer) {
    const std::string msg = "id must be a string of at most 64 bytes";
    const std::string id65 = '"' + std::string(65, 'i') + '"';
    for (const auto op : {"charge", "cancel", "expire", "status"}) {
        struct bad_case {
            std::string id, message;
        } cases[] = {
            {"1", msg}, {"[]", msg}, {id65, msg}, {R"("a","id":"b")", "id appears more than once"}};
        for (const auto& c : cases) {
            const auto r = parse(R"({"op":")" + std::string{op} + R"(","id":)" + c.id + "}");
            ASSERT_TRUE(r.ok) << op << " " << c.id;
            EXPECT_EQ(r.frame.kind, frame_kind::request);
            EXPECT_EQ(r.frame.request.op, op);
            EXPECT_EQ(r.frame.request.id, "");
            EXPECT_EQ(r.frame.request.id_error, c.message);
        }
        EXPECT_EQ(parse(R"({"op":")" + std::string{op} + R"(","id":"ok"})").frame.request.id_error,
                  "");
    }
}

TEST(TerminalFrameParser, FailureLeavesOutputUntouched) {
    frame_parser parser{max_frame};
    client_frame frame;
    parse_failure err;
    const simdjson::padded_string good{hello()};
    ASSERT_TRUE(parser.parse(good, frame, err));
    const simdjson::padded_string bad{std::string_view{
        R"({"op":"hello","v":1,"terminal_id":"OTHER","store_id":"S","token":"t","subscribe":["x"]})"}};
    EXPECT_FALSE(parser.parse(bad, frame, err));
    EXPECT_EQ(frame.hello.terminal_id, "T-9");
}

TEST(TerminalFrameParser, ValidId) {
    EXPECT_TRUE(valid_id("a"));
    EXPECT_TRUE(valid_id("AZaz09._-"));
    EXPECT_TRUE(valid_id(std::string(64, '9')));
    EXPECT_FALSE(valid_id(""));
    EXPECT_FALSE(valid_id(std::string(65, '9')));
    for (const char c : std::string_view{" /:@+~\\\"\n\0", 10}) {
        EXPECT_FALSE(valid_id(std::string{"a"} + c)) << int{c};
    }
}

TEST(TerminalErrc, StableNames) {
    const std::vector<std::pair<errc, std::string_view>> names = {
        {errc::bad_frame, "bad_frame"},
        {errc::frame_too_large, "frame_too_large"},
        {errc::unknown_op, "unknown_op"},
        {errc::unsupported_version, "unsupported_version"},
        {errc::handshake_required, "handshake_required"},
        {errc::handshake_timeout, "handshake_timeout"},
        {errc::bad_token, "bad_token"},
        {errc::rate_limited, "rate_limited"},
        {errc::too_many_connections, "too_many_connections"},
        {errc::resume_gap, "resume_gap"},
        {errc::bad_ack, "bad_ack"},
        {errc::slow_consumer, "slow_consumer"},
        {errc::idle_timeout, "idle_timeout"},
        {errc::replaced, "replaced"},
        {errc::bad_request, "bad_request"},
        {errc::unavailable, "unavailable"},
        {errc::internal_error, "internal_error"},
    };
    for (const auto& [code, name] : names)
        EXPECT_EQ(to_string(code), name);
}

// ---- server frames ----------------------------------------------------------------------

TEST(TerminalFrames, Welcome) {
    welcome_info w;
    w.terminal_id = "T-9";
    w.store_id = "S-1";
    w.last_seq = 42;
    w.epoch = "18c3f0a1b2c3d";
    w.resume_from = 40;
    w.heartbeat_ms = 15000;
    w.max_frame_bytes = 16384;
    w.max_inflight = 64;
    w.subscribe_store = true;
    w.node = "relay-a";
    const std::string f = welcome_frame(w);
    EXPECT_EQ(
        f,
        R"({"op":"welcome","v":1,"terminal_id":"T-9","store_id":"S-1","last_seq":42,)"
        R"("epoch":"18c3f0a1b2c3d","resume_from":40,"heartbeat_ms":15000,"max_frame_bytes":16384,)"
        R"("max_inflight":64,"subscribe":["store"],"node":"relay-a"})"
        "\n");
    expect_valid_json_line(f);

    w.resume_from.reset();
    w.subscribe_store = false;
    w.last_seq = UINT64_MAX;
    w.epoch.clear();
    w.node = "n\"1\\\n";
    const std::string g = welcome_frame(w);
    EXPECT_EQ(g, R"({"op":"welcome","v":1,"terminal_id":"T-9","store_id":"S-1",)"
                 R"("last_seq":18446744073709551615,"epoch":"","resume_from":null,)"
                 R"("heartbeat_ms":15000,)"
                 R"("max_frame_bytes":16384,"max_inflight":64,"subscribe":[],"node":"n\"1\\\n"})"
                 "\n");
    expect_valid_json_line(g);
}

TEST(TerminalFrames, Resync) {
    const std::string f = resync_frame("18c3f0a1b2c3d", 3);
    expect_valid_json_line(f);
    simdjson::dom::parser dom;
    simdjson::dom::element o;
    ASSERT_EQ(dom.parse(f).get(o), simdjson::SUCCESS);
    EXPECT_EQ(std::string_view(o["code"]), "resync");
    EXPECT_TRUE(bool(o["fatal"]));
    EXPECT_EQ(std::string_view(o["epoch"]), "18c3f0a1b2c3d");
    EXPECT_EQ(std::uint64_t(o["last_seq"]), 3u);
    EXPECT_EQ(to_string(errc::resync), "resync");
}

// The hello's epoch fields (§8): absent (a client without epochs), "" (none yet), a value;
// resume_eid as a string of digits.
TEST(TerminalFrames, HelloEpochFields) {
    struct hello_case {
        std::string extra;
        bool ok;
        std::optional<std::string> epoch;
        std::optional<std::uint64_t> eid;
    } cases[] = {
        {"", true, std::nullopt, std::nullopt},
        {R"("epoch":null)", true, std::nullopt, std::nullopt},
        {R"("epoch":"")", true, "", std::nullopt},
        {R"("epoch":"18c3f0a1b2c3d","resume_from":4,"resume_eid":"1733450000123456")", true,
         "18c3f0a1b2c3d", 1733450000123456u},
        {R"("epoch":"UPPER")", false, std::nullopt, std::nullopt},
        {R"("epoch":7)", false, std::nullopt, std::nullopt},
        {R"("epoch":"0123456789012345678901234")", false, std::nullopt, std::nullopt},
        {R"("epoch":"a","epoch":"b")", false, std::nullopt, std::nullopt},
        {R"("resume_eid":12)", false, std::nullopt, std::nullopt},
        {R"("resume_eid":"12x")", false, std::nullopt, std::nullopt},
        {R"("resume_eid":"123456789012345678901")", false, std::nullopt, std::nullopt},
    };
    for (const auto& c : cases) {
        const result r = parse(hello(c.extra));
        EXPECT_EQ(r.ok, c.ok) << c.extra;
        if (!r.ok || !c.ok) continue;
        EXPECT_EQ(r.frame.hello.epoch, c.epoch) << c.extra;
        EXPECT_EQ(r.frame.hello.resume_eid, c.eid) << c.extra;
    }
}

TEST(TerminalFrames, Event) {
    const std::string_view stored =
        R"({"seq":2,"terminal_id":"T-9","store_id":"S-1","order_id":"A1",)"
        R"("transaction_status":"settlement","fraud_status":"accept","paid":true})";
    const std::string f = event_frame(stored);
    EXPECT_EQ(f, std::string{R"({"op":"event",)"} + std::string{stored.substr(1)} + "\n");
    expect_valid_json_line(f);

    EXPECT_EQ(event_frame("{}"), "{\"op\":\"event\"}\n");
    EXPECT_EQ(event_frame(" { } \n"), "{\"op\":\"event\"}\n");
    EXPECT_EQ(event_frame("{\"seq\":1}\n"), "{\"op\":\"event\",\"seq\":1}\n");
    // Pretty-printed JSON still makes one line.
    const std::string pretty = event_frame("{\n  \"seq\": 3,\r\n  \"paid\": false\n}");
    EXPECT_EQ(pretty, "{\"op\":\"event\",\"seq\": 3,    \"paid\": false }\n");
    expect_valid_json_line(pretty);
}

TEST(TerminalFrames, Error) {
    const std::string f = error_frame(errc::bad_token, "token does not match", true);
    EXPECT_EQ(f,
              R"({"op":"error","code":"bad_token","message":"token does not match","fatal":true})"
              "\n");
    expect_valid_json_line(f);
    const std::string g =
        error_frame(errc::bad_request, "order_id \"x\" is\ttoo long", false, "r-1");
    EXPECT_EQ(g, R"({"op":"error","code":"bad_request","message":"order_id \"x\" is\ttoo long",)"
                 R"("fatal":false,"id":"r-1"})"
                 "\n");
    expect_valid_json_line(g);
    // Invalid UTF-8 in a message still gives valid JSON.
    expect_valid_json_line(error_frame(errc::internal_error, "bad \xff byte", true, "\xc3"));
}

TEST(TerminalFrames, PingPongGoaway) {
    EXPECT_EQ(ping_server_frame(), "{\"op\":\"ping\"}\n");
    EXPECT_EQ(pong_frame_for(""), "{\"op\":\"pong\"}\n");
    EXPECT_EQ(pong_frame_for("p-1"), "{\"op\":\"pong\",\"id\":\"p-1\"}\n");
    EXPECT_EQ(pong_frame_for("a\"b"), "{\"op\":\"pong\",\"id\":\"a\\\"b\"}\n");
    EXPECT_EQ(goaway_frame("shutdown", 5000),
              "{\"op\":\"goaway\",\"reason\":\"shutdown\",\"reconnect_after_ms\":5000}\n");
    for (const auto& f : {ping_server_frame(), pong_frame_for("x\n"), goaway_frame("r\"", 0)})
        expect_valid_json_line(f);
}

// What the server sends, the server's own parser handles as a client frame where the op
// exists both ways (ping, pong): a client built on the same rules understands it.
TEST(TerminalFrames, PingAndPongRoundTrip) {
    const std::string pong = pong_frame_for("p-9");
    const result r = parse(std::string_view{pong}.substr(0, pong.size() - 1));
    ASSERT_TRUE(r.ok) << r.err.message;
    EXPECT_EQ(r.frame.kind, frame_kind::pong);
    const std::string ping = ping_server_frame();
    EXPECT_TRUE(parse(std::string_view{ping}.substr(0, ping.size() - 1)).ok);
}

}  // namespace
