/*
 * Typed-item transfer between PDs (ABI 3.2-3.5) and capability lookup
 * (ABI 7.9.1), on top of the mapping database.
 */
#pragma once

#include "abi/crd.hpp"

class Pd;

namespace Delegate {

struct Result
{
    Crd crd;           // result CRD (ABI 3.2)
    u64 meta;          // result metadata word
    bool oom = false;  // nothing delegated: no memory or quota (the receiver's, docs/quota.md)
};

/*
 * One typed item from src to dst: translation (kinds 0 and 2) through the receiver's translate
 * window `xlt`, delegation (kind 1, and kind 2 when translation gave nothing) through its
 * delegate window `del` (ABI 3.3). The H bit makes the kernel the source of a delegation from
 * the root PD; translation always starts at the sender's own node (3.5).
 */
Result item(Pd *src, Pd *dst, Crd send, Item_meta meta, Crd xlt, Crd del);
Crd lookup(Pd *pd, Crd what);

}  // namespace Delegate
