/*
 * GSI semaphores and idle SCs: the kernel's own objects (see include/gsi.hpp).
 */
#include "gsi.hpp"
#include "boot.hpp"
#include "console.hpp"
#include "cpu.hpp"
#include "ioapic.hpp"
#include "keyb.hpp"
#include "kmem.hpp"
#include "lapic.hpp"
#include "objects.hpp"

namespace {
Sm *sms[Gsi::COUNT];
Sc **idle;  // one per CPU
unsigned idle_count;
bool level[Gsi::COUNT];
u32 taken_on[Gsi::COUNT];  // CPU + 1 of the last interrupt, 0: none yet
}  // namespace

void Gsi::init()
{
    unsigned made = 0;
    for (unsigned g = 0; g < COUNT; g++) {
        sms[g] = Sm::create(0, nullptr);
        if (!sms[g])
            break;
        sms[g]->get();  // the kernel's reference: GSI semaphores never go away
        sms[g]->gsi = static_cast<int>(g);
        if (Boot::acpi.valid)
            level[g] = Boot::acpi.gsi_mode(g).trigger == Irq_mode::LEVEL;
        made++;
    }
    unsigned order = 0;
    while ((PAGE_SIZE << order) < Cpu::count * sizeof(Sc *))
        order++;
    idle = static_cast<Sc **>(Kmem::alloc(order));
    idle_count = idle ? Cpu::count : 0;
    for (unsigned c = 0; c < idle_count; c++) {
        if (!Cpu::table[c]->online)
            continue;
        idle[c] = Sc::create(nullptr, c, 0, 0);
        if (idle[c])
            idle[c]->get();
    }
    if (made < COUNT)
        trace("GSI: out of memory after %u GSI semaphores", made);
}

Sm *Gsi::sm(unsigned gsi) { return gsi < COUNT ? sms[gsi] : nullptr; }

Sc *Gsi::idle_sc(unsigned cpu) { return cpu < idle_count ? idle[cpu] : nullptr; }

void Gsi::interrupt(unsigned gsi)
{
    Keyb::interrupt(gsi);
    bool known = gsi < COUNT && sms[gsi];
    if (gsi < COUNT)
        __atomic_store_n(&taken_on[gsi], Cpu::current().id + 1, __ATOMIC_RELAXED);  // before the up below
    // Level-triggered: mask until the driver's next down, or the interrupt storms; masked
    // before the EOI, or the I/O APIC sends the still-asserted line once more (ABI 11.1).
    if (known && level[gsi])
        Ioapic::mask(gsi, true);
    Lapic::eoi();
    if (!known)
        return;
    Sm *sm = sms[gsi];
    if (Sm *t = __atomic_load_n(&sm->gsi_chain, __ATOMIC_ACQUIRE))
        t->up();
    else
        sm->up();
}

u32 Gsi::last_cpu(unsigned gsi)
{
    return gsi < COUNT ? __atomic_load_n(&taken_on[gsi], __ATOMIC_RELAXED) - 1 : ~0u;
}

void Gsi::unmask(unsigned gsi)
{
    if (gsi < COUNT && Ioapic::present(gsi))
        Ioapic::mask(gsi, false);
}
