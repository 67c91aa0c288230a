/*
 * TSC and LAPIC-timer calibration. Each reference is read over a fixed
 * interval (10 ms) while the TSC and the LAPIC timer run; the ratio gives
 * their frequencies. All loops are bounded: a reference that does not move
 * (broken HPET, absent PM timer) falls through to the next one.
 */
#include "time.hpp"
#include "acpi.hpp"
#include "console.hpp"
#include "lapic.hpp"
#include "paging.hpp"
#include "x86.hpp"

u32 Time::tsc_khz;
const char *Time::source = "none";

namespace {

constexpr u64 WINDOW_US = 5000;
constexpr unsigned ROUNDS = 5;         // median of several windows: one preempted window must not skew it
constexpr u64 SPIN_LIMIT = 200000000;  // iterations before a reference counts as dead

struct Sample
{
    u64 tsc;
    u32 lapic;
};

/* Runs `counter` until `ref_ticks` have passed; returns TSC ticks and LAPIC ticks in that window. */
template <typename F> bool measure_once(F counter, u64 ref_ticks, u64 mask, Sample &out)
{
    u64 start = counter();
    // Align to a tick edge so the window starts cleanly.
    u64 spins = 0;
    while (counter() == start)
        if (++spins > SPIN_LIMIT)
            return false;
    start = counter();
    u64 t0 = rdtsc();
    Lapic::timer_calibrate_start();
    for (spins = 0; ((counter() - start) & mask) < ref_ticks; spins++)
        if (spins > SPIN_LIMIT)
            return false;
    out.tsc = rdtsc() - t0;
    out.lapic = Lapic::timer_calibrate_end();
    return true;
}

template <typename T> T median(T *v, unsigned n)
{
    for (unsigned i = 1; i < n; i++)
        for (unsigned j = i; j > 0 && v[j] < v[j - 1]; j--) {
            T t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return v[n / 2];
}

template <typename F> bool measure(F counter, u64 ref_ticks, u64 mask, Sample &out)
{
    u64 tsc[ROUNDS];
    u32 lapic[ROUNDS];
    for (unsigned i = 0; i < ROUNDS; i++) {
        Sample s;
        if (!measure_once(counter, ref_ticks, mask, s))
            return false;
        tsc[i] = s.tsc;
        lapic[i] = s.lapic;
    }
    out.tsc = median(tsc, ROUNDS);
    out.lapic = median(lapic, ROUNDS);
    return true;
}

void apply(Sample s, u64 us, const char *name)
{
    Time::tsc_khz = static_cast<u32>(s.tsc * 1000 / us);
    Lapic::bus_khz = static_cast<u32>(u64{s.lapic} * 1000 / us);
    Time::source = name;
}

bool with_hpet(const Acpi_info &a)
{
    if (!a.hpet.present || !a.hpet.base)
        return false;
    auto regs = static_cast<volatile u64 *>(Mmio::map(a.hpet.base, 0x400));
    if (!regs)
        return false;
    u64 period_fs = regs[0] >> 32;  // capabilities: counter period in femtoseconds
    if (period_fs == 0 || period_fs > 100000000)
        return false;
    regs[2] = regs[2] | 1;  // general configuration: enable counter
    u64 ticks = WINDOW_US * 1000000000ull / period_fs;
    Sample s;
    if (!measure([&] { return u64{regs[30]}; }, ticks, ~u64{0}, s))
        return false;
    apply(s, WINDOW_US, "HPET");
    return true;
}

bool with_pm_timer(const Acpi_info &a)
{
    const Fadt_info &f = a.fadt;
    if (!f.present || !f.pm_timer_present || f.pm_timer.space != Acpi_gas::IO || !f.pm_timer.address ||
        f.pm_timer.address > 0xfffc)
        return false;
    u16 port = static_cast<u16>(f.pm_timer.address);
    u64 mask = f.pm_timer_32bit ? 0xffffffffull : 0xffffffull;
    u64 ticks = 3579545ull * WINDOW_US / 1000000;
    Sample s;
    if (!measure([&] { return u64{inl(port)} & mask; }, ticks, mask, s))
        return false;
    apply(s, WINDOW_US, "ACPI PM timer");
    return true;
}

bool with_pit()
{
    // PIT channel 2, gated through port 0x61, mode 0 count-down from 0xffff: a one-shot of ~54.9 ms.
    constexpr u32 count = 11932;  // 10 ms at 1.193182 MHz
    outb(0x61, static_cast<u8>((inb(0x61) & ~0x02u) | 0x01u));
    outb(0x43, 0xb0);
    outb(0x42, count & 0xff);
    outb(0x42, count >> 8);
    u64 t0 = rdtsc();
    Lapic::timer_calibrate_start();
    u64 spins = 0;
    while (!(inb(0x61) & 0x20))
        if (++spins > SPIN_LIMIT)
            return false;
    Sample s{rdtsc() - t0, Lapic::timer_calibrate_end()};
    apply(s, count * 1000000ull / 1193182, "PIT");
    return true;
}

}  // namespace

void Time::calibrate(const Acpi_info &a)
{
    if (!with_hpet(a) && !with_pm_timer(a) && !with_pit()) {
        // Last resort: trust CPUID leaf 0x15/0x16 if present, else assume 1 GHz and say so.
        tsc_khz = 1000000;
        Lapic::bus_khz = 1000000;
        source = "nothing (assumed 1 GHz)";
    }
}

void Time::udelay(u64 us)
{
    u64 end = rdtsc() + us * tsc_khz / 1000;
    while (rdtsc() < end)
        pause();
}
