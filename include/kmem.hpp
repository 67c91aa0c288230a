/*
 * Kernel memory front end: physical frames from the buddy allocator, seen
 * through the direct map. Every function returns nullptr on exhaustion; the
 * kernel never panics because memory ran out after boot.
 */
#pragma once

#include "types.hpp"

namespace Kmem {
/* Hand the free RAM ranges (after the memory-map sanitiser) to the allocator. */
void init();
bool add_free(u64 phys, u64 size);
void *alloc(unsigned order, bool zero = true);
void free(void *p, unsigned order);
inline void *alloc_page() { return alloc(0); }
u64 free_pages();
}  // namespace Kmem
