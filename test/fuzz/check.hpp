/*
 * The fuzz targets' one assertion: a property that does not hold stops the run like a crash
 * (libFuzzer saves the input), in any build of the harness.
 */
#pragma once

inline void check(bool ok)
{
    if (!ok)
        __builtin_trap();
}
