/*
 * Mapping database: the derivation tree of capability ranges (ABI 3.4, 3.5, 7.8).
 *
 * Every capability range a PD holds is one Mdb_node in one Mdb_space. A node
 * delegated from another is that node's child; rights only shrink down the
 * tree (child = parent AND item AND window rights), so revoking rights from a
 * node and its whole subtree keeps the invariant, and a node left without
 * rights takes its subtree with it. All walks are iterative (no recursion
 * on the derivation tree: a 100000-deep chain costs no stack), and a
 * revocation is a resumable walk (Mdb_walk): the kernel runs it in bounded
 * pieces and lets others take the lock in between.
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
    Mdb_node *child = nullptr;   // first child (the oldest: new children are appended)
    Mdb_node *prev = nullptr;    // siblings; the first child's prev is the last child
    Mdb_node *next = nullptr;    // nullptr for the last child
    Mdb_node *link[2] = {};      // Mdb_space index (AVL)
    u64 base = 0;                // first selector (page, port or capability), aligned to 2^order
    u64 payload = 0;             // memory: physical page of base; I/O: = base; object: Kobject *
    u8 order = 0;
    u8 rights = 0;  // never 0 in a live node
    u8 attr = 0;    // how the item delegated it: Mdb_node::GUEST, DMA (G and D bits, ABI 3.2)
    u8 height = 0;  // AVL
    u16 pins = 0;   // walks paused here (Mdb_walk); a pinned node that goes is only marked dead

    static constexpr u8 GUEST = 1;  // memory: also in the guest page table; I/O: the guest's ports
    static constexpr u8 DMA = 2;    // memory: also in the DMA page table (the D bit, ABI 3.2)

    u64 size() const { return u64{1} << order; }
    u64 end() const { return base + size(); }
    bool contains(u64 sel) const { return sel - base < size(); }
    Kobject *object() const { return reinterpret_cast<Kobject *>(payload); }
    bool dead() const { return !space; }  // left its space while pinned: freed by the last unpin
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

/*
 * A revocation in progress (ABI 7.8), resumable. Mdb::walk() does a bounded amount of it under
 * Mdb::lock and returns; the next call continues where it stopped although other operations may
 * have changed the database in between (docs/mdb.md, "Preemption"). The walk is post-order:
 * a node loses the rights after its whole subtree did, so at every pause the tree keeps its
 * invariant (no child has a right its parent lacks). Its position is a pinned node; a pinned node
 * is not freed while pinned, only marked dead, and a walk whose node died starts the top-level
 * node it was in again (what was done stays done; the invariant makes the repetition cheap).
 * Fields are the walk's own; only Mdb touches them, under Mdb::lock.
 */
struct Mdb_walk
{
    enum Mode : u8 { ENTER, AFTER, EMPTY, EXHAUSTED };

    Mdb_space *space = nullptr;  // nullptr: no walk (finished, cancelled or never begun)
    u64 base = 0, end = 0;       // the clipped range
    u64 key = 0;                 // nodes of the space below key are done
    u64 top_end = 0;             // end of the top-level node in progress (key after it)
    u64 payload = 0;             // root_only: the payload the root node must have
    Mdb_node *top = nullptr;     // the top-level node in progress (valid while `at` lives)
    Mdb_node *at = nullptr;      // where to continue (pinned); nullptr: at key
    u8 order = 0, rights = 0;
    Mode mode = ENTER;
    bool self = false;
    bool root_only = false;  // remove_root: only an order-0 root node at base with this payload

    bool active() const { return space != nullptr; }
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

    /*
     * Node memory: blocks of sizeof(Mdb_node), paid for by the space the node is made for (the
     * kernel charges its PD's quota, docs/quota.md); alloc returns nullptr when out of memory or
     * quota. free_node(p, s) frees p and refunds s; p nullptr: only the refund (a pinned node
     * leaving its space), s nullptr: only the free (that node's last unpin).
     */
    static void *(*alloc_node)(Mdb_space &s);
    static void (*free_node)(void *p, Mdb_space *s);
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
                           Mdb_observer *obs = nullptr, u8 attr = 0);

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

    /*
     * Resumable forms of revoke, destroy and remove_root (see Mdb_walk). begin only sets w up (an
     * empty range or no rights: w is finished at once). walk() continues w until it is finished
     * (true) or `budget` is used up (false; w holds a pin then): visiting a node costs 1, taking
     * rights from a memory node 1 more per 512 pages (its page-table work); budget is reduced
     * by what was done. cancel() abandons w. Each takes Mdb::lock itself.
     */
    static void walk_begin(Mdb_walk &w, Mdb_space &s, u64 base, unsigned order, unsigned rights, bool self);
    static void walk_begin_root(Mdb_walk &w, Mdb_space &s, u64 base, u64 payload);
    static bool walk(Mdb_walk &w, u64 &budget, Mdb_observer *obs = nullptr);
    static void walk_cancel(Mdb_walk &w);

  private:
    static Status insert_root_locked(Mdb_space &s, u64 base, unsigned order, unsigned rights, u64 payload,
                                     Mdb_observer *obs);
    struct Overmap;  // an item's overmap attempt, printed after the lock is released
    static Status transfer_one(Mdb_node *n, u64 sb, unsigned so, Mdb_space &dst, u64 db, unsigned a,
                               Mdb_observer *obs, Overmap &om);
    static Status transfer(Mdb_space &src, u64 sb, Mdb_space &dst, u64 rb, unsigned order, unsigned rights,
                           Mdb_observer *obs, Overmap &om);
    static bool walk_locked(Mdb_walk &w, u64 &budget, Mdb_observer *obs);
    static void pause(Mdb_walk &w, Mdb_node *x, Mdb_walk::Mode mode);
    static bool unpin(Mdb_node *n);
    static void unlink(Mdb_node *n);
    static void release(Mdb_node *n);
};
