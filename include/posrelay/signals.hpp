// The signals that stop a server process.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

namespace posrelay {

// From construction on, SIGINT and SIGTERM are caught instead of killing the process: make
// one before the process announces itself (its "listening" line), so a stop request that
// comes right after is not fatal but waits for wait().
class stop_signals {
public:
    stop_signals();
    stop_signals(const stop_signals&) = delete;
    stop_signals& operator=(const stop_signals&) = delete;

    // Blocks until SIGINT or SIGTERM arrived (or has arrived already), logs "shutting down"
    // with it, and returns it.
    int wait();

private:
    boost::asio::io_context ctx_;
    boost::asio::signal_set set_;
};

}  // namespace posrelay
