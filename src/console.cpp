/*
 * Console core: formatting, the line lock and the sink list.
 */
#include "console.hpp"
#include "cpu.hpp"
#include "diag.hpp"
#include "format.hpp"
#include "spinlock.hpp"

namespace {
Spinlock lock;
Console_sink *sinks;
}  // namespace

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
