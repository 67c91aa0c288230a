/*
 * Interrupt and exception dispatch. Kernel-mode exceptions are bugs: they
 * print a full register dump and halt the machine. User-mode exceptions are
 * events of the EC that raised them (ABI 10.2): a message to its exception
 * portal, or the kill line when there is none. NMI, #DF and #MC come through
 * the paranoid entry on their IST stacks (src/entry.S, handle_paranoid).
 */
#include "activate.hpp"
#include "boot.hpp"
#include "console.hpp"
#include "cpu.hpp"
#include "entry.hpp"
#include "gsi.hpp"
#include "idt.hpp"
#include "ioapic.hpp"
#include "iommu.hpp"
#include "ipc.hpp"
#include "keyb.hpp"
#include "lapic.hpp"
#include "lockup.hpp"
#include "objects.hpp"
#include "sched.hpp"
#include "shootdown.hpp"
#include "smp.hpp"
#include "time.hpp"
#include "vga.hpp"
#include "vmx.hpp"
#include "x86.hpp"

namespace {

const char *const exc_name[32] = {
    "#DE divide error",
    "#DB debug",
    "NMI",
    "#BP breakpoint",
    "#OF overflow",
    "#BR bound range",
    "#UD invalid opcode",
    "#NM device not available",
    "#DF double fault",
    "coprocessor overrun",
    "#TS invalid TSS",
    "#NP segment not present",
    "#SS stack fault",
    "#GP general protection",
    "#PF page fault",
    "reserved 15",
    "#MF x87 error",
    "#AC alignment check",
    "#MC machine check",
    "#XM SIMD error",
    "#VE virtualization",
    "#CP control protection",
    "reserved 22",
    "reserved 23",
    "reserved 24",
    "reserved 25",
    "reserved 26",
    "reserved 27",
    "#HV hypervisor injection",
    "#VC VMM communication",
    "#SX security",
    "reserved 31",
};

[[noreturn]] void kernel_fault(const Exc_frame &f, const char *extra = "")
{
    u64 cr2 = get_cr2();
    unsigned owner = 0;
    // A write into a guard page below a stack (src/smp.cpp): an overflow, usually seen as a #DF
    // because the #PF's frame did not fit on the exhausted stack either.
    if (const char *stack =
            (f.vector == Vec::PF || f.vector == Vec::DF) ? Smp::stack_guard(cr2, owner) : nullptr)
        panic("kernel stack overflow: CR2 %#lx is in the guard page below CPU %u's %s\n"
              "PANIC: kernel %s (vector %#lx) error %#lx on CPU %d\n"
              "  RIP %#018lx  CS %#lx  RFLAGS %#lx  RSP %#018lx  SS %#lx\n"
              "  CR2 %#018lx  CR3 %#018lx  CR0 %#lx  CR4 %#lx\n"
              "  RAX %#018lx  RBX %#018lx  RCX %#018lx  RDX %#018lx\n"
              "  RSI %#018lx  RDI %#018lx  RBP %#018lx\n"
              "  R8  %#018lx  R9  %#018lx  R10 %#018lx  R11 %#018lx\n"
              "  R12 %#018lx  R13 %#018lx  R14 %#018lx  R15 %#018lx",
              cr2, owner, stack, exc_name[f.vector & 31], f.vector, f.error, Cpu::current_id(), f.rip, f.cs,
              f.rflags, f.rsp, f.ss, cr2, get_cr3(), get_cr0(), get_cr4(), f.rax, f.rbx, f.rcx, f.rdx, f.rsi,
              f.rdi, f.rbp, f.r8, f.r9, f.r10, f.r11, f.r12, f.r13, f.r14, f.r15);
    panic("kernel %s (vector %#lx) error %#lx on CPU %d%s\n"
          "  RIP %#018lx  CS %#lx  RFLAGS %#lx  RSP %#018lx  SS %#lx\n"
          "  CR2 %#018lx  CR3 %#018lx  CR0 %#lx  CR4 %#lx\n"
          "  RAX %#018lx  RBX %#018lx  RCX %#018lx  RDX %#018lx\n"
          "  RSI %#018lx  RDI %#018lx  RBP %#018lx\n"
          "  R8  %#018lx  R9  %#018lx  R10 %#018lx  R11 %#018lx\n"
          "  R12 %#018lx  R13 %#018lx  R14 %#018lx  R15 %#018lx",
          exc_name[f.vector & 31], f.vector, f.error, Cpu::current_id(), extra, f.rip, f.cs, f.rflags, f.rsp,
          f.ss, cr2, get_cr3(), get_cr0(), get_cr4(), f.rax, f.rbx, f.rcx, f.rdx, f.rsi, f.rdi, f.rbp, f.r8,
          f.r9, f.r10, f.r11, f.r12, f.r13, f.r14, f.r15);
}

/*
 * Machine check (Intel SDM 15, AMD APM 9): log and clear the banks that hold an error, then
 * MCG_STATUS (MCIP: a second #MC before that would shut the CPU down). Returns MCG_STATUS.
 * Only from user mode may it print (the interrupted kernel may hold the console lock).
 */
u64 machine_check(Cpu &c, bool log)
{
    c.mces++;
    u64 status = rdmsr(Msr::MCG_STATUS);
    u32 banks = rdmsr(Msr::MCG_CAP) & 0xff;
    for (u32 i = 0; i < banks; i++) {
        u64 s = rdmsr(Msr::MC0_CTL + 4 * i + 1);
        if (!(s >> 63))
            continue;
        if (log)
            trace("MCE: bank %u status %#lx addr %#lx misc %#lx (MCG_STATUS %#lx)", i, s,
                  s & (u64{1} << 58) ? rdmsr(Msr::MC0_CTL + 4 * i + 2) : 0,
                  s & (u64{1} << 59) ? rdmsr(Msr::MC0_CTL + 4 * i + 3) : 0, status);
        wrmsr(Msr::MC0_CTL + 4 * i + 1, 0);
    }
    wrmsr(Msr::MCG_STATUS, 0);
    return status;
}

/* NMIs seen since the last line: at most one line a second per CPU (hardware reports them). */
void report_nmis(Cpu &c)
{
    u64 n = __atomic_load_n(&c.nmis, __ATOMIC_RELAXED);
    if (n == c.nmis_reported || rdtsc() - c.nmi_report_tsc < Time::ms_to_tsc(1000))
        return;
    c.nmis_reported = n;
    c.nmi_report_tsc = rdtsc();
    trace("NMI: %llu taken on this CPU, %llu of them in kernel mode with the user's GS base",
          static_cast<unsigned long long>(n), static_cast<unsigned long long>(c.nmis_user_gs));
}

void timer_tick(Cpu &c, bool from_user)
{
    c.timer_ticks++;
    report_nmis(c);
    if (Boot::cmdline.spinner)
        Vga::spin(c.id);
    Lapic::eoi();
    Lockup::tick(c);
    Sched::tick(from_user);
}

}  // namespace

/* A machine check that ended a guest (include/vcpu.hpp). */
void Virt::machine_check(Cpu &c) { ::machine_check(c, true); }

static void dispatch(Exc_frame *f, bool user);

/*
 * NMI, #DF and a #MC in kernel mode, on their IST stacks with the kernel's GS base (user_gs: the
 * entry found the user's and swapped). An NMI only counts (and stops this CPU during a panic);
 * the others are fatal.
 */
extern "C" void handle_paranoid(Exc_frame *f, unsigned user_gs)
{
    Cpu &c = Cpu::current();
    if (f->vector == Vec::NMI) {
        if (panic_in_progress())
            halt_forever();
        if (Lockup::nmi(*f))
            return;  // the lockup detector's sample of this CPU (not counted: not the hardware's)
        c.nmis++;
        if (user_gs && !f->from_user())
            c.nmis_user_gs++;
        return;
    }
    if (f->vector == Vec::MC) {
        u64 status = machine_check(c, false);
        panic("kernel #MC machine check on CPU %d: MCG_STATUS %#lx, RIP %#lx RSP %#lx CS %#lx (banks cleared "
              "unlogged: the console may be held)",
              Cpu::current_id(), status, f->rip, f->rsp, f->cs);
    }
    kernel_fault(*f, user_gs ? " (entered with the user's GS base)" : "");
}

extern "C" void handle_interrupt(Exc_frame *f)
{
    Cpu &c = Cpu::current();
    if (!f->from_user() && c.idle) {
        __atomic_store_n(&c.idle, false, __ATOMIC_SEQ_CST);  // woken from the idle loop's hlt
        __atomic_store_n(&c.lockup.idle_wakeups, c.lockup.idle_wakeups + 1, __ATOMIC_RELAXED);  // progress
    }
    // The interrupt that ended a guest (src/svm.cpp) is one from user mode for the scheduler,
    // which may leave from here for another SC: the flag goes first.
    bool user = f->from_user() || c.vm_window;
    c.vm_window = false;
    dispatch(f, user);
    if (user) {
        Sched::stop_if_retired();
        resync_io_bitmap(c);  // some PD's ports changed (the shootdown IPI brings us here)
    }
}

static void dispatch(Exc_frame *f, bool user)
{
    Cpu &c = Cpu::current();
    unsigned v = static_cast<unsigned>(f->vector);

    if (v == Vec::IPI_TLB) {
        Shootdown::answer();
        Lapic::eoi();
        return;
    }
    if (v == Vec::IPI_RESCHED) {
        Lapic::eoi();
        if (__atomic_load_n(&c.vmcs_dead, __ATOMIC_RELAXED))
            Vmx::reap(c);  // destroyed vCPUs' VMCS regions (src/vmx.cpp)
        Sched::preempt_check(user);
        return;
    }
    if (v == Vec::IPI_HALT) {
        if (panic_in_progress())
            halt_forever();
        Lapic::eoi();
        return;
    }
    if (v < 32) {
        if (!f->from_user())
            kernel_fault(*f);
        c.exceptions++;
        if (v == Vec::MC)
            machine_check(c, true);  // from user mode (src/entry.S, mc_from_user): then the event
        if (!c.ec)
            kill_current(*f, "EXC");
        // ABI 10.2: an exception in user mode is an event message to the EC's portal.
        Ipc::exception(c.ec, v, f->error, v == Vec::PF ? get_cr2() : c.ec->cr2);
    }
    if (v == Vec::IOMMU) {
        Iommu::interrupt();
        Lapic::eoi();
        return;
    }
    if (v == Vec::TIMER) {
        timer_tick(c, user);
        return;
    }
    if (v == Vec::SPURIOUS)
        return;
    if (v == Vec::ERROR) {
        Lapic::eoi();
        return;
    }
    if (v >= Vec::GSI_BASE && v < Vec::GSI_BASE + Vec::NUM_GSI) {
        c.irqs++;
        if (Boot::cmdline.spinner)
            Vga::spin(c.id);
        Gsi::interrupt(v - Vec::GSI_BASE);  // masks a level pin, sends EOI, ups
        if (Cpu::current().resched || user)
            Sched::preempt_check(user);
        return;
    }
    Lapic::eoi();
}
