/*
 * Hypercalls (ABI 7). Each handler first decodes: it reads its arguments and
 * checks every capability, permission and parameter in the order the ABI
 * lists them, changing nothing; the first failing check decides the status.
 * Then it performs: allocation, and one atomic insert into the object space
 * as the commit point. A perform step that fails (out of memory, a selector
 * taken by a racing CPU) undoes what it did, so a failing hypercall leaves no
 * trace (docs/objects.md).
 *
 * Not implemented yet (listed in README): revoke (needs the mapping
 * database; BAD_HYP), cross-CPU calls, GSI semaphores (assign_gsi), the IOMMU
 * (assign_pci).
 */
#include "syscall.hpp"
#include "abi/constants.hpp"
#include "abi/hypercall.hpp"
#include "abi/status.hpp"
#include "boot.hpp"
#include "console.hpp"
#include "cpu.hpp"
#include "delegate.hpp"
#include "gsi.hpp"
#include "ioapic.hpp"
#include "ipc.hpp"
#include "kmem.hpp"
#include "lapic.hpp"
#include "mdb_glue.hpp"
#include "memory.hpp"
#include "objects.hpp"
#include "paging.hpp"
#include "rcu.hpp"
#include "sched.hpp"
#include "smp.hpp"
#include "string.hpp"
#include "time.hpp"
#include "x86.hpp"

extern "C" [[noreturn]] void ret_syscall(Exc_frame *f);

namespace {

bool logged;
bool fast;  // fast paths on: after the first hypercall (logged), unless `nofast`

Capability cap(const Ec *self, u64 sel) { return self->pd->obj.lookup(sel); }

bool cpu_online(unsigned cpu) { return cpu < Abi::NUM_CPU && cpu < Cpu::count && Cpu::table[cpu]->online; }

/*
 * The commit point of every create_*: the object's root capability goes into the mapping
 * database (which also fills the object space); if the selector was taken meanwhile or memory
 * ran out, the unpublished object is destroyed again.
 */
Status publish(Ec *self, u64 sel, Kobject *obj, unsigned perm)
{
    auto s = Mdb_glue::insert_root(self->pd, Crd::OBJ, sel % Space_obj::SELECTORS, 0, perm,
                                   reinterpret_cast<u64>(obj));
    if (s == Mdb::Status::OK)
        return Status::SUCCESS;
    obj->get();
    release(obj);
    return s == Mdb::Status::OOM ? Status::OOM : Status::BAD_CAP;
}

bool sel_free(Ec *self, u64 sel) { return self->pd->obj.lookup(sel).null(); }

Status create_pd(Ec *self, const Sys_create_pd &a)
{
    Capability owner = cap(self, a.owner());
    if (!owner.as<Pd>(Perm_pd::CREATE_PD))
        return Status::BAD_CAP;
    if (!sel_free(self, a.sel()))
        return Status::BAD_CAP;

    Pd *pd = Pd::create();
    if (!pd)
        return Status::OOM;
    Status s = publish(self, a.sel(), pd, owner.perm);
    if (s != Status::SUCCESS)
        return s;
    // ABI 7.3: the object CRD goes to the new PD at [0, 2^order), problems are not reported.
    Crd c = a.crd();
    if (c.type() == Crd::OBJ)
        Delegate::item(self->pd, pd, c, Item_meta(Item_meta::DELEGATE, 0), Crd::whole(Crd::OBJ));
    return Status::SUCCESS;
}

Status create_ec(Ec *self, const Sys_create_ec &a)
{
    if (!cpu_online(a.cpu()))
        return Status::BAD_CPU;
    // No vCPUs until the SVM/VMX work; a UTCB at 0 is for machines with virtualization only.
    if (a.vcpu() || !a.utcb())
        return Status::BAD_FTR;
    Pd *pd = cap(self, a.pd()).as<Pd>(Perm_pd::CREATE_EC);
    if (!pd)
        return Status::BAD_CAP;
    if (a.utcb() >= USER_ADDR || !Mdb_glue::free(pd, Crd::MEM, a.utcb() >> 12, 0) ||
        Paging::lookup(pd->pml4, a.utcb()) != ~u64{0})
        return Status::BAD_PAR;
    if (!sel_free(self, a.sel()))
        return Status::BAD_CAP;

    bool taken = false;
    Ec *ec = Ec::create(pd, a.cpu(), a.utcb(), a.sp(), a.evt(), a.global(), taken);
    if (!ec)
        return taken ? Status::BAD_PAR : Status::OOM;
    return publish(self, a.sel(), ec, Perm_ec::CREATED);
}

Status create_sc(Ec *self, const Sys_create_sc &a)
{
    if (!cap(self, a.pd()).as<Pd>(Perm_pd::CREATE_SC))
        return Status::BAD_CAP;
    Ec *ec = cap(self, a.ec()).as<Ec>(Perm_ec::BIND_SC);
    if (!ec || !ec->global)
        return Status::BAD_CAP;
    if (!a.qpd().valid())
        return Status::BAD_PAR;
    if (!sel_free(self, a.sel()))
        return Status::BAD_CAP;

    Sc *sc = Sc::create(ec, ec->cpu, a.qpd().prio(), a.qpd().quantum());
    if (!sc)
        return Status::OOM;
    Status s = publish(self, a.sel(), sc, Perm_sc::CREATED);
    if (s == Status::SUCCESS)
        Sched::ready(sc);  // ready immediately (ABI 6.2); runs until its capabilities go
    return s;
}

Status create_pt(Ec *self, const Sys_create_pt &a)
{
    if (!cap(self, a.pd()).as<Pd>(Perm_pd::CREATE_PT))
        return Status::BAD_CAP;
    Ec *ec = cap(self, a.ec()).as<Ec>(Perm_ec::BIND_PT);
    if (!ec || ec->global)
        return Status::BAD_CAP;
    if (!sel_free(self, a.sel()))
        return Status::BAD_CAP;

    Pt *pt = Pt::create(ec, a.mtd(), a.ip());
    if (!pt)
        return Status::OOM;
    return publish(self, a.sel(), pt, Perm_pt::CREATED);
}

Status create_sm(Ec *self, const Sys_create_sm &a)
{
    if (!cap(self, a.pd()).as<Pd>(Perm_pd::CREATE_SM))
        return Status::BAD_CAP;
    Sm *chain = nullptr;
    if (a.chain()) {
        chain = cap(self, a.chain()).as<Sm>(Perm_sm::UP);
        if (!chain || chain->is_signal())
            return Status::BAD_CAP;
    }
    if (!sel_free(self, a.sel()))
        return Status::BAD_CAP;

    Sm *sm = Sm::create(a.count(), chain);
    if (!sm)
        return Status::OOM;
    return publish(self, a.sel(), sm, Perm_sm::CREATED);
}

Status pd_ctrl(Ec *self, Sys_pd_ctrl a)
{
    switch (a.op()) {
    case Pd_op::LOOKUP: a.f.rsi = Delegate::lookup(self->pd, a.crd()).value(); return Status::SUCCESS;
    case Pd_op::DELEGATE: {
        Pd *src = cap(self, a.src_pd()).as<Pd>(0);
        Pd *dst = cap(self, a.dst_pd()).as<Pd>(0);
        if (!src || !dst)
            return Status::BAD_CAP;
        Item_meta m = a.meta();
        auto r = Delegate::item(src, dst, a.send(), m, a.window());
        a.f.rdx = r.crd.value();
        a.f.rax = r.meta;
        return Status::SUCCESS;
    }
    case Pd_op::MAP_ACCESS_PAGE:  // the APIC-access page exists for VMX guests only (not yet)
        return a.crd().type() != Crd::MEM || a.crd().rights() != Perm_mem::RW || a.crd().order()
                   ? Status::BAD_PAR
                   : Status::BAD_FTR;
    default: return Status::BAD_PAR;
    }
}

Status ec_ctrl(Ec *self, const Sys_ec_ctrl &a)
{
    switch (a.op()) {
    case Ec_op::RECALL: {  // delivered before the EC next returns to user mode (ABI 7.10)
        Ec *ec = cap(self, a.sel()).as<Ec>(Perm_ec::RECALL);
        if (!ec)
            return Status::BAD_CAP;
        ec->recall = true;
        if (ec->cpu != self->cpu && ec != self)
            Sched::kick(ec->cpu);
        return Status::SUCCESS;
    }
    case Ec_op::YIELD:  // to the tail of our list, SUCCESS when we run again
        a.f.rdi = static_cast<u64>(Status::SUCCESS);
        Sched::yield();
    case Ec_op::HELP: {
        Ec *ec = cap(self, a.sel()).as<Ec>(0);
        if (!ec)
            return Status::BAD_CAP;
        if (ec->cpu != self->cpu)
            return Status::BAD_CPU;
        if (!ec->utcb || ec->state != Ec::RUNNABLE || ec->callee || ec->pd != self->pd ||
            ec->utcb->tls != a.tls() || ec->dead)
            return Status::BAD_PAR;
        if (ec == self)
            return Status::SUCCESS;
        // The target runs on its own SC: we give up the rest of our turn (docs/objects.md).
        a.f.rdi = static_cast<u64>(Status::SUCCESS);
        Sched::yield();
    }
    case Ec_op::RESCHEDULE:
    default:  // back into the queue, head if budget is left (ABI 7.10)
        a.f.rdi = static_cast<u64>(Status::SUCCESS);
        Sched::reschedule();
    }
}

Status sc_ctrl(Ec *self, Sys a)
{
    Sc *sc = cap(self, a.sel()).as<Sc>(Perm_sc::CTRL);
    if (!sc)
        return Status::BAD_CAP;
    u64 us = Time::tsc_khz ? sc->consumed * 1000 / Time::tsc_khz : 0;
    a.f.rsi = us >> 32;
    a.f.rdx = us;
    return Status::SUCCESS;
}

Status pt_ctrl(Ec *self, Sys a)
{
    Pt *pt = cap(self, a.sel()).as<Pt>(Perm_pt::CTRL);
    if (!pt)
        return Status::BAD_CAP;
    __atomic_store_n(&pt->id, a.f.rsi, __ATOMIC_RELAXED);
    return Status::SUCCESS;
}

Status sm_ctrl(Ec *self, Sys_sm_ctrl a)
{
    Sm *sm = cap(self, a.sel()).as<Sm>(a.down() ? Perm_sm::DOWN : Perm_sm::UP);
    if (!sm)
        return Status::BAD_CAP;
    if (!a.down()) {
        sm->up();
        return Status::SUCCESS;
    }
    if (sm->gsi >= 0) {
        // GSI semaphore: unmask the pin first; a chained GSI is only unmasked (ABI 7.13).
        Gsi::unmask(static_cast<unsigned>(sm->gsi));
        if (__atomic_load_n(&sm->gsi_chain, __ATOMIC_ACQUIRE))
            return Status::SUCCESS;
    }
    if (sm->is_signal())
        return Status::BAD_CAP;
    u64 deadline = a.deadline();
    bool expired = deadline && deadline <= rdtsc();
    if (sm->down(a.zero(), a.f, expired ? nullptr : self))
        return Status::SUCCESS;
    if (expired)
        return Status::COM_TIM;
    // Blocked: the up, the timeout or the semaphore's destruction writes our status.
    self->state = Ec::BLOCKED;
    self->blocked_sc = Sched::current();
    if (deadline) {
        self->deadline = deadline;
        Sched::add_timeout(self);
    }
    Sched::save_current();
    Cpu::current().ec = nullptr;
    Sched::run_next();
}

Status revoke(Ec *self, Sys_revoke a)
{
    // ABI 7.8: only the remote PD can fail; the SM argument is ignored; success zeroes rdx.
    Pd *pd = self->pd;
    if (a.remote()) {
        pd = cap(self, a.pd()).as<Pd>(0);
        if (!pd)
            return Status::BAD_CAP;
    }
    Mdb_glue::revoke(pd, a.crd(), a.self());
    a.f.rdx = 0;
    return Status::SUCCESS;
}

Status assign_gsi(Ec *self, Sys_assign_gsi a)
{
    if (!cpu_online(a.cpu()))
        return Status::BAD_CPU;
    Sm *sm = cap(self, a.sel()).as<Sm>(0);
    if (!sm || sm->gsi < 0)
        return Status::BAD_CAP;
    unsigned gsi = static_cast<unsigned>(sm->gsi);
    if (a.chain() != ~u64{0}) {
        Sm *t = cap(self, a.chain()).as<Sm>(0);
        if (!t)
            return Status::BAD_CAP;
        if (t == sm) {
            __atomic_store_n(&sm->gsi_chain, nullptr, __ATOMIC_RELEASE);  // unchain, nothing else
            return Status::SUCCESS;
        }
        if (t->gsi >= 0)
            return Status::BAD_CAP;
        t->get();
        Sm *old = __atomic_exchange_n(&sm->gsi_chain, t, __ATOMIC_ACQ_REL);
        if (old)
            release(old);
        // Pending interrupts go through the new chain (ABI 7.15 step 4).
        Exc_frame scratch{};
        while (sm->down(false, scratch, nullptr))
            t->up();
    }
    const Cpu &target = *Cpu::table[a.cpu()];
    if (Ioapic::present(gsi)) {
        Irq_mode mode =
            Boot::acpi.valid ? Boot::acpi.gsi_mode(gsi) : Irq_mode{Irq_mode::EDGE, Irq_mode::HIGH};
        if (!Ioapic::route(gsi, target.apic_id, mode, false))
            return Status::BAD_CPU;  // the CPU cannot be addressed without interrupt remapping
        a.f.rsi = 0;
        a.f.rdx = 0;
        return Status::SUCCESS;
    }
    // MSI: the device's config page (MMCONFIG) or the HPET page must be mapped in our PD.
    u64 phys = a.dev() < USER_ADDR ? Paging::lookup(self->pd->pml4, a.dev()) : ~u64{0};
    const Acpi_info &acpi = Boot::acpi;
    bool pci = phys != ~u64{0} && acpi.mcfg.has_seg0 && phys >= acpi.mcfg.seg0_base &&
               phys - acpi.mcfg.seg0_base < acpi.mcfg.seg0_size;
    bool hpet = phys != ~u64{0} && acpi.hpet.present && (phys >> 12) == (acpi.hpet.base >> 12);
    if (!pci && !hpet)
        return Status::BAD_DEV;
    if (target.apic_id > 0xff)
        return Status::BAD_CPU;  // needs interrupt remapping (IOMMU work)
    u64 addr = 0xfee00000ull | u64{target.apic_id} << 12;
    a.f.rsi = addr;
    a.f.rdx = addr << 32 | (Vec::GSI_BASE + gsi);
    return Status::SUCCESS;
}

Status assign_pci(Ec *self, Sys a)
{
    if (!cap(self, a.sel()).as<Pd>(0))
        return Status::BAD_CAP;
    return Status::BAD_DEV;  // no IOMMU support yet: no device can be assigned (ABI 7.14 step 3)
}

/*
 * Number 15 is BAD_HYP (ABI 1.6). Our extension, only with the command-line option kstat and
 * flag 0: kernel memory statistics for leak tests (docs/objects.md): rsi = free pages of the
 * kernel pool, rdx = kernel objects and mapping-database nodes allocated, rax = objects
 * waiting for their destruction (retired SCs their CPU has not let go yet, grace periods).
 */
Status kstat(Sys_kstat a)
{
    if (!Boot::cmdline.kstat || !a.report())
        return Status::BAD_HYP;
    Rcu::poll();
    a.f.rsi = Kmem::free_pages();
    a.f.rdx = objects_in_use() + Mdb_glue::nodes_in_use();
    a.f.rax = Rcu::pending() + Sched::retiring();
    return Status::SUCCESS;
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

    Status st;
    switch (static_cast<Hypercall>(s.nr())) {
    case Hypercall::REPLY: Ipc::reply(self);
    case Hypercall::CREATE_PD: st = create_pd(self, Sys_create_pd{s}); break;
    case Hypercall::CREATE_EC: st = create_ec(self, Sys_create_ec{s}); break;
    case Hypercall::CREATE_SC: st = create_sc(self, Sys_create_sc{s}); break;
    case Hypercall::CREATE_PT: st = create_pt(self, Sys_create_pt{s}); break;
    case Hypercall::CREATE_SM: st = create_sm(self, Sys_create_sm{s}); break;
    case Hypercall::PD_CTRL: st = pd_ctrl(self, Sys_pd_ctrl{s}); break;
    case Hypercall::EC_CTRL: st = ec_ctrl(self, Sys_ec_ctrl{s}); break;
    case Hypercall::SC_CTRL: st = sc_ctrl(self, s); break;
    case Hypercall::PT_CTRL: st = pt_ctrl(self, s); break;
    case Hypercall::SM_CTRL: st = sm_ctrl(self, Sys_sm_ctrl{s}); break;
    case Hypercall::ASSIGN_PCI: st = assign_pci(self, s); break;
    case Hypercall::ASSIGN_GSI: st = assign_gsi(self, Sys_assign_gsi{s}); break;
    case Hypercall::CALL: st = Ipc::call(self, s.sel(), Sys_call{s}.db()); break;
    case Hypercall::REVOKE: st = revoke(self, Sys_revoke{s}); break;
    case Hypercall::KSTAT: st = kstat(Sys_kstat{s}); break;
    default: st = Status::BAD_HYP; break;  // none left: nr() has four bits
    }
    f->rdi = static_cast<u64>(st);
    if (self->recall || c.sc->retired || c.resched)
        Sched::run(c.sc, self);  // delivers the recall first (ABI 1.4), stops a retired SC, or
                                 // lets an SC of a higher priority that this hypercall woke run
    resync_io_bitmap(c);         // this hypercall (or another CPU) changed some PD's ports
}
