// host-testable
/*
 * Mapping database operations: roots, delegation, translation, revocation
 * (see include/mdb.hpp and docs/mdb.md).
 */
#include "mdb.hpp"
#include "assert.hpp"
#include "diag.hpp"
#include "mdb_space.hpp"

void *(*Mdb::alloc_node)(Mdb_space &);
void (*Mdb::free_node)(void *, Mdb_space *);
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

/*
 * A new leaf with no right its parent lacks (rights only shrink down the tree), appended as the
 * last child: a paused walk through the children (Mdb_walk) is still ahead of it.
 */
void adopt(Mdb_node *parent, Mdb_node *c)
{
    assert(Mdb::lock.held());
    assert(!c->parent && !c->child && !c->prev && !c->next);
    assert(c->rights && !(c->rights & ~parent->rights) && parent->rights);
    assert(derived(parent, c));
    c->parent = parent;
    c->next = nullptr;
    if (Mdb_node *first = parent->child) {
        c->prev = first->prev;  // the last child
        first->prev->next = c;
        first->prev = c;
    } else {
        c->prev = c;
        parent->child = c;
    }
}

/* The last child of p (which has children). */
Mdb_node *last_child(const Mdb_node *p) { return p->child->prev; }

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

constexpr u16 MAX_PINS = 0xffff;

}  // namespace

/*
 * The first overmap attempt of an item (ABI 13.3 informative line): recorded under the lock,
 * printed after it (a console line may take milliseconds), one line per item.
 */
struct Mdb::Overmap
{
    bool seen = false;
    Crd::Type type = Crd::MEM;
    const void *from = nullptr, *to = nullptr;
    u64 sb = 0, rb = 0, order = 0, rights = 0;

    void note(Crd::Type t, const void *f, const void *d, u64 s, u64 r, u64 o, u64 a)
    {
        if (!seen)
            *this = Overmap{true, t, f, d, s, r, o, a};
    }
    void print() const
    {
        if (seen)
            diag_user("overmap attempt %s - tree - PD:%p->%p SB:%#lx RB:%#lx O:%#lx A:%#lx", type_name(type),
                      from, to, sb, rb, order, rights);
    }
};

void Mdb::unlink(Mdb_node *n)
{
    // Only leaves go (subtrees are freed leaves first). Siblings: next runs to the last child,
    // prev is circular (the first child's prev is the last).
    assert(lock.held());
    assert(!n->child && !n->dead());
    if (Mdb_node *p = n->parent) {
        assert(n->prev->next == n || (p->child == n && !n->prev->next));
        assert(n->next ? n->next->prev == n : p->child->prev == n);
        if (p->child == n)
            p->child = n->next;
        else
            n->prev->next = n->next;
        if (n->next)
            n->next->prev = n->prev;
        else if (p->child)
            p->child->prev = n->prev;  // n was the last child
    }
    u64 before = n->space->count();
    n->space->remove(n);
    assert(n->space->count() == before - 1);  // it was in its space
}

/* An unlinked node goes; a pinned one stays, dead, until its last walk lets go of it. */
void Mdb::release(Mdb_node *n)
{
    assert(lock.held());
    n->parent = n->child = n->prev = n->next = nullptr;
    n->rights = 0;
    if (n->pins) {
        free_node(nullptr, n->space);  // refunded now, freed by the last unpin
        n->space = nullptr;
    } else
        free_node(n, n->space);
}

/* Let go of a paused walk's node; false if it died meanwhile (and is freed now, if this was its last pin). */
bool Mdb::unpin(Mdb_node *n)
{
    assert(lock.held() && n->pins);
    n->pins--;
    if (!n->dead())
        return true;
    if (!n->pins)
        free_node(n, nullptr);
    return false;
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
    auto *n = static_cast<Mdb_node *>(alloc_node ? alloc_node(s) : nullptr);
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
        free_node(n, &s);
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

/* The node attributes of a delegation travel with its rights, above them (rights < 2^5). */
constexpr unsigned ATTR_SHIFT = 8;

Mdb::Result Mdb::delegate(Mdb_space &src, Crd send, Mdb_space &dst, Crd win, u64 hotspot, Mdb_observer *obs,
                          u8 attr)
{
    unsigned a = send.rights() & win.rights();
    if (send.is_null() || send.type() != win.type() || !a)
        return {Status::OK, Crd()};
    if (src.type() != send.type() || dst.type() != send.type())
        return {Status::BAD_PARAM, Crd()};
    Plan p = plan(send, win, hotspot);
    if (!p.ok)
        return {Status::OK, Crd()};  // I/O ranges that do not nest: the reference leaves this undefined
    Overmap om;
    Status st;
    {
        Lock_guard g(lock);
        st = transfer(src, p.sb, dst, p.rb, p.order, a | unsigned{attr} << ATTR_SHIFT, obs, om);
    }
    om.print();
    return {st, Crd(send.type(), p.rb, p.order, a)};
}

/*
 * ABI 3.4 step 5: a child in dst for every source node piece in [sb, sb + 2^order).
 * Two passes over the source: the first allocates every node needed, so that running
 * out of memory changes nothing; the second links them in. An observer refusing a
 * node makes the second pass withdraw what it did.
 */
Mdb::Status Mdb::transfer_one(Mdb_node *n, u64 sb, unsigned so, Mdb_space &dst, u64 db, unsigned a,
                              Mdb_observer *obs, Overmap &om)
{
    assert(lock.held());
    assert(n->rights && n->base <= sb && sb + (u64{1} << so) <= n->end());  // n covers the range
    auto overmap = [&] {
        Mdb_node *e = dst.lookup(db);
        if (!e || e->parent != n)  // a repeated delegation is not worth a line
            om.note(dst.type(), n->space->owner(), dst.owner(), sb, db, so, a & ((1u << ATTR_SHIFT) - 1));
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
    auto *x = static_cast<Mdb_node *>(alloc_node ? alloc_node(dst) : nullptr);
    if (!x)
        return dst.free(db, so) ? Status::OOM : overmap();
    *x = Mdb_node{};
    x->space = &dst;
    x->base = db;
    x->order = static_cast<u8>(so);
    x->rights = static_cast<u8>(n->rights & a);
    x->attr = static_cast<u8>(a >> ATTR_SHIFT);
    x->payload = payload_at(n, sb);
    if (!dst.insert(x)) {
        free_node(x, &dst);
        return overmap();
    }
    adopt(n, x);
    if (obs && !obs->mapped(*x)) {
        unlink(x);
        free_node(x, &dst);
        return Status::OOM;
    }
    return Status::OK;
}

Mdb::Status Mdb::transfer(Mdb_space &src, u64 sb, Mdb_space &dst, u64 rb, unsigned order, unsigned a,
                          Mdb_observer *obs, Overmap &om)
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
        return transfer_one(n, sb, so, dst, sb + delta, a, obs, om);

    Mdb_node *spare = nullptr;  // linked through next
    auto release = [&spare, &dst] {
        while (Mdb_node *x = spare) {
            spare = x->next;
            free_node(x, &dst);
        }
    };
    for (Mdb_node *n = src.next(sb); n && n->base < end; n = src.next(n->end())) {
        Piece p = piece(n, sb, so);
        if (!(n->rights & a) || !dst.free(p.base + delta, p.order))
            continue;
        auto *x = static_cast<Mdb_node *>(alloc_node ? alloc_node(dst) : nullptr);
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
                om.note(dst.type(), src.owner(), dst.owner(), sb, rb, so, a);
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
        x->attr = static_cast<u8>(a >> ATTR_SHIFT);
        x->payload = payload_at(n, p.base);
        bool in = dst.insert(x);
        assert(in);  // dst.free() said so just above
        adopt(n, x);
        if (obs && !obs->mapped(*x)) {
            unlink(x);
            free_node(x, &dst);
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
            free_node(x, &dst);
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

void Mdb::revoke(Mdb_space &s, Crd crd, bool self, Mdb_observer *obs)
{
    if (crd.type() == s.type())
        revoke(s, crd.base(), crd.order(), crd.rights(), self, obs);
}

void Mdb::revoke(Mdb_space &s, u64 base, unsigned order, unsigned rights, bool self, Mdb_observer *obs)
{
    Mdb_walk w;
    walk_begin(w, s, base, order, rights, self);
    u64 budget = ~u64{0};
    walk(w, budget, obs);
}

bool Mdb::remove_root(Mdb_space &s, u64 base, u64 payload, Mdb_observer *obs)
{
    Mdb_walk w;
    walk_begin_root(w, s, base, payload);
    u64 budget = ~u64{0};
    Lock_guard g(lock);
    Mdb_node *n = s.next(base);
    if (!n || n->base != base || n->order || n->parent || n->payload != payload)
        return false;
    walk_locked(w, budget, obs);
    return true;
}

void Mdb::destroy(Mdb_space &s, Mdb_observer *obs)
{
    Mdb_walk w;
    walk_begin(w, s, 0, 63, ALL_RIGHTS, true);
    u64 budget = ~u64{0};
    walk(w, budget, obs);
}

void Mdb::walk_begin(Mdb_walk &w, Mdb_space &s, u64 base, unsigned order, unsigned rights, bool self)
{
    w = Mdb_walk{};
    rights &= ALL_RIGHTS;
    if (!rights || !s.clip(base, order))
        return;  // nothing to do: finished
    w.space = &s;
    w.base = w.key = base;
    w.end = base + (u64{1} << order);  // clip() leaves at most 2^52
    w.order = static_cast<u8>(order);
    w.rights = static_cast<u8>(rights);
    w.self = self;
}

void Mdb::walk_begin_root(Mdb_walk &w, Mdb_space &s, u64 base, u64 payload)
{
    walk_begin(w, s, base, 0, ALL_RIGHTS, true);
    w.root_only = true;
    w.payload = payload;
}

bool Mdb::walk(Mdb_walk &w, u64 &budget, Mdb_observer *obs)
{
    if (!w.active())
        return true;
    Lock_guard g(lock);
    return walk_locked(w, budget, obs);
}

void Mdb::walk_cancel(Mdb_walk &w)
{
    if (!w.active())
        return;
    Lock_guard g(lock);
    if (w.at)
        unpin(w.at);
    w = Mdb_walk{};
}

/* Stop at x in mode (budget used up): pin x, or forget the position if x cannot take a pin. */
void Mdb::pause(Mdb_walk &w, Mdb_node *x, Mdb_walk::Mode mode)
{
    if (mode == Mdb_walk::EXHAUSTED) {
        // Every child of x is done, x is not: continue after its last child, or at x if it has
        // none (children appended meanwhile come after that point).
        if (x->child) {
            x = last_child(x);
            mode = Mdb_walk::AFTER;
        } else
            mode = Mdb_walk::EMPTY;
    }
    if (x->pins == MAX_PINS) {
        w.at = w.top = nullptr;  // start the top-level node again (w.key is its base)
        return;
    }
    x->pins++;
    w.at = x;
    w.mode = mode;
}

/*
 * The walk (see Mdb_walk): for every node of the space intersecting the range, in base order
 * (the top-level node, w.top), with self: the rights go from the node and its whole subtree; without
 * self: from the subtrees of its children whose source range intersects the revoked range. Inside
 * a subtree the walk is post-order over the sibling lists (first to last child): x in mode
 *   ENTER      not visited yet; its earlier siblings are done,
 *   AFTER      done (and still there); continue with its next sibling, or finish its parent,
 *   EMPTY      x's children were done and none is left; continue with new ones, or finish x,
 *   EXHAUSTED  every child of x is done: take the rights from x itself.
 * A node that keeps none of the rights is skipped with its subtree (its descendants have none).
 * A node left without rights has no children left (they hold no more than it) and goes.
 */
bool Mdb::walk_locked(Mdb_walk &w, u64 &budget, Mdb_observer *obs)
{
    assert(lock.held());
    if (!w.active())
        return true;
    using Mode = Mdb_walk::Mode;
    Mdb_node *x = w.at;
    Mode mode = w.mode;
    if (x) {
        w.at = nullptr;
        if (!unpin(x))
            x = w.top = nullptr;  // it died meanwhile: this top-level node again, from w.key
    } else
        w.top = nullptr;
    const unsigned r = w.rights;
    for (;;) {
        if (!x) {
            Mdb_node *n = w.space->next(w.key);
            if (!n || n->base >= w.end ||
                (w.root_only && (n->base != w.base || n->order || n->parent || n->payload != w.payload))) {
                w = Mdb_walk{};
                return true;
            }
            w.key = n->base;
            w.top = n;
            w.top_end = n->end();
            x = n;
            mode = w.self ? Mdb_walk::ENTER : Mdb_walk::EMPTY;  // without self: only its children
        }
        if (!budget) {
            pause(w, x, mode);
            return false;
        }
        switch (mode) {
        case Mdb_walk::EMPTY:  // no work: where to go on
            if (x->child) {
                x = x->child;
                mode = Mdb_walk::ENTER;
            } else
                mode = Mdb_walk::EXHAUSTED;
            break;
        case Mdb_walk::ENTER: {
            budget--;
            bool in = x->rights & r;
            if (in && !w.self && x->parent == w.top)  // only what derives from the revoked part
                in = overlap(sel_in(w.top, x, x->base), x->order, w.base, w.order);
            if (!in)
                mode = Mdb_walk::AFTER;
            else if (x->child)
                x = x->child;
            else
                mode = Mdb_walk::EXHAUSTED;
            break;
        }
        case Mdb_walk::AFTER:
            if (x == w.top) {
                w.key = w.top_end;
                x = nullptr;
            } else if (x->next) {
                x = x->next;
                mode = Mdb_walk::ENTER;
            } else {
                x = x->parent;
                mode = Mdb_walk::EXHAUSTED;
            }
            break;
        case Mdb_walk::EXHAUSTED: {
            if (x == w.top && !w.self) {  // its children are done; it keeps its rights
                w.key = w.top_end;
                x = nullptr;
                break;
            }
            budget--;
            if (unsigned removed = x->rights & r) {
                x->rights = static_cast<u8>(x->rights & ~r);
                // Its parent is not done yet (or outside the walk) and keeps its rights.
                assert(!x->parent || !(x->rights & ~x->parent->rights));
                if (obs)
                    obs->demoted(*x, removed);
                if (x->space->type() == Crd::MEM) {  // its page-table work
                    u64 cost = x->size() >> 9;
                    budget -= cost < budget ? cost : budget;
                }
            }
            if (x->rights) {
                mode = Mdb_walk::AFTER;
                break;
            }
            assert(!x->child);  // its children hold no more than it: none is left
            Mdb_node *next = x->next, *parent = x->parent;
            bool top = x == w.top;
            unlink(x);
            release(x);
            if (top) {
                w.key = w.top_end;
                x = nullptr;
            } else if (next) {
                x = next;
                mode = Mdb_walk::ENTER;
            } else {
                x = parent;
                mode = Mdb_walk::EXHAUSTED;
            }
            break;
        }
        }
    }
}
