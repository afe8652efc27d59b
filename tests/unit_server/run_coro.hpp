// Runs a coroutine to completion on a private io_context on the calling thread: a unit test
// of code on the store interfaces is then single-threaded and deterministic.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <functional>

namespace posrelay::test {

template <class T>
T run_coro(boost::asio::awaitable<T> a) {
    boost::asio::io_context ctx;
    auto f = boost::asio::co_spawn(ctx, std::move(a), boost::asio::use_future);
    ctx.run();
    return f.get();
}

// Runs `ctx` on this thread until `done()` holds or `timeout` passes; true when it held.
inline bool run_until(boost::asio::io_context& ctx, const std::function<bool()>& done,
                      std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        ctx.restart();
        ctx.run_for(std::chrono::milliseconds(10));
    }
    return true;
}

}  // namespace posrelay::test
