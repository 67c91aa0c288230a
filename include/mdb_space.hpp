/*
 * Capability space: the mapping-database nodes of one PD for one type
 * (object, memory or I/O port), indexed by selector (ABI 1.7, 3.1).
 *
 * Nodes are naturally aligned power-of-two selector ranges that never
 * overlap. The index is an AVL tree keyed by base: O(log n) to find the
 * node covering a selector and to step to the next node of a range, the
 * same for 2^26 order-0 object capabilities as for a handful of huge memory
 * ranges (docs/mdb.md says why not a radix table). Not locked itself:
 * callers hold Mdb::lock.
 */
#pragma once

#include "abi/crd.hpp"
#include "mdb.hpp"
#include "types.hpp"

class Mdb_space
{
  public:
    static constexpr unsigned OBJ_BITS = 26, MEM_BITS = 52, PIO_BITS = 16;

    constexpr explicit Mdb_space(Crd::Type t, void *owner = nullptr)
        : kind(t), pd(owner), sel_bits(t == Crd::OBJ   ? OBJ_BITS
                                       : t == Crd::PIO ? PIO_BITS
                                                       : MEM_BITS)
    {
    }
    Mdb_space(const Mdb_space &) = delete;
    Mdb_space &operator=(const Mdb_space &) = delete;

    Crd::Type type() const { return kind; }
    void *owner() const { return pd; }          // the kernel's PD; opaque here
    unsigned bits() const { return sel_bits; }  // selectors are [0, 2^bits)
    u64 count() const { return nodes; }
    bool empty() const { return !root; }

    /* The node covering sel (object selectors wrap modulo 2^26), or nullptr. */
    Mdb_node *lookup(u64 sel) const;
    /* The node covering sel, else the first node above it, else nullptr. */
    Mdb_node *next(u64 sel) const;
    /* No node intersects [base, base + 2^order). */
    bool free(u64 base, unsigned order) const;

    /*
     * Turn the range (base, order) into the part of this space it denotes: the
     * base is aligned down, object selectors are reduced modulo 2^26, memory and
     * I/O ranges are cut at 2^bits. False if nothing is left.
     */
    bool clip(u64 &base, unsigned &order) const;

    /* Add a node; false (nothing changed) if it would overlap one ("overmap"). */
    bool insert(Mdb_node *n);
    void remove(Mdb_node *n);

  private:
    static constexpr unsigned MAX_HEIGHT = 96;  // AVL height < 1.45 log2(n + 2): ample for 2^64 nodes

    const Crd::Type kind;
    void *const pd;
    const unsigned sel_bits;
    Mdb_node *root = nullptr;
    u64 nodes = 0;

    static Mdb_node *balance(Mdb_node *n);
    static void rebalance(Mdb_node **path[], unsigned depth);
    static Mdb_node *rotate(Mdb_node *n, unsigned dir);
};
