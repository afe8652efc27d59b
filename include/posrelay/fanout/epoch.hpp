// Sequence epochs (proto-docs/terminal-protocol.md §8): the decisions that keep a seq from ever
// naming two events after Redis lost writes. Pure code: the session performs the actions.
//
// A terminal's stream counts in an epoch. Every event carries its epoch and an eid (an opaque
// decimal that differs between two events with the same seq: the commit time in µs). When the
// stream is found behind what was handed out, a new epoch starts (Redis side: the 'rotate'
// mode of the order script) and the terminal is told `resync`.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace posrelay::fanout {

// What a terminal's hello says about where it stands.
struct resume_claim {
    std::optional<std::uint64_t> resume_from;
    // nullopt: the client sent no epoch (a client of the first revision, which does not know
    // `resync`); "": it knows epochs but has none yet.
    std::optional<std::string_view> epoch;
    std::optional<std::uint64_t> eid;  // the eid of its event at resume_from
};

// The terminal's stream as Redis has it: its counter and epoch.
struct stream_head {
    std::uint64_t last_seq = 0;
    std::string_view epoch;
};

// The stream around resume_from: the entry at resume_from and the next one.
struct stream_probe {
    std::optional<std::uint64_t> eid_at_resume;  // nullopt: not kept (or resume_from is 0)
    bool next_kept = false;                      // the entry resume_from + 1 is kept
};

enum class resume_action : std::uint8_t {
    fresh,   // no resume_from: deliver what comes after last_seq
    resume,  // replay from resume_from + 1, then live
    probe,   // read the stream around resume_from (stream_probe), then decide again
    gap,     // the events after resume_from are no longer kept: resume_gap
    resync,  // the terminal is in another epoch: resync (resume_gap for clients without epochs)
    rotate,  // the stream is behind what the terminal saw in this epoch: new epoch, then resync
};

// The handshake's decision. `probe` null: not read yet (the answer may be `probe`).
[[nodiscard]] resume_action decide_resume(const resume_claim& claim, const stream_head& head,
                                          const stream_probe* probe) noexcept;

// The (seq, eid) of the last few events sent on a connection: enough to tell a live event
// with an already-sent seq that is the same event (a harmless late copy) from another event
// reusing the seq. 8 entries, 128 bytes.
class sent_ring {
public:
    void push(std::uint64_t seq, std::uint64_t eid) noexcept;
    // The eid sent with `seq`, if it is among the last ones.
    [[nodiscard]] std::optional<std::uint64_t> eid_of(std::uint64_t seq) const noexcept;
    // The eid of the newest event sent (0: none).
    [[nodiscard]] std::uint64_t last_eid() const noexcept;

private:
    struct entry {
        std::uint64_t seq = 0;
        std::uint64_t eid = 0;
    };
    std::array<entry, 8> entries_{};
    std::uint8_t next_ = 0;
};

enum class live_action : std::uint8_t {
    accept,     // newer than anything sent: deliver in seq order
    duplicate,  // the same event sent already: drop
    reused,     // another event under a seq already sent: the stream lost writes (rotate)
    verify,     // an old seq the ring no longer knows, or another epoch: check the stream
};
// A live event (seq, epoch, eid) for a connection that has sent up to `sent` in `epoch`.
[[nodiscard]] live_action check_live(std::uint64_t seq, std::string_view event_epoch,
                                     std::uint64_t eid, std::string_view epoch, std::uint64_t sent,
                                     const sent_ring& ring) noexcept;

enum class verify_action : std::uint8_t {
    ok,      // the stream still holds what was sent
    resync,  // its epoch changed (rotated elsewhere): tell the terminal
    rotate,  // it is behind what was sent, its entry at `sent` is another event, or its
             // counter is gone (head.epoch "")
};
// A connected terminal's stream re-read (after the live feed resubscribed, or a live event
// that needs a check): `head` its counter, `eid_at_sent` the eid of its entry at `sent`
// (nullopt: not kept, or sent is 0).
[[nodiscard]] verify_action check_stream(const stream_head& head, std::string_view epoch,
                                         std::uint64_t sent,
                                         std::optional<std::uint64_t> eid_at_sent,
                                         const sent_ring& ring) noexcept;

// A decimal eid ("1733450000123456"); nullopt when it is not one.
[[nodiscard]] std::optional<std::uint64_t> parse_eid(std::string_view s) noexcept;
// The eid in a stream entry id "SEQ-EID"; nullopt when it has none.
[[nodiscard]] std::optional<std::uint64_t> eid_of_entry_id(std::string_view id) noexcept;

}  // namespace posrelay::fanout
