/*
 * Capability space index (include/mdb_space.hpp): lookup, range stepping, overlap
 * refusal, clipping of ranges to the space, and the AVL shape under random
 * inserts and removals checked against std::map.
 */
#include <algorithm>
#include <cstdlib>
#include <gtest/gtest.h>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "mdb_space.hpp"

namespace {

struct Nodes
{
    std::vector<std::unique_ptr<Mdb_node>> all;

    Mdb_node *make(Mdb_space &s, u64 base, unsigned order)
    {
        all.push_back(std::make_unique<Mdb_node>());
        Mdb_node *n = all.back().get();
        n->space = &s;
        n->base = base;
        n->order = static_cast<u8>(order);
        n->rights = 1;
        return n;
    }
};

/* Checks order, balance and heights; returns the height. */
int check_avl(const Mdb_node *n, u64 lo, u64 hi, size_t &count)
{
    if (!n)
        return 0;
    EXPECT_GE(n->base, lo);
    EXPECT_LE(n->end(), hi);
    count++;
    int l = check_avl(n->link[0], lo, n->base, count);
    int r = check_avl(n->link[1], n->end(), hi, count);
    EXPECT_LE(std::abs(l - r), 1);
    int h = 1 + std::max(l, r);
    EXPECT_EQ(n->height, h);
    return h;
}

/* The tree root is private: find it as the node no other node links to. */
const Mdb_node *root_of(const Mdb_space &s, const std::vector<Mdb_node *> &in)
{
    std::map<const Mdb_node *, bool> linked;
    for (auto *n : in)
        for (auto *c : n->link)
            if (c)
                linked[c] = true;
    for (auto *n : in)
        if (!linked.count(n))
            return n;
    EXPECT_TRUE(s.empty());
    return nullptr;
}

}  // namespace

TEST(Mdb_space, AnEmptySpaceFindsNothing)
{
    Mdb_space s(Crd::OBJ);
    EXPECT_TRUE(s.empty());
    EXPECT_EQ(s.lookup(0), nullptr);
    EXPECT_EQ(s.next(0), nullptr);
    EXPECT_TRUE(s.free(0, 26));
    EXPECT_EQ(s.count(), 0u);
}

TEST(Mdb_space, SelectorWidthsFollowTheType)
{
    EXPECT_EQ(Mdb_space(Crd::OBJ).bits(), 26u);
    EXPECT_EQ(Mdb_space(Crd::MEM).bits(), 52u);
    EXPECT_EQ(Mdb_space(Crd::PIO).bits(), 16u);
    int pd;
    EXPECT_EQ(Mdb_space(Crd::MEM, &pd).owner(), &pd);
}

TEST(Mdb_space, LookupFindsTheNodeCoveringEverySelectorOfItsRange)
{
    Nodes k;
    Mdb_space s(Crd::MEM);
    ASSERT_TRUE(s.insert(k.make(s, 0x100, 4)));
    EXPECT_EQ(s.lookup(0xff), nullptr);
    for (u64 sel = 0x100; sel < 0x110; sel++)
        EXPECT_EQ(s.lookup(sel), k.all[0].get()) << sel;
    EXPECT_EQ(s.lookup(0x110), nullptr);
}

TEST(Mdb_space, ObjectLookupsWrapModulo2To26)
{
    Nodes k;
    Mdb_space s(Crd::OBJ);
    ASSERT_TRUE(s.insert(k.make(s, 0x100, 0)));
    EXPECT_EQ(s.lookup(0x100 + (u64{1} << 26)), k.all[0].get());
    EXPECT_EQ(s.lookup(0x100 + (u64{5} << 26)), k.all[0].get());

    Mdb_space m(Crd::MEM);
    ASSERT_TRUE(m.insert(k.make(m, 0x100, 0)));
    EXPECT_EQ(m.lookup(0x100 + (u64{1} << 26)), nullptr);  // memory does not wrap
}

TEST(Mdb_space, InsertRefusesEveryKindOfOverlap)
{
    Nodes k;
    Mdb_space s(Crd::MEM);
    ASSERT_TRUE(s.insert(k.make(s, 0x100, 4)));
    EXPECT_FALSE(s.insert(k.make(s, 0x100, 4)));  // same range
    EXPECT_FALSE(s.insert(k.make(s, 0x108, 0)));  // inside
    EXPECT_FALSE(s.insert(k.make(s, 0x100, 8)));  // around
    EXPECT_FALSE(s.insert(k.make(s, 0x0, 9)));    // around, lower base
    EXPECT_TRUE(s.insert(k.make(s, 0x110, 4)));   // adjacent above
    EXPECT_TRUE(s.insert(k.make(s, 0xf0, 4)));    // adjacent below
    EXPECT_EQ(s.count(), 3u);
}

TEST(Mdb_space, FreeTellsWhetherARangeIntersectsAnyNode)
{
    Nodes k;
    Mdb_space s(Crd::MEM);
    ASSERT_TRUE(s.insert(k.make(s, 0x104, 2)));
    EXPECT_FALSE(s.free(0x100, 4));
    EXPECT_FALSE(s.free(0x104, 0));
    EXPECT_FALSE(s.free(0x107, 0));
    EXPECT_TRUE(s.free(0x100, 2));
    EXPECT_TRUE(s.free(0x108, 3));
    EXPECT_FALSE(s.free(0, 52));
}

TEST(Mdb_space, NextStepsThroughARangeInOrder)
{
    Nodes k;
    Mdb_space s(Crd::OBJ);
    for (u64 b : {0x40u, 0x10u, 0x30u, 0x20u})
        ASSERT_TRUE(s.insert(k.make(s, b, 0)));
    std::vector<u64> seen;
    for (Mdb_node *n = s.next(0x11); n && n->base < 0x40; n = s.next(n->end()))
        seen.push_back(n->base);
    EXPECT_EQ(seen, (std::vector<u64>{0x20, 0x30}));
    EXPECT_EQ(s.next(0x10)->base, 0x10u);  // a node covering the selector comes first
    EXPECT_EQ(s.next(0x41), nullptr);
}

TEST(Mdb_space, ClipAlignsDownWrapsObjectsAndCutsAtTheSpaceEnd)
{
    Mdb_space obj(Crd::OBJ), mem(Crd::MEM), pio(Crd::PIO);
    u64 b = 0x20b;
    unsigned o = 2;
    EXPECT_TRUE(obj.clip(b, o));
    EXPECT_EQ(b, 0x208u);
    EXPECT_EQ(o, 2u);

    b = (u64{3} << 26) + 0x100, o = 4;
    EXPECT_TRUE(obj.clip(b, o));
    EXPECT_EQ(b, 0x100u);

    b = 0x1234, o = 31;  // the whole-space CRD
    EXPECT_TRUE(obj.clip(b, o));
    EXPECT_EQ(b, 0u);
    EXPECT_EQ(o, 26u);

    b = 0x12345, o = 31;
    EXPECT_TRUE(mem.clip(b, o));
    EXPECT_EQ(b, 0u);
    EXPECT_EQ(o, 31u);

    b = 0x10080, o = 0;  // beyond the last port
    EXPECT_FALSE(pio.clip(b, o));
    b = 0x80, o = 20;
    EXPECT_TRUE(pio.clip(b, o));
    EXPECT_EQ(b, 0u);
    EXPECT_EQ(o, 16u);
    b = u64{1} << 40, o = 20;  // an aligned block above 2^16
    EXPECT_FALSE(pio.clip(b, o));
    b = (u64{1} << 52) - 1, o = 0;
    EXPECT_TRUE(mem.clip(b, o));
    b = u64{1} << 52, o = 0;
    EXPECT_FALSE(mem.clip(b, o));
    b = 0, o = 200;  // absurd orders are capped
    EXPECT_TRUE(mem.clip(b, o));
    EXPECT_EQ(o, 52u);
}

TEST(Mdb_space, HugeMemoryRangesAtTheTopOfTheSpaceWork)
{
    Nodes k;
    Mdb_space s(Crd::MEM);
    ASSERT_TRUE(s.insert(k.make(s, u64{1} << 51, 51)));
    ASSERT_TRUE(s.insert(k.make(s, 0, 40)));
    EXPECT_EQ(s.lookup((u64{1} << 52) - 1), k.all[0].get());
    EXPECT_EQ(s.lookup((u64{1} << 40) - 1), k.all[1].get());
    EXPECT_EQ(s.lookup(u64{1} << 40), nullptr);
    EXPECT_FALSE(s.free(0, 52));
}

TEST(Mdb_space, RemoveOfANodeNotInTheSpaceChangesNothing)
{
    Nodes k;
    Mdb_space s(Crd::OBJ), t(Crd::OBJ);
    ASSERT_TRUE(s.insert(k.make(s, 1, 0)));
    Mdb_node *stranger = k.make(t, 1, 0);
    s.remove(stranger);
    EXPECT_EQ(s.count(), 1u);
    EXPECT_EQ(s.lookup(1), k.all[0].get());
}

TEST(Mdb_space, RandomInsertsAndRemovalsKeepAnOrderedBalancedTreeThatAgreesWithAMap)
{
    std::mt19937_64 rng(7);
    Nodes k;
    Mdb_space s(Crd::MEM);
    std::map<u64, Mdb_node *> ref;  // base -> node
    std::vector<Mdb_node *> in;
    for (int step = 0; step < 20000; step++) {
        if (in.empty() || rng() % 3) {
            unsigned o = rng() % 4;
            u64 b = (rng() % 4096) & ~((u64{1} << o) - 1);
            bool free = true;
            for (auto &[rb, n] : ref)
                if (b < n->end() && rb < b + (u64{1} << o))
                    free = false;
            Mdb_node *n = k.make(s, b, o);
            ASSERT_EQ(s.insert(n), free);
            if (free) {
                ref[b] = n;
                in.push_back(n);
            }
        } else {
            size_t i = rng() % in.size();
            s.remove(in[i]);
            ref.erase(in[i]->base);
            in.erase(in.begin() + static_cast<long>(i));
        }
        if (step % 500 == 0 || step > 19900) {
            size_t count = 0;
            check_avl(root_of(s, in), 0, u64{1} << 52, count);
            ASSERT_EQ(count, ref.size());
            ASSERT_EQ(s.count(), ref.size());
            for (u64 sel = 0; sel < 4096; sel++) {
                auto it = ref.upper_bound(sel);
                Mdb_node *want = nullptr;
                if (it != ref.begin() && std::prev(it)->second->contains(sel))
                    want = std::prev(it)->second;
                ASSERT_EQ(s.lookup(sel), want) << sel;
            }
        }
    }
}

TEST(Mdb_space, SequentialInsertsStayLogarithmicallyDeep)
{
    Nodes k;
    Mdb_space s(Crd::OBJ);
    std::vector<Mdb_node *> in;
    for (u64 i = 0; i < 100000; i++) {
        in.push_back(k.make(s, i, 0));
        ASSERT_TRUE(s.insert(in.back()));
    }
    size_t count = 0;
    int h = check_avl(root_of(s, in), 0, u64{1} << 26, count);
    EXPECT_EQ(count, 100000u);
    EXPECT_LE(h, 25);  // 1.44 log2(100000) = 24
    for (u64 i = 0; i < 100000; i += 2)
        s.remove(in[i]);
    EXPECT_EQ(s.count(), 50000u);
    EXPECT_EQ(s.lookup(2), nullptr);
    EXPECT_EQ(s.lookup(3), in[3]);
}
