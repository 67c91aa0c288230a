/*
 * Buddy: the physical frame allocator.
 *
 * Design:
 * - Memory is handed over as ranges (add_range). Each range becomes a Region that
 *   owns one state byte per frame, carved from the start of the range itself
 *   (1 byte per 4 KiB = 0.025 % plus at most one page of rounding per range).
 *   Holes between ranges cost nothing, however large.
 * - A frame's state byte is non-zero only for the first frame of a block:
 *   FREE|order or USED|order. Coalescing asks the buddy's byte, never the
 *   contents of the buddy block (freed pages may have been user pages, so
 *   their contents prove nothing). free() accepts only a USED head of exactly
 *   the given order, so double frees and foreign pointers are reported, not
 *   followed. Blocks never coalesce across regions: callers should merge
 *   adjacent ranges before adding them.
 * - Free lists are doubly linked through the free blocks (via the direct map,
 *   virt = phys + offset) so a free buddy is unlinked in O(1).
 * - Out of memory returns nullptr (the first time with a diag line); nothing here panics. One spinlock guards
 *   everything; the allocator is not for use from interrupt handlers.
 */
#pragma once

#include "kmem_stats.hpp"
#include "spinlock.hpp"
#include "types.hpp"

class Buddy
{
  public:
    static constexpr unsigned MAX_ORDER = KMEM_ORDERS - 1;  // 1 GiB blocks
    static constexpr unsigned MAX_REGIONS = 128;

    enum Fill { NOFILL, FILL_0, FILL_1 };

    static Buddy allocator;  // the kernel's instance

    // Set the direct-map offset (virt = phys + offset) and forget all ranges.
    void init(u64 virt_offset);

    // Give a free physical range to the allocator; it is trimmed to whole pages.
    bool add_range(u64 phys, u64 size);

    // A block of PAGE_SIZE << order bytes, naturally aligned in physical memory.
    void *alloc(unsigned order, Fill fill = NOFILL);

    // Return a block; false (with a diag line) if p is not an allocated block of that order.
    bool free(void *p, unsigned order);

    // Whether p is the start of an allocated block of exactly that order.
    bool allocated(const void *p, unsigned order) const;

    u64 virt_to_phys(const void *p) const { return reinterpret_cast<u64>(p) - offset; }
    void *phys_to_virt(u64 phys) const { return reinterpret_cast<void *>(phys + offset); }

    Kmem_stats stats() const;

  private:
    static constexpr u8 FREE = 0x80;
    static constexpr u8 USED = 0x40;

    struct Region
    {
        u64 base;    // first frame number
        u64 frames;  // frames covered by meta, including the metadata pages
        u8 *meta;    // state byte per frame
    };

    struct Block
    {
        Block *next;
        Block *prev;
    };

    u64 offset = 0;
    unsigned nregions = 0;
    Region regions[MAX_REGIONS] = {};
    Block *heads[KMEM_ORDERS] = {};
    Kmem_stats st;
    bool exhausted_reported = false;  // the first failed alloc() is reported, later ones not
    mutable Spinlock lock;

    int find(u64 frame) const;  // region index or -1
    bool insert_region(const Region &r);
    void push(Region &r, u64 frame, unsigned order);
    void unlink(u64 frame, unsigned order);
    void release(Region &r, u64 frame, unsigned order);
    Block *block(u64 frame) const { return static_cast<Block *>(phys_to_virt(frame << PAGE_BITS)); }
};
