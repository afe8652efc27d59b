// posrelay-terminal reads an event's status_conflict (proto-docs/terminal-protocol.md §7).
#include <gtest/gtest.h>

#include "tools/terminal_frames.hpp"

namespace posrelay::tools {
namespace {

TEST(TerminalConflictFrame, EventWithStatusConflictParses) {
    server_frame f;
    std::string err;
    ASSERT_TRUE(parse_server_frame(
        R"({"op":"event","seq":9,"terminal_id":"T-9","store_id":"S-1","order_id":"A4",)"
        R"("transaction_status":"settlement","paid":true,"status_conflict":{)"
        R"("previous_status":"cancel","claimed_status":"settlement","claimed_fraud_status":"",)"
        R"("midtrans_status":"settlement","applied":true}})",
        f, err))
        << err;
    ASSERT_EQ(f.op, server_op::event);
    ASSERT_TRUE(f.event.conflict.has_value());
    EXPECT_EQ(f.event.conflict->previous_status, "cancel");
    EXPECT_EQ(f.event.conflict->claimed_status, "settlement");
    EXPECT_EQ(f.event.conflict->midtrans_status, "settlement");
    EXPECT_TRUE(f.event.conflict->applied);
    EXPECT_TRUE(f.event.paid);

    ASSERT_TRUE(
        parse_server_frame(R"({"op":"event","seq":10,"order_id":"A5","paid":false})", f, err));
    EXPECT_FALSE(f.event.conflict.has_value());  // an event without one
    EXPECT_FALSE(parse_server_frame(
        R"({"op":"event","seq":11,"status_conflict":{"applied":"yes"}})", f, err));
}

}  // namespace
}  // namespace posrelay::tools
