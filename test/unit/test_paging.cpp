/*
 * The page-table walker (src/paging.cpp) over fake physical memory: large
 * pages where alignment allows, lookups, unmapping, write protection and
 * out-of-memory behaviour.
 */
#include <cstdlib>
#include <cstring>
#include <gtest/gtest.h>
#include <random>
#include <set>
#include <vector>

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
        Paging::retire_table = [](void *p, Quota *) { retired.push_back(p); };
        retired.clear();
    }
    void TearDown() override { free(pool); }

    static std::vector<void *> retired;
};

std::vector<void *> Paging_test::retired;

/* Table pages reachable from the PML4's user half (the PML4 not counted). */
unsigned tables_below(const u64 *t, unsigned level)
{
    unsigned n = 0;
    for (unsigned i = 0; i < (level == 3 ? 256u : 512u); i++) {
        u64 e = t[i];
        if (!(e & Pte::P) || (e & Pte::PS) || level == 0)
            continue;
        n += 1 + tables_below(phys_to_virt<u64>(e & Pte::ADDR), level - 1);
    }
    return n;
}

}  // namespace

// The walker's page-table pages come from here in the tests.
void *Kmem::alloc(unsigned order, bool zero, Quota *)
{
    if (order || !budget || next_page == POOL_PAGES)
        return nullptr;
    budget--;
    void *p = pool + PAGE_SIZE * next_page++;
    if (zero)
        memset(p, 0, PAGE_SIZE);
    return p;
}
void Kmem::free(void *, unsigned, Quota *) {}

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

// ---- emptied tables go (issue 9: mappings at spread addresses must not pin the pool)

TEST_F(Paging_test, UnmapFreesTheTablesItEmptiesAndKeepsTheOthers)
{
    Paging::Keep keep;
    // Two pages in one page table, one in another 2 MiB region, one in another 1 GiB region.
    ASSERT_TRUE(Paging::map(pml4, 0x400000, 0x1000, PAGE_SIZE, Pte::U, false));
    ASSERT_TRUE(Paging::map(pml4, 0x401000, 0x2000, PAGE_SIZE, Pte::U, false));
    ASSERT_TRUE(Paging::map(pml4, 0x600000, 0x3000, PAGE_SIZE, Pte::U, false));
    ASSERT_TRUE(Paging::map(pml4, 0x80000000, 0x4000, PAGE_SIZE, Pte::U, false));
    EXPECT_EQ(tables_below(pml4, 3), 6u);                          // one PDPT, two PDs, three PTs
    EXPECT_FALSE(Paging::unmap(pml4, 0x400000, PAGE_SIZE, keep));  // the PT still maps 0x401000
    EXPECT_EQ(Paging::lookup(pml4, 0x401000), 0x2000u);
    EXPECT_FALSE(Paging::unmap(pml4, 0x401000, PAGE_SIZE, keep));  // that PT is empty: kept
    EXPECT_EQ(tables_below(pml4, 3), 6u);
    EXPECT_TRUE(Paging::unmap(pml4, 0x600000, PAGE_SIZE, keep));  // its PT kept, the one before goes
    EXPECT_EQ(retired.size(), 1u);
    EXPECT_EQ(Paging::lookup(pml4, 0x80000000), 0x4000u);
    EXPECT_TRUE(Paging::unmap(pml4, 0x80000000, PAGE_SIZE, keep));  // and so on
    // One empty table kept per level, with the tables above them: no more than six.
    EXPECT_LE(tables_below(pml4, 3), 6u);
    Paging::trim(pml4, keep);
    EXPECT_EQ(tables_below(pml4, 3), 0u);
    EXPECT_EQ(retired.size(), 6u);
    for (unsigned i = 0; i < 512; i++)
        EXPECT_EQ(pml4[i], 0u);
}

TEST_F(Paging_test, MapAndUnmapAtOneAddressAllocateNoTableAfterTheFirst)
{
    Paging::Keep keep;
    ASSERT_TRUE(Paging::map(pml4, 0x7000000000, 0x1000, PAGE_SIZE, Pte::U, false));
    unsigned used = next_page;
    for (int i = 0; i < 100; i++) {
        Paging::unmap(pml4, 0x7000000000, PAGE_SIZE, keep);
        ASSERT_TRUE(Paging::map(pml4, 0x7000000000, 0x1000, PAGE_SIZE, Pte::U, false));
    }
    EXPECT_EQ(next_page, used);
    EXPECT_TRUE(retired.empty());
}

TEST_F(Paging_test, LargePagesAndRemapsAreCountedOnce)
{
    Paging::Keep keep;
    ASSERT_TRUE(Paging::map(pml4, 0x200000, 0x200000, 2ull << 20, Pte::U, true));  // a 2 MiB page
    ASSERT_TRUE(Paging::map(pml4, 0x400000, 0x5000, PAGE_SIZE, Pte::U, false));
    ASSERT_TRUE(Paging::map(pml4, 0x400000, 0x6000, PAGE_SIZE, Pte::U | Pte::W, false));  // remap
    EXPECT_FALSE(Paging::unmap(pml4, 0x200000, 2ull << 20, keep));  // the PD still has the PT
    Paging::unmap(pml4, 0x400000, PAGE_SIZE, keep);
    Paging::trim(pml4, keep);
    EXPECT_EQ(tables_below(pml4, 3), 0u);
    EXPECT_EQ(retired.size(), 3u);  // PT, PD, PDPT
}

/* Random maps and unmaps in format F: exactly the tables the mappings need, plus at most six kept. */
template <class F> void random_maps_and_unmaps(u64 *pml4, u64 leaf_flags)
{
    Paging::Keep keep;
    std::mt19937_64 rng(3);
    std::set<u64> mapped;  // 4 KiB pages
    for (int i = 0; i < 3000; i++) {
        // Pages in 4 GiB regions of few 2 MiB regions: tables come and go.
        u64 va = ((rng() % 4) << 32) | ((rng() % 4) << 21) | ((rng() % 8) << 12);
        if (rng() % 2) {
            ASSERT_TRUE(
                Paging::map<F>(pml4, va, 0x1000 * static_cast<u64>(i + 1), PAGE_SIZE, leaf_flags, false));
            mapped.insert(va);
        } else {
            Paging::unmap<F>(pml4, va, PAGE_SIZE, keep);
            mapped.erase(va);
        }
        std::set<u64> pts, pds, pdpts;
        for (u64 m : mapped) {
            pts.insert(m >> 21);
            pds.insert(m >> 30);
            pdpts.insert(m >> 39);
        }
        u64 need = pts.size() + pds.size() + pdpts.size();
        ASSERT_GE(tables_below(pml4, 3), need) << i;
        // One kept empty table per level at most, with the tables above it: six at most.
        ASSERT_LE(tables_below(pml4, 3), need + 6) << i;
        if (i % 50 == 0) {
            Paging::trim<F>(pml4, keep);
            ASSERT_EQ(tables_below(pml4, 3), need) << i;
        }
        for (u64 m : mapped)
            ASSERT_NE(Paging::lookup(pml4, m), ~u64{0});
        if (next_page > POOL_PAGES - 8) {
            return;  // pool exhausted
        }
    }
}

TEST_F(Paging_test, RandomMapsAndUnmapsLeaveExactlyTheTablesTheMappingsNeed)
{
    random_maps_and_unmaps<Paging::Host>(pml4, Pte::U);
}

TEST_F(Paging_test, ClearLeafBitsTakesOnlyTheGivenBitsAlsoFromLargePages)
{
    ASSERT_TRUE(Paging::map(pml4, 0x800000, 0x800000, 2 * PAGE_SIZE, Pte::U | Pte::W, false));
    ASSERT_TRUE(Paging::map(pml4, 0x40000000, 0x40000000, 0x200000, Pte::U | Pte::W, true));
    Paging::clear_leaf_bits(pml4, 0x800000, PAGE_SIZE, Pte::U);
    Paging::clear_leaf_bits(pml4, 0x40000000, 0x200000, Pte::U | Pte::W);
    u64 f0 = 0, f1 = 0, f2 = 0;
    Paging::lookup(pml4, 0x800000, &f0);
    Paging::lookup(pml4, 0x801000, &f1);
    EXPECT_EQ(Paging::lookup(pml4, 0x40001000, &f2), 0x40001000u) << "still mapped";
    EXPECT_EQ(f0 & (Pte::P | Pte::U | Pte::W), Pte::P | Pte::W);
    EXPECT_EQ(f1 & (Pte::P | Pte::U | Pte::W), Pte::P | Pte::U | Pte::W);
    EXPECT_EQ(f2 & (Pte::P | Pte::U | Pte::W), Pte::P);
}

// ---- the AMD-Vi format (docs/iommu.md): the same walker, IOMMU entries, the count in the table

namespace {
constexpr u64 RESERVED = 0x1ffull << 52;  // bits 60:52: reserved in an AMD-Vi PDE (no count there)
unsigned next_level(u64 e) { return (e >> 9) & 7; }
}  // namespace

TEST_F(Paging_test, AmdTablesHaveTheIommuFormatAtEveryLevel)
{
    using Paging::Amd;
    ASSERT_TRUE(Paging::map<Amd>(pml4, 0x40000, 0x7000, 2 * PAGE_SIZE, Amd::IR | Amd::IW, false));
    u64 e3 = pml4[0];
    const u64 *pdpt = phys_to_virt<u64>(e3 & Pte::ADDR);
    u64 e2 = pdpt[0];
    const u64 *pd = phys_to_virt<u64>(e2 & Pte::ADDR);
    u64 e1 = pd[0];
    const u64 *pt = phys_to_virt<u64>(e1 & Pte::ADDR);
    u64 e0 = pt[0x40];
    // Non-leaf: PR, IR, IW, Next Level = the level of the table below; nothing in 60:52 (bit 63:
    // a bit of the count of the table holding the entry).
    EXPECT_EQ(e3 & ~Pte::ADDR & ~Amd::KEEP, Pte::P | Amd::IR | Amd::IW | 3u << 9);
    EXPECT_EQ(e2 & ~Pte::ADDR & ~Amd::KEEP, Pte::P | Amd::IR | Amd::IW | 2u << 9);
    EXPECT_EQ(e1 & ~Pte::ADDR & ~Amd::KEEP, Pte::P | Amd::IR | Amd::IW | 1u << 9);
    // Leaf: Next Level 0, the rights given, the address.
    EXPECT_EQ(e0, 0x7000u | Pte::P | Amd::IR | Amd::IW);
    EXPECT_EQ(next_level(e0), 0u);
    EXPECT_EQ(Paging::lookup(pml4, 0x41234), 0x8234u);
    // The counts: the page table holds two entries, the others one each.
    EXPECT_EQ(Amd::count(e1), 2u);
    EXPECT_EQ(Amd::count(e2), 1u);
    EXPECT_EQ(Amd::count(e3), 1u);
    // Write protection takes IW, not the host's W (bit 1: ignored by AMD-Vi).
    Paging::protect<Amd>(pml4, 0x40000, PAGE_SIZE, false);
    EXPECT_EQ(pt[0x40], 0x7000u | Pte::P | Amd::IR);
    Paging::protect<Amd>(pml4, 0x40000, PAGE_SIZE, true);
    EXPECT_EQ(pt[0x40], e0);
}

TEST_F(Paging_test, AmdCountsSurviveEntryChangesAndEmptyTablesGo)
{
    using Paging::Amd;
    Paging::Keep keep;
    // 300 pages from device address 0: the PT's entries 0-9, which hold its count, are leaves too.
    ASSERT_TRUE(Paging::map<Amd>(pml4, 0, 0x100000, 300 * PAGE_SIZE, Amd::IR | Amd::IW, false));
    const u64 *pdpt = phys_to_virt<u64>(pml4[0] & Pte::ADDR);
    const u64 *pd = phys_to_virt<u64>(pdpt[0] & Pte::ADDR);
    const u64 *pt = phys_to_virt<u64>(pd[0] & Pte::ADDR);
    EXPECT_EQ(Amd::count(pd[0]), 300u);
    for (unsigned i = 0; i < 300; i++) {
        ASSERT_EQ(pt[i] & Pte::ADDR, 0x100000u + i * PAGE_SIZE) << i;
        ASSERT_EQ(pt[i] & RESERVED, 0u) << i;
        ASSERT_EQ(Paging::lookup(pml4, u64{i} << 12), 0x100000u + i * PAGE_SIZE) << i;
    }
    // Remapping and unmapping single entries keep the count of the table they are in.
    ASSERT_TRUE(Paging::map<Amd>(pml4, 0x3000, 0x900000, PAGE_SIZE, Amd::IR, false));
    EXPECT_EQ(Amd::count(pd[0]), 300u);
    Paging::unmap<Amd>(pml4, 0x5000, PAGE_SIZE, keep);
    EXPECT_EQ(Amd::count(pd[0]), 299u);
    EXPECT_EQ(Paging::lookup(pml4, 0x3000), 0x900000u);
    EXPECT_EQ(Paging::lookup(pml4, 0x5000), ~u64{0});
    EXPECT_EQ(Paging::lookup(pml4, 0x4000), 0x104000u);
    // Everything (300 pages, the unmapped ones again) goes: the tables empty, are kept, then trimmed.
    Paging::unmap<Amd>(pml4, 0, 300 * PAGE_SIZE, keep);
    EXPECT_EQ(tables_below(pml4, 3), 3u);  // kept
    Paging::trim<Amd>(pml4, keep);
    EXPECT_EQ(tables_below(pml4, 3), 0u);
    EXPECT_EQ(retired.size(), 3u);
    for (unsigned i = 0; i < 512; i++)
        EXPECT_EQ(pml4[i], 0u) << i;
}

TEST_F(Paging_test, AmdRandomMapsAndUnmapsLeaveExactlyTheTablesTheMappingsNeed)
{
    random_maps_and_unmaps<Paging::Amd>(pml4, Paging::Amd::IR);
}
