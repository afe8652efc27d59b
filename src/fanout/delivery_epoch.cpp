// Sequence epochs: the resume decision of a handshake, the check of live events against what
// a connection sent, and the re-check of a connected terminal's stream. Pure code.
#include <charconv>

#include "posrelay/fanout/epoch.hpp"

namespace posrelay::fanout {

resume_action decide_resume(const resume_claim& claim, const stream_head& head,
                            const stream_probe* probe) noexcept {
    if (!claim.resume_from) return resume_action::fresh;
    const std::uint64_t from = *claim.resume_from;
    // In another epoch than the stream's: its seqs mean nothing here.
    if (claim.epoch && !claim.epoch->empty() && *claim.epoch != head.epoch) {
        return resume_action::resync;
    }
    const bool this_epoch = claim.epoch && *claim.epoch == head.epoch;
    if (from > head.last_seq) {
        // It saw more than the stream holds: writes were lost after they were handed out.
        return this_epoch ? resume_action::rotate : resume_action::resync;
    }
    const bool check_eid = claim.eid && from > 0;
    if (!check_eid && from == head.last_seq) return resume_action::resume;
    if (probe == nullptr) return resume_action::probe;
    if (check_eid && probe->eid_at_resume && *probe->eid_at_resume != *claim.eid) {
        // The seq it processed now names another event.
        return this_epoch ? resume_action::rotate : resume_action::resync;
    }
    if (from < head.last_seq && !probe->next_kept) return resume_action::gap;
    return resume_action::resume;
}

void sent_ring::push(std::uint64_t seq, std::uint64_t eid) noexcept {
    entries_[next_] = entry{seq, eid};
    next_ = static_cast<std::uint8_t>((next_ + 1) % entries_.size());
}

std::optional<std::uint64_t> sent_ring::eid_of(std::uint64_t seq) const noexcept {
    if (seq == 0) return std::nullopt;
    for (const auto& e : entries_) {
        if (e.seq == seq) return e.eid;
    }
    return std::nullopt;
}

std::uint64_t sent_ring::last_eid() const noexcept {
    return entries_[(next_ + entries_.size() - 1) % entries_.size()].eid;
}

live_action check_live(std::uint64_t seq, std::string_view event_epoch, std::uint64_t eid,
                       std::string_view epoch, std::uint64_t sent, const sent_ring& ring) noexcept {
    if (event_epoch != epoch) return live_action::verify;
    if (seq > sent) return live_action::accept;
    const auto was = ring.eid_of(seq);
    if (!was) return live_action::verify;
    return *was == eid ? live_action::duplicate : live_action::reused;
}

verify_action check_stream(const stream_head& head, std::string_view epoch, std::uint64_t sent,
                           std::optional<std::uint64_t> eid_at_sent,
                           const sent_ring& ring) noexcept {
    // No counter at all (Redis came back without it): a new epoch, carrying what is left.
    if (head.epoch.empty()) return verify_action::rotate;
    if (head.epoch != epoch) return verify_action::resync;
    if (head.last_seq < sent) return verify_action::rotate;
    const auto was = ring.eid_of(sent);
    if (was && eid_at_sent && *was != *eid_at_sent) return verify_action::rotate;
    return verify_action::ok;
}

std::optional<std::uint64_t> parse_eid(std::string_view s) noexcept {
    std::uint64_t v = 0;
    if (s.empty() || s.size() > 20) return std::nullopt;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
    return v;
}

std::optional<std::uint64_t> eid_of_entry_id(std::string_view id) noexcept {
    const auto dash = id.find('-');
    if (dash == std::string_view::npos) return std::nullopt;
    return parse_eid(id.substr(dash + 1));
}

}  // namespace posrelay::fanout
