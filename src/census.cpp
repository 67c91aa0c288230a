/*
 * The kernel census (include/census.hpp, docs/debugging.md).
 *
 * The dump runs inside a hypercall, so this CPU passes no quiescent state until it returns: an
 * object with references cannot be destroyed meanwhile (its grace period would start after our
 * entry), and the tables a live PD's walk reads are freed only after a grace period too. An
 * object without references may be destroyed by another CPU while we look (its memory stays
 * mapped: the direct map), so only its own fields are printed, and no walk follows its tables.
 * Pointers to other objects are printed as their serials (#n), read through the pointer; a weak
 * one (a waiter, a caller) can be stale, which the serial then shows as nonsense, not as a fault.
 */
#include "census.hpp"
#include "console.hpp"
#include "format.hpp"
#include "gsi.hpp"
#include "kmem.hpp"
#include "mapping.hpp"
#include "memory.hpp"
#include "objects.hpp"
#include "paging.hpp"
#include "rcu.hpp"
#include "sched.hpp"

namespace {

constexpr u64 MAX_LINES = 400;  // per type: a dump of a leak, not of a full kernel

struct Id
{
    char s[24];
};

/* "#serial" of an object, "-" for none. */
Id id(const Kobject *o)
{
    Id r;
    if (o)
        format(r.s, sizeof r.s, "#%lu", o->serial);
    else
        format(r.s, sizeof r.s, "-");
    return r;
}

const char *state_name(Ec::State s)
{
    switch (s) {
    case Ec::RUNNABLE: return "RUNNABLE";
    case Ec::WAIT_CALL: return "WAIT_CALL";
    case Ec::IN_CALL: return "IN_CALL";
    case Ec::BLOCKED: return "BLOCKED";
    case Ec::PARKED: return "PARKED";
    }
    return "?";
}

/* Table pages below a page-table entry's table of level lvl (3: PML4, user half only). */
u64 table_pages(const u64 *table, unsigned lvl)
{
    u64 n = 1;
    unsigned entries = lvl == 3 ? 256 : 512;
    for (unsigned i = 0; lvl > 0 && i < entries; i++) {
        u64 e = __atomic_load_n(&table[i], __ATOMIC_RELAXED);
        if ((e & Pte::P) && !(e & Pte::PS))
            n += table_pages(phys_to_virt<const u64>(e & Pte::ADDR), lvl - 1);
    }
    return n;
}

/* The EC an SC runs: Sc::runner(), bounded (the links change under our feet). */
const Ec *runner(const Sc *sc)
{
    const Ec *e = sc->ec;
    for (unsigned i = 0; e && i < 64; i++) {
        if (e->callee)
            e = e->callee;
        else if (e->helping && Sc::helped_busy(e->helping))
            e = e->helping;
        else
            break;
    }
    return e;
}

struct Walk
{
    u64 since;
    u64 listed = 0, skipped = 0;

    bool take(const Kobject *o)
    {
        if (o->serial < since)
            return false;
        if (listed >= MAX_LINES) {
            skipped++;
            return false;
        }
        listed++;
        return true;
    }
};

void dump_pd(Kobject *o, void *arg)
{
    auto &w = *static_cast<Walk *>(arg);
    const Pd *pd = static_cast<Pd *>(o);
    if (!w.take(o))
        return;
    u32 refs = o->ref_count();
    u64 pt = refs ? table_pages(pd->pml4, 3) : 0, ot = refs ? pd->obj.tables() : 0;
    trace("KSTAT: PD %s %p refs %u caps %lu%s%s teardown %u%s; nodes obj %lu mem %lu pio %lu; table pages: "
          "host %lu object %lu; io bitmap %s",
          id(o).s, static_cast<const void *>(o), refs, pd->caps, pd->dying ? " dying" : "",
          pd == Pd::root ? " root" : "", pd->teardown_space, pd->teardown.active() ? " (walking)" : "",
          pd->mdb_obj.count(), pd->mdb_mem.count(), pd->mdb_pio.count(), pt, ot,
          pd->io_bitmap ? "yes" : "no");
}

void dump_ec(Kobject *o, void *arg)
{
    auto &w = *static_cast<Walk *>(arg);
    const Ec *e = static_cast<Ec *>(o);
    if (!w.take(o))
        return;
    trace("KSTAT: EC %s %p refs %u PD %s cpu %u %s%s%s %s; caller %s callee %s helping %s helped_by %u; "
          "SCs %u waiting %s blocked_sc %s; sm %s deadline %#lx; xcpu caller %s waits for %s started %d sel "
          "%#lx; "
          "event %d recall %d started %d utcb %s rip %#lx",
          id(o).s, static_cast<const void *>(o), o->ref_count(), id(e->pd).s, e->cpu,
          e->is_clone    ? "clone"
          : e->is_vcpu() ? "vCPU"
          : e->global    ? "global"
                         : "local",
          e->dead ? " dead" : "", e->event_call ? " event_call" : "", state_name(e->state), id(e->caller).s,
          id(e->callee).s, id(e->helping).s, e->helped_by, e->sc_count, id(e->sc_waiters).s,
          id(e->blocked_sc).s, id(e->waiting_on).s, e->deadline, id(e->xcpu_caller).s,
          e->xcpu_sc == Ec::xcpu_done() ? "(done)" : id(e->xcpu_sc).s, e->xcpu_started, e->xcpu_sel,
          e->pending_event, e->recall, e->started,
          e->utcb_mapped ? "mapped"
          : e->utcb_next ? "unmapping"
                         : "-",
          e->regs.rip);
}

void dump_sc(Kobject *o, void *arg)
{
    auto &w = *static_cast<Walk *>(arg);
    const Sc *sc = static_cast<Sc *>(o);
    if (!w.take(o))
        return;
    trace("KSTAT: SC %s %p refs %u EC %s cpu %u prio %u%s%s; waits for %s; runs %s", id(o).s,
          static_cast<const void *>(o), o->ref_count(), id(sc->ec).s, sc->cpu, sc->prio,
          sc->queued ? " queued" : "", sc->retired ? " retired" : "", id(sc->waits_for).s, id(runner(sc)).s);
}

void dump_pt(Kobject *o, void *arg)
{
    auto &w = *static_cast<Walk *>(arg);
    const Pt *pt = static_cast<Pt *>(o);
    if (!w.take(o))
        return;
    trace("KSTAT: PT %s %p refs %u EC %s id %#lx ip %#lx mtd %#lx", id(o).s, static_cast<const void *>(o),
          o->ref_count(), id(pt->ec).s, pt->id, pt->ip, pt->mtd);
}

void dump_sm(Kobject *o, void *arg)
{
    auto &w = *static_cast<Walk *>(arg);
    const Sm *sm = static_cast<Sm *>(o);
    if (!w.take(o))
        return;
    trace("KSTAT: SM %s %p refs %u counter %lu waiter %s chain %s pending %lu gsi %d%s", id(o).s,
          static_cast<const void *>(o), o->ref_count(), sm->counter, id(sm->wait_head).s, id(sm->chain).s,
          sm->pending, sm->gsi, sm->retired ? " retired" : "");
}

struct Node_walk
{
    u64 since;
    u64 listed = 0, skipped = 0;
};

void dump_node(const Mdb_node &n, void *arg)
{
    auto &w = *static_cast<Node_walk *>(arg);
    const Pd *pd = n.space ? static_cast<const Pd *>(n.space->owner()) : nullptr;
    bool obj = n.space && n.space->type() == Crd::OBJ;
    const Kobject *o = obj ? n.object() : nullptr;
    if (n.space && (!pd || pd->serial < w.since) && (!o || o->serial < w.since))
        return;
    if (w.listed >= MAX_LINES) {
        w.skipped++;
        return;
    }
    w.listed++;
    static const char *const types[] = {"null", "mem", "pio", "obj"};
    trace("KSTAT: node %p %s PD %s base %#lx order %u rights %#x object %s parent %p child %p pins %u",
          static_cast<const void *>(&n), n.space ? types[n.space->type() & 3] : "dead", id(pd).s, n.base,
          n.order, n.rights, id(o).s, static_cast<const void *>(n.parent), static_cast<const void *>(n.child),
          n.pins);
}

}  // namespace

Kstat_census Census::count()
{
    Kstat_census k{};
    k.serial = Kobject::next_serial();
    object_census(k);
    Mapping::node_census(k);
    static_assert(Gsi::COUNT == Abi::NUM_GSI);
    for (unsigned g = 0; g < Abi::NUM_GSI; g++)
        k.gsi_cpu[g] = Gsi::last_cpu(g);
    return k;
}

void Census::dump(u64 since)
{
    Kstat_census k = count();
    trace(
        "KSTAT: census: PD %lu (%lu dying), EC %lu (%lu clones, %lu dead), SC %lu (%lu retired), PT %lu, SM "
        "%lu, nodes %lu; slab pages %lu; free pages %lu; pending %lu; next serial %lu",
        k.pds, k.dying_pds, k.ecs, k.clones, k.dead_ecs, k.scs, k.retired_scs, k.pts, k.sms, k.nodes,
        k.slab_pages, Kmem::free_pages(), Rcu::pending() + Sched::retiring() + Mapping::pending(), k.serial);
    trace("KSTAT: objects made since serial %lu:", since);
    Walk w[5] = {{since}, {since}, {since}, {since}, {since}};
    for_each_object(Obj_type::PD, dump_pd, &w[0]);
    for_each_object(Obj_type::EC, dump_ec, &w[1]);
    for_each_object(Obj_type::SC, dump_sc, &w[2]);
    for_each_object(Obj_type::PT, dump_pt, &w[3]);
    for_each_object(Obj_type::SM, dump_sm, &w[4]);
    Node_walk nw{since};
    Mapping::for_each_node(dump_node, &nw);
    u64 listed = nw.listed, skipped = nw.skipped;
    for (const Walk &x : w) {
        listed += x.listed;
        skipped += x.skipped;
    }
    trace("KSTAT: end of census: %lu listed, %lu more not listed", listed, skipped);
}
