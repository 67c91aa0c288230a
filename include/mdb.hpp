/*
 * Mapping database: the derivation tree of capability ranges (ABI 3.4, 3.5, 7.8).
 *
 * Every capability range a PD holds is one Mdb_node in one Mdb_space. A node
 * delegated from another is that node's child; rights only shrink down the
 * tree (child = parent AND item AND window rights), so revoking rights from a
 * node and its whole subtree keeps the invariant, and a node left without
 * rights takes its subtree with it. All walks are iterative (no recursion
 * on the derivation tree: a 100000-deep chain costs no stack).
 *
 * The kernel plugs in a node allocator and an observer that mirrors changes
 * into page tables, I/O bitmaps and object slots; it must not call back into
 * Mdb from the observer (Mdb::lock is held). docs/mdb.md has the details.
 */
#pragma once

#include "abi/crd.hpp"
#include "spinlock.hpp"
#include "types.hpp"

class Mdb_space;
class Kobject;

struct Mdb_node
{
    Mdb_space *space = nullptr;  // owner: one PD, one type
    Mdb_node *parent = nullptr;  // the node this was delegated from; nullptr for a root
    Mdb_node *child = nullptr;   // first child
    Mdb_node *prev = nullptr;    // siblings
    Mdb_node *next = nullptr;
    Mdb_node *link[2] = {};  // Mdb_space index (AVL)
    u64 base = 0;            // first selector (page, port or capability), aligned to 2^order
    u64 payload = 0;         // memory: physical page of base; I/O: = base; object: Kobject *
    u8 order = 0;
    u8 rights = 0;  // never 0 in a live node
    u8 height = 0;  // AVL

    u64 size() const { return u64{1} << order; }
    u64 end() const { return base + size(); }
    bool contains(u64 sel) const { return sel - base < size(); }
    Kobject *object() const { return reinterpret_cast<Kobject *>(payload); }
};

static_assert(sizeof(Mdb_node) <= 80, "one capability costs one node: keep it small");

/* What the kernel does when nodes come and go. Default: nothing. */
class Mdb_observer
{
  public:
    enum class Skip : u8 { OVERMAP, NO_RIGHTS };

    /*
     * A new node (root or delegated) with its rights. Return false if it could not be
     * reflected (out of memory, having undone any partial work): the operation then
     * withdraws everything it did and fails with OOM.
     */
    virtual bool mapped(Mdb_node &) { return true; }
    /* `removed` rights were taken from the node; its rights field holds the rest (0: freed next). */
    virtual void demoted(Mdb_node &, unsigned) {}
    /* A piece [base, base + 2^order) of dst was not delegated. */
    virtual void skipped(Mdb_space &, u64, unsigned, Skip) {}

  protected:
    ~Mdb_observer() = default;
};

class Mdb
{
  public:
    enum class Status : u8 { OK, OCCUPIED, OOM, BAD_PARAM };

    struct Result
    {
        Status status;
        Crd crd;  // delegation result CRD (ABI 3.2)
    };

    /* Node memory: blocks of sizeof(Mdb_node); alloc returns nullptr when out of memory. */
    static void *(*alloc_node)();
    static void (*free_node)(void *);
    /* One lock for the whole database: a revoke crosses the spaces of many PDs. */
    static Spinlock lock;

    /*
     * A node without parent (create_*, the kernel's own resources, map_access_page).
     * BAD_PARAM: rights 0, misaligned or outside the space, object order != 0.
     * OCCUPIED: overlaps a node (maps to BAD_CAP). OOM: nothing changed.
     */
    static Status insert_root(Mdb_space &s, u64 base, unsigned order, unsigned rights, u64 payload,
                              Mdb_observer *obs = nullptr);
    /* [first, first + count) as the fewest aligned roots (payload advances along); stops at an error. */
    static Status insert_roots(Mdb_space &s, u64 first, u64 count, unsigned rights, u64 payload,
                               Mdb_observer *obs = nullptr);

    /* pd_ctrl lookup (ABI 7.9.1): (type, node base, node order, node rights) or the null CRD. */
    static Crd lookup(Mdb_space &s, u64 sel);

    /*
     * One delegation item (ABI 3.4) from src to dst (spaces of the send CRD's type, else
     * BAD_PARAM). OK also when parts were skipped; OOM: the database is exactly as before.
     */
    static Result delegate(Mdb_space &src, Crd send, Mdb_space &dst, Crd window, u64 hotspot,
                           Mdb_observer *obs = nullptr);

    /* One translation item (ABI 3.5); never changes anything. */
    static Crd translate(Mdb_space &snd, Crd item, Mdb_space &rcv, Crd window);

    /* revoke (ABI 7.8) of the range and rights of crd in s; a CRD of another type does nothing. */
    static void revoke(Mdb_space &s, Crd crd, bool self, Mdb_observer *obs = nullptr);
    static void revoke(Mdb_space &s, u64 base, unsigned order, unsigned rights, bool self,
                       Mdb_observer *obs = nullptr);

    /* Free every node of s and everything derived from them (the PD dies). */
    static void destroy(Mdb_space &s, Mdb_observer *obs = nullptr);

    /* Remove the order-0 root node at base with this payload, and what was derived from it;
       false if there is no such node (it was revoked or replaced meanwhile). */
    static bool remove_root(Mdb_space &s, u64 base, u64 payload, Mdb_observer *obs = nullptr);

  private:
    static Status insert_root_locked(Mdb_space &s, u64 base, unsigned order, unsigned rights, u64 payload,
                                     Mdb_observer *obs);
    static Status transfer_one(Mdb_node *n, u64 sb, unsigned so, Mdb_space &dst, u64 db, unsigned a,
                               Mdb_observer *obs);
    static Status transfer(Mdb_space &src, u64 sb, Mdb_space &dst, u64 rb, unsigned order, unsigned rights,
                           Mdb_observer *obs);
    static void demote(Mdb_node *top, unsigned rights, Mdb_observer *obs);
    static void free_subtree(Mdb_node *top, Mdb_observer *obs);
    static void unlink(Mdb_node *n);
};
