/*
 * Memory and string primitives for the freestanding kernel. Written with
 * string instructions so the compiler cannot turn them back into calls to
 * themselves.
 */
#include "string.hpp"

extern "C" void *memcpy(void *dst, const void *src, size_t n)
{
    // Quadwords first: fewer iterations (under QEMU's -icount each one counts).
    void *d = dst;
    size_t q = n / 8, r = n % 8;
    asm volatile("rep movsq" : "+D"(d), "+S"(src), "+c"(q) : : "memory");
    asm volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(r) : : "memory");
    return dst;
}

extern "C" void *memmove(void *dst, const void *src, size_t n)
{
    auto d = static_cast<unsigned char *>(dst);
    auto s = static_cast<const unsigned char *>(src);
    if (d <= s || d >= s + n)
        return memcpy(dst, src, n);
    d += n - 1;
    s += n - 1;
    asm volatile("std; rep movsb; cld" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
    return dst;
}

extern "C" void *memset(void *dst, int c, size_t n)
{
    void *d = dst;
    asm volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return dst;
}

extern "C" int memcmp(const void *a, const void *b, size_t n)
{
    auto x = static_cast<const unsigned char *>(a);
    auto y = static_cast<const unsigned char *>(b);
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

extern "C" size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}
