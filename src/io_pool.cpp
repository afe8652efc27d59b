// io threads: one io_context per thread, each run until stopped.
#include "posrelay/io_pool.hpp"

#include <sched.h>

#include <boost/asio/post.hpp>

#include <condition_variable>
#include <exception>
#include <mutex>

#include "posrelay/log.hpp"

namespace posrelay {

namespace {
thread_local std::size_t current_io_index = io_pool::npos;
}

unsigned io_pool::usable_cores() noexcept {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return static_cast<unsigned>(CPU_COUNT(&set));
    return std::max(1u, std::thread::hardware_concurrency());
}

io_pool::io_pool(unsigned threads) {
    if (threads == 0) threads = usable_cores();
    for (unsigned i = 0; i < threads; ++i) {
        // concurrency hint 1: each context is run by exactly one thread, so Asio can skip locking.
        contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
        guards_.emplace_back(boost::asio::make_work_guard(*contexts_.back()));
    }
}

io_pool::~io_pool() {
    stop(true);
    join();
}

void io_pool::start() {
    for (std::size_t i = 0; i < contexts_.size(); ++i) {
        threads_.emplace_back([this, i] {
            current_io_index = i;
            for (;;) {
                try {
                    contexts_[i]->run();
                    return;
                } catch (const std::exception& e) {
                    log::line(log::level::error, "io thread caught exception")
                        .num("thread", static_cast<std::int64_t>(i))
                        .str("error", e.what());
                }
            }
        });
    }
}

void io_pool::stop(bool now) {
    for (auto& g : guards_)
        g.reset();
    if (now) {
        for (auto& c : contexts_)
            c->stop();
    }
}

bool io_pool::settle(std::chrono::milliseconds limit, int rounds) {
    if (threads_.empty() || current_index() != npos) return false;
    struct barrier {
        std::mutex m;
        std::condition_variable cv;
        std::size_t left = 0;
    };
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (int r = 0; r < rounds; ++r) {
        auto b = std::make_shared<barrier>();
        b->left = contexts_.size();
        for (auto& c : contexts_) {
            boost::asio::post(*c, [b] {
                std::lock_guard lock(b->m);
                if (--b->left == 0) b->cv.notify_all();
            });
        }
        std::unique_lock lock(b->m);
        if (!b->cv.wait_until(lock, deadline, [&] { return b->left == 0; })) return false;
    }
    return true;
}

void io_pool::join() {
    for (auto& t : threads_) {
        if (t.joinable()) t.join();
    }
    threads_.clear();
}

std::size_t io_pool::current_index() noexcept {
    return current_io_index;
}

}  // namespace posrelay
