// The io thread's activity recorder (gateway_recorder.hpp).
#include "gateway_recorder.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <cstdio>
#include <random>

#include "posrelay/log.hpp"

namespace posrelay::fanout::detail {

namespace asio = boost::asio;

recorder_metrics::recorder_metrics(metrics::registry& reg)
    : dropped(reg.add_counter("posrelay_activity_marks_dropped_total",
                              "Delivery marks (presence, order timelines) dropped: an io "
                              "thread's waiting marks were at their bound.")),
      written(reg.add_counter("posrelay_activity_writes_total",
                              "Batches of delivery marks written to Redis, by outcome.",
                              {{"outcome", "ok"}})),
      failed(reg.add_counter("posrelay_activity_writes_total",
                             "Batches of delivery marks written to Redis, by outcome.",
                             {{"outcome", "error"}})) {}

activity_recorder::activity_recorder(asio::any_io_executor ex, store::terminal_activity& store,
                                     recorder_metrics& m, recorder_options o)
    : ex_(ex), store_(store), metrics_(m), opts_(o), marks_(o.max_marks), timer_(ex) {}

// One timer at a time, and none while the previous flush is in flight: what comes meanwhile
// joins the next flush (under load, the batches grow instead of the calls).
void activity_recorder::arm() {
    if (armed_ || in_flight_ > 0) return;
    armed_ = true;
    timer_.expires_after(opts_.flush_after);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        self->armed_ = false;
        if (!ec) self->flush();
    });
}

void activity_recorder::flush() {
    auto batches = marks_.take();
    in_flight_ = batches.size();
    for (auto& [store, batch] : batches) {
        asio::co_spawn(
            ex_,
            [self = shared_from_this(), store = std::move(store),
             batch = std::move(batch)]() mutable -> asio::awaitable<void> {
                const auto ec =
                    co_await self->store_.write_activity(std::move(store), std::move(batch));
                (ec ? self->metrics_.failed : self->metrics_.written).inc();
            },
            [self = shared_from_this()](std::exception_ptr e) {
                if (e) log::escaped(e, "activity recorder");
                if (--self->in_flight_ == 0 && !self->marks_.empty()) self->arm();
            });
    }
}

std::string new_session_id() {
    static const std::uint64_t process = [] {
        std::random_device rd;
        return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    }();
    static std::atomic<std::uint64_t> counter{0};
    char buf[40];
    std::snprintf(buf, sizeof buf, "%016llx-%llx", static_cast<unsigned long long>(process),
                  static_cast<unsigned long long>(counter.fetch_add(1) + 1));
    return buf;
}

}  // namespace posrelay::fanout::detail
