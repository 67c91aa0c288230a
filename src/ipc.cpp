/*
 * Call, reply and events (see include/ipc.hpp).
 *
 * A call runs on the CPU of the ECs involved; a portal bound to an EC of another
 * CPU answers BAD_CPU unless the portal capability has PERM_XCPU (ABI 7.1.1): then a
 * clone of the caller runs the call on the callee's CPU (Ec::create_clone, xcpu_step).
 *
 * A busy callee is helped (ABI 7.1 step 4, 10.1): the caller links to it (Ec::helping) and
 * its SC runs the callee's current activity, the end of the callee's chain (Sc::runner());
 * when that SC runs the caller again the callee is free or dead and the caller repeats its
 * call (a user EC re-executes its syscall, a clone calls again, an event is delivered again).
 * A help whose activity would be the caller itself (a call cycle, an EC handling its own
 * exception) cannot make progress: the call is repeated at once, and the 100th time in a row
 * the caller is killed (Livelock). A chain that ends in a blocked EC makes the helper's SC wait
 * for that EC (Sched::resume), without spinning.
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
[[gnu::always_inline]] inline void link_call(Ec *caller, Ec *callee, const Pt *pt)
{
    // The caller runs (the end of its chain), the callee waits for a call: neither is linked.
    assert(caller != callee && caller->cpu == callee->cpu);
    assert(caller->state == Ec::RUNNABLE && !caller->callee && !caller->helping);
    assert(callee->state == Ec::WAIT_CALL && !callee->caller && !callee->callee && !callee->helping &&
           !callee->dead);
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

/* direct: the current SC reached ec through its caller (no help in between; see continue_with). */
[[noreturn]] void kill(Ec *ec, const char *reason, bool direct = true);

constexpr unsigned LIVELOCK_ROUNDS = 100;  // ABI 7.1 step 4

/* The end of e's chain: whom a help of e runs (the walk of Sc::runner(), from e). */
Ec *chain_end(Ec *e)
{
    for (;;) {
        if (e->callee)
            e = e->callee;
        else if (e->helping && Sc::helped_busy(e->helping))
            e = e->helping;
        else
            return e;
    }
}

/*
 * self (the current EC, the end of the current SC's chain) found `busy` busy (ABI 7.1 step 4,
 * 10.1): its SC goes on with busy's current activity, and self repeats its call (`call`: the
 * syscall; else the pending event) when the SC runs it again. Returns only when that activity is
 * self itself: the caller tries again at once, and is killed the 100th time in a row.
 */
void help(Ec *self, Ec *busy, unsigned round, bool call)
{
    if (chain_end(busy) == self) {
        // Nothing else can run for it: each round would find the same. Interrupts are off, so
        // only another CPU can change the outcome (a revoked portal) before the 100th.
        assert(!self->xcpu_caller);  // nothing calls a clone: it is never in a chain it helps
        if (round >= LIVELOCK_ROUNDS)
            kill(self, "Livelock");
        return;
    }
    assert(self->state == Ec::RUNNABLE && !self->callee && !self->helping);
    Sched::save_current();
    if (self->xcpu_caller)
        self->xcpu_started = false;  // xcpu_step calls again
    else if (call)
        self->regs.rip -= 2;  // re-executes its syscall
    busy->get();              // the link's reference
    __atomic_add_fetch(&busy->helped_by, 1, __ATOMIC_RELAXED);
    self->helping = busy;
    Sched::resume(Sched::current());
}

/* Deliver event n of `ec` (its state is in ec->regs) to its portal at evt + n. */
[[noreturn]] void deliver(Ec *ec, unsigned n)
{
    ec->regs.vector = n;
    for (unsigned round = 1;; round++) {
        Capability c = ec->pd->obj.lookup(ec->evt + n);
        Pt *pt = c.as<Pt>(0);
        if (!pt)
            kill(ec, "PT not found");
        Ec *h = pt->ec;
        if (h->cpu != ec->cpu)
            kill(ec, "PT wrong CPU");
        if (h->dead)
            kill(ec, "IPC Timeout");
        if (h->state == Ec::WAIT_CALL) {
            ec->pending_event = -1;
            ec->event_call = true;
            if (ec->is_vcpu())
                Virt::to_utcb(*ec, pt->mtd, *h->utcb);
            else
                Mtd_xfer::to_utcb(ec->regs, pt->mtd, ec->error, ec->cr2, *h->utcb);
            enter_portal(ec, h, pt);
        }
        ec->pending_event = static_cast<int>(n);  // delivered when ec runs again
        help(ec, h, round, false);
    }
}

/*
 * The current SC goes on after its runner's activation ended: with `next` (the caller that
 * takes over) if the SC reached the ended activation through next's call (`direct`: no EC that
 * ended was helped), else with whatever its chain ends in now (Sched::resume).
 */
[[noreturn, gnu::always_inline]] inline void continue_with(Ec *next, bool direct)
{
    Sc *sc = Sched::current();
    if (next && direct)
        Sched::run(sc, next);
    Sched::resume(sc);
}

/*
 * ABI 10.5. Whoever waits for the killed EC's reply learns of the death: a caller gets COM_ABT;
 * an EC waiting for an event reply is killed as well (IPC Abort), and so on up the chain, one
 * EC per round of the loop (user mode chooses the depth).
 */
[[noreturn]] void kill(Ec *ec, const char *reason, bool direct)
{
    Cpu &cpu = Cpu::current();
    Ec *next = nullptr;
    for (;;) {
        const Exc_frame &f = ec->regs;
        trace_user("Killed EC:%p SC:%p V:%#lx CS:%#lx EIP:%#lx CR2:%#lx ERR:%#lx (%s)",
                   static_cast<void *>(ec), static_cast<void *>(cpu.sc), f.vector, f.cs, f.rip, ec->cr2,
                   ec->error, reason);
        assert(!ec->helping && !ec->callee && !ec->sc_waiters);  // it ran, or was about to
        ec->dead = true;
        ec->state = Ec::PARKED;
        if (cpu.ec == ec)
            cpu.ec = nullptr;
        if (__atomic_load_n(&ec->helped_by, __ATOMIC_RELAXED))
            direct = false;  // its helpers' SCs repeat their calls (COM_TIM)
        Ec *caller = ec->caller;
        if (!caller)
            break;
        assert(caller->callee == ec && caller->state == Ec::IN_CALL);
        ec->caller = nullptr;
        caller->callee = nullptr;
        release(ec);  // the call's reference
        caller->state = Ec::RUNNABLE;
        if (!caller->event_call) {
            caller->regs.rdi = static_cast<u64>(Status::COM_ABT);
            next = caller;
            break;
        }
        caller->event_call = false;
        ec = caller;
        reason = "IPC Abort";
    }
    continue_with(next, direct);
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
    sc->get();    // this call's reference (self->xcpu_sc): dropped by whoever ends the call
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
    __atomic_store_n(&self->xcpu_sc, sc, __ATOMIC_RELEASE);
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
    // The caller's own call chain may have been abandoned meanwhile (its SC went): then the
    // abandonment took the call (and retired our SC), and the caller has its COM_ABT.
    Sc *expected = sc;
    bool mine = __atomic_compare_exchange_n(&caller->xcpu_sc, &expected, Ec::xcpu_done(), false,
                                            __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    if (mine) {
        caller->regs = clone->regs;
        caller->state = Ec::RUNNABLE;
        __atomic_store_n(&caller->xcpu_sc, nullptr, __ATOMIC_RELEASE);  // an abandonment waits for this
        Sched::wake(caller);
    }
    Cpu &c = Cpu::current();
    c.ec = nullptr;
    c.sc = nullptr;
    clone->dead = true;
    if (mine)
        release(sc);  // the call's (and only) reference: the SC goes, and with it the clone
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
    // Someone helps self: the current SC may have reached self through that help, and then
    // goes on with the helper, not the caller (the general path finds out).
    if (!caller || caller->event_call || caller->recall || caller->pending_event >= 0 ||
        caller->xcpu_caller || __atomic_load_n(&self->helped_by, __ATOMIC_RELAXED) || self->utcb->typed() ||
        c.sc->retired)
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
    for (unsigned round = 1;; round++) {
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
            return Status::COM_TIM;  // step 6: no helping
        if (callee->state == Ec::WAIT_CALL) {
            Sched::save_current();
            transfer(self, callee);
            enter_portal(self, callee, pt);
        }
        if (no_block)
            return Status::COM_TIM;       // step 5
        help(self, callee, round, true);  // step 4; returns for a call cycle: again
    }
}

void Ipc::reply(Ec *self)
{
    Sched::save_current();  // rsp and GPRs for the next portal entry (ABI 7.1)
    Ec *caller = self->caller;
    self->caller = nullptr;
    bool direct = !__atomic_load_n(&self->helped_by, __ATOMIC_RELAXED);
    if (!caller) {
        // No reply target: a local EC waits for calls; a global EC stops for good (ABI 7.2).
        self->state = self->global ? Ec::PARKED : Ec::WAIT_CALL;
        continue_with(nullptr, direct);
    }
    assert(caller->callee == self && caller->state == Ec::IN_CALL && !self->callee);
    self->state = Ec::WAIT_CALL;  // its helpers' SCs repeat their calls when they run again
    caller->callee = nullptr;
    release(self);  // the call's reference (we only use it until run())
    caller->state = Ec::RUNNABLE;
    if (caller->event_call) {
        caller->event_call = false;
        transfer_event_items(self, caller);
        if (caller->is_vcpu()) {
            if (const char *why = Virt::from_utcb(*self->utcb, *caller))
                kill(caller, why, direct);  // ABI 10.6: Invalid XCR0
        } else if (!Mtd_xfer::from_utcb(*self->utcb, caller->regs))
            kill(caller, "EXC", direct);  // would fault in the kernel's iretq (ABI 10.6)
    } else
        transfer(self, caller);
    continue_with(caller, direct);
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
    // ABI 10.2: rip 0, rsp = initial stack pointer, rflags 0x200, GPRs 0, qual 0. A vCPU's
    // state is its reset state (src/svm.cpp), qual 0.
    ec->started = true;
    ec->error = 0;
    ec->cr2 = 0;
    Cpu::current().ec = nullptr;  // its state lives in ec->regs from here on
    deliver(ec, ec->is_vcpu() ? Abi::Vmi::STARTUP : Abi::Evt::STARTUP);
}

[[noreturn]] void deliver_recall(Ec *ec)
{
    ec->recall = false;
    Sched::save_current();
    Cpu::current().ec = nullptr;
    deliver(ec, ec->is_vcpu() ? Abi::Vmi::RECALL : Abi::Evt::RECALL);
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
        trace_user("Killed EC:0x0 SC:0x0 V:%#lx CS:%#lx EIP:%#lx CR2:%#lx ERR:%#lx (%s)", f.vector, f.cs,
                   f.rip, get_cr2(), f.error, reason);
        Sched::run_next();
    }
    Sched::save_current();
    ec->regs.vector = f.vector;
    kill(ec, reason);
}

void stop_helping(Ec *ec)
{
    Ec *h = ec->helping;
    ec->helping = nullptr;
    __atomic_sub_fetch(&h->helped_by, 1, __ATOMIC_RELAXED);
    release(h);  // the link's reference
}

namespace {
/*
 * r's cross-CPU call is abandoned with r's activation: if its clone is not done yet, the clone's
 * SC retires (it holds no capability: the call's reference is its last), and the clone's CPU
 * abandons the clone's chain like any other (the callee is ready for calls again, the clone never
 * runs again). True if r waited for a clone that was not done.
 */
bool abandon_xcpu(Ec *r)
{
    Sc *sc = __atomic_load_n(&r->xcpu_sc, __ATOMIC_ACQUIRE);
    for (;;) {
        if (!sc)
            return false;
        if (sc == Ec::xcpu_done()) {
            // The clone is handing its registers over on its CPU (a few instructions with
            // interrupts off): wait, so that r's state is final before the chain resets it.
            pause();
            sc = __atomic_load_n(&r->xcpu_sc, __ATOMIC_ACQUIRE);
            continue;
        }
        if (__atomic_compare_exchange_n(&r->xcpu_sc, &sc, nullptr, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            break;
    }
    release(sc);  // the call's reference, its last: Sched::retire, its CPU stops it and finishes it
    return true;
}

/* r stops waiting for whatever it waits for (its activation is being abandoned). */
void unblock(Ec *r)
{
    r->leave_waits();
    abandon_xcpu(r);
    if (r->helping)
        stop_helping(r);
}
}  // namespace

/*
 * A retired SC's call chain (on the SC's CPU, Sched::finish_retired, where no EC runs): whoever
 * blocked on behalf of the SC forgets it; unless another SC runs the chain's EC, every local EC
 * in the chain is made ready for its next call again (its activation is lost) and the chain's
 * first EC gets COM_ABT (or, if it waited for an event reply, stays dead), like a callee's death
 * (ABI 10.5); an EC of the chain that helped another stops. SCs that waited for a blocked EC of
 * the chain, or helped one, find it free and repeat their calls.
 */
void abandon_chain(Sc *sc)
{
    Ec *e0 = sc->ec;
    if (!e0)
        return;
    // Along the walk of Sc::runner(): an EC may have blocked while this SC ran it as a helper.
    for (Ec *e = e0;; e = e->callee ? e->callee : e->helping) {
        if (e->blocked_sc == sc)
            __atomic_store_n(&e->blocked_sc, nullptr, __ATOMIC_RELEASE);
        if (!e->callee && !(e->helping && Sc::helped_busy(e->helping)))
            break;
    }
    if (__atomic_load_n(&e0->sc_count, __ATOMIC_RELAXED))
        return;
    for (;;) {
        Ec *r = e0;
        while (r->callee)
            r = r->callee;
        if (r == e0) {
            if (e0->helping)
                stop_helping(e0);  // nothing will run it to repeat its call
            // A cross-CPU call of the chain's first EC goes with the chain: its clone's SC would
            // otherwise run (or wait for) the callee on the other CPU for an SC that is gone.
            if (abandon_xcpu(e0)) {
                e0->regs.rdi = static_cast<u64>(Status::COM_ABT);
                e0->state = Ec::RUNNABLE;
            }
            break;
        }
        Ec *caller = r->caller;
        assert(caller && caller->callee == r);  // the chain is linked both ways
        bool blocked = r->state == Ec::BLOCKED;
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
        if (blocked)
            Sched::wake(r);  // SCs waiting for it as their runner look again
        release(r);          // the call's reference
    }
}
