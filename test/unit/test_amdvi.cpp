/*
 * AMD-Vi encodings (include/amdvi.hpp): device table entries, commands, event log entries and
 * the log reader, the extended feature register, the ring base registers.
 */
#include <gtest/gtest.h>

#include <vector>

#include "amdvi.hpp"

namespace {

using namespace Amdvi;

// What QEMU 7.2's amd-iommu reports: EFR 0x29d3 (prefetch, PPR, GT, IA, GA, HE, HATS 2, GATS 2),
// capability header 0x1f03000f (EFR supported, NpCache, IOTLB, HT tunnel).
constexpr Efr QEMU_EFR{0x29d3};
constexpr u32 QEMU_CAP_HDR = 0x1f03000f;

TEST(Amdvi, QemusFeaturesDecode)
{
    EXPECT_TRUE(QEMU_EFR.ia());
    EXPECT_EQ(QEMU_EFR.max_levels(), 6u);
    EXPECT_EQ(Efr{0}.max_levels(), 4u);  // without EFR: the baseline, four levels
    EXPECT_FALSE(Efr{0}.ia());
    EXPECT_TRUE(QEMU_CAP_HDR & Cap_hdr::EFR_SUP);
    EXPECT_TRUE(QEMU_CAP_HDR & Cap_hdr::NP_CACHE);
}

TEST(Amdvi, RingAndTableBaseRegisters)
{
    EXPECT_EQ(ring_base(0xff22000, CMD_LEN), 0x080000000ff22000ull);
    EXPECT_EQ(ring_base(0xff24000, EVT_LEN), 0x090000000ff24000ull);
    EXPECT_EQ(dev_table_base(0x1000000), 0x10001ffull);
    // 2^16 entries of 32 bytes = 2 MiB = 512 pages = size field 0x1ff + 1.
    EXPECT_EQ(sizeof(Dte), 32u);
    EXPECT_EQ(u64{DEVICES} * sizeof(Dte), u64{4096} << DEV_TABLE_ORDER);
    EXPECT_EQ((1u << CMD_LEN) * sizeof(Cmd), 4096u);
}

TEST(Amdvi, DeviceTableEntries)
{
    // Blocked: valid, translation valid, mode 4, the empty root, neither read nor write.
    u64 blocked = dte_q0(0x5000, 4, false);
    EXPECT_EQ(blocked, 0x5000ull | 3 | 4u << 9);
    EXPECT_FALSE(blocked & (Dte_bits::IR | Dte_bits::IW));
    EXPECT_FALSE(dte_translates(Dte{{blocked, dte_q1(7), 0, 0}}));
    // Translating: the same plus IR and IW; the domain in the second quadword.
    u64 q0 = dte_q0(0x1234000, 4, true);
    EXPECT_EQ(q0, 0x6000000001234803ull);
    Dte d{{q0, dte_q1(0x42), 0, 0}};
    EXPECT_TRUE(dte_translates(d));
    EXPECT_EQ(dte_domain(d), 0x42);
    // Nothing in the bits QEMU 7.2 checks as reserved (0x80300000000000fc in quadword 0, bit 8 in 1).
    EXPECT_EQ(q0 & 0x80300000000000fcull, 0u);
    EXPECT_EQ(blocked & 0x80300000000000fcull, 0u);
    EXPECT_EQ(dte_q1(0xffff) & 0x100, 0x100u);  // the domain field is 16 bits wide, bit 8 included
    EXPECT_EQ(dte_q1(0x42) & ~u64{0xffff}, 0u);
}

TEST(Amdvi, Commands)
{
    Cmd w = completion_wait(0xff20008, 7);
    EXPECT_EQ(w.lo >> 60, Op::COMPLETION_WAIT);
    EXPECT_EQ(w.lo & 1, 1u);                              // S: store
    EXPECT_EQ(w.lo & 6, 0u);                              // no interrupt, no flush
    EXPECT_EQ(w.lo & 0x000ffffffffffff8ull, 0xff20008u);  // store address bits 51:3
    EXPECT_EQ((w.lo >> 52) & 0xff, 0u);                   // reserved
    EXPECT_EQ(w.hi, 7u);
    EXPECT_EQ(completion_wait(0xff20007, 1).lo & 0x000ffffffffffff8ull, 0xff20000u);  // 8-byte aligned

    Cmd d = inv_devtab_entry(0x0028);
    EXPECT_EQ(d.lo, 0x2000000000000028ull);
    EXPECT_EQ(d.hi, 0u);

    Cmd p = inv_domain(0x1234);
    EXPECT_EQ(p.lo, 0x3000123400000000ull);  // domain ID in bits 47:32, no PASID
    EXPECT_EQ(p.hi, 0x7ffffffffffff003ull);  // every address (S with all address bits set), PDE
    EXPECT_EQ(p.hi & 4, 0u);                 // GN clear: not a guest (PASID) invalidation

    EXPECT_EQ(inv_interrupt_table(0xa0).lo, 0x50000000000000a0ull);
    EXPECT_EQ(inv_all().lo, 0x8000000000000000ull);
    EXPECT_EQ(inv_all().hi, 0u);
}

TEST(Amdvi, EventsDecode)
{
    // IO_PAGE_FAULT from 00:04.0 in domain 2, a write (RW) to a present entry without permission.
    u64 lo = u64{Ev::IO_PAGE_FAULT} << 60 | u64{Ev::WRITE | Ev::PRESENT | Ev::PERMISSION} << 48 |
             u64{2} << 16 | 0x20;
    Event e = event(lo, 0x1250000);
    EXPECT_EQ(e.code, Ev::IO_PAGE_FAULT);
    EXPECT_EQ(e.devid, 0x20);
    EXPECT_EQ(e.domain, 2);
    EXPECT_EQ(e.flags, Ev::WRITE | Ev::PRESENT | Ev::PERMISSION);
    EXPECT_EQ(e.addr, 0x1250000u);
    EXPECT_STREQ(event_name(e.code), "I/O page fault");
    EXPECT_STREQ(event_name(Ev::ILLEGAL_DEV_TABLE_ENTRY), "illegal device table entry");
    EXPECT_STREQ(event_name(0), "other");
    EXPECT_STREQ(event_name(15), "other");
}

TEST(Amdvi, TheLogIsReadUpToTheFirstEmptyEntryAndCleared)
{
    constexpr unsigned N = 4;
    std::vector<u64> log(2 * N, 0);
    auto put = [&](unsigned i, u16 devid, u64 addr) {
        log[2 * i] = u64{Ev::IO_PAGE_FAULT} << 60 | devid;
        log[2 * i + 1] = addr;
    };
    unsigned head = 0;
    std::vector<Event> seen;
    auto collect = [&](const Event &e) { seen.push_back(e); };
    EXPECT_EQ(drain_log(log.data(), N, head, collect), 0u);  // empty
    EXPECT_EQ(head, 0u);

    put(0, 0x20, 0x1000);
    put(1, 0x28, 0x2000);
    EXPECT_EQ(drain_log(log.data(), N, head, collect), 2u);
    EXPECT_EQ(head, 2u);
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen[0].devid, 0x20);
    EXPECT_EQ(seen[1].addr, 0x2000u);
    for (u64 q : log)
        EXPECT_EQ(q, 0u);  // read entries are cleared: the next round stops there

    // Wrapping around the end of the log.
    put(2, 0x30, 0x3000);
    put(3, 0x38, 0x4000);
    put(0, 0x40, 0x5000);
    seen.clear();
    EXPECT_EQ(drain_log(log.data(), N, head, collect), 3u);
    EXPECT_EQ(head, 1u);
    ASSERT_EQ(seen.size(), 3u);
    EXPECT_EQ(seen[2].devid, 0x40);

    // A full log: every entry read once, never more than the log holds.
    for (unsigned i = 0; i < N; i++)
        put(i, static_cast<u16>(i), 0);
    seen.clear();
    EXPECT_EQ(drain_log(log.data(), N, head, collect), N);
    EXPECT_EQ(seen.size(), size_t{N});
    EXPECT_EQ(head, 1u);
}

TEST(Amdvi, InterruptRemappingEntries)
{
    // Remapped: IV, IntTabLen 8 (256 entries), the table (bits 51:6), IntCtl 2.
    EXPECT_EQ(Intr::dte_q2(0xff30000), 0x200000000ff30011ull);
    // No table: IV alone, IntCtl 0: the unit aborts the device's fixed interrupts.
    EXPECT_EQ(Intr::dte_q2(0), 1u);
    // Nothing in the bits QEMU 7.2 checks as reserved in the third quadword.
    EXPECT_EQ(Intr::dte_q2(0xff30000) & 0x08f0000000000000ull, 0u);
    // 32-bit entry: RemapEn, fixed, physical, destination 15:8, vector 23:16.
    EXPECT_EQ(Intr::irte(0x34, 1), 0x340101u);
    EXPECT_EQ(Intr::irte(0x20, 0xff) & 0xff, 1u);
    EXPECT_EQ(Intr::ENTRIES * sizeof(u32), 1024u);
    EXPECT_EQ(inv_interrupt_table(0x20).hi, 0u);
}

TEST(Amdvi, X2apicEntriesAndControlBits)
{
    // EFR: XTSup is bit 2, GASup bit 7. QEMU 7.2 has GASup but no XTSup; QEMU 10 with xtsup=on
    // adds bit 2.
    EXPECT_FALSE(QEMU_EFR.xt());
    EXPECT_TRUE(QEMU_EFR.ga());
    EXPECT_TRUE(Efr{QEMU_EFR.v | 4}.xt());
    EXPECT_FALSE(Efr{0x80}.xt());
    EXPECT_FALSE(Efr{4}.ga());
    // Control: GAEn bit 17, XTEn bit 50, IntCapXTEn bit 51.
    EXPECT_EQ(Ctl::GA_EN, 0x20000ull);
    EXPECT_EQ(Ctl::XT_EN, 0x4000000000000ull);
    EXPECT_EQ(Ctl::INTCAP_XT_EN, 0x8000000000000ull);
    // 128-bit entry: RemapEn, fixed, physical, GuestMode 0; destination 23:0 in bits 31:8 of the
    // first quadword, 31:24 in bits 63:56 of the second; the vector in bits 7:0 of the second.
    Intr::Irte128 e = Intr::irte128(0x22, 299);
    EXPECT_EQ(e.lo, 0x12b01ull);
    EXPECT_EQ(e.hi, 0x22ull);
    e = Intr::irte128(0x40, 0x12345678);
    EXPECT_EQ(e.lo, 0x34567801ull);
    EXPECT_EQ(e.hi, 0x1200000000000040ull);
    EXPECT_EQ(Intr::irte128(0xff, 0xffffffff).lo, 0xffffff01ull);  // bits 63:32 reserved
    EXPECT_EQ(Intr::irte128(0xff, 0xffffffff).hi, 0xff000000000000ffull);
    EXPECT_EQ(Intr::irte128(0x20, 0).lo & 0xfe, 0u);  // fixed, physical, GuestMode 0
    // A CPU below 256 gets the same destination and vector in both formats.
    EXPECT_EQ(Intr::irte128(0x34, 1).lo & 0xffff, Intr::irte(0x34, 1) & 0xffff);
    EXPECT_EQ(Intr::irte128(0x34, 1).hi, (Intr::irte(0x34, 1) >> 16) & 0xff);
    // 256 entries of 16 bytes: one page per table, like the 32-bit ones.
    EXPECT_EQ(Intr::ENTRIES * sizeof(Intr::Irte128), 4096u);
    // The decision: every unit has XTSup and GASup, and the local APICs run x2APIC.
    EXPECT_TRUE(Intr::use_x2apic(true, true));
    EXPECT_FALSE(Intr::use_x2apic(false, true));
    EXPECT_FALSE(Intr::use_x2apic(true, false));
    // Without it a CPU above 255 cannot be named: reaches() says BAD_CPU, set_irte refuses.
    EXPECT_TRUE(Intr::reachable(255, false));
    EXPECT_FALSE(Intr::reachable(256, false));
    EXPECT_TRUE(Intr::reachable(299, true));
    EXPECT_TRUE(Intr::reachable(0xffffffff, true));
}

TEST(Amdvi, MsiCapabilityLayout)
{
    EXPECT_EQ(Msi::data_offset(0), 8u);
    EXPECT_EQ(Msi::data_offset(Msi::ADDR64), 0xcu);
}

}  // namespace
