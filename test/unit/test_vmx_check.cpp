/*
 * The VM-entry checker (vmx_check_entry, SDM 26.2/26.3): valid states pass (real mode with
 * unrestricted guest, 64-bit, virtual-8086, PAE paging; on two recorded CPUs), and one case per
 * rule breaks exactly that rule in a valid state and must be reported as the first violation.
 * A last test checks that every rule the checker knows has such a case.
 */
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "vmx_msr_sets.hpp"

namespace {

using namespace vmx_sets;
using namespace Vmcs;

constexpr u64 DEFAULT_PAT = 0x0007040600070406ull;
constexpr u64 RFLAGS_TF = 1u << 8, RFLAGS_IF = 1u << 9, RFLAGS_VM = 1u << 17;
constexpr u64 CR4_CET = u64{1} << 23;
constexpr u32 UNUSABLE_LDTR = Vmx_ar::UNUSABLE;  // type 0, not present: checked, it would fail

/* Controls and host state as the kernel would set them up (no guest state yet). */
Vmx_vmcs_image common(const Vmx_caps &c, u64 guest_efer)
{
    Vmx_vmcs_image v{};
    v.c.ctl = vmx_base_controls(c, {true, false, false, false});
    v.c.ctl.entry = vmx_entry_controls(c, v.c.ctl.entry, guest_efer);
    v.c.vpid = 1;
    v.c.eptp = ept_pointer(0x100000);

    Vmx_host_state &h = v.h;
    h.cr0 = 0x80050033;  // PG, AM, WP, NE, ET, MP, PE
    h.cr3 = 0x2000;
    h.cr4 = Cr4::PAE | Cr4::PGE | Cr4::OSFXSR | Cr4::OSXMMEXCPT | Cr4::VMXE;
    h.efer = Efer::SCE | Efer::LME | Efer::LMA | Efer::NXE;
    h.pat = DEFAULT_PAT;
    h.cs = 0x08;
    h.ss = 0x10;
    h.tr = 0x28;
    h.gs_base = 0xffff800000001000;
    h.tr_base = 0xffff800000002000;
    h.gdtr_base = 0xffff800000003000;
    h.idtr_base = 0xffff800000004000;
    h.rip = 0xffffffff80100000;

    v.g.dr7 = 0x400;
    v.g.pat = DEFAULT_PAT;
    v.g.link_ptr = ~u64{0};
    return v;
}

/* Real mode at the reset vector, run as an unrestricted guest. */
Vmx_vmcs_image real_mode(const Vmx_caps &c)
{
    Vmx_vmcs_image v = common(c, 0);
    Vmx_guest_state &g = v.g;
    g.cr0 = vmx_cr0(c, Cr0::CD | Cr0::NW | 0x10, 0, true).guest;
    g.cr4 = vmx_cr4(c, 0, 0).guest;
    g.seg[CS] = {0xf000, 0xffff, 0x9b, 0xf0000};
    for (Seg s : {SS, DS, ES, FS, GS})
        g.seg[s] = {0, 0xffff, 0x93, 0};
    g.seg[LDTR] = {0, 0xffff, UNUSABLE_LDTR, 0};
    g.seg[TR] = {0, 0xffff, 0x8b, 0};
    g.gdtr_limit = g.idtr_limit = 0xffff;
    g.rip = 0xfff0;
    g.rflags = 2;
    return v;
}

/* 64-bit mode, flat segments, a 64-bit TSS. */
Vmx_vmcs_image long_mode(const Vmx_caps &c)
{
    const u64 efer = Efer::SCE | Efer::LME | Efer::LMA | Efer::NXE;
    Vmx_vmcs_image v = common(c, efer);
    Vmx_guest_state &g = v.g;
    g.cr0 = vmx_cr0(c, 0x80050033, 0, true).guest;
    g.cr4 = vmx_cr4(c, Cr4::PAE | Cr4::PGE | Cr4::OSFXSR | Cr4::OSXMMEXCPT, 0).guest;
    g.cr3 = 0x1000;
    g.efer = efer;
    g.seg[CS] = {0x08, 0xffffffff, 0xa09b, 0};
    for (Seg s : {SS, DS, ES})
        g.seg[s] = {0x10, 0xffffffff, 0xc093, 0};
    g.seg[FS] = {0, 0, Vmx_ar::UNUSABLE, 0x7fff00000000};
    g.seg[GS] = {0x10, 0xffffffff, 0xc093, 0xffff888000000000};
    g.seg[LDTR] = {0, 0, UNUSABLE_LDTR, 0};
    g.seg[TR] = {0x18, 0x67, 0x8b, 0xffff888000010000};
    g.gdtr_base = 0xffff888000020000;
    g.gdtr_limit = 0x7f;
    g.idtr_base = 0xffff888000021000;
    g.idtr_limit = 0xfff;
    g.rip = 0xffffffff81000000;
    g.rflags = 0x202;
    g.sysenter_eip = 0xffffffff81001000;
    return v;
}

/* Virtual-8086 mode (protected mode, RFLAGS.VM) with a 32-bit TSS. */
Vmx_vmcs_image v86_mode(const Vmx_caps &c)
{
    Vmx_vmcs_image v = real_mode(c);
    Vmx_guest_state &g = v.g;
    g.cr0 = vmx_cr0(c, Cr0::PE | 0x10, 0, true).guest;
    for (Seg s : {ES, CS, SS, DS, FS, GS})
        g.seg[s] = {0x1234, 0xffff, 0xf3, 0x12340};
    g.rflags = 2 | RFLAGS_VM | RFLAGS_IF;
    return v;
}

/* 32-bit protected mode with PAE paging: the PDPTEs come from the VMCS (EPT). */
Vmx_vmcs_image pae_mode(const Vmx_caps &c)
{
    Vmx_vmcs_image v = real_mode(c);
    Vmx_guest_state &g = v.g;
    g.cr0 = vmx_cr0(c, Cr0::PE | Cr0::PG | 0x10, 0, true).guest;
    g.cr4 = vmx_cr4(c, Cr4::PAE, 0).guest;
    g.cr3 = 0x3000;
    g.seg[CS] = {0x08, 0xffffffff, 0xc09b, 0};
    for (Seg s : {SS, DS, ES, FS, GS})
        g.seg[s] = {0x10, 0xffffffff, 0xc093, 0};
    g.pdpte[0] = 0x4001;
    g.pdpte[1] = 0x5001;
    g.pdpte[2] = 0;
    g.pdpte[3] = 0x6000 | 1 | 8 | 16;  // PWT, PCD allowed
    g.rip = 0x100000;
    return v;
}

std::string show(const Vmx_violation &r)
{
    std::string s = std::string(vmx_rule_section(r.rule)) + " " + vmx_rule_text(r.rule);
    if (r.seg != SEGS)
        s += " (segment " + std::to_string(r.seg) + ")";
    return s;
}

TEST(VmxCheck, ValidStatesPass)
{
    for (const Vmx_msrs &m : {skylake(), westmere(), westmere_untrue()}) {
        Vmx_caps c = vmx_caps(m);
        ASSERT_TRUE(c.usable);
        for (auto make : {real_mode, long_mode, v86_mode, pae_mode}) {
            Vmx_vmcs_image v = make(c);
            Vmx_violation r = vmx_check_entry(c, v);
            EXPECT_EQ(r.rule, Vmx_rule::NONE) << show(r);
        }
    }
}

TEST(VmxCheck, ValidEventsAndStatesPass)
{
    Vmx_caps c = vmx_caps(skylake());
    struct Ok
    {
        const char *what;
        void (*set)(Vmx_vmcs_image &);
    };
    const Ok oks[] = {
        {"#GP with error code in 64-bit mode",
         [](Vmx_vmcs_image &v) {
             v.c.entry_intr_info = Vmx_intr::VALID | Vmx_intr::TYPE_HW_EXC | Vmx_intr::ERROR_CODE | 13;
         }},
        {"external interrupt with IF",
         [](Vmx_vmcs_image &v) { v.c.entry_intr_info = Vmx_intr::VALID | 0x30; }},
        {"NMI", [](Vmx_vmcs_image &v) { v.c.entry_intr_info = Vmx_intr::VALID | Vmx_intr::TYPE_NMI | 2; }},
        {"INT 0x80 with length 2",
         [](Vmx_vmcs_image &v) {
             v.c.entry_intr_info = Vmx_intr::VALID | Vmx_intr::TYPE_SW_INT | 0x80;
             v.c.entry_inst_len = 2;
         }},
        {"INT3 with length 0 (IA32_VMX_MISC bit 30)",
         [](Vmx_vmcs_image &v) { v.c.entry_intr_info = Vmx_intr::VALID | Vmx_intr::TYPE_SW_EXC | 3; }},
        {"external interrupt into HLT",
         [](Vmx_vmcs_image &v) {
             v.g.activity = Vmx_activity::HLT;
             v.c.entry_intr_info = Vmx_intr::VALID | 0x30;
         }},
        {"NMI into shutdown",
         [](Vmx_vmcs_image &v) {
             v.g.activity = Vmx_activity::SHUTDOWN;
             v.c.entry_intr_info = Vmx_intr::VALID | Vmx_intr::TYPE_NMI | 2;
         }},
        {"blocked by STI with single-step pending",
         [](Vmx_vmcs_image &v) {
             v.g.intr_state = Vmx_intr_state::STI;
             v.g.rflags |= RFLAGS_TF;
             v.g.pending_dbg = Vmx_pending_dbg::BS;
         }},
        {"blocking by NMI without virtual NMI injection",
         [](Vmx_vmcs_image &v) { v.g.intr_state = Vmx_intr_state::NMI; }},
        {"RIP bits 63:48 equal although bit 47 differs",
         [](Vmx_vmcs_image &v) { v.g.rip = 0x0000800000000000; }},
        {"VMCS link pointer aligned", [](Vmx_vmcs_image &v) { v.g.link_ptr = 0x7000; }},
        {"TPR shadow with a virtual-APIC page",
         [](Vmx_vmcs_image &v) {
             v.c.ctl.cpu1 |= Vmx_cpu1::TPR_SHADOW;
             v.c.vapic_addr = 0x3000;
             v.c.tpr_threshold = 4;
             v.c.vtpr = 0x40;
         }},
        {"conforming code with DPL below SS.DPL",
         [](Vmx_vmcs_image &v) {
             v.g.seg[CS].ar = 0xa09f;
             v.g.seg[SS].ar = 0xc0f3;
             v.g.seg[SS].sel = 0x13;
         }},
        {"CR0.CD and NW in the field (never checked)",
         [](Vmx_vmcs_image &v) { v.g.cr0 |= Cr0::CD | Cr0::NW; }},
        {"unusable data segments with any other access rights",
         [](Vmx_vmcs_image &v) {
             v.g.seg[DS].ar = Vmx_ar::UNUSABLE | 0xf00;
             v.g.seg[ES].ar = Vmx_ar::UNUSABLE | 0xfffe0000;
             v.g.seg[ES].base = u64{1} << 40;
         }},
        {"MSR areas",
         [](Vmx_vmcs_image &v) {
             v.c.entry_msr_load_count = v.c.exit_msr_store_count = v.c.exit_msr_load_count = 4;
             v.c.entry_msr_load_addr = v.c.exit_msr_store_addr = 0x8000;
             v.c.exit_msr_load_addr = 0x8040;
         }},
    };
    for (const Ok &k : oks) {
        Vmx_vmcs_image v = long_mode(c);
        k.set(v);
        Vmx_violation r = vmx_check_entry(c, v);
        EXPECT_EQ(r.rule, Vmx_rule::NONE) << k.what << ": " << show(r);
    }
}

TEST(VmxCheck, ErrorCodeBitExactlyForTheExceptionsThatPushOne)
{
    Vmx_caps c = vmx_caps(skylake());
    const std::set<u32> with_error = {8, 10, 11, 12, 13, 14, 17};  // #DF #TS #NP #SS #GP #PF #AC
    for (u32 vec = 0; vec < 32; vec++) {
        for (bool bit : {false, true}) {
            Vmx_vmcs_image v = long_mode(c);
            v.c.entry_intr_info =
                Vmx_intr::VALID | Vmx_intr::TYPE_HW_EXC | vec | (bit ? Vmx_intr::ERROR_CODE : 0);
            Vmx_rule want =
                bit == (with_error.count(vec) == 1) ? Vmx_rule::NONE : Vmx_rule::INJ_ERROR_CODE_BIT;
            EXPECT_EQ(vmx_check_entry(c, v).rule, want) << "vector " << vec << (bit ? " with" : " without");
        }
    }
}

TEST(VmxCheck, ErrorCodeBitFollowsProtectedModeWithUnrestrictedGuest)
{
    Vmx_caps c = vmx_caps(skylake());
    Vmx_vmcs_image v = real_mode(c);
    // Real mode delivers no error codes: #GP without the bit is right, with it wrong.
    v.c.entry_intr_info = Vmx_intr::VALID | Vmx_intr::TYPE_HW_EXC | 13;
    EXPECT_EQ(vmx_check_entry(c, v).rule, Vmx_rule::NONE);
    v.c.entry_intr_info |= Vmx_intr::ERROR_CODE;
    EXPECT_EQ(vmx_check_entry(c, v).rule, Vmx_rule::INJ_ERROR_CODE_BIT);
    // With IA32_VMX_BASIC bit 56 any hardware exception may carry one or not in protected mode.
    Vmx_caps any = c;
    any.basic |= Vmx_basic::ANY_ERROR_CODE;
    v = long_mode(any);
    v.c.entry_intr_info = Vmx_intr::VALID | Vmx_intr::TYPE_HW_EXC | 13;
    EXPECT_EQ(vmx_check_entry(any, v).rule, Vmx_rule::NONE);
    v.c.entry_intr_info = Vmx_intr::VALID | Vmx_intr::TYPE_HW_EXC | Vmx_intr::ERROR_CODE | 6;
    EXPECT_EQ(vmx_check_entry(any, v).rule, Vmx_rule::NONE);
    v.c.entry_intr_info = Vmx_intr::VALID | Vmx_intr::TYPE_NMI | Vmx_intr::ERROR_CODE | 2;
    EXPECT_EQ(vmx_check_entry(any, v).rule, Vmx_rule::INJ_ERROR_CODE_BIT) << "never for an NMI";
    // Zero instruction length needs IA32_VMX_MISC bit 30.
    Vmx_caps nozero = c;
    nozero.misc &= ~Vmx_misc::ZERO_INST_LEN;
    v = long_mode(nozero);
    v.c.entry_intr_info = Vmx_intr::VALID | Vmx_intr::TYPE_SW_INT | 0x80;
    EXPECT_EQ(vmx_check_entry(nozero, v).rule, Vmx_rule::INJ_INST_LEN);
}

enum Base { REAL, LONG, V86, PAE };

struct Case
{
    const char *name;
    Vmx_rule rule;
    u32 seg;
    Base base;
    void (*spoil)(Vmx_caps &, Vmx_vmcs_image &);
};

void PrintTo(const Case &k, std::ostream *os) { *os << k.name; }

using C = Vmx_caps;
using V = Vmx_vmcs_image;

void tpr_shadow(V &v)
{
    v.c.ctl.cpu1 |= Vmx_cpu1::TPR_SHADOW;
    v.c.vapic_addr = 0x3000;
}
void no_urg(V &v) { v.c.ctl.cpu2 &= ~Vmx_cpu2::UNRESTRICTED; }
void usable_ldtr(V &v) { v.g.seg[LDTR] = {0, 0xff, 0x82, 0x10000}; }

// clang-format off
const Case cases[] = {
    // 26.2.1.1
    {"PinReserved", Vmx_rule::CTL_PIN_RESERVED, SEGS, LONG, [](C &, V &v) { v.c.ctl.pin |= 1u << 8; }},
    {"PinRequired", Vmx_rule::CTL_PIN_RESERVED, SEGS, LONG, [](C &, V &v) { v.c.ctl.pin &= ~2u; }},
    {"Cpu1Reserved", Vmx_rule::CTL_CPU1_RESERVED, SEGS, LONG, [](C &, V &v) { v.c.ctl.cpu1 |= 1u; }},
    {"Cpu2Reserved", Vmx_rule::CTL_CPU2_RESERVED, SEGS, LONG, [](C &, V &v) { v.c.ctl.cpu2 |= 1u << 30; }},
    {"Cr3TargetCount", Vmx_rule::CTL_CR3_TARGET_COUNT, SEGS, LONG, [](C &, V &v) { v.c.cr3_target_count = 5; }},
    {"IoBitmapAddr", Vmx_rule::CTL_IO_BITMAP_ADDR, SEGS, LONG, [](C &, V &v) {
         v.c.ctl.cpu1 |= Vmx_cpu1::IO_BITMAPS; v.c.io_bitmap_a = 0x1000; v.c.io_bitmap_b = 0x2004; }},
    {"MsrBitmapAddr", Vmx_rule::CTL_MSR_BITMAP_ADDR, SEGS, LONG, [](C &, V &v) {
         v.c.ctl.cpu1 |= Vmx_cpu1::MSR_BITMAPS; v.c.msr_bitmap = u64{1} << 40; }},
    {"VapicAddr", Vmx_rule::CTL_VAPIC_ADDR, SEGS, LONG, [](C &, V &v) { tpr_shadow(v); v.c.vapic_addr = 0x3010; }},
    {"TprThresholdHigh", Vmx_rule::CTL_TPR_THRESHOLD_HIGH, SEGS, LONG, [](C &, V &v) {
         tpr_shadow(v); v.c.tpr_threshold = 0x10; }},
    {"TprThresholdVtpr", Vmx_rule::CTL_TPR_THRESHOLD_VTPR, SEGS, LONG, [](C &, V &v) {
         tpr_shadow(v); v.c.tpr_threshold = 5; v.c.vtpr = 0x40; }},
    {"ApicvWithoutTprShadow", Vmx_rule::CTL_APICV_WITHOUT_TPR_SHADOW, SEGS, LONG, [](C &, V &v) {
         v.c.ctl.cpu2 |= Vmx_cpu2::VIRT_INTR_DELIVERY; }},
    {"VnmiWithoutNmiExiting", Vmx_rule::CTL_VNMI_WITHOUT_NMI_EXITING, SEGS, LONG, [](C &, V &v) {
         v.c.ctl.pin &= ~Vmx_pin::NMI; }},
    {"NmiWindowWithoutVnmi", Vmx_rule::CTL_NMI_WINDOW_WITHOUT_VNMI, SEGS, LONG, [](C &, V &v) {
         v.c.ctl.pin &= ~Vmx_pin::VIRT_NMI; v.c.ctl.cpu1 |= Vmx_cpu1::NMI_WINDOW; }},
    {"ApicAccessAddr", Vmx_rule::CTL_APIC_ACCESS_ADDR, SEGS, LONG, [](C &, V &v) {
         v.c.ctl.cpu2 |= Vmx_cpu2::VIRT_APIC_ACCESS; v.c.apic_access_addr = 0x123; }},
    {"X2apicAndApicAccess", Vmx_rule::CTL_X2APIC_AND_APIC_ACCESS, SEGS, LONG, [](C &, V &v) {
         tpr_shadow(v); v.c.ctl.cpu2 |= Vmx_cpu2::VIRT_APIC_ACCESS | Vmx_cpu2::VIRT_X2APIC;
         v.c.apic_access_addr = 0x4000; }},
    {"VidWithoutExtIntr", Vmx_rule::CTL_VID_WITHOUT_EXT_INTR, SEGS, LONG, [](C &, V &v) {
         tpr_shadow(v); v.c.ctl.cpu2 |= Vmx_cpu2::VIRT_INTR_DELIVERY; v.c.ctl.pin &= ~Vmx_pin::EXT_INTR; }},
    {"PostedWithoutVid", Vmx_rule::CTL_POSTED_INTR, SEGS, LONG, [](C &c, V &v) {
         c.pin.may1 |= Vmx_pin::POSTED_INTR; v.c.ctl.pin |= Vmx_pin::POSTED_INTR; }},
    {"VpidZero", Vmx_rule::CTL_VPID_ZERO, SEGS, LONG, [](C &, V &v) { v.c.vpid = 0; }},
    {"EptpMemtype", Vmx_rule::CTL_EPTP_MEMTYPE, SEGS, LONG, [](C &, V &v) { v.c.eptp = (v.c.eptp & ~7ull) | 1; }},
    {"EptpWalk", Vmx_rule::CTL_EPTP_WALK, SEGS, LONG, [](C &, V &v) { v.c.eptp = (v.c.eptp & ~0x38ull) | 4u << 3; }},
    {"EptpAd", Vmx_rule::CTL_EPTP_AD, SEGS, LONG, [](C &c, V &v) {
         c.ept_vpid &= ~Vmx_ept_cap::AD_FLAGS; v.c.eptp |= Ept::EPTP_AD; }},
    {"EptpReserved", Vmx_rule::CTL_EPTP_RESERVED, SEGS, LONG, [](C &, V &v) { v.c.eptp |= 0x100; }},
    {"EptpBeyondMaxphyaddr", Vmx_rule::CTL_EPTP_RESERVED, SEGS, LONG, [](C &, V &v) { v.c.eptp |= u64{1} << 39; }},
    {"UrgWithoutEpt", Vmx_rule::CTL_URG_WITHOUT_EPT, SEGS, LONG, [](C &, V &v) { v.c.ctl.cpu2 &= ~Vmx_cpu2::EPT; }},
    {"PmlWithoutEpt", Vmx_rule::CTL_EPT_FEATURE_WITHOUT_EPT, SEGS, LONG, [](C &, V &v) {
         v.c.ctl.cpu2 = (v.c.ctl.cpu2 & ~(Vmx_cpu2::EPT | Vmx_cpu2::UNRESTRICTED)) | Vmx_cpu2::PML; }},
    // 26.2.1.2
    {"ExitReserved", Vmx_rule::CTL_EXIT_RESERVED, SEGS, LONG, [](C &, V &v) { v.c.ctl.exit |= 1u << 27; }},
    {"SaveTimerWithoutTimer", Vmx_rule::CTL_SAVE_TIMER_WITHOUT_TIMER, SEGS, LONG, [](C &, V &v) {
         v.c.ctl.exit |= Vmx_exit_ctl::SAVE_PREEMPT_TIMER; }},
    {"ExitMsrStoreAddr", Vmx_rule::CTL_EXIT_MSR_STORE_ADDR, SEGS, LONG, [](C &, V &v) {
         v.c.exit_msr_store_count = 1; v.c.exit_msr_store_addr = 0x1008; }},
    {"ExitMsrLoadAddr", Vmx_rule::CTL_EXIT_MSR_LOAD_ADDR, SEGS, LONG, [](C &, V &v) {
         v.c.exit_msr_load_count = 1; v.c.exit_msr_load_addr = u64{1} << 39; }},
    {"ExitMsrLoadEnd", Vmx_rule::CTL_EXIT_MSR_LOAD_ADDR, SEGS, LONG, [](C &, V &v) {
         v.c.exit_msr_load_count = 2; v.c.exit_msr_load_addr = (u64{1} << 39) - 16; }},
    // 26.2.1.3
    {"EntryReserved", Vmx_rule::CTL_ENTRY_RESERVED, SEGS, LONG, [](C &, V &v) { v.c.ctl.entry |= 1u << 31; }},
    {"InjType", Vmx_rule::INJ_TYPE, SEGS, LONG, [](C &, V &v) { v.c.entry_intr_info = Vmx_intr::VALID | 1u << 8; }},
    {"InjOtherWithoutMtf", Vmx_rule::INJ_TYPE, SEGS, LONG, [](C &c, V &v) {
         c.cpu1.may1 &= ~Vmx_cpu1::MTF; v.c.entry_intr_info = Vmx_intr::VALID | Vmx_intr::TYPE_OTHER; }},
    {"InjVector", Vmx_rule::INJ_VECTOR, SEGS, LONG, [](C &, V &v) {
         v.c.entry_intr_info = Vmx_intr::VALID | Vmx_intr::TYPE_NMI | 3; }},
    {"InjExceptionVector", Vmx_rule::INJ_VECTOR, SEGS, LONG, [](C &, V &v) {
         v.c.entry_intr_info = Vmx_intr::VALID | Vmx_intr::TYPE_HW_EXC | 32; }},
    {"InjErrorCodeBit", Vmx_rule::INJ_ERROR_CODE_BIT, SEGS, LONG, [](C &, V &v) {
         v.c.entry_intr_info = Vmx_intr::VALID | Vmx_intr::TYPE_HW_EXC | 13; }},
    {"InjReserved", Vmx_rule::INJ_RESERVED, SEGS, LONG, [](C &, V &v) {
         v.c.entry_intr_info = Vmx_intr::VALID | 0x30 | 1u << 20; }},
    {"InjWindowBitLeftIn", Vmx_rule::INJ_RESERVED, SEGS, LONG, [](C &, V &v) {
         v.c.entry_intr_info = Vmx_intr::VALID | 0x30 | Inj::REQ_INTR_WINDOW; }},
    {"InjErrorCode", Vmx_rule::INJ_ERROR_CODE, SEGS, LONG, [](C &, V &v) {
         v.c.entry_intr_info = Vmx_intr::VALID | Vmx_intr::TYPE_HW_EXC | Vmx_intr::ERROR_CODE | 13;
         v.c.entry_error = 0x10000; }},
    {"InjInstLen", Vmx_rule::INJ_INST_LEN, SEGS, LONG, [](C &, V &v) {
         v.c.entry_intr_info = Vmx_intr::VALID | Vmx_intr::TYPE_SW_INT | 0x80; v.c.entry_inst_len = 16; }},
    {"EntryMsrLoadAddr", Vmx_rule::CTL_ENTRY_MSR_LOAD_ADDR, SEGS, LONG, [](C &, V &v) {
         v.c.entry_msr_load_count = 2; v.c.entry_msr_load_addr = 0xff8; }},
    {"EntrySmm", Vmx_rule::CTL_ENTRY_SMM, SEGS, LONG, [](C &, V &v) { v.c.ctl.entry |= Vmx_entry_ctl::ENTRY_SMM; }},
    // 26.2.2 - 26.2.4
    {"HostCr0Fixed", Vmx_rule::HOST_CR0_FIXED, SEGS, LONG, [](C &, V &v) { v.h.cr0 &= ~Cr0::NE; }},
    {"HostCr4Fixed", Vmx_rule::HOST_CR4_FIXED, SEGS, LONG, [](C &, V &v) { v.h.cr4 &= ~Cr4::VMXE; }},
    {"HostCr4CetWp", Vmx_rule::HOST_CR4_CET_WP, SEGS, LONG, [](C &c, V &v) {
         c.cr4_fixed1 |= CR4_CET; v.h.cr4 |= CR4_CET; v.h.cr0 &= ~Cr0::WP; }},
    {"HostCr3Width", Vmx_rule::HOST_CR3_WIDTH, SEGS, LONG, [](C &, V &v) { v.h.cr3 = u64{1} << 45; }},
    {"HostSysenter", Vmx_rule::HOST_SYSENTER_CANONICAL, SEGS, LONG, [](C &, V &v) {
         v.h.sysenter_esp = 0x0000800000000000; }},
    {"HostPat", Vmx_rule::HOST_PAT, SEGS, LONG, [](C &, V &v) { v.h.pat = 0x02; }},
    {"HostEferReserved", Vmx_rule::HOST_EFER_RESERVED, SEGS, LONG, [](C &, V &v) { v.h.efer |= Efer::SVME; }},
    {"HostEferLma", Vmx_rule::HOST_EFER_LMA_LME, SEGS, LONG, [](C &, V &v) { v.h.efer &= ~Efer::LMA; }},
    {"HostSelRpl", Vmx_rule::HOST_SEL_RPL_TI, SEGS, LONG, [](C &, V &v) { v.h.ds = 0x13; }},
    {"HostSelTi", Vmx_rule::HOST_SEL_RPL_TI, SEGS, LONG, [](C &, V &v) { v.h.tr = 0x2c; }},
    {"HostCsNull", Vmx_rule::HOST_CS_NULL, SEGS, LONG, [](C &, V &v) { v.h.cs = 0; }},
    {"HostTrNull", Vmx_rule::HOST_TR_NULL, SEGS, LONG, [](C &, V &v) { v.h.tr = 0; }},
    {"HostBase", Vmx_rule::HOST_BASE_CANONICAL, SEGS, LONG, [](C &, V &v) { v.h.gs_base = 0x0000800000000000; }},
    {"HostAddrSize", Vmx_rule::HOST_ADDR_SIZE, SEGS, LONG, [](C &, V &v) {
         v.c.ctl.exit &= ~(Vmx_exit_ctl::HOST_64 | Vmx_exit_ctl::LOAD_EFER); }},
    {"HostPae", Vmx_rule::HOST_PAE, SEGS, LONG, [](C &, V &v) { v.h.cr4 &= ~Cr4::PAE; }},
    {"HostRip", Vmx_rule::HOST_RIP_CANONICAL, SEGS, LONG, [](C &, V &v) { v.h.rip = 0x0000800000000000; }},
    // 26.3.1.1
    {"Cr0Fixed", Vmx_rule::G_CR0_FIXED, SEGS, LONG, [](C &, V &v) { v.g.cr0 &= ~Cr0::NE; }},
    {"Cr0High", Vmx_rule::G_CR0_FIXED, SEGS, LONG, [](C &, V &v) { v.g.cr0 |= u64{1} << 32; }},
    {"Cr0PeWithoutUrg", Vmx_rule::G_CR0_FIXED, SEGS, REAL, [](C &, V &v) { no_urg(v); }},
    {"Cr0PgWithoutPe", Vmx_rule::G_CR0_PG_WITHOUT_PE, SEGS, REAL, [](C &, V &v) { v.g.cr0 |= Cr0::PG; }},
    {"Cr4Fixed", Vmx_rule::G_CR4_FIXED, SEGS, REAL, [](C &, V &v) { v.g.cr4 &= ~Cr4::VMXE; }},
    {"Cr4CetWp", Vmx_rule::G_CR4_CET_WP, SEGS, REAL, [](C &c, V &v) { c.cr4_fixed1 |= CR4_CET; v.g.cr4 |= CR4_CET; }},
    {"Debugctl", Vmx_rule::G_DEBUGCTL, SEGS, LONG, [](C &, V &v) { v.g.debugctl = 4; }},
    {"Ia32eWithoutPae", Vmx_rule::G_IA32E_PG_PAE, SEGS, LONG, [](C &, V &v) { v.g.cr4 &= ~Cr4::PAE; }},
    {"PcideOutsideIa32e", Vmx_rule::G_PCIDE_NOT_IA32E, SEGS, REAL, [](C &, V &v) { v.g.cr4 |= Cr4::PCIDE; }},
    {"Cr3Width", Vmx_rule::G_CR3_WIDTH, SEGS, REAL, [](C &, V &v) { v.g.cr3 = u64{1} << 39; }},
    {"Dr7High", Vmx_rule::G_DR7_HIGH, SEGS, LONG, [](C &, V &v) { v.g.dr7 |= u64{1} << 32; }},
    {"Sysenter", Vmx_rule::G_SYSENTER_CANONICAL, SEGS, LONG, [](C &, V &v) { v.g.sysenter_eip = u64{1} << 47; }},
    {"Pat", Vmx_rule::G_PAT, SEGS, LONG, [](C &, V &v) { v.g.pat = 0x0307040600070406; }},
    {"EferReserved", Vmx_rule::G_EFER_RESERVED, SEGS, LONG, [](C &, V &v) { v.g.efer |= Efer::SVME; }},
    {"EferLmaVsIa32e", Vmx_rule::G_EFER_LMA_IA32E, SEGS, LONG, [](C &, V &v) {
         v.c.ctl.entry &= ~Vmx_entry_ctl::IA32E_GUEST; }},
    {"EferLmaVsLme", Vmx_rule::G_EFER_LMA_LME, SEGS, LONG, [](C &, V &v) { v.g.efer &= ~Efer::LME; }},
    // 26.3.1.2 selectors and bases
    {"TrTi", Vmx_rule::G_TR_TI, TR, LONG, [](C &, V &v) { v.g.seg[TR].sel = 0x1c; }},
    {"LdtrTi", Vmx_rule::G_LDTR_TI, LDTR, LONG, [](C &, V &v) { usable_ldtr(v); v.g.seg[LDTR].sel = 0x24; }},
    {"SsCsRpl", Vmx_rule::G_SS_CS_RPL, SS, LONG, [](C &, V &v) { no_urg(v); v.g.seg[SS].sel = 0x13; }},
    {"V86Base", Vmx_rule::G_V86_BASE, CS, V86, [](C &, V &v) { v.g.seg[CS].base = 0; }},
    {"V86Limit", Vmx_rule::G_V86_LIMIT, DS, V86, [](C &, V &v) { v.g.seg[DS].limit = 0xfffff; }},
    {"V86Ar", Vmx_rule::G_V86_AR, SS, V86, [](C &, V &v) { v.g.seg[SS].ar = 0x93; }},
    {"BaseCanonical", Vmx_rule::G_BASE_CANONICAL, FS, LONG, [](C &, V &v) { v.g.seg[FS].base = 0x0000800000000000; }},
    {"LdtrBaseCanonical", Vmx_rule::G_BASE_CANONICAL, LDTR, LONG, [](C &, V &v) {
         usable_ldtr(v); v.g.seg[LDTR].base = 0x0000800000000000; }},
    {"BaseHigh", Vmx_rule::G_BASE_HIGH, DS, LONG, [](C &, V &v) { v.g.seg[DS].base = u64{1} << 32; }},
    {"CsBaseHigh", Vmx_rule::G_BASE_HIGH, CS, LONG, [](C &, V &v) { v.g.seg[CS].base = u64{1} << 32; }},
    // 26.3.1.2 access rights
    {"CsType", Vmx_rule::G_CS_TYPE, CS, LONG, [](C &, V &v) { v.g.seg[CS].ar = 0xa091; }},
    {"CsDataTypeWithoutUrg", Vmx_rule::G_CS_TYPE, CS, LONG, [](C &, V &v) { no_urg(v); v.g.seg[CS].ar = 0xa093; }},
    {"SsType", Vmx_rule::G_SS_TYPE, SS, LONG, [](C &, V &v) { v.g.seg[SS].ar = 0xc09b; }},
    {"DataNotAccessed", Vmx_rule::G_DATA_TYPE, DS, LONG, [](C &, V &v) { v.g.seg[DS].ar = 0xc092; }},
    {"DataExecuteOnly", Vmx_rule::G_DATA_TYPE, GS, LONG, [](C &, V &v) { v.g.seg[GS].ar = 0xc099; }},
    {"SegS", Vmx_rule::G_SEG_S, ES, LONG, [](C &, V &v) { v.g.seg[ES].ar = 0xc083; }},
    {"CsDpl", Vmx_rule::G_CS_DPL, CS, LONG, [](C &, V &v) { v.g.seg[CS].ar = 0xa0fb; }},
    {"ConformingCsDpl", Vmx_rule::G_CS_DPL, CS, LONG, [](C &, V &v) { v.g.seg[CS].ar = 0xa0ff; }},
    {"SsDplRpl", Vmx_rule::G_SS_DPL_RPL, SS, LONG, [](C &, V &v) {
         no_urg(v); v.g.seg[SS].sel = 0x13; v.g.seg[CS].sel = 0x0b; }},
    {"SsDplZeroInRealMode", Vmx_rule::G_SS_DPL_ZERO, SS, REAL, [](C &, V &v) {
         v.g.seg[CS].ar = 0x9f; v.g.seg[SS].ar = 0xf3; }},
    {"DataDpl", Vmx_rule::G_DATA_DPL, DS, LONG, [](C &, V &v) { no_urg(v); v.g.seg[DS].sel = 0x13; }},
    {"SegPresent", Vmx_rule::G_SEG_PRESENT, DS, LONG, [](C &, V &v) { v.g.seg[DS].ar = 0xc013; }},
    {"SegReserved", Vmx_rule::G_SEG_AR_RESERVED, SS, LONG, [](C &, V &v) { v.g.seg[SS].ar |= 0x100; }},
    {"SegReservedHigh", Vmx_rule::G_SEG_AR_RESERVED, CS, LONG, [](C &, V &v) { v.g.seg[CS].ar |= 1u << 20; }},
    {"CsLongWithDb", Vmx_rule::G_CS_L_DB, CS, LONG, [](C &, V &v) { v.g.seg[CS].ar |= Vmx_ar::DB; }},
    {"SegGranularitySet", Vmx_rule::G_SEG_G, ES, LONG, [](C &, V &v) { v.g.seg[ES].limit = 0xffff0000; }},
    {"SegGranularityClear", Vmx_rule::G_SEG_G, DS, REAL, [](C &, V &v) { v.g.seg[DS].limit = 0x100000; }},
    {"TrType", Vmx_rule::G_TR_TYPE, TR, LONG, [](C &, V &v) { v.g.seg[TR].ar = 0x83; }},
    {"TrAvailable", Vmx_rule::G_TR_TYPE, TR, REAL, [](C &, V &v) { v.g.seg[TR].ar = 0x89; }},
    {"TrS", Vmx_rule::G_TR_S, TR, LONG, [](C &, V &v) { v.g.seg[TR].ar |= Vmx_ar::S; }},
    {"TrPresent", Vmx_rule::G_TR_PRESENT, TR, LONG, [](C &, V &v) { v.g.seg[TR].ar &= ~Vmx_ar::P; }},
    {"TrReserved", Vmx_rule::G_SEG_AR_RESERVED, TR, LONG, [](C &, V &v) { v.g.seg[TR].ar |= 1u << 17; }},
    {"TrReservedLow", Vmx_rule::G_SEG_AR_RESERVED, TR, LONG, [](C &, V &v) { v.g.seg[TR].ar |= 0x400; }},
    {"TrReservedBeforeUnusable", Vmx_rule::G_SEG_AR_RESERVED, TR, LONG, [](C &, V &v) {
         v.g.seg[TR].ar |= 0x400 | Vmx_ar::UNUSABLE; }},
    {"TrGranularity", Vmx_rule::G_SEG_G, TR, LONG, [](C &, V &v) { v.g.seg[TR].ar |= Vmx_ar::G; }},
    {"TrUnusable", Vmx_rule::G_TR_UNUSABLE, TR, LONG, [](C &, V &v) { v.g.seg[TR].ar |= Vmx_ar::UNUSABLE; }},
    {"LdtrType", Vmx_rule::G_LDTR_TYPE, LDTR, LONG, [](C &, V &v) { usable_ldtr(v); v.g.seg[LDTR].ar = 0x83; }},
    {"LdtrS", Vmx_rule::G_LDTR_S, LDTR, LONG, [](C &, V &v) { usable_ldtr(v); v.g.seg[LDTR].ar = 0x92; }},
    {"LdtrPresent", Vmx_rule::G_LDTR_PRESENT, LDTR, LONG, [](C &, V &v) { usable_ldtr(v); v.g.seg[LDTR].ar = 0x02; }},
    {"LdtrReservedHigh", Vmx_rule::G_SEG_AR_RESERVED, LDTR, LONG, [](C &, V &v) {
         usable_ldtr(v); v.g.seg[LDTR].ar |= 1u << 18; }},
    {"LdtrReservedBeforeGranularity", Vmx_rule::G_SEG_AR_RESERVED, LDTR, LONG, [](C &, V &v) {
         usable_ldtr(v); v.g.seg[LDTR].ar |= 0x200; v.g.seg[LDTR].limit = 0x100000; }},
    {"LdtrReserved", Vmx_rule::G_SEG_AR_RESERVED, LDTR, LONG, [](C &, V &v) {
         usable_ldtr(v); v.g.seg[LDTR].ar |= 0x200; }},
    {"LdtrGranularity", Vmx_rule::G_SEG_G, LDTR, LONG, [](C &, V &v) {
         usable_ldtr(v); v.g.seg[LDTR].limit = 0x100000; }},
    // 26.3.1.3
    {"GdtrBase", Vmx_rule::G_DTR_BASE, SEGS, LONG, [](C &, V &v) { v.g.gdtr_base = u64{1} << 47; }},
    {"IdtrLimit", Vmx_rule::G_DTR_LIMIT, SEGS, LONG, [](C &, V &v) { v.g.idtr_limit = 0x10000; }},
    // 26.3.1.4
    {"RipHigh", Vmx_rule::G_RIP_HIGH, SEGS, REAL, [](C &, V &v) { v.g.rip = u64{1} << 32; }},
    {"RipCompatMode", Vmx_rule::G_RIP_HIGH, SEGS, LONG, [](C &, V &v) {
         v.g.seg[CS].ar = 0xc09b; v.g.rip = u64{1} << 32; }},
    {"RipCanonical", Vmx_rule::G_RIP_CANONICAL, SEGS, LONG, [](C &, V &v) { v.g.rip = u64{1} << 48; }},
    {"RflagsReserved1", Vmx_rule::G_RFLAGS_RESERVED, SEGS, LONG, [](C &, V &v) { v.g.rflags &= ~2ull; }},
    {"RflagsReserved0", Vmx_rule::G_RFLAGS_RESERVED, SEGS, LONG, [](C &, V &v) { v.g.rflags |= 1u << 15; }},
    {"RflagsHigh", Vmx_rule::G_RFLAGS_RESERVED, SEGS, LONG, [](C &, V &v) { v.g.rflags |= 1u << 22; }},
    {"RflagsVmInRealMode", Vmx_rule::G_RFLAGS_VM, SEGS, V86, [](C &c, V &v) {
         v.g.cr0 = vmx_cr0(c, 0x10, 0, true).guest; }},
    {"RflagsIfForExtint", Vmx_rule::G_RFLAGS_IF_INJ, SEGS, LONG, [](C &, V &v) {
         v.g.rflags = 2; v.c.entry_intr_info = Vmx_intr::VALID | 0x30; }},
    // 26.3.1.5
    {"Activity", Vmx_rule::G_ACTIVITY, SEGS, LONG, [](C &, V &v) { v.g.activity = 4; }},
    {"ActivityUnsupported", Vmx_rule::G_ACTIVITY, SEGS, LONG, [](C &c, V &v) {
         c.misc &= ~Vmx_misc::ACT_SHUTDOWN; v.g.activity = Vmx_activity::SHUTDOWN; }},
    {"HltDpl", Vmx_rule::G_ACTIVITY_HLT_DPL, SEGS, LONG, [](C &, V &v) {
         v.g.activity = Vmx_activity::HLT;
         v.g.seg[CS] = {0x0b, 0xffffffff, 0xa0fb, 0}; v.g.seg[SS] = {0x13, 0xffffffff, 0xc0f3, 0}; }},
    {"ActivityBlocking", Vmx_rule::G_ACTIVITY_BLOCKING, SEGS, LONG, [](C &, V &v) {
         v.g.activity = Vmx_activity::HLT; v.g.intr_state = Vmx_intr_state::STI; }},
    {"ActivityInj", Vmx_rule::G_ACTIVITY_INJ, SEGS, LONG, [](C &, V &v) {
         v.g.activity = Vmx_activity::HLT;
         v.c.entry_intr_info = Vmx_intr::VALID | Vmx_intr::TYPE_HW_EXC | Vmx_intr::ERROR_CODE | 13; }},
    {"ActivityWaitSipiInj", Vmx_rule::G_ACTIVITY_INJ, SEGS, LONG, [](C &, V &v) {
         v.g.activity = Vmx_activity::WAIT_SIPI; v.c.entry_intr_info = Vmx_intr::VALID | Vmx_intr::TYPE_NMI | 2; }},
    {"IntrReserved", Vmx_rule::G_INTR_RESERVED, SEGS, LONG, [](C &, V &v) { v.g.intr_state = 1u << 5; }},
    {"IntrStiMovSs", Vmx_rule::G_INTR_STI_MOVSS, SEGS, LONG, [](C &, V &v) {
         v.g.intr_state = Vmx_intr_state::STI | Vmx_intr_state::MOV_SS; }},
    {"IntrStiIf", Vmx_rule::G_INTR_STI_IF, SEGS, LONG, [](C &, V &v) {
         v.g.rflags = 2; v.g.intr_state = Vmx_intr_state::STI; }},
    {"IntrExtint", Vmx_rule::G_INTR_EXTINT, SEGS, LONG, [](C &, V &v) {
         v.g.intr_state = Vmx_intr_state::MOV_SS; v.c.entry_intr_info = Vmx_intr::VALID | 0x30; }},
    {"IntrNmiMovSs", Vmx_rule::G_INTR_NMI_MOVSS, SEGS, LONG, [](C &, V &v) {
         v.g.intr_state = Vmx_intr_state::MOV_SS; v.c.entry_intr_info = Vmx_intr::VALID | Vmx_intr::TYPE_NMI | 2; }},
    {"IntrSmi", Vmx_rule::G_INTR_SMI, SEGS, LONG, [](C &, V &v) { v.g.intr_state = Vmx_intr_state::SMI; }},
    {"IntrVnmi", Vmx_rule::G_INTR_VNMI, SEGS, LONG, [](C &, V &v) {
         v.g.intr_state = Vmx_intr_state::NMI; v.c.entry_intr_info = Vmx_intr::VALID | Vmx_intr::TYPE_NMI | 2; }},
    {"IntrEnclave", Vmx_rule::G_INTR_ENCLAVE, SEGS, LONG, [](C &, V &v) { v.g.intr_state = Vmx_intr_state::ENCLAVE; }},
    {"PendingDbgReserved", Vmx_rule::G_PDBG_RESERVED, SEGS, LONG, [](C &, V &v) { v.g.pending_dbg = 1u << 4; }},
    {"PendingBsMissing", Vmx_rule::G_PDBG_BS_SET, SEGS, LONG, [](C &, V &v) {
         v.g.rflags |= RFLAGS_TF; v.g.intr_state = Vmx_intr_state::STI; }},
    {"PendingBsWithoutTf", Vmx_rule::G_PDBG_BS_CLEAR, SEGS, LONG, [](C &, V &v) {
         v.g.pending_dbg = Vmx_pending_dbg::BS; v.g.intr_state = Vmx_intr_state::MOV_SS; }},
    {"PendingBsWithBtf", Vmx_rule::G_PDBG_BS_CLEAR, SEGS, LONG, [](C &, V &v) {
         v.g.rflags |= RFLAGS_TF; v.g.debugctl = 2; v.g.pending_dbg = Vmx_pending_dbg::BS;
         v.g.activity = Vmx_activity::HLT; }},
    {"PendingRtm", Vmx_rule::G_PDBG_RTM, SEGS, LONG, [](C &, V &v) {
         v.g.pending_dbg = Vmx_pending_dbg::RTM | Vmx_pending_dbg::ENABLED_BP; }},
    {"LinkPtr", Vmx_rule::G_LINK_PTR, SEGS, LONG, [](C &, V &v) { v.g.link_ptr = 0x1234; }},
    // 26.3.1.6
    {"Pdpte", Vmx_rule::G_PDPTE, SEGS, PAE, [](C &, V &v) { v.g.pdpte[1] |= 2; }},
    {"PdpteWidth", Vmx_rule::G_PDPTE, SEGS, PAE, [](C &, V &v) { v.g.pdpte[3] |= u64{1} << 39; }},
};
// clang-format on

class VmxRule : public testing::TestWithParam<Case>
{
};

TEST_P(VmxRule, BreakingItIsTheFirstViolation)
{
    const Case &k = GetParam();
    Vmx_caps c = vmx_caps(skylake());
    Vmx_vmcs_image v = k.base == REAL   ? real_mode(c)
                       : k.base == LONG ? long_mode(c)
                       : k.base == V86  ? v86_mode(c)
                                        : pae_mode(c);
    ASSERT_EQ(vmx_check_entry(c, v).rule, Vmx_rule::NONE) << "the base state must be valid";
    k.spoil(c, v);
    Vmx_violation r = vmx_check_entry(c, v);
    EXPECT_EQ(r.rule, k.rule) << "got: " << show(r) << "\nwant: " << vmx_rule_text(k.rule);
    EXPECT_EQ(r.seg, k.seg) << show(r);
}

INSTANTIATE_TEST_SUITE_P(Sdm, VmxRule, testing::ValuesIn(cases),
                         [](const testing::TestParamInfo<Case> &i) { return std::string(i.param.name); });

TEST(VmxCheck, EveryRuleHasACaseAndAText)
{
    std::set<Vmx_rule> tested;
    for (const Case &k : cases)
        tested.insert(k.rule);
    for (unsigned i = 1; i < static_cast<unsigned>(Vmx_rule::COUNT); i++) {
        auto r = static_cast<Vmx_rule>(i);
        EXPECT_TRUE(tested.count(r)) << "no case breaks " << vmx_rule_text(r);
        EXPECT_STRNE(vmx_rule_text(r), "") << i;
        EXPECT_EQ(std::string(vmx_rule_section(r)).rfind("26.", 0), 0u) << vmx_rule_text(r);
    }
    EXPECT_STREQ(vmx_rule_text(Vmx_rule::COUNT), "unknown rule");
}

}  // namespace
