// A terminal session's reads of its stream and the decisions on them (fanout/epoch.hpp), on
// the store's terminal_streams only: where a hello starts (resume, fresh start, resume_gap,
// resync after a new epoch), and the re-check of a connected terminal's stream. The session
// (gateway_session.hpp) performs the outcome: frames, metrics, logs. Unit-tested against the
// in-memory fake of tests/support.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include "posrelay/fanout/epoch.hpp"
#include "posrelay/store/terminal_streams.hpp"

namespace posrelay::fanout::detail {

enum class open_verdict : std::uint8_t {
    start,        // deliver after `after` (resume_from, or the newest seq for a fresh start)
    unavailable,  // the store did not answer (or a new epoch began meanwhile): retry later
    gap,          // the events after resume_from are no longer kept: resume_gap
    resync,       // the terminal is in another epoch (`pos`, maybe just rotated): resync
};
struct open_result {
    open_verdict verdict = open_verdict::unavailable;
    store::terminal_position pos;
    std::uint64_t after = 0;
    // The epoch this call's rotation replaced (the stream was behind what the terminal saw).
    std::optional<std::string> rotated_from;
};
// Opens the terminal's stream (its counter, its store subscription) and decides the resume.
// `observe` (an observer session): the stream is only read — no counter made, the store
// subscription left as the till has it, no new epoch started (told resync instead).
[[nodiscard]] boost::asio::awaitable<open_result> open_stream(store::terminal_streams& streams,
                                                              std::string store,
                                                              std::string terminal, bool subscribe,
                                                              resume_claim claim,
                                                              bool observe = false);

enum class recheck_verdict : std::uint8_t {
    ok,      // the stream still holds what was sent (pos: its counter)
    retry,   // the store did not answer
    resync,  // the epoch changed, or the stream was behind and a new epoch began (pos)
};
struct recheck_result {
    recheck_verdict verdict = recheck_verdict::retry;
    store::terminal_position pos;
    std::optional<std::string> rotated_from;  // as open_result
};
// Re-reads a connected terminal's stream: `epoch` and `sent` are where the connection stands,
// `ring` its last events; `reused`: a live event already showed a seq naming another event.
[[nodiscard]] boost::asio::awaitable<recheck_result> recheck_stream(
    store::terminal_streams& streams, std::string store, std::string terminal, std::string epoch,
    std::uint64_t sent, sent_ring ring, bool reused);

}  // namespace posrelay::fanout::detail
