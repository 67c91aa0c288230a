/*
 * Run_queue (include/runqueue.hpp): priority order, round robin within a
 * priority, head insertion for preempted elements, removal from anywhere,
 * checked against a simple model with random operations.
 */
#include "runqueue.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <random>
#include <vector>

namespace {

struct Item
{
    unsigned prio;
    int id;
    Item *next = nullptr, *prev = nullptr;
    bool queued = false;
};

TEST(RunQueue, EmptyPicksNothing)
{
    Run_queue<Item> q;
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.highest(), 0u);
    EXPECT_EQ(q.pick(), nullptr);
}

TEST(RunQueue, HighestPriorityFirstAcrossBothWords)
{
    Run_queue<Item> q;
    Item a{1, 0}, b{63, 1}, c{64, 2}, d{127, 3};
    for (Item *i : {&a, &c, &b, &d})
        q.enqueue(i, false);
    EXPECT_EQ(q.highest(), 127u);
    EXPECT_EQ(q.pick(), &d);
    EXPECT_EQ(q.pick(), &c);
    EXPECT_EQ(q.pick(), &b);
    EXPECT_EQ(q.pick(), &a);
    EXPECT_TRUE(q.empty());
    EXPECT_FALSE(a.queued);
}

TEST(RunQueue, RoundRobinWithinAPriorityAndHeadForPreempted)
{
    Run_queue<Item> q;
    Item a{5, 0}, b{5, 1}, c{5, 2};
    q.enqueue(&a, false);
    q.enqueue(&b, false);
    q.enqueue(&c, false);
    Item *x = q.pick();
    EXPECT_EQ(x, &a);
    q.enqueue(x, false);  // quantum used up: to the tail
    EXPECT_EQ(q.pick(), &b);
    Item *y = q.pick();  // c runs, is preempted: back to the head
    EXPECT_EQ(y, &c);
    q.enqueue(y, true);
    EXPECT_EQ(q.pick(), &c);
    EXPECT_EQ(q.pick(), &a);
}

TEST(RunQueue, RemoveFromAnywhere)
{
    Run_queue<Item> q;
    Item a{9, 0}, b{9, 1}, c{9, 2};
    for (Item *i : {&a, &b, &c})
        q.enqueue(i, false);
    q.remove(&b);  // middle
    q.remove(&a);  // head
    EXPECT_FALSE(b.queued);
    EXPECT_EQ(q.highest(), 9u);
    EXPECT_EQ(q.pick(), &c);
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.highest(), 0u) << "the bitmap bit goes with the last element";
}

// Random operations against a model: per priority a deque, the highest non-empty one runs.
TEST(RunQueue, MatchesModel)
{
    std::mt19937 rng(1234);
    std::vector<Item> items(200);
    for (int i = 0; i < 200; i++)
        items[static_cast<size_t>(i)] = Item{static_cast<unsigned>(1 + rng() % 127), i};
    Run_queue<Item> q;
    std::vector<std::deque<Item *>> model(128);
    for (int step = 0; step < 20000; step++) {
        Item &it = items[rng() % items.size()];
        switch (rng() % 3) {
        case 0:
            if (!it.queued) {
                bool front = rng() % 2;
                q.enqueue(&it, front);
                front ? model[it.prio].push_front(&it) : model[it.prio].push_back(&it);
            }
            break;
        case 1:
            if (it.queued) {
                q.remove(&it);
                auto &d = model[it.prio];
                d.erase(std::find(d.begin(), d.end(), &it));
            }
            break;
        default: {
            Item *got = q.pick();
            Item *want = nullptr;
            for (size_t p = 128; p-- > 0 && !want;)
                if (!model[p].empty()) {
                    want = model[p].front();
                    model[p].pop_front();
                }
            ASSERT_EQ(got, want) << "step " << step;
        }
        }
        unsigned hi = 0;
        for (size_t p = 128; p-- > 0 && !hi;)
            if (!model[p].empty())
                hi = static_cast<unsigned>(p);
        ASSERT_EQ(q.highest(), hi) << "step " << step;
    }
}

}  // namespace
