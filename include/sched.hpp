/*
 * Per-CPU scheduler (ABI 6.2): fixed priorities 1..127, round robin within a
 * priority with each SC's quantum; an SC preempted by a higher priority keeps
 * its budget and goes to the head of its list. An SC runs the end of its EC's
 * call chain, so a caller's SC runs its callee (donation).
 *
 * The user state of the EC that runs on a CPU sits at the top of that CPU's
 * kernel stack (where the entry code put it); switching ECs copies it out to
 * the old EC and the new EC's state in, then leaves through resume().
 */
#pragma once

#include "types.hpp"

class Ec;
class Sc;
struct Cpu;

namespace Sched {
/* Make sc ready on its CPU (head: keeps its place after a preemption). */
void ready(Sc *sc, bool head = false);
/* The SC running on this CPU (nullptr when idle). */
Sc *current();
/* Leave the current EC/SC (already recorded as blocked, parked or requeued) and run the next. */
[[noreturn]] void run_next();
/* Put the current SC at the tail of its list and run the next (yield; fresh: quantum expiry). */
[[noreturn]] void yield(bool fresh_budget = false);
/* ec_ctrl reschedule: requeue at the head if budget is left, else at the tail. */
[[noreturn]] void reschedule();
/* Make `cpu` look at its queue and its current EC (IPI). */
void kick(unsigned cpu);
/* Timer interrupt on this CPU: budget accounting, timeouts, preemption. */
void tick(bool from_user);
/*
 * Switch this CPU to ec on sc (both already accounted) and enter user mode. It starts again at
 * the top of the kernel stack (whoever calls it abandons its frames), so chains of decisions
 * that end in run() again (a recall delivered to a handler that has a recall pending, ...) use
 * no more stack however long user mode makes them.
 */
[[noreturn]] void run(Sc *sc, Ec *ec);
/*
 * Continue sc (this CPU's current SC, or nullptr) with whatever it runs now (Sc::runner()), after
 * its chain changed (a reply, a kill, a help); a blocked runner makes it wait (wait_for) and the
 * CPU runs the next SC. The current EC's state is saved.
 */
[[noreturn]] void resume(Sc *sc);
/*
 * ec left BLOCKED (an up, a timeout, a clone's return, an abandoned chain; any CPU): make ready
 * the SC it blocked on and every SC waiting for it as their runner.
 */
void wake(Ec *ec);
/* Save the state at the top of the stack into the current EC (before it stops running). */
void save_current();
/* Idle loop: waits for ready SCs. */
[[noreturn]] void idle_loop();
/* Re-evaluate after an interrupt woke something on this CPU (IPI or local wake-up). */
void preempt_check(bool from_user);
/*
 * The SC's last reference went (any CPU): it is taken off its run queue and never queued again;
 * its own CPU stops running it and finishes it (finish_retired), then it waits for the grace
 * period (include/rcu.hpp).
 */
void retire(Sc *sc);
/* On the SC's CPU at a safe point: let go of retired SCs (their call chains) and defer them. */
void finish_retired(Cpu &c);
/* Retired SCs their CPUs have not finished yet (kernel statistics). */
u64 retiring();
/* Before returning to user mode: stop if the current SC was retired meanwhile. */
void stop_if_retired();
/* Timeouts (semaphore deadlines). */
void add_timeout(Ec *ec);
void remove_timeout(Ec *ec);
}  // namespace Sched
