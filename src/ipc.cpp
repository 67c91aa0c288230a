/*
 * Call, reply and events (see include/ipc.hpp).
 *
 * A call runs on the CPU of the ECs involved; a portal bound to an EC of another
 * CPU answers BAD_CPU unless the portal capability has PERM_XCPU (ABI 7.1.1): then a
 * clone of the caller runs the call on the callee's CPU (Ec::create_clone, xcpu_step).
 */
#include "ipc.hpp"
#include "abi/constants.hpp"
#include "abi/crd.hpp"
#include "abi/mtd.hpp"
#include "activate.hpp"
#include "assert.hpp"
#include "console.hpp"
#include "cpu.hpp"
#include "delegate.hpp"
#include "entry.hpp"
#include "fpu.hpp"
#include "mtd_xfer.hpp"
#include "objects.hpp"
#include "sched.hpp"
#include "string.hpp"
#include "x86.hpp"

namespace {

constexpr u64 SYSCALL_VECTOR = ~u64{0};

/* The items word and the untyped words (ABI 4.2): the part of a message both paths share. */
inline void copy_untyped(const Utcb &s, Utcb &d)
{
    d.items = s.items;
    unsigned u = s.untyped() < Utcb::DATA_WORDS ? s.untyped() : Utcb::DATA_WORDS;
    for (unsigned i = 0; i < u; i++)
        d.data[i] = s.data[i];
}

/* Untyped words and typed items from one UTCB to another (ABI 4.2, 3). */
void transfer(Ec *from, Ec *to)
{
    Utcb &s = *from->utcb, &d = *to->utcb;
    copy_untyped(s, d);
    unsigned t = s.typed() < Utcb::MAX_TYPED ? s.typed() : Utcb::MAX_TYPED;
    for (unsigned i = 0; i < t; i++) {
        const Typed_item &it = s.item(i);
        Item_meta m(it.meta);
        auto r = Delegate::item(from->pd, to->pd, Crd(it.crd), m, Crd(d.xlt), Crd(d.del));
        d.item(i).crd = r.crd.value();
        d.item(i).meta = r.meta;
    }
}

/*
 * Typed items of an event reply go to the faulting EC's PD (ABI 3.3): no translate window (a
 * translation gives nothing, kind 2 delegates), the delegate window is implicit: memory, base =
 * the fault page, order 31, all rights. No result items.
 */
void transfer_event_items(Ec *handler, Ec *target)
{
    const Utcb &s = *handler->utcb;
    unsigned t = s.typed() < Utcb::MAX_TYPED ? s.typed() : Utcb::MAX_TYPED;
    Crd window(Crd::MEM, target->cr2 >> 12, 0x1f, 0x1f);
    for (unsigned i = 0; i < t; i++)
        Delegate::item(handler->pd, target->pd, Crd(s.item(i).crd), Item_meta(s.item(i).meta), Crd(), window);
}

/* Link caller and callee and set the callee's portal entry state (ABI 7.1). */
inline void link_call(Ec *caller, Ec *callee, const Pt *pt)
{
    // The caller runs (the end of its chain), the callee waits for a call: neither is linked.
    assert(caller != callee && caller->cpu == callee->cpu);
    assert(caller->state == Ec::RUNNABLE && !caller->callee);
    assert(callee->state == Ec::WAIT_CALL && !callee->caller && !callee->callee && !callee->dead);
    callee->get();  // the call's reference: the portal may go meanwhile
    caller->callee = callee;
    callee->caller = caller;
    caller->state = Ec::IN_CALL;
    callee->state = Ec::RUNNABLE;
    Exc_frame &r = callee->regs;
    r.rip = r.rcx = pt->ip;
    r.rdi = __atomic_load_n(&pt->id, __ATOMIC_RELAXED);
    r.r11 = 0x200;
    r.rflags = 0x202;
    r.cs = Gdt::UCODE;
    r.ss = Gdt::UDATA;
    r.vector = SYSCALL_VECTOR;
}

/* Start `callee` at the portal: ABI 7.1 callee entry state. */
[[noreturn]] void enter_portal(Ec *caller, Ec *callee, Pt *pt)
{
    link_call(caller, callee, pt);
    Sched::run(Sched::current(), callee);
}

/*
 * The fast paths' exit: the CPU continues with `to` on the same SC. What Sched::run() checks
 * besides (startup, pending events, recall, clones, a retired SC) the callers ruled out.
 */
[[noreturn]] inline void switch_to(Cpu &c, Ec *from, Ec *to)
{
    Fpu::save(from->fpu);
    if (activate(c, to))
        sync_io_bitmap(c);
    ret_syscall(&to->regs);  // both entered with a hypercall: sysretq
}

[[noreturn]] void kill(Ec *ec, const char *reason);

/*
 * The callee is busy (handling another call, or blocked inside one): wait until it is free.
 * The waiter's SC leaves the run queue; when the callee replies (or dies) the waiters become
 * ready and repeat the call (or the event delivery). NOVA lets the caller's SC run the callee
 * instead ("helping"); waiting gives the same order of service without a livelock.
 */
[[noreturn]] void wait_until_free(Ec *self, Ec *callee)
{
    Sc *sc = Sched::current();
    assert(self != callee && !self->busy_on && !self->busy_next && !self->callee);
    self->state = Ec::BLOCKED;
    self->blocked_sc = sc;
    self->get();  // the busy list's reference
    self->busy_on = callee;
    self->busy_next = callee->busy_waiters;
    callee->busy_waiters = self;
    Cpu::current().ec = nullptr;
    Sched::run_next();
}

/* The EC became free (or died): its waiters try again. */
void wake_busy_waiters(Ec *ec)
{
    while (Ec *w = ec->busy_waiters) {
        assert(w->busy_on == ec);
        ec->busy_waiters = w->busy_next;
        w->busy_next = nullptr;
        w->busy_on = nullptr;
        if (w->state == Ec::BLOCKED) {
            w->state = Ec::RUNNABLE;
            if (w->blocked_sc)
                Sched::ready(w->blocked_sc);
        }
        release(w);
    }
}

/* Deliver event n of `ec` (its state is in ec->regs) to its portal at evt + n. */
[[noreturn]] void deliver(Ec *ec, unsigned n)
{
    Capability c = ec->pd->obj.lookup(ec->evt + n);
    Pt *pt = c.as<Pt>(0);
    ec->regs.vector = n;
    if (!pt)
        kill(ec, "PT not found");
    Ec *h = pt->ec;
    if (h->cpu != ec->cpu)
        kill(ec, "PT wrong CPU");
    if (h->dead)
        kill(ec, "IPC Timeout");
    if (h->state != Ec::WAIT_CALL) {
        // Busy handler: deliver again when it is free.
        ec->pending_event = static_cast<int>(n);
        wait_until_free(ec, h);
    }
    ec->pending_event = -1;
    ec->event_call = true;
    Mtd_xfer::to_utcb(ec->regs, pt->mtd, ec->error, ec->cr2, *h->utcb);
    enter_portal(ec, h, pt);
}

[[noreturn]] void kill(Ec *ec, const char *reason)
{
    Cpu &cpu = Cpu::current();
    const Exc_frame &f = ec->regs;
    trace("Killed EC:%p SC:%p V:%#lx CS:%#lx EIP:%#lx CR2:%#lx ERR:%#lx (%s)", static_cast<void *>(ec),
          static_cast<void *>(cpu.sc), f.vector, f.cs, f.rip, ec->cr2, ec->error, reason);
    ec->dead = true;
    ec->state = Ec::PARKED;
    if (cpu.ec == ec)
        cpu.ec = nullptr;
    wake_busy_waiters(ec);  // their repeated call finds it dead: COM_TIM

    // Whoever waits for this EC's reply learns of the death (ABI 10.5).
    if (Ec *caller = ec->caller) {
        assert(caller->callee == ec && caller->state == Ec::IN_CALL);
        ec->caller = nullptr;
        caller->callee = nullptr;
        release(ec);  // the call's reference
        caller->state = Ec::RUNNABLE;
        if (caller->event_call) {
            caller->event_call = false;
            kill(caller, "IPC Abort");
        }
        caller->regs.rdi = static_cast<u64>(Status::COM_ABT);
        Sched::run(Sched::current(), caller);
    }
    Sched::run_next();
}

/*
 * ABI 7.1.1: the call runs on the callee's CPU in a clone of the caller (same PD and UTCB, an SC
 * with the caller's priority and remaining budget); the caller blocks until the clone is done and
 * then takes over the clone's registers.
 */
[[noreturn]] void cross_cpu(Ec *self, unsigned cpu, u64 sel, bool db)
{
    Sc *cur = Sched::current();
    Ec *clone = Ec::create_clone(self, cpu);
    Sc *sc = clone ? Sc::create(clone, cpu, cur ? cur->prio : 1, 0) : nullptr;
    if (!sc) {
        if (clone) {
            clone->get();
            release(clone);
        }
        self->regs.rdi = static_cast<u64>(Status::OOM);
        Sched::run(cur, self);
    }
    sc->get();    // this call's reference: dropped when the clone is done
    self->get();  // the clone's reference to its caller
    sc->quantum_ticks = cur ? cur->quantum_ticks : 1;
    sc->left = cur && cur->left ? cur->left : sc->quantum_ticks;
    Sched::save_current();
    clone->regs = self->regs;
    clone->xcpu_caller = self;
    clone->xcpu_sel = sel;
    clone->xcpu_db = db;
    self->state = Ec::BLOCKED;
    self->blocked_sc = cur;
    __atomic_store_n(&self->xcpu_wait, true, __ATOMIC_RELEASE);
    Cpu::current().ec = nullptr;
    Sched::ready(sc);
    Sched::run_next();
}

}  // namespace

/* Called when a clone is scheduled on the callee's CPU: make the call, or finish it. */
void xcpu_step(Sc *sc, Ec *clone)
{
    if (!clone->xcpu_started) {
        clone->xcpu_started = true;
        Status s = Ipc::call(clone, clone->xcpu_sel, clone->xcpu_db);  // returns only on failure
        clone->regs.rdi = static_cast<u64>(s);
    }
    // Done (reply arrived, or the call failed): the caller takes the clone's registers.
    Ec *caller = clone->xcpu_caller;
    assert(clone->is_clone && sc->ec == clone && !clone->callee && caller->cpu != clone->cpu);
    Sched::save_current();
    // The caller's own call chain may have been abandoned meanwhile (its SC went).
    if (__atomic_exchange_n(&caller->xcpu_wait, false, __ATOMIC_ACQ_REL)) {
        caller->regs = clone->regs;
        caller->state = Ec::RUNNABLE;
        if (Sc *b = __atomic_load_n(&caller->blocked_sc, __ATOMIC_ACQUIRE))
            Sched::ready(b);
    }
    Cpu &c = Cpu::current();
    c.ec = nullptr;
    c.sc = nullptr;
    clone->dead = true;
    release(sc);  // the only reference: the SC goes, and with it the clone
    Sched::run_next();
}

void Ipc::call_fast(Ec *self, u64 sel)
{
    Pt *pt = self->pd->obj.lookup(sel).as<Pt>(0);
    if (!pt)
        return;
    Ec *callee = pt->ec;
    Cpu &c = Cpu::current();
    if (callee->state != Ec::WAIT_CALL || callee->cpu != self->cpu || callee->dead || callee->recall ||
        callee->pending_event >= 0 || self->utcb->typed() || c.sc->retired)
        return;
    copy_untyped(*self->utcb, *callee->utcb);
    link_call(self, callee, pt);
    switch_to(c, self, callee);
}

void Ipc::reply_fast(Ec *self)
{
    Ec *caller = self->caller;
    Cpu &c = Cpu::current();
    if (!caller || caller->event_call || caller->recall || caller->pending_event >= 0 ||
        caller->xcpu_caller || self->busy_waiters || self->utcb->typed() || c.sc->retired)
        return;
    assert(caller->callee == self && caller->state == Ec::IN_CALL && self->state == Ec::RUNNABLE);
    self->caller = nullptr;
    self->state = Ec::WAIT_CALL;
    caller->callee = nullptr;
    caller->state = Ec::RUNNABLE;
    copy_untyped(*self->utcb, *caller->utcb);
    release(self);  // the call's reference (self stays ours until the switch)
    switch_to(c, self, caller);
}

Status Ipc::call(Ec *self, u64 sel, bool no_block)
{
    Capability c = self->pd->obj.lookup(sel);
    Pt *pt = c.as<Pt>(0);
    if (!pt)
        return Status::BAD_CAP;
    Ec *callee = pt->ec;
    if (callee->cpu != self->cpu) {
        if (!(c.perm & Perm_pt::XCPU))
            return Status::BAD_CPU;
        cross_cpu(self, callee->cpu, sel, no_block);
    }
    if (callee->dead)
        return Status::COM_TIM;
    if (callee->state != Ec::WAIT_CALL) {
        if (no_block)
            return Status::COM_TIM;
        // Repeat the call when the callee is free: a clone makes it again in the kernel, a user EC
        // re-executes its syscall instruction.
        if (self->xcpu_caller)
            self->xcpu_started = false;
        else
            self->regs.rip -= 2;
        Sched::save_current();
        wait_until_free(self, callee);
    }
    Sched::save_current();
    transfer(self, callee);
    enter_portal(self, callee, pt);
}

void Ipc::reply(Ec *self)
{
    Sched::save_current();  // rsp and GPRs for the next portal entry (ABI 7.1)
    Ec *caller = self->caller;
    self->caller = nullptr;
    if (!caller) {
        // No reply target: a local EC waits for calls; a global EC stops for good (ABI 7.2).
        self->state = self->global ? Ec::PARKED : Ec::WAIT_CALL;
        wake_busy_waiters(self);
        Sched::run_next();
    }
    assert(caller->callee == self && caller->state == Ec::IN_CALL && !self->callee);
    self->state = Ec::WAIT_CALL;
    wake_busy_waiters(self);
    caller->callee = nullptr;
    release(self);  // the call's reference (we only use it until run())
    caller->state = Ec::RUNNABLE;
    if (caller->event_call) {
        caller->event_call = false;
        transfer_event_items(self, caller);
        if (!Mtd_xfer::from_utcb(*self->utcb, caller->regs))
            kill(caller, "EXC");  // would fault in the kernel's iretq (ABI 10.6)
    } else
        transfer(self, caller);
    Sched::run(Sched::current(), caller);
}

void Ipc::exception(Ec *self, unsigned n, u64 error, u64 cr2)
{
    Sched::save_current();
    self->error = error;
    self->cr2 = cr2;
    deliver(self, n);
}

[[noreturn]] void deliver_startup(Ec *ec)
{
    // ABI 10.2: rip 0, rsp = initial stack pointer, rflags 0x200, GPRs 0, qual 0.
    ec->started = true;
    ec->error = 0;
    ec->cr2 = 0;
    Cpu::current().ec = nullptr;  // its state lives in ec->regs from here on
    deliver(ec, Abi::Evt::STARTUP);
}

[[noreturn]] void deliver_recall(Ec *ec)
{
    ec->recall = false;
    Sched::save_current();
    Cpu::current().ec = nullptr;
    deliver(ec, Abi::Evt::RECALL);
}

[[noreturn]] void deliver_pending(Ec *ec)
{
    unsigned n = static_cast<unsigned>(ec->pending_event);
    Cpu::current().ec = nullptr;
    deliver(ec, n);
}

/* entry.S: the frame we were about to return to user mode with has a non-canonical RIP. */
extern "C" [[noreturn]] void kill_noncanonical(const Exc_frame *f) { kill_current(*f, "EXC"); }

void kill_current(const Exc_frame &f, const char *reason)
{
    Cpu &c = Cpu::current();
    Ec *ec = c.ec;
    if (!ec) {
        trace("Killed EC:0x0 SC:0x0 V:%#lx CS:%#lx EIP:%#lx CR2:%#lx ERR:%#lx (%s)", f.vector, f.cs, f.rip,
              get_cr2(), f.error, reason);
        Sched::run_next();
    }
    Sched::save_current();
    ec->regs.vector = f.vector;
    kill(ec, reason);
}

namespace {
/* r stops waiting for whatever it waits for (its activation is being abandoned). */
void unblock(Ec *r)
{
    r->leave_waits();
    if (Ec *on = r->busy_on) {
        for (Ec **p = &on->busy_waiters; *p; p = &(*p)->busy_next)
            if (*p == r) {
                *p = r->busy_next;
                break;
            }
        r->busy_next = nullptr;
        r->busy_on = nullptr;
        release(r);  // the busy list's reference (the call still holds one)
    }
    __atomic_store_n(&r->xcpu_wait, false, __ATOMIC_RELEASE);
}
}  // namespace

/*
 * A retired SC's call chain (on the SC's CPU, Sched::finish_retired): whoever blocked on behalf
 * of the SC forgets it; unless another SC runs the chain's EC, every local EC in the chain is
 * made ready for its next call again (its activation is lost) and the chain's first EC gets
 * COM_ABT (or, if it waited for an event reply, stays dead), like a callee's death (ABI 10.5).
 */
void abandon_chain(Sc *sc)
{
    Ec *e0 = sc->ec;
    if (!e0)
        return;
    for (Ec *e = e0; e; e = e->callee)
        if (e->blocked_sc == sc)
            __atomic_store_n(&e->blocked_sc, nullptr, __ATOMIC_RELEASE);
    if (__atomic_load_n(&e0->sc_count, __ATOMIC_RELAXED))
        return;
    for (;;) {
        Ec *r = e0;
        while (r->callee)
            r = r->callee;
        if (r == e0)
            break;
        Ec *caller = r->caller;
        assert(caller && caller->callee == r);  // the chain is linked both ways
        unblock(r);
        r->caller = nullptr;
        caller->callee = nullptr;
        r->state = Ec::WAIT_CALL;
        r->pending_event = -1;
        if (caller->event_call && caller == e0) {
            caller->event_call = false;
            caller->dead = true;
            caller->state = Ec::PARKED;
        } else {
            caller->event_call = false;
            caller->regs.rdi = static_cast<u64>(Status::COM_ABT);
            caller->state = Ec::RUNNABLE;
        }
        wake_busy_waiters(r);
        release(r);  // the call's reference
    }
}
