/*
 * Bounded kernel work (docs/mdb.md, "Preemption"): long operations must not keep the other CPUs or
 * a higher priority of the same CPU waiting until they end. While a huge revocation, the death of
 * a PD with many mappings or a call with 254 heavy typed items runs, a ticker EC of a higher
 * priority on our CPU wakes up every millisecond (sm_ctrl down with a deadline) and a probe EC on
 * another CPU delegates and revokes a page in a loop (which needs the mapping database's lock and a
 * TLB shootdown on the CPU that runs the probe's target PD). The test fails when the ticker or the
 * probe did not get through while the operation ran. The operation is made long enough (it grows
 * until it takes at least MIN_MS) for a kernel that runs it to the end without a preemption point
 * to fail: the ticker would be late by the whole operation and the probe would complete nothing.
 */
#include "suite.hpp"

namespace {

constexpr u64 MIN_MS = 200;  // an operation shorter than this is made larger (host noise is smaller)
constexpr unsigned START_NODES = 8192, MAX_NODES = 131072;
constexpr u64 KERNEL_MIB = 16;         // MAX_NODES mapping-database nodes and their page tables
constexpr unsigned TICKER_PRIO = 100;  // above the root EC, below the suite's watchdog

struct Watch
{
    volatile u64 armed;              // 1 while the measured operation runs
    volatile u64 probes, probe_max;  // probe operations completed meanwhile, the longest (ticks)
    volatile u64 wakes, late_max;    // ticker wake-ups meanwhile, worst lateness (ticks)
    volatile u64 stop;
};
Watch watch;

u64 tick_sm;                         // nobody ups it: the ticker's clock
u64 probe_pd, probe_src, probe_dst;  // the probe copies our page probe_src to probe_dst in probe_pd

void ticker(Thread &)
{
    while (!watch.stop) {
        u64 dl = deadline_ms(1);
        sm_down(tick_sm, dl);
        u64 late = rdtsc() - dl;
        if (watch.armed) {
            watch.wakes = watch.wakes + 1;
            if (late > watch.late_max)
                watch.late_max = late;
        }
    }
}

void probe(Thread &)
{
    while (!watch.stop) {
        sm_down(tick_sm + 1, rdtsc() + ms_ticks(1) / 10);  // 100 us apart: the probe stays light
        u64 t0 = rdtsc();
        pd_delegate(SEL_ROOT_PD, probe_pd, Crd::mem(probe_src, 0, Perm_mem::RW),
                    Item_meta(Item_meta::DELEGATE, probe_dst), Crd::mem(probe_dst, 0, Perm_mem::RW));
        revoke(Crd::mem(probe_src, 0, Perm_mem::RW));  // the copy goes: a shootdown where probe_pd runs
        u64 dt = rdtsc() - t0;
        if (watch.armed) {
            watch.probes = watch.probes + 1;
            if (dt > watch.probe_max)
                watch.probe_max = dt;
        }
    }
}

struct Observers
{
    Thread tick, prb;
    bool have_probe;
};

// The ticker on our CPU; the probe on another CPU (if there is one) working on `target`'s space.
bool start_observers(Test &t, Observers &o, u64 target)
{
    watch.armed = 0;
    watch.stop = 0;
    tick_sm = t.sel(2);  // the ticker's and the probe's clocks
    if (!tick_sm || create_sm(tick_sm, SEL_ROOT_PD, 0) != Status::SUCCESS ||
        create_sm(tick_sm + 1, SEL_ROOT_PD, 0) != Status::SUCCESS) {
        t.fail("create_sm for the ticker failed");
        return false;
    }
    if (!spawn(&t, o.tick, boot_cpu(), TICKER_PRIO, ticker))
        return false;
    o.have_probe = false;
    unsigned c = other_cpu();
    if (c == NO_CPU)
        return true;
    void *src = scratch_page(t);
    probe_src = reinterpret_cast<u64>(src) >> PAGE_BITS;
    probe_dst = alloc_virt(PAGE_SIZE) >> PAGE_BITS;
    probe_pd = target;
    if (!src || !probe_dst)
        return false;
    o.have_probe = spawn(&t, o.prb, c, TICKER_PRIO, probe);
    return o.have_probe;
}

void stop_observers(Observers &o)
{
    watch.stop = 1;
    join(o.tick, 2000);
    if (o.have_probe)
        join(o.prb, 2000);
}

struct Figures
{
    u64 ticks, wakes, late_max, probes, probe_max;
};

template <typename F> Figures measure(F op)
{
    watch.probes = 0;
    watch.probe_max = 0;
    watch.wakes = 0;
    watch.late_max = 0;
    watch.armed = 1;
    u64 t0 = rdtsc();
    op();
    u64 t = rdtsc() - t0;
    watch.armed = 0;
    return {t, watch.wakes, watch.late_max, watch.probes, watch.probe_max};
}

/*
 * The verdict: the ticker woke up during the operation and was never late by half of it; the probe
 * (if any) completed operations during it, none of which waited half of it. A kernel that runs the
 * operation without a preemption point keeps the ticker and the probe waiting for all of it (the
 * rest of the measured time is user code and the host's noise, which the size makes small).
 */
bool judge(Test &t, const char *what, unsigned n, const Figures &f, bool want_ticker, bool want_probe)
{
    u64 ms = f.ticks / ms_ticks(1);
    t.note("%s, %u: %lu ms; ticker %lu wake-ups, worst %lu us late; probe %lu ops, longest %lu us", what, n,
           ms, f.wakes, f.late_max * 1000 / ms_ticks(1), f.probes, f.probe_max * 1000 / ms_ticks(1));
    if (want_ticker && (f.wakes < 2 || f.late_max > f.ticks / 2)) {
        t.fail(
            "%s (%u): a higher-priority EC of the same CPU waited: %lu wake-ups in %lu ms, worst %lu us late",
            what, n, f.wakes, ms, f.late_max * 1000 / ms_ticks(1));
        return false;
    }
    if (want_probe && (f.probes < 2 || f.probe_max > f.ticks / 2)) {
        t.fail("%s (%u): another CPU's delegate+revoke completed %lu times in %lu ms (longest %lu us)", what,
               n, f.probes, ms, f.probe_max * 1000 / ms_ticks(1));
        return false;
    }
    return true;
}

// A page of ours that is a node of its own: revoking it with self = 0 takes only its copies.
u64 own_page(Test &t)
{
    void *p = scratch_page(t);
    return p ? reinterpret_cast<u64>(p) >> PAGE_BITS : 0;
}

// `n` copies of our page `page` in `pd`, at dst, dst + 1, ...; false (test failed) if one is missing.
bool spread(Test &t, u64 page, u64 pd, u64 dst, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        Delegate_result r =
            pd_delegate(SEL_ROOT_PD, pd, Crd::mem(page, 0, Perm_mem::RW),
                        Item_meta(Item_meta::DELEGATE, dst + i), Crd::mem(dst + i, 0, Perm_mem::RW));
        if (r.status != Status::SUCCESS || r.crd.is_null()) {
            t.fail("delegation %u of %u: %s%s", i, n, status_name(r.status),
                   r.crd.is_null() ? " (nothing)" : "");
            return false;
        }
    }
    return true;
}

// A chain our page -> a -> b -> a -> ... of n delegations, at dst, dst + 1, ...
bool chain(Test &t, u64 page, u64 a, u64 b, u64 dst, unsigned n)
{
    u64 from_pd = SEL_ROOT_PD, from = page;
    for (unsigned i = 0; i < n; i++) {
        u64 to_pd = i & 1 ? b : a;
        Delegate_result r =
            pd_delegate(from_pd, to_pd, Crd::mem(from, 0, Perm_mem::RW),
                        Item_meta(Item_meta::DELEGATE, dst + i), Crd::mem(dst + i, 0, Perm_mem::RW));
        if (r.status != Status::SUCCESS || r.crd.is_null()) {
            t.fail("chain link %u of %u: %s", i, n, status_name(r.status));
            return false;
        }
        from_pd = to_pd;
        from = dst + i;
    }
    return true;
}

u64 new_pd(Test &t)
{
    u64 s = t.sel();
    if (s && create_pd(s, SEL_ROOT_PD) == Status::SUCCESS)
        return s;
    t.fail("create_pd failed");
    return 0;
}

// ---- huge revocations ----------------------------------------------------------------------------

void wide_revoke(Test &t)
{
    REQUIRE(needs_kernel_memory(t, KERNEL_MIB));
    u64 page = own_page(t), pd = new_pd(t);
    REQUIRE(page && pd);
    Observers o;
    REQUIRE(start_observers(t, o, SEL_ROOT_PD));
    u64 dst = alloc_virt(u64{MAX_NODES} * PAGE_SIZE, u64{MAX_NODES} * PAGE_SIZE) >> PAGE_BITS;
    Figures f{};
    unsigned n = START_NODES;
    for (;; n *= 2) {
        if (!dst || !spread(t, page, pd, dst, n))
            break;
        f = measure([&] { revoke(Crd::mem(page, 0, Perm_mem::RW)); });
        if (f.ticks >= ms_ticks(MIN_MS) || n >= MAX_NODES)
            break;
    }
    stop_observers(o);
    REQUIRE(!t.failed);
    CHECK(lookup_mem(dst) == 0, "a copy survived the revoke");
    judge(t, "revoke of copies in one PD", n, f, true, o.have_probe);
}

void chain_revoke(Test &t)
{
    REQUIRE(needs_kernel_memory(t, KERNEL_MIB));
    u64 page = own_page(t), a = new_pd(t), b = new_pd(t);
    REQUIRE(page && a && b);
    Observers o;
    REQUIRE(start_observers(t, o, SEL_ROOT_PD));
    u64 dst = alloc_virt(u64{MAX_NODES} * PAGE_SIZE, u64{MAX_NODES} * PAGE_SIZE) >> PAGE_BITS;
    Figures f{};
    unsigned n = START_NODES;
    for (;; n *= 2) {
        if (!dst || !chain(t, page, a, b, dst, n))
            break;
        f = measure([&] { revoke(Crd::mem(page, 0, Perm_mem::RW)); });
        if (f.ticks >= ms_ticks(MIN_MS) || n >= MAX_NODES)
            break;
    }
    stop_observers(o);
    REQUIRE(!t.failed);
    judge(t, "revoke of a chain", n, f, true, o.have_probe);
}

void pd_death(Test &t)
{
    REQUIRE(needs_kernel_memory(t, KERNEL_MIB));
    u64 page = own_page(t);
    REQUIRE(page);
    Observers o;
    REQUIRE(start_observers(t, o, SEL_ROOT_PD));
    u64 dst = alloc_virt(u64{MAX_NODES} * PAGE_SIZE, u64{MAX_NODES} * PAGE_SIZE) >> PAGE_BITS;
    Figures f{};
    unsigned n = START_NODES;
    for (;; n *= 2) {
        u64 pd = new_pd(t);
        if (!pd || !dst || !spread(t, page, pd, dst, n))
            break;
        f = measure([&] { revoke(Crd::obj(pd, 0, OBJ_ALL), Revoke_flag::SELF); });
        if (f.ticks >= ms_ticks(MIN_MS) || n >= MAX_NODES)
            break;
    }
    stop_observers(o);
    REQUIRE(!t.failed);
    judge(t, "death of a PD with copies", n, f, true, o.have_probe);
}

// ---- typed items ---------------------------------------------------------------------------------

Crd item_window;  // what the callee leaves in its UTCB as delegate window

void item_callee(u64, Utcb &u)
{
    u.del = item_window.value();
    u.set_items(0, 0);
}

/*
 * A call with 254 typed items, each covering 64 separate mappings of ours (16 256 new mappings in
 * the callee's PD). A call is one kernel operation for its CPU, so only the other CPUs are
 * watched: the probe works on the callee's PD, which the caller's CPU runs during the transfer.
 */
void heavy_items(Test &t)
{
    if (other_cpu() == NO_CPU) {
        t.skip("one CPU: a call is not preempted by its own CPU's higher priorities");
        return;
    }
    constexpr unsigned ITEMS = Utcb::MAX_TYPED, PAGES = 64;
    u64 page = own_page(t);
    REQUIRE(page);
    Child_pd c;
    REQUIRE(make_child(t, c, boot_cpu(), item_callee, false));
    Observers o;
    REQUIRE(start_observers(t, o, SEL_ROOT_PD));
    u64 src = alloc_virt(PAGES * PAGE_SIZE, PAGES * PAGE_SIZE) >> PAGE_BITS;
    u64 dst = alloc_virt(u64{1} << 26, u64{1} << 26) >> PAGE_BITS;  // 2^14 pages
    if (!src || !dst || !spread(t, page, SEL_ROOT_PD, src, PAGES)) {
        stop_observers(o);
        CHECK(false, "no source range");
    }
    item_window = Crd::mem(dst, 14, Perm_mem::RW);
    Utcb &u = utcb();
    u.set_items(0, 0);
    Status s1 = call(c.pt);  // the callee leaves its window for the next call
    u.set_items(0, ITEMS);
    for (unsigned i = 0; i < ITEMS; i++)
        u.item(i) = Typed_item{Crd::mem(src, 6, Perm_mem::RW).value(),
                               Item_meta(Item_meta::DELEGATE, dst + u64{i} * PAGES).value()};
    Status s2 = Status::SUCCESS;
    Figures f = measure([&] { s2 = call(c.pt); });
    u64 first = u.item(0).crd, last = u.item(ITEMS - 1).crd;
    u.set_items(0, 0);
    stop_observers(o);
    CHECK(s1 == Status::SUCCESS && s2 == Status::SUCCESS, "calls: %s, %s", status_name(s1), status_name(s2));
    CHECK(!Crd(first).is_null() && !Crd(last).is_null(), "an item delegated nothing");
    judge(t, "call with 254 items of 64 mappings", ITEMS * PAGES, f, false, true);
}

const Test_case list[] = {
    {"P.revoke-wide", "a huge revoke lets a higher-priority EC of its CPU and other CPUs' hypercalls through",
     wide_revoke, 120},
    {"P.revoke-chain", "a revoke of a deep delegation chain lets others through", chain_revoke, 120},
    {"P.pd-death", "the death of a PD with many mappings lets others through", pd_death, 120},
    {"P.items", "a call with 254 heavy typed items lets other CPUs' shootdowns through", heavy_items, 120},
};

}  // namespace

const Test_section sec_bounded = {list, sizeof(list) / sizeof(list[0])};
