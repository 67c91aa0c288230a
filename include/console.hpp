/*
 * Kernel console: one formatter, several sinks (serial, VGA text). A line is
 * formatted into a buffer first and then written under one lock, so lines of
 * different CPUs never interleave.
 *
 *   trace("...")  one line, prefixed with "[%2d] " = the CPU number (ABI 13.2)
 *   kprint("...") raw text, no prefix, no newline added
 */
#pragma once

#include <stdarg.h>

#include "types.hpp"

struct Console_sink
{
    void (*write)(const char *s, size_t n);
    Console_sink *next;
};

namespace Console {
void add(Console_sink &sink);
void vprint(bool prefix, const char *fmt, va_list ap);
/* A trace line on behalf of another CPU (e.g. the BSP reporting the APs in order). */
void vprint_as(int cpu, const char *fmt, va_list ap);
/* Used by panic: forget a lock held by a CPU that will never release it. */
void break_lock();
}  // namespace Console

void kprint(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * A trace line user mode can provoke at will (kills, ABI 13.3; overmap attempts go through
 * diag_user): in release builds a global token bucket (include/ratelimit.hpp) limits them to a
 * burst of 20 and then 10 per second; dropped lines are counted and reported with the next line
 * printed or by Console::flush_suppressed() ("console: N lines suppressed"). Debug builds print all.
 */
void trace_user(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

namespace Console {
/* Report lines the rate limit dropped, if the limit lets a line through now (safe points). */
void flush_suppressed();
}  // namespace Console

/* True once some CPU has started a panic (src/panic.cpp). */
bool panic_in_progress();
[[noreturn]] void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
