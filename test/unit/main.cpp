/*
 * Host unit test main and the test-side diag() sink: messages are recorded
 * so tests can check that malformed input was reported.
 */
#include <cstdarg>
#include <cstdio>
#include <gtest/gtest.h>

#include "diag_capture.hpp"

std::vector<std::string> g_diag_lines;

void diag(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    g_diag_lines.emplace_back(buf);
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
