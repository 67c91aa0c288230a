/*
 * Tag_alloc (include/vtag.hpp): VPIDs/ASIDs per CPU, never 0, fresh tags first, freed tags
 * handed out again with a flush, the shared tag when the pool is empty, none with no tags.
 */
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <set>

#include "vtag.hpp"

namespace {

TEST(Vtag, NoTagsGiveZero)
{
    for (u32 count : {0u, 1u}) {  // `novpid`, no VPID support, or NASID 1 (only the host's ASID)
        Tag_alloc a(count);
        for (int i = 0; i < 3; i++) {
            Tag_alloc::Tag t = a.alloc();
            EXPECT_EQ(t.tag, 0u);
            EXPECT_FALSE(t.flush);
            EXPECT_FALSE(t.shared);
        }
        EXPECT_FALSE(a.free(0));
    }
}

TEST(Vtag, FreshTagsCountUpFromOneWithoutFlush)
{
    Tag_alloc a(16);  // QEMU's NASID: ASIDs 1..15, 15 shared
    for (u32 i = 1; i < 15; i++) {
        Tag_alloc::Tag t = a.alloc();
        EXPECT_EQ(t.tag, i);
        EXPECT_FALSE(t.flush);
        EXPECT_FALSE(t.shared);
    }
    EXPECT_EQ(a.in_use(), 14u);
    EXPECT_EQ(a.shared_tag(), 15u);
}

TEST(Vtag, EmptyPoolHandsOutTheSharedTagWithFlush)
{
    Tag_alloc a(4);  // exclusive 1, 2; shared 3
    EXPECT_EQ(a.alloc().tag, 1u);
    EXPECT_EQ(a.alloc().tag, 2u);
    for (int i = 0; i < 5; i++) {
        Tag_alloc::Tag t = a.alloc();
        EXPECT_EQ(t.tag, 3u);
        EXPECT_TRUE(t.flush);
        EXPECT_TRUE(t.shared);
    }
    EXPECT_FALSE(a.free(3)) << "the shared tag never enters the pool";
    EXPECT_EQ(a.in_use(), 2u);
}

TEST(Vtag, OneTagIsSharedByAll)
{
    Tag_alloc a(2);
    Tag_alloc::Tag t = a.alloc();
    EXPECT_EQ(t.tag, 1u);
    EXPECT_TRUE(t.shared);
    EXPECT_TRUE(t.flush);
}

TEST(Vtag, RecycledTagsAreFlushedAndPreferredToTheSharedOne)
{
    Tag_alloc a(8);  // exclusive 1..6
    for (u32 i = 1; i <= 6; i++)
        a.alloc();
    EXPECT_TRUE(a.free(4));
    EXPECT_TRUE(a.free(2));
    EXPECT_FALSE(a.free(2)) << "a double free is refused";
    EXPECT_EQ(a.in_use(), 4u);
    std::set<u32> got;
    for (int i = 0; i < 2; i++) {
        Tag_alloc::Tag t = a.alloc();
        EXPECT_TRUE(t.flush) << "the TLB may still hold the previous owner's entries";
        EXPECT_FALSE(t.shared);
        got.insert(t.tag);
    }
    EXPECT_EQ(got, (std::set<u32>{2, 4}));
    EXPECT_TRUE(a.alloc().shared);
}

TEST(Vtag, FreeingUnknownTagsIsRefused)
{
    Tag_alloc a(100);
    a.alloc();
    EXPECT_FALSE(a.free(2)) << "never handed out";
    EXPECT_FALSE(a.free(99)) << "the shared tag";
    EXPECT_FALSE(a.free(1000)) << "beyond the pool";
    EXPECT_TRUE(a.free(1));
}

TEST(Vtag, VpidPoolIsCappedAndNeverWrapsToZero)
{
    auto a = std::make_unique<Tag_alloc>(0x10000);  // 16-bit VPIDs
    EXPECT_EQ(a->shared_tag(), Tag_alloc::CAP);
    for (u32 i = 1; i < Tag_alloc::CAP; i++)
        ASSERT_EQ(a->alloc().tag, i);
    for (int i = 0; i < 10; i++) {
        Tag_alloc::Tag t = a->alloc();
        ASSERT_NE(t.tag, 0u);
        ASSERT_TRUE(t.shared);
    }
    ASSERT_TRUE(a->free(Tag_alloc::CAP - 1));
    ASSERT_TRUE(a->free(1));
    Tag_alloc::Tag t = a->alloc();
    EXPECT_EQ(t.tag, 1u) << "the lowest recycled tag first";
    EXPECT_TRUE(t.flush);
    EXPECT_EQ(a->alloc().tag, Tag_alloc::CAP - 1);
}

TEST(Vtag, RandomChurnKeepsTagsUniqueAndNonZero)
{
    std::mt19937 rng(7);
    for (u32 count : {3u, 16u, 300u, 0x10000u}) {
        auto a = std::make_unique<Tag_alloc>(count);
        std::set<u32> live;
        std::set<u32> ever;
        for (int i = 0; i < 20000; i++) {
            if (!live.empty() && rng() % 2) {
                auto it = live.begin();
                std::advance(it, rng() % live.size());
                ASSERT_TRUE(a->free(*it));
                live.erase(it);
            } else {
                Tag_alloc::Tag t = a->alloc();
                ASSERT_NE(t.tag, 0u);
                if (t.shared) {
                    ASSERT_EQ(t.tag, a->shared_tag());
                    continue;
                }
                ASSERT_TRUE(live.insert(t.tag).second) << "tag " << t.tag << " handed out twice";
                ASSERT_EQ(t.flush, ever.count(t.tag) == 1) << "flush exactly when the tag was used before";
                ever.insert(t.tag);
            }
            ASSERT_EQ(a->in_use(), live.size());
        }
    }
}

}  // namespace
