/*
 * Host unit test main and the test-side diag() sink: messages are recorded
 * so tests can check that malformed input was reported.
 */
#include <cstdarg>
#include <cstdio>
#include <gtest/gtest.h>
#include <mutex>

#include "diag_capture.hpp"

std::vector<std::string> g_diag_lines;

// diag_user() runs without Mdb::lock (a line is printed after the operation): threads of a test
// may record at the same time.
static void record(const char *fmt, va_list ap)
{
    static std::mutex m;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    std::lock_guard<std::mutex> g(m);
    g_diag_lines.emplace_back(buf);
}

void diag(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record(fmt, ap);
    va_end(ap);
}

// The kernel rate-limits these (src/console.cpp); the tests see every one.
void diag_user(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record(fmt, ap);
    va_end(ap);
}

bool diag_contains(const std::string &needle)
{
    for (auto const &l : g_diag_lines)
        if (l.find(needle) != std::string::npos)
            return true;
    return false;
}

int main(int argc, char **argv)
{
    testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
