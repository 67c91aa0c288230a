/*
 * Intel VMX logic that needs no VMX hardware: pure functions over values, used by the kernel's
 * vCPU code and by the host unit tests (test/unit/test_vmx_*.cpp). Nothing here touches a
 * kernel global, an MSR or a VMCS; the caller reads the hardware and writes the results.
 *
 *   capabilities   Vmx_msrs (the IA32_VMX_* MSRs as read) -> Vmx_caps (usable? why not?)
 *   controls       the kernel's base controls per vCPU, the VMM's ctrl[0]/ctrl[1] masked
 *   CR0/CR4        guest value, read shadow and guest/host mask from the VMM's value
 *   segments       UTCB <-> VMCS form (ABI 4.4)
 *   events         injection write-back (ABI 4.5), IDT-vectoring re-injection, NMI unblocking
 *   XCR0           sanitising and validation (ABI 10.6)
 *   EPT            leaf and table entries, the EPT pointer
 *   entry checks   the SDM 26.2/26.3 VM-entry checks over a plain image of the VMCS
 *
 * Every choice where the ABI or the SDM leaves room is in docs/vmx.md. None of this has run on
 * VMX hardware (QEMU TCG has no VMX); it is checked against the Intel SDM by the unit tests.
 */
#pragma once

#include "abi/utcb.hpp"
#include "types.hpp"
#include "vmx_defs.hpp"

/* The VMX capability MSRs as the kernel read them (0 where an MSR does not exist), plus the
   CPUID facts the checks need. vmx_read_msrs() knows which MSRs exist. */
struct Vmx_msrs
{
    bool cpuid_vmx;       // CPUID.1:ECX[5]
    u8 phys_bits;         // CPUID.80000008H:EAX[7:0] (MAXPHYADDR)
    u8 linear_bits;       // 48, or 57 with 5-level paging on (CR4.LA57)
    bool sgx, rtm;        // CPUID.(7,0):EBX[2], EBX[11]
    u64 feature_control;  // IA32_FEATURE_CONTROL
    u64 basic, pinbased, procbased, exit, entry, misc;
    u64 cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1;
    u64 procbased2, ept_vpid_cap;
    u64 true_pinbased, true_procbased, true_exit, true_entry;
};

/*
 * Read the MSRs that exist (SDM A.1-A.10): none unless CPUID reports VMX and
 * IA32_FEATURE_CONTROL allows VMXON outside SMX (or is unlocked: the kernel sets and locks
 * it); the TRUE_* MSRs only with IA32_VMX_BASIC bit 55; PROCBASED_CTLS2 only if the
 * secondary controls can be activated; EPT_VPID_CAP only if EPT or VPID can be enabled.
 * read(msr) returns the MSR's value (rdmsr).
 */
template <typename Read> Vmx_msrs vmx_read_msrs(Vmx_msrs m, Read read)
{
    if (!m.cpuid_vmx)
        return m;
    m.feature_control = read(Vmx_msr::FEATURE_CONTROL);
    if ((m.feature_control & Vmx_feature_control::LOCK) &&
        !(m.feature_control & Vmx_feature_control::VMX_OUTSIDE_SMX))
        return m;
    m.basic = read(Vmx_msr::BASIC);
    m.pinbased = read(Vmx_msr::PINBASED_CTLS);
    m.procbased = read(Vmx_msr::PROCBASED_CTLS);
    m.exit = read(Vmx_msr::EXIT_CTLS);
    m.entry = read(Vmx_msr::ENTRY_CTLS);
    m.misc = read(Vmx_msr::MISC);
    m.cr0_fixed0 = read(Vmx_msr::CR0_FIXED0);
    m.cr0_fixed1 = read(Vmx_msr::CR0_FIXED1);
    m.cr4_fixed0 = read(Vmx_msr::CR4_FIXED0);
    m.cr4_fixed1 = read(Vmx_msr::CR4_FIXED1);
    if (m.basic & Vmx_basic::TRUE_CTLS) {
        m.true_pinbased = read(Vmx_msr::TRUE_PINBASED_CTLS);
        m.true_procbased = read(Vmx_msr::TRUE_PROCBASED_CTLS);
        m.true_exit = read(Vmx_msr::TRUE_EXIT_CTLS);
        m.true_entry = read(Vmx_msr::TRUE_ENTRY_CTLS);
    }
    if (m.procbased >> 32 & Vmx_cpu1::SECONDARY)
        m.procbased2 = read(Vmx_msr::PROCBASED_CTLS2);
    if (m.procbased2 >> 32 & (Vmx_cpu2::EPT | Vmx_cpu2::VPID))
        m.ept_vpid_cap = read(Vmx_msr::EPT_VPID_CAP);
    return m;
}

/* The allowed settings of one group of controls (SDM A.3-A.5): bits 31:0 of the MSR are the
   bits that must be 1, bits 63:32 those that may be 1. */
struct Vmx_ctl
{
    u32 must1, may1;

    static constexpr Vmx_ctl from(u64 msr) { return {static_cast<u32>(msr), static_cast<u32>(msr >> 32)}; }
    /* Required-1 bits ORed in, then masked to the allowed-1 bits. */
    constexpr u32 adjust(u32 want) const { return (want | must1) & may1; }
    constexpr bool can(u32 bits) const { return (may1 & bits) == bits; }
    constexpr bool valid(u32 v) const { return (v & must1) == must1 && !(v & ~may1); }
};

/* What the kernel knows about the CPU's VMX after vmx_caps(). */
struct Vmx_caps
{
    bool usable;      // ABI 8.2 VMX flag
    const char *why;  // !usable: why, for the boot line ("no unrestricted guest")
    bool true_ctls;   // the controls below come from the TRUE MSRs
    u32 revision;     // VMCS revision identifier (IA32_VMX_BASIC 30:0)
    u32 vmcs_size;
    Vmx_ctl pin, cpu1, cpu2, exit, entry;  // effective allowed settings (SDM A.2)
    u64 basic, misc, ept_vpid;
    u64 cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1;
    u8 phys_bits, linear_bits;
    bool sgx, rtm;
    bool vpid;            // VPIDs usable: the control and INVVPID single- or all-context
    bool invvpid_single;  // else all-context
    bool invept_single;   // else all-context
    bool vnmi;            // virtual NMIs (and so the NMI window)
    bool ept_2m, ept_1g;  // EPT large pages
    bool tpr_shadow;      // use TPR shadow may be 1
};

Vmx_caps vmx_caps(const Vmx_msrs &m);

/* The controls of one VMCS. */
struct Vmx_controls
{
    u32 pin, cpu1, cpu2, exit, entry;
};

/* What the kernel has set up for one vCPU, which decides which controls may be on. */
struct Vmx_vcpu_cfg
{
    bool vpid;         // the vCPU has a VPID (usable, not `novpid`, pool not exhausted)
    bool vapic;        // a virtual-APIC page is programmed (create_ec rdx[63:12] != 0)
    bool apic_access;  // the APIC-access page is programmed (create_ec flag 2, with vapic)
    bool io_bitmaps;   // I/O bitmap A and B addresses are programmed
};

/*
 * The kernel's controls for a new vCPU: pin = external-interrupt and NMI exiting (+ virtual
 * NMIs if available); primary = HLT, unconditional I/O, secondary, CR8 load/store exiting;
 * secondary = EPT, unrestricted guest (+ VPID); exit = host address-space size, save debug
 * controls, save/load PAT and EFER; entry = load debug controls, load PAT and EFER (IA-32e mode
 * guest follows EFER.LMA: vmx_entry_controls()). Each group adjusted to the allowed settings.
 */
Vmx_controls vmx_base_controls(const Vmx_caps &c, const Vmx_vcpu_cfg &cfg);

/* The entry controls for a guest EFER: IA-32e mode guest = EFER.LMA (bit 10). */
u32 vmx_entry_controls(const Vmx_caps &c, u32 base_entry, u64 guest_efer);

/* Primary controls the VMM may set through ctrl[0] (subject to Vmx_vcpu_cfg and the CPU). */
constexpr u32 VMX_VMM_CPU1 = Vmx_cpu1::TSC_OFFSET | Vmx_cpu1::INVLPG | Vmx_cpu1::MWAIT | Vmx_cpu1::RDPMC |
                             Vmx_cpu1::RDTSC | Vmx_cpu1::CR3_LOAD | Vmx_cpu1::CR3_STORE | Vmx_cpu1::CR8_LOAD |
                             Vmx_cpu1::CR8_STORE | Vmx_cpu1::TPR_SHADOW | Vmx_cpu1::MOV_DR |
                             Vmx_cpu1::IO_BITMAPS | Vmx_cpu1::MTF | Vmx_cpu1::MONITOR | Vmx_cpu1::PAUSE;
/* Secondary controls the VMM may set through ctrl[1]. */
constexpr u32 VMX_VMM_CPU2 = Vmx_cpu2::VIRT_APIC_ACCESS | Vmx_cpu2::DESC_TABLE | Vmx_cpu2::RDTSCP |
                             Vmx_cpu2::VIRT_X2APIC | Vmx_cpu2::WBINVD | Vmx_cpu2::APIC_REG_VIRT |
                             Vmx_cpu2::VIRT_INTR_DELIVERY | Vmx_cpu2::PAUSE_LOOP | Vmx_cpu2::RDRAND |
                             Vmx_cpu2::INVPCID | Vmx_cpu2::RDSEED | Vmx_cpu2::XSAVES;

/*
 * The processor-based controls after a VMM's CTRL write (ABI 5 note 4): ctrl0/ctrl1 as the
 * VMM wrote them, intr_window/nmi_window as its last INJ write asked (ABI 4.5 bits 12/13).
 * Only VMX_VMM_CPU1/2 bits are taken from the VMM; the kernel's forced bits are ORed in; a
 * control whose prerequisite is missing (page not programmed, TPR shadow off, no virtual
 * NMIs) is dropped; the result is adjusted to the allowed settings. Never fails.
 */
struct Vmx_proc
{
    u32 cpu1, cpu2;
};
Vmx_proc vmx_proc_controls(const Vmx_caps &c, const Vmx_vcpu_cfg &cfg, u32 ctrl0, u32 ctrl1, bool intr_window,
                           bool nmi_window);

/* The exception bitmap from the VMM's exc_bitmap: #AC (17, ABI 5 note 4) and #DB (1) always
   intercepted, as on SVM: the delivery of either can loop in the CPU with no exit for the host;
   and #MC (18): a machine check is the host's to log and clear before the VMM hears of it. */
constexpr u32 vmx_exc_bitmap(u32 vmm) { return vmm | 1u << 17 | 1u << 1 | 1u << 18; }

/*
 * CR0/CR4 write-back (ABI 4.3, 5): the value the guest runs with, the read shadow and the
 * guest/host mask. guest = (vmm | FIXED0) & FIXED1 (CR0: PE/PG not forced with unrestricted
 * guest; CD/NW cleared, VM entry and exit leave them as they are, so the host must own them;
 * CR4: deny bits cleared too). shadow = the VMM's value. mask = the bits the kernel forces or
 * denies, plus cr0_mon/cr4_mon: a guest write that changes a masked bit away from the shadow
 * exits (reason 28) to the VMM; reads of masked bits return the shadow.
 */
struct Vmx_cr
{
    u64 guest, shadow, mask;
};
Vmx_cr vmx_cr0(const Vmx_caps &c, u64 vmm_cr0, u64 cr0_mon, bool unrestricted);
Vmx_cr vmx_cr4(const Vmx_caps &c, u64 vmm_cr4, u64 cr4_mon, u64 deny = 0);
/* The value the guest sees (and the VMM receives on delivery): shadow bits where masked. */
constexpr u64 vmx_cr_visible(u64 guest, u64 shadow, u64 mask) { return (guest & ~mask) | (shadow & mask); }

/* A segment register in VMCS form (access rights as in the VMCS: SDM 24.4.1, table 24-2). */
struct Vmx_seg
{
    u16 sel;
    u32 limit;
    u32 ar;
    u64 base;
};
namespace Vmx_ar {
constexpr u32 TYPE = 0xf, S = 1u << 4, DPL_SHIFT = 5, DPL = 3u << 5, P = 1u << 7, AVL = 1u << 12,
              L = 1u << 13, DB = 1u << 14, G = 1u << 15, UNUSABLE = 1u << 16;
constexpr u32 RESERVED = 0xf00u | ~u32{0x1ffff};  // bits 11:8 and 31:17
constexpr u32 dpl(u32 ar) { return ar >> DPL_SHIFT & 3; }
}  // namespace Vmx_ar

/* UTCB (ABI 4.4, the SVM attribute layout, bit 12 = unusable) <-> VMCS form. */
constexpr Vmx_seg vmx_seg_from_utcb(const Utcb_segment &s)
{
    return {s.sel, s.limit, vmcs_ar_from_utcb(s.ar), s.base};
}
constexpr Utcb_segment vmx_seg_to_utcb(const Vmx_seg &s)
{
    return {s.sel, utcb_ar_from_vmcs(s.ar), s.limit, s.base};
}

/*
 * Event injection write-back (ABI 4.5): bits 12/13 of intr_info request the interrupt and NMI
 * windows and are stripped; the rest goes to the VM-entry interruption-information field,
 * intr_error to the VM-entry exception error code. inst_len (written back with RIP_LEN) is the
 * VM-entry instruction length, which the CPU uses for software interrupts and exceptions.
 */
struct Vmx_event
{
    u32 info, error, inst_len;
};
struct Vmx_injection
{
    Vmx_event event;
    bool intr_window, nmi_window;
};
Vmx_injection vmx_injection(u32 intr_info, u32 intr_error, u64 inst_len);

/*
 * The event whose delivery an exit interrupted (IDT-vectoring information valid, SDM 27.2.4),
 * as the VM-entry event that re-injects it (SDM 31.7.1.1): info without the undefined bit 12,
 * the error code if bit 11, the exit's instruction length for software interrupts and
 * exceptions (types 4-6). Returns false (and leaves out alone) if nothing was being delivered.
 * The kernel programs it on every exit (ABI 10.3 row 0); a VMM's INJ write replaces it.
 */
bool vmx_reinjection(u32 vect_info, u32 vect_error, u32 exit_inst_len, Vmx_event &out);

/*
 * NMI blocking after an exit that interrupted an IRET which had unblocked NMIs (SDM 27.2.2,
 * 27.2.3, 31.7.1.2): exit interruption information bit 12 (exception or NMI exits, not #DF) or
 * exit qualification bit 12 (EPT violation, PML full, SPP), defined only with virtual NMIs and
 * no valid IDT-vectoring information. Returns the interruptibility state with blocking by NMI
 * set in that case, so that the IRET re-executed after the exit runs with NMIs blocked.
 */
u32 vmx_nmi_unblock_fixup(u32 exit_reason, u32 exit_intr_info, u64 qual, u32 vect_info, u32 intr_state,
                          bool vnmi);

/*
 * XCR0 (ABI 10.6). Sanitised: x87 (bit 0) always set, SSE (1) set when AVX (2) is. Then valid
 * only if every bit is one the host's XCR0 holds (host = the kernel's own XCR0: its save area
 * holds exactly those), MPX BNDREGS/BNDCSR (3, 4) both or neither, the AVX-512 bits (5-7) all
 * or none and only with AVX, AMX TILECFG/TILEDATA (17, 18) both or neither. Invalid: the vCPU
 * is killed with "Invalid XCR0".
 */
struct Xcr0_check
{
    bool ok;
    u64 value;  // the sanitised value (meaningful if ok)
};
Xcr0_check xcr0_sanitise(u64 guest, u64 host);

/*
 * EPT entries (SDM 28.3.2). level: 0 = 4 KiB page (PTE), 1 = 2 MiB (PDE), 2 = 1 GiB (PDPTE);
 * rights: the memory capability's R (1), W (2), X (4). Any right makes the page readable (as
 * in the host page table, ABI 2.6; write-only would be an EPT misconfiguration), W writable,
 * X executable. No right: 0 (not present). The memory type goes into bits 5:3, with "ignore PAT"
 * set (ignore_pat) the guest's PAT cannot change the type the host chose; clear, the guest's PAT
 * combines with it (SDM 28.3.7), as the kernel's guest memory has it (docs/vmx.md).
 */
u64 ept_leaf(u64 phys, unsigned level, unsigned rights, Ept::Mtype type, bool ignore_pat = true);
/* A non-leaf entry: the next table, all rights (the leaf decides). */
constexpr u64 ept_table(u64 phys) { return (phys & Ept::ADDR) | Ept::R | Ept::W | Ept::X; }
/* EPTP: write-back paging structures, 4-level walk, accessed/dirty flags off. */
constexpr u64 ept_pointer(u64 pml4_phys)
{
    return (pml4_phys & Ept::ADDR) | Ept::WB | u64{4 - 1} << Ept::EPTP_WALK_SHIFT;
}
/* The largest EPT leaf level the CPU supports (0, 1 or 2). */
unsigned ept_max_level(const Vmx_caps &c);
/*
 * The memory type of a host mapping, for its EPT entry: the host PAT entry its PTE selects
 * (PAT index = PAT bit (bit 7 in a 4 KiB PTE, 12 in a large one), PCD, PWT); UC- (7), which
 * EPT does not have, becomes UC, as do the types reserved in PAT (2, 3).
 */
Ept::Mtype ept_mtype_from_pte(u64 pte, bool large, u64 host_pat);

/*
 * The VM-entry checks of SDM 26.2 (controls and host state, the ones that depend only on
 * VMCS values) and 26.3.1 (guest state), over a plain image of the VMCS. vmx_check_entry()
 * returns the first rule violated (Vmx_rule::NONE if none) in the SDM's order: controls,
 * host state, guest state. The kernel runs it before every VM entry in debug builds.
 * Not checked (need memory or state the image does not hold): the VMCS link pointer's target,
 * the virtual-APIC page's VTPR beyond the value given here, MSR-load area contents, the
 * PDPTEs without EPT, and the checks of controls the kernel never sets (SMM, VM functions,
 * VMCS shadowing, #VE, PML, sub-page permissions, tertiary controls, CET, PKRS, PERF, BNDCFGS,
 * RTIT, LBR).
 */
struct Vmx_guest_state
{
    u64 cr0, cr3, cr4, dr7, debugctl, efer, pat, sysenter_esp, sysenter_eip;
    Vmx_seg seg[Vmcs::SEGS];  // ES, CS, SS, DS, FS, GS, LDTR, TR
    u64 gdtr_base, idtr_base;
    u32 gdtr_limit, idtr_limit;
    u64 rip, rflags;
    u32 activity, intr_state;
    u64 pending_dbg, link_ptr;
    u64 pdpte[4];
};
struct Vmx_host_state
{
    u64 cr0, cr3, cr4, efer, pat, sysenter_esp, sysenter_eip;
    u64 fs_base, gs_base, tr_base, gdtr_base, idtr_base, rip;
    u16 es, cs, ss, ds, fs, gs, tr;
};
struct Vmx_control_state
{
    Vmx_controls ctl;
    u32 entry_intr_info, entry_error, entry_inst_len;
    u32 tpr_threshold;
    u8 vtpr;  // the virtual-APIC page's VTPR (byte 0x80)
    u16 vpid, posted_intr_vector;
    u32 cr3_target_count;
    u64 eptp, io_bitmap_a, io_bitmap_b, msr_bitmap, vapic_addr, apic_access_addr, posted_intr_desc;
    u32 exit_msr_store_count, exit_msr_load_count, entry_msr_load_count;
    u64 exit_msr_store_addr, exit_msr_load_addr, entry_msr_load_addr;
};
struct Vmx_vmcs_image
{
    Vmx_control_state c;
    Vmx_host_state h;
    Vmx_guest_state g;
};

// clang-format off
#define VMX_RULES(R) \
    R(NONE, "", "no violation") \
    /* 26.2.1.1 VM-execution control fields */ \
    R(CTL_PIN_RESERVED, "26.2.1.1", "pin-based controls not allowed by IA32_VMX_(TRUE_)PINBASED_CTLS") \
    R(CTL_CPU1_RESERVED, "26.2.1.1", "primary controls not allowed by IA32_VMX_(TRUE_)PROCBASED_CTLS") \
    R(CTL_CPU2_RESERVED, "26.2.1.1", "secondary controls not allowed by IA32_VMX_PROCBASED_CTLS2") \
    R(CTL_CR3_TARGET_COUNT, "26.2.1.1", "CR3-target count above IA32_VMX_MISC[24:16]") \
    R(CTL_IO_BITMAP_ADDR, "26.2.1.1", "I/O bitmap address not page aligned or beyond MAXPHYADDR") \
    R(CTL_MSR_BITMAP_ADDR, "26.2.1.1", "MSR bitmap address not page aligned or beyond MAXPHYADDR") \
    R(CTL_VAPIC_ADDR, "26.2.1.1", "virtual-APIC address not page aligned or beyond MAXPHYADDR") \
    R(CTL_TPR_THRESHOLD_HIGH, "26.2.1.1", "TPR threshold bits 31:4 set (TPR shadow, no virtual-interrupt delivery)") \
    R(CTL_TPR_THRESHOLD_VTPR, "26.2.1.1", "TPR threshold above VTPR[7:4]") \
    R(CTL_APICV_WITHOUT_TPR_SHADOW, "26.2.1.1", "x2APIC/APIC-register virtualization or virtual-interrupt delivery without TPR shadow") \
    R(CTL_VNMI_WITHOUT_NMI_EXITING, "26.2.1.1", "virtual NMIs without NMI exiting") \
    R(CTL_NMI_WINDOW_WITHOUT_VNMI, "26.2.1.1", "NMI-window exiting without virtual NMIs") \
    R(CTL_APIC_ACCESS_ADDR, "26.2.1.1", "APIC-access address not page aligned or beyond MAXPHYADDR") \
    R(CTL_X2APIC_AND_APIC_ACCESS, "26.2.1.1", "virtualize x2APIC mode together with virtualize APIC accesses") \
    R(CTL_VID_WITHOUT_EXT_INTR, "26.2.1.1", "virtual-interrupt delivery without external-interrupt exiting") \
    R(CTL_POSTED_INTR, "26.2.1.1", "posted interrupts without virtual-interrupt delivery, acknowledge on exit, a vector below 256 or an aligned descriptor") \
    R(CTL_VPID_ZERO, "26.2.1.1", "VPID enabled with VPID 0") \
    R(CTL_EPTP_MEMTYPE, "26.2.1.1", "EPTP memory type not supported") \
    R(CTL_EPTP_WALK, "26.2.1.1", "EPTP page-walk length not supported") \
    R(CTL_EPTP_AD, "26.2.1.1", "EPTP accessed/dirty flags without support") \
    R(CTL_EPTP_RESERVED, "26.2.1.1", "EPTP reserved bits set") \
    R(CTL_URG_WITHOUT_EPT, "26.2.1.1", "unrestricted guest without EPT") \
    R(CTL_EPT_FEATURE_WITHOUT_EPT, "26.2.1.1", "PML, mode-based execute control or sub-page permissions without EPT") \
    /* 26.2.1.2 VM-exit control fields */ \
    R(CTL_EXIT_RESERVED, "26.2.1.2", "exit controls not allowed by IA32_VMX_(TRUE_)EXIT_CTLS") \
    R(CTL_SAVE_TIMER_WITHOUT_TIMER, "26.2.1.2", "save VMX-preemption timer without activating it") \
    R(CTL_EXIT_MSR_STORE_ADDR, "26.2.1.2", "VM-exit MSR-store area not 16-byte aligned or beyond MAXPHYADDR") \
    R(CTL_EXIT_MSR_LOAD_ADDR, "26.2.1.2", "VM-exit MSR-load area not 16-byte aligned or beyond MAXPHYADDR") \
    /* 26.2.1.3 VM-entry control fields */ \
    R(CTL_ENTRY_RESERVED, "26.2.1.3", "entry controls not allowed by IA32_VMX_(TRUE_)ENTRY_CTLS") \
    R(INJ_TYPE, "26.2.1.3", "injection: reserved interruption type") \
    R(INJ_VECTOR, "26.2.1.3", "injection: vector does not fit the type (NMI 2, exception <= 31, other event 0)") \
    R(INJ_ERROR_CODE_BIT, "26.2.1.3", "injection: deliver-error-code bit does not fit type, vector and CR0.PE") \
    R(INJ_RESERVED, "26.2.1.3", "injection: reserved bits 30:12 set") \
    R(INJ_ERROR_CODE, "26.2.1.3", "injection: error code bits 31:16 set") \
    R(INJ_INST_LEN, "26.2.1.3", "injection: instruction length of a software event outside 1-15 (0-15 with IA32_VMX_MISC[30])") \
    R(CTL_ENTRY_MSR_LOAD_ADDR, "26.2.1.3", "VM-entry MSR-load area not 16-byte aligned or beyond MAXPHYADDR") \
    R(CTL_ENTRY_SMM, "26.2.1.3", "entry to SMM or deactivate dual-monitor treatment outside SMM") \
    /* 26.2.2 host control registers and MSRs */ \
    R(HOST_CR0_FIXED, "26.2.2", "host CR0 not allowed by IA32_VMX_CR0_FIXED0/1") \
    R(HOST_CR4_FIXED, "26.2.2", "host CR4 not allowed by IA32_VMX_CR4_FIXED0/1") \
    R(HOST_CR4_CET_WP, "26.2.2", "host CR4.CET without CR0.WP") \
    R(HOST_CR3_WIDTH, "26.2.2", "host CR3 beyond MAXPHYADDR") \
    R(HOST_SYSENTER_CANONICAL, "26.2.2", "host SYSENTER_ESP/EIP not canonical") \
    R(HOST_PAT, "26.2.2", "host PAT has an invalid memory type") \
    R(HOST_EFER_RESERVED, "26.2.2", "host EFER reserved bits set") \
    R(HOST_EFER_LMA_LME, "26.2.2", "host EFER.LMA/LME differ from host address-space size") \
    /* 26.2.3 host segment and descriptor-table registers */ \
    R(HOST_SEL_RPL_TI, "26.2.3", "host selector with RPL or TI set") \
    R(HOST_CS_NULL, "26.2.3", "host CS selector 0") \
    R(HOST_TR_NULL, "26.2.3", "host TR selector 0") \
    R(HOST_BASE_CANONICAL, "26.2.3", "host FS/GS/TR/GDTR/IDTR base not canonical") \
    /* 26.2.4 address-space size */ \
    R(HOST_ADDR_SIZE, "26.2.4", "host address-space size 0 on a 64-bit host") \
    R(HOST_PAE, "26.2.4", "host CR4.PAE clear") \
    R(HOST_RIP_CANONICAL, "26.2.4", "host RIP not canonical") \
    /* 26.3.1.1 guest control registers, debug registers and MSRs */ \
    R(G_CR0_FIXED, "26.3.1.1", "guest CR0 not allowed by IA32_VMX_CR0_FIXED0/1") \
    R(G_CR0_PG_WITHOUT_PE, "26.3.1.1", "guest CR0.PG without CR0.PE") \
    R(G_CR4_FIXED, "26.3.1.1", "guest CR4 not allowed by IA32_VMX_CR4_FIXED0/1") \
    R(G_CR4_CET_WP, "26.3.1.1", "guest CR4.CET without CR0.WP") \
    R(G_DEBUGCTL, "26.3.1.1", "guest IA32_DEBUGCTL reserved bits set") \
    R(G_IA32E_PG_PAE, "26.3.1.1", "IA-32e mode guest without CR0.PG and CR4.PAE") \
    R(G_PCIDE_NOT_IA32E, "26.3.1.1", "guest CR4.PCIDE outside IA-32e mode") \
    R(G_CR3_WIDTH, "26.3.1.1", "guest CR3 beyond MAXPHYADDR") \
    R(G_DR7_HIGH, "26.3.1.1", "guest DR7 bits 63:32 set") \
    R(G_SYSENTER_CANONICAL, "26.3.1.1", "guest SYSENTER_ESP/EIP not canonical") \
    R(G_PAT, "26.3.1.1", "guest PAT has an invalid memory type") \
    R(G_EFER_RESERVED, "26.3.1.1", "guest EFER reserved bits set") \
    R(G_EFER_LMA_IA32E, "26.3.1.1", "guest EFER.LMA differs from the IA-32e mode guest control") \
    R(G_EFER_LMA_LME, "26.3.1.1", "guest EFER.LMA differs from EFER.LME with CR0.PG") \
    /* 26.3.1.2 guest segment registers */ \
    R(G_TR_TI, "26.3.1.2", "guest TR selector TI set") \
    R(G_LDTR_TI, "26.3.1.2", "guest LDTR selector TI set") \
    R(G_SS_CS_RPL, "26.3.1.2", "guest SS.RPL differs from CS.RPL") \
    R(G_V86_BASE, "26.3.1.2", "virtual-8086 guest: base is not selector * 16") \
    R(G_V86_LIMIT, "26.3.1.2", "virtual-8086 guest: limit is not 0xffff") \
    R(G_V86_AR, "26.3.1.2", "virtual-8086 guest: access rights are not 0xf3") \
    R(G_BASE_CANONICAL, "26.3.1.2", "guest TR/FS/GS/LDTR base not canonical") \
    R(G_BASE_HIGH, "26.3.1.2", "guest CS/SS/DS/ES base bits 63:32 set") \
    R(G_CS_TYPE, "26.3.1.2", "guest CS type not accessed code (or accessed read/write data with unrestricted guest)") \
    R(G_SS_TYPE, "26.3.1.2", "guest SS type not accessed read/write data") \
    R(G_DATA_TYPE, "26.3.1.2", "guest DS/ES/FS/GS not accessed, or unreadable code") \
    R(G_SEG_S, "26.3.1.2", "guest code/data segment with S clear") \
    R(G_CS_DPL, "26.3.1.2", "guest CS.DPL does not fit CS type and SS.DPL") \
    R(G_SS_DPL_RPL, "26.3.1.2", "guest SS.DPL differs from SS.RPL") \
    R(G_SS_DPL_ZERO, "26.3.1.2", "guest SS.DPL not 0 in real mode or with data-type CS") \
    R(G_DATA_DPL, "26.3.1.2", "guest DS/ES/FS/GS DPL below RPL") \
    R(G_SEG_PRESENT, "26.3.1.2", "guest code/data segment not present") \
    R(G_SEG_AR_RESERVED, "26.3.1.2", "guest segment access-rights reserved bits set") \
    R(G_CS_L_DB, "26.3.1.2", "guest CS with L and D/B both set in IA-32e mode") \
    R(G_SEG_G, "26.3.1.2", "guest segment granularity does not fit its limit") \
    R(G_TR_TYPE, "26.3.1.2", "guest TR type not a busy TSS of the mode") \
    R(G_TR_S, "26.3.1.2", "guest TR with S set") \
    R(G_TR_PRESENT, "26.3.1.2", "guest TR not present") \
    R(G_TR_UNUSABLE, "26.3.1.2", "guest TR unusable") \
    R(G_LDTR_TYPE, "26.3.1.2", "guest LDTR type not LDT") \
    R(G_LDTR_S, "26.3.1.2", "guest LDTR with S set") \
    R(G_LDTR_PRESENT, "26.3.1.2", "guest LDTR not present") \
    /* 26.3.1.3 guest descriptor-table registers */ \
    R(G_DTR_BASE, "26.3.1.3", "guest GDTR/IDTR base not canonical") \
    R(G_DTR_LIMIT, "26.3.1.3", "guest GDTR/IDTR limit bits 31:16 set") \
    /* 26.3.1.4 guest RIP and RFLAGS */ \
    R(G_RIP_HIGH, "26.3.1.4", "guest RIP bits 63:32 set outside 64-bit mode") \
    R(G_RIP_CANONICAL, "26.3.1.4", "guest RIP bits 63:N not identical in 64-bit mode") \
    R(G_RFLAGS_RESERVED, "26.3.1.4", "guest RFLAGS reserved bits wrong (63:22, 15, 5, 3 clear, 1 set)") \
    R(G_RFLAGS_VM, "26.3.1.4", "guest RFLAGS.VM in IA-32e mode or real mode") \
    R(G_RFLAGS_IF_INJ, "26.3.1.4", "guest RFLAGS.IF clear while injecting an external interrupt") \
    /* 26.3.1.5 guest non-register state */ \
    R(G_ACTIVITY, "26.3.1.5", "guest activity state not supported") \
    R(G_ACTIVITY_HLT_DPL, "26.3.1.5", "guest HLT state with SS.DPL not 0") \
    R(G_ACTIVITY_BLOCKING, "26.3.1.5", "guest not active while blocked by STI or MOV SS") \
    R(G_ACTIVITY_INJ, "26.3.1.5", "injected event not allowed in the guest's activity state") \
    R(G_INTR_RESERVED, "26.3.1.5", "guest interruptibility reserved bits set") \
    R(G_INTR_STI_MOVSS, "26.3.1.5", "guest blocked by STI and MOV SS at once") \
    R(G_INTR_STI_IF, "26.3.1.5", "guest blocked by STI with RFLAGS.IF clear") \
    R(G_INTR_EXTINT, "26.3.1.5", "external interrupt injected while blocked by STI or MOV SS") \
    R(G_INTR_NMI_MOVSS, "26.3.1.5", "NMI injected while blocked by MOV SS") \
    R(G_INTR_SMI, "26.3.1.5", "guest blocked by SMI outside SMM") \
    R(G_INTR_VNMI, "26.3.1.5", "NMI injected while blocked by (virtual) NMI") \
    R(G_INTR_ENCLAVE, "26.3.1.5", "enclave interruption with MOV SS blocking or without SGX") \
    R(G_PDBG_RESERVED, "26.3.1.5", "guest pending debug exceptions reserved bits set") \
    R(G_PDBG_BS_SET, "26.3.1.5", "pending BS clear with RFLAGS.TF and no DEBUGCTL.BTF while blocked or halted") \
    R(G_PDBG_BS_CLEAR, "26.3.1.5", "pending BS set without RFLAGS.TF or with DEBUGCTL.BTF while blocked or halted") \
    R(G_PDBG_RTM, "26.3.1.5", "pending RTM debug exception malformed, without RTM, or with MOV SS blocking") \
    R(G_LINK_PTR, "26.3.1.5", "VMCS link pointer neither all ones nor page aligned below MAXPHYADDR") \
    /* 26.3.1.6 PDPTEs */ \
    R(G_PDPTE, "26.3.1.6", "guest PDPTE present with reserved bits set (PAE paging with EPT)")
// clang-format on

#define VMX_RULE_ENUM(name, sdm, text) name,
enum class Vmx_rule : u8 { VMX_RULES(VMX_RULE_ENUM) COUNT };
#undef VMX_RULE_ENUM

struct Vmx_violation
{
    Vmx_rule rule;
    u8 seg;  // the segment register a 26.3.1.2 rule failed for (Vmcs::Seg), else Vmcs::SEGS
};

Vmx_violation vmx_check_entry(const Vmx_caps &c, const Vmx_vmcs_image &v);
/* The rule's SDM section ("26.3.1.2") and short text. */
const char *vmx_rule_section(Vmx_rule r);
const char *vmx_rule_text(Vmx_rule r);
/* Only the 26.2.1.3 injection checks (a VMM's INJ write), given guest CR0 and the controls. */
Vmx_rule vmx_check_injection(const Vmx_caps &c, const Vmx_controls &ctl, u64 guest_cr0, u32 info, u32 error,
                             u32 inst_len);
