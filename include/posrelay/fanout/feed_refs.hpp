// Which stores a node's live feed subscribes to (proto-docs/redis-keys.md, "Live delivery"):
// a store's channel is subscribed while at least one terminal of the store is connected to
// the node, and unsubscribed when its last one leaves. Pure: counts terminals per store and
// says when to SSUBSCRIBE or SUNSUBSCRIBE; bounded (a store beyond `max_stores` is refused).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace posrelay::fanout {

class feed_refs {
public:
    enum class change : std::uint8_t {
        none,         // the store's subscription stays as it is
        subscribe,    // its first terminal: SSUBSCRIBE its channel
        unsubscribe,  // its last terminal left: SUNSUBSCRIBE
        over_limit,   // a new store beyond max_stores: not counted, not subscribed
    };

    explicit feed_refs(std::size_t max_stores) : max_stores_(max_stores) {}

    // A terminal of `store` connected to this node.
    change acquire(std::string_view store) {
        if (const auto it = refs_.find(store); it != refs_.end()) {
            ++it->second;
            return change::none;
        }
        if (refs_.size() >= max_stores_) return change::over_limit;
        refs_.emplace(std::string(store), 1);
        return change::subscribe;
    }

    // A terminal of `store` left (one acquired before; a store not counted is ignored).
    change release(std::string_view store) {
        const auto it = refs_.find(store);
        if (it == refs_.end()) return change::none;
        if (--it->second > 0) return change::none;
        refs_.erase(it);
        return change::unsubscribe;
    }

    [[nodiscard]] std::size_t stores() const noexcept { return refs_.size(); }
    [[nodiscard]] std::size_t terminals(std::string_view store) const {
        const auto it = refs_.find(store);
        return it == refs_.end() ? 0 : it->second;
    }

private:
    struct hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    std::size_t max_stores_;
    std::unordered_map<std::string, std::size_t, hash, std::equal_to<>> refs_;
};

}  // namespace posrelay::fanout
