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
}

bool panic_in_progress() { return panicking; }

[[noreturn]] void panic(const char *fmt, ...)
{
    cli();
    if (__atomic_exchange_n(&panicking, 1, __ATOMIC_SEQ_CST))
        halt_forever();  // a second CPU panicking: the first one reports

    Lapic::stop_others();
    Console::break_lock();

    va_list ap;
    va_start(ap, fmt);
    kprint("PANIC: ");
    Console::vprint(false, fmt, ap);
    kprint("\n");
    va_end(ap);
    kprint("PANIC: system halted\n");
    halt_forever();
}
