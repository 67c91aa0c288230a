// host-testable
/*
 * ABI 3.4 steps 1-4: the receive range of one typed item.
 */
#include "delegate.hpp"

Delegate::Plan Delegate::plan(Crd send, Crd win, u64 h)
{
    Plan p{false, 0, 0, 0, 0};
    if (send.is_null() || send.type() != win.type() || !(send.rights() & win.rights()))
        return p;
    p.rights = send.rights() & win.rights();
    unsigned so = send.order(), ro = win.order();
    u64 s = (u64{1} << so) - 1, r = (u64{1} << ro) - 1;
    u64 sb = send.base() & ~s, rb = win.base() & ~r;

    if (send.type() == Crd::PIO) {
        unsigned mo = so > ro ? so : ro;
        if ((sb ^ rb) >> mo)
            return p;          // no overlap: nothing (the reference leaves this undefined)
        p.order = so < ro ? so : ro;
        p.dst = p.src = align_down(rb | sb, u64{1} << p.order);
        p.ok = true;
        return p;
    }
    if (s < r) {
        rb |= h & r & ~s;
        p.order = so;
    } else {
        sb |= h & s & ~r;
        p.order = ro;
    }
    p.src = sb;
    p.dst = rb;
    p.ok = true;
    return p;
}
