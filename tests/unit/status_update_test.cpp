// Tests of status_update: field names and the single-buffer field storage.
#include "posrelay/ingest/status_update.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using namespace posrelay::ingest;

TEST(status_update, field_names_round_trip) {
    for (std::size_t i = 0; i < field_count; ++i) {
        const auto f = static_cast<field>(i);
        const auto name = field_name(f);
        ASSERT_FALSE(name.empty());
        EXPECT_EQ(field_from_name(name), f) << name;
    }
    EXPECT_EQ(field_name(field::order_id), "order_id");
    EXPECT_EQ(field_name(field::channel_response_message), "channel_response_message");
    EXPECT_FALSE(field_from_name("").has_value());
    EXPECT_FALSE(field_from_name("Order_id").has_value());
    EXPECT_FALSE(field_from_name("order_id ").has_value());
    EXPECT_FALSE(field_from_name("va_numbers").has_value());
}

TEST(status_update, set_get_has) {
    status_update u;
    EXPECT_FALSE(u.has(field::order_id));
    EXPECT_EQ(u.get(field::order_id), "");
    u.set(field::order_id, "ORD-1");
    u.set(field::merchant_id, "");
    u.set(field::gross_amount, "1000.00");
    EXPECT_TRUE(u.has(field::order_id));
    EXPECT_TRUE(u.has(field::merchant_id));
    EXPECT_EQ(u.get(field::merchant_id), "");
    EXPECT_EQ(u.order_id(), "ORD-1");
    EXPECT_EQ(u.get(field::gross_amount), "1000.00");
    // Setting again keeps the last value.
    u.set(field::order_id, "ORD-2");
    EXPECT_EQ(u.order_id(), "ORD-2");
    EXPECT_EQ(u.get(field::gross_amount), "1000.00");
}

TEST(status_update, copies_and_moves_own_their_strings) {
    status_update u;
    std::string value = "ORD-123";
    u.set(field::order_id, value);
    value = "changed";
    status_update copy = u;
    status_update moved = std::move(u);
    EXPECT_EQ(copy.order_id(), "ORD-123");
    EXPECT_EQ(moved.order_id(), "ORD-123");
    for (int i = 0; i < 100; ++i)
        copy.set(field::status_message, std::string(100, 'x'));
    EXPECT_EQ(copy.order_id(), "ORD-123");  // offsets survive regrowth of the buffer
}

TEST(status_update, source_names) {
    EXPECT_EQ(to_string(update_source::notification), "notification");
    EXPECT_EQ(to_string(update_source::poll), "poll");
    EXPECT_EQ(to_string(update_source::api), "api");
}

}  // namespace
