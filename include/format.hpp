/*
 * printf-style formatting into a bounded buffer; the one formatter behind
 * every console line. Supported: %s %c %d %i %u %x %X %p %o %% with the
 * length modifiers l, ll, z and the flags '#', '0', '-' and a field width
 * (also '*'). %p prints like %#lx (ABI 13.2). Output is always
 * NUL-terminated; the return value is the length written (truncated).
 */
#pragma once

#include <stdarg.h>

#include "types.hpp"

size_t vformat(char *buf, size_t size, const char *fmt, va_list ap);
size_t format(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
