// A terminal session's stream reads and decisions (gateway_stream.hpp).
#include "gateway_stream.hpp"

#include <algorithm>
#include <utility>

namespace posrelay::fanout::detail {

namespace {

// Reads the entries at `from` and `from + 1` (in `epoch`); false when the store did not answer
// or a new epoch began during the handshake (a retry gets the right answer).
boost::asio::awaitable<bool> probe(store::terminal_streams& streams, const std::string& store,
                                   const std::string& terminal, std::uint64_t from,
                                   const std::string& epoch, stream_probe& p) {
    auto [ec, entries] =
        co_await streams.read_range(store, terminal, std::max<std::uint64_t>(from, 1), from + 1, 2);
    if (ec) co_return false;
    for (const auto& e : entries) {
        if (e.epoch != epoch) co_return false;
        if (e.seq == from) p.eid_at_resume = e.eid;
        if (e.seq == from + 1) p.next_kept = true;
    }
    co_return true;
}

}  // namespace

boost::asio::awaitable<open_result> open_stream(store::terminal_streams& streams, std::string store,
                                                std::string terminal, bool subscribe,
                                                resume_claim claim, bool observe) {
    open_result out;
    // Not a conditional expression: GCC 12 miscompiles co_await inside ?: (a double free).
    std::pair<boost::system::error_code, store::terminal_position> opened;
    if (observe) {
        opened = co_await streams.read_position(store, terminal);
    } else {
        opened = co_await streams.open_terminal(store, terminal, subscribe);
    }
    auto& [ec, pos] = opened;
    if (ec) co_return out;
    const stream_head head{pos.seq, pos.epoch};
    auto act = decide_resume(claim, head, nullptr);
    stream_probe p;
    if (act == resume_action::probe) {
        if (!co_await probe(streams, store, terminal, *claim.resume_from, pos.epoch, p))
            co_return out;
        act = decide_resume(claim, head, &p);
    }
    if (act == resume_action::rotate && observe) act = resume_action::resync;
    if (act == resume_action::rotate) {
        const auto eid = claim.eid ? std::to_string(*claim.eid) : std::string();
        auto [rec, rotated] = co_await streams.rotate_epoch(store, terminal, pos.epoch, eid);
        if (rec) co_return out;
        if (rotated.rotated) out.rotated_from = pos.epoch;
        pos = std::move(rotated);
        act = resume_action::resync;
    }
    out.pos = std::move(pos);
    switch (act) {
        case resume_action::fresh:
            out.verdict = open_verdict::start;
            out.after = out.pos.seq;
            break;
        case resume_action::resume:
            out.verdict = open_verdict::start;
            out.after = *claim.resume_from;
            break;
        case resume_action::probe:
        case resume_action::gap:
            out.verdict = open_verdict::gap;
            break;
        case resume_action::rotate:
        case resume_action::resync:
            out.verdict = open_verdict::resync;
            break;
    }
    co_return out;
}

boost::asio::awaitable<recheck_result> recheck_stream(store::terminal_streams& streams,
                                                      std::string store, std::string terminal,
                                                      std::string epoch, std::uint64_t sent,
                                                      sent_ring ring, bool reused) {
    recheck_result out;
    auto [ec, counter] = co_await streams.read_position(store, terminal);
    if (ec) co_return out;
    const stream_head head{counter.seq, counter.epoch};
    std::optional<std::uint64_t> eid_at_sent;
    if (sent > 0 && head.epoch == epoch && head.last_seq >= sent) {
        auto [xec, x] = co_await streams.read_range(store, terminal, sent, sent, 1);
        if (xec) co_return out;
        if (!x.empty()) eid_at_sent = x[0].eid;
    }
    auto act = check_stream(head, epoch, sent, eid_at_sent, ring);
    if (reused && act == verify_action::ok) act = verify_action::rotate;
    out.pos = {counter.seq, counter.epoch, false};
    if (act == verify_action::ok) {
        out.verdict = recheck_verdict::ok;
        co_return out;
    }
    if (act == verify_action::rotate) {
        auto [rec, rotated] =
            co_await streams.rotate_epoch(store, terminal, epoch, std::to_string(ring.last_eid()));
        if (rec) co_return out;
        if (rotated.rotated) out.rotated_from = epoch;
        out.pos = std::move(rotated);
    }
    out.verdict = recheck_verdict::resync;
    co_return out;
}

}  // namespace posrelay::fanout::detail
