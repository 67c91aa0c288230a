/*
 * The kernel side of the mapping database (include/mapping.hpp): the observer that mirrors
 * node changes into a PD's object space, page table and I/O bitmap, and the deferred work
 * an operation leaves (UTCB unmaps, emptying PDs whose last capability went, the TLB
 * shootdown), done by finish() with no lock held. The pure database is src/mdb.cpp; the
 * shootdown itself src/shootdown.cpp; the kernel PD's resources src/kernel_pd.cpp.
 */
#include "mapping.hpp"
#include "abi/constants.hpp"
#include "boot.hpp"
#include "console.hpp"
#include "cpu.hpp"
#include "gsi.hpp"
#include "idt.hpp"
#include "lapic.hpp"
#include "memory.hpp"
#include "objects.hpp"
#include "paging.hpp"
#include "rcu.hpp"
#include "shootdown.hpp"
#include "slab.hpp"
#include "x86.hpp"

namespace {

constinit Slab_cache node_cache{"mdb", sizeof(Mdb_node), 16};

constexpr u64 PAGES_2M = 512, PAGES_1G = PAGES_2M * 512;

Pd *owner(const Mdb_node &n) { return static_cast<Pd *>(n.space->owner()); }

u64 pte_flags(unsigned rights) { return Pte::U | ((rights & 2) ? Pte::W : 0); }

/* Map a node's pages (below USER_ADDR) with the largest pages alignment and emptiness allow. */
bool map_node(Pd *pd, u64 page, u64 phys_page, u64 pages, unsigned rights)
{
    constexpr u64 user_pages = USER_ADDR >> 12;
    if (page >= user_pages)
        return true;  // recorded only: not reachable from host user mode (ABI 1.1)
    if (page + pages > user_pages)
        pages = user_pages - page;
    Lock_guard g(pd->lock);
    u64 va = page << 12, pa = phys_page << 12;
    static const u64 sizes[] = {PAGES_1G, PAGES_2M};
    while (pages) {
        u64 step = 1;
        for (u64 big : sizes) {
            if (big == PAGES_1G && !Paging::have_1g)
                continue;
            u64 bytes = big << 12;
            if (pages >= big && !(va & (bytes - 1)) && !(pa & (bytes - 1)) &&
                Paging::range_empty(pd->pml4, va, bytes)) {
                step = big;
                break;
            }
        }
        if (!Paging::map(pd->pml4, va, pa, step << 12, pte_flags(rights), step > 1))
            return false;
        va += step << 12;
        pa += step << 12;
        pages -= step;
    }
    return true;
}

/*
 * What an Mdb operation leaves to its finish(), per CPU (an operation starts and ends on one
 * CPU, so another CPU's finish() never takes it over and returns before it is done): the PDs
 * whose last capability went (their spaces to empty), and the PDs whose mappings or ports lost
 * rights. Only CPUs that run one of those right now need the shootdown's flush; the others
 * flush when they switch to such a PD (CR3 load without PCID, or Pd::tlb_gen with PCID; I/O
 * bitmap version).
 */
void must_flush(Pd *pd)
{
    Tlb_flush &f = Cpu::current().flush;
    for (unsigned i = 0; i < f.n; i++)
        if (f.pd[i] == pd)
            return;
    if (f.n < Tlb_flush::MAX)
        f.pd[f.n++] = pd;
    else
        f.all = true;
}
Spinlock utcb_lock;  // not Mdb::lock: unmap_utcb() may run under it
Ec *utcbs;           // retired ECs whose UTCB is still mapped

/* A capability to o appeared or went (Mdb::lock held): PDs count theirs. */
void cap_added(Kobject *o)
{
    if (o->otype == Obj_type::PD)
        static_cast<Pd *>(o)->caps++;
}

void cap_removed(Kobject *o)
{
    if (o->otype != Obj_type::PD)
        return;
    Pd *pd = static_cast<Pd *>(o);
    if (--pd->caps || pd == Pd::root)
        return;
    // Nobody can name the PD any more: empty its spaces (after this operation), so that what
    // it holds, including capabilities to its own ECs, lets go; it takes no new nodes.
    pd->dying = true;
    pd->get();  // held until its spaces are empty
    Cpu &c = Cpu::current();
    pd->dying_next = c.dying;
    c.dying = pd;
}

struct Observer final : Mdb_observer
{
    bool mapped(Mdb_node &n) override
    {
        Pd *pd = owner(n);
        if (pd == Pd::kernel)
            return true;  // the kernel's resources are not mapped anywhere
        if (pd->dying)
            return false;  // being emptied: reported like a lack of memory
        switch (n.space->type()) {
        case Crd::OBJ: {
            Kobject *o = n.object();
            o->get();
            if (pd->obj.insert(n.base, o, n.rights) != Space_obj::Result::OK) {
                release(o);
                return false;
            }
            cap_added(o);
            return true;
        }
        case Crd::MEM:
            if (!map_node(pd, n.base, n.payload, n.size(), n.rights)) {
                Paging::unmap_range(pd->pml4, n.base << 12, n.size() << 12);
                return false;
            }
            return true;
        case Crd::PIO: return pd->grant_ports(static_cast<u32>(n.base), static_cast<u32>(n.size()));
        default: return true;
        }
    }

    void demoted(Mdb_node &n, unsigned) override
    {
        Pd *pd = owner(n);
        if (pd == Pd::kernel)
            return;
        switch (n.space->type()) {
        case Crd::OBJ: {
            Kobject *o = n.object();
            if (n.rights) {
                pd->obj.restrict(n.base, o, n.rights);
                return;
            }
            if (pd->obj.remove(n.base, o)) {
                cap_removed(o);
                release(o);  // safe under Mdb::lock: destruction waits (rcu.hpp)
            }
            return;
        }
        case Crd::MEM: {
            u64 page = n.base, pages = n.size();
            if (page >= (USER_ADDR >> 12))
                return;
            if (page + pages > (USER_ADDR >> 12))
                pages = (USER_ADDR >> 12) - page;
            Lock_guard g(pd->lock);
            if (!(n.rights & 7))
                Paging::unmap_range(pd->pml4, page << 12, pages << 12);
            else if (!(n.rights & 2))
                Paging::protect(pd->pml4, page << 12, pages << 12, false);
            // Before the shootdown: CPUs that switch to the PD from now on flush its PCID.
            __atomic_add_fetch(&pd->tlb_gen, 1, __ATOMIC_SEQ_CST);
            must_flush(pd);
            return;
        }
        case Crd::PIO:
            if (!n.rights) {
                pd->revoke_ports(static_cast<u32>(n.base), static_cast<u32>(n.size()));
                must_flush(pd);  // the IPI makes running ECs reload their I/O bitmap
            }
            return;
        default: return;
        }
    }
} observer;

/*
 * After an Mdb operation: flush TLBs and empty the spaces of PDs that lost their last capability
 * (which may make more PDs lose theirs), with no lock held.
 */
void finish()
{
    // Nothing pending, the usual case: no locks.
    Cpu &c = Cpu::current();
    if (!__atomic_load_n(&utcbs, __ATOMIC_ACQUIRE) && !c.dying && !c.flush.n && !c.flush.all)
        return;
    for (;;) {
        Ec *ecs;
        {
            Lock_guard g(utcb_lock);
            ecs = utcbs;
            utcbs = nullptr;
        }
        for (Ec *ec = ecs; ec; ec = ec->utcb_next)
            Mdb::remove_root(ec->pd->mdb_mem, ec->utcb_addr >> 12, virt_to_phys(ec->utcb) >> 12, &observer);
        Pd *pds = c.dying;
        Tlb_flush flush = c.flush;
        c.dying = nullptr;
        c.flush = {};
        bool any = flush.n || flush.all;
        if (any)
            Shootdown::run(flush);
        // Those UTCBs are now unmapped and out of every TLB: their ECs may start their grace
        // period (only then can the pages go back to the pool, Ec::destroy).
        while (Ec *ec = ecs) {
            ecs = ec->utcb_next;
            ec->utcb_next = nullptr;
            ec->utcb_mapped = false;
            Rcu::defer(ec);
        }
        if (!pds && !any && !__atomic_load_n(&utcbs, __ATOMIC_ACQUIRE))
            return;
        while (Pd *pd = pds) {
            pds = pd->dying_next;
            pd->dying_next = nullptr;
            Mdb::destroy(pd->mdb_obj, &observer);
            Mdb::destroy(pd->mdb_mem, &observer);
            Mdb::destroy(pd->mdb_pio, &observer);
            release(pd);  // the reference cap_removed() took
        }
    }
}

}  // namespace

void Mapping::init()
{
    Mdb::alloc_node = [] { return node_cache.alloc(); };
    Mdb::free_node = [](void *p) { node_cache.free(p); };
}

Mdb::Status Mapping::insert_root(Pd *pd, Crd::Type t, u64 base, unsigned order, unsigned rights, u64 payload)
{
    Mdb::Status s = Mdb::insert_root(pd->mdb_space(t), base, order, rights, payload, &observer);
    finish();
    return s;
}

Mdb::Status Mapping::insert_roots(Pd *pd, Crd::Type t, u64 first, u64 count, unsigned rights, u64 payload)
{
    Mdb::Status s = Mdb::insert_roots(pd->mdb_space(t), first, count, rights, payload, &observer);
    finish();
    return s;
}

Mdb::Result Mapping::delegate(Pd *src, Crd send, Pd *dst, Crd window, u64 hotspot)
{
    Mdb::Result r = Mdb::delegate(src->mdb_space(send.type()), send, dst->mdb_space(send.type()), window,
                                  hotspot, &observer);
    finish();
    return r;
}

Crd Mapping::translate(Pd *src, Crd item, Pd *dst, Crd window)
{
    if (item.is_null())
        return Crd();
    return Mdb::translate(src->mdb_space(item.type()), item, dst->mdb_space(item.type()), window);
}

Crd Mapping::lookup(Pd *pd, Crd::Type t, u64 sel) { return Mdb::lookup(pd->mdb_space(t), sel); }

void Mapping::revoke(Pd *pd, Crd crd, bool self)
{
    if (crd.is_null())
        return;
    Mdb::revoke(pd->mdb_space(crd.type()), crd, self, &observer);
    finish();
}

void Mapping::destroy(Pd *pd)
{
    Mdb::destroy(pd->mdb_obj, &observer);
    Mdb::destroy(pd->mdb_mem, &observer);
    Mdb::destroy(pd->mdb_pio, &observer);
    finish();
}

bool Mapping::free(Pd *pd, Crd::Type t, u64 base, unsigned order)
{
    Lock_guard g(Mdb::lock);
    return pd->mdb_space(t).free(base, order);
}

void Mapping::unmap_utcb(Ec *ec)
{
    Lock_guard g(utcb_lock);
    ec->utcb_next = utcbs;
    utcbs = ec;
}

void Mapping::settle()
{
    if (__atomic_load_n(&utcbs, __ATOMIC_ACQUIRE))
        finish();
}

u64 Mapping::nodes_in_use() { return node_cache.stats().in_use; }
