/*
 * What SMP guests need besides a local APIC per vCPU (docs/vmm.md, "SMP guests"): the I/O APIC
 * (MMIO at 0xfec00000), interrupt-destination matching for IPIs and I/O APIC messages, and the
 * Intel MP table (MP specification 1.4) that tells the guest its CPUs and interrupt routing.
 * Pure logic, host-testable.
 */
#pragma once

#include "lapic.hpp"

namespace vmm {

// The vCPUs whose local APIC a message addresses. `lo` is laid out like the ICR's low word and the
// low half of an I/O APIC redirection entry (vector 7:0, delivery mode 10:8, destination mode 11,
// shorthand 19:18); `dest` is the 8-bit destination (ICR 63:56, redirection entry 63:56). `self`
// is the sender's index (shorthands). One bit per vCPU.
u32 apic_targets(const Lapic *apics, unsigned n, unsigned self, u32 lo, u8 dest);

// 82093AA-style I/O APIC with 24 edge-triggered pins (IOREGSEL at 0x00, IOWIN at 0x10).
struct Ioapic
{
    static constexpr u64 BASE = 0xfec00000;
    static constexpr unsigned PINS = 24;

    u32 id, sel;
    u64 redir[PINS];

    void reset(u32 apic_id);
    u32 read(u32 off) const;
    void write(u32 off, u32 v);
};

// The I/O APIC pin of ISA IRQ `irq`: IRQ 0 (the PIT) on pin 2, as on PC hardware, the others on
// their own number (the MP table says so).
constexpr unsigned isa_pin(unsigned irq) { return irq == 0 ? 2 : irq; }

// The MP floating pointer at `fp` and the configuration table after it, in guest RAM: `ncpus`
// processors (APIC IDs 0..ncpus-1, 0 the BSP), the ISA bus, one I/O APIC (ID ncpus) and the ISA
// interrupts 0-15 routed by isa_pin (2 excluded: the cascade), the PIC's ExtINT on pin 0, LINT0
// ExtINT and LINT1 NMI. Returns the bytes written (0: does not fit in `room`).
u64 build_mp_table(u8 *ram, u64 fp, u64 room, unsigned ncpus, u32 cpu_signature, u32 cpu_features);

constexpr u64 G_MP_TABLE = 0x9fc00;  // the last KiB of base memory, where Linux looks

}  // namespace vmm
