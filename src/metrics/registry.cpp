// Metrics registry: sharded counters and histograms, start-up registration with name and
// label checks, and rendering in the Prometheus text exposition format 0.0.4.
#include "posrelay/metrics/registry.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace posrelay::metrics {

namespace detail {

std::size_t shard_index() noexcept {
    // Round-robin assignment spreads io threads over distinct shards; with more than
    // max_shards threads some share a shard, which stays correct (atomics), only slower.
    static std::atomic<std::size_t> next{0};
    thread_local const std::size_t index =
        next.fetch_add(1, std::memory_order_relaxed) % max_shards;
    return index;
}

}  // namespace detail

std::uint64_t counter::value() const noexcept {
    std::uint64_t total = 0;
    for (const auto& c : cells_)
        total += c.v.load(std::memory_order_relaxed);
    return total;
}

// ---- histogram -------------------------------------------------------------------------

histogram::histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
    for (std::size_t i = 0; i < bounds_.size(); ++i) {
        if (!std::isfinite(bounds_[i]))
            throw std::invalid_argument("histogram bounds must be finite (+Inf is implicit)");
        if (i > 0 && !(bounds_[i - 1] < bounds_[i]))
            throw std::invalid_argument("histogram bounds must be strictly increasing");
    }
    for (auto& s : shards_) {
        // make_unique<T[]> value-initialises, so every bucket starts at 0.
        s.buckets = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
    }
}

namespace {

// Seconds (or bytes) to integer nano-units, rounded; negatives and NaN count as 0 and
// huge values saturate, so the sum never goes backwards.
std::uint64_t to_nanos(double v) noexcept {
    if (!(v > 0)) return 0;
    const double n = std::round(v * 1e9);
    constexpr double limit = 18446744073709551615.0;  // rounds to 2^64
    if (n >= limit) return std::numeric_limits<std::uint64_t>::max();
    return static_cast<std::uint64_t>(n);
}

}  // namespace

void histogram::observe(double v) noexcept {
    // Linear scan: bucket lists are short (≤ ~20) and the scan is branch-predictable.
    // NaN compares false everywhere and lands in +Inf.
    std::size_t i = 0;
    while (i < bounds_.size() && !(v <= bounds_[i]))
        ++i;
    auto& s = shards_[detail::shard_index()];
    s.buckets[i].fetch_add(1, std::memory_order_relaxed);
    s.sum_nanos.fetch_add(to_nanos(v), std::memory_order_relaxed);
}

histogram::snapshot histogram::read() const {
    snapshot out;
    out.cumulative.assign(bounds_.size() + 1, 0);
    std::uint64_t sum_nanos = 0;
    for (const auto& s : shards_) {
        for (std::size_t i = 0; i <= bounds_.size(); ++i)
            out.cumulative[i] += s.buckets[i].load(std::memory_order_relaxed);
        sum_nanos += s.sum_nanos.load(std::memory_order_relaxed);
    }
    // Per-bucket counts to cumulative ones; the last (+Inf) is the count. Shards are read
    // one after another, so sum and count may be a few observations apart under load.
    for (std::size_t i = 1; i < out.cumulative.size(); ++i)
        out.cumulative[i] += out.cumulative[i - 1];
    out.count = out.cumulative.back();
    out.sum = static_cast<double>(sum_nanos) / 1e9;
    return out;
}

std::vector<double> latency_buckets() {
    return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
            0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
}

// ---- registration ----------------------------------------------------------------------

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool valid_name(std::string_view n, bool allow_colon) {
    if (n.empty()) return false;
    for (std::size_t i = 0; i < n.size(); ++i) {
        const char c = n[i];
        const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                           (allow_colon && c == ':');
        const bool digit = c >= '0' && c <= '9';
        if (!alpha && !(digit && i > 0)) return false;
    }
    return true;
}

// Throws std::logic_error unless `name` and `l` follow the Prometheus naming rules and
// the conventions promtool's linter enforces (so `promtool check metrics` stays clean).
void check_names(const std::string& name, bool is_counter, const labels& l) {
    if (!valid_name(name, true))
        throw std::logic_error("metrics: invalid metric name '" + name + "'");
    if (is_counter != ends_with(name, "_total"))
        throw std::logic_error("metrics: '" + name +
                               "': counters, and only counters, end in _total");
    for (std::string_view reserved : {"_bucket", "_sum", "_count"}) {
        if (ends_with(name, reserved))
            throw std::logic_error("metrics: '" + name + "': the suffix " + std::string(reserved) +
                                   " is reserved for histogram series");
    }
    for (std::size_t i = 0; i < l.size(); ++i) {
        const auto& key = l[i].first;
        if (!valid_name(key, false) || key.starts_with("__"))
            throw std::logic_error("metrics: '" + name + "': invalid label name '" + key + "'");
        if (key == "le" || key == "quantile")
            throw std::logic_error("metrics: '" + name + "': label name '" + key + "' is reserved");
        for (std::size_t j = 0; j < i; ++j) {
            if (l[j].first == key)
                throw std::logic_error("metrics: '" + name + "': label '" + key + "' given twice");
        }
    }
}

labels sorted(labels l) {
    std::sort(l.begin(), l.end());
    return l;
}

}  // namespace

registry::series& registry::add(std::string name, std::string help, kind k, labels l) {
    const bool is_counter = k == kind::counter || k == kind::counter_fn;
    check_names(name, is_counter, l);

    std::lock_guard lock(mutex_);
    family* fam = nullptr;
    for (auto& f : families_) {
        if (f->name == name) {
            fam = f.get();
            break;
        }
    }
    if (fam == nullptr) {
        families_.push_back(
            std::make_unique<family>(family{std::move(name), std::move(help), k, {}}));
        fam = families_.back().get();
    } else {
        if (fam->k != k)
            throw std::logic_error("metrics: '" + fam->name +
                                   "' already registered as another kind");
        const auto key = sorted(l);
        for (const auto& s : fam->members) {
            if (sorted(s.l) == key)
                throw std::logic_error("metrics: '" + fam->name +
                                       "' registered twice with the same labels");
        }
    }
    fam->members.push_back(series{std::move(l), nullptr, nullptr, nullptr, {}});
    return fam->members.back();
}

counter& registry::add_counter(std::string name, std::string help, labels l) {
    auto c = std::make_unique<counter>();
    auto& ref = *c;
    add(std::move(name), std::move(help), kind::counter, std::move(l)).c = std::move(c);
    return ref;
}

gauge& registry::add_gauge(std::string name, std::string help, labels l) {
    auto g = std::make_unique<gauge>();
    auto& ref = *g;
    add(std::move(name), std::move(help), kind::gauge, std::move(l)).g = std::move(g);
    return ref;
}

histogram& registry::add_histogram(std::string name, std::string help, std::vector<double> bounds,
                                   labels l) {
    // Built first: invalid bounds throw before anything is registered.
    auto h = std::make_unique<histogram>(std::move(bounds));
    auto& ref = *h;
    add(std::move(name), std::move(help), kind::histogram, std::move(l)).h = std::move(h);
    return ref;
}

void registry::add_gauge_fn(std::string name, std::string help, labels l,
                            std::function<double()> read) {
    if (!read) throw std::logic_error("metrics: add_gauge_fn('" + name + "') without a function");
    add(std::move(name), std::move(help), kind::gauge_fn, std::move(l)).fn = std::move(read);
}

void registry::add_counter_fn(std::string name, std::string help, labels l,
                              std::function<double()> read) {
    if (!read) throw std::logic_error("metrics: add_counter_fn('" + name + "') without a function");
    add(std::move(name), std::move(help), kind::counter_fn, std::move(l)).fn = std::move(read);
}

// ---- rendering -------------------------------------------------------------------------

std::string escape_label_value(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '"':
                out += "\\\"";
                break;
            case '\n':
                out += "\\n";
                break;
            default:
                out += c;
        }
    }
    return out;
}

namespace {

// HELP text escapes only backslash and newline (format 0.0.4).
void append_help(std::string& out, std::string_view help) {
    for (char c : help) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
}

void append_uint(std::string& out, std::uint64_t v) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

// Integers as integers ("3", not "3.0"), other values in the shortest form that reads
// back exactly ("0.0001", "2.5", "1e-05", "1e+20"); NaN and infinities as Prometheus
// spells them.
void append_double(std::string& out, double v) {
    if (std::isnan(v)) {
        out += "NaN";
        return;
    }
    if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
        return;
    }
    char buf[32];
    std::to_chars_result r;
    const double mag = std::fabs(v);
    if (v == std::trunc(v) && mag < 1e15)
        r = std::to_chars(buf, buf + sizeof buf, static_cast<std::int64_t>(v));
    else if (mag >= 1e-4 && mag < 1e15)  // "1795497186.96", not "1.79549718696e+09"
        r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
    else
        r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general);
    out.append(buf, r.ptr);
}

// `{a="x",b="y"}`, with an optional trailing le label; nothing at all when empty.
void append_labels(std::string& out, const labels& l, std::string_view le = {}) {
    if (l.empty() && le.empty()) return;
    out += '{';
    bool first = true;
    for (const auto& [k, v] : l) {
        if (!first) out += ',';
        first = false;
        out += k;
        out += "=\"";
        out += escape_label_value(v);
        out += '"';
    }
    if (!le.empty()) {
        if (!first) out += ',';
        out += "le=\"";
        out += le;
        out += '"';
    }
    out += '}';
}

std::string_view type_name(bool counter_like, bool histogram_like) {
    if (histogram_like) return "histogram";
    return counter_like ? "counter" : "gauge";
}

}  // namespace

std::string registry::render() const {
    std::string out;
    std::lock_guard lock(mutex_);
    out.reserve(families_.size() * 160);
    for (const auto& f : families_) {
        out += "# HELP ";
        out += f->name;
        out += ' ';
        append_help(out, f->help);
        out += "\n# TYPE ";
        out += f->name;
        out += ' ';
        out +=
            type_name(f->k == kind::counter || f->k == kind::counter_fn, f->k == kind::histogram);
        out += '\n';
        for (const auto& s : f->members) {
            switch (f->k) {
                case kind::counter:
                    out += f->name;
                    append_labels(out, s.l);
                    out += ' ';
                    append_uint(out, s.c->value());
                    out += '\n';
                    break;
                case kind::gauge: {
                    out += f->name;
                    append_labels(out, s.l);
                    out += ' ';
                    const auto v = s.g->value();
                    char buf[24];
                    const auto r = std::to_chars(buf, buf + sizeof buf, v);
                    out.append(buf, r.ptr);
                    out += '\n';
                    break;
                }
                case kind::gauge_fn:
                case kind::counter_fn:
                    out += f->name;
                    append_labels(out, s.l);
                    out += ' ';
                    append_double(out, s.fn());
                    out += '\n';
                    break;
                case kind::histogram: {
                    const auto snap = s.h->read();
                    const auto& bounds = s.h->bounds();
                    std::string le;
                    for (std::size_t i = 0; i <= bounds.size(); ++i) {
                        le.clear();
                        if (i < bounds.size())
                            append_double(le, bounds[i]);
                        else
                            le = "+Inf";
                        out += f->name;
                        out += "_bucket";
                        append_labels(out, s.l, le);
                        out += ' ';
                        append_uint(out, snap.cumulative[i]);
                        out += '\n';
                    }
                    out += f->name;
                    out += "_sum";
                    append_labels(out, s.l);
                    out += ' ';
                    append_double(out, snap.sum);
                    out += '\n';
                    out += f->name;
                    out += "_count";
                    append_labels(out, s.l);
                    out += ' ';
                    append_uint(out, snap.count);
                    out += '\n';
                    break;
                }
            }
        }
    }
    return out;
}

}  // namespace posrelay::metrics
