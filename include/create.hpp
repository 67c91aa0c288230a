/*
 * The create_* hypercalls (ABI 7.3 to 7.7): decode (include/decode.hpp), then perform:
 *
 *   1. allocate the object (nothing is visible yet; out of memory: OOM, nothing changed);
 *   2. publish() it: one insert of its root capability at the new selector (the mapping
 *      database's root node, which fills the object space with one compare-and-swap). This is
 *      THE commit point of every create_*: before it no other CPU and no user can see the
 *      object. If it fails (out of memory for a node or a table, or the selector taken by a
 *      racing CPU since the decode looked), the unpublished object is destroyed again
 *      (destroy_unpublished() of the object layer) and the hypercall answers OOM or BAD_CAP,
 *      leaving no trace;
 *   3. after the commit only effects that cannot fail: create_pd delegates its CRD (problems
 *      are not reported, 7.3), create_sc makes the SC ready (6.2).
 *
 * docs/objects.md refers here. Pure logic over the decode's environment E (host-tested with a
 * failing allocator and a failing insert in test/unit/test_decode.cpp), which adds
 *
 *   Pd *new_pd(); Ec *new_ec(Pd *, const Sys_create_ec &, bool &utcb_taken);
 *   Sc *new_sc(Ec *, Qpd); Pt *new_pt(Ec *, u64 mtd, u64 ip); Sm *new_sm(u64 count, Sm *chain)
 *                                        allocation; nullptr when memory (or the UTCB page) is gone
 *   bool hold(Kobject *), void drop(Kobject *)          a temporary reference on a found object
 *   Insert insert(u64 sel, Kobject *, unsigned perm)      the one insert at the commit point
 *   void destroy_unpublished(Kobject *)                  the undo
 *   void populate(Pd *, Crd), void start(Sc *)          the effects after the commit
 */
#pragma once

#include "decode.hpp"

enum class Insert : u8 { OK, OOM, TAKEN };

namespace Create {

/* The commit point (see above). */
template <typename E, typename T> Verdict publish(E &e, u64 sel, T *obj, unsigned perm)
{
    Insert r = e.insert(sel, obj, perm);
    if (r == Insert::OK)
        return PASS;
    e.destroy_unpublished(obj);
    return r == Insert::OOM ? fail(Status::OOM, "no memory for the new capability")
                            : fail(Status::BAD_CAP, "the new selector was taken meanwhile");
}

constexpr Verdict NO_MEMORY = fail(Status::OOM, "no memory for the object");

/*
 * The object a new one refers to (create_ec's PD, create_sc's and create_pt's EC, create_sm's
 * chain target) was found by the decode's lock-free lookup: a revoke on another CPU may drop its
 * last reference at any moment, and the new object's reference would then revive a retired
 * object (use after free). So the perform step first holds it with a reference that only a live
 * object gives (Kobject::try_get), and answers BAD_CAP, as if the capability had gone before the
 * lookup, when it is already retired; the new object takes its own reference while ours keeps
 * the count above 0, and ours is dropped after the allocation.
 */
constexpr Verdict GONE = fail(Status::BAD_CAP, "the object was destroyed meanwhile by a racing revoke");

template <typename E> struct Held
{
    E &e;
    Kobject *obj;
    bool ok;
    Held(E &env, Kobject *o) : e(env), obj(o), ok(!o || env.hold(o)) {}
    ~Held()
    {
        if (obj && ok)
            e.drop(obj);
    }
    Held(const Held &) = delete;
    Held &operator=(const Held &) = delete;
};

/* limit: the quota extension's create_pd (docs/quota.md), a PD with a quota of its own of that
   many bytes; nullptr: the classic one, sharing the caller's quota. */
template <typename E> Verdict pd(E &e, const Sys_create_pd &a, const u64 *limit = nullptr)
{
    Decode::Found<E> d;
    if (Verdict v = Decode::create_pd(e, a, d); !v.ok())
        return v;
    auto *pd = e.new_pd(limit);
    if (!pd)
        return limit ? fail(Status::OOM, "no memory or quota for the PD and its quota") : NO_MEMORY;
    if (Verdict v = publish(e, a.sel(), pd, d.perm); !v.ok())
        return v;
    e.populate(pd, a.crd());
    return PASS;
}

template <typename E> Verdict ec(E &e, const Sys_create_ec &a)
{
    Decode::Found<E> d;
    if (Verdict v = Decode::create_ec(e, a, d); !v.ok())
        return v;
    Held<E> h(e, d.pd);
    if (!h.ok)
        return GONE;
    bool taken = false;
    auto *ec = e.new_ec(d.pd, a, taken);
    if (!ec)
        return taken ? fail(Status::BAD_PAR, "the UTCB page was taken meanwhile") : NO_MEMORY;
    return publish(e, a.sel(), ec, Perm_ec::CREATED);
}

template <typename E> Verdict sc(E &e, const Sys_create_sc &a)
{
    Decode::Found<E> d;
    if (Verdict v = Decode::create_sc(e, a, d); !v.ok())
        return v;
    Held<E> h(e, d.ec);
    if (!h.ok)
        return GONE;
    auto *sc = e.new_sc(d.ec, a.qpd());
    if (!sc)
        return NO_MEMORY;
    if (Verdict v = publish(e, a.sel(), sc, Perm_sc::CREATED); !v.ok())
        return v;
    e.start(sc);
    return PASS;
}

template <typename E> Verdict pt(E &e, const Sys_create_pt &a)
{
    Decode::Found<E> d;
    if (Verdict v = Decode::create_pt(e, a, d); !v.ok())
        return v;
    Held<E> h(e, d.ec);
    if (!h.ok)
        return GONE;
    auto *pt = e.new_pt(d.ec, a.mtd(), a.ip());
    if (!pt)
        return NO_MEMORY;
    return publish(e, a.sel(), pt, Perm_pt::CREATED);
}

template <typename E> Verdict sm(E &e, const Sys_create_sm &a)
{
    Decode::Found<E> d;
    if (Verdict v = Decode::create_sm(e, a, d); !v.ok())
        return v;
    Held<E> h(e, d.sm2);
    if (!h.ok)
        return GONE;
    auto *sm = e.new_sm(a.count(), d.sm2);
    if (!sm)
        return NO_MEMORY;
    return publish(e, a.sel(), sm, Perm_sm::CREATED);
}

}  // namespace Create
