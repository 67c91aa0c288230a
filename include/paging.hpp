/*
 * 4-level x86-64 page tables. One walker serves the kernel's own tables and
 * every PD's host table: map a range with the largest pages that alignment
 * allows, look up, unmap. Table pages come from Kmem; a failed allocation
 * returns false and leaves what was mapped so far valid.
 *
 * A non-leaf entry counts the present entries of the table it points to in
 * its bits 52-61, which the CPU ignores (Pte::COUNT). map() counts every
 * entry it makes present; unmap() takes them away again, and of the tables
 * that become empty it keeps the last one of each level hooked (Keep: the
 * next mapping there needs no new table) and unhooks the one kept before,
 * handing it to retire_table (the kernel frees it after the TLB shootdown and
 * a grace period); trim() lets the kept ones go too. So an address space has
 * at most six tables more than its mappings need (a kept table of each level
 * and the tables above them). A PD's user half is only
 * changed through these; unmap_range() leaves the counts alone (for tables
 * whose entries were not all made by map(), like the kernel's boot tables).
 */
#pragma once

#include "types.hpp"

class Quota;

namespace Pte {
constexpr u64 P = 1, W = 2, U = 4, PWT = 8, PCD = 16, A = 32, D = 64, PS = 128, G = 256;
constexpr u64 NX = u64{1} << 63;
constexpr u64 ADDR = 0x000ffffffffff000ull;
constexpr unsigned COUNT_SHIFT = 52;
constexpr u64 COUNT = 0x3ffull << COUNT_SHIFT;  // non-leaf entries: present entries below (ignored bits)
}  // namespace Pte

namespace Paging {
/* Map [virt, virt+size) to [phys, ...); large: allow 2 MiB/1 GiB pages. New tables are charged
   to q (include/kmem.hpp; nullptr: the kernel's own). */
bool map(u64 *pml4, u64 virt, u64 phys, u64 size, u64 flags, bool large, Quota *q = nullptr);
/* Remove every mapping in [virt, virt + size), large pages included (they never straddle it). */
void unmap_range(u64 *pml4, u64 virt, u64 size);
/* The empty table kept per level (0: page table, 1: page directory, 2: PDPT), by an address it
   covers; NONE: none. One per address space, changed under the same lock as its tables. */
struct Keep
{
    static constexpr u64 NONE = ~u64{0};
    u64 va[3] = {NONE, NONE, NONE};
    Quota *quota = nullptr;  // the address space's tables are charged to it (retire_table refunds)
};
/* The same as unmap_range, and tables (below the PML4) left empty go as described above; true if
   one was handed to retire_table. */
bool unmap(u64 *pml4, u64 virt, u64 size, Keep &keep);
/* The kept tables that are still empty go too; true if one did. */
bool trim(u64 *pml4, Keep &keep);
extern void (*retire_table)(void *page, Quota *q);  // q: Keep::quota, to refund
/* Set or clear write access in [virt, virt + size). */
void protect(u64 *pml4, u64 virt, u64 size, bool writable);
/* Clear `bits` (access bits: W, or EPT's W and X) in every leaf in [virt, virt + size). */
void clear_leaf_bits(u64 *pml4, u64 virt, u64 size, u64 bits);
/* True if nothing is mapped in [virt, virt + size) (size 2 MiB or 1 GiB, aligned). */
bool range_empty(const u64 *pml4, u64 virt, u64 size);
/* Physical address behind virt, or ~0 if unmapped. */
u64 lookup(const u64 *pml4, u64 virt, u64 *flags = nullptr);

/* The kernel's master table (upper half shared by every address space). */
u64 *kernel_pml4();
void set_kernel_pml4(u64 *p);
extern bool have_1g;
}  // namespace Paging

namespace Mmio {
/* Map device registers uncached into the kernel's MMIO window. */
void *map(u64 phys, u64 size);
}  // namespace Mmio
