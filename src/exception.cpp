/*
 * Interrupt and exception dispatch. Kernel-mode exceptions are bugs: they
 * print a full register dump and halt the machine. User-mode exceptions are
 * events of the EC that raised them; until portals exist (object layer) an
 * event has no handler, so the EC is killed with the ABI's message.
 */
#include "activate.hpp"
#include "boot.hpp"
#include "console.hpp"
#include "cpu.hpp"
#include "entry.hpp"
#include "gsi.hpp"
#include "idt.hpp"
#include "ioapic.hpp"
#include "ipc.hpp"
#include "keyb.hpp"
#include "lapic.hpp"
#include "objects.hpp"
#include "sched.hpp"
#include "shootdown.hpp"
#include "smp.hpp"
#include "time.hpp"
#include "vga.hpp"
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

[[noreturn]] void kernel_fault(const Exc_frame &f)
{
    u64 cr2 = get_cr2();
    panic("kernel %s (vector %#lx) error %#lx on CPU %d\n"
          "  RIP %#018lx  CS %#lx  RFLAGS %#lx  RSP %#018lx  SS %#lx\n"
          "  CR2 %#018lx  CR3 %#018lx  CR0 %#lx  CR4 %#lx\n"
          "  RAX %#018lx  RBX %#018lx  RCX %#018lx  RDX %#018lx\n"
          "  RSI %#018lx  RDI %#018lx  RBP %#018lx\n"
          "  R8  %#018lx  R9  %#018lx  R10 %#018lx  R11 %#018lx\n"
          "  R12 %#018lx  R13 %#018lx  R14 %#018lx  R15 %#018lx",
          exc_name[f.vector & 31], f.vector, f.error, Cpu::current_id(), f.rip, f.cs, f.rflags, f.rsp, f.ss,
          cr2, get_cr3(), get_cr0(), get_cr4(), f.rax, f.rbx, f.rcx, f.rdx, f.rsi, f.rdi, f.rbp, f.r8, f.r9,
          f.r10, f.r11, f.r12, f.r13, f.r14, f.r15);
}

void timer_tick(Cpu &c, bool from_user)
{
    c.timer_ticks++;
    if (Boot::cmdline.spinner)
        Vga::spin(c.id);
    Lapic::eoi();
    Sched::tick(from_user);
}

}  // namespace

static void dispatch(Exc_frame *f);

extern "C" void handle_interrupt(Exc_frame *f)
{
    Cpu &c = Cpu::current();
    if (!f->from_user() && c.idle)
        __atomic_store_n(&c.idle, false, __ATOMIC_SEQ_CST);  // woken from the idle loop's hlt
    dispatch(f);
    if (f->from_user()) {
        Sched::stop_if_retired();
        resync_io_bitmap(c);  // some PD's ports changed (the shootdown IPI brings us here)
    }
}

static void dispatch(Exc_frame *f)
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
        Sched::preempt_check(f->from_user());
        return;
    }
    if (v == Vec::NMI || v == Vec::IPI_HALT) {
        if (panic_in_progress())
            halt_forever();
        if (v == Vec::IPI_HALT)
            Lapic::eoi();
        return;
    }
    if (v < 32) {
        if (!f->from_user())
            kernel_fault(*f);
        c.exceptions++;
        if (!c.ec)
            kill_current(*f, "EXC");
        // ABI 10.2: an exception in user mode is an event message to the EC's portal.
        Ipc::exception(c.ec, v, f->error, v == Vec::PF ? get_cr2() : c.ec->cr2);
    }
    if (v == Vec::TIMER) {
        timer_tick(c, f->from_user());
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
        if (Cpu::current().resched || f->from_user())
            Sched::preempt_check(f->from_user());
        return;
    }
    Lapic::eoi();
}
