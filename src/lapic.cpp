/*
 * Local APIC driver (xAPIC and x2APIC).
 */
#include "lapic.hpp"
#include "console.hpp"
#include "cpu.hpp"
#include "idt.hpp"
#include "paging.hpp"
#include "time.hpp"
#include "x86.hpp"

namespace {

enum Reg : u32 {
    ID = 0x20,
    VERSION = 0x30,
    TPR = 0x80,
    EOI = 0xb0,
    SVR = 0xf0,
    ESR = 0x280,
    ICR_LO = 0x300,
    ICR_HI = 0x310,
    LVT_TIMER = 0x320,
    LVT_THERM = 0x330,
    LVT_PERFM = 0x340,
    LVT_LINT0 = 0x350,
    LVT_LINT1 = 0x360,
    LVT_ERROR = 0x370,
    TMR_INIT = 0x380,
    TMR_CURR = 0x390,
    TMR_DIV = 0x3e0,
};

bool x2;
bool deadline;
volatile u32 *mmio;

void write(u32 reg, u32 v)
{
    if (x2)
        wrmsr(Msr::X2APIC_BASE + (reg >> 4), v);
    else
        mmio[reg / 4] = v;
}

void write_icr(u32 dest, u32 lo)
{
    if (x2) {
        wrmsr(Msr::X2APIC_BASE + (ICR_LO >> 4), u64{dest} << 32 | lo);
        return;
    }
    while (mmio[ICR_LO / 4] & (1u << 12))  // delivery pending
        pause();
    mmio[ICR_HI / 4] = dest << 24;
    mmio[ICR_LO / 4] = lo;
}

}  // namespace

u32 Lapic::bus_khz;

u32 Lapic::read(u32 reg)
{
    if (x2)
        return static_cast<u32>(rdmsr(Msr::X2APIC_BASE + (reg >> 4)));
    return mmio[reg / 4];
}

bool Lapic::x2apic() { return x2; }

void Lapic::setup(u64 mmio_phys, bool use_x2apic)
{
    x2 = use_x2apic;
    if (!x2)
        mmio = static_cast<volatile u32 *>(Mmio::map(mmio_phys, PAGE_SIZE));
}

u32 Lapic::id()
{
    u32 v = read(ID);
    return x2 ? v : v >> 24;
}

void Lapic::init_cpu()
{
    u64 base = rdmsr(Msr::APIC_BASE);
    base |= 1u << 11;  // global enable
    if (x2)
        base |= 1u << 10;
    wrmsr(Msr::APIC_BASE, base);

    Cpu &c = Cpu::current();
    u32 ver = read(VERSION);
    unsigned max_lvt = (ver >> 16) & 0xff;
    c.lapic_version = ver;
    c.lapic_svr = read(SVR);
    c.lvt_timer = read(LVT_TIMER);
    c.lvt_lint0 = read(LVT_LINT0);
    c.lvt_lint1 = read(LVT_LINT1);
    c.lvt_error = read(LVT_ERROR);
    c.lvt_perfm = max_lvt >= 4 ? read(LVT_PERFM) : 0;
    c.lvt_therm = max_lvt >= 5 ? read(LVT_THERM) : 0;

    write(TPR, 0);
    write(SVR, 0x100 | Vec::SPURIOUS);
    write(LVT_LINT0, 1u << 16);                  // masked: the legacy PIC is off
    write(LVT_LINT1, c.bsp ? 0x400 : 1u << 16);  // NMI on the BSP only
    write(LVT_ERROR, Vec::ERROR);
    write(LVT_TIMER, 1u << 16);
    if (max_lvt >= 4)
        write(LVT_PERFM, 1u << 16);
    if (max_lvt >= 5)
        write(LVT_THERM, 1u << 16);
    write(ESR, 0);
    eoi();
}

void Lapic::eoi() { write(EOI, 0); }

void Lapic::send_ipi(u32 apic_id, u32 vector) { write_icr(apic_id, 0x4000 | vector); }
void Lapic::send_nmi(u32 apic_id) { write_icr(apic_id, 0x4400); }
void Lapic::send_init(u32 apic_id) { write_icr(apic_id, 0x4500); }
void Lapic::send_sipi(u32 apic_id, u32 page) { write_icr(apic_id, 0x4600 | (page & 0xff)); }

void Lapic::stop_others()
{
    if (!x2 && !mmio)
        return;             // no APIC set up yet: nothing else runs
    write_icr(0, 0xc4400);  // NMI, all excluding self
}

void Lapic::timer_setup(bool use_deadline)
{
    deadline = use_deadline;
    if (deadline)
        write(LVT_TIMER, 2u << 17 | Vec::TIMER);  // TSC-deadline mode
    else {
        write(TMR_DIV, 0xb);           // divide by 1
        write(LVT_TIMER, Vec::TIMER);  // one-shot
    }
}

bool Lapic::timer_uses_deadline() { return deadline; }

void Lapic::timer_arm_tsc(u64 when)
{
    if (deadline) {
        wrmsr(Msr::TSC_DEADLINE, when);
        return;
    }
    u64 now = rdtsc();
    u64 delta = when > now ? when - now : 1;
    // TSC ticks -> LAPIC ticks; clamp to the 32-bit counter.
    u64 ticks = Time::tsc_khz ? delta * bus_khz / Time::tsc_khz : delta;
    write(TMR_INIT, static_cast<u32>(ticks ? (ticks > 0xffffffff ? 0xffffffff : ticks) : 1));
}

void Lapic::timer_calibrate_start()
{
    write(TMR_DIV, 0xb);
    write(LVT_TIMER, 1u << 16);
    write(TMR_INIT, 0xffffffff);
}

u32 Lapic::timer_calibrate_end()
{
    u32 left = read(TMR_CURR);
    write(TMR_INIT, 0);
    return 0xffffffff - left;
}
