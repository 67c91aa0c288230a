// host-testable
/*
 * Slab caches for kernel objects; the design is described in include/slab.hpp.
 */
#include "slab.hpp"
#include "diag.hpp"

void Slab_cache::link(Slab *s, Slab *&list)
{
    s->prev = nullptr;
    s->next = list;
    if (list)
        list->prev = s;
    list = s;
}

void Slab_cache::unlink(Slab *s, Slab *&list)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        list = s->next;
    if (s->next)
        s->next->prev = s->prev;
}

Slab_cache::Slab *Slab_cache::grow()
{
    auto *s = static_cast<Slab *>(buddy.alloc(order));
    if (!s)
        return nullptr;
    s->cache = this;
    s->used = 0;
    for (size_t w = 0; w < MAX_OBJS / 64; w++) {
        size_t lo = w * 64;  // mark the bits past per_slab as taken so alloc never finds them
        s->map[w] = per_slab >= lo + 64 ? 0 : per_slab <= lo ? ~u64{0} : ~u64{0} << (per_slab - lo);
    }
    link(s, partial);
    slabs++;
    return s;
}

void *Slab_cache::alloc()
{
    if (!per_slab) {
        diag("slab %s: unusable object size or alignment", cache_name);
        return nullptr;
    }
    Lock_guard g(lock);
    Slab *s = partial ? partial : grow();
    if (!s)
        return nullptr;

    size_t w = 0;
    while (!~s->map[w])  // a partial slab has a clear bit below per_slab
        w++;
    unsigned b = static_cast<unsigned>(__builtin_ctzll(~s->map[w]));
    s->map[w] |= u64{1} << b;
    if (++s->used == per_slab) {
        unlink(s, partial);
        link(s, full);
    }
    in_use++;
    return reinterpret_cast<char *>(s) + first + (w * 64 + b) * size;
}

#if defined(HOST_TEST) || CONFIG_DEBUG
constexpr bool FULL_CHECKS = true;
#else
constexpr bool FULL_CHECKS = false;
#endif

bool Slab_cache::free(void *p)
{
    u64 phys = buddy.virt_to_phys(p);
    auto *s = static_cast<Slab *>(buddy.phys_to_virt(align_down(phys, PAGE_SIZE << order)));

    Lock_guard g(lock);
    // The buddy lookup (is this block allocated at all?) is a bug catcher for debug builds and
    // host tests; release builds trust the header's owner field, which a freed slab clears.
    if (!per_slab || (FULL_CHECKS && !buddy.allocated(s, order)) || s->cache != this) {
        diag("slab %s: free of %p, which is not from this cache", cache_name, p);
        return false;
    }
    u64 off = reinterpret_cast<u64>(p) - reinterpret_cast<u64>(s) - first;
    u64 i = off / size;
    if (off % size || i >= per_slab) {
        diag("slab %s: free of %p, which is not the start of an object", cache_name, p);
        return false;
    }
    u64 bit = u64{1} << (i % 64);
    if (!(s->map[i / 64] & bit)) {
        diag("slab %s: double free of %p", cache_name, p);
        return false;
    }
    s->map[i / 64] &= ~bit;
    in_use--;
    if (s->used-- == per_slab) {  // was full, now partial
        unlink(s, full);
        link(s, partial);
    }
    if (!s->used) {
        unlink(s, partial);
        s->cache = nullptr;
        buddy.free(s, order);
        slabs--;
    }
    return true;
}

Slab_cache::Stats Slab_cache::stats() const
{
    Lock_guard g(lock);
    return Stats{size, per_slab, order, in_use, slabs};
}
