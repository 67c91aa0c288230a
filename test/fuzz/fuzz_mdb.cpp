/*
 * Fuzzes the mapping database (src/mdb.cpp, src/mdb_space.cpp) against a reference model
 * (test/fuzz/mdb_model.hpp) over three memory spaces.
 * Input: 8-byte operations (insert root, delegate, revoke with and without self, in one go or as
 * a walk in small pieces, destroy a space, lookup, limit the next allocations). After each one,
 * every space is compared node by node (base, order, rights, payload, parent) and the tree's
 * invariants are checked.
 */
#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <vector>

#include "check.hpp"
#include "mdb.hpp"
#include "mdb_model.hpp"
#include "mdb_space.hpp"

using namespace model;

namespace {

long live, budget, mapped, charged;  // charged: nodes paid for by a space and not yet refunded
void *alloc(Mdb_space &)
{
    if (budget == 0)
        return nullptr;
    if (budget > 0)
        budget--;
    live++, charged++;
    return malloc(sizeof(Mdb_node));
}
// p nullptr: only the refund (a pinned node leaving its space); s nullptr: only the free.
void release(void *p, Mdb_space *s)
{
    if (s)
        charged--;
    if (p)
        live--, free(p);
}

struct Obs : Mdb_observer
{
    bool mapped(Mdb_node &) override { return ++::mapped; }
    void demoted(Mdb_node &n, unsigned) override { ::mapped -= !n.rights; }
} obs;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const u8 *d, size_t size)
{
    Mdb::alloc_node = alloc, Mdb::free_node = release;
    live = mapped = charged = 0, budget = -1, m.clear();
    Mdb_space sp[3] = {Mdb_space(Crd::MEM), Mdb_space(Crd::MEM), Mdb_space(Crd::MEM)};
    for (; size >= 8; d += 8, size -= 8) {
        int s = d[1] % 3, t = d[2] % 3;
        u64 b = d[3] % 64, o = d[4] % 8, o2 = d[4] >> 3 & 7;
        unsigned r = d[5] & 0x1f, r2 = d[6] & 0x1f;
        switch (d[0] % 7) {
        case 0: {  // insert root: payload = a page number of its own
            b &= ~((u64{1} << (o & 3)) - 1);
            bool ok = r && free_in(s, b, o & 3) && budget;
            check((Mdb::insert_root(sp[s], b, unsigned(o & 3), r, 0x1000 * m.size(), &obs) ==
                   Mdb::Status::OK) == ok);
            if (ok)
                m.push_back({s, b, o & 3, r, 0x1000 * m.size(), -1, 0, true});
        } break;
        case 1: {  // delegate (ABI 3.4): source base sb, receive base rb, order od, the pieces
            u64 sb = b & ~((u64{1} << o) - 1), rb = (d[7] % 64) & ~((u64{1} << o2) - 1),
                h = d[6] >> 5 | d[2] << 3, od = std::min(o, o2);
            (o < o2 ? rb : sb) += h % (u64{1} << std::max(o, o2)) & ~((u64{1} << od) - 1);
            std::vector<Node> add;
            for (size_t i = 0; i < m.size(); i++) {
                Node &x = m[i];
                if (!x.alive || x.sp != s || !meets(x.base, x.order, sb, od) || !(x.rights & r & r2))
                    continue;
                u64 lo = std::max(x.base, sb), po = std::min(x.order, od);
                if (free_in(t, lo - sb + rb, po))
                    add.push_back(
                        {t, lo - sb + rb, po, x.rights & r & r2, x.payload + lo - x.base, int(i), lo, true});
            }
            bool oom = budget >= 0 && long(add.size()) > budget;
            Mdb::Result res = Mdb::delegate(sp[s], Crd::mem(b, unsigned(o), r), sp[t],
                                            Crd::mem(d[7] % 64, unsigned(o2), r2), h, &obs);
            check(res.status == (oom ? Mdb::Status::OOM : Mdb::Status::OK));
            check((r & r2) ? res.crd == Crd::mem(rb, unsigned(od), r & r2) : res.crd.is_null());
            if (!oom)
                m.insert(m.end(), add.begin(), add.end());
        } break;
        case 2:
        case 3:
            if (d[7] & 0x80) {  // resumable, in pieces of 1 to 4 units: the same result
                Mdb_walk w;
                Mdb::walk_begin(w, sp[s], b, unsigned(o), r, d[0] % 7 == 3);
                for (u64 piece = 1 + (d[7] & 3); !Mdb::walk(w, piece, &obs);)
                    piece = 1 + (d[7] & 3);
            } else
                Mdb::revoke(sp[s], Crd::mem(b, unsigned(o), r), d[0] % 7 == 3, &obs);
            revoke(s, b, o, r, d[0] % 7 == 3);
            break;
        case 4: Mdb::destroy(sp[s], &obs), revoke(s, 0, 62, 0x1f, true); break;
        case 5: budget = d[1] % 4; continue;
        case 6: {
            Node *x = nullptr;
            for (Node &y : m)
                x = y.alive && y.sp == s && b - y.base < (u64{1} << y.order) ? &y : x;
            check(Mdb::lookup(sp[s], b) ==
                  (x ? Crd::mem(x->base, unsigned(x->order), unsigned(x->rights)) : Crd()));
        }
        }
        budget = -1;
        // Compare: the nodes of every space in order, with their parents; the tree's invariants.
        long alive = 0;
        for (int k = 0; k < 3; k++) {
            std::vector<Node *> want;
            for (Node &x : m)
                if (x.alive && x.sp == k)
                    want.push_back(&x);
            std::sort(want.begin(), want.end(), [](Node *a, Node *b) { return a->base < b->base; });
            size_t i = 0;
            for (Mdb_node *n = sp[k].next(0); n; n = sp[k].next(n->end()), i++) {
                check(i < want.size() && n->base == want[i]->base && n->order == want[i]->order);
                check(n->rights == want[i]->rights && n->payload == want[i]->payload && n->space == &sp[k]);
                Node *p = want[i]->parent < 0 ? nullptr : &m[size_t(want[i]->parent)];
                check(p ? n->parent && n->parent->space == &sp[p->sp] && n->parent->base == p->base
                        : !n->parent);
                check(!n->parent || (n->rights & ~n->parent->rights) == 0);
                for (Mdb_node *c = n->child; c; c = c->next)
                    check(c->parent == n && (c->next == nullptr || c->next->prev == c));
            }
            check(i == want.size() && sp[k].count() == i);
            alive += long(i);
        }
        check(alive == live && alive == mapped);
    }
    for (auto &s : sp)
        Mdb::destroy(s, &obs);
    check(live == 0 && mapped == 0 && charged == 0);  // every node freed and every charge refunded
    return 0;
}
