// A terminal session's side of operator control (fanout/control.hpp): the revocation check at
// hello (and again whenever the live feed (re)subscribes), and the node's memory of the
// revocations its feed received lately, which closes the gap between a hello's check and its
// session joining the hub. Unit-tested against the in-memory fake of tests/support.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "posrelay/fanout/control.hpp"
#include "posrelay/store/terminal_revocations.hpp"

namespace posrelay::fanout::detail {

enum class revocation_verdict : std::uint8_t {
    ok,           // not revoked
    revoked,      // issued at or before the terminal's or its store's revocation
    unavailable,  // the store did not answer: refused (a revocation is never skipped)
};
// Reads the revocations of (store, terminal) and applies is_revoked() to `issued_at`.
[[nodiscard]] boost::asio::awaitable<revocation_verdict> check_revocation(
    store::terminal_revocations& revocations, std::string store, std::string terminal,
    std::int64_t issued_at);

// The revoke messages this node's feed received in the last `keep` (by "store/terminal", or
// "store/*"): a session checks it right after joining the hub, so that a revocation published
// between its hello's read and its joining (when no session of it was there to receive the
// message) still closes it. Bounded: at most `max_entries`, the oldest dropped first.
// Thread-safe (the feed notes on context 0, sessions read on theirs).
class recent_revocations {
public:
    using clock = std::chrono::steady_clock;
    explicit recent_revocations(std::size_t max_entries = 4096,
                                clock::duration keep = std::chrono::seconds(60))
        : max_(max_entries), keep_(keep) {}

    void note(const control_message& m, clock::time_point now = clock::now());
    // The latest revocation noted for the terminal or its store (0: none).
    [[nodiscard]] std::int64_t latest(std::string_view store, std::string_view terminal,
                                      clock::time_point now = clock::now()) const;
    [[nodiscard]] std::size_t size() const;

private:
    struct entry {
        std::int64_t at = 0;
        clock::time_point seen;
    };
    std::size_t max_;
    clock::duration keep_;
    mutable std::mutex mutex_;
    std::map<std::string, entry, std::less<>> entries_;
};

}  // namespace posrelay::fanout::detail
