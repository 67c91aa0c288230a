/*
 * Kmem: the kernel's page allocator front end over the buddy allocator.
 */
#include "kmem.hpp"
#include "buddy.hpp"
#include "memory.hpp"
#include "space_obj.hpp"

void Kmem::init()
{
    Buddy::allocator.init(DIRECT_MAP);
    Space_obj::alloc_page = [] { return Kmem::alloc(0, false); };
    Space_obj::free_page = [](void *p) { Kmem::free(p, 0); };
}

bool Kmem::add_free(u64 phys, u64 size) { return Buddy::allocator.add_range(phys, size); }

void *Kmem::alloc(unsigned order, bool zero)
{
    return Buddy::allocator.alloc(order, zero ? Buddy::FILL_0 : Buddy::NOFILL);
}

void Kmem::free(void *p, unsigned order) { Buddy::allocator.free(p, order); }

u64 Kmem::free_pages() { return Buddy::allocator.stats().free_pages; }
