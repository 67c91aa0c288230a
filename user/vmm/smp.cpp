/*
 * I/O APIC, destination matching, MP table (smp.hpp; docs/vmm.md, "SMP guests").
 */
#include "smp.hpp"

namespace vmm {

namespace {

bool matches(const Lapic &a, bool logical, u8 dest)
{
    u8 id = static_cast<u8>(a.id >> 24);
    if (!logical)
        return dest == 0xff || dest == id;
    u8 ldr = static_cast<u8>(a.ldr >> 24);
    if ((a.dfr >> 28) == 0xf)  // flat model: a bit mask
        return (ldr & dest) != 0;
    // cluster model: cluster in 7:4, members in 3:0; 0xff is a broadcast
    return dest == 0xff || ((ldr >> 4) == (dest >> 4) && (ldr & dest & 0xf));
}

void put16(u8 *p, u16 v)
{
    p[0] = static_cast<u8>(v);
    p[1] = static_cast<u8>(v >> 8);
}

void put32(u8 *p, u32 v)
{
    put16(p, static_cast<u16>(v));
    put16(p + 2, static_cast<u16>(v >> 16));
}

u8 checksum(const u8 *p, u64 n)
{
    u8 s = 0;
    for (u64 i = 0; i < n; i++)
        s = static_cast<u8>(s + p[i]);
    return static_cast<u8>(-s);
}

}  // namespace

u32 apic_targets(const Lapic *apics, unsigned n, unsigned self, u32 lo, u8 dest)
{
    u32 all = n >= 32 ? ~0u : (1u << n) - 1;
    switch (lo >> 18 & 3) {
    case 1: return self < n ? 1u << self : 0;
    case 2: return all;
    case 3: return self < n ? all & ~(1u << self) : all;
    default: break;
    }
    u32 t = 0;
    for (unsigned i = 0; i < n && i < 32; i++)
        if (matches(apics[i], lo >> 11 & 1, dest))
            t |= 1u << i;
    return t;
}

void Ioapic::reset(u32 apic_id)
{
    id = apic_id;
    sel = 0;
    for (u64 &r : redir)
        r = u64{1} << 16;  // masked
}

u32 Ioapic::read(u32 off) const
{
    if (off != 0x10)
        return off == 0 ? sel : 0;
    if (sel == 0)
        return id << 24;
    if (sel == 1)
        return (PINS - 1) << 16 | 0x20;  // version 0x20, 24 pins
    if (sel == 2)
        return id << 24;  // arbitration ID
    if (sel >= 0x10 && sel < 0x10 + 2 * PINS) {
        u64 r = redir[(sel - 0x10) / 2];
        return static_cast<u32>(sel & 1 ? r >> 32 : r);
    }
    return 0;
}

void Ioapic::write(u32 off, u32 v)
{
    if (off == 0) {
        sel = v & 0xff;
        return;
    }
    if (off != 0x10)
        return;
    if (sel == 0) {
        id = v >> 24 & 0xf;
        return;
    }
    if (sel < 0x10 || sel >= 0x10 + 2 * PINS)
        return;
    u64 &r = redir[(sel - 0x10) / 2];
    if (sel & 1)
        r = (r & 0xffffffffull) | u64{v & 0xff000000u} << 32;
    else  // delivery status (12) and remote IRR (14) are read-only and stay 0 (edge only)
        r = (r & ~0xffffffffull) | (v & 0x1afffu);
}

u64 build_mp_table(u8 *ram, u64 fp, u64 room, unsigned ncpus, u32 cpu_signature, u32 cpu_features)
{
    unsigned entries = ncpus + 1 + 1 + 16 + 2;
    u64 cfg_len = 44 + 20 * u64{ncpus} + 8 * u64{entries - ncpus};
    if (ncpus == 0 || ncpus > 15 || 16 + cfg_len > room)
        return 0;
    u8 *f = ram + fp, *c = f + 16;
    for (u64 i = 0; i < 16 + cfg_len; i++)
        f[i] = 0;
    // Floating pointer: "_MP_", the table's address, length 1 (16 bytes), revision 1.4, no
    // default configuration, no IMCR (virtual-wire mode).
    f[0] = '_', f[1] = 'M', f[2] = 'P', f[3] = '_';
    put32(f + 4, static_cast<u32>(fp + 16));
    f[8] = 1;
    f[9] = 4;
    f[10] = checksum(f, 16);
    // Configuration table header.
    const char *oem = "NOVAVMM PC          ";
    c[0] = 'P', c[1] = 'C', c[2] = 'M', c[3] = 'P';
    put16(c + 4, static_cast<u16>(cfg_len));
    c[6] = 4;
    for (unsigned i = 0; i < 20; i++)
        c[8 + i] = static_cast<u8>(oem[i]);
    put16(c + 34, static_cast<u16>(entries));
    put32(c + 36, static_cast<u32>(Lapic::BASE));
    u8 *e = c + 44;
    for (unsigned i = 0; i < ncpus; i++, e += 20) {  // processors
        e[0] = 0;
        e[1] = static_cast<u8>(i);
        e[2] = 0x14;
        e[3] = static_cast<u8>(1 | (i == 0 ? 2 : 0));  // enabled, BSP
        put32(e + 4, cpu_signature);
        put32(e + 8, cpu_features);
    }
    e[0] = 1;  // bus 0: ISA
    e[1] = 0;
    for (unsigned i = 0; i < 6; i++)
        e[2 + i] = static_cast<u8>("ISA   "[i]);
    e += 8;
    e[0] = 2;  // the I/O APIC, enabled
    e[1] = static_cast<u8>(ncpus);
    e[2] = 0x20;
    e[3] = 1;
    put32(e + 4, static_cast<u32>(Ioapic::BASE));
    e += 8;
    auto intr = [&](u8 type, u8 kind, u8 irq, u8 dest, u8 pin) {
        e[0] = type;
        e[1] = kind;  // 0 INT, 1 NMI, 3 ExtINT; flags 0: the bus's polarity and trigger (ISA: high, edge)
        e[4] = 0;     // bus 0
        e[5] = irq;
        e[6] = dest;
        e[7] = pin;
        e += 8;
    };
    intr(3, 3, 0, static_cast<u8>(ncpus), 0);  // the PIC's ExtINT on pin 0
    for (u8 irq = 0; irq < 16; irq++)
        if (irq != 2)
            intr(3, 0, irq, static_cast<u8>(ncpus), static_cast<u8>(isa_pin(irq)));
    intr(4, 3, 0, 0xff, 0);  // LINT0: ExtINT, LINT1: NMI, on every CPU
    intr(4, 1, 0, 0xff, 1);
    c[7] = checksum(c, cfg_len);
    return 16 + cfg_len;
}

}  // namespace vmm
