/*
 * I/O APIC driver and the legacy 8259 PIC shutdown. With interrupt remapping (src/dmar.cpp) a
 * pin's redirection entry is in the remappable format and names remapping entry = GSI, which
 * holds the destination; the entry's vector stays 32 + GSI, so EOIs still reach the pin.
 */
#include "ioapic.hpp"
#include "console.hpp"
#include "idt.hpp"
#include "iommu.hpp"
#include "lapic.hpp"
#include "paging.hpp"
#include "spinlock.hpp"
#include "x86.hpp"

namespace {

struct Unit
{
    volatile u32 *regs;
    u32 id, version, gsi_base, pins, phys;
};

Unit units[Madt_info::MAX_IOAPIC];
unsigned num_units;
Spinlock lock;

u32 read(Unit &u, u32 reg)
{
    u.regs[0] = reg;
    return u.regs[4];
}

void write(Unit &u, u32 reg, u32 v)
{
    u.regs[0] = reg;
    u.regs[4] = v;
}

Unit *find(u32 gsi)
{
    for (unsigned i = 0; i < num_units; i++)
        if (gsi >= units[i].gsi_base && gsi < units[i].gsi_base + units[i].pins)
            return &units[i];
    return nullptr;
}

}  // namespace

void Ioapic::init(const Acpi_info &acpi)
{
    for (unsigned i = 0; i < acpi.madt.num_ioapic; i++) {
        const Madt_ioapic &m = acpi.madt.ioapic[i];
        auto regs = static_cast<volatile u32 *>(Mmio::map(m.address, 0x20));
        if (!regs) {
            trace("IOAPIC: cannot map %#x, skipped", m.address);
            continue;
        }
        Unit &u = units[num_units];
        u.regs = regs;
        u.id = read(u, 0) >> 24 & 0xf;
        u.version = read(u, 1);
        u.gsi_base = m.gsi_base;
        u.phys = m.address;
        u.pins = ((u.version >> 16) & 0xff) + 1;
        if (u.version == 0xffffffff) {
            trace("IOAPIC: %#x does not respond, skipped", m.address);
            continue;
        }
        for (u32 p = 0; p < u.pins; p++) {
            write(u, 0x10 + 2 * p, 1u << 16);
            write(u, 0x11 + 2 * p, 0);
        }
        num_units++;
        trace("IOAPIC: id %u at %#x, GSI %u-%u, version %#x", u.id, m.address, u.gsi_base,
              u.gsi_base + u.pins - 1, u.version & 0xff);
        // Every GSI pin gets its vector, trigger mode and the boot CPU as destination, still
        // masked: a down on a GSI semaphore that was never assigned (ABI 11.1: it unmasks the
        // pin) then delivers that GSI to the boot CPU, as the reference does, never vector 0.
        for (u32 p = 0; p < u.pins && u.gsi_base + p < Vec::NUM_GSI; p++) {
            u32 gsi = u.gsi_base + p;
            Irq_mode mode = acpi.valid ? acpi.gsi_mode(gsi) : Irq_mode{Irq_mode::EDGE, Irq_mode::HIGH};
            route(gsi, Lapic::id(), mode, true);
        }
    }
}

unsigned Ioapic::count() { return num_units; }

bool Ioapic::present(u32 gsi) { return find(gsi) != nullptr; }

bool Ioapic::describe(unsigned i, u32 &id, u32 &version, u32 &gsi_base, u32 &base)
{
    if (i >= num_units)
        return false;
    id = units[i].id;
    version = units[i].version;
    gsi_base = units[i].gsi_base;
    base = units[i].phys;
    return true;
}

bool Ioapic::route(u32 gsi, u32 apic_id, Irq_mode mode, bool masked)
{
    Unit *u = find(gsi);
    if (!u || gsi >= Vec::NUM_GSI || !Iommu::reaches(apic_id))
        return false;
    u32 pin = gsi - u->gsi_base;
    u32 lo = (Vec::GSI_BASE + gsi) | (mode.polarity == Irq_mode::LOW ? 1u << 13 : 0) |
             (mode.trigger == Irq_mode::LEVEL ? 1u << 15 : 0) | (masked ? 1u << 16 : 0);
    u32 hi = apic_id << 24;  // without remapping apic_id <= 0xff
    if (Iommu::remaps_interrupts()) {
        if (!Iommu::set_irte(gsi, apic_id, static_cast<u8>(Vec::GSI_BASE + gsi),
                             mode.trigger == Irq_mode::LEVEL, Iommu::ioapic_sid(u->id)))
            return false;
        hi = Iommu::rte_hi(gsi);
    }
    Lock_guard g(lock);
    write(*u, 0x10 + 2 * pin, 1u << 16);
    write(*u, 0x11 + 2 * pin, hi);
    write(*u, 0x10 + 2 * pin, lo);
    return true;
}

void Ioapic::mask(u32 gsi, bool masked)
{
    Unit *u = find(gsi);
    if (!u)
        return;
    u32 pin = gsi - u->gsi_base;
    Lock_guard g(lock);
    u32 lo = read(*u, 0x10 + 2 * pin);
    // Only a pin programmed with its own vector is ever unmasked (a pin the boot could not
    // route, e.g. a boot CPU beyond xAPIC IDs, stays masked rather than deliver vector 0).
    if (!masked && (lo & 0xff) != Vec::GSI_BASE + gsi)
        return;
    // AMD-Vi interrupt remapping: QEMU 7.2 delivers remapped interrupts edge-triggered (an IRTE has
    // no trigger mode and it drops the message's), so no EOI broadcast reaches a level pin. A
    // directed EOI (I/O APIC version 0x20 and later) clears its Remote IRR before it is unmasked;
    // where the broadcast did come, it finds nothing to clear.
    if (!masked && (lo & (1u << 15)) && Iommu::Amd::remaps_interrupts() && (u->version & 0xff) >= 0x20)
        u->regs[0x40 / 4] = lo & 0xff;
    write(*u, 0x10 + 2 * pin, masked ? lo | 1u << 16 : lo & ~(1u << 16));
}

void Pic::disable()
{
    // Re-initialise both PICs onto vectors 0x20-0x2f (unused by us as PIC vectors since
    // every line is masked), so a spurious PIC interrupt can never look like an exception.
    outb(0x20, 0x11);
    outb(0xa0, 0x11);
    outb(0x21, 0x20);
    outb(0xa1, 0x28);
    outb(0x21, 0x04);
    outb(0xa1, 0x02);
    outb(0x21, 0x01);
    outb(0xa1, 0x01);
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
}
