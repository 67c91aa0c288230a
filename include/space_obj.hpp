/*
 * Object space of a PD: capability selector -> capability (ABI 1.7).
 *
 * 2^26 selectors in a three-level radix table (256 x 512 x 512 entries);
 * tables are allocated on first use, so a PD with a handful of capabilities
 * costs a few pages. A slot is one word: object pointer | permission bits
 * (objects are 32-byte aligned). Lookups are lock-free; insert claims a free
 * slot with one compare-and-swap (the last step of publishing a new object,
 * the commit point of create_*: include/create.hpp); a lost race or a full
 * slot leaves no trace.
 */
#pragma once

#include "kobject.hpp"
#include "types.hpp"

class Space_obj
{
  public:
    static constexpr u64 SELECTORS = u64{1} << 26;
    enum class Result { OK, OCCUPIED, NO_MEMORY };

    /* Page allocator for the tables (the kernel's Kmem; host tests plug in their own). */
    static void *(*alloc_page)();
    static void (*free_page)(void *);

    /* Lock-free: every hypercall starts here, so it is inline and never allocates. */
    Capability lookup(u64 sel) const
    {
        sel %= SELECTORS;
        u64 **m = __atomic_load_n(&top[sel >> (LEAF_BITS + MID_BITS)], __ATOMIC_ACQUIRE);
        if (!m)
            return {};
        u64 *l = __atomic_load_n(&m[(sel >> LEAF_BITS) & ((1u << MID_BITS) - 1)], __ATOMIC_ACQUIRE);
        if (!l)
            return {};
        u64 v = __atomic_load_n(&l[sel & ((1u << LEAF_BITS) - 1)], __ATOMIC_ACQUIRE);
        return Capability{reinterpret_cast<Kobject *>(v & ~PERM_MASK), static_cast<unsigned>(v & PERM_MASK)};
    }
    Result insert(u64 sel, Kobject *obj, unsigned perm);
    /* Clear the slot if it still holds obj; returns the permissions it had (0 if not). */
    unsigned remove(u64 sel, const Kobject *obj);
    /* Reduce a slot's permissions to perm & keep (the object stays); false if obj is not there. */
    bool restrict(u64 sel, const Kobject *obj, unsigned keep);

    /* Next occupied selector in [from, end), or end. Skips unallocated tables in one step. */
    u64 next_used(u64 from, u64 end) const;

    /* Free every table; the caller has already dropped the capabilities. */
    void release_tables();

  private:
    static constexpr unsigned LEAF_BITS = 9, MID_BITS = 9, TOP_BITS = 8;
    static constexpr u64 PERM_MASK = 0x1f;

    u64 **top[1u << TOP_BITS] = {};

    u64 *slot(u64 sel, bool create);
};
