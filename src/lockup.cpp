/*
 * Lockup detector (include/lockup.hpp, docs/debugging.md).
 */
#include "lockup.hpp"
#include "boot.hpp"
#include "console.hpp"
#include "cpu.hpp"
#include "format.hpp"
#include "idt.hpp"
#include "lapic.hpp"
#include "smp.hpp"
#include "spinlock.hpp"
#include "time.hpp"
#include "x86.hpp"

extern "C" char __text_start[], __text_end[];  // linker.ld

namespace {

constexpr u64 NMI_WAIT_MS = 1000;  // how long the scanning CPU waits for the NMI's sample (TCG: slow)
constexpr u64 STACK_SCAN_WORDS = 256;

bool armed;
u64 next_scan;  // TSC; the CPU that moves it forward does the scan

u64 ms(u64 tsc) { return Time::tsc_khz ? tsc / Time::tsc_khz : 0; }

u64 progress(const Cpu &c)
{
    return __atomic_load_n(&c.qs, __ATOMIC_RELAXED) +
           __atomic_load_n(&c.lockup.idle_wakeups, __ATOMIC_RELAXED);
}

bool kernel_text(u64 a)
{
    return a >= reinterpret_cast<u64>(__text_start) && a < reinterpret_cast<u64>(__text_end);
}

// What a lock is, where the kernel knows: the run queues; else its address (docs/debugging.md: nm).
void describe_lock(char *buf, size_t len, const void *lock)
{
    for (unsigned i = 0; i < Cpu::count; i++)
        if (lock == &Cpu::table[i]->rq_lock) {
            format(buf, len, "the run-queue lock of CPU %u", i);
            return;
        }
    format(buf, len, "lock %p", lock);
}

void report(Cpu &c, u64 stalled)
{
    Lockup_state &l = c.lockup;
    __atomic_store_n(&l.sampled, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&l.nmi_request, 1, __ATOMIC_RELEASE);
    Lapic::send_nmi(c.apic_id);
    u64 const until = rdtsc() + Time::ms_to_tsc(NMI_WAIT_MS);
    while (!__atomic_load_n(&l.sampled, __ATOMIC_ACQUIRE) && rdtsc() < until)
        pause();
    if (!__atomic_load_n(&l.sampled, __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&l.nmi_request, 0, __ATOMIC_RELAXED);
        trace("LOCKUP: CPU %u made no progress for %llu ms and does not answer an NMI (in an NMI handler? "
              "halted for good?)",
              c.id, static_cast<unsigned long long>(ms(stalled)));
        return;
    }
    bool const user = l.cs & 3;
    trace(
        "LOCKUP: CPU %u made no progress for %llu ms: RIP %#018llx in %s mode, RFLAGS %#llx (interrupts %s), "
        "RSP %#018llx, EC %p SC %p%s",
        c.id, static_cast<unsigned long long>(ms(stalled)), static_cast<unsigned long long>(l.rip),
        user ? "user" : "kernel", static_cast<unsigned long long>(l.rflags), l.rflags & 0x200 ? "on" : "off",
        static_cast<unsigned long long>(l.rsp), l.ec, l.sc, l.idle ? ", in the idle loop" : "");
    if (l.spin) {
        auto lock = static_cast<const Spinlock *>(l.spin);
        char what[64];
        describe_lock(what, sizeof what, lock);
        u16 next, serving;
        const void *owner;
        lock->snapshot(next, serving, owner);
        int owner_id = -1;
        for (unsigned i = 0; owner && i < Cpu::count; i++)
            if (owner == Cpu::table[i])
                owner_id = static_cast<int>(i);
        char held[48] = "";
        if (owner_id >= 0)
            format(held, sizeof held, ", held by CPU %d", owner_id);
        else if (ASSERTIONS)
            format(held, sizeof held, ", owner unknown");
        trace("LOCKUP: CPU %u waits for %s (ticket next %u, serving %u%s)", c.id, what, next, serving, held);
    }
    if (l.nstack) {
        char buf[Lockup_state::MAX_STACK * 20 + 1];
        size_t n = 0;
        for (unsigned i = 0; i < l.nstack; i++)
            n += format(buf + n, sizeof buf - n, " %#llx", static_cast<unsigned long long>(l.stack[i]));
        trace("LOCKUP: CPU %u kernel text on its stack:%s (addr2line -f -e hypervisor)", c.id, buf);
    }
}

void scan(const Cpu &self, u64 now)
{
    for (unsigned i = 0; i < Cpu::count; i++) {
        Cpu &c = *Cpu::table[i];
        if (!c.online || &c == &self)
            continue;
        Lockup_state &l = c.lockup;
        u64 p = progress(c);
        if (p != l.seen) {
            if (l.reported)
                trace("LOCKUP: CPU %u made progress again after %llu ms", i,
                      static_cast<unsigned long long>(ms(now - l.since)));
            l.seen = p;
            l.since = now;
            l.reported = false;
            continue;
        }
        if (l.reported || now - l.since < Time::ms_to_tsc(Lockup::STALL_MS))
            continue;
        l.reported = true;
        report(c, now - l.since);
    }
}

// ---- lockuptest (debug builds): CPU 1 spins holding a lock, CPU 2 waits for it ----------------

constexpr u64 TEST_SPIN_MS = 6000;  // beyond STALL_MS + SCAN_MS: reported, then going on
bool test_armed;
u32 test_phase;
Spinlock test_lock;

void test_step(const Cpu &self)
{
    u32 phase = __atomic_load_n(&test_phase, __ATOMIC_ACQUIRE);
    if (self.id == 1 && phase == 0) {
        __atomic_store_n(&test_phase, 1, __ATOMIC_RELEASE);
        test_lock.lock();
        __atomic_store_n(&test_phase, 2, __ATOMIC_RELEASE);
        trace("LOCKUPTEST: CPU 1 holds a lock and spins with interrupts off for %llu ms",
              static_cast<unsigned long long>(TEST_SPIN_MS));
        u64 const until = rdtsc() + Time::ms_to_tsc(TEST_SPIN_MS);
        while (rdtsc() < until)
            pause();
        test_lock.unlock();
        trace("LOCKUPTEST: CPU 1 goes on");
    } else if (self.id == 2 && phase == 2) {
        __atomic_store_n(&test_phase, 3, __ATOMIC_RELEASE);
        trace("LOCKUPTEST: CPU 2 waits for the lock of CPU 1");
        test_lock.lock();
        test_lock.unlock();
        trace("LOCKUPTEST: CPU 2 goes on");
    }
}

}  // namespace

void lockup_waiting_for(const void *lock)
{
    __atomic_store_n(&Cpu::current().lockup.waiting, lock, __ATOMIC_RELAXED);
}

void Lockup::start()
{
    u64 now = rdtsc();
    for (unsigned i = 0; i < Cpu::count; i++) {
        Cpu &c = *Cpu::table[i];
        c.lockup.seen = progress(c);
        c.lockup.since = now;
    }
    if (Boot::cmdline.lockuptest) {
        if (CONFIG_DEBUG && Cpu::online_count >= 3) {
            test_armed = true;
            trace("LOCKUPTEST: CPU 1 and CPU 2 will stall on purpose (command-line option lockuptest)");
        } else
            trace("LOCKUPTEST: ignored: it needs a debug build (tools/build debug) and three CPUs");
    }
    __atomic_store_n(&next_scan, now + Time::ms_to_tsc(SCAN_MS), __ATOMIC_RELAXED);
    __atomic_store_n(&armed, true, __ATOMIC_RELEASE);
}

void Lockup::tick(Cpu &self)
{
    if (!__atomic_load_n(&armed, __ATOMIC_ACQUIRE))
        return;
    if (CONFIG_DEBUG && test_armed) [[unlikely]]
        test_step(self);
    u64 now = rdtsc(), next = __atomic_load_n(&next_scan, __ATOMIC_RELAXED);
    if (now < next)
        return;
    if (!__atomic_compare_exchange_n(&next_scan, &next, now + Time::ms_to_tsc(SCAN_MS), false,
                                     __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        return;  // another CPU scans
    if (panic_in_progress())
        return;
    scan(self, now);
}

bool Lockup::nmi(const Exc_frame &f)
{
    Cpu &c = Cpu::current();
    Lockup_state &l = c.lockup;
    if (!__atomic_exchange_n(&l.nmi_request, 0, __ATOMIC_ACQ_REL))
        return false;
    l.rip = f.rip;
    l.cs = f.cs;
    l.rflags = f.rflags;
    l.rsp = f.rsp;
    l.spin = __atomic_load_n(&l.waiting, __ATOMIC_RELAXED);
    l.ec = c.ec;
    l.sc = c.sc;
    l.idle = c.idle;
    l.nstack = 0;
    // Kernel text addresses on the interrupted kernel stack (return addresses, mostly): only
    // within this CPU's own kernel stack, which is mapped for sure.
    u64 const top = c.kstack_top, bottom = top - (PAGE_SIZE << Smp::STACK_ORDER);
    if (!(f.cs & 3) && f.rsp >= bottom && f.rsp < top) {
        auto p = reinterpret_cast<const u64 *>(f.rsp & ~u64{7});
        for (u64 i = 0; i < STACK_SCAN_WORDS && reinterpret_cast<u64>(p + i) < top; i++)
            if (kernel_text(p[i]) && l.nstack < Lockup_state::MAX_STACK)
                l.stack[l.nstack++] = p[i];
    }
    __atomic_store_n(&l.sampled, 1, __ATOMIC_RELEASE);
    return true;
}
