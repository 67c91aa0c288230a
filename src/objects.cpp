/*
 * Creation and destruction of kernel objects, and the semaphore operations
 * that need no scheduler (up, non-blocking down).
 */
#include "objects.hpp"
#include "abi/status.hpp"
#include "activate.hpp"
#include "assert.hpp"
#include "console.hpp"
#include "cpu.hpp"
#include "fpu.hpp"
#include "iommu.hpp"
#include "ipc.hpp"
#include "kmem.hpp"
#include "mapping.hpp"
#include "memory.hpp"
#include "paging.hpp"
#include "placement_new.hpp"
#include "rcu.hpp"
#include "sched.hpp"
#include "slab.hpp"
#include "string.hpp"
#include "time.hpp"

namespace {
constinit Slab_cache pd_cache{"pd", sizeof(Pd), 64};
constinit Slab_cache ec_cache{"ec", sizeof(Ec), 64};
constinit Slab_cache sc_cache{"sc", sizeof(Sc), 64};
constinit Slab_cache pt_cache{"pt", sizeof(Pt), 64};
constinit Slab_cache sm_cache{"sm", sizeof(Sm), 64};

/*
 * A slab object paid for by payer (docs/quota.md): charged at its stride first; nullptr when the
 * quota or the pool is exhausted.
 */
void *charged_alloc(Slab_cache &c, Quota *payer)
{
    if (!Quota::charge(payer, c.object_size()))
        return nullptr;
    void *p = c.alloc();
    if (!p)
        Quota::refund(payer, c.object_size());
    return p;
}

void charged_free(Slab_cache &c, void *p, Quota *payer)
{
    if (c.free(p))
        Quota::refund(payer, c.object_size());
}

/* Free the user half of a page table: the tables, never the frames they map; refunded to q. */
void free_tables(u64 *table, unsigned level, Quota *q)
{
    unsigned n = level == 3 ? 256 : 512;  // PML4: user half only (level 4: a guest's PML4, all of it)
    if (level == 4)
        level = 3;
    for (unsigned i = 0; i < n; i++) {
        u64 e = table[i];
        if (!(e & Pte::P) || (e & Pte::PS) || level == 0)
            continue;
        free_tables(phys_to_virt<u64>(e & Pte::ADDR), level - 1, q);
    }
    Kmem::free(table, 0, q);
}
}  // namespace

Pd *Pd::root;
constinit Quota Pd::root_quota;

Pd *Pd::create(Quota *payer, Quota *uses)
{
    void *mem = charged_alloc(pd_cache, payer);
    auto pml4 = static_cast<u64 *>(Kmem::alloc_page(uses));
    if (!mem || !pml4) {
        if (mem)
            charged_free(pd_cache, mem, payer);
        if (pml4)
            Kmem::free(pml4, 0, uses);
        return nullptr;
    }
    const u64 *k = Paging::kernel_pml4();
    for (unsigned i = 256; i < 512; i++)
        pml4[i] = k[i];
    Pd *pd = new (mem) Pd;
    static u64 ids;
    pd->id = __atomic_add_fetch(&ids, 1, __ATOMIC_RELAXED);
    pd->pml4 = pml4;
    pd->pml4_phys = virt_to_phys(pml4);
    pd->payer = payer;
    pd->quota = uses;
    pd->obj.quota = pd->keep.quota = pd->gkeep.quota = pd->dkeep.quota = uses;
    Quota::attach(uses);
    return pd;
}

void Pd::destroy()
{
    Mapping::destroy(this);  // every capability range; object references are dropped
    obj.release_tables();
    free_tables(pml4, 3, quota);
    if (gpt)
        free_tables(gpt, 4, quota);
    Iommu::release(this);  // its devices blocked and out of the IOMMU caches first
    if (dpt)
        free_tables(dpt, 4, quota);
    if (io_bitmap)
        Kmem::free(io_bitmap, 1, quota);
    if (guest_iopm)
        Kmem::free(guest_iopm, 2, quota);
    if (apic_access)
        Kmem::free(apic_access, 0, quota);  // its nodes (and their host mappings) went with the space
    Quota *p = payer, *q = quota;
    this->~Pd();
    charged_free(pd_cache, this, p);
    Quota::detach(q);  // the last PD of a quota of its own: the quota goes back (docs/quota.md)
}

/*
 * I/O bitmap versions are unique across all PDs: a CPU's cached copy is keyed by (PD, version),
 * and a PD freed and re-created at the same address must not match a stale copy.
 */
u64 io_generation;

static void new_io_version(Pd *pd)
{
    __atomic_store_n(&pd->io_version, __atomic_add_fetch(&io_generation, 1, __ATOMIC_RELAXED),
                     __ATOMIC_RELEASE);
}

bool Pd::grant_ports(u32 first, u32 count)
{
    Lock_guard g(lock);
    if (!io_bitmap) {
        io_bitmap = static_cast<u8 *>(Kmem::alloc(1, false, quota));  // 8 KiB
        if (!io_bitmap)
            return false;
        memset(io_bitmap, 0xff, IO_BITMAP_BYTES);
    }
    for (u32 p = first; p < first + count && p < 0x10000; p++)
        io_bitmap[p / 8] &= static_cast<u8>(~(1u << (p % 8)));
    new_io_version(this);
    return true;
}

bool Pd::grant_guest_ports(u32 first, u32 count)
{
    Lock_guard g(lock);
    if (!guest_iopm) {
        // SVM's I/O permission map: 12 KiB, physically contiguous; every port intercepted but these.
        auto *t = static_cast<u8 *>(Kmem::alloc(2, false, quota));
        if (!t)
            return false;
        memset(t, 0xff, 4 * PAGE_SIZE);
        __atomic_store_n(&guest_iopm, t, __ATOMIC_RELEASE);  // vCPUs read it without the lock
    }
    for (u32 p = first; p < first + count && p < 0x10000; p++)
        guest_iopm[p / 8] &= static_cast<u8>(~(1u << (p % 8)));
    return true;
}

void Pd::revoke_guest_ports(u32 first, u32 count)
{
    Lock_guard g(lock);
    if (!guest_iopm)
        return;
    for (u32 p = first; p < first + count && p < 0x10000; p++)
        guest_iopm[p / 8] |= static_cast<u8>(1u << (p % 8));
}

void Pd::revoke_ports(u32 first, u32 count)
{
    Lock_guard g(lock);
    if (!io_bitmap)
        return;
    for (u32 p = first; p < first + count && p < 0x10000; p++)
        io_bitmap[p / 8] |= static_cast<u8>(1u << (p % 8));
    new_io_version(this);
}

Ec *Ec::create(Pd *pd, unsigned cpu, u64 utcb_addr, u64 sp, u64 evt, bool global, bool &taken, Quota *payer)
{
    taken = false;
    void *mem = charged_alloc(ec_cache, payer);
    auto utcb = static_cast<Utcb *>(Kmem::alloc_page(payer));
    if (!mem || !utcb) {
        if (mem)
            charged_free(ec_cache, mem, payer);
        if (utcb)
            Kmem::free(utcb, 0, payer);
        return nullptr;
    }
    // The UTCB is a root node of the PD's memory space (ABI 7.4: lookup shows it, rights RW).
    auto st = Mapping::insert_root(pd, Crd::MEM, utcb_addr >> 12, 0, 3, virt_to_phys(utcb) >> 12);
    if (st != Mdb::Status::OK) {
        taken = st == Mdb::Status::OCCUPIED;
        charged_free(ec_cache, mem, payer);
        Kmem::free(utcb, 0, payer);
        return nullptr;
    }
    Ec *ec = new (mem) Ec(pd, cpu, evt, global);
    ec->payer = payer;
    pd->get();
    Fpu::init_state(ec->fpu);
    ec->utcb = utcb;
    ec->utcb_addr = utcb_addr;
    ec->utcb_mapped = true;
    // ABI 7.4: global ECs start with cs 0x1b, ss 0x23, RFLAGS 0x200, rsp = sp, rip 0, GPRs 0.
    ec->regs.cs = Gdt::UCODE_IRET;
    ec->regs.ss = Gdt::UDATA;
    ec->regs.rflags = 0x200;
    ec->regs.rsp = sp;
    ec->regs.vector = 0x1e;
    return ec;
}

bool Pd::make_gpt()
{
    Lock_guard g(lock);
    if (gpt)
        return true;
    auto *t = static_cast<u64 *>(Kmem::alloc_page(quota));
    if (!t)
        return false;
    gpt_phys = virt_to_phys(t);
    __atomic_store_n(&gpt, t, __ATOMIC_RELEASE);
    return true;
}

bool Pd::make_apic_access()
{
    Lock_guard g(lock);
    if (!apic_access)
        apic_access = Kmem::alloc_page(quota);
    return apic_access;
}

Ec *Ec::create_vcpu(Pd *pd, unsigned cpu, u64 evt, bool global, u64 vapic_addr, bool apic_access, bool &taken,
                    Quota *payer)
{
    taken = false;
    void *mem = charged_alloc(ec_cache, payer);
    if (!mem)
        return nullptr;
    // VMX: the virtual-APIC page lives like a UTCB (a root node of the PD's memory space at
    // vapic_addr, unmapped at retirement, freed with the EC); ec->utcb is its kernel view.
    void *vapic = vapic_addr ? Kmem::alloc_page(payer) : nullptr;
    if (vapic_addr && !vapic) {
        charged_free(ec_cache, mem, payer);
        return nullptr;
    }
    if (vapic) {
        auto st = Mapping::insert_root(pd, Crd::MEM, vapic_addr >> 12, 0, 3, virt_to_phys(vapic) >> 12);
        if (st != Mdb::Status::OK) {
            taken = st == Mdb::Status::OCCUPIED;
            charged_free(ec_cache, mem, payer);
            Kmem::free(vapic, 0, payer);
            return nullptr;
        }
    }
    Ec *ec = new (mem) Ec(pd, cpu, evt, global);
    ec->payer = payer;  // and its VMCB or VMCS (Svm::create, Vmx::create)
    if (vapic) {
        ec->utcb = static_cast<Utcb *>(vapic);
        ec->utcb_addr = vapic_addr;
        ec->utcb_mapped = true;
    }
    ec->vcpu.apic_access = apic_access && vapic;  // ABI 7.4: flag 2 only with a virtual-APIC page
    if (!pd->make_gpt() || (apic_access && vapic && !pd->make_apic_access()) || !Virt::create(*ec)) {
        if (vapic) {  // mapped already: it leaves like any retired EC's UTCB
            pd->get();
            destroy_unpublished(ec);
            return nullptr;
        }
        ec->~Ec();
        charged_free(ec_cache, mem, payer);
        return nullptr;
    }
    pd->get();
    Fpu::init_state(ec->fpu);
    ec->regs.vector = Abi::Vmi::STARTUP;
    return ec;
}

Ec *Ec::create_clone(Ec *of, unsigned cpu)
{
    void *mem = ec_cache.alloc();
    if (!mem)
        return nullptr;
    Ec *ec = new (mem) Ec(of->pd, cpu, of->evt, false);
    of->pd->get();
    ec->is_clone = true;
    ec->utcb = of->utcb;
    ec->utcb_addr = of->utcb_addr;
    ec->started = true;
    ec->state = RUNNABLE;
    memcpy(ec->fpu, of->fpu, sizeof ec->fpu);
    return ec;
}

void Ec::leave_waits()
{
    if (Sm *sm = __atomic_load_n(&waiting_on, __ATOMIC_ACQUIRE))
        sm->dequeue_waiter(this);
    if (deadline) {
        Sched::remove_timeout(this);
        deadline = 0;
    }
}

bool Ec::retire()
{
    dead = true;
    leave_waits();
    if (utcb && !is_clone) {
        // Its UTCB page goes back to the pool at destroy(): only after it is unmapped from the
        // PD, every TLB is flushed and then a grace period has passed (Mapping::unmap_utcb
        // defers the EC itself once the first two are done).
        Mapping::unmap_utcb(this);
        return false;
    }
    return true;
}

void Ec::destroy()
{
    assert(!utcb_mapped);               // a UTCB page is never freed while a PD still maps it
    assert(!sc_waiters && !helped_by);  // an SC's runner and a helper hold references
    if (helping)
        stop_helping(this);  // abandoned chains drop it earlier; never left behind
    Mapping::forget(this);   // an unfinished revoke hypercall
    if (is_clone && xcpu_caller)
        release(xcpu_caller);
    if (utcb && !is_clone)
        Kmem::free(utcb, 0, payer);  // unmapped at retirement (Mapping::unmap_utcb)
    Virt::destroy(*this);
    Pd *p = pd;
    Quota *q = payer;
    this->~Ec();
    charged_free(ec_cache, this, q);
    release(p);
}

Sc *Sc::create(Ec *ec, unsigned cpu, unsigned prio, u64 quantum_us, Quota *payer)
{
    void *mem = charged_alloc(sc_cache, payer);
    if (!mem)
        return nullptr;
    if (ec) {
        ec->get();
        __atomic_add_fetch(&ec->sc_count, 1, __ATOMIC_RELAXED);
    }
    Sc *sc = new (mem) Sc(ec, cpu, prio, quantum_us * Time::tsc_khz / 1000);
    sc->payer = payer;
    return sc;
}

void Sc::destroy()
{
    Ec *e = ec;
    Quota *q = payer;
    this->~Sc();
    charged_free(sc_cache, this, q);
    if (e)
        release(e);
}

Pt *Pt::create(Ec *ec, u64 mtd, u64 ip, Quota *payer)
{
    void *mem = charged_alloc(pt_cache, payer);
    if (!mem)
        return nullptr;
    ec->get();
    Pt *pt = new (mem) Pt(ec, mtd, ip);
    pt->payer = payer;
    return pt;
}

void Pt::destroy()
{
    Ec *e = ec;
    Quota *q = payer;
    this->~Pt();
    charged_free(pt_cache, this, q);
    release(e);
}

Sm *Sm::create(u64 counter, Sm *chain, Quota *payer)
{
    void *mem = charged_alloc(sm_cache, payer);
    if (!mem)
        return nullptr;
    if (chain)
        chain->get();
    Sm *sm = new (mem) Sm(chain ? 0 : counter, chain);
    sm->payer = payer;
    if (chain)
        sm->value = counter;
    return sm;
}

void Sm::retire()
{
    wake_all(static_cast<u64>(Status::BAD_CAP));  // the semaphore went away (ABI 7.8)
    Sm *c = chain;
    if (c) {
        // Unqueue this signal from its target (with the count it added) and never queue again:
        // an up racing with the retirement must not link it in after it is gone.
        Lock_guard g(c->lock);
        for (Sm **p = &c->sig_head; *p; p = &(*p)->queued_next)
            if (*p == this) {
                *p = queued_next;
                if (c->sig_tail == this) {
                    c->sig_tail = nullptr;
                    for (Sm *s = c->sig_head; s; s = s->queued_next)
                        c->sig_tail = s;
                }
                if (c->counter)
                    c->counter--;
                break;
            }
        queued = true;
    }
}

void Sm::destroy()
{
    assert(!wait_head);  // retire() woke every waiter and took no new ones
    Sm *c = chain;
    Quota *q = payer;
    this->~Sm();
    charged_free(sm_cache, this, q);
    if (c)
        release(c);
}

namespace {
/*
 * Release the oldest waiter of t (t->lock held) with `status`; false if none. Everything the
 * waiter's down wrote (state, blocked_sc, deadline and timeout) was written before it was
 * queued, so it is complete here; the status is written before its SC is readied.
 */
bool release_waiter(Sm *t, u64 rsi, u64 rdx, bool signal, Status status = Status::SUCCESS)
{
    Ec *e = t->wait_head;
    if (!e)
        return false;
    t->wait_head = e->wait_next;
    if (!t->wait_head)
        t->wait_tail = nullptr;
    e->wait_next = nullptr;
    e->waiting_on = nullptr;
    if (e->deadline) {
        Sched::remove_timeout(e);
        e->deadline = 0;
    }
    e->regs.rdi = static_cast<u64>(status);
    if (signal) {
        e->regs.rsi = rsi;
        e->regs.rdx = rdx;
    }
    e->state = Ec::RUNNABLE;
    Sched::wake(e);  // its SC, and SCs that help it (src/ipc.cpp)
    return true;
}
}  // namespace

void Sm::up(u64 n)
{
    if (!n)
        return;
    if (!chain) {
        Lock_guard g(lock);
        while (n && release_waiter(this, 0, 0, false))
            n--;
        counter += n;
        return;
    }
    // Signal (ABI 12.3): count the triggers, then up the target "with" this signal.
    Sm *t = chain;
    Lock_guard g(t->lock);
    pending += n;
    if (release_waiter(t, value, pending, true)) {
        pending = 0;
        return;
    }
    if (queued)
        return;
    queued = true;
    queued_next = nullptr;
    if (t->sig_tail)
        t->sig_tail->queued_next = this;
    else
        t->sig_head = this;
    t->sig_tail = this;
    t->counter++;
}

Sm::Down Sm::down(bool zero, Exc_frame &frame, Ec *waiter)
{
    Lock_guard g(lock);
    if (!counter) {
        if (!waiter)
            return Down::EMPTY;
        if (retired)
            return Down::GONE;
        {
            waiter->waiting_on = this;
            waiter->wait_next = nullptr;
            if (wait_tail)
                wait_tail->wait_next = waiter;
            else
                wait_head = waiter;
            wait_tail = waiter;
        }
        return Down::QUEUED;
    }
    counter = zero ? 0 : counter - 1;
    if (Sm *s = sig_head) {
        sig_head = s->queued_next;
        if (!sig_head)
            sig_tail = nullptr;
        s->queued = false;
        frame.rsi = s->value;
        frame.rdx = s->pending;
        s->pending = 0;
    }
    return Down::TOOK;
}

u64 Sm::take_count()
{
    Lock_guard g(lock);
    u64 n = counter;
    counter = 0;
    // Signals queued here are consumed with their counts, as n downs would have taken them.
    while (Sm *q = sig_head) {
        sig_head = q->queued_next;
        q->queued = false;
        q->pending = 0;
    }
    sig_tail = nullptr;
    return n;
}

bool Sm::dequeue_waiter(Ec *ec)
{
    Lock_guard g(lock);
    for (Ec **p = &wait_head; *p; p = &(*p)->wait_next)
        if (*p == ec) {
            *p = ec->wait_next;
            if (wait_tail == ec) {
                wait_tail = nullptr;
                for (Ec *e = wait_head; e; e = e->wait_next)
                    wait_tail = e;
            }
            ec->wait_next = nullptr;
            ec->waiting_on = nullptr;
            return true;
        }
    return false;
}

void Sm::wake_all(u64 status)
{
    Lock_guard g(lock);
    retired = true;
    while (release_waiter(this, 0, 0, false, static_cast<Status>(status))) {
    }
}

void release(Kobject *obj)
{
    if (!obj || !obj->put())
        return;
    switch (obj->otype) {
    case Obj_type::SC:
        Sched::retire(static_cast<Sc *>(obj));  // its CPU defers it once it stopped using it
        return;
    case Obj_type::EC:
        if (!static_cast<Ec *>(obj)->retire())
            return;  // deferred once its UTCB is unmapped (src/mapping.cpp)
        break;
    case Obj_type::SM: static_cast<Sm *>(obj)->retire(); break;
    case Obj_type::PD:
    case Obj_type::PT: break;
    }
    Rcu::defer(obj);
}

void destroy_unpublished(Kobject *obj)
{
    obj->get();  // the reference a capability would have held
    release(obj);
}

void destroy_object(Kobject *obj)
{
    switch (obj->otype) {
    case Obj_type::PD: static_cast<Pd *>(obj)->destroy(); break;
    case Obj_type::EC: static_cast<Ec *>(obj)->destroy(); break;
    case Obj_type::SC: static_cast<Sc *>(obj)->destroy(); break;
    case Obj_type::PT: static_cast<Pt *>(obj)->destroy(); break;
    case Obj_type::SM: static_cast<Sm *>(obj)->destroy(); break;
    }
}

u64 objects_in_use()
{
    const Slab_cache *caches[] = {&pd_cache, &ec_cache, &sc_cache, &pt_cache, &sm_cache};
    u64 n = 0;
    for (const Slab_cache *c : caches)
        n += c->stats().in_use;
    return n;
}

void object_census(Kstat_census &k)
{
    auto pages = [](const Slab_cache &c) {
        Slab_cache::Stats s = c.stats();
        return s.slabs << s.order;
    };
    k.pds = pd_cache.stats().in_use;
    k.ecs = ec_cache.stats().in_use;
    k.scs = sc_cache.stats().in_use;
    k.pts = pt_cache.stats().in_use;
    k.sms = sm_cache.stats().in_use;
    k.slab_pages += pages(pd_cache) + pages(ec_cache) + pages(sc_cache) + pages(pt_cache) + pages(sm_cache);
    k.clones = k.dying_pds = k.dead_ecs = k.retired_scs = 0;
    pd_cache.for_each([&](void *o) { k.dying_pds += static_cast<Pd *>(o)->dying; });
    ec_cache.for_each([&](void *o) {
        const Ec *e = static_cast<Ec *>(o);
        k.clones += e->is_clone;
        k.dead_ecs += e->dead;
    });
    sc_cache.for_each([&](void *o) { k.retired_scs += static_cast<Sc *>(o)->retired; });
}

void for_each_object(Obj_type t, void (*fn)(Kobject *, void *), void *arg)
{
    Slab_cache *c = t == Obj_type::PD   ? &pd_cache
                    : t == Obj_type::EC ? &ec_cache
                    : t == Obj_type::SC ? &sc_cache
                    : t == Obj_type::PT ? &pt_cache
                                        : &sm_cache;
    c->for_each([&](void *o) { fn(static_cast<Kobject *>(o), arg); });
}

void load_io_bitmap(Cpu &c, const Pd *pd)
{
    u64 ver = __atomic_load_n(&pd->io_version, __ATOMIC_ACQUIRE);
    memcpy(c.iobm, pd->io_bitmap, Pd::IO_BITMAP_BYTES);
    c.iobm[Pd::IO_BITMAP_BYTES] = 0xff;
    c.io_pd = pd;
    c.io_version = ver;
}
