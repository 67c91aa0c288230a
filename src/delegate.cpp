/*
 * Typed-item transfer and lookup (see include/delegate.hpp): the mapping
 * database does the work (src/mdb.cpp), src/mapping.cpp mirrors it into
 * object spaces, page tables and I/O bitmaps.
 */
#include "delegate.hpp"
#include "mapping.hpp"
#include "objects.hpp"

Delegate::Result Delegate::item(Pd *src, Pd *dst, Crd send, Item_meta meta, Crd xlt, Crd del)
{
    Result res{Crd(), meta.value() & 0xfff};
    if (meta.kind() == Item_meta::INVALID || send.is_null())
        return res;

    if (meta.kind() != Item_meta::DELEGATE) {
        res.crd = Mapping::translate(src, send, dst, xlt);
        if (meta.kind() == Item_meta::TRANSLATE || !res.crd.is_null())
            return res;
        res.meta |= 1;  // translate-or-delegate fell back to delegation
    }
    // The H bit takes the kernel as source, for the root PD only (ABI 3.2, 9.6).
    Pd *from = meta.kernel() && src->privileged ? Pd::kernel : src;
    // G: memory also enters the receiver's guest-physical space (its vCPUs' nested page table);
    // D: memory also enters its DMA space (the devices assigned to it, src/dmar.cpp).
    u8 attr = static_cast<u8>((meta.guest() ? Mdb_node::GUEST : 0) |
                              (meta.dma() && send.type() == Crd::MEM ? Mdb_node::DMA : 0));
    auto r = Mapping::delegate(from, send, dst, del, meta.hotspot(), attr);
    if (r.status == Mdb::Status::OK)
        res.crd = r.crd;
    res.oom = r.status == Mdb::Status::OOM;
    Mapping::preemption_point();  // a message may carry 254 items: interrupts between them
    return res;
}

Crd Delegate::lookup(Pd *pd, Crd what)
{
    if (what.is_null())
        return Crd();
    return Mapping::lookup(pd, what.type(), what.base());
}
