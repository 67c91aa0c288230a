/*
 * The kernel census: which objects exist, by type and state, and for a leak every object made
 * after a mark with its references and links. Reached through the kstat hypercall (our debugging
 * extension, only with the command-line option `kstat`): Kstat_flag::CENSUS writes the counts
 * into the caller's UTCB, Kstat_flag::DUMP (root PD only) prints the objects on the console.
 * Walks every slab of the object and node caches: for debugging, never on a hot path.
 * docs/debugging.md, "Kernel census".
 */
#pragma once

#include "abi/hypercall.hpp"
#include "types.hpp"

namespace Census {
/* Counts by type and state (Kstat_census). */
Kstat_census count();
/* Print the census line, then every PD, EC, SC, portal, semaphore and mapping-database node
   made at or after serial `since` (a node: its PD's or its object's serial), one line each. */
void dump(u64 since);
}  // namespace Census
