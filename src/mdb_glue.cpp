/*
 * Mapping database glue (see include/mdb_glue.hpp).
 */
#include "mdb_glue.hpp"
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
#include "slab.hpp"
#include "x86.hpp"

Pd *Pd::kernel;

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
    Mdb_glue::Flush &f = Cpu::current().flush;
    for (unsigned i = 0; i < f.n; i++)
        if (f.pd[i] == pd)
            return;
    if (f.n < Mdb_glue::Flush::MAX)
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
        while (Ec *ec = ecs) {
            ecs = ec->utcb_next;
            ec->utcb_next = nullptr;
            Mdb::remove_root(ec->pd->sp_mem, ec->utcb_addr >> 12, virt_to_phys(ec->utcb) >> 12, &observer);
        }
        Pd *pds = c.dying;
        Mdb_glue::Flush flush = c.flush;
        c.dying = nullptr;
        c.flush = {};
        bool any = flush.n || flush.all;
        if (!pds && !any && !__atomic_load_n(&utcbs, __ATOMIC_ACQUIRE))
            return;
        if (any)
            Mdb_glue::shootdown(flush);
        while (Pd *pd = pds) {
            pds = pd->dying_next;
            pd->dying_next = nullptr;
            Mdb::destroy(pd->sp_obj, &observer);
            Mdb::destroy(pd->sp_mem, &observer);
            Mdb::destroy(pd->sp_pio, &observer);
            release(pd);  // the reference cap_removed() took
        }
    }
}

volatile unsigned shootdown_pending;
bool shootdown_busy;

}  // namespace

void Mdb_glue::init()
{
    Mdb::alloc_node = [] { return node_cache.alloc(); };
    Mdb::free_node = [](void *p) { node_cache.free(p); };
}

void Mdb_glue::init_kernel_pd(u64 hip_phys)
{
    Pd *k = Pd::create();
    if (!k)
        panic("MDB: out of memory for the kernel PD");
    Pd::kernel = k;

    // Memory: every frame below 2^52 bytes except the holes of ABI 9.6; the HIP read-only.
    struct Hole
    {
        u64 first, end;
    };
    Hole holes[3 + Madt_info::MAX_IOAPIC];
    unsigned n = 0;
    holes[n++] = {Boot::hyp_base >> 12, (Boot::hyp_end + PAGE_SIZE - 1) >> 12};
    u64 lapic = Boot::acpi.madt.lapic_address ? Boot::acpi.madt.lapic_address : 0xfee00000;
    holes[n++] = {lapic >> 12, (lapic >> 12) + 1};
    for (unsigned i = 0; i < Boot::acpi.madt.num_ioapic && i < Madt_info::MAX_IOAPIC; i++)
        holes[n++] = {Boot::acpi.madt.ioapic[i].address >> 12u,
                      (Boot::acpi.madt.ioapic[i].address >> 12u) + 1};
    for (unsigned i = 1; i < n; i++)  // sort by start (insertion)
        for (unsigned j = i; j > 0 && holes[j].first < holes[j - 1].first; j--) {
            Hole t = holes[j];
            holes[j] = holes[j - 1];
            holes[j - 1] = t;
        }
    u64 page = 0, top = u64{1} << 40;
    for (unsigned i = 0; i <= n; i++) {
        u64 end = i < n ? holes[i].first : top;
        if (end > page && Mdb::insert_roots(k->sp_mem, page, end - page, 7, page) != Mdb::Status::OK)
            panic("MDB: out of memory for the kernel's memory nodes");
        if (i < n && holes[i].end > page)
            page = holes[i].end;
    }
    // The HIP frame sits in the hypervisor region: its own node, read-only.
    Mdb::insert_root(k->sp_mem, hip_phys >> 12, 0, 1, hip_phys >> 12);
    Mdb::insert_root(k->sp_pio, 0, 16, 7, 0);
    for (unsigned c = 0; c < 64; c++)
        if (Sc *sc = Gsi::idle_sc(c))
            Mdb::insert_root(k->sp_obj, Abi::ksel_idle_sc(c), 0, 1, reinterpret_cast<u64>(sc));
    for (unsigned g = 0; g < Gsi::COUNT; g++)
        if (Sm *sm = Gsi::sm(g))
            Mdb::insert_root(k->sp_obj, Abi::ksel_gsi_sm(g), 0, 3, reinterpret_cast<u64>(sm));
}

Mdb::Status Mdb_glue::insert_root(Pd *pd, Crd::Type t, u64 base, unsigned order, unsigned rights, u64 payload)
{
    Mdb::Status s = Mdb::insert_root(pd->space(t), base, order, rights, payload, &observer);
    finish();
    return s;
}

Mdb::Status Mdb_glue::insert_roots(Pd *pd, Crd::Type t, u64 first, u64 count, unsigned rights, u64 payload)
{
    Mdb::Status s = Mdb::insert_roots(pd->space(t), first, count, rights, payload, &observer);
    finish();
    return s;
}

Mdb::Result Mdb_glue::delegate(Pd *src, Crd send, Pd *dst, Crd window, u64 hotspot)
{
    Mdb::Result r =
        Mdb::delegate(src->space(send.type()), send, dst->space(send.type()), window, hotspot, &observer);
    finish();
    return r;
}

Crd Mdb_glue::translate(Pd *src, Crd item, Pd *dst, Crd window)
{
    if (item.is_null())
        return Crd();
    return Mdb::translate(src->space(item.type()), item, dst->space(item.type()), window);
}

Crd Mdb_glue::lookup(Pd *pd, Crd::Type t, u64 sel) { return Mdb::lookup(pd->space(t), sel); }

void Mdb_glue::revoke(Pd *pd, Crd crd, bool self)
{
    if (crd.is_null())
        return;
    Mdb::revoke(pd->space(crd.type()), crd, self, &observer);
    finish();
}

void Mdb_glue::destroy(Pd *pd)
{
    Mdb::destroy(pd->sp_obj, &observer);
    Mdb::destroy(pd->sp_mem, &observer);
    Mdb::destroy(pd->sp_pio, &observer);
    finish();
}

bool Mdb_glue::free(Pd *pd, Crd::Type t, u64 base, unsigned order)
{
    Lock_guard g(Mdb::lock);
    return pd->space(t).free(base, order);
}

namespace {
/* Answer a flush request addressed to this CPU, if there is one. */
void tlb_service(Cpu &c)
{
    if (!__atomic_exchange_n(&c.tlb_req, false, __ATOMIC_ACQ_REL))
        return;
    set_cr3(get_cr3());
    __atomic_sub_fetch(&shootdown_pending, 1, __ATOMIC_RELEASE);
}

/*
 * While waiting in a shootdown: answer other CPUs' flush requests by polling (an interrupt
 * window alone is not enough: under QEMU's TCG a "sti; pause; cli" loop never takes the IPI),
 * and open a short window for the other interrupts (they never switch ECs in kernel mode).
 */
void wait_step(Cpu &c)
{
    tlb_service(c);
    asm volatile("sti; nop; cli; pause" ::: "memory");
}
}  // namespace

void Mdb_glue::unmap_utcb(Ec *ec)
{
    Lock_guard g(utcb_lock);
    ec->utcb_next = utcbs;
    utcbs = ec;
}

void Mdb_glue::settle()
{
    if (__atomic_load_n(&utcbs, __ATOMIC_ACQUIRE))
        finish();
}

u64 Mdb_glue::nodes_in_use() { return node_cache.stats().in_use; }

void Mdb_glue::shootdown(const Flush &f)
{
    Cpu &self = Cpu::current();
    // One shootdown at a time; a CPU that waits still answers the others' requests.
    while (__atomic_exchange_n(&shootdown_busy, true, __ATOMIC_ACQUIRE))
        wait_step(self);
    set_cr3(get_cr3());  // this CPU: user entries are not global
    // The PDs' tlb_gen went up before (locked adds); Sched's load_space() publishes a CPU's
    // space before it reads tlb_gen. So either we see the CPU in the PD, or it sees the new
    // generation (and a CPU without PCIDs flushes on every CR3 load anyway).
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    auto target = [&](const Cpu &c) {
        if (!c.online || &c == &self)
            return false;
        if (f.all)
            return true;
        const Pd *s = __atomic_load_n(&c.space, __ATOMIC_ACQUIRE);
        for (unsigned i = 0; i < f.n; i++)
            if (f.pd[i] == s)
                return true;
        return false;
    };
    unsigned others = 0;
    for (unsigned i = 0; i < Cpu::count; i++)
        if (target(*Cpu::table[i])) {
            Cpu::table[i]->shootdown_mark = true;
            others++;
        }
    if (!others) {
        __atomic_store_n(&shootdown_busy, false, __ATOMIC_RELEASE);
        return;
    }
    __atomic_store_n(&shootdown_pending, others, __ATOMIC_RELEASE);
    for (unsigned i = 0; i < Cpu::count; i++)
        if (Cpu *c = Cpu::table[i]; c->shootdown_mark) {
            c->shootdown_mark = false;
            __atomic_store_n(&c->tlb_req, true, __ATOMIC_RELEASE);
            Lapic::send_ipi(c->apic_id, Vec::IPI_TLB);
        }
    while (__atomic_load_n(&shootdown_pending, __ATOMIC_ACQUIRE))
        wait_step(self);
    __atomic_store_n(&shootdown_busy, false, __ATOMIC_RELEASE);
}

void tlb_ipi() { tlb_service(Cpu::current()); }
