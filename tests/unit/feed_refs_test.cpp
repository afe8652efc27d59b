// The live feed's subscribe/unsubscribe decisions (include/posrelay/fanout/feed_refs.hpp):
// a store is subscribed with its first terminal on the node and unsubscribed with its last.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "posrelay/fanout/feed_refs.hpp"

namespace posrelay::fanout {
namespace {

using change = feed_refs::change;

struct step {
    bool join;  // acquire (a terminal connects) or release (it leaves)
    const char* store;
    change expected;
};

void run(std::size_t max_stores, const std::vector<step>& steps) {
    feed_refs refs(max_stores);
    for (std::size_t i = 0; i < steps.size(); ++i) {
        const auto& s = steps[i];
        const auto got = s.join ? refs.acquire(s.store) : refs.release(s.store);
        EXPECT_EQ(got, s.expected)
            << "step " << i << (s.join ? " acquire " : " release ") << s.store;
    }
}

TEST(FeedRefs, FirstTerminalSubscribesLastUnsubscribes) {
    run(10, {{true, "A", change::subscribe},
             {true, "A", change::none},
             {true, "B", change::subscribe},
             {false, "A", change::none},
             {false, "A", change::unsubscribe},
             {true, "A", change::subscribe},  // back again: subscribed again
             {false, "B", change::unsubscribe},
             {false, "A", change::unsubscribe}});
}

TEST(FeedRefs, ReleaseOfAStoreNotCountedChangesNothing) {
    run(10, {{false, "A", change::none},
             {true, "A", change::subscribe},
             {false, "A", change::unsubscribe},
             {false, "A", change::none}});
}

TEST(FeedRefs, BoundedNumberOfStores) {
    run(2, {{true, "A", change::subscribe},
            {true, "B", change::subscribe},
            {true, "C", change::over_limit},
            {true, "A", change::none},  // a store already counted is not refused
            {false, "C", change::none},
            {false, "B", change::unsubscribe},
            {true, "C", change::subscribe}});
}

TEST(FeedRefs, CountsTerminalsPerStore) {
    feed_refs refs(4);
    (void)refs.acquire("A");
    (void)refs.acquire("A");
    (void)refs.acquire("B");
    EXPECT_EQ(refs.stores(), 2u);
    EXPECT_EQ(refs.terminals("A"), 2u);
    EXPECT_EQ(refs.terminals("Z"), 0u);
}

}  // namespace
}  // namespace posrelay::fanout
