/*
 * Helping (ABI 7.1 steps 4-7, 10.1, 10.5) and kernel work whose depth user mode chooses.
 *
 * A caller that finds its callee busy helps it: its SC runs the callee's current activity and
 * the call is retried when the callee is free. A call or event that can only be helped by the
 * caller itself (an EC whose exception portal leads to itself, A calls B calls A) makes no
 * progress and kills the caller with `Livelock`. Every test that would wait forever on a kernel
 * without helping runs in a thread and is joined with a deadline.
 *
 * The chain tests build what a kernel recursing once per level would overflow its stack with:
 * 512 local ECs each with a recall pending whose recall handler is the next one, and 512 event
 * handlers each faulting at its portal entry with its handler the next one (the last has none:
 * the kill travels back through all of them as IPC Abort).
 */
#include "suite.hpp"

// Stackless portal entries: count and reply; or fault at once (#UD). No stack, no UTCB use.
extern "C" {
void help_count_reply();
void help_ud2();
u64 help_count;
}

asm(R"(
    .pushsection .text
    .global help_count_reply
    .type help_count_reply, @function
help_count_reply:
    lock incq help_count(%rip)
    mov $1, %edi
    syscall
    ud2
    .global help_ud2
    .type help_ud2, @function
help_ud2:
    ud2
    .popsection
)");

namespace {

// ---- shared helpers ------------------------------------------------------------------------

// Spin until `ms` of this EC's own running time passed (gaps over 0.2 ms: others ran).
void work_ms(u64 ms)
{
    u64 need = ms_ticks(ms), gap = ms_ticks(1) / 5, done = 0, prev = rdtsc();
    while (done < need) {
        u64 now = rdtsc(), d = now - prev;
        if (d < gap)
            done += d;
        prev = now;
    }
}

// The order in which a worker served its callers (their tags).
volatile u64 served_n;
volatile u64 served[4];

void note_served(u64 tag)
{
    u64 i = __atomic_fetch_add(&served_n, 1, __ATOMIC_SEQ_CST);
    if (i < 4)
        served[i] = tag;
}

void reset_served()
{
    served_n = 0;
    for (volatile u64 &s : served)
        s = 0;
}

// Waits for an up on arg[1] (if not 0; 2 s at most), then calls arg[0] with the tag arg[2] in
// its first word (flags arg[3]). result[0] = 1 + status, result[1] = TSC when the call returned,
// result[2] = 1 right before the call.
void caller_fn(Thread &th)
{
    if (th.arg[1])
        sm_down(th.arg[1], deadline_ms(2000));
    utcb().data[0] = th.arg[2];
    utcb().set_items(1, 0);
    th.result[2] = 1;
    Status s = call(th.arg[0], static_cast<unsigned>(th.arg[3]));
    th.result[1] = rdtsc();
    th.result[0] = 1 + static_cast<u64>(s);
}

// Waits for an up on arg[1] (2 s at most), ups arg[2], spins for arg[3] ms; result[1] = TSC at
// the end, result[0] = 1.
void hog_fn(Thread &th)
{
    sm_down(th.arg[1], deadline_ms(2000));
    u64 end = deadline_ms(th.arg[3]), n = 0;
    sm_up(th.arg[2]);
    while (rdtsc() < end)
        th.progress = ++n;
    th.result[1] = rdtsc();
    th.result[0] = 1;
}

void clear(Thread &th)
{
    for (volatile u64 &r : th.result)
        r = 0;
    for (u64 &a : th.arg)
        a = 0;
}

Status result_status(const Thread &th) { return static_cast<Status>(th.result[0] - 1); }

// ---- a busy worker: the helper finishes it sooner --------------------------------------------

constexpr u64 WORK_MS = 10;
u64 working_sm;  // upped by a worker when it starts serving a call

// Serves a call with 10 ms of work; the caller's tag is its first word.
void work_handler(u64, Utcb &u)
{
    u64 tag = u.data[0];
    sm_up(working_sm);
    work_ms(WORK_MS);
    note_served(tag);
    u.set_items(0, 0);
}

// Works 10 ms, then touches unmapped memory: without exception portals the kernel kills it.
void work_crash_handler(u64, Utcb &u)
{
    note_served(u.data[0]);
    sm_up(working_sm);
    work_ms(WORK_MS);
    probe_write8(reinterpret_cast<void *>(0x10), 1);
    u.set_items(0, 0);
}

/*
 * A worker on the boot CPU serves a priority 2 caller (L) with 10 ms of work. As it starts, it
 * wakes a priority 3 spinner (M) that takes the CPU for 300 ms, and M first wakes a priority 4
 * caller (H, on `helper_cpu`), which calls the busy worker. Helping: H's SC (for a cross-CPU call
 * its clone's, with H's priority) runs the worker's remaining work for L and then H's own call,
 * long before M stops. A kernel that makes H wait until the worker is free lets it finish only
 * after M, when L's priority 2 SC runs the worker again. `crash`: the worker is killed at the
 * end of L's call (no exception portals): L gets COM_ABT, H (repeating its call) COM_TIM.
 */
void run_progress(Test &t, unsigned helper_cpu, bool crash)
{
    u64 pt, s = t.sel(2);
    Worker w;
    u64 evt = crash ? t.sel(NUM_EXC) : service_evt(boot_cpu());  // crash: an empty event block
    REQUIRE(s && evt && evt != NO_EVT);
    CHECK_ST(create_sm(s, SEL_ROOT_PD, 0), Status::SUCCESS, "create_sm");
    CHECK_ST(create_sm(s + 1, SEL_ROOT_PD, 0), Status::SUCCESS, "create_sm");
    working_sm = s;
    REQUIRE(make_worker(t, w, SEL_ROOT_PD, boot_cpu(), crash ? work_crash_handler : work_handler, evt) &&
            make_portal(t, pt, w.ec, 0, 0));
    reset_served();
    static Thread lo, hog, hi;
    clear(lo), clear(hog), clear(hi);
    lo.arg[0] = pt, lo.arg[2] = 'L';
    hog.arg[1] = s, hog.arg[2] = s + 1, hog.arg[3] = 300;
    hi.arg[0] = pt, hi.arg[1] = s + 1, hi.arg[2] = 'H';
    u64 t0 = rdtsc();
    REQUIRE(spawn(&t, hog, boot_cpu(), 3, hog_fn) && spawn(&t, hi, helper_cpu, 4, caller_fn) &&
            spawn(&t, lo, boot_cpu(), 2, caller_fn));
    bool done = join(hi, 3000) && join(hog, 3000) && join(lo, 3000);
    CHECK(done, "not every thread finished (served %lu)", served_n);
    CHECK(hog.result[0] == 1 && hi.result[2] == 1,
          "suite: the spinner or the priority 4 caller did not start");
    Status want_lo = crash ? Status::COM_ABT : Status::SUCCESS,
           want_hi = crash ? Status::COM_TIM : Status::SUCCESS;
    CHECK(result_status(lo) == want_lo && result_status(hi) == want_hi,
          "the calls returned %s (priority 2) and %s (priority 4), expected %s and %s",
          status_name(result_status(lo)), status_name(result_status(hi)), status_name(want_lo),
          status_name(want_hi));
    if (crash)
        CHECK(served_n == 1 && served[0] == 'L',
              "the worker served %lu calls (first '%c'), expected only L's", served_n,
              static_cast<char>(served[0]));
    else
        CHECK(served_n == 2 && served[0] == 'L' && served[1] == 'H',
              "service order '%c' '%c' (%lu calls), expected L (the call in progress) then H",
              static_cast<char>(served[0]), static_cast<char>(served[1]), served_n);
    u64 hi_ms = (hi.result[1] - t0) / tsc_khz, hog_ms = (hog.result[1] - t0) / tsc_khz;
    CHECK(
        hi.result[1] < hog.result[1],
        "the priority 4 caller's call returned at %lu ms, after the priority 3 spinner stopped (%lu ms): it "
        "waited for the busy worker instead of helping it",
        hi_ms, hog_ms);
    t.note("priority 4 call done at %lu ms, spinner until %lu ms", hi_ms, hog_ms);
}

void e_help_progress(Test &t) { run_progress(t, boot_cpu(), false); }

void e_help_xcpu(Test &t)
{
    unsigned other = other_cpu();
    if (other == NO_CPU) {
        t.skip("one CPU");
        return;
    }
    run_progress(t, other, false);
}

void e_help_killed(Test &t) { run_progress(t, boot_cpu(), true); }

// ---- a callee blocked on a semaphore: the helper waits without spinning ----------------------

u64 gate_sm;
volatile u64 gate_status[4];

// Calls (id 0xc): note the tag, wait for the gate (3 s at most). Events (#UD, id 0xe006): note 'F',
// skip the ud2.
void gated_handler(u64 id, Utcb &u)
{
    if (id == 0xe000 + Evt::UD) {
        note_served('F');
        u.rip += 2;
        u.mtd = Mtd::RIP_LEN;
        return;
    }
    u64 i = served_n;
    note_served(u.data[0]);
    Status s = sm_down(gate_sm, deadline_ms(3000)).status;
    if (i < 4)
        gate_status[i] = 1 + static_cast<u64>(s);
    u.set_items(0, 0);
}

bool gated_worker(Test &t, u64 &pt, u64 &ec)
{
    Worker w;
    u64 s = t.sel();
    if (!s || !make_worker(t, w, SEL_ROOT_PD, boot_cpu(), gated_handler, service_evt(boot_cpu())) ||
        !make_portal(t, pt, w.ec, 0, 0xc))
        return false;
    if (create_sm(s, SEL_ROOT_PD, 0) != Status::SUCCESS) {
        t.fail("create_sm");
        return false;
    }
    gate_sm = s;
    ec = w.ec;
    reset_served();
    for (volatile u64 &g : gate_status)
        g = 0;
    return true;
}

/*
 * L (priority 2) calls a worker that blocks on a semaphore; H (priority 3) calls it too and
 * helps: the worker is blocked, so H's SC waits for it (the root EC, priority 1, still runs).
 * The first up lets the worker finish L's call and take H's (which blocks again); the second
 * finishes H's. A helper that spun instead would keep the root EC from ever making the up.
 */
void e_help_blocked(Test &t)
{
    u64 pt, ec;
    REQUIRE(gated_worker(t, pt, ec));
    static Thread lo, hi;
    clear(lo), clear(hi);
    lo.arg[0] = pt, lo.arg[2] = 'L';
    hi.arg[0] = pt, hi.arg[2] = 'H';
    REQUIRE(spawn(&t, lo, boot_cpu(), 2, caller_fn));
    CHECK(wait_for(served_n, 1, 1000), "the first call did not reach the worker");
    REQUIRE(spawn(&t, hi, boot_cpu(), 3, caller_fn));
    CHECK(wait_for(hi.result[2], 1, 1000), "the second caller did not start");
    bool early = lo.result[0] || hi.result[0];
    CHECK_ST(sm_up(gate_sm), Status::SUCCESS, "first up");
    bool lo_done = join(lo, 1000);
    CHECK(wait_for(served_n, 2, 1000), "the second call did not reach the worker after the first up");
    CHECK_ST(sm_up(gate_sm), Status::SUCCESS, "second up");
    bool hi_done = join(hi, 1000);
    CHECK(!early, "a call returned before the worker was released");
    CHECK(lo_done && hi_done, "the callers did not finish (%s, %s)", lo_done ? "done" : "stuck",
          hi_done ? "done" : "stuck");
    CHECK(result_status(lo) == Status::SUCCESS && result_status(hi) == Status::SUCCESS,
          "the calls returned %s and %s", status_name(result_status(lo)), status_name(result_status(hi)));
    CHECK(served[0] == 'L' && served[1] == 'H', "service order '%c' '%c', expected L then H",
          static_cast<char>(served[0]), static_cast<char>(served[1]));
    CHECK(gate_status[0] == 1 && gate_status[1] == 1,
          "the worker's downs returned %s and %s: the up came late (a helper spun?)",
          status_name(static_cast<Status>(gate_status[0] - 1)),
          status_name(static_cast<Status>(gate_status[1] - 1)));
}

// ---- an event for a busy handler ----------------------------------------------------------

void ud2_fn(Thread &th)
{
    th.result[2] = 1;
    asm volatile("ud2" ::: "memory");  // the handler skips it
    th.result[0] = 1;
}

/*
 * An EC whose #UD handler is busy (blocked in a call from L) helps it: the exception message is
 * delivered once the handler is free, after L's call, and the EC goes on after the ud2.
 */
void g_help_event(Test &t)
{
    u64 pt, ec;
    REQUIRE(gated_worker(t, pt, ec));
    u64 evt = t.sel(NUM_EXC), svc = service_evt(boot_cpu());
    REQUIRE(evt);
    CHECK(svc != NO_EVT, "no service EC");
    REQUIRE(copy_cap(t, svc + Evt::STARTUP, evt + Evt::STARTUP, OBJ_ALL));
    CHECK_ST(
        create_pt(evt + Evt::UD, SEL_ROOT_PD, ec, Mtd::RIP_LEN, reinterpret_cast<u64>(nova_portal_entry)),
        Status::SUCCESS, "create_pt at evt + 6");
    CHECK_ST(pt_ctrl(evt + Evt::UD, 0xe000 + Evt::UD), Status::SUCCESS, "pt_ctrl");
    static Thread lo, f;
    clear(lo), clear(f);
    lo.arg[0] = pt, lo.arg[2] = 'L';
    REQUIRE(spawn(&t, lo, boot_cpu(), 2, caller_fn));
    CHECK(wait_for(served_n, 1, 1000), "the call did not reach the handler");
    REQUIRE(spawn(&t, f, boot_cpu(), 3, ud2_fn, evt));
    CHECK(wait_for(f.result[2], 1, 1000), "the faulting thread did not start");
    bool early = f.result[0] || served_n != 1;
    CHECK_ST(sm_up(gate_sm), Status::SUCCESS, "up");
    bool done = join(f, 1000) && join(lo, 1000);
    CHECK(!early, "the exception was handled while the handler was busy");
    CHECK(done, "the threads did not finish (the faulting EC %s)", f.result[0] ? "went on" : "is stuck");
    CHECK(served_n == 2 && served[0] == 'L' && served[1] == 'F', "order '%c' '%c' (%lu), expected L then F",
          static_cast<char>(served[0]), static_cast<char>(served[1]), served_n);
    CHECK(result_status(lo) == Status::SUCCESS, "the call returned %s", status_name(result_status(lo)));
}

// ---- Livelock --------------------------------------------------------------------------------

/*
 * A local EC whose #UD portal is bound to itself, called at a ud2: the exception message can only
 * go to the EC itself, which is busy with it. Helping makes no progress: the EC is killed with
 * Livelock (the console shows V:0x6 ... (Livelock)) and its caller gets COM_ABT; later calls find
 * it dead (COM_TIM).
 */
void g_help_livelock_self(Test &t)
{
    u64 evt = t.sel(NUM_EXC), s = t.sel(2), area = alloc_virt(PAGE_SIZE);
    REQUIRE(evt && s && area);
    u64 ec = s, pt = s + 1;
    CHECK_ST(create_ec_local(ec, SEL_ROOT_PD, boot_cpu(), area, 0, evt), Status::SUCCESS, "create_ec");
    u64 ip = reinterpret_cast<u64>(help_ud2);
    CHECK_ST(create_pt(evt + Evt::UD, SEL_ROOT_PD, ec, 0, ip), Status::SUCCESS,
             "create_pt (its own #UD portal)");
    CHECK_ST(create_pt(pt, SEL_ROOT_PD, ec, 0, ip), Status::SUCCESS, "create_pt");
    static Thread th;
    clear(th);
    th.arg[0] = pt;
    REQUIRE(spawn(&t, th, boot_cpu(), 2, caller_fn));
    bool done = join(th, 2000);
    CHECK(done, "the call did not return within 2 s: the EC waits for itself (no Livelock kill)");
    CHECK(result_status(th) == Status::COM_ABT, "the call returned %s, expected COM_ABT (callee killed)",
          status_name(result_status(th)));
    utcb().set_items(0, 0);
    CHECK_ST(call(pt), Status::COM_TIM, "a later call (the EC is dead)");
}

struct Cycle
{
    u64 pa, pb;
    unsigned b_flags;
    bool b_alone;  // B answers without calling A
    volatile u64 a_calls, b_calls, a_status, b_status;
};
Cycle cyc;

void cycle_a(u64, Utcb &u)
{
    cyc.a_calls = cyc.a_calls + 1;
    u.set_items(0, 0);
    cyc.a_status = 1 + static_cast<u64>(call(cyc.pb));
    u.set_items(0, 0);
}

void cycle_b(u64, Utcb &u)
{
    cyc.b_calls = cyc.b_calls + 1;
    u.set_items(0, 0);
    if (cyc.b_alone)
        return;
    cyc.b_status = 1 + static_cast<u64>(call(cyc.pa, cyc.b_flags));
    u.set_items(0, 0);
}

bool make_cycle(Test &t, unsigned b_flags)
{
    Worker a, b;
    if (!make_worker(t, a, SEL_ROOT_PD, boot_cpu(), cycle_a, service_evt(boot_cpu())) ||
        !make_worker(t, b, SEL_ROOT_PD, boot_cpu(), cycle_b, service_evt(boot_cpu())) ||
        !make_portal(t, cyc.pa, a.ec, 0, 0) || !make_portal(t, cyc.pb, b.ec, 0, 0))
        return false;
    cyc.b_flags = b_flags;
    cyc.b_alone = false;
    cyc.a_calls = 0;
    cyc.b_calls = 0;
    cyc.a_status = 0;
    cyc.b_status = 0;
    return true;
}

/*
 * A calls B, B calls A: A is busy waiting for B, so B's help would run B itself. B is killed
 * with Livelock; A's call returns COM_ABT, A replies to its caller; B's portal gives COM_TIM.
 */
void e_help_livelock_cycle(Test &t)
{
    REQUIRE(make_cycle(t, 0));
    static Thread th;
    clear(th);
    th.arg[0] = cyc.pa;
    REQUIRE(spawn(&t, th, boot_cpu(), 2, caller_fn));
    bool done = join(th, 2000);
    CHECK(done, "the call did not return within 2 s: A and B wait for each other (no Livelock kill)");
    CHECK(result_status(th) == Status::SUCCESS, "the call to A returned %s", status_name(result_status(th)));
    CHECK(cyc.a_calls == 1 && cyc.b_calls == 1, "A served %lu calls, B %lu", cyc.a_calls, cyc.b_calls);
    CHECK(cyc.a_status == 1 + static_cast<u64>(Status::COM_ABT) && cyc.b_status == 0,
          "A's call to B returned %s, B's call to A %s: expected COM_ABT and B killed",
          cyc.a_status ? status_name(static_cast<Status>(cyc.a_status - 1)) : "nothing",
          cyc.b_status ? status_name(static_cast<Status>(cyc.b_status - 1)) : "nothing");
    utcb().set_items(0, 0);
    CHECK_ST(call(cyc.pb), Status::COM_TIM, "a later call to B (dead)");
}

/* The same cycle with DB on B's call: COM_TIM at once (no helping, 7.1 step 5), nobody dies. */
void e_help_db(Test &t)
{
    REQUIRE(make_cycle(t, Call_flag::DB));
    static Thread th;
    clear(th);
    th.arg[0] = cyc.pa;
    REQUIRE(spawn(&t, th, boot_cpu(), 2, caller_fn));
    bool done = join(th, 2000);
    CHECK(done, "the call did not return within 2 s");
    CHECK(result_status(th) == Status::SUCCESS, "the call to A returned %s", status_name(result_status(th)));
    CHECK(cyc.b_status == 1 + static_cast<u64>(Status::COM_TIM) &&
              cyc.a_status == 1 + static_cast<u64>(Status::SUCCESS),
          "B's call with DB to the busy A returned %s, A's call to B %s: expected COM_TIM and SUCCESS",
          cyc.b_status ? status_name(static_cast<Status>(cyc.b_status - 1)) : "nothing",
          cyc.a_status ? status_name(static_cast<Status>(cyc.a_status - 1)) : "nothing");
    cyc.b_alone = true;
    utcb().set_items(0, 0);
    CHECK_ST(call(cyc.pb), Status::SUCCESS, "a later call to B (alive)");
}

// ---- chains deeper than a kernel stack ------------------------------------------------------

constexpr unsigned CHAIN = 512, ABORT_CHAIN = 1024;

// n local stackless ECs on `cpu` at ecs + i with event bases evt + i.
bool chain_ecs(Test &t, u64 &ecs, unsigned n, unsigned cpu, u64 evt)
{
    ecs = t.sel(n);
    u64 area = alloc_virt(u64{n} * PAGE_SIZE);
    if (!ecs || !area) {
        t.fail("suite: no selectors or addresses for %u ECs", n);
        return false;
    }
    for (unsigned i = 0; i < n; i++) {
        Status s = create_ec_local(ecs + i, SEL_ROOT_PD, cpu, area + u64{i} * PAGE_SIZE, 0, evt + i);
        if (s != Status::SUCCESS) {
            t.fail("create_ec %u of %u on CPU %u: %s", i, n, cpu, status_name(s));
            return false;
        }
    }
    return true;
}

// Calls arg[0] (from the CPU of the chain); result[0] = 1 + status.
void chain_caller(Thread &th)
{
    utcb().set_items(0, 0);
    th.result[0] = 1 + static_cast<u64>(call(th.arg[0]));
}

Status call_from(Test &t, unsigned cpu, u64 pt)
{
    if (cpu == boot_cpu()) {
        utcb().set_items(0, 0);
        return call(pt);
    }
    static Thread th;
    clear(th);
    th.arg[0] = pt;
    if (!spawn(&t, th, cpu, 2, chain_caller) || !join(th, 5000))
        return Status::BAD_PAR;  // not a status the chain gives
    return result_status(th);
}

/*
 * E_0..E_512: E_i's recall portal (evt + 31) leads to E_i+1, and E_0..E_511 have a recall
 * pending. A call to E_0 delivers its recall to E_1 before E_0 runs, E_1's to E_2, ... E_512
 * replies, and back: every EC runs its portal once (a counter), the call succeeds.
 */
bool recall_chain(Test &t, unsigned cpu)
{
    u64 ecs, pts = t.sel(CHAIN + 32), cp = t.sel();
    if (!pts || !cp || !chain_ecs(t, ecs, CHAIN + 1, cpu, pts))
        return false;
    u64 ip = reinterpret_cast<u64>(help_count_reply);
    for (unsigned i = 0; i < CHAIN; i++) {
        Status s = create_pt(pts + i + Evt::RECALL, SEL_ROOT_PD, ecs + i + 1, 0, ip);
        if (s == Status::SUCCESS)
            s = ec_recall(ecs + i);
        if (s != Status::SUCCESS) {
            t.fail("create_pt/recall for EC %u: %s", i, status_name(s));
            return false;
        }
    }
    if (create_pt(cp, SEL_ROOT_PD, ecs, 0, ip) != Status::SUCCESS) {
        t.fail("create_pt (call portal)");
        return false;
    }
    __atomic_store_n(&help_count, 0, __ATOMIC_SEQ_CST);
    Status s = call_from(t, cpu, cp);
    u64 n = __atomic_load_n(&help_count, __ATOMIC_SEQ_CST);
    if (s != Status::SUCCESS || n != CHAIN + 1) {
        t.fail("CPU %u: the call through %u recalls returned %s, %lu of %u portal entries", cpu, CHAIN,
               status_name(s), n, CHAIN + 1);
        return false;
    }
    return true;
}

void x_recall_chain(Test &t)
{
    REQUIRE(needs_kernel_memory(t, 8));  // 513 ECs on each of two CPUs (the first ones not yet reclaimed)
    REQUIRE(recall_chain(t, boot_cpu()));
    unsigned other = other_cpu();
    if (other == NO_CPU) {
        t.note("boot CPU only");
        return;
    }
    REQUIRE(recall_chain(t, other));
    t.note("boot CPU and CPU %u", other);
}

/*
 * E_0..E_1024 enter their portals at a ud2; E_i's #UD portal leads to E_i+1, E_1024 has none. A
 * call to E_0 makes 1024 exception messages nest; E_1024 is killed (PT not found), then every
 * handler's faulting EC in turn (IPC Abort), and the caller of E_0 gets COM_ABT.
 */
bool abort_chain(Test &t, unsigned cpu)
{
    u64 ecs, pts = t.sel(ABORT_CHAIN + 8), cp = t.sel();
    if (!pts || !cp || !chain_ecs(t, ecs, ABORT_CHAIN + 1, cpu, pts))
        return false;
    u64 ip = reinterpret_cast<u64>(help_ud2);
    for (unsigned i = 0; i < ABORT_CHAIN; i++)
        if (create_pt(pts + i + Evt::UD, SEL_ROOT_PD, ecs + i + 1, 0, ip) != Status::SUCCESS) {
            t.fail("create_pt for EC %u", i);
            return false;
        }
    if (create_pt(cp, SEL_ROOT_PD, ecs, 0, ip) != Status::SUCCESS) {
        t.fail("create_pt (call portal)");
        return false;
    }
    Status first = call_from(t, cpu, cp), later = call_from(t, cpu, cp);
    if (first != Status::COM_ABT || later != Status::COM_TIM) {
        t.fail("CPU %u: the call into %u nested faults returned %s, then %s: expected COM_ABT, then COM_TIM",
               cpu, ABORT_CHAIN, status_name(first), status_name(later));
        return false;
    }
    return true;
}

void x_abort_chain(Test &t)
{
    REQUIRE(needs_kernel_memory(t, 16));  // 1025 ECs on each of two CPUs (the first ones not yet reclaimed)
    REQUIRE(abort_chain(t, boot_cpu()));
    unsigned other = other_cpu();
    if (other == NO_CPU) {
        t.note("boot CPU only");
        return;
    }
    REQUIRE(abort_chain(t, other));
    t.note("boot CPU and CPU %u", other);
}

const Test_case list[] = {
    {"E.help-progress", "a busy callee's work runs on a higher-priority caller's SC (helping)",
     e_help_progress, 0},
    {"E.help-xcpu", "a cross-CPU caller's clone helps a busy callee with the caller's priority", e_help_xcpu,
     0},
    {"E.help-killed", "a callee killed while helped: its caller gets COM_ABT, the helper COM_TIM",
     e_help_killed, 0},
    {"E.help-blocked", "a helper of a callee blocked on a semaphore waits without spinning", e_help_blocked,
     0},
    {"G.help-event", "an exception whose handler is busy is delivered when the handler is free", g_help_event,
     0},
    {"E.help-db", "a call with DB in a call cycle gives COM_TIM and kills nobody", e_help_db, 0},
    {"G.help-livelock-self", "an EC whose #UD portal is its own is killed with Livelock",
     g_help_livelock_self, 0},
    {"E.help-livelock-cycle", "A calls B calls A: B is killed with Livelock, A gets COM_ABT",
     e_help_livelock_cycle, 0},
    {"X.recall-chain", "512 local ECs whose recalls go to the next one, called in one chain", x_recall_chain,
     0},
    {"X.abort-chain", "1024 nested exception handlers killed in turn (IPC Abort)", x_abort_chain, 0},
};

}  // namespace

const Test_section sec_helping = {list, sizeof(list) / sizeof(list[0])};
