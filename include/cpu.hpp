/*
 * Per-CPU state. Each CPU's GS base points at its own Cpu object from the
 * first instruction of C++ code on, so "which CPU am I" is one memory access
 * (%gs:0). In user mode the kernel GS base sits in IA32_KERNEL_GS_BASE and is
 * swapped back on every kernel entry. CPUs are numbered in MADT order (ABI
 * 8.3); there is no compile-time limit on their number.
 */
#pragma once

#include "abi/constants.hpp"
#include "lockup.hpp"
#include "memory_asm.hpp"
#include "pcid.hpp"
#include "runqueue.hpp"
#include "spinlock.hpp"
#include "types.hpp"
#include "vcpu.hpp"

class Ec;
class Pd;
class Sc;

struct Cpu_features
{
    u32 family, model, stepping, platform, ucode;
    u32 package, core, thread;
    u32 max_leaf, max_ext_leaf;
    bool vmx, svm, ept, npt, vpid, asid, unrestricted;
    bool pcid, invpcid, x2apic, xsave, tsc_deadline, pdpe1gb, nx, invariant_tsc, fsgsbase, smep, smap, umip;
    bool mce, mca;
    u32 svm_asids;
    char vendor[13];
    char brand[49];
};

struct [[gnu::packed]] Tss
{
    u32 reserved0;
    u64 rsp[3];
    u64 reserved1;
    u64 ist[7];
    u64 reserved2;
    u16 reserved3;
    u16 iomap_base;
};

/* The PDs whose mappings or I/O ports lost rights in one Mdb operation (src/mapping.cpp). */
struct Tlb_flush
{
    static constexpr unsigned MAX = 4;
    const Pd *pd[MAX] = {};
    unsigned n = 0;
    bool all = false;  // more PDs than fit: every CPU flushes
};

struct Cpu
{
    Cpu *self;       // %gs:0
    u64 kstack_top;  // %gs:8   kernel stack for syscall/interrupt entry
    u64 user_rsp;    // %gs:16  scratch during syscall entry
    u64 frame_top;   // %gs:24  end of the running EC's register frame (= TSS.rsp0)
    u64 qs;          // %gs:32  entries from user mode, counted by the entry code (rcu.hpp)
    u64 flags;       // %gs:40  CPU_FLAG_* (include/memory_asm.hpp), read by the entry code
    u32 id;          // logical CPU number (MADT order)
    u32 apic_id;
    u32 acpi_id;
    bool online;
    bool bsp;
    Cpu_features feat;

    alignas(16) u64 gdt[9];
    alignas(16) Tss tss;
    u8 iobm[8192 + 1];  // I/O permission bitmap, right behind the TSS (the CPU requires a final 0xff)

    Ec *ec;           // the EC whose user state is at the top of this CPU's kernel stack
    const Pd *space;  // whose page table CR3 holds (nullptr: the kernel's)
    bool pcid_on;     // CR4.PCIDE set: address spaces get PCIDs (include/pcid.hpp)
    Pcid_cache pcids;
    const Pd *io_pd;  // whose I/O bitmap iobm[] holds (nullptr: none, every port faults)
    u64 io_version;
    u64 io_gen;  // io_generation when iobm/iomap_base were last synced

    /* Scheduler (src/sched.cpp). */
    Sc *sc;        // running SC, nullptr when idle
    u64 sc_since;  // TSC when sc started its current stint
    Spinlock rq_lock;
    Run_queue<Sc> rq;  // ready SCs (include/runqueue.hpp), under rq_lock
    Ec *timeouts;      // ECs blocked with a deadline on this CPU
    bool resched;      // a remote CPU made an SC ready here
    Sc *retired;       // SCs whose last reference went, to be finished here (under rq_lock)

    /* Grace periods (src/rcu.cpp): a CPU is quiescent in user mode and while idle. */
    u64 qs_snap;      // qs when the current grace period started
    bool idle;        // halted in the idle loop (holds no object pointers)
    u64 tlb_req;      // shootdown requests to this CPU so far (src/shootdown.cpp)
    u64 tlb_done;     // the last request it answered by flushing
    Tlb_flush flush;  // left by this CPU's current Mdb operation to its finish()
    Pd *dying;        // likewise: PDs whose last capability went

    u64 timer_ticks;   // timer interrupts taken
    u64 irqs;          // device interrupts taken
    u64 exceptions;    // user exceptions taken
    u64 nmis;          // NMIs taken
    u64 nmis_user_gs;  // of which arrived in kernel mode with the user's GS base (src/entry.S)
    u64 nmis_reported, nmi_report_tsc;  // last NMI line (exception.cpp)
    u64 mces;                           // machine checks taken
    Lockup_state lockup;                // progress and the last NMI sample (src/lockup.cpp)

    /* Virtualization (src/svm.cpp, src/vmx.cpp). */
    u64 svm_host;       // physical address of the host's VMSAVE area
    u64 svm_hsave;      // physical address of the host save area (VM_HSAVE_PA)
    Virt::Tags tags;    // ASIDs / VPIDs (include/vcpu.hpp)
    bool vm_window;     // taking the interrupt that ended a guest: it counts as one from user mode
    u64 vmxon_phys;     // VMX: this CPU's VMXON region (0: VMX off)
    u64 vmcs_current;   // VMX: the current VMCS (physical; 0: none)
    u64 vmx_host_msrs;  // VMX: physical address of the host's MSR-load area
    void *vmcs_dead;    // VMX: VMCS regions of destroyed vCPUs, to be cleared here (src/vmx.cpp)

    /* LAPIC state as found at boot (ABI 8.3, reported in the HIP later). */
    u32 lapic_version, lapic_svr, lvt_timer, lvt_lint0, lvt_lint1, lvt_error, lvt_perfm, lvt_therm;

    static Cpu &current()
    {
        Cpu *c;
        asm volatile("mov %%gs:0, %0" : "=r"(c));
        return *c;
    }

    /* -1 until per-CPU set-up (ABI 13.2 prints "[-1]" then). */
    static int current_id();

    static Cpu boot_cpu;    // GS target before the CPU table exists
    static Cpu **table;     // all CPUs, index = CPU number
    static unsigned count;  // CPUs listed in the MADT (enabled ones)
    static unsigned online_count;

    void setup_descriptors();  // GDT, TSS, IDT, syscall MSRs for this CPU
    void detect_features();
    void print_core_line() const;  // printed by any CPU, prefixed with this CPU's number
    void enable_features(bool nopcid, bool noxsave);
    // IST stack n (IST_DF, ...) ends at top; stores this CPU's pointer for the paranoid entry.
    void set_ist(unsigned n, u64 top);
};

/*
 * GDT selectors. The user ones are the values the ABI fixes (1.2); syscall/sysretq derive them
 * from STAR: sysretq loads CS = SYSRET_BASE + 16 and SS = SYSRET_BASE + 8, both with RPL 3.
 */
namespace Gdt {
constexpr u16 KCODE = 0x08, KDATA = 0x10, TSS = 0x30;
constexpr u16 UCODE_IRET = Abi::SEG_USER_CS_IRET, UDATA = Abi::SEG_USER_DS, UCODE = Abi::SEG_USER_CS;
constexpr u16 SYSRET_BASE = 0x18 | 3;
static_assert(UCODE == SYSRET_BASE + 16 && UDATA == SYSRET_BASE + 8);
}  // namespace Gdt
