/*
 * The console's token bucket for lines user mode provokes (include/ratelimit.hpp).
 */
#include <gtest/gtest.h>

#include "ratelimit.hpp"

TEST(Line_limit, ABurstGoesThroughThenOneLinePerInterval)
{
    Line_limit l(3);
    EXPECT_TRUE(l.admit(1000, 100));
    EXPECT_TRUE(l.admit(1000, 100));
    EXPECT_TRUE(l.admit(1001, 100));
    EXPECT_FALSE(l.admit(1002, 100));  // the burst is used up
    EXPECT_FALSE(l.admit(1099, 100));
    EXPECT_TRUE(l.admit(1100, 100));  // one interval later: one line
    EXPECT_FALSE(l.admit(1150, 100));
    EXPECT_TRUE(l.admit(1200, 100));
}

TEST(Line_limit, ALongPauseRefillsAtMostTheBurst)
{
    Line_limit l(2);
    EXPECT_TRUE(l.admit(0, 10));
    EXPECT_TRUE(l.admit(0, 10));
    EXPECT_FALSE(l.admit(5, 10));
    unsigned through = 0;
    for (int i = 0; i < 10; i++)
        through += l.admit(1000000, 10);
    EXPECT_EQ(through, 2u);
}

TEST(Line_limit, AFloodIsHeldToTheRate)
{
    Line_limit l(20);
    unsigned through = 0;
    // One million attempts spread over 10 s of a 1 GHz clock, 10 lines a second allowed.
    for (u64 t = 0; t < 10'000'000'000; t += 10'000)
        through += l.admit(t, 100'000'000);
    EXPECT_GE(through, 20u + 99u);
    EXPECT_LE(through, 20u + 100u);
}

TEST(Line_limit, AClockThatGoesBackDoesNotRefill)
{
    Line_limit l(1);
    EXPECT_TRUE(l.admit(500, 10));
    EXPECT_FALSE(l.admit(100, 10));
    EXPECT_FALSE(l.admit(505, 10));
    EXPECT_TRUE(l.admit(510, 10));
}
