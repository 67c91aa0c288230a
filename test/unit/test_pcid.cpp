/*
 * Pcid_cache (include/pcid.hpp): when a PD switch keeps the TLB entries of a
 * PCID and when it must flush them.
 */
#include "pcid.hpp"

#include <gtest/gtest.h>

namespace {

constexpr u64 PML4 = 0x1234000, OTHER = 0x5678000;

bool keeps(u64 cr3) { return cr3 & Pcid_cache::NOFLUSH; }
u64 pcid(u64 cr3) { return cr3 & 0xfff; }

TEST(Pcid, FirstUseFlushesThenKeeps)
{
    Pcid_cache c;
    u64 a = c.cr3(PML4, 7, 0);
    EXPECT_FALSE(keeps(a));
    EXPECT_EQ(a & ~u64{0xfff}, PML4);
    EXPECT_NE(pcid(a), 0u) << "PCID 0 belongs to the kernel's page table";
    u64 b = c.cr3(PML4, 7, 0);
    EXPECT_TRUE(keeps(b));
    EXPECT_EQ(b & ~Pcid_cache::NOFLUSH, a);
}

TEST(Pcid, RevokedMappingsFlushAtTheNextSwitchOnly)
{
    Pcid_cache c;
    c.cr3(PML4, 7, 0);
    EXPECT_FALSE(keeps(c.cr3(PML4, 7, 1))) << "the PD's generation moved: its entries may be stale";
    EXPECT_TRUE(keeps(c.cr3(PML4, 7, 1)));
}

TEST(Pcid, DistinctPdsDistinctPcids)
{
    Pcid_cache c;
    u64 a = c.cr3(PML4, 1, 0), b = c.cr3(OTHER, 2, 0);
    EXPECT_NE(pcid(a), pcid(b));
    // Switching back and forth keeps both.
    EXPECT_TRUE(keeps(c.cr3(PML4, 1, 0)));
    EXPECT_TRUE(keeps(c.cr3(OTHER, 2, 0)));
}

TEST(Pcid, CollisionEvictsAndFlushes)
{
    Pcid_cache c;
    u64 a = c.cr3(PML4, 3, 0);
    u64 b = c.cr3(OTHER, 3 + Pcid_cache::SLOTS, 0);  // same slot, another PD
    EXPECT_EQ(pcid(a), pcid(b));
    EXPECT_FALSE(keeps(b)) << "the slot held another PD's entries";
    EXPECT_FALSE(keeps(c.cr3(PML4, 3, 0))) << "and now the first PD's are gone";
}

TEST(Pcid, ANewPdNeverInheritsEntries)
{
    // PD ids are never reused; a new PD in a slot that some freed PD used flushes even if the
    // generations happen to be equal.
    Pcid_cache c;
    c.cr3(PML4, 9, 5);
    EXPECT_FALSE(keeps(c.cr3(PML4, 9 + Pcid_cache::SLOTS, 5)));
}

TEST(Pcid, PcidsStayBelow4096)
{
    Pcid_cache c;
    for (u64 id = 1; id < 5 * Pcid_cache::SLOTS; id += 37) {
        u64 v = c.cr3(PML4, id, 0);
        EXPECT_GE(pcid(v), 1u);
        EXPECT_LE(pcid(v), Pcid_cache::SLOTS);
        EXPECT_LT(pcid(v), 4096u);
    }
}

}  // namespace
