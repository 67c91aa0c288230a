/*
 * Local APIC (xAPIC, MMIO at 0xfee00000) of one vCPU (docs/vmm.md, "Local APIC"): registers,
 * IRR/ISR/TPR priorities, EOI, the timer (one-shot and periodic, counting TSC ticks through the
 * divider; TSC-deadline mode) and LINT0 in ExtINT mode (the PIC's virtual wire). Pure logic; times are host
 * TSC.
 */
#pragma once

#include "types.hpp"

namespace vmm {

struct Lapic
{
    static constexpr u64 BASE = 0xfee00000;

    u32 id, tpr, ldr, dfr, svr, esr, icr_lo, icr_hi;
    u32 lvt[7];  // CMCI, timer, thermal, perf, LINT0, LINT1, error
    u32 init_count, divide;
    u64 start_tsc;  // TSC when the count was written
    u64 deadline;   // TSC of the next timer interrupt, ~0 if none
    u32 irr[8], isr[8];

    void reset(u32 apic_id);
    u32 read(u32 off, u64 tsc);
    void write(u32 off, u32 v, u64 tsc);
    bool update(u64 tsc);  // the timer fired: its vector is in IRR now
    // IA32_TSC_DEADLINE (MSR 0x6e0): arms the timer in TSC-deadline mode (0 disarms; ignored in
    // the other modes); the read gives the armed deadline or 0.
    void write_tsc_deadline(u64 v);
    u64 read_tsc_deadline() const;
    void raise(u8 vector);  // a fixed interrupt
    int pending() const;    // the vector to inject now (above PPR), or -1
    void ack(u8 vector);    // the CPU took it: IRR -> ISR
    bool enabled() const { return svr & 0x100; }
    bool extint_open() const;  // PIC interrupts pass to the CPU (LINT0 ExtINT, or the APIC off)

  private:
    u32 mode() const { return lvt[1] >> 17 & 3; }  // 0 one-shot, 1 periodic, 2 TSC deadline
    u32 shift() const;
    u32 current(u64 tsc) const;
    int highest(const u32 *bits) const;
    void arm(u64 tsc);
};

}  // namespace vmm
