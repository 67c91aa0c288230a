/*
 * Physical memory map sanitiser.
 *
 * Input: the loader's ranges (untrusted: may be empty, wrap around, overlap,
 * be misaligned) and the ranges the kernel must never hand out (its image,
 * modules, loader data, ACPI tables, the first MiB ...). Output: the sorted,
 * non-overlapping, page-aligned free RAM ranges. Fixed capacities, no heap.
 */
#pragma once

#include "types.hpp"

struct Mem_range
{
    u64 base, size;
    u32 type;
};

// Multiboot memory types (also HIP memory descriptor types 1..5).
enum Mem_type : u32 {
    MEM_AVAILABLE = 1,
    MEM_RESERVED = 2,
    MEM_ACPI_RECLAIM = 3,
    MEM_ACPI_NVS = 4,
    MEM_BAD = 5,
};

class Memmap
{
  public:
    static constexpr u32 MAX_RANGES = 256;    // loader ranges
    static constexpr u32 MAX_RESERVED = 128;  // kernel-reserved ranges
    static constexpr u32 MAX_FREE = MAX_RANGES + MAX_RESERVED;

    // Loader entry; zero-length and wrapping entries are reported and skipped.
    void add_range(u64 base, u64 size, u32 type);

    // Never hand out any page touching [base, base + size); size 0 is a no-op.
    void reserve(u64 base, u64 size);

    // Computes the free list. Returns false (with a diag line) when there is no
    // usable memory or when a range that must be respected had to be dropped.
    bool build();

    u32 free_count() const { return n_free; }
    const Mem_range &free_range(u32 i) const { return free_list[i]; }

    // Whether every page of [base, base + size) is available RAM in the loader's map and of no
    // other type there; reserve() does not count. Valid after a successful build().
    bool is_ram(u64 base, u64 size) const;

    /*
     * Where the kernel's memory goes: a pool of `want` bytes (at least `min`, less only when no
     * free range holds `want`) and right above it, at an `align`-aligned address, the image of
     * `image_size` bytes, all inside one free range and below `limit`. Of the ranges that give
     * the biggest pool the highest is taken. size = 0 when no free range holds min + image.
     * `largest` (the most any range below limit could hold) is filled in either way, for the
     * error message.
     */
    struct Placement
    {
        u64 pool_base, size;  // pool [pool_base, pool_base + size)
        u64 image;            // image [image, image + image_size), image >= pool end
        u64 largest;          // biggest free range below limit (bytes)
    };
    Placement place_kernel(u64 want, u64 min, u64 image_size, u64 align, u64 limit) const;

    u64 bytes_ram() const { return ram; }                    // union of available loader ranges
    u64 bytes_free() const { return total_free; }            // sum of the free list
    u64 bytes_reserved() const { return ram - total_free; }  // RAM withheld from the free list

  private:
    struct Span
    {
        u64 base, end;  // [base, end)
    };

    Mem_range in[MAX_RANGES];
    Span rsv[MAX_RESERVED];
    Span avail[MAX_RANGES];
    Span blocked[MAX_RANGES + MAX_RESERVED];
    Mem_range free_list[MAX_FREE];

    u32 n_in = 0, n_rsv = 0, n_free = 0, n_avail = 0;
    u32 dropped_available = 0, dropped_restrictive = 0;
    u64 ram = 0, total_free = 0;

    void report_overlaps();
    u32 collect_available();
    u32 collect_blocked();
    void subtract(u32 na, u32 nb);
};
