/*
 * Kmem: the kernel's page allocator front end over the buddy allocator.
 */
#include "kmem.hpp"
#include "buddy.hpp"
#include "memory.hpp"
#include "quota.hpp"
#include "space_obj.hpp"

void Kmem::init()
{
    Buddy::allocator.init(DIRECT_MAP);
    Space_obj::alloc_page = [](Quota *q) { return Kmem::alloc(0, false, q); };
    Space_obj::free_page = [](void *p, Quota *q) { Kmem::free(p, 0, q); };
}

bool Kmem::add_free(u64 phys, u64 size) { return Buddy::allocator.add_range(phys, size); }

void *Kmem::alloc(unsigned order, bool zero, Quota *q)
{
    if (!Quota::charge(q, PAGE_SIZE << order))
        return nullptr;
    void *p = Buddy::allocator.alloc(order, zero ? Buddy::FILL_0 : Buddy::NOFILL);
    if (!p)
        Quota::refund(q, PAGE_SIZE << order);
    return p;
}

void Kmem::free(void *p, unsigned order, Quota *q)
{
    if (Buddy::allocator.free(p, order))
        Quota::refund(q, PAGE_SIZE << order);
}

u64 Kmem::free_pages() { return Buddy::allocator.stats().free_pages; }
