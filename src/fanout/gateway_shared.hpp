// State shared by every terminal connection of a node: options, metrics, the hub (which
// connection serves which terminal), the failed-handshake limiter and per-thread parsers.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gateway_control.hpp"
#include "gateway_recorder.hpp"
#include "posrelay/auth_limiter.hpp"
#include "posrelay/fanout/control.hpp"
#include "posrelay/fanout/feed_refs.hpp"
#include "posrelay/fanout/gateway.hpp"
#include "posrelay/fanout/protocol.hpp"
#include "posrelay/fanout/token_verifier.hpp"
#include "posrelay/store/terminal_revocations.hpp"

namespace posrelay::fanout::detail {

// A live event's identity as the feed read it: its seq, epoch and eid (fanout/epoch.hpp).
// The epoch is held inline (at most 24 bytes): no allocation per event.
struct live_meta {
    std::uint64_t seq = 0;
    std::uint64_t eid = 0;
    std::int64_t event_ms = 0;
    char epoch[24] = {};
    std::uint8_t epoch_size = 0;
    [[nodiscard]] std::string_view epoch_view() const noexcept { return {epoch, epoch_size}; }
    char order_id[50] = {};  // the event's order (for its delivery marks), inline too
    std::uint8_t order_id_size = 0;
    [[nodiscard]] std::string_view order_view() const noexcept { return {order_id, order_id_size}; }
};

// What the hub and the gateway can ask of a connection; always on its executor.
class session_base {
public:
    virtual ~session_base() = default;
    virtual boost::asio::any_io_executor executor() = 0;
    virtual void on_live(const live_meta& m, std::shared_ptr<const std::string> frame) = 0;
    virtual void kick(errc code, std::string_view message) = 0;
    virtual void goaway(std::chrono::milliseconds reconnect_after) = 0;
    // The live feed may have missed events (it lost Redis): re-read the terminal's stream.
    virtual void recheck() = 0;
    // Renews the store subscription, if the terminal has one (it expires unless renewed).
    virtual void renew_subscription() = 0;
    // A control message of its store (revoke, disconnect): decide_control() says what to do.
    virtual void on_control(const control_message& m) = 0;
};

// (store, terminal) → the connection serving that terminal on this node. Thread-safe. The
// key is "STORE/TERMINAL" ('/' is in no id): POS-1 of two stores is two terminals. It also
// counts the terminals of each store (feed_refs) and tells the live feed when a store's first
// terminal arrives or its last leaves (`on_store`, called under the hub's lock, in order).
class session_hub {
public:
    using store_fn = std::function<void(std::string_view store, bool subscribe)>;
    explicit session_hub(std::size_t max_stores = 1'000'000) : refs_(max_stores) {}

    [[nodiscard]] static std::string key(std::string_view store, std::string_view terminal);
    // The store part of a key.
    [[nodiscard]] static std::string_view store_of(std::string_view key);
    // Set once, before the first attach.
    void on_store(store_fn f) { on_store_ = std::move(f); }
    // Registers `s` for `key`; returns the connection it replaces, if any.
    std::shared_ptr<session_base> attach(const std::string& key, std::shared_ptr<session_base> s);
    // Removes the entry if it still points at `s`.
    void detach(const std::string& key, const session_base* s);
    // Registers an observer session of the terminal `key` (beside its own session, which it
    // neither replaces nor is replaced by); false when the terminal has `max` observers.
    bool attach_observer(const std::string& key, std::shared_ptr<session_base> s, std::size_t max);
    // Removes an observer registered for `key`.
    void detach_observer(const std::string& key, const session_base* s);
    // Posts an event to the terminal's connection and its observers, if on this node (false
    // if none is).
    bool dispatch(std::string_view key, const live_meta& m,
                  std::shared_ptr<const std::string> frame);
    // Every connection, observers included (for shutdown, rechecks).
    [[nodiscard]] std::vector<std::shared_ptr<session_base>> all() const;
    // The connections of one store's terminals, observers included.
    [[nodiscard]] std::vector<std::shared_ptr<session_base>> of_store(std::string_view store) const;
    // The connection of one terminal and its observers.
    [[nodiscard]] std::vector<std::shared_ptr<session_base>> of_terminal(
        std::string_view key) const;

private:
    mutable std::mutex mutex_;
    feed_refs refs_;
    store_fn on_store_;
    // Looked up by string_view (the id inside a published event) without a string copy.
    struct id_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view id) const noexcept {
            return std::hash<std::string_view>{}(id);
        }
    };
    std::unordered_map<std::string, std::weak_ptr<session_base>, id_hash, std::equal_to<>>
        sessions_;
    // Observer sessions by terminal key (each at most max_observers); each counts in refs_ as
    // a terminal of its store (the node subscribes to the store's channel for it).
    // Each entry: the session's address (to find it when it detaches from its destructor, its
    // weak_ptr expired by then) and the session.
    using observer_entry = std::pair<const session_base*, std::weak_ptr<session_base>>;
    std::unordered_map<std::string, std::vector<observer_entry>, id_hash, std::equal_to<>>
        observers_;
    // Adds the observers of `key` to `out` (under mutex_).
    void add_observers(std::string_view key, std::vector<std::shared_ptr<session_base>>& out) const;
};

struct gateway_shared {
    gateway_shared(gateway_options o, store::redis_store& s, metrics::registry& reg,
                   std::size_t threads);

    metrics::gauge& transport_gauge(std::string_view transport);
    void count_handshake(std::string_view outcome);
    // Checks hello's token against the current verifier at the current time and counts it in
    // posrelay_terminal_token_checks_total. Never throws.
    [[nodiscard]] token_check check_token(const hello_frame& h);
    // One more check of `kind` ended with `outcome` (e.g. revoked, decided after check_token).
    void count_token(token_kind kind, token_outcome outcome) noexcept;
    void count_disconnect(std::string_view reason);
    // --terminal-proxy-protocol refusals: posrelay_terminal_proxy_protocol_refused_total.
    void count_proxy_refused(std::string_view reason, int n = 1);
    [[nodiscard]] frame_parser& parser(std::size_t thread) { return *parsers_[thread]; }

    void connection_opened() { connections.fetch_add(1); }
    void connection_closed();

    gateway_options opts;
    // opts.tokens, replaced by a reload; a handshake takes one snapshot.
    std::atomic<std::shared_ptr<const token_verifier>> tokens;
    store::redis_store& store;
    // What a terminal session reads and writes of the store (its stream, its counter, its
    // subscription): sessions use only this.
    store::terminal_streams& streams = store;
    // When terminals were revoked, and the store's control messages: sessions use only this.
    store::terminal_revocations& revocations = store;
    recent_revocations recent;  // revoke messages the feed received lately
    metrics::registry& registry;
    session_hub hub;
    std::shared_ptr<auth_limiter> auth_owner;  // opts.auth_failures, or the gateway's own
    auth_limiter& auth;
    std::atomic<std::size_t> connections{0};
    std::atomic<bool> stopping{false};
    std::mutex drained_mutex;
    std::function<void()> drained;

    metrics::gauge& tcp_connections;
    metrics::gauge& tls_connections;
    metrics::gauge& ws_connections;
    metrics::gauge& queue_bytes;
    metrics::gauge& unacked;  // sum of every connection's delivery_fsm::inflight()
    metrics::counter& delivered;
    metrics::counter& replayed;
    metrics::counter& acks;
    metrics::counter& slow_consumers;
    metrics::counter& reads_paused;
    metrics::counter& rejected_connections;
    metrics::counter& feed_events;
    metrics::counter& feed_subscribes;
    metrics::counter& feed_unmatched;       // events received for no terminal on this node
    metrics::gauge& feed_stores;            // stores whose channel the feed is subscribed to
    metrics::counter& resyncs;              // terminals told `resync`
    metrics::counter& rotations;            // epochs started by this node's terminal gateway
    metrics::gauge& observers;              // observer sessions connected
    metrics::counter& closed_revoked;       // live sessions closed by a revocation
    metrics::counter& closed_disconnected;  // live sessions closed by an operator's disconnect
    metrics::counter& control_received;     // control messages received on the live feed
    metrics::counter& control_invalid;      // messages of neither kind, or malformed control
    metrics::histogram& latency;
    // Delivery marks (presence, order timelines): one recorder per io thread, made by the
    // gateway; a session uses its own thread's.
    recorder_metrics activity_metrics{registry};
    std::vector<std::shared_ptr<activity_recorder>> recorders;
    [[nodiscard]] activity_recorder& recorder(std::size_t thread) { return *recorders[thread]; }

private:
    metrics::counter& labelled(std::vector<std::pair<std::string, metrics::counter*>>& table,
                               const char* name, const char* help, const char* label,
                               std::string_view value);
    static constexpr std::size_t token_kinds = 4;
    static constexpr std::size_t token_outcomes =
        static_cast<std::size_t>(token_outcome::wrong_terminal) + 1;
    std::array<metrics::counter*, token_kinds * token_outcomes> token_checks_{};
    std::mutex counters_mutex_;
    std::vector<std::pair<std::string, metrics::counter*>> handshakes_;
    std::vector<std::pair<std::string, metrics::counter*>> disconnects_;
    std::vector<std::pair<std::string, metrics::counter*>> proxy_refused_;
    std::vector<std::unique_ptr<frame_parser>> parsers_;
};

}  // namespace posrelay::fanout::detail
