/*
 * Local APIC emulation (lapic.hpp; docs/vmm.md, "Local APIC").
 */
#include "lapic.hpp"

namespace vmm {

namespace {
constexpr u32 LVT_TIMER = 1, LVT_LINT0 = 4, MASKED = 1u << 16;
}

void Lapic::reset(u32 apic_id)
{
    *this = Lapic{};
    id = apic_id << 24;
    dfr = 0xffffffff;
    svr = 0xff;
    for (u32 &l : lvt)
        l = MASKED;
    deadline = ~u64{0};
}

u32 Lapic::shift() const
{
    u32 d = (divide & 3) | (divide >> 1 & 4);  // bits 0, 1, 3
    return d == 7 ? 0 : d + 1;
}

u32 Lapic::current(u64 tsc) const
{
    if (!init_count || deadline == ~u64{0} || mode() == 2)
        return 0;
    u64 ticks = (tsc - start_tsc) >> shift();
    u64 n = init_count;
    if (mode() == 1)  // periodic
        return static_cast<u32>(n - ticks % n);
    return ticks >= n ? 0 : static_cast<u32>(n - ticks);
}

void Lapic::arm(u64 tsc)
{
    start_tsc = tsc;
    deadline = init_count ? tsc + (u64{init_count} << shift()) : ~u64{0};
}

bool Lapic::update(u64 tsc)
{
    if (deadline == ~u64{0} || tsc < deadline)
        return false;
    if (mode() == 1) {
        u64 period = u64{init_count} << shift();
        deadline += period * ((tsc - deadline) / period + 1);  // coalesced
    } else
        deadline = ~u64{0};
    if (!(lvt[LVT_TIMER] & MASKED) && enabled())
        raise(static_cast<u8>(lvt[LVT_TIMER]));
    return true;
}

void Lapic::write_tsc_deadline(u64 v)
{
    if (mode() == 2)
        deadline = v ? v : ~u64{0};
}

u64 Lapic::read_tsc_deadline() const { return mode() == 2 && deadline != ~u64{0} ? deadline : 0; }

void Lapic::raise(u8 vector)
{
    if (vector >= 16)
        irr[vector >> 5] |= 1u << (vector & 31);
}

int Lapic::highest(const u32 *bits) const
{
    for (int i = 7; i >= 0; i--)
        if (bits[i])
            return i * 32 + 31 - __builtin_clz(bits[i]);
    return -1;
}

int Lapic::pending() const
{
    int v = highest(irr);
    if (v < 0)
        return -1;
    int s = highest(isr);
    u32 ppr = s >= 0 && static_cast<u32>(s & 0xf0) > (tpr & 0xf0) ? static_cast<u32>(s & 0xf0) : tpr & 0xf0;
    return static_cast<u32>(v & 0xf0) > ppr ? v : -1;
}

void Lapic::ack(u8 vector)
{
    irr[vector >> 5] &= ~(1u << (vector & 31));
    isr[vector >> 5] |= 1u << (vector & 31);
}

bool Lapic::extint_open() const
{
    if (!enabled())
        return true;  // a software-disabled APIC: the virtual wire still works (LINT0 reset: ExtINT)
    u32 l = lvt[LVT_LINT0];
    return !(l & MASKED) && (l >> 8 & 7) == 7;
}

u32 Lapic::read(u32 off, u64 tsc)
{
    switch (off) {
    case 0x20: return id;
    case 0x30: return 0x00050014;  // version 0x14, 6 LVT entries
    case 0x80: return tpr;
    case 0x90: return 0;
    case 0xa0: {
        int s = highest(isr);
        u32 sv = s >= 0 ? static_cast<u32>(s & 0xf0) : 0;
        return sv > (tpr & 0xf0) ? sv : tpr & 0xff;
    }
    case 0xd0: return ldr;
    case 0xe0: return dfr;
    case 0xf0: return svr;
    case 0x280: return esr;
    case 0x300: return icr_lo & ~(1u << 12);  // delivered at once
    case 0x310: return icr_hi;
    case 0x2f0: return lvt[0];
    case 0x320:
    case 0x330:
    case 0x340:
    case 0x350:
    case 0x360:
    case 0x370: return lvt[(off - 0x310) >> 4];
    case 0x380: return init_count;
    case 0x390: return current(tsc);
    case 0x3e0: return divide;
    default:
        if (off >= 0x100 && off < 0x180)
            return isr[(off - 0x100) >> 4];
        if (off >= 0x200 && off < 0x280)
            return irr[(off - 0x200) >> 4];
        return 0;  // TMR (edge only) and reserved registers
    }
}

void Lapic::write(u32 off, u32 v, u64 tsc)
{
    switch (off) {
    case 0x20: id = v & 0xff000000; return;
    case 0x80: tpr = v & 0xff; return;
    case 0xb0: {  // EOI: the highest in service
        int s = highest(isr);
        if (s >= 0)
            isr[s >> 5] &= ~(1u << (s & 31));
        return;
    }
    case 0xd0: ldr = v & 0xff000000; return;
    case 0xe0: dfr = v | 0x0fffffff; return;
    case 0xf0:
        svr = v & 0x13ff;
        if (!(svr & 0x100))
            for (u32 &l : lvt)
                l |= MASKED;
        return;
    case 0x280: esr = 0; return;
    case 0x300: icr_lo = v & 0xccfff; return;  // ICR: the VMM delivers the IPI (apic_targets, smp.hpp)
    case 0x310: icr_hi = v; return;
    case 0x2f0: lvt[0] = v & 0x117ff; return;
    case 0x320: {
        u32 old = mode();
        lvt[LVT_TIMER] = v & 0x700ff;
        if (!enabled())
            lvt[LVT_TIMER] |= MASKED;
        if (mode() != old) {  // a mode change disarms the timer
            init_count = 0;
            deadline = ~u64{0};
        }
        return;
    }
    case 0x330:
    case 0x340:
    case 0x350:
    case 0x360:
    case 0x370: {
        u32 &l = lvt[(off - 0x310) >> 4];
        l = v & 0x1a7ff;
        if (!enabled())
            l |= MASKED;
        return;
    }
    case 0x380:
        if (mode() == 2)  // ignored in TSC-deadline mode
            return;
        init_count = v;
        arm(tsc);
        return;
    case 0x3e0: divide = v & 0xb; return;
    default: return;  // read-only and reserved registers
    }
}

}  // namespace vmm
