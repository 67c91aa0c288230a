/*
 * vCPUs (ABI 7.4, 10.3, 10.4; docs/virtualization.md): an EC whose user state is a guest. The
 * guest runs on AMD SVM (src/svm.cpp, a VMCB) or Intel VMX (src/vmx.cpp, a VMCS); one of the two
 * is in use on a machine, and Virt dispatches to it. The scheduler ends in Virt::run for a vCPU;
 * every exit the VMM must see becomes an event message (Virt::to_utcb), and the reply's state goes
 * back through Virt::from_utcb, sanitised. The guest-physical space is the PD's guest page table
 * (Pd::gpt: nested page table on SVM, EPT on VMX), filled by delegations with the G bit.
 */
#pragma once

#include "abi/utcb.hpp"
#include "types.hpp"

class Ec;
struct Cpu;
struct Vmcb;

/* An entry of a VMX MSR-load/-store area (SDM 24.7.2). */
struct Vmx_msr_entry
{
    u32 index, reserved;
    u64 value;
};

/* The guest MSRs VMX switches through the MSR areas (MTD SYSCALL_SWAPGS and TSC). */
namespace Vmx_guest_msr {
enum : unsigned { STAR, LSTAR, FMASK, KERNEL_GS_BASE, TSC_AUX, COUNT };
}

/* A vCPU's state besides its VMCB or VMCS. */
struct Vcpu
{
    Vmcb *vmcb = nullptr;    // SVM: the control block
    void *vmcs = nullptr;    // VMX: the VMCS region (a page; the next page holds `msrs`)
    u64 tag_gen = 0;         // the CPU's tag generation `tag` belongs to (0: none yet)
    u32 tag = 0;             // SVM ASID / VMX VPID (VPID 0: VPIDs off for this vCPU)
    u64 gpt_seen = 0;        // the PD's guest-table generation this vCPU's TLB entries are from
    u64 xcr0 = 1;            // guest XCR0 (ABI 7.4: x87)
    u64 exit_tsc = 0;        // host TSC at the last exit (tsc_val)
    bool flush_tlb = false;  // the VMM asked for a guest TLB flush (MTD TLB)

    // VMX only.
    bool vmcs_ready = false;   // initialised on its CPU (VMCLEAR and every field written)
    bool launched = false;     // VMLAUNCH succeeded: VMRESUME from now on
    bool intr_window = false;  // INJ bit 12: interrupt-window exiting
    bool nmi_window = false;   // INJ bit 13: NMI-window exiting
    bool io_bitmaps = false;   // the PD's guest I/O bitmaps are programmed
    bool apic_access = false;  // create_ec flag 2: the PD's APIC-access page is programmed
    u32 ctrl0 = 0, ctrl1 = 0;  // the VMM's last CTRL write (primary, secondary controls)
    u64 cr0_mon = 0, cr4_mon = 0;
    u64 cr2 = 0;         // VMX does not switch CR2: src/vmx_entry.S does
    u64 vapic_phys = 0;  // the virtual-APIC page (create_ec rdx[63:12]), 0: none
    Vmx_msr_entry *msrs =
        nullptr;  // the guest's MSR area (Vmx_guest_msr::COUNT): loaded at entry, stored at exit
};

namespace Virt {
/* The HIP's flag (ABI 8.2): every CPU can run vCPUs with SVM or with VMX. */
bool svm();
bool vmx();
inline bool usable() { return svm() || vmx(); }

/* Every CPU, after its descriptors and features: turn on SVM or VMX. */
void init_cpu(Cpu &c);

/* A new vCPU's control block in its reset state (VMX: ec.vcpu.apic_access, ec.utcb = virtual-APIC page). */
bool create(Ec &ec);
void destroy(Ec &ec);

/* Enter the guest and handle its exits until one must go to the VMM (the scheduler's last step). */
[[noreturn]] void run(Ec *ec);

/* A machine check ended the guest (#MC intercepted, or a VM entry failed on one): the kernel logs
   it and clears the banks and MCIP, as for one in user mode (src/exception.cpp). */
void machine_check(Cpu &c);

/* Event message (ABI 4.3, 5): the state the portal's MTD selects; ec->regs.vector is the event. */
void to_utcb(Ec &ec, u64 mtd, Utcb &u);
/* Reply: the state the UTCB's mtd selects, sanitised; a kill reason if the vCPU cannot go on. */
const char *from_utcb(const Utcb &u, Ec &ec);

/*
 * A new ASID/VPID when this CPU's generation moved on (or the vCPU never had one): tags 1..max
 * are handed out in order; when they run out the generation moves on and every vCPU of the CPU
 * takes a new one the same way, so a tag is never 0 and never shared. True: the tag may still
 * have a former owner's TLB entries, flush it before the entry. Host-tested.
 */
struct Tags
{
    u32 next = 1, max = 0;
    u64 gen = 1;
};
inline bool take_tag(Tags &t, Vcpu &v)
{
    if (!t.max) {  // none (VMX without VPIDs, `novpid`): the CPU flushes at every entry and exit
        v.tag = 0;
        return false;
    }
    if (v.tag_gen == t.gen)
        return false;
    if (t.next > t.max) {
        t.gen++;
        t.next = 1;
    }
    v.tag = t.next++;
    v.tag_gen = t.gen;
    return true;
}
}  // namespace Virt
