/*
 * assert(): invariants the kernel relies on (docs/debugging.md).
 *
 *   debug build (CONFIG_DEBUG=1)  a failed assertion panics: "Assertion "<expr>" failed at
 *                                 <file>:<line>:<function>" on every console, then halts
 *   host unit tests (HOST_TEST)   the same line on stderr, then abort(): the test fails (and a
 *                                 death test can expect it)
 *   release build                 nothing is evaluated or emitted; the expression is still
 *                                 compiled (as the operand of sizeof), so it cannot rot
 *
 * ASSERTIONS says which: code that exists only to feed assertions (a lock's owner, a debug
 * flag) is guarded by `if constexpr (ASSERTIONS)` or `#if ASSERTIONS`.
 */
#pragma once

#if defined(HOST_TEST)
#include <cstdio>
#include <cstdlib>
#define ASSERTIONS 1
[[noreturn]] inline void assert_failed(const char *expr, const char *file, int line, const char *func)
{
    std::fprintf(stderr, "Assertion \"%s\" failed at %s:%d:%s\n", expr, file, line, func);
    std::abort();
}
#elif CONFIG_DEBUG
#define ASSERTIONS 1
[[noreturn]] void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
[[noreturn]] inline void assert_failed(const char *expr, const char *file, int line, const char *func)
{
    panic("Assertion \"%s\" failed at %s:%d:%s", expr, file, line, func);
}
#else
#define ASSERTIONS 0
#endif

#undef assert  // a host header may have defined the C library's
#if ASSERTIONS
#define assert(x)                                                                                            \
    do {                                                                                                     \
        if (!(x)) [[unlikely]]                                                                               \
            assert_failed(#x, __FILE__, __LINE__, __func__);                                                 \
    } while (0)
#else
#define assert(x) static_cast<void>(sizeof(!(x)))
#endif
