/*
 * Benchmark root task: median TSC ticks of kernel operations over many
 * iterations after a warm-up. Run it with tools/bench (QEMU -icount shift=0,
 * so the TSC follows the instruction count and figures are repeatable).
 *
 * The last part measures long operations (huge revocations, a PD's death, calls with 254 typed
 * items) and what they do to everybody else: a probe EC on another CPU delegates and revokes a
 * page of our PD in a loop (the revoke needs Mdb::lock and a TLB shootdown on the CPU that runs
 * our PD), and a ticker EC of a higher priority on our CPU wakes up every millisecond. For each
 * operation: its duration, the probe operations the other CPU completed meanwhile and the longest
 * one, the ticker's wake-ups meanwhile and its worst lateness.
 */
#include <nova/nova.hpp>

using namespace nova;

namespace {

constexpr unsigned WARMUP = 100, ROUNDS = 2000;
u64 samples[ROUNDS];

void noop_handler(u64, Utcb &u) { u.set_items(0, 0); }

void pf_handler(u64, Utcb &u)
{
    u.rip += 2;  // skip the faulting 2-byte instruction
    u.mtd = Mtd::RIP_LEN;
}

u64 rdtsc() { return __builtin_ia32_rdtsc(); }

// ---- long operations --------------------------------------------------------------------------

constexpr unsigned LONG_NODES = 65536;  // mappings of the huge revocations
constexpr unsigned ITEMS = 254;         // typed items of a call (Utcb::MAX_TYPED)
constexpr unsigned ITEM_PAGES = 64;     // separate mappings each item of the heavy call covers

struct Watch
{
    volatile u64 armed;              // 1 while the measured operation runs
    volatile u64 probes, probe_max;  // probe operations of the other CPU meanwhile, longest
    volatile u64 wakes, late_max;    // ticker wake-ups meanwhile, worst lateness
    volatile u64 stop;               // the probe and the ticker park
} watch;

u64 probe_page, probe_dst;       // a page of ours and a free address of ours for its copy
u64 tick_sm, park_sm, probe_sm;  // nobody ups them
u64 tick_period;                 // 1 ms of TSC ticks

[[noreturn]] void probe_main()
{
    while (!watch.stop) {
        sm_down(probe_sm, rdtsc() + tick_period / 10);  // 100 us apart: the probe stays light
        u64 t0 = rdtsc();
        pd_delegate(self_pd(), self_pd(), Crd::mem(probe_page, 0, Perm_mem::RW),
                    Item_meta(Item_meta::DELEGATE, probe_dst), Crd::mem(probe_dst, 0, Perm_mem::RW));
        revoke(Crd::mem(probe_page, 0, Perm_mem::RW));  // our copy goes: shootdown where our PD runs
        u64 dt = rdtsc() - t0;
        if (watch.armed) {
            watch.probes = watch.probes + 1;
            if (dt > watch.probe_max)
                watch.probe_max = dt;
        }
    }
    for (;;)
        sm_down(park_sm);
}

[[noreturn]] void ticker_main()
{
    while (!watch.stop) {
        u64 dl = rdtsc() + tick_period;
        sm_down(tick_sm, dl);
        u64 late = rdtsc() - dl;
        if (watch.armed) {
            watch.wakes = watch.wakes + 1;
            if (late > watch.late_max)
                watch.late_max = late;
        }
    }
    for (;;)
        sm_down(park_sm);
}

struct Thread_start
{
    void (*fn)();
    u64 rsp;
};
Thread_start starts[2];

// Startup portal (event 30) of a thread: its function on its own stack.
void start_handler(u64 id, Utcb &u)
{
    u.rip = reinterpret_cast<u64>(starts[id].fn);
    u.rsp = starts[id].rsp;
    u.mtd = Mtd::RIP_LEN | Mtd::RSP;
}

// A global EC of our PD on `cpu` with an SC of priority `prio`, running fn.
bool start_thread(unsigned id, unsigned cpu, unsigned prio, void (*fn)())
{
    u64 evt = alloc_sel(32), hsel = alloc_sel(), ec = alloc_sel(), sc = alloc_sel();
    auto stack = static_cast<u8 *>(alloc(STACK_SIZE, STACK_SIZE));
    u64 utcb_addr = alloc_virt(PAGE_SIZE);
    if (!evt || !sc || !stack || !utcb_addr)
        return false;
    auto tls = reinterpret_cast<Ec_tls *>(stack + STACK_SIZE - sizeof(Ec_tls));
    *tls = Ec_tls{reinterpret_cast<Utcb *>(utcb_addr), nullptr, nullptr, 0};
    starts[id] = {fn, reinterpret_cast<u64>(tls) - 8};  // as after a call
    Handler_ec h;
    return create_handler_ec(h, hsel, self_pd(), cpu, start_handler) == Status::SUCCESS &&
           create_portal(evt + Evt::STARTUP, hsel, Mtd::RIP_LEN | Mtd::RSP, id) == Status::SUCCESS &&
           create_ec_global(ec, self_pd(), cpu, utcb_addr, reinterpret_cast<u64>(tls), evt) ==
               Status::SUCCESS &&
           create_sc(sc, self_pd(), ec, Qpd(prio, 10000)) == Status::SUCCESS;
}

// One long operation, with what the probe and the ticker saw meanwhile.
template <typename F> void measure_long(const char *name, F op)
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
    printf("BENCH %-40s %8llu ticks\n", name, static_cast<unsigned long long>(t));
    printf("BENCH   other CPU: %llu probe ops, longest %llu ticks; same CPU, higher prio: %llu wake-ups, "
           "worst lateness %llu ticks\n",
           static_cast<unsigned long long>(watch.probes), static_cast<unsigned long long>(watch.probe_max),
           static_cast<unsigned long long>(watch.wakes), static_cast<unsigned long long>(watch.late_max));
}

Crd item_window;  // the delegate window the item handler leaves in its UTCB

void item_handler(u64, Utcb &u)
{
    u.del = item_window.value();
    u.set_items(0, 0);
}

void long_operations(unsigned cpu, u64 p0)
{
    unsigned other = NUM_CPU;
    for (unsigned i = 0; i < hip()->num_cpu_desc(); i++)
        if (i != cpu && hip()->cpu(i)->online()) {
            other = i;
            break;
        }
    tick_period = hip()->freq_tsc;  // kHz: ticks per millisecond
    tick_sm = alloc_sel();
    park_sm = alloc_sel();
    probe_sm = alloc_sel();
    // The probe's page is a node of its own (a copy of p0 at a new address), so that revoking it
    // with self = 0 takes only its own copy (a revoke takes whole nodes: not our heap's copies).
    probe_page = alloc_virt(PAGE_SIZE) >> 12;
    probe_dst = alloc_virt(PAGE_SIZE) >> 12;
    if (!probe_page || !probe_dst || create_sm(tick_sm, self_pd(), 0) != Status::SUCCESS ||
        create_sm(park_sm, self_pd(), 0) != Status::SUCCESS ||
        create_sm(probe_sm, self_pd(), 0) != Status::SUCCESS ||
        pd_delegate(self_pd(), self_pd(), Crd::mem(p0, 0, Perm_mem::RW),
                    Item_meta(Item_meta::DELEGATE, probe_page), Crd::mem(probe_page, 0, Perm_mem::RW))
            .crd.is_null()) {
        printf("bench: no resources for the long operations\n");
        return;
    }
    if (other == NUM_CPU || !start_thread(0, other, 50, probe_main))
        printf("bench: no probe on another CPU\n");
    if (!start_thread(1, cpu, 100, ticker_main))
        printf("bench: no ticker\n");

    u64 a_sel = alloc_sel(), b_sel = alloc_sel(), c_sel = alloc_sel();
    u64 base = alloc_virt(u64{LONG_NODES} * PAGE_SIZE, u64{LONG_NODES} * PAGE_SIZE) >> 12;
    if (!c_sel || !base || create_pd(a_sel, self_pd()) != Status::SUCCESS ||
        create_pd(b_sel, self_pd()) != Status::SUCCESS) {
        printf("bench: no PDs for the long operations\n");
        return;
    }
    auto page_to = [](u64 src_pd, u64 src, u64 dst_pd, u64 dst) {
        return pd_delegate(src_pd, dst_pd, Crd::mem(src, 0, Perm_mem::RW),
                           Item_meta(Item_meta::DELEGATE, dst), Crd::mem(dst, 0, Perm_mem::RW))
            .crd.is_null();
    };

    // One page of ours delegated to LONG_NODES places in one PD, revoked at once (self = 0).
    unsigned failed = 0;
    for (unsigned i = 0; i < LONG_NODES; i++)
        failed += page_to(self_pd(), p0, a_sel, base + i);
    measure_long("revoke 65536 mappings (one page, one PD)", [&] { revoke(Crd::mem(p0, 0, Perm_mem::RW)); });

    // A chain: our page -> A -> B -> A -> ..., a new address at each level.
    failed += page_to(self_pd(), p0, a_sel, base);
    for (unsigned i = 1; i < LONG_NODES; i++)
        failed += page_to(i & 1 ? a_sel : b_sel, base + i - 1, i & 1 ? b_sel : a_sel, base + i);
    measure_long("revoke a chain of 65536 delegations", [&] { revoke(Crd::mem(p0, 0, Perm_mem::RW)); });

    // A PD holding LONG_NODES mappings dies (its only capability goes).
    if (create_pd(c_sel, self_pd()) == Status::SUCCESS) {
        for (unsigned i = 0; i < LONG_NODES; i++)
            failed += page_to(self_pd(), p0, c_sel, base + i);
        measure_long("destroy a PD holding 65536 mappings",
                     [&] { revoke(Crd::obj(c_sel, 0), Revoke_flag::SELF); });
    }
    if (failed)
        printf("bench: %u delegations of the long operations transferred nothing\n", failed);

    // Calls with 254 typed items into a child PD.
    Child ic;
    if (create_child(ic, cpu, item_handler) == Status::SUCCESS) {
        Utcb &u = utcb();
        // Every item lands on a page the child has from elsewhere (its copy of our code): 254
        // overmap attempts, each with its console line.
        u64 code = reinterpret_cast<u64>(&item_handler) >> 12;
        item_window = Crd::mem(code, 0, Perm_mem::RW);
        u.set_items(0, 0);
        call(ic.pt);  // the handler leaves the window for the next call
        u.set_items(0, ITEMS);
        for (unsigned i = 0; i < ITEMS; i++)
            u.item(i) = Typed_item{Crd::mem(p0, 0, Perm_mem::RW).value(),
                                   Item_meta(Item_meta::DELEGATE, code).value()};
        measure_long("call with 254 overmapping typed items", [&] { call(ic.pt); });

        // Every item covers ITEM_PAGES separate mappings of ours (copies of our page): 16256 new
        // mappings in the child.
        u64 src = alloc_virt(ITEM_PAGES * PAGE_SIZE, ITEM_PAGES * PAGE_SIZE) >> 12;
        u64 dst = alloc_virt(u64{1} << 26, u64{1} << 26) >> 12;  // 2^14 pages
        for (unsigned i = 0; src && i < ITEM_PAGES; i++)
            failed += page_to(self_pd(), p0, self_pd(), src + i);
        if (src && dst) {
            item_window = Crd::mem(dst, 14, Perm_mem::RW);
            u.set_items(0, 0);
            call(ic.pt);
            u.set_items(0, ITEMS);
            for (unsigned i = 0; i < ITEMS; i++)
                u.item(i) = Typed_item{Crd::mem(src, 6, Perm_mem::RW).value(),
                                       Item_meta(Item_meta::DELEGATE, dst + u64{i} * ITEM_PAGES).value()};
            Status st = Status::SUCCESS;
            measure_long("call with 254 items of 64 mappings each", [&] { st = call(ic.pt); });
            if (st != Status::SUCCESS || Crd(u.item(0).crd).is_null())
                printf("bench: the call with 254 items of 64 mappings: %s, first result %#llx\n",
                       status_name(st), static_cast<unsigned long long>(u.item(0).crd));
            u.set_items(0, 0);
            measure_long("revoke them (16320 mappings)", [&] { revoke(Crd::mem(p0, 0, Perm_mem::RW)); });
        }
    } else
        printf("bench: no child for the typed items\n");
    watch.stop = 1;
}

u64 median()
{
    for (unsigned i = 1; i < ROUNDS; i++)
        for (unsigned j = i; j > 0 && samples[j] < samples[j - 1]; j--) {
            u64 t = samples[j];
            samples[j] = samples[j - 1];
            samples[j - 1] = t;
        }
    return samples[ROUNDS / 2];
}

template <typename F> void measure(const char *name, F op)
{
    for (unsigned i = 0; i < WARMUP; i++)
        op();
    for (unsigned i = 0; i < ROUNDS; i++) {
        u64 t0 = __builtin_ia32_rdtsc();
        op();
        samples[i] = __builtin_ia32_rdtsc() - t0;
    }
    printf("BENCH %-40s %8llu ticks (median of %u)\n", name, static_cast<unsigned long long>(median()),
           ROUNDS);
}

}  // namespace

int main(const Hip *, unsigned cpu)
{
    Console::init();
    printf("bench: start\n");

    Handler_ec h;
    u64 ec = alloc_sel(), pt = alloc_sel();
    if (create_handler_ec(h, ec, self_pd(), cpu, noop_handler) != Status::SUCCESS ||
        create_portal(pt, ec) != Status::SUCCESS) {
        printf("bench: cannot create the portal\n");
        exit(EXIT_FAIL);
    }
    utcb().set_items(0, 0);
    measure("IPC call+reply, same PD", [&] { call(pt); });

    Child child;
    Status cs = create_child(child, cpu, noop_handler);
    Status first = cs == Status::SUCCESS ? call(child.pt) : cs;
    if (first == Status::SUCCESS)
        measure("IPC call+reply, across PDs", [&] { call(child.pt); });
    else if (cs == Status::SUCCESS)
        printf("bench: call into the child PD fails: %s\n", status_name(first));
    else
        printf("bench: no child PD (create_child failed)\n");

    // Exception round trip: a #UD handled by a portal that skips the instruction.
    Handler_ec eh;
    u64 eh_sel = alloc_sel();
    if (create_handler_ec(eh, eh_sel, self_pd(), cpu, pf_handler) == Status::SUCCESS &&
        create_portal(6, eh_sel, Mtd::RIP_LEN) == Status::SUCCESS)
        measure("exception round trip (#UD -> handler -> resume)", [] { asm volatile("ud2"); });

    u64 sm = alloc_sel();
    if (call(pt) != Status::SUCCESS)
        printf("bench: same-PD call fails\n");
    if (create_sm(sm, self_pd(), 0) == Status::SUCCESS)
        measure("semaphore up+down", [&] {
            sm_up(sm);
            sm_down(sm);
        });

    // Delegate + revoke (memory): pages of our heap go to the child PD at a free address and are
    // revoked again (self = 0: only the child's copies go).
    if (cs == Status::SUCCESS) {
        auto page_of = [](void *p) { return reinterpret_cast<u64>(p) >> 12; };
        u64 *buf = static_cast<u64 *>(alloc(PAGE_SIZE, PAGE_SIZE));
        u64 dst = alloc_virt(512 * PAGE_SIZE, 512 * PAGE_SIZE) >> 12;
        if (buf && dst) {
            u64 p0 = page_of(buf);
            measure("delegate + revoke one 4 KiB page", [&] {
                pd_delegate(self_pd(), child.pd, Crd::mem(p0, 0, 3), Item_meta(Item_meta::DELEGATE, dst),
                            Crd::mem(dst, 0, 3));
                revoke(Crd::mem(p0, 0, 3));
            });
            // One page delegated to 512 separate places, one revoke. Fewer rounds: each is long.
            u64 t_best = ~0ull;
            for (unsigned r = 0; r < 20; r++) {
                u64 t0 = __builtin_ia32_rdtsc();
                for (unsigned i = 0; i < 512; i++)
                    pd_delegate(self_pd(), child.pd, Crd::mem(p0, 0, 3),
                                Item_meta(Item_meta::DELEGATE, dst + i), Crd::mem(dst + i, 0, 3));
                revoke(Crd::mem(p0, 0, 3));
                u64 t = __builtin_ia32_rdtsc() - t0;
                if (r >= 2 && t < t_best)
                    t_best = t;
            }
            printf("BENCH %-40s %8llu ticks (best of 18)\n", "delegate + revoke 512 separate 4 KiB mappings",
                   static_cast<unsigned long long>(t_best));
        } else
            printf("bench: no buffer for the delegation benchmarks\n");
    }

    // Cross-CPU portal call: the handler EC lives on another CPU (ABI 7.1.1).
    if (hip()->num_cpus_online() > 1) {
        unsigned other = cpu == 0 ? 1 : 0;
        Handler_ec xh;
        u64 xec = alloc_sel(), xpt = alloc_sel();
        if (create_handler_ec(xh, xec, self_pd(), other, noop_handler) == Status::SUCCESS &&
            create_portal(xpt, xec) == Status::SUCCESS && call(xpt) == Status::SUCCESS)
            measure("cross-CPU portal call", [&] { call(xpt); });
        else
            printf("bench: cross-CPU call not possible\n");
    }

    // Create + destroy (revoke of the only capability with self = 1) per object type.
    u64 osel = alloc_sel();
    auto destroy = [&] { revoke(Crd::obj(osel, 0, 0x1f), Revoke_flag::SELF); };
    measure("create_sm + destroy", [&] {
        create_sm(osel, self_pd(), 0);
        destroy();
    });
    measure("create_pt + destroy", [&] {
        create_pt(osel, self_pd(), ec, 0, 0);
        destroy();
    });
    measure("create_pd + destroy", [&] {
        create_pd(osel, self_pd());
        destroy();
    });
    u64 ubase = alloc_virt(PAGE_SIZE);
    measure("create_ec (local) + destroy", [&] {
        create_ec_local(osel, self_pd(), cpu, ubase, 0, 0);
        destroy();
    });

    u64 s2 = alloc_sel();
    measure("create_sm (selector taken: fails after the checks)", [&] { create_sm(s2, self_pd(), 0); });

    // The long operations work on a page of ours that is a node of its own (a copy of a heap page
    // at a new address): revoking it with self = 0 must not take the children's copies of our heap.
    if (cs == Status::SUCCESS) {
        auto *lp = alloc(PAGE_SIZE, PAGE_SIZE);
        u64 own = alloc_virt(PAGE_SIZE) >> 12;
        if (lp && own &&
            !pd_delegate(self_pd(), self_pd(), Crd::mem(reinterpret_cast<u64>(lp) >> 12, 0, Perm_mem::RW),
                         Item_meta(Item_meta::DELEGATE, own), Crd::mem(own, 0, Perm_mem::RW))
                 .crd.is_null())
            long_operations(cpu, own);
        else
            printf("bench: no page for the long operations\n");
    }

    printf("bench: done\n");
    exit(EXIT_PASS);
}
