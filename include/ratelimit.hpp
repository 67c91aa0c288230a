/*
 * Token bucket for console lines that user mode can provoke at will (include/diag.hpp
 * diag_user, include/console.hpp trace_user): `burst` lines at once, then one line per
 * `interval` clock ticks. What it refuses the caller counts and reports later ("N lines
 * suppressed"), so that a flood costs the kernel almost nothing and nothing goes unnoticed.
 * Pure logic (host-tested in test/unit/test_ratelimit.cpp); not locked: the caller serialises.
 */
#pragma once

#include "types.hpp"

class Line_limit
{
  public:
    constexpr explicit Line_limit(u64 burst) : tokens(burst), cap(burst) {}

    /* A line at clock `now`: true if it may be printed. `interval` 0: no refill. */
    bool admit(u64 now, u64 interval)
    {
        if (!started) {
            started = true;
            last = now;
        } else if (interval && now > last) {
            u64 n = (now - last) / interval;
            if (n >= cap - tokens) {
                tokens = cap;
                last = now;
            } else {
                tokens += n;
                last += n * interval;
            }
        }
        if (!tokens)
            return false;
        tokens--;
        return true;
    }

  private:
    u64 tokens, cap;
    u64 last = 0;
    bool started = false;
};
