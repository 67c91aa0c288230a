/*
 * The VMCS side of VMX vCPUs (src/vmx_state.cpp) over a VMCS kept in a table: a new vCPU's VMCS
 * passes the SDM's entry checks with the kernel's host state, the UTCB transfer round-trips every
 * MTD group, the VMM's writes are sanitised (controls, CR0/CR4, XCR0, injection), and exits are
 * handled as ABI 10.3 says (event numbers, re-injection, the pending injection for 33 and 255).
 */
#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "abi/constants.hpp"
#include "abi/mtd.hpp"
#include "vmx_msr_sets.hpp"
#include "vmx_state.hpp"

namespace {

using namespace Vmcs;

std::map<u32, u64> vmcs;
u64 rd(u32 f) { return vmcs.count(f) ? vmcs[f] : 0; }
void wr(u32 f, u64 v) { vmcs[f] = v; }
constexpr Vmcs_io io{rd, wr};

constexpr u64 MSRS = 0x5000, HOST_MSRS = 0x6000, EPTP_PHYS = 0x100000, ACCESS = 0x7000;

struct World
{
    Vmx_caps caps = vmx_caps(vmx_sets::skylake());
    Vmx_state::Host host{caps, true, 0x7, 0, Vmx_guest_msr::COUNT};
    Vcpu v;
    Exc_frame r{};

    Vmx_msr_entry msrs[Vmx_guest_msr::COUNT];

    World(bool vpid = true)
    {
        vmcs.clear();
        v.msrs = msrs;
        v.tag = vpid ? 1 : 0;
        Vmx_state::init(io, host, v, MSRS, HOST_MSRS, ept_pointer(EPTP_PHYS), ACCESS);
        // The host state the kernel writes (src/vmx.cpp write_host_state), as a kernel has it.
        wr(HOST_CR0, 0x80050033);
        wr(HOST_CR3, 0x2000);
        wr(HOST_CR4, Cr4::PAE | Cr4::PGE | Cr4::OSFXSR | Cr4::OSXMMEXCPT | Cr4::VMXE);
        wr(HOST_EFER, Efer::SCE | Efer::LME | Efer::LMA | Efer::NXE);
        wr(HOST_PAT, 0x0007040600070406ull);
        wr(HOST_CS_SEL, 0x08);
        wr(HOST_SS_SEL, 0x10);
        wr(HOST_DS_SEL, 0x10);
        wr(HOST_ES_SEL, 0x10);
        wr(HOST_TR_SEL, 0x30);
        wr(HOST_GS_BASE, 0xffff800000001000);
        wr(HOST_TR_BASE, 0xffff800000002000);
        wr(HOST_GDTR_BASE, 0xffff800000003000);
        wr(HOST_IDTR_BASE, 0xffff800000004000);
        wr(HOST_RIP, 0xffffffff80100000);
    }
    Vmx_rule check() { return vmx_check_entry(caps, Vmx_state::image(io, 0)).rule; }
};

TEST(VmxXfer, NewVcpuIsTheResetStateAndPassesTheEntryChecks)
{
    World w;
    EXPECT_EQ(w.check(), Vmx_rule::NONE) << vmx_rule_text(w.check());
    EXPECT_EQ(rd(GUEST_RIP), 0xfff0u);
    EXPECT_EQ(rd(GUEST_CS_SEL), 0xf000u);
    EXPECT_EQ(rd(GUEST_CS_BASE), 0xffff0000u);
    EXPECT_EQ(rd(VMCS_LINK_PTR), ~u64{0});
    EXPECT_EQ(rd(EPT_POINTER), ept_pointer(EPTP_PHYS));
    EXPECT_EQ(rd(EXCEPTION_BITMAP), 1u << 17 | 1u << 1 | 1u << 18) << "#AC, #DB and #MC always exit";
    EXPECT_EQ(rd(VPID), 1u);
    EXPECT_TRUE(rd(PROC_CONTROLS2) & Vmx_cpu2::VPID);
    EXPECT_TRUE(rd(PROC_CONTROLS) & Vmx_cpu1::HLT);
    EXPECT_TRUE(rd(PROC_CONTROLS) & Vmx_cpu1::UNCOND_IO);
    EXPECT_FALSE(rd(PROC_CONTROLS) & Vmx_cpu1::MSR_BITMAPS);
    EXPECT_TRUE(rd(PIN_CONTROLS) & Vmx_pin::EXT_INTR);
    EXPECT_TRUE(rd(PIN_CONTROLS) & Vmx_pin::NMI);
    EXPECT_FALSE(rd(EXIT_CONTROLS) & Vmx_exit_ctl::ACK_INTR) << "interrupts stay pending for the host's IDT";
    EXPECT_FALSE(rd(ENTRY_CONTROLS) & Vmx_entry_ctl::IA32E_GUEST);
    // The MSR areas: the guest's loaded at entry and stored at exit, the host's loaded at exit.
    EXPECT_EQ(rd(ENTRY_MSR_LOAD_ADDR), MSRS);
    EXPECT_EQ(rd(EXIT_MSR_STORE_ADDR), MSRS);
    EXPECT_EQ(rd(EXIT_MSR_LOAD_ADDR), HOST_MSRS);
    EXPECT_EQ(rd(ENTRY_MSR_LOAD_COUNT), 5u);
    EXPECT_EQ(w.v.msrs[Vmx_guest_msr::LSTAR].index, 0xc0000082u);
    EXPECT_EQ(w.v.msrs[Vmx_guest_msr::KERNEL_GS_BASE].index, 0xc0000102u);
    // No virtual-APIC page: neither it nor the APIC-access page is programmed.
    EXPECT_EQ(rd(VIRTUAL_APIC_ADDR), 0u);
    EXPECT_EQ(rd(APIC_ACCESS_ADDR), 0u);
    EXPECT_FALSE(rd(PROC_CONTROLS) & Vmx_cpu1::TPR_SHADOW);
    // The VMM and the guest see the reset CR0; the CPU runs with what VMX allows.
    Utcb u{};
    w.r.vector = Abi::Vmi::STARTUP;
    Vmx_state::to_utcb(io, w.r, w.v, Mtd::CR, u);
    EXPECT_EQ(u.cr0, 0x60000010u);
    EXPECT_EQ(u.cr4, 0u);
    EXPECT_TRUE(rd(GUEST_CR4) & Cr4::VMXE);
    EXPECT_FALSE(rd(GUEST_CR0) & (Cr0::CD | Cr0::NW));
}

TEST(VmxXfer, WithoutVpidTheControlIsOff)
{
    World w(false);
    EXPECT_FALSE(rd(PROC_CONTROLS2) & Vmx_cpu2::VPID);
    EXPECT_EQ(w.check(), Vmx_rule::NONE);
}

TEST(VmxXfer, VirtualApicAndAccessPage)
{
    World w;
    w.v.vapic_phys = 0x9000;
    w.v.apic_access = true;
    Vmx_state::init(io, w.host, w.v, MSRS, HOST_MSRS, ept_pointer(EPTP_PHYS), ACCESS);
    EXPECT_EQ(rd(VIRTUAL_APIC_ADDR), 0x9000u);
    EXPECT_EQ(rd(APIC_ACCESS_ADDR), ACCESS);
    Utcb u{};
    u.mtd = Mtd::CTRL;
    u.ctrl[0] = Vmx_cpu1::TPR_SHADOW;
    u.ctrl[1] = Vmx_cpu2::VIRT_APIC_ACCESS;
    EXPECT_EQ(Vmx_state::from_utcb(io, w.host, u, w.r, w.v), nullptr);
    EXPECT_TRUE(rd(PROC_CONTROLS) & Vmx_cpu1::TPR_SHADOW);
    EXPECT_TRUE(rd(PROC_CONTROLS2) & Vmx_cpu2::VIRT_APIC_ACCESS);
    EXPECT_FALSE(rd(PROC_CONTROLS) & Vmx_cpu1::CR8_LOAD) << "TPR shadow replaces the CR8 exits";
}

/* A 64-bit guest state as a VMM would write it at startup. */
Utcb long_mode_reply()
{
    Utcb u{};
    u.mtd = Mtd::ALL & ~(Mtd::FPU | Mtd::TLB | Mtd::QUAL);
    u.rax = 1, u.rcx = 2, u.rdx = 3, u.rbx = 4, u.rbp = 5, u.rsi = 6, u.rdi = 7;
    u.r8 = 8, u.r9 = 9, u.r10 = 10, u.r11 = 11, u.r12 = 12, u.r13 = 13, u.r14 = 14, u.r15 = 15;
    u.rsp = 0x8000, u.rip = 0x100000, u.inst_len = 0, u.rflags = 0x202;
    u.cs = {0x08, 0xa9b, 0xffffffff, 0};
    for (Utcb_segment *s : {&u.ss, &u.ds, &u.es, &u.fs, &u.gs})
        *s = {0x10, 0xc93, 0xffffffff, 0};
    u.fs.base = 0x1234000;
    u.gs.base = 0x5678000;
    u.ldtr = {0, 0x1000, 0, 0};  // unusable
    u.tr = {0x18, 0x8b, 0x67, 0x3000};
    u.gdtr = {0, 0, 0x27, 0x2000};
    u.idtr = {0, 0, 0xfff, 0x4000};
    u.cr0 = 0x80050033, u.cr2 = 0xdead000, u.cr3 = 0x10000, u.cr4 = Cr4::PAE | Cr4::OSFXSR;
    u.xcr0 = 3;
    u.dr7 = 0x400;
    u.sysenter_cs = 8, u.sysenter_rsp = 0x9000, u.sysenter_rip = 0xa000;
    u.efer = Efer::SCE | Efer::LME | Efer::LMA | Efer::NXE;
    u.pat = 0x0007040600070406ull;
    u.star = 0x0023001000000000ull, u.lstar = 0xffffffff81000000ull, u.fmask = 0x47700,
    u.kernel_gs_base = 0xffff888000000000ull;
    u.tsc_off = 0x1000, u.tsc_aux = 3;
    u.intr_state = 0, u.actv_state = 0;
    u.intr_info = 0;
    u.exc_bitmap = 1u << 14;
    u.tpr_threshold = 0;
    return u;
}

TEST(VmxXfer, ReplyAndDeliveryRoundTripEveryGroup)
{
    World w;
    Utcb u = long_mode_reply();
    ASSERT_EQ(Vmx_state::from_utcb(io, w.host, u, w.r, w.v), nullptr);
    EXPECT_EQ(w.check(), Vmx_rule::NONE) << vmx_rule_text(w.check());
    EXPECT_TRUE(rd(ENTRY_CONTROLS) & Vmx_entry_ctl::IA32E_GUEST) << "IA-32e mode guest follows EFER.LMA";
    EXPECT_EQ(rd(EXCEPTION_BITMAP), 1u << 14 | 1u << 17 | 1u << 1 | 1u << 18);

    Utcb d{};
    w.r.vector = 10;  // CPUID
    wr(EXIT_INST_LEN, 2);
    Vmx_state::to_utcb(io, w.r, w.v, u.mtd, d);
    EXPECT_EQ(d.items, Utcb::EVENT_ITEMS);
    EXPECT_EQ(d.inst_len, 2u);
    for (auto f : {&Utcb::rax,         &Utcb::rcx,          &Utcb::rdx,
                   &Utcb::rbx,         &Utcb::rbp,          &Utcb::rsi,
                   &Utcb::rdi,         &Utcb::r8,           &Utcb::r9,
                   &Utcb::r10,         &Utcb::r11,          &Utcb::r12,
                   &Utcb::r13,         &Utcb::r14,          &Utcb::r15,
                   &Utcb::rsp,         &Utcb::rip,          &Utcb::rflags,
                   &Utcb::cr0,         &Utcb::cr2,          &Utcb::cr3,
                   &Utcb::cr4,         &Utcb::xcr0,         &Utcb::dr7,
                   &Utcb::sysenter_cs, &Utcb::sysenter_rsp, &Utcb::sysenter_rip,
                   &Utcb::efer,        &Utcb::pat,          &Utcb::star,
                   &Utcb::lstar,       &Utcb::fmask,        &Utcb::kernel_gs_base,
                   &Utcb::tsc_off})
        EXPECT_EQ(d.*f, u.*f);
    EXPECT_EQ(d.tsc_aux, 3u);
    for (auto s : {&Utcb::es, &Utcb::cs, &Utcb::ss, &Utcb::ds, &Utcb::fs, &Utcb::gs, &Utcb::ldtr, &Utcb::tr,
                   &Utcb::gdtr, &Utcb::idtr}) {
        EXPECT_EQ((d.*s).sel, (u.*s).sel);
        EXPECT_EQ((d.*s).ar, (u.*s).ar);
        EXPECT_EQ((d.*s).limit, (u.*s).limit);
        EXPECT_EQ((d.*s).base, (u.*s).base);
    }
    // The switched MSRs sit in the vCPU's MSR area, where entry loads them.
    EXPECT_EQ(w.v.msrs[Vmx_guest_msr::LSTAR].value, u.lstar);
    EXPECT_EQ(w.v.msrs[Vmx_guest_msr::TSC_AUX].value, 3u);
    EXPECT_EQ(w.v.cr2, u.cr2);
}

TEST(VmxXfer, MtdSelectsWhatMoves)
{
    World w;
    Utcb u = long_mode_reply();
    u.mtd = Mtd::RIP_LEN;
    u64 rsp = rd(GUEST_RSP);
    ASSERT_EQ(Vmx_state::from_utcb(io, w.host, u, w.r, w.v), nullptr);
    EXPECT_EQ(rd(GUEST_RIP), 0x100000u);
    EXPECT_EQ(rd(GUEST_RSP), rsp);
    EXPECT_EQ(w.r.rax, 0u);
    EXPECT_EQ(rd(GUEST_CS_SEL), 0xf000u);
    Utcb d{};
    d.rax = 77;
    Vmx_state::to_utcb(io, w.r, w.v, Mtd::RIP_LEN, d);
    EXPECT_EQ(d.rax, 77u) << "not selected, not written";
}

TEST(VmxXfer, ControlsAreSanitised)
{
    World w;
    Utcb u{};
    u.mtd = Mtd::CTRL;
    u.ctrl[0] = ~0u;  // everything, MSR bitmaps and tertiary controls included
    u.ctrl[1] = ~0u;  // VMCS shadowing, PML, EPT off?
    u.exc_bitmap = 0;
    ASSERT_EQ(Vmx_state::from_utcb(io, w.host, u, w.r, w.v), nullptr);
    u32 p1 = static_cast<u32>(rd(PROC_CONTROLS)), p2 = static_cast<u32>(rd(PROC_CONTROLS2));
    EXPECT_FALSE(p1 & Vmx_cpu1::MSR_BITMAPS);
    EXPECT_FALSE(p1 & Vmx_cpu1::TERTIARY);
    EXPECT_FALSE(p1 & Vmx_cpu1::IO_BITMAPS) << "no guest ports yet";
    EXPECT_FALSE(p1 & Vmx_cpu1::TPR_SHADOW) << "no virtual-APIC page";
    EXPECT_FALSE(p1 & Vmx_cpu1::INTR_WINDOW) << "INJ owns the window";
    EXPECT_TRUE(p1 & Vmx_cpu1::HLT);
    EXPECT_TRUE(p1 & Vmx_cpu1::UNCOND_IO);
    EXPECT_TRUE(p2 & Vmx_cpu2::EPT);
    EXPECT_TRUE(p2 & Vmx_cpu2::UNRESTRICTED);
    EXPECT_FALSE(p2 & (Vmx_cpu2::VMCS_SHADOW | Vmx_cpu2::PML | Vmx_cpu2::VMFUNC | Vmx_cpu2::EPT_VE));
    EXPECT_EQ(rd(EXCEPTION_BITMAP), 1u << 17 | 1u << 1 | 1u << 18);
    EXPECT_EQ(w.check(), Vmx_rule::NONE) << vmx_rule_text(w.check());
    // With the PD's guest ports, "use I/O bitmaps" is the VMM's choice.
    w.v.io_bitmaps = true;
    wr(IO_BITMAP_A, 0x20000);
    wr(IO_BITMAP_B, 0x21000);
    ASSERT_EQ(Vmx_state::from_utcb(io, w.host, u, w.r, w.v), nullptr);
    EXPECT_TRUE(rd(PROC_CONTROLS) & Vmx_cpu1::IO_BITMAPS);
}

TEST(VmxXfer, Cr0AndCr4KeepTheHostsBitsAndShowTheVmmsValue)
{
    World w;
    Utcb u{};
    u.mtd = Mtd::CR;
    u.xcr0 = 1;
    u.cr0 = Cr0::CD | Cr0::NW | 0x10;  // no NE: VMX needs it
    u.cr4 = Cr4::OSXSAVE;
    ASSERT_EQ(Vmx_state::from_utcb(io, w.host, u, w.r, w.v), nullptr);
    EXPECT_FALSE(rd(GUEST_CR0) & (Cr0::CD | Cr0::NW));
    EXPECT_TRUE(rd(GUEST_CR0) & (1u << 5)) << "NE forced";
    EXPECT_TRUE(rd(GUEST_CR4) & Cr4::VMXE);
    Utcb d{};
    Vmx_state::to_utcb(io, w.r, w.v, Mtd::CR, d);
    EXPECT_EQ(d.cr0, u.cr0);
    EXPECT_EQ(d.cr4, u.cr4);
    // cr0_mon: more bits owned by the VMM, set with CTRL on the values the guest has.
    Utcb c{};
    c.mtd = Mtd::CTRL;
    c.cr0_mon = Cr0::TS;
    ASSERT_EQ(Vmx_state::from_utcb(io, w.host, c, w.r, w.v), nullptr);
    EXPECT_TRUE(rd(CR0_MASK) & Cr0::TS);
    Vmx_state::to_utcb(io, w.r, w.v, Mtd::CR, d);
    EXPECT_EQ(d.cr0, u.cr0) << "new intercepts do not change the value";
    // Without XSAVE in the host, OSXSAVE is denied to the guest but shown to the VMM.
    Vmx_state::Host nox{w.caps, false, 1, Cr4::OSXSAVE, Vmx_guest_msr::COUNT};
    ASSERT_EQ(Vmx_state::from_utcb(io, nox, u, w.r, w.v), nullptr);
    EXPECT_FALSE(rd(GUEST_CR4) & Cr4::OSXSAVE);
}

TEST(VmxXfer, BadXcr0KillsAndChangesNothing)
{
    World w;
    Utcb u = long_mode_reply();
    u.xcr0 = 1u << 9;  // a component the host does not have
    EXPECT_STREQ(Vmx_state::from_utcb(io, w.host, u, w.r, w.v), "Invalid XCR0");
    EXPECT_EQ(w.r.rax, 0u);
    EXPECT_EQ(rd(GUEST_RIP), 0xfff0u);
    u.xcr0 = 4;  // AVX without SSE: sanitised (SSE implied)
    EXPECT_EQ(Vmx_state::from_utcb(io, w.host, u, w.r, w.v), nullptr);
    EXPECT_EQ(w.v.xcr0, 7u);
    Vmx_state::Host nox{w.caps, false, 1, Cr4::OSXSAVE, Vmx_guest_msr::COUNT};
    u.xcr0 = 3;
    EXPECT_STREQ(Vmx_state::from_utcb(io, nox, u, w.r, w.v), "Invalid XCR0") << "only x87 without XSAVE";
}

TEST(VmxXfer, InjectionAndWindows)
{
    World w;
    Utcb u{};
    u.mtd = Mtd::INJ;
    u.intr_info =
        Inj::VALID | Inj::TYPE_HW_EXC | Inj::ERROR_CODE | 13 | Inj::REQ_INTR_WINDOW | Inj::REQ_NMI_WINDOW;
    u.intr_error = 0x18;
    ASSERT_EQ(Vmx_state::from_utcb(io, w.host, u, w.r, w.v), nullptr);
    EXPECT_EQ(rd(ENTRY_INTR_INFO), Inj::VALID | Inj::TYPE_HW_EXC | Inj::ERROR_CODE | 13u);
    EXPECT_EQ(rd(ENTRY_EXC_ERROR), 0x18u);
    EXPECT_TRUE(rd(PROC_CONTROLS) & Vmx_cpu1::INTR_WINDOW);
    EXPECT_TRUE(rd(PROC_CONTROLS) & Vmx_cpu1::NMI_WINDOW);
    u.intr_info = 0;
    ASSERT_EQ(Vmx_state::from_utcb(io, w.host, u, w.r, w.v), nullptr);
    EXPECT_FALSE(rd(PROC_CONTROLS) & Vmx_cpu1::INTR_WINDOW);
    EXPECT_FALSE(rd(PROC_CONTROLS) & Vmx_cpu1::NMI_WINDOW);
    // A CTRL write keeps the window INJ asked for.
    u.intr_info = Inj::REQ_INTR_WINDOW;
    ASSERT_EQ(Vmx_state::from_utcb(io, w.host, u, w.r, w.v), nullptr);
    Utcb c{};
    c.mtd = Mtd::CTRL;
    ASSERT_EQ(Vmx_state::from_utcb(io, w.host, c, w.r, w.v), nullptr);
    EXPECT_TRUE(rd(PROC_CONTROLS) & Vmx_cpu1::INTR_WINDOW);
}

TEST(VmxXfer, ExitsAsEvents)
{
    EXPECT_EQ(Vmx_state::event_of(10), 10);
    EXPECT_EQ(Vmx_state::event_of(48), 48);
    EXPECT_EQ(Vmx_state::event_of(Vmx_exit::ENTRY_FAILURE | 33), 33);
    EXPECT_EQ(Vmx_state::event_of(Vmx_exit::ENTRY_FAILURE | 34), 34);
    EXPECT_EQ(Vmx_state::event_of(0x1fc), -1) << "no event beyond the VMX numbers";
    EXPECT_TRUE(Vmx_state::host_nmi(0, Vmx_intr::VALID | Vmx_intr::TYPE_NMI | 2));
    EXPECT_FALSE(Vmx_state::host_nmi(0, Vmx_intr::VALID | Vmx_intr::TYPE_HW_EXC | 14));
    EXPECT_FALSE(Vmx_state::host_nmi(1, Vmx_intr::VALID | Vmx_intr::TYPE_NMI | 2));
}

TEST(VmxXfer, EveryExitReinjectsAnInterruptedDelivery)
{
    World w;
    wr(IDT_VECTORING_INFO, Vmx_intr::VALID | Vmx_intr::TYPE_EXTINT | 0x30);
    Vmx_state::after_exit(io, w.host, 48);
    EXPECT_EQ(rd(ENTRY_INTR_INFO), Vmx_intr::VALID | Vmx_intr::TYPE_EXTINT | 0x30u);
    // The VMM sees it as pending in vect_info; its INJ write replaces it.
    Utcb d{};
    w.r.vector = 48;
    Vmx_state::to_utcb(io, w.r, w.v, Mtd::INJ, d);
    EXPECT_EQ(d.vect_info, Vmx_intr::VALID | Vmx_intr::TYPE_EXTINT | 0x30u);
    // A software interrupt goes again with the exit's instruction length.
    wr(IDT_VECTORING_INFO, Vmx_intr::VALID | Vmx_intr::TYPE_SW_INT | 0x80);
    wr(EXIT_INST_LEN, 2);
    Vmx_state::after_exit(io, w.host, 48);
    EXPECT_EQ(rd(ENTRY_INST_LEN), 2u);
    // Nothing in delivery: an IRET that unblocked NMIs gets its blocking back (virtual NMIs).
    wr(IDT_VECTORING_INFO, 0);
    wr(ENTRY_INTR_INFO, 0);
    wr(EXIT_QUALIFICATION, Vmx_intr::NMI_UNBLOCK);
    Vmx_state::after_exit(io, w.host, 48);
    EXPECT_EQ(rd(ENTRY_INTR_INFO), 0u);
    EXPECT_TRUE(rd(GUEST_INTERRUPTIBILITY) & Vmx_intr_state::NMI);
}

TEST(VmxXfer, AReinjectedNmiDropsItsBlocking)
{
    World w;
    ASSERT_TRUE(w.caps.vnmi);
    // The exit interrupted the delivery of an NMI the last entry injected: the CPU saved
    // blocking by NMI, which would fail the entry that injects it again (SDM 31.7.1.2).
    wr(IDT_VECTORING_INFO, Vmx_intr::VALID | Vmx_intr::TYPE_NMI | 2);
    wr(GUEST_INTERRUPTIBILITY, Vmx_intr_state::NMI | Vmx_intr_state::STI);
    Vmx_state::after_exit(io, w.host, 48);
    EXPECT_EQ(rd(ENTRY_INTR_INFO), Vmx_intr::VALID | Vmx_intr::TYPE_NMI | 2u);
    EXPECT_EQ(rd(GUEST_INTERRUPTIBILITY), u64{Vmx_intr_state::STI});
    wr(GUEST_RFLAGS, 0x202);  // blocking by STI needs IF
    EXPECT_EQ(w.check(), Vmx_rule::NONE) << vmx_rule_text(w.check());
}

TEST(VmxXfer, MachineChecksAreTheHosts)
{
    EXPECT_TRUE(Vmx_state::host_mce(0, Vmx_intr::VALID | Vmx_intr::TYPE_HW_EXC | 18));
    EXPECT_TRUE(Vmx_state::host_mce(Vmx_exit::ENTRY_FAILURE | 41, 0));
    EXPECT_FALSE(Vmx_state::host_mce(0, Vmx_intr::VALID | Vmx_intr::TYPE_HW_EXC | 14));
    EXPECT_FALSE(Vmx_state::host_mce(0, Vmx_intr::VALID | Vmx_intr::TYPE_SW_INT | 18))
        << "INT 18 is the guest's";
    EXPECT_FALSE(Vmx_state::host_mce(41, 0));
}

TEST(VmxXfer, ProtectionKeysAreDenied)
{
    World w;
    Vmx_state::Host h{w.caps, true, 0x7, Cr4::PKE, Vmx_guest_msr::COUNT};
    Utcb u{};
    u.mtd = Mtd::CR;
    u.xcr0 = 1;
    u.cr4 = Cr4::PKE | Cr4::PAE;
    ASSERT_EQ(Vmx_state::from_utcb(io, h, u, w.r, w.v), nullptr);
    EXPECT_FALSE(rd(GUEST_CR4) & Cr4::PKE);
    EXPECT_TRUE(rd(GUEST_CR4) & Cr4::PAE);
}

TEST(VmxXfer, PendingInjectionForInvalidStateAndRecall)
{
    World w;
    wr(ENTRY_INTR_INFO, Vmx_intr::VALID | 0x41);
    wr(EXIT_INTR_INFO, Vmx_intr::VALID | Vmx_intr::TYPE_HW_EXC | 6);
    for (unsigned n : {Abi::Vmi::VMX_INVALID_STATE, Abi::Vmi::RECALL, 30u}) {
        Utcb d{};
        w.r.vector = n;
        Vmx_state::to_utcb(io, w.r, w.v, Mtd::INJ, d);
        EXPECT_EQ(d.intr_info,
                  n == 30 ? (Vmx_intr::VALID | Vmx_intr::TYPE_HW_EXC | 6u) : (Vmx_intr::VALID | 0x41u))
            << "event " << n;
    }
}

}  // namespace
