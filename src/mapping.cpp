/*
 * The kernel side of the mapping database (include/mapping.hpp): the observer that mirrors
 * node changes into a PD's object space, page table and I/O bitmap, and the deferred work
 * an operation leaves (UTCB unmaps, emptying PDs whose last capability went, the TLB
 * shootdown), done by finish() with no lock held. Long work goes in pieces of PIECE units
 * (docs/mdb.md, "Preemption"): a revoke hypercall is executed again until it is complete, the
 * teardown of dying PDs and retired ECs' UTCBs continues in every later operation and safe point.
 * The pure database is src/mdb.cpp; the shootdown itself src/shootdown.cpp; the kernel PD's
 * resources src/kernel_pd.cpp.
 */
#include "mapping.hpp"
#include "abi/constants.hpp"
#include "assert.hpp"
#include "boot.hpp"
#include "console.hpp"
#include "cpu.hpp"
#include "gsi.hpp"
#include "idt.hpp"
#include "iommu.hpp"
#include "lapic.hpp"
#include "memory.hpp"
#include "objects.hpp"
#include "paging.hpp"
#include "quota.hpp"
#include "rcu.hpp"
#include "shootdown.hpp"
#include "slab.hpp"
#include "vmx.hpp"
#include "vmx_logic.hpp"
#include "x86.hpp"

namespace {

constinit Slab_cache node_cache{"mdb", sizeof(Mdb_node), 16};
constinit Slab_cache quota_cache{"quota", Quota::SIZE, 64};  // docs/quota.md

constexpr u64 PAGES_2M = 512, PAGES_1G = PAGES_2M * 512;

Pd *owner(const Mdb_node &n) { return static_cast<Pd *>(n.space->owner()); }

u64 pte_flags(unsigned rights) { return Pte::U | ((rights & 2) ? Pte::W : 0); }

/*
 * Leaf flags of the guest page table. Nested paging (SVM) has the host's format, U included (guest
 * accesses count as user ones). EPT (VMX) shares the layout where it matters to the walker
 * (present = R = bit 0, W = bit 1, large = bit 7, the address, and intermediate entries P|W|U =
 * R|W|X): a leaf has X (U's bit) for the X right and a memory type, which for guest accesses takes
 * the MTRRs' place (docs/vmx.md): RAM write-back with the guest's PAT ignored (no second type for
 * memory the host maps write-back), anything else (device memory) uncached with the guest's PAT
 * combined (it may still choose write-combining).
 */
u64 guest_flags(unsigned rights, bool ram)
{
    if (!Vmx::usable)
        return pte_flags(rights);
    return ept_leaf(0, 0, rights, ram ? Ept::WB : Ept::UC, ram);  // Paging::map adds P (= R), PS (= large)
}

/* The largest leaf level a table takes: 2 (1 GiB), 1 (2 MiB) or 0. */
unsigned host_max_level() { return Paging::have_1g ? 2 : 1; }
/* The same from a mask of large pages (bit 0: 2 MiB, bit 1: 1 GiB; the IOMMU's). */
unsigned level_of(unsigned large) { return !(large & 1) ? 0 : (large & 2) ? 2 : 1; }
unsigned guest_max_level() { return Vmx::usable ? Vmx::ept_max_level() : host_max_level(); }

/*
 * Map [page, page + pages) to phys_page... in `table` (a host, guest or DMA page table; VT-d reads
 * bits 0 and 1 as read and write) with leaf `flags` and the largest pages (up to max_level) alignment and
 * emptiness allow. pd->lock held.
 */
template <class F = Paging::Host>
bool map_pages(u64 *table, u64 page, u64 phys_page, u64 pages, u64 flags, unsigned max_level, Quota *q)
{
    u64 va = page << 12, pa = phys_page << 12;
    static const u64 sizes[] = {PAGES_1G, PAGES_2M};
    while (pages) {
        u64 step = 1;
        for (u64 big : sizes) {
            if ((big == PAGES_1G && max_level < 2) || max_level < 1)
                continue;
            u64 bytes = big << 12;
            if (pages >= big && !(va & (bytes - 1)) && !(pa & (bytes - 1)) &&
                Paging::range_empty(table, va, bytes)) {
                step = big;
                break;
            }
        }
        if (!Paging::map<F>(table, va, pa, step << 12, flags, step > 1, q))
            return false;
        va += step << 12;
        pa += step << 12;
        pages -= step;
    }
    return true;
}

/* A node's pages below USER_ADDR in the PD's host page table. */
bool map_node(Pd *pd, u64 page, u64 phys_page, u64 pages, unsigned rights)
{
    constexpr u64 user_pages = USER_ADDR >> 12;
    if (page >= user_pages)
        return true;  // recorded only: not reachable from host user mode (ABI 1.1)
    if (page + pages > user_pages)
        pages = user_pages - page;
    Lock_guard g(pd->lock);
    return map_pages(pd->pml4, page, phys_page, pages, pte_flags(rights), host_max_level(), pd->quota);
}

/*
 * A G-bit memory node in the PD's guest page table (ABI 3.2): guest-physical page = node base,
 * below 2^48 (four levels of nested paging); beyond that it is recorded only.
 */
constexpr u64 GUEST_PAGES = u64{1} << (48 - 12);

bool guest_part(u64 page, u64 &pages)
{
    if (page >= GUEST_PAGES)
        return false;
    if (page + pages > GUEST_PAGES)
        pages = GUEST_PAGES - page;
    return true;
}

bool map_guest(Pd *pd, u64 page, u64 phys_page, u64 pages, unsigned rights)
{
    if (!guest_part(page, pages))
        return true;
    if (!pd->make_gpt())
        return false;
    Lock_guard g(pd->lock);
    return map_pages(pd->gpt, page, phys_page, pages,
                     guest_flags(rights, Vmx::usable && Boot::is_ram(phys_page << 12, pages << 12)),
                     guest_max_level(), pd->quota);
}

/*
 * A D-bit memory node in the PD's DMA page table (ABI 3.2, 11.4): device address = node base,
 * below the units' address width; beyond that, or without DMA remapping, recorded only.
 */
bool dma_part(u64 page, u64 &pages)
{
    u64 top = Iommu::dma_pages();
    if (page >= top)
        return false;
    if (page + pages > top)
        pages = top - page;
    return true;
}

bool map_dma(Pd *pd, u64 page, u64 phys_page, u64 pages, unsigned rights)
{
    if (!dma_part(page, pages))
        return true;
    if (!Iommu::make_table(pd))
        return false;
    Lock_guard g(pd->lock);
    unsigned level = level_of(Iommu::large_pages());
    // AMD-Vi tables (Paging::Amd): IR for any right, IW for W; the walker adds present.
    bool ok =
        Iommu::Amd::active()
            ? map_pages<Paging::Amd>(pd->dpt, page, phys_page, pages,
                                     Paging::Amd::IR | ((rights & 2) ? Paging::Amd::IW : 0), level, pd->quota)
            : map_pages(pd->dpt, page, phys_page, pages, pte_flags(rights), level, pd->quota);
    Iommu::sync(pd, page << 12, pages << 12, false);
    return ok;
}

/* DMA pages go or become read-only: out of every IOMMU cache before this returns. */
void unmap_dma(Pd *pd, u64 page, u64 pages, bool remove)
{
    if (!dma_part(page, pages) || !__atomic_load_n(&pd->dpt, __ATOMIC_ACQUIRE))
        return;
    Lock_guard g(pd->lock);
    if (Iommu::Amd::active()) {
        if (remove)
            Paging::unmap<Paging::Amd>(pd->dpt, page << 12, pages << 12, pd->dkeep);
        else
            Paging::protect<Paging::Amd>(pd->dpt, page << 12, pages << 12, false);
    } else if (remove)
        Paging::unmap(pd->dpt, page << 12, pages << 12, pd->dkeep);
    else
        Paging::protect(pd->dpt, page << 12, pages << 12, false);
    Iommu::sync(pd, page << 12, pages << 12, true);
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
/* The part of [page, page + pages) below USER_ADDR; false if none. */
bool user_part(u64 page, u64 &pages)
{
    constexpr u64 user_pages = USER_ADDR >> 12;
    if (page >= user_pages)
        return false;
    if (page + pages > user_pages)
        pages = user_pages - page;
    return true;
}

/*
 * Pages leave a PD's page table (tables left empty go too, after the shootdown and a grace
 * period: Paging::retire_table), or become read-only. Before the shootdown: CPUs that switch to
 * the PD from now on flush its PCID.
 */
void unmap(Pd *pd, u64 page, u64 pages)
{
    if (!user_part(page, pages))
        return;
    Lock_guard g(pd->lock);
    Paging::unmap(pd->pml4, page << 12, pages << 12, pd->keep);
    __atomic_add_fetch(&pd->tlb_gen, 1, __ATOMIC_SEQ_CST);
    must_flush(pd);
}

/* The guest-table access bits a node with `rights` must not have (W; on EPT also X). */
u64 guest_lost(unsigned rights) { return guest_flags(7, true) & ~guest_flags(rights, true); }

/*
 * Guest pages go or lose access (W; X on EPT): vCPUs flush their guest TLB before their next
 * entry (Pd::gpt_gen, src/svm.cpp, src/vmx.cpp); CPUs running one now get the shootdown's IPI,
 * which ends the guest.
 */
void unmap_guest(Pd *pd, u64 page, u64 pages, unsigned rights)
{
    if (!guest_part(page, pages) || !__atomic_load_n(&pd->gpt, __ATOMIC_ACQUIRE))
        return;
    Lock_guard g(pd->lock);
    if (!(rights & 7))
        Paging::unmap(pd->gpt, page << 12, pages << 12, pd->gkeep);
    else
        Paging::clear_leaf_bits(pd->gpt, page << 12, pages << 12, guest_lost(rights));
    __atomic_add_fetch(&pd->gpt_gen, 1, __ATOMIC_SEQ_CST);
    must_flush(pd);
}

void protect(Pd *pd, u64 page, u64 pages)
{
    if (!user_part(page, pages))
        return;
    Lock_guard g(pd->lock);
    Paging::protect(pd->pml4, page << 12, pages << 12, false);
    __atomic_add_fetch(&pd->tlb_gen, 1, __ATOMIC_SEQ_CST);
    must_flush(pd);
}

Spinlock utcb_lock;  // not Mdb::lock: unmap_utcb() may run under it
Ec *utcbs;           // retired ECs whose UTCB is still mapped (newest first)
bool utcb_busy;      // a CPU is removing one (one at a time: they share the list head)
u64 teardowns;       // dying PDs and UTCBs not yet torn down (kernel statistics)

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
    pd->teardown = Mdb_walk{};
    pd->teardown_space = 0;
    Cpu &c = Cpu::current();
    pd->dying_next = c.dying;
    c.dying = pd;
    __atomic_add_fetch(&teardowns, 1, __ATOMIC_RELAXED);
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
            // The slot's reference, taken before the insert makes the capability visible to
            // lock-free lookups (whose try_get() must not find 0 on a new object).
            Kobject *o = n.object();
            o->get();
            if (pd->obj.insert(n.base, o, n.rights) != Space_obj::Result::OK) {
                // Not release(): a new object being published (insert_root) would drop to 0 and
                // be retired here, then destroyed once more by its creator (destroy_unpublished).
                // A delegated one keeps the source capability's reference (Mdb::lock held).
                o->unget();
                return false;
            }
            cap_added(o);
            return true;
        }
        case Crd::MEM:
            if (!map_node(pd, n.base, n.payload, n.size(), n.rights) ||
                ((n.attr & Mdb_node::GUEST) && !map_guest(pd, n.base, n.payload, n.size(), n.rights)) ||
                ((n.attr & Mdb_node::DMA) && !map_dma(pd, n.base, n.payload, n.size(), n.rights))) {
                // What was mapped goes again (tables with it): CPUs running the PD may have seen it.
                unmap(pd, n.base, n.size());
                if (n.attr & Mdb_node::GUEST)
                    unmap_guest(pd, n.base, n.size(), 0);  // rights 0: removed
                if (n.attr & Mdb_node::DMA)
                    unmap_dma(pd, n.base, n.size(), true);
                return false;
            }
            return true;
        case Crd::PIO:
            if (!pd->grant_ports(static_cast<u32>(n.base), static_cast<u32>(n.size())))
                return false;
            if ((n.attr & Mdb_node::GUEST) &&
                !pd->grant_guest_ports(static_cast<u32>(n.base), static_cast<u32>(n.size()))) {
                pd->revoke_ports(static_cast<u32>(n.base), static_cast<u32>(n.size()));
                must_flush(pd);
                return false;
            }
            return true;
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
        case Crd::MEM:
            if (!(n.rights & 7))
                unmap(pd, n.base, n.size());
            else if (!(n.rights & 2))
                protect(pd, n.base, n.size());
            if ((n.attr & Mdb_node::GUEST) && (!(n.rights & 7) || guest_lost(n.rights)))
                unmap_guest(pd, n.base, n.size(), n.rights);
            if ((n.attr & Mdb_node::DMA) && (!(n.rights & 7) || !(n.rights & 2)))
                unmap_dma(pd, n.base, n.size(), !(n.rights & 7));
            return;
        case Crd::PIO:
            if (!n.rights) {
                pd->revoke_ports(static_cast<u32>(n.base), static_cast<u32>(n.size()));
                if (n.attr & Mdb_node::GUEST)
                    pd->revoke_guest_ports(static_cast<u32>(n.base), static_cast<u32>(n.size()));
                must_flush(pd);  // the IPI makes running ECs reload their I/O bitmap and ends guests
            }
            return;
        default: return;
        }
    }
} observer;

/* Shoot down what this CPU's operations took away so far (before the operation returns). */
void flush()
{
    Cpu &c = Cpu::current();
    if (!c.flush.n && !c.flush.all)
        return;
    Tlb_flush f = c.flush;
    c.flush = {};
    Shootdown::run(f);
}

/* Retired ECs' UTCBs, oldest first, within budget; true when none is left. */
bool remove_utcbs(u64 &budget)
{
    while (__atomic_load_n(&utcbs, __ATOMIC_ACQUIRE)) {
        if (!budget || __atomic_exchange_n(&utcb_busy, true, __ATOMIC_ACQUIRE))
            return false;  // out of budget, or another CPU is at it
        Ec *ec;
        {
            Lock_guard g(utcb_lock);
            for (ec = utcbs; ec && ec->utcb_next;)  // the oldest: its removal may have begun
                ec = ec->utcb_next;
        }
        bool done = !ec || Mdb::walk(ec->utcb_walk, budget, &observer);
        if (done && ec) {
            Lock_guard g(utcb_lock);
            for (Ec **p = &utcbs; *p; p = &(*p)->utcb_next)
                if (*p == ec) {
                    *p = nullptr;  // it was the last
                    break;
                }
            __atomic_sub_fetch(&teardowns, 1, __ATOMIC_RELAXED);
        }
        __atomic_store_n(&utcb_busy, false, __ATOMIC_RELEASE);
        flush();
        if (!done)
            return false;
        if (ec) {
            // Its UTCB is unmapped and out of every TLB now: the EC may start its grace period
            // (only then can the page go back to the pool, Ec::destroy).
            ec->utcb_mapped = false;
            Rcu::defer(ec);
        }
    }
    return true;
}

/* Empty the spaces of this CPU's dying PDs (one space after the other) within budget. */
void empty_dying(u64 &budget)
{
    Cpu &c = Cpu::current();
    while (Pd *pd = c.dying) {
        if (!budget)
            return;
        // The walk may make more PDs die: they come first (c.dying), this one continues later.
        if (!pd->teardown.active()) {
            if (pd->teardown_space == 3) {
                for (Pd **p = &c.dying; *p; p = &(*p)->dying_next)
                    if (*p == pd) {
                        *p = pd->dying_next;
                        break;
                    }
                pd->dying_next = nullptr;
                __atomic_sub_fetch(&teardowns, 1, __ATOMIC_RELAXED);
                release(pd);  // the reference cap_removed() took
                continue;
            }
            Mdb_space &s = pd->teardown_space == 0   ? pd->mdb_obj
                           : pd->teardown_space == 1 ? pd->mdb_mem
                                                     : pd->mdb_pio;
            pd->teardown_space++;
            Mdb::walk_begin(pd->teardown, s, 0, 63, 0x1f, true);
        }
        Mdb::walk(pd->teardown, budget, &observer);
        flush();
    }
}

/*
 * After an Mdb operation (no lock held): flush TLBs, then a piece of the deferred teardown: the
 * retired ECs' UTCBs and the spaces of PDs that lost their last capability (which may make more
 * PDs lose theirs). What is left continues in later operations and safe points.
 */
void finish(u64 budget = Mapping::PIECE)
{
    // Nothing pending, the usual case: no locks.
    Cpu &c = Cpu::current();
    if (!__atomic_load_n(&utcbs, __ATOMIC_ACQUIRE) && !c.dying && !c.flush.n && !c.flush.all)
        return;
    flush();
    remove_utcbs(budget);
    empty_dying(budget);
}

}  // namespace

void Mapping::init()
{
    Quota::alloc_mem = [] { return quota_cache.alloc(); };
    Quota::free_mem = [](void *p) { quota_cache.free(p); };
    // A node is paid for by the PD whose space it is in (docs/quota.md).
    Mdb::alloc_node = [](Mdb_space &s) -> void * {
        Quota *q = static_cast<Pd *>(s.owner())->quota;
        if (!Quota::charge(q, node_cache.object_size()))
            return nullptr;
        void *p = node_cache.alloc();
        if (!p)
            Quota::refund(q, node_cache.object_size());
        return p;
    };
    Mdb::free_node = [](void *p, Mdb_space *s) {
        if (p)
            node_cache.free(p);
        if (s)
            Quota::refund(static_cast<Pd *>(s->owner())->quota, node_cache.object_size());
    };
    // Emptied tables: lock-free lookups (object spaces) and walkers (page tables, after the
    // shootdown that every unmap is followed by) may still see them for a grace period. Their
    // quota gets them back at once.
    auto retire = [](void *page, Quota *q) {
        Quota::refund(q, PAGE_SIZE);
        Rcu::defer_page(page);
    };
    Space_obj::retire_page = retire;
    Paging::retire_table = retire;
}

Mdb::Status Mapping::insert_root(Pd *pd, Crd::Type t, u64 base, unsigned order, unsigned rights, u64 payload)
{
    Mdb::Status s = Mdb::insert_root(pd->mdb_space(t), base, order, rights, payload, &observer);
    finish();
    return s;
}

Mdb::Status Mapping::map_access_page(Pd *pd, u64 page)
{
    if (!pd->make_apic_access())
        return Mdb::Status::OOM;
    u64 phys_page = virt_to_phys(pd->apic_access) >> 12;
    Mdb::Status s = insert_root(pd, Crd::MEM, page, 0, 3, phys_page);
    if (s != Mdb::Status::OK)
        return s;
    if (!map_guest(pd, page, phys_page, 1, 3))  // RAM: write-back, PAT ignored (ABI 7.9.2)
        return Mdb::Status::OOM;                // the host node stays, as after any partial delegation
    return s;
}

Mdb::Status Mapping::insert_roots(Pd *pd, Crd::Type t, u64 first, u64 count, unsigned rights, u64 payload)
{
    Mdb::Status s = Mdb::insert_roots(pd->mdb_space(t), first, count, rights, payload, &observer);
    finish();
    return s;
}

Mdb::Result Mapping::delegate(Pd *src, Crd send, Pd *dst, Crd window, u64 hotspot, u8 attr)
{
    Mdb::Result r = Mdb::delegate(src->mdb_space(send.type()), send, dst->mdb_space(send.type()), window,
                                  hotspot, &observer, attr);
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

bool Mapping::revoke(Ec *ec, Pd *pd, Crd crd, bool self)
{
    Revoke_state &r = ec->revoking;
    if (r.busy && !(r.pd == pd->id && r.crd == crd.value() && r.self == self)) {
        // Another revoke than the one this EC left unfinished (its registers changed, or a
        // recall handler sent it elsewhere): that one is abandoned as it is.
        Mdb::walk_cancel(r.walk);
        r = Revoke_state{};
    }
    if (!r.busy) {
        if (crd.is_null())
            return true;
        r.busy = true;
        r.pd = pd->id;
        r.crd = crd.value();
        r.self = self;
        Mdb::walk_begin(r.walk, pd->mdb_space(crd.type()), crd.base(), crd.order(), crd.rights(), self);
    }
    u64 budget = PIECE;
    bool walked = Mdb::walk(r.walk, budget, &observer);
    finish();  // this piece's shootdown, a piece of the teardown
    if (!walked || Cpu::current().dying)
        return false;  // more to do: the hypercall is executed again
    r = Revoke_state{};
    return true;
}

void Mapping::forget(Ec *ec)
{
    assert(!ec->utcb_walk.active());  // the UTCB went before the EC (Rcu::poll waits for it)
    Mdb::walk_cancel(ec->revoking.walk);
    ec->revoking = Revoke_state{};
}

void Mapping::destroy(Pd *pd)
{
    // The PD is destroyed after it died, and its spaces were emptied then: normally nothing.
    Mdb::destroy(pd->mdb_obj, &observer);
    Mdb::destroy(pd->mdb_mem, &observer);
    Mdb::destroy(pd->mdb_pio, &observer);
    finish();
}

void Mapping::preemption_point()
{
    Shootdown::answer();  // TCG may not take the IPI in the window below
    asm volatile("sti; nop; cli" ::: "memory");
}

void Mapping::trim(Pd *pd)
{
    {
        Lock_guard g(Mdb::lock);  // the object space's writers' lock
        pd->obj.trim();
    }
    {
        Lock_guard g(pd->lock);
        if (Paging::trim(pd->pml4, pd->keep)) {
            __atomic_add_fetch(&pd->tlb_gen, 1, __ATOMIC_SEQ_CST);
            must_flush(pd);
        }
        if (pd->gpt && Paging::trim(pd->gpt, pd->gkeep)) {
            __atomic_add_fetch(&pd->gpt_gen, 1, __ATOMIC_SEQ_CST);
            must_flush(pd);
        }
    }
    finish();
}

bool Mapping::free(Pd *pd, Crd::Type t, u64 base, unsigned order)
{
    Lock_guard g(Mdb::lock);
    return pd->mdb_space(t).free(base, order);
}

void Mapping::unmap_utcb(Ec *ec)
{
    Mdb::walk_begin_root(ec->utcb_walk, ec->pd->mdb_mem, ec->utcb_addr >> 12, virt_to_phys(ec->utcb) >> 12);
    __atomic_add_fetch(&teardowns, 1, __ATOMIC_RELAXED);
    Lock_guard g(utcb_lock);
    ec->utcb_next = utcbs;
    __atomic_store_n(&utcbs, ec, __ATOMIC_RELEASE);
}

bool Mapping::settle()
{
    finish();
    return !__atomic_load_n(&utcbs, __ATOMIC_ACQUIRE);
}

u64 Mapping::nodes_in_use() { return node_cache.stats().in_use; }

void Mapping::node_census(Kstat_census &k)
{
    Slab_cache::Stats s = node_cache.stats();
    k.nodes = s.in_use;
    k.slab_pages += s.slabs << s.order;
}

void Mapping::for_each_node(void (*fn)(const Mdb_node &, void *), void *arg)
{
    node_cache.for_each([&](void *n) { fn(*static_cast<const Mdb_node *>(n), arg); });
}

u64 Mapping::pending() { return __atomic_load_n(&teardowns, __ATOMIC_RELAXED); }
