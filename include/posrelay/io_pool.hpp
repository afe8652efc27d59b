// A fixed set of io threads, one io_context each (shared-nothing: a connection lives on
// the context that accepted it, and other threads reach it only by posting).
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

namespace posrelay {

class io_pool {
public:
    // threads == 0: one per usable core.
    explicit io_pool(unsigned threads);

    // The cores this process may run on (its CPU affinity; at least 1).
    [[nodiscard]] static unsigned usable_cores() noexcept;
    ~io_pool();
    io_pool(const io_pool&) = delete;
    io_pool& operator=(const io_pool&) = delete;

    [[nodiscard]] std::size_t size() const noexcept { return contexts_.size(); }
    [[nodiscard]] boost::asio::io_context& context(std::size_t i) { return *contexts_[i]; }

    // Starts one thread per context. Each thread escaping an exception logs it and
    // goes on running its context (a bug in one handler must not stop the service).
    void start();
    // Lets the contexts run out of work, or stops them at once when `now`.
    void stop(bool now);
    // Waits until every context has run what was posted to it before this call, `rounds`
    // times over (what those handlers post in turn runs in the next round), at most `limit`
    // in all. False when it timed out, when the threads are not running, or when called from
    // an io thread (it would wait on itself). Before stop(true): work posted by a stop() of
    // the owner (e.g. the Redis connections failing their pending commands) then runs.
    bool settle(std::chrono::milliseconds limit, int rounds);
    // Joins the threads (after stop).
    void join();

    static constexpr std::size_t npos = static_cast<std::size_t>(-1);
    // The index of the io thread calling, or npos when called from any other thread.
    [[nodiscard]] static std::size_t current_index() noexcept;

private:
    using guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
    std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
    std::vector<std::optional<guard>> guards_;
    std::vector<std::thread> threads_;
};

}  // namespace posrelay
