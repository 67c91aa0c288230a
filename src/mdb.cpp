// host-testable
/*
 * Mapping database operations: roots, delegation, translation, revocation
 * (see include/mdb.hpp and docs/mdb.md).
 */
#include "mdb.hpp"
#include "assert.hpp"
#include "diag.hpp"
#include "mdb_space.hpp"

void *(*Mdb::alloc_node)();
void (*Mdb::free_node)(void *);
Spinlock Mdb::lock;

namespace {

constexpr unsigned ALL_RIGHTS = 0x1f;

unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }

/* Two naturally aligned blocks intersect iff one contains the other. */
bool overlap(u64 a, unsigned ao, u64 b, unsigned bo)
{
    unsigned o = max(ao, bo);
    return o > 63 || !((a ^ b) >> o);
}

/* Memory and I/O nodes map their range linearly; an object node is one object. */
u64 payload_at(const Mdb_node *n, u64 sel)
{
    return n->space->type() == Crd::OBJ ? n->payload : n->payload + (sel - n->base);
}

/* The selector of ancestor a from which selector sel of its descendant n derives. */
u64 sel_in(const Mdb_node *a, const Mdb_node *n, u64 sel)
{
    return a->base + (payload_at(n, sel) - a->payload);
}

/* The next node in pre-order after n's subtree, staying inside top's subtree. */
Mdb_node *skip(Mdb_node *n, const Mdb_node *top)
{
    for (; n != top; n = n->parent)
        if (n->next)
            return n->next;
    return nullptr;
}

/* c lies inside the part of parent it derives from: same type, payload within parent's. */
[[maybe_unused]] bool derived(const Mdb_node *parent, const Mdb_node *c)
{
    if (c->space->type() != parent->space->type())
        return false;
    if (c->space->type() == Crd::OBJ)
        return c->payload == parent->payload && !c->order;
    return c->order <= parent->order && c->payload - parent->payload < parent->size() &&
           c->payload - parent->payload + c->size() <= parent->size();
}

void adopt(Mdb_node *parent, Mdb_node *c)
{
    // A new leaf with no right its parent lacks (rights only shrink down the tree).
    assert(Mdb::lock.held());
    assert(!c->parent && !c->child && !c->prev && !c->next);
    assert(c->rights && !(c->rights & ~parent->rights) && parent->rights);
    assert(derived(parent, c));
    c->parent = parent;
    c->prev = nullptr;
    c->next = parent->child;
    if (parent->child)
        parent->child->prev = c;
    parent->child = c;
}

/* The part of source node n inside the aligned range (base, order): aligned blocks nest. */
struct Piece
{
    u64 base;
    unsigned order;
};

Piece piece(const Mdb_node *n, u64 base, unsigned order)
{
    return n->order <= order ? Piece{n->base, n->order} : Piece{base, order};
}

/* ABI 3.4 steps 3-4: source base, receive base and order of an item. */
struct Plan
{
    bool ok;
    u64 sb, rb;
    unsigned order;
};

Plan plan(Crd send, Crd win, u64 h)
{
    unsigned so = send.order(), ro = win.order();
    u64 sb = send.base(), rb = win.base();
    if (send.type() == Crd::PIO) {  // identity: the two ranges must nest
        if ((sb ^ rb) >> max(so, ro))
            return {false, 0, 0, 0};
        rb |= sb;
        return {true, rb, rb, min(so, ro)};
    }
    u64 s = (u64{1} << so) - 1, r = (u64{1} << ro) - 1;
    sb &= ~s;
    rb &= ~r;
    if (s < r)
        return {true, sb, rb | (h & r & ~s), so};
    return {true, sb | (h & s & ~r), rb, ro};
}

const char *type_name(Crd::Type t) { return t == Crd::MEM ? "MEM" : t == Crd::PIO ? "PIO" : "OBJ"; }

}  // namespace

void Mdb::unlink(Mdb_node *n)
{
    // Only leaves go (subtrees are freed leaves first); the sibling list is linked both ways.
    assert(lock.held());
    assert(!n->child);
    assert(n->prev ? n->prev->next == n : !n->parent || n->parent->child == n);
    assert(!n->next || n->next->prev == n);
    if (n->prev)
        n->prev->next = n->next;
    else if (n->parent)
        n->parent->child = n->next;
    if (n->next)
        n->next->prev = n->prev;
    u64 before = n->space->count();
    n->space->remove(n);
    assert(n->space->count() == before - 1);  // it was in its space
}

Mdb::Status Mdb::insert_root_locked(Mdb_space &s, u64 base, unsigned order, unsigned rights, u64 payload,
                                    Mdb_observer *obs)
{
    assert(lock.held());
    rights &= ALL_RIGHTS;
    if (s.type() == Crd::OBJ)
        base &= (u64{1} << Mdb_space::OBJ_BITS) - 1;
    u64 b = base;
    unsigned o = order;
    if (!rights || !s.clip(b, o) || b != base || o != order || (s.type() == Crd::OBJ && order))
        return Status::BAD_PARAM;
    if (!s.free(base, order))
        return Status::OCCUPIED;
    auto *n = static_cast<Mdb_node *>(alloc_node ? alloc_node() : nullptr);
    if (!n)
        return Status::OOM;
    *n = Mdb_node{};
    n->space = &s;
    n->base = base;
    n->order = static_cast<u8>(order);
    n->rights = static_cast<u8>(rights);
    n->payload = s.type() == Crd::PIO ? base : payload;
    bool in = s.insert(n);
    assert(in);  // s.free() said so, under the lock
    if (obs && !obs->mapped(*n)) {
        unlink(n);
        free_node(n);
        return Status::OOM;
    }
    return Status::OK;
}

Mdb::Status Mdb::insert_root(Mdb_space &s, u64 base, unsigned order, unsigned rights, u64 payload,
                             Mdb_observer *obs)
{
    Lock_guard g(lock);
    return insert_root_locked(s, base, order, rights, payload, obs);
}

Mdb::Status Mdb::insert_roots(Mdb_space &s, u64 first, u64 count, unsigned rights, u64 payload,
                              Mdb_observer *obs)
{
    Lock_guard g(lock);
    while (count) {
        unsigned o = 0;
        while (o < 63 && !(first >> o & 1) && (u64{2} << o) <= count)
            o++;
        Status st = insert_root_locked(s, first, o, rights, payload, obs);
        if (st != Status::OK)
            return st;
        first += u64{1} << o;
        payload += u64{1} << o;
        count -= u64{1} << o;
    }
    return Status::OK;
}

Crd Mdb::lookup(Mdb_space &s, u64 sel)
{
    Lock_guard g(lock);
    Mdb_node *n = s.lookup(sel);
    return n ? Crd(s.type(), n->base, n->order, n->rights) : Crd();
}

Mdb::Result Mdb::delegate(Mdb_space &src, Crd send, Mdb_space &dst, Crd win, u64 hotspot, Mdb_observer *obs)
{
    unsigned a = send.rights() & win.rights();
    if (send.is_null() || send.type() != win.type() || !a)
        return {Status::OK, Crd()};
    if (src.type() != send.type() || dst.type() != send.type())
        return {Status::BAD_PARAM, Crd()};
    Plan p = plan(send, win, hotspot);
    if (!p.ok)
        return {Status::OK, Crd()};  // I/O ranges that do not nest: the reference leaves this undefined
    Lock_guard g(lock);
    return {transfer(src, p.sb, dst, p.rb, p.order, a, obs), Crd(send.type(), p.rb, p.order, a)};
}

/*
 * ABI 3.4 step 5: a child in dst for every source node piece in [sb, sb + 2^order).
 * Two passes over the source: the first allocates every node needed, so that running
 * out of memory changes nothing; the second links them in. An observer refusing a
 * node makes the second pass withdraw what it did.
 */
Mdb::Status Mdb::transfer_one(Mdb_node *n, u64 sb, unsigned so, Mdb_space &dst, u64 db, unsigned a,
                              Mdb_observer *obs)
{
    assert(lock.held());
    assert(n->rights && n->base <= sb && sb + (u64{1} << so) <= n->end());  // n covers the range
    auto overmap = [&] {
        Mdb_node *e = dst.lookup(db);
        if (!e || e->parent != n)  // a repeated delegation is not worth a line
            diag("overmap attempt %s - tree - PD:%p->%p SB:%#lx RB:%#lx O:%#lx A:%#lx", type_name(dst.type()),
                 n->space->owner(), dst.owner(), sb, db, static_cast<u64>(so), static_cast<u64>(a));
        if (obs)
            obs->skipped(dst, db, so, Mdb_observer::Skip::OVERMAP);
        return Status::OK;
    };
    if (!(n->rights & a)) {
        if (!dst.free(db, so))  // an overmap is reported first, as below
            return overmap();
        if (obs)
            obs->skipped(dst, db, so, Mdb_observer::Skip::NO_RIGHTS);
        return Status::OK;
    }
    // The insert finds an overlap itself: no separate search for a free range. A range that is
    // taken costs a node allocation, which must then succeed to report the overmap, as a free
    // range needs one anyway.
    auto *x = static_cast<Mdb_node *>(alloc_node ? alloc_node() : nullptr);
    if (!x)
        return dst.free(db, so) ? Status::OOM : overmap();
    *x = Mdb_node{};
    x->space = &dst;
    x->base = db;
    x->order = static_cast<u8>(so);
    x->rights = static_cast<u8>(n->rights & a);
    x->payload = payload_at(n, sb);
    if (!dst.insert(x)) {
        free_node(x);
        return overmap();
    }
    adopt(n, x);
    if (obs && !obs->mapped(*x)) {
        unlink(x);
        free_node(x);
        return Status::OOM;
    }
    return Status::OK;
}

Mdb::Status Mdb::transfer(Mdb_space &src, u64 sb, Mdb_space &dst, u64 rb, unsigned order, unsigned a,
                          Mdb_observer *obs)
{
    assert(lock.held());
    unsigned so = order, ro = order;
    if (!src.clip(sb, so) || !dst.clip(rb, ro) || so != ro)
        return Status::OK;  // the range is beyond the space
    u64 end = sb + (u64{1} << so), delta = rb - sb;

    // The common case: one source node covers the whole range (a page, a capability). One
    // search per space instead of the general two passes below; the same checks in the same
    // order, so the same result.
    if (Mdb_node *n = src.next(sb); n && n->base <= sb && n->end() >= end)
        return transfer_one(n, sb, so, dst, sb + delta, a, obs);

    Mdb_node *spare = nullptr;  // linked through next
    auto release = [&spare] {
        while (Mdb_node *x = spare) {
            spare = x->next;
            free_node(x);
        }
    };
    for (Mdb_node *n = src.next(sb); n && n->base < end; n = src.next(n->end())) {
        Piece p = piece(n, sb, so);
        if (!(n->rights & a) || !dst.free(p.base + delta, p.order))
            continue;
        auto *x = static_cast<Mdb_node *>(alloc_node ? alloc_node() : nullptr);
        if (!x) {
            release();
            return Status::OOM;
        }
        x->next = spare;
        spare = x;
    }

    // New nodes are linked through their child pointer: the range they lie in is disjoint
    // from the source range (or identical, and then nothing is new), so none gets a child here.
    Mdb_node *done = nullptr;
    Status st = Status::OK;
    for (Mdb_node *n = src.next(sb); n && n->base < end; n = src.next(n->end())) {
        Piece p = piece(n, sb, so);
        u64 db = p.base + delta;
        if (!dst.free(db, p.order)) {
            Mdb_node *e = dst.lookup(db);
            if (!e || e->parent != n)  // a repeated delegation is not worth a line
                diag("overmap attempt %s - tree - PD:%p->%p SB:%#lx RB:%#lx O:%#lx A:%#lx",
                     type_name(dst.type()), src.owner(), dst.owner(), sb, rb, static_cast<u64>(so),
                     static_cast<u64>(a));
            if (obs)
                obs->skipped(dst, db, p.order, Mdb_observer::Skip::OVERMAP);
            continue;
        }
        if (!(n->rights & a)) {
            if (obs)
                obs->skipped(dst, db, p.order, Mdb_observer::Skip::NO_RIGHTS);
            continue;
        }
        Mdb_node *x = spare;
        if (!x) {  // cannot happen: the first pass counted
            st = Status::OOM;
            break;
        }
        spare = x->next;
        *x = Mdb_node{};
        x->space = &dst;
        x->base = db;
        x->order = static_cast<u8>(p.order);
        x->rights = static_cast<u8>(n->rights & a);
        x->payload = payload_at(n, p.base);
        bool in = dst.insert(x);
        assert(in);  // dst.free() said so just above
        adopt(n, x);
        if (obs && !obs->mapped(*x)) {
            unlink(x);
            free_node(x);
            st = Status::OOM;
            break;
        }
        x->child = done;
        done = x;
    }
    while (Mdb_node *x = done) {
        done = x->child;
        x->child = nullptr;
        if (st != Status::OK) {
            unsigned r = x->rights;
            x->rights = 0;
            if (obs)
                obs->demoted(*x, r);
            unlink(x);
            free_node(x);
        }
    }
    release();
    return st;
}

Crd Mdb::translate(Mdb_space &snd, Crd item, Mdb_space &rcv, Crd win)
{
    Crd::Type t = item.type();
    if (win.is_null() || win.type() != t || snd.type() != t || rcv.type() != t)
        return Crd();
    u64 sb = item.base(), wb = win.base();
    unsigned so = item.order(), wo = win.order();
    if (t == Crd::OBJ)
        sb &= (u64{1} << Mdb_space::OBJ_BITS) - 1;

    Lock_guard g(lock);
    Mdb_node *m = snd.lookup(sb);
    if (!m || !rcv.clip(wb, wo))
        return Crd();
    Mdb_node *a = m->parent;
    while (a && !(a->space == &rcv && overlap(a->base, a->order, wb, wo))) {
        assert(derived(a, m));  // every ancestor's payload covers the node's
        a = a->parent;
    }
    if (!a && m->space == &rcv && overlap(m->base, m->order, wb, wo))
        a = m;  // sender and receiver are the same PD (reference behaviour)
    if (!a)
        return Crd();
    u64 sel = sel_in(a, m, sb);
    wb |= a->base;
    wo = min(wo, a->order);
    so = min(so, m->order);
    if (!overlap(sel, so, wb, wo))
        return Crd();
    return Crd(t, wb | sel, min(so, wo), m->rights);
}

/* Take rights from the subtree of top, pre-order; a node left with none goes with its subtree. */
void Mdb::demote(Mdb_node *top, unsigned rights, Mdb_observer *obs)
{
    assert(lock.held());
    for (Mdb_node *n = top; n;) {
        assert(n->rights);  // a live node
        unsigned removed = n->rights & rights;
        Mdb_node *down = nullptr;
        if (removed) {  // else the subtree holds none of them either
            n->rights = static_cast<u8>(n->rights & ~rights);
            // Its parent lost the same rights (or is outside the subtree and kept them).
            assert(!n->parent || !(n->rights & ~n->parent->rights));
            if (obs)
                obs->demoted(*n, removed);
            down = n->rights ? n->child : nullptr;
        }
        Mdb_node *after = down ? down : skip(n, top);
        if (!n->rights)
            free_subtree(n, obs);
        n = after;
    }
}

/* Free top (already reported) and its subtree, leaves first. */
void Mdb::free_subtree(Mdb_node *top, Mdb_observer *obs)
{
    assert(lock.held() && !top->rights);
    for (Mdb_node *n = top;;) {
        while (n->child)
            n = n->child;
        Mdb_node *up = n->parent;
        bool last = n == top;
        if (unsigned r = n->rights) {
            n->rights = 0;
            if (obs)
                obs->demoted(*n, r);
        }
        unlink(n);
        free_node(n);
        if (last)
            return;
        n = up;
    }
}

void Mdb::revoke(Mdb_space &s, Crd crd, bool self, Mdb_observer *obs)
{
    if (crd.type() == s.type())
        revoke(s, crd.base(), crd.order(), crd.rights(), self, obs);
}

void Mdb::revoke(Mdb_space &s, u64 base, unsigned order, unsigned rights, bool self, Mdb_observer *obs)
{
    rights &= ALL_RIGHTS;
    Lock_guard g(lock);
    if (!rights || !s.clip(base, order))
        return;
    u64 end = base + (u64{1} << order);
    for (Mdb_node *n = s.next(base); n && n->base < end;) {
        u64 resume = n->end();  // preemption point: the range below is done
        if (self)
            demote(n, rights, obs);
        else
            for (Mdb_node *c = n->child, *next; c; c = next) {
                next = c->next;
                if (overlap(sel_in(n, c, c->base), c->order, base, order))
                    demote(c, rights, obs);  // only what was derived from the revoked part
            }
        n = s.next(resume);
    }
}

bool Mdb::remove_root(Mdb_space &s, u64 base, u64 payload, Mdb_observer *obs)
{
    Lock_guard g(lock);
    Mdb_node *n = s.next(base);
    if (!n || n->base != base || n->order || n->parent || n->payload != payload)
        return false;
    demote(n, ALL_RIGHTS, obs);
    return true;
}

void Mdb::destroy(Mdb_space &s, Mdb_observer *obs)
{
    Lock_guard g(lock);
    while (Mdb_node *n = s.next(0))
        demote(n, ALL_RIGHTS, obs);
}
