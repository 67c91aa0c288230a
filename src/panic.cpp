/*
 * Panic: print the reason on every console, stop every other CPU with an
 * NMI, halt. Used for conditions the kernel cannot continue from (bad boot
 * data, kernel-mode exceptions) - never for anything user mode can cause.
 */
#include "console.hpp"
#include "cpu.hpp"
#include "lapic.hpp"
#include "x86.hpp"

namespace {
volatile int panicking;
Cpu *volatile panicker;  // the CPU that reports
volatile int nested;     // that CPU faulted while reporting (e.g. on an exhausted stack)
}  // namespace

bool panic_in_progress() { return panicking; }

[[noreturn]] void panic(const char *fmt, ...)
{
    cli();
    if (__atomic_exchange_n(&panicking, 1, __ATOMIC_SEQ_CST)) {
        // A second CPU panicking: the first one reports. The same CPU again (a fault while it
        // reported, e.g. a #DF after its stack ran out): report this one too, once.
        if (panicker != &Cpu::current() || __atomic_exchange_n(&nested, 1, __ATOMIC_SEQ_CST))
            halt_forever();
        Console::break_lock();
    } else {
        panicker = &Cpu::current();
        Lapic::stop_others();
        Console::break_lock();
    }

    va_list ap;
    va_start(ap, fmt);
    kprint("PANIC: ");
    Console::vprint(false, fmt, ap);
    kprint("\n");
    va_end(ap);
    kprint("PANIC: system halted\n");
    halt_forever();
}
