/*
 * Hypercalls (ABI 7): the dispatcher, the fast-path entries and the perform step of each
 * hypercall. Every handler first decodes (include/decode.hpp, host-tested): it reads its
 * arguments and checks every capability, permission and parameter in the order the ABI lists
 * them, changing nothing; the first failing check decides the status and names its reason,
 * which the command-line option `hyptrace` logs. Then it performs what the decode found. The
 * create_* hypercalls (include/create.hpp) allocate and then publish: one insert into the
 * mapping database and object space, their commit point; a failure there destroys the
 * unpublished object, so a failing hypercall leaves no trace.
 *
 * call and reply are src/ipc.cpp's (with the fast paths); revoke works through the mapping
 * database (src/mapping.cpp); assign_gsi routes I/O APIC pins and answers MSI address/data.
 * assign_pci binds a device to a PD's DMA space through the IOMMU (src/dmar.cpp).
 */
#include "syscall.hpp"
#include "abi/constants.hpp"
#include "abi/hypercall.hpp"
#include "abi/status.hpp"
#include "activate.hpp"
#include "boot.hpp"
#include "census.hpp"
#include "console.hpp"
#include "cpu.hpp"
#include "create.hpp"
#include "delegate.hpp"
#include "entry.hpp"
#include "gsi.hpp"
#include "hip_builder.hpp"
#include "ioapic.hpp"
#include "iommu.hpp"
#include "ipc.hpp"
#include "kmem.hpp"
#include "lapic.hpp"
#include "mapping.hpp"
#include "memory.hpp"
#include "objects.hpp"
#include "paging.hpp"
#include "quota.hpp"
#include "rcu.hpp"
#include "sched.hpp"
#include "smp.hpp"
#include "string.hpp"
#include "time.hpp"
#include "vmx.hpp"
#include "x86.hpp"

namespace {

bool logged;
bool fast;  // fast paths on: after the first hypercall (logged), unless `nofast`

Capability cap(const Ec *self, u64 sel) { return self->pd->obj.lookup(sel); }

/*
 * The environment of the decode and create steps (include/decode.hpp, include/create.hpp): the
 * caller's object space, the CPUs, the mapping database and the object layer.
 */
struct Kernel_env
{
    using Pd = ::Pd;
    using Ec = ::Ec;
    using Sc = ::Sc;
    using Pt = ::Pt;
    using Sm = ::Sm;

    Ec *me;

    Ec *self() const { return me; }
    Capability lookup(u64 sel) const { return cap(me, sel); }
    static bool cpu_online(unsigned cpu) { return cpu < Hip_builder::cpus() && Cpu::table[cpu]->online; }
    static bool utcb_free(Pd *pd, u64 addr)
    {
        return Mapping::free(pd, Crd::MEM, addr >> 12, 0) && Paging::lookup(pd->pml4, addr) == ~u64{0};
    }
    static bool kstat() { return Boot::cmdline.kstat; }
    static bool virt() { return Virt::usable(); }
    static bool vmx() { return Vmx::usable; }
    /* ABI 7.14 step 2: the requester ID of the MMCONFIG page at va in pd, -1 if it is none. */
    static long config_rid(Pd *pd, u64 va)
    {
        const Mcfg_info &m = Boot::acpi.mcfg;
        u64 phys = va < USER_ADDR ? Paging::lookup(pd->pml4, va) : ~u64{0};
        if (phys == ~u64{0} || !m.has_seg0 || phys < m.seg0_base || phys - m.seg0_base >= m.seg0_size)
            return -1;
        return long{m.seg0_bus_start} * 256 + static_cast<long>((phys - m.seg0_base) >> 12);
    }
    static bool iommu_device(u16 rid) { return Iommu::known(rid); }

    /*
     * New objects are paid for by the caller's PD's quota (docs/quota.md). A classic create_pd
     * shares that quota with the new PD; the quota extension's (limit) gives it one of its own,
     * taken from the caller's.
     */
    Quota *payer() const { return me->pd->quota; }
    Pd *new_pd(const u64 *limit) const
    {
        if (!limit)
            return Pd::create(payer(), payer());
        Quota *q = Quota::create(payer(), *limit);
        if (!q)
            return nullptr;
        Pd *pd = Pd::create(payer(), q);
        if (!pd) {  // the quota ends again: its limit goes back
            Quota::attach(q);
            Quota::detach(q);
        }
        return pd;
    }
    Ec *new_ec(Pd *pd, const Sys_create_ec &a, bool &taken) const
    {
        if (a.vcpu())
            return Ec::create_vcpu(pd, a.cpu(), a.evt(), a.global(), vmx() ? a.utcb() : 0, a.apic_access(),
                                   taken, payer());
        return Ec::create(pd, a.cpu(), a.utcb(), a.sp(), a.evt(), a.global(), taken, payer());
    }
    Sc *new_sc(Ec *ec, Qpd q) const { return Sc::create(ec, ec->cpu, q.prio(), q.quantum(), payer()); }
    Pt *new_pt(Ec *ec, u64 mtd, u64 ip) const { return Pt::create(ec, mtd, ip, payer()); }
    Sm *new_sm(u64 count, Sm *chain) const { return Sm::create(count, chain, payer()); }
    static bool hold(Kobject *o) { return o->try_get(); }
    static void drop(Kobject *o) { release(o); }

    // The root capability goes into the mapping database, which also fills the object space.
    Insert insert(u64 sel, Kobject *obj, unsigned perm) const
    {
        auto s = Mapping::insert_root(me->pd, Crd::OBJ, sel % Space_obj::SELECTORS, 0, perm,
                                      reinterpret_cast<u64>(obj));
        return s == Mdb::Status::OK ? Insert::OK : s == Mdb::Status::OOM ? Insert::OOM : Insert::TAKEN;
    }
    static void destroy_unpublished(Kobject *obj) { ::destroy_unpublished(obj); }

    // ABI 7.3: the object CRD goes to the new PD at [0, 2^order), problems are not reported.
    void populate(Pd *pd, Crd c) const
    {
        if (c.type() == Crd::OBJ)
            Delegate::item(me->pd, pd, c, Item_meta(Item_meta::DELEGATE, 0), Crd(), Crd::whole(Crd::OBJ));
    }
    static void start(Sc *sc) { Sched::ready(sc); }  // ready at once (ABI 6.2); runs until its caps go
};

Verdict pd_ctrl(Kernel_env e, Sys_pd_ctrl a)
{
    Decode::Found<Kernel_env> d;
    if (Verdict v = Decode::pd_ctrl(e, a, d); !v.ok())
        return v;
    if (a.op() == Pd_op::LOOKUP) {
        a.f.rsi = Delegate::lookup(e.me->pd, a.crd()).value();
        return PASS;
    }
    if (a.op() == Pd_op::MAP_ACCESS_PAGE) {
        auto s = Mapping::map_access_page(e.me->pd, a.crd().base());
        return s == Mdb::Status::OK    ? PASS
               : s == Mdb::Status::OOM ? fail(Status::OOM, "map_access_page: out of memory")
                                       : fail(Status::BAD_PAR, "map_access_page: the page is occupied");
    }
    // Pd_op::DELEGATE: the destination CRD is both windows (ABI 7.9.3).
    auto r = Delegate::item(d.pd, d.pd2, a.send(), a.meta(), a.window(), a.window());
    a.f.rdx = r.crd.value();
    a.f.rax = r.meta;
    // ABI 1.5's OOM (the reference panics): the destination's memory or quota ran out.
    return r.oom ? fail(Status::OOM, "no memory or quota for the destination's node or tables") : PASS;
}

Verdict ec_ctrl(Kernel_env e, const Sys_ec_ctrl &a)
{
    Decode::Found<Kernel_env> d;
    if (Verdict v = Decode::ec_ctrl(e, a, d); !v.ok())
        return v;
    Ec *self = e.me;
    switch (a.op()) {
    case Ec_op::RECALL:  // delivered before the EC next returns to user mode (ABI 7.10)
        d.ec->recall = true;
        if (d.ec->cpu != self->cpu && d.ec != self)
            Sched::kick(d.ec->cpu);
        return PASS;
    case Ec_op::YIELD:  // to the tail of our list, SUCCESS when we run again
        a.f.rdi = static_cast<u64>(Status::SUCCESS);
        Sched::yield();
    case Ec_op::HELP:
        if (d.ec == self)
            return PASS;
        // The target runs on its own SC: we give up the rest of our turn (docs/objects.md).
        a.f.rdi = static_cast<u64>(Status::SUCCESS);
        Sched::yield();
    case Ec_op::RESCHEDULE:
    default:  // back into the queue, head if budget is left (ABI 7.10)
        a.f.rdi = static_cast<u64>(Status::SUCCESS);
        Sched::reschedule();
    }
}

Verdict sc_ctrl(Kernel_env e, Sys a)
{
    Decode::Found<Kernel_env> d;
    if (Verdict v = Decode::sc_ctrl(e, a, d); !v.ok())
        return v;
    u64 us = Time::tsc_khz ? d.sc->consumed * 1000 / Time::tsc_khz : 0;
    a.f.rsi = us >> 32;
    a.f.rdx = us;
    return PASS;
}

Verdict pt_ctrl(Kernel_env e, Sys a)
{
    Decode::Found<Kernel_env> d;
    if (Verdict v = Decode::pt_ctrl(e, a, d); !v.ok())
        return v;
    __atomic_store_n(&d.pt->id, a.f.rsi, __ATOMIC_RELAXED);
    return PASS;
}

Verdict sm_ctrl(Kernel_env e, Sys_sm_ctrl a)
{
    Decode::Found<Kernel_env> d;
    if (Verdict v = Decode::sm_ctrl(e, a, d); !v.ok())
        return v;
    Sm *sm = d.sm;
    Ec *self = e.me;
    if (!a.down()) {
        sm->up();
        return PASS;
    }
    if (sm->gsi >= 0) {
        // GSI semaphore: unmask the pin first; a chained GSI is only unmasked (ABI 7.13).
        Gsi::unmask(static_cast<unsigned>(sm->gsi));
        if (__atomic_load_n(&sm->gsi_chain, __ATOMIC_ACQUIRE))
            return PASS;
    }
    u64 deadline = a.deadline();
    if (deadline && deadline <= rdtsc())
        return sm->down(a.zero(), a.f, nullptr) == Sm::Down::TOOK
                   ? PASS
                   : fail(Status::COM_TIM, "down: the deadline has passed");
    // We may block: an up on another CPU may release us as soon as we are on the semaphore's
    // queue, so everything it reads (state, SC, timeout) is written before down() queues us.
    self->state = Ec::BLOCKED;
    self->blocked_sc = Sched::current();
    if (deadline) {
        self->deadline = deadline;
        Sched::add_timeout(self);  // expires on this CPU only, not before we leave the kernel
    }
    Sm::Down r = sm->down(a.zero(), a.f, self);
    if (r != Sm::Down::QUEUED) {  // took a count, or the semaphore went meanwhile: not queued
        if (deadline) {
            Sched::remove_timeout(self);
            self->deadline = 0;
        }
        self->state = Ec::RUNNABLE;
        return r == Sm::Down::TOOK ? PASS
                                   : fail(Status::BAD_CAP, "down: the semaphore was destroyed meanwhile");
    }
    // Blocked: the up, the timeout or the semaphore's destruction writes our status.
    Sched::save_current();
    Cpu::current().ec = nullptr;
    Sched::run_next();
}

/* A hypercall that did one piece of its work and is executed again for the next (revoke). */
constexpr const char *AGAIN = "one piece done: the syscall instruction runs again";

Verdict revoke(Kernel_env e, Sys_revoke a)
{
    // ABI 7.8: success zeroes rdx. The revocation is preemptible: one piece per execution
    // (docs/mdb.md, "Preemption"), the registers untouched until the last one.
    Decode::Found<Kernel_env> d;
    if (Verdict v = Decode::revoke(e, a, d); !v.ok())
        return v;
    if (!Mapping::revoke(e.me, a.remote() ? d.pd : e.me->pd, a.crd(), a.self()))
        return {Status::SUCCESS, AGAIN};
    a.f.rdx = 0;
    return PASS;
}

Verdict assign_gsi(Kernel_env e, Sys_assign_gsi a)
{
    Decode::Found<Kernel_env> d;
    if (Verdict v = Decode::assign_gsi(e, a, d); !v.ok())
        return v;
    Sm *sm = d.sm, *t = d.sm2;
    unsigned gsi = static_cast<unsigned>(sm->gsi);
    if (t == sm) {
        __atomic_store_n(&sm->gsi_chain, nullptr, __ATOMIC_RELEASE);  // unchain, nothing else
        return PASS;
    }
    if (t) {
        if (!t->try_get())
            return fail(Status::BAD_CAP, "the chain semaphore was destroyed meanwhile by a racing revoke");
        Sm *old = __atomic_exchange_n(&sm->gsi_chain, t, __ATOMIC_ACQ_REL);
        if (old)
            release(old);
        // Pending interrupts go through the new chain (ABI 7.15 step 4), all at once: the
        // count is the user's (ups on the GSI semaphore), a loop over it would be unbounded.
        t->up(sm->take_count());
    }
    const Cpu &target = *Cpu::table[a.cpu()];
    if (Ioapic::present(gsi)) {
        Irq_mode mode =
            Boot::acpi.valid ? Boot::acpi.gsi_mode(gsi) : Irq_mode{Irq_mode::EDGE, Irq_mode::HIGH};
        if (!Ioapic::route(gsi, target.apic_id, mode, false))
            return fail(Status::BAD_CPU,
                        "the CPU cannot be addressed without interrupt remapping with x2APIC "
                        "destinations");
        a.f.rsi = 0;
        a.f.rdx = 0;
        return PASS;
    }
    // MSI: the device's config page (MMCONFIG) or the HPET page must be mapped in our PD.
    u64 phys = a.dev() < USER_ADDR ? Paging::lookup(e.me->pd->pml4, a.dev()) : ~u64{0};
    const Acpi_info &acpi = Boot::acpi;
    bool pci = phys != ~u64{0} && acpi.mcfg.has_seg0 && phys >= acpi.mcfg.seg0_base &&
               phys - acpi.mcfg.seg0_base < acpi.mcfg.seg0_size;
    bool hpet = phys != ~u64{0} && acpi.hpet.present && (phys >> 12) == (acpi.hpet.base >> 12);
    if (!pci && !hpet)
        return fail(Status::BAD_DEV, "MSI: rsi maps neither a PCI configuration page nor the HPET");
    if (!Iommu::reaches(target.apic_id))
        return fail(Status::BAD_CPU, "MSI: the CPU needs interrupt remapping with x2APIC destinations");
    if (Iommu::remaps_interrupts()) {
        // The remapping entry (= GSI) checks that the device whose configuration page was named
        // sends the MSI; the HPET's is not checked (no requester ID without a DMAR HPET scope).
        int sid = pci ? static_cast<int>(Kernel_env::config_rid(e.me->pd, a.dev())) : -1;
        if (!Iommu::set_irte(gsi, target.apic_id, static_cast<u8>(Vec::GSI_BASE + gsi), false, sid))
            return fail(Status::BAD_CPU, "MSI: no remapping entry for this GSI and CPU");
        a.f.rsi = Iommu::MSI_REMAPPED;
        a.f.rdx = u64{Iommu::MSI_REMAPPED} << 32 | gsi;
        return PASS;
    }
    u64 addr = 0xfee00000ull | u64{target.apic_id} << 12;
    a.f.rsi = addr;
    a.f.rdx = addr << 32 | (Vec::GSI_BASE + gsi);
    return PASS;
}

Verdict assign_pci(Kernel_env e, Sys_assign_pci a)
{
    Decode::Found<Kernel_env> d;
    if (Verdict v = Decode::assign_pci(e, a, d); !v.ok())
        return v;
    if (!Iommu::assign(d.pd, d.rid))
        return fail(Status::OOM, "out of memory or IOMMU domain IDs");
    return PASS;
}

/*
 * Number 15 is BAD_HYP (ABI 1.6). Our extension, only with the command-line option kstat and
 * flag 0: kernel memory statistics for leak tests (docs/objects.md): rsi = free pages of the
 * kernel pool, rdx = kernel objects and mapping-database nodes allocated, rax = objects
 * waiting for their destruction (retired SCs their CPU has not let go yet, grace periods).
 * Flag 1 adds the census (counts by type) in the caller's UTCB, flag 2 (root PD only) prints
 * the objects made since serial rsi (include/census.hpp, docs/debugging.md).
 */
Verdict kstat(Kernel_env e, Sys_kstat a)
{
    Decode::Found<Kernel_env> d;
    if (Verdict v = Decode::kstat(e, a, d); !v.ok())
        return v;
    Mapping::trim(e.me->pd);  // the few empty tables it keeps for reuse: the leak test's baseline
    Rcu::poll();
    if (a.census() && e.me->utcb) {
        Kstat_census k = Census::count();
        static_assert(sizeof k <= sizeof e.me->utcb->data);
        memcpy(e.me->utcb->data, &k, sizeof k);
    }
    if (a.dump() && e.me->pd == Pd::root)
        Census::dump(a.since());
    a.f.rsi = Kmem::free_pages();
    a.f.rdx = objects_in_use() + Mapping::nodes_in_use();
    a.f.rax = Rcu::pending() + Sched::retiring() + Mapping::pending();
    return PASS;
}

/*
 * The quota extension (docs/quota.md): number 15 with Quota_flag::QUOTA and QUOTA_KEY in r8.
 * INFO first lets the PD's kept empty tables go (as kstat does), so its use is exactly what its
 * objects, capabilities and mappings need.
 */
Verdict quota(Kernel_env e, Sys_quota a)
{
    if (a.op() == static_cast<unsigned>(Quota_op::CREATE_PD)) {
        u64 limit = a.limit();
        return Create::pd(e, a.create(), &limit);
    }
    Decode::Found<Kernel_env> d;
    if (Verdict v = Decode::quota(e, a, d); !v.ok())
        return v;
    if (!d.pd->quota || (d.pd2 && !d.pd2->quota))
        return fail(Status::BAD_CAP, "the kernel PD has no quota");
    if (__atomic_load_n(&d.pd->dying, __ATOMIC_ACQUIRE) ||
        (d.pd2 && __atomic_load_n(&d.pd2->dying, __ATOMIC_ACQUIRE)))
        return fail(Status::BAD_CAP, "the PD is dying");
    if (a.op() == static_cast<unsigned>(Quota_op::INFO)) {
        Mapping::trim(d.pd);
        Rcu::poll();
        Quota::Info i = d.pd->quota->info();
        a.f.rsi = i.limit;
        a.f.rdx = i.used;
        return PASS;
    }
    if (!Quota::move(d.pd->quota, d.pd2->quota, a.bytes()))
        return fail(Status::OOM, "the source's quota has not that many bytes free");
    return PASS;
}

/* Reasons for call (7.1), whose checks live in src/ipc.cpp. */
Verdict call_verdict(Status s)
{
    switch (s) {
    case Status::SUCCESS: return PASS;
    case Status::BAD_CAP: return fail(s, "not a PT (or its EC is gone)");
    case Status::BAD_CPU: return fail(s, "the portal is on another CPU and lacks XCPU");
    case Status::COM_TIM: return fail(s, "the callee is busy (DB) or dead");
    case Status::COM_ABT: return fail(s, "the callee died during the call");
    default: return fail(s, "the call failed");
    }
}

/* hyptrace: one line for every hypercall that fails, with the check that failed. */
[[gnu::noinline, gnu::cold]] void trace_failure(const Ec *self, const Sys &s, Verdict v)
{
    if (v.ok())
        return;
    trace("HYP: %s sel %#lx: %s -> %s (EC %p PD %p)", hypercall_name(s.nr()), s.sel(), v.reason,
          status_name(v.status), static_cast<const void *>(self), static_cast<const void *>(self->pd));
}

}  // namespace

/*
 * Entries for hypercalls 0 (call), 1 (reply) and 12 (sm_ctrl) straight from syscall_entry: the
 * fast paths (src/ipc.cpp and below). They return when the general path (handle_syscall) has to
 * do the work; so does the very first hypercall, which handle_syscall logs, and every hypercall
 * with the command-line option `nofast`.
 */
extern "C" void ipc_fast(Exc_frame *f)
{
    if (!__atomic_load_n(&fast, __ATOMIC_RELAXED))
        return;
    Sys s{*f};
    Ec *self = Cpu::current().ec;
    if (s.nr() == static_cast<unsigned>(Hypercall::REPLY))
        Ipc::reply_fast(self);
    else
        Ipc::call_fast(self, s.sel());
}

extern "C" void sm_fast(Exc_frame *f)
{
    if (!__atomic_load_n(&fast, __ATOMIC_RELAXED))
        return;
    Ec *self = Cpu::current().ec;
    // sm_ctrl (ABI 7.13) on a plain semaphore that needs no decision: count up or down. A signal,
    // a GSI semaphore, a waiter to wake, a down that would block or deliver a signal, a pending
    // recall: the general path.
    Sys_sm_ctrl a{Sys{*f}};
    Sm *sm = cap(self, a.sel()).as<Sm>(a.down() ? Perm_sm::DOWN : Perm_sm::UP);
    if (!sm || sm->chain || sm->gsi >= 0 || self->recall)
        return;
    if (!(a.down() ? sm->down_count(a.zero()) : sm->up_count()))
        return;
    f->rdi = static_cast<u64>(Status::SUCCESS);
    ret_syscall(f);
}

extern "C" void handle_syscall(Exc_frame *f)
{
    Cpu &c = Cpu::current();
    Ec *self = c.ec;
    Sys s{*f};
    // A plain load first: the locked exchange is paid once, not on every hypercall.
    if (!__atomic_load_n(&logged, __ATOMIC_RELAXED) &&
        !__atomic_exchange_n(&logged, true, __ATOMIC_RELAXED)) {
        trace("HYP: first hypercall from user mode: nr %u rdi %#lx rip %#lx", s.nr(), f->rdi, f->rip);
        __atomic_store_n(&fast, !Boot::cmdline.nofast, __ATOMIC_RELAXED);
    }

    Kernel_env e{self};
    Verdict v;
    switch (static_cast<Hypercall>(s.nr())) {
    case Hypercall::REPLY: Ipc::reply(self);
    case Hypercall::CREATE_PD: v = Create::pd(e, Sys_create_pd{s}); break;
    case Hypercall::CREATE_EC: v = Create::ec(e, Sys_create_ec{s}); break;
    case Hypercall::CREATE_SC: v = Create::sc(e, Sys_create_sc{s}); break;
    case Hypercall::CREATE_PT: v = Create::pt(e, Sys_create_pt{s}); break;
    case Hypercall::CREATE_SM: v = Create::sm(e, Sys_create_sm{s}); break;
    case Hypercall::PD_CTRL: v = pd_ctrl(e, Sys_pd_ctrl{s}); break;
    case Hypercall::EC_CTRL: v = ec_ctrl(e, Sys_ec_ctrl{s}); break;
    case Hypercall::SC_CTRL: v = sc_ctrl(e, s); break;
    case Hypercall::PT_CTRL: v = pt_ctrl(e, s); break;
    case Hypercall::SM_CTRL: v = sm_ctrl(e, Sys_sm_ctrl{s}); break;
    case Hypercall::ASSIGN_PCI: v = assign_pci(e, Sys_assign_pci{s}); break;
    case Hypercall::ASSIGN_GSI: v = assign_gsi(e, Sys_assign_gsi{s}); break;
    case Hypercall::CALL: v = call_verdict(Ipc::call(self, s.sel(), Sys_call{s}.db())); break;
    case Hypercall::REVOKE: v = revoke(e, Sys_revoke{s}); break;
    case Hypercall::KSTAT: v = Sys_quota{s}.keyed() ? quota(e, Sys_quota{s}) : kstat(e, Sys_kstat{s}); break;
    default: v = fail(Status::BAD_HYP, "no such hypercall"); break;  // none left: nr() has four bits
    }
    if (Boot::cmdline.hyptrace) [[unlikely]]
        trace_failure(self, s, v);
    if (v.reason == AGAIN) [[unlikely]]
        f->rip -= 2;  // back to the syscall instruction (0f 05), rdi and the rest as they were
    else
        f->rdi = static_cast<u64>(v.status);
    if (self->recall || c.sc->retired || c.resched)
        Sched::run(c.sc, self);  // delivers the recall first (ABI 1.4), stops a retired SC, or
                                 // lets an SC of a higher priority that this hypercall woke run
    resync_io_bitmap(c);         // this hypercall (or another CPU) changed some PD's ports
}
