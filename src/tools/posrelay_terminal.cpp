// posrelay-terminal: an operator's debugging client and the tests' reference terminal.
// `listen` prints every event frame on stdout, acks it, keeps the resume point in a state
// file and reconnects with backoff; connection state changes go to stderr as JSON lines.
// `charge`, `cancel`, `expire` and `status` do the same while sending one request and
// printing its answer; `charge --wait` then follows the order until it is paid or final.
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <openssl/ssl.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <iostream>
#include <random>
#include <set>

#include "posrelay/log.hpp"
#include "posrelay/midtrans/transaction_status.hpp"
#include "posrelay/version.hpp"
#include "tools/terminal_client.hpp"
#include "tools/terminal_options.hpp"
#include "tools/terminal_qr.hpp"
#include "tools/terminal_state.hpp"

namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace log = posrelay::log;
using namespace posrelay::tools;

// Writes all of `data` to stdout (one write(2) for a whole line when the pipe allows).
bool write_stdout(std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(STDOUT_FILENO, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

// Writes `frame` and a newline to stdout as one line.
bool print_line(std::string_view frame) {
    std::string line;
    line.reserve(frame.size() + 1);
    line.append(frame);
    line += '\n';
    return write_stdout(line);
}

// A line for the person at the terminal (stderr; JSON logs go there too).
void say(const std::string& text) {
    std::fprintf(stderr, "%s\n", text.c_str());
}

// How `charge --wait` ends on an event of its order: paid, final and unpaid, or not yet.
std::optional<int> wait_outcome(const event_info& e) {
    if (e.paid) return exit_code::ok;
    auto st = posrelay::midtrans::parse_transaction_status(e.transaction_status);
    if (st && posrelay::midtrans::is_final(*st)) return exit_code::not_paid;
    return std::nullopt;
}

std::shared_ptr<ssl::context> make_tls_context(const terminal_cli& cli) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    if (cli.tls_insecure) {
        ctx->set_verify_mode(ssl::verify_none);
    } else {
        ctx->set_verify_mode(ssl::verify_peer);
        if (cli.tls_ca.empty()) {
            ctx->set_default_verify_paths();
        } else {
            ctx->load_verify_file(cli.tls_ca);
        }
    }
    if (!cli.tls_cert.empty()) {
        ctx->use_certificate_chain_file(cli.tls_cert);
        ctx->use_private_key_file(cli.tls_key, ssl::context::pem);
    }
    return ctx;
}

// Adds `key` only when there is a value (a seq that may be absent).
void opt_num(log::line& l, std::string_view key, std::optional<std::uint64_t> v) {
    if (v) l.num(key, static_cast<std::int64_t>(*v));
}

class listener {
public:
    listener(asio::io_context& io, terminal_cli cli, std::string token,
             std::shared_ptr<ssl::context> tls, std::optional<terminal_state> saved)
        : io_(io),
          cli_(std::move(cli)),
          token_(std::move(token)),
          tls_(std::move(tls)),
          last_(cli_.resume_from ? cli_.resume_from
                : saved          ? std::optional<std::uint64_t>(saved->last_seq)
                                 : std::nullopt),
          epoch_(saved && saved->epoch ? *saved->epoch : std::string()),
          eid_(saved && !cli_.resume_from ? saved->eid : std::string()),
          open_(saved ? std::set<std::string>(saved->open.begin(), saved->open.end())
                      : std::set<std::string>()),
          resync_pending_(saved && saved->resync),
          delay_(io),
          ack_flush_(io),
          backoff_(cli_.backoff_min, cli_.backoff_max),
          rng_(std::random_device{}()) {}

    asio::awaitable<int> run() {
        for (;;) {
            if (stopping_) co_return exit_code_;
            resumed_ = last_.has_value();
            {
                log::line l(log::level::info, "connecting");
                l.str("connect", cli_.connect.to_string())
                    .str("transport", to_string(cli_.kind))
                    .str("terminal_id", cli_.terminal_id)
                    .str("store_id", cli_.store_id);
                opt_num(l, "resume_from", last_);
            }
            client_ = terminal_client::create(io_.get_executor(), options(), handlers());
            auto out = co_await client_->run();
            client_.reset();
            ack_flush_.cancel();
            unacked_ = 0;
            if (out.welcomed &&
                std::chrono::steady_clock::now() - welcomed_at_ >= cli_.backoff_reset) {
                backoff_.reset();
            }
            log_end(out);
            if (stopping_) co_return exit_code_;
            if (sent_ && !answered_) {
                // Never sent twice: the server may have acted on it (a charge created).
                log::line(log::level::error,
                          "the connection ended before the answer: the outcome is unknown; "
                          "ask `status` before repeating it")
                    .str("request", to_string(cli_.what))
                    .str("order_id", cli_.order.order_id)
                    .str("id", request_id_);
                co_return exit_code::disconnected;
            }

            std::chrono::milliseconds delay{0};
            std::string_view why = "backoff";
            switch (classify(out)) {
                case next_step::stop:
                    co_return exit_code_;
                case next_step::give_up:
                    log::line(log::level::error, "fatal error from the server: giving up")
                        .str("code", out.error.code)
                        .str("message", out.error.message);
                    co_return exit_code::fatal;
                case next_step::resync:
                    if (!forget_resume_point()) co_return exit_code::fatal;
                    if (cli_.once) co_return exit_code::disconnected;
                    why = "resync";
                    break;
                case next_step::new_epoch:
                    if (!enter_epoch(out.error)) co_return exit_code::fatal;
                    if (cli_.once) co_return exit_code::disconnected;
                    why = "resync";
                    break;
                case next_step::reconnect_after:
                    if (cli_.once) co_return exit_code::ok;
                    delay = goaway_delay(out.goaway.reconnect_after, rng_());
                    why = "goaway";
                    break;
                case next_step::reconnect:
                    if (cli_.once) co_return exit_code::disconnected;
                    delay = backoff_.next(rng_());
                    break;
            }
            if (minimum_delay(out) > delay) {
                delay = minimum_delay(out);
                why = out.error.code;
            }
            log::line(log::level::info, "reconnecting")
                .num("delay_ms", delay.count())
                .str("after", why)
                .num("attempt", backoff_.attempts());
            boost::system::error_code ec;
            delay_.expires_after(delay);
            co_await delay_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
    }

    // Ends the run with `code`: a graceful close of the connection (acks flushed first).
    void stop(int code, std::string_view why) {
        if (stopping_) return;
        stopping_ = true;
        exit_code_ = code;
        log::line(code == exit_code::ok ? log::level::info : log::level::warn, "stopping")
            .str("reason", why)
            .num("events", static_cast<std::int64_t>(events_));
        if (client_) client_->close();
        delay_.cancel();
        ack_flush_.cancel();
    }

private:
    client_options options() const {
        client_options o;
        o.host = cli_.connect.host;
        o.port = cli_.connect.port;
        o.kind = cli_.kind;
        o.ws_path = cli_.ws_path;
        o.tls = tls_;
        o.sni = cli_.sni;
        o.verify_host = !cli_.tls_insecure;
        o.hello.terminal_id = cli_.terminal_id;
        o.hello.store_id = cli_.store_id;
        o.hello.token = token_;
        o.hello.resume_from = last_;
        o.hello.subscribe_store = cli_.subscribe_store;
        o.hello.epoch = epoch_;  // always sent ("" before the first): we handle `resync`
        o.hello.resume_eid = eid_;
        o.connect_timeout = cli_.connect_timeout;
        o.write_timeout = cli_.write_timeout;
        o.read_after_welcome = cli_.read_after_welcome;
        o.log_frames = true;
        return o;
    }

    client_handlers handlers() {
        client_handlers h;
        h.on_welcome = [this](const welcome_info& w) { on_welcome(w); };
        h.on_event = [this](const event_info& e, std::string_view frame) { on_event(e, frame); };
        h.on_error = [this](const error_info& e, std::string_view frame) {
            if (sent_ && !answered_ && e.id == request_id_) return on_refused(e, frame);
            if (e.id.starts_with(status_id_prefix)) return on_status_answer(e.id, "", frame);
            log::line(log::level::warn, "error from the server (not fatal)")
                .str("code", e.code)
                .str("message", e.message)
                .str("id", e.id);
        };
        h.on_other = [this](const server_frame& f, std::string_view frame) {
            if (f.op == server_op::result && sent_ && !answered_ && f.id == request_id_) {
                return on_result(f.result, frame);
            }
            if (f.op == server_op::result && f.id.starts_with(status_id_prefix)) {
                return on_status_answer(f.id, f.result.transaction_status, frame);
            }
            // pong is logged by the client at debug level; anything else is news.
            if (f.op != server_op::pong) {
                log::line(log::level::info, "frame").str("op", f.op_name).str("frame", frame);
            }
        };
        return h;
    }

    void on_welcome(const welcome_info& w) {
        welcomed_at_ = std::chrono::steady_clock::now();
        if (cli_.observe && !w.observer) {
            // The token has no observe claim: this connection took the till's place.
            log::line(log::level::error,
                      "--observe: the server opened the till's own session, not an observer's "
                      "(the token has no observe claim)");
            return stop(exit_code::fatal, "not_an_observer");
        }
        {
            log::line l(log::level::info, "connected");
            l.str("node", w.node).num("last_seq", static_cast<std::int64_t>(w.last_seq));
            opt_num(l, "resume_from", w.resume_from);
            l.num("heartbeat_ms", w.heartbeat.count())
                .num("max_frame_bytes", static_cast<std::int64_t>(w.max_frame_bytes))
                .num("max_inflight", static_cast<std::int64_t>(w.max_inflight))
                .boolean("subscribe_store", w.subscribe_store)
                .boolean("observer", w.observer);
        }
        if (!cli_.no_ack && w.max_inflight > 0 && cli_.ack_every > w.max_inflight / 2 &&
            cli_.ack_flush.count() == 0) {
            log::line(log::level::warn,
                      "--ack-every is above max_inflight / 2 without --ack-flush: the server "
                      "will stop sending before an ack is due")
                .num("ack_every", static_cast<std::int64_t>(cli_.ack_every))
                .num("max_inflight", static_cast<std::int64_t>(w.max_inflight));
        }
        if (is_request(cli_.what) && !sent_) send_request();
        epoch_ = w.epoch;
        if (!resumed_) {
            // A fresh start: the server sends only events after last_seq. Remember that
            // point so that a reconnect resumes from it and misses nothing in between.
            last_ = w.last_seq;
            eid_.clear();
            save_state();
        } else if (last_ && w.last_seq < *last_) {
            log::line(log::level::warn, "the server's last_seq is below our resume point")
                .num("last_seq", static_cast<std::int64_t>(w.last_seq))
                .num("resume_from", static_cast<std::int64_t>(*last_));
        }
        if (resync_pending_) start_status_resync();
    }

    void on_event(const event_info& e, std::string_view frame) {
        if (stopping_) return;
        if (last_ && e.seq <= *last_) {
            // At or below our position: already processed (a replay after a resume, §8).
            log::line(log::level::warn, "duplicate event skipped")
                .num("seq", static_cast<std::int64_t>(e.seq))
                .num("last_seq", static_cast<std::int64_t>(*last_));
            return;
        }
        ++events_;
        if (last_ && e.seq > *last_ + 1) {
            log::line(log::level::warn, "gap in event seqs")
                .num("seq", static_cast<std::int64_t>(e.seq))
                .num("expected", static_cast<std::int64_t>(*last_ + 1));
        }
        if (e.conflict) report_conflict(e);
        if (!print_line(frame)) {
            stop(exit_code::fatal, "cannot write to stdout");
            return;
        }
        track_order(e);
        if (!last_ || e.seq > *last_) {
            last_ = e.seq;
            eid_ = e.eid;
            if (!e.epoch.empty()) epoch_ = e.epoch;
            if (!save_state()) return;
        }
        if (!cli_.no_ack && ++unacked_ >= cli_.ack_every) {
            client_->ack(*last_);
            unacked_ = 0;
        }
        if (unacked_ > 0 && cli_.ack_flush.count() > 0) {
            // Prompt acks after a quiet spell: flush what is pending once events pause.
            ack_flush_.expires_after(cli_.ack_flush);
            ack_flush_.async_wait([this](boost::system::error_code ec) {
                if (ec || unacked_ == 0 || !client_ || !last_) return;
                client_->ack(*last_);
                unacked_ = 0;
            });
        }
        maybe_exit_after_events();
        if (cli_.wait && e.order_id == cli_.order.order_id) on_order_event(e);
    }

    // --exit-after-events: once that many events came and no status re-read is outstanding.
    void maybe_exit_after_events() {
        if (cli_.exit_after_events && events_ >= *cli_.exit_after_events && !resync_pending_) {
            flush_acks();
            stop(exit_code::ok, "exit-after-events reached");
        }
    }

    // A status_conflict (protocol §7) said in words on stderr; the frame still goes to stdout.
    static void report_conflict(const event_info& e) {
        const auto& c = *e.conflict;
        const std::string said = c.midtrans_status.empty() ? "no such order" : c.midtrans_status;
        log::line(log::level::warn, "status conflict")
            .str("order_id", e.order_id)
            .str("previous_status", c.previous_status)
            .str("claimed_status", c.claimed_status)
            .str("midtrans_status", c.midtrans_status)
            .boolean("applied", c.applied)
            .boolean("paid", e.paid)
            .str("summary", "order " + e.order_id + " was " + c.previous_status +
                                ", a notification said " + c.claimed_status + ", Midtrans says " +
                                said + (c.applied ? ": now " : ": stays ") + e.transaction_status +
                                (e.paid ? " (PAID)" : " (not paid)"));
    }

    void flush_acks() {
        if (!cli_.no_ack && unacked_ > 0 && client_ && last_) client_->ack(*last_);
        unacked_ = 0;
    }

    void send_request() {
        // Fresh per run, so that an answer is never mistaken for another run's.
        static constexpr char hex[] = "0123456789abcdef";
        request_id_ = "cli-";
        std::uint64_t r = rng_();
        for (int i = 0; i < 12; ++i, r >>= 4)
            request_id_ += hex[r & 0xf];
        const auto op = to_string(cli_.what);
        client_->send(cli_.what == terminal_cli::action::charge
                          ? charge_json(cli_.order, request_id_)
                          : order_request_json(op, request_id_, cli_.order.order_id));
        sent_ = true;
        log::line(log::level::info, "request sent")
            .str("request", op)
            .str("id", request_id_)
            .str("order_id", cli_.order.order_id);
    }

    void on_result(const result_info& r, std::string_view frame) {
        answered_ = true;
        if (!print_line(frame)) return stop(exit_code::fatal, "cannot write to stdout");
        if (cli_.what == terminal_cli::action::charge) show_charge(r);
        if (!cli_.wait) {
            flush_acks();
            return stop(exit_code::ok, "answered");
        }
        if (order_end_) return stop(*order_end_, "the order had ended before the answer");
        say("waiting for " + cli_.order.order_id + " to be paid...");
    }

    void on_refused(const error_info& e, std::string_view frame) {
        answered_ = true;
        if (!print_line(frame)) return stop(exit_code::fatal, "cannot write to stdout");
        say(std::string(to_string(cli_.what)) + " " + cli_.order.order_id + " refused: " + e.code +
            ": " + e.message);
        flush_acks();
        stop(exit_code::refused, "the request was refused");
    }

    // charge --wait: an event of the charged order (possibly before the answer).
    void on_order_event(const event_info& e) {
        say(e.order_id + ": " + e.transaction_status + (e.paid ? " (paid)" : ""));
        auto end = wait_outcome(e);
        if (!end) return;
        if (!answered_) {
            order_end_ = end;  // finish once the answer is printed
            return;
        }
        flush_acks();
        stop(*end, *end == exit_code::ok ? "the order is paid" : "the order ended unpaid");
    }

    void show_charge(const result_info& r) {
        std::string amount = r.gross_amount;
        if (amount.ends_with(".00")) amount.resize(amount.size() - 3);
        std::string text =
            "charged " + r.order_id + ": " + amount + " IDR (" + r.payment_type + ")";
        if (!r.qr_code_url.empty()) text += ", scan the QR: " + r.qr_code_url;
        if (!r.deeplink.empty()) text += ", or open: " + r.deeplink;
        if (!r.expiry_time.empty()) text += "; expires " + r.expiry_time + " (Asia/Jakarta)";
        say(text);
        if (cli_.show_qr || ::isatty(STDERR_FILENO) == 1) {
            auto qr = qr_text(r.qr_string);
            if (!qr.empty()) std::fputs(qr.c_str(), stderr);
        }
    }

    // resume_gap: the events after our resume point are gone. Reconnect without resume_from
    // (the welcome's last_seq becomes the new position). False if the state file is stuck.
    bool forget_resume_point() {
        {
            log::line l(log::level::warn,
                        "resume_gap: the server no longer has the events after our resume point; "
                        "re-sync needed. Forgetting the resume point.");
            opt_num(l, "resume_from", last_);
            l.str("state_file", cli_.state_file);
        }
        last_.reset();
        eid_.clear();
        resync_pending_ = !open_.empty();  // events of open orders may be lost: ask
        if (cli_.state_file.empty()) return true;
        try {
            remove_state_file(cli_.state_file);
            return true;
        } catch (const state_error& e) {
            log::line(log::level::error, "cannot remove the state file").str("error", e.what());
            return false;
        }
    }

    // resync: our position is in an old epoch (Redis lost writes it had acknowledged, or the
    // stream was renumbered). Read the new epoch from seq 0 (its events are the ones we may
    // not have), and re-read the status of every open order once connected. False if the
    // state file is stuck.
    bool enter_epoch(const error_info& e) {
        log::line(log::level::warn,
                  "resync: the server renumbered this terminal's events in a new epoch; "
                  "re-reading the status of open orders")
            .str("old_epoch", epoch_)
            .str("epoch", e.epoch)
            .num("open_orders", static_cast<std::int64_t>(open_.size()));
        epoch_ = e.epoch;
        last_ = 0;
        eid_.clear();
        resync_pending_ = true;
        return save_state();
    }

    // An order's latest event: it stays "open" (its status re-read after a resync) until final.
    void track_order(const event_info& e) {
        auto st = posrelay::midtrans::parse_transaction_status(e.transaction_status);
        if (st && posrelay::midtrans::is_final(*st)) {
            open_.erase(e.order_id);
        } else if (open_.size() < max_open_orders) {
            open_.insert(e.order_id);
        }
    }

    // Sends `status` for every open order, at most 8 waiting at once (protocol §13).
    void start_status_resync() {
        status_queue_.assign(open_.begin(), open_.end());
        status_waiting_ = 0;
        if (status_queue_.empty()) {
            resync_pending_ = false;
            save_state();
            return;
        }
        send_statuses();
    }
    void send_statuses() {
        while (client_ && status_waiting_ < 8 && !status_queue_.empty()) {
            const std::string id = std::string(status_id_prefix) + std::to_string(++status_n_);
            client_->send(order_request_json("status", id, status_queue_.front()));
            status_queue_.pop_front();
            ++status_waiting_;
        }
    }
    // The answer to one of those: printed like an event (stdout), the order closed when final
    // (or unknown to the server), the next one sent; the resync is done with the last answer.
    void on_status_answer(std::string_view, const std::string& status, std::string_view frame) {
        if (status_waiting_ == 0) return;
        --status_waiting_;
        if (!print_line(frame)) return stop(exit_code::fatal, "cannot write to stdout");
        const auto order = order_of_frame(frame);
        auto st = posrelay::midtrans::parse_transaction_status(status);
        if (!order.empty() && (status.empty() || (st && posrelay::midtrans::is_final(*st))))
            open_.erase(order);
        send_statuses();
        if (status_waiting_ == 0 && status_queue_.empty() && resync_pending_) {
            resync_pending_ = false;
            save_state();
            maybe_exit_after_events();
        }
    }
    static std::string order_of_frame(std::string_view frame) {
        server_frame f;
        std::string err;
        if (!parse_server_frame(frame, f, err)) return {};
        return f.result.order_id;
    }

    bool save_state() {
        if (cli_.state_file.empty() || !last_) return true;
        try {
            terminal_state st{cli_.terminal_id, cli_.store_id, *last_};
            st.epoch = epoch_;
            st.eid = eid_;
            st.open.assign(open_.begin(), open_.end());
            st.resync = resync_pending_;
            write_state_file(cli_.state_file, st);
            return true;
        } catch (const state_error& e) {
            log::line(log::level::error, "cannot save the state file").str("error", e.what());
            stop(exit_code::fatal, "state file");
            return false;
        }
    }

    void log_end(const outcome& out) {
        const bool quiet = out.what == outcome::kind::closed;
        log::line l(quiet ? log::level::info : log::level::warn, "disconnected");
        l.str("reason", to_string(out.what))
            .str("detail", out.detail)
            .boolean("welcomed", out.welcomed);
        if (out.what == outcome::kind::server_error) {
            l.str("code", out.error.code).str("message", out.error.message);
        }
        if (out.what == outcome::kind::goaway) {
            l.str("goaway_reason", out.goaway.reason)
                .num("reconnect_after_ms", out.goaway.reconnect_after.count());
        }
    }

    asio::io_context& io_;
    terminal_cli cli_;
    std::string token_;
    std::shared_ptr<ssl::context> tls_;
    static constexpr std::string_view status_id_prefix = "rs-";
    std::optional<std::uint64_t> last_;  // the last processed seq (the resume point)
    std::string epoch_;                  // the epoch last_ counts in ("" before the first)
    std::string eid_;                    // the eid of the event at last_
    std::set<std::string> open_;         // orders seen, not final (at most max_open_orders)
    bool resync_pending_ = false;        // open orders' status to re-read once connected
    std::deque<std::string> status_queue_;
    std::size_t status_waiting_ = 0;
    std::uint64_t status_n_ = 0;
    bool resumed_ = false;  // the current connection sent resume_from
    std::shared_ptr<terminal_client> client_;
    asio::steady_timer delay_;
    asio::steady_timer ack_flush_;
    std::chrono::steady_clock::time_point welcomed_at_{};
    backoff backoff_;
    std::mt19937_64 rng_;
    std::uint64_t events_ = 0;
    std::uint64_t unacked_ = 0;
    bool stopping_ = false;
    int exit_code_ = exit_code::ok;
    // Requests: sent once (never again after a reconnect), answered by a result or an error.
    std::string request_id_;
    bool sent_ = false;
    bool answered_ = false;
    std::optional<int> order_end_;  // charge --wait: the order ended before the answer came
};

}  // namespace

int main(int argc, char** argv) {
    terminal_cli cli;
    try {
        cli = parse_terminal_cli(argc, argv);
    } catch (const usage_error& e) {
        std::fprintf(stderr, "posrelay-terminal: %s\n(see posrelay-terminal --help)\n", e.what());
        return exit_code::usage;
    }
    if (cli.what == terminal_cli::action::help) {
        std::cout << cli.help_text;
        return exit_code::ok;
    }
    if (cli.what == terminal_cli::action::version) {
        std::cout << "posrelay-terminal " << POSRELAY_VERSION << " (" << posrelay::git_commit()
                  << ")\n";
        return exit_code::ok;
    }
    log::set_level(cli.log_level);

    std::string token;
    std::optional<terminal_state> saved;
    std::shared_ptr<ssl::context> tls;
    try {
        token = load_token(cli.token_file, std::getenv(token_env));
        if (!cli.state_file.empty())
            saved = read_state(cli.state_file, cli.terminal_id, cli.store_id);
        if (uses_tls(cli.kind)) tls = make_tls_context(cli);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "posrelay-terminal: %s\n", e.what());
        return exit_code::usage;
    }
    std::signal(SIGPIPE, SIG_IGN);

    asio::io_context io(1);
    listener app(io, cli, std::move(token), std::move(tls), std::move(saved));
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](boost::system::error_code ec, int sig) {
        if (!ec) app.stop(exit_code::ok, sig == SIGINT ? "SIGINT" : "SIGTERM");
    });
    asio::steady_timer timeout(io);
    if (cli.timeout) {
        timeout.expires_after(*cli.timeout);
        timeout.async_wait([&](boost::system::error_code ec) {
            if (!ec) app.stop(exit_code::timeout, "--timeout expired");
        });
    }
    int rc = exit_code::fatal;
    asio::co_spawn(io, app.run(), [&](std::exception_ptr ep, int code) {
        rc = code;
        if (ep) {
            rc = exit_code::fatal;
            try {
                std::rethrow_exception(ep);
            } catch (const std::exception& e) {
                log::line(log::level::error, "fatal").str("error", e.what());
            }
        }
        signals.cancel();
        timeout.cancel();
    });
    io.run();
    return rc;
}
