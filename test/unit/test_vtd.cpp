/*
 * VT-d encodings (include/vtd.hpp) and DMAR device scopes to requester IDs (src/dmar_scope.cpp).
 */
#include <gtest/gtest.h>

#include <map>

#include "dmar_scope.hpp"
#include "vtd.hpp"

namespace {

using namespace Vtd;

// What QEMU 7.2's intel-iommu reports (docs/iommu.md): 16-bit domain IDs, SAGAW 39 bits only,
// 2 MiB and 1 GiB pages, one fault record at 0x220, read and write draining, no caching mode, no
// write-buffer flushes.
constexpr Cap QEMU_CAP{0x00d2008c22260206};
constexpr Ecap QEMU_ECAP{0xf00f4a};

TEST(Vtd, TheCapabilityFieldsOfQemusUnitDecode)
{
    EXPECT_EQ(QEMU_CAP.nd(), 6u);
    EXPECT_EQ(QEMU_CAP.domains(), 0x10000u);
    EXPECT_EQ(QEMU_CAP.sagaw(), 2u);
    EXPECT_EQ(QEMU_CAP.sllps(), 3u);
    EXPECT_EQ(QEMU_CAP.fro(), 0x220u);
    EXPECT_EQ(QEMU_CAP.nfr(), 1u);
    EXPECT_FALSE(QEMU_CAP.cm());
    EXPECT_FALSE(QEMU_CAP.rwbf());
    EXPECT_EQ(QEMU_CAP.mgaw(), 39u);
    EXPECT_TRUE(QEMU_CAP.drd());
    EXPECT_TRUE(QEMU_CAP.dwd());
    EXPECT_TRUE(QEMU_ECAP.qi());
    EXPECT_TRUE(QEMU_ECAP.ir());
    EXPECT_FALSE(QEMU_ECAP.c());
    EXPECT_FALSE(QEMU_ECAP.eim());
    EXPECT_EQ(QEMU_ECAP.iro(), 0xf0u);
    EXPECT_TRUE((Cap{QEMU_CAP.v | 0x80}.cm()));
    EXPECT_EQ((Cap{0}.domains()), 16u);
    EXPECT_EQ((Cap{2}.domains()), 256u);
}

TEST(Vtd, LevelsAreFourIfEveryUnitWalksThemElseThreeElseNone)
{
    EXPECT_EQ(levels(0x2), 3u);
    EXPECT_EQ(levels(0x6), 4u);
    EXPECT_EQ(levels(0x4), 4u);
    EXPECT_EQ(levels(0x8), 0u);  // 5-level only: our tables have four
    EXPECT_EQ(levels(0x1), 0u);  // 2-level only
    EXPECT_EQ(levels(0x2 & 0x4), 0u);
    EXPECT_EQ(aw(3), 1u);
    EXPECT_EQ(aw(4), 2u);
}

TEST(Vtd, ACommandKeepsTheEnablesAndDropsTheOneShotBits)
{
    u32 gsts = Gcmd::TE | Gcmd::QIE | Gcmd::SRTP | Gcmd::WBF;
    EXPECT_EQ(Gcmd::command(gsts, Gcmd::IRE), Gcmd::TE | Gcmd::QIE | Gcmd::IRE);
    EXPECT_EQ(Gcmd::command(gsts, 0) & ~Gcmd::TE, Gcmd::QIE);
}

TEST(Vtd, ContextEntriesCarryTableDepthAndDomain)
{
    EXPECT_EQ(ctx_lo(0x12345000), 0x12345001u);
    EXPECT_EQ(ctx_hi(3, 0x42), 0x4201u);
    EXPECT_EQ(ctx_hi(4, 0xffff), 0xffff02u);
    EXPECT_EQ(ctx_did(ctx_hi(4, 0xbeef)), 0xbeef);
    EXPECT_EQ(root_lo(0x7000), 0x7001u);
}

TEST(Vtd, InvalidationDescriptorsFollowTheSpecification)
{
    EXPECT_EQ(Inv::context_global().lo, 0x11u);
    EXPECT_EQ(Inv::context_domain(5).lo, 0x50021u);
    EXPECT_EQ(Inv::context_device(5, 0x0018).lo, 0x0018'0005'0031u);
    EXPECT_EQ(Inv::iotlb_global(QEMU_CAP).lo, 0xd2u);  // QEMU drains reads and writes (DRD, DWD)
    Cap no_drain{QEMU_CAP.v & ~(u64{3} << 54)};
    EXPECT_EQ(Inv::iotlb_domain(no_drain, 7).lo, 0x70022u);
    EXPECT_EQ(Inv::iotlb_domain(QEMU_CAP, 7).lo, 0x700e2u);
    Desc w = Inv::wait(0x1000, 1);
    EXPECT_EQ(w.lo, 0x1'0000'0065u);  // status write + fence, data 1
    EXPECT_EQ(w.hi, 0x1000u);
}

TEST(Vtd, FaultRecordsDecode)
{
    // Reason 5 (write), source 00:03.0, page 0x1234000; T = 0: a write.
    Fault f = fault(0x1234567, u64{1} << 63 | u64{5} << 32 | 0x18);
    EXPECT_TRUE(f.valid);
    EXPECT_FALSE(f.read);
    EXPECT_EQ(f.reason, 5);
    EXPECT_EQ(f.sid, 0x18);
    EXPECT_EQ(f.addr, 0x1234000u);
    Fault r = fault(0, u64{3} << 62 | u64{6} << 32);
    EXPECT_TRUE(r.read);
    EXPECT_FALSE(fault(0, 0).valid);
    EXPECT_STREQ(fault_reason(2), "context entry not present");
    EXPECT_STREQ(fault_reason(0x77), "other");
}

/* Bridges of a fake PCI hierarchy: rid -> (secondary, subordinate). */
struct Bridges
{
    std::map<u16, std::pair<u8, u8>> b;
    static bool read(void *ctx, u16 rid, u8 &sec, u8 &sub)
    {
        auto &m = static_cast<Bridges *>(ctx)->b;
        auto i = m.find(rid);
        if (i == m.end())
            return false;
        sec = i->second.first;
        sub = i->second.second;
        return true;
    }
};

Dmar_scope scope(u8 type, u8 bus, std::initializer_list<std::pair<u8, u8>> path)
{
    Dmar_scope s{};
    s.type = type;
    s.start_bus = bus;
    for (auto [d, f] : path) {
        s.path[s.path_len][0] = d;
        s.path[s.path_len][1] = f;
        s.path_len++;
    }
    return s;
}

constexpr u16 rid(unsigned bus, unsigned dev, unsigned fn)
{
    return static_cast<u16>(bus << 8 | dev << 3 | fn);
}

TEST(DmarScope, AnEndpointOnTheStartBusNamesOneFunction)
{
    Bridges br;
    Dmar_scope s = scope(Dmar_scope::PCI_ENDPOINT, 0, {{3, 0}});
    EXPECT_TRUE(Dmar_scope_map::covers(s, rid(0, 3, 0), Bridges::read, &br));
    EXPECT_FALSE(Dmar_scope_map::covers(s, rid(0, 3, 1), Bridges::read, &br));
    EXPECT_FALSE(Dmar_scope_map::covers(s, rid(1, 3, 0), Bridges::read, &br));
}

TEST(DmarScope, APathFollowsTheBridgesSecondaryBuses)
{
    Bridges br;
    br.b[rid(0, 0x1c, 0)] = {2, 4};
    br.b[rid(2, 0, 0)] = {3, 3};
    Dmar_scope s = scope(Dmar_scope::PCI_ENDPOINT, 0, {{0x1c, 0}, {0, 0}, {5, 1}});
    u16 end = 0;
    ASSERT_TRUE(Dmar_scope_map::end_rid(s, Bridges::read, &br, end));
    EXPECT_EQ(end, rid(3, 5, 1));
    EXPECT_TRUE(Dmar_scope_map::covers(s, rid(3, 5, 1), Bridges::read, &br));
    br.b.erase(rid(2, 0, 0));  // a bridge on the path is gone: the scope names nothing
    EXPECT_FALSE(Dmar_scope_map::end_rid(s, Bridges::read, &br, end));
}

TEST(DmarScope, ASubHierarchyCoversTheBridgeAndItsBuses)
{
    Bridges br;
    br.b[rid(0, 0x1c, 0)] = {2, 4};
    Dmar_scope s = scope(Dmar_scope::PCI_SUB_HIERARCHY, 0, {{0x1c, 0}});
    EXPECT_TRUE(Dmar_scope_map::covers(s, rid(0, 0x1c, 0), Bridges::read, &br));
    EXPECT_TRUE(Dmar_scope_map::covers(s, rid(2, 0, 0), Bridges::read, &br));
    EXPECT_TRUE(Dmar_scope_map::covers(s, rid(4, 31, 7), Bridges::read, &br));
    EXPECT_FALSE(Dmar_scope_map::covers(s, rid(5, 0, 0), Bridges::read, &br));
    EXPECT_FALSE(Dmar_scope_map::covers(s, rid(1, 0, 0), Bridges::read, &br));
    br.b[rid(0, 0x1c, 0)] = {4, 2};  // secondary above subordinate: nothing below it
    EXPECT_FALSE(Dmar_scope_map::covers(s, rid(3, 0, 0), Bridges::read, &br));
}

TEST(DmarScope, MalformedPathsNameNothing)
{
    Bridges br;
    EXPECT_FALSE(Dmar_scope_map::covers(scope(Dmar_scope::PCI_ENDPOINT, 0, {{32, 0}}), rid(0, 0, 0),
                                        Bridges::read, &br));
    EXPECT_FALSE(Dmar_scope_map::covers(scope(Dmar_scope::PCI_ENDPOINT, 0, {{3, 8}}), rid(0, 3, 0),
                                        Bridges::read, &br));
    EXPECT_FALSE(Dmar_scope_map::covers(scope(Dmar_scope::PCI_ENDPOINT, 0, {}), 0, Bridges::read, &br));
    // I/O APIC and HPET scopes name no PCI function, even with a matching path.
    EXPECT_FALSE(
        Dmar_scope_map::covers(scope(Dmar_scope::IOAPIC, 0, {{3, 0}}), rid(0, 3, 0), Bridges::read, &br));
    EXPECT_FALSE(
        Dmar_scope_map::covers(scope(Dmar_scope::HPET, 0, {{3, 0}}), rid(0, 3, 0), Bridges::read, &br));
}

TEST(DmarScope, AUnitIsFoundByItsScopesElseTheIncludeAllUnit)
{
    Bridges br;
    Dmar_info d{};
    d.num_drhd = 3;
    d.drhd[0].flags = Dmar_drhd::FLAG_INCLUDE_PCI_ALL;  // listed first, but the fallback
    d.drhd[1].scopes.count = 1;
    d.drhd[1].scopes.scope[0] = scope(Dmar_scope::PCI_ENDPOINT, 0, {{2, 0}});
    d.drhd[2].segment = 1;  // another segment: never ours
    d.drhd[2].scopes.count = 1;
    d.drhd[2].scopes.scope[0] = scope(Dmar_scope::PCI_ENDPOINT, 0, {{3, 0}});
    EXPECT_EQ(Dmar_scope_map::unit_for(d, rid(0, 2, 0), Bridges::read, &br), 1);
    EXPECT_EQ(Dmar_scope_map::unit_for(d, rid(0, 3, 0), Bridges::read, &br), 0);
    d.drhd[0].flags = 0;
    EXPECT_EQ(Dmar_scope_map::unit_for(d, rid(0, 3, 0), Bridges::read, &br), -1);
    d.num_drhd = 0;
    EXPECT_EQ(Dmar_scope_map::unit_for(d, rid(0, 2, 0), Bridges::read, &br), -1);
}

}  // namespace

namespace {

TEST(Vtd, InterruptRemappingEntriesAndFormats)
{
    EXPECT_EQ(Irte::ENTRIES, 256u);
    EXPECT_EQ(Irte::irta(0x5000, false), 0x5007u);
    EXPECT_EQ(Irte::irta(0x5000, true), 0x5807u);  // EIME (bit 11): 32-bit x2APIC destinations
    // GSI 20, vector 52, APIC ID 3, level-triggered: present, TM, vector in 23:16, destination 47:40.
    EXPECT_EQ(Irte::lo(52, 3, true, false), 0x0000'0300'0034'0011u);
    EXPECT_EQ(Irte::lo(52, 3, false, false), 0x0000'0300'0034'0001u);
    EXPECT_EQ(Irte::lo(33, 0x1ff, false, false) >> 40, 0xffu);  // xAPIC destinations: 8 bits
    EXPECT_EQ(Irte::hi(-1), 0u);                                // no source check
    EXPECT_EQ(Irte::hi(0x18), 0x4'0018u);                       // SVT 1, SQ 0: all 16 bits compared
    EXPECT_EQ(Irte::rte_hi(20), 20u << 17 | 1u << 16);
    EXPECT_EQ(Irte::MSI_ADDR & 0xfff00000, 0xfee00000u);
    EXPECT_EQ(Irte::MSI_ADDR & 0x18, 0x18u);  // remappable format and SHV: handle 0 + data
    EXPECT_EQ(Inv::iec_global().lo, 4u);
    EXPECT_EQ(Inv::iec_index(20).lo, 0x14'0000'0014u);
    EXPECT_STREQ(fault_reason(0x26), "interrupt source-ID check failed");
}

TEST(Vtd, ExtendedInterruptModeDestinations)
{
    // With EIM the whole x2APIC ID is in bits 63:32; the low half is the same as without.
    EXPECT_EQ(Irte::lo(52, 3, true, true), 0x0000'0003'0034'0011u);
    EXPECT_EQ(Irte::lo(52, 299, false, true), u64{299} << 32 | 0x34'0001u);  // the 300th CPU
    EXPECT_EQ(Irte::lo(52, 0xffff'fffe, false, true) >> 32, 0xffff'fffeu);
    EXPECT_EQ(Irte::lo(52, 299, false, true) & 0xffff'ffffu, Irte::lo(52, 299, false, false) & 0xffff'ffffu);
    // Without EIM a CPU above 255 cannot be named: reachable() says so, and set_irte refuses it.
    EXPECT_TRUE(Irte::reachable(255, false));
    EXPECT_FALSE(Irte::reachable(256, false));
    EXPECT_TRUE(Irte::reachable(256, true));
    EXPECT_TRUE(Irte::reachable(0xffff'ffff, true));
    // EIM needs every unit's ECAP.EIM and x2APIC mode, and the DMAR table not opting out.
    EXPECT_TRUE(Irte::use_eim(true, true, false));
    EXPECT_FALSE(Irte::use_eim(false, true, false));
    EXPECT_FALSE(Irte::use_eim(true, false, false));
    EXPECT_FALSE(Irte::use_eim(true, true, true));
    // X2APIC_OPT_OUT: xAPIC mode only where the firmware left it and no APIC ID needs more bits.
    EXPECT_TRUE(Irte::stay_xapic(true, false, 255));
    EXPECT_FALSE(Irte::stay_xapic(true, false, 256));
    EXPECT_FALSE(Irte::stay_xapic(true, true, 0));
    EXPECT_FALSE(Irte::stay_xapic(false, false, 0));
    EXPECT_TRUE(Ecap{0x10}.eim());
    EXPECT_FALSE(Ecap{0xf00f4a}.eim());  // QEMU 7.2's unit without eim=on
}

}  // namespace
