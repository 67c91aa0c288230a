/*
 * Kernel memory front end: physical frames from the buddy allocator, seen
 * through the direct map. Every function returns nullptr on exhaustion; the
 * kernel never panics because memory ran out after boot.
 *
 * Quotas (docs/quota.md): an allocation made for a PD names the quota that pays for it
 * (Quota *, nullptr: the kernel's own memory, charged to no one). alloc() charges the block's
 * bytes first and fails (nullptr) when they do not fit the quota, as when the pool is empty;
 * free() must name the same quota, and refunds it.
 */
#pragma once

#include "types.hpp"

class Quota;

namespace Kmem {
/* Hand the free RAM ranges (after the memory-map sanitiser) to the allocator. */
void init();
bool add_free(u64 phys, u64 size);
void *alloc(unsigned order, bool zero = true, Quota *q = nullptr);
void free(void *p, unsigned order, Quota *q = nullptr);
inline void *alloc_page(Quota *q = nullptr) { return alloc(0, true, q); }
u64 free_pages();
}  // namespace Kmem
