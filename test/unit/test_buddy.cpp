/*
 * Unit tests of the buddy frame allocator. Physical memory is simulated by a
 * reserved (PROT_NONE) host address range in which only the "RAM" ranges are
 * made accessible, so holes of many GiB cost no host memory and any access
 * outside managed memory faults.
 */
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <iterator>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "buddy.hpp"
#include "diag_capture.hpp"

namespace {

constexpr u64 KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;

// Host stand-in for physical addresses [lo, hi): virt = phys + offset().
class Fake_phys
{
    u64 lo, len;
    void *va;

  public:
    Fake_phys(u64 l, u64 h) : lo(l), len(h - l)
    {
        va = mmap(nullptr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    }
    ~Fake_phys()
    {
        if (ok())
            munmap(va, len);
    }
    bool ok() const { return va != MAP_FAILED; }
    bool back(u64 phys, u64 size)
    {
        return mprotect(static_cast<char *>(va) + (phys - lo), size, PROT_READ | PROT_WRITE) == 0;
    }
    u64 offset() const { return reinterpret_cast<u64>(va) - lo; }
};

// A buddy over one backed range [base, base + size).
struct Single_range
{
    Fake_phys mem;
    Buddy b;
    Single_range(u64 base, u64 size) : mem(base, base + size)
    {
        EXPECT_TRUE(mem.ok() && mem.back(base, size));
        b.init(mem.offset());
        EXPECT_TRUE(b.add_range(base, size));
    }
};

u64 pages_of(const Kmem_stats &s)
{
    u64 n = 0;
    for (unsigned o = 0; o < KMEM_ORDERS; o++)
        n += s.free_blocks[o] << o;
    return n;
}

}  // namespace

TEST(Buddy, AnOddlyAlignedRangeIsSplitIntoMaximalNaturallyAlignedBlocks)
{
    Single_range t(0x3000, 0x9d000);  // frames 0x3..0xa0, the first holds the metadata
    Kmem_stats s = t.b.stats();
    EXPECT_EQ(s.meta_pages, 1u);
    EXPECT_EQ(s.managed_pages, 0x9cu);
    EXPECT_EQ(s.free_pages, 0x9cu);
    EXPECT_EQ(s.used_pages, 0u);
    // 0x4 (order 2), 0x8 (3), 0x10 (4), 0x20 (5), 0x40 (6), 0x80 (5)
    Kmem_stats want{};
    want.managed_pages = want.free_pages = 0x9c;
    want.meta_pages = 1;
    want.free_blocks[2] = 1;
    want.free_blocks[3] = 1;
    want.free_blocks[4] = 1;
    want.free_blocks[5] = 2;
    want.free_blocks[6] = 1;
    EXPECT_EQ(s, want);
    EXPECT_EQ(pages_of(s), s.free_pages);
}

TEST(Buddy, BlocksAreNaturallyAlignedAndTranslateBetweenPhysicalAndVirtual)
{
    Single_range t(0x100000, 8 * MiB);
    for (unsigned o = 0; o <= 10; o++) {
        void *p = t.b.alloc(o);
        ASSERT_NE(p, nullptr) << "order " << o;
        u64 phys = t.b.virt_to_phys(p);
        EXPECT_EQ(phys % (PAGE_SIZE << o), 0u);
        EXPECT_GE(phys, 0x100000u);
        EXPECT_LE(phys + (PAGE_SIZE << o), 0x100000 + 8 * MiB);
        EXPECT_EQ(t.b.phys_to_virt(phys), p);
        EXPECT_TRUE(t.b.allocated(p, o));
        EXPECT_FALSE(t.b.allocated(p, o + 1));
    }
}

TEST(Buddy, ExhaustionReturnsNullAndAFreeMakesAllocationPossibleAgain)
{
    Single_range t(0x100000, 256 * KiB);  // 64 frames, 1 for metadata
    u64 total = t.b.stats().free_pages;
    ASSERT_EQ(total, 63u);
    std::vector<void *> v;
    while (void *p = t.b.alloc(0))
        v.push_back(p);
    EXPECT_EQ(v.size(), total);
    EXPECT_EQ(t.b.stats().free_pages, 0u);
    EXPECT_EQ(t.b.stats().used_pages, total);
    EXPECT_EQ(t.b.alloc(0), nullptr);
    EXPECT_EQ(t.b.alloc(3), nullptr);

    ASSERT_TRUE(t.b.free(v.back(), 0));
    v.pop_back();
    void *again = t.b.alloc(0);
    EXPECT_NE(again, nullptr);
    EXPECT_EQ(t.b.alloc(0), nullptr);
    v.push_back(again);
    for (void *p : v)
        EXPECT_TRUE(t.b.free(p, 0));
    EXPECT_EQ(t.b.stats().free_pages, total);
}

// The first failed allocation is reported (a small machine would otherwise fail silently),
// later ones are not (the leak test exhausts the pool on purpose); init() re-arms the report.
TEST(Buddy, TheFirstExhaustionIsReportedOnceWithTheSizes)
{
    Single_range t(0x100000, 256 * KiB);
    while (t.b.alloc(0)) {
    }
    diag_clear();
    EXPECT_EQ(t.b.alloc(2), nullptr);
    EXPECT_EQ(g_diag_lines.size(), 0u);  // the loop's last alloc() was the first failure
    t.b.init(t.mem.offset());
    ASSERT_TRUE(t.b.add_range(0x100000, 256 * KiB));
    void *p = t.b.alloc(5);  // 32 of the 63 free pages
    ASSERT_NE(p, nullptr);
    diag_clear();
    EXPECT_EQ(t.b.alloc(5), nullptr);
    ASSERT_EQ(g_diag_lines.size(), 1u);
    EXPECT_TRUE(diag_contains("buddy: exhausted: no free block of 128 KiB (124 of 252 KiB free)"));
    EXPECT_EQ(t.b.alloc(5), nullptr);
    EXPECT_EQ(t.b.alloc(6), nullptr);
    EXPECT_EQ(g_diag_lines.size(), 1u);
}

TEST(Buddy, FreeingAllPagesInRandomOrderCoalescesBackToTheMaximalBlocks)
{
    Single_range t(0x3000, 0x9d000 + 4 * MiB);
    Kmem_stats base = t.b.stats();
    std::vector<void *> v;
    while (void *p = t.b.alloc(0))
        v.push_back(p);
    EXPECT_EQ(v.size(), base.managed_pages);
    std::shuffle(v.begin(), v.end(), std::mt19937(42));
    for (void *p : v)
        ASSERT_TRUE(t.b.free(p, 0));
    EXPECT_EQ(t.b.stats(), base);
}

TEST(Buddy, FillZeroesOrSetsTheWholeBlock)
{
    Single_range t(0x100000, 1 * MiB);
    auto *p = static_cast<u8 *>(t.b.alloc(2, Buddy::FILL_1));
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(std::all_of(p, p + 4 * PAGE_SIZE, [](u8 c) { return c == 0xff; }));
    ASSERT_TRUE(t.b.free(p, 2));
    auto *q = static_cast<u8 *>(t.b.alloc(2, Buddy::FILL_0));
    ASSERT_NE(q, nullptr);
    EXPECT_TRUE(std::all_of(q, q + 4 * PAGE_SIZE, [](u8 c) { return c == 0; }));
}

TEST(Buddy, RangesAboveFourGigabytesWork)
{
    const u64 base = 0x1'0000'0000;
    Single_range t(base, 16 * MiB);
    EXPECT_EQ(t.b.stats().free_blocks[11], 1u);  // 0x1'0080'0000 is 8 MiB aligned
    void *p = t.b.alloc(11);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(t.b.virt_to_phys(p), base + 8 * MiB);
    void *q = t.b.alloc(0);
    ASSERT_NE(q, nullptr);
    EXPECT_GE(t.b.virt_to_phys(q), base);
    EXPECT_TRUE(t.b.free(p, 11));
    EXPECT_TRUE(t.b.free(q, 0));
}

TEST(Buddy, AHugeHoleBetweenRangesCostsNoMetadata)
{
    Fake_phys mem(0, 64 * GiB + 8 * MiB);
    if (!mem.ok())
        GTEST_SKIP() << "cannot reserve 64 GiB of address space";
    ASSERT_TRUE(mem.back(0x100000, 8 * MiB));
    ASSERT_TRUE(mem.back(64 * GiB, 8 * MiB));
    Buddy b;
    b.init(mem.offset());
    ASSERT_TRUE(b.add_range(64 * GiB, 8 * MiB));  // out of order on purpose
    ASSERT_TRUE(b.add_range(0x100000, 8 * MiB));
    Kmem_stats s = b.stats();
    EXPECT_EQ(s.meta_pages, 2u);
    EXPECT_EQ(s.managed_pages, 2 * 2048u - 2);

    std::vector<void *> v;
    while (void *p = b.alloc(0))
        v.push_back(p);
    EXPECT_EQ(v.size(), s.managed_pages);
    for (void *p : v)
        ASSERT_TRUE(b.free(p, 0));
    EXPECT_EQ(b.stats(), s);
}

TEST(Buddy, MetadataOfASixteenGigabyteMachineStaysBelowATenthOfAPercent)
{
    Fake_phys mem(0, 18 * GiB);
    if (!mem.ok())
        GTEST_SKIP() << "cannot reserve 18 GiB of address space";
    struct
    {
        u64 base, size;
    } ram[] = {{0x1000, 0x9e000}, {0x100000, 2 * GiB - 0x100000}, {4 * GiB, 14 * GiB}};
    Buddy b;
    b.init(mem.offset());
    for (auto r : ram) {
        ASSERT_TRUE(mem.back(r.base, r.size));
        ASSERT_TRUE(b.add_range(r.base, r.size));
    }
    Kmem_stats s = b.stats();
    EXPECT_EQ(s.managed_pages + s.meta_pages, (16 * GiB - 0x2000 - 0x60000) / PAGE_SIZE);
    EXPECT_LE(s.meta_pages * 1000, s.managed_pages);
    // 1..2 GiB and 5..18 GiB; the metadata at 4 GiB splits the first GiB there
    EXPECT_EQ(s.free_blocks[Buddy::MAX_ORDER], 1u + 13u);

    void *p = b.alloc(Buddy::MAX_ORDER);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(b.virt_to_phys(p) % GiB, 0u);
    EXPECT_EQ(b.alloc(Buddy::MAX_ORDER + 1), nullptr);
    EXPECT_TRUE(diag_contains("exceeds the maximum"));
    EXPECT_TRUE(b.free(p, Buddy::MAX_ORDER));
    EXPECT_EQ(b.stats(), s);
}

TEST(Buddy, ManyRangesAreManagedSeparatelyAndTheExcessIsRejected)
{
    const u64 lo = 0x100000, stride = 68 * KiB, n = Buddy::MAX_REGIONS + 1;
    Fake_phys mem(lo, lo + n * stride);
    Buddy b;
    b.init(mem.offset());
    diag_clear();
    for (u64 i = 0; i < n; i++) {
        ASSERT_TRUE(mem.back(lo + i * stride, 64 * KiB));
        EXPECT_EQ(b.add_range(lo + i * stride, 64 * KiB), i < Buddy::MAX_REGIONS);
    }
    EXPECT_TRUE(diag_contains("ranges"));
    Kmem_stats s = b.stats();
    EXPECT_EQ(s.meta_pages, Buddy::MAX_REGIONS);
    EXPECT_EQ(s.managed_pages, 15u * Buddy::MAX_REGIONS);

    std::vector<void *> v;
    while (void *p = b.alloc(0)) {
        u64 off = (b.virt_to_phys(p) - lo) % stride;
        EXPECT_TRUE(off >= PAGE_SIZE && off < 64 * KiB) << "page outside a range or on metadata";
        v.push_back(p);
    }
    EXPECT_EQ(v.size(), s.managed_pages);
    for (void *p : v)
        ASSERT_TRUE(b.free(p, 0));
    EXPECT_EQ(b.stats(), s);
}

TEST(Buddy, InvalidOverlappingAndTinyRangesAreRejectedWithADiagnostic)
{
    Fake_phys mem(0x100000, 0x100000 + 4 * MiB);
    ASSERT_TRUE(mem.back(0x100000, 4 * MiB));
    Buddy b;
    b.init(mem.offset());
    ASSERT_TRUE(b.add_range(0x200000, 1 * MiB));
    Kmem_stats s = b.stats();

    diag_clear();
    EXPECT_FALSE(b.add_range(0x280000, 1 * MiB));
    EXPECT_FALSE(b.add_range(0x1ff000, 0x2000));
    EXPECT_FALSE(b.add_range(0x100000, 4 * MiB));
    EXPECT_TRUE(diag_contains("overlaps"));
    diag_clear();
    EXPECT_FALSE(b.add_range(0x100000, 0));
    EXPECT_FALSE(b.add_range(~u64{0} - 0xfff, 0x2000));
    EXPECT_FALSE(b.add_range(u64{1} << 60, 0x100000));
    EXPECT_TRUE(diag_contains("invalid range"));
    diag_clear();
    EXPECT_FALSE(b.add_range(0x100000, 0x1000));
    EXPECT_FALSE(b.add_range(0x100800, 0x1800));  // one page after trimming, needed for metadata
    EXPECT_TRUE(diag_contains("too small"));
    EXPECT_EQ(b.stats(), s);

    // Unaligned edges are trimmed to whole pages.
    EXPECT_TRUE(b.add_range(0x100800, 0x3000));
    EXPECT_EQ(b.stats().managed_pages, s.managed_pages + 1);
}

TEST(Buddy, DoubleFreesAndForeignPointersAreDetectedWithoutChangingState)
{
    Single_range t(0x100000, 1 * MiB);
    void *p = t.b.alloc(1);
    void *q = t.b.alloc(0);
    ASSERT_NE(p, nullptr);
    ASSERT_NE(q, nullptr);
    char *meta = static_cast<char *>(t.b.phys_to_virt(0x100000));
    Kmem_stats s = t.b.stats();

    diag_clear();
    EXPECT_FALSE(t.b.free(p, 0));                                       // wrong order
    EXPECT_FALSE(t.b.free(p, 2));                                       // wrong order (and misaligned)
    EXPECT_FALSE(t.b.free(static_cast<char *>(p) + PAGE_SIZE, 0));      // inside the block
    EXPECT_FALSE(t.b.free(static_cast<char *>(p) + 8, 1));              // misaligned
    EXPECT_FALSE(t.b.free(meta, 0));                                    // the metadata page
    EXPECT_FALSE(t.b.free(t.b.phys_to_virt(0x100000 + 512 * KiB), 0));  // free memory
    EXPECT_FALSE(t.b.free(t.b.phys_to_virt(0x40000000), 0));            // outside every range
    EXPECT_FALSE(t.b.free(nullptr, 0));
    EXPECT_FALSE(t.b.free(p, 99));
    EXPECT_TRUE(diag_contains("not an allocated block"));
    EXPECT_TRUE(diag_contains("misaligned"));
    EXPECT_EQ(t.b.stats(), s);

    EXPECT_TRUE(t.b.free(p, 1));
    diag_clear();
    EXPECT_FALSE(t.b.free(p, 1));
    EXPECT_TRUE(diag_contains("double free"));
    EXPECT_TRUE(t.b.free(q, 0));
    EXPECT_FALSE(t.b.free(q, 0));
    EXPECT_EQ(t.b.stats().used_pages, 0u);
}

TEST(Buddy, AFreeListHeadOverwrittenAfterFreeIsQuarantinedNotHandedOut)
{
    Single_range t(0x100000, 64 * KiB);
    void *victim = t.b.alloc(0);
    void *other = t.b.alloc(0);
    ASSERT_NE(victim, nullptr);
    ASSERT_NE(other, nullptr);
    ASSERT_TRUE(t.b.free(victim, 0));         // now the head of the order-0 free list
    static_cast<void **>(victim)[0] = other;  // use after free: its "next" now points at a live block
    EXPECT_EQ(t.b.alloc(0), victim);
    diag_clear();
    EXPECT_EQ(t.b.alloc(0), nullptr);
    EXPECT_TRUE(diag_contains("corrupted"));
    EXPECT_NE(t.b.alloc(1), nullptr);  // other orders are unaffected
}

TEST(Buddy, RandomAllocationsAndFreesMatchASimpleModel)
{
    Single_range t(0x3000, 0x9d000 + 6 * MiB + 0x5000);
    const Kmem_stats base = t.b.stats();
    std::map<u64, unsigned> live;  // phys -> order
    u64 live_pages = 0;
    std::mt19937 rng(7);

    auto tag = [](u64 phys, unsigned o) { return phys * 31 + o; };
    auto check_and_free = [&](std::map<u64, unsigned>::iterator it) {
        u64 *w = static_cast<u64 *>(t.b.phys_to_virt(it->first));
        u64 words = (PAGE_SIZE << it->second) / 8;
        EXPECT_EQ(w[0], tag(it->first, it->second));
        EXPECT_EQ(w[words - 1], ~tag(it->first, it->second));
        ASSERT_TRUE(t.b.free(w, it->second));
        live_pages -= u64{1} << it->second;
        live.erase(it);
    };

    for (int step = 0; step < 20000; step++) {
        if (live.empty() || rng() % 100 < 55) {
            unsigned o = static_cast<unsigned>(rng() % 100 < 70 ? rng() % 3 : rng() % 8);
            void *p = t.b.alloc(o);
            if (!p) {
                Kmem_stats s = t.b.stats();
                for (unsigned k = o; k < KMEM_ORDERS; k++)
                    ASSERT_EQ(s.free_blocks[k], 0u) << "failed although a block of order " << k << " is free";
                continue;
            }
            u64 phys = t.b.virt_to_phys(p), end = phys + (PAGE_SIZE << o);
            ASSERT_EQ(phys % (PAGE_SIZE << o), 0u);
            ASSERT_GE(phys, 0x4000u);
            ASSERT_LE(end, 0x3000 + 0x9d000 + 6 * MiB + 0x5000);
            auto next = live.lower_bound(phys);
            if (next != live.end()) {
                ASSERT_LE(end, next->first) << "overlaps the next live block";
            }
            if (next != live.begin()) {
                auto prev = std::prev(next);
                ASSERT_LE(prev->first + (PAGE_SIZE << prev->second), phys) << "overlaps the previous block";
            }
            u64 *w = static_cast<u64 *>(p);
            w[0] = tag(phys, o);
            w[(PAGE_SIZE << o) / 8 - 1] = ~tag(phys, o);
            live[phys] = o;
            live_pages += u64{1} << o;
        } else {
            auto it = live.begin();
            std::advance(it, rng() % live.size());
            check_and_free(it);
        }
        Kmem_stats s = t.b.stats();
        ASSERT_EQ(s.free_pages + live_pages, base.managed_pages);
        ASSERT_EQ(s.used_pages, live_pages);
        ASSERT_EQ(pages_of(s), s.free_pages);
    }
    while (!live.empty())
        check_and_free(live.begin());
    EXPECT_EQ(t.b.stats(), base);
}

TEST(Buddy, ConcurrentAllocationsFromSeveralThreadsLoseNothing)
{
    Single_range t(0x100000, 32 * MiB);
    const Kmem_stats base = t.b.stats();
    std::atomic<unsigned> ready{0};
    auto worker = [&](unsigned seed) {
        std::mt19937 rng(seed);
        ready++;
        while (ready < 2)  // start together so the threads really contend
            ;
        std::vector<std::pair<void *, unsigned>> mine;
        for (int i = 0; i < 5000; i++) {
            if (mine.empty() || rng() % 2) {
                unsigned o = rng() % 4;
                if (void *p = t.b.alloc(o)) {
                    *static_cast<unsigned *>(p) = seed;  // detect blocks handed to two threads
                    mine.push_back({p, o});
                }
            } else {
                auto [p, o] = mine.back();
                mine.pop_back();
                EXPECT_EQ(*static_cast<unsigned *>(p), seed);
                EXPECT_TRUE(t.b.free(p, o));
            }
        }
        for (auto [p, o] : mine)
            EXPECT_TRUE(t.b.free(p, o));
    };
    std::vector<std::thread> threads;
    for (unsigned i = 0; i < 2; i++)  // the ticket lock convoys when threads outnumber host CPUs
        threads.emplace_back(worker, i + 1);
    for (auto &th : threads)
        th.join();
    EXPECT_EQ(t.b.stats(), base);
}

TEST(Buddy, InitForgetsAllPreviousRanges)
{
    Single_range t(0x100000, 1 * MiB);
    ASSERT_NE(t.b.alloc(0), nullptr);
    t.b.init(t.mem.offset());
    EXPECT_EQ(t.b.stats(), Kmem_stats{});
    EXPECT_EQ(t.b.alloc(0), nullptr);
    EXPECT_TRUE(t.b.add_range(0x100000, 1 * MiB));
    EXPECT_EQ(t.b.stats().managed_pages, 255u);
}
