// Terminal streams: a terminal's position (its counter and epoch), its event stream and its
// store subscription (proto-docs/redis-keys.md). The Redis store implements it; tests/support
// has an in-memory fake. Errors are error_codes, never exceptions.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace posrelay::store {

// Where a terminal's stream stands: its counter (the newest seq) and the epoch it counts in.
// `rotated`: this call started the epoch.
struct terminal_position {
    std::uint64_t seq = 0;
    std::string epoch;
    bool rotated = false;
};

// One entry of a terminal's stream: its seq, the id of the event it carries (eid), the epoch
// it was numbered in and the event frame's JSON. `complete` is false for an entry that does
// not hold an event (never written by posrelay): seq and eid are then still read.
struct stream_entry {
    std::uint64_t seq = 0;
    std::uint64_t eid = 0;
    std::string epoch;
    std::string event;
    bool complete = false;
};

class terminal_streams {
public:
    virtual ~terminal_streams() = default;

    // A terminal's hello: its position (a counter made, in a new epoch, when it has none; a
    // counter lost beside its stream starts a new epoch carrying the stream over), and its
    // store subscription renewed (`subscribe`) or ended. One atomic step.
    [[nodiscard]] virtual boost::asio::awaitable<
        std::pair<boost::system::error_code, terminal_position>>
    open_terminal(std::string store, std::string terminal, bool subscribe) = 0;
    // Starts a new epoch of the terminal's stream unless its epoch is no longer `expected`
    // (then the current position, rotated false). The events made after `after_eid` ("": all)
    // are carried into the new epoch, renumbered from 1.
    [[nodiscard]] virtual boost::asio::awaitable<
        std::pair<boost::system::error_code, terminal_position>>
    rotate_epoch(std::string store, std::string terminal, std::string expected,
                 std::string after_eid) = 0;
    // The terminal's counter as it is (seq 0 and epoch "" when it has none); nothing made.
    [[nodiscard]] virtual boost::asio::awaitable<
        std::pair<boost::system::error_code, terminal_position>>
    read_position(std::string store, std::string terminal) = 0;
    // The entries of seq `from` to `to` (inclusive), at most `count`, oldest first.
    [[nodiscard]] virtual boost::asio::awaitable<
        std::pair<boost::system::error_code, std::vector<stream_entry>>>
    read_range(std::string store, std::string terminal, std::uint64_t from, std::uint64_t to,
               std::uint64_t count) = 0;
    // Renews the terminal's store subscription (scored by now).
    [[nodiscard]] virtual boost::asio::awaitable<boost::system::error_code> renew_subscription(
        std::string store, std::string terminal) = 0;
};

}  // namespace posrelay::store
