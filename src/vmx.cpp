/*
 * vCPUs on Intel VMX with EPT (include/vmx.hpp, docs/vmx.md). Not run on hardware: QEMU's TCG
 * has no VMX; the logic is host-tested (src/vmx_logic.cpp, src/vmx_state.cpp).
 *
 * Each CPU runs VMXON once (init_cpu). A vCPU's VMCS is initialised on its own CPU the first time
 * the kernel touches it (current()), and stays there: a vCPU never changes CPU. Entry and exit
 * (src/vmx_entry.S) switch the GPRs and CR2; the MSR areas switch STAR, LSTAR, FMASK,
 * KERNEL_GS_BASE and TSC_AUX; XCR0 is switched here. After every exit the GDT limit and the TSS
 * (limit 0x67 after an exit, which would cut off the I/O bitmap) are loaded again. External
 * interrupts are not acknowledged on exit: the kernel takes them in an interrupt window right
 * after the exit, counted as interrupts from user mode (Cpu::vm_window), as on SVM.
 * A destroyed vCPU's VMCS may be active on its CPU (cached there): only that CPU may VMCLEAR it,
 * so it goes on that CPU's list and is cleared and freed there (reap()).
 */
#include "vmx.hpp"
#include "abi/constants.hpp"
#include "boot.hpp"
#include "console.hpp"
#include "cpu.hpp"
#include "fpu.hpp"
#include "idt.hpp"
#include "ipc.hpp"
#include "kmem.hpp"
#include "lapic.hpp"
#include "memory.hpp"
#include "objects.hpp"
#include "sched.hpp"
#include "vmx_state.hpp"
#include "x86.hpp"

extern "C" int vmx_vmrun(Exc_frame *gprs, u64 *cr2, u64 launched);
extern "C" char vmx_exit[];

bool Vmx::usable;

namespace {

Vmx_caps caps;  // the boot CPU's; every other CPU must match it
bool rdtscp;    // TSC_AUX exists: it is switched too
unsigned guest_msrs;

u64 vmread(u32 field)
{
    u64 v = 0;  // stays 0 where the field does not exist (VMfailValid leaves the operand alone)
    asm volatile("vmread %1, %0" : "+r"(v) : "r"(u64{field}) : "cc");
    return v;
}

void vmwrite(u32 field, u64 value) { asm volatile("vmwrite %0, %1" : : "r"(value), "r"(u64{field}) : "cc"); }

constexpr Vmcs_io io{vmread, vmwrite};

/* VMXON, VMCLEAR, VMPTRLD: false on VMfail (CF or ZF). */
bool vmxon(u64 phys)
{
    bool fail;
    asm volatile("vmxon %1; setna %0" : "=q"(fail) : "m"(phys) : "cc", "memory");
    return !fail;
}
bool vmclear(u64 phys)
{
    bool fail;
    asm volatile("vmclear %1; setna %0" : "=q"(fail) : "m"(phys) : "cc", "memory");
    return !fail;
}
bool vmptrld(u64 phys)
{
    bool fail;
    asm volatile("vmptrld %1; setna %0" : "=q"(fail) : "m"(phys) : "cc", "memory");
    return !fail;
}

/* A vCPU's two pages: the VMCS region (the CPU's alone while active) and this one. */
struct Vmx_aux
{
    Vmx_msr_entry msrs[Vmx_guest_msr::COUNT];
    void *dead_next;  // the CPU's list of VMCS regions to clear (Vmx::destroy)
    Quota *payer;     // who pays for the two pages (docs/quota.md)
};
Vmx_aux *aux_of(void *vmcs) { return reinterpret_cast<Vmx_aux *>(static_cast<u8 *>(vmcs) + PAGE_SIZE); }

struct alignas(16) Inv_desc
{
    u64 a, b;
};

void invept(u64 type, u64 eptp)
{
    Inv_desc d{eptp, 0};
    asm volatile("invept %0, %1" : : "m"(d), "r"(type) : "cc", "memory");
}

void invvpid(u64 type, u16 vpid)
{
    Inv_desc d{vpid, 0};
    asm volatile("invvpid %0, %1" : : "m"(d), "r"(type) : "cc", "memory");
}

void xsetbv(u64 v)
{
    asm volatile("xsetbv" : : "c"(0), "a"(static_cast<u32>(v)), "d"(static_cast<u32>(v >> 32)));
}

/* Every CPU must allow what the boot CPU's VMCS settings assume. */
bool same_caps(const Vmx_caps &a, const Vmx_caps &b)
{
    auto same = [](Vmx_ctl x, Vmx_ctl y) { return x.must1 == y.must1 && x.may1 == y.may1; };
    return a.revision == b.revision && same(a.pin, b.pin) && same(a.cpu1, b.cpu1) && same(a.cpu2, b.cpu2) &&
           same(a.exit, b.exit) && same(a.entry, b.entry) && a.ept_vpid == b.ept_vpid && a.misc == b.misc &&
           a.cr0_fixed0 == b.cr0_fixed0 && a.cr0_fixed1 == b.cr0_fixed1 && a.cr4_fixed0 == b.cr4_fixed0 &&
           a.cr4_fixed1 == b.cr4_fixed1;
}

Vmx_state::Host host()
{
    // Denied to guests: OSXSAVE without XSAVE in the host; PKE, since PKRU is not switched (the
    // host's XCR0 has no PKRU component, and VM entry and exit leave it): one guest's keys would
    // be the next one's.
    bool xs = Fpu::xsave_used();
    return {caps, xs, Fpu::xcr0(), (xs ? 0 : Cr4::OSXSAVE) | Cr4::PKE, guest_msrs};
}

u64 eptp_of(const Pd *pd) { return ept_pointer(pd->gpt_phys); }

/* The host-state fields that stay as they are for this CPU (SDM 24.5, 26.2.2-26.2.4). */
void write_host_state(Cpu &c)
{
    struct [[gnu::packed]]
    {
        u16 limit;
        u64 base;
    } idtr;
    asm volatile("sidt %0" : "=m"(idtr));
    vmwrite(Vmcs::HOST_CR0, get_cr0());
    vmwrite(Vmcs::HOST_CR4, get_cr4());
    vmwrite(Vmcs::HOST_CS_SEL, Gdt::KCODE);
    vmwrite(Vmcs::HOST_SS_SEL, Gdt::KDATA);
    vmwrite(Vmcs::HOST_DS_SEL, Gdt::KDATA);
    vmwrite(Vmcs::HOST_ES_SEL, Gdt::KDATA);
    vmwrite(Vmcs::HOST_FS_SEL, 0);
    vmwrite(Vmcs::HOST_GS_SEL, 0);
    vmwrite(Vmcs::HOST_TR_SEL, Gdt::TSS);
    vmwrite(Vmcs::HOST_FS_BASE, rdmsr(Msr::FS_BASE));
    vmwrite(Vmcs::HOST_GS_BASE, reinterpret_cast<u64>(&c));
    vmwrite(Vmcs::HOST_TR_BASE, reinterpret_cast<u64>(&c.tss));
    vmwrite(Vmcs::HOST_GDTR_BASE, reinterpret_cast<u64>(c.gdt));
    vmwrite(Vmcs::HOST_IDTR_BASE, idtr.base);
    vmwrite(Vmcs::HOST_SYSENTER_CS, 0);
    vmwrite(Vmcs::HOST_SYSENTER_ESP, 0);
    vmwrite(Vmcs::HOST_SYSENTER_EIP, 0);
    vmwrite(Vmcs::HOST_PAT, rdmsr(Msr::PAT));
    vmwrite(Vmcs::HOST_EFER, rdmsr(Msr::EFER));
    vmwrite(Vmcs::HOST_RIP, reinterpret_cast<u64>(vmx_exit));
}

/* After an exit: the GDT limit (0xffff after an exit) and TR (limit 0x67) as the kernel has them. */
void reload_descriptors(Cpu &c)
{
    struct [[gnu::packed]]
    {
        u16 limit;
        u64 base;
    } gdtr{sizeof c.gdt - 1, reinterpret_cast<u64>(c.gdt)};
    asm volatile("lgdt %0" : : "m"(gdtr));
    c.gdt[Gdt::TSS / 8] &= ~(u64{2} << 40);  // busy -> available, so that LTR accepts it
    asm volatile("ltr %w0" : : "r"(Gdt::TSS) : "memory");
}

/* Make the vCPU's VMCS current on this CPU (its own), initialising it the first time. */
void make_current(Cpu &c, Ec &ec)
{
    Vcpu &v = ec.vcpu;
    u64 phys = virt_to_phys(v.vmcs);
    if (v.vmcs_ready) {
        if (c.vmcs_current != phys) {
            if (!vmptrld(phys))
                trace("VMX: VMPTRLD of vCPU %p failed", static_cast<void *>(&ec));
            c.vmcs_current = phys;
        }
        return;
    }
    *static_cast<u32 *>(v.vmcs) = caps.revision;
    if (!vmclear(phys) || !vmptrld(phys))
        trace("VMX: VMCLEAR/VMPTRLD of a new VMCS failed (vCPU %p)", static_cast<void *>(&ec));
    c.vmcs_current = phys;
    Pd *pd = ec.pd;
    if (Virt::take_tag(c.tags, v))
        v.flush_tlb = true;  // a former owner's entries: run() flushes before the first entry
    // EPT-derived entries are tagged by the EPT root only: a PD before this one may have had the
    // same root page, so the first entry on this CPU flushes it (INVEPT).
    v.gpt_seen = ~u64{0};
    v.io_bitmaps = false;
    Vmx_state::init(io, host(), v, virt_to_phys(v.msrs), c.vmx_host_msrs, eptp_of(pd),
                    pd->apic_access ? virt_to_phys(pd->apic_access) : 0);
    write_host_state(c);
    v.vmcs_ready = true;
    v.launched = false;
}

}  // namespace

bool Vmx::init_cpu(Cpu &c)
{
    const Cpu_features &f = c.feat;
    if (!f.vmx)
        return false;
    Vmx_msrs m{};
    m.cpuid_vmx = true;
    m.phys_bits = static_cast<u8>(cpuid(0x80000008).eax & 0xff);
    m.linear_bits = 48;
    auto l7 = cpuid(7);
    m.sgx = l7.ebx & (1u << 2);
    m.rtm = l7.ebx & (1u << 11);
    m = vmx_read_msrs(m, [](u32 msr) { return rdmsr(msr); });
    Vmx_caps k = vmx_caps(m);
    if (!k.usable) {
        trace("VMX: unusable on CPU %u: %s", c.id, k.why);
        return false;
    }
    if (c.bsp) {
        caps = k;
        rdtscp = cpuid(0x80000001).edx & (1u << 27);
        guest_msrs = rdtscp ? Vmx_guest_msr::COUNT : Vmx_guest_msr::TSC_AUX;
        trace("VMX: EPT%s%s, unrestricted guest, VPID %s, virtual NMIs %s, VMCS revision %#x",
              k.ept_2m ? " 2M" : "", k.ept_1g ? " 1G" : "",
              k.vpid ? (Boot::cmdline.novpid ? "off (novpid)" : "yes") : "no", k.vnmi ? "yes" : "no",
              k.revision);
    } else if (!same_caps(k, caps)) {
        trace("VMX: CPU %u differs from the boot CPU", c.id);
        return false;
    }
    // Read again: the MSR may be shared by a core's or package's CPUs, one of which locked it.
    if (u64 fc = rdmsr(Vmx_msr::FEATURE_CONTROL); !(fc & Vmx_feature_control::LOCK))
        wrmsr(Vmx_msr::FEATURE_CONTROL,
              fc | Vmx_feature_control::LOCK | Vmx_feature_control::VMX_OUTSIDE_SMX);
    u64 cr0 = get_cr0(), cr4 = get_cr4() | Cr4::VMXE;
    if ((cr0 & k.cr0_fixed0) != k.cr0_fixed0 || (cr0 & ~k.cr0_fixed1) ||
        (cr4 & k.cr4_fixed0) != k.cr4_fixed0 || (cr4 & ~k.cr4_fixed1)) {
        trace("VMX: CR0 %#llx or CR4 %#llx not allowed in VMX operation on CPU %u",
              static_cast<unsigned long long>(cr0), static_cast<unsigned long long>(cr4), c.id);
        return false;
    }
    auto *region = static_cast<u32 *>(Kmem::alloc_page());
    auto *hmsr = static_cast<Vmx_msr_entry *>(Kmem::alloc_page());
    if (!region || !hmsr) {
        trace("VMX: no memory for the VMXON region of CPU %u", c.id);
        if (region)
            Kmem::free(region, 0);
        if (hmsr)
            Kmem::free(hmsr, 0);
        return false;
    }
    *region = k.revision;
    set_cr4(cr4);
    if (!vmxon(virt_to_phys(region))) {
        trace("VMX: VMXON failed on CPU %u", c.id);
        set_cr4(cr4 & ~Cr4::VMXE);
        Kmem::free(region, 0);
        Kmem::free(hmsr, 0);
        return false;
    }
    c.vmxon_phys = virt_to_phys(region);
    c.vmcs_current = 0;
    c.vmcs_dead = nullptr;
    // What the exit loads back (the same MSRs, in the order of Vmx_guest_msr): the kernel's own
    // values; KERNEL_GS_BASE is 0 in kernel mode (src/entry.S swaps it with GS_BASE).
    hmsr[Vmx_guest_msr::STAR] = {Msr::STAR, 0, rdmsr(Msr::STAR)};
    hmsr[Vmx_guest_msr::LSTAR] = {Msr::LSTAR, 0, rdmsr(Msr::LSTAR)};
    hmsr[Vmx_guest_msr::FMASK] = {Msr::FMASK, 0, rdmsr(Msr::FMASK)};
    hmsr[Vmx_guest_msr::KERNEL_GS_BASE] = {Msr::KERNEL_GS_BASE, 0, 0};
    hmsr[Vmx_guest_msr::TSC_AUX] = {Msr::TSC_AUX, 0, rdtscp ? rdmsr(Msr::TSC_AUX) : 0};
    c.vmx_host_msrs = virt_to_phys(hmsr);
    // Tagged entries from before (firmware, an earlier kernel) must not survive.
    if (k.ept_vpid & Vmx_ept_cap::INVEPT_ALL)
        invept(Vmx_inv::EPT_ALL, 0);
    bool vpid = k.vpid && !Boot::cmdline.novpid;
    if (vpid)
        invvpid(Vmx_inv::VPID_ALL, 0);
    c.tags = Virt::Tags{1, vpid ? 0xffffu : 0u, 1};
    return true;
}

unsigned Vmx::ept_max_level() { return ::ept_max_level(caps); }

bool Vmx::create(Ec &ec)
{
    void *vmcs = Kmem::alloc(1, true, ec.payer);  // paid for with the vCPU (docs/quota.md)
    if (!vmcs)
        return false;
    aux_of(vmcs)->payer = ec.payer;
    ec.vcpu.vmcs = vmcs;
    ec.vcpu.msrs = aux_of(vmcs)->msrs;
    ec.vcpu.vmcs_ready = false;
    ec.vcpu.xcr0 = 1;
    if (ec.utcb)  // the virtual-APIC page (create_ec rdx[63:12]), mapped like a UTCB
        ec.vcpu.vapic_phys = virt_to_phys(ec.utcb);
    return true;
}

void Vmx::destroy(Ec &ec)
{
    void *vmcs = ec.vcpu.vmcs;
    if (!vmcs)
        return;
    ec.vcpu.vmcs = nullptr;
    if (!ec.vcpu.vmcs_ready) {  // never loaded anywhere
        Kmem::free(vmcs, 1, ec.payer);
        return;
    }
    // Only its CPU may clear it: queue it there (linked through the second page: the CPU may
    // write the VMCS region itself at any time while it is active).
    Cpu &owner = *Cpu::table[ec.cpu];
    void *head = __atomic_load_n(&owner.vmcs_dead, __ATOMIC_RELAXED);
    do
        aux_of(vmcs)->dead_next = head;
    while (!__atomic_compare_exchange_n(&owner.vmcs_dead, &head, vmcs, true, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED));
    if (&owner == &Cpu::current())
        reap(owner);
    else
        Lapic::send_ipi(owner.apic_id, Vec::IPI_RESCHED);
}

void Vmx::reap(Cpu &c)
{
    void *p = __atomic_exchange_n(&c.vmcs_dead, nullptr, __ATOMIC_ACQUIRE);
    while (p) {
        void *next = aux_of(p)->dead_next;
        Quota *payer = aux_of(p)->payer;
        u64 phys = virt_to_phys(p);
        vmclear(phys);  // writes back what this CPU cached of it, and it is no longer active
        if (c.vmcs_current == phys)
            c.vmcs_current = 0;
        Kmem::free(p, 1, payer);
        p = next;
    }
}

void Vmx::run(Ec *ec)
{
    Cpu &c = Cpu::current();
    Vcpu &v = ec->vcpu;
    const Pd *pd = ec->pd;
    if (c.vmcs_dead)
        reap(c);
    make_current(c, *ec);

    // VPID: a new one when this CPU's generation moved on; a former owner's entries go first.
    if (Virt::take_tag(c.tags, v)) {
        vmwrite(Vmcs::VPID, v.tag);
        invvpid(caps.invvpid_single ? Vmx_inv::VPID_SINGLE : Vmx_inv::VPID_ALL, static_cast<u16>(v.tag));
    } else if (v.flush_tlb && v.tag)
        invvpid(caps.invvpid_single ? Vmx_inv::VPID_SINGLE : Vmx_inv::VPID_ALL, static_cast<u16>(v.tag));
    v.flush_tlb = false;
    // Guest mappings that lost rights (src/mapping.cpp): as on SVM, either the revoker's
    // shootdown IPI ends the guest or we see the new generation here.
    u64 gen = __atomic_load_n(&pd->gpt_gen, __ATOMIC_ACQUIRE);
    if (v.gpt_seen != gen) {
        v.gpt_seen = gen;
        invept(caps.invept_single ? Vmx_inv::EPT_SINGLE : Vmx_inv::EPT_ALL, eptp_of(pd));
    }
    // The PD's guest ports (G-bit I/O delegations): bitmaps A and B once they exist.
    const u8 *iopm = __atomic_load_n(&pd->guest_iopm, __ATOMIC_ACQUIRE);
    if (iopm && !v.io_bitmaps) {
        vmwrite(Vmcs::IO_BITMAP_A, virt_to_phys(iopm));
        vmwrite(Vmcs::IO_BITMAP_B, virt_to_phys(iopm) + PAGE_SIZE);
        v.io_bitmaps = true;
        Vmx_state::write_proc_controls(io, host(), v);
    }
    vmwrite(Vmcs::HOST_CR3, get_cr3());  // the vCPU's PD's page table (with its PCID)
    vmwrite(Vmcs::HOST_CR0, get_cr0());
    vmwrite(Vmcs::HOST_CR4, get_cr4());

    if (CONFIG_DEBUG) {  // the SDM's entry checks, so that a failure names its rule (docs/vmx.md)
        u8 vtpr = v.vapic_phys ? static_cast<const u8 *>(phys_to_virt<void>(v.vapic_phys))[0x80] : 0;
        Vmx_violation bad = vmx_check_entry(caps, Vmx_state::image(io, vtpr));
        if (bad.rule != Vmx_rule::NONE)
            trace("VMX: vCPU %p breaks SDM %s: %s (segment %u)", static_cast<void *>(ec),
                  vmx_rule_section(bad.rule), vmx_rule_text(bad.rule), bad.seg);
    }
    bool xsave = Fpu::xsave_used();
    if (xsave && v.xcr0 != Fpu::xcr0())
        xsetbv(v.xcr0);
    int failed = vmx_vmrun(&ec->regs, &v.cr2, v.launched);
    if (xsave && v.xcr0 != Fpu::xcr0())
        xsetbv(Fpu::xcr0());  // XSETBV always exits on VMX: the guest's is still v.xcr0
    if (failed) {
        u32 err = static_cast<u32>(vmread(Vmcs::VM_INSTRUCTION_ERROR));
        trace("VM entry failed with error %#x (%s)", err, Vmx_error::text(err));
        kill_current(ec->regs, "VMENTRY");
    }
    reload_descriptors(c);
    v.exit_tsc = rdtsc();
    __atomic_add_fetch(&c.qs, 1, __ATOMIC_RELAXED);  // left guest mode: quiescent (rcu.hpp), progress

    u32 reason = static_cast<u32>(vmread(Vmcs::EXIT_REASON));
    if (!(reason & Vmx_exit::ENTRY_FAILURE)) {  // a failed entry leaves the launch state as it was
        v.launched = true;
        Vmx_state::after_exit(io, host(), reason);
    }
    u32 basic = reason & Vmx_exit::BASIC_MASK;
    if (basic == Vmx_exit::EXT_INTR) {
        // Not acknowledged: still pending. Take it as one from user mode (src/svm.cpp).
        c.vm_window = true;
        asm volatile("sti; nop; cli" ::: "memory");
        c.vm_window = false;
        Sched::run(c.sc, ec);
    }
    u32 info = static_cast<u32>(vmread(Vmcs::EXIT_INTR_INFO));
    if (Vmx_state::host_mce(reason, info))
        Virt::machine_check(c);  // the host's (log, clear MCIP); the VMM still gets the event
    if (Vmx_state::host_nmi(reason, info)) {
        asm volatile("int $2" ::: "memory");  // the host's NMI: its handler, and NMIs unblocked
        Sched::run(c.sc, ec);
    }
    int n = Vmx_state::event_of(reason);
    if (n < 0) {
        trace("VMX: vCPU %p: exit reason %#x has no event number", static_cast<void *>(ec), reason);
        kill_current(ec->regs, "VMEXIT");
    }
    // EPT violation: the reply's implicit window (ABI 10.2) is the guest-physical page.
    Ipc::exception(ec, static_cast<unsigned>(n), vmread(Vmcs::EXIT_QUALIFICATION),
                   basic == Vmx_exit::EPT_VIOLATION ? vmread(Vmcs::GUEST_PHYS_ADDR) : ec->cr2);
}

void Vmx::to_utcb(Ec &ec, u64 mtd, Utcb &u)
{
    make_current(Cpu::current(), ec);
    Vmx_state::to_utcb(io, ec.regs, ec.vcpu, mtd, u);
}

const char *Vmx::from_utcb(const Utcb &u, Ec &ec)
{
    make_current(Cpu::current(), ec);
    return Vmx_state::from_utcb(io, host(), u, ec.regs, ec.vcpu);
}
