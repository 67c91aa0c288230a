/*
 * The kernel's mapping-database operations in terms of PDs (src/mapping.cpp): every Mdb
 * operation of the kernel goes through one of these, which mirror node changes into the PD's
 * object space, page table and I/O bitmap and finish the deferred work (PD death, UTCB unmaps,
 * TLB shootdown) before they return.
 */
#pragma once

#include "abi/crd.hpp"
#include "cpu.hpp"
#include "mdb.hpp"

class Pd;
class Kobject;
class Ec;

namespace Mapping {
void init();

/* Every Mdb operation of the kernel goes through one of these; they finish the deferred work. */
Mdb::Status insert_root(Pd *pd, Crd::Type t, u64 base, unsigned order, unsigned rights, u64 payload);
Mdb::Status insert_roots(Pd *pd, Crd::Type t, u64 first, u64 count, unsigned rights, u64 payload);
Mdb::Result delegate(Pd *src, Crd send, Pd *dst, Crd window, u64 hotspot);
Crd translate(Pd *src, Crd item, Pd *dst, Crd window);
Crd lookup(Pd *pd, Crd::Type t, u64 sel);
void revoke(Pd *pd, Crd crd, bool self);
void destroy(Pd *pd);
bool free(Pd *pd, Crd::Type t, u64 base, unsigned order);

/*
 * A retired EC's UTCB leaves its PD's memory space (with anything derived from it). Callable
 * with Mdb::lock held: the work happens in the next settle(), which every Mdb operation and
 * every Rcu::poll() runs, so always before the EC is destroyed.
 */
void unmap_utcb(Ec *ec);
void settle();

/* Mapping-database nodes allocated (kernel statistics). */
u64 nodes_in_use();

}  // namespace Mapping
