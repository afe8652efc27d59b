// Operator control of terminal sessions (proto-docs/terminal-protocol.md §17, redis-keys.md
// "Revocations and control messages"): the control messages sent on a store's live channel
// beside its events (revoke, disconnect), the revocation rule checked at hello, and what a
// session does with a control message. Pure code, no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace posrelay::fanout {

// What a message received on a store's channel is, told by its first byte: every event is
// a JSON object ('{'), every control message starts with '!'. Neither can be taken for the
// other, and a message of neither kind (another producer, a newer version) is ignored.
enum class feed_message : std::uint8_t { event, control, unknown };
[[nodiscard]] feed_message classify_feed_message(std::string_view message) noexcept;

enum class control_op : std::uint8_t {
    revoke,      // tokens issued at or before `revoked_at` are no longer accepted
    disconnect,  // the terminal's session ends (it may reconnect)
};

// "!ctl1 OP STORE TARGET AT": OP `revoke` or `disconnect`; TARGET a terminal id, or `*` for
// every terminal of the store (revoke only); AT the revocation's Unix seconds (0 for a
// disconnect). Ids are valid_id() (no space, no '*'); at most max_control_bytes.
struct control_message {
    control_op op = control_op::revoke;
    std::string store_id;
    std::string terminal_id;  // "": every terminal of the store
    std::int64_t revoked_at = 0;
};
inline constexpr std::size_t max_control_bytes = 256;
[[nodiscard]] std::string format_control(const control_message& m);
// nullopt: not a control message of this version, or malformed (ignored, counted).
[[nodiscard]] std::optional<control_message> parse_control(std::string_view message);

// A token issued at `issued_at` (Unix seconds; 0 for v1 tokens) is revoked when its terminal's
// or its store's revocation (Unix seconds; 0: none) is at or after it. Equal counts as
// revoked: a revocation refuses every token of its own second.
[[nodiscard]] bool is_revoked(std::int64_t issued_at, std::int64_t terminal_revoked_at,
                              std::int64_t store_revoked_at) noexcept;

// Who a session is, as far as control messages go.
struct session_identity {
    std::string_view store_id;
    std::string_view terminal_id;
    std::int64_t issued_at = 0;  // its token's
    bool observer = false;
};
enum class control_action : std::uint8_t {
    ignore,              // not this session's (another terminal, or a token issued later)
    close_revoked,       // end it with the `revoked` error
    close_disconnected,  // end it with the `disconnected` error
};
// A revoke closes the sessions (observers included) of its terminal, or of every terminal of
// its store, whose token was issued at or before it; a disconnect closes its terminal's own
// session, not its observers.
[[nodiscard]] control_action decide_control(const control_message& m,
                                            const session_identity& s) noexcept;

}  // namespace posrelay::fanout
