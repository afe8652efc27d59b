// What a terminal client keeps between connections: the resume point in a state file
// (replaced atomically) and the capped, jittered reconnect backoff. Pure code, no sockets.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace posrelay::tools {

// The state file: one JSON object, {"v":2,"terminal_id":"T1","store_id":"S1","last_seq":42,
// "epoch":"18c3f0a1b2c3d","eid":"1733450000123456","open":["A1"],"resync":false} (version 1
// files have no epoch, eid, open or resync). A file holding just a number ("41\n") is
// accepted too, for operators who write one by hand. A file naming another terminal or store
// is refused (state_error).
struct terminal_state {
    terminal_state() = default;
    terminal_state(std::string terminal, std::string store, std::uint64_t seq)
        : terminal_id(std::move(terminal)), store_id(std::move(store)), last_seq(seq) {}

    std::string terminal_id;
    std::string store_id;
    std::uint64_t last_seq = 0;
    std::optional<std::string> epoch;  // the epoch last_seq counts in; absent in v1 files
    std::string eid;                   // the eid of the event at last_seq
    std::vector<std::string> open;     // orders seen and not final yet (at most max_open)
    bool resync = false;               // their status must be re-read (a resync under way)
};
inline constexpr std::size_t max_open_orders = 256;

class state_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The last processed seq in `path`, or nullopt when the file does not exist. Throws
// state_error when it cannot be read, is malformed, or belongs to another terminal/store.
[[nodiscard]] std::optional<std::uint64_t> read_state_file(const std::string& path,
                                                           std::string_view terminal_id,
                                                           std::string_view store_id);
// The whole state in `path`, or nullopt when the file does not exist (same checks).
[[nodiscard]] std::optional<terminal_state> read_state(const std::string& path,
                                                       std::string_view terminal_id,
                                                       std::string_view store_id);
// Writes `path` atomically: a temporary file in the same directory, fsync, rename. A reader
// sees the old or the new contents, never a mix. Throws state_error (the old file is kept).
void write_state_file(const std::string& path, const terminal_state& s);
// Removes `path`; a missing file is not an error. Throws state_error on other failures.
void remove_state_file(const std::string& path);

[[nodiscard]] std::string state_json(const terminal_state& s);
// Parses the contents of a state file; throws state_error.
[[nodiscard]] terminal_state parse_state(std::string_view text);

// Exponential backoff with jitter: attempt n (from 0) waits a uniformly random delay in
// [d/2, d] where d = min(max, min · 2^n). reset() after a connection that got its welcome.
class backoff {
public:
    backoff(std::chrono::milliseconds min, std::chrono::milliseconds max);

    // `random`: any 64-bit random value (the jitter); deterministic for a given value.
    [[nodiscard]] std::chrono::milliseconds next(std::uint64_t random) noexcept;
    void reset() noexcept { attempt_ = 0; }
    [[nodiscard]] unsigned attempts() const noexcept { return attempt_; }
    // The ceiling of attempt `n` (before jitter).
    [[nodiscard]] std::chrono::milliseconds ceiling(unsigned n) const noexcept;

private:
    std::chrono::milliseconds min_;
    std::chrono::milliseconds max_;
    unsigned attempt_ = 0;
};

// The delay after a goaway: the server's reconnect_after plus a random delay of up to the
// same amount (protocol §14), so that terminals sent away together do not come back at once.
[[nodiscard]] std::chrono::milliseconds goaway_delay(std::chrono::milliseconds reconnect_after,
                                                     std::uint64_t random) noexcept;

}  // namespace posrelay::tools
