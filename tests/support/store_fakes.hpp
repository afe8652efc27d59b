// In-memory fakes of the store interfaces (order store, terminal streams, poll schedule) and of
// the Midtrans calls, for unit tests of the code that uses them (no Redis, no network).
// Deterministic: no clock of their own unless a test sets one, no threads; a mutex only so
// that a test thread may read what an io thread did (after waiting for it). Every call is
// recorded; fail(op, ec, times) makes the next calls of `op` answer `ec` (a timeout:
// boost::asio::error::timed_out).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "posrelay/midtrans/client.hpp"
#include "posrelay/midtrans/transaction_status.hpp"
#include "posrelay/store/order_store.hpp"
#include "posrelay/store/poll_schedule.hpp"
#include "posrelay/store/terminal_activity.hpp"
#include "posrelay/store/terminal_revocations.hpp"
#include "posrelay/store/terminal_streams.hpp"

namespace posrelay::test {

using error_code = boost::system::error_code;

// Planned failures by operation name.
class fault_plan {
public:
    void fail(const std::string& op, error_code ec, int times = 1) {
        std::lock_guard lock(mutex_);
        for (int i = 0; i < times; ++i)
            planned_[op].push_back(ec);
    }
    // The error the next call of `op` must answer (and it is used up), or none.
    error_code take(const std::string& op) {
        std::lock_guard lock(mutex_);
        auto it = planned_.find(op);
        if (it == planned_.end() || it->second.empty()) return {};
        const error_code ec = it->second.front();
        it->second.pop_front();
        return ec;
    }

private:
    std::mutex mutex_;
    std::map<std::string, std::deque<error_code>> planned_;
};

// ---- the order store --------------------------------------------------------------------

class fake_order_store final : public store::order_store {
public:
    fault_plan faults;
    mutable std::mutex mutex;
    std::map<std::string, store::order_fields> orders;
    std::vector<std::string> calls;  // "op order_id" in call order
    std::vector<ingest::status_update> commits;
    std::vector<store::claim_resolution> resolutions;

    void put(const std::string& id, store::order_fields f) {
        std::lock_guard lock(mutex);
        f.emplace("order_id", id);
        orders[id] = std::move(f);
    }
    [[nodiscard]] std::optional<store::order_fields> get(const std::string& id) const {
        std::lock_guard lock(mutex);
        auto it = orders.find(id);
        if (it == orders.end()) return std::nullopt;
        return it->second;
    }
    [[nodiscard]] std::size_t count(std::string_view op) const {
        std::lock_guard lock(mutex);
        return static_cast<std::size_t>(std::count_if(
            calls.begin(), calls.end(), [&](auto& c) { return c.substr(0, c.find(' ')) == op; }));
    }

    boost::asio::awaitable<ingest::commit_result> commit(ingest::status_update u) override {
        ingest::commit_result r;
        if ((r.ec = record("commit", u.order_id()))) co_return r;
        std::lock_guard lock(mutex);
        commits.push_back(u);
        auto& f = orders[std::string(u.order_id())];
        const std::string mark = "seen:" + std::string(midtrans::to_string(u.status)) + "|" +
                                 std::string(u.fraud ? midtrans::to_string(*u.fraud) : "");
        if (f.contains(mark)) {
            r.outcome = ingest::commit_outcome::duplicate;
            co_return r;
        }
        std::optional<midtrans::order_state> stored;
        if (auto s = midtrans::parse_transaction_status(store::field_of(f, "transaction_status")))
            stored = midtrans::order_state{
                *s, midtrans::parse_fraud_status(store::field_of(f, "fraud_status"))};
        if (midtrans::classify(stored, {u.status, u.fraud}) != midtrans::transition::forward) {
            r.outcome = ingest::commit_outcome::stale;
            co_return r;
        }
        f[mark] = "1";
        f["transaction_status"] = std::string(midtrans::to_string(u.status));
        f["source"] = std::string(ingest::to_string(u.source));
        r.event_id = "e" + std::to_string(commits.size());
        co_return r;
    }
    [[nodiscard]] bool ready() const noexcept override { return true; }

    boost::asio::awaitable<store::register_result> register_order(
        store::order_registration reg) override {
        store::register_result r;
        if ((r.ec = record("register", reg.order_id))) co_return r;
        std::lock_guard lock(mutex);
        auto& f = orders[reg.order_id];
        if (!store::field_of(f, "terminal_id").empty()) {
            const bool same = store::field_of(f, "terminal_id") == reg.terminal_id &&
                              store::field_of(f, "store_id") == reg.store_id;
            r.outcome = same ? store::register_outcome::exists : store::register_outcome::conflict;
            co_return r;
        }
        route(f, reg);
        co_return r;
    }

    boost::asio::awaitable<store::resolve_result> resolve_claim(
        store::claim_resolution c) override {
        store::resolve_result r;
        if ((r.ec = record("resolve", c.order_id))) co_return r;
        std::lock_guard lock(mutex);
        resolutions.push_back(c);
        auto& f = orders[c.order_id];
        r.previous_status = store::field_of(f, "transaction_status");
        if (store::field_of(f, "claim") != c.claim) {
            r.outcome = "superseded";
            co_return r;
        }
        f.erase("claim");
        r.outcome = "unchanged";
        if (c.midtrans && !c.denied) {
            f["transaction_status"] = std::string(midtrans::to_string(c.midtrans->status));
            r.outcome = "new";
        }
        co_return r;
    }

    boost::asio::awaitable<store::reserve_result> reserve_charge(
        store::order_registration reg) override {
        store::reserve_result r;
        if ((r.ec = record("reserve", reg.order_id))) co_return r;
        std::lock_guard lock(mutex);
        if (auto it = orders.find(reg.order_id); it != orders.end()) {
            r.outcome = store::reserve_outcome::taken;
            r.current = store::field_of(it->second, "transaction_status");
            if (r.current.empty()) r.current = store::field_of(it->second, "state");
            if (r.current.empty()) r.current = "registered";
            co_return r;
        }
        auto& f = orders[reg.order_id];
        route(f, reg);
        f["state"] = "charging";
        f["signer"] = reg.signer;
        co_return r;
    }

    boost::asio::awaitable<error_code> release_charge(std::string order_id,
                                                      std::string terminal_id) override {
        if (auto ec = record("release", order_id)) co_return ec;
        std::lock_guard lock(mutex);
        auto it = orders.find(order_id);
        if (it != orders.end() && store::field_of(it->second, "state") == "charging" &&
            store::field_of(it->second, "transaction_status").empty() &&
            store::field_of(it->second, "terminal_id") == terminal_id) {
            orders.erase(it);
        }
        co_return error_code{};
    }

    boost::asio::awaitable<error_code> alert_unknown(std::string order_id) override {
        if (auto ec = record("alert", order_id)) co_return ec;
        std::lock_guard lock(mutex);
        if (auto it = orders.find(order_id); it != orders.end()) it->second["state"] = "unknown";
        co_return error_code{};
    }

    boost::asio::awaitable<error_code> set_order_fields(std::string order_id,
                                                        store::order_fields fields) override {
        if (auto ec = record("set", order_id)) co_return ec;
        std::lock_guard lock(mutex);
        for (auto& [k, v] : fields)
            orders[order_id][k] = std::move(v);
        co_return error_code{};
    }

    boost::asio::awaitable<error_code> count_attempt(std::string order_id,
                                                     std::string field) override {
        if (auto ec = record("count", order_id)) co_return ec;
        std::lock_guard lock(mutex);
        auto& v = orders[order_id][field];
        v = std::to_string(store::to_int64(v) + 1);
        co_return error_code{};
    }

    boost::asio::awaitable<std::pair<error_code, std::optional<store::order_fields>>> read_order(
        std::string order_id) override {
        if (auto ec = record("read", order_id))
            co_return std::pair{ec, std::optional<store::order_fields>{}};
        std::lock_guard lock(mutex);
        auto it = orders.find(order_id);
        if (it == orders.end())
            co_return std::pair{error_code{}, std::optional<store::order_fields>{}};
        store::order_fields f = it->second;
        const auto st =
            midtrans::parse_transaction_status(store::field_of(f, "transaction_status"));
        const auto fraud = midtrans::parse_fraud_status(store::field_of(f, "fraud_status"));
        f.emplace("paid", st && midtrans::is_paid(*st, fraud) ? "1" : "0");
        co_return std::pair{error_code{}, std::optional<store::order_fields>{std::move(f)}};
    }

    boost::asio::awaitable<std::pair<error_code, std::optional<store::order_record>>>
    read_order_record(std::string order_id) override {
        if (auto ec = record("record", order_id))
            co_return std::pair{ec, std::optional<store::order_record>{}};
        std::lock_guard lock(mutex);
        auto it = orders.find(order_id);
        if (it == orders.end())
            co_return std::pair{error_code{}, std::optional<store::order_record>{}};
        store::order_record r(it->second.begin(), it->second.end());
        co_return std::pair{error_code{}, std::optional<store::order_record>{std::move(r)}};
    }

private:
    error_code record(const std::string& op, std::string_view id) {
        {
            std::lock_guard lock(mutex);
            calls.push_back(op + " " + std::string(id));
        }
        return faults.take(op);
    }
    static void route(store::order_fields& f, const store::order_registration& reg) {
        f["order_id"] = reg.order_id;
        f["terminal_id"] = reg.terminal_id;
        f["store_id"] = reg.store_id;
        f["gross_amount"] = reg.gross_amount;
        f["expiry_ms"] = std::to_string(reg.expiry_ms);
        f["created_ms"] = std::to_string(store::unix_ms_now());
    }
};

// ---- terminal streams -------------------------------------------------------------------

class fake_terminal_streams final : public store::terminal_streams {
public:
    struct stream {
        bool has_counter = false;
        std::uint64_t seq = 0;
        std::string epoch;
        std::vector<store::stream_entry> entries;  // oldest first
        bool subscribed = false;
    };
    fault_plan faults;
    std::map<std::string, stream> streams;  // by "store/terminal"
    std::vector<std::string> calls;
    unsigned epochs_made = 0;

    stream& at(const std::string& store, const std::string& terminal) {
        return streams[store + "/" + terminal];
    }
    // Appends an event (the order script's emit): next seq, eid = 1000 + seq unless given.
    std::uint64_t append(const std::string& store, const std::string& terminal,
                         std::uint64_t eid = 0) {
        auto& s = at(store, terminal);
        if (!s.has_counter) make_counter(s);
        ++s.seq;
        s.entries.push_back({s.seq, eid ? eid : 1000 + s.seq, s.epoch, "{}", true});
        return s.seq;
    }

    boost::asio::awaitable<std::pair<error_code, store::terminal_position>> open_terminal(
        std::string store, std::string terminal, bool subscribe) override {
        if (auto ec = record("open")) co_return std::pair{ec, store::terminal_position{}};
        auto& s = at(store, terminal);
        bool rotated = false;
        if (!s.has_counter) {
            make_counter(s);
            rotated = true;
        }
        s.subscribed = subscribe;
        co_return std::pair{error_code{}, store::terminal_position{s.seq, s.epoch, rotated}};
    }

    boost::asio::awaitable<std::pair<error_code, store::terminal_position>> rotate_epoch(
        std::string store, std::string terminal, std::string expected,
        std::string after_eid) override {
        if (auto ec = record("rotate")) co_return std::pair{ec, store::terminal_position{}};
        auto& s = at(store, terminal);
        if (s.has_counter && s.epoch != expected)
            co_return std::pair{error_code{}, store::terminal_position{s.seq, s.epoch, false}};
        const std::uint64_t after = after_eid.empty() ? 0 : std::stoull(after_eid);
        std::vector<store::stream_entry> carried;
        make_counter(s);
        for (auto& e : s.entries) {
            if (e.eid <= after) continue;
            e.seq = carried.size() + 1;
            e.epoch = s.epoch;
            carried.push_back(e);
        }
        s.entries = std::move(carried);
        s.seq = s.entries.size();
        co_return std::pair{error_code{}, store::terminal_position{s.seq, s.epoch, true}};
    }

    boost::asio::awaitable<std::pair<error_code, store::terminal_position>> read_position(
        std::string store, std::string terminal) override {
        if (auto ec = record("position")) co_return std::pair{ec, store::terminal_position{}};
        auto& s = at(store, terminal);
        if (!s.has_counter) co_return std::pair{error_code{}, store::terminal_position{}};
        co_return std::pair{error_code{}, store::terminal_position{s.seq, s.epoch, false}};
    }

    boost::asio::awaitable<std::pair<error_code, std::vector<store::stream_entry>>> read_range(
        std::string store, std::string terminal, std::uint64_t from, std::uint64_t to,
        std::uint64_t count) override {
        std::vector<store::stream_entry> out;
        if (auto ec = record("range")) co_return std::pair{ec, out};
        for (const auto& e : at(store, terminal).entries) {
            if (e.seq >= from && e.seq <= to && out.size() < count) out.push_back(e);
        }
        co_return std::pair{error_code{}, std::move(out)};
    }

    boost::asio::awaitable<error_code> renew_subscription(std::string store,
                                                          std::string terminal) override {
        if (auto ec = record("renew")) co_return ec;
        at(store, terminal).subscribed = true;
        co_return error_code{};
    }

private:
    void make_counter(stream& s) {
        s.has_counter = true;
        s.seq = 0;
        s.epoch = "E" + std::to_string(++epochs_made);
    }
    error_code record(const std::string& op) {
        calls.push_back(op);
        return faults.take(op);
    }
};

// ---- terminal revocations ----------------------------------------------------------------

class fake_terminal_revocations final : public store::terminal_revocations {
public:
    fault_plan faults;
    mutable std::mutex mutex;
    std::map<std::string, std::int64_t> revoked;       // "store/terminal" or "store/*" → Unix s
    std::map<std::string, std::chrono::seconds> kept;  // the same keys → how long kept
    std::vector<std::pair<std::string, std::string>> sent;  // (store, message)
    std::int64_t receivers = 1;                             // what send_control answers

    boost::asio::awaitable<std::pair<error_code, store::revocation_times>> read_revocations(
        std::string store, std::string terminal) override {
        std::lock_guard lock(mutex);
        store::revocation_times t;
        if (auto ec = faults.take("read_revocations")) co_return std::pair{ec, t};
        t.terminal_at = value(store + "/" + terminal);
        t.store_at = value(store + "/*");
        co_return std::pair{error_code{}, t};
    }
    boost::asio::awaitable<std::pair<error_code, std::int64_t>> revoke(
        std::string store, std::string terminal, std::int64_t at,
        std::chrono::seconds keep) override {
        std::lock_guard lock(mutex);
        if (auto ec = faults.take("revoke")) co_return std::pair{ec, std::int64_t{0}};
        const std::string k = store + "/" + (terminal.empty() ? "*" : terminal);
        auto& v = revoked[k];
        v = std::max(v, at);
        kept[k] = keep;
        co_return std::pair{error_code{}, v};
    }
    boost::asio::awaitable<std::pair<error_code, std::int64_t>> send_control(
        std::string store, std::string message) override {
        std::lock_guard lock(mutex);
        if (auto ec = faults.take("send_control")) co_return std::pair{ec, std::int64_t{0}};
        sent.emplace_back(std::move(store), std::move(message));
        co_return std::pair{error_code{}, receivers};
    }

private:
    std::int64_t value(const std::string& k) const {
        const auto it = revoked.find(k);
        return it == revoked.end() ? 0 : it->second;
    }
};

// ---- the poll schedule ------------------------------------------------------------------

class fake_poll_schedule final : public store::poll_schedule {
public:
    struct entry {
        std::int64_t due_ms = 0;
        std::string lease;  // the node holding it, "" when none
    };
    fault_plan faults;
    mutable std::mutex mutex;
    std::map<std::string, entry> sets[2];  // by poll_set
    std::vector<std::string> calls;        // "op set order_id [next]"
    std::vector<std::chrono::milliseconds> pauses;
    std::deque<std::int64_t> take_waits;  // answers of take() (then 0)
    std::function<std::int64_t()> now = [] { return store::unix_ms_now(); };

    void put(store::poll_set set, const std::string& id, std::int64_t due_ms) {
        std::lock_guard lock(mutex);
        sets[index(set)][id] = {due_ms, ""};
    }
    [[nodiscard]] std::optional<entry> find(store::poll_set set, const std::string& id) const {
        std::lock_guard lock(mutex);
        auto it = sets[index(set)].find(id);
        if (it == sets[index(set)].end()) return std::nullopt;
        return it->second;
    }
    [[nodiscard]] std::vector<std::string> calls_of(std::string_view op) const {
        std::lock_guard lock(mutex);
        std::vector<std::string> out;
        for (const auto& c : calls)
            if (c.starts_with(std::string(op) + " ")) out.push_back(c);
        return out;
    }

    boost::asio::awaitable<std::pair<error_code, store::claim_batch>> claim(
        store::poll_set set, std::chrono::milliseconds lease, unsigned max,
        std::string node) override {
        store::claim_batch b;
        if (auto ec = record("claim", set, "")) co_return std::pair{ec, b};
        std::lock_guard lock(mutex);
        const std::int64_t t = now();
        for (auto& [id, e] : sets[index(set)]) {
            if (e.due_ms > t || b.entries.size() >= max) continue;
            b.entries.push_back({id, e.lease});
            e.due_ms = t + lease.count();
            e.lease = node;
        }
        for (const auto& [id, e] : sets[index(set)])
            b.next_due_ms = std::min(b.next_due_ms.value_or(e.due_ms), e.due_ms);
        co_return std::pair{error_code{}, std::move(b)};
    }

    boost::asio::awaitable<error_code> done(store::poll_set set, std::string order_id,
                                            std::optional<std::int64_t> next_due_ms) override {
        const std::string next = next_due_ms ? std::to_string(*next_due_ms) : "drop";
        if (auto ec = record("done", set, order_id + " " + next)) co_return ec;
        std::lock_guard lock(mutex);
        auto it = sets[index(set)].find(order_id);
        if (it == sets[index(set)].end()) co_return error_code{};
        if (!next_due_ms) {
            sets[index(set)].erase(it);
        } else {
            it->second = {*next_due_ms, ""};
        }
        co_return error_code{};
    }

    boost::asio::awaitable<std::pair<error_code, bool>> enrol(store::poll_set set,
                                                              std::string order_id,
                                                              std::int64_t due_ms,
                                                              std::string node) override {
        if (auto ec = record("enrol", set, order_id)) co_return std::pair{ec, false};
        std::lock_guard lock(mutex);
        const bool added = sets[index(set)].emplace(order_id, entry{due_ms, node}).second;
        co_return std::pair{error_code{}, added};
    }

    boost::asio::awaitable<std::pair<error_code, std::int64_t>> take(std::int64_t,
                                                                     std::int64_t) override {
        if (auto ec = record("take", store::poll_set::due, ""))
            co_return std::pair{ec, std::int64_t{0}};
        std::lock_guard lock(mutex);
        std::int64_t wait = 0;
        if (!take_waits.empty()) {
            wait = take_waits.front();
            take_waits.pop_front();
        }
        co_return std::pair{error_code{}, wait};
    }

    boost::asio::awaitable<error_code> pause(std::chrono::milliseconds ms) override {
        if (auto ec = record("pause", store::poll_set::due, std::to_string(ms.count())))
            co_return ec;
        std::lock_guard lock(mutex);
        pauses.push_back(ms);
        co_return error_code{};
    }

    boost::asio::awaitable<std::pair<error_code, store::schedule_stats>> stats() override {
        store::schedule_stats s;
        if (auto ec = record("stats", store::poll_set::due, "")) co_return std::pair{ec, s};
        std::lock_guard lock(mutex);
        s.due = static_cast<std::int64_t>(sets[0].size());
        s.confirm = static_cast<std::int64_t>(sets[1].size());
        for (const auto& [id, e] : sets[0])
            s.oldest_due_ms = std::min(s.oldest_due_ms.value_or(e.due_ms), e.due_ms);
        co_return std::pair{error_code{}, s};
    }

private:
    static std::size_t index(store::poll_set s) { return s == store::poll_set::due ? 0 : 1; }
    error_code record(const std::string& op, store::poll_set set, const std::string& what) {
        {
            std::lock_guard lock(mutex);
            calls.push_back(op + " " + (set == store::poll_set::due ? "due" : "confirm") + " " +
                            what);
        }
        return faults.take(op);
    }
};

// ---- terminal activity (presence, delivery timelines) ---------------------------------------

// Records every batch and applies it as the activity script does (a presence write of another
// session than the record's is skipped unless it opens; the timeline's first written and
// acked times kept; no bound on entries). `gate`: while set and false, write_activity waits
// (a flush in flight) until the test opens it.
class fake_terminal_activity final : public store::terminal_activity {
public:
    fault_plan faults;
    mutable std::mutex mutex;
    std::vector<std::pair<std::string, store::activity_batch>> batches;
    std::map<std::string, store::presence_record> presence;     // "STORE/TERMINAL"
    std::map<std::string, store::delivery_timeline> timelines;  // "STORE/ORDER"
    std::function<bool()> gate;  // checked on the io thread; false: the write waits

    [[nodiscard]] std::size_t batch_count() const {
        std::lock_guard lock(mutex);
        return batches.size();
    }

    boost::asio::awaitable<error_code> write_activity(std::string store,
                                                      store::activity_batch b) override {
        while (gate && !gate()) {
            boost::asio::steady_timer t(co_await boost::asio::this_coro::executor,
                                        std::chrono::milliseconds(1));
            co_await t.async_wait(boost::asio::use_awaitable);
        }
        if (auto ec = faults.take("write_activity")) co_return ec;
        std::lock_guard lock(mutex);
        for (const auto& u : b.presence)
            apply(presence[store + "/" + u.terminal], u);
        for (const auto& m : b.timeline)
            mark(timelines[store + "/" + m.order_id], m);
        batches.emplace_back(std::move(store), std::move(b));
        co_return error_code{};
    }
    boost::asio::awaitable<std::pair<error_code, store::presence_record>> read_presence(
        std::string store, std::string terminal) override {
        std::lock_guard lock(mutex);
        store::presence_record r;
        if (auto it = presence.find(store + "/" + terminal); it != presence.end()) r = it->second;
        r.terminal = terminal;
        co_return std::pair{error_code{}, r};
    }
    boost::asio::awaitable<std::pair<error_code, store::presence_page>> list_presence(
        std::string store, std::string cursor, std::size_t limit) override {
        std::lock_guard lock(mutex);
        store::presence_page page;
        for (const auto& [k, r] : presence) {
            if (!k.starts_with(store + "/") || r.terminal <= cursor) continue;
            if (page.terminals.size() == limit) {
                page.next = page.terminals.back().terminal;
                break;
            }
            page.terminals.push_back(r);
        }
        co_return std::pair{error_code{}, page};
    }
    boost::asio::awaitable<std::pair<error_code, store::delivery_timeline>> read_timeline(
        std::string store, std::string order_id) override {
        std::lock_guard lock(mutex);
        store::delivery_timeline t;
        if (auto it = timelines.find(store + "/" + order_id); it != timelines.end()) t = it->second;
        co_return std::pair{error_code{}, t};
    }

private:
    static void apply(store::presence_record& r, const store::presence_update& u) {
        if (u.open) {
            r = store::presence_record{};
            r.terminal = u.terminal;
            r.known = true;
            r.session = u.session;
            r.node = u.node;
            r.transport = u.transport;
            r.remote = u.remote;
            r.epoch = u.epoch;
            r.subscribe_store = u.subscribe_store;
            r.connected_ms = u.connected_ms;
        } else if (r.session != u.session) {
            return;
        }
        if (u.sent_seq) r.sent_seq = *u.sent_seq;
        if (u.acked_seq) r.acked_seq = *u.acked_seq;
        if (u.alive_until_ms) r.alive_until_ms = u.alive_until_ms;
        if (u.closed_ms) r.closed_ms = u.closed_ms;
    }
    static void mark(store::delivery_timeline& t, const store::timeline_mark& m) {
        for (auto& e : t.entries) {
            if (e.terminal != m.terminal || e.seq != m.seq) continue;
            if (!e.written_ms) e.written_ms = m.written_ms;
            if (!e.acked_ms) e.acked_ms = m.acked_ms;
            return;
        }
        t.entries.push_back({m.terminal, m.seq, m.written_ms, m.acked_ms});
    }
};

// ---- Midtrans -----------------------------------------------------------------------------

// Answers each call with `answer(op, id_or_body)` (default: a 500 with no body); records them.
class fake_midtrans final : public midtrans::api_calls {
public:
    std::function<midtrans::http_result(const std::string& op, const std::string& arg)> answer =
        [](const std::string&, const std::string&) {
            midtrans::http_result r;
            r.sent = true;
            r.status = 500;
            return r;
        };
    mutable std::mutex mutex;
    std::vector<std::string> calls;  // "op arg"
    midtrans::client_options opts;

    [[nodiscard]] std::size_t count(std::string_view op) const {
        std::lock_guard lock(mutex);
        return static_cast<std::size_t>(std::count_if(
            calls.begin(), calls.end(), [&](auto& c) { return c.substr(0, c.find(' ')) == op; }));
    }

    boost::asio::awaitable<midtrans::http_result> charge(std::string body) override {
        co_return call("charge", body);
    }
    using api_calls::status;
    boost::asio::awaitable<midtrans::http_result> status(std::string id, std::string) override {
        co_return call("status", id);
    }
    boost::asio::awaitable<midtrans::http_result> cancel(std::string id) override {
        co_return call("cancel", id);
    }
    boost::asio::awaitable<midtrans::http_result> expire(std::string id) override {
        co_return call("expire", id);
    }
    boost::asio::awaitable<midtrans::http_result> fetch(std::string url) override {
        co_return call("fetch", url);
    }
    [[nodiscard]] const midtrans::client_options& options() const noexcept override { return opts; }

private:
    midtrans::http_result call(const std::string& op, const std::string& arg) {
        {
            std::lock_guard lock(mutex);
            calls.push_back(op + " " + arg);
        }
        return answer(op, arg);
    }
};

}  // namespace posrelay::test
