// Failed authentications per source address; see auth_limiter.hpp.
#include "posrelay/auth_limiter.hpp"

namespace posrelay {

auth_limiter::clock::duration auth_limiter::blocked_for(std::string_view address,
                                                        clock::time_point now) {
    std::lock_guard lock(mutex_);
    const auto it = table_.find(address);
    if (it == table_.end()) return clock::duration::zero();
    const auto ends = it->second.window_start + window_;
    if (now >= ends) {
        table_.erase(it);
        return clock::duration::zero();
    }
    return it->second.failures < per_window_ ? clock::duration::zero() : ends - now;
}

void auth_limiter::failed(std::string_view address, clock::time_point now) {
    std::lock_guard lock(mutex_);
    auto it = table_.find(address);
    if (it == table_.end()) {
        if (table_.size() >= max_tracked) {
            std::erase_if(table_,
                          [&](const auto& kv) { return now - kv.second.window_start >= window_; });
            if (table_.size() >= max_tracked) return;
        }
        it = table_.try_emplace(std::string(address)).first;
    }
    entry& e = it->second;
    if (e.failures == 0 || now - e.window_start >= window_) {
        e.failures = 0;
        e.window_start = now;
    }
    ++e.failures;
}

std::size_t auth_limiter::tracked() const {
    std::lock_guard lock(mutex_);
    return table_.size();
}

std::string auth_key(std::string_view client, std::string_view terminal_id) {
    std::string key;
    key.reserve(client.size() + 1 + terminal_id.size());
    return key.append(client).append(1, '\n').append(terminal_id);
}

std::string_view address_of(std::string_view remote) noexcept {
    const auto colon = remote.rfind(':');
    return colon == std::string_view::npos ? remote : remote.substr(0, colon);
}

}  // namespace posrelay
