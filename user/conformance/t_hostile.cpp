/*
 * Hostile input (issue: isolation holds under hostile input): values and timings a PD may choose
 * that the ABI leaves to "the kernel must stay up and answer with a status". Races run on two
 * CPUs (skipped with one); each ends with the kernel still answering and every status one the
 * ABI allows. The debug kernel's assertions (debug-conformance-smp4) catch a revived object.
 */
#include "suite.hpp"

namespace {

constexpr u64 NONCANONICAL = u64{1} << 47;  // the first address above the lower canonical half

void noop_handler(u64, Utcb &) {}

// ABI 1.1: a portal IP is not validated; a call to a portal whose IP is not canonical must not
// fault in the kernel (its sysretq/iretq would), it kills the callee (10.5): the caller gets
// COM_ABT, later callers COM_TIM (the callee is dead).
void r_portal_ip(Test &t)
{
    Worker w;
    u64 pt;
    REQUIRE(make_worker(t, w, SEL_ROOT_PD, boot_cpu(), noop_handler, service_evt(boot_cpu())));
    REQUIRE(make_portal(t, pt, w.ec, 0, 0, NONCANONICAL));
    CHECK_ST(call(pt), Status::COM_ABT, "call to a portal at a non-canonical IP");
    CHECK_ST(call(pt), Status::COM_TIM, "call to the killed callee");
    u64 pt2;
    Worker w2;
    REQUIRE(make_worker(t, w2, SEL_ROOT_PD, boot_cpu(), noop_handler, service_evt(boot_cpu())));
    REQUIRE(make_portal(t, pt2, w2.ec, 0, 0, ~u64{0} << 63 >> 1));  // 0xc000...: non-canonical too
    CHECK_ST(call(pt2), Status::COM_ABT, "call to a portal at 0xc000000000000000");
    REQUIRE(make_portal(t, pt2, w2.ec, 0, 0, 0));
}

// One side of a race: run fn(arg, i) on another CPU for `ms`, counting its statuses.
struct Race
{
    u64 a, b;           // selectors both sides use
    u64 ms;             // how long each side runs
    u64 n[3];           // SUCCESS, expected failure, other (the thread's counts)
    volatile u64 stop;  // set by the main side when it is done
};
Race race;

bool status_ok(Status s, Status alt1, Status alt2 = Status::SUCCESS)
{
    return s == Status::SUCCESS || s == alt1 || s == alt2;
}

// The thread: create a signal chained to race.a and revoke it, as fast as it can.
void chain_side(Thread &th)
{
    u64 end = deadline_ms(race.ms);
    while (rdtsc() < end) {
        Status s = create_sm(race.b, SEL_ROOT_PD, 7, race.a);
        if (s == Status::SUCCESS) {
            race.n[0]++;
            revoke(Crd::obj(race.b), Revoke_flag::SELF);
        } else
            race.n[s == Status::BAD_CAP ? 1 : 2]++;
    }
    th.result[0] = 1;
}

// Kobject::try_get (issue item 3): create_sm's chain target is found by a lock-free lookup;
// another CPU's revoke may drop its last reference before the new signal takes its own. Before
// the fix, the reference revived a retired semaphore (an assertion in debug kernels, a use after
// free and a double free otherwise); now the create answers BAD_CAP.
void r_revive_sm(Test &t)
{
    unsigned c = other_cpu();
    if (c == NO_CPU) {
        t.skip("only one CPU online");
        return;
    }
    race = Race{};
    race.a = t.sel();
    race.b = t.sel();
    race.ms = 1500;
    REQUIRE(race.a && race.b);
    static Thread th;
    th.result[0] = 0;
    REQUIRE(spawn(&t, th, c, 2, chain_side, NO_EVT));
    u64 made = 0, end = deadline_ms(race.ms);
    while (rdtsc() < end) {
        CHECK_ST(create_sm(race.a, SEL_ROOT_PD, 0), Status::SUCCESS, "create_sm (the chain target)");
        made++;
        CHECK_ST(revoke(Crd::obj(race.a), Revoke_flag::SELF), Status::SUCCESS, "revoke");
    }
    CHECK(join(th, 5000), "the racing CPU did not finish");
    CHECK(race.n[2] == 0,
          "create_sm chained to a semaphore being revoked: %lu answers neither SUCCESS nor "
          "BAD_CAP",
          race.n[2]);
    CHECK(race.n[0] + race.n[1] > 0, "the racing CPU made no attempt");
    t.note("%lu targets made and revoked; chained: %lu created, %lu BAD_CAP", made, race.n[0], race.n[1]);
}

// UTCB addresses, reused in turn (BAD_PAR while one is still taken by an EC not yet gone).
constexpr u64 RACE_UTCB = 0x7f00'0000'0000;
constexpr unsigned RACE_UTCBS = 64;
u64 race_utcb(u64 i) { return RACE_UTCB + i % RACE_UTCBS * PAGE_SIZE; }

void portal_side(Thread &th)
{
    u64 end = deadline_ms(race.ms);
    while (rdtsc() < end) {
        Status s = create_pt(race.b, SEL_ROOT_PD, race.a, 0, 0x1000);
        if (s == Status::SUCCESS) {
            race.n[0]++;
            revoke(Crd::obj(race.b), Revoke_flag::SELF);
        } else
            race.n[s == Status::BAD_CAP ? 1 : 2]++;
    }
    th.result[0] = 1;
}

// The same for create_pt's EC (and with it the EC's UTCB, unmapped at its retirement).
void r_revive_ec(Test &t)
{
    unsigned c = other_cpu();
    if (c == NO_CPU) {
        t.skip("only one CPU online");
        return;
    }
    race = Race{};
    race.a = t.sel();
    race.b = t.sel();
    race.ms = 1500;
    REQUIRE(race.a && race.b);
    static Thread th;
    th.result[0] = 0;
    REQUIRE(spawn(&t, th, c, 2, portal_side, NO_EVT));
    u64 made = 0, taken = 0, end = deadline_ms(race.ms);
    while (rdtsc() < end) {
        Status s = create_ec_local(race.a, SEL_ROOT_PD, c, race_utcb(made + taken), 0, 0);
        if (s == Status::BAD_PAR) {  // a portal still holds the last EC: its UTCB is still there
            taken++;
            continue;
        }
        CHECK_ST(s, Status::SUCCESS, "create_ec (the portal's EC)");
        made++;
        CHECK_ST(revoke(Crd::obj(race.a), Revoke_flag::SELF), Status::SUCCESS, "revoke");
    }
    CHECK(join(th, 5000), "the racing CPU did not finish");
    for (unsigned u = 0; u < RACE_UTCBS; u++) {
        Status s = Status::BAD_PAR;
        for (unsigned i = 0;
             i < 1000 && (s = create_ec_local(race.a, SEL_ROOT_PD, c, race_utcb(u), 0, 0)) == Status::BAD_PAR;
             i++)
            sleep_ms(1);
        CHECK_ST(s, Status::SUCCESS, "a UTCB page stayed taken after the race (an EC never retired?)");
        revoke(Crd::obj(race.a), Revoke_flag::SELF);
    }
    CHECK(race.n[2] == 0, "create_pt on an EC being revoked: %lu answers neither SUCCESS nor BAD_CAP",
          race.n[2]);
    t.note("%lu ECs made (%lu times the UTCB was still taken); portals: %lu created, %lu BAD_CAP", made,
           taken, race.n[0], race.n[1]);
}

void down_side(Thread &th)
{
    u64 end = deadline_ms(race.ms);
    while (rdtsc() < end) {
        // No deadline: only the revoke's wake-up ends a wait, so a waiter queued after it would
        // never come back.
        Status s = sm_down(race.a).status;
        __atomic_add_fetch(&race.n[s == Status::SUCCESS                             ? 0
                                   : status_ok(s, Status::BAD_CAP, Status::COM_TIM) ? 1
                                                                                    : 2],
                           1, __ATOMIC_RELAXED);
    }
    th.result[0] = 1;
}

// ABI 7.13 (issue item 4): a down that finds the semaphore by a lock-free lookup and queues
// after another CPU's revoke has woken every waiter would wait on a retired semaphore (and a
// timeout would later walk its freed memory). The down answers BAD_CAP instead; every down
// comes back.
void r_down_retired(Test &t)
{
    if (other_cpu() == NO_CPU) {
        t.skip("only one CPU online");
        return;
    }
    race = Race{};
    race.a = t.sel();
    race.ms = 1500;
    REQUIRE(race.a);
    // A down on every other CPU: one of them is usually just entering when the revoke comes.
    static Thread th[3];
    unsigned n = 0;
    for (unsigned cpu = 0; cpu < 64 && n < 3; cpu++)
        if (cpu != boot_cpu() && cpu_online(cpu)) {
            th[n].result[0] = 0;
            REQUIRE(spawn(&t, th[n++], cpu, 2, down_side, NO_EVT));
        }
    u64 made = 0, end = deadline_ms(race.ms);
    while (rdtsc() < end) {
        CHECK_ST(create_sm(race.a, SEL_ROOT_PD, 0), Status::SUCCESS, "create_sm");
        made++;
        for (unsigned spin = static_cast<unsigned>(made % 32) * 16; spin; spin--)
            pause();
        CHECK_ST(revoke(Crd::obj(race.a), Revoke_flag::SELF), Status::SUCCESS, "revoke");
    }
    for (unsigned i = 0; i < n; i++)
        CHECK(join(th[i], 5000), "a down on CPU %u never came back (queued on a retired semaphore?)",
              th[i].cpu);
    CHECK(race.n[2] == 0, "%lu downs answered neither SUCCESS, COM_TIM nor BAD_CAP", race.n[2]);
    t.note("%lu semaphores made and revoked; %lu downs", made, race.n[0] + race.n[1]);
}

// A GSI semaphore on an I/O APIC pin (not 0-4, 8, 9, which devices or the kernel use), or ~0u.
unsigned ioapic_gsi()
{
    for (unsigned i = 0; i < NUM_IOAPIC; i++) {
        const Hip_ioapic *io = hip()->ioapic(i);
        if (!io || !io->base)
            continue;
        unsigned n = (io->version >> 16 & 0xff) + 1;
        for (unsigned g = 0; g < n; g++)
            if (io->gsi_base + g >= 10 && io->gsi_base + g < NUM_GSI)
                return io->gsi_base + g;
    }
    return ~0u;
}

// issue item 10: assign_gsi moves the GSI semaphore's pending count to the new chain at once;
// it used to do one down and one up per pending interrupt with interrupts off, so a PD that
// upped the semaphore a million times bought a million-step loop in the kernel.
void r_gsi_drain(Test &t)
{
    unsigned g = ioapic_gsi();
    if (g == ~0u) {
        t.skip("no I/O APIC GSI above 9");
        return;
    }
    u64 s = t.sel(), user = t.sel(), user2 = t.sel();
    REQUIRE(s && user && user2);
    CHECK_ST(request_kernel_cap(ksel_gsi_sm(g), s), Status::SUCCESS, "GSI semaphore from the kernel");
    CHECK_ST(create_sm(user, SEL_ROOT_PD, 0), Status::SUCCESS, "create_sm");
    CHECK_ST(create_sm(user2, SEL_ROOT_PD, 0), Status::SUCCESS, "create_sm");
    // The cost of an assign_gsi that moves nothing.
    CHECK_ST(assign_gsi(s, 0, boot_cpu(), user2).status, Status::SUCCESS, "assign_gsi (nothing pending)");
    CHECK_ST(assign_gsi(s, 0, boot_cpu(), s).status, Status::SUCCESS, "unchain");
    u64 t0 = rdtsc();
    CHECK_ST(assign_gsi(s, 0, boot_cpu(), user2).status, Status::SUCCESS, "assign_gsi (nothing pending)");
    u64 base = rdtsc() - t0;
    CHECK_ST(assign_gsi(s, 0, boot_cpu(), s).status, Status::SUCCESS, "unchain");
    constexpr u64 UPS = 200000;
    for (u64 i = 0; i < UPS; i++)
        sm_up(s);
    t0 = rdtsc();
    CHECK_ST(assign_gsi(s, 0, boot_cpu(), user).status, Status::SUCCESS, "assign_gsi with 200000 pending");
    u64 moved = rdtsc() - t0;
    CHECK_ST(assign_gsi(s, 0, boot_cpu(), s).status, Status::SUCCESS, "unchain");
    u64 got = 0;
    while (try_down(user) == Status::SUCCESS)
        got++;
    CHECK(got == UPS, "the chain received %lu of %lu pending interrupts", got, UPS);
    CHECK(try_down(s) == Status::COM_TIM, "the GSI semaphore kept a count");
    // Generous: the loop took about a thousand times the base cost.
    CHECK(moved < 50 * base + ms_ticks(2),
          "moving %lu pending interrupts took %lu TSC ticks, an empty move %lu", UPS, moved, base);
    t.note("assign_gsi: %lu ticks with nothing pending, %lu with %lu pending", base, moved, UPS);
}

// issue item 13: a down on a GSI semaphore never assigned unmasks its pin (ABI 11.1). The pin
// must have been programmed with that GSI's vector (to the boot CPU, as the reference does);
// it had vector 0, so the first interrupt looked like a #DE. The RTC (GSI 8, an ISA edge line)
// raises its periodic interrupt here; the down must see it.
void r_gsi_unassigned(Test &t)
{
    unsigned g = 8;
    bool on = false;
    for (unsigned i = 0; i < NUM_IOAPIC; i++)
        if (const Hip_ioapic *io = hip()->ioapic(i);
            io && io->base && io->gsi_base <= g && g < io->gsi_base + (io->version >> 16 & 0xff) + 1)
            on = true;
    if (!on) {
        t.skip("GSI 8 is not on an I/O APIC");
        return;
    }
    u64 s = t.sel();
    REQUIRE(s);
    CHECK_ST(request_kernel_cap(ksel_gsi_sm(g), s), Status::SUCCESS, "GSI semaphore 8 from the kernel");
    CHECK_ST(request_ports(0x70, 1), Status::SUCCESS, "RTC ports 0x70-0x71");
    t.own(Crd::pio(0x70, 1));
    u64 before = unexpected_exc;
    auto rtc = [](u8 reg, int v) -> u8 {
        outb(0x70, reg);
        if (v >= 0)
            outb(0x71, static_cast<u8>(v));
        return inb(0x71);
    };
    rtc(0x0a, (rtc(0x0a, -1) & 0xf0) | 0x0f);  // 2 Hz periodic rate: at most 500 ms
    rtc(0x0c, -1);                             // clear pending flags
    rtc(0x0b, rtc(0x0b, -1) | 0x40);           // periodic interrupt on
    Status st = sm_down(s, deadline_ms(2000)).status;
    rtc(0x0b, rtc(0x0b, -1) & ~0x40);
    rtc(0x0c, -1);
    CHECK(unexpected_exc == before, "an unexpected exception arrived while the GSI 8 pin was unmasked");
    CHECK_ST(st, Status::SUCCESS, "down on the never-assigned RTC GSI semaphore with the RTC ticking");
}

// A memory capability revoked while another CPU reads through it (issue item 7: a revoked page
// stayed readable). Once revoke has returned, no access through the copy may work, on any CPU:
// the thread reads the copy in a loop and counts reads that worked after it saw our flag.
struct Revoke_race
{
    volatile u64 *copy;
    volatile u64 flag, stop;
    u64 before, after, faulted;
} rr;

// flag: 0 = mapped (or being mapped), 1 = revoke returned, 2 = the reader faulted since. Only a
// read made while the flag was 1 is certainly after the revoke and before the next delegation.
void reader_side(Thread &th)
{
    while (!__atomic_load_n(&rr.stop, __ATOMIC_ACQUIRE)) {
        u64 f = __atomic_load_n(&rr.flag, __ATOMIC_ACQUIRE);
        u64 v;
        bool ok = probe_read64(const_cast<const u64 *>(rr.copy), &v);
        if (f == 1 && !ok) {
            u64 one = 1;
            __atomic_compare_exchange_n(&rr.flag, &one, 2, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
        }
        if (f == 2)
            continue;
        u64 &n = ok && f == 1 ? rr.after : ok ? rr.before : rr.faulted;
        __atomic_store_n(&n, n + 1, __ATOMIC_RELEASE);
    }
    th.result[0] = 1;
}

void r_revoke_visible(Test &t)
{
    unsigned c = other_cpu();
    if (c == NO_CPU) {
        t.skip("only one CPU online");
        return;
    }
    u64 *page = static_cast<u64 *>(scratch_page(t));
    REQUIRE(page);
    page[0] = 0x77;
    u64 v = alloc_virt(PAGE_SIZE);
    REQUIRE(v);
    t.own_mem(v, 0);
    rr = Revoke_race{};
    rr.copy = reinterpret_cast<volatile u64 *>(v);
    static Thread th;
    th.result[0] = 0;
    REQUIRE(spawn(&t, th, c, 2, reader_side, NO_EVT));
    unsigned rounds = 0;
    for (; rounds < 200; rounds++) {
        Delegate_result r =
            pd_delegate(SEL_ROOT_PD, SEL_ROOT_PD, Crd::mem(reinterpret_cast<u64>(page) >> 12, 0, 7),
                        Item_meta(Item_meta::DELEGATE, v >> 12), Crd::mem(v >> 12, 0, 7));
        CHECK(r.status == Status::SUCCESS && !r.crd.is_null(), "delegate the copy: CRD %#lx", r.crd.value());
        u64 seen = __atomic_load_n(&rr.before, __ATOMIC_ACQUIRE);
        for (u64 end = deadline_ms(100);
             __atomic_load_n(&rr.before, __ATOMIC_ACQUIRE) == seen && rdtsc() < end;)
            pause();
        CHECK(__atomic_load_n(&rr.before, __ATOMIC_ACQUIRE) != seen,
              "round %u: the other CPU never read through the copy (%lu faults)", rounds, rr.faulted);
        CHECK_ST(revoke(Crd::mem(v >> 12, 0), Revoke_flag::SELF), Status::SUCCESS, "revoke the copy");
        __atomic_store_n(&rr.flag, 1, __ATOMIC_RELEASE);
        for (u64 end = deadline_ms(100); __atomic_load_n(&rr.flag, __ATOMIC_ACQUIRE) != 2 && rdtsc() < end;)
            pause();
        CHECK(rr.flag == 2, "round %u: the other CPU never faulted on the revoked copy", rounds);
        __atomic_store_n(&rr.flag, 0, __ATOMIC_RELEASE);
        CHECK(rr.after == 0, "round %u: %lu reads through the copy worked after its revoke had returned",
              rounds, rr.after);
    }
    __atomic_store_n(&rr.stop, 1, __ATOMIC_RELEASE);
    CHECK(join(th, 2000), "the reader did not stop");
    t.note("%u rounds, %lu reads before the revokes, %lu faults after", rounds, rr.before, rr.faulted);
}

const Test_case list[] = {
    {"R.portal-ip", "a call to a portal at a non-canonical IP kills the callee: COM_ABT, then COM_TIM",
     r_portal_ip, 0},
    {"R.revive-sm", "create_sm chained to a semaphore revoked on another CPU: SUCCESS or BAD_CAP",
     r_revive_sm, 0},
    {"R.revive-ec", "create_pt to an EC revoked on another CPU: SUCCESS or BAD_CAP", r_revive_ec, 0},
    {"R.down-retired", "down on a semaphore revoked on another CPU comes back: SUCCESS, COM_TIM or BAD_CAP",
     r_down_retired, 0},
    {"R.revoke-visible", "a page revoked while another CPU reads it is unreadable there once revoke returns",
     r_revoke_visible, 0},
    {"R.gsi-drain", "assign_gsi moves 200000 pending interrupts to the chain at once", r_gsi_drain, 0},
    {"R.gsi-unassigned", "down on a never-assigned GSI unmasks a pin with its own vector", r_gsi_unassigned,
     0},
};

}  // namespace

const Test_section sec_hostile = {list, sizeof(list) / sizeof(list[0])};
