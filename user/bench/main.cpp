/*
 * Benchmark root task: median TSC ticks of kernel operations over many
 * iterations after a warm-up. Run it with tools/bench (QEMU -icount shift=0,
 * so the TSC follows the instruction count and figures are repeatable).
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

    printf("bench: done\n");
    exit(EXIT_PASS);
}
