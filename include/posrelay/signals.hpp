// The signals that stop a server process, and SIGHUP, which asks it to reload.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <functional>

namespace posrelay {

// From construction on, SIGINT and SIGTERM are caught instead of killing the process: make
// one before the process announces itself (its "listening" line), so a stop request that
// comes right after is not fatal but waits for wait().
// `catch_hup`: SIGHUP is caught too (from construction on: a reload request never kills).
class stop_signals {
public:
    explicit stop_signals(bool catch_hup = false);
    stop_signals(const stop_signals&) = delete;
    stop_signals& operator=(const stop_signals&) = delete;

    // Blocks until SIGINT or SIGTERM arrived (or has arrived already), logs "shutting down"
    // with it, and returns it. Each SIGHUP meanwhile calls `on_hup` on this thread (one at a
    // time; SIGHUPs that arrive during one are merged into the next).
    int wait(const std::function<void()>& on_hup = {});

private:
    boost::asio::io_context ctx_;
    boost::asio::signal_set set_;
};

}  // namespace posrelay
