/*
 * Kmem_stats: a snapshot of the physical frame allocator's accounting.
 *
 * Leak tests take one before and one after a workload and compare them with ==:
 * equal free pages and equal per-order free block counts mean every page came
 * back and coalesced into the same maximal blocks.
 */
#pragma once

#include "types.hpp"

constexpr unsigned KMEM_ORDERS = 19;  // block orders 0..18: 4 KiB .. 1 GiB

struct Kmem_stats
{
    u64 managed_pages = 0;  // pages owned by the allocator (free + allocated)
    u64 free_pages = 0;
    u64 used_pages = 0;                 // managed_pages - free_pages
    u64 meta_pages = 0;                 // pages taken from the ranges for the allocator's own metadata
    u64 free_blocks[KMEM_ORDERS] = {};  // free blocks per order

    bool operator==(const Kmem_stats &) const = default;
};
