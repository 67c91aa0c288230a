/*
 * The AMD SVM virtual machine control block (AMD APM vol. 2, appendix B): one 4 KiB page, the
 * control area at 0x000 and the state-save area at 0x400. Only the fields the kernel uses are
 * named; the layout is checked field by field below. Pure data: host-tested.
 */
#pragma once

#include <stddef.h>

#include "types.hpp"

struct Vmcb_segment
{
    u16 sel;
    u16 attr;  // the compressed access-rights format of the UTCB (ABI 4.4)
    u32 limit;
    u64 base;
};

struct alignas(4096) Vmcb
{
    // Control area.
    u32 intercept_cr;   // 0x000: 15:0 reads of CR0-15, 31:16 writes
    u32 intercept_dr;   // 0x004: 15:0 reads of DR0-15, 31:16 writes
    u32 intercept_exc;  // 0x008: exception vectors
    u32 intercept[3];   // 0x00c, 0x010, 0x014: instruction intercept vectors 3, 4, 5
    u8 reserved_018[0x03c - 0x018];
    u16 pause_threshold, pause_count;  // 0x03c
    u64 iopm;                          // 0x040: I/O permission map, 12 KiB, physical
    u64 msrpm;                         // 0x048: MSR permission map, 8 KiB, physical
    u64 tsc_offset;                    // 0x050
    u32 asid;                          // 0x058
    u8 tlb_control;                    // 0x05c
    u8 reserved_05d[3];
    u64 int_ctl;        // 0x060: V_TPR, V_IRQ, V_INTR_MASKING, V_INTR_VECTOR (39:32), ...
    u64 int_shadow;     // 0x068: bit 0 interrupt shadow, bit 1 guest interrupt mask
    u64 exitcode;       // 0x070
    u64 exitinfo1;      // 0x078
    u64 exitinfo2;      // 0x080
    u64 exitintinfo;    // 0x088
    u64 np_ctl;         // 0x090: bit 0 nested paging
    u64 avic_bar;       // 0x098
    u64 ghcb;           // 0x0a0
    u64 eventinj;       // 0x0a8
    u64 ncr3;           // 0x0b0: nested page table root
    u64 virt_ext;       // 0x0b8: LBR virtualisation, virtual VMSAVE/VMLOAD
    u64 clean;          // 0x0c0: VMCB clean bits (0: the CPU reloads everything)
    u64 nrip;           // 0x0c8: next RIP (with the NRIP-save feature)
    u8 insn_fetched;    // 0x0d0
    u8 insn_bytes[15];  // 0x0d1
    u8 reserved_0e0[0x400 - 0x0e0];

    // State-save area.
    Vmcb_segment es, cs, ss, ds, fs, gs, gdtr, ldtr, idtr, tr;  // 0x400..0x49f
    u8 reserved_4a0[0x4cb - 0x4a0];
    u8 cpl;  // 0x4cb
    u32 reserved_4cc;
    u64 efer;  // 0x4d0
    u8 reserved_4d8[0x548 - 0x4d8];
    u64 cr4, cr3, cr0, dr7, dr6, rflags, rip;  // 0x548..0x57f
    u8 reserved_580[0x5d8 - 0x580];
    u64 rsp;  // 0x5d8
    u64 s_cet, ssp, isst_addr;
    u64 rax;                                           // 0x5f8
    u64 star, lstar, cstar, sfmask, kernel_gs_base;    // 0x600..0x627
    u64 sysenter_cs, sysenter_esp, sysenter_eip, cr2;  // 0x628..0x647
    u8 reserved_648[0x668 - 0x648];
    u64 g_pat;   // 0x668
    u64 dbgctl;  // 0x670
    u8 reserved_678[0x1000 - 0x678];
};

static_assert(sizeof(Vmcb) == 4096);
static_assert(offsetof(Vmcb, intercept) == 0x00c && offsetof(Vmcb, pause_threshold) == 0x03c);
static_assert(offsetof(Vmcb, iopm) == 0x040 && offsetof(Vmcb, msrpm) == 0x048);
static_assert(offsetof(Vmcb, tsc_offset) == 0x050 && offsetof(Vmcb, asid) == 0x058);
static_assert(offsetof(Vmcb, tlb_control) == 0x05c && offsetof(Vmcb, int_ctl) == 0x060);
static_assert(offsetof(Vmcb, int_shadow) == 0x068 && offsetof(Vmcb, exitcode) == 0x070);
static_assert(offsetof(Vmcb, exitinfo1) == 0x078 && offsetof(Vmcb, exitinfo2) == 0x080);
static_assert(offsetof(Vmcb, exitintinfo) == 0x088 && offsetof(Vmcb, np_ctl) == 0x090);
static_assert(offsetof(Vmcb, eventinj) == 0x0a8 && offsetof(Vmcb, ncr3) == 0x0b0);
static_assert(offsetof(Vmcb, clean) == 0x0c0 && offsetof(Vmcb, nrip) == 0x0c8);
static_assert(offsetof(Vmcb, insn_fetched) == 0x0d0);
static_assert(offsetof(Vmcb, es) == 0x400 && offsetof(Vmcb, cs) == 0x410 && offsetof(Vmcb, ss) == 0x420);
static_assert(offsetof(Vmcb, ds) == 0x430 && offsetof(Vmcb, fs) == 0x440 && offsetof(Vmcb, gs) == 0x450);
static_assert(offsetof(Vmcb, gdtr) == 0x460 && offsetof(Vmcb, ldtr) == 0x470);
static_assert(offsetof(Vmcb, idtr) == 0x480 && offsetof(Vmcb, tr) == 0x490);
static_assert(offsetof(Vmcb, cpl) == 0x4cb && offsetof(Vmcb, efer) == 0x4d0);
static_assert(offsetof(Vmcb, cr4) == 0x548 && offsetof(Vmcb, cr3) == 0x550 && offsetof(Vmcb, cr0) == 0x558);
static_assert(offsetof(Vmcb, dr7) == 0x560 && offsetof(Vmcb, dr6) == 0x568);
static_assert(offsetof(Vmcb, rflags) == 0x570 && offsetof(Vmcb, rip) == 0x578);
static_assert(offsetof(Vmcb, rsp) == 0x5d8 && offsetof(Vmcb, rax) == 0x5f8);
static_assert(offsetof(Vmcb, star) == 0x600 && offsetof(Vmcb, lstar) == 0x608);
static_assert(offsetof(Vmcb, cstar) == 0x610 && offsetof(Vmcb, sfmask) == 0x618);
static_assert(offsetof(Vmcb, kernel_gs_base) == 0x620 && offsetof(Vmcb, sysenter_cs) == 0x628);
static_assert(offsetof(Vmcb, sysenter_esp) == 0x630 && offsetof(Vmcb, sysenter_eip) == 0x638);
static_assert(offsetof(Vmcb, cr2) == 0x640 && offsetof(Vmcb, g_pat) == 0x668);

namespace Svm_bits {
// Intercept vector 3 (Vmcb::intercept[0], the UTCB's ctrl[0]).
constexpr u32 I_INTR = 1u << 0, I_NMI = 1u << 1, I_SMI = 1u << 2, I_INIT = 1u << 3, I_VINTR = 1u << 4;
constexpr u32 I_CPUID = 1u << 18, I_IRET = 1u << 20, I_INVD = 1u << 22, I_HLT = 1u << 24;
constexpr u32 I_INVLPG = 1u << 25, I_IOIO = 1u << 27, I_MSR = 1u << 28, I_SHUTDOWN = 1u << 31;
// Intercept vector 4 (Vmcb::intercept[1], the UTCB's ctrl[1]).
constexpr u32 I_VMRUN = 1u << 0, I_VMMCALL = 1u << 1, I_VMLOAD = 1u << 2, I_VMSAVE = 1u << 3;
constexpr u32 I_STGI = 1u << 4, I_CLGI = 1u << 5, I_SKINIT = 1u << 6, I_XSETBV = 1u << 13;

// int_ctl.
constexpr u64 V_IRQ = 1u << 8, V_IGN_TPR = 1u << 20, V_INTR_MASKING = 1u << 24;

// EVENTINJ / EXITINTINFO (the ABI's inj word, 4.5).
constexpr u64 EV_VALID = 1u << 31, EV_ERROR = 1u << 11;
constexpr unsigned EV_TYPE_SHIFT = 8;
constexpr u64 EV_TYPE_MASK = 7u << 8;
constexpr u64 EV_INTR = 0, EV_NMI = 2, EV_EXC = 3, EV_SWINT = 4;

// TLB_CONTROL.
constexpr u8 TLB_NONE = 0, TLB_FLUSH_ALL = 1, TLB_FLUSH_ASID = 3;

// Exit codes (APM vol. 2, appendix C).
constexpr u64 EXIT_EXC_BASE = 0x40, EXIT_INTR = 0x60, EXIT_NMI = 0x61, EXIT_VINTR = 0x64;
constexpr u64 EXIT_CPUID = 0x72, EXIT_HLT = 0x78, EXIT_IOIO = 0x7b, EXIT_MSR = 0x7c;
constexpr u64 EXIT_SHUTDOWN = 0x7f, EXIT_XSETBV = 0x8d, EXIT_NPF = 0x400;
constexpr u32 EXIT_INVALID = 0xffffffff;  // VMEXIT_INVALID (QEMU stores only the low 32 bits)

// EFER bits the guest cannot do without (APM 15.5.1: VMRUN checks EFER.SVME).
constexpr u64 EFER_SVME = 1u << 12;
}  // namespace Svm_bits
