/*
 * vCPUs on AMD SVM (include/svm.hpp, docs/virtualization.md).
 *
 * Entry and exit (src/vmrun.S): with GIF clear the guest's FS/GS/TR/LDTR/syscall MSRs are loaded
 * (VMLOAD), VMRUN switches the rest; after the exit the guest's go back into the VMCB (VMSAVE)
 * and the host's are loaded from this CPU's host area (VMLOAD; saved once at boot: the kernel
 * never changes them), and only then is GIF set again, so no interrupt or NMI ever sees the
 * guest's GS base. The host's RFLAGS.IF is set at VMRUN, so physical interrupts (intercepted)
 * end the guest; the kernel takes them in an interrupt window right after the exit, counted as
 * interrupts from user mode (preemption, quantum, grace periods: Cpu::vm_window).
 */
#include "svm.hpp"
#include "abi/constants.hpp"
#include "abi/mtd.hpp"
#include "assert.hpp"
#include "console.hpp"
#include "cpu.hpp"
#include "fpu.hpp"
#include "ipc.hpp"
#include "kmem.hpp"
#include "memory.hpp"
#include "objects.hpp"
#include "sched.hpp"
#include "string.hpp"
#include "svm_state.hpp"
#include "vmcb.hpp"
#include "x86.hpp"

using namespace Svm_bits;

extern "C" void svm_vmrun(Exc_frame *gprs, u64 vmcb_phys, u64 host_phys);
extern "C" char svm_vmrun_next[];  // the instruction after VMRUN in svm_vmrun (src/vmrun.S)

bool Svm::usable;

namespace {

constexpr u32 MSR_VM_HSAVE_PA = 0xc0010117;
constexpr u64 VM_CR_SVMDIS = 1u << 4;

u64 msrpm_phys, iopm_phys;  // all ones: every MSR access and every port exits
bool nrip_save, flush_by_asid;

void xsetbv(u64 v)
{
    asm volatile("xsetbv" : : "c"(0), "a"(static_cast<u32>(v)), "d"(static_cast<u32>(v >> 32)));
}

u64 xgetbv()
{
    u32 lo, hi;
    asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return u64{hi} << 32 | lo;
}

/* The CPU whose host save area or host VMSAVE area is at phys, -1 if none. */
int host_area_cpu(u64 phys)
{
    for (unsigned i = 0; i < Cpu::count; i++)
        if (Cpu::table[i] && (Cpu::table[i]->svm_hsave == phys || Cpu::table[i]->svm_host == phys))
            return static_cast<int>(i);
    return -1;
}

/*
 * The guest state after an exit is the host's: RIP is the kernel's instruction after VMRUN and CR3
 * this CPU's, i.e. what VMRUN stores into the host save area. Under QEMU 7.2 TCG with two VMs the
 * guest sometimes starts in exactly that state (docs/vmm.md, Limits): the VMCB held the guest's
 * state right before VMRUN, no VMCB is a host save area, VM_HSAVE_PA stays what we wrote. One line
 * per boot, with what tells the causes apart; a guest can fake the pair and gets only the line.
 */
void host_state_check(const Cpu &c, const Ec *ec, const Vmcb &m)
{
    if (m.rip != reinterpret_cast<u64>(svm_vmrun_next) || m.cr3 != get_cr3()) [[likely]]
        return;
    static bool reported;
    if (__atomic_exchange_n(&reported, true, __ATOMIC_RELAXED))
        return;
    using ull = unsigned long long;
    u64 vmcb = virt_to_phys(&m);
    trace("SVM: vCPU %p on CPU %u: the guest state after exit %#llx (info %#llx %#llx) is the host's "
          "(RIP %#llx after VMRUN, CR3 %#llx); VMCB %#llx (host area of CPU %d), "
          "VM_HSAVE_PA %#llx (set to %#llx)",
          static_cast<const void *>(ec), c.id, static_cast<ull>(m.exitcode), static_cast<ull>(m.exitinfo1),
          static_cast<ull>(m.exitinfo2), static_cast<ull>(m.rip), static_cast<ull>(m.cr3),
          static_cast<ull>(vmcb), host_area_cpu(vmcb), static_cast<ull>(rdmsr(MSR_VM_HSAVE_PA)),
          static_cast<ull>(c.svm_hsave));
}

}  // namespace

bool Svm::init_cpu(Cpu &c)
{
    const Cpu_features &f = c.feat;
    if (!f.svm || !f.npt)
        return false;
    if (rdmsr(Msr::VM_CR) & VM_CR_SVMDIS) {
        trace("SVM: disabled by the firmware (VM_CR.SVMDIS) on CPU %u", c.id);
        return false;
    }
    void *hsave = Kmem::alloc_page(), *host = Kmem::alloc_page();
    if (!hsave || !host) {
        trace("SVM: no memory for the host save areas of CPU %u", c.id);
        return false;
    }
    if (!msrpm_phys) {  // the boot CPU, before any other
        void *msrpm = Kmem::alloc(1, false), *iopm = Kmem::alloc(2, false);
        if (!msrpm || !iopm) {
            trace("SVM: no memory for the permission maps");
            return false;
        }
        memset(msrpm, 0xff, 2 * PAGE_SIZE);
        memset(iopm, 0xff, 4 * PAGE_SIZE);
        msrpm_phys = virt_to_phys(msrpm);
        iopm_phys = virt_to_phys(iopm);
        auto s = cpuid(0x8000000a);
        nrip_save = s.edx & (1u << 3);
        flush_by_asid = s.edx & (1u << 6);
        trace("SVM: nested paging, %u ASIDs, next-RIP save %s, flush by ASID %s", f.svm_asids,
              nrip_save ? "yes" : "no", flush_by_asid ? "yes" : "no");
    }
    wrmsr(Msr::EFER, rdmsr(Msr::EFER) | Efer::SVME);
    c.svm_hsave = virt_to_phys(hsave);
    wrmsr(MSR_VM_HSAVE_PA, c.svm_hsave);
    c.svm_host = virt_to_phys(host);
    asm volatile("vmsave %%rax" : : "a"(c.svm_host) : "memory");
    c.tags = Virt::Tags{1, f.svm_asids > 1 ? f.svm_asids - 1 : 1, 1};
    return true;
}

bool Svm::create(Ec &ec)
{
    auto *m = static_cast<Vmcb *>(Kmem::alloc_page(ec.payer));  // paid for with the vCPU (docs/quota.md)
    if (!m)
        return false;
    // VMRUN stores the host state into the host save area before it loads the guest's from the
    // VMCB: a VMCB there would start the guest in the host's state.
    assert(host_area_cpu(virt_to_phys(m)) < 0);
    Svm_state::init(*m, iopm_phys, msrpm_phys);
    ec.vcpu.vmcb = m;
    ec.vcpu.xcr0 = 1;
    return true;
}

void Svm::destroy(Ec &ec)
{
    if (ec.vcpu.vmcb)
        Kmem::free(ec.vcpu.vmcb, 0, ec.payer);
    ec.vcpu.vmcb = nullptr;
}

void Svm::run(Ec *ec)
{
    Cpu &c = Cpu::current();
    Vcpu &v = ec->vcpu;
    Vmcb &m = *v.vmcb;
    const Pd *pd = ec->pd;

    // A new ASID when this CPU's generation moved on (or never had one); its TLB entries may be
    // a former owner's, so the first entry flushes them (include/vcpu.hpp).
    bool flush = Virt::take_tag(c.tags, v) || v.flush_tlb;
    // Guest mappings that lost rights (src/mapping.cpp): the CPU published its space (activate)
    // before this read, so either the revoker's shootdown sees this CPU in the PD (the IPI ends
    // the guest and we come here again) or we see its generation.
    u64 gen = __atomic_load_n(&pd->gpt_gen, __ATOMIC_ACQUIRE);
    if (v.gpt_seen != gen) {
        v.gpt_seen = gen;
        flush = true;
    }
    v.flush_tlb = false;
    m.asid = v.tag;
    m.tlb_control = flush ? (flush_by_asid ? TLB_FLUSH_ASID : TLB_FLUSH_ALL) : TLB_NONE;
    m.ncr3 = pd->gpt_phys;
    // The PD's guest ports (G-bit I/O delegations) or none; the kernel's map either way.
    const u8 *iopm = __atomic_load_n(&pd->guest_iopm, __ATOMIC_ACQUIRE);
    m.iopm = iopm ? virt_to_phys(iopm) : iopm_phys;
    m.clean = 0;
    m.exitcode = 0;

    bool xsave = Fpu::xsave_used();
    if (xsave && v.xcr0 != Fpu::xcr0())
        xsetbv(v.xcr0);
    svm_vmrun(&ec->regs, virt_to_phys(&m), c.svm_host);
    if (xsave) {
        // The guest's XCR0 is what the CPU has now: a CPU that does not intercept XSETBV (QEMU's
        // TCG) lets the guest set it directly. The host's comes back in any case.
        u64 now = xgetbv();
        v.xcr0 = now;
        if (now != Fpu::xcr0())
            xsetbv(Fpu::xcr0());
    }
    v.exit_tsc = rdtsc();
    __atomic_add_fetch(&c.qs, 1, __ATOMIC_RELAXED);  // left guest mode: quiescent (rcu.hpp), progress

    host_state_check(c, ec, m);
    Svm_state::after_exit(m);
    u64 code = m.exitcode;
    if (code == EXIT_INTR) {
        // The interrupt is still pending: take it now, as one from user mode (it may preempt
        // us, end the quantum, deliver a recall), then go on through the scheduler.
        c.vm_window = true;  // cleared by the interrupt (src/exception.cpp)
        asm volatile("sti; nop; cli" ::: "memory");
        c.vm_window = false;
        Sched::run(c.sc, ec);
    }
    if (code == EXIT_EXC_BASE + 18)
        Virt::machine_check(c);  // the host's (log, clear MCIP); the VMM still gets the event
    int n = Svm_state::event_of(code);
    if (n < 0) {
        trace("SVM: vCPU %p: exit code %#llx has no event number", static_cast<void *>(ec),
              static_cast<unsigned long long>(code));
        kill_current(ec->regs, "VMEXIT");
    }
    // NPF: the reply's implicit window (ABI 10.2) is the guest-physical page.
    Ipc::exception(ec, static_cast<unsigned>(n), m.exitinfo1, code == EXIT_NPF ? m.exitinfo2 : ec->cr2);
}

void Svm::to_utcb(const Ec &ec, u64 mtd, Utcb &u)
{
    Svm_state::to_utcb(*ec.vcpu.vmcb, ec.regs, ec.vcpu, mtd, nrip_save, u);
}

const char *Svm::from_utcb(const Utcb &u, Ec &ec)
{
    return Svm_state::from_utcb(u, *ec.vcpu.vmcb, ec.regs, ec.vcpu,
                                Svm_state::Host{Fpu::xsave_used(), Fpu::xcr0()});
}
