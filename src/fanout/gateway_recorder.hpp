// The activity recorder of one io thread: every terminal session of the thread adds its
// delivery marks (presence, order timelines) here, and the recorder writes them to the store a
// few ms later, one call per store for everything gathered meanwhile (all of a store's keys
// share its slot), pipelined on the thread's Redis connection. It never blocks the io thread:
// while a flush is in flight, marks gather (bounded: delivery_marks); past the bound a mark is
// dropped and counted (posrelay_activity_marks_dropped_total). Presence and timelines are
// best-effort: a failed write is counted, not retried.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <memory>
#include <string>

#include "posrelay/fanout/delivery_marks.hpp"
#include "posrelay/metrics/registry.hpp"
#include "posrelay/store/terminal_activity.hpp"

namespace posrelay::fanout::detail {

struct recorder_options {
    std::chrono::milliseconds flush_after{5};  // a mark waits at most this long (plus a write)
    std::size_t max_marks = 8192;              // marks waiting per io thread
};

// The metrics every recorder of a node counts into.
struct recorder_metrics {
    explicit recorder_metrics(metrics::registry& reg);
    metrics::counter& dropped;  // marks refused: the thread's marks were full
    metrics::counter& written;  // store batches written
    metrics::counter& failed;   // store batches the store refused or did not answer
};

class activity_recorder : public std::enable_shared_from_this<activity_recorder> {
public:
    activity_recorder(boost::asio::any_io_executor ex, store::terminal_activity& store,
                      recorder_metrics& m, recorder_options o = {});

    // Adds marks (`add(delivery_marks&)` returns false when one was refused) and makes sure a
    // flush is coming. On the recorder's io thread only.
    template <class Add>
    void record(Add&& add) {
        if (!add(marks_)) metrics_.dropped.inc();
        if (!marks_.empty()) arm();
    }
    // Marks waiting (tests).
    [[nodiscard]] std::size_t waiting() const noexcept { return marks_.size(); }

private:
    void arm();
    void flush();

    boost::asio::any_io_executor ex_;
    store::terminal_activity& store_;
    recorder_metrics& metrics_;
    recorder_options opts_;
    delivery_marks marks_;
    boost::asio::steady_timer timer_;
    bool armed_ = false;
    std::size_t in_flight_ = 0;  // store writes of the current flush not yet answered
};

// A new session id: unique in the fleet (random per process, then a counter).
[[nodiscard]] std::string new_session_id();

}  // namespace posrelay::fanout::detail
