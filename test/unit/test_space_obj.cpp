/*
 * Object space radix table (the fast selector lookup beside the mapping database).
 */
#include <cstdlib>
#include <gtest/gtest.h>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "space_obj.hpp"

namespace {

struct alignas(64) Fake_obj : Kobject
{
    Fake_obj() : Kobject(Obj_type::SM) {}
};

int pages_live;
int pages_budget = 1 << 30;

void *test_alloc(Quota *)
{
    if (pages_budget-- <= 0)
        return nullptr;
    pages_live++;
    return aligned_alloc(4096, 4096);
}

void test_free(void *p, Quota *)
{
    pages_live--;
    free(p);
}

/* Emptied tables: kept until the test frees them, like the kernel's grace period. */
std::vector<void *> retired;
void test_retire(void *p, Quota *) { retired.push_back(p); }
void free_retired()
{
    for (void *p : retired)
        test_free(p, nullptr);
    retired.clear();
}

struct Space_test : testing::Test
{
    void SetUp() override
    {
        Space_obj::alloc_page = test_alloc;
        Space_obj::free_page = test_free;
        Space_obj::retire_page = test_retire;
        retired.clear();
        pages_live = 0;
        pages_budget = 1 << 30;
    }
    void TearDown() override { free_retired(); }
};

}  // namespace

TEST_F(Space_test, AnEmptySpaceHasOnlyNullCapabilities)
{
    Space_obj s;
    EXPECT_TRUE(s.lookup(0).null());
    EXPECT_TRUE(s.lookup(12345).null());
    EXPECT_EQ(pages_live, 0);  // lookups never allocate
}

TEST_F(Space_test, InsertThenLookupReturnsObjectAndPermissions)
{
    Space_obj s;
    std::unique_ptr<Fake_obj> po(new Fake_obj);
    Fake_obj &o = *po;
    ASSERT_EQ(s.insert(0x100, &o, 0x3), Space_obj::Result::OK);
    Capability c = s.lookup(0x100);
    EXPECT_EQ(c.obj, &o);
    EXPECT_EQ(c.perm, 0x3u);
    EXPECT_TRUE(s.lookup(0x101).null());
    s.release_tables();
    EXPECT_EQ(pages_live, 0);
}

TEST_F(Space_test, ASecondInsertAtTheSameSelectorIsRefused)
{
    Space_obj s;
    std::unique_ptr<Fake_obj> pa(new Fake_obj), pb(new Fake_obj);
    Fake_obj &a = *pa, &b = *pb;
    ASSERT_EQ(s.insert(7, &a, 0x1f), Space_obj::Result::OK);
    EXPECT_EQ(s.insert(7, &b, 0x1f), Space_obj::Result::OCCUPIED);
    EXPECT_EQ(s.lookup(7).obj, &a);
    s.release_tables();
}

TEST_F(Space_test, SelectorsWrapModulo2To26)
{
    Space_obj s;
    std::unique_ptr<Fake_obj> po(new Fake_obj);
    Fake_obj &o = *po;
    ASSERT_EQ(s.insert(5, &o, 1), Space_obj::Result::OK);
    EXPECT_EQ(s.lookup(5 + Space_obj::SELECTORS).obj, &o);
    EXPECT_EQ(s.insert(5 + 2 * Space_obj::SELECTORS, &o, 1), Space_obj::Result::OCCUPIED);
    s.release_tables();
}

TEST_F(Space_test, OutOfMemoryLeavesTheSpaceUnchanged)
{
    Space_obj s;
    std::unique_ptr<Fake_obj> po(new Fake_obj);
    Fake_obj &o = *po;
    pages_budget = 1;  // the middle table fits, the leaf does not
    EXPECT_EQ(s.insert(0x200, &o, 3), Space_obj::Result::NO_MEMORY);
    EXPECT_TRUE(s.lookup(0x200).null());
    pages_budget = 10;
    EXPECT_EQ(s.insert(0x200, &o, 3), Space_obj::Result::OK);
    s.release_tables();
    EXPECT_EQ(pages_live, 0);
}

TEST_F(Space_test, RemoveOnlyRemovesTheExpectedObject)
{
    Space_obj s;
    std::unique_ptr<Fake_obj> pa(new Fake_obj), pb(new Fake_obj);
    Fake_obj &a = *pa, &b = *pb;
    ASSERT_EQ(s.insert(9, &a, 0x3), Space_obj::Result::OK);
    EXPECT_EQ(s.remove(9, &b), 0u);
    EXPECT_EQ(s.remove(9, &a), 0x3u);
    EXPECT_TRUE(s.lookup(9).null());
    s.release_tables();
}

TEST_F(Space_test, RestrictReducesRightsAndClearsAtZero)
{
    Space_obj s;
    std::unique_ptr<Fake_obj> pa(new Fake_obj);
    Fake_obj &a = *pa;
    ASSERT_EQ(s.insert(9, &a, 0x3), Space_obj::Result::OK);
    EXPECT_TRUE(s.restrict(9, &a, 0x1));
    EXPECT_EQ(s.lookup(9).perm, 0x1u);
    EXPECT_TRUE(s.restrict(9, &a, 0x2));
    EXPECT_TRUE(s.lookup(9).null());
    s.release_tables();
}

TEST_F(Space_test, NextUsedMatchesAModelOverRandomInserts)
{
    Space_obj s;
    std::unique_ptr<Fake_obj> po(new Fake_obj);
    Fake_obj &o = *po;
    std::map<uint64_t, int> model;
    std::mt19937_64 rng(42);
    for (int i = 0; i < 2000; i++) {
        uint64_t sel = rng() % (1u << 22);
        if (s.insert(sel, &o, 1) == Space_obj::Result::OK)
            model[sel] = 1;
    }
    uint64_t sel = s.next_used(0, Space_obj::SELECTORS);
    for (auto const &[k, v] : model) {
        ASSERT_EQ(sel, k);
        sel = s.next_used(sel + 1, Space_obj::SELECTORS);
    }
    EXPECT_EQ(sel, Space_obj::SELECTORS);
    s.release_tables();
    EXPECT_EQ(pages_live, 0);
}

// ---- emptied tables go (issue 9: create/revoke at spread selectors must not pin the pool)

TEST_F(Space_test, TablesGoWhenTheirLastCapabilityGoes)
{
    Space_obj s;
    std::unique_ptr<Fake_obj> po(new Fake_obj);
    Fake_obj &o = *po;
    // One capability in each of 300 leaves, spread over two middle tables.
    for (u64 i = 0; i < 300; i++)
        ASSERT_EQ(s.insert(i * 1024 + (i % 7), &o, 3), Space_obj::Result::OK);
    EXPECT_EQ(s.tables(), 302u);
    EXPECT_EQ(pages_live, 302);
    for (u64 i = 0; i < 300; i++)
        ASSERT_EQ(s.remove(i * 1024 + (i % 7), &o), 3u);
    // The last empty leaf and middle table stay for the next capability (with the leaf's middle table).
    EXPECT_EQ(s.tables(), 3u);
    EXPECT_EQ(retired.size(), 299u);
    s.trim();
    EXPECT_EQ(s.tables(), 0u);
    EXPECT_EQ(retired.size(), 302u);  // every table was handed over for its grace period
    for (u64 i = 0; i < 300; i++)
        EXPECT_TRUE(s.lookup(i * 1024 + (i % 7)).null());
    free_retired();
    EXPECT_EQ(pages_live, 0);
    // And the space works as before: new tables for new capabilities.
    ASSERT_EQ(s.insert(5, &o, 1), Space_obj::Result::OK);
    EXPECT_EQ(s.lookup(5).obj, &o);
    EXPECT_EQ(pages_live, 2);
    s.release_tables();
    EXPECT_EQ(pages_live, 0);
}

TEST_F(Space_test, ALeafStaysWhileItHoldsACapabilityAndGoesWithTheLast)
{
    Space_obj s;
    std::unique_ptr<Fake_obj> po(new Fake_obj);
    Fake_obj &o = *po;
    ASSERT_EQ(s.insert(10, &o, 3), Space_obj::Result::OK);
    ASSERT_EQ(s.insert(11, &o, 3), Space_obj::Result::OK);
    ASSERT_TRUE(s.restrict(10, &o, 0));  // no rights left: the slot empties
    EXPECT_EQ(s.tables(), 2u);
    EXPECT_TRUE(retired.empty());
    EXPECT_EQ(s.lookup(11).obj, &o);
    EXPECT_EQ(s.remove(11, &o), 3u);
    EXPECT_EQ(s.tables(), 2u);  // empty, kept for the next capability
    EXPECT_TRUE(retired.empty());
    ASSERT_EQ(s.insert(12, &o, 3), Space_obj::Result::OK);  // which needs no new table
    EXPECT_EQ(pages_live, 2);
    EXPECT_EQ(s.remove(12, &o), 3u);
    s.trim();
    EXPECT_EQ(s.tables(), 0u);
    EXPECT_EQ(retired.size(), 2u);
    free_retired();
}

TEST_F(Space_test, CreateAndDestroyAtOneSelectorAllocatesNoTableAfterTheFirst)
{
    Space_obj s;
    std::unique_ptr<Fake_obj> po(new Fake_obj);
    Fake_obj &o = *po;
    for (int i = 0; i < 100; i++) {
        ASSERT_EQ(s.insert(0x123456, &o, 1), Space_obj::Result::OK);
        ASSERT_EQ(s.remove(0x123456, &o), 1u);
    }
    EXPECT_EQ(pages_live, 2);
    EXPECT_TRUE(retired.empty());
    s.release_tables();
}

/* What a lookup that still holds a retired table sees: the link the kernel writes into word 0. */
TEST_F(Space_test, ARetiredTablesLinkReadsAsAnEmptySlotAndAnEmptyEntry)
{
    alignas(4096) static u64 page[512];
    u64 link = reinterpret_cast<u64>(page);  // page-aligned, as every link is
    Capability c{reinterpret_cast<Kobject *>(link & ~u64{0x1f}), static_cast<unsigned>(link & 0x1f)};
    EXPECT_TRUE(c.null());
    EXPECT_EQ(link & 1, 0u);  // PRESENT clear: an absent table
}

TEST_F(Space_test, TablesInUseFollowAModelOverRandomInsertsAndRemovals)
{
    Space_obj s;
    std::unique_ptr<Fake_obj> po(new Fake_obj);
    Fake_obj &o = *po;
    std::set<u64> model;
    std::mt19937_64 rng(7);
    for (int i = 0; i < 4000; i++) {
        u64 sel = (rng() % 64) << (rng() % 2 ? 9 : 18) | rng() % 4;  // few selectors, many tables
        sel %= Space_obj::SELECTORS;
        if (rng() % 2) {
            bool fresh = !model.count(sel);
            ASSERT_EQ(s.insert(sel, &o, 1), fresh ? Space_obj::Result::OK : Space_obj::Result::OCCUPIED);
            model.insert(sel);
        } else {
            ASSERT_EQ(s.remove(sel, &o), model.count(sel) ? 1u : 0u);
            model.erase(sel);
        }
        std::set<u64> leaves, mids;
        for (u64 m : model) {
            leaves.insert(m >> 9);
            mids.insert(m >> 18);
        }
        // At most an empty leaf (with its middle table) and an empty middle table more (kept),
        // none after trim().
        u64 need = leaves.size() + mids.size();
        ASSERT_GE(s.tables(), need) << i;
        ASSERT_LE(s.tables(), need + 3) << i;
        if (i % 50 == 0) {
            s.trim();
            ASSERT_EQ(s.tables(), need) << i;
        }
        ASSERT_EQ(pages_live - static_cast<int>(retired.size()), static_cast<int>(s.tables()));
        free_retired();
    }
    s.release_tables();
    EXPECT_EQ(pages_live, 0);
}
