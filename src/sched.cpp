/*
 * Scheduler (see include/sched.hpp).
 */
#include "sched.hpp"
#include "abi/status.hpp"
#include "activate.hpp"
#include "assert.hpp"
#include "console.hpp"
#include "cpu.hpp"
#include "entry.hpp"
#include "fpu.hpp"
#include "idt.hpp"
#include "ipc.hpp"
#include "lapic.hpp"
#include "memory.hpp"
#include "objects.hpp"
#include "rcu.hpp"
#include "string.hpp"
#include "time.hpp"
#include "x86.hpp"

namespace {

constexpr u64 HOUSEKEEPING_MS = 100;

Sc *pick(Cpu &c)
{
    Lock_guard g(c.rq_lock);
    Sc *sc = c.rq.pick();
    assert(!sc || (sc->cpu == c.id && !sc->retired));  // retire() takes it off the queue
    return sc;
}

unsigned highest_ready(Cpu &c) { return c.rq.highest(); }

/* Stop accounting the current SC's stint. */
void account(Cpu &c)
{
    if (!c.sc)
        return;
    u64 now = rdtsc(), used = now - c.sc_since;
    c.sc->consumed += used;
    c.sc->left = used < c.sc->left ? c.sc->left - used : 0;
    c.sc_since = now;
}

void arm(Cpu &c)
{
    u64 now = rdtsc();
    u64 when = now + Time::ms_to_tsc(HOUSEKEEPING_MS);
    // A budget used up inside the kernel ends at the next tick from user mode; until then the
    // timer must not fire back to back, or a CPU waiting with interrupts open (a shootdown)
    // would do nothing but take timer interrupts.
    u64 min_gap = Time::tsc_khz / 50;  // 20 us
    u64 left = c.sc ? (c.sc->left > min_gap ? c.sc->left : min_gap) : ~u64{0};
    if (left < when - now)
        when = now + left;
    for (Ec *e = c.timeouts; e; e = e->timeout_next)
        if (e->deadline < when)
            when = e->deadline;
    Lapic::timer_arm_tsc(when);
}

void expire_timeouts(Cpu &c)
{
    u64 now = rdtsc();
    Ec *expired = nullptr;
    {
        Lock_guard g(c.rq_lock);
        for (Ec **p = &c.timeouts; *p;) {
            Ec *e = *p;
            assert(e->cpu == c.id);
            if (e->deadline > now) {
                p = &e->timeout_next;
                continue;
            }
            *p = e->timeout_next;
            e->timeout_next = expired;
            expired = e;
        }
    }
    // Outside the queue lock: the semaphore decides whether the timeout or an up came first.
    while (Ec *e = expired) {
        expired = e->timeout_next;
        e->timeout_next = nullptr;
        Sm *sm = e->waiting_on;
        if (sm && sm->dequeue_waiter(e)) {
            e->deadline = 0;
            e->regs.rdi = static_cast<u64>(Status::COM_TIM);
            e->state = Ec::RUNNABLE;
            Sched::wake(e);
        }
    }
}

/* Take sc off the sc_waiters list of the EC it waits for, if it is on one (rq_lock held). */
void unlink_waiter(Sc *sc)
{
    Ec *e = sc->waits_for;
    if (!e)
        return;
    if (sc->wait_prev)
        sc->wait_prev->wait_next = sc->wait_next;
    else
        e->sc_waiters = sc->wait_next;
    if (sc->wait_next)
        sc->wait_next->wait_prev = sc->wait_prev;
    sc->wait_next = sc->wait_prev = nullptr;
    sc->waits_for = nullptr;
}

/* sc into c's queue (rq_lock held), off any waiters list; false if it is queued or retired. */
bool enqueue_locked(Cpu &c, Sc *sc, bool head)
{
    unlink_waiter(sc);
    if (sc->queued || sc->retired)
        return false;
    c.rq.enqueue(sc, head);
    return true;
}

/* Something of priority prio became ready on c: a remote CPU looks (IPI), a local exit switches. */
void notify(Cpu &c, unsigned prio)
{
    if (&c != &Cpu::current()) {
        c.resched = true;
        Lapic::send_ipi(c.apic_id, Vec::IPI_RESCHED);
    } else if (c.sc && prio > c.sc->prio)
        c.resched = true;  // strict priorities (ABI 6.2): the kernel exit switches to it
}

/*
 * sc (picked, or this CPU's current SC) cannot run its runner ec. A blocked ec keeps sc on its
 * sc_waiters list until it wakes (Sched::wake); a dead or parked one (or none) never runs again,
 * and sc is dropped. True if ec became ready meanwhile: run it.
 */
bool wait_for(Cpu &c, Sc *sc, Ec *ec)
{
    Lock_guard g(c.rq_lock);
    if (sc->queued || sc->retired || !ec || ec->dead)
        return false;
    Ec::State st = __atomic_load_n(&ec->state, __ATOMIC_ACQUIRE);  // a waker writes it first
    if (st == Ec::RUNNABLE)
        return true;
    if (st != Ec::BLOCKED)
        return false;
    assert(!sc->waits_for && ec->cpu == c.id);
    sc->waits_for = ec;
    sc->wait_prev = nullptr;
    sc->wait_next = ec->sc_waiters;
    if (ec->sc_waiters)
        ec->sc_waiters->wait_prev = sc;
    ec->sc_waiters = sc;
    return false;
}

bool can_run(const Ec *ec) { return ec && ec->state == Ec::RUNNABLE && !ec->dead; }

}  // namespace

Sc *Sched::current() { return Cpu::current().sc; }

void Sched::ready(Sc *sc, bool head)
{
    assert(sc->cpu < Cpu::count && sc->prio >= 1 && sc->prio < Run_queue<Sc>::PRIOS);
    assert(sc->ec);  // not an idle SC
    Cpu &c = *Cpu::table[sc->cpu];
    {
        Lock_guard g(c.rq_lock);
        if (!enqueue_locked(c, sc, head))
            return;
    }
    notify(c, sc->prio);
}

void Sched::wake(Ec *ec)
{
    Sc *b = __atomic_load_n(&ec->blocked_sc, __ATOMIC_ACQUIRE);
    Cpu &c = *Cpu::table[ec->cpu];
    unsigned top = 0;
    {
        Lock_guard g(c.rq_lock);
        if (b && enqueue_locked(c, b, false))
            top = b->prio;
        while (Sc *w = ec->sc_waiters)  // enqueue_locked takes w off the list
            if (enqueue_locked(c, w, false) && w->prio > top)
                top = w->prio;
    }
    if (top)
        notify(c, top);
}

void Sched::save_current()
{
    Cpu &c = Cpu::current();
    if (c.ec)
        Fpu::save(c.ec->fpu);  // its registers are in c.ec->regs already
}

void Sched::run(Sc *sc, Ec *ec)
{
    // A fresh stack below the frame area at the top, aligned as after a call: the caller's
    // frames are abandoned (see run_next).
    asm volatile("mov %0, %%rsp; jmp run_body"
                 :
                 : "r"(Cpu::current().kstack_top - sizeof(Exc_frame) - 72), "D"(sc), "S"(ec)
                 : "memory");
    __builtin_unreachable();
}

extern "C" [[noreturn]] void run_body(Sc *sc, Ec *ec)
{
    Cpu &c = Cpu::current();
    assert(sc && ec && sc->cpu == c.id && ec->cpu == c.id);
    assert(!c.rq_lock.held());
    if (sc->retired) {
        // Its last capability went while the kernel worked for it: stop here.
        if (c.ec == ec)
            Sched::save_current();
        Sched::run_next();
    }
    // The SC runs the end of its EC's call chain, an EC that is ready to run, and is off its
    // run queue while it runs.
    assert(ec->state == Ec::RUNNABLE && !ec->callee);
    assert(sc->runner() == ec);
    assert(!sc->queued && !sc->waits_for);
    if (ec->helping)
        stop_helping(ec);  // the EC it helped is free (or dead): ec repeats its call now
    if (c.ec != ec)
        activate(c, ec);
    if (c.sc != sc) {
        // A new SC: start its stint and its quantum timer. IPC keeps the SC (donation) and
        // so skips this.
        account(c);
        c.sc = sc;
        c.sc_since = rdtsc();
        if (!sc->left)
            sc->left = sc->quantum_ticks;
        arm(c);
    }
    sync_io_bitmap(c);
    if (ec->xcpu_caller)
        xcpu_step(sc, ec);  // a cross-CPU call clone never runs user code
    if (ec->global && !ec->started)
        deliver_startup(ec);  // these three do not return
    if (ec->pending_event >= 0)
        deliver_pending(ec);
    if (ec->recall)
        deliver_recall(ec);
    if (c.resched)
        Sched::preempt_check(true);  // something of a higher priority became ready meanwhile
    if (ec->is_vcpu())
        Virt::run(ec);  // its user mode is a guest
    ret_user(&ec->regs);
}

void Sched::resume(Sc *sc)
{
    Cpu &c = Cpu::current();
    if (sc && !sc->retired) {
        assert(sc == c.sc);
        Ec *ec = sc->runner();
        if (can_run(ec) || wait_for(c, sc, ec))
            run(sc, ec);
    }
    run_next();
}

/*
 * Whoever calls run_next() abandons its kernel stack: start again just below the frame area, so
 * that chains of decisions (an EC killed at its startup, the next one too, ...) cannot grow it.
 */
void Sched::run_next()
{
    Cpu &c = Cpu::current();
    asm volatile("mov %0, %%rsp; jmp run_next_body"
                 :
                 : "r"(c.kstack_top - sizeof(Exc_frame) - 72)
                 : "memory");
    __builtin_unreachable();
}

extern "C" [[noreturn]] void run_next_body()
{
    Cpu &c = Cpu::current();
    assert(!c.rq_lock.held());  // also a lock leak: this CPU never returns to the holder
    account(c);
    c.sc = nullptr;
    c.ec = nullptr;  // its state was saved by whoever decided to leave it
    Sched::finish_retired(c);
    Rcu::poll();
    for (;;) {
        Sc *sc = pick(c);
        if (!sc)
            break;
        Ec *ec = sc->runner();
        if (can_run(ec) || wait_for(c, sc, ec))
            Sched::run(sc, ec);
        // Not runnable: the SC waits for its runner (blocked) or is done (dead, parked).
    }
    Sched::idle_loop();
}

void Sched::yield(bool fresh)
{
    Cpu &c = Cpu::current();
    account(c);
    save_current();
    if (c.sc) {
        if (fresh || !c.sc->left)
            c.sc->left = c.sc->quantum_ticks;
        ready(c.sc);
    }
    c.ec = nullptr;
    run_next();
}

void Sched::reschedule()
{
    Cpu &c = Cpu::current();
    account(c);
    save_current();
    if (c.sc) {
        bool head = c.sc->left > 0;
        if (!head)
            c.sc->left = c.sc->quantum_ticks;
        ready(c.sc, head);
    }
    c.ec = nullptr;
    run_next();
}

void Sched::kick(unsigned cpu)
{
    Cpu &c = *Cpu::table[cpu];
    c.resched = true;
    Lapic::send_ipi(c.apic_id, Vec::IPI_RESCHED);
}

extern "C" [[noreturn]] void idle_body()
{
    Cpu &c = Cpu::current();
    for (;;) {
        Sched::finish_retired(c);
        Rcu::poll();
        arm(c);
        if (!c.rq.empty())
            Sched::run_next();
        unload_space(c);
        // Quiescent while halted (include/rcu.hpp); an interrupt clears the flag on entry.
        __atomic_store_n(&c.idle, true, __ATOMIC_SEQ_CST);
        asm volatile("sti; hlt; cli" ::: "memory");
        __atomic_store_n(&c.idle, false, __ATOMIC_SEQ_CST);
        expire_timeouts(c);
    }
}

void Sched::idle_loop()
{
    Cpu &c = Cpu::current();
    c.sc = nullptr;
    c.ec = nullptr;
    // A fresh stack below the frame area at the top (the caller's frames are abandoned), aligned
    // as after a call.
    asm volatile("mov %0, %%rsp; jmp idle_body" : : "r"(c.kstack_top - sizeof(Exc_frame) - 72) : "memory");
    __builtin_unreachable();
}

void Sched::tick(bool from_user)
{
    Cpu &c = Cpu::current();
    expire_timeouts(c);
    if (from_user)
        Rcu::poll();
    account(c);
    if (from_user && c.sc && !c.sc->left) {
        // Quantum used up: to the tail of its list with a fresh budget (ABI 6.2).
        yield(true);
    }
    preempt_check(from_user);
    arm(c);
}

void Sched::preempt_check(bool from_user)
{
    Cpu &c = Cpu::current();
    if (!from_user || !c.sc)
        return;  // idle or in the kernel: the idle loop or the next exit looks again (resched stays)
    c.resched = false;
    stop_if_retired();
    // Another SC's retirement is finished at a point where no EC runs: the abandoned chain may
    // be the one this SC runs now through helping. So go round the scheduler (keeping our turn).
    if (highest_ready(c) > c.sc->prio || __atomic_load_n(&c.retired, __ATOMIC_ACQUIRE)) {
        account(c);
        save_current();
        ready(c.sc, true);  // preempted: keeps its budget, head of its list
        c.ec = nullptr;
        run_next();
    }
    if (c.ec && c.ec->recall)
        run(c.sc, c.ec);  // delivers the recall
}

void Sched::add_timeout(Ec *ec)
{
    Cpu &c = *Cpu::table[ec->cpu];
    Lock_guard g(c.rq_lock);
    if constexpr (ASSERTIONS)
        for (Ec *e = c.timeouts; e; e = e->timeout_next)
            assert(e != ec);  // on the list once
    assert(!ec->timeout_next && ec->deadline);
    ec->timeout_next = c.timeouts;
    c.timeouts = ec;
}

void Sched::remove_timeout(Ec *ec)
{
    Cpu &c = *Cpu::table[ec->cpu];
    Lock_guard g(c.rq_lock);
    for (Ec **p = &c.timeouts; *p; p = &(*p)->timeout_next)
        if (*p == ec) {
            *p = ec->timeout_next;
            ec->timeout_next = nullptr;
            return;
        }
}

namespace {
u64 retiring_count;
}

u64 Sched::retiring() { return __atomic_load_n(&retiring_count, __ATOMIC_RELAXED); }

void Sched::retire(Sc *sc)
{
    __atomic_add_fetch(&retiring_count, 1, __ATOMIC_RELAXED);
    if (sc->ec)
        __atomic_sub_fetch(&sc->ec->sc_count, 1, __ATOMIC_RELAXED);
    Cpu &c = *Cpu::table[sc->cpu];
    {
        Lock_guard g(c.rq_lock);
        assert(!sc->retired && !sc->retired_next);  // the last reference goes once
        sc->retired = true;
        if (sc->queued)
            c.rq.remove(sc);
        unlink_waiter(sc);
        sc->retired_next = c.retired;
        c.retired = sc;
    }
    if (&c != &Cpu::current())
        kick(sc->cpu);
}

void Sched::finish_retired(Cpu &c)
{
    if (!__atomic_load_n(&c.retired, __ATOMIC_ACQUIRE))
        return;
    Sc *list;
    {
        Lock_guard g(c.rq_lock);
        list = c.retired;
        c.retired = nullptr;
    }
    while (Sc *sc = list) {
        list = sc->retired_next;
        sc->retired_next = nullptr;
        assert(sc->retired && !sc->queued && sc->cpu == c.id);
        assert(c.sc != sc);  // this CPU stopped running it
        abandon_chain(sc);
        Rcu::defer(sc);
        __atomic_sub_fetch(&retiring_count, 1, __ATOMIC_RELAXED);
    }
}

void Sched::stop_if_retired()
{
    Cpu &c = Cpu::current();
    if (c.sc && c.sc->retired) {
        save_current();
        run_next();
    }
}
