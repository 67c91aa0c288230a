/*
 * The fuzzers' diag() sink: every message is formatted (so a bad argument is caught by the
 * sanitizers) and dropped, or printed to stderr when FUZZ_DIAG is set (to see what the parsers
 * said about one input: FUZZ_DIAG=1 build/fuzz-acpi corpus/acpi/xsdt-loader-copy).
 */
#include <cstdarg>
#include <cstdio>
#include <cstdlib>

#include "diag.hpp"

static void sink(const char *fmt, va_list ap)
{
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    static const bool print = getenv("FUZZ_DIAG");
    if (print)
        fprintf(stderr, "diag: %s\n", buf);
}

void diag(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sink(fmt, ap);
    va_end(ap);
}

void diag_user(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sink(fmt, ap);
    va_end(ap);
}
