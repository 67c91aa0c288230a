/*
 * Hypercall fuzzer (docs/testing.md): the root task.
 *
 * Its controller (a global EC of the root PD at the highest priority)
 * spawns, per CPU in use, workers: child PDs that share this image, each
 * with a global EC making random hypercalls (worker.cpp) and a handler EC for
 * its events; and one server PD with an echo and a probe EC per CPU
 * (server.cpp). While the workers run it adds chaos of its own: it kills
 * workers (revokes their PDs) and respawns them, recalls them, takes memory
 * and capabilities away from them, restarts the server, and checks with
 * the probe that a revoked page can no longer be read. A worker that stops
 * making progress (blocked, killed by the kernel, parked) is respawned.
 *
 * Then a sanity phase: everything is torn down; create, call, delegate and
 * revoke still work on every CPU; with `kstat` the kernel's memory is back
 * at the baseline taken before the run. The last line is `N passed, M failed`
 * and QEMU is left through isa-debug-exit.
 *
 * Options (words of the module's command line, nova/cmdline.hpp):
 *   seed=N       the random streams (default 1); a failing seed replays (docs/testing.md)
 *   time=S       seconds of fuzzing (default 60; 0: until calls=)
 *   calls=N      stop after N hypercalls of the workers (default: no limit)
 *   cpus=N       use the first N online CPUs (at most 8)
 *   workers=N    workers per CPU (1 or 2, default 2)
 *   progress=S   seconds between progress lines (default 5)
 *   chaos=MASK   the controller's own actions (bits: 1 kill workers, 2 recall them, 4 revoke
 *                their object spaces, 8 pages of their stacks, 16 pages of our image from all
 *                children, 32 restart the server, 64 probe revoked pages, 128 call the
 *                echo server; default all)
 *   nochaos      chaos=0 (stalled workers are still respawned)
 *   kstat        compare the kernel's memory with the baseline (the kernel needs `kstat` too);
 *                if it is not back, print the kernel's census and let it list what is left
 *   census       with kstat: the census and the list even when the memory is back
 *   trace        workers print every hypercall before they make it (slow; gives them the UART)
 *   verbose      the controller prints every spawn and kill
 */
#include "format.hpp"
#include "fuzz.hpp"

extern "C" u64 fz_f_read(u64);

namespace fuzz {

Shared sh;

void violation(unsigned kind, unsigned slot, u64 gen, u64 a, u64 b, u64 c, const volatile u64 *call)
{
    if (kind >= V_COUNT)
        return;
    if (slot == SELFTEST_SLOT && kind == V_UNEXPECTED) {
        sh.selftest_last[0] = a;
        sh.selftest_last[1] = b;
        sh.selftest_last[2] = c;
        __atomic_add_fetch(&sh.selftest_unexpected, 1, __ATOMIC_RELEASE);
        return;
    }
    __atomic_add_fetch(&sh.viol_count[kind], 1, __ATOMIC_RELAXED);
    u64 i = __atomic_fetch_add(&sh.viol_logged, 1, __ATOMIC_RELAXED);
    if (i >= MAX_VIOL_LOG)
        return;
    Violation &v = sh.viol_log[i];
    v = {kind, slot, gen, a, b, c, {}};
    for (unsigned k = 0; call && k < 5; k++)
        v.call[k] = call[k];
}

}  // namespace fuzz

using namespace fuzz;

namespace {

using test::check;

// ---- configuration ----------------------------------------------------------------------------

struct Config
{
    u64 seed = 1, time_s = 60, calls = 0, cpus = MAX_CPUS, per_cpu = MAX_PER_CPU, progress_s = 5;
    u64 chaos = ~u64{0};  // CHAOS_* bits
    u64 probes = 0;       // extra probe checks in the sanity phase (probes=N, for experiments)
    u64 probe_self = 2;   // probes revoke 0: without self, 1: with, 2: either (probe_self=N)
    bool kstat = false, trace = false, verbose = false;
    bool census = false;  // the kernel's census at the end even when the memory is back
};

Config cfg;

// The controller and the watchdog have the highest priority, 127. Workers create SCs of any
// priority, and an EC of theirs can loop at it without ever blocking (an exception whose
// handler parks it at a page the chaos took away faults again at once): at 127 the controller
// shares its CPU with such an SC round robin, below it would starve (docs/fuzz-findings.md, F4).
constexpr unsigned CONTROLLER_PRIO = Qpd::MAX_PRIO;
constexpr unsigned WORKER_PRIO = 20;  // all alike: a worker above another would starve it
constexpr u64 TICK_MS = 50;
constexpr u64 STALL_MS = 200;     // no hypercall for this long: respawn
constexpr u64 MIN_LIFE_MS = 300;  // chaos kills no younger worker (stacks alternate)
constexpr u64 RECLAIM_LIMIT_MS = 5000;

// ---- stacks -----------------------------------------------------------------------------------

// Per worker two of its own and two of its handler (alternating by generation), two per server
// CPU, and the sanity child, the controller, the watchdog and the self-test's two.
constexpr unsigned N_STACKS = MAX_WORKERS * 4 + MAX_CPUS * 2 + 5;
alignas(STACK_SIZE) u8 stack_pool[N_STACKS][STACK_SIZE];
unsigned stacks_used;

Ec_tls *take_stack()
{
    if (stacks_used >= N_STACKS)
        return nullptr;
    u8 *s = stack_pool[stacks_used++];
    return reinterpret_cast<Ec_tls *>(s + STACK_SIZE - sizeof(Ec_tls));
}

void init_tls(Ec_tls *t, u64 utcb_addr, Portal_handler h, void *arg)
{
    *t = Ec_tls{reinterpret_cast<Utcb *>(utcb_addr), h, arg, 0};
}

u64 stack_lo(const Ec_tls *t) { return reinterpret_cast<u64>(t) & ~(STACK_SIZE - 1); }

// ---- state of the controller --------------------------------------------------------------------

u64 slot_sel[MAX_WORKERS];  // 64 root selectors per worker: PD, EC, SC, handler EC, 32 event portals
u64 srv_sel;                // 512: PD, ECs, portals of the server
u64 sms;                    // the four shared semaphores
u64 sanity_sel;             // 16: the sanity phase's objects
u64 sleep_sm;
Ec_tls *sanity_stack;
bool srv_alive;
u64 srv_spawned;
u64 probe_phys, probe_va, probe_magic;
Rng crng;
u64 start_tsc;

struct Counters
{
    u64 spawns, spawn_failures, stalls, parked, chaos_kills, recalls, remote_revokes, page_revokes,
        server_restarts, probes, probes_skipped, echoes, echo_failed, printed_viol;
} cnt;

enum Slot_sel : u64 { PD = 0, EC = 1, SC = 2, HEC = 3, EVT = 32 };
enum Srv_sel : u64 { S_PD = 0, S_EC = 8, S_HEC = 16, S_ECHO = 32, S_PROBE = 40, S_EVTP = 256 };

void sleep_ms(u64 ms) { sm_down(sleep_sm, rdtsc() + ms_to_tsc(ms)); }

// Where the controller is, for the watchdog.
const char *volatile ctl_where = "set-up";
volatile u64 ctl_arg, ctl_beat;

void at(const char *where, u64 arg = 0)
{
    ctl_where = where;
    ctl_arg = arg;
    __atomic_add_fetch(&ctl_beat, 1, __ATOMIC_RELAXED);
}

/*
 * Wall-clock time for the length of the run: the HPET's main counter where there is one (under
 * TCG on a loaded host the kernel's TSC calibration can be off several times, docs/testing.md),
 * else the TSC.
 */
volatile u64 *hpet;
u64 hpet_fs, hpet_t0;

void clock_init()
{
    u64 base = hip()->hpet_base;
    auto r = base ? static_cast<volatile u64 *>(map_phys(base, PAGE_SIZE, Perm_mem::R)) : nullptr;
    if (!r || !(r[0] & (1u << 13)))  // a 64-bit main counter
        return;
    hpet_fs = r[0] >> 32;
    u64 a = r[30], t = rdtsc() + ms_to_tsc(10);
    while (r[30] == a && rdtsc() < t)
        pause();
    if (hpet_fs && hpet_fs <= 100000000 && r[30] != a)
        hpet = r;
}

u64 now_ms()
{
    if (!hpet)
        return tsc_to_ms(rdtsc());
    u64 d = hpet[30];
    return d / 1000000 * hpet_fs / 1000000 + d % 1000000 * hpet_fs / 1000000000000ull;
}

u64 wall_ms(u64 since_tsc)
{
    if (!hpet)
        return tsc_to_ms(rdtsc() - since_tsc);
    u64 d = hpet[30] - hpet_t0;  // ms = d * fs / 10^12, in two parts that cannot overflow
    return d / 1000000 * hpet_fs / 1000000 + d % 1000000 * hpet_fs / 1000000000000ull;
}

void wall_start()
{
    start_tsc = rdtsc();
    if (hpet)
        hpet_t0 = hpet[30];
}

// One item from our PD into `pd`; a null result CRD counts as BAD_PAR.
Status give(u64 pd, Crd send, Crd window)
{
    Delegate_result d =
        pd_delegate(self_pd(), pd, send, Item_meta(Item_meta::DELEGATE, window.base()), window);
    if (d.status != Status::SUCCESS)
        return d.status;
    return d.crd.is_null() ? Status::BAD_PAR : Status::SUCCESS;
}

// Delegate every memory node of our image to `pd` at the same addresses (the segments may have
// gaps between them: the stack pool's alignment).
Status share_image(u64 pd)
{
    u64 page = sh.image_first, end = sh.image_first + sh.image_pages;
    while (page < end) {
        Lookup_result l = pd_lookup(Crd::mem(page));
        if (l.status != Status::SUCCESS)
            return l.status;
        if (l.crd.type() != Crd::MEM || l.crd.base() > page) {
            page++;
            continue;
        }
        Crd node = Crd::mem(l.crd.base(), l.crd.order(), l.crd.rights());
        Status s = give(pd, node, node);
        if (s != Status::SUCCESS)
            return s;
        page = node.base() + node.count();
    }
    return Status::SUCCESS;
}

Status event_portals(u64 sel, u64 ec, Rng &r)
{
    Status s = Status::SUCCESS;
    for (unsigned v = 0; s == Status::SUCCESS && v < NUM_EXC; v++) {
        // What the kernel writes into the handler's UTCB: what the handler needs, plus random
        // extra bits (FPU, other GPRs, vCPU-only state that exceptions ignore).
        u64 mtd = Mtd::RIP_LEN | Mtd::RSP | Mtd::QUAL | (r.chance(300) ? r.next() & 0xffffffffull : 0);
        s = create_portal(sel + v, ec, mtd, v);
    }
    return s;
}

// ---- the server ---------------------------------------------------------------------------------

void kill_server()
{
    at("kill_server");
    revoke(Crd::obj(srv_sel, 9), Revoke_flag::SELF);
    srv_alive = false;
    __atomic_add_fetch(&sh.server.gen, 1, __ATOMIC_RELEASE);
}

bool spawn_server()
{
    u64 const b = srv_sel, pd = b + S_PD;
    u64 const gen = sh.server.gen;
    Rng r{derive(sh.seed, 3, 0, gen)};
    at("spawn_server", gen);
    Status s = create_pd(pd, self_pd());
    if (s == Status::SUCCESS)
        s = share_image(pd);
    for (unsigned k = 0; s == Status::SUCCESS && k < sh.ncpus; k++) {
        unsigned cpu = sh.cpu[k];
        Catcher &c = sh.server.catcher[k];
        c = Catcher{};
        c.slot = ~0u;
        c.stack_lo = stack_lo(sh.server.stack[k]);
        c.stack_hi = c.stack_lo + STACK_SIZE;
        c.rng = Rng{derive(sh.seed, 4, k, gen)};
        sh.server.rng[k] = Rng{derive(sh.seed, 5, k, gen)};
        u64 utcb_addr = S_UTCB + 0x2000 * u64{k};
        init_tls(sh.server.stack[k], utcb_addr, server_handler, &c);
        init_tls(sh.server.hstack[k], utcb_addr + PAGE_SIZE, event_handler, &c);
        s = create_ec_local(b + S_HEC + k, pd, cpu, utcb_addr + PAGE_SIZE,
                            reinterpret_cast<u64>(sh.server.hstack[k]), NO_EVT);
        if (s == Status::SUCCESS)
            s = create_ec_local(b + S_EC + k, pd, cpu, utcb_addr, reinterpret_cast<u64>(sh.server.stack[k]),
                                S_EVT + 32 * u64{k});
        if (s == Status::SUCCESS)
            s = event_portals(b + S_EVTP + 32 * u64{k}, b + S_HEC + k, r);
        if (s == Status::SUCCESS)
            s = create_portal(b + S_ECHO + k, b + S_EC + k, 0, ECHO_ID | k);
        if (s == Status::SUCCESS)
            s = create_portal(b + S_PROBE + k, b + S_EC + k, 0, PROBE_ID | k);
    }
    if (s == Status::SUCCESS)  // all event portals at once, without the right to change their ids
        s = give(pd, Crd::obj(b + S_EVTP, 8, Crd::ALL_RIGHTS & ~Perm_pt::CTRL), Crd::obj(S_EVT, 8));
    if (s == Status::SUCCESS)
        s = give(pd, Crd::obj(pd), Crd::obj(S_SELF));
    if (s != Status::SUCCESS) {
        if (cfg.verbose)
            printf("fuzz: server spawn failed: %s\n", status_name(s));
        kill_server();
        return false;
    }
    srv_alive = true;
    srv_spawned = rdtsc();
    return true;
}

// ---- workers ----------------------------------------------------------------------------------

void give_server_portals(Worker &w)
{
    if (srv_alive)  // echo at 0x80 + k, probe at 0x88 + k; no right to change their ids
        give(slot_sel[w.slot] + PD, Crd::obj(srv_sel + S_ECHO, 4, Crd::ALL_RIGHTS & ~Perm_pt::CTRL),
             Crd::obj(C_SRV, 4));
}

void kill_worker(Worker &w)
{
    at("kill_worker", w.slot);
    w.killed_tsc = rdtsc();
    __atomic_add_fetch(&w.gen, 1, __ATOMIC_RELEASE);
    w.alive = false;
    revoke(Crd::obj(slot_sel[w.slot], 6), Revoke_flag::SELF);
    if (cfg.verbose)
        printf("fuzz: killed worker %u (CPU %u)\n", w.slot, w.cpu);
}

bool spawn_worker(Worker &w)
{
    u64 const b = slot_sel[w.slot], pd = b + PD;
    u64 const gen = __atomic_load_n(&w.gen, __ATOMIC_ACQUIRE);
    Rng r{derive(sh.seed, 2, w.slot, gen)};
    at("spawn_worker", w.slot);
    Ec_tls *st = w.stack[gen & 1], *ht = w.hstack[gen & 1];
    Catcher &c = w.catcher;
    u64 const parked = c.parked_self;
    c = Catcher{};
    c.parked_self = parked;
    c.stack_lo = stack_lo(st);
    c.stack_hi = c.stack_lo + STACK_SIZE;
    c.rng = Rng{derive(sh.seed, 6, w.slot, gen)};
    c.entry = worker_main;
    c.slot = w.slot;
    c.last_call = &w.last_rdi;
    init_tls(st, C_UTCB, nullptr, &w);
    init_tls(ht, C_UTCB + PAGE_SIZE, event_handler, &c);
    u64 const sp = reinterpret_cast<u64>(st) - 8;  // as after a call: the ABI's stack alignment
    __atomic_store_n(&c.start_sp, sp, __ATOMIC_RELEASE);
    w.prio = WORKER_PRIO;

    Status s = create_pd(pd, self_pd());
    if (s == Status::SUCCESS)
        s = share_image(pd);
    if (s == Status::SUCCESS)
        s = create_ec_local(b + HEC, pd, w.cpu, C_UTCB + PAGE_SIZE, reinterpret_cast<u64>(ht), NO_EVT);
    if (s == Status::SUCCESS)
        s = event_portals(b + EVT, b + HEC, r);
    if (s == Status::SUCCESS)
        s = give(pd, Crd::obj(b + EVT, 5, Crd::ALL_RIGHTS & ~Perm_pt::CTRL), Crd::obj(C_EVT, 5));
    if (s == Status::SUCCESS)
        s = give(pd, Crd::obj(pd), Crd::obj(C_SELF));
    if (s == Status::SUCCESS)
        s = give(pd, Crd::obj(sms, 2), Crd::obj(C_SMS, 2));
    if (s == Status::SUCCESS && sh.trace)
        s = give(pd, Crd::pio(Console::COM1, 3), Crd::pio(Console::COM1, 3));
    if (s == Status::SUCCESS) {
        give_server_portals(w);
        // PD capabilities of other live workers: delegations, creations and remote revokes across PDs.
        unsigned n = 0;
        for (unsigned i = 0; i < sh.nworkers && n < MAX_SIBLINGS; i++) {
            Worker &o = sh.worker[(w.slot + 1 + i) % sh.nworkers];
            if (&o != &w && o.alive && r.chance(600))
                give(pd, Crd::obj(slot_sel[o.slot] + PD), Crd::obj(C_SIBS + n++));
        }
        s = create_ec_global(b + EC, pd, w.cpu, C_UTCB, sp, C_EVT);
    }
    if (s == Status::SUCCESS)
        s = create_sc(b + SC, self_pd(), b + EC, Qpd(w.prio, static_cast<u32>(r.range(100, 10000))));
    if (s != Status::SUCCESS) {
        cnt.spawn_failures++;
        if (cfg.verbose)
            printf("fuzz: spawning worker %u failed: %s\n", w.slot, status_name(s));
        revoke(Crd::obj(b, 6), Revoke_flag::SELF);
        w.killed_tsc = rdtsc();
        __atomic_add_fetch(&w.gen, 1, __ATOMIC_RELEASE);
        return false;
    }
    cnt.spawns++;
    w.alive = true;
    w.spawned_tsc = w.seen_tsc = rdtsc();
    w.seen_calls = w.calls;
    if (cfg.verbose)
        printf("fuzz: spawned worker %u (CPU %u, generation %lu, priority %u)\n", w.slot, w.cpu, gen, w.prio);
    return true;
}

// ---- the probe: is a revoked page gone? -----------------------------------------------------------

enum class Probe { READ, FAULT, SKIP };

// Ask the server EC of CPU index k to read `addr`; `val` gets the value.
Probe probe(unsigned k, u64 addr, u64 &val)
{
    Utcb &u = utcb();
    u.data[0] = addr;
    u.set_items(1, 0);
    u.xlt = u.del = 0;
    if (call(srv_sel + S_PROBE + k) != Status::SUCCESS || (u.items & 0xffff) != 3 ||
        u.data[2] != (PROBE_ID | k))
        return Probe::SKIP;
    val = u.data[0];
    return u.data[1] == NO_FAULT ? Probe::READ : Probe::FAULT;
}

/*
 * Map our probe page, delegate it to the server, let the server EC of CPU index k read it (twice:
 * the translation is then cached), revoke it (from the server only, or with self from us too), and
 * let it read again: that read must fault. The page is mapped only during the check (it is a
 * mapping-database node of ours: made during the run, one that stayed could pin a slab page and
 * spoil the kstat comparison). Returns whether the check ran; violations are recorded.
 */
bool probe_check(unsigned k, bool self, bool &read_ok, bool &gone)
{
    read_ok = gone = false;
    if (!srv_alive)
        return false;
    u64 const page = probe_va >> PAGE_BITS, spage = S_PROBE_VA >> PAGE_BITS, pd = srv_sel + S_PD;
    at("probe_check", k);
    if (map_phys_at(probe_phys, probe_va, PAGE_SIZE, Perm_mem::RW) != Status::SUCCESS)
        return false;
    probe_magic = crng.next() | 1;
    *reinterpret_cast<volatile u64 *>(probe_va) = probe_magic;
    revoke(Crd::mem(spage), Revoke_flag::REMOTE | Revoke_flag::SELF, pd);  // whatever is there
    bool ran = false;
    u64 v = 0;
    if (give(pd, Crd::mem(page, 0, Perm_mem::R), Crd::mem(spage, 0, Perm_mem::R)) == Status::SUCCESS) {
        Probe p1 = probe(k, S_PROBE_VA, v), p2 = probe(k, S_PROBE_VA, v);
        if (p1 != Probe::SKIP && p2 != Probe::SKIP) {
            read_ok = p2 == Probe::READ && v == probe_magic;
            if (!read_ok)
                fuzz::violation(V_PROBE, ~0u, k, v, probe_magic, p2 == Probe::READ);
            at("probe_check: revoke", self);
            revoke(Crd::mem(page), self ? Revoke_flag::SELF : 0);
            at("probe_check: the read after the revoke", k);
            Probe p3 = probe(k, S_PROBE_VA, v);
            if (p3 != Probe::SKIP) {
                ran = true;
                gone = p3 == Probe::FAULT;
                if (!gone)
                    fuzz::violation(V_REVOKED, ~0u, k, v, probe_magic, self);
            }
        }
    }
    revoke(Crd::mem(page), Revoke_flag::SELF);
    return ran;
}

// ---- kernel statistics ---------------------------------------------------------------------------

bool wait_reclaimed(Kstat &out, u64 &ms)
{
    at("waiting for reclamation");
    u64 const t0 = rdtsc();
    for (;;) {
        if (kstat(out) != Status::SUCCESS)
            return false;
        ms = tsc_to_ms(rdtsc() - t0);
        if (out.pending == 0)
            return true;
        if (ms > RECLAIM_LIMIT_MS)
            return false;
        sleep_ms(5);
    }
}

void settle()
{
    Kstat k{};
    u64 ms;
    if (sh.kstat_on)
        wait_reclaimed(k, ms);
    else
        sleep_ms(100);
}

// ---- violations and progress ----------------------------------------------------------------------

void print_violations()
{
    u64 n = __atomic_load_n(&sh.viol_logged, __ATOMIC_ACQUIRE);
    for (; cnt.printed_viol < n && cnt.printed_viol < MAX_VIOL_LOG; cnt.printed_viol++) {
        const Violation &v = sh.viol_log[cnt.printed_viol];
        printf("fuzz: VIOLATION %s: worker %d generation %lu: %#lx %#lx %#lx (seed %lu)\n",
               vkind_name[v.kind], v.slot == ~0u ? -1 : static_cast<int>(v.slot), v.gen, v.a, v.b, v.c,
               sh.seed);
        if (v.call[0] || v.call[1])
            printf("fuzz: VIOLATION ... after the hypercall rdi %#lx rsi %#lx rdx %#lx rax %#lx r8 %#lx\n",
                   v.call[0], v.call[1], v.call[2], v.call[3], v.call[4]);
    }
}

u64 total_calls()
{
    u64 t = 0;
    for (unsigned i = 0; i < sh.nworkers; i++)
        t += sh.worker[i].calls;
    return t;
}

void progress(u64 elapsed_ms)
{
    char per[160];
    size_t p = 0;
    u64 faults = 0;
    for (unsigned k = 0; k < sh.ncpus; k++) {
        u64 n = 0;
        for (unsigned i = 0; i < sh.nworkers; i++)
            if (sh.worker[i].cpu == sh.cpu[k])
                n += sh.worker[i].calls;
        p += format(per + p, sizeof(per) - p, "%scpu%u %lu", k ? " " : "", sh.cpu[k], n);
    }
    for (unsigned i = 0; i < sh.nworkers; i++)
        faults += sh.worker[i].faults;
    u64 t = total_calls();
    printf("fuzz: %lu s: %lu hypercalls (%s), %lu/s, %lu exceptions caught, %lu spawns (%lu stalled, %lu "
           "parked, "
           "%lu chaos kills), %lu server restarts, %lu probes\n",
           elapsed_ms / 1000, t, per, elapsed_ms ? t * 1000 / elapsed_ms : 0, faults, cnt.spawns, cnt.stalls,
           cnt.parked, cnt.chaos_kills, cnt.server_restarts, cnt.probes);
}

// ---- the run --------------------------------------------------------------------------------------

Worker *random_worker(bool alive)
{
    Worker &w = sh.worker[crng.below(sh.nworkers)];
    return w.alive == alive ? &w : nullptr;
}

bool sanity_echo(unsigned k);

// The controller's chaos actions (option chaos=<mask>; nochaos = chaos=0).
enum : u64 {
    CHAOS_KILL = 1,           // kill a worker (it is respawned at the next tick)
    CHAOS_RECALL = 2,         // recall a worker's EC
    CHAOS_OBJ_REVOKE = 4,     // a worker's whole object space or its work area, remotely
    CHAOS_PAGE_REVOKE = 8,    // a page of a worker's stack or scratch area, remotely
    CHAOS_IMAGE_REVOKE = 16,  // a page of our image from every child and the server
    CHAOS_SERVER = 32,        // restart the server
    CHAOS_PROBE = 64,         // the revoked-page probe
    CHAOS_ECHO = 128,         // a call to the echo server on a random CPU, between the workers' calls
};

void chaos(u64 now)
{
    Rng &r = crng;
    u64 const m = cfg.chaos;
    if (r.chance(80) && (m & CHAOS_KILL)) {  // kill a worker; it is respawned at the next tick
        Worker *w = random_worker(true);
        if (w && now - w->spawned_tsc > ms_to_tsc(MIN_LIFE_MS)) {
            kill_worker(*w);
            cnt.chaos_kills++;
        }
    }
    if (r.chance(25) && (m & CHAOS_RECALL)) {
        if (Worker *w = random_worker(true)) {
            at("chaos: recall", w->slot);
            ec_recall(slot_sel[w->slot] + EC);
            cnt.recalls++;
        }
    }
    if (r.chance(10) && (m & CHAOS_OBJ_REVOKE)) {  // a child's whole object space, or its work area
        if (Worker *w = random_worker(true)) {
            Crd crd = r.chance(300) ? Crd::whole(Crd::OBJ) : Crd::obj(C_WORK, 12);
            at("chaos: remote revoke of objects", w->slot);
            revoke(crd, Revoke_flag::REMOTE | Revoke_flag::SELF, slot_sel[w->slot] + PD);
            cnt.remote_revokes++;
        }
    }
    if (r.chance(10) &&
        (m & CHAOS_PAGE_REVOKE)) {  // the page of its stack or of its scratch area, in a child
        if (Worker *w = random_worker(true)) {
            u64 page = r.chance(300) ? (w->catcher.stack_lo >> PAGE_BITS) + r.below(STACK_SIZE / PAGE_SIZE)
                                     : (C_SCRATCH >> PAGE_BITS) + r.skewed(18);
            at("chaos: remote revoke of a page", w->slot);
            revoke(Crd::mem(page), Revoke_flag::REMOTE | Revoke_flag::SELF, slot_sel[w->slot] + PD);
            cnt.page_revokes++;
        }
    }
    if (r.chance(3) && (m & CHAOS_IMAGE_REVOKE)) {  // one page of our image from every child and the server
        at("chaos: revoke of an image page");
        revoke(Crd::mem(sh.image_first + r.below(sh.image_pages)));
        cnt.page_revokes++;
    }
    if (r.chance(10) && (m & CHAOS_SERVER) && srv_alive && now - srv_spawned > ms_to_tsc(1000)) {
        kill_server();
        cnt.server_restarts++;
        if (spawn_server())
            for (unsigned i = 0; i < sh.nworkers; i++)
                if (sh.worker[i].alive)
                    give_server_portals(sh.worker[i]);
    }
    if (r.chance(100) && (m & CHAOS_ECHO) && srv_alive) {
        at("chaos: echo");
        if (!sanity_echo(static_cast<unsigned>(r.below(sh.ncpus))))
            cnt.echo_failed++;
        cnt.echoes++;
    }
    if (r.chance(25) && (m & CHAOS_PROBE)) {
        bool read_ok, gone;
        bool self = cfg.probe_self == 2 ? r.chance(250) : cfg.probe_self;
        if (probe_check(static_cast<unsigned>(r.below(sh.ncpus)), self, read_ok, gone))
            cnt.probes++;
        else
            cnt.probes_skipped++;
    }
}

void tend(u64 now)
{
    for (unsigned i = 0; i < sh.nworkers; i++) {
        Worker &w = sh.worker[i];
        if (!w.alive) {
            if (now - w.killed_tsc > ms_to_tsc(TICK_MS))
                spawn_worker(w);
            continue;
        }
        if (w.calls != w.seen_calls) {
            w.seen_calls = w.calls;
            w.seen_tsc = now;
        }
        bool parked = w.catcher.parked_self != 0;
        if (parked || now - w.seen_tsc > ms_to_tsc(STALL_MS)) {
            (parked ? cnt.parked : cnt.stalls)++;
            if (cfg.verbose && parked)
                printf("fuzz: worker %u parked: event %lu at rip %#lx (cr2 %#lx)\n", w.slot, w.catcher.last_v,
                       w.catcher.last_rip, w.catcher.last_cr2);
            if (cfg.verbose && !parked)
                printf("fuzz: worker %u stalled in hypercall rdi %#lx rsi %#lx rdx %#lx rax %#lx r8 %#lx\n",
                       w.slot, w.last_rdi, w.last_rsi, w.last_rdx, w.last_rax, w.last_r8);
            w.catcher.parked_self = 0;
            kill_worker(w);
        }
    }
    if (!srv_alive && spawn_server())
        for (unsigned i = 0; i < sh.nworkers; i++)
            if (sh.worker[i].alive)
                give_server_portals(sh.worker[i]);
}

void run()
{
    wall_start();
    u64 next_progress = cfg.progress_s * 1000;
    spawn_server();
    for (unsigned i = 0; i < sh.nworkers; i++)
        spawn_worker(sh.worker[i]);
    for (;;) {
        at("run: sleeping");
        sleep_ms(TICK_MS);
        at("run: tick");
        u64 now = rdtsc(), elapsed = wall_ms(start_tsc);
        for (unsigned i = 0; i < 16; i++)
            sm_up(sms + i % 4);  // whoever waits forever on a shared semaphore gets going again
        tend(now);
        chaos(now);
        print_violations();
        if (elapsed >= next_progress) {
            progress(elapsed);
            next_progress += cfg.progress_s * 1000;
        }
        if ((cfg.time_s && elapsed >= cfg.time_s * 1000) || (cfg.calls && total_calls() >= cfg.calls)) {
            progress(elapsed);
            return;
        }
    }
}

void teardown()
{
    sh.stop = true;
    for (unsigned i = 0; i < sh.nworkers; i++)
        if (sh.worker[i].alive)
            kill_worker(sh.worker[i]);
    kill_server();
    settle();
}

// ---- sanity: create, call, delegate, revoke -------------------------------------------------------

constexpr u64 SAN_X = 0x300;  // where the sanity child receives the capability
constexpr u64 SAN_UTCB = 0x500000000000ull;

// Runs in the sanity child: report what our object space holds at SAN_X.
void sanity_handler(u64, Utcb &u)
{
    Lookup_result l = pd_lookup(Crd::obj(SAN_X));
    u.data[0] = static_cast<u64>(l.status);
    u.data[1] = l.crd.value();
    u.set_items(2, 0);
}

// What the sanity child sees at SAN_X through a call; false if the call failed.
bool sanity_call(u64 pt, Crd &seen)
{
    Utcb &u = utcb();
    u.set_items(0, 0);
    u.xlt = u.del = 0;
    if (call(pt) != Status::SUCCESS || (u.items & 0xffff) != 2 || u.data[0] != 0)
        return false;
    seen = Crd(u.data[1]);
    return true;
}

/*
 * On CPU `cpu` (called from the controller's CPU, so cross-CPU where they differ): a child PD,
 * a handler EC in it, a portal; a call; a semaphore delegated into it, seen there through a
 * call; revoked, gone; everything revoked, the portal gone. Returns the first problem or nullptr.
 */
const char *sanity_objects(unsigned cpu)
{
    u64 const b = sanity_sel, pd = b, ec = b + 1, pt = b + 2, sm = b + 3;
    at("sanity objects", cpu);
    init_tls(sanity_stack, SAN_UTCB, sanity_handler, nullptr);
    const char *problem = nullptr;
    Crd seen;
    if (create_pd(pd, self_pd()) != Status::SUCCESS)
        problem = "create_pd";
    else if (share_image(pd) != Status::SUCCESS)
        problem = "sharing our image";
    else if (create_ec_local(ec, pd, cpu, SAN_UTCB, reinterpret_cast<u64>(sanity_stack), NO_EVT) !=
             Status::SUCCESS)
        problem = "create_ec";
    else if (create_portal(pt, ec) != Status::SUCCESS)
        problem = "create_pt";
    else if (create_sm(sm, self_pd(), 0) != Status::SUCCESS)
        problem = "create_sm";
    else if (!sanity_call(pt, seen) || !seen.is_null())
        problem = "the first call (or the child holds something already)";
    else if (give(pd, Crd::obj(sm), Crd::obj(SAN_X)) != Status::SUCCESS)
        problem = "delegating the semaphore";
    else if (!sanity_call(pt, seen) || seen.type() != Crd::OBJ || seen.base() != SAN_X)
        problem = "the child does not see the delegated semaphore";
    else if (revoke(Crd::obj(sm)) != Status::SUCCESS)
        problem = "revoke (self = 0)";
    else if (!sanity_call(pt, seen) || !seen.is_null())
        problem = "the revoked semaphore is still in the child";
    else if (sm_up(sm) != Status::SUCCESS || sm_down(sm, 0).status != Status::SUCCESS)
        problem = "our semaphore after the revoke";
    if (revoke(Crd::obj(b, 4), Revoke_flag::SELF) != Status::SUCCESS && !problem)
        problem = "revoke of everything";
    else if (!problem && call(pt) != Status::BAD_CAP)
        problem = "the portal is still there after the revoke";
    return problem;
}

// Echo through the server EC of CPU index k.
bool sanity_echo(unsigned k)
{
    at("sanity echo", k);
    Utcb &u = utcb();
    u64 const x = crng.next();
    u.data[0] = x;
    u.set_items(1, 0);
    u.xlt = u.del = 0;
    return call(srv_sel + S_ECHO + k) == Status::SUCCESS && (u.items & 0xffffffff) == 2 && u.data[0] == ~x &&
           u.data[1] == (ECHO_ID | k);
}

// ---- the self-test of the event handler ---------------------------------------------------------

/*
 * Before the run, on the controller's CPU: the handler's check for an exception right after a
 * hypercall (V_UNEXPECTED, server.cpp) must report a real one and must not report a plain call to
 * the event portal that finds the state of an earlier event in the handler's UTCB
 * (docs/fuzz-findings.md, F8). A child PD like a worker's, whose global EC (selftest_main) blocks
 * twice on a semaphore through fz_raw and is recalled during the first wait: the recall message
 * leaves fz_raw_ret and an rsp in its stack in the handler's UTCB. Then the controller calls event
 * portal 0 with no words (the handler sees that state again, with event number 0), and last the
 * EC faults in fz_raw itself, after a yield, on an unmapped record. Its reports are counted apart
 * (SELFTEST_SLOT).
 */
constexpr u64 SELFTEST_BAD_OUT = 0x1000;  // never mapped (user/linker.ld: the image is far above)

Catcher selftest_catcher;
volatile u64 selftest_step;  // written by selftest_main
u64 selftest_sel;            // 8 root selectors: PD, EC, SC, handler EC, semaphore; 32 portals at +32
unsigned ctl_cpu;

[[noreturn]] void selftest_main()
{
    Raw in{}, out{};
    in.rflags = 0x202;
    for (u64 i = 1; i <= 2; i++) {  // two downs of our semaphore (at C_SMS), no timeout
        in.rdi = static_cast<u64>(Hypercall::SM_CTRL) | u64{Sm_flag::DOWN} << 4 | C_SMS << 8;
        __atomic_store_n(&selftest_step, i, __ATOMIC_RELEASE);
        fz_raw(&in, &out);
    }
    __atomic_store_n(&selftest_step, 3, __ATOMIC_RELEASE);
    in.rdi = static_cast<u64>(Hypercall::EC_CTRL) | u64{1} << 4;  // yield
    fz_raw(&in, reinterpret_cast<Raw *>(SELFTEST_BAD_OUT));       // faults storing the result
    for (;;)
        fz_park();
}

// Wait up to 2 s for cond(); false on a timeout.
template <typename F> bool wait_for(F cond)
{
    for (u64 t0 = now_ms(); !cond();) {
        if (now_ms() - t0 > 2000)
            return false;
        sleep_ms(2);
    }
    return true;
}

void selftest()
{
    u64 const b = selftest_sel, pd = b + PD, sm = b + 4;
    Rng r{derive(sh.seed, 8, 0, 0)};
    at("self-test");
    Catcher &c = selftest_catcher;
    Ec_tls *st = take_stack(), *ht = take_stack();
    u64 const n0 = sh.selftest_unexpected;
    const char *problem = nullptr;
    Status s = st && ht ? Status::SUCCESS : Status::OOM;
    if (s == Status::SUCCESS) {
        c = Catcher{};
        c.slot = SELFTEST_SLOT;
        c.stack_lo = stack_lo(st);
        c.stack_hi = c.stack_lo + STACK_SIZE;
        c.rng = Rng{derive(sh.seed, 9, 0, 0)};
        c.entry = selftest_main;
        init_tls(st, C_UTCB, nullptr, nullptr);
        init_tls(ht, C_UTCB + PAGE_SIZE, event_handler, &c);
        u64 const sp = reinterpret_cast<u64>(st) - 8;
        __atomic_store_n(&c.start_sp, sp, __ATOMIC_RELEASE);
        s = create_pd(pd, self_pd());
        if (s == Status::SUCCESS)
            s = share_image(pd);
        if (s == Status::SUCCESS)
            s = create_ec_local(b + HEC, pd, ctl_cpu, C_UTCB + PAGE_SIZE, reinterpret_cast<u64>(ht), NO_EVT);
        if (s == Status::SUCCESS)
            s = event_portals(b + EVT, b + HEC, r);
        if (s == Status::SUCCESS)
            s = give(pd, Crd::obj(b + EVT, 5, Crd::ALL_RIGHTS & ~Perm_pt::CTRL), Crd::obj(C_EVT, 5));
        if (s == Status::SUCCESS)
            s = create_sm(sm, self_pd(), 0);
        if (s == Status::SUCCESS)
            s = give(pd, Crd::obj(sm), Crd::obj(C_SMS));
        if (s == Status::SUCCESS)
            s = create_ec_global(b + EC, pd, ctl_cpu, C_UTCB, sp, C_EVT);
        if (s == Status::SUCCESS)
            s = create_sc(b + SC, self_pd(), b + EC, Qpd(WORKER_PRIO, 10000));
    }
    if (s != Status::SUCCESS)
        problem = "set-up";
    else if (!wait_for([] { return __atomic_load_n(&selftest_step, __ATOMIC_ACQUIRE) == 1; }))
        problem = "the EC did not start";
    else {
        sleep_ms(10);  // it blocks in its first down
        ec_recall(b + EC);
        sm_up(sm);
        if (!wait_for([&] {
                return __atomic_load_n(&c.recalls, __ATOMIC_ACQUIRE) == 1 &&
                       __atomic_load_n(&selftest_step, __ATOMIC_ACQUIRE) == 2;
            }))
            problem = "no recall message";
    }
    bool call_ok = false;
    u64 n1 = n0;
    if (!problem) {
        sleep_ms(10);  // it blocks in its second down
        Utcb &u = utcb();
        u.set_items(0, 0);
        u.xlt = u.del = 0;
        call_ok = call(b + EVT + Evt::DE) == Status::SUCCESS;
        sleep_ms(10);
        n1 = sh.selftest_unexpected;
        sm_up(sm);
        if (!wait_for([] { return __atomic_load_n(&selftest_step, __ATOMIC_ACQUIRE) == 3; }))
            problem = "the EC did not go on after the plain call";
        else if (!wait_for([&] { return __atomic_load_n(&sh.selftest_unexpected, __ATOMIC_ACQUIRE) != n1; }))
            problem = "no report of its exception in fz_raw";
    }
    check(!problem && call_ok && n1 == n0,
          "self-test: a plain call to an event portal after a recall in a hypercall is no violation (%lu "
          "reports)%s%s",
          n1 - n0, problem ? ": failed at " : "", problem ? problem : "");
    u64 const n2 = sh.selftest_unexpected;
    check(
        !problem && n2 - n1 == 1 && sh.selftest_last[0] == Evt::PF &&
            sh.selftest_last[1] >= reinterpret_cast<u64>(fz_raw_ret) &&
            sh.selftest_last[1] < reinterpret_cast<u64>(fz_raw_end) &&
            sh.selftest_last[2] > SELFTEST_BAD_OUT && sh.selftest_last[2] < SELFTEST_BAD_OUT + sizeof(Raw),
        "self-test: an exception in fz_raw after a hypercall is a violation (%lu reports; event %lu at %#lx, "
        "cr2 %#lx)",
        n2 - n1, sh.selftest_last[0], sh.selftest_last[1], sh.selftest_last[2]);
    revoke(Crd::obj(b, 6), Revoke_flag::SELF);

    // The other way to make an event look like another: a worker empties one of its event
    // selectors (a revoke with self) and delegates another event portal there; a recall in a
    // hypercall then arrives as event 0 at fz_raw_ret, say. Workers never do that (op_revoke).
    struct
    {
        Crd crd;
        bool hits;
    } const revokes[] = {
        {Crd::obj(C_EVT + Evt::RECALL), true},
        {Crd::obj(C_EVT, 5), true},
        {Crd::obj(C_EVT + 16, 4), true},
        {Crd::obj(0x20, 6), true},  // 0..63: the base rounds down
        {Crd::obj(0x40, 6), false},
        {Crd::obj(SEL_NUM + C_EVT + 31), true},  // selectors wrap
        {Crd::obj(0x123456, 26), true},
        {Crd::obj(C_EVT + NUM_EXC), false},
        {Crd::obj(C_WORK, 12), false},
        {Crd::mem(0, 5), false},
        {Crd::pio(0, 5), false},
    };
    unsigned wrong = 0;
    for (const auto &t : revokes)
        wrong += hits_events(t.crd) != t.hits;
    check(wrong == 0, "self-test: workers never revoke their event portals with self (%u of %zu CRDs wrong)",
          wrong, sizeof(revokes) / sizeof(revokes[0]));
}

// ---- set-up -----------------------------------------------------------------------------------------

void parse_options()
{
    cmdline_u64("seed", cfg.seed);
    cmdline_u64("time", cfg.time_s);
    cmdline_u64("calls", cfg.calls);
    cmdline_u64("cpus", cfg.cpus);
    cmdline_u64("workers", cfg.per_cpu);
    cmdline_u64("progress", cfg.progress_s);
    cmdline_u64("chaos", cfg.chaos);
    cmdline_u64("probes", cfg.probes);
    cmdline_u64("probe_self", cfg.probe_self);
    if (cmdline_flag("nochaos"))
        cfg.chaos = 0;
    cfg.kstat = cmdline_flag("kstat");
    cfg.census = cmdline_flag("census");
    cfg.trace = cmdline_flag("trace");
    cfg.verbose = cmdline_flag("verbose");
    if (cfg.cpus == 0 || cfg.cpus > MAX_CPUS)
        cfg.cpus = MAX_CPUS;
    if (cfg.per_cpu == 0 || cfg.per_cpu > MAX_PER_CPU)
        cfg.per_cpu = MAX_PER_CPU;
    if (cfg.progress_s == 0)
        cfg.progress_s = 5;
    if (cfg.time_s == 0 && cfg.calls == 0)
        cfg.time_s = 60;
}

// A free RAM page for the probe: the last page of the largest available region that no module,
// the kernel or the first MiB overlaps.
u64 find_ram_page()
{
    const Hip *h = hip();
    u64 best_lo = 0, best_hi = 0;
    for (unsigned i = 0; i < h->num_mem_desc(); i++) {
        const Hip_mem *m = h->mem(i);
        if (m->type == Hip_mem::AVAILABLE && m->size > best_hi - best_lo) {
            best_lo = align_up(m->addr, PAGE_SIZE);
            best_hi = align_down(m->addr + m->size, PAGE_SIZE);
        }
    }
    for (u64 p = best_hi; p > best_lo + PAGE_SIZE && p > 0x200000; p -= PAGE_SIZE) {
        u64 page = p - PAGE_SIZE;
        bool used = false;
        for (unsigned i = 0; i < h->num_mem_desc() && !used; i++) {
            const Hip_mem *m = h->mem(i);
            if (m->type != Hip_mem::AVAILABLE && page < m->addr + m->size && m->addr < page + PAGE_SIZE)
                used = true;
        }
        if (!used)
            return page;
    }
    return 0;
}

// A global EC of ours, started at `fn` by its startup event (ABI 10.2).
struct Starter
{
    void (*fn)();
    Ec_tls *tls;
};

void startup_handler(u64, Utcb &u)
{
    auto *st = static_cast<Starter *>(ec_tls()->arg);
    u.rip = reinterpret_cast<u64>(st->fn);
    u.rsp = reinterpret_cast<u64>(st->tls) - 8;  // as after a call: the ABI's stack alignment
    u.mtd = Mtd::RIP_LEN | Mtd::RSP;
}

/*
 * A global EC at `fn` on `cpu` with priority `prio`; its event base `evt` (32 selectors) gets the
 * startup portal, to a handler EC on the same CPU.
 */
Status start_global(Starter &st, void (*fn)(), unsigned cpu, unsigned prio, u64 evt)
{
    u64 const ec = alloc_sel(), sc = alloc_sel(), handler = alloc_sel();
    u64 const utcb_addr = alloc_virt(PAGE_SIZE);
    st = Starter{fn, take_stack()};
    if (!ec || !sc || !handler || !utcb_addr || !st.tls)
        return Status::OOM;
    init_tls(st.tls, utcb_addr, nullptr, nullptr);
    Handler_ec h{};
    Status s = create_handler_ec(h, handler, self_pd(), cpu, startup_handler);
    if (s != Status::SUCCESS)
        return s;
    h.tls->arg = &st;
    s = create_portal(evt + Evt::STARTUP, handler, Mtd::RIP_LEN | Mtd::RSP);
    if (s == Status::SUCCESS)
        s = create_ec_global(ec, self_pd(), cpu, utcb_addr, reinterpret_cast<u64>(st.tls) - 8, evt);
    if (s == Status::SUCCESS)
        s = create_sc(sc, self_pd(), ec, Qpd(prio, 10000));
    return s;
}

Starter controller_start, watchdog_start;
u64 watchdog_sm;

/*
 * The watchdog: a global EC like the controller (on another CPU where there is one). When the
 * controller makes no progress for WATCHDOG_S seconds, it says where it is and fails the run, so
 * that a hang of the controller (a hypercall that does not return, a lost timeout) is reported
 * at once rather than by the runner's time limit.
 */
constexpr u64 WATCHDOG_S = 30;

[[noreturn]] void watchdog()
{
    u64 last = ~u64{0}, since = now_ms();
    for (;;) {
        sm_down(watchdog_sm, rdtsc() + ms_to_tsc(1000));
        u64 b = __atomic_load_n(&ctl_beat, __ATOMIC_RELAXED), now = now_ms();
        if (b != last) {
            last = b;
            since = now;
            continue;
        }
        if (now - since < WATCHDOG_S * 1000)
            continue;
        printf("fuzz: WATCHDOG: the controller made no progress for %lu s; it is at: %s %#lx (seed %lu)\n",
               (now - since) / 1000, ctl_where, ctl_arg, sh.seed);
        for (unsigned i = 0; i < sh.nworkers; i++) {
            const Worker &w = sh.worker[i];
            printf("fuzz: worker %u: %s, %lu hypercalls, the last: rdi %#lx rsi %#lx rdx %#lx rax %#lx r8 "
                   "%#lx\n",
                   i, w.alive ? "alive" : "dead", w.calls, w.last_rdi, w.last_rsi, w.last_rdx, w.last_rax,
                   w.last_r8);
        }
        check(false, "watchdog: the controller hangs at %s %#lx", ctl_where, ctl_arg);
        test::exit();
    }
}

bool setup_shared()
{
    const Hip *h = hip();
    unsigned n = 0;
    for (unsigned i = 0; i < h->num_cpu_desc() && n < cfg.cpus; i++)
        if (h->cpu(i)->online())
            sh.cpu[n++] = i;
    sh.ncpus = n;
    sh.nworkers = n * static_cast<unsigned>(cfg.per_cpu);
    sh.seed = cfg.seed;
    sh.trace = cfg.trace;
    sh.tsc_khz = h->freq_tsc ? h->freq_tsc : 1000000;
    sh.image_first = reinterpret_cast<u64>(_start) >> PAGE_BITS;
    sh.image_pages = (align_up(reinterpret_cast<u64>(_image_end), PAGE_SIZE) >> PAGE_BITS) - sh.image_first;
    sh.stack_first = reinterpret_cast<u64>(stack_pool) >> PAGE_BITS;
    sh.stack_pages = sizeof(stack_pool) / PAGE_SIZE;
    Kstat ks{};
    sh.kstat_on = kstat(ks) == Status::SUCCESS;
    clock_init();
    crng = Rng{derive(sh.seed, 7, 0, 0)};

    for (unsigned i = 0; i < sh.nworkers; i++) {
        Worker &w = sh.worker[i];
        w.slot = i;
        w.index = i % static_cast<unsigned>(cfg.per_cpu);
        w.cpu = sh.cpu[i / cfg.per_cpu];
        for (unsigned j = 0; j < 2; j++) {
            w.stack[j] = take_stack();
            w.hstack[j] = take_stack();
        }
        slot_sel[i] = alloc_sel(64);
        if (!w.stack[1] || !w.hstack[1] || !slot_sel[i])
            return false;
    }
    for (unsigned k = 0; k < sh.ncpus; k++) {
        sh.server.stack[k] = take_stack();
        sh.server.hstack[k] = take_stack();
        if (!sh.server.hstack[k])
            return false;
    }
    sanity_stack = take_stack();
    selftest_sel = alloc_sel(64);
    srv_sel = alloc_sel(512);
    sms = alloc_sel(4);
    sanity_sel = alloc_sel(16);
    sleep_sm = alloc_sel();
    if (!sanity_stack || !selftest_sel || !srv_sel || !sms || !sanity_sel || !sleep_sm)
        return false;
    for (unsigned i = 0; i < 4; i++)
        if (create_sm(sms + i, self_pd(), 0) != Status::SUCCESS)
            return false;
    if (create_sm(sleep_sm, self_pd(), 0) != Status::SUCCESS)
        return false;
    probe_phys = find_ram_page();
    probe_va = alloc_virt(PAGE_SIZE);
    // Mapped once now, so that the page tables for it exist before the kstat baseline.
    if (!probe_phys || !probe_va ||
        map_phys_at(probe_phys, probe_va, PAGE_SIZE, Perm_mem::RW) != Status::SUCCESS)
        return false;
    return revoke(Crd::mem(probe_va >> PAGE_BITS), Revoke_flag::SELF) == Status::SUCCESS;
}

// ---- the controller ---------------------------------------------------------------------------------

void print_census(const char *what, const Kstat_census &c)
{
    printf(
        "fuzz: census %s: PD %lu (%lu dying), EC %lu (%lu clones, %lu dead), SC %lu (%lu retired), PT %lu, "
        "SM %lu, nodes %lu, slab pages %lu, next serial %lu\n",
        what, c.pds, c.dying_pds, c.ecs, c.clones, c.dead_ecs, c.scs, c.retired_scs, c.pts, c.sms, c.nodes,
        c.slab_pages, c.serial);
}

/*
 * Memory back at the baseline? If not, the census by type against the baseline's, and the kernel
 * prints every object made since the baseline that still exists (docs/debugging.md, F2).
 */
void compare(const Kstat &base, const Kstat_census &base_census, const Kstat &now)
{
    bool pages = now.free_pages == base.free_pages, objects = now.objects == base.objects;
    check(pages, "kernel memory: free pages back at the baseline (%lu, baseline %lu)", now.free_pages,
          base.free_pages);
    check(objects, "kernel memory: objects back at the baseline (%lu, baseline %lu)", now.objects,
          base.objects);
    if (pages && objects && !cfg.census)
        return;
    Kstat k{};
    Kstat_census c{};
    if (kstat_census(k, c, utcb()) != Status::SUCCESS)
        return;
    print_census("at the baseline", base_census);
    print_census("now", c);
    kstat(k, Kstat_flag::DUMP, base_census.serial);
}

[[noreturn]] void controller()
{
    Kstat base{};
    Kstat_census base_census{};
    bool have_base = false;
    selftest();
    if (cfg.kstat) {
        // Warm-up: every slot, the server and the sanity objects once, so that the root PD's own
        // tables (selectors, page tables) exist before the baseline; the workers park at once.
        sh.stop = true;
        spawn_server();
        for (unsigned i = 0; i < sh.nworkers; i++)
            spawn_worker(sh.worker[i]);
        sleep_ms(100);
        sanity_objects(sh.cpu[0]);
        teardown();
        u64 ms = 0;
        have_base = wait_reclaimed(base, ms);
        Kstat k{};
        if (have_base)  // the census's serial marks the objects made from now on
            kstat_census(k, base_census, utcb());
        check(have_base,
              "kstat: the kernel's statistics (boot the kernel with kstat); baseline %lu free pages, "
              "%lu objects",
              base.free_pages, base.objects);
        sh.stop = false;
        for (unsigned i = 0; i < sh.nworkers; i++) {
            sh.worker[i].calls = 0;
            sh.worker[i].faults = 0;
        }
        cnt = Counters{};
    }

    run();
    teardown();
    print_violations();

    // How much was done.
    u64 const elapsed = wall_ms(start_tsc);
    u64 total = total_calls(), least = ~u64{0};
    for (unsigned k = 0; k < sh.ncpus; k++) {
        u64 n = 0;
        for (unsigned i = 0; i < sh.nworkers; i++)
            if (sh.worker[i].cpu == sh.cpu[k])
                n += sh.worker[i].calls;
        least = n < least ? n : least;
    }
    check(total > 0 && least > 0,
          "fuzzing: %lu hypercalls in %lu ms on %u CPUs (the least on one CPU: %lu), seed %lu", total,
          elapsed, sh.ncpus, least, sh.seed);
    printf("fuzz: %lu spawns (%lu failed), %lu stalled, %lu parked, %lu chaos kills, %lu recalls, %lu remote "
           "revokes, %lu page revokes, %lu server restarts, %lu probes (%lu skipped), %lu echo calls (%lu "
           "failed)\n",
           cnt.spawns, cnt.spawn_failures, cnt.stalls, cnt.parked, cnt.chaos_kills, cnt.recalls,
           cnt.remote_revokes, cnt.page_revokes, cnt.server_restarts, cnt.probes, cnt.probes_skipped,
           cnt.echoes, cnt.echo_failed);
    for (unsigned v = 0; v < V_COUNT; v++)
        check(sh.viol_count[v] == 0, "no violations: %s (%lu)", vkind_name[v], sh.viol_count[v]);

    // Sanity: the kernel still does what it should, on every CPU.
    sh.stop = false;
    bool srv = spawn_server();
    check(srv, "sanity: the server PD can be created again");
    for (unsigned k = 0; k < sh.ncpus; k++) {
        check(srv && sanity_echo(k), "sanity: echo through the server EC on CPU %u", sh.cpu[k]);
        bool read_ok = false, gone = false;
        bool ran = srv && probe_check(k, k & 1, read_ok, gone);
        check(ran && read_ok && gone,
              "sanity: CPU %u reads a delegated page, and no longer after its revoke%s", sh.cpu[k],
              k & 1 ? " (with self)" : "");
        const char *p = sanity_objects(sh.cpu[k]);
        check(!p, "sanity: create, call, delegate, revoke on CPU %u%s%s", sh.cpu[k], p ? ": failed at " : "",
              p ? p : "");
    }
    for (u64 i = 0; srv && i < cfg.probes; i++) {
        bool read_ok, gone;
        probe_check(static_cast<unsigned>(i % sh.ncpus), cfg.probe_self == 2 ? i & 1 : cfg.probe_self,
                    read_ok, gone);
    }
    kill_server();
    settle();
    if (cfg.kstat && have_base) {
        Kstat now{};
        u64 ms = 0;
        bool ok = wait_reclaimed(now, ms);
        check(ok, "kstat: nothing left for deferred reclamation after the teardown (%lu ms, %lu pending)", ms,
              now.pending);
        if (ok)
            compare(base, base_census, now);
    }
    print_violations();
    printf("fuzz: seed %lu; replay: the same module command line (docs/testing.md)\n", sh.seed);
    test::exit();
}

}  // namespace

int main(const Hip *h, unsigned cpu)
{
    Console::init();
    test::begin("fuzz");
    parse_options();
    {
        // QEMU's TCG reads the frame of an IRETQ with supervisor rights: with SMAP (which the
        // kernel turns on where the CPU has it) a user-mode IRETQ to a kernel code selector then
        // faults with #PF on its own user stack before it can raise the #GP real CPUs give.
        u32 a, b, c, d;
        asm volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
        bool smap = b & (1u << 20);
        asm volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0x40000000), "c"(0));
        bool tcg = b == 0x54474354 && c == 0x43544743 && d == 0x47435447;  // "TCGTCGTCGTCG"
        sh.iret_pf = smap && tcg;
    }
    if (!setup_shared()) {
        check(false, "fuzz: set-up (selectors, stacks, the probe page)");
        test::exit();
    }
    printf("fuzz: seed %lu, %lu s (0: no limit), %lu hypercalls (0: no limit), %u workers on %u of %u CPUs, "
           "chaos %#lx, kstat %s, kernel statistics %s\n",
           cfg.seed, cfg.time_s, cfg.calls, sh.nworkers, sh.ncpus, h->num_cpus_online(), cfg.chaos,
           cfg.kstat ? "checked" : "not checked", sh.kstat_on ? "on" : "off");
    printf("fuzz: run time measured with the %s; TSC %lu kHz\n", hpet ? "HPET" : "TSC", sh.tsc_khz);

    // The controller: a global EC above the workers' priorities on our CPU (the root SC has
    // priority 1), and its watchdog above it, on another CPU where there is one. They start through
    // startup portals and never return.
    unsigned const wcpu = sh.ncpus > 1 ? sh.cpu[sh.ncpus - 1] : cpu;
    ctl_cpu = cpu;
    u64 const wevt = alloc_sel(32);
    watchdog_sm = alloc_sel();
    Status s = wevt && watchdog_sm ? catch_exceptions(cpu) : Status::OOM;
    if (s == Status::SUCCESS)
        s = create_sm(watchdog_sm, self_pd(), 0);
    if (s == Status::SUCCESS)
        s = start_global(watchdog_start, watchdog, wcpu, CONTROLLER_PRIO, wevt);
    if (s == Status::SUCCESS)
        s = start_global(controller_start, controller, cpu, CONTROLLER_PRIO, 0);
    if (s != Status::SUCCESS) {
        check(false, "fuzz: the controller and its watchdog: %s", status_name(s));
        test::exit();
    }
    park();
}
