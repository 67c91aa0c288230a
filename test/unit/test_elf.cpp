/* Unit tests of the root task ELF checks (src/elf.cpp). */
#include <cstring>
#include <gtest/gtest.h>
#include <memory>
#include <random>
#include <vector>

#include "diag_capture.hpp"
#include "elf.hpp"

namespace {

struct Phdr
{
    u32 type, flags;
    u64 offset, vaddr, filesz, memsz;
};

// Builds an ELF image: header, program headers at 64, segment contents after.
struct Elf_builder
{
    std::vector<u8> img = std::vector<u8>(0x3000, 0);
    std::vector<Phdr> ph;
    u64 entry = 0x401000;

    Elf_builder()
    {
        ph.push_back({1, ELF_PF_R | ELF_PF_X, 0x1000, 0x401000, 0x800, 0x800});
        ph.push_back({1, ELF_PF_R | ELF_PF_W, 0x2000, 0x602000, 0x1000, 0x1000});
    }

    template <typename T> void put(size_t off, T v) { memcpy(&img[off], &v, sizeof v); }

    std::vector<u8> build(u16 phentsize = 56, u64 phoff = 64, int phnum = -1)
    {
        std::vector<u8> v = img;
        const u8 ident[] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
        memcpy(&v[0], ident, sizeof ident);
        auto put16 = [&](size_t o, u16 x) { memcpy(&v[o], &x, 2); };
        put16(16, 2);
        put16(18, 62);
        memcpy(&v[24], &entry, 8);
        memcpy(&v[32], &phoff, 8);
        put16(52, 64);
        put16(54, phentsize);
        put16(56, phnum < 0 ? static_cast<u16>(ph.size()) : static_cast<u16>(phnum));
        for (size_t i = 0; i < ph.size() && phoff <= v.size() && (i + 1) * 56 <= v.size() - phoff; i++) {
            u8 *p = &v[phoff + i * 56];
            memcpy(p, &ph[i].type, 4);
            memcpy(p + 4, &ph[i].flags, 4);
            memcpy(p + 8, &ph[i].offset, 8);
            memcpy(p + 16, &ph[i].vaddr, 8);
            memcpy(p + 32, &ph[i].filesz, 8);
            memcpy(p + 40, &ph[i].memsz, 8);
        }
        return v;
    }
};

// Checks a copy in an exact-size heap block so that ASan flags any read past the end.
Elf_status check(const std::vector<u8> &v, Elf_info &info, size_t size = SIZE_MAX)
{
    size_t n = size == SIZE_MAX ? v.size() : size;
    auto buf = std::make_unique<u8[]>(n ? n : 1);
    memcpy(buf.get(), v.data(), n < v.size() ? n : v.size());
    diag_clear();
    return elf_check(buf.get(), n, info);
}

Elf_status check(const std::vector<u8> &v)
{
    Elf_info info;
    return check(v, info);
}

}  // namespace

TEST(Elf, AWellFormedImageIsAcceptedWithItsSegments)
{
    Elf_builder b;
    Elf_info info;
    ASSERT_EQ(check(b.build(), info), Elf_status::OK);
    EXPECT_STREQ(info.reason, "ok");
    EXPECT_TRUE(g_diag_lines.empty());
    EXPECT_EQ(info.entry, 0x401000u);
    ASSERT_EQ(info.count, 2u);
    EXPECT_EQ(info.segment[0].vaddr, 0x401000u);
    EXPECT_EQ(info.segment[0].offset, 0x1000u);
    EXPECT_EQ(info.segment[0].filesz, 0x800u);
    EXPECT_EQ(info.segment[0].memsz, 0x800u);
    EXPECT_EQ(info.segment[0].flags, ELF_PF_R | ELF_PF_X);
    EXPECT_EQ(info.segment[1].vaddr, 0x602000u);
    EXPECT_EQ(info.segment[1].flags, ELF_PF_R | ELF_PF_W);
}

TEST(Elf, AnImageSmallerThanTheHeaderIsNoElf)
{
    Elf_builder b;
    Elf_info info;
    EXPECT_EQ(check(b.build(), info, 63), Elf_status::NO_ELF);
    EXPECT_TRUE(diag_contains("elf: No ELF: image smaller than the ELF header"));
    EXPECT_EQ(check(b.build(), info, 0), Elf_status::NO_ELF);
    EXPECT_EQ(elf_check(nullptr, 4096, info), Elf_status::NO_ELF);
}

TEST(Elf, ABadMagicIsNoElf)
{
    Elf_builder b;
    auto v = b.build();
    v[1] = 'e';
    Elf_info info;
    EXPECT_EQ(check(v, info), Elf_status::NO_ELF);
    EXPECT_STREQ(info.reason, "bad ELF magic");
}

TEST(Elf, A32BitImageIsNoElf)
{
    auto v = Elf_builder().build();
    v[4] = 1;
    EXPECT_EQ(check(v), Elf_status::NO_ELF);
    EXPECT_TRUE(diag_contains("not a 64-bit ELF"));
}

TEST(Elf, ABigEndianImageIsNoElf)
{
    auto v = Elf_builder().build();
    v[5] = 2;
    EXPECT_EQ(check(v), Elf_status::NO_ELF);
    EXPECT_TRUE(diag_contains("not little-endian"));
}

TEST(Elf, ASharedObjectIsNoElf)
{
    auto v = Elf_builder().build();
    v[16] = 3;  // ET_DYN
    EXPECT_EQ(check(v), Elf_status::NO_ELF);
    EXPECT_TRUE(diag_contains("ET_EXEC"));
}

TEST(Elf, AnImageForAnotherMachineIsNoElf)
{
    auto v = Elf_builder().build();
    v[18] = 3;  // EM_386
    EXPECT_EQ(check(v), Elf_status::NO_ELF);
    EXPECT_TRUE(diag_contains("not an x86-64 image"));
}

TEST(Elf, ASegmentWithBssIsBadElf)
{
    Elf_builder b;
    b.ph[1].memsz = 0x2000;
    Elf_info info;
    EXPECT_EQ(check(b.build(), info), Elf_status::BAD_ELF);
    EXPECT_STREQ(info.reason, "PT_LOAD with p_filesz != p_memsz");
    EXPECT_TRUE(diag_contains("elf: Bad ELF: PT_LOAD with p_filesz != p_memsz"));
}

TEST(Elf, ASegmentWhoseVaddrAndOffsetDisagreeModPageIsBadElf)
{
    Elf_builder b;
    b.ph[1].vaddr = 0x602010;
    EXPECT_EQ(check(b.build()), Elf_status::BAD_ELF);
    EXPECT_TRUE(diag_contains("not congruent mod 4096"));
}

TEST(Elf, AnUnalignedButCongruentSegmentIsAccepted)
{
    Elf_builder b;
    b.ph[1].offset = 0x2010;
    b.ph[1].vaddr = 0x602010;
    b.ph[1].filesz = b.ph[1].memsz = 0xff0;
    EXPECT_EQ(check(b.build()), Elf_status::OK);
}

TEST(Elf, AWrongProgramHeaderEntrySizeIsBadElf)
{
    EXPECT_EQ(check(Elf_builder().build(64)), Elf_status::BAD_ELF);
    EXPECT_TRUE(diag_contains("entry size is not 56"));
}

TEST(Elf, AProgramHeaderTableOutsideTheImageIsBadElf)
{
    Elf_builder b;
    EXPECT_EQ(check(b.build(56, 0x2fd0)), Elf_status::BAD_ELF);  // second entry runs past the end
    EXPECT_TRUE(diag_contains("program header table outside the image"));
    EXPECT_EQ(check(b.build(56, ~u64{0} - 10)), Elf_status::BAD_ELF);
    EXPECT_EQ(check(b.build(56, 64, 0xfffe)), Elf_status::BAD_ELF);  // absurd count
    EXPECT_EQ(check(b.build(56, 64, 0xffff)), Elf_status::BAD_ELF);  // PN_XNUM
}

TEST(Elf, ASegmentReachingPastTheImageIsBadElf)
{
    Elf_builder b;
    b.ph[1].filesz = b.ph[1].memsz = 0x1001;
    EXPECT_EQ(check(b.build()), Elf_status::BAD_ELF);
    EXPECT_TRUE(diag_contains("file range outside the image"));
}

TEST(Elf, ASegmentWhoseFileRangeWrapsIsBadElf)
{
    Elf_builder b;
    b.ph[1].offset = 0xffff'ffff'ffff'f000;
    b.ph[1].vaddr = 0x600000;
    b.ph[1].filesz = b.ph[1].memsz = 0x2000;
    EXPECT_EQ(check(b.build()), Elf_status::BAD_ELF);
    EXPECT_TRUE(diag_contains("file range outside the image"));
}

TEST(Elf, ASegmentOutsideUserSpaceIsBadElf)
{
    Elf_builder b;
    b.ph[1].vaddr = 0x7fff'ffff'f000;
    EXPECT_EQ(check(b.build()), Elf_status::BAD_ELF);
    EXPECT_TRUE(diag_contains("outside user space"));

    b.ph[1].vaddr = 0xffff'ffff'ffff'f000;  // kernel half, and vaddr + memsz wraps
    EXPECT_EQ(check(b.build()), Elf_status::BAD_ELF);
    EXPECT_TRUE(diag_contains("outside user space"));
}

TEST(Elf, ASegmentEndingExactlyAtTheUserLimitIsAccepted)
{
    Elf_builder b;
    b.ph[1].vaddr = Elf_info::USER_END - 0x1000;
    EXPECT_EQ(check(b.build()), Elf_status::OK);
}

TEST(Elf, ThirtyTwoLoadSegmentsAreAcceptedButThirtyThreeAreNot)
{
    Elf_builder b;
    b.img.resize(0x4000);
    while (b.ph.size() < 32)
        b.ph.push_back({1, ELF_PF_R, 0x2000, 0x800000 + b.ph.size() * 0x1000, 0x100, 0x100});
    Elf_info info;
    EXPECT_EQ(check(b.build(), info), Elf_status::OK);
    EXPECT_EQ(info.count, 32u);

    b.ph.push_back({1, ELF_PF_R, 0x2000, 0x900000, 0x100, 0x100});
    EXPECT_EQ(check(b.build(), info), Elf_status::BAD_ELF);
    EXPECT_TRUE(diag_contains("more than 32 PT_LOAD segments"));
}

TEST(Elf, OtherProgramHeaderTypesAreIgnoredWhateverTheyHold)
{
    Elf_builder b;
    b.ph.push_back({4, 0, ~u64{0}, ~u64{0}, 5, 7});     // PT_NOTE with nonsense
    b.ph.push_back({0x6474e551, 6, 0, 0, 0, 0x10000});  // PT_GNU_STACK
    Elf_info info;
    EXPECT_EQ(check(b.build(), info), Elf_status::OK);
    EXPECT_EQ(info.count, 2u);
}

TEST(Elf, AnImageWithoutLoadSegmentsIsBadElf)
{
    Elf_builder b;
    b.ph.clear();
    EXPECT_EQ(check(b.build()), Elf_status::BAD_ELF);
    EXPECT_TRUE(diag_contains("no PT_LOAD segment"));
}

TEST(Elf, AnEntryPointOutsideAllSegmentsIsBadElf)
{
    Elf_builder b;
    b.entry = 0x401800;  // one past the end of the text segment
    EXPECT_EQ(check(b.build()), Elf_status::BAD_ELF);
    EXPECT_TRUE(diag_contains("entry point outside"));
    b.entry = 0x4017ff;
    EXPECT_EQ(check(b.build()), Elf_status::OK);
}

TEST(Elf, AnEntryPointInANonExecutableSegmentIsBadElf)
{
    Elf_builder b;
    b.entry = 0x602000;
    EXPECT_EQ(check(b.build()), Elf_status::BAD_ELF);
    EXPECT_TRUE(diag_contains("entry point outside"));
}

TEST(Elf, AZeroSizedSegmentIsAcceptedAndRecorded)
{
    Elf_builder b;
    b.ph.push_back({1, ELF_PF_R, 0x3000, 0x700000, 0, 0});
    Elf_info info;
    EXPECT_EQ(check(b.build(), info), Elf_status::OK);
    EXPECT_EQ(info.count, 3u);
    EXPECT_EQ(info.segment[2].filesz, 0u);
}

TEST(Elf, RandomlyCorruptedImagesAreJudgedWithoutReadingOutOfBounds)
{
    Elf_builder b;
    b.ph.push_back({1, ELF_PF_R, 0x2800, 0x702800, 0x400, 0x400});
    auto good = b.build();
    std::mt19937 rng(4242);
    int ok = 0;
    for (int round = 0; round < 5000; round++) {
        auto v = good;
        for (int k = 1 + static_cast<int>(rng() % 3); k > 0; k--)
            v[rng() % 256] = static_cast<u8>(rng());  // headers live in the first 256 bytes
        size_t size = rng() % 4 ? v.size() : rng() % v.size();
        Elf_info info;
        Elf_status s = check(v, info, size);
        ASSERT_NE(info.reason, nullptr);
        if (s != Elf_status::OK)
            continue;
        ok++;
        for (u32 i = 0; i < info.count; i++) {
            const Elf_segment &seg = info.segment[i];
            ASSERT_LE(seg.offset + seg.filesz, size);
            ASSERT_LE(seg.vaddr + seg.memsz, Elf_info::USER_END);
            ASSERT_EQ(seg.filesz, seg.memsz);
        }
    }
    EXPECT_GT(ok, 0);  // some mutations hit bytes that do not matter
}
