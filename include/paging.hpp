/*
 * 4-level x86-64 page tables. One walker serves the kernel's own tables and
 * (later) every PD's host table: map a range with the largest pages that
 * alignment allows, look up, unmap. Table pages come from Kmem; a failed
 * allocation returns false and leaves what was mapped so far valid.
 */
#pragma once

#include "types.hpp"

namespace Pte {
constexpr u64 P = 1, W = 2, U = 4, PWT = 8, PCD = 16, A = 32, D = 64, PS = 128, G = 256;
constexpr u64 NX = u64{1} << 63;
constexpr u64 ADDR = 0x000ffffffffff000ull;
}  // namespace Pte

namespace Paging {
/* Map [virt, virt+size) to [phys, ...); large: allow 2 MiB/1 GiB pages. */
bool map(u64 *pml4, u64 virt, u64 phys, u64 size, u64 flags, bool large);
/* Remove every mapping in [virt, virt + size), large pages included (they never straddle it). */
void unmap_range(u64 *pml4, u64 virt, u64 size);
/* Set or clear write access in [virt, virt + size). */
void protect(u64 *pml4, u64 virt, u64 size, bool writable);
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
