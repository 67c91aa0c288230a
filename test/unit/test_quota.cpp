/*
 * Kernel-memory quotas (include/quota.hpp, docs/quota.md): charges and refunds, limits carved
 * from a parent and moved between quotas, and the end of a quota giving everything back.
 */
#include <atomic>
#include <cstdlib>
#include <gtest/gtest.h>
#include <thread>
#include <vector>

#include "quota.hpp"

namespace {

int structs_live;
int structs_budget;

void *test_alloc()
{
    if (structs_budget-- <= 0)
        return nullptr;
    structs_live++;
    return aligned_alloc(64, Quota::SIZE);
}

void test_free(void *p)
{
    structs_live--;
    free(p);
}

constexpr u64 POOL = 1 << 20;

struct Quota_test : testing::Test
{
    Quota root;

    void SetUp() override
    {
        Quota::alloc_mem = test_alloc;
        Quota::free_mem = test_free;
        structs_live = 0;
        structs_budget = 1 << 20;
        root.init_root(POOL);
    }
    void TearDown() override { EXPECT_EQ(structs_live, 0) << "quota structures left"; }
};

}  // namespace

TEST_F(Quota_test, ChargesFitTheLimitExactly)
{
    EXPECT_TRUE(Quota::charge(&root, POOL - 100));
    EXPECT_FALSE(Quota::charge(&root, 101));  // one byte too many: nothing charged
    EXPECT_EQ(root.info().used, POOL - 100);
    EXPECT_TRUE(Quota::charge(&root, 100));
    EXPECT_FALSE(Quota::charge(&root, 1));
    Quota::refund(&root, POOL);
    EXPECT_EQ(root.info().used, 0u);
    EXPECT_EQ(root.info().limit, POOL);
}

TEST_F(Quota_test, ANullQuotaIsTheKernelsAndNeverRunsOut)
{
    EXPECT_TRUE(Quota::charge(nullptr, ~u64{0}));
    Quota::refund(nullptr, ~u64{0});  // nothing happens
}

TEST_F(Quota_test, AChildsLimitIsTakenFromItsParent)
{
    Quota *c = Quota::create(&root, 4096);
    ASSERT_NE(c, nullptr);
    Quota::attach(c);
    EXPECT_EQ(root.info().limit, POOL - 4096);
    EXPECT_EQ(root.info().used, Quota::SIZE);  // its structure
    EXPECT_EQ(c->info().limit, 4096u);
    EXPECT_EQ(c->info().used, 0u);
    EXPECT_TRUE(Quota::charge(c, 4096));
    EXPECT_FALSE(Quota::charge(c, 1));  // the child is full, the parent has plenty
    EXPECT_TRUE(Quota::charge(&root, 1));
    Quota::refund(&root, 1);
    Quota::refund(c, 4096);
    Quota::detach(c);  // its last PD: the quota ends
    EXPECT_EQ(root.info().limit, POOL);
    EXPECT_EQ(root.info().used, 0u);
}

TEST_F(Quota_test, ACreateThatDoesNotFitChangesNothing)
{
    EXPECT_EQ(Quota::create(&root, POOL), nullptr);  // the structure needs room too
    EXPECT_EQ(Quota::create(&root, POOL - Quota::SIZE + 1), nullptr);
    EXPECT_EQ(root.info().limit, POOL);
    EXPECT_EQ(root.info().used, 0u);
    structs_budget = 0;  // no memory for the structure
    EXPECT_EQ(Quota::create(&root, 1), nullptr);
    EXPECT_EQ(root.info().limit, POOL);
    EXPECT_EQ(root.info().used, 0u);
    structs_budget = 1;
    Quota *c = Quota::create(&root, POOL - Quota::SIZE);  // everything: fits exactly
    ASSERT_NE(c, nullptr);
    EXPECT_FALSE(Quota::charge(&root, 1));
    Quota::attach(c);
    Quota::detach(c);
    EXPECT_EQ(root.info().limit, POOL);
}

TEST_F(Quota_test, AQuotaOutlivesItsPdsWhileSomethingIsChargedToIt)
{
    Quota *c = Quota::create(&root, 8192);
    ASSERT_NE(c, nullptr);
    Quota::attach(c);
    Quota::attach(c);  // a second PD made the classic way shares it
    ASSERT_TRUE(Quota::charge(c, 100));
    Quota::detach(c);
    Quota::detach(c);
    EXPECT_EQ(structs_live, 1);  // an object it paid for is still there
    EXPECT_EQ(root.info().limit, POOL - 8192);
    Quota::refund(c, 100);  // that object goes: so does the quota
    EXPECT_EQ(structs_live, 0);
    EXPECT_EQ(root.info().limit, POOL);
    EXPECT_EQ(root.info().used, 0u);
}

TEST_F(Quota_test, EndingAGrandchildCanEndItsParentToo)
{
    Quota *c = Quota::create(&root, 10000);
    ASSERT_NE(c, nullptr);
    Quota::attach(c);
    Quota *g = Quota::create(c, 5000);
    ASSERT_NE(g, nullptr);
    Quota::attach(g);
    EXPECT_EQ(c->info().limit, 5000u);
    EXPECT_EQ(c->info().used, Quota::SIZE);
    Quota::detach(c);  // c's PD dies; g's structure keeps c
    EXPECT_EQ(structs_live, 2);
    Quota::detach(g);  // g ends, then c (nothing charged to it any more)
    EXPECT_EQ(structs_live, 0);
    EXPECT_EQ(root.info().limit, POOL);
    EXPECT_EQ(root.info().used, 0u);
}

TEST_F(Quota_test, MovesTakeOnlyFreeBytes)
{
    Quota *a = Quota::create(&root, 1000), *b = Quota::create(&root, 1000);
    ASSERT_TRUE(a && b);
    Quota::attach(a);
    Quota::attach(b);
    ASSERT_TRUE(Quota::charge(a, 600));
    EXPECT_FALSE(Quota::move(a, b, 401));  // only 400 are free
    EXPECT_TRUE(Quota::move(a, b, 400));
    EXPECT_EQ(a->info().limit, 600u);
    EXPECT_EQ(b->info().limit, 1400u);
    EXPECT_FALSE(Quota::charge(a, 1));
    EXPECT_TRUE(Quota::charge(b, 1400));
    EXPECT_TRUE(Quota::move(a, a, 0));   // within one quota: nothing changes
    EXPECT_FALSE(Quota::move(a, a, 1));  // (and it has nothing free)
    EXPECT_FALSE(Quota::move(a, nullptr, 0));
    Quota::refund(a, 600);
    Quota::refund(b, 1400);
    Quota::detach(a);
    Quota::detach(b);
    // b returns more than it was given, a less: the sum is what root gave away.
    EXPECT_EQ(root.info().limit, POOL);
    EXPECT_EQ(root.info().used, 0u);
}

TEST_F(Quota_test, ConcurrentChargesNeverPassTheLimit)
{
    Quota *c = Quota::create(&root, 64 * 1000);
    ASSERT_NE(c, nullptr);
    Quota::attach(c);
    std::vector<std::thread> ts;
    std::atomic<u64> got{0};
    for (int t = 0; t < 4; t++)
        ts.emplace_back([&] {
            for (int i = 0; i < 1000; i++)
                if (Quota::charge(c, 64))
                    got += 64;
        });
    for (auto &t : ts)
        t.join();
    EXPECT_EQ(got.load(), 64u * 1000);
    EXPECT_EQ(c->info().used, 64u * 1000);
    ts.clear();
    for (int t = 0; t < 4; t++)
        ts.emplace_back([&] {
            for (int i = 0; i < 250; i++)
                Quota::refund(c, 64);
        });
    for (auto &t : ts)
        t.join();
    EXPECT_EQ(c->info().used, 0u);
    Quota::detach(c);
    EXPECT_EQ(root.info().limit, POOL);
}
