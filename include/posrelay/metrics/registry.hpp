// Prometheus metrics: counters, gauges and histograms, rendered in the text exposition
// format 0.0.4. Updates are lock-free; counters and histograms are sharded per thread so
// io threads never contend on a cache line. Series are created at start-up and live as
// long as the registry.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace posrelay::metrics {

using labels = std::vector<std::pair<std::string, std::string>>;

inline constexpr std::size_t max_shards = 8;

namespace detail {
// The calling thread's shard, assigned round-robin on first use.
[[nodiscard]] std::size_t shard_index() noexcept;
struct alignas(64) padded_u64 {
    std::atomic<std::uint64_t> v{0};
};
}  // namespace detail

class counter {
public:
    void inc(std::uint64_t n = 1) noexcept {
        cells_[detail::shard_index()].v.fetch_add(n, std::memory_order_relaxed);
    }
    [[nodiscard]] std::uint64_t value() const noexcept;

private:
    detail::padded_u64 cells_[max_shards];
};

class gauge {
public:
    void set(std::int64_t v) noexcept { v_.store(v, std::memory_order_relaxed); }
    void add(std::int64_t d) noexcept { v_.fetch_add(d, std::memory_order_relaxed); }
    void sub(std::int64_t d) noexcept { v_.fetch_sub(d, std::memory_order_relaxed); }
    [[nodiscard]] std::int64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::int64_t> v_{0};
};

// Buckets are upper bounds in base units (seconds, bytes); +Inf is implicit.
class histogram {
public:
    explicit histogram(std::vector<double> upper_bounds);
    void observe(double v) noexcept;

    struct snapshot {
        std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf (= count)
        double sum = 0;
        std::uint64_t count = 0;
    };
    [[nodiscard]] snapshot read() const;
    [[nodiscard]] const std::vector<double>& bounds() const noexcept { return bounds_; }

private:
    struct alignas(64) shard {
        std::unique_ptr<std::atomic<std::uint64_t>[]> buckets;  // bounds + 1 (+Inf)
        std::atomic<std::uint64_t> sum_nanos{0};                // sum in 1e-9 units
    };
    std::vector<double> bounds_;
    shard shards_[max_shards];
};

// Default latency buckets, seconds: 100 µs … 10 s.
[[nodiscard]] std::vector<double> latency_buckets();

class registry {
public:
    // Name rules: Prometheus [a-zA-Z_:][a-zA-Z0-9_:]*; counters end in _total.
    // Registering the same name and labels twice is a bug (throws std::logic_error).
    counter& add_counter(std::string name, std::string help, labels l = {});
    gauge& add_gauge(std::string name, std::string help, labels l = {});
    histogram& add_histogram(std::string name, std::string help, std::vector<double> bounds,
                             labels l = {});
    // A gauge read at scrape time (process memory, queue sizes owned elsewhere).
    // `read` runs on the scraping thread and must be thread-safe.
    void add_gauge_fn(std::string name, std::string help, labels l, std::function<double()> read);
    // A counter read at scrape time (process CPU seconds): `read` must never decrease.
    // Same rules as add_gauge_fn; the name ends in _total.
    void add_counter_fn(std::string name, std::string help, labels l, std::function<double()> read);

    // The whole registry in the Prometheus text format, families in registration order.
    [[nodiscard]] std::string render() const;

private:
    enum class kind { counter, gauge, histogram, gauge_fn, counter_fn };
    struct series {
        labels l;
        std::unique_ptr<counter> c;
        std::unique_ptr<gauge> g;
        std::unique_ptr<histogram> h;
        std::function<double()> fn;
    };
    struct family {
        std::string name, help;
        kind k;
        std::vector<series> members;
    };
    series& add(std::string name, std::string help, kind k, labels l);

    mutable std::mutex mutex_;
    std::vector<std::unique_ptr<family>> families_;
};

// Escapes a label value for the text format (\\, \", \n).
[[nodiscard]] std::string escape_label_value(std::string_view v);

// Registers process_* metrics (resident memory, open fds, cpu seconds, start time) read
// from /proc at scrape time.
void add_process_metrics(registry& r);

}  // namespace posrelay::metrics
