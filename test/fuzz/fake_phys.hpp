/*
 * Fake physical memory for the fuzzers: the input bytes at [base, base + size). Every map()
 * hands out a fresh exact-size heap copy, so ASan reports a read past what the parser mapped.
 * With one_window, only the last mapping stays alive (ACPI's contract: no pointer is used after
 * the next map()), so a stale pointer is a use-after-free.
 */
#pragma once

#include <cstring>
#include <memory>
#include <vector>

#include "phys_reader.hpp"

struct Fake_phys
{
    u64 base;
    const u8 *mem;
    size_t size;
    bool one_window;
    std::vector<std::unique_ptr<u8[]>> maps;

    static const void *map_fn(void *ctx, u64 phys, u64 len)
    {
        auto *f = static_cast<Fake_phys *>(ctx);
        if (phys < f->base || phys - f->base > f->size || len > f->size - (phys - f->base) ||
            len > (64u << 20))
            return nullptr;
        if (f->one_window)
            f->maps.clear();
        f->maps.emplace_back(new u8[len]);
        std::memcpy(f->maps.back().get(), f->mem + (phys - f->base), len);
        return f->maps.back().get();
    }

    Phys_reader reader() { return {map_fn, this}; }
};
