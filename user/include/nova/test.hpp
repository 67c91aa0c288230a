/*
 * Test reporting for the user-mode suites (user/lib/test.cpp): one line per
 * test, counting, the closing summary and the isa-debug-exit code that the
 * QEMU runner (test/qemu/runner.py) waits for.
 *
 *   PASS: <text>          check(true, ...)
 *   FAIL: <text>          check(false, ...)
 *   PASS <text>           report(Verdict::PASS, ...), for suites whose tests have ids
 *   FAIL <text>           (the conformance suite: "PASS <id> <description>")
 *   SKIP <text>           report(Verdict::SKIP, ...): counted apart, neither passed nor failed
 *   <name>: K tests skipped   from summary(), only when tests were skipped
 *   N passed, M failed        from summary(): the last line
 *
 * Each line goes out with one printf call, so it stays whole between the
 * kernel's lines. The counters are atomic: any EC of the program may report.
 */
#pragma once

#include "types.hpp"

namespace nova::test {

enum class Verdict : u8 { PASS, FAIL, SKIP };

// The suite's name, used in the library's own notes ("<name>: 4 tests skipped"); default "test".
void begin(const char *name);

// One check: prints "PASS: <text>" or "FAIL: <text>" and counts it. Returns ok.
bool check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// One test with its verdict: prints "PASS <text>", "FAIL <text>" or "SKIP <text>" and counts it.
void report(Verdict v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

unsigned passed();
unsigned failed();
unsigned skipped();

// Print the skip note (if any) and "N passed, M failed"; returns the exit code that goes with it:
// EXIT_PASS when nothing failed, else EXIT_FAIL.
u32 summary();

// summary(), then leave QEMU through isa-debug-exit with its code. Returns the code when QEMU
// could not be left (no port from the kernel, no isa-debug-exit device).
u32 finish();

// finish(), and if QEMU is still running, nova::exit(): park the calling EC for good.
[[noreturn]] void exit();

}  // namespace nova::test
