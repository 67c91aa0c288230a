/* The few C string/memory functions the kernel provides (src/string.cpp). */
#pragma once

#include <stddef.h>

extern "C" {
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
}
