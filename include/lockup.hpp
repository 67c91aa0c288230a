/*
 * Lockup detector (docs/debugging.md): a CPU that makes no progress for
 * STALL_MS is reported on the console with where it is and what it waits
 * for, so that a hang is never silent.
 *
 * Progress is counted for free: the entry code counts every entry from user
 * mode (Cpu::qs, also the grace-period counter), and an interrupt that wakes
 * the CPU from its idle hlt counts one more (woke_from_idle). A CPU that
 * runs user code or idles takes a timer interrupt at least every 100 ms
 * (src/sched.cpp arms it), so its count moves; one that stays in the kernel,
 * with interrupts off (a spinning lock, an endless loop) or on (waiting for
 * another CPU), does not.
 *
 * Every CPU's timer interrupt calls tick(); at most every SCAN_MS one of them
 * looks at all the others. For a CPU whose count stood still for STALL_MS it
 * sends that CPU an NMI, whose handler (nmi()) only records the interrupted
 * state in the CPU's Lockup_state, with no lock and no printing, and the
 * scanning CPU prints the report: RIP, RFLAGS, user or kernel, the EC and SC,
 * the spinlock the CPU is waiting for (Spinlock records it when contended;
 * with assertions also the lock's owner), and kernel text addresses found
 * on its stack. A CPU that answers no NMI is reported as such. When the
 * count moves again, that is reported too.
 *
 * Limits: a lone CPU (or all CPUs at once) stalling has nobody to notice.
 */
#pragma once

#include "types.hpp"

struct Cpu;
struct Exc_frame;

struct Lockup_state
{
    static constexpr unsigned MAX_STACK = 8;

    u64 idle_wakeups;     // interrupts that woke this CPU from its idle hlt (written by itself)
    const void *waiting;  // the Spinlock this CPU waits for while contended (include/spinlock.hpp)

    // The detector's view of this CPU (written by the scanning CPU).
    u64 seen;       // progress count at the last change
    u64 since;      // TSC when it last changed
    bool reported;  // the current stall has been reported

    // The NMI's sample (written by this CPU in its NMI handler).
    u32 nmi_request;  // set by the detector before the NMI; cleared by the handler
    u32 sampled;      // the fields below are complete
    u64 rip, cs, rflags, rsp;
    const void *spin;     // the contended Spinlock it waits for (waiting), or null
    const void *ec, *sc;  // Cpu::ec, Cpu::sc
    bool idle;            // in the idle loop
    unsigned nstack;
    u64 stack[MAX_STACK];  // kernel text addresses found on its stack, innermost first
};

namespace Lockup {

constexpr u64 STALL_MS = 4000;  // no progress for this long: reported
constexpr u64 SCAN_MS = 500;    // how often one CPU looks at the others

// BSP, when the root task is about to start: from now on stalls are reported (boot itself
// runs long stretches with interrupts off on purpose).
void start();

// Every timer interrupt, on every CPU: now and then a scan of the other CPUs.
void tick(Cpu &self);

// In the NMI path: true when the detector sent this NMI (the sample is then taken).
bool nmi(const Exc_frame &f);

}  // namespace Lockup
