/*
 * Lifetime of cross-CPU calls (ABI 7.1.1, docs/objects.md): the clone that runs a call on the
 * callee's CPU must not outlive the call's reason to exist. These are the sequences behind
 * docs/fuzz-findings.md F2 (a worker PD kept alive by a clone whose call never ended):
 *
 * - a callee that can only wait for itself (its exception portal is its own) ends in a Livelock
 *   kill, so the clone's call ends too; a kernel that let the callee wait for itself left the
 *   clone, its SC and its caller (and the caller's PD) in place for ever;
 * - when the caller's SC goes, its call chain is abandoned also on the other CPU: the callee is
 *   ready for calls again, the clone stops running it, and the caller's call returns COM_ABT
 *   (as in a chain on one CPU); a kernel that left the clone's chain alone let the clone run
 *   the callee at the revoked SC's priority, or wait with it, for as long as the callee liked.
 *
 * Every caller runs in a thread that is joined with a deadline; all on two CPUs (skipped with one).
 */
#include "suite.hpp"

extern "C" {
void xcpu_ud2();
}

asm(R"(
    .pushsection .text
    .global xcpu_ud2
    .type xcpu_ud2, @function
xcpu_ud2:
    ud2
    .popsection
)");

namespace {

// The callee's behaviour for a call, chosen by the caller's first word.
enum : u64 { GATE = 'G', SPIN = 'S', QUICK = 'Q' };

struct Callee
{
    u64 gate;               // GATE: waits for an up of this semaphore (GATE_MS at most)
    volatile u64 calls;     // calls the handler started
    volatile u64 finished;  // calls the handler finished
    volatile u64 spins;     // SPIN: iterations so far
    volatile u64 spin;      // SPIN: loop while set
    volatile u64 gate_st;   // 1 + status of the last GATE down
};
Callee ce;

constexpr u64 GATE_MS = 3000;

void callee_fn(u64, Utcb &u)
{
    u64 what = u.data[0];
    ce.calls = ce.calls + 1;
    if (what == GATE)
        ce.gate_st = 1 + static_cast<u64>(sm_down(ce.gate, deadline_ms(GATE_MS)).status);
    while (what == SPIN && ce.spin)
        ce.spins = ce.spins + 1;
    ce.finished = ce.finished + 1;
    u.set_items(0, 0);
}

// Calls arg[0] with the word arg[1]; result[0] = 1 + status, result[1] = 1 right before the call.
void caller_fn(Thread &th)
{
    utcb().data[0] = th.arg[1];
    utcb().set_items(1, 0);
    th.result[1] = 1;
    Status s = call(th.arg[0]);
    th.result[0] = 1 + static_cast<u64>(s);
}

void clear(Thread &th)
{
    for (volatile u64 &r : th.result)
        r = 0;
    for (u64 &a : th.arg)
        a = 0;
}

Status result_status(const Thread &th) { return static_cast<Status>(th.result[0] - 1); }

const char *status_or_none(const Thread &th)
{
    return th.result[0] ? status_name(result_status(th)) : "nothing";
}

/*
 * A callee EC on the other CPU (the service block of that CPU for its events) and a portal to it
 * with all rights (PERM_XCPU among them); ce reset.
 */
bool remote_callee(Test &t, unsigned cpu, u64 &pt)
{
    Worker w;
    u64 s = t.sel();
    if (!s || !make_worker(t, w, SEL_ROOT_PD, cpu, callee_fn, service_evt(cpu)) ||
        !make_portal(t, pt, w.ec, 0, 0))
        return false;
    if (create_sm(s, SEL_ROOT_PD, 0) != Status::SUCCESS) {
        t.fail("create_sm");
        return false;
    }
    ce = Callee{};
    ce.gate = s;
    return true;
}

/*
 * F2's first sequence: a local EC on the other CPU whose #UD portal is bound to itself, called at
 * a ud2 through a cross-CPU portal. Its exception can only go to itself, busy with it: a Livelock
 * kill, and the clone's call (so the caller's) returns COM_ABT. A later call finds it dead.
 */
void l_xcpu_livelock(Test &t)
{
    unsigned other = other_cpu();
    if (other == NO_CPU) {
        t.skip("one CPU");
        return;
    }
    u64 evt = t.sel(NUM_EXC), s = t.sel(2), area = alloc_virt(PAGE_SIZE);
    REQUIRE(evt && s && area);
    u64 ec = s, pt = s + 1, ip = reinterpret_cast<u64>(xcpu_ud2);
    CHECK_ST(create_ec_local(ec, SEL_ROOT_PD, other, area, 0, evt), Status::SUCCESS, "create_ec (other CPU)");
    CHECK_ST(create_pt(evt + Evt::UD, SEL_ROOT_PD, ec, 0, ip), Status::SUCCESS,
             "create_pt (its own #UD portal)");
    CHECK_ST(create_pt(pt, SEL_ROOT_PD, ec, 0, ip), Status::SUCCESS, "create_pt");
    static Thread th;
    clear(th);
    th.arg[0] = pt;
    REQUIRE(spawn(&t, th, boot_cpu(), 2, caller_fn));
    bool done = join(th, 2000);
    CHECK(done,
          "the cross-CPU call did not return within 2 s: the callee waits for itself, and the clone with it");
    CHECK(result_status(th) == Status::COM_ABT,
          "the cross-CPU call returned %s, expected COM_ABT (callee killed)", status_or_none(th));
    utcb().set_items(0, 0);
    CHECK_ST(call(pt), Status::COM_TIM, "a later cross-CPU call (the callee is dead)");
}

/*
 * The caller's SC is revoked while its cross-CPU call runs: give the caller EC a new SC (the
 * thread's spare selector) and see what its call returned; the callee must be free for calls.
 */
bool revoke_caller_sc(Test &t, Thread &th)
{
    if (revoke(Crd::obj(th.sc), Revoke_flag::SELF) != Status::SUCCESS) {
        t.fail("revoke of the caller's SC");
        return false;
    }
    return true;
}

// A DB call (from our CPU, through a clone) that finds the callee free within `ms`.
bool free_within(u64 pt, u64 ms, u64 &tries)
{
    u64 end = deadline_ms(ms);
    for (tries = 1;; tries++) {
        utcb().data[0] = QUICK;
        utcb().set_items(1, 0);
        if (call(pt, Call_flag::DB) == Status::SUCCESS)
            return true;
        if (rdtsc() > end)
            return false;
        sleep_ms(5);
    }
}

/*
 * The callee of a cross-CPU call blocks on a semaphore nobody ups; the caller's SC is revoked.
 * The call is abandoned on the callee's CPU as well: the callee is free at once (a DB call finds
 * it waiting for calls), and the caller, run again by a new SC, returns COM_ABT from its call.
 */
void l_xcpu_abandon_blocked(Test &t)
{
    unsigned other = other_cpu();
    if (other == NO_CPU) {
        t.skip("one CPU");
        return;
    }
    u64 pt;
    REQUIRE(remote_callee(t, other, pt));
    static Thread th;
    clear(th);
    th.arg[0] = pt, th.arg[1] = GATE;
    REQUIRE(spawn(&t, th, boot_cpu(), 2, caller_fn));
    CHECK(wait_for(ce.calls, 1, 1000), "the cross-CPU call did not reach the callee");
    REQUIRE(revoke_caller_sc(t, th));
    u64 tries = 0;
    bool free = free_within(pt, 1000, tries);
    u64 calls = ce.calls, finished = ce.finished;
    // A new SC for the caller EC: its call has come back (COM_ABT), or comes back when the callee
    // replies to the clone.
    CHECK_ST(create_sc(th.sc + 1, SEL_ROOT_PD, th.ec, Qpd(2, 10000)), Status::SUCCESS,
             "create_sc (a new SC)");
    bool back = join(th, 500);
    sm_up(ce.gate);  // a kernel that kept the call lets the callee go on now
    join(th, GATE_MS);
    CHECK(
        free,
        "the callee was still busy %u ms after the caller's SC was revoked (%lu DB calls; %lu calls started, "
        "%lu finished): the clone went on with the abandoned call",
        1000, tries, calls, finished);
    CHECK(back && result_status(th) == Status::COM_ABT,
          "the caller's cross-CPU call returned %s%s, expected COM_ABT at once (its SC went)",
          status_or_none(th), back ? "" : " within 500 ms of its new SC");
    t.note("callee free after %lu DB call(s)", tries);
}

/*
 * The callee of a cross-CPU call spins in user mode; the caller's SC is revoked. The clone's SC
 * must stop running the callee (nobody can revoke it: only the caller's SC stands for it): the
 * callee makes no more progress, and it is free for calls again.
 */
void l_xcpu_abandon_spin(Test &t)
{
    unsigned other = other_cpu();
    if (other == NO_CPU) {
        t.skip("one CPU");
        return;
    }
    u64 pt;
    REQUIRE(remote_callee(t, other, pt));
    ce.spin = 1;
    static Thread th;
    clear(th);
    th.arg[0] = pt, th.arg[1] = SPIN;
    REQUIRE(spawn(&t, th, boot_cpu(), 2, caller_fn));
    CHECK(wait_for(ce.calls, 1, 1000), "the cross-CPU call did not reach the callee");
    REQUIRE(revoke_caller_sc(t, th));
    sleep_ms(50);
    u64 s1 = ce.spins;
    sleep_ms(100);
    u64 s2 = ce.spins;
    // Our DB calls go through a clone of our priority 1 on that CPU: only if the spinning stopped.
    u64 tries = 0;
    bool free = s2 == s1 && free_within(pt, 500, tries);
    ce.spin = 0;  // a kernel that kept the call lets the callee reply now
    CHECK_ST(create_sc(th.sc + 1, SEL_ROOT_PD, th.ec, Qpd(2, 10000)), Status::SUCCESS,
             "create_sc (a new SC)");
    bool back = join(th, 1000);
    CHECK(s2 == s1,
          "the callee went on spinning after the caller's SC was revoked (%lu iterations in 100 ms): the "
          "clone's "
          "SC still runs it",
          s2 - s1);
    CHECK(free, "the callee was still busy 500 ms after the caller's SC was revoked (%lu DB calls)", tries);
    CHECK(back && result_status(th) == Status::COM_ABT,
          "the caller's cross-CPU call returned %s, expected COM_ABT", status_or_none(th));
}

const Test_case cases[] = {
    {"L.xcpu-livelock", "a cross-CPU call to an EC whose #UD portal is its own: Livelock kill, COM_ABT",
     l_xcpu_livelock, 0},
    {"L.xcpu-abandon-blocked",
     "caller's SC revoked during a cross-CPU call to a blocked callee: callee free, COM_ABT",
     l_xcpu_abandon_blocked, 0},
    {"L.xcpu-abandon-spin",
     "caller's SC revoked during a cross-CPU call to a spinning callee: the clone stops", l_xcpu_abandon_spin,
     0},
};

}  // namespace

const Test_section sec_xcpu = {cases, sizeof cases / sizeof cases[0]};
