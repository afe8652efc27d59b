// Control messages on a store's live channel, the revocation rule and what a session does with
// a control message (fanout/control.hpp): table tests.
#include <gtest/gtest.h>

#include <string>

#include "posrelay/fanout/control.hpp"

namespace posrelay::fanout {
namespace {

TEST(TerminalControl, FeedMessagesAreToldApartByTheirFirstByte) {
    struct row {
        std::string message;
        feed_message kind;
    } rows[] = {
        {R"({"store_id":"S-1","terminal_id":"T-1","seq":1})", feed_message::event},
        {"!ctl1 revoke S-1 T-1 1765000000", feed_message::control},
        // An event whose fields spell a control message is still an event, and the reverse.
        {R"({"op":"!ctl1 revoke S-1 * 5"})", feed_message::event},
        {"!{\"seq\":1}", feed_message::control},
        {"", feed_message::unknown},
        {" {\"seq\":1}", feed_message::unknown},
        {"ctl1 revoke S-1 T-1 5", feed_message::unknown},
    };
    for (const auto& r : rows)
        EXPECT_EQ(classify_feed_message(r.message), r.kind) << r.message;
}

TEST(TerminalControl, FormatAndParseRoundTrip) {
    const control_message msgs[] = {
        {control_op::revoke, "S-1", "T-1", 1765000000},
        {control_op::revoke, "S-1", "", 1765000000},
        {control_op::disconnect, "store.9_x", "POS-1", 0},
    };
    for (const auto& m : msgs) {
        const std::string s = format_control(m);
        EXPECT_EQ(classify_feed_message(s), feed_message::control) << s;
        const auto back = parse_control(s);
        ASSERT_TRUE(back) << s;
        EXPECT_EQ(back->op, m.op);
        EXPECT_EQ(back->store_id, m.store_id);
        EXPECT_EQ(back->terminal_id, m.terminal_id);
        EXPECT_EQ(back->revoked_at, m.revoked_at);
    }
    EXPECT_EQ(format_control(msgs[1]), "!ctl1 revoke S-1 * 1765000000");
    EXPECT_EQ(format_control(msgs[2]), "!ctl1 disconnect store.9_x POS-1 0");
}

TEST(TerminalControl, MalformedControlMessagesAreRefused) {
    const std::string bad[] = {
        "",
        "!ctl1",
        "!ctl1 ",
        "!ctl2 revoke S-1 T-1 5",                            // another version
        "!ctl1 frobnicate S-1 T-1 5",                        // unknown op
        "!ctl1 revoke S-1 T-1",                              // no time
        "!ctl1 revoke S-1 T-1 5 extra",                      // a word too many
        "!ctl1 revoke S-1 T-1 -5",                           // negative
        "!ctl1 revoke S-1 T-1 5x",                           // not a number
        "!ctl1 revoke S-1 T-1 99999999999999999999",         // overflow
        "!ctl1 revoke S/1 T-1 5",                            // not an id
        "!ctl1 revoke  T-1 5",                               // empty store
        "!ctl1 revoke S-1 T*1 5",                            // not an id
        "!ctl1 disconnect S-1 * 0",                          // a disconnect names one terminal
        "!ctl1 revoke S-1 T-1  5",                           // double space
        "!ctl1 revoke S-1 " + std::string(300, 'a') + " 5",  // too long
    };
    for (const auto& s : bad)
        EXPECT_FALSE(parse_control(s)) << s;
}

TEST(TerminalControl, RevocationRule) {
    struct row {
        std::int64_t issued_at, terminal_at, store_at;
        bool revoked;
    } rows[] = {
        {0, 0, 0, false},       // v1 token, nothing revoked
        {0, 100, 0, true},      // v1 token (issued_at 0): any revocation refuses it
        {0, 0, 100, true},      //   the store's too
        {99, 100, 0, true},     // issued before
        {100, 100, 0, true},    // issued in the revocation's second: refused
        {101, 100, 0, false},   // issued after
        {101, 100, 200, true},  // after the terminal's, before the store's
        {201, 100, 200, false}, {150, 0, 200, true}, {250, 0, 200, false},
    };
    for (const auto& r : rows) {
        EXPECT_EQ(is_revoked(r.issued_at, r.terminal_at, r.store_at), r.revoked)
            << r.issued_at << " " << r.terminal_at << " " << r.store_at;
    }
}

TEST(TerminalControl, WhatASessionDoesWithAControlMessage) {
    const session_identity till{"S-1", "T-1", 100, false};
    const session_identity observer{"S-1", "T-1", 100, true};
    const session_identity other_till{"S-1", "T-2", 100, false};
    const session_identity other_store{"S-2", "T-1", 100, false};
    const session_identity fresh_till{"S-1", "T-1", 300, false};
    struct row {
        control_message m;
        session_identity s;
        control_action want;
    } rows[] = {
        {{control_op::revoke, "S-1", "T-1", 200}, till, control_action::close_revoked},
        {{control_op::revoke, "S-1", "T-1", 200}, observer, control_action::close_revoked},
        {{control_op::revoke, "S-1", "T-1", 200}, other_till, control_action::ignore},
        {{control_op::revoke, "S-1", "T-1", 200}, other_store, control_action::ignore},
        // A session opened with a token issued after the revocation stays.
        {{control_op::revoke, "S-1", "T-1", 200}, fresh_till, control_action::ignore},
        {{control_op::revoke, "S-1", "T-1", 100}, till, control_action::close_revoked},
        // Store-wide: every terminal of the store, not of another store.
        {{control_op::revoke, "S-1", "", 200}, till, control_action::close_revoked},
        {{control_op::revoke, "S-1", "", 200}, other_till, control_action::close_revoked},
        {{control_op::revoke, "S-1", "", 200}, observer, control_action::close_revoked},
        {{control_op::revoke, "S-1", "", 200}, other_store, control_action::ignore},
        {{control_op::revoke, "S-1", "", 200}, fresh_till, control_action::ignore},
        // Disconnect: the till's own session, whatever its token; never an observer.
        {{control_op::disconnect, "S-1", "T-1", 0}, till, control_action::close_disconnected},
        {{control_op::disconnect, "S-1", "T-1", 0}, fresh_till, control_action::close_disconnected},
        {{control_op::disconnect, "S-1", "T-1", 0}, observer, control_action::ignore},
        {{control_op::disconnect, "S-1", "T-1", 0}, other_till, control_action::ignore},
        {{control_op::disconnect, "S-1", "T-1", 0}, other_store, control_action::ignore},
    };
    for (const auto& r : rows) {
        EXPECT_EQ(decide_control(r.m, r.s), r.want)
            << format_control(r.m) << " for " << r.s.store_id << "/" << r.s.terminal_id
            << " issued " << r.s.issued_at << (r.s.observer ? " observer" : "");
    }
}

}  // namespace
}  // namespace posrelay::fanout
