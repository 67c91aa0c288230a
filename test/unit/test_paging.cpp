/*
 * The page-table walker (src/paging.cpp) over fake physical memory: large
 * pages where alignment allows, lookups, unmapping, write protection and
 * out-of-memory behaviour.
 */
#include <cstdlib>
#include <cstring>
#include <gtest/gtest.h>

#include "kmem.hpp"
#include "memory.hpp"
#include "paging.hpp"

u64 host_direct_map;

namespace {

constexpr u64 PHYS_BASE = 0x100000;  // fake physical address of the pool
constexpr unsigned POOL_PAGES = 256;
u8 *pool;
unsigned next_page, budget;

struct Paging_test : testing::Test
{
    u64 *pml4 = nullptr;

    void SetUp() override
    {
        pool = static_cast<u8 *>(aligned_alloc(PAGE_SIZE, POOL_PAGES * PAGE_SIZE));
        host_direct_map = reinterpret_cast<u64>(pool) - PHYS_BASE;
        next_page = 0;
        budget = POOL_PAGES;
        pml4 = static_cast<u64 *>(Kmem::alloc_page());
        Paging::have_1g = true;
    }
    void TearDown() override { free(pool); }
};

}  // namespace

// The walker's page-table pages come from here in the tests.
void *Kmem::alloc(unsigned order, bool zero)
{
    if (order || !budget || next_page == POOL_PAGES)
        return nullptr;
    budget--;
    void *p = pool + PAGE_SIZE * next_page++;
    if (zero)
        memset(p, 0, PAGE_SIZE);
    return p;
}
void Kmem::free(void *, unsigned) {}

TEST_F(Paging_test, AFourKilobyteMappingIsFoundWithItsFlags)
{
    ASSERT_TRUE(Paging::map(pml4, 0x400000, 0x12345000, PAGE_SIZE, Pte::U | Pte::W, false));
    u64 flags = 0;
    EXPECT_EQ(Paging::lookup(pml4, 0x400123), 0x12345123u);
    EXPECT_EQ(Paging::lookup(pml4, 0x400000, &flags), 0x12345000u);
    EXPECT_TRUE(flags & Pte::U);
    EXPECT_TRUE(flags & Pte::W);
    EXPECT_EQ(Paging::lookup(pml4, 0x401000), ~u64{0});
    EXPECT_EQ(next_page, 4u);  // PML4, PDPT, PD, PT
}

TEST_F(Paging_test, AlignedRangesUseLargePages)
{
    // 1 GiB + 2 MiB, both sides aligned to 1 GiB: one 1 GiB page and one 2 MiB page.
    ASSERT_TRUE(Paging::map(pml4, 0x40000000, 0x80000000, (1ull << 30) + (2ull << 20), Pte::U, true));
    u64 flags = 0;
    EXPECT_EQ(Paging::lookup(pml4, 0x40000000 + 0x3ff12345, &flags), 0x80000000u + 0x3ff12345u);
    EXPECT_TRUE(flags & Pte::PS);
    EXPECT_EQ(Paging::lookup(pml4, 0x80000000 + 0x1fffff), 0xc0000000u + 0x1fffffu);
    EXPECT_EQ(next_page, 3u);  // PML4, PDPT, one PD for the 2 MiB page
}

TEST_F(Paging_test, MisalignedRangesFallBackToSmallPages)
{
    ASSERT_TRUE(Paging::map(pml4, 0x201000, 0x400000, 2ull << 20, Pte::U, true));
    u64 flags = 0;
    EXPECT_EQ(Paging::lookup(pml4, 0x201000, &flags), 0x400000u);
    EXPECT_FALSE(flags & Pte::PS);
    EXPECT_EQ(Paging::lookup(pml4, 0x201000 + (2ull << 20) - 1), 0x400000u + (2ull << 20) - 1);
}

TEST_F(Paging_test, RangeEmptySeesTablesAndPages)
{
    EXPECT_TRUE(Paging::range_empty(pml4, 0x200000, 2ull << 20));
    ASSERT_TRUE(Paging::map(pml4, 0x3ff000, 0x1000, PAGE_SIZE, Pte::U, false));
    EXPECT_FALSE(Paging::range_empty(pml4, 0x200000, 2ull << 20));
    EXPECT_TRUE(Paging::range_empty(pml4, 0x400000, 2ull << 20));
    EXPECT_FALSE(Paging::range_empty(pml4, 0, 1ull << 30));
}

TEST_F(Paging_test, UnmapRangeRemovesSmallAndLargePages)
{
    ASSERT_TRUE(Paging::map(pml4, 0x200000, 0x200000, 2ull << 20, Pte::U, true));
    ASSERT_TRUE(Paging::map(pml4, 0x400000, 0x900000, 4 * PAGE_SIZE, Pte::U, false));
    Paging::unmap_range(pml4, 0x200000, (2ull << 20) + 2 * PAGE_SIZE);
    EXPECT_EQ(Paging::lookup(pml4, 0x200000), ~u64{0});
    EXPECT_EQ(Paging::lookup(pml4, 0x3fffff), ~u64{0});
    EXPECT_EQ(Paging::lookup(pml4, 0x400000), ~u64{0});
    EXPECT_EQ(Paging::lookup(pml4, 0x401000), ~u64{0});
    EXPECT_EQ(Paging::lookup(pml4, 0x402000), 0x902000u);  // beyond the range: still there
}

TEST_F(Paging_test, ProtectClearsAndSetsWriteAccess)
{
    ASSERT_TRUE(Paging::map(pml4, 0x600000, 0x600000, 2 * PAGE_SIZE, Pte::U | Pte::W, false));
    Paging::protect(pml4, 0x600000, PAGE_SIZE, false);
    u64 f0 = 0, f1 = 0;
    Paging::lookup(pml4, 0x600000, &f0);
    Paging::lookup(pml4, 0x601000, &f1);
    EXPECT_FALSE(f0 & Pte::W);
    EXPECT_TRUE(f1 & Pte::W);
    Paging::protect(pml4, 0x600000, PAGE_SIZE, true);
    Paging::lookup(pml4, 0x600000, &f0);
    EXPECT_TRUE(f0 & Pte::W);
}

TEST_F(Paging_test, OutOfMemoryFailsAndKeepsWhatWasMapped)
{
    budget = 2;  // PDPT and PD fit, the page table does not
    EXPECT_FALSE(Paging::map(pml4, 0x700000, 0x700000, PAGE_SIZE, Pte::U, false));
    EXPECT_EQ(Paging::lookup(pml4, 0x700000), ~u64{0});
    budget = 10;
    EXPECT_TRUE(Paging::map(pml4, 0x700000, 0x700000, PAGE_SIZE, Pte::U, false));
    EXPECT_EQ(Paging::lookup(pml4, 0x700000), 0x700000u);
}
