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
#include "console.hpp"
#include "cpu.hpp"
#include "fpu.hpp"
#include "ipc.hpp"
#include "kmem.hpp"
#include "memory.hpp"
#include "objects.hpp"
#include "sched.hpp"
#include "string.hpp"
#include "vmcb.hpp"
#include "x86.hpp"

using namespace Svm_bits;

extern "C" void svm_vmrun(Exc_frame *gprs, u64 vmcb_phys, u64 host_phys);

bool Svm::usable;

namespace {

constexpr u32 MSR_VM_HSAVE_PA = 0xc0010117;
constexpr u64 VM_CR_SVMDIS = 1u << 4;

// Intercepts the kernel keeps whatever the VMM writes (ABI 5 note 4 and docs/virtualization.md):
// host interrupts, NMIs and INIT end the guest; the VMM sees HLT, I/O, MSRs (both permission
// maps are all ones), INVD and shutdown; the guest can neither run SVM instructions (VMRUN is
// required by the APM's consistency checks) nor change GIF nor XCR0 (the kernel validates it).
constexpr u32 FORCED0 = I_INTR | I_NMI | I_INIT | I_INVD | I_HLT | I_IOIO | I_MSR | I_SHUTDOWN;
constexpr u32 CLEARED0 = I_INVLPG;  // nested paging: nothing to do for the VMM
constexpr u32 FORCED1 = I_VMRUN | I_VMLOAD | I_VMSAVE | I_STGI | I_CLGI | I_SKINIT | I_XSETBV;
// #AC and #DB always exit (as #AC on VMX, ABI 5 note 4): their delivery cannot loop in the CPU
// without a way out for the host.
constexpr u32 FORCED_EXC = 1u << 1 | 1u << 17;

u64 msrpm_phys, iopm_phys;  // all ones: every MSR access and every port exits
bool nrip_save, flush_by_asid;

void seg_reset(Vmcb_segment &s, u16 attr)
{
    s.sel = 0;
    s.attr = attr;
    s.limit = 0xffff;
    s.base = 0;
}

/* An XCR0 the host can load for the guest (ABI 10.6): x87 set, AVX only with SSE, nothing the host lacks. */
bool xcr0_valid(u64 x)
{
    constexpr u64 X87 = 1, SSE = 2, AVX = 4;
    if (!Fpu::xsave_used())
        return x == X87;
    return (x & X87) && !(x & ~Fpu::xcr0()) && (!(x & AVX) || (x & SSE));
}

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

/* The event number of an exit (ABI 10.4), or -1 when the kernel has no number for it. */
int event_of(u64 code)
{
    if (static_cast<u32>(code) == EXIT_INVALID)
        return Abi::Vmi::SVM_INVALID_STATE;
    if (code == EXIT_NPF)
        return Abi::Vmi::SVM_NPT;
    if (code < Abi::Vmi::SVM_NPT)
        return static_cast<int>(code);
    return -1;
}

/*
 * An event whose delivery the exit interrupted (EXITINTINFO) is injected again at the next entry,
 * after every kind of exit: external interrupts, NMIs and hardware exceptions. A software
 * interrupt (INT n) and #BP/#OF (INT3, INTO) are not: the guest's RIP is still at the
 * instruction, which raises them again.
 */
void requeue(Vmcb &m)
{
    u64 ii = m.exitintinfo;
    if (!(ii & EV_VALID))
        return;
    u64 type = (ii & EV_TYPE_MASK) >> EV_TYPE_SHIFT, vec = ii & 0xff;
    if (type == EV_INTR || type == EV_NMI || (type == EV_EXC && vec != 3 && vec != 4))
        m.eventinj = ii;
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
    wrmsr(MSR_VM_HSAVE_PA, virt_to_phys(hsave));
    c.svm_host = virt_to_phys(host);
    asm volatile("vmsave %%rax" : : "a"(c.svm_host) : "memory");
    c.asid_max = f.svm_asids > 1 ? f.svm_asids - 1 : 1;
    c.asid_next = 1;
    c.asid_gen = 1;
    return true;
}

bool Svm::create(Ec &ec)
{
    auto *m = static_cast<Vmcb *>(Kmem::alloc_page());
    if (!m)
        return false;
    m->intercept_exc = FORCED_EXC;
    m->intercept[0] = FORCED0;
    m->intercept[1] = FORCED1;
    m->iopm = iopm_phys;
    m->msrpm = msrpm_phys;
    m->int_ctl = V_INTR_MASKING;  // the guest's IF masks only virtual interrupts
    m->np_ctl = 1;
    // The processor's reset state (APM 14.1.3), so that a startup reply with only a RIP (and
    // CS) starts a real-mode guest; the VMM usually sets all of it.
    m->efer = EFER_SVME;
    m->cr0 = Cr0::CD | Cr0::NW | (1u << 4);  // ET
    m->rflags = 2;
    m->rip = 0xfff0;
    m->cs = Vmcb_segment{0xf000, 0x9b, 0xffff, 0xffff0000};
    seg_reset(m->ds, 0x93);
    seg_reset(m->es, 0x93);
    seg_reset(m->fs, 0x93);
    seg_reset(m->gs, 0x93);
    seg_reset(m->ss, 0x93);
    seg_reset(m->ldtr, 0x82);
    seg_reset(m->tr, 0x8b);
    m->gdtr.limit = m->idtr.limit = 0xffff;
    m->dr6 = 0xffff0ff0;
    m->dr7 = 0x400;
    m->g_pat = 0x0007040600070406ull;
    ec.vcpu.vmcb = m;
    ec.vcpu.xcr0 = 1;
    return true;
}

void Svm::destroy(Ec &ec)
{
    if (ec.vcpu.vmcb)
        Kmem::free(ec.vcpu.vmcb, 0);
    ec.vcpu.vmcb = nullptr;
}

void Svm::run(Ec *ec)
{
    Cpu &c = Cpu::current();
    Vcpu &v = ec->vcpu;
    Vmcb &m = *v.vmcb;
    const Pd *pd = ec->pd;

    // A new ASID when this CPU's generation moved on (or never had one); its TLB entries may be
    // a former owner's, so the first entry flushes them. When the ASIDs run out the generation
    // moves on and every vCPU of this CPU gets a new one the same way: never 0, never shared.
    bool flush = v.flush_tlb;
    if (v.asid_gen != c.asid_gen) {
        if (c.asid_next > c.asid_max) {
            c.asid_gen++;
            c.asid_next = 1;
        }
        v.asid = c.asid_next++;
        v.asid_gen = c.asid_gen;
        flush = true;
    }
    // Guest mappings that lost rights (src/mapping.cpp): the CPU published its space (activate)
    // before this read, so either the revoker's shootdown sees this CPU in the PD (the IPI ends
    // the guest and we come here again) or we see its generation.
    u64 gen = __atomic_load_n(&pd->gpt_gen, __ATOMIC_ACQUIRE);
    if (v.gpt_seen != gen) {
        v.gpt_seen = gen;
        flush = true;
    }
    v.flush_tlb = false;
    m.asid = v.asid;
    m.tlb_control = flush ? (flush_by_asid ? TLB_FLUSH_ASID : TLB_FLUSH_ALL) : TLB_NONE;
    m.ncr3 = pd->gpt_phys;
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

    u64 code = m.exitcode;
    if (static_cast<u32>(code) != EXIT_INVALID) {
        // An injection that was delivered is done; one that was interrupted is in EXITINTINFO.
        // (After a failed VMRUN nothing was injected: EVENTINJ is what the VMM sees, ABI 5.)
        m.eventinj = 0;
        requeue(m);
    }
    if (code == EXIT_INTR) {
        // The interrupt is still pending: take it now, as one from user mode (it may preempt
        // us, end the quantum, deliver a recall), then go on through the scheduler.
        c.vm_window = true;  // cleared by the interrupt (src/exception.cpp)
        asm volatile("sti; nop; cli" ::: "memory");
        c.vm_window = false;
        Sched::run(c.sc, ec);
    }
    int n = event_of(code);
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
    const Vmcb &m = *ec.vcpu.vmcb;
    const Exc_frame &r = ec.regs;
    unsigned n = static_cast<unsigned>(r.vector);
    u.items = Utcb::EVENT_ITEMS;
    u.mtd = mtd;
    if (mtd & Mtd::GPR_ACDB) {
        u.rax = m.rax;
        u.rcx = r.rcx;
        u.rdx = r.rdx;
        u.rbx = r.rbx;
    }
    if (mtd & Mtd::GPR_BSD) {
        u.rbp = r.rbp;
        u.rsi = r.rsi;
        u.rdi = r.rdi;
    }
    if (mtd & Mtd::GPR_R8_R15) {
        u.r8 = r.r8;
        u.r9 = r.r9;
        u.r10 = r.r10;
        u.r11 = r.r11;
        u.r12 = r.r12;
        u.r13 = r.r13;
        u.r14 = r.r14;
        u.r15 = r.r15;
    }
    if (mtd & Mtd::RSP)
        u.rsp = m.rsp;
    if (mtd & Mtd::RIP_LEN) {
        u.rip = m.rip;
        // The instruction's length where the CPU tells the next RIP (NRIP save; IOIO always).
        u64 next = nrip_save ? m.nrip : m.exitcode == EXIT_IOIO ? m.exitinfo2 : 0;
        u.inst_len = next > m.rip && next - m.rip <= 15 ? next - m.rip : 0;
    }
    if (mtd & Mtd::RFLAGS)
        u.rflags = m.rflags;
    if (mtd & Mtd::DS_ES) {
        memcpy(&u.ds, &m.ds, sizeof u.ds);
        memcpy(&u.es, &m.es, sizeof u.es);
    }
    if (mtd & Mtd::FS_GS) {
        memcpy(&u.fs, &m.fs, sizeof u.fs);
        memcpy(&u.gs, &m.gs, sizeof u.gs);
    }
    if (mtd & Mtd::CS_SS) {
        memcpy(&u.cs, &m.cs, sizeof u.cs);
        memcpy(&u.ss, &m.ss, sizeof u.ss);
    }
    if (mtd & Mtd::TR)
        memcpy(&u.tr, &m.tr, sizeof u.tr);
    if (mtd & Mtd::LDTR)
        memcpy(&u.ldtr, &m.ldtr, sizeof u.ldtr);
    if (mtd & Mtd::GDTR)
        u.gdtr = Utcb_segment{0, 0, m.gdtr.limit, m.gdtr.base};
    if (mtd & Mtd::IDTR)
        u.idtr = Utcb_segment{0, 0, m.idtr.limit, m.idtr.base};
    if (mtd & Mtd::CR) {
        u.cr0 = m.cr0;
        u.cr2 = m.cr2;
        u.cr3 = m.cr3;
        u.cr4 = m.cr4;
        u.xcr0 = ec.vcpu.xcr0;
    }
    if (mtd & Mtd::DR)
        u.dr7 = m.dr7;
    if (mtd & Mtd::SYSENTER) {
        u.sysenter_cs = m.sysenter_cs;
        u.sysenter_rsp = m.sysenter_esp;
        u.sysenter_rip = m.sysenter_eip;
    }
    if (mtd & Mtd::QUAL) {
        u.qual[0] = m.exitinfo1;
        u.qual[1] = m.exitinfo2;
    }
    if (mtd & Mtd::INJ)  // ABI 5 note 2: the pending injection for invalid state and recall
        u.inj = n == Abi::Vmi::SVM_INVALID_STATE || n == Abi::Vmi::RECALL ? m.eventinj : m.exitintinfo;
    if (mtd & Mtd::STA) {
        u.intr_state = static_cast<u32>(m.int_shadow & 1);
        u.actv_state = 0;
    }
    if (mtd & Mtd::TSC) {
        u.tsc_val = ec.vcpu.exit_tsc;
        u.tsc_off = m.tsc_offset;
    }
    if (mtd & Mtd::EFER_PAT) {  // PAT too: our extension (docs/virtualization.md)
        u.efer = m.efer;
        u.pat = m.g_pat;
    }
    if (mtd & Mtd::SYSCALL_SWAPGS) {  // our extension on SVM
        u.star = m.star;
        u.lstar = m.lstar;
        u.fmask = m.sfmask;
        u.kernel_gs_base = m.kernel_gs_base;
    }
}

const char *Svm::from_utcb(const Utcb &u, Ec &ec)
{
    Vmcb &m = *ec.vcpu.vmcb;
    Exc_frame &r = ec.regs;
    u64 mtd = u.mtd;
    if (mtd & Mtd::CR) {
        if (!xcr0_valid(u.xcr0))
            return "Invalid XCR0";
        ec.vcpu.xcr0 = u.xcr0;
        m.cr0 = u.cr0;
        m.cr2 = u.cr2;
        m.cr3 = u.cr3;
        m.cr4 = u.cr4;
    }
    if (mtd & Mtd::GPR_ACDB) {
        m.rax = u.rax;
        r.rcx = u.rcx;
        r.rdx = u.rdx;
        r.rbx = u.rbx;
    }
    if (mtd & Mtd::GPR_BSD) {
        r.rbp = u.rbp;
        r.rsi = u.rsi;
        r.rdi = u.rdi;
    }
    if (mtd & Mtd::GPR_R8_R15) {
        r.r8 = u.r8;
        r.r9 = u.r9;
        r.r10 = u.r10;
        r.r11 = u.r11;
        r.r12 = u.r12;
        r.r13 = u.r13;
        r.r14 = u.r14;
        r.r15 = u.r15;
    }
    if (mtd & Mtd::RSP)
        m.rsp = u.rsp;
    if (mtd & Mtd::RIP_LEN)
        m.rip = u.rip;
    if (mtd & Mtd::RFLAGS)
        m.rflags = u.rflags;
    // Segments, descriptor tables, control and debug registers are the guest's own: what the
    // CPU rejects ends in an invalid-state event (253) for the VMM, never harms the host.
    if (mtd & Mtd::DS_ES) {
        memcpy(&m.ds, &u.ds, sizeof m.ds);
        memcpy(&m.es, &u.es, sizeof m.es);
    }
    if (mtd & Mtd::FS_GS) {
        memcpy(&m.fs, &u.fs, sizeof m.fs);
        memcpy(&m.gs, &u.gs, sizeof m.gs);
    }
    if (mtd & Mtd::CS_SS) {
        memcpy(&m.cs, &u.cs, sizeof m.cs);
        memcpy(&m.ss, &u.ss, sizeof m.ss);
    }
    if (mtd & Mtd::TR)
        memcpy(&m.tr, &u.tr, sizeof m.tr);
    if (mtd & Mtd::LDTR)
        memcpy(&m.ldtr, &u.ldtr, sizeof m.ldtr);
    if (mtd & Mtd::GDTR) {
        m.gdtr.limit = u.gdtr.limit;
        m.gdtr.base = u.gdtr.base;
    }
    if (mtd & Mtd::IDTR) {
        m.idtr.limit = u.idtr.limit;
        m.idtr.base = u.idtr.base;
    }
    if (mtd & Mtd::DR)
        m.dr7 = u.dr7;
    if (mtd & Mtd::SYSENTER) {
        m.sysenter_cs = u.sysenter_cs;
        m.sysenter_esp = u.sysenter_rsp;
        m.sysenter_eip = u.sysenter_rip;
    }
    if (mtd & Mtd::CTRL) {
        // The VMM's intercepts on top of the kernel's; the VINTR intercept stays with INJ.
        m.intercept[0] = ((u.ctrl[0] & ~I_VINTR) | FORCED0 | (m.intercept[0] & I_VINTR)) & ~CLEARED0;
        m.intercept[1] = u.ctrl[1] | FORCED1;
        m.intercept_exc = u.exc_bitmap | FORCED_EXC;
    }
    if (mtd & Mtd::INJ) {
        // ABI 4.5: bit 12 asks for an exit as soon as the guest can take an interrupt.
        if (u.intr_info & Inj::REQ_INTR_WINDOW) {
            m.int_ctl |= V_IRQ | V_IGN_TPR;
            m.intercept[0] |= I_VINTR;
        } else {
            m.int_ctl &= ~(V_IRQ | V_IGN_TPR);
            m.intercept[0] &= ~I_VINTR;
        }
        m.eventinj = u.inj & ~u64{Inj::REQ_INTR_WINDOW | Inj::REQ_NMI_WINDOW};
    }
    if (mtd & Mtd::STA)
        m.int_shadow = (m.int_shadow & ~u64{1}) | (u.intr_state & 1);
    if (mtd & Mtd::TSC)
        m.tsc_offset += u.tsc_off;  // additive on SVM (ABI 5)
    if (mtd & Mtd::EFER_PAT) {
        m.efer = u.efer | EFER_SVME;  // VMRUN requires it; the guest never sees it (RDMSR exits)
        m.g_pat = u.pat;
    }
    if (mtd & Mtd::SYSCALL_SWAPGS) {
        m.star = u.star;
        m.lstar = u.lstar;
        m.sfmask = u.fmask;
        m.kernel_gs_base = u.kernel_gs_base;
    }
    if (mtd & Mtd::TLB)
        ec.vcpu.flush_tlb = true;
    return nullptr;
}
