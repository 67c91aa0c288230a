/*
 * Kernel keyboard handler and machine reset.
 */
#include "keyb.hpp"
#include "boot.hpp"
#include "console.hpp"
#include "cpu.hpp"
#include "ioapic.hpp"
#include "lapic.hpp"
#include "paging.hpp"
#include "time.hpp"
#include "x86.hpp"

namespace {
u32 keyb_gsi = ~0u;
}

void Keyb::init()
{
    if (!Boot::cmdline.keyb)
        return;
    keyb_gsi = Boot::acpi.valid ? Boot::acpi.isa_to_gsi(1) : 1;
    Irq_mode mode =
        Boot::acpi.valid ? Boot::acpi.gsi_mode(keyb_gsi) : Irq_mode{Irq_mode::EDGE, Irq_mode::HIGH};
    // Drain anything the firmware left in the output buffer.
    for (unsigned i = 0; i < 32 && (inb(0x64) & 1); i++)
        inb(0x60);
    if (!Ioapic::route(keyb_gsi, Cpu::current().apic_id, mode, false)) {
        trace("KEYB: cannot route GSI %u; keyboard not driven", keyb_gsi);
        keyb_gsi = ~0u;
        return;
    }
    trace("KEYB: PS/2 keyboard on GSI %u (Esc: reset, c: counters)", keyb_gsi);
}

void Keyb::interrupt(u32 gsi)
{
    if (gsi != keyb_gsi)
        return;
    while (inb(0x64) & 1) {
        u8 sc = inb(0x60);
        if (sc == 0x01)
            reset();
        if (sc == 0x2e)
            dump_counters();
    }
}

void Keyb::dump_counters()
{
    for (unsigned i = 0; i < Cpu::count; i++) {
        const Cpu &c = *Cpu::table[i];
        if (c.online)
            trace("COUNTERS: CPU %u timer %llu irq %llu exc %llu", i,
                  static_cast<unsigned long long>(c.timer_ticks), static_cast<unsigned long long>(c.irqs),
                  static_cast<unsigned long long>(c.exceptions));
    }
}

void Keyb::reset()
{
    trace("RESET: resetting the machine");
    const Fadt_info &f = Boot::acpi.fadt;
    if (Boot::acpi.valid && f.reset_valid) {
        if (f.reset_reg.space == Acpi_gas::IO && f.reset_reg.address <= 0xffff)
            outb(static_cast<u16>(f.reset_reg.address), f.reset_value);
        else if (f.reset_reg.space == Acpi_gas::MEMORY) {
            if (auto p = static_cast<volatile u8 *>(Mmio::map(f.reset_reg.address, 1)))
                *p = f.reset_value;
        }
        Time::udelay(100000);
    }
    outb(0xcf9, 0x02);
    outb(0xcf9, 0x06);
    Time::udelay(100000);
    outb(0x64, 0xfe);
    Time::udelay(100000);
    // Last resort: an empty IDT and an exception make a triple fault.
    struct [[gnu::packed]]
    {
        u16 limit;
        u64 base;
    } null_idt{0, 0};
    asm volatile("lidt %0; int3" : : "m"(null_idt));
    halt_forever();
}
