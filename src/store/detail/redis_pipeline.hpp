// Sans-io core of a pipelined Redis connection: formats commands into one outgoing buffer,
// keeps the FIFO of commands awaiting replies, parses replies with hiredis's redisReader and
// decides timeouts. No sockets and no clocks of its own: the Asio glue feeds it bytes and time.
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "posrelay/store/redis_connection.hpp"

struct redisReader;

namespace posrelay::store::detail {

using redis_handler =
    boost::asio::any_completion_handler<void(boost::system::error_code, redis_reply)>;
using redis_clock = std::chrono::steady_clock;

// A command's outcome, to be delivered (posted) by the glue.
struct redis_completion {
    redis_handler handler;
    boost::system::error_code ec;
    redis_reply reply;
    redis_clock::duration latency{};  // enqueue to reply (zero unless a reply came)
};

// Invariants:
//  - entries_ is in send order; the n-th reply read belongs to entries_[0] at that time.
//  - every command has the same timeout, so deadlines grow along entries_ and the entries
//    already timed out (handler moved out, reply still owed) are exactly its first expired_.
//  - output_ holds formatted commands not yet handed to the writer (take_output()).
class redis_pipeline {
public:
    redis_pipeline(std::size_t max_pending, redis_clock::duration command_timeout);
    ~redis_pipeline();
    redis_pipeline(const redis_pipeline&) = delete;
    redis_pipeline& operator=(const redis_pipeline&) = delete;

    // Formats `args` onto the output and queues `h` for its reply. On failure `h` is left
    // untouched and the error is returned: queue_full (max_pending reached) or
    // protocol_error (empty command or the formatter failed).
    [[nodiscard]] boost::system::error_code push(redis_args args, redis_handler&& h,
                                                 redis_clock::time_point now);

    // True when push() just created the only entry that has not timed out, i.e. the
    // earliest deadline changed and a timer waiting for next_deadline() must be re-armed.
    [[nodiscard]] bool deadline_moved_earlier() const noexcept {
        return entries_.size() - expired_ == 1;
    }

    [[nodiscard]] bool has_output() const noexcept { return !output_.empty(); }
    // Moves the pending output into `out` (cleared first): one gathered write of all of it.
    void take_output(std::string& out);

    // Parses `n` bytes; appends the commands they complete to `done`, in order. Replies to
    // commands that already timed out are dropped. With `pushes`, pub/sub messages (RESP2
    // arrays ["message", channel, payload] of a subscribed connection) are not replies: they
    // are appended there. Returns protocol_error on a malformed stream or a reply nobody
    // asked for (the connection must then be closed).
    [[nodiscard]] boost::system::error_code feed(const char* data, std::size_t n,
                                                 redis_clock::time_point now,
                                                 std::vector<redis_completion>& done,
                                                 std::vector<redis_reply>* pushes = nullptr);

    // Completes with `timeout` every command whose deadline passed (they keep their place).
    void expire(redis_clock::time_point now, std::vector<redis_completion>& done);
    // True when the oldest command waits for longer than twice the command timeout: the
    // server (or the path to it) is presumed dead.
    [[nodiscard]] bool dead(redis_clock::time_point now) const noexcept;
    // When expire() or dead() next has something to do; time_point::max() when idle.
    [[nodiscard]] redis_clock::time_point next_deadline() const noexcept;

    // Completes every remaining command with `ec` and drops the output (connection gone).
    void fail_all(boost::system::error_code ec, std::vector<redis_completion>& done);

    // Commands written or queued whose reply is still owed (timed-out ones included).
    [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }

private:
    struct entry {
        redis_handler handler;  // empty once timed out
        redis_clock::time_point enqueued;
    };
    struct reader_deleter {
        void operator()(redisReader* r) const noexcept;
    };

    std::size_t max_pending_;
    redis_clock::duration timeout_;
    std::deque<entry> entries_;
    std::size_t expired_ = 0;
    std::string output_;
    redis_reply building_;  // the reply the reader is filling in (see reply_functions)
    std::unique_ptr<redisReader, reader_deleter> reader_;
};

}  // namespace posrelay::store::detail
