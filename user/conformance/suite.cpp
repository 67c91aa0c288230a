/*
 * ABI conformance suite: main, the test runner, the watchdog and the final
 * hand-over (E.83: the root EC replies without a caller and a finisher
 * thread reports and leaves QEMU). Output through nova/test.hpp: one
 * `PASS|FAIL|SKIP <id> <desc>` line per test, then exactly `N passed, M
 * failed`; QEMU exits through isa-debug-exit with EXIT_PASS (status 33) or
 * EXIT_FAIL (status 35).
 */
#include "suite.hpp"

void snapshot_start_state();  // t_boot.cpp: what B.15 needs before anything touches the UTCB

namespace {

using test::Verdict;

constexpr unsigned DEFAULT_LIMIT_S = 30;

const Test_case *volatile current;

// ---- watchdog: a blocked test must not hang the suite --------------------------------------

Thread watchdog;
u64 wd_kick;
u64 wd_kicks;
volatile u64 wd_deadline;
bool wd_running;
volatile bool finished;

void watchdog_fn(Thread &)
{
    u64 wakeups = 0;
    for (;;) {
        u64 dl = wd_deadline;
        Status s = sm_down(wd_kick, dl).status;
        // A kernel whose down neither blocks nor waits must not make us spin at high priority.
        if (++wakeups > __atomic_load_n(&wd_kicks, __ATOMIC_SEQ_CST) + 16 ||
            (s != Status::SUCCESS && s != Status::COM_TIM)) {
            printf("suite: watchdog stopped (sm_ctrl down returned %s too often)\n", status_name(s));
            return;
        }
        if (s == Status::SUCCESS || finished || rdtsc() < wd_deadline)
            continue;
        const Test_case *c = current;
        test::report(Verdict::FAIL, "%s %s: watchdog: no result within %u s (suite aborted)", c ? c->id : "?",
                     c ? c->desc : "?", c && c->limit_s ? c->limit_s : DEFAULT_LIMIT_S);
        test::finish();
        return;
    }
}

void arm(const Test_case &c)
{
    current = &c;
    if (!wd_running)
        return;
    wd_deadline = deadline_ms(1000ull * (c.limit_s ? c.limit_s : DEFAULT_LIMIT_S));
    __atomic_fetch_add(&wd_kicks, 1, __ATOMIC_SEQ_CST);
    sm_up(wd_kick);
}

void start_watchdog()
{
    wd_kick = alloc_sel();
    wd_deadline = deadline_ms(1000ull * DEFAULT_LIMIT_S);
    if (!wd_kick || create_sm(wd_kick, SEL_ROOT_PD, 0) != Status::SUCCESS ||
        !spawn(nullptr, watchdog, boot_cpu(), 120, watchdog_fn)) {
        printf("suite: no watchdog thread; a hanging test will hang the suite\n");
        return;
    }
    wd_running = true;
}

// ---- runner ----------------------------------------------------------------------------

void report(const Test &t)
{
    const Test_case &c = *t.tc;
    if (t.failed) {
        if (t.note_text[0])
            test::report(Verdict::FAIL, "%s %s: %s (%s)", c.id, c.desc, t.msg, t.note_text);
        else
            test::report(Verdict::FAIL, "%s %s: %s", c.id, c.desc, t.msg);
    } else if (t.skipped) {
        test::report(Verdict::SKIP, "%s %s: %s", c.id, c.desc, t.msg);
    } else {
        if (t.note_text[0])
            test::report(Verdict::PASS, "%s %s (%s)", c.id, c.desc, t.note_text);
        else
            test::report(Verdict::PASS, "%s %s", c.id, c.desc);
    }
}

void run_case(const Test_case &c)
{
    Test t;
    t.tc = &c;
    arm(c);
    u64 unexpected = unexpected_exc;
    c.fn(t);
    exc_hook = nullptr;
    if (unexpected_exc != unexpected)
        t.fail("a test EC took an unexpected exception (see the line above)");
    t.cleanup();
    report(t);
}

void run_section(const Test_section &s)
{
    for (unsigned i = 0; i < s.count; i++)
        run_case(s.cases[i]);
}

// ---- E.83: the root EC replies without a caller ------------------------------------------

Thread finisher;
u64 finisher_go;
volatile u64 root_in_reply, root_returned;

const Test_case e83 = {"E.83", "reply by the root EC without a caller never returns; other SCs keep running",
                       nullptr, 10};

void finisher_fn(Thread &)
{
    sm_down(finisher_go);
    sleep_ms(100);
    finished = true;
    if (root_in_reply && !root_returned)
        test::report(Verdict::PASS, "%s %s", e83.id, e83.desc);
    else
        test::report(Verdict::FAIL, "%s %s: %s", e83.id, e83.desc,
                     root_returned ? "reply returned to the root EC" : "the root EC did not reach its reply");
    test::finish();
}

// reply (7.2) that tolerates a kernel returning from it.
void reply_may_return()
{
    u64 rdi = 1;
    asm volatile("syscall" : "+D"(rdi) : : "rcx", "r11", "memory");
}

// Started before the tests (it waits for finisher_go), so E.83 does not depend on what they leave.
bool finisher_ready;

void start_finisher()
{
    finisher_go = alloc_sel();
    finisher_ready = finisher_go && create_sm(finisher_go, SEL_ROOT_PD, 0) == Status::SUCCESS &&
                     spawn(nullptr, finisher, boot_cpu(), ROOT_SC_PRIO, finisher_fn);
}

[[noreturn]] void finish()
{
    arm(e83);
    if (!finisher_ready) {
        finished = true;
        test::report(Verdict::SKIP, "%s %s: no finisher thread could be started", e83.id, e83.desc);
        test::exit();
    }
    root_in_reply = 1;
    sm_up(finisher_go);
    reply_may_return();
    root_returned = 1;
    // The finisher reports the failure; stay out of its way without spinning.
    for (unsigned i = 0; i < 100; i++)
        sleep_ms(1000);
    park();
}

}  // namespace

[[noreturn]] void root_abort()
{
    finished = true;
    const Test_case *c = current;
    test::report(Verdict::FAIL, "%s %s: unexpected exception in the root EC (suite aborted)", c ? c->id : "?",
                 c ? c->desc : "?");
    test::exit();
}

int main(const Hip *h, unsigned)
{
    snapshot_start_state();
    test::begin("suite");  // its notes: "suite: N tests skipped"
    root_tls = ec_tls();
    if (Console::init() != Status::SUCCESS)
        exit(EXIT_FAIL);  // cannot report: try to leave QEMU, else park
    if (h->freq_tsc)
        tsc_khz = h->freq_tsc;

    unsigned online = 0;
    for (unsigned i = 0; i < NUM_CPU; i++)
        online += cpu_online(i);
    printf("NOVA ABI conformance suite: boot CPU %u, %u CPUs online, TSC %u kHz\n", boot_cpu(), online,
           tsc_khz);

    // B.23 needs selectors 0..31 empty: these tests run before the root EC's portals exist.
    run_section(sec_boot_early);
    if (!install_root_portals())
        printf("suite: the root EC's exception portals could not be installed; tests that fault in the "
               "root EC fail\n");
    iommu_expected = module_option("iommu");
    start_watchdog();
    start_finisher();

    const Test_section *sections[] = {&sec_entry,  &sec_boot,    &sec_hip,    &sec_create,  &sec_ipc,
                                      &sec_deleg,  &sec_event,   &sec_sched,  &sec_helping, &sec_xcpu,
                                      &sec_irq,    &sec_hostile, &sec_system, &sec_oom,     &sec_quota,
                                      &sec_harden, &sec_bounded};
    for (const Test_section *s : sections)
        run_section(*s);
    finish();
}
