/* Unit tests of the physical memory map sanitiser (src/memmap.cpp). */
#include <gtest/gtest.h>
#include <memory>
#include <ostream>
#include <random>
#include <vector>

#include "diag_capture.hpp"
#include "memmap.hpp"

namespace {

constexpr u64 KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;

struct Free
{
    u64 base, size;
    bool operator==(const Free &o) const { return base == o.base && size == o.size; }
};

std::ostream &operator<<(std::ostream &os, const Free &f)
{
    return os << std::hex << "[0x" << f.base << ", 0x" << f.base + f.size << ")";
}

std::unique_ptr<Memmap> fresh() { return std::make_unique<Memmap>(); }

std::vector<Free> free_list(const Memmap &m)
{
    std::vector<Free> v;
    for (u32 i = 0; i < m.free_count(); i++) {
        EXPECT_EQ(m.free_range(i).type, MEM_AVAILABLE);
        v.push_back({m.free_range(i).base, m.free_range(i).size});
    }
    return v;
}

}  // namespace

TEST(Memmap, ASingleAlignedRangeIsFreeAsAWhole)
{
    auto m = fresh();
    m->add_range(1 * MiB, 127 * MiB, MEM_AVAILABLE);
    ASSERT_TRUE(m->build());
    EXPECT_EQ(free_list(*m), (std::vector<Free>{{1 * MiB, 127 * MiB}}));
    EXPECT_EQ(m->bytes_ram(), 127 * MiB);
    EXPECT_EQ(m->bytes_free(), 127 * MiB);
    EXPECT_EQ(m->bytes_reserved(), 0u);
}

TEST(Memmap, AnAbsentMapIsAnErrorWithAClearMessage)
{
    diag_clear();
    auto m = fresh();
    EXPECT_FALSE(m->build());
    EXPECT_TRUE(diag_contains("no usable memory map"));
    EXPECT_EQ(m->free_count(), 0u);
}

TEST(Memmap, AMapWithoutAvailableRamIsAnError)
{
    diag_clear();
    auto m = fresh();
    m->add_range(0, 1 * MiB, MEM_RESERVED);
    m->add_range(1 * MiB, 1 * MiB, MEM_ACPI_NVS);
    EXPECT_FALSE(m->build());
    EXPECT_TRUE(diag_contains("no usable memory map (no available RAM)"));
}

TEST(Memmap, ZeroLengthRangesAreReportedAndSkipped)
{
    diag_clear();
    auto m = fresh();
    m->add_range(0x5000, 0, MEM_RESERVED);
    m->add_range(0x100000, 0x100000, MEM_AVAILABLE);
    ASSERT_TRUE(m->build());
    EXPECT_TRUE(diag_contains("memmap: ignoring empty range at 0x5000"));
    EXPECT_EQ(free_list(*m), (std::vector<Free>{{0x100000, 0x100000}}));
}

TEST(Memmap, WrappingRangesAreReportedAndSkipped)
{
    diag_clear();
    auto m = fresh();
    m->add_range(0xffff'ffff'ffff'0000, 0x20000, MEM_AVAILABLE);
    m->add_range(0xffff'ffff'ffff'f000, 0x1000, MEM_AVAILABLE);  // would end at exactly 2^64
    m->add_range(0x100000, 0x100000, MEM_AVAILABLE);
    ASSERT_TRUE(m->build());
    EXPECT_TRUE(diag_contains("that wraps around"));
    EXPECT_EQ(g_diag_lines.size(), 2u);
    EXPECT_EQ(free_list(*m), (std::vector<Free>{{0x100000, 0x100000}}));
}

TEST(Memmap, UnalignedAvailableRangesShrinkToWholePages)
{
    diag_clear();
    auto m = fresh();
    m->add_range(0x100010, 0x3000, MEM_AVAILABLE);  // [0x100010, 0x103010)
    ASSERT_TRUE(m->build());
    EXPECT_TRUE(diag_contains("not page-aligned"));
    EXPECT_EQ(free_list(*m), (std::vector<Free>{{0x101000, 0x2000}}));
    EXPECT_EQ(m->bytes_free(), 0x2000u);
}

TEST(Memmap, AnAvailableRangeWithoutAWholePageIsIgnored)
{
    diag_clear();
    auto m = fresh();
    m->add_range(0x1800, 0x1000, MEM_AVAILABLE);  // straddles two pages, covers neither
    m->add_range(0x10000, 0x1000, MEM_AVAILABLE);
    ASSERT_TRUE(m->build());
    EXPECT_TRUE(diag_contains("holds no whole page"));
    EXPECT_EQ(free_list(*m), (std::vector<Free>{{0x10000, 0x1000}}));
}

TEST(Memmap, AdjacentUnalignedAvailableRangesKeepTheSharedPage)
{
    auto m = fresh();
    m->add_range(0x1000, 0x1800, MEM_AVAILABLE);  // [0x1000, 0x2800)
    m->add_range(0x2800, 0x1800, MEM_AVAILABLE);  // [0x2800, 0x4000)
    ASSERT_TRUE(m->build());
    EXPECT_EQ(free_list(*m), (std::vector<Free>{{0x1000, 0x3000}}));
}

TEST(Memmap, OverlapsAreReportedAndTheReservedTypeWins)
{
    diag_clear();
    auto m = fresh();
    m->add_range(0, 16 * MiB, MEM_AVAILABLE);
    m->add_range(4 * MiB, 1 * MiB, MEM_ACPI_RECLAIM);
    ASSERT_TRUE(m->build());
    EXPECT_TRUE(diag_contains("overlap"));
    EXPECT_EQ(free_list(*m), (std::vector<Free>{{0, 4 * MiB}, {5 * MiB, 11 * MiB}}));
    EXPECT_EQ(m->bytes_reserved(), 1 * MiB);
}

TEST(Memmap, AnUnalignedReservedTypeBlocksEveryPageItTouches)
{
    auto m = fresh();
    m->add_range(0, 0x10000, MEM_AVAILABLE);
    m->add_range(0x3ff0, 0x20, MEM_RESERVED);  // touches pages 3 and 4
    ASSERT_TRUE(m->build());
    EXPECT_EQ(free_list(*m), (std::vector<Free>{{0, 0x3000}, {0x5000, 0xb000}}));
}

TEST(Memmap, ReservationsCarveHolesAndTouchWholePages)
{
    auto m = fresh();
    m->add_range(0, 0x9f000, MEM_AVAILABLE);
    m->add_range(0x100000, 0x7f00000, MEM_AVAILABLE);
    m->reserve(0, 1 * MiB);           // first MiB
    m->reserve(0x200000, 0x123456);   // kernel image
    m->reserve(0x800123, 1);          // a single byte of loader data
    m->reserve(0x7fff000, 0x100000);  // beyond the end of RAM
    ASSERT_TRUE(m->build());
    EXPECT_EQ(free_list(*m),
              (std::vector<Free>{
                  {0x100000, 0x100000}, {0x324000, 0x800000 - 0x324000}, {0x801000, 0x7fff000 - 0x801000}}));
    EXPECT_EQ(m->bytes_ram(), 0x9f000u + 0x7f00000u);
    EXPECT_EQ(m->bytes_free() + m->bytes_reserved(), m->bytes_ram());
}

TEST(Memmap, ReservingSizeZeroChangesNothing)
{
    auto m = fresh();
    m->add_range(0, 0x10000, MEM_AVAILABLE);
    m->reserve(0x4000, 0);
    ASSERT_TRUE(m->build());
    EXPECT_EQ(free_list(*m), (std::vector<Free>{{0, 0x10000}}));
}

TEST(Memmap, RangesAbove4GiBAreSupported)
{
    auto m = fresh();
    m->add_range(1 * MiB, 3 * GiB - 1 * MiB, MEM_AVAILABLE);
    m->add_range(4 * GiB, 60 * GiB, MEM_AVAILABLE);
    m->add_range(0xfd'0000'0000, 0x3'0000'0000, MEM_RESERVED);  // HyperTransport hole
    m->reserve(8 * GiB, 4096);
    ASSERT_TRUE(m->build());
    EXPECT_EQ(free_list(*m),
              (std::vector<Free>{
                  {1 * MiB, 3 * GiB - 1 * MiB}, {4 * GiB, 4 * GiB}, {8 * GiB + 4096, 56 * GiB - 4096}}));
    EXPECT_EQ(m->bytes_free(), 63 * GiB - 1 * MiB - 4096);
}

TEST(Memmap, OutputIsSortedAndMergedWhateverTheInputOrder)
{
    auto m = fresh();
    m->add_range(0x30000, 0x10000, MEM_AVAILABLE);
    m->add_range(0x10000, 0x10000, MEM_AVAILABLE);
    m->add_range(0x20000, 0x10000, MEM_AVAILABLE);
    m->add_range(0x80000, 0x10000, MEM_AVAILABLE);
    ASSERT_TRUE(m->build());
    EXPECT_EQ(free_list(*m), (std::vector<Free>{{0x10000, 0x30000}, {0x80000, 0x10000}}));
}

TEST(Memmap, DuplicateAvailableEntriesAreReportedButCountedOnce)
{
    diag_clear();
    auto m = fresh();
    m->add_range(0x10000, 0x10000, MEM_AVAILABLE);
    m->add_range(0x10000, 0x10000, MEM_AVAILABLE);
    ASSERT_TRUE(m->build());
    EXPECT_TRUE(diag_contains("overlap"));
    EXPECT_EQ(m->bytes_ram(), 0x10000u);
}

TEST(Memmap, ABuildWhereEverythingIsReservedFails)
{
    diag_clear();
    auto m = fresh();
    m->add_range(0, 2 * MiB, MEM_AVAILABLE);
    m->reserve(0, 2 * MiB);
    EXPECT_FALSE(m->build());
    EXPECT_TRUE(diag_contains("all RAM is reserved"));
}

TEST(Memmap, AWrappingReservationReservesUpToTheTop)
{
    diag_clear();
    auto m = fresh();
    m->add_range(0, 16 * MiB, MEM_AVAILABLE);
    m->reserve(8 * MiB, ~u64{0});
    ASSERT_TRUE(m->build());
    EXPECT_TRUE(diag_contains("wraps around, reserving to the top"));
    EXPECT_EQ(free_list(*m), (std::vector<Free>{{0, 8 * MiB}}));
}

TEST(Memmap, RangesAtTheTopOfTheAddressSpaceDoNotWrapWhenRounded)
{
    auto m = fresh();
    m->add_range(0xffff'ffff'ffff'e001, 0x1ffe, MEM_AVAILABLE);  // up to 2^64 - 1, no whole page
    m->add_range(0xffff'ffff'ffff'f800, 0x100, MEM_RESERVED);
    m->add_range(0x100000, 0x1000, MEM_AVAILABLE);
    m->reserve(0xffff'ffff'ffff'ff00, 0x10);
    ASSERT_TRUE(m->build());
    EXPECT_EQ(free_list(*m), (std::vector<Free>{{0x100000, 0x1000}}));
}

TEST(Memmap, DroppingAnAvailableRangeForLackOfSpaceIsOnlyReported)
{
    diag_clear();
    auto m = fresh();
    for (u32 i = 0; i < Memmap::MAX_RANGES + 3; i++)
        m->add_range(u64{i} * 0x2000, 0x1000, MEM_AVAILABLE);
    EXPECT_TRUE(diag_contains("too many ranges"));
    ASSERT_TRUE(m->build());
    EXPECT_EQ(m->free_count(), Memmap::MAX_RANGES);
}

TEST(Memmap, DroppingAReservedRangeForLackOfSpaceFailsTheBuild)
{
    diag_clear();
    auto m = fresh();
    for (u32 i = 0; i < Memmap::MAX_RANGES; i++)
        m->add_range(u64{i} * 0x2000, 0x1000, MEM_AVAILABLE);
    m->add_range(0, 0x1000, MEM_RESERVED);
    EXPECT_FALSE(m->build());
    EXPECT_TRUE(diag_contains("could not be recorded"));
}

TEST(Memmap, OverlappingReservationsAreFoldedTogether)
{
    auto m = fresh();
    m->add_range(0, 64 * MiB, MEM_AVAILABLE);
    // Far more reservations than slots, but all touching: they fold into one.
    for (u32 i = 0; i < 4 * Memmap::MAX_RESERVED; i++)
        m->reserve(1 * MiB + u64{i} * 0x1000, 0x1800);
    ASSERT_TRUE(m->build());
    EXPECT_EQ(free_list(*m), (std::vector<Free>{{0, 1 * MiB},
                                                {1 * MiB + 4 * Memmap::MAX_RESERVED * 0x1000ul + 0x1000,
                                                 63 * MiB - 4 * Memmap::MAX_RESERVED * 0x1000ul - 0x1000}}));
}

TEST(Memmap, TooManySeparateReservationsFailTheBuild)
{
    diag_clear();
    auto m = fresh();
    m->add_range(0, 64 * MiB, MEM_AVAILABLE);
    for (u32 i = 0; i <= Memmap::MAX_RESERVED; i++)
        m->reserve(u64{i} * 0x10000, 0x1000);
    EXPECT_TRUE(diag_contains("too many reserved ranges"));
    EXPECT_FALSE(m->build());
}

TEST(Memmap, BuildingTwiceGivesTheSameResult)
{
    auto m = fresh();
    m->add_range(0x400000, 0x400000, MEM_AVAILABLE);
    m->add_range(0x100000, 0x200000, MEM_AVAILABLE);
    m->add_range(0x500000, 0x1000, MEM_RESERVED);
    m->reserve(0x150000, 0x2000);
    ASSERT_TRUE(m->build());
    auto first = free_list(*m);
    u64 ram = m->bytes_ram();
    ASSERT_TRUE(m->build());
    EXPECT_EQ(free_list(*m), first);
    EXPECT_EQ(m->bytes_ram(), ram);
}

// Random maps in a small address space, checked page by page against a model:
// a page is free iff every byte is available and no byte is reserved.
TEST(Memmap, RandomMapsMatchAPageByPageModel)
{
    std::mt19937_64 rng(12345);
    constexpr u64 PAGES = 64, SPACE = PAGES * PAGE_SIZE;

    for (int round = 0; round < 500; round++) {
        auto m = fresh();
        std::vector<int> avail(SPACE / 256, 0), blocked(SPACE / 256, 0);  // 256-byte granules
        auto mark = [](std::vector<int> &v, u64 b, u64 s) {
            for (u64 a = b; a < b + s; a += 256)
                v[a / 256] = 1;
        };
        int n = 1 + static_cast<int>(rng() % 12);
        for (int i = 0; i < n; i++) {
            u64 b = (rng() % (SPACE / 256)) * 256, s = (1 + rng() % 40) * 256;
            if (b + s > SPACE)
                s = SPACE - b;
            u32 type = rng() % 3 ? u32{MEM_AVAILABLE} : static_cast<u32>(2 + rng() % 4);
            m->add_range(b, s, type);
            mark(type == MEM_AVAILABLE ? avail : blocked, b, s);
        }
        for (int i = rng() % 4; i > 0; i--) {
            u64 b = (rng() % (SPACE / 256)) * 256, s = (1 + rng() % 20) * 256;
            if (b + s > SPACE)
                s = SPACE - b;
            m->reserve(b, s);
            mark(blocked, b, s);
        }

        std::vector<int> expect(PAGES, 0);
        bool any = false;
        for (u64 p = 0; p < PAGES; p++) {
            bool all_avail = true, any_blocked = false;
            for (u64 g = p * 16; g < p * 16 + 16; g++) {
                all_avail &= avail[g] == 1;
                any_blocked |= blocked[g] == 1;
            }
            expect[p] = all_avail && !any_blocked;
            any |= expect[p];
        }

        bool ok = m->build();
        std::vector<int> got(PAGES, 0);
        u64 prev_end = 0;
        for (u32 i = 0; i < m->free_count(); i++) {
            const Mem_range &r = m->free_range(i);
            ASSERT_EQ(r.base % PAGE_SIZE, 0u);
            ASSERT_EQ(r.size % PAGE_SIZE, 0u);
            ASSERT_GT(r.size, 0u);
            ASSERT_TRUE(i == 0 || r.base > prev_end) << "sorted, disjoint, maximal";
            prev_end = r.base + r.size;
            for (u64 a = r.base; a < r.base + r.size; a += PAGE_SIZE)
                got[a / PAGE_SIZE] = 1;
        }
        ASSERT_EQ(ok, any) << "round " << round;
        ASSERT_EQ(got, expect) << "round " << round;
    }
}

// is_ram: the loader's available RAM, whatever the kernel reserved in it; reserved types are not RAM.
TEST(Memmap, IsRamAsksTheLoadersAvailableRangesNotTheFreeList)
{
    auto m = fresh();
    m->add_range(0, 0x9fc00, MEM_AVAILABLE);
    m->add_range(1 * MiB, 31 * MiB, MEM_AVAILABLE);
    m->add_range(0x1ff0000, 0x10000, MEM_RESERVED);  // the top 64 KiB: firmware
    m->reserve(2 * MiB, 512 * KiB);                  // the image: reserved, still RAM
    ASSERT_TRUE(m->build());
    EXPECT_TRUE(m->is_ram(2 * MiB, 512 * KiB));
    EXPECT_TRUE(m->is_ram(0x1000, 0x1000));
    EXPECT_TRUE(m->is_ram(0x1fef000, 0x1000));
    EXPECT_FALSE(m->is_ram(0x1fef000, 0x1001));    // one byte into the firmware's range
    EXPECT_FALSE(m->is_ram(0x9f000, 0x2000));      // across the hole below 1 MiB
    EXPECT_FALSE(m->is_ram(64 * MiB, 512 * KiB));  // beyond the end of RAM
    EXPECT_FALSE(m->is_ram(0x1000, 0));
    EXPECT_FALSE(m->is_ram(~u64{0} - 0xfff, 0x2000));  // wraps
}

// place_kernel: a pool of `want` with the image right above it, in one free range (src/init.cpp
// asks for page alignment: the -2 GiB window maps the image with 4 KiB pages).
TEST(Memmap, TheKernelGoesToTheTopOfTheHighestRangeThatHoldsTheWholePool)
{
    auto m = fresh();
    m->add_range(1 * MiB, 255 * MiB, MEM_AVAILABLE);
    m->add_range(0xfffc000, 0x4000, MEM_RESERVED);
    m->reserve(2 * MiB, 0x86000);   // the image where the loader put it
    m->reserve(0x286000, 0x52000);  // a module right after it
    ASSERT_TRUE(m->build());
    auto p = m->place_kernel(32 * MiB, 2 * MiB, 0x86000, PAGE_SIZE, 4 * GiB);
    EXPECT_EQ(p.image, 0xfffc000u - 0x86000);
    EXPECT_EQ(p.size, 32 * MiB);
    EXPECT_EQ(p.pool_base, p.image - 32 * MiB);
    EXPECT_EQ(p.largest, 0xfffc000u - 0x2d8000);
}

TEST(Memmap, TheImageIsAlignedAsAskedAndThePoolEndsWhereItStarts)
{
    auto m = fresh();
    m->add_range(1 * MiB, 127 * MiB - 0x1000, MEM_AVAILABLE);
    ASSERT_TRUE(m->build());
    auto p = m->place_kernel(8 * MiB, 2 * MiB, 0x86000, 2 * MiB, 4 * GiB);
    EXPECT_EQ(p.image, 126 * MiB);  // align_down(128 MiB - 4 KiB - 0x86000, 2 MiB)
    EXPECT_EQ(p.pool_base, 118 * MiB);
    // The boundary can leave too little below the image: [3, 6) MiB puts it at 4 MiB or 2 MiB.
    m = fresh();
    m->add_range(3 * MiB, 3 * MiB, MEM_AVAILABLE);
    ASSERT_TRUE(m->build());
    EXPECT_EQ(m->place_kernel(2 * MiB, 2 * MiB, 512 * KiB, 2 * MiB, 4 * GiB).size, 0u);
    EXPECT_EQ(m->place_kernel(2 * MiB, 2 * MiB, 512 * KiB, PAGE_SIZE, 4 * GiB).size, 2 * MiB);
}

TEST(Memmap, ASmallMachineGetsASmallerPoolButNeverLessThanTheMinimum)
{
    auto m = fresh();
    m->add_range(1 * MiB, 6 * MiB - 128 * KiB, MEM_AVAILABLE);  // QEMU -m 7M: RAM to 7 MiB - 128 KiB
    m->reserve(2 * MiB, 0x86000);
    m->reserve(0x286000, 0x51000);  // the demo right after the image
    ASSERT_TRUE(m->build());
    auto p = m->place_kernel(4 * MiB, 2 * MiB, 0x86000, PAGE_SIZE, 4 * GiB);
    ASSERT_NE(p.size, 0u);
    EXPECT_EQ(p.image, 7 * MiB - 128 * KiB - 0x86000);
    EXPECT_EQ(p.pool_base, 0x2d7000u);  // the whole range below the image
    EXPECT_EQ(p.size, p.image - 0x2d7000);
    // More than the range can hold as a minimum: no placement, but the largest range is known.
    auto q = m->place_kernel(4 * MiB, 4 * MiB, 0x86000, PAGE_SIZE, 4 * GiB);
    EXPECT_EQ(q.size, 0u);
    EXPECT_EQ(q.largest, 7 * MiB - 128 * KiB - 0x2d7000);
    // A wanted pool below the minimum is raised to it.
    auto r = m->place_kernel(0, 2 * MiB, 0x86000, PAGE_SIZE, 4 * GiB);
    EXPECT_EQ(r.size, 2 * MiB);
    EXPECT_EQ(r.image, p.image);
}

TEST(Memmap, TheKernelStaysBelowTheLimitAndPrefersTheBiggerPool)
{
    auto m = fresh();
    m->add_range(1 * MiB, 63 * MiB, MEM_AVAILABLE);             // [1, 64) MiB
    m->add_range(3 * GiB, 64 * MiB, MEM_AVAILABLE);             // [3 GiB, 3 GiB + 64 MiB)
    m->add_range(4 * GiB - 16 * MiB, 32 * MiB, MEM_AVAILABLE);  // crosses the 4 GiB limit
    m->add_range(8 * GiB, 4 * GiB, MEM_AVAILABLE);              // above the limit: never used
    ASSERT_TRUE(m->build());
    auto p = m->place_kernel(256 * MiB, 2 * MiB, 512 * KiB, PAGE_SIZE, 4 * GiB);
    EXPECT_EQ(p.image, 3 * GiB + 64 * MiB - 512 * KiB);  // the range with most room below the image
    EXPECT_EQ(p.pool_base, 3 * GiB);
    EXPECT_EQ(p.largest, 64 * MiB);
    // A pool that fits everywhere: the highest range, clipped at the limit.
    p = m->place_kernel(8 * MiB, 2 * MiB, 512 * KiB, PAGE_SIZE, 4 * GiB);
    EXPECT_EQ(p.image, 4 * GiB - 512 * KiB);
    EXPECT_EQ(p.pool_base, 4 * GiB - 512 * KiB - 8 * MiB);
}

TEST(Memmap, IsRamCountsWholePages)
{
    auto m = fresh();
    m->add_range(1 * MiB, 15 * MiB, MEM_AVAILABLE);
    m->add_range(8 * MiB + 0xc00, 0x100, MEM_RESERVED);  // a firmware byte range inside a page
    ASSERT_TRUE(m->build());
    EXPECT_FALSE(m->is_ram(8 * MiB, 0x800));  // ends before the reserved bytes, same page
    EXPECT_TRUE(m->is_ram(8 * MiB - 0x1000, 0x1000));
    EXPECT_TRUE(m->is_ram(8 * MiB + 0x1000, 0x10));
}
