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
    Crd crd;   // result CRD (ABI 3.2)
    u64 meta;  // result metadata word
};

Result item(Pd *src, Pd *dst, Crd send, Item_meta meta, Crd window);
Crd lookup(Pd *pd, Crd what);

}  // namespace Delegate
