// Delivery marks gathered per store (include/posrelay/fanout/delivery_marks.hpp).
#include "posrelay/fanout/delivery_marks.hpp"

#include <simdjson.h>

#include <algorithm>

namespace posrelay::fanout {

delivery_tag delivery_tag::of(std::uint64_t seq, std::string_view order_id) noexcept {
    delivery_tag t;
    t.seq = seq;
    if (order_id.size() <= sizeof t.order) {
        std::copy(order_id.begin(), order_id.end(), t.order);
        t.order_size = static_cast<std::uint8_t>(order_id.size());
    }
    return t;
}

std::string event_order_id(std::string_view event_json) {
    // Replayed events only (live ones carry it from the feed's parse): one parser per thread.
    thread_local simdjson::ondemand::parser parser;
    const simdjson::padded_string padded(event_json);
    simdjson::ondemand::document doc;
    if (parser.iterate(padded).get(doc)) return {};
    simdjson::ondemand::object o;
    if (doc.get_object().get(o)) return {};
    std::string_view id;
    if (o.find_field_unordered("order_id").get_string().get(id)) return {};
    return std::string(id);
}

store::presence_update* delivery_marks::entry(const session_ref& s) {
    auto it = stores_.find(s.store);
    if (it == stores_.end()) {
        if (size_ >= max_) return nullptr;
        it = stores_.emplace(std::string(s.store), store_marks{}).first;
    }
    store_marks& m = it->second;
    auto key = std::pair{std::string(s.terminal), std::string(s.session)};
    if (auto i = m.index.find(key); i != m.index.end()) return &m.batch.presence[i->second];
    if (size_ >= max_) return nullptr;
    m.index.emplace(std::move(key), m.batch.presence.size());
    store::presence_update& u = m.batch.presence.emplace_back();
    u.terminal = std::string(s.terminal);
    u.session = std::string(s.session);
    ++size_;
    return &u;
}

bool delivery_marks::add_timeline(std::string_view store, store::timeline_mark m) {
    if (m.order_id.empty() || m.seq == 0) return false;
    auto it = stores_.find(store);
    if (it != stores_.end() && m.acked_ms != 0) {
        // An ack soon after its write (the usual case): the written mark still waiting takes
        // the ack time too, one entry instead of two. Only the newest few are looked at.
        auto& t = it->second.batch.timeline;
        const std::size_t stop = t.size() > 64 ? t.size() - 64 : 0;
        for (std::size_t i = t.size(); i-- > stop;) {
            if (t[i].seq == m.seq && t[i].terminal == m.terminal && t[i].order_id == m.order_id) {
                if (t[i].acked_ms == 0) t[i].acked_ms = m.acked_ms;
                return true;
            }
        }
    }
    if (size_ >= max_) return false;
    if (it == stores_.end()) it = stores_.emplace(std::string(store), store_marks{}).first;
    it->second.batch.timeline.push_back(std::move(m));
    ++size_;
    return true;
}

bool delivery_marks::opened(std::string_view store, store::presence_update open) {
    store::presence_update* u = entry({store, open.terminal, open.session});
    if (u == nullptr) return false;
    open.open = true;
    *u = std::move(open);
    return true;
}

bool delivery_marks::written(const session_ref& s, const delivery_tag& t, std::int64_t now_ms,
                             std::int64_t alive_until_ms) {
    store::presence_update* u = entry(s);
    if (u == nullptr) return false;
    u->sent_seq = std::max(u->sent_seq.value_or(0), t.seq);
    if (alive_until_ms) u->alive_until_ms = alive_until_ms;
    if (t.order_size == 0) return true;
    return add_timeline(s.store,
                        {std::string(t.order_id()), std::string(s.terminal), t.seq, now_ms, 0});
}

bool delivery_marks::acked(const session_ref& s, std::uint64_t upto,
                           const std::vector<delivery_tag>& tags, std::int64_t now_ms,
                           std::int64_t alive_until_ms) {
    store::presence_update* u = entry(s);
    if (u == nullptr) return false;
    u->acked_seq = std::max(u->acked_seq.value_or(0), upto);
    if (alive_until_ms) u->alive_until_ms = alive_until_ms;
    bool all = true;
    for (const auto& t : tags) {
        if (t.order_size == 0) continue;
        all = add_timeline(s.store, {std::string(t.order_id()), std::string(s.terminal), t.seq, 0,
                                     now_ms}) &&
              all;
    }
    return all;
}

bool delivery_marks::alive(const session_ref& s, std::int64_t alive_until_ms) {
    store::presence_update* u = entry(s);
    if (u == nullptr) return false;
    u->alive_until_ms = alive_until_ms;
    return true;
}

bool delivery_marks::closed(const session_ref& s, std::int64_t now_ms) {
    store::presence_update* u = entry(s);
    if (u == nullptr) return false;
    u->closed_ms = now_ms;
    return true;
}

std::vector<std::pair<std::string, store::activity_batch>> delivery_marks::take() {
    std::vector<std::pair<std::string, store::activity_batch>> out;
    out.reserve(stores_.size());
    for (auto& [store, m] : stores_)
        out.emplace_back(store, std::move(m.batch));
    stores_.clear();
    size_ = 0;
    return out;
}

}  // namespace posrelay::fanout
