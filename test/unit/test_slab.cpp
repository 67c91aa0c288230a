/*
 * Unit tests of the slab caches, on top of a real Buddy over a host buffer
 * that stands in for physical memory at a nonzero physical base.
 */
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <iterator>
#include <random>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "diag_capture.hpp"
#include "slab.hpp"

namespace {

constexpr u64 KiB = 1024, MiB = 1024 * KiB;

// A static cache must be constant-initialized: the kernel has no static constructors.
constinit Slab_cache static_cache{"static", 48, 16};

// Buddy over [base, base + size) backed by an anonymous mapping.
struct Phys_memory
{
    u64 base, size;
    void *va;
    Buddy b;

    Phys_memory(u64 phys, u64 len) : base(phys), size(len)
    {
        va = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        EXPECT_NE(va, MAP_FAILED);
        b.init(reinterpret_cast<u64>(va) - phys);
        EXPECT_TRUE(b.add_range(phys, len));
    }
    ~Phys_memory() { munmap(va, size); }
};

}  // namespace

TEST(Slab, ACacheOfSmallObjectsPacksOnePageAndGrowsBySlabs)
{
    Phys_memory m(0x100000, 4 * MiB);
    Slab_cache c("small", 40, 8, m.b);
    auto st = c.stats();
    EXPECT_EQ(st.obj_size, 40u);
    EXPECT_EQ(st.order, 0u);
    EXPECT_EQ(st.per_slab, (PAGE_SIZE - 64) / 40);
    u64 base_free = m.b.stats().free_pages;

    std::vector<char *> v;
    for (size_t i = 0; i < st.per_slab; i++) {
        auto *p = static_cast<char *>(c.alloc());
        ASSERT_NE(p, nullptr);
        EXPECT_EQ(reinterpret_cast<u64>(p) % 8, 0u);
        if (!v.empty()) {
            EXPECT_EQ(align_down(m.b.virt_to_phys(p), PAGE_SIZE),
                      align_down(m.b.virt_to_phys(v[0]), PAGE_SIZE));
        }
        v.push_back(p);
    }
    EXPECT_EQ(c.stats().slabs, 1u);
    EXPECT_EQ(m.b.stats().free_pages, base_free - 1);
    v.push_back(static_cast<char *>(c.alloc()));
    ASSERT_NE(v.back(), nullptr);
    EXPECT_EQ(c.stats().slabs, 2u);
    EXPECT_EQ(c.stats().in_use, st.per_slab + 1);

    std::sort(v.begin(), v.end());
    EXPECT_EQ(std::adjacent_find(v.begin(), v.end()), v.end());
    for (char *p : v)
        EXPECT_TRUE(c.free(p));
    EXPECT_EQ(c.stats().slabs, 0u);
    EXPECT_EQ(c.stats().in_use, 0u);
    EXPECT_EQ(m.b.stats().free_pages, base_free);
}

TEST(Slab, ObjectsHonourTheRequestedAlignmentAndAMinimumSize)
{
    Phys_memory m(0x100000, 4 * MiB);
    Slab_cache tiny("tiny", 1, 1, m.b);
    EXPECT_EQ(tiny.stats().obj_size, Slab_cache::MIN_SIZE);
    EXPECT_EQ(tiny.stats().per_slab, (PAGE_SIZE - 64) / 16);

    Slab_cache aligned("aligned", 72, 64, m.b);
    EXPECT_EQ(aligned.stats().obj_size, 128u);
    Slab_cache page_aligned("page", 100, PAGE_SIZE, m.b);
    for (int i = 0; i < 50; i++) {
        void *p = aligned.alloc();
        void *q = page_aligned.alloc();
        ASSERT_NE(p, nullptr);
        ASSERT_NE(q, nullptr);
        EXPECT_EQ(reinterpret_cast<u64>(p) % 64, 0u);
        EXPECT_EQ(reinterpret_cast<u64>(q) % PAGE_SIZE, 0u);
    }
}

TEST(Slab, LargeObjectsUseMultiPageSlabsHoldingAtLeastEight)
{
    Phys_memory m(0x100000, 4 * MiB);
    Slab_cache c("large", 1000, 8, m.b);
    auto st = c.stats();
    EXPECT_EQ(st.order, 1u);
    EXPECT_EQ(st.per_slab, 8u);
    Slab_cache huge("huge", 3 * PAGE_SIZE, 8, m.b);
    EXPECT_EQ(huge.stats().order, 3u);
    EXPECT_EQ(huge.stats().per_slab, 2u);

    u64 base_free = m.b.stats().free_pages;
    std::vector<void *> v;
    for (int i = 0; i < 9; i++)
        v.push_back(c.alloc());
    EXPECT_EQ(c.stats().slabs, 2u);
    EXPECT_EQ(m.b.stats().free_pages, base_free - 4);
    for (void *p : v)
        EXPECT_TRUE(c.free(p));
    EXPECT_EQ(m.b.stats().free_pages, base_free);
}

TEST(Slab, InvalidSizesOrAlignmentsMakeACacheThatAlwaysFails)
{
    Phys_memory m(0x100000, 1 * MiB);
    Slab_cache zero("zero", 0, 8, m.b);
    Slab_cache odd("odd-align", 32, 24, m.b);
    Slab_cache big_align("big-align", 32, 2 * PAGE_SIZE, m.b);
    Slab_cache too_big("too-big", 40 * KiB, 8, m.b);
    Slab_cache absurd("absurd", ~size_t{0}, 8, m.b);
    diag_clear();
    for (Slab_cache *c : {&zero, &odd, &big_align, &too_big, &absurd}) {
        EXPECT_EQ(c->alloc(), nullptr) << c->name();
        EXPECT_EQ(c->stats().per_slab, 0u);
    }
    EXPECT_TRUE(diag_contains("slab zero: unusable"));
    EXPECT_TRUE(diag_contains("slab absurd: unusable"));
    EXPECT_EQ(m.b.stats().used_pages, 0u);
}

TEST(Slab, ExhaustionReturnsNullAndFreeingMakesRoomAgain)
{
    Phys_memory m(0x100000, 64 * KiB);     // 15 usable pages
    Slab_cache c("exhaust", 504, 8, m.b);  // 8 a page
    const size_t per_slab = c.stats().per_slab;
    std::vector<void *> v;
    while (void *p = c.alloc())
        v.push_back(p);
    EXPECT_EQ(v.size(), 15 * per_slab);
    EXPECT_EQ(m.b.stats().free_pages, 0u);
    EXPECT_EQ(c.alloc(), nullptr);

    EXPECT_TRUE(c.free(v[3]));
    void *again = c.alloc();
    EXPECT_EQ(again, v[3]);
    EXPECT_EQ(c.alloc(), nullptr);
    for (void *p : v)
        EXPECT_TRUE(c.free(p));
    EXPECT_EQ(m.b.stats().free_pages, 15u);
}

TEST(Slab, BadFreesAreReportedAndLeaveTheCacheIntact)
{
    Phys_memory m(0x100000, 1 * MiB);
    Slab_cache c("victim", 64, 8, m.b);
    Slab_cache other("other", 64, 8, m.b);
    auto *p = static_cast<char *>(c.alloc());
    auto *q = static_cast<char *>(c.alloc());
    void *foreign = other.alloc();
    void *page = m.b.alloc(0);
    ASSERT_TRUE(p && q && foreign && page);

    diag_clear();
    EXPECT_FALSE(c.free(foreign));
    EXPECT_FALSE(c.free(page));
    EXPECT_FALSE(c.free(m.b.phys_to_virt(0x100000 + 512 * KiB)));  // free buddy memory
    EXPECT_FALSE(c.free(nullptr));
    EXPECT_TRUE(diag_contains("slab victim: free of"));
    EXPECT_TRUE(diag_contains("not from this cache"));
    diag_clear();
    EXPECT_FALSE(c.free(p + 8));
    EXPECT_FALSE(c.free(p - 8));  // p is the slab's first object, just after the header
    EXPECT_TRUE(diag_contains("not the start of an object"));
    EXPECT_EQ(c.stats().in_use, 2u);

    EXPECT_TRUE(c.free(p));
    diag_clear();
    EXPECT_FALSE(c.free(p));
    EXPECT_TRUE(diag_contains("double free"));
    EXPECT_TRUE(c.free(q));  // the slab is empty now and back in the buddy
    EXPECT_FALSE(c.free(q));
    EXPECT_EQ(c.stats().slabs, 0u);
    EXPECT_TRUE(other.free(foreign));
    EXPECT_TRUE(m.b.free(page, 0));
    EXPECT_EQ(m.b.stats().used_pages, 0u);
}

TEST(Slab, ChurningAHundredThousandObjectsOfSeveralSizesLeaksNothing)
{
    Phys_memory m(0x100000, 96 * MiB);
    const Kmem_stats base = m.b.stats();
    static constexpr size_t sizes[] = {16, 24, 64, 100, 256, 700, 2000};
    std::vector<Slab_cache *> caches;
    for (size_t s : sizes)
        caches.push_back(new Slab_cache("churn", s, 8, m.b));

    struct Obj
    {
        u32 *p;
        unsigned cache;
        u32 tag;
    };
    std::vector<Obj> live;
    std::mt19937 rng(1);
    for (int round = 0; round < 2; round++) {
        for (u32 i = 0; i < 100000; i++) {
            unsigned k = static_cast<unsigned>(i % caches.size());
            auto *p = static_cast<u32 *>(caches[k]->alloc());
            ASSERT_NE(p, nullptr);
            p[0] = i;
            p[sizes[k] / 4 - 1] = ~i;
            live.push_back({p, k, i});
            if (rng() % 4 == 0) {  // free some along the way
                size_t j = rng() % live.size();
                std::swap(live[j], live.back());
                ASSERT_EQ(live.back().p[0], live.back().tag);
                ASSERT_TRUE(caches[live.back().cache]->free(live.back().p));
                live.pop_back();
            }
        }
        std::shuffle(live.begin(), live.end(), rng);
        for (Obj &o : live) {
            ASSERT_EQ(o.p[0], o.tag) << "object overwritten";
            ASSERT_EQ(o.p[sizes[o.cache] / 4 - 1], ~o.tag) << "object overwritten";
            ASSERT_TRUE(caches[o.cache]->free(o.p));
        }
        live.clear();
        for (Slab_cache *c : caches) {
            EXPECT_EQ(c->stats().in_use, 0u);
            EXPECT_EQ(c->stats().slabs, 0u);
        }
        EXPECT_EQ(m.b.stats(), base);
    }
    for (Slab_cache *c : caches)
        delete c;
}

TEST(Slab, LiveObjectsNeverOverlapUnderRandomChurn)
{
    Phys_memory m(0x100000, 8 * MiB);
    Slab_cache c("model", 96, 32, m.b);
    std::set<u64> live;
    std::mt19937 rng(3);
    for (int i = 0; i < 50000; i++) {
        if (live.empty() || rng() % 100 < 52) {
            auto *p = static_cast<char *>(c.alloc());
            ASSERT_NE(p, nullptr);
            u64 a = reinterpret_cast<u64>(p);
            auto next = live.lower_bound(a);
            ASSERT_TRUE(next == live.end() || a + 96 <= *next);
            ASSERT_TRUE(next == live.begin() || *std::prev(next) + 96 <= a);
            live.insert(a);
        } else {
            auto it = live.begin();
            std::advance(it, rng() % std::min<size_t>(live.size(), 64));
            ASSERT_TRUE(c.free(reinterpret_cast<void *>(*it)));
            live.erase(it);
        }
        ASSERT_EQ(c.stats().in_use, live.size());
    }
    for (u64 a : live)
        ASSERT_TRUE(c.free(reinterpret_cast<void *>(a)));
    EXPECT_EQ(m.b.stats().used_pages, 0u);
}

TEST(Slab, ConcurrentUseFromTwoThreadsKeepsCountsExact)
{
    Phys_memory m(0x100000, 16 * MiB);
    Slab_cache c("shared", 128, 8, m.b);
    std::atomic<unsigned> ready{0};
    auto worker = [&](u32 seed) {
        std::mt19937 rng(seed);
        std::vector<u32 *> mine;
        ready++;
        while (ready < 2)
            ;
        for (int i = 0; i < 20000; i++) {
            if (mine.empty() || rng() % 2) {
                auto *p = static_cast<u32 *>(c.alloc());
                ASSERT_NE(p, nullptr);
                *p = seed;
                mine.push_back(p);
            } else {
                EXPECT_EQ(*mine.back(), seed);
                EXPECT_TRUE(c.free(mine.back()));
                mine.pop_back();
            }
        }
        for (u32 *p : mine)
            EXPECT_TRUE(c.free(p));
    };
    std::thread a(worker, 1), b(worker, 2);
    a.join();
    b.join();
    EXPECT_EQ(c.stats().in_use, 0u);
    EXPECT_EQ(m.b.stats().used_pages, 0u);
}

TEST(Slab, AConstantInitializedCacheUsesTheKernelBuddy)
{
    EXPECT_STREQ(static_cache.name(), "static");
    EXPECT_EQ(static_cache.stats().obj_size, 48u);
    EXPECT_EQ(static_cache.stats().per_slab, (PAGE_SIZE - 64) / 48);
    diag_clear();
    EXPECT_FALSE(static_cache.free(nullptr));  // the kernel buddy has no memory in host tests
    EXPECT_EQ(static_cache.alloc(), nullptr);
}

TEST(Slab, ForEachVisitsExactlyTheLiveObjectsOfFullAndPartialSlabs)
{
    Phys_memory m(0x100000, 8 * MiB);
    Slab_cache c("census", 100, 8, m.b);
    size_t const per = c.stats().per_slab;
    std::set<void *> live;
    std::mt19937 rng(7);
    // Full slabs, partial ones and slabs that went back to the buddy, several times over.
    for (int round = 0; round < 20; round++) {
        size_t n = rng() % (5 * per);
        for (size_t i = 0; i < n; i++) {
            void *p = c.alloc();
            ASSERT_NE(p, nullptr);
            live.insert(p);
        }
        size_t drop = live.empty() ? 0 : rng() % live.size();
        for (size_t i = 0; i < drop; i++) {
            auto it = live.begin();
            std::advance(it, rng() % live.size());
            ASSERT_TRUE(c.free(*it));
            live.erase(it);
        }
        std::set<void *> seen;
        size_t visits = 0;
        c.for_each([&](void *p) {
            seen.insert(p);
            visits++;
        });
        EXPECT_EQ(visits, live.size());
        EXPECT_EQ(seen, live);
        EXPECT_EQ(c.stats().in_use, live.size());
    }
    for (void *p : live)
        EXPECT_TRUE(c.free(p));
    size_t visits = 0;
    c.for_each([&](void *) { visits++; });
    EXPECT_EQ(visits, 0u);
    EXPECT_EQ(m.b.stats().used_pages, 0u);
}
