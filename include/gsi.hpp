/*
 * Global system interrupts for user mode (ABI 11): one kernel semaphore per
 * GSI, handed to the root PD by H-bit object delegation (kernel selector
 * 64 + g). assign_gsi routes the GSI to a CPU (I/O APIC pin or MSI) and may
 * chain it to a user semaphore; an interrupt "submits" the GSI semaphore:
 * ups its chain target if it has one, else itself.
 */
#pragma once

#include "types.hpp"

class Sm;
class Sc;

namespace Gsi {
constexpr unsigned KSEL_BASE = 64;
constexpr unsigned COUNT = 192;

/* Create the GSI semaphores and the idle SCs (boot, after the I/O APICs and the CPUs). */
void init();
Sm *sm(unsigned gsi);
/* Idle SC of a CPU (kernel object selector Abi::ksel_idle_sc), nullptr for offline CPUs. */
Sc *idle_sc(unsigned cpu);
/* Interrupt for GSI g arrived on this CPU: mask a level pin, send EOI, up the semaphore. */
void interrupt(unsigned gsi);
/* sm_ctrl down on a GSI semaphore: unmask its pin first (ABI 11.1). */
void unmask(unsigned gsi);
/* Per GSI the CPU that took its last interrupt, ~0 for none (kstat's census, Kstat_census). */
u32 last_cpu(unsigned gsi);
}  // namespace Gsi
