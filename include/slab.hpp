/*
 * Slab_cache: fixed-size kernel objects carved from buddy blocks.
 *
 * Design:
 * - A slab is one buddy block of order 0..3. Its header sits at the start and
 *   holds an allocation bitmap (at most 256 objects), so alloc is a find-first-
 *   zero over four words and a double free is a clear bit, not a corrupted list.
 *   No object memory is ever used for metadata.
 * - Small objects use single pages; objects above ~1/8 page get the smallest
 *   order (up to 3, 32 KiB) that holds 8 of them. Page-sized and larger objects
 *   should come from the Buddy directly.
 * - The slab of an object is found by aligning its physical address down to the
 *   slab size (buddy blocks are naturally aligned). free() checks that this is an
 *   allocated buddy block owned by this cache and that p is an object start;
 *   this catches bugs, it does not defend against forged headers.
 * - Slabs with free objects are on a partial list, full slabs on a full list (only
 *   for_each() walks it: the kernel's object census, docs/debugging.md).
 *   A slab that becomes empty goes straight back to the buddy, so once all objects
 *   are freed the buddy's statistics are exactly as before (leak tests rely on it).
 * - The constructor is constexpr, so static caches need no run-time constructor.
 *   An invalid size or alignment makes every alloc() fail with a diag line.
 * - Out of memory returns nullptr. Each cache has its own lock; lock order is
 *   cache, then buddy.
 */
#pragma once

#include "buddy.hpp"
#include "spinlock.hpp"
#include "types.hpp"

class Slab_cache
{
  public:
    struct Stats
    {
        size_t obj_size;  // size of one object after rounding
        size_t per_slab;  // objects a slab holds
        unsigned order;   // buddy order of a slab
        size_t in_use;    // objects allocated
        size_t slabs;     // slabs held
    };

    static constexpr size_t MIN_SIZE = 16;
    static constexpr size_t MAX_OBJS = 256;
    static constexpr size_t MIN_OBJS = 8;
    static constexpr unsigned MAX_SLAB_ORDER = 3;

    constexpr Slab_cache(const char *name, size_t obj_size, size_t align, Buddy &b = Buddy::allocator)
        : cache_name(name), buddy(b)
    {
        if (!obj_size || obj_size > (PAGE_SIZE << MAX_SLAB_ORDER) || !align || (align & (align - 1)) ||
            align > PAGE_SIZE)
            return;  // per_slab stays 0: the cache is unusable
        size_t a = align < 8 ? 8 : align;
        size = align_up(obj_size < MIN_SIZE ? MIN_SIZE : obj_size, a);
        first = align_up(sizeof(Slab), a);
        while (order < MAX_SLAB_ORDER && capacity(order) < MIN_OBJS)
            order++;
        per_slab = capacity(order);
    }

    Slab_cache(const Slab_cache &) = delete;
    Slab_cache &operator=(const Slab_cache &) = delete;

    void *alloc();
    bool free(void *p);  // false (with a diag line) if p is not a live object of this cache
    Stats stats() const;
    const char *name() const { return cache_name; }
    /* Bytes one object takes (its stride): what a quota is charged for it (docs/quota.md). */
    constexpr size_t object_size() const { return size; }
    /*
     * Call fn(object) for every allocated object, under the cache's lock (fn must not use this
     * cache). For debugging (the kernel's object census), not for hot paths.
     */
    template <typename F> void for_each(F &&fn) const
    {
        Lock_guard g(lock);
        const Slab *lists[] = {partial, full};
        for (const Slab *list : lists)
            for (const Slab *s = list; s; s = s->next)
                for (size_t i = 0; i < per_slab; i++)
                    if (s->map[i / 64] & (u64{1} << (i % 64)))
                        fn(reinterpret_cast<void *>(reinterpret_cast<u64>(s) + first + i * size));
    }

  private:
    struct Slab
    {
        Slab_cache *cache;  // owner, checked on free
        Slab *prev;         // partial list
        Slab *next;
        size_t used;
        u64 map[MAX_OBJS / 64];  // bit set: object allocated (or beyond per_slab)
    };

    const char *cache_name;
    Buddy &buddy;
    size_t size = 0;   // object stride
    size_t first = 0;  // offset of object 0 in a slab
    unsigned order = 0;
    size_t per_slab = 0;
    Slab *partial = nullptr;
    Slab *full = nullptr;
    size_t in_use = 0;
    size_t slabs = 0;
    mutable Spinlock lock;

    constexpr size_t capacity(unsigned o) const
    {
        size_t n = ((PAGE_SIZE << o) - first) / size;
        return n < MAX_OBJS ? n : MAX_OBJS;
    }

    Slab *grow();
    void link(Slab *s, Slab *&list);
    void unlink(Slab *s, Slab *&list);
};
