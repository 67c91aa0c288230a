/*
 * VMX state write-back (src/vmx_logic.cpp): CR0/CR4 fixed bits, read shadows and masks
 * (ABI 4.3), the segment access-rights conversion (ABI 4.4), event injection (ABI 4.5) and
 * IDT-vectoring re-injection (ABI 10.3), NMI unblocking, XCR0 (ABI 10.6), EPT entries.
 */
#include <gtest/gtest.h>

#include <random>

#include "vmx_msr_sets.hpp"

namespace {

using namespace vmx_sets;

const Vmx_caps sky = vmx_caps(skylake());

// --- CR0 / CR4 ---

TEST(VmxCr, ResetCr0RunsWithNeAndWithoutCdNwButTheGuestSeesItsValue)
{
    const u64 reset = Cr0::CD | Cr0::NW | 0x10;  // CR0 after RESET: CD, NW, ET
    Vmx_cr r = vmx_cr0(sky, reset, 0, true);
    EXPECT_EQ(r.guest, 0x10u | Cr0::NE) << "FIXED0 forces NE; PE/PG stay 0 with unrestricted guest";
    EXPECT_EQ(r.shadow, reset);
    EXPECT_EQ(r.mask & (Cr0::NE | Cr0::CD | Cr0::NW), Cr0::NE | Cr0::CD | Cr0::NW);
    EXPECT_EQ(r.mask & (Cr0::PE | Cr0::PG), 0u) << "the guest switches modes without exits";
    EXPECT_EQ(vmx_cr_visible(r.guest, r.shadow, r.mask), reset);
}

TEST(VmxCr, WithoutUnrestrictedGuestPeAndPgAreForcedAndOwned)
{
    Vmx_cr r = vmx_cr0(sky, 0x10, 0, false);
    EXPECT_EQ(r.guest, 0x10u | Cr0::NE | Cr0::PE | Cr0::PG);
    EXPECT_EQ(r.mask & (Cr0::PE | Cr0::PG), Cr0::PE | Cr0::PG);
    EXPECT_EQ(vmx_cr_visible(r.guest, r.shadow, r.mask), 0x10u);
}

TEST(VmxCr, MonitoredBitsJoinTheMask)
{
    Vmx_cr r = vmx_cr0(sky, Cr0::PE | Cr0::NE, Cr0::WP | Cr0::TS, true);
    EXPECT_EQ(r.mask & (Cr0::WP | Cr0::TS), Cr0::WP | Cr0::TS);
    EXPECT_EQ(r.guest, Cr0::PE | Cr0::NE) << "monitoring changes no value";
    Vmx_cr s = vmx_cr4(sky, Cr4::PAE, Cr4::PGE, 0);
    EXPECT_EQ(s.mask & Cr4::PGE, Cr4::PGE);
    EXPECT_EQ(s.guest, Cr4::PAE | Cr4::VMXE);
}

TEST(VmxCr, Cr4ForcesVmxeHidesItAndClearsWhatTheCpuCannot)
{
    const u64 pke = u64{1} << 22;  // not in the Skylake client's CR4_FIXED1
    Vmx_cr r = vmx_cr4(sky, Cr4::PAE | pke | (u64{1} << 40), 0);
    EXPECT_EQ(r.guest, Cr4::PAE | Cr4::VMXE);
    EXPECT_EQ(r.shadow, Cr4::PAE | pke | (u64{1} << 40));
    EXPECT_EQ(r.mask & (Cr4::VMXE | pke | (u64{1} << 40)), Cr4::VMXE | pke | (u64{1} << 40));
    EXPECT_EQ(vmx_cr_visible(r.guest, r.shadow, r.mask) & Cr4::VMXE, 0u) << "the guest does not see VMX";
}

TEST(VmxCr, DeniedCr4BitsAreClearedAndOwned)
{
    Vmx_cr r = vmx_cr4(sky, Cr4::OSXSAVE | Cr4::PAE, 0, Cr4::OSXSAVE);
    EXPECT_EQ(r.guest & Cr4::OSXSAVE, 0u);
    EXPECT_EQ(r.mask & Cr4::OSXSAVE, Cr4::OSXSAVE);
    EXPECT_EQ(vmx_cr_visible(r.guest, r.shadow, r.mask), Cr4::OSXSAVE | Cr4::PAE);
    // A FIXED0 bit cannot be denied.
    EXPECT_EQ(vmx_cr4(sky, 0, 0, Cr4::VMXE).guest & Cr4::VMXE, Cr4::VMXE);
}

TEST(VmxCr, AnyVmmValueRunsWithValidBitsAndReadsBackUnchanged)
{
    std::mt19937_64 rng(10);
    for (const Vmx_msrs &m : {skylake(), westmere()}) {
        Vmx_caps c = vmx_caps(m);
        for (int i = 0; i < 20000; i++) {
            u64 v = rng(), mon = i % 3 ? 0 : rng();
            for (bool urg : {true, false}) {
                Vmx_cr r = vmx_cr0(c, v, mon, urg);
                u64 f0 = c.cr0_fixed0 & ~(urg ? Cr0::PE | Cr0::PG : 0);
                ASSERT_EQ(r.guest & f0, f0);
                ASSERT_EQ(r.guest & ~c.cr0_fixed1, 0u);
                ASSERT_EQ(r.guest & (Cr0::CD | Cr0::NW), 0u);
                ASSERT_EQ((r.guest ^ v) & ~r.mask, 0u) << "every bit that differs is masked";
                ASSERT_EQ(vmx_cr_visible(r.guest, r.shadow, r.mask), v);
            }
            Vmx_cr r = vmx_cr4(c, v, mon, Cr4::OSXSAVE);
            ASSERT_EQ(r.guest & c.cr4_fixed0, c.cr4_fixed0);
            ASSERT_EQ(r.guest & ~c.cr4_fixed1, 0u);
            ASSERT_EQ((r.guest ^ v) & ~r.mask, 0u);
            ASSERT_EQ(vmx_cr_visible(r.guest, r.shadow, r.mask), v);
        }
    }
}

// --- Segments (ABI 4.4) ---

TEST(VmxAr, EveryUtcbValueRoundTrips)
{
    for (u32 a = 0; a < 0x2000; a++) {
        u32 v = vmcs_ar_from_utcb(static_cast<u16>(a));
        ASSERT_EQ(utcb_ar_from_vmcs(v), a) << std::hex << a;
        ASSERT_EQ(v & Vmx_ar::RESERVED, 0u) << std::hex << a;
    }
}

TEST(VmxAr, EveryVmcsValueWithoutReservedBitsRoundTrips)
{
    for (u32 v = 0; v < 0x20000; v++) {
        if (v & Vmx_ar::RESERVED)
            continue;
        ASSERT_EQ(vmcs_ar_from_utcb(utcb_ar_from_vmcs(v)), v) << std::hex << v;
    }
}

TEST(VmxAr, KnownValues)
{
    EXPECT_EQ(vmcs_ar_from_utcb(0x1000), Vmx_ar::UNUSABLE);
    EXPECT_EQ(utcb_ar_from_vmcs(Vmx_ar::UNUSABLE | 0x93), 0x1093u);
    EXPECT_EQ(utcb_ar_from_vmcs(0xa09b), 0xa9bu) << "64-bit code: G, L, P, S, type 11";
    EXPECT_EQ(vmcs_ar_from_utcb(0xc93), 0xc093u) << "flat data: G, D/B, P, S, type 3";
    EXPECT_EQ(utcb_ar_from_vmcs(0xffff0f00), 0x1000u) << "VMCS reserved bits do not reach the UTCB";
    Utcb_segment u{0x10, 0xc93, 0xfffff, 0x12345678};
    Vmx_seg s = vmx_seg_from_utcb(u);
    EXPECT_EQ(s.sel, 0x10);
    EXPECT_EQ(s.ar, 0xc093u);
    EXPECT_EQ(s.limit, 0xfffffu);
    EXPECT_EQ(s.base, 0x12345678u);
    Utcb_segment b = vmx_seg_to_utcb(s);
    EXPECT_EQ(b.sel, u.sel);
    EXPECT_EQ(b.ar, u.ar);
    EXPECT_EQ(b.limit, u.limit);
    EXPECT_EQ(b.base, u.base);
}

// --- Injection (ABI 4.5) ---

TEST(VmxInjection, WindowBitsAreStrippedAndReported)
{
    const u32 gp = Inj::VALID | Inj::TYPE_HW_EXC | Inj::ERROR_CODE | 13;
    Vmx_injection r = vmx_injection(gp | Inj::REQ_INTR_WINDOW, 0x18, 0);
    EXPECT_TRUE(r.intr_window);
    EXPECT_FALSE(r.nmi_window);
    EXPECT_EQ(r.event.info, gp);
    EXPECT_EQ(r.event.error, 0x18u);
    r = vmx_injection(Inj::REQ_NMI_WINDOW | Inj::REQ_INTR_WINDOW, 0, 0);
    EXPECT_TRUE(r.intr_window);
    EXPECT_TRUE(r.nmi_window);
    EXPECT_EQ(r.event.info, 0u) << "a window request alone injects nothing";
    r = vmx_injection(0, 0, 0);
    EXPECT_FALSE(r.intr_window || r.nmi_window);
}

TEST(VmxInjection, InstructionLengthForSoftwareEvents)
{
    Vmx_injection r = vmx_injection(Inj::VALID | Inj::TYPE_SW_INT | 0x80, 0, 2);
    EXPECT_EQ(r.event.inst_len, 2u);
    EXPECT_EQ(vmx_injection(0, 0, u64{1} << 40).event.inst_len, ~0u)
        << "clamped, never truncated to a small value";
}

TEST(VmxInjection, ReinjectionCopiesTheVectoringEvent)
{
    Vmx_event e{1, 2, 3};
    EXPECT_FALSE(vmx_reinjection(0x80000e0e & ~Vmx_intr::VALID, 4, 5, e));
    EXPECT_EQ(e.info, 1u) << "nothing pending: untouched";
    // #PF with error code, interrupted by an EPT violation: error code kept, no length.
    ASSERT_TRUE(
        vmx_reinjection(Vmx_intr::VALID | Vmx_intr::TYPE_HW_EXC | Vmx_intr::ERROR_CODE | 14, 6, 3, e));
    EXPECT_EQ(e.info, Vmx_intr::VALID | Vmx_intr::TYPE_HW_EXC | Vmx_intr::ERROR_CODE | 14);
    EXPECT_EQ(e.error, 6u);
    EXPECT_EQ(e.inst_len, 0u);
    // INT 0x80 (software interrupt): the exit's instruction length goes with it.
    ASSERT_TRUE(vmx_reinjection(Vmx_intr::VALID | Vmx_intr::TYPE_SW_INT | 0x80, 99, 2, e));
    EXPECT_EQ(e.error, 0u) << "no error-code bit: no error code";
    EXPECT_EQ(e.inst_len, 2u);
    // INT3 (software exception) and ICEBP (privileged software exception) too.
    ASSERT_TRUE(vmx_reinjection(Vmx_intr::VALID | Vmx_intr::TYPE_SW_EXC | 3, 0, 1, e));
    EXPECT_EQ(e.inst_len, 1u);
    ASSERT_TRUE(vmx_reinjection(Vmx_intr::VALID | Vmx_intr::TYPE_PRIV_SW_EXC | 1, 0, 1, e));
    EXPECT_EQ(e.inst_len, 1u);
    // An NMI or an external interrupt: the undefined bit 12 does not reach the entry field.
    ASSERT_TRUE(vmx_reinjection(Vmx_intr::VALID | Vmx_intr::NMI_UNBLOCK | Vmx_intr::TYPE_NMI | 2, 0, 7, e));
    EXPECT_EQ(e.info, Vmx_intr::VALID | Vmx_intr::TYPE_NMI | 2);
    EXPECT_EQ(e.inst_len, 0u);
    ASSERT_TRUE(vmx_reinjection(Vmx_intr::VALID | Vmx_intr::TYPE_EXTINT | 0x30, 0, 0, e));
    EXPECT_EQ(e.info, Vmx_intr::VALID | 0x30u);
    // The re-injected event passes the entry checks.
    Vmx_controls ctl = vmx_base_controls(sky, {true, false, false, false});
    ASSERT_TRUE(
        vmx_reinjection(Vmx_intr::VALID | Vmx_intr::TYPE_HW_EXC | Vmx_intr::ERROR_CODE | 13, 0, 0, e));
    EXPECT_EQ(vmx_check_injection(sky, ctl, Cr0::PE, e.info, e.error, e.inst_len), Vmx_rule::NONE);
}

TEST(VmxInjection, NmiUnblockingSetsBlockingByNmi)
{
    const u32 pf_iret =
        Vmx_intr::VALID | Vmx_intr::NMI_UNBLOCK | Vmx_intr::TYPE_HW_EXC | Vmx_intr::ERROR_CODE | 14;
    EXPECT_EQ(vmx_nmi_unblock_fixup(Vmx_exit::EXC_NMI, pf_iret, 0, 0, 0, true), Vmx_intr_state::NMI);
    EXPECT_EQ(vmx_nmi_unblock_fixup(Vmx_exit::EXC_NMI, pf_iret & ~Vmx_intr::NMI_UNBLOCK, 0, 0, 0, true), 0u);
    EXPECT_EQ(vmx_nmi_unblock_fixup(Vmx_exit::EXC_NMI, pf_iret, 0, 0, Vmx_intr_state::STI, true),
              Vmx_intr_state::STI | Vmx_intr_state::NMI);
    // Undefined cases leave the state alone: #DF, vectoring info valid, no virtual NMIs.
    const u32 df = Vmx_intr::VALID | Vmx_intr::NMI_UNBLOCK | Vmx_intr::TYPE_HW_EXC | Vmx_intr::ERROR_CODE | 8;
    EXPECT_EQ(vmx_nmi_unblock_fixup(Vmx_exit::EXC_NMI, df, 0, 0, 0, true), 0u);
    EXPECT_EQ(vmx_nmi_unblock_fixup(Vmx_exit::EXC_NMI, pf_iret, 0, Vmx_intr::VALID | 0x30, 0, true), 0u);
    EXPECT_EQ(vmx_nmi_unblock_fixup(Vmx_exit::EXC_NMI, pf_iret, 0, 0, 0, false), 0u);
    // EPT violation: the qualification's bit 12.
    EXPECT_EQ(vmx_nmi_unblock_fixup(Vmx_exit::EPT_VIOLATION, 0, 1u << 12 | 0x181, 0, 0, true),
              Vmx_intr_state::NMI);
    EXPECT_EQ(vmx_nmi_unblock_fixup(Vmx_exit::EPT_VIOLATION, 0, 0x181, 0, 0, true), 0u);
    // Other exits carry no such information.
    EXPECT_EQ(vmx_nmi_unblock_fixup(Vmx_exit::CPUID, pf_iret, 1u << 12, 0, 0, true), 0u);
    // The exit reason's upper bits do not matter.
    EXPECT_EQ(vmx_nmi_unblock_fixup(Vmx_exit::EPT_VIOLATION | 1u << 27, 0, 1u << 12, 0, 0, true),
              Vmx_intr_state::NMI);
}

// --- XCR0 (ABI 10.6) ---

constexpr u64 X87 = 1, SSE = 2, AVX = 4, BNDREGS = 8, BNDCSR = 16, OPMASK = 32, ZMM_HI256 = 64,
              HI16_ZMM = 128, PKRU = 512, TILECFG = u64{1} << 17, TILEDATA = u64{1} << 18;
constexpr u64 HOST_ALL =
    X87 | SSE | AVX | BNDREGS | BNDCSR | OPMASK | ZMM_HI256 | HI16_ZMM | PKRU | TILECFG | TILEDATA;

TEST(VmxXcr0, SanitisingSetsX87AndSseForAvx)
{
    Xcr0_check r = xcr0_sanitise(0, X87 | SSE | AVX);
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(r.value, X87);
    r = xcr0_sanitise(AVX, X87 | SSE | AVX);
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(r.value, X87 | SSE | AVX);
    r = xcr0_sanitise(X87 | SSE, X87 | SSE | AVX);
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(r.value, X87 | SSE);
}

TEST(VmxXcr0, OnlyWhatTheHostHolds)
{
    EXPECT_FALSE(xcr0_sanitise(X87 | SSE | AVX, X87 | SSE).ok) << "the host saves no AVX state";
    EXPECT_FALSE(xcr0_sanitise(AVX, X87 | AVX).ok) << "AVX implies SSE, which the host lacks";
    EXPECT_FALSE(xcr0_sanitise(X87 | PKRU, X87 | SSE | AVX).ok);
    EXPECT_FALSE(xcr0_sanitise(X87 | u64{1} << 63, ~u64{0} >> 1).ok);
}

TEST(VmxXcr0, GroupsAllOrNone)
{
    EXPECT_TRUE(xcr0_sanitise(X87 | BNDREGS | BNDCSR, HOST_ALL).ok);
    EXPECT_FALSE(xcr0_sanitise(X87 | BNDREGS, HOST_ALL).ok);
    EXPECT_FALSE(xcr0_sanitise(X87 | BNDCSR, HOST_ALL).ok);
    const u64 avx512 = OPMASK | ZMM_HI256 | HI16_ZMM;
    EXPECT_TRUE(xcr0_sanitise(X87 | SSE | AVX | avx512, HOST_ALL).ok);
    EXPECT_FALSE(xcr0_sanitise(X87 | SSE | avx512, HOST_ALL).ok) << "AVX-512 needs AVX";
    EXPECT_FALSE(xcr0_sanitise(X87 | SSE | AVX | OPMASK, HOST_ALL).ok);
    EXPECT_FALSE(xcr0_sanitise(X87 | SSE | AVX | OPMASK | ZMM_HI256, HOST_ALL).ok);
    EXPECT_FALSE(xcr0_sanitise(X87 | SSE | AVX | HI16_ZMM, HOST_ALL).ok);
    EXPECT_TRUE(xcr0_sanitise(X87 | SSE | AVX | TILECFG | TILEDATA, HOST_ALL).ok);
    EXPECT_FALSE(xcr0_sanitise(X87 | SSE | AVX | TILEDATA, HOST_ALL).ok);
    EXPECT_FALSE(xcr0_sanitise(X87 | SSE | AVX | TILECFG, HOST_ALL).ok);
}

TEST(VmxXcr0, ValidResultsAreAlwaysAcceptedByTheRules)
{
    std::mt19937_64 rng(55);
    for (int i = 0; i < 100000; i++) {
        u64 g = rng() & (HOST_ALL | 0x100 | u64{1} << 62);
        Xcr0_check r = xcr0_sanitise(g, HOST_ALL);
        ASSERT_EQ(r.value & g, g) << "sanitising only adds bits";
        if (!r.ok)
            continue;
        ASSERT_TRUE(r.value & X87);
        ASSERT_EQ(r.value & ~HOST_ALL, 0u);
        ASSERT_TRUE(!(r.value & AVX) || (r.value & SSE));
        ASSERT_EQ(!(r.value & BNDREGS), !(r.value & BNDCSR));
        ASSERT_EQ(xcr0_sanitise(r.value, HOST_ALL).value, r.value) << "idempotent";
    }
}

// --- EPT ---

TEST(VmxEpt, LeafRightsAndMemoryType)
{
    EXPECT_EQ(ept_leaf(0x1234000, 0, 1, Ept::WB), 0x1234000u | Ept::R | 6u << 3 | Ept::IGNORE_PAT);
    EXPECT_EQ(ept_leaf(0x1234000, 0, 3, Ept::WB), 0x1234000u | Ept::R | Ept::W | 6u << 3 | Ept::IGNORE_PAT);
    EXPECT_EQ(ept_leaf(0x1234000, 0, 7, Ept::UC), 0x1234000u | Ept::R | Ept::W | Ept::X | Ept::IGNORE_PAT);
    EXPECT_EQ(ept_leaf(0x1234000, 0, 2, Ept::WB) & 7, Ept::R | Ept::W) << "write-only would be misconfigured";
    EXPECT_EQ(ept_leaf(0x1234000, 0, 4, Ept::WB) & 7, Ept::R | Ept::X) << "execute-only needs a capability";
    EXPECT_EQ(ept_leaf(0x1234000, 0, 0, Ept::WB), 0u) << "no rights: not present";
    EXPECT_EQ(ept_leaf(0x1234000, 0, 8, Ept::WB), 0u) << "bits beyond RWX are no rights";
    EXPECT_EQ(ept_leaf(0x1234000, 0, 1, Ept::WC) & Ept::MEMTYPE_MASK, u64{Ept::WC} << 3);
    EXPECT_EQ(ept_leaf(0x1234000, 0, 1, Ept::WB) & (Ept::ACCESSED | Ept::DIRTY | Ept::SUPPRESS_VE), 0u);
    EXPECT_EQ(ept_leaf(0x1234000, 0, 7, Ept::WB, false), 0x1234000u | Ept::R | Ept::W | Ept::X | 6u << 3)
        << "guest memory: the guest's PAT is not ignored";
}

// The kernel's guest page table is walked by the host's walker (src/paging.cpp): it writes a
// leaf as phys | flags | P | (PS for a large page) and a table entry as phys | P | W | U. On EPT
// that must mean R, the large bit and R|W|X (src/mapping.cpp, guest_flags).
TEST(VmxEpt, HostWalkerBitsAreEptBits)
{
    constexpr u64 P = 1, W = 2, U = 4, PS = 128;  // include/paging.hpp Pte
    EXPECT_EQ(P, Ept::R);
    EXPECT_EQ(W, Ept::W);
    EXPECT_EQ(U, Ept::X);
    EXPECT_EQ(PS, Ept::LARGE);
    EXPECT_EQ(ept_table(0x5000), 0x5000u | P | W | U);
    u64 flags = ept_leaf(0, 0, 3, Ept::WB, false);
    EXPECT_EQ(0x200000u | flags | P | PS, ept_leaf(0x200000, 1, 3, Ept::WB, false));
}

TEST(VmxEpt, LargePages)
{
    u64 e = ept_leaf(0x40200000, 1, 7, Ept::WB);
    EXPECT_EQ(e & Ept::ADDR, 0x40200000u);
    EXPECT_TRUE(e & Ept::LARGE);
    EXPECT_EQ(ept_leaf(0x403ff000, 1, 7, Ept::WB) & Ept::ADDR, 0x40200000u) << "aligned down to 2 MiB";
    e = ept_leaf(0x80000000, 2, 3, Ept::WB);
    EXPECT_EQ(e & Ept::ADDR, 0x80000000u);
    EXPECT_TRUE(e & Ept::LARGE);
    EXPECT_EQ(ept_leaf(0xbffff000, 2, 3, Ept::WB) & Ept::ADDR, 0x80000000u) << "aligned down to 1 GiB";
    EXPECT_FALSE(ept_leaf(0x1000, 0, 1, Ept::WB) & Ept::LARGE);
    EXPECT_EQ(ept_leaf(0, 3, 7, Ept::WB), 0u) << "no 512 GiB pages";
    EXPECT_EQ(ept_leaf(u64{1} << 52, 0, 7, Ept::WB) & Ept::ADDR, 0u) << "address bits beyond 51 are dropped";
}

TEST(VmxEpt, TableAndPointer)
{
    EXPECT_EQ(ept_table(0x5000), 0x5007u);
    EXPECT_EQ(ept_table(0x5fff), 0x5007u);
    EXPECT_EQ(ept_pointer(0x7000), 0x701eu) << "WB (6), walk length 4 (3 << 3), A/D off";
    EXPECT_EQ(ept_pointer(0x7000) & Ept::EPTP_AD, 0u);
}

TEST(VmxEpt, MemoryTypeFromTheHostPte)
{
    const u64 default_pat = 0x0007040600070406ull;  // WB, WT, UC-, UC, WB, WT, UC-, UC
    EXPECT_EQ(ept_mtype_from_pte(Pte::P | Pte::W | Pte::U, false, default_pat), Ept::WB);
    EXPECT_EQ(ept_mtype_from_pte(Pte::P | Pte::PWT, false, default_pat), Ept::WT);
    EXPECT_EQ(ept_mtype_from_pte(Pte::P | Pte::PCD, false, default_pat), Ept::UC) << "UC- becomes UC";
    EXPECT_EQ(ept_mtype_from_pte(Pte::P | Pte::PCD | Pte::PWT, false, default_pat), Ept::UC);
    const u64 wc_pat = 0x0007010600070406ull;  // entry 5 = WC
    EXPECT_EQ(ept_mtype_from_pte(Pte::P | Pte::PWT | 1u << 7, false, wc_pat), Ept::WC)
        << "4 KiB: PAT is bit 7";
    EXPECT_EQ(ept_mtype_from_pte(Pte::P | Pte::PWT | Pte::PS | 1u << 12, true, wc_pat), Ept::WC)
        << "large: PAT is bit 12";
    EXPECT_EQ(ept_mtype_from_pte(Pte::P | Pte::PWT | Pte::PS, true, wc_pat), Ept::WT)
        << "large: bit 7 is PS, not PAT";
    EXPECT_EQ(ept_mtype_from_pte(Pte::P, false, 0x0202020202020202ull), Ept::UC) << "reserved type 2";
    EXPECT_EQ(ept_mtype_from_pte(Pte::P, false, 0x05), Ept::WP);
}

}  // namespace
