/*
 * Typed-item transfer between PDs (ABI 3.2-3.4) and capability lookup
 * (ABI 7.9.1). The receive range is computed per ABI 3.4 (hotspot rule for
 * memory and objects, identity for I/O ports); then every piece the source
 * holds is entered into the destination with rights = source rights AND
 * send rights AND window rights, skipping pieces the destination already has.
 *
 * Until the mapping database lands, delegations are recorded only in the
 * destination's object space, page table and I/O bitmap: they cannot be
 * revoked yet, translation (kind 0) finds nothing, and lookups report
 * order-0 nodes (docs/abi-deviations.md).
 */
#pragma once

#include "abi/crd.hpp"

class Pd;

namespace Delegate {

struct Plan
{
    bool ok;
    u64 src, dst;       // first selector of the source and destination ranges
    unsigned order;
    unsigned rights;    // send rights AND window rights
};

/* ABI 3.4 steps 1-4: which range goes where. Pure arithmetic. */
Plan plan(Crd send, Crd window, u64 hotspot);

struct Result
{
    Crd crd;            // result CRD (ABI 3.2)
    u64 meta;           // result metadata word
};

Result item(Pd *src, Pd *dst, Crd send, Item_meta meta, Crd window);
Crd lookup(const Pd *pd, Crd what);

} // namespace Delegate
