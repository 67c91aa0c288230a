/*
 * Virt::take_tag (include/vcpu.hpp): ASIDs (SVM) and VPIDs (VMX) per CPU in generations. A vCPU
 * keeps its tag while the CPU's generation lasts; a new tag is flushed before use; tags are never
 * 0 and never shared within a generation; with no tags (novpid) every vCPU has 0 and nothing to flush.
 */
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <vector>

#include "vcpu.hpp"

namespace {

TEST(Vtag, NoTagsGiveZeroWithoutFlush)
{
    Virt::Tags t{1, 0, 1};  // `novpid` or no VPID support
    Vcpu v;
    for (int i = 0; i < 3; i++) {
        EXPECT_FALSE(Virt::take_tag(t, v));
        EXPECT_EQ(v.tag, 0u);
    }
}

TEST(Vtag, FirstUseTakesTheNextTagAndFlushes)
{
    Virt::Tags t{1, 15, 1};  // QEMU's SVM: 16 ASIDs, 1..15 for guests
    Vcpu a, b;
    EXPECT_TRUE(Virt::take_tag(t, a));
    EXPECT_EQ(a.tag, 1u);
    EXPECT_TRUE(Virt::take_tag(t, b));
    EXPECT_EQ(b.tag, 2u);
    EXPECT_FALSE(Virt::take_tag(t, a)) << "kept within the generation, no flush";
    EXPECT_EQ(a.tag, 1u);
}

TEST(Vtag, RunningOutStartsANewGenerationFromOne)
{
    Virt::Tags t{1, 3, 1};
    std::vector<Vcpu> v(4);
    for (unsigned i = 0; i < 3; i++)
        ASSERT_TRUE(Virt::take_tag(t, v[i]));
    EXPECT_EQ(t.gen, 1u);
    EXPECT_TRUE(Virt::take_tag(t, v[3]));
    EXPECT_EQ(v[3].tag, 1u) << "never 0, never beyond max";
    EXPECT_EQ(t.gen, 2u);
    // The others lost their tags with the generation: each takes a new one, flushed.
    EXPECT_TRUE(Virt::take_tag(t, v[0]));
    EXPECT_EQ(v[0].tag, 2u);
    EXPECT_FALSE(Virt::take_tag(t, v[3]));
}

TEST(Vtag, RandomChurnNeverSharesATagWithinAGeneration)
{
    std::mt19937 rng(7);
    for (u32 max : {1u, 2u, 15u, 0xffffu}) {
        Virt::Tags t{1, max, 1};
        std::vector<Vcpu> v(40);
        for (int step = 0; step < 20000; step++) {
            Vcpu &x = v[rng() % v.size()];
            u32 old = x.tag;
            u64 old_gen = x.tag_gen;
            bool flush = Virt::take_tag(t, x);
            ASSERT_NE(x.tag, 0u);
            ASSERT_LE(x.tag, max);
            ASSERT_EQ(x.tag_gen, t.gen);
            ASSERT_EQ(flush, old_gen != t.gen || old == 0) << "a flush exactly when the tag is new";
            std::map<u32, int> seen;
            for (const Vcpu &y : v) {
                if (y.tag_gen == t.gen) {
                    ASSERT_EQ(seen[y.tag]++, 0) << "tag " << y.tag << " shared in generation " << t.gen;
                }
            }
        }
    }
}

}  // namespace
