/*
 * Test reporting of the user-mode suites (nova/test.hpp).
 */
#include "nova/test.hpp"
#include "format.hpp"
#include "nova/console.hpp"
#include "nova/runtime.hpp"

namespace nova::test {

namespace {

const char *suite_name = "test";
unsigned n_passed, n_failed, n_skipped;

void count(Verdict v)
{
    unsigned &n = v == Verdict::PASS ? n_passed : v == Verdict::FAIL ? n_failed : n_skipped;
    __atomic_fetch_add(&n, 1, __ATOMIC_RELAXED);
}

const char *word(Verdict v) { return v == Verdict::PASS ? "PASS" : v == Verdict::FAIL ? "FAIL" : "SKIP"; }

// "<VERDICT><sep><text>\n" with one printf call.
void line(Verdict v, const char *sep, const char *fmt, va_list ap)
{
    char text[504];  // with "FAIL: " and the newline: printf's 511 characters
    vformat(text, sizeof(text), fmt, ap);
    printf("%s%s%s\n", word(v), sep, text);
    count(v);
}

unsigned get(const unsigned &n) { return __atomic_load_n(&n, __ATOMIC_RELAXED); }

}  // namespace

void begin(const char *name) { suite_name = name; }

bool check(bool ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    line(ok ? Verdict::PASS : Verdict::FAIL, ": ", fmt, ap);
    va_end(ap);
    return ok;
}

void report(Verdict v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    line(v, " ", fmt, ap);
    va_end(ap);
}

unsigned passed() { return get(n_passed); }
unsigned failed() { return get(n_failed); }
unsigned skipped() { return get(n_skipped); }

u32 summary()
{
    if (skipped())
        printf("%s: %u tests skipped\n", suite_name, skipped());
    unsigned f = failed();
    printf("%u passed, %u failed\n", passed(), f);
    return f ? EXIT_FAIL : EXIT_PASS;
}

u32 finish()
{
    u32 code = summary();
    exit_qemu(code);
    return code;
}

void exit() { nova::exit(finish()); }

}  // namespace nova::test
