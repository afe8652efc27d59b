// Sequence epochs: the handshake's resume decision, the live-event check against the ring of
// sent events, and the re-check of a connected terminal's stream (fanout/epoch.hpp).
#include <gtest/gtest.h>

#include "posrelay/fanout/epoch.hpp"

namespace posrelay::fanout {
namespace {

constexpr std::string_view e1 = "18c3f0a1b2c3d";
constexpr std::string_view e2 = "18c3f0a1b9999";

struct resume_case {
    const char* name;
    resume_claim claim;
    stream_head head;
    std::optional<stream_probe> probe;
    resume_action want;
};

TEST(Epoch, DecideResumeTable) {
    using ra = resume_action;
    using std::nullopt;
    const resume_case cases[] = {
        {"fresh, no epoch", {nullopt, nullopt, nullopt}, {5, e1}, nullopt, ra::fresh},
        {"fresh, old epoch named", {nullopt, e2, nullopt}, {5, e1}, nullopt, ra::fresh},
        {"resume at the head, v1", {5, nullopt, nullopt}, {5, e1}, nullopt, ra::resume},
        {"behind: probe first", {3, e1, nullopt}, {5, e1}, nullopt, ra::probe},
        {"behind, next kept", {3, e1, nullopt}, {5, e1}, stream_probe{nullopt, true}, ra::resume},
        {"behind, next gone", {3, e1, nullopt}, {5, e1}, stream_probe{nullopt, false}, ra::gap},
        {"v1 past the head: resume_gap path", {7, nullopt, nullopt}, {5, e1}, nullopt, ra::resync},
        {"past the head in this epoch", {7, e1, 99}, {5, e1}, nullopt, ra::rotate},
        {"past the head, no epoch yet", {7, "", nullopt}, {0, e1}, nullopt, ra::resync},
        {"another epoch", {3, e2, 99}, {5, e1}, nullopt, ra::resync},
        {"another epoch at 0", {0, e2, nullopt}, {0, e1}, nullopt, ra::resync},
        {"eid at the head: probe", {5, e1, 99}, {5, e1}, nullopt, ra::probe},
        {"eid matches", {5, e1, 99}, {5, e1}, stream_probe{99, false}, ra::resume},
        {"eid differs: seq reused", {5, e1, 99}, {5, e1}, stream_probe{98, false}, ra::rotate},
        {"eid differs behind the head", {4, e1, 99}, {9, e1}, stream_probe{98, true}, ra::rotate},
        {"eid differs, no epoch claimed", {4, "", 99}, {9, e1}, stream_probe{98, true}, ra::resync},
        {"entry at resume trimmed", {4, e1, 99}, {9, e1}, stream_probe{nullopt, true}, ra::resume},
        {"from 0, nothing kept", {0, e1, nullopt}, {3, e1}, stream_probe{nullopt, false}, ra::gap},
        {"from 0, all kept", {0, e1, nullopt}, {3, e1}, stream_probe{nullopt, true}, ra::resume},
        {"from 0, empty stream", {0, e1, nullopt}, {0, e1}, nullopt, ra::resume},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(decide_resume(c.claim, c.head, c.probe ? &*c.probe : nullptr), c.want) << c.name;
    }
}

TEST(Epoch, SentRingKeepsTheLastEight) {
    sent_ring r;
    EXPECT_EQ(r.last_eid(), 0u);
    EXPECT_FALSE(r.eid_of(1).has_value());
    for (std::uint64_t s = 1; s <= 10; ++s)
        r.push(s, 1000 + s);
    EXPECT_EQ(r.last_eid(), 1010u);
    EXPECT_EQ(r.eid_of(10), 1010u);
    EXPECT_EQ(r.eid_of(3), 1003u);
    EXPECT_FALSE(r.eid_of(2).has_value());  // pushed out
    EXPECT_FALSE(r.eid_of(0).has_value());
    EXPECT_LE(sizeof(sent_ring), 136u);
}

TEST(Epoch, CheckLiveTable) {
    sent_ring r;
    r.push(4, 104);
    r.push(5, 105);
    using la = live_action;
    EXPECT_EQ(check_live(6, e1, 106, e1, 5, r), la::accept);
    EXPECT_EQ(check_live(5, e1, 105, e1, 5, r), la::duplicate);  // a late copy
    EXPECT_EQ(check_live(5, e1, 205, e1, 5, r), la::reused);     // another event, same seq
    EXPECT_EQ(check_live(1, e1, 101, e1, 5, r), la::verify);     // too old for the ring
    EXPECT_EQ(check_live(1, e2, 101, e1, 5, r), la::verify);     // another epoch
    EXPECT_EQ(check_live(9, e2, 109, e1, 5, r), la::verify);
}

TEST(Epoch, CheckStreamTable) {
    sent_ring r;
    r.push(5, 105);
    using va = verify_action;
    EXPECT_EQ(check_stream({5, e1}, e1, 5, 105, r), va::ok);
    EXPECT_EQ(check_stream({9, e1}, e1, 5, 105, r), va::ok);  // newer events: fetch them
    EXPECT_EQ(check_stream({4, e1}, e1, 5, std::nullopt, r), va::rotate);  // counter behind
    EXPECT_EQ(check_stream({7, e1}, e1, 5, 205, r), va::rotate);  // seq 5 is another event now
    EXPECT_EQ(check_stream({7, e2}, e1, 5, 105, r), va::resync);  // rotated elsewhere
    EXPECT_EQ(check_stream({0, e1}, e1, 0, std::nullopt, r), va::ok);
    EXPECT_EQ(check_stream({0, ""}, e1, 5, std::nullopt, r), va::rotate);  // counter gone
}

TEST(Epoch, EidParsing) {
    EXPECT_EQ(parse_eid("1733450000123456"), 1733450000123456u);
    EXPECT_FALSE(parse_eid("").has_value());
    EXPECT_FALSE(parse_eid("12a").has_value());
    EXPECT_FALSE(parse_eid("-1").has_value());
    EXPECT_FALSE(parse_eid("123456789012345678901").has_value());
    EXPECT_EQ(eid_of_entry_id("42-1733450000123456"), 1733450000123456u);
    EXPECT_FALSE(eid_of_entry_id("42").has_value());
}

}  // namespace
}  // namespace posrelay::fanout
