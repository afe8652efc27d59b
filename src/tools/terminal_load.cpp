// posrelay-terminal-load: opens thousands of plain-TCP terminal connections from one
// process, acks every event, and prints a JSON summary (connections, events, duplicates,
// gaps, delivery latency = now - event_time_ms) after --duration or SIGINT.
#include <sys/resource.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/program_options.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <sstream>

#include "posrelay/config.hpp"
#include "posrelay/log.hpp"
#include "tools/terminal_client.hpp"
#include "tools/terminal_options.hpp"
#include "tools/terminal_state.hpp"

namespace {

namespace asio = boost::asio;
namespace po = boost::program_options;
namespace log = posrelay::log;
using namespace posrelay::tools;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;

constexpr const char* secret_env = "POSRELAY_TERMINAL_SECRET";

struct load_options {
    posrelay::endpoint connect{"127.0.0.1", 7070};
    std::size_t terminals = 100;
    std::size_t stores = 10;
    std::string prefix = "load";
    milliseconds duration{30'000};
    double connect_rate = 1000;  // new connections per second; 0: all at once
    milliseconds connect_timeout{10'000};
    milliseconds backoff_min{250};
    milliseconds backoff_max{10'000};
    milliseconds progress{5'000};  // 0: no progress lines
    std::string secret_file;
    std::string events_out;      // "": no event log
    std::size_t store_base = 0;  // stores S-<base> .. S-<base + stores - 1>
    log::level log_level = log::level::info;
};

// Latency histogram: 1 ms buckets up to a minute, then one overflow bucket (max kept apart).
class latency_histogram {
public:
    void add(std::int64_t ms) {
        ms = std::max<std::int64_t>(ms, 0);
        ++count_;
        max_ = std::max(max_, ms);
        sum_ += ms;
        ++buckets_[static_cast<std::size_t>(std::min<std::int64_t>(ms, limit))];
    }
    [[nodiscard]] std::uint64_t count() const { return count_; }
    [[nodiscard]] std::int64_t max() const { return max_; }
    [[nodiscard]] double mean() const {
        return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0;
    }
    // The smallest value v such that at least q of the samples are <= v.
    [[nodiscard]] std::int64_t quantile(double q) const {
        if (count_ == 0) return 0;
        auto rank = static_cast<std::uint64_t>(q * static_cast<double>(count_));
        rank = std::clamp<std::uint64_t>(rank, 1, count_);
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < buckets_.size(); ++i) {
            seen += buckets_[i];
            if (seen >= rank) return i == limit ? max_ : static_cast<std::int64_t>(i);
        }
        return max_;
    }

private:
    static constexpr std::int64_t limit = 60'000;
    std::vector<std::uint64_t> buckets_ = std::vector<std::uint64_t>(limit + 1, 0);
    std::uint64_t count_ = 0;
    std::int64_t max_ = 0;
    std::int64_t sum_ = 0;
};

struct terminal {
    std::string id;
    std::string store;
    std::string token;
    std::optional<std::uint64_t> last;  // the last seq seen: dup/gap check and resume point
    std::string epoch;                  // the epoch `last` counts in ("" before the first)
    std::string eid;                    // the eid of the event at `last`
    std::shared_ptr<terminal_client> client;
    std::unique_ptr<asio::steady_timer> delay;
    bool ever_connected = false;
};

class load_run {
public:
    load_run(asio::io_context& io, load_options o, std::vector<tcp::endpoint> endpoints,
             const std::string& secret)
        : io_(io),
          opts_(std::move(o)),
          endpoints_(std::move(endpoints)),
          rng_(std::random_device{}()),
          progress_timer_(io),
          pace_timer_(io) {
        terminals_.resize(opts_.terminals);
        for (std::size_t i = 0; i < terminals_.size(); ++i) {
            auto& t = terminals_[i];
            t.id = "T-" + opts_.prefix + "-" + std::to_string(i);
            t.store = "S-" + std::to_string(opts_.store_base + i % opts_.stores);
            t.token = mint_token(secret, t.id, t.store);
            t.delay = std::make_unique<asio::steady_timer>(io_);
        }
    }

    asio::awaitable<void> spawn_all() {
        started_ = std::chrono::steady_clock::now();
        if (opts_.progress.count() > 0) asio::co_spawn(io_, progress_loop(), asio::detached);
        boost::system::error_code ec;
        for (std::size_t i = 0; i < terminals_.size() && !stopping_; ++i) {
            if (opts_.connect_rate > 0) {
                auto due = started_ + std::chrono::microseconds(static_cast<std::int64_t>(
                                          static_cast<double>(i) * 1e6 / opts_.connect_rate));
                if (due > std::chrono::steady_clock::now()) {
                    pace_timer_.expires_at(due);
                    co_await pace_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
                    if (stopping_) break;
                }
            }
            ++active_;
            asio::co_spawn(io_, run_terminal(terminals_[i]), [this](std::exception_ptr ep) {
                if (ep) {
                    try {
                        std::rethrow_exception(ep);
                    } catch (const std::exception& e) {
                        log::line(log::level::error, "terminal task failed").str("error", e.what());
                    }
                }
                --active_;
                if (active_ == 0 && spawned_all_) stop("every terminal gave up");
                maybe_finish();
            });
        }
        spawned_all_ = !stopping_;
        if (spawned_all_ && active_ == 0) stop("every terminal gave up");
        maybe_finish();
    }

    void stop(std::string_view why) {
        if (stopping_) return;
        stopping_ = true;
        stopped_at_ = std::chrono::steady_clock::now();
        connected_at_stop_ = connected_;
        log::line(log::level::info, "stopping")
            .str("reason", why)
            .num("connected", static_cast<std::int64_t>(connected_));
        progress_timer_.cancel();
        pace_timer_.cancel();
        for (auto& t : terminals_) {
            if (t.client) t.client->close();
            t.delay->cancel();
        }
        maybe_finish();
    }

    std::function<void()> on_finished;
    std::FILE* events_out = nullptr;  // --events-out: one JSON line per event and resync

private:
    asio::awaitable<void> run_terminal(terminal& t) {
        backoff bo(opts_.backoff_min, opts_.backoff_max);
        boost::system::error_code ec;
        while (!stopping_) {
            client_options o;
            o.host = opts_.connect.host;
            o.port = opts_.connect.port;
            o.endpoints = endpoints_;
            o.kind = transport::tcp;
            o.connect_timeout = opts_.connect_timeout;
            o.hello = {t.id, t.store, t.token, t.last, false, t.epoch, t.last ? t.eid : ""};
            bool welcomed = false;
            auto welcomed_at = std::chrono::steady_clock::now();
            client_handlers h;
            h.on_welcome = [this, &t, &welcomed, &welcomed_at](const welcome_info& w) {
                welcomed = true;
                welcomed_at = std::chrono::steady_clock::now();
                ++connected_;
                peak_connected_ = std::max(peak_connected_, connected_);
                if (!t.ever_connected) ++ever_connected_;
                t.ever_connected = true;
                if (!t.last) t.last = w.last_seq;  // fresh start: only newer events come
                t.epoch = w.epoch;
            };
            h.on_event = [this, &t](const event_info& e, std::string_view) { on_event(t, e); };
            t.client = terminal_client::create(io_.get_executor(), std::move(o), std::move(h));
            auto out = co_await t.client->run();
            t.client.reset();
            if (welcomed) --connected_;
            if (stopping_) break;
            if (welcomed) {
                ++disconnects_;
                // Start the backoff over only after a connection that lived a while, so
                // that a server kicking everyone right after the welcome is not hammered.
                if (std::chrono::steady_clock::now() - welcomed_at >= std::chrono::seconds(60)) {
                    bo.reset();
                }
            } else {
                ++connect_failures_;
            }
            ++errors_[out.what == outcome::kind::server_error ? "error:" + out.error.code
                                                              : std::string(to_string(out.what))];
            milliseconds delay{0};
            switch (classify(out)) {
                case next_step::stop:
                    co_return;
                case next_step::give_up:
                    ++gave_up_;
                    log::line(log::level::error, "terminal gave up")
                        .str("terminal_id", t.id)
                        .str("code", out.error.code)
                        .str("message", out.error.message);
                    co_return;
                case next_step::resync:
                    ++resyncs_;
                    log_resync(t, "resume_gap");
                    t.last.reset();
                    t.eid.clear();
                    break;
                case next_step::new_epoch:  // renumbered in a new epoch: read it from seq 0
                    ++resyncs_;
                    log_resync(t, "resync");
                    t.epoch = out.error.epoch;
                    t.last = 0;
                    t.eid.clear();
                    break;
                case next_step::reconnect_after:
                    delay = goaway_delay(out.goaway.reconnect_after, rng_());
                    break;
                case next_step::reconnect:
                    delay = bo.next(rng_());
                    break;
            }
            ++reconnects_;
            t.delay->expires_after(delay);
            co_await t.delay->async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
    }

    // --events-out lines: {"t","epoch","seq","eid","order","status"} per event received, and
    // {"t","told","epoch"} when the server told the terminal to resync (the epoch it was in).
    void log_event(const terminal& t, const event_info& e) {
        if (!events_out) return;
        std::string line = "{\"t\":\"";
        log::append_json_escaped(line, t.id);
        line += "\",\"epoch\":\"";
        log::append_json_escaped(line, e.epoch);
        line += "\",\"seq\":" + std::to_string(e.seq) + ",\"eid\":\"";
        log::append_json_escaped(line, e.eid);
        line += "\",\"order\":\"";
        log::append_json_escaped(line, e.order_id);
        line += "\",\"status\":\"";
        log::append_json_escaped(line, e.transaction_status);
        line += "\"}\n";
        std::fputs(line.c_str(), events_out);
        std::fflush(events_out);
    }
    void log_resync(const terminal& t, std::string_view told) {
        if (!events_out) return;
        std::string line = "{\"t\":\"";
        log::append_json_escaped(line, t.id);
        line += "\",\"told\":\"";
        log::append_json_escaped(line, told);
        line += "\",\"epoch\":\"";
        log::append_json_escaped(line, t.epoch);
        line += "\"}\n";
        std::fputs(line.c_str(), events_out);
        std::fflush(events_out);
    }

    void on_event(terminal& t, const event_info& e) {
        ++events_;
        log_event(t, e);
        if (e.event_time_ms) {
            const auto now_ms = std::chrono::duration_cast<milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count();
            latency_.add(now_ms - *e.event_time_ms);
        } else {
            ++no_event_time_;
        }
        if (t.last && e.seq <= *t.last) {
            ++dups_;
        } else {
            if (t.last && e.seq > *t.last + 1) {
                ++gaps_;
                missing_ += e.seq - *t.last - 1;
            }
            t.last = e.seq;
            t.eid = e.eid;
        }
        if (t.client) t.client->ack(*t.last);
    }

    asio::awaitable<void> progress_loop() {
        boost::system::error_code ec;
        std::uint64_t last_events = 0;
        while (!stopping_) {
            progress_timer_.expires_after(opts_.progress);
            co_await progress_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            if (stopping_) break;
            const double secs = std::chrono::duration<double>(opts_.progress).count();
            log::line(log::level::info, "progress")
                .num("connected", static_cast<std::int64_t>(connected_))
                .num("events", static_cast<std::int64_t>(events_))
                .num("events_per_sec",
                     static_cast<std::int64_t>(static_cast<double>(events_ - last_events) / secs))
                .num("dups", static_cast<std::int64_t>(dups_))
                .num("gaps", static_cast<std::int64_t>(gaps_))
                .num("connect_failures", static_cast<std::int64_t>(connect_failures_))
                .num("latency_p99_ms", latency_.quantile(0.99));
            last_events = events_;
        }
    }

    void maybe_finish() {
        if (finished_ || !stopping_ || active_ > 0) return;
        finished_ = true;
        print_summary();
        if (on_finished) on_finished();
    }

    void print_summary() {
        const auto end = stopped_at_.value_or(std::chrono::steady_clock::now());
        const auto ms = std::chrono::duration_cast<milliseconds>(end - started_).count();
        std::ostringstream out;
        auto u = [](std::uint64_t v) { return std::to_string(v); };
        out << "{\"terminals\":" << terminals_.size() << ",\"connected\":" << connected_at_stop_
            << ",\"peak_connected\":" << peak_connected_
            << ",\"ever_connected\":" << ever_connected_ << ",\"events\":" << u(events_)
            << ",\"events_per_sec\":"
            << (ms > 0 ? static_cast<double>(events_) * 1000.0 / static_cast<double>(ms) : 0.0)
            << ",\"dups\":" << u(dups_) << ",\"gaps\":" << u(gaps_)
            << ",\"missing\":" << u(missing_) << ",\"latency_p50_ms\":" << latency_.quantile(0.5)
            << ",\"latency_p90_ms\":" << latency_.quantile(0.9)
            << ",\"latency_p99_ms\":" << latency_.quantile(0.99)
            << ",\"latency_max_ms\":" << latency_.max()
            << ",\"latency_mean_ms\":" << latency_.mean()
            << ",\"events_without_time\":" << u(no_event_time_)
            << ",\"connect_failures\":" << u(connect_failures_)
            << ",\"disconnects\":" << u(disconnects_) << ",\"reconnects\":" << u(reconnects_)
            << ",\"resyncs\":" << u(resyncs_) << ",\"gave_up\":" << u(gave_up_) << ",\"errors\":{";
        bool first = true;
        for (const auto& [k, v] : errors_) {
            std::string key;
            log::append_json_escaped(key, k);
            out << (first ? "" : ",") << '"' << key << "\":" << v;
            first = false;
        }
        out << "},\"duration_ms\":" << ms << "}\n";
        std::cout << out.str() << std::flush;
    }

    asio::io_context& io_;
    load_options opts_;
    std::vector<tcp::endpoint> endpoints_;
    std::vector<terminal> terminals_;
    std::mt19937_64 rng_;
    asio::steady_timer progress_timer_;
    asio::steady_timer pace_timer_;  // paces the ramp-up (--connect-rate)
    std::chrono::steady_clock::time_point started_{};
    std::optional<std::chrono::steady_clock::time_point> stopped_at_;
    bool stopping_ = false;
    bool spawned_all_ = false;
    bool finished_ = false;
    std::size_t active_ = 0;
    std::size_t connected_ = 0;
    std::size_t connected_at_stop_ = 0;
    std::size_t peak_connected_ = 0;
    std::size_t ever_connected_ = 0;
    std::uint64_t events_ = 0;
    std::uint64_t dups_ = 0;
    std::uint64_t gaps_ = 0;
    std::uint64_t missing_ = 0;
    std::uint64_t no_event_time_ = 0;
    std::uint64_t connect_failures_ = 0;
    std::uint64_t disconnects_ = 0;
    std::uint64_t reconnects_ = 0;
    std::uint64_t resyncs_ = 0;
    std::uint64_t gave_up_ = 0;
    std::map<std::string, std::uint64_t> errors_;
    latency_histogram latency_;
};

// Raises the soft descriptor limit to the hard one; returns the soft limit in force.
rlim_t raise_fd_limit() {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)::setrlimit(RLIMIT_NOFILE, &rl);
        (void)::getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur;
}

milliseconds duration_arg(const po::variables_map& vm, const char* name, milliseconds def) {
    if (!vm.count(name)) return def;
    try {
        return posrelay::parse_duration(vm[name].as<std::string>());
    } catch (const std::invalid_argument& e) {
        throw usage_error(std::string("--") + name + ": " + e.what());
    }
}

// Returns nullopt after printing --help.
std::optional<load_options> parse_args(int argc, char** argv) {
    po::options_description desc(
        "usage: posrelay-terminal-load [options]\n"
        "\n"
        "Opens --terminals plain-TCP terminal connections (ids T-<prefix>-<i>, store\n"
        "S-<store-base + i % stores>, tokens minted from POSRELAY_TERMINAL_SECRET or "
        "--secret-file), acks\n"
        "every event, and after --duration or SIGINT prints one JSON summary on stdout:\n"
        "connections, events, dups (seq <= last seen), gaps (seq > last + 1), and latency\n"
        "percentiles of now - event_time_ms (wall clock: run it on the server's machine).\n"
        "Progress lines and errors go to stderr.\n\nOptions");
    desc.add_options()  //
        ("connect", po::value<std::string>()->value_name("HOST:PORT"),
         "HOST:PORT of the terminal gateway (default 127.0.0.1:7070)")  //
        ("terminals", po::value<std::size_t>()->value_name("N"),
         "connections to open (default 100)")  //
        ("stores", po::value<std::size_t>()->value_name("N"),
         "stores the terminals are spread over (default 10)")  //
        ("prefix", po::value<std::string>()->value_name("P"),
         "terminal id prefix (default load)")  //
        ("duration", po::value<std::string>()->value_name("DUR"),
         "run this long, then print the summary (default 30s)")  //
        ("connect-rate", po::value<double>()->value_name("N"),
         "new connections per second while ramping up (default 1000; 0: all at once)")  //
        ("connect-timeout", po::value<std::string>()->value_name("DUR"),
         "connect-to-welcome deadline (default 10s)")  //
        ("backoff-min", po::value<std::string>()->value_name("DUR"),
         "first reconnect delay (default 250ms)")  //
        ("backoff-max", po::value<std::string>()->value_name("DUR"),
         "reconnect delay cap (default 10s)")  //
        ("progress", po::value<std::string>()->value_name("DUR"),
         "progress line interval on stderr (default 5s; 0: none)")  //
        ("store-base", po::value<std::size_t>()->value_name("N"),
         "first store number: stores S-<N> .. S-<N + stores - 1> (default 0)")  //
        ("events-out", po::value<std::string>()->value_name("FILE"),
         "append one JSON line per event received (t, epoch, seq, eid, order, status) and "
         "per resync told (t, told, epoch) to FILE")  //
        ("secret-file", po::value<std::string>()->value_name("FILE"),
         "file holding the terminal secret (default: POSRELAY_TERMINAL_SECRET)")  //
        ("log-level", po::value<std::string>()->value_name("LEVEL"),
         "debug | info | warn | error (default info)")  //
        ("help,h", "show this help");
    po::variables_map vm;
    try {
        po::store(po::parse_command_line(argc, argv, desc), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw usage_error(e.what());
    }
    if (vm.count("help")) {
        std::cout << desc << "\nExit codes: 0 summary printed; 2 usage error.\n";
        return std::nullopt;
    }
    load_options o;
    if (vm.count("connect")) {
        try {
            o.connect = posrelay::parse_endpoint(vm["connect"].as<std::string>());
        } catch (const std::invalid_argument& e) {
            throw usage_error(std::string("--connect: ") + e.what());
        }
    }
    if (vm.count("terminals")) o.terminals = vm["terminals"].as<std::size_t>();
    if (vm.count("stores")) o.stores = vm["stores"].as<std::size_t>();
    if (vm.count("prefix")) o.prefix = vm["prefix"].as<std::string>();
    if (vm.count("connect-rate")) o.connect_rate = vm["connect-rate"].as<double>();
    if (vm.count("secret-file")) o.secret_file = vm["secret-file"].as<std::string>();
    if (vm.count("store-base")) o.store_base = vm["store-base"].as<std::size_t>();
    if (vm.count("events-out")) o.events_out = vm["events-out"].as<std::string>();
    o.duration = duration_arg(vm, "duration", o.duration);
    o.connect_timeout = duration_arg(vm, "connect-timeout", o.connect_timeout);
    o.backoff_min = duration_arg(vm, "backoff-min", o.backoff_min);
    o.backoff_max = duration_arg(vm, "backoff-max", o.backoff_max);
    o.progress = duration_arg(vm, "progress", o.progress);
    if (vm.count("log-level")) {
        auto l = log::parse_level(vm["log-level"].as<std::string>());
        if (!l) throw usage_error("--log-level: expected debug, info, warn or error");
        o.log_level = *l;
    }
    if (o.terminals == 0) throw usage_error("--terminals must be at least 1");
    if (o.stores == 0) throw usage_error("--stores must be at least 1");
    if (o.store_base > 1'000'000'000) throw usage_error("--store-base must be at most 1000000000");
    if (o.connect_rate < 0) throw usage_error("--connect-rate must not be negative");
    if (o.duration.count() == 0) throw usage_error("--duration must be positive");
    if (!valid_id("T-" + o.prefix + "-" + std::to_string(o.terminals - 1))) {
        throw usage_error("--prefix: terminal ids must be 1-64 of A-Z a-z 0-9 - _ .");
    }
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    load_options opts;
    std::string secret;
    try {
        auto parsed = parse_args(argc, argv);
        if (!parsed) return 0;
        opts = std::move(*parsed);
        // The secret: same rules as a token (file wins, whitespace trimmed, never argv).
        const char* env = std::getenv(secret_env);
        if (opts.secret_file.empty() && (env == nullptr || *env == '\0')) {
            throw usage_error(std::string("no secret: set ") + secret_env +
                              " or pass --secret-file FILE");
        }
        secret = load_token(opts.secret_file, env);
    } catch (const usage_error& e) {
        std::fprintf(stderr, "posrelay-terminal-load: %s\n(see posrelay-terminal-load --help)\n",
                     e.what());
        return 2;
    }
    log::set_level(opts.log_level);
    std::signal(SIGPIPE, SIG_IGN);
    const auto fd_limit = raise_fd_limit();
    if (fd_limit < opts.terminals + 64) {
        log::line(log::level::warn, "descriptor limit below --terminals: some connects will fail")
            .num("limit", static_cast<std::int64_t>(fd_limit))
            .num("terminals", static_cast<std::int64_t>(opts.terminals));
    }

    asio::io_context io(1);
    std::vector<tcp::endpoint> endpoints;
    try {
        tcp::resolver resolver(io);
        for (const auto& r : resolver.resolve(opts.connect.host, std::to_string(opts.connect.port)))
            endpoints.push_back(r.endpoint());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "posrelay-terminal-load: resolve %s: %s\n", opts.connect.host.c_str(),
                     e.what());
        return 2;
    }
    log::line(log::level::info, "starting")
        .str("connect", opts.connect.to_string())
        .num("terminals", static_cast<std::int64_t>(opts.terminals))
        .num("stores", static_cast<std::int64_t>(opts.stores))
        .num("duration_ms", opts.duration.count())
        .num("fd_limit", static_cast<std::int64_t>(fd_limit));

    std::unique_ptr<std::FILE, int (*)(std::FILE*)> events_out(nullptr, &std::fclose);
    if (!opts.events_out.empty()) {
        events_out.reset(std::fopen(opts.events_out.c_str(), "a"));
        if (!events_out) {
            std::fprintf(stderr, "posrelay-terminal-load: --events-out %s: cannot open\n",
                         opts.events_out.c_str());
            return 2;
        }
    }
    load_run run(io, opts, std::move(endpoints), secret);
    run.events_out = events_out.get();
    asio::signal_set signals(io, SIGINT, SIGTERM);
    asio::steady_timer deadline(io);
    run.on_finished = [&] {
        signals.cancel();
        deadline.cancel();
    };
    signals.async_wait([&](boost::system::error_code ec, int) {
        if (!ec) run.stop("signal");
    });
    deadline.expires_after(opts.duration);
    deadline.async_wait([&](boost::system::error_code ec) {
        if (!ec) run.stop("duration");
    });
    asio::co_spawn(io, run.spawn_all(), asio::detached);
    io.run();
    return 0;
}
