/*
 * Console core: formatting, the line lock and the sink list.
 */
#include "console.hpp"
#include "cpu.hpp"
#include "diag.hpp"
#include "format.hpp"
#include "ratelimit.hpp"
#include "spinlock.hpp"
#include "time.hpp"
#include "x86.hpp"

namespace {
Spinlock lock;
Console_sink *sinks;

/*
 * Lines user mode can provoke (trace_user, diag_user): a serial line at 115200 baud takes about
 * 10 ms, with interrupts off, so a PD that could print at will would stall its CPU (and any other
 * waiting for the console). Release builds allow a burst of 20 and then 10 lines a second for all
 * of them together; what is dropped is counted and reported.
 */
constexpr u64 USER_BURST = 20, USER_PER_SECOND = 10;
Spinlock limit_lock;
Line_limit user_limit{USER_BURST};
u64 suppressed;  // dropped and not reported yet

/* May a user-provoked line be printed now? `report`: dropped lines to report first. */
bool admit(u64 &report)
{
    report = 0;
    if constexpr (ASSERTIONS)
        return true;
    u64 interval = u64{Time::tsc_khz} * 1000 / USER_PER_SECOND;
    Lock_guard g(limit_lock);
    if (!user_limit.admit(rdtsc(), interval)) {
        __atomic_add_fetch(&suppressed, 1, __ATOMIC_RELAXED);
        return false;
    }
    report = __atomic_exchange_n(&suppressed, 0, __ATOMIC_RELAXED);
    return true;
}

void user_line(const char *fmt, va_list ap)
{
    u64 report;
    if (!admit(report))
        return;
    if (report)
        trace("console: %lu lines suppressed (rate limit for lines user mode provokes)", report);
    Console::vprint(true, fmt, ap);
}
}  // namespace

void Console::flush_suppressed()
{
    if (!__atomic_load_n(&suppressed, __ATOMIC_RELAXED))
        return;
    u64 report;
    {
        u64 interval = u64{Time::tsc_khz} * 1000 / USER_PER_SECOND;
        Lock_guard g(limit_lock);
        if (!user_limit.admit(rdtsc(), interval))
            return;
        report = __atomic_exchange_n(&suppressed, 0, __ATOMIC_RELAXED);
    }
    if (report)
        trace("console: %lu lines suppressed (rate limit for lines user mode provokes)", report);
}

void Console::add(Console_sink &sink)
{
    Lock_guard g(lock);
    sink.next = sinks;
    sinks = &sink;
}

void Console::break_lock() { lock = Spinlock(); }

void Console::vprint(bool prefix, const char *fmt, va_list ap)
{
    if (prefix)
        return vprint_as(Cpu::current_id(), fmt, ap);
    vprint_as(INT32_MIN, fmt, ap);
}

void Console::vprint_as(int cpu, const char *fmt, va_list ap)
{
    char buf[1024];  // the panic register dump is one message
    size_t n = 0;
    bool prefix = cpu != INT32_MIN;
    if (prefix)
        n = format(buf, sizeof buf, "[%2d] ", cpu);
    n += vformat(buf + n, sizeof buf - n - 1, fmt, ap);
    if (prefix)
        buf[n++] = '\n';

    Lock_guard g(lock);
    for (auto s = sinks; s; s = s->next)
        s->write(buf, n);
}

void kprint(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    Console::vprint(false, fmt, ap);
    va_end(ap);
}

void trace(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    Console::vprint(true, fmt, ap);
    va_end(ap);
}

void diag(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    Console::vprint(true, fmt, ap);
    va_end(ap);
}

void trace_user(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    user_line(fmt, ap);
    va_end(ap);
}

void diag_user(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    user_line(fmt, ap);
    va_end(ap);
}
