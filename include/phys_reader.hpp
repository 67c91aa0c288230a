/*
 * Read access to physical memory for parsers that must not trust what they
 * read (multiboot data, ACPI tables). The kernel backs it with its direct
 * map; host tests back it with a buffer. map() returns nullptr when the range
 * is not accessible (beyond mapped memory, wraps around), and parsers treat
 * that as "malformed input", never as a reason to crash.
 */
#pragma once

#include "types.hpp"

struct Phys_reader
{
    const void *(*fn)(void *ctx, u64 phys, u64 len);
    void *ctx;

    const void *map(u64 phys, u64 len) const
    {
        if (len == 0 || phys + len < phys)
            return nullptr;
        return fn(ctx, phys, len);
    }

    template <typename T> const T *get(u64 phys) const
    {
        return static_cast<const T *>(map(phys, sizeof(T)));
    }
};
