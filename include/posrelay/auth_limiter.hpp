// Failed authentications per key (terminal handshakes, QR-image requests: the key is the client
// address and the terminal id it claimed, auth_key): at most N in a window, then failures of
// the key are answered rate_limited until the window ends. Callers check the credential first:
// a good one is never refused, whoever else failed behind the same address.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace posrelay {

// Thread-safe. Memory is bounded: expired entries are pruned when the table grows past
// max_tracked, and past that many live entries a new address is not tracked (an attacker
// with that many addresses is not slowed by a per-address limit anyway).
//
// The window of an address starts at its first failure and lasts `window`; failures counted
// in it never slide out early: after N failures the address waits for the window's end.
class auth_limiter {
public:
    using clock = std::chrono::steady_clock;
    static constexpr std::size_t max_tracked = 100'000;

    explicit auth_limiter(std::size_t failures_per_window,
                          clock::duration window = std::chrono::minutes(1))
        : per_window_(failures_per_window), window_(window) {}

    // Zero when `address` (a key) may fail once more; otherwise how long until it may.
    [[nodiscard]] clock::duration blocked_for(std::string_view address,
                                              clock::time_point now = clock::now());
    [[nodiscard]] bool allowed(std::string_view address, clock::time_point now = clock::now()) {
        return blocked_for(address, now) == clock::duration::zero();
    }
    // Counts one failure of `address`.
    void failed(std::string_view address, clock::time_point now = clock::now());

    [[nodiscard]] std::size_t tracked() const;

private:
    struct entry {
        std::size_t failures = 0;
        clock::time_point window_start;
    };
    struct hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    mutable std::mutex mutex_;
    std::unordered_map<std::string, entry, hash, std::equal_to<>> table_;
    std::size_t per_window_;
    clock::duration window_;
};

// The limiter key of a client address and the terminal id it claimed ('\n' is in neither).
[[nodiscard]] std::string auth_key(std::string_view client, std::string_view terminal_id);

// The address part of "ip:port" (as logs and request contexts spell a peer).
[[nodiscard]] std::string_view address_of(std::string_view remote) noexcept;

}  // namespace posrelay
