/*
 * Diagnostics sink for the kernel's pure-logic parts (parsers, allocators).
 *
 * The kernel defines diag() to print one console line prefixed with the CPU
 * number; host unit tests define it to record the messages so tests can assert
 * that a malformed input was reported. Format: the kernel printf subset
 * (%s %c %d %i %u %x %X %p %lu %ld %lx %llu %llx %zu, flags '#' '0' '-', width).
 * The message has no trailing newline; the sink adds it.
 */
#pragma once

void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * A diagnostic user mode can provoke at will (the overmap attempt line of ABI 13.3). The kernel
 * rate-limits these in release builds (src/console.cpp: a global token bucket, dropped lines are
 * counted and reported); never call it with a lock held that others spin on.
 */
void diag_user(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
