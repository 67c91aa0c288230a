/*
 * 4-level x86-64 page tables. One walker serves the kernel's own tables and
 * every PD's host table: map a range with the largest pages that alignment
 * allows, look up, unmap. Table pages come from Kmem; a failed allocation
 * returns false and leaves what was mapped so far valid.
 *
 * A non-leaf entry counts the present entries of the table it points to;
 * where the count lives is a property of the table format (Host: the
 * entry's bits 52-61, which the CPU, EPT and VT-d ignore, Pte::COUNT; Amd:
 * see there). map() counts every
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
/*
 * Table formats: how the walker makes a non-leaf entry, where it keeps the count, which bit
 * grants writes. Both share present = bit 0, the address in bits 51:12 and our large-leaf
 * marker bit 7 (Pte::PS: the CPU's PS; ignored by AMD-Vi, which sees a leaf by Next Level 0).
 * Host: x86-64 4-level paging, SVM nested paging, EPT and VT-d second-level tables.
 */
struct Host
{
    static constexpr u64 W = Pte::W;
    static constexpr u64 ONE = u64{1} << Pte::COUNT_SHIFT;
    // Intermediate entries grant everything; leaves decide. level: of the table it points to.
    static u64 table(u64 phys, unsigned) { return phys | Pte::P | Pte::W | Pte::U; }
    static u64 count(u64 const &e) { return (e & Pte::COUNT) >> Pte::COUNT_SHIFT; }
    static void add(u64 &e, bool up) { e = up ? e + ONE : e - ONE; }
    static void store(u64 &e, u64 v) { e = v; }
};

/*
 * AMD-Vi I/O page tables (IOMMU spec. 48882, "I/O page tables"): PR bit 0, Next Level bits 11:9
 * (0 in a leaf, of any size), IR bit 61 and IW bit 62, checked at every level; bits 60:52 are
 * reserved in a PDE, so the count cannot be there. It is kept in the table it counts instead:
 * bit 63 (ignored in PDEs and PTEs alike, present or not) of its entries 0-9 holds the count's
 * bits 0-9. Every write of an entry keeps the bit 63 it found (store), so a table stays counted
 * while its entries change. A non-present entry with bit 63 set blocks as a zero one does.
 */
struct Amd
{
    static constexpr u64 IR = u64{1} << 61, IW = u64{1} << 62, KEEP = u64{1} << 63;
    static constexpr u64 W = IW;
    static constexpr unsigned NEXT_SHIFT = 9;
    static u64 table(u64 phys, unsigned level) { return phys | Pte::P | IR | IW | u64{level} << NEXT_SHIFT; }
    static u64 count(u64 const &e);
    static void add(u64 &e, bool up);
    static void store(u64 &e, u64 v) { e = v | (e & KEEP); }
};

/* Map [virt, virt+size) to [phys, ...); large: allow 2 MiB/1 GiB pages. New tables are charged
   to q (include/kmem.hpp; nullptr: the kernel's own). */
template <class F = Host>
bool map(u64 *pml4, u64 virt, u64 phys, u64 size, u64 flags, bool large, Quota *q = nullptr);
/* Remove every mapping in [virt, virt + size), large pages included (they never straddle it). */
template <class F = Host> void unmap_range(u64 *pml4, u64 virt, u64 size);
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
template <class F = Host> bool unmap(u64 *pml4, u64 virt, u64 size, Keep &keep);
/* The kept tables that are still empty go too; true if one did. */
template <class F = Host> bool trim(u64 *pml4, Keep &keep);
extern void (*retire_table)(void *page, Quota *q);  // q: Keep::quota, to refund
/* Set or clear write access (F::W) in [virt, virt + size). */
template <class F = Host> void protect(u64 *pml4, u64 virt, u64 size, bool writable);
/* Clear `bits` (access bits: W, or EPT's W and X; any format) in every leaf in [virt, virt + size). */
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
