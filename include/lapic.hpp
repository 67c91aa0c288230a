/*
 * Local APIC in x2APIC mode (MSRs) when the CPU has it, else xAPIC (MMIO).
 * One interface for both; the mode is chosen once at boot for all CPUs.
 */
#pragma once

#include "types.hpp"

namespace Lapic {

/* BSP: choose the mode, map the MMIO page if needed. */
void setup(u64 mmio_phys, bool use_x2apic);
/* Every CPU: enable the APIC, record the LVTs as found (into the Cpu), mask LINTs. */
void init_cpu();
bool x2apic();
u32 id();  // this CPU's APIC id
void eoi();

void send_ipi(u32 apic_id, u32 vector);
void send_nmi(u32 apic_id);
void send_init(u32 apic_id);
void send_sipi(u32 apic_id, u32 page);
void stop_others();  // NMI to all other CPUs (panic)

/* Timer: one-shot in TSC-deadline mode when available and allowed, else LAPIC one-shot. */
void timer_setup(bool use_deadline);
void timer_arm_tsc(u64 deadline_tsc);
bool timer_uses_deadline();
void timer_calibrate_start();
u32 timer_calibrate_end();  // LAPIC timer ticks elapsed since start (divide 1)
u32 read(u32 reg);

extern u32 bus_khz;  // LAPIC timer frequency, kHz (HIP freq_bus)
}  // namespace Lapic
