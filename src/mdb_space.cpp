// host-testable
/*
 * Capability space index: an AVL tree of non-overlapping aligned ranges
 * (see include/mdb_space.hpp). Insert and remove are iterative with an explicit
 * path, so the stack use is bounded by the tree height.
 */
#include "mdb_space.hpp"
#include "assert.hpp"

namespace {

unsigned height(const Mdb_node *n) { return n ? n->height : 0; }

void update(Mdb_node *n)
{
    unsigned l = height(n->link[0]), r = height(n->link[1]);
    n->height = static_cast<u8>(1 + (l > r ? l : r));
}

}  // namespace

/* dir 0: the right child comes up (left rotation); dir 1: the left child comes up. */
Mdb_node *Mdb_space::rotate(Mdb_node *n, unsigned dir)
{
    Mdb_node *c = n->link[!dir];
    assert(c);
    n->link[!dir] = c->link[dir];
    c->link[dir] = n;
    update(n);
    update(c);
    return c;
}

Mdb_node *Mdb_space::balance(Mdb_node *n)
{
    update(n);
    int diff = static_cast<int>(height(n->link[0])) - static_cast<int>(height(n->link[1]));
    assert(diff >= -2 && diff <= 2);  // one insert or removal below changes a height by one
    if (diff > 1) {
        if (height(n->link[0]->link[0]) < height(n->link[0]->link[1]))
            n->link[0] = rotate(n->link[0], 0);
        return rotate(n, 1);
    }
    if (diff < -1) {
        if (height(n->link[1]->link[1]) < height(n->link[1]->link[0]))
            n->link[1] = rotate(n->link[1], 1);
        return rotate(n, 0);
    }
    return n;
}

/* Up the path after a change below: once a subtree's height is as before, nothing above changes. */
void Mdb_space::rebalance(Mdb_node **path[], unsigned depth)
{
    while (depth--) {
        Mdb_node *n = *path[depth];
        unsigned before = n->height;
        Mdb_node *b = balance(n);
        // Balanced again, and still a search tree around the new subtree root.
        assert(height(b->link[0]) <= height(b->link[1]) + 1 && height(b->link[1]) <= height(b->link[0]) + 1);
        assert((!b->link[0] || b->link[0]->end() <= b->base) &&
               (!b->link[1] || b->end() <= b->link[1]->base));
        *path[depth] = b;
        if (b->height == before)
            break;
    }
}

Mdb_node *Mdb_space::lookup(u64 sel) const
{
    if (kind == Crd::OBJ)
        sel &= (u64{1} << OBJ_BITS) - 1;
    Mdb_node *n = next(sel);
    return n && n->contains(sel) ? n : nullptr;
}

Mdb_node *Mdb_space::next(u64 sel) const
{
    Mdb_node *best = nullptr;
    for (Mdb_node *m = root; m;) {
        if (m->end() > sel) {  // ends are ordered like bases: nodes do not overlap
            if (m->base <= sel)
                return m;
            best = m;
            m = m->link[0];
        } else
            m = m->link[1];
    }
    return best;
}

bool Mdb_space::free(u64 base, unsigned order) const
{
    Mdb_node *n = next(base);
    return !n || (n->base >= base && n->base - base >= (u64{1} << order));
}

bool Mdb_space::clip(u64 &base, unsigned &order) const
{
    if (order > 63)
        order = 63;
    if (kind == Crd::OBJ && order < OBJ_BITS)
        base &= (u64{1} << OBJ_BITS) - 1;  // wraps (ABI 1.7)
    base &= ~((u64{1} << order) - 1);
    if (order < sel_bits)
        return base >> sel_bits == 0;  // NOLINT(clang-analyzer-core.BitwiseShift): sel_bits is 16, 26 or 52
    if (kind != Crd::OBJ && base)
        return false;  // a range beyond the space
    base = 0;
    order = sel_bits;
    return true;
}

bool Mdb_space::insert(Mdb_node *x)
{
    Mdb_node **path[MAX_HEIGHT];
    unsigned depth = 0;
    Mdb_node **l = &root;
    const u64 xb = x->base, xe = x->end();
    // The nodes next to x's place are the last ones the search passed on either side: only they
    // can overlap x (nodes do not overlap each other), so the loop itself compares bases only.
    Mdb_node *pred = nullptr, *succ = nullptr;
    // A node of this space, naturally aligned, inside the space.
    assert(x->space == this && x->order < 64 && !(xb & (x->size() - 1)));
    assert(x->order >= sel_bits ? !xb : !(xb >> sel_bits));
    while (Mdb_node *m = *l) {
        assert(depth < MAX_HEIGHT);
        path[depth++] = l;
        bool right = xb > m->base;
        (right ? pred : succ) = m;
        l = &m->link[right];
    }
    if ((pred && pred->end() > xb) || (succ && succ->base < xe))
        return false;
    x->link[0] = x->link[1] = nullptr;
    x->height = 1;
    *l = x;
    rebalance(path, depth);
    nodes++;
    return true;
}

void Mdb_space::remove(Mdb_node *x)
{
    Mdb_node **path[MAX_HEIGHT];
    unsigned depth = 0;
    Mdb_node **l = &root;
    while (*l != x) {
        if (!*l)
            return;  // not in this space
        assert(depth < MAX_HEIGHT);
        path[depth++] = l;
        l = &(*l)->link[x->base > (*l)->base];
    }
    if (!x->link[0] || !x->link[1])
        *l = x->link[x->link[0] ? 0 : 1];
    else {
        // Put the successor s (leftmost of the right subtree) in x's place.
        path[depth++] = l;
        unsigned right = depth;
        Mdb_node **sl = &x->link[1];
        while ((*sl)->link[0]) {
            assert(depth < MAX_HEIGHT);
            path[depth++] = sl;
            sl = &(*sl)->link[0];
        }
        Mdb_node *s = *sl;
        *sl = s->link[1];
        s->link[0] = x->link[0];
        s->link[1] = x->link[1];
        s->height = x->height;  // s stands where x stood: its height is x's for now
        *l = s;
        if (depth > right)
            path[right] = &s->link[1];  // that slot moved from x into s
    }
    rebalance(path, depth);
    x->link[0] = x->link[1] = nullptr;
    assert(nodes > 0);
    nodes--;
}
