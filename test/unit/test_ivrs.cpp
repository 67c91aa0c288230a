/*
 * ACPI IVRS (src/acpi_ivrs.cpp): IVHD types 10h/11h/40h with select, range, all, alias and special
 * entries, IVMD unity maps, and malformed tables: every one is reported and marks the result
 * incomplete or is skipped, never read past its end.
 */
#include <gtest/gtest.h>

#include "acpi.hpp"
#include "acpi_builder.hpp"
#include "diag_capture.hpp"

namespace {

Bytes ivrs(std::vector<Bytes> const &blocks, u32 info = 0x00203040)
{
    Table t("IVRS", 2);
    t.u32_(info).zeros(8);
    for (auto const &b : blocks)
        t.bytes(b);
    return t.build();
}

/* An IVHD: type 10h has a 24-byte header, 11h and 40h a 40-byte one. */
Bytes ivhd(unsigned type, u64 base, u16 devid, Bytes const &entries, u16 segment = 0)
{
    unsigned header = type == 0x10 ? 24 : 40;
    Writer w;
    w.u8_(type)
        .u8_(0xb0)
        .u16_(static_cast<unsigned>(header + entries.size()))
        .u16_(devid)
        .u16_(0x40)
        .u64_(base);
    w.u16_(segment).u16_(0x1234);
    if (type == 0x10)
        w.u32_(0x80048f6e);
    else
        w.u32_(0).u64_(0x0000'0000'00a0'0022ull).u64_(0);
    w.bytes(entries);
    return w.b;
}

Bytes e4(unsigned type, u16 devid) { return Writer().u8_(type).u16_(devid).u8_(0).b; }
Bytes e8(unsigned type, u16 devid, u8 b4, u16 w5, u8 b7)
{
    return Writer().u8_(type).u16_(devid).u8_(0).u8_(b4).u16_(w5).u8_(b7).b;
}
Bytes cat(std::initializer_list<Bytes> parts)
{
    Bytes r;
    for (auto const &p : parts)
        r.insert(r.end(), p.begin(), p.end());
    return r;
}
Bytes ivmd(unsigned type, u16 d0, u16 d1, u64 base, u64 len, unsigned flags = 7)
{
    return Writer().u8_(type).u8_(flags).u16_(32).u16_(d0).u16_(d1).zeros(8).u64_(base).u64_(len).b;
}

struct IvrsTest : ::testing::Test
{
    Platform pf;
    Acpi_info info{};

    void SetUp() override { diag_clear(); }

    /* A fresh machine with this one table (an XSDT over it). */
    bool parse_with(Bytes const &table)
    {
        pf = Platform{};
        info = Acpi_info{};
        u64 a = pf.place(table);
        Bytes rsdp = make_rsdp(2, 0, pf.root(true, {a}));
        return acpi_parse(pf.reader(), rsdp.data(), rsdp.size(), false, info);
    }
};

TEST_F(IvrsTest, QemusLayoutGivesOneUnitItsDevicesAndTheIoapic)
{
    // QEMU 7.2: one IVHD 10h, select entries per root-bus device, I/O APIC 0 at 00:14.0.
    Bytes entries = cat({e4(0x02, 0x0000), e4(0x02, 0x0008), e4(0x02, 0x0018), e8(0x48, 0, 0, 0x00a0, 1)});
    ASSERT_TRUE(parse_with(ivrs({ivhd(0x10, 0xfed80000, 0x0018, entries)})));
    Ivrs_info const &v = info.ivrs;
    ASSERT_TRUE(v.present);
    EXPECT_FALSE(v.incomplete);
    EXPECT_EQ(v.iv_info, 0x00203040u);
    ASSERT_EQ(v.num_ivhd, 1u);
    Ivrs_ivhd const &h = v.ivhd[0];
    EXPECT_EQ(h.type, 0x10);
    EXPECT_EQ(h.base, 0xfed80000u);
    EXPECT_EQ(h.devid, 0x18);
    EXPECT_EQ(h.cap_offset, 0x40);
    EXPECT_EQ(h.info, 0x1234);
    EXPECT_EQ(h.features, 0x80048f6eu);
    ASSERT_EQ(h.num_ranges, 3);
    EXPECT_EQ(h.range[2].first, 0x18);
    EXPECT_EQ(h.range[2].last, 0x18);
    ASSERT_EQ(h.num_special, 1);
    EXPECT_EQ(h.special[0].variety, Ivrs_special::IOAPIC);
    EXPECT_EQ(h.special[0].handle, 0);
    EXPECT_EQ(h.special[0].devid, 0xa0);
}

TEST_F(IvrsTest, RangesAliasesAllAndExtendedEntries)
{
    Bytes entries =
        cat({e4(0x03, 0x0100), e4(0x04, 0x01ff), e8(0x43, 0x0200, 0, 0x0010, 0), e4(0x04, 0x02ff),
             e8(0x42, 0x0300, 0, 0x0020, 0), e8(0x46, 0x0400, 0, 0, 0), e4(0x00, 0), e4(0x01, 0)});
    ASSERT_TRUE(parse_with(ivrs({ivhd(0x11, 0xfeb80000, 0x0002, entries)})));
    Ivrs_ivhd const &h = info.ivrs.ivhd[0];
    EXPECT_FALSE(info.ivrs.incomplete);
    EXPECT_EQ(h.type, 0x11);
    EXPECT_EQ(h.efr, 0xa00022u);
    ASSERT_EQ(h.num_ranges, 5);
    EXPECT_EQ(h.range[0].first, 0x100);
    EXPECT_EQ(h.range[0].last, 0x1ff);
    EXPECT_FALSE(h.range[0].aliased);
    EXPECT_TRUE(h.range[1].aliased);
    EXPECT_EQ(h.range[1].alias, 0x10);
    EXPECT_EQ(h.range[1].last, 0x2ff);
    EXPECT_TRUE(h.range[2].aliased);
    EXPECT_EQ(h.range[2].alias, 0x20);
    EXPECT_EQ(h.range[3].first, 0x400);
    EXPECT_EQ(h.range[4].first, 0);
    EXPECT_EQ(h.range[4].last, 0xffff);
}

TEST_F(IvrsTest, UnityMapsAreRecordedAndMalformedOnesSkipped)
{
    ASSERT_TRUE(
        parse_with(ivrs({ivhd(0x40, 0xfed80000, 0x18, {}), ivmd(0x21, 0x18, 0, 0x7c000000, 0x10000),
                         ivmd(0x22, 0x100, 0x1ff, 0x7d000000, 0x1000), ivmd(0x20, 0, 0, 0x7e000000, 0x2000),
                         ivmd(0x21, 0x18, 0, 0x7c000800, 0x1000),       // misaligned
                         ivmd(0x22, 0x200, 0x100, 0x7d000000, 0x1000),  // backwards range
                         ivmd(0x20, 0, 0, 0x7e000000, 0)})));           // empty
    Ivrs_info const &v = info.ivrs;
    ASSERT_EQ(v.num_ivmd, 3u);
    EXPECT_EQ(v.ivmd[0].first, 0x18);
    EXPECT_EQ(v.ivmd[0].last, 0x18);
    EXPECT_EQ(v.ivmd[0].flags, 7);
    EXPECT_EQ(v.ivmd[1].first, 0x100);
    EXPECT_EQ(v.ivmd[1].last, 0x1ff);
    EXPECT_EQ(v.ivmd[2].first, 0);
    EXPECT_EQ(v.ivmd[2].last, 0xffff);
    EXPECT_EQ(v.ivmd[2].length, 0x2000u);
    EXPECT_TRUE(v.incomplete);
    EXPECT_TRUE(diag_contains("IVMD at offset"));
}

TEST_F(IvrsTest, ARangeEndWithoutAStartMarksTheEntriesIncomplete)
{
    ASSERT_TRUE(parse_with(ivrs({ivhd(0x10, 0xfed80000, 0x18, cat({e4(0x02, 1), e4(0x04, 0x20)}))})));
    EXPECT_TRUE(info.ivrs.incomplete);
    EXPECT_TRUE(info.ivrs.ivhd[0].incomplete);
    EXPECT_EQ(info.ivrs.ivhd[0].num_ranges, 1);
    EXPECT_TRUE(diag_contains("without a matching start"));
}

TEST_F(IvrsTest, ARangeWithoutAnEndOrABackwardsOneMarksTheEntriesIncomplete)
{
    ASSERT_TRUE(parse_with(ivrs({ivhd(0x10, 0xfed80000, 0x18, cat({e4(0x03, 0x100), e4(0x02, 0x300)}))})));
    EXPECT_TRUE(info.ivrs.incomplete);
    EXPECT_TRUE(diag_contains("has no end"));
    ASSERT_TRUE(parse_with(ivrs({ivhd(0x10, 0xfed80000, 0x18, cat({e4(0x03, 0x100)}))})));
    EXPECT_TRUE(info.ivrs.incomplete);
    EXPECT_TRUE(diag_contains("ends inside a range"));
    ASSERT_TRUE(parse_with(ivrs({ivhd(0x10, 0xfed80000, 0x18, cat({e4(0x03, 0x100), e4(0x04, 0x0ff)}))})));
    EXPECT_TRUE(info.ivrs.incomplete);
    EXPECT_EQ(info.ivrs.ivhd[0].num_ranges, 0);
}

TEST_F(IvrsTest, AnEntryRunningPastItsBlockStopsTheEntries)
{
    Bytes entries = cat({e4(0x02, 1), e8(0x48, 0, 0, 0xa0, 1)});
    entries.resize(entries.size() - 3);  // the special entry is cut short
    ASSERT_TRUE(parse_with(ivrs({ivhd(0x10, 0xfed80000, 0x18, entries)})));
    EXPECT_TRUE(info.ivrs.incomplete);
    EXPECT_EQ(info.ivrs.ivhd[0].num_ranges, 1);
    EXPECT_EQ(info.ivrs.ivhd[0].num_special, 0);
    EXPECT_TRUE(diag_contains("does not fit"));
    // A variable-length type other than F0h: its size cannot be known.
    ASSERT_TRUE(parse_with(ivrs({ivhd(0x10, 0xfed80000, 0x18, cat({e4(0xc5, 0), e4(0x02, 1)}))})));
    EXPECT_TRUE(info.ivrs.incomplete);
    EXPECT_EQ(info.ivrs.ivhd[0].num_ranges, 0);
    // F0h says its own size: its UID is skipped.
    Bytes hid = Writer().u8_(0xf0).u16_(0x0100).u8_(0).zeros(8).zeros(8).u8_(1).u8_(3).str("abc", 3).b;
    ASSERT_TRUE(parse_with(ivrs({ivhd(0x10, 0xfed80000, 0x18, cat({hid, e4(0x02, 7)}))})));
    EXPECT_FALSE(info.ivrs.incomplete);
    ASSERT_EQ(info.ivrs.ivhd[0].num_ranges, 1);
    EXPECT_EQ(info.ivrs.ivhd[0].range[0].first, 7);
}

TEST_F(IvrsTest, BadBlocksAndBasesAreReported)
{
    Bytes bad = ivhd(0x10, 0xfed80000, 0x18, {});
    bad[2] = 200;  // claims more than the table has
    ASSERT_TRUE(parse_with(ivrs({ivhd(0x10, 0xfed80000, 0x18, {}), bad})));
    EXPECT_TRUE(info.ivrs.incomplete);
    EXPECT_EQ(info.ivrs.num_ivhd, 1u);
    EXPECT_TRUE(diag_contains("walk stopped"));
    ASSERT_TRUE(parse_with(ivrs({ivhd(0x11, 0xfed80000, 0x18, {}, 0)})));
    EXPECT_FALSE(info.ivrs.incomplete);
    Bytes short11 = ivhd(0x11, 0xfed80000, 0x18, {});
    short11[2] = 24;  // a type 11h with a 10h-sized header
    ASSERT_TRUE(parse_with(ivrs({short11})));
    EXPECT_EQ(info.ivrs.num_ivhd, 0u);
    EXPECT_TRUE(info.ivrs.incomplete);
    ASSERT_TRUE(parse_with(ivrs({ivhd(0x10, 0xfed81000, 0x18, {}), ivhd(0x10, 0, 0x18, {})})));
    EXPECT_EQ(info.ivrs.num_ivhd, 0u);
    EXPECT_TRUE(diag_contains("has register base 0xfed81000"));
    std::vector<Bytes> many;
    for (unsigned i = 0; i < Ivrs_info::MAX_IVHD + 2; i++)
        many.push_back(ivhd(0x10, 0xfed80000 + 0x4000 * u64{i}, 0x18, {}));
    ASSERT_TRUE(parse_with(ivrs(many)));
    EXPECT_EQ(info.ivrs.num_ivhd, Ivrs_info::MAX_IVHD);
    EXPECT_TRUE(info.ivrs.incomplete);
    EXPECT_TRUE(diag_contains("2 blocks beyond the limits"));
}

TEST_F(IvrsTest, TooManyEntriesMarkTheListIncomplete)
{
    Bytes entries;
    for (unsigned i = 0; i < Ivrs_ivhd::MAX_RANGES + 1; i++)
        entries = cat({entries, e4(0x02, static_cast<u16>(i))});
    for (unsigned i = 0; i < Ivrs_ivhd::MAX_SPECIAL + 1; i++)
        entries = cat({entries, e8(0x48, 0, static_cast<u8>(i), static_cast<u16>(0xa0 + i), 1)});
    ASSERT_TRUE(parse_with(ivrs({ivhd(0x10, 0xfed80000, 0x18, entries)})));
    EXPECT_EQ(info.ivrs.ivhd[0].num_ranges, Ivrs_ivhd::MAX_RANGES);
    EXPECT_EQ(info.ivrs.ivhd[0].num_special, Ivrs_ivhd::MAX_SPECIAL);
    EXPECT_TRUE(info.ivrs.incomplete);
}

TEST_F(IvrsTest, ATableTooShortForItsHeaderIsSkipped)
{
    Table t("IVRS", 2);
    t.u32_(0);
    ASSERT_TRUE(parse_with(t.build()));
    EXPECT_FALSE(info.ivrs.present);
    EXPECT_TRUE(diag_contains("IVRS at"));
    EXPECT_TRUE(diag_contains("is too short"));
}

}  // namespace
