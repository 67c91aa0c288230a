/*
 * The kernel's mapping-database operations in terms of PDs (src/mapping.cpp): every Mdb
 * operation of the kernel goes through one of these, which mirror node changes into the PD's
 * object space, page table and I/O bitmap and finish the deferred work (PD death, UTCB unmaps,
 * TLB shootdown) before they return.
 */
#pragma once

#include "abi/crd.hpp"
#include "abi/hypercall.hpp"
#include "cpu.hpp"
#include "mdb.hpp"

class Pd;
class Kobject;
class Ec;

namespace Mapping {
void init();

/*
 * Units of work (Mdb::walk: a node visited, a memory node's unmap per 512 pages) one piece of a
 * long operation may do with interrupts off and Mdb::lock held: a revoke hypercall does this much
 * and is executed again for the next piece; the deferred teardown (PDs to empty, UTCBs to remove)
 * does this much per kernel operation or safe point. docs/mdb.md, "Preemption".
 */
constexpr u64 PIECE = 256;

/* A revoke hypercall in progress (ABI 7.8), kept in its EC between the pieces. */
struct Revoke_state
{
    Mdb_walk walk;
    u64 pd = 0;   // Pd::id of the PD it works on (ids are never reused)
    u64 crd = 0;  // the CRD and flag of the hypercall
    bool self = false;
    bool busy = false;  // begun; the walk may be done while PDs it made die are emptied
};

/* Every Mdb operation of the kernel goes through one of these; they finish the deferred work. */
Mdb::Status insert_root(Pd *pd, Crd::Type t, u64 base, unsigned order, unsigned rights, u64 payload);
/*
 * map_access_page (ABI 7.9.2): the PD's APIC-access page as a root node at `page` of its memory
 * space (host mapping like any node) and in its guest page table (not in the database: it stays
 * until the PD goes or a G-bit mapping replaces it).
 */
Mdb::Status map_access_page(Pd *pd, u64 page);
Mdb::Status insert_roots(Pd *pd, Crd::Type t, u64 first, u64 count, unsigned rights, u64 payload);
Mdb::Result delegate(Pd *src, Crd send, Pd *dst, Crd window, u64 hotspot, u8 attr = 0);
Crd translate(Pd *src, Crd item, Pd *dst, Crd window);
Crd lookup(Pd *pd, Crd::Type t, u64 sel);
/*
 * One piece of the revoke hypercall of `ec` (ABI 7.8) on pd's space: true when it is complete
 * (every derived mapping gone, TLBs shot down, the PDs whose last capability went emptied);
 * false when the hypercall has to be executed again to continue where this piece stopped.
 */
bool revoke(Ec *ec, Pd *pd, Crd crd, bool self);
/* The EC goes (after its grace period): drop its unfinished revoke. */
void forget(Ec *ec);
void destroy(Pd *pd);
bool free(Pd *pd, Crd::Type t, u64 base, unsigned order);
/* The empty tables the PD keeps for reuse (a few: include/paging.hpp, include/space_obj.hpp) go too. */
void trim(Pd *pd);

/*
 * Between two typed items of a message: answer a waiting shootdown and open a short interrupt
 * window, so that a call with 254 items does not keep interrupts off from start to end.
 */
void preemption_point();

/*
 * A retired EC's UTCB leaves its PD's memory space (with anything derived from it). Callable
 * with Mdb::lock held: the work happens in pieces in the next Mdb operations and Rcu::poll()s;
 * once the node is gone and every TLB flushed, the EC is deferred (Rcu::defer): its grace period
 * starts only then, so the UTCB page is never freed while mapped.
 */
void unmap_utcb(Ec *ec);
/* One piece of the deferred teardown; true when no UTCB is left to remove. */
bool settle();

/* Mapping-database nodes allocated; PDs and UTCBs waiting for their teardown (kernel statistics). */
u64 nodes_in_use();
u64 pending();
/* The kernel census (kstat, docs/debugging.md): node count and slab pages (added to k's), and
   every allocated node, with the node cache locked (fn must not allocate or free nodes). */
void node_census(Kstat_census &k);
void for_each_node(void (*fn)(const Mdb_node &, void *), void *arg);

}  // namespace Mapping
