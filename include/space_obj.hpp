/*
 * Object space of a PD: capability selector -> capability (ABI 1.7).
 *
 * 2^26 selectors in a three-level radix table (256 x 512 x 512 entries);
 * tables are allocated on first use and freed when they become empty again,
 * so a PD costs a few pages for the capabilities it holds now, not for every
 * selector it ever used. A slot is one word: object pointer | permission bits
 * (objects are 32-byte aligned). Lookups are lock-free; changes are made by
 * one writer at a time (the kernel: under Mdb::lock). Insert claims a free
 * slot with one compare-and-swap (the last step of publishing a new object,
 * the commit point of create_*: include/create.hpp); a full slot or a lack of
 * memory leaves no trace.
 *
 * A table entry is the table's address | its used-entry count << 1 | PRESENT.
 * Of the tables that become empty the last leaf and the last middle table
 * stay hooked (the next capability there needs no new table); the ones kept
 * before, and with trim() these too, are unhooked and handed to retire_page:
 * another CPU's lookup may still read them, so the kernel frees them after a
 * grace period (src/rcu.cpp). A retired page holds a page-aligned link in
 * its first word, which reads as an empty entry (PRESENT clear) or an empty
 * slot (no rights).
 */
#pragma once

#include "kobject.hpp"
#include "types.hpp"

class Quota;

class Space_obj
{
  public:
    static constexpr u64 SELECTORS = u64{1} << 26;
    enum class Result { OK, OCCUPIED, NO_MEMORY };

    /* Pages for the tables (the kernel's Kmem; host tests plug in their own), charged to and
       refunded to `quota` (docs/quota.md). free_page: a table never seen by a lookup, or all of
       them once the PD is gone; retire_page: a table that became empty (the kernel refunds it
       at once and frees it after a grace period). */
    static void *(*alloc_page)(Quota *);
    static void (*free_page)(void *, Quota *);
    static void (*retire_page)(void *, Quota *);

    Quota *quota = nullptr;  // pays for the tables (the owning PD's quota)

    /* Lock-free: every hypercall starts here, so it is inline and never allocates. */
    Capability lookup(u64 sel) const
    {
        sel %= SELECTORS;
        u64 m = __atomic_load_n(&top[sel >> (LEAF_BITS + MID_BITS)], __ATOMIC_ACQUIRE);
        if (!(m & PRESENT))
            return {};
        u64 l = __atomic_load_n(&table(m)[(sel >> LEAF_BITS) & ((1u << MID_BITS) - 1)], __ATOMIC_ACQUIRE);
        if (!(l & PRESENT))
            return {};
        u64 v = __atomic_load_n(&table(l)[sel & ((1u << LEAF_BITS) - 1)], __ATOMIC_ACQUIRE);
        return Capability{reinterpret_cast<Kobject *>(v & ~PERM_MASK), static_cast<unsigned>(v & PERM_MASK)};
    }
    Result insert(u64 sel, Kobject *obj, unsigned perm);
    /* Clear the slot if it still holds obj; returns the permissions it had (0 if not). */
    unsigned remove(u64 sel, const Kobject *obj);
    /* Reduce a slot's permissions to perm & keep (the object stays); false if obj is not there. */
    bool restrict(u64 sel, const Kobject *obj, unsigned keep);

    /* Next occupied selector in [from, end), or end. Skips unallocated tables in one step. */
    u64 next_used(u64 from, u64 end) const;

    /* Tables in use (kernel statistics, tests). */
    u64 tables() const;

    /* Let the kept empty tables go as well. */
    void trim();

    /* Free every table; the caller has already dropped the capabilities. */
    void release_tables();

  private:
    static constexpr unsigned LEAF_BITS = 9, MID_BITS = 9, TOP_BITS = 8;
    static constexpr u64 PERM_MASK = 0x1f;
    static constexpr u64 PRESENT = 1, COUNT_ONE = 2, COUNT_MASK = 0xffe, ADDR_MASK = ~u64{0xfff};

    static u64 *table(u64 entry) { return reinterpret_cast<u64 *>(entry & ADDR_MASK); }
    static u64 count(u64 entry) { return (entry & COUNT_MASK) / COUNT_ONE; }

    static constexpr u64 NONE = ~u64{0};

    u64 top[1u << TOP_BITS] = {};
    u64 kept_leaf = NONE, kept_mid = NONE;  // the empty tables kept: sel >> 9, sel >> 18

    u64 *slot(u64 sel) const;     // the slot if its tables exist
    u64 *make_slot(u64 sel);      // creating the tables (nullptr: out of memory)
    void filled(u64 sel);         // a slot became non-empty
    void emptied(u64 sel);        // a slot became empty: its tables may go
    void release_leaf(u64 leaf);  // unhook that leaf if it is empty
    void release_mid(u64 mid);    // unhook that middle table if it is empty
};
