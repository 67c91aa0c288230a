/*
 * Leak test: kernel memory returns to its baseline after 100 000 kernel
 * objects were created and destroyed. It reads the kernel's statistics
 * (free pages of the kernel pool, objects in use, objects waiting for
 * deferred reclamation) with the `kstat` debugging hypercall (nova::kstat;
 * boot the kernel with `kstat`).
 *
 * The work runs in a global EC of the root PD (the worker) whose SC has a
 * higher priority than the SCs the rounds create (priority 1, as the root
 * EC, which parks). All of them are on the boot CPU, so the children's
 * global ECs never run while the worker is busy and need no startup portal.
 *
 * A round creates, with selectors of one 16-selector range:
 *   a child PD, in it a local EC, a global EC with an SC and a local EC on
 *   another CPU (when there is one); a portal to the first EC, a semaphore,
 *   a signal chained to it and a portal to a handler EC of ours;
 * and delegates a page of ours, four of those capabilities and the child's
 * own PD capability into the child. It then destroys everything by revoking
 * our capabilities (self = 1) in one of four orders (destroy_round). The
 * range is the same every round, so after the warm-up the root PD's own
 * kernel memory (its selector tables) no longer changes.
 *
 * Spread: semaphores at selectors far apart in our own object space and
 * copies of our page at addresses far apart in our own address space, each
 * needing tables of its own, then revoked: the kernel must free the tables
 * that became empty (a grace period later) without our PD going away, so
 * that the baseline is reached again.
 *
 * Flood: four calls with 254 typed items each that all find the child's
 * receive window occupied, 1016 "overmap attempt" lines for the console; a
 * release kernel prints 20 and reports the rest as suppressed (the scenarios
 * expect that line), so that such a flood cannot stall the CPUs.
 *
 * Exhaustion: a handler EC in a child PD (reached through a portal, with
 * the same range) creates semaphores in the child's own object space until
 * the kernel answers OOM. Revoking the range destroys the child and with it
 * the semaphores and the child's selector tables. Then the same with a child
 * made with a quota of its own (docs/quota.md): it runs out of its quota
 * (OOM after at most QUOTA_CHILD bytes' worth of semaphores), not the pool.
 *
 * Quotas: every comparison with the baseline also compares our PD's quota
 * (limit and use, docs/quota.md): the children's quotas have ended and every
 * byte charged for the rounds has been refunded.
 */
#include <nova/nova.hpp>

using namespace nova;

extern "C" char _start[], _image_end[];  // user/linker.ld: the program image

namespace {

constexpr u64 TARGET_OBJECTS = 100000;  // objects to create and destroy in the workload
constexpr unsigned WORKER_PRIO = 100;   // the worker's SC
constexpr unsigned CHILD_PRIO = 1;      // the SCs of the rounds: below the worker
constexpr u32 QUANTUM_US = 10000;
constexpr u64 POLL_MS = 5;              // idle time between two statistics polls
constexpr u64 RECLAIM_LIMIT_MS = 2000;  // reclamation must finish within this (TSC time)
constexpr u64 EXHAUST_CAP = 2000000;    // most semaphores the exhaustion creates
constexpr u64 QUOTA_CHILD = 1 << 20;    // the quota of the quota exhaustion's child (bytes)
constexpr u64 SM_COST = 192 + 80;       // least bytes a semaphore and its node cost (docs/quota.md)

/*
 * Selectors of a round, relative to the range base: the objects in the first
 * eight (one order-3 CRD), the child PD at 8, so objects and PD can be revoked
 * separately or together (one order-4 CRD).
 */
enum Slot : u64 {
    LOCAL_EC,
    GLOBAL_EC,
    SC,
    CHILD_PT,
    SM,
    SIGNAL,
    ROOT_PT,
    REMOTE_EC,
    PD,
    RANGE = 16,
};
constexpr unsigned RANGE_ORDER = 4, OBJECTS_ORDER = 3;
constexpr u64 OBJECTS_PER_ROUND = 9;  // PD, three ECs, SC, two portals, two semaphores

// The child's side of a round.
constexpr u64 CHILD_CAPS = 0x40;        // SM, SIGNAL, ROOT_PT, REMOTE_EC land here (order 2)
constexpr u64 CHILD_SELF = 0x48;        // the child's own PD capability
constexpr u64 CHILD_UTCB = 0x10000000;  // the UTCBs of the three ECs, one page each
constexpr u64 CHILD_PAGE = 0x20000000;  // our page
constexpr u64 EXHAUST_BASE = 0x100000;  // first selector of the exhaustion's semaphores

using test::check;

u64 rdtsc() { return __builtin_ia32_rdtsc(); }

u64 ticks_per_ms() { return hip()->freq_tsc ? hip()->freq_tsc : 1; }  // freq_tsc is in kHz

// ---- set up by the root EC --------------------------------------------------------------

u64 range;           // the round's selectors (RANGE of them, aligned)
u64 sleep_sm;        // nobody ups it: a down with a deadline lets the CPU idle
u64 root_handler;    // a local EC of ours, target of each round's ROOT_PT
u64 page;            // page number of the page we delegate to each child
unsigned other_cpu;  // another online CPU for REMOTE_EC (the boot CPU on one CPU)
Ec_tls *worker_tls;

// ---- statistics -------------------------------------------------------------------------

/*
 * Poll the statistics until no object waits for deferred reclamation. Between
 * polls the worker blocks for POLL_MS (a down with a deadline, ABI 7.13), so
 * the CPU goes idle. False when the statistics fail or after RECLAIM_LIMIT_MS.
 */
bool wait_reclaimed(Kstat &out, u64 &waited_ms)
{
    u64 const start = rdtsc(), end = start + RECLAIM_LIMIT_MS * ticks_per_ms();
    for (;;) {
        if (kstat(out) != Status::SUCCESS)
            return false;
        u64 now = rdtsc();
        waited_ms = (now - start) / ticks_per_ms();
        if (out.pending == 0)
            return true;
        if (now >= end)
            return false;
        sm_down(sleep_sm, now + POLL_MS * ticks_per_ms());
    }
}

// Wait for reclamation and report it as one check.
bool reclaimed(Kstat &out, const char *when)
{
    u64 ms = 0;
    out = {};
    bool ok = wait_reclaimed(out, ms);
    check(ok, "%s: nothing left for deferred reclamation after %lu ms (limit %lu; %lu pending)", when, ms,
          RECLAIM_LIMIT_MS, out.pending);
    return ok;
}

Kstat_census base_census;  // taken with the baseline: its serial marks what was made after it
Quota_info base_quota;     // our PD's quota at the baseline

void print_census(const char *what, const Kstat_census &c)
{
    printf("leaktest: census %s: PD %lu (%lu dying), EC %lu (%lu clones, %lu dead), SC %lu (%lu retired), PT "
           "%lu, SM %lu, nodes %lu, slab pages %lu, next serial %lu\n",
           what, c.pds, c.dying_pds, c.ecs, c.clones, c.dead_ecs, c.scs, c.retired_scs, c.pts, c.sms, c.nodes,
           c.slab_pages, c.serial);
}

void compare(const Kstat &base, const Kstat &now, const char *when)
{
    printf("leaktest: %s: free pages %lu (baseline %lu), objects %lu (baseline %lu)\n", when, now.free_pages,
           base.free_pages, now.objects, base.objects);
    bool pages = now.free_pages == base.free_pages, objects = now.objects == base.objects;
    check(pages, "%s: free pages back at the baseline (%lu, baseline %lu)", when, now.free_pages,
          base.free_pages);
    check(objects, "%s: objects back at the baseline (%lu, baseline %lu)", when, now.objects, base.objects);
    Quota_info q{};
    Status qs = quota_info(self_pd(), q);
    check(qs == Status::SUCCESS && q.limit == base_quota.limit && q.used == base_quota.used,
          "%s: our quota back at the baseline (%s: limit %lu, use %lu; baseline %lu, %lu)", when,
          status_name(qs), q.limit, q.used, base_quota.limit, base_quota.used);
    Kstat k{};
    Kstat_census c{};
    if ((pages && objects) || kstat_census(k, c, utcb()) != Status::SUCCESS)
        return;
    // What is left: the census against the baseline's, and the kernel lists what was made since.
    print_census("at the baseline", base_census);
    print_census("now", c);
    kstat(k, Kstat_flag::DUMP, base_census.serial);
}

// ---- a round of the workload ------------------------------------------------------------

// The first hypercall of a round that failed.
struct Failure
{
    const char *step = nullptr;
    Status status = Status::SUCCESS;

    bool note(Status s, const char *what)
    {
        if (s != Status::SUCCESS && !step) {
            step = what;
            status = s;
        }
        return s == Status::SUCCESS;
    }
};

// One item from our PD into `pd`; a null result CRD (nothing delegated) counts as BAD_PAR.
Status delegate(u64 pd, Crd send, Crd window)
{
    Delegate_result d =
        pd_delegate(self_pd(), pd, send, Item_meta(Item_meta::DELEGATE, window.base()), window);
    if (d.status != Status::SUCCESS)
        return d.status;
    return d.crd.is_null() ? Status::BAD_PAR : Status::SUCCESS;
}

// Create a round's objects and delegations. On failure the objects made so far stay for destroy_round.
bool build_round(u64 n, Failure &f)
{
    u64 const r = range, pd = r + PD;
    unsigned const cpu = boot_cpu();
    // The ECs of the child never run: the local ones get no calls, the global one's SC is below ours.
    return f.note(create_pd(pd, self_pd()), "create_pd") &&
           f.note(create_ec_local(r + LOCAL_EC, pd, cpu, CHILD_UTCB, 0, 0), "create_ec (local)") &&
           f.note(create_ec_global(r + GLOBAL_EC, pd, cpu, CHILD_UTCB + PAGE_SIZE, 0, 0),
                  "create_ec (global)") &&
           f.note(create_sc(r + SC, self_pd(), r + GLOBAL_EC, Qpd(CHILD_PRIO, QUANTUM_US)), "create_sc") &&
           f.note(create_pt(r + CHILD_PT, self_pd(), r + LOCAL_EC, 0, 0), "create_pt (child's EC)") &&
           f.note(create_sm(r + SM, self_pd(), 0), "create_sm") &&
           f.note(create_sm(r + SIGNAL, self_pd(), n, r + SM), "create_sm (signal)") &&
           f.note(create_portal(r + ROOT_PT, root_handler), "create_pt (our EC)") &&
           f.note(create_ec_local(r + REMOTE_EC, pd, other_cpu, CHILD_UTCB + 2 * PAGE_SIZE, 0, 0),
                  "create_ec (local, other CPU)") &&
           f.note(sm_up(r + SIGNAL), "sm_up (signal: queues it at the semaphore)") &&
           f.note(delegate(pd, Crd::mem(page, 0, Perm_mem::RW),
                           Crd::mem(CHILD_PAGE >> PAGE_BITS, 0, Perm_mem::RW)),
                  "delegate our page") &&
           f.note(delegate(pd, Crd::obj(r + SM, 2), Crd::obj(CHILD_CAPS, 2)), "delegate four capabilities") &&
           f.note(delegate(pd, Crd::obj(pd), Crd::obj(CHILD_SELF)), "delegate the PD capability into itself");
}

/*
 * Destroy a round by revoking our capabilities with self = 1, in one of four
 * orders:
 *   0  everything at once (one order-4 CRD)
 *   1  the PD first (its ECs keep it alive), then the objects
 *   2  the objects first, then the PD
 *   3  the copies first: our page with self = 0 (only the child's copy goes),
 *      the child's whole object space by a remote revoke, then everything
 */
bool destroy_round(unsigned order, Failure &f)
{
    Crd const all = Crd::obj(range, RANGE_ORDER), objects = Crd::obj(range, OBJECTS_ORDER),
              pd = Crd::obj(range + PD);
    switch (order) {
    case 1:
        return f.note(revoke(pd, Revoke_flag::SELF), "revoke the PD") &&
               f.note(revoke(objects, Revoke_flag::SELF), "revoke the objects");
    case 2:
        return f.note(revoke(objects, Revoke_flag::SELF), "revoke the objects") &&
               f.note(revoke(pd, Revoke_flag::SELF), "revoke the PD");
    case 3:
        return f.note(revoke(Crd::mem(page)), "revoke the child's copy of our page") &&
               f.note(revoke(Crd::whole(Crd::OBJ), Revoke_flag::REMOTE | Revoke_flag::SELF, range + PD),
                      "remote revoke of the child's object space") &&
               f.note(revoke(all, Revoke_flag::SELF), "revoke the range");
    default: return f.note(revoke(all, Revoke_flag::SELF), "revoke the range");
    }
}

// Round `n` (its destruction order is n mod 4). `mid`, when given, receives the statistics
// taken while the round's objects exist.
bool run_round(u64 n, Failure &f, Kstat *mid = nullptr)
{
    bool built = build_round(n, f);
    if (built && mid)
        f.note(kstat(*mid), "kstat");
    if (!built) {
        revoke(Crd::obj(range, RANGE_ORDER), Revoke_flag::SELF);  // whatever was made
        return false;
    }
    return destroy_round(static_cast<unsigned>(n % 4), f) && !f.step;
}

void print_failure(u64 n, const Failure &f)
{
    printf("leaktest: round %lu: %s failed: %s\n", n, f.step, status_name(f.status));
}

// ---- census ------------------------------------------------------------------------------

/*
 * The kernel census (docs/debugging.md) sees a round's objects by type, lists exactly the ones
 * made since a serial (the scenarios expect the kernel's lines), and is back where it was after
 * the round is destroyed.
 */
void census_round(u64 n)
{
    Kstat k{};
    Kstat_census c0{}, c1{}, c2{};
    Failure f;
    u64 ms = 0;
    bool ok = wait_reclaimed(k, ms) && kstat_census(k, c0, utcb()) == Status::SUCCESS;
    ok = ok && build_round(n, f) && kstat_census(k, c1, utcb()) == Status::SUCCESS;
    // The three ECs, the SC, the two portals and the two semaphores of the round, and its PD.
    bool const counted = ok && c1.pds == c0.pds + 1 && c1.ecs == c0.ecs + 3 && c1.scs == c0.scs + 1 &&
                         c1.pts == c0.pts + 2 && c1.sms == c0.sms + 2 && c1.clones == c0.clones &&
                         c1.serial >= c0.serial + OBJECTS_PER_ROUND && c1.nodes > c0.nodes &&
                         c1.dying_pds == c0.dying_pds && c1.dead_ecs == c0.dead_ecs;
    if (ok) {
        printf("leaktest: census: the kernel lists the %lu objects of a round (serials %lu on)\n",
               OBJECTS_PER_ROUND, c0.serial);
        kstat(k, Kstat_flag::DUMP, c0.serial);
    }
    ok = destroy_round(static_cast<unsigned>(n % 4), f) && wait_reclaimed(k, ms) &&
         kstat_census(k, c2, utcb()) == Status::SUCCESS;
    bool const back = ok && c2.pds == c0.pds && c2.ecs == c0.ecs && c2.scs == c0.scs && c2.pts == c0.pts &&
                      c2.sms == c0.sms && c2.nodes == c0.nodes && c2.slab_pages == c0.slab_pages;
    if (!counted || !back) {
        print_census("before the round", c0);
        print_census("with it", c1);
        print_census("after it", c2);
    }
    check(
        counted && back,
        "census: a round's objects by type (PD +%ld, EC +%ld, SC +%ld, PT +%ld, SM +%ld), and back after it",
        static_cast<long>(c1.pds - c0.pds), static_cast<long>(c1.ecs - c0.ecs),
        static_cast<long>(c1.scs - c0.scs), static_cast<long>(c1.pts - c0.pts),
        static_cast<long>(c1.sms - c0.sms));
}

// ---- spread ------------------------------------------------------------------------------

constexpr u64 SPREAD_SMS = 1024;               // semaphores, each in a leaf table of its own
constexpr u64 SPREAD_SEL_STEP = u64{1} << 16;  // 1024 of them cover the 2^26 selectors
constexpr u64 SPREAD_PAGES = 320;              // copies of our page, each in page tables of its own
constexpr u64 GIB = u64{1} << 30;

/*
 * Semaphores at selectors 2^16 apart (the last selector of each block: the SDK allocates from the
 * bottom), each in a leaf table of its own and 256 middle tables among them; then revoked.
 */
void spread_objects(const Kstat &base)
{
    u64 made = 0;
    Status s = Status::SUCCESS;
    for (u64 i = 1; i <= SPREAD_SMS && s == Status::SUCCESS; i++) {
        s = create_sm(i * SPREAD_SEL_STEP - 1, self_pd(), 0);
        made += s == Status::SUCCESS;
    }
    Kstat peak{};
    kstat(peak);
    for (u64 i = 1; i <= SPREAD_SMS; i++)
        revoke(Crd::obj(i * SPREAD_SEL_STEP - 1), Revoke_flag::SELF);
    check(made == SPREAD_SMS && peak.free_pages + SPREAD_SMS <= base.free_pages,
          "spread: %lu semaphores at selectors 2^16 apart (%s), %lu free pages at the peak (baseline %lu)",
          made, status_name(s), peak.free_pages, base.free_pages);
}

/*
 * Copies of our page at addresses 1 GiB apart (a page directory and a page table each) and in
 * 64 different 512 GiB regions (a PDPT each), in our own PD; then revoked (self = 0).
 */
void spread_memory(const Kstat &base)
{
    u64 area = alloc_virt(u64{65} * 512 * GIB, 512 * GIB);
    u64 made = 0;
    for (u64 i = 0; area && i < SPREAD_PAGES; i++) {
        u64 va = area + (i < 256 ? i * GIB : (i - 255) * 512 * GIB + 3 * GIB);
        u64 dst = va >> PAGE_BITS;
        Delegate_result d = pd_delegate(self_pd(), self_pd(), Crd::mem(page, 0, Perm_mem::RW),
                                        Item_meta(Item_meta::DELEGATE, dst), Crd::mem(dst, 0, Perm_mem::RW));
        made += d.status == Status::SUCCESS && !d.crd.is_null();
    }
    Kstat peak{};
    kstat(peak);
    revoke(Crd::mem(page, 0, Perm_mem::RW));  // every copy
    check(made == SPREAD_PAGES && peak.free_pages + SPREAD_PAGES <= base.free_pages,
          "spread: %lu copies of our page 1 GiB and 512 GiB apart, %lu free pages at the peak (baseline %lu)",
          made, peak.free_pages, base.free_pages);
}

// ---- flood --------------------------------------------------------------------------------

u64 flood_window;  // the child's delegate window: a page it already has (its copy of our code)

void flood_handler(u64, Utcb &u)
{
    u.del = Crd::mem(flood_window, 0, Perm_mem::RW).value();
    u.set_items(0, 0);
}

void flood()
{
    constexpr unsigned CALLS = 4;
    u64 const r = range, pd = r + PD;
    Handler_ec h{};
    flood_window = reinterpret_cast<u64>(&flood_handler) >> PAGE_BITS;
    Status s = create_pd(pd, self_pd());
    if (s == Status::SUCCESS)
        s = share_memory(pd, reinterpret_cast<u64>(_start), static_cast<u64>(_image_end - _start));
    if (s == Status::SUCCESS)
        s = create_handler_ec(h, r + LOCAL_EC, pd, boot_cpu(), flood_handler);
    if (s == Status::SUCCESS)
        s = create_portal(r + CHILD_PT, r + LOCAL_EC);
    Utcb &u = utcb();
    u.set_items(0, 0);
    if (s == Status::SUCCESS)
        s = call(r + CHILD_PT);  // the handler leaves its window for the next calls
    for (unsigned c = 0; c < CALLS && s == Status::SUCCESS; c++) {
        u.set_items(0, Utcb::MAX_TYPED);
        for (unsigned i = 0; i < Utcb::MAX_TYPED; i++)
            u.item(i) = Typed_item{Crd::mem(page, 0, Perm_mem::RW).value(),
                                   Item_meta(Item_meta::DELEGATE, flood_window).value()};
        s = call(r + CHILD_PT);
    }
    u.set_items(0, 0);
    check(s == Status::SUCCESS,
          "flood: %u calls with %u items each into an occupied window: %s (the console shows 20 overmap "
          "lines and how many it suppressed)",
          CALLS, Utcb::MAX_TYPED, status_name(s));
    revoke(Crd::obj(r, RANGE_ORDER), Revoke_flag::SELF);
}

// ---- exhaustion --------------------------------------------------------------------------

// Runs in the child PD: semaphores in its own object space until the kernel says no.
void exhaust_handler(u64, Utcb &u)
{
    u64 n = 0;
    Status s = Status::SUCCESS;
    while (n < EXHAUST_CAP && (s = create_sm(EXHAUST_BASE + n, CHILD_SELF, 0)) == Status::SUCCESS)
        n++;
    u.data[0] = n;
    u.data[1] = static_cast<u64>(s);
    u.set_items(2, 0);
}

/*
 * A child PD that shares our image, a handler EC in it (exhaust_handler) and a
 * portal to it, all in the round's range; the child gets its own PD capability.
 */
void exhaust(const Kstat &base, bool quota)
{
    u64 const r = range, pd = r + PD;
    Handler_ec h{};
    Status s = quota ? create_pd_quota(pd, self_pd(), QUOTA_CHILD) : create_pd(pd, self_pd());
    if (s == Status::SUCCESS)
        s = share_memory(pd, reinterpret_cast<u64>(_start), static_cast<u64>(_image_end - _start));
    if (s == Status::SUCCESS)
        s = create_handler_ec(h, r + LOCAL_EC, pd, boot_cpu(), exhaust_handler);
    if (s == Status::SUCCESS)
        s = create_portal(r + CHILD_PT, r + LOCAL_EC);
    if (s == Status::SUCCESS)
        s = delegate(pd, Crd::obj(pd), Crd::obj(CHILD_SELF));
    if (s != Status::SUCCESS) {
        check(false, "exhaustion: set-up of the child PD: %s", status_name(s));
        revoke(Crd::obj(r, RANGE_ORDER), Revoke_flag::SELF);
        return;
    }
    utcb().set_items(0, 0);
    u64 const t0 = rdtsc();
    s = call(r + CHILD_PT);
    u64 const ms = (rdtsc() - t0) / ticks_per_ms();
    u64 const n = s == Status::SUCCESS ? utcb().data[0] : 0;
    Status const last = s == Status::SUCCESS ? static_cast<Status>(utcb().data[1]) : s;
    Kstat peak{};
    Status const ks = kstat(peak);
    // OOM ends it, or the cap; every semaphore is an object and a capability node, so the
    // statistics must show at least twice as many objects more than the baseline.
    bool const ended = n < EXHAUST_CAP ? last == Status::OOM : true;
    bool const counted = ks == Status::SUCCESS && peak.objects >= base.objects + 2 * n;
    // With a quota of its own the child stops at its quota, the pool has plenty left.
    Quota_info q{};
    bool const bounded = !quota || (quota_info(pd, q) == Status::SUCCESS && q.limit == QUOTA_CHILD &&
                                    n * SM_COST <= QUOTA_CHILD && q.limit - q.used < SM_COST + PAGE_SIZE &&
                                    peak.free_pages > base.free_pages / 2);
    check(s == Status::SUCCESS && n > 0 && ended && counted && bounded,
          "exhaustion%s: %lu semaphores in a child PD, then %s (%lu ms); %lu objects, %lu free pages%s",
          quota ? " of a quota" : "", n, n < EXHAUST_CAP ? status_name(last) : "the cap", ms, peak.objects,
          peak.free_pages, quota ? "; the child's quota used up" : "");
    revoke(Crd::obj(r, RANGE_ORDER), Revoke_flag::SELF);
}

// ---- the worker --------------------------------------------------------------------------

[[noreturn]] void worker_main()
{
    check(true, "worker EC at priority %u on CPU %u (rounds' SCs: %u), other CPU for ECs: %u", WORKER_PRIO,
          boot_cpu(), CHILD_PRIO, other_cpu);

    /*
     * Warm-up: one round of each destruction order. The first one also shows
     * that the statistics are real: each object has a capability node, so the
     * objects in use rise by at least twice the round's objects, and the child
     * PD's page table and the UTCBs are whole pages.
     */
    Kstat before{}, mid{};
    Failure f;
    bool ok = kstat(before) == Status::SUCCESS && run_round(0, f, &mid);
    check(ok && mid.objects >= before.objects + 2 * OBJECTS_PER_ROUND && mid.free_pages < before.free_pages,
          "the statistics see a round: objects %lu -> %lu, free pages %lu -> %lu", before.objects,
          mid.objects, before.free_pages, mid.free_pages);
    u64 n = 1;
    for (; ok && n < 4; n++)
        ok = run_round(n, f);
    if (!ok && f.step)
        print_failure(n - 1, f);
    Kstat base{};
    if (!reclaimed(base, "warm-up") || !ok) {
        check(false, "warm-up: four rounds, no baseline");
        test::exit();
    }
    quota_info(self_pd(), base_quota);
    printf("leaktest: baseline: %lu free pages, %lu objects; our quota: limit %lu, use %lu\n",
           base.free_pages, base.objects, base_quota.limit, base_quota.used);
    Kstat census_k{};
    kstat_census(census_k, base_census, utcb());

    // The workload.
    u64 created = 0, rounds = 0, retries = 0;
    bool retried = false;
    u64 const t0 = rdtsc();
    for (n = 4; created < TARGET_OBJECTS; n++) {
        Failure rf;
        if (run_round(n, rf)) {
            created += OBJECTS_PER_ROUND;
            rounds++;
            retried = false;
            continue;
        }
        /*
         * Out of memory may mean that reclamation lags behind: let it catch up,
         * then try once more. A delegation that transferred nothing (BAD_PAR
         * here) may be short of memory too; the kernel does not say why (3.2).
         */
        Kstat k;
        u64 ms;
        bool const memory = rf.status == Status::OOM || rf.status == Status::BAD_PAR;
        if (memory && !retried && wait_reclaimed(k, ms)) {
            retries++;
            retried = true;
            n--;
            continue;
        }
        print_failure(n, rf);
        ok = false;
        break;
    }
    u64 const ticks = rdtsc() - t0;
    check(ok,
          "workload: %lu objects created and destroyed in %lu rounds, %lu TSC ticks (%lu ms), %lu retries",
          created, rounds, ticks, ticks / ticks_per_ms(), retries);

    Kstat after{};
    if (reclaimed(after, "after the workload"))
        compare(base, after, "after the workload");
    else
        check(false, "after the workload: no comparison with the baseline");

    // Tables emptied by revocations go back to the pool while our PD lives on.
    spread_objects(base);
    if (reclaimed(after, "after the spread semaphores"))
        compare(base, after, "after the spread semaphores");
    spread_memory(base);
    if (reclaimed(after, "after the spread mappings"))
        compare(base, after, "after the spread mappings");

    flood();

    census_round(n);

    exhaust(base, false);
    if (reclaimed(after, "after the exhaustion"))
        compare(base, after, "after the exhaustion");
    else
        check(false, "after the exhaustion: no comparison with the baseline");
    exhaust(base, true);
    if (reclaimed(after, "after the quota exhaustion"))
        compare(base, after, "after the quota exhaustion");
    else
        check(false, "after the quota exhaustion: no comparison with the baseline");
    test::exit();
}

// Startup portal of the worker (event 30): start it at worker_main on its own stack.
void startup_handler(u64, Utcb &u)
{
    u.rip = reinterpret_cast<u64>(&worker_main);
    u.rsp = reinterpret_cast<u64>(worker_tls) - 8;  // as after a call: the ABI's stack alignment
    u.mtd = Mtd::RIP_LEN | Mtd::RSP;
}

// Target of the rounds' ROOT_PT; never called.
void root_handler_fn(u64, Utcb &u) { u.set_items(0, 0); }

unsigned find_other_cpu(const Hip *h, unsigned cpu)
{
    for (unsigned i = 0; i < h->num_cpu_desc(); i++)
        if (i != cpu && h->cpu(i)->online())
            return i;
    return cpu;
}

}  // namespace

int main(const Hip *h, unsigned cpu)
{
    Console::init();
    printf("leaktest: %lu objects through the kernel, statistics from the kstat hypercall\n", TARGET_OBJECTS);

    Kstat k{};
    Status s = kstat(k);
    if (s != Status::SUCCESS) {
        check(false, "kernel statistics (hypercall 15, flag 0): %s (is the kernel booted with kstat?)",
              status_name(s));
        test::exit();
    }
    check(true, "kernel statistics: %lu free pages, %lu objects, %lu pending", k.free_pages, k.objects,
          k.pending);

    /*
     * Everything the worker keeps, made before the baseline: exception portals
     * (event base 0, shared by the root EC and the worker), the worker's
     * startup portal, stack, UTCB, EC and SC, our handler EC, the semaphore to
     * sleep on, the page for the children and the rounds' selectors.
     */
    other_cpu = find_other_cpu(h, cpu);
    range = alloc_sel(RANGE);
    sleep_sm = alloc_sel();
    root_handler = alloc_sel();
    u64 const starter_sel = alloc_sel(), worker_ec = alloc_sel(), worker_sc = alloc_sel();
    auto stack = static_cast<u8 *>(alloc(STACK_SIZE, STACK_SIZE));
    auto pg = alloc(PAGE_SIZE, PAGE_SIZE);
    u64 const worker_utcb = alloc_virt(PAGE_SIZE);
    Handler_ec starter{}, handler{};
    s = Status::OOM;
    if (range && worker_sc && stack && pg && worker_utcb) {
        page = reinterpret_cast<u64>(pg) >> PAGE_BITS;
        worker_tls = reinterpret_cast<Ec_tls *>(stack + STACK_SIZE - sizeof(Ec_tls));
        *worker_tls = Ec_tls{reinterpret_cast<Utcb *>(worker_utcb), nullptr, nullptr, 0};
        s = catch_exceptions(cpu);
    }
    if (s == Status::SUCCESS)
        s = create_sm(sleep_sm, self_pd(), 0);
    if (s == Status::SUCCESS)
        s = create_handler_ec(handler, root_handler, self_pd(), cpu, root_handler_fn);
    if (s == Status::SUCCESS)
        s = create_handler_ec(starter, starter_sel, self_pd(), cpu, startup_handler);
    if (s == Status::SUCCESS)
        s = create_portal(Evt::STARTUP, starter_sel, Mtd::RIP_LEN | Mtd::RSP);
    if (s == Status::SUCCESS)
        s = create_ec_global(worker_ec, self_pd(), cpu, worker_utcb, reinterpret_cast<u64>(worker_tls), 0);
    if (s == Status::SUCCESS)
        s = create_sc(worker_sc, self_pd(), worker_ec, Qpd(WORKER_PRIO, QUANTUM_US));
    if (s != Status::SUCCESS) {
        check(false, "set-up of the worker EC: %s", status_name(s));
        test::exit();
    }
    // The worker has taken over (it preempts us as soon as its SC exists); it ends QEMU.
    park();
}
