// delivery_fsm: which event a terminal connection sends next, so that replay from the
// stream and the live feed join with no gap and no duplicate. Pure; see protocol.hpp.
#include "posrelay/fanout/protocol.hpp"

#include <cassert>

namespace posrelay::fanout {

delivery_fsm::delivery_fsm(std::uint64_t start_after, std::uint64_t max_inflight)
    : sent_(start_after), acked_(start_after), max_inflight_(max_inflight) {
    assert(max_inflight >= 1);  // 0 would never send anything
}

//   seq <= sent       drop   (replayed or live copy of an event already sent)
//   seq == sent + 1   send, or wait while max_inflight events are unacked
//   seq >  sent + 1   fetch the missing [sent + 1, seq - 1] from the stream first
delivery_fsm::decision delivery_fsm::offer(std::uint64_t seq) const noexcept {
    if (seq <= sent_) return {action::drop, 0, 0};
    if (seq == sent_ + 1) return {can_send() ? action::send : action::wait, 0, 0};
    return {action::fetch, sent_ + 1, seq - 1};
}

// Only the next seq may be sent: anything else is a bug of the caller (asserted in debug
// builds, ignored in release so that the counters stay consistent).
void delivery_fsm::on_sent(std::uint64_t seq) noexcept {
    assert(seq == sent_ + 1);
    if (seq == sent_ + 1) sent_ = seq;
}

// Acks are cumulative: an old or repeated ack changes nothing; one beyond what was sent is
// a protocol violation (bad_ack) and changes nothing either.
bool delivery_fsm::on_ack(std::uint64_t seq) noexcept {
    if (seq > sent_) return false;
    if (seq > acked_) acked_ = seq;
    return true;
}

}  // namespace posrelay::fanout
