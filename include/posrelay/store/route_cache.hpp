// A node's memory of order → store routes (key schema version 4, proto-docs/redis-keys.md):
// bounded (least recently used out first), thread-safe. A route never changes once written,
// so a remembered one is never wrong; an entry is used for at most `max_age`, after which the
// route is read again (GETEX), which also renews the route key's TTL.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace posrelay::store {

class route_cache {
public:
    using clock = std::chrono::steady_clock;

    route_cache(std::size_t capacity, clock::duration max_age)
        : capacity_(capacity), max_age_(max_age) {}

    // The store of `order_id`, if remembered and read from Redis less than max_age before `now`.
    [[nodiscard]] std::optional<std::string> get(std::string_view order_id, clock::time_point now) {
        std::lock_guard lock(mutex_);
        const auto it = index_.find(order_id);
        if (it == index_.end()) return std::nullopt;
        if (now - it->second->read_at >= max_age_) {
            lru_.erase(it->second);
            index_.erase(it);
            return std::nullopt;
        }
        lru_.splice(lru_.begin(), lru_, it->second);
        return it->second->store;
    }

    // Remembers the route read at `now`; the least recently used entry goes beyond capacity.
    void put(std::string_view order_id, std::string_view store, clock::time_point now) {
        if (capacity_ == 0) return;
        std::lock_guard lock(mutex_);
        if (const auto it = index_.find(order_id); it != index_.end()) {
            it->second->store = store;
            it->second->read_at = now;
            lru_.splice(lru_.begin(), lru_, it->second);
            return;
        }
        if (lru_.size() >= capacity_) {
            index_.erase(std::string_view(lru_.back().order_id));
            lru_.pop_back();
        }
        lru_.push_front(entry{std::string(order_id), std::string(store), now});
        index_.emplace(std::string_view(lru_.front().order_id), lru_.begin());
    }

    [[nodiscard]] std::size_t size() const {
        std::lock_guard lock(mutex_);
        return lru_.size();
    }

private:
    struct entry {
        std::string order_id;
        std::string store;
        clock::time_point read_at;
    };
    std::size_t capacity_;
    clock::duration max_age_;
    mutable std::mutex mutex_;
    std::list<entry> lru_;  // most recently used first
    // Keys view the entries' own order_id (a list node never moves).
    std::unordered_map<std::string_view, std::list<entry>::iterator> index_;
};

}  // namespace posrelay::store
