// Control messages on a store's live channel and the revocation rule (fanout/control.hpp).
#include <charconv>

#include "posrelay/fanout/control.hpp"
#include "posrelay/fanout/protocol.hpp"

namespace posrelay::fanout {

namespace {

constexpr std::string_view control_magic = "!ctl1 ";

// The next space-separated word of `s` (consumed with its space).
std::string_view next_word(std::string_view& s) {
    const auto sp = s.find(' ');
    const std::string_view w = s.substr(0, sp);
    s = sp == std::string_view::npos ? std::string_view{} : s.substr(sp + 1);
    return w;
}

}  // namespace

feed_message classify_feed_message(std::string_view message) noexcept {
    if (message.empty()) return feed_message::unknown;
    if (message.front() == '{') return feed_message::event;
    if (message.front() == '!') return feed_message::control;
    return feed_message::unknown;
}

std::string format_control(const control_message& m) {
    std::string s(control_magic);
    s += m.op == control_op::revoke ? "revoke " : "disconnect ";
    s += m.store_id;
    s += ' ';
    s += m.terminal_id.empty() ? std::string_view("*") : std::string_view(m.terminal_id);
    s += ' ';
    s += std::to_string(m.revoked_at);
    return s;
}

std::optional<control_message> parse_control(std::string_view message) {
    if (message.size() > max_control_bytes || !message.starts_with(control_magic))
        return std::nullopt;
    std::string_view rest = message.substr(control_magic.size());
    const std::string_view op = next_word(rest);
    const std::string_view store = next_word(rest);
    const std::string_view target = next_word(rest);
    const std::string_view at = next_word(rest);
    if (!rest.empty() || !valid_id(store) || (target != "*" && !valid_id(target))) {
        return std::nullopt;
    }
    control_message m;
    if (op == "revoke") {
        m.op = control_op::revoke;
    } else if (op == "disconnect" && target != "*") {
        m.op = control_op::disconnect;
    } else {
        return std::nullopt;
    }
    const auto [p, ec] = std::from_chars(at.data(), at.data() + at.size(), m.revoked_at);
    if (at.empty() || ec != std::errc{} || p != at.data() + at.size() || m.revoked_at < 0)
        return std::nullopt;
    m.store_id = store;
    if (target != "*") m.terminal_id = target;
    return m;
}

bool is_revoked(std::int64_t issued_at, std::int64_t terminal_revoked_at,
                std::int64_t store_revoked_at) noexcept {
    return (terminal_revoked_at > 0 && issued_at <= terminal_revoked_at) ||
           (store_revoked_at > 0 && issued_at <= store_revoked_at);
}

control_action decide_control(const control_message& m, const session_identity& s) noexcept {
    if (m.store_id != s.store_id) return control_action::ignore;
    if (!m.terminal_id.empty() && m.terminal_id != s.terminal_id) return control_action::ignore;
    switch (m.op) {
        case control_op::revoke:
            return is_revoked(s.issued_at, m.revoked_at, 0) ? control_action::close_revoked
                                                            : control_action::ignore;
        case control_op::disconnect:
            return s.observer ? control_action::ignore : control_action::close_disconnected;
    }
    return control_action::ignore;
}

}  // namespace posrelay::fanout
