/*
 * ACPI discovery and table parsing with crafted and malformed tables in fake physical memory.
 */
#include <gtest/gtest.h>

#include "acpi_builder.hpp"
#include "diag_capture.hpp"

namespace {

struct AcpiTest : testing::Test
{
    Platform pf;
    Acpi_info info;

    void SetUp() override { diag_clear(); }

    bool parse_with(Bytes const &rsdp, bool scan = false)
    {
        return acpi_parse(pf.reader(), rsdp.data(), rsdp.size(), scan, info);
    }

    /* An XSDT (with RSDP v2) over the given tables. */
    bool parse_tables(std::vector<Bytes> const &tables)
    {
        std::vector<u64> addrs;
        for (auto const &t : tables)
            addrs.push_back(pf.place(t));
        return parse_with(make_rsdp(2, 0, pf.root(true, addrs)));
    }

    std::vector<Madt_cpu> cpus()
    {
        std::vector<Madt_cpu> v;
        Acpi::for_each_cpu(pf.reader(), info, [&](Madt_cpu const &c) { v.push_back(c); });
        return v;
    }
};

Bytes fadt(unsigned rev, size_t len, u32 flags, u16 sci = 9)
{
    Table t("FACP", rev);
    t.u32_(0x7000).u32_(0x7100);   // FIRMWARE_CTRL, DSDT @40
    t.u8_(0).u8_(0).u16_(sci);     // @44..47
    t.zeros(76 - 48).u32_(0x608);  // PM_TMR_BLK @76
    t.zeros(91 - 80).u8_(4);       // PM_TMR_LEN @91
    t.zeros(109 - 92).u16_(Fadt_info::BOOT_8042 | Fadt_info::BOOT_LEGACY_DEVICES).u8_(0);  // @109
    t.u32_(flags);                                                                         // @112
    t.gas(Acpi_gas::IO, 0xcf9, 8, 1).u8_(6);      // RESET_REG @116, RESET_VALUE @128
    t.zeros(140 - 129).u64_(0x7100);              // X_DSDT @140
    t.zeros(208 - 148).gas(Acpi_gas::IO, 0x608);  // X_PM_TMR_BLK @208
    t.zeros(276 - 220);
    Bytes b = t.b;
    b.resize(len);
    Table cut("FACP", rev);
    cut.b = b;
    return cut.build();
}

Bytes hpet(u64 base, unsigned space = Acpi_gas::MEMORY)
{
    Table t("HPET");
    t.u32_(0x8086a201).gas(space, base, 64, 0).u8_(0).u16_(0x80).u8_(0);
    return t.build();
}

Bytes mcfg(std::vector<Mcfg_entry> const &entries, size_t extra = 0)
{
    Table t("MCFG");
    t.zeros(8);
    for (auto const &e : entries)
        t.u64_(e.base).u16_(e.segment).u8_(e.start_bus).u8_(e.end_bus).u32_(0);
    t.zeros(extra);
    return t.build();
}

/* Re-signs a table after a test edited its bytes. */
Bytes resign(Bytes t)
{
    fix_sum(t, 9, t.size());
    return t;
}

}  // namespace

/* ---- RSDP ---- */

TEST_F(AcpiTest, AVersion1RsdpCopyIsAcceptedAndUsesTheRsdt)
{
    Acpi_rsdp r;
    Bytes b = make_rsdp(0, 0x123450, 0, "BOCHS ");
    ASSERT_TRUE(Acpi::find_rsdp(pf.reader(), b.data(), b.size(), false, r));
    EXPECT_TRUE(r.from_loader);
    EXPECT_EQ(r.revision, 0);
    EXPECT_EQ(r.rsdt, 0x123450u);
    EXPECT_EQ(r.xsdt, 0u);
    EXPECT_STREQ(r.oem_id, "BOCHS");
}

TEST_F(AcpiTest, AVersion2RsdpCopyGivesTheXsdt)
{
    Acpi_rsdp r;
    Bytes b = make_rsdp(2, 0x1000, 0x1234567890);
    ASSERT_TRUE(Acpi::find_rsdp(pf.reader(), b.data(), b.size(), false, r));
    EXPECT_EQ(r.revision, 2);
    EXPECT_EQ(r.xsdt, 0x1234567890u);
    EXPECT_EQ(r.rsdt, 0x1000u);
}

TEST_F(AcpiTest, ARsdpCopyWithABadChecksumIsRejected)
{
    Acpi_rsdp r;
    Bytes b = make_rsdp(0, 0x1000);
    b[8]++;
    EXPECT_FALSE(Acpi::find_rsdp(pf.reader(), b.data(), b.size(), false, r));
    EXPECT_TRUE(diag_contains("loader's RSDP copy (20 bytes) is invalid"));
}

TEST_F(AcpiTest, ARsdpWithAWrongSignatureIsRejected)
{
    Acpi_rsdp r;
    Bytes b = make_rsdp(0, 0x1000);
    b[3] = 'X';
    fix_sum(b, 8, 20);
    EXPECT_EQ(Acpi::parse_rsdp(b.data(), b.size(), 0, r), Acpi::RSDP_BAD);
}

TEST_F(AcpiTest, ARsdpCopyShorterThan20BytesIsRejected)
{
    Acpi_rsdp r;
    Bytes b = make_rsdp(0, 0x1000);
    EXPECT_EQ(Acpi::parse_rsdp(b.data(), 19, 0, r), Acpi::RSDP_BAD);
}

TEST_F(AcpiTest, ABadExtendedChecksumFallsBackToTheRsdt)
{
    Acpi_rsdp r;
    Bytes b = make_rsdp(2, 0x2000, 0x3000);
    b[33] = 1;  // reserved byte, covered only by the extended sum
    ASSERT_EQ(Acpi::parse_rsdp(b.data(), b.size(), 0, r), Acpi::RSDP_V2_BAD_CHECKSUM);
    ASSERT_TRUE(Acpi::find_rsdp(pf.reader(), b.data(), b.size(), false, r));
    EXPECT_EQ(r.xsdt, 0u);
    EXPECT_EQ(r.rsdt, 0x2000u);
    EXPECT_TRUE(diag_contains("bad extended checksum, using the RSDT"));
}

TEST_F(AcpiTest, AnAbsurdRsdpLengthFieldFallsBackToTheRsdt)
{
    for (u32 len : {20u, 35u, 0xffffffffu, 37u}) {
        Acpi_rsdp r;
        Bytes b = make_rsdp(2, 0x2000, 0x3000);
        std::memcpy(&b[20], &len, 4);
        fix_sum(b, 8, 20);
        fix_sum(b, 32, 36);
        EXPECT_EQ(Acpi::parse_rsdp(b.data(), b.size(), 0, r), Acpi::RSDP_V2_BAD_LENGTH) << len;
        EXPECT_EQ(r.rsdt, 0x2000u);
        EXPECT_EQ(r.xsdt, 0u);
    }
}

TEST_F(AcpiTest, AVersion2RsdpCopyTruncatedTo20BytesUsesTheRsdt)
{
    Acpi_rsdp r;
    Bytes b = make_rsdp(2, 0x2000, 0x3000);
    ASSERT_TRUE(Acpi::find_rsdp(pf.reader(), b.data(), 20, false, r));
    EXPECT_EQ(r.xsdt, 0u);
    EXPECT_EQ(r.rsdt, 0x2000u);
    EXPECT_TRUE(diag_contains("has a bad length, using the RSDT"));
}

TEST_F(AcpiTest, ARsdpNamingNoRootTableIsRejected)
{
    Acpi_rsdp r;
    Bytes b = make_rsdp(2, 0, 0);
    EXPECT_FALSE(Acpi::find_rsdp(pf.reader(), b.data(), b.size(), false, r));
    EXPECT_TRUE(diag_contains("names no root table"));
}

TEST_F(AcpiTest, TheBiosScanFindsTheRsdpInTheEbda)
{
    pf.mem.put16(0x40e, 0x9fc0);
    pf.mem.put(0x9fc00 + 0x40, make_rsdp(0, 0x123000));
    Acpi_rsdp r;
    ASSERT_TRUE(Acpi::find_rsdp(pf.reader(), nullptr, 0, true, r));
    EXPECT_EQ(r.phys, 0x9fc40u);
    EXPECT_FALSE(r.from_loader);
    EXPECT_EQ(r.rsdt, 0x123000u);
}

TEST_F(AcpiTest, TheBiosScanLooksOnlyAtTheFirstKibOfTheEbda)
{
    pf.mem.put16(0x40e, 0x9000);
    pf.mem.put(0x90000 + 0x400, make_rsdp(0, 0x123000));
    Acpi_rsdp r;
    EXPECT_FALSE(Acpi::find_rsdp(pf.reader(), nullptr, 0, true, r));
}

TEST_F(AcpiTest, TheBiosScanFindsAVersion2RsdpInTheBiosArea)
{
    pf.mem.put(0xf5a30, make_rsdp(2, 0x123000, 0x124000));
    Acpi_rsdp r;
    ASSERT_TRUE(Acpi::find_rsdp(pf.reader(), nullptr, 0, true, r));
    EXPECT_EQ(r.phys, 0xf5a30u);
    EXPECT_EQ(r.xsdt, 0x124000u);
}

TEST_F(AcpiTest, TheBiosScanSkipsBadCandidatesAndTakesTheNextGoodOne)
{
    Bytes bad = make_rsdp(0, 0x1000);
    bad[16] ^= 1;
    pf.mem.put(0xe0000, bad);
    pf.mem.put(0xe0104, make_rsdp(0, 0x2000));  // not on a 16-byte boundary
    pf.mem.put(0xe1000, make_rsdp(0, 0x3000));
    Acpi_rsdp r;
    ASSERT_TRUE(Acpi::find_rsdp(pf.reader(), nullptr, 0, true, r));
    EXPECT_EQ(r.phys, 0xe1000u);
    EXPECT_EQ(r.rsdt, 0x3000u);
    EXPECT_TRUE(diag_contains("RSDP candidate at 0xe0000 has a bad checksum"));
}

TEST_F(AcpiTest, NoBiosScanIsDoneUnderUefi)
{
    pf.mem.put(0xe0000, make_rsdp(0, 0x1000));
    Acpi_rsdp r;
    EXPECT_FALSE(Acpi::find_rsdp(pf.reader(), nullptr, 0, false, r));
    EXPECT_FALSE(acpi_parse(pf.reader(), nullptr, 0, false, info));
    EXPECT_TRUE(diag_contains("ACPI: no RSDP found"));
}

TEST_F(AcpiTest, AnInvalidLoaderCopyFallsBackToTheBiosScan)
{
    pf.mem.put(0xe0010, make_rsdp(0, 0x3000));
    Bytes b = make_rsdp(0, 0x1000);
    b[0] = 'X';
    Acpi_rsdp r;
    ASSERT_TRUE(Acpi::find_rsdp(pf.reader(), b.data(), b.size(), true, r));
    EXPECT_EQ(r.rsdt, 0x3000u);
    EXPECT_TRUE(diag_contains("is invalid"));
}

TEST_F(AcpiTest, TheBiosScanSurvivesMemoryThatIsNotThere)
{
    Fake_phys tiny(0x1000, 0x1000);  // neither the BDA nor the BIOS area exist
    Acpi_rsdp r;
    EXPECT_FALSE(Acpi::find_rsdp(tiny.reader(), nullptr, 0, true, r));
}

/* ---- Root tables and headers ---- */

TEST_F(AcpiTest, TablesFromAnRsdtAreLoggedAndRecorded)
{
    u64 hp = pf.place(hpet(0xfed00000));
    Table s("SSDT", 2, "BOCHS ");
    s.zeros(10);
    u64 ssdt = pf.place(s.build());
    u64 rsdt = pf.root(false, {hp, ssdt});
    ASSERT_TRUE(parse_with(make_rsdp(0, static_cast<u32>(rsdt))));
    EXPECT_TRUE(info.valid);
    EXPECT_FALSE(info.root_is_xsdt);
    EXPECT_EQ(info.root_phys, rsdt);
    ASSERT_EQ(info.num_tables, 3u);
    EXPECT_STREQ(info.tables[0].signature, "RSDT");
    EXPECT_STREQ(info.tables[1].signature, "HPET");
    EXPECT_EQ(info.tables[1].phys, hp);
    EXPECT_EQ(info.tables[1].length, 56u);
    EXPECT_STREQ(info.tables[2].oem_id, "BOCHS");
    char line[128];
    snprintf(line, sizeof line, "ACPI: HPET at %#lx len 0x38 rev 1 OEM TESTOE", hp);
    EXPECT_TRUE(diag_contains(line)) << line;
    EXPECT_TRUE(diag_contains("ACPI: RSDP from the loader rev 0"));
    EXPECT_TRUE(info.hpet.present);
}

TEST_F(AcpiTest, AnXsdtIsPreferredOverTheRsdt)
{
    u64 a = pf.place(hpet(0xfed00000));
    u64 b = pf.place(hpet(0xfed80000));
    u64 rsdt = pf.root(false, {a});
    u64 xsdt = pf.root(true, {b});
    ASSERT_TRUE(parse_with(make_rsdp(2, static_cast<u32>(rsdt), xsdt)));
    EXPECT_TRUE(info.root_is_xsdt);
    EXPECT_EQ(info.hpet.base, 0xfed80000u);
}

TEST_F(AcpiTest, AnXsdtOutsideMemoryFallsBackToTheRsdt)
{
    u64 a = pf.place(hpet(0xfed00000));
    u64 rsdt = pf.root(false, {a});
    ASSERT_TRUE(parse_with(make_rsdp(2, static_cast<u32>(rsdt), 0x80000000)));
    EXPECT_FALSE(info.root_is_xsdt);
    EXPECT_TRUE(info.hpet.present);
    EXPECT_TRUE(diag_contains("table at 0x80000000 is not accessible"));
    EXPECT_TRUE(diag_contains("XSDT unusable, falling back to the RSDT"));
}

TEST_F(AcpiTest, AnXsdtWithABadChecksumFallsBackToTheRsdt)
{
    u64 rsdt = pf.root(false, {});
    u64 xsdt = pf.root(true, {});
    pf.mem.mem[xsdt + 9] ^= 0x55;
    ASSERT_TRUE(parse_with(make_rsdp(2, static_cast<u32>(rsdt), xsdt)));
    EXPECT_EQ(info.root_phys, rsdt);
    EXPECT_TRUE(diag_contains("XSDT at 0x"));
    EXPECT_TRUE(diag_contains("has a bad checksum, skipped"));
}

TEST_F(AcpiTest, ARootTableWithTheWrongSignatureIsRejected)
{
    u64 fake = pf.place(Table("XSDT").build());
    EXPECT_FALSE(parse_with(make_rsdp(0, static_cast<u32>(fake))));
    EXPECT_FALSE(info.valid);
    EXPECT_TRUE(diag_contains("expected RSDT"));
    EXPECT_TRUE(diag_contains("no usable root table"));
}

TEST_F(AcpiTest, NullAndUnreachableRootEntriesAreSkipped)
{
    u64 a = pf.place(hpet(0xfed00000));
    u64 xsdt = pf.root(true, {0, 0xffffffff00000000ull, 0x1ffff0, a});
    ASSERT_TRUE(parse_with(make_rsdp(2, 0, xsdt)));
    EXPECT_TRUE(info.hpet.present);
    EXPECT_TRUE(diag_contains("XSDT entry 0 is null"));
    EXPECT_TRUE(diag_contains("table at 0xffffffff00000000 is not accessible"));
    EXPECT_TRUE(diag_contains("table at 0x1ffff0 is not accessible"));  // header crosses the end
}

TEST_F(AcpiTest, ATableWithABadChecksumIsSkipped)
{
    Bytes t = hpet(0xfed00000);
    t[50] ^= 1;
    ASSERT_TRUE(parse_tables({t}));
    EXPECT_FALSE(info.hpet.present);
    EXPECT_TRUE(diag_contains("HPET at 0x"));
    EXPECT_TRUE(diag_contains("bad checksum, skipped"));
}

TEST_F(AcpiTest, ATableShorterThanItsHeaderIsSkipped)
{
    Bytes t = hpet(0xfed00000);
    u32 len = 35;
    std::memcpy(&t[4], &len, 4);
    ASSERT_TRUE(parse_tables({resign(t)}));
    EXPECT_FALSE(info.hpet.present);
    EXPECT_TRUE(diag_contains("has a bad length 0x23, skipped"));
}

TEST_F(AcpiTest, ATableWithAnAbsurdLengthIsSkippedWithoutMappingIt)
{
    Bytes t = make_madt({lapic(0, 0)});
    u32 len = 0xffffffff;
    std::memcpy(&t[4], &len, 4);
    ASSERT_TRUE(parse_tables({resign(t)}));
    EXPECT_FALSE(info.madt.present);
    EXPECT_TRUE(diag_contains("APIC at 0x100000 has a bad length 0xffffffff"));
}

TEST_F(AcpiTest, AParsedTableLargerThanItsCapIsSkipped)
{
    Bytes t = make_dmar({});
    u32 len = Acpi::MAX_TABLE_LEN + 16;
    std::memcpy(&t[4], &len, 4);
    ASSERT_TRUE(parse_tables({resign(t)}));
    EXPECT_FALSE(info.dmar.present);
    EXPECT_TRUE(diag_contains("is too long"));
}

TEST_F(AcpiTest, ATableRunningPastTheEndOfMemoryIsSkipped)
{
    Bytes t = hpet(0xfed00000);
    u64 at = 0x200000 - 40;  // header fits, the body does not
    pf.mem.put(at, Bytes(t.begin(), t.begin() + 40));
    u64 xsdt = pf.root(true, {at});
    ASSERT_TRUE(parse_with(make_rsdp(2, 0, xsdt)));
    EXPECT_FALSE(info.hpet.present);
    EXPECT_TRUE(diag_contains("HPET at 0x1fffd8 is truncated"));
}

TEST_F(AcpiTest, OfDuplicateTablesTheFirstValidOneWins)
{
    Bytes broken = hpet(0xfec00000);
    broken[44] ^= 0xff;
    u64 bad = pf.place(broken);
    u64 first = pf.place(hpet(0xfed00000));
    u64 second = pf.place(hpet(0xfed80000));
    ASSERT_TRUE(parse_with(make_rsdp(2, 0, pf.root(true, {bad, first, second}))));
    EXPECT_EQ(info.hpet.phys, first);
    EXPECT_EQ(info.hpet.base, 0xfed00000u);
    char line[128];
    snprintf(line, sizeof line, "duplicate HPET at %#lx ignored, using the one at %#lx", second, first);
    EXPECT_TRUE(diag_contains(line)) << line;
}

TEST_F(AcpiTest, ARootTableWithAPartialEntryUsesTheWholeOnes)
{
    u64 a = pf.place(hpet(0xfed00000));
    Table t("RSDT");
    t.u32_(static_cast<u32>(a)).u16_(0x1234);
    u64 rsdt = pf.place(t.build());
    ASSERT_TRUE(parse_with(make_rsdp(0, static_cast<u32>(rsdt))));
    EXPECT_TRUE(info.hpet.present);
    EXPECT_TRUE(diag_contains("partial entry"));
}

TEST_F(AcpiTest, UnprintableSignaturesAreLoggedSafely)
{
    Table t("\x01\xff"
            "AB",
            1, "O\nEM  ");
    u64 a = pf.place(t.build());
    ASSERT_TRUE(parse_with(make_rsdp(2, 0, pf.root(true, {a}))));
    EXPECT_STREQ(info.tables[1].signature, "??AB");
    EXPECT_STREQ(info.tables[1].oem_id, "O?EM");
}

TEST_F(AcpiTest, TheDsdtNamedByTheFadtIsLogged)
{
    Table dt("DSDT", 2);
    dt.zeros(100);
    u64 dsdt = pf.place(dt.build());
    Bytes f = fadt(4, 244, 0);
    u64 d64 = dsdt;
    std::memcpy(&f[40], &dsdt, 4);
    std::memcpy(&f[140], &d64, 8);
    ASSERT_TRUE(parse_tables({resign(f)}));
    EXPECT_EQ(info.fadt.dsdt, dsdt);
    EXPECT_STREQ(info.tables[info.num_tables - 1].signature, "DSDT");
    EXPECT_EQ(info.tables[info.num_tables - 1].length, 136u);
}

/* ---- MADT ---- */

TEST_F(AcpiTest, TheMadtGivesProcessorsIoApicsAndThePicFlag)
{
    ASSERT_TRUE(parse_tables(
        {make_madt({lapic(0, 0), lapic(1, 2), ioapic(4, 0xfec00000, 0), ioapic(5, 0xfec10000, 24)})}));
    Madt_info const &m = info.madt;
    ASSERT_TRUE(m.present);
    EXPECT_EQ(m.lapic_address, 0xfee00000u);
    EXPECT_TRUE(m.legacy_pic());
    EXPECT_EQ(m.walk_len, m.length);
    ASSERT_EQ(m.num_ioapic, 2u);
    EXPECT_EQ(m.ioapic[1].id, 5);
    EXPECT_EQ(m.ioapic[1].address, 0xfec10000u);
    EXPECT_EQ(m.ioapic[1].gsi_base, 24u);
    EXPECT_EQ(m.num_cpus, 2u);
    auto v = cpus();
    ASSERT_EQ(v.size(), 2u);
    EXPECT_EQ(v[1].apic_id, 2u);
    EXPECT_EQ(v[1].acpi_uid, 1u);
    EXPECT_TRUE(v[1].enabled);
    EXPECT_FALSE(v[1].x2apic);
}

TEST_F(AcpiTest, AMadtWithoutThePcAtFlagHasNoLegacyPic)
{
    ASSERT_TRUE(parse_tables({make_madt({lapic(0, 0)}, 0xfee00000, 0)}));
    EXPECT_FALSE(info.madt.legacy_pic());
}

TEST_F(AcpiTest, X2ApicEntriesAreReportedAndDuplicatesOfXapicEntriesOnlyOnce)
{
    ASSERT_TRUE(parse_tables({make_madt({lapic(0, 0), lapic(1, 1), x2apic(1, 1, 1), x2apic(0x100, 1, 7),
                                         x2apic(0x100, 1, 8), x2apic(3, 1, 3)})}));
    auto v = cpus();
    ASSERT_EQ(v.size(), 4u);
    EXPECT_EQ(info.madt.num_cpus, 4u);
    EXPECT_EQ(v[2].apic_id, 0x100u);
    EXPECT_EQ(v[2].acpi_uid, 7u);
    EXPECT_TRUE(v[2].x2apic);
    EXPECT_EQ(v[3].apic_id, 3u);
    EXPECT_TRUE(diag_contains("x2APIC entry for APIC id 0x1 is listed twice"));
    EXPECT_TRUE(diag_contains("x2APIC entry for APIC id 0x100 is listed twice"));
}

TEST_F(AcpiTest, RepeatedAndInvalidXapicIdsAreSkipped)
{
    ASSERT_TRUE(parse_tables({make_madt({lapic(0, 0), lapic(1, 0), lapic(2, 0xff), x2apic(~0u, 1, 9)})}));
    EXPECT_EQ(info.madt.num_cpus, 1u);
    EXPECT_TRUE(diag_contains("xAPIC entry for APIC id 0 is listed twice"));
    EXPECT_TRUE(diag_contains("xAPIC entry for APIC id 0xff is invalid"));
    EXPECT_TRUE(diag_contains("x2APIC entry for APIC id 0xffffffff is invalid"));
}

TEST_F(AcpiTest, DisabledProcessorsAreLeftOutButOnlineCapableOnesAreListed)
{
    ASSERT_TRUE(parse_tables(
        {make_madt({lapic(0, 0, 1), lapic(1, 1, 0), lapic(2, 2, 2), x2apic(0x200, 0, 3), x2apic(1, 1, 4)})}));
    auto v = cpus();
    ASSERT_EQ(v.size(), 3u);
    EXPECT_EQ(info.madt.num_cpus_enabled, 2u);
    EXPECT_EQ(v[1].apic_id, 2u);
    EXPECT_FALSE(v[1].enabled);
    EXPECT_TRUE(v[1].online_capable);
    // The disabled xAPIC entry for id 1 does not hide the enabled x2APIC one.
    EXPECT_EQ(v[2].apic_id, 1u);
    EXPECT_TRUE(v[2].x2apic);
}

TEST_F(AcpiTest, ALocalApicAddressOverrideReplacesTheHeaderAddress)
{
    ASSERT_TRUE(
        parse_tables({make_madt({lapic_addr(0x1fee00000ull), lapic_addr(0x2fee00000ull), lapic_addr(0)})}));
    EXPECT_EQ(info.madt.lapic_address, 0x1fee00000ull);
    EXPECT_TRUE(diag_contains("override 0x2fee00000 is not the first"));
    EXPECT_TRUE(diag_contains("override 0 is 0"));
}

TEST_F(AcpiTest, AMadtEntryOfLengthZeroStopsTheWalk)
{
    Bytes bad = {0, 0, 0, 0, 0, 0, 0, 0};
    ASSERT_TRUE(parse_tables({make_madt({lapic(0, 0), bad, lapic(1, 1)})}));
    EXPECT_EQ(info.madt.walk_len, 44u + 8);
    EXPECT_EQ(cpus().size(), 1u);
    EXPECT_TRUE(diag_contains("entry type 0 at offset 0x34 has bad length 0, walk stopped"));
}

TEST_F(AcpiTest, AMadtEntryOfLengthOneStopsTheWalk)
{
    Bytes bad = {0x7f, 1};
    ASSERT_TRUE(parse_tables({make_madt({ioapic(1, 0xfec00000, 0), bad, ioapic(2, 0xfec01000, 24)})}));
    EXPECT_EQ(info.madt.num_ioapic, 1u);
    EXPECT_TRUE(diag_contains("entry type 127 at offset 0x38 has bad length 1"));
}

TEST_F(AcpiTest, AMadtEntryShorterThanItsTypeStopsTheWalk)
{
    Bytes shortx2 = {9, 12, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0};
    ASSERT_TRUE(parse_tables({make_madt({lapic(0, 0), shortx2, lapic(1, 1)})}));
    EXPECT_EQ(info.madt.num_cpus, 1u);
    EXPECT_TRUE(diag_contains("entry type 9 at offset 0x34 has bad length 12"));
}

TEST_F(AcpiTest, AMadtEntryRunningPastTheTableEndStopsTheWalk)
{
    Bytes tail = {1, 12, 7, 0, 0, 0, 0xc0};  // an I/O APIC entry cut short by the table end
    ASSERT_TRUE(parse_tables({make_madt({lapic(0, 0), tail})}));
    EXPECT_EQ(info.madt.num_ioapic, 0u);
    EXPECT_EQ(info.madt.num_cpus, 1u);
    EXPECT_TRUE(diag_contains("runs past the table end"));
}

TEST_F(AcpiTest, AStrayByteAtTheMadtEndIsReported)
{
    ASSERT_TRUE(parse_tables({make_madt({lapic(0, 0), {0}})}));
    EXPECT_EQ(info.madt.num_cpus, 1u);
    EXPECT_TRUE(diag_contains("stray byte"));
}

TEST_F(AcpiTest, UnknownMadtEntriesAreSkippedByTheirLength)
{
    Bytes gicc = {0x0b, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18};
    ASSERT_TRUE(parse_tables({make_madt({gicc, lapic(0, 3)})}));
    EXPECT_EQ(info.madt.walk_len, info.madt.length);
    auto v = cpus();
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].apic_id, 3u);
}

TEST_F(AcpiTest, AnEntryLongerThanItsTypeHidesWhatLooksLikeTheNextEntry)
{
    // A 20-byte local APIC entry whose tail looks like an I/O APIC entry: the walk steps over it.
    Bytes e = lapic(0, 0);
    e[1] = 20;
    Bytes inner = ioapic(9, 0xfec00000, 0);
    e.insert(e.end(), inner.begin(), inner.end());
    ASSERT_TRUE(parse_tables({make_madt({e, lapic(1, 1)})}));
    EXPECT_EQ(info.madt.num_ioapic, 0u);
    EXPECT_EQ(info.madt.num_cpus, 2u);
}

TEST_F(AcpiTest, AMadtTooShortForItsFixedFieldsIsSkipped)
{
    Table t("APIC");
    t.u32_(0xfee00000);
    ASSERT_TRUE(parse_tables({t.build()}));
    EXPECT_FALSE(info.madt.present);
    EXPECT_TRUE(diag_contains("MADT at 0x100000 is too short (40 bytes)"));
}

TEST_F(AcpiTest, OverridesAndNmiEntriesAreRecorded)
{
    ASSERT_TRUE(
        parse_tables({make_madt({iso(0, 2, 0), iso(9, 9, 0xd), nmi_source(0xf, 40), lapic_nmi(0xff, 0x5, 1),
                                 x2apic_nmi(0, 0xffffffff, 1), lapic_nmi(3, 0, 2)})}));
    Madt_info const &m = info.madt;
    ASSERT_EQ(m.num_override, 2u);
    EXPECT_EQ(m.overrides[1].source, 9);
    EXPECT_EQ(m.overrides[1].gsi, 9u);
    EXPECT_EQ(m.overrides[1].flags, 0xd);
    ASSERT_EQ(m.num_nmi_source, 1u);
    EXPECT_EQ(m.nmi_source[0].gsi, 40u);
    ASSERT_EQ(m.num_lapic_nmi, 2u);
    EXPECT_TRUE(m.lapic_nmi[0].all());
    EXPECT_EQ(m.lapic_nmi[0].lint, 1);
    EXPECT_EQ(m.lapic_nmi[0].flags, 5);
    EXPECT_TRUE(m.lapic_nmi[1].x2apic);
    EXPECT_TRUE(m.lapic_nmi[1].all());
    EXPECT_TRUE(diag_contains("local APIC NMI on LINT2, skipped"));
}

TEST_F(AcpiTest, NonIsaAndRepeatedOverridesAreIgnored)
{
    ASSERT_TRUE(parse_tables(
        {make_madt({iso(5, 20, 0, 1), iso(16, 16, 0), iso(4, 30, 0), iso(4, 31, 0), iso(3, 3, 0xa)})}));
    Madt_info const &m = info.madt;
    ASSERT_EQ(m.num_override, 2u);
    EXPECT_EQ(m.overrides[0].gsi, 30u);
    EXPECT_EQ(m.overrides[1].flags, 0u);  // reserved encodings became "conforming"
    EXPECT_TRUE(diag_contains("override of bus 1 IRQ 5 is not ISA"));
    EXPECT_TRUE(diag_contains("override of bus 0 IRQ 16 is not ISA"));
    EXPECT_TRUE(diag_contains("IRQ 4 overridden twice, GSI 31 ignored"));
    EXPECT_TRUE(diag_contains("reserved flags 0xa"));
}

TEST_F(AcpiTest, IoApicsBeyondTheArrayAreReportedOnce)
{
    std::vector<Bytes> e;
    for (unsigned i = 0; i < 20; i++)
        e.push_back(ioapic(i, 0xfec00000 + i * 0x1000, i * 24));
    e.push_back(ioapic(30, 0, 0));
    e.push_back(ioapic(3, 0xfed00000, 0));
    ASSERT_TRUE(parse_tables({make_madt(e)}));
    EXPECT_EQ(info.madt.num_ioapic, Madt_info::MAX_IOAPIC);
    EXPECT_TRUE(diag_contains("4 I/O APICs beyond 16 ignored"));
    EXPECT_TRUE(diag_contains("I/O APIC 30 has address 0"));
    EXPECT_TRUE(diag_contains("I/O APIC 3 at 0xfed00000 is listed twice"));
}

TEST_F(AcpiTest, TheKernelCanCountThenStoreManyProcessors)
{
    std::vector<Bytes> e;
    for (u32 i = 0; i < 300; i++)
        e.push_back(i < 255 ? lapic(i, i) : x2apic(i, 1, i));
    ASSERT_TRUE(parse_tables({make_madt(e)}));
    EXPECT_EQ(info.madt.num_cpus, 300u);
    u32 n = Acpi::for_each_cpu(pf.reader(), info, nullptr, nullptr);
    EXPECT_EQ(n, 300u);
    std::vector<u32> ids(n);
    u32 k = 0;
    Acpi::for_each_cpu(pf.reader(), info, [&](Madt_cpu const &c) { ids.at(k++) = c.apic_id; });
    EXPECT_EQ(ids[0], 0u);
    EXPECT_EQ(ids[299], 299u);
}

TEST_F(AcpiTest, TheCpuWalkOnlyCoversTheValidatedPrefixAndIsQuiet)
{
    Bytes bad = {0, 0};
    ASSERT_TRUE(parse_tables({make_madt({lapic(0, 0), lapic(1, 0), bad, lapic(2, 2)})}));
    diag_clear();
    EXPECT_EQ(cpus().size(), 1u);
    EXPECT_TRUE(g_diag_lines.empty());
}

TEST_F(AcpiTest, TheCpuWalkRefusesAMadtThatChangedSinceBoot)
{
    ASSERT_TRUE(parse_tables({make_madt({lapic(0, 0)})}));
    pf.mem.mem[info.madt.phys + 40] ^= 1;
    EXPECT_EQ(cpus().size(), 0u);
    EXPECT_TRUE(diag_contains("changed since boot"));
}

/* ---- GSI routing (ABI 11.1) ---- */

TEST_F(AcpiTest, GsisWithoutOverridesFollowTheAbiDefaults)
{
    ASSERT_TRUE(parse_tables({make_madt({lapic(0, 0)})}));
    Irq_mode m = info.gsi_mode(4);
    EXPECT_EQ(m.trigger, Irq_mode::EDGE);
    EXPECT_EQ(m.polarity, Irq_mode::HIGH);
    m = info.gsi_mode(16);
    EXPECT_EQ(m.trigger, Irq_mode::LEVEL);
    EXPECT_EQ(m.polarity, Irq_mode::LOW);
    EXPECT_EQ(info.isa_to_gsi(4), 4u);
    EXPECT_EQ(info.sci_gsi(), ~0u);  // no FADT
}

TEST_F(AcpiTest, AnOverrideMovesAnIsaIrqAndSetsItsMode)
{
    ASSERT_TRUE(parse_tables({make_madt({iso(0, 2, 0), iso(11, 20, 0x5)})}));
    EXPECT_EQ(info.isa_to_gsi(0), 2u);
    EXPECT_EQ(info.isa_to_gsi(11), 20u);
    EXPECT_EQ(info.isa_to_gsi(1), 1u);
    Irq_mode m = info.gsi_mode(20);  // active high, edge, though >= 16
    EXPECT_EQ(m.trigger, Irq_mode::EDGE);
    EXPECT_EQ(m.polarity, Irq_mode::HIGH);
    m = info.gsi_mode(2);  // conforming ISA: edge/high
    EXPECT_EQ(m.trigger, Irq_mode::EDGE);
    EXPECT_EQ(m.polarity, Irq_mode::HIGH);
}

TEST_F(AcpiTest, AnExplicitLevelLowOverrideOfAnIsaIrqApplies)
{
    ASSERT_TRUE(parse_tables({make_madt({iso(10, 10, 0xf)})}));
    Irq_mode m = info.gsi_mode(10);
    EXPECT_EQ(m.trigger, Irq_mode::LEVEL);
    EXPECT_EQ(m.polarity, Irq_mode::LOW);
}

TEST_F(AcpiTest, AConformingOverrideOfTheSciIsLevelLow)
{
    ASSERT_TRUE(parse_tables({make_madt({iso(9, 21, 0)}), fadt(4, 244, 0, 9)}));
    EXPECT_EQ(info.sci_gsi(), 21u);
    Irq_mode m = info.gsi_mode(21);
    EXPECT_EQ(m.trigger, Irq_mode::LEVEL);
    EXPECT_EQ(m.polarity, Irq_mode::LOW);
}

TEST_F(AcpiTest, AnSciAbove15IsAlreadyAGsi)
{
    ASSERT_TRUE(parse_tables({make_madt({iso(9, 21, 0)}), fadt(4, 244, 0, 40)}));
    EXPECT_EQ(info.sci_gsi(), 40u);
    EXPECT_EQ(info.gsi_mode(21).trigger, Irq_mode::EDGE);  // IRQ 9 is not the SCI here
}

/* ---- FADT ---- */

TEST_F(AcpiTest, AnAcpi10FadtReadsOnlyTheFieldsItHas)
{
    u32 flags = Fadt_info::FLAG_TMR_VAL_EXT | Fadt_info::FLAG_RESET_REG_SUP;
    ASSERT_TRUE(parse_tables({fadt(1, 116, flags)}));
    Fadt_info const &f = info.fadt;
    ASSERT_TRUE(f.present);
    EXPECT_EQ(f.sci_int, 9);
    EXPECT_TRUE(f.pm_timer_present);
    EXPECT_EQ(f.pm_timer.space, Acpi_gas::IO);
    EXPECT_EQ(f.pm_timer.address, 0x608u);
    EXPECT_TRUE(f.pm_timer_32bit);
    EXPECT_FALSE(f.reset_valid);
    EXPECT_TRUE(diag_contains("claims a reset register but is too short"));
    EXPECT_FALSE(f.boot_arch_valid);
    EXPECT_TRUE(f.has_8042());
    EXPECT_TRUE(f.legacy_devices());
    EXPECT_EQ(f.dsdt, 0x7100u);
}

TEST_F(AcpiTest, AnAcpi2FadtGivesResetRegisterBootFlagsAndExtendedAddresses)
{
    ASSERT_TRUE(parse_tables({fadt(4, 244, Fadt_info::FLAG_RESET_REG_SUP)}));
    Fadt_info const &f = info.fadt;
    ASSERT_TRUE(f.reset_valid);
    EXPECT_EQ(f.reset_reg.space, Acpi_gas::IO);
    EXPECT_EQ(f.reset_reg.address, 0xcf9u);
    EXPECT_EQ(f.reset_value, 6);
    ASSERT_TRUE(f.boot_arch_valid);
    EXPECT_TRUE(f.has_8042());
    EXPECT_FALSE(f.vga_not_present());
    EXPECT_FALSE(f.pm_timer_32bit);
    EXPECT_EQ(f.pm_timer.address, 0x608u);
    EXPECT_EQ(f.dsdt, 0x7100u);
    EXPECT_EQ(f.revision, 4);
}

TEST_F(AcpiTest, FadtsOfEveryRevisionLengthParse)
{
    for (size_t len : {116u, 129u, 132u, 148u, 244u, 268u, 276u}) {
        Platform p;
        Bytes f = fadt(len > 116 ? 3 : 1, len, Fadt_info::FLAG_RESET_REG_SUP);
        u64 a = p.place(f);
        Bytes r = make_rsdp(2, 0, p.root(true, {a}));
        ASSERT_TRUE(acpi_parse(p.reader(), r.data(), r.size(), false, info)) << len;
        EXPECT_TRUE(info.fadt.present) << len;
        EXPECT_EQ(info.fadt.reset_valid, len >= 129) << len;
        EXPECT_EQ(info.fadt.length, len);
    }
}

TEST_F(AcpiTest, AShortFadtStillGivesTheSci)
{
    ASSERT_TRUE(parse_tables({fadt(1, 60, 0, 11)}));
    EXPECT_TRUE(info.fadt.present);
    EXPECT_EQ(info.fadt.sci_int, 11);
    EXPECT_FALSE(info.fadt.pm_timer_present);
    EXPECT_EQ(info.fadt.flags, 0u);
    EXPECT_TRUE(diag_contains("shorter than ACPI 1.0's (60 bytes)"));
}

TEST_F(AcpiTest, AFadtWithoutRoomForTheSciIsSkipped)
{
    ASSERT_TRUE(parse_tables({fadt(1, 46, 0)}));
    EXPECT_FALSE(info.fadt.present);
    EXPECT_TRUE(diag_contains("FADT at 0x100000 is too short (46 bytes)"));
}

TEST_F(AcpiTest, AnUnusableExtendedPmTimerFallsBackToThePort)
{
    Bytes f = fadt(3, 244, 0);
    u64 bad = 0x12345;  // an I/O port above 64 KiB
    std::memcpy(&f[212], &bad, 8);
    ASSERT_TRUE(parse_tables({resign(f)}));
    EXPECT_TRUE(info.fadt.pm_timer_present);
    EXPECT_EQ(info.fadt.pm_timer.address, 0x608u);
    EXPECT_TRUE(diag_contains("X_PM_TMR_BLK 0x12345 in space 1 unusable"));
}

TEST_F(AcpiTest, AMemoryMappedExtendedPmTimerIsUsed)
{
    Bytes f = fadt(5, 268, 0);
    f[208] = Acpi_gas::MEMORY;
    u64 mmio = 0xfed80000;
    std::memcpy(&f[212], &mmio, 8);
    ASSERT_TRUE(parse_tables({resign(f)}));
    EXPECT_EQ(info.fadt.pm_timer.space, Acpi_gas::MEMORY);
    EXPECT_EQ(info.fadt.pm_timer.address, 0xfed80000u);
}

TEST_F(AcpiTest, APmTimerWithAWrongLengthIsIgnored)
{
    Bytes f = fadt(1, 116, 0);
    f[91] = 2;
    ASSERT_TRUE(parse_tables({resign(f)}));
    EXPECT_FALSE(info.fadt.pm_timer_present);
    EXPECT_TRUE(diag_contains("PM timer at port 0x608 with length 2 unusable"));
}

TEST_F(AcpiTest, AResetRegisterInAnUnknownSpaceIsIgnored)
{
    Bytes f = fadt(4, 244, Fadt_info::FLAG_RESET_REG_SUP);
    f[116] = 0x7f;
    ASSERT_TRUE(parse_tables({resign(f)}));
    EXPECT_FALSE(info.fadt.reset_valid);
    EXPECT_TRUE(diag_contains("reset register 0xcf9 in space 127 unusable"));
}

TEST_F(AcpiTest, DifferingDsdtAddressesPreferTheExtendedOne)
{
    Bytes f = fadt(4, 244, 0);
    u64 x = 0x1234567000;
    std::memcpy(&f[140], &x, 8);
    ASSERT_TRUE(parse_tables({resign(f)}));
    EXPECT_EQ(info.fadt.dsdt, x);
    EXPECT_TRUE(diag_contains("DSDT 0x7100 and X_DSDT 0x1234567000 differ"));
}

TEST_F(AcpiTest, TheBootArchitectureFlagsCanSayNo8042AndNoVga)
{
    Bytes f = fadt(3, 244, 0);
    f[109] = Fadt_info::BOOT_VGA_NOT_PRESENT;
    ASSERT_TRUE(parse_tables({resign(f)}));
    EXPECT_FALSE(info.fadt.has_8042());
    EXPECT_FALSE(info.fadt.legacy_devices());
    EXPECT_TRUE(info.fadt.vga_not_present());
}

/* ---- HPET ---- */

TEST_F(AcpiTest, TheHpetTableGivesBaseNumberAndMinimumTick)
{
    ASSERT_TRUE(parse_tables({hpet(0xfed00000)}));
    EXPECT_TRUE(info.hpet.present);
    EXPECT_EQ(info.hpet.base, 0xfed00000u);
    EXPECT_EQ(info.hpet.min_tick, 0x80);
    EXPECT_EQ(info.hpet.number, 0);
    EXPECT_EQ(info.hpet.block_id, 0x8086a201u);
}

TEST_F(AcpiTest, AnHpetOutsideMemorySpaceOrTooShortIsSkipped)
{
    ASSERT_TRUE(parse_tables({hpet(0x400, Acpi_gas::IO)}));
    EXPECT_FALSE(info.hpet.present);
    EXPECT_TRUE(diag_contains("base 0x400 in space 1 unusable"));

    Bytes t = hpet(0xfed00000);
    t.resize(50);
    Hpet_info h{};
    EXPECT_FALSE(Acpi::parse_hpet(Acpi_bytes{t.data(), 50}, 0x5000, h));
    EXPECT_TRUE(diag_contains("HPET at 0x5000 is too short (50 bytes)"));
}

/* ---- MCFG ---- */

TEST_F(AcpiTest, TheFirstSegment0McfgEntryDescribesTheHipRegion)
{
    ASSERT_TRUE(
        parse_tables({mcfg({{0xe0000000, 1, 0, 255}, {0xb0000000, 0, 0, 63}, {0xc0000000, 0, 0, 255}})}));
    Mcfg_info const &m = info.mcfg;
    ASSERT_TRUE(m.has_seg0);
    EXPECT_EQ(m.num_entries, 3u);
    EXPECT_EQ(m.seg0_base, 0xb0000000u);
    EXPECT_EQ(m.seg0_bus_start, 0);
    EXPECT_EQ(m.seg0_bus_end, 63);
    EXPECT_EQ(m.seg0_size, 64u * 256 * 4096);
}

TEST_F(AcpiTest, AnMcfgRangeStartingAboveBus0StartsItsRegionThere)
{
    ASSERT_TRUE(parse_tables({mcfg({{0xe0000000, 0, 0x10, 0x1f}})}));
    EXPECT_EQ(info.mcfg.seg0_base, 0xe0000000u + 0x10 * 0x100000);
    EXPECT_EQ(info.mcfg.seg0_size, 16u << 20);
    EXPECT_EQ(info.mcfg.seg0_bus_start, 0x10);
}

TEST_F(AcpiTest, AnMcfgEntryEndingBelowItsStartIsSkipped)
{
    ASSERT_TRUE(parse_tables({mcfg({{0xe0000000, 0, 8, 7}, {0xf0000000, 0, 0, 0}})}));
    EXPECT_EQ(info.mcfg.num_entries, 1u);
    EXPECT_EQ(info.mcfg.seg0_base, 0xf0000000u);
    EXPECT_EQ(info.mcfg.seg0_size, 1u << 20);
    EXPECT_TRUE(diag_contains("entry 0: end bus 7 below start bus 8"));
}

TEST_F(AcpiTest, McfgEntriesBeyondEightOrWithBadBasesAreDropped)
{
    std::vector<Mcfg_entry> e;
    for (u16 s = 0; s < 10; s++)
        e.push_back({0x80000000ull + s * 0x10000000ull, s, 0, 255});
    e.push_back({0x1234, 11, 0, 0});
    e.push_back({0xffffffffff00000ull, 12, 0, 255});
    ASSERT_TRUE(parse_tables({mcfg(e, 5)}));
    EXPECT_EQ(info.mcfg.num_entries, 8u);
    EXPECT_TRUE(diag_contains("2 entries beyond 8 ignored"));
    EXPECT_TRUE(diag_contains("entry 10: base 0x1234 unusable"));
    EXPECT_TRUE(diag_contains("entry 11: base 0xffffffffff00000 unusable"));
    EXPECT_TRUE(diag_contains("MCFG at 0x100000 has a partial entry"));
}

/* ---- DMAR ---- */

TEST_F(AcpiTest, TheDmarTableGivesUnitsReservedRegionsAndScopes)
{
    Bytes d = make_dmar(
        {drhd(0, 0, 0xfed90000, {dev_scope(1, 0, 0, {{2, 0}})}),
         drhd(1, 0, 0xfed91000, {dev_scope(3, 8, 0xf0, {{0x1f, 0}}), dev_scope(4, 0, 0, {{0x1f, 7}})}),
         rmrr(0, 0x7c000000, 0x7c7fffff, {dev_scope(1, 0, 0, {{0x1e, 0}, {0, 3}})}),
         Writer().u16_(2).u16_(8).u8_(0).u8_(0).u16_(0).b,  // ATSR
         Writer().u16_(3).u16_(20).zeros(16).b},            // RHSA, skipped
        38, 3);
    u64 a = pf.place(d);
    ASSERT_TRUE(parse_with(make_rsdp(2, 0, pf.root(true, {a}))));
    Dmar_info const &m = info.dmar;
    ASSERT_TRUE(m.present);
    EXPECT_EQ(m.phys, a);
    EXPECT_EQ(m.host_address_width, 39);
    EXPECT_TRUE(m.intr_remap());
    EXPECT_TRUE(m.x2apic_opt_out());
    EXPECT_FALSE(m.incomplete);
    ASSERT_EQ(m.num_drhd, 2u);
    EXPECT_FALSE(m.drhd[0].include_pci_all());
    EXPECT_EQ(m.drhd[0].base, 0xfed90000u);
    ASSERT_EQ(m.drhd[0].scopes.count, 1);
    EXPECT_EQ(m.drhd[0].scopes.scope[0].path[0][0], 2);
    EXPECT_TRUE(m.drhd[1].include_pci_all());
    ASSERT_EQ(m.drhd[1].scopes.count, 2);
    EXPECT_EQ(m.drhd[1].scopes.scope[0].type, Dmar_scope::IOAPIC);
    EXPECT_EQ(m.drhd[1].scopes.scope[0].enum_id, 8);
    EXPECT_EQ(m.drhd[1].scopes.scope[0].start_bus, 0xf0);
    EXPECT_EQ(m.drhd[1].scopes.scope[1].path[0][1], 7);
    ASSERT_EQ(m.num_rmrr, 1u);
    EXPECT_EQ(m.rmrr[0].base, 0x7c000000u);
    EXPECT_EQ(m.rmrr[0].limit, 0x7c7fffffu);
    ASSERT_EQ(m.rmrr[0].scopes.count, 1);
    EXPECT_EQ(m.rmrr[0].scopes.scope[0].path_len, 2);
    EXPECT_EQ(m.rmrr[0].scopes.scope[0].path[1][1], 3);
    EXPECT_EQ(m.num_atsr, 1u);
}

TEST_F(AcpiTest, ADmarScopeOverrunningItsStructureMarksTheScopesIncomplete)
{
    Bytes u = drhd(0, 0, 0xfed90000, {dev_scope(1, 0, 0, {{2, 0}}), dev_scope(1, 0, 0, {{3, 0}})});
    u[16 + 8 + 1] = 10;  // second scope claims 10 bytes, 8 remain
    ASSERT_TRUE(parse_tables({make_dmar({u, drhd(1, 0, 0xfed91000, {})})}));
    Dmar_info const &m = info.dmar;
    ASSERT_EQ(m.num_drhd, 2u);
    EXPECT_EQ(m.drhd[0].scopes.count, 1);
    EXPECT_TRUE(m.drhd[0].scopes.incomplete);
    EXPECT_FALSE(m.drhd[1].scopes.incomplete);
    EXPECT_TRUE(diag_contains("device scope at offset 0x48 has bad length 10 (structure ends at 0x50)"));
}

TEST_F(AcpiTest, MalformedDmarScopesAreRejected)
{
    Bytes odd = {1, 7, 0, 0, 0, 0, 2};
    Bytes tiny = {1, 4, 0, 0};
    Bytes empty = {1, 6, 0, 0, 0, 0};
    Bytes deep = dev_scope(2, 0, 0, {{1, 0}, {2, 0}, {3, 0}, {4, 0}, {5, 0}});
    ASSERT_TRUE(parse_tables({make_dmar({drhd(0, 0, 0x10000, {odd}), drhd(0, 0, 0x11000, {tiny}),
                                         drhd(0, 0, 0x12000, {empty}), drhd(0, 0, 0x13000, {deep})})}));
    Dmar_info const &m = info.dmar;
    ASSERT_EQ(m.num_drhd, 4u);
    for (unsigned i = 0; i < 4; i++) {
        EXPECT_EQ(m.drhd[i].scopes.count, 0) << i;
        EXPECT_TRUE(m.drhd[i].scopes.incomplete) << i;
    }
    EXPECT_TRUE(diag_contains("has bad length 7"));
    EXPECT_TRUE(diag_contains("has bad length 4"));
    EXPECT_TRUE(diag_contains("has an empty path"));
    EXPECT_TRUE(diag_contains("does not fit"));
}

TEST_F(AcpiTest, TooManyDmarScopesMarkTheListIncomplete)
{
    std::vector<Bytes> s;
    for (int i = 0; i < 20; i++)
        s.push_back(dev_scope(1, 0, 0, {{i, 0}}));
    ASSERT_TRUE(parse_tables({make_dmar({drhd(0, 0, 0xfed90000, s)})}));
    EXPECT_EQ(info.dmar.drhd[0].scopes.count, Dmar_scopes::MAX_SCOPES);
    EXPECT_TRUE(info.dmar.drhd[0].scopes.incomplete);
}

TEST_F(AcpiTest, ADmarStructureRunningPastTheTableStopsTheWalk)
{
    Bytes r = rmrr(0, 0x1000, 0x1fff, {});
    r[2] = 200;
    ASSERT_TRUE(parse_tables({make_dmar({drhd(1, 0, 0xfed90000, {}), r})}));
    EXPECT_EQ(info.dmar.num_drhd, 1u);
    EXPECT_EQ(info.dmar.num_rmrr, 0u);
    EXPECT_TRUE(info.dmar.incomplete);
    EXPECT_TRUE(diag_contains("structure type 1 at offset 0x40 has bad length 200, walk stopped"));
}

TEST_F(AcpiTest, ADmarStructureShorterThanItsTypeStopsTheWalk)
{
    Bytes u = Writer().u16_(0).u16_(8).zeros(4).b;
    ASSERT_TRUE(parse_tables({make_dmar({u, drhd(1, 0, 0xfed90000, {})})}));
    EXPECT_EQ(info.dmar.num_drhd, 0u);
    EXPECT_TRUE(info.dmar.incomplete);
    EXPECT_TRUE(diag_contains("structure type 0 at offset 0x30 has bad length 8"));
}

TEST_F(AcpiTest, MalformedRmrrAndDrhdAddressesAreSkipped)
{
    ASSERT_TRUE(parse_tables({make_dmar({drhd(1, 0, 0xfed90800, {}), drhd(0, 0, 0, {}),
                                         rmrr(0, 0x2000, 0x1fff, {}), rmrr(0, 0x1800, 0x1fff, {}),
                                         rmrr(0, 0x1000, 0x1ffe, {}), rmrr(0, 0x1000, 0x1fff, {})})}));
    EXPECT_EQ(info.dmar.num_drhd, 0u);
    EXPECT_EQ(info.dmar.num_rmrr, 1u);
    EXPECT_TRUE(diag_contains("register base 0xfed90800, skipped"));
    EXPECT_TRUE(diag_contains("RMRR 0x2000-0x1fff is malformed"));
    EXPECT_TRUE(diag_contains("RMRR 0x1000-0x1ffe is malformed"));
}

TEST_F(AcpiTest, ADmarTooShortForItsHeaderIsSkipped)
{
    Table t("DMAR");
    t.u8_(38).u8_(0);
    ASSERT_TRUE(parse_tables({t.build()}));
    EXPECT_FALSE(info.dmar.present);
    EXPECT_TRUE(diag_contains("DMAR at 0x100000 is too short (38 bytes)"));
}

/* ---- A whole machine ---- */

TEST_F(AcpiTest, AWholeMachineFoundByTheBiosScanParsesEverything)
{
    u64 madt = pf.place(make_madt({lapic(0, 0), lapic(1, 1), ioapic(0, 0xfec00000, 0), iso(0, 2, 0),
                                   iso(9, 9, 0xd), lapic_nmi(0xff, 0, 1)}));
    u64 f = pf.place(fadt(3, 244, Fadt_info::FLAG_RESET_REG_SUP));
    u64 h = pf.place(hpet(0xfed00000));
    u64 m = pf.place(mcfg({{0xb0000000, 0, 0, 255}}));
    u64 d = pf.place(make_dmar({drhd(1, 0, 0xfed90000, {})}));
    u64 rsdt = pf.root(false, {madt, f, h, m, d});
    u64 xsdt = pf.root(true, {madt, f, h, m, d});
    pf.mem.put(0xf0000, make_rsdp(2, static_cast<u32>(rsdt), xsdt));

    ASSERT_TRUE(acpi_parse(pf.reader(), nullptr, 0, true, info));
    EXPECT_TRUE(info.root_is_xsdt);
    EXPECT_EQ(info.rsdp.phys, 0xf0000u);
    EXPECT_EQ(info.madt.num_cpus, 2u);
    EXPECT_EQ(info.sci_gsi(), 9u);
    EXPECT_EQ(info.gsi_mode(9).trigger, Irq_mode::LEVEL);
    EXPECT_EQ(info.gsi_mode(9).polarity, Irq_mode::HIGH);
    EXPECT_EQ(info.isa_to_gsi(0), 2u);
    EXPECT_TRUE(info.fadt.reset_valid);
    EXPECT_EQ(info.hpet.base, 0xfed00000u);
    EXPECT_EQ(info.mcfg.seg0_size, 256u << 20);
    EXPECT_EQ(info.dmar.phys, d);
    EXPECT_EQ(info.num_tables, 6u);
    EXPECT_EQ(cpus().size(), 2u);
}
