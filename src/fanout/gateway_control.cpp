// A terminal session's side of operator control (gateway_control.hpp).
#include "gateway_control.hpp"

#include <algorithm>
#include <utility>

namespace posrelay::fanout::detail {

boost::asio::awaitable<revocation_verdict> check_revocation(
    store::terminal_revocations& revocations, std::string store, std::string terminal,
    std::int64_t issued_at) {
    auto [ec, t] = co_await revocations.read_revocations(std::move(store), std::move(terminal));
    if (ec) co_return revocation_verdict::unavailable;
    co_return is_revoked(issued_at, t.terminal_at, t.store_at) ? revocation_verdict::revoked
                                                               : revocation_verdict::ok;
}

void recent_revocations::note(const control_message& m, clock::time_point now) {
    if (m.op != control_op::revoke) return;
    std::string key = m.store_id + "/" + (m.terminal_id.empty() ? "*" : m.terminal_id);
    std::lock_guard lock(mutex_);
    std::erase_if(entries_, [&](const auto& e) { return now - e.second.seen > keep_; });
    if (!entries_.contains(key) && entries_.size() >= max_ && !entries_.empty()) {
        entries_.erase(std::min_element(entries_.begin(), entries_.end(), [](auto& a, auto& b) {
            return a.second.seen < b.second.seen;
        }));
    }
    auto& e = entries_[std::move(key)];
    e.at = std::max(e.at, m.revoked_at);
    e.seen = now;
}

std::int64_t recent_revocations::latest(std::string_view store, std::string_view terminal,
                                        clock::time_point now) const {
    std::int64_t at = 0;
    std::string key(store);
    key += '/';
    const std::size_t base = key.size();
    std::lock_guard lock(mutex_);
    for (const std::string_view target : {terminal, std::string_view("*")}) {
        key.resize(base);
        key += target;
        const auto it = entries_.find(key);
        if (it != entries_.end() && now - it->second.seen <= keep_)
            at = std::max(at, it->second.at);
    }
    return at;
}

std::size_t recent_revocations::size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
}

}  // namespace posrelay::fanout::detail
