/*
 * Checklist H: scheduling, semaphores and signals (ABI 6, 7.10, 7.11, 7.13,
 * 12). Blocking is always bounded: downs that should not block carry a past
 * deadline, waiters are threads the root EC releases and joins with a
 * deadline.
 */
#include "suite.hpp"

namespace {

bool new_sm(Test &t, u64 sel, u64 count = 0, u64 chain = 0)
{
    Status s = create_sm(sel, SEL_ROOT_PD, count, chain);
    if (s != Status::SUCCESS)
        t.fail("create_sm: %s", status_name(s));
    return s == Status::SUCCESS;
}

// ---- H.113 - H.115: ec_ctrl --------------------------------------------------------------------

void h113(Test &t)
{
    CHECK_ST(ec_yield(), Status::SUCCESS, "ec_ctrl yield");
    CHECK_ST(ec_reschedule(), Status::SUCCESS, "ec_ctrl reschedule");
    CHECK_ST(ec_ctrl(Ec_op::YIELD, 0x123456), Status::SUCCESS, "ec_ctrl yield with a selector");
}

volatile u64 help_stop;
constexpr u64 HELP_TLS = 0x7154000000000114ull;

// Sets its TLS word and stays ready (yielding) until stopped.
void help_target(Thread &th)
{
    utcb().tls = HELP_TLS;
    th.result[0] = 1;
    for (unsigned i = 0; i < 1000000 && !help_stop; i++) {
        th.progress = th.progress + 1;
        ec_yield();
    }
}

void h114(Test &t)
{
    static Thread th;
    help_stop = 0;
    th.result[0] = 0;
    REQUIRE(spawn(&t, th, boot_cpu(), ROOT_SC_PRIO, help_target));
    bool started = wait_for(th.result[0], 1, 1000);
    Status wrong = ec_help(th.ec, HELP_TLS + 1);
    Status right = ec_help(th.ec, HELP_TLS);
    help_stop = 1;
    bool done = join(th, 2000);
    CHECK(started, "the target EC did not start");
    CHECK(wrong == Status::BAD_PAR, "help with a wrong TLS value: expected BAD_PAR, got %s",
          status_name(wrong));
    CHECK(right == Status::SUCCESS, "help with the right TLS value: expected SUCCESS, got %s",
          status_name(right));
    CHECK(done, "the target EC did not finish");
}

void noop(u64, Utcb &) {}

void h_help_errors(Test &t)
{
    u64 s = t.sel(2);
    REQUIRE(s && new_sm(t, s));
    CHECK_ST(ec_help(s, 0), Status::BAD_CAP, "help on an SM capability");
    CHECK_ST(ec_help(s + 1, 0), Status::BAD_CAP, "help on an empty selector");
    Worker w;
    REQUIRE(make_worker(t, w, SEL_ROOT_PD, boot_cpu(), noop, service_evt(boot_cpu())));
    CHECK_ST(ec_help(w.ec, 0), Status::BAD_PAR, "help on a local EC waiting for a message");
    Child_pd c;
    REQUIRE(make_child(t, c, boot_cpu(), noop, false));
    CHECK_ST(ec_help(c.w.ec, 0), Status::BAD_PAR, "help on an EC of another PD");
}

void h115(Test &t)
{
    unsigned c = other_cpu();
    if (c == NO_CPU) {
        t.skip("only one CPU online");
        return;
    }
    Worker w;
    REQUIRE(make_worker(t, w, SEL_ROOT_PD, c, noop, service_evt(c)));
    CHECK_ST(ec_help(w.ec, 0), Status::BAD_CPU, "help on an EC of another CPU");
}

// ---- H.116, H.117: sc_ctrl ------------------------------------------------------------------------

void h116(Test &t)
{
    Sc_time a = sc_ctrl(SEL_ROOT_SC);
    CHECK_ST(a.status, Status::SUCCESS, "sc_ctrl on the root SC");
    u64 prev = a.time_us;
    for (unsigned i = 0; i < 20; i++) {
        u64 end = deadline_ms(1);
        while (rdtsc() < end)
            pause();
        sleep_ms(1);
        Sc_time b = sc_ctrl(SEL_ROOT_SC);
        CHECK_ST(b.status, Status::SUCCESS, "sc_ctrl on the root SC");
        CHECK(b.time_us >= prev, "consumed time went down from %lu to %lu us", prev, b.time_us);
        prev = b.time_us;
    }
}

void h_sc_time(Test &t)
{
    Sc_time a = sc_ctrl(SEL_ROOT_SC);
    u64 end = deadline_ms(30);
    while (rdtsc() < end)
        pause();
    sleep_ms(1); // descheduled: the time is accounted
    Sc_time b = sc_ctrl(SEL_ROOT_SC);
    CHECK(a.status == Status::SUCCESS && b.status == Status::SUCCESS, "sc_ctrl failed");
    CHECK(b.time_us - a.time_us >= 15000, "30 ms of busy work added only %lu us of SC time",
          b.time_us - a.time_us);
    t.note("%lu us for 30 ms", b.time_us - a.time_us);
}

void h117(Test &t)
{
    CHECK_ST(sc_ctrl(SEL_ROOT_EC).status, Status::BAD_CAP, "sc_ctrl on an EC capability");
    CHECK_ST(sc_ctrl(SEL_ROOT_PD).status, Status::BAD_CAP, "sc_ctrl on a PD capability");
    u64 s = t.sel();
    REQUIRE(s);
    CHECK_ST(sc_ctrl(s).status, Status::BAD_CAP, "sc_ctrl on an empty selector");
}

// ---- H.118 - H.122: semaphores ---------------------------------------------------------------------

void h118(Test &t)
{
    u64 s = t.sel();
    REQUIRE(s && new_sm(t, s, 1));
    Sm_result r = sm_down(s, deadline_ms(1000));
    CHECK_ST(r.status, Status::SUCCESS, "down with counter 1");
    Regs g{};
    g.rdi = Hypercall_id(Hypercall::SM_CTRL, Sm_flag::DOWN, s).value();
    g.rsi = 0, g.rdx = 1;
    u64 t0 = rdtsc();
    hypercall(g);
    u64 took = rdtsc() - t0;
    CHECK(g.rdi == static_cast<u64>(Status::COM_TIM),
          "down with deadline 1 on counter 0: rdi %#lx, expected COM_TIM", g.rdi);
    CHECK(took < ms_ticks(500), "a deadline in the past took %lu ms", took / tsc_khz);
}

void h119(Test &t)
{
    u64 s = t.sel();
    REQUIRE(s && new_sm(t, s));
    u64 dl = deadline_ms(10);
    Sm_result r = sm_down(s, dl);
    u64 now = rdtsc();
    CHECK_ST(r.status, Status::COM_TIM, "down with a deadline 10 ms ahead");
    CHECK(now >= dl, "returned %lu us before the deadline", (dl - now) * 1000 / tsc_khz);
    CHECK(now - dl < ms_ticks(2000), "returned %lu ms after the deadline", (now - dl) / tsc_khz);
    t.note("%lu us late", (now - dl) * 1000 / tsc_khz);
}

void h120(Test &t)
{
    u64 s = t.sel();
    REQUIRE(s && new_sm(t, s, 5));
    CHECK_ST(sm_down(s, 1, true).status, Status::SUCCESS, "down with ZC on counter 5");
    CHECK_ST(sm_down(s, 1).status, Status::COM_TIM, "down after ZC (counter must be 0)");
}

void waiter(Thread &th)
{
    th.result[0] = 1;
    Sm_result r = sm_down(th.arg[0], th.arg[1]);
    th.result[1] = 1 + static_cast<u64>(r.status);
    th.result[2] = r.rsi;
    th.result[3] = r.rdx;
    th.progress = __atomic_add_fetch(reinterpret_cast<u64 *>(th.arg[2]), 1, __ATOMIC_SEQ_CST);
}

u64 release_seq;

// A higher-priority thread on `cpu` blocked in a down on `sm` (deadline `dl`).
bool blocked_waiter(Test &t, Thread &th, u64 sm, unsigned cpu, u64 dl = 0)
{
    th.arg[0] = sm, th.arg[1] = dl, th.arg[2] = reinterpret_cast<u64>(&release_seq);
    th.result[0] = 0;
    th.result[1] = 0;
    th.progress = 0;
    if (!spawn(&t, th, cpu, 2, waiter, NO_EVT))
        return false;
    if (!wait_for(th.result[0], 1, 1000)) {
        t.fail("the waiter did not start");
        return false;
    }
    sleep_ms(3); // it runs at a higher priority than we do: it is blocked now, or done
    if (th.result[1]) {
        t.fail("the down did not block (status %s)", status_name(static_cast<Status>(th.result[1] - 1)));
        return false;
    }
    return true;
}

void h121(Test &t)
{
    u64 s = t.sel();
    REQUIRE(s && new_sm(t, s));
    static Thread th;
    REQUIRE(blocked_waiter(t, th, s, boot_cpu()));
    CHECK_ST(sm_up(s), Status::SUCCESS, "up");
    CHECK(join(th, 2000), "the waiter was not released");
    CHECK(th.result[1] == 1, "the waiter's down returned %s",
          status_name(static_cast<Status>(th.result[1] - 1)));
    CHECK_ST(try_down(s), Status::COM_TIM, "down after the release (the up went to the waiter)");
}

void h_cross_cpu_release(Test &t)
{
    unsigned c = other_cpu();
    if (c == NO_CPU) {
        t.skip("only one CPU online");
        return;
    }
    u64 s = t.sel();
    REQUIRE(s && new_sm(t, s));
    static Thread th;
    REQUIRE(blocked_waiter(t, th, s, c));
    CHECK_ST(sm_up(s), Status::SUCCESS, "up");
    CHECK(join(th, 2000) && th.result[1] == 1, "the waiter on CPU %u was not released with SUCCESS", c);
}

void h_fifo(Test &t)
{
    u64 s = t.sel();
    REQUIRE(s && new_sm(t, s));
    static Thread a, b;
    release_seq = 0;
    REQUIRE(blocked_waiter(t, a, s, boot_cpu()));
    REQUIRE(blocked_waiter(t, b, s, boot_cpu()));
    sm_up(s);
    bool first = join(a, 1000);
    sleep_ms(3);
    CHECK(first && a.progress == 1, "the first waiter was not released first");
    CHECK(b.result[1] == 0, "one up released both waiters");
    sm_up(s);
    CHECK(join(b, 1000) && b.progress == 2, "the second waiter was not released by the second up");
}

void h_timeout_waiter(Test &t)
{
    u64 s = t.sel();
    REQUIRE(s && new_sm(t, s));
    static Thread th;
    REQUIRE(blocked_waiter(t, th, s, boot_cpu(), deadline_ms(20)));
    CHECK(join(th, 2000), "the waiter with a 20 ms deadline did not come back");
    CHECK(th.result[1] == 1 + static_cast<u64>(Status::COM_TIM),
          "the waiter's down returned %s, expected COM_TIM",
          status_name(static_cast<Status>(th.result[1] - 1)));
    CHECK_ST(sm_up(s), Status::SUCCESS, "up after the timeout");
    CHECK_ST(try_down(s), Status::SUCCESS, "the up after the timeout went to the counter");
}

void h122(Test &t)
{
    u64 s = t.sel(), up = t.sel(), down = t.sel();
    REQUIRE(s && up && down && new_sm(t, s, 1));
    REQUIRE(copy_cap(t, s, up, Perm_sm::UP) && copy_cap(t, s, down, Perm_sm::DOWN));
    CHECK_ST(sm_up(down), Status::BAD_CAP, "up with rights 0x02");
    CHECK_ST(sm_down(up, 1).status, Status::BAD_CAP, "down with rights 0x01");
    CHECK_ST(sm_down(down, 1).status, Status::SUCCESS, "down with rights 0x02");
    CHECK_ST(sm_up(up), Status::SUCCESS, "up with rights 0x01");
    CHECK_ST(sm_up(SEL_ROOT_PD), Status::BAD_CAP, "up on a PD capability");
}

// ---- H.123 - H.126: signals, destruction ------------------------------------------------------------

void h123(Test &t)
{
    u64 tgt = t.sel(), sig = t.sel();
    REQUIRE(tgt && sig && new_sm(t, tgt) && new_sm(t, sig, 0x1234, tgt));
    CHECK_ST(sm_up(sig), Status::SUCCESS, "up on the signal");
    CHECK_ST(sm_up(sig), Status::SUCCESS, "second up on the signal");
    Sm_result r = sm_down(tgt, deadline_ms(1000));
    CHECK_ST(r.status, Status::SUCCESS, "down on the target");
    CHECK(r.rsi == 0x1234 && r.rdx == 2, "down on the target gave rsi %#lx rdx %#lx, expected 0x1234 and 2",
          r.rsi, r.rdx);
    CHECK_ST(sm_down(tgt, 1).status, Status::COM_TIM, "a further down on the target");
}

void h_signal_waiter(Test &t)
{
    u64 tgt = t.sel(), sig = t.sel();
    REQUIRE(tgt && sig && new_sm(t, tgt) && new_sm(t, sig, 0xabcdef, tgt));
    static Thread th;
    REQUIRE(blocked_waiter(t, th, tgt, boot_cpu()));
    CHECK_ST(sm_up(sig), Status::SUCCESS, "up on the signal");
    CHECK(join(th, 2000) && th.result[1] == 1, "the waiter on the target was not released with SUCCESS");
    CHECK(th.result[2] == 0xabcdef && th.result[3] == 1,
          "the waiter got rsi %#lx rdx %#lx, expected 0xabcdef and 1", th.result[2], th.result[3]);
    CHECK_ST(sm_down(tgt, 1).status, Status::COM_TIM, "down on the target afterwards");
}

void h_signals_queue(Test &t)
{
    u64 tgt = t.sel(), s1 = t.sel(), s2 = t.sel();
    REQUIRE(tgt && s1 && s2 && new_sm(t, tgt) && new_sm(t, s1, 0x111, tgt) && new_sm(t, s2, 0x222, tgt));
    sm_up(s1);
    sm_up(s2);
    sm_up(s1);
    Sm_result a = sm_down(tgt, deadline_ms(500)), b = sm_down(tgt, deadline_ms(500));
    CHECK(a.status == Status::SUCCESS && a.rsi == 0x111 && a.rdx == 2,
          "first down: %s rsi %#lx rdx %#lx, expected "
          "0x111 with count 2",
          status_name(a.status), a.rsi, a.rdx);
    CHECK(b.status == Status::SUCCESS && b.rsi == 0x222 && b.rdx == 1,
          "second down: %s rsi %#lx rdx %#lx, expected "
          "0x222 with count 1",
          status_name(b.status), b.rsi, b.rdx);
    CHECK_ST(sm_down(tgt, 1).status, Status::COM_TIM, "third down");
}

void h124(Test &t)
{
    u64 tgt = t.sel(), sig = t.sel();
    REQUIRE(tgt && sig && new_sm(t, tgt) && new_sm(t, sig, 1, tgt));
    CHECK_ST(sm_down(sig, deadline_ms(10)).status, Status::BAD_CAP, "down on a signal");
    sm_up(sig);
    CHECK_ST(sm_down(sig, deadline_ms(10)).status, Status::BAD_CAP,
             "down on a signal that has a pending trigger");
}

void h125(Test &t)
{
    u64 tgt = t.sel(), sig = t.sel(), s = t.sel(), empty = t.sel();
    REQUIRE(tgt && sig && s && empty && new_sm(t, tgt) && new_sm(t, sig, 1, tgt));
    CHECK_ST(create_sm(s, SEL_ROOT_PD, 1, sig), Status::BAD_CAP, "create_sm chained to a signal");
    CHECK_ST(create_sm(s, SEL_ROOT_PD, 1, empty), Status::BAD_CAP, "create_sm chained to an empty selector");
    CHECK(lookup_obj(s) == 0, "a failed create_sm left a capability");
}

void h126(Test &t)
{
    u64 s = t.sel();
    REQUIRE(s && new_sm(t, s));
    static Thread th;
    REQUIRE(blocked_waiter(t, th, s, boot_cpu()));
    CHECK_ST(revoke(Crd::obj(s, 0, 0x1f), Revoke_flag::SELF), Status::SUCCESS, "revoke of the semaphore");
    CHECK(join(th, 2000), "the waiter did not come back when its semaphore was destroyed");
    CHECK(th.result[1] == 1 + static_cast<u64>(Status::BAD_CAP),
          "the waiter's down returned %s, expected BAD_CAP",
          status_name(static_cast<Status>(th.result[1] - 1)));
}

const Test_case list[] = {
    {"H.113", "ec_ctrl yield and reschedule give SUCCESS", h113, 0},
    {"H.114", "ec_ctrl help with a wrong TLS value gives BAD_PAR; with the right one SUCCESS", h114, 0},
    {"H.help-errors", "ec_ctrl help: non-EC BAD_CAP; blocked EC or other PD BAD_PAR", h_help_errors, 0},
    {"H.115", "ec_ctrl help on an EC of another CPU gives BAD_CPU", h115, 0},
    {"H.116", "sc_ctrl on the root SC succeeds; the time never goes down", h116, 0},
    {"H.sc_ctrl-time", "sc_ctrl counts the time the SC ran (in microseconds)", h_sc_time, 0},
    {"H.117", "sc_ctrl on a non-SC capability gives BAD_CAP", h117, 0},
    {"H.118", "down on counter 1 succeeds; then a past deadline gives COM_TIM", h118, 0},
    {"H.119", "down with a deadline 10 ms ahead gives COM_TIM, not before the deadline", h119, 0},
    {"H.120", "down with ZC on counter 5 leaves counter 0", h120, 0},
    {"H.121", "an up from another EC releases a blocked waiter with SUCCESS", h121, 0},
    {"H.sm-cross-cpu", "an up releases a waiter blocked on another CPU", h_cross_cpu_release, 0},
    {"H.sm-fifo", "waiters are released in FIFO order, one per up", h_fifo, 0},
    {"H.sm-timeout", "a blocked waiter times out at its deadline; a later up counts", h_timeout_waiter, 0},
    {"H.122", "up needs SM rights 0x01, down needs 0x02", h122, 0},
    {"H.123", "signal: two ups, a down on the target gives value 0x1234 and count 2", h123, 0},
    {"H.signal-waiter", "an up on a signal releases a waiter on the target with value and count",
     h_signal_waiter, 0},
    {"H.signal-queue", "signals queue at their target in order, with their counts", h_signals_queue, 0},
    {"H.124", "down on a signal gives BAD_CAP", h124, 0},
    {"H.125", "create_sm chained to a signal or an empty selector gives BAD_CAP", h125, 0},
    {"H.126", "a waiter without timeout gets BAD_CAP when its semaphore is destroyed", h126, 0},
};

} // namespace

const Test_section sec_sched = {list, sizeof(list) / sizeof(list[0])};
