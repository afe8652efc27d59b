// Sans-io tests of the Redis pipeline (no socket, no clock): coalesced output, replies fed a
// byte at a time, positional timeouts, dead detection, queue_full and protocol errors. Here
// rather than in tests/unit because the pipeline links hiredis (a posrelay_server dependency).
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "../../src/store/detail/redis_pipeline.hpp"

namespace posrelay::store::detail {
namespace {

using namespace std::chrono_literals;

struct outcome {
    boost::system::error_code ec;
    redis_reply reply;
    bool called = false;
};

class RedisPipeline : public ::testing::Test {
protected:
    redis_handler into(outcome& o) {
        return redis_handler([&o](boost::system::error_code ec, redis_reply r) {
            o.ec = ec;
            o.reply = std::move(r);
            o.called = true;
        });
    }
    void push(outcome& o, std::vector<std::string> args, redis_clock::time_point at) {
        auto h = into(o);
        const std::vector<std::string_view> views(args.begin(), args.end());
        ASSERT_FALSE(pipe_.push(views, std::move(h), at));
    }
    static constexpr std::string_view ping_cmd[] = {"PING"};
    // Runs the completions as the glue would (it posts them).
    void run(std::vector<redis_completion>& done) {
        for (auto& c : done)
            std::move(c.handler)(c.ec, std::move(c.reply));
        done.clear();
    }
    boost::system::error_code feed(std::string_view bytes, bool one_at_a_time = false) {
        boost::system::error_code ec;
        if (one_at_a_time) {
            for (const char ch : bytes) {
                if ((ec = pipe_.feed(&ch, 1, t0_, done_))) break;
            }
        } else {
            ec = pipe_.feed(bytes.data(), bytes.size(), t0_, done_);
        }
        run(done_);
        return ec;
    }

    redis_clock::time_point t0_ = redis_clock::now();
    redis_pipeline pipe_{3, 100ms};
    std::vector<redis_completion> done_;
};

TEST_F(RedisPipeline, CoalescesCommandsIntoOneOutput) {
    outcome a, b;
    push(a, {"PING"}, t0_);
    push(b, {"SET", "k", std::string("v\0\r\n", 4)}, t0_);
    std::string out;
    pipe_.take_output(out);
    std::string expected = "*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\n";
    expected += std::string("v\0\r\n", 4) + "\r\n";
    EXPECT_EQ(out, expected);
    EXPECT_FALSE(pipe_.has_output());
    EXPECT_EQ(pipe_.size(), 2u);
}

TEST_F(RedisPipeline, RepliesFedByteByByteCompleteInOrder) {
    outcome a, b, c;
    push(a, {"GET", "x"}, t0_);
    push(b, {"LRANGE", "l", "0", "-1"}, t0_);
    push(c, {"INCR", "n"}, t0_);
    EXPECT_FALSE(feed("$-1\r\n*3\r\n$1\r\na\r\n+ok\r\n*-1\r\n:42\r\n", true));
    ASSERT_TRUE(a.called && b.called && c.called);
    EXPECT_EQ(a.reply.type, redis_reply::kind::nil);
    ASSERT_EQ(b.reply.elements.size(), 3u);
    EXPECT_EQ(b.reply.elements[0].str, "a");
    EXPECT_EQ(b.reply.elements[1].type, redis_reply::kind::status);
    EXPECT_EQ(b.reply.elements[2].type, redis_reply::kind::nil);
    EXPECT_EQ(c.reply.integer, 42);
    EXPECT_EQ(pipe_.size(), 0u);
}

TEST_F(RedisPipeline, NestedArraysErrorsAndEmptyArraysAreBuiltWhole) {
    // An XRANGE-shaped reply (entries of [id, [field, value]]), then an error, then an empty
    // array, then the same nested reply again: each reply is its own tree, nothing left
    // over from the previous one.
    const std::string xrange =
        "*2\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\ne\r\n$2\r\nv1\r\n*2\r\n$3\r\n2-0\r\n*0\r\n";
    outcome a, b, c, d;
    push(a, {"XRANGE", "s", "-", "+"}, t0_);
    push(b, {"EVALSHA", "x", "0"}, t0_);
    push(c, {"SMEMBERS", "none"}, t0_);
    EXPECT_FALSE(feed(xrange + "-NOSCRIPT No matching script\r\n*0\r\n", true));
    push(d, {"XRANGE", "s", "-", "+"}, t0_);
    EXPECT_FALSE(feed(xrange));
    for (const outcome* o : {&a, &d}) {
        ASSERT_TRUE(o->called);
        ASSERT_EQ(o->reply.type, redis_reply::kind::array);
        ASSERT_EQ(o->reply.elements.size(), 2u);
        const redis_reply& first = o->reply.elements[0];
        ASSERT_EQ(first.elements.size(), 2u);
        EXPECT_EQ(first.elements[0].str, "1-0");
        ASSERT_EQ(first.elements[1].elements.size(), 2u);
        EXPECT_EQ(first.elements[1].elements[0].str, "e");
        EXPECT_EQ(first.elements[1].elements[1].str, "v1");
        EXPECT_EQ(o->reply.elements[1].elements[0].str, "2-0");
        EXPECT_EQ(o->reply.elements[1].elements[1].type, redis_reply::kind::array);
        EXPECT_TRUE(o->reply.elements[1].elements[1].elements.empty());
    }
    ASSERT_TRUE(b.called && c.called);
    EXPECT_TRUE(b.reply.is_error());
    EXPECT_EQ(b.reply.str, "NOSCRIPT No matching script");
    EXPECT_TRUE(b.reply.elements.empty());
    EXPECT_EQ(c.reply.type, redis_reply::kind::array);
    EXPECT_TRUE(c.reply.elements.empty());
    EXPECT_TRUE(c.reply.str.empty());
}

TEST_F(RedisPipeline, TimedOutCommandKeepsItsPlaceAndItsLateReplyIsDropped) {
    outcome a, b, c;
    push(a, {"DEBUG", "SLEEP", "1"}, t0_);
    push(b, {"PING"}, t0_ + 10ms);
    EXPECT_EQ(pipe_.next_deadline(), t0_ + 100ms);
    pipe_.expire(t0_ + 105ms, done_);
    run(done_);
    EXPECT_EQ(a.ec, redis_errc::timeout);
    EXPECT_FALSE(b.called);
    EXPECT_EQ(pipe_.next_deadline(), t0_ + 110ms);
    EXPECT_EQ(pipe_.size(), 2u);
    push(c, {"ECHO", "c"}, t0_ + 106ms);  // b is live: the earliest deadline did not move
    EXPECT_FALSE(pipe_.deadline_moved_earlier());

    EXPECT_FALSE(feed("+OK\r\n"));  // a's late reply: dropped
    EXPECT_FALSE(b.called);
    EXPECT_FALSE(feed("+PONG\r\n$1\r\nc\r\n"));
    EXPECT_EQ(b.reply.str, "PONG");
    EXPECT_EQ(c.reply.str, "c");
    EXPECT_EQ(pipe_.next_deadline(), redis_clock::time_point::max());
}

TEST_F(RedisPipeline, OldestCommandWaitingTwiceTheTimeoutMeansDead) {
    outcome a, b;
    push(a, {"PING"}, t0_);
    EXPECT_TRUE(pipe_.deadline_moved_earlier());
    pipe_.expire(t0_ + 150ms, done_);
    run(done_);
    push(b, {"PING"}, t0_ + 150ms);
    EXPECT_TRUE(pipe_.deadline_moved_earlier());  // the only command not timed out
    EXPECT_EQ(pipe_.next_deadline(), t0_ + 200ms);
    EXPECT_FALSE(pipe_.dead(t0_ + 199ms));
    EXPECT_TRUE(pipe_.dead(t0_ + 200ms));
}

TEST_F(RedisPipeline, QueueFullLeavesTheHandlerWithTheCaller) {
    outcome a, b, c, d;
    push(a, {"PING"}, t0_);
    push(b, {"PING"}, t0_);
    push(c, {"PING"}, t0_);
    auto h = into(d);
    EXPECT_EQ(pipe_.push(ping_cmd, std::move(h), t0_), redis_errc::queue_full);
    EXPECT_TRUE(static_cast<bool>(h));
    EXPECT_EQ(pipe_.push({}, std::move(h), t0_), redis_errc::protocol_error);
    EXPECT_TRUE(static_cast<bool>(h));
}

TEST_F(RedisPipeline, MalformedOrUnaskedRepliesAreProtocolErrors) {
    EXPECT_EQ(feed("+PONG\r\n"), redis_errc::protocol_error);  // nobody asked
    outcome a;
    redis_pipeline p(3, 100ms);
    auto h = into(a);
    ASSERT_FALSE(p.push(ping_cmd, std::move(h), t0_));
    EXPECT_EQ(p.feed("?x\r\n", 4, t0_, done_), redis_errc::protocol_error);
    EXPECT_TRUE(done_.empty());
}

TEST_F(RedisPipeline, FailAllCompletesLiveCommandsAndDropsOutput) {
    outcome a, b;
    push(a, {"PING"}, t0_);
    pipe_.expire(t0_ + 100ms, done_);
    run(done_);
    push(b, {"PING"}, t0_ + 100ms);
    pipe_.fail_all(redis_errc::connection_lost, done_);
    EXPECT_EQ(done_.size(), 1u);  // a already got its timeout
    run(done_);
    EXPECT_EQ(a.ec, redis_errc::timeout);
    EXPECT_EQ(b.ec, redis_errc::connection_lost);
    EXPECT_EQ(pipe_.size(), 0u);
    EXPECT_FALSE(pipe_.has_output());
}

// A subscribed connection: messages Redis pushes are set apart, in order; the replies to
// SUBSCRIBE and PING (also arrays) still complete their commands. Without a push sink the
// same message is a reply nobody asked for.
TEST_F(RedisPipeline, PushedMessagesAreSetApartFromReplies) {
    outcome sub, ping;
    push(sub, {"SUBSCRIBE", "ch"}, t0_);
    push(ping, {"PING"}, t0_);
    std::vector<redis_reply> pushes;
    const std::string bytes =
        "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"
        "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nfirst\r\n"
        "*2\r\n$4\r\npong\r\n$0\r\n\r\n"
        "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$6\r\nsecond\r\n";
    ASSERT_FALSE(pipe_.feed(bytes.data(), bytes.size(), t0_, done_, &pushes));
    run(done_);
    ASSERT_TRUE(sub.called && ping.called);
    EXPECT_EQ(sub.reply.elements.at(0).str, "subscribe");
    EXPECT_EQ(ping.reply.elements.at(0).str, "pong");
    ASSERT_EQ(pushes.size(), 2u);
    EXPECT_EQ(pushes[0].elements.at(2).str, "first");
    EXPECT_EQ(pushes[1].elements.at(2).str, "second");
    EXPECT_EQ(pipe_.size(), 0u);

    const std::string message = "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nx\r\n";
    EXPECT_EQ(feed(message), redis_errc::protocol_error);
}

}  // namespace
}  // namespace posrelay::store::detail
