/*
 * Intel VMX architectural constants: VMCS field encodings (SDM vol. 3D Appendix B),
 * VM-execution/exit/entry control bits (SDM 24.6-24.8), basic exit reasons (Appendix C),
 * the IA32_VMX_* capability MSRs and their bits (Appendix A), EPT entry bits (SDM 28.3.2),
 * guest non-register state (SDM 24.4.2) and the VM-instruction error numbers (SDM 30.4).
 * Facts only, no state; the logic that uses them is include/vmx_logic.hpp. Host unit tests
 * check the encodings against the SDM's tables: test/unit/test_vmx_defs.cpp.
 */
#pragma once

#include "types.hpp"

/*
 * VMCS field encodings. An encoding is (SDM 24.11.2): bit 0 access type (1 = the high half
 * of a 64-bit field), bits 9:1 index, bits 11:10 type (0 control, 1 read-only data (exit
 * information), 2 guest state, 3 host state), bit 12 reserved, bits 14:13 width (0 16-bit,
 * 1 64-bit, 2 32-bit, 3 natural width). 64-bit fields are named by their full encoding;
 * high(f) is the encoding of their upper 32 bits.
 */
namespace Vmcs {
// Encoding structure.
constexpr u32 WIDTH_16 = 0, WIDTH_64 = 1, WIDTH_32 = 2, WIDTH_NATURAL = 3;
constexpr u32 TYPE_CONTROL = 0, TYPE_EXIT_INFO = 1, TYPE_GUEST = 2, TYPE_HOST = 3;
constexpr u32 width(u32 f) { return f >> 13 & 3; }
constexpr u32 type(u32 f) { return f >> 10 & 3; }
constexpr u32 index(u32 f) { return f >> 1 & 0x1ff; }
constexpr bool is_high(u32 f) { return f & 1; }
constexpr u32 high(u32 f) { return f | 1; }
constexpr u32 encode(u32 width, u32 type, u32 index) { return width << 13 | type << 10 | index << 1; }

// 16-bit control fields (B.1.1).
constexpr u32 VPID = 0x0000;
constexpr u32 POSTED_INTR_VECTOR = 0x0002;
constexpr u32 EPTP_INDEX = 0x0004;

// 16-bit guest-state fields (B.1.2): selectors of ES, CS, SS, DS, FS, GS, LDTR, TR.
constexpr u32 GUEST_ES_SEL = 0x0800;
constexpr u32 GUEST_CS_SEL = 0x0802;
constexpr u32 GUEST_SS_SEL = 0x0804;
constexpr u32 GUEST_DS_SEL = 0x0806;
constexpr u32 GUEST_FS_SEL = 0x0808;
constexpr u32 GUEST_GS_SEL = 0x080a;
constexpr u32 GUEST_LDTR_SEL = 0x080c;
constexpr u32 GUEST_TR_SEL = 0x080e;
constexpr u32 GUEST_INTR_STATUS = 0x0810;  // RVI (7:0), SVI (15:8); virtual-interrupt delivery
constexpr u32 GUEST_PML_INDEX = 0x0812;

// 16-bit host-state fields (B.1.3).
constexpr u32 HOST_ES_SEL = 0x0c00;
constexpr u32 HOST_CS_SEL = 0x0c02;
constexpr u32 HOST_SS_SEL = 0x0c04;
constexpr u32 HOST_DS_SEL = 0x0c06;
constexpr u32 HOST_FS_SEL = 0x0c08;
constexpr u32 HOST_GS_SEL = 0x0c0a;
constexpr u32 HOST_TR_SEL = 0x0c0c;

// 64-bit control fields (B.2.1).
constexpr u32 IO_BITMAP_A = 0x2000;
constexpr u32 IO_BITMAP_B = 0x2002;
constexpr u32 MSR_BITMAP = 0x2004;
constexpr u32 EXIT_MSR_STORE_ADDR = 0x2006;
constexpr u32 EXIT_MSR_LOAD_ADDR = 0x2008;
constexpr u32 ENTRY_MSR_LOAD_ADDR = 0x200a;
constexpr u32 EXECUTIVE_VMCS_PTR = 0x200c;
constexpr u32 PML_ADDR = 0x200e;
constexpr u32 TSC_OFFSET = 0x2010;
constexpr u32 VIRTUAL_APIC_ADDR = 0x2012;
constexpr u32 APIC_ACCESS_ADDR = 0x2014;
constexpr u32 POSTED_INTR_DESC = 0x2016;
constexpr u32 VMFUNC_CONTROLS = 0x2018;
constexpr u32 EPT_POINTER = 0x201a;
constexpr u32 EOI_EXIT_BITMAP0 = 0x201c;
constexpr u32 EOI_EXIT_BITMAP1 = 0x201e;
constexpr u32 EOI_EXIT_BITMAP2 = 0x2020;
constexpr u32 EOI_EXIT_BITMAP3 = 0x2022;
constexpr u32 EPTP_LIST_ADDR = 0x2024;
constexpr u32 VMREAD_BITMAP = 0x2026;
constexpr u32 VMWRITE_BITMAP = 0x2028;
constexpr u32 VE_INFO_ADDR = 0x202a;
constexpr u32 XSS_EXIT_BITMAP = 0x202c;
constexpr u32 ENCLS_EXIT_BITMAP = 0x202e;
constexpr u32 SPP_TABLE_PTR = 0x2030;
constexpr u32 TSC_MULTIPLIER = 0x2032;
constexpr u32 PROC_CTLS3 = 0x2034;  // tertiary processor-based controls

// 64-bit read-only data field (B.2.2).
constexpr u32 GUEST_PHYS_ADDR = 0x2400;

// 64-bit guest-state fields (B.2.3).
constexpr u32 VMCS_LINK_PTR = 0x2800;
constexpr u32 GUEST_DEBUGCTL = 0x2802;
constexpr u32 GUEST_PAT = 0x2804;
constexpr u32 GUEST_EFER = 0x2806;
constexpr u32 GUEST_PERF_GLOBAL_CTRL = 0x2808;
constexpr u32 GUEST_PDPTE0 = 0x280a;
constexpr u32 GUEST_PDPTE1 = 0x280c;
constexpr u32 GUEST_PDPTE2 = 0x280e;
constexpr u32 GUEST_PDPTE3 = 0x2810;
constexpr u32 GUEST_BNDCFGS = 0x2812;
constexpr u32 GUEST_RTIT_CTL = 0x2814;
constexpr u32 GUEST_LBR_CTL = 0x2816;
constexpr u32 GUEST_PKRS = 0x2818;

// 64-bit host-state fields (B.2.4).
constexpr u32 HOST_PAT = 0x2c00;
constexpr u32 HOST_EFER = 0x2c02;
constexpr u32 HOST_PERF_GLOBAL_CTRL = 0x2c04;
constexpr u32 HOST_PKRS = 0x2c06;

// 32-bit control fields (B.3.1).
constexpr u32 PIN_CONTROLS = 0x4000;
constexpr u32 PROC_CONTROLS = 0x4002;  // primary processor-based
constexpr u32 EXCEPTION_BITMAP = 0x4004;
constexpr u32 PF_ERROR_MASK = 0x4006;
constexpr u32 PF_ERROR_MATCH = 0x4008;
constexpr u32 CR3_TARGET_COUNT = 0x400a;
constexpr u32 EXIT_CONTROLS = 0x400c;
constexpr u32 EXIT_MSR_STORE_COUNT = 0x400e;
constexpr u32 EXIT_MSR_LOAD_COUNT = 0x4010;
constexpr u32 ENTRY_CONTROLS = 0x4012;
constexpr u32 ENTRY_MSR_LOAD_COUNT = 0x4014;
constexpr u32 ENTRY_INTR_INFO = 0x4016;
constexpr u32 ENTRY_EXC_ERROR = 0x4018;
constexpr u32 ENTRY_INST_LEN = 0x401a;
constexpr u32 TPR_THRESHOLD = 0x401c;
constexpr u32 PROC_CONTROLS2 = 0x401e;  // secondary processor-based
constexpr u32 PLE_GAP = 0x4020;
constexpr u32 PLE_WINDOW = 0x4022;

// 32-bit read-only data fields (B.3.2).
constexpr u32 VM_INSTRUCTION_ERROR = 0x4400;
constexpr u32 EXIT_REASON = 0x4402;
constexpr u32 EXIT_INTR_INFO = 0x4404;
constexpr u32 EXIT_INTR_ERROR = 0x4406;
constexpr u32 IDT_VECTORING_INFO = 0x4408;
constexpr u32 IDT_VECTORING_ERROR = 0x440a;
constexpr u32 EXIT_INST_LEN = 0x440c;
constexpr u32 EXIT_INST_INFO = 0x440e;

// 32-bit guest-state fields (B.3.3).
constexpr u32 GUEST_ES_LIMIT = 0x4800;
constexpr u32 GUEST_CS_LIMIT = 0x4802;
constexpr u32 GUEST_SS_LIMIT = 0x4804;
constexpr u32 GUEST_DS_LIMIT = 0x4806;
constexpr u32 GUEST_FS_LIMIT = 0x4808;
constexpr u32 GUEST_GS_LIMIT = 0x480a;
constexpr u32 GUEST_LDTR_LIMIT = 0x480c;
constexpr u32 GUEST_TR_LIMIT = 0x480e;
constexpr u32 GUEST_GDTR_LIMIT = 0x4810;
constexpr u32 GUEST_IDTR_LIMIT = 0x4812;
constexpr u32 GUEST_ES_AR = 0x4814;
constexpr u32 GUEST_CS_AR = 0x4816;
constexpr u32 GUEST_SS_AR = 0x4818;
constexpr u32 GUEST_DS_AR = 0x481a;
constexpr u32 GUEST_FS_AR = 0x481c;
constexpr u32 GUEST_GS_AR = 0x481e;
constexpr u32 GUEST_LDTR_AR = 0x4820;
constexpr u32 GUEST_TR_AR = 0x4822;
constexpr u32 GUEST_INTERRUPTIBILITY = 0x4824;
constexpr u32 GUEST_ACTIVITY = 0x4826;
constexpr u32 GUEST_SMBASE = 0x4828;
constexpr u32 GUEST_SYSENTER_CS = 0x482a;
constexpr u32 PREEMPTION_TIMER = 0x482e;

// 32-bit host-state field (B.3.4).
constexpr u32 HOST_SYSENTER_CS = 0x4c00;

// Natural-width control fields (B.4.1).
constexpr u32 CR0_MASK = 0x6000;  // guest/host mask
constexpr u32 CR4_MASK = 0x6002;
constexpr u32 CR0_SHADOW = 0x6004;  // read shadow
constexpr u32 CR4_SHADOW = 0x6006;
constexpr u32 CR3_TARGET0 = 0x6008;
constexpr u32 CR3_TARGET1 = 0x600a;
constexpr u32 CR3_TARGET2 = 0x600c;
constexpr u32 CR3_TARGET3 = 0x600e;

// Natural-width read-only data fields (B.4.2).
constexpr u32 EXIT_QUALIFICATION = 0x6400;
constexpr u32 IO_RCX = 0x6402;
constexpr u32 IO_RSI = 0x6404;
constexpr u32 IO_RDI = 0x6406;
constexpr u32 IO_RIP = 0x6408;
constexpr u32 GUEST_LINEAR_ADDR = 0x640a;

// Natural-width guest-state fields (B.4.3).
constexpr u32 GUEST_CR0 = 0x6800;
constexpr u32 GUEST_CR3 = 0x6802;
constexpr u32 GUEST_CR4 = 0x6804;
constexpr u32 GUEST_ES_BASE = 0x6806;
constexpr u32 GUEST_CS_BASE = 0x6808;
constexpr u32 GUEST_SS_BASE = 0x680a;
constexpr u32 GUEST_DS_BASE = 0x680c;
constexpr u32 GUEST_FS_BASE = 0x680e;
constexpr u32 GUEST_GS_BASE = 0x6810;
constexpr u32 GUEST_LDTR_BASE = 0x6812;
constexpr u32 GUEST_TR_BASE = 0x6814;
constexpr u32 GUEST_GDTR_BASE = 0x6816;
constexpr u32 GUEST_IDTR_BASE = 0x6818;
constexpr u32 GUEST_DR7 = 0x681a;
constexpr u32 GUEST_RSP = 0x681c;
constexpr u32 GUEST_RIP = 0x681e;
constexpr u32 GUEST_RFLAGS = 0x6820;
constexpr u32 GUEST_PENDING_DBG = 0x6822;
constexpr u32 GUEST_SYSENTER_ESP = 0x6824;
constexpr u32 GUEST_SYSENTER_EIP = 0x6826;

// Natural-width host-state fields (B.4.4).
constexpr u32 HOST_CR0 = 0x6c00;
constexpr u32 HOST_CR3 = 0x6c02;
constexpr u32 HOST_CR4 = 0x6c04;
constexpr u32 HOST_FS_BASE = 0x6c06;
constexpr u32 HOST_GS_BASE = 0x6c08;
constexpr u32 HOST_TR_BASE = 0x6c0a;
constexpr u32 HOST_GDTR_BASE = 0x6c0c;
constexpr u32 HOST_IDTR_BASE = 0x6c0e;
constexpr u32 HOST_SYSENTER_ESP = 0x6c10;
constexpr u32 HOST_SYSENTER_EIP = 0x6c12;
constexpr u32 HOST_RSP = 0x6c14;
constexpr u32 HOST_RIP = 0x6c16;

/* The guest segment registers in VMCS order (the index of each group of fields). */
enum Seg : u32 { ES, CS, SS, DS, FS, GS, LDTR, TR, SEGS };
constexpr u32 guest_sel(Seg s) { return GUEST_ES_SEL + 2 * s; }
constexpr u32 guest_limit(Seg s) { return GUEST_ES_LIMIT + 2 * s; }
constexpr u32 guest_ar(Seg s) { return GUEST_ES_AR + 2 * s; }
constexpr u32 guest_base(Seg s) { return GUEST_ES_BASE + 2 * s; }
constexpr u32 eoi_exit_bitmap(unsigned i) { return EOI_EXIT_BITMAP0 + 2 * i; }
constexpr u32 guest_pdpte(unsigned i) { return GUEST_PDPTE0 + 2 * i; }
}  // namespace Vmcs

/* Pin-based VM-execution controls (SDM 24.6.1). */
namespace Vmx_pin {
constexpr u32 EXT_INTR = 1u << 0;  // external-interrupt exiting
constexpr u32 NMI = 1u << 3;       // NMI exiting
constexpr u32 VIRT_NMI = 1u << 5;  // virtual NMIs
constexpr u32 PREEMPT_TIMER = 1u << 6;
constexpr u32 POSTED_INTR = 1u << 7;
constexpr u32 DEFAULT1 = 0x16;  // bits 1, 2, 4 (A.3.1)
}  // namespace Vmx_pin

/* Primary processor-based VM-execution controls (SDM 24.6.2, table 24-6). */
namespace Vmx_cpu1 {
constexpr u32 INTR_WINDOW = 1u << 2;
constexpr u32 TSC_OFFSET = 1u << 3;
constexpr u32 HLT = 1u << 7;
constexpr u32 INVLPG = 1u << 9;
constexpr u32 MWAIT = 1u << 10;
constexpr u32 RDPMC = 1u << 11;
constexpr u32 RDTSC = 1u << 12;
constexpr u32 CR3_LOAD = 1u << 15;
constexpr u32 CR3_STORE = 1u << 16;
constexpr u32 TERTIARY = 1u << 17;  // activate tertiary controls
constexpr u32 CR8_LOAD = 1u << 19;
constexpr u32 CR8_STORE = 1u << 20;
constexpr u32 TPR_SHADOW = 1u << 21;
constexpr u32 NMI_WINDOW = 1u << 22;
constexpr u32 MOV_DR = 1u << 23;
constexpr u32 UNCOND_IO = 1u << 24;
constexpr u32 IO_BITMAPS = 1u << 25;
constexpr u32 MTF = 1u << 27;  // monitor trap flag
constexpr u32 MSR_BITMAPS = 1u << 28;
constexpr u32 MONITOR = 1u << 29;
constexpr u32 PAUSE = 1u << 30;
constexpr u32 SECONDARY = 1u << 31;   // activate secondary controls
constexpr u32 DEFAULT1 = 0x0401e172;  // bits 1, 4-6, 8, 13-16, 26 (A.3.2)
}  // namespace Vmx_cpu1

/* Secondary processor-based VM-execution controls (SDM 24.6.2, table 24-7). */
namespace Vmx_cpu2 {
constexpr u32 VIRT_APIC_ACCESS = 1u << 0;
constexpr u32 EPT = 1u << 1;
constexpr u32 DESC_TABLE = 1u << 2;  // descriptor-table exiting
constexpr u32 RDTSCP = 1u << 3;
constexpr u32 VIRT_X2APIC = 1u << 4;
constexpr u32 VPID = 1u << 5;
constexpr u32 WBINVD = 1u << 6;
constexpr u32 UNRESTRICTED = 1u << 7;
constexpr u32 APIC_REG_VIRT = 1u << 8;
constexpr u32 VIRT_INTR_DELIVERY = 1u << 9;
constexpr u32 PAUSE_LOOP = 1u << 10;
constexpr u32 RDRAND = 1u << 11;
constexpr u32 INVPCID = 1u << 12;
constexpr u32 VMFUNC = 1u << 13;
constexpr u32 VMCS_SHADOW = 1u << 14;
constexpr u32 ENCLS = 1u << 15;
constexpr u32 RDSEED = 1u << 16;
constexpr u32 PML = 1u << 17;
constexpr u32 EPT_VE = 1u << 18;
constexpr u32 PT_CONCEAL = 1u << 19;
constexpr u32 XSAVES = 1u << 20;
constexpr u32 EPT_MODE_EXEC = 1u << 22;  // mode-based execute control for EPT
constexpr u32 EPT_SPP = 1u << 23;        // sub-page write permissions
constexpr u32 PT_GPA = 1u << 24;         // Intel PT uses guest-physical addresses
constexpr u32 TSC_SCALING = 1u << 25;
constexpr u32 USER_WAIT = 1u << 26;  // enable user wait and pause
constexpr u32 PCONFIG = 1u << 27;
constexpr u32 ENCLV = 1u << 28;
}  // namespace Vmx_cpu2

/* Primary VM-exit controls (SDM 24.7.1, table 24-13 of newer editions). */
namespace Vmx_exit_ctl {
constexpr u32 SAVE_DEBUG = 1u << 2;
constexpr u32 HOST_64 = 1u << 9;  // host address-space size
constexpr u32 LOAD_PERF_GLOBAL = 1u << 12;
constexpr u32 ACK_INTR = 1u << 15;  // acknowledge interrupt on exit
constexpr u32 SAVE_PAT = 1u << 18;
constexpr u32 LOAD_PAT = 1u << 19;
constexpr u32 SAVE_EFER = 1u << 20;
constexpr u32 LOAD_EFER = 1u << 21;
constexpr u32 SAVE_PREEMPT_TIMER = 1u << 22;
constexpr u32 CLEAR_BNDCFGS = 1u << 23;
constexpr u32 PT_CONCEAL = 1u << 24;
constexpr u32 CLEAR_RTIT_CTL = 1u << 25;
constexpr u32 CLEAR_LBR_CTL = 1u << 26;
constexpr u32 LOAD_CET = 1u << 28;
constexpr u32 LOAD_PKRS = 1u << 29;
constexpr u32 SECONDARY = 1u << 31;   // activate secondary VM-exit controls
constexpr u32 DEFAULT1 = 0x00036dff;  // bits 0-8, 10, 11, 13, 14, 16, 17 (A.4)
}  // namespace Vmx_exit_ctl

/* VM-entry controls (SDM 24.8.1). */
namespace Vmx_entry_ctl {
constexpr u32 LOAD_DEBUG = 1u << 2;
constexpr u32 IA32E_GUEST = 1u << 9;  // IA-32e mode guest
constexpr u32 ENTRY_SMM = 1u << 10;
constexpr u32 DEACT_DUAL_MONITOR = 1u << 11;
constexpr u32 LOAD_PERF_GLOBAL = 1u << 13;
constexpr u32 LOAD_PAT = 1u << 14;
constexpr u32 LOAD_EFER = 1u << 15;
constexpr u32 LOAD_BNDCFGS = 1u << 16;
constexpr u32 PT_CONCEAL = 1u << 17;
constexpr u32 LOAD_RTIT_CTL = 1u << 18;
constexpr u32 LOAD_CET = 1u << 20;
constexpr u32 LOAD_LBR_CTL = 1u << 21;
constexpr u32 LOAD_PKRS = 1u << 22;
constexpr u32 DEFAULT1 = 0x000011ff;  // bits 0-8, 12 (A.5)
}  // namespace Vmx_entry_ctl

/* Basic exit reasons (SDM Appendix C); the exit-reason field holds them in bits 15:0. */
namespace Vmx_exit {
enum : u32 {
    EXC_NMI = 0,
    EXT_INTR = 1,
    TRIPLE_FAULT = 2,
    INIT = 3,
    SIPI = 4,
    IO_SMI = 5,
    OTHER_SMI = 6,
    INTR_WINDOW = 7,
    NMI_WINDOW = 8,
    TASK_SWITCH = 9,
    CPUID = 10,
    GETSEC = 11,
    HLT = 12,
    INVD = 13,
    INVLPG = 14,
    RDPMC = 15,
    RDTSC = 16,
    RSM = 17,
    VMCALL = 18,
    VMCLEAR = 19,
    VMLAUNCH = 20,
    VMPTRLD = 21,
    VMPTRST = 22,
    VMREAD = 23,
    VMRESUME = 24,
    VMWRITE = 25,
    VMXOFF = 26,
    VMXON = 27,
    CR_ACCESS = 28,
    DR_ACCESS = 29,
    IO = 30,
    RDMSR = 31,
    WRMSR = 32,
    INVALID_STATE = 33,  // VM-entry failure due to invalid guest state
    MSR_LOAD_FAIL = 34,  // VM-entry failure due to MSR loading
    MWAIT = 36,
    MTF = 37,
    MONITOR = 39,
    PAUSE = 40,
    MACHINE_CHECK = 41,  // VM-entry failure due to a machine-check event
    TPR_THRESHOLD = 43,
    APIC_ACCESS = 44,
    VIRT_EOI = 45,
    GDTR_IDTR = 46,
    LDTR_TR = 47,
    EPT_VIOLATION = 48,
    EPT_MISCONFIG = 49,
    INVEPT = 50,
    RDTSCP = 51,
    PREEMPT_TIMER = 52,
    INVVPID = 53,
    WBINVD = 54,
    XSETBV = 55,
    APIC_WRITE = 56,
    RDRAND = 57,
    INVPCID = 58,
    VMFUNC = 59,
    ENCLS = 60,
    RDSEED = 61,
    PML_FULL = 62,
    XSAVES = 63,
    XRSTORS = 64,
    SPP = 66,
    UMWAIT = 67,
    TPAUSE = 68,
};
constexpr u32 BASIC_MASK = 0xffff;
constexpr u32 ENTRY_FAILURE = 1u << 31;  // exit-reason bit 31: the VM entry failed
}  // namespace Vmx_exit

/* The interruption-information format (VM-entry, VM-exit, IDT-vectoring; SDM 24.8.3, 24.9.2). */
namespace Vmx_intr {
constexpr u32 VECTOR = 0xff;
constexpr u32 TYPE_MASK = 7u << 8;
constexpr u32 TYPE_EXTINT = 0u << 8, TYPE_NMI = 2u << 8, TYPE_HW_EXC = 3u << 8, TYPE_SW_INT = 4u << 8,
              TYPE_PRIV_SW_EXC = 5u << 8, TYPE_SW_EXC = 6u << 8, TYPE_OTHER = 7u << 8;
constexpr u32 ERROR_CODE = 1u << 11;
constexpr u32 NMI_UNBLOCK =
    1u << 12;  // exit interruption info / EPT qualification: NMI unblocking due to IRET
constexpr u32 VALID = 1u << 31;
constexpr u32 type(u32 info) { return info & TYPE_MASK; }
}  // namespace Vmx_intr

/* Guest interruptibility state (SDM 24.4.2, table 24-3). */
namespace Vmx_intr_state {
constexpr u32 STI = 1u << 0, MOV_SS = 1u << 1, SMI = 1u << 2, NMI = 1u << 3, ENCLAVE = 1u << 4;
constexpr u32 RESERVED = ~u32{0x1f};  // bits 31:5
}  // namespace Vmx_intr_state

/* Guest activity state (SDM 24.4.2). */
namespace Vmx_activity {
constexpr u32 ACTIVE = 0, HLT = 1, SHUTDOWN = 2, WAIT_SIPI = 3;
}

/* Guest pending debug exceptions (SDM 24.4.2, table 24-4). */
namespace Vmx_pending_dbg {
constexpr u64 B0_B3 = 0xf, ENABLED_BP = 1u << 12, BS = 1u << 14, RTM = 1u << 16;
constexpr u64 RESERVED = ~(B0_B3 | ENABLED_BP | BS | RTM);  // bits 11:4, 13, 15, 63:17
}  // namespace Vmx_pending_dbg

/* The VMX capability MSRs (SDM Appendix A) and IA32_FEATURE_CONTROL (SDM 23.7). */
namespace Vmx_msr {
constexpr u32 FEATURE_CONTROL = 0x3a;
constexpr u32 BASIC = 0x480;
constexpr u32 PINBASED_CTLS = 0x481;
constexpr u32 PROCBASED_CTLS = 0x482;
constexpr u32 EXIT_CTLS = 0x483;
constexpr u32 ENTRY_CTLS = 0x484;
constexpr u32 MISC = 0x485;
constexpr u32 CR0_FIXED0 = 0x486;
constexpr u32 CR0_FIXED1 = 0x487;
constexpr u32 CR4_FIXED0 = 0x488;
constexpr u32 CR4_FIXED1 = 0x489;
constexpr u32 VMCS_ENUM = 0x48a;
constexpr u32 PROCBASED_CTLS2 = 0x48b;
constexpr u32 EPT_VPID_CAP = 0x48c;
constexpr u32 TRUE_PINBASED_CTLS = 0x48d;
constexpr u32 TRUE_PROCBASED_CTLS = 0x48e;
constexpr u32 TRUE_EXIT_CTLS = 0x48f;
constexpr u32 TRUE_ENTRY_CTLS = 0x490;
constexpr u32 VMFUNC = 0x491;
constexpr u32 PROCBASED_CTLS3 = 0x492;
}  // namespace Vmx_msr

/* IA32_FEATURE_CONTROL bits (SDM 23.7). */
namespace Vmx_feature_control {
constexpr u64 LOCK = 1u << 0, VMX_IN_SMX = 1u << 1, VMX_OUTSIDE_SMX = 1u << 2;
}

/* IA32_VMX_BASIC (A.1). */
namespace Vmx_basic {
constexpr u64 REVISION = 0x7fffffff;  // bits 30:0
constexpr unsigned SIZE_SHIFT = 32;   // bits 44:32: VMCS region size in bytes
constexpr u64 SIZE_MASK = 0x1fff;
constexpr u64 ADDR_32BIT = u64{1} << 48;  // VMXON/VMCS/bitmap addresses limited to 32 bits
constexpr u64 DUAL_MONITOR = u64{1} << 49;
constexpr unsigned MEMTYPE_SHIFT = 50;  // bits 53:50: memory type for the VMCS (6 = WB)
constexpr u64 MEMTYPE_MASK = 0xf;
constexpr u64 INS_OUTS_INFO = u64{1} << 54;
constexpr u64 TRUE_CTLS = u64{1} << 55;       // the IA32_VMX_TRUE_* MSRs exist
constexpr u64 ANY_ERROR_CODE = u64{1} << 56;  // hardware exceptions injectable with or without error code
}  // namespace Vmx_basic

/* IA32_VMX_MISC (A.6). */
namespace Vmx_misc {
constexpr u64 STORE_LMA = 1u << 5;  // exits store EFER.LMA into the IA-32e-mode-guest entry control
constexpr u64 ACT_HLT = 1u << 6, ACT_SHUTDOWN = 1u << 7, ACT_WAIT_SIPI = 1u << 8;
constexpr unsigned CR3_TARGETS_SHIFT = 16;  // bits 24:16
constexpr u64 CR3_TARGETS_MASK = 0x1ff;
constexpr unsigned MSR_LIST_SHIFT = 25;  // bits 27:25: recommended maximum 512 * (N + 1) entries
constexpr u64 MSR_LIST_MASK = 7;
constexpr u64 VMWRITE_ANY = u64{1} << 29;
constexpr u64 ZERO_INST_LEN = u64{1} << 30;  // software events injectable with instruction length 0
}  // namespace Vmx_misc

/* IA32_VMX_EPT_VPID_CAP (A.10). */
namespace Vmx_ept_cap {
constexpr u64 EXEC_ONLY = u64{1} << 0;
constexpr u64 WALK_4 = u64{1} << 6;
constexpr u64 WALK_5 = u64{1} << 7;
constexpr u64 MEMTYPE_UC = u64{1} << 8;
constexpr u64 MEMTYPE_WB = u64{1} << 14;
constexpr u64 PAGE_2M = u64{1} << 16;
constexpr u64 PAGE_1G = u64{1} << 17;
constexpr u64 INVEPT = u64{1} << 20;
constexpr u64 AD_FLAGS = u64{1} << 21;
constexpr u64 ADV_EXIT_INFO = u64{1} << 22;
constexpr u64 SSS = u64{1} << 23;  // supervisor shadow-stack control
constexpr u64 INVEPT_SINGLE = u64{1} << 25;
constexpr u64 INVEPT_ALL = u64{1} << 26;
constexpr u64 INVVPID = u64{1} << 32;
constexpr u64 INVVPID_ADDR = u64{1} << 40;
constexpr u64 INVVPID_SINGLE = u64{1} << 41;
constexpr u64 INVVPID_ALL = u64{1} << 42;
constexpr u64 INVVPID_SINGLE_GLOBALS = u64{1} << 43;
}  // namespace Vmx_ept_cap

/* INVEPT / INVVPID types (SDM 30.3). */
namespace Vmx_inv {
constexpr u64 EPT_SINGLE = 1, EPT_ALL = 2;
constexpr u64 VPID_ADDR = 0, VPID_SINGLE = 1, VPID_ALL = 2, VPID_SINGLE_GLOBALS = 3;
}  // namespace Vmx_inv

/* EPT paging-structure entries (SDM 28.3.2) and the EPT pointer (SDM 24.6.11). */
namespace Ept {
constexpr u64 R = 1u << 0, W = 1u << 1, X = 1u << 2;
constexpr unsigned MEMTYPE_SHIFT = 3;  // leaf bits 5:3
constexpr u64 MEMTYPE_MASK = u64{7} << MEMTYPE_SHIFT;
constexpr u64 IGNORE_PAT = 1u << 6;
constexpr u64 LARGE = 1u << 7;  // PDE: 2 MiB page, PDPTE: 1 GiB page
constexpr u64 ACCESSED = 1u << 8, DIRTY = 1u << 9;
constexpr u64 USER_EXEC = 1u << 10;  // with mode-based execute control
constexpr u64 SUPPRESS_VE = u64{1} << 63;
constexpr u64 ADDR = 0x000ffffffffff000ull;
// Memory types (SDM 11.3; EPT allows the ones below, 2, 3 and 7 are reserved there).
enum Mtype : u8 { UC = 0, WC = 1, WT = 4, WP = 5, WB = 6 };
// EPTP: bits 2:0 memory type of the paging structures, 5:3 walk length - 1, 6 A/D enable.
constexpr unsigned EPTP_WALK_SHIFT = 3;
constexpr u64 EPTP_AD = 1u << 6;
constexpr u64 EPTP_SSS = 1u << 7;
}  // namespace Ept

/* VM-instruction error numbers (SDM 30.4, table 30-1). */
namespace Vmx_error {
enum : u32 {
    VMCALL_ROOT = 1,
    VMCLEAR_BAD_ADDR = 2,
    VMCLEAR_VMXON_PTR = 3,
    VMLAUNCH_NOT_CLEAR = 4,
    VMRESUME_NOT_LAUNCHED = 5,
    VMRESUME_AFTER_VMXOFF = 6,
    ENTRY_BAD_CONTROLS = 7,
    ENTRY_BAD_HOST_STATE = 8,
    VMPTRLD_BAD_ADDR = 9,
    VMPTRLD_VMXON_PTR = 10,
    VMPTRLD_BAD_REVISION = 11,
    BAD_COMPONENT = 12,
    WRITE_READ_ONLY = 13,
    VMXON_ROOT = 15,
    ENTRY_BAD_EXECUTIVE_PTR = 16,
    ENTRY_EXECUTIVE_NOT_LAUNCHED = 17,
    ENTRY_EXECUTIVE_NOT_VMXON = 18,
    VMCALL_NOT_CLEAR = 19,
    VMCALL_BAD_EXIT_CONTROLS = 20,
    VMCALL_BAD_MSEG_REVISION = 22,
    VMXOFF_DUAL_MONITOR = 23,
    VMCALL_BAD_SMM_FEATURES = 24,
    ENTRY_BAD_EXECUTIVE_CONTROLS = 25,
    ENTRY_MOV_SS_BLOCKING = 26,
    BAD_INVEPT_INVVPID = 28,
};

/* A short text for the kill message ("VM entry failed with error 0x7 (invalid control fields)"). */
constexpr const char *text(u32 e)
{
    switch (e) {
    case VMCALL_ROOT: return "VMCALL in VMX root operation";
    case VMCLEAR_BAD_ADDR: return "VMCLEAR with invalid address";
    case VMCLEAR_VMXON_PTR: return "VMCLEAR with VMXON pointer";
    case VMLAUNCH_NOT_CLEAR: return "VMLAUNCH with non-clear VMCS";
    case VMRESUME_NOT_LAUNCHED: return "VMRESUME with non-launched VMCS";
    case VMRESUME_AFTER_VMXOFF: return "VMRESUME after VMXOFF";
    case ENTRY_BAD_CONTROLS: return "invalid control fields";
    case ENTRY_BAD_HOST_STATE: return "invalid host-state fields";
    case VMPTRLD_BAD_ADDR: return "VMPTRLD with invalid address";
    case VMPTRLD_VMXON_PTR: return "VMPTRLD with VMXON pointer";
    case VMPTRLD_BAD_REVISION: return "VMPTRLD with wrong revision";
    case BAD_COMPONENT: return "unsupported VMCS component";
    case WRITE_READ_ONLY: return "VMWRITE to read-only component";
    case VMXON_ROOT: return "VMXON in VMX root operation";
    case ENTRY_BAD_EXECUTIVE_PTR: return "invalid executive-VMCS pointer";
    case ENTRY_EXECUTIVE_NOT_LAUNCHED: return "non-launched executive VMCS";
    case ENTRY_EXECUTIVE_NOT_VMXON: return "executive-VMCS pointer not VMXON pointer";
    case VMCALL_NOT_CLEAR: return "VMCALL with non-clear VMCS";
    case VMCALL_BAD_EXIT_CONTROLS: return "VMCALL with invalid exit controls";
    case VMCALL_BAD_MSEG_REVISION: return "VMCALL with wrong MSEG revision";
    case VMXOFF_DUAL_MONITOR: return "VMXOFF under dual-monitor treatment";
    case VMCALL_BAD_SMM_FEATURES: return "VMCALL with invalid SMM-monitor features";
    case ENTRY_BAD_EXECUTIVE_CONTROLS: return "invalid executive-VMCS controls";
    case ENTRY_MOV_SS_BLOCKING: return "events blocked by MOV SS";
    case BAD_INVEPT_INVVPID: return "invalid INVEPT/INVVPID operand";
    default: return "unknown VM-instruction error";
    }
}
}  // namespace Vmx_error
