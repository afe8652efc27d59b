// Frames the terminal protocol refuses, as a client sees them (issue 17): an over-limit or
// binary WebSocket message is answered with an error frame (not a bare close), and a request
// with an invalid id gets a non-fatal bad_request (the connection stays open).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

#include "posrelay/fanout/protocol.hpp"
#include "redis_server.hpp"
#include "terminal_conn.hpp"

namespace posrelay::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using std::chrono::seconds;

class TerminalFrames : public ::testing::Test {
protected:
    void SetUp() override {
        redis_.start();
        node_ = start_relay_node({"--terminal-listen", "127.0.0.1:0"}, relay_env(redis_.url()));
    }
    redis_server redis_;
    relay_node node_;
};

// A WebSocket terminal connection (blocking, reads time out after 10 s).
struct ws_client {
    asio::io_context ioc;
    beast::websocket::stream<asio::ip::tcp::socket> ws{ioc};
    explicit ws_client(unsigned short port) {
        ws.next_layer().connect({asio::ip::make_address("127.0.0.1"), port});
        timeval tv{10, 0};
        ::setsockopt(ws.next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ws.handshake("127.0.0.1", "/v1/terminal");
    }
    // The next message as a JSON object; an empty object when the connection closed instead.
    boost::json::object next() {
        beast::flat_buffer b;
        beast::error_code ec;
        ws.read(b, ec);
        if (ec) return {};
        return boost::json::parse(beast::buffers_to_string(b.data())).as_object();
    }
};

TEST_F(TerminalFrames, WebSocketMessageOverTheLimitGetsFrameTooLarge) {
    ws_client c(node_.p.port);
    const std::string big = R"({"op":"ping","pad":")" + std::string(20000, 'x') + R"("})";
    c.ws.text(true);
    c.ws.write(asio::buffer(big));
    const auto f = c.next();
    EXPECT_EQ(str(f, "op"), "error");
    EXPECT_EQ(str(f, "code"), "frame_too_large");
}

TEST_F(TerminalFrames, WebSocketBinaryMessageIsBadFrame) {
    ws_client c(node_.p.port);
    const std::string hello = R"({"op":"ping"})";
    c.ws.binary(true);
    c.ws.write(asio::buffer(hello));
    const auto f = c.next();
    EXPECT_EQ(str(f, "op"), "error");
    EXPECT_EQ(str(f, "code"), "bad_frame");
    EXPECT_EQ(str(f, "message"), "frames are WebSocket text messages, not binary");
}

TEST_F(TerminalFrames, RequestWithAnInvalidIdIsANonFatalBadRequest) {
    terminal_conn c(node_.terminal_port);
    c.hello("T-ID", "S-1");
    for (const std::string& id : {std::string("7"), '"' + std::string(65, 'i') + '"'}) {
        c.send_line(R"({"op":"status","order_id":"X","id":)" + id + "}");
        std::optional<boost::json::object> f;
        do {
            f = c.read_frame(seconds(5));
        } while (f && str(*f, "op") == "ping");
        ASSERT_TRUE(f.has_value()) << id;
        EXPECT_EQ(str(*f, "code"), "bad_request") << id;
        EXPECT_FALSE(f->at("fatal").as_bool()) << id;
    }
    c.send_line(R"({"op":"ping","id":"still-open"})");
    const auto pong = c.read_frame(seconds(5));
    ASSERT_TRUE(pong.has_value());
    EXPECT_EQ(str(*pong, "id"), "still-open");
}

}  // namespace
}  // namespace posrelay::test
