// Delivery marks: what terminal sessions report for presence and order timelines (the session
// opened, an event was written to its socket, events were acknowledged, it is alive, it
// closed), gathered per store into store::activity_batch until the next flush. Sans-io: the
// io thread's activity recorder (src/fanout/gateway_recorder.hpp) owns one and flushes it.
// Bounded: at most `max_marks` entries wait; past that a mark is refused (the caller counts
// it), except one that only updates an entry already waiting.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "posrelay/store/terminal_activity.hpp"

namespace posrelay::fanout {

// An event's identity for its marks: its seq and its order id, held inline (an order id is at
// most 50 characters; a longer one is not recorded).
struct delivery_tag {
    std::uint64_t seq = 0;
    char order[50] = {};
    std::uint8_t order_size = 0;
    [[nodiscard]] std::string_view order_id() const noexcept { return {order, order_size}; }
    [[nodiscard]] static delivery_tag of(std::uint64_t seq, std::string_view order_id) noexcept;
};

// The top-level "order_id" of an event's JSON ("" when it has none or is not JSON).
[[nodiscard]] std::string event_order_id(std::string_view event_json);

// Who a mark is about: one session of one terminal of one store.
struct session_ref {
    std::string_view store, terminal, session;
};

class delivery_marks {
public:
    explicit delivery_marks(std::size_t max_marks) : max_(max_marks) {}

    // Each returns false when the mark was refused (full). `alive_until_ms` renews the
    // presence's lease; 0 leaves it.
    bool opened(std::string_view store, store::presence_update open);
    bool written(const session_ref& s, const delivery_tag& t, std::int64_t now_ms,
                 std::int64_t alive_until_ms);
    // Acknowledged up to `upto`; `tags` are the acknowledged events (their timeline marks).
    bool acked(const session_ref& s, std::uint64_t upto, const std::vector<delivery_tag>& tags,
               std::int64_t now_ms, std::int64_t alive_until_ms);
    bool alive(const session_ref& s, std::int64_t alive_until_ms);
    bool closed(const session_ref& s, std::int64_t now_ms);

    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    // Everything waiting, by store; empties the marks.
    [[nodiscard]] std::vector<std::pair<std::string, store::activity_batch>> take();

private:
    struct store_marks {
        store::activity_batch batch;
        std::map<std::pair<std::string, std::string>, std::size_t, std::less<>> index;
    };
    // The waiting presence entry of (terminal, session), made if there is room; nullptr if not.
    store::presence_update* entry(const session_ref& s);
    bool add_timeline(std::string_view store, store::timeline_mark m);

    std::size_t max_;
    std::size_t size_ = 0;
    std::map<std::string, store_marks, std::less<>> stores_;
};

}  // namespace posrelay::fanout
