// Redis key names (include/posrelay/store/keys.hpp): a terminal is (store, terminal) and every
// key of a store shares its hash tag. The order script's key helpers spell the same names
// (the integration tests read them by these names).
#include <gtest/gtest.h>

#include "posrelay/store/keys.hpp"

namespace posrelay::store {
namespace {

TEST(StoreKeys, EveryKeyOfAStoreSharesItsHashTag) {
    EXPECT_EQ(keys::terminal_counter("posrelay:", "S-A", "POS-1"), "posrelay:{s:S-A}:t:POS-1:seq");
    EXPECT_EQ(keys::terminal_stream("posrelay:", "S-A", "POS-1"),
              "posrelay:{s:S-A}:t:POS-1:events");
    EXPECT_EQ(keys::store_subscribers("posrelay:", "S-A"), "posrelay:{s:S-A}:subs");
    // POS-1 of another store is another terminal: other keys.
    EXPECT_NE(keys::terminal_stream("posrelay:", "S-B", "POS-1"),
              keys::terminal_stream("posrelay:", "S-A", "POS-1"));
    EXPECT_EQ(keys::order("p:", "INV-1"), "p:{o:INV-1}");
    EXPECT_EQ(keys::events_channel("p:"), "p:events");
}

}  // namespace
}  // namespace posrelay::store
