/*
 * TLB shootdown (include/shootdown.hpp): after mappings or ports lost rights, the CPUs that run
 * one of the affected PDs right now get an IPI and flush; the others flush when they next switch
 * to such a PD (CR3 load, or the PD's tlb_gen with PCIDs). The initiator waits for every answer
 * and answers other initiators' requests meanwhile.
 */
#include "shootdown.hpp"
#include "activate.hpp"
#include "cpu.hpp"
#include "idt.hpp"
#include "lapic.hpp"
#include "x86.hpp"

namespace {

/*
 * Answer the flush requests addressed to this CPU so far: the requests counted before the flush
 * are answered by it (their mappings were changed before they were counted).
 */
void tlb_service(Cpu &c)
{
    u64 req = __atomic_load_n(&c.tlb_req, __ATOMIC_ACQUIRE);
    if (req == __atomic_load_n(&c.tlb_done, __ATOMIC_RELAXED))
        return;
    set_cr3(get_cr3());
    __atomic_store_n(&c.tlb_done, req, __ATOMIC_RELEASE);
}

/*
 * While waiting in a shootdown: answer other CPUs' flush requests by polling (an interrupt
 * window alone is not enough: under QEMU's TCG a "sti; pause; cli" loop never takes the IPI),
 * and open a short window for the other interrupts (they never switch ECs in kernel mode).
 */
void wait_step(Cpu &c)
{
    tlb_service(c);
    asm volatile("sti; nop; cli; pause" ::: "memory");
}
}  // namespace

/*
 * Shootdowns of different CPUs run at the same time: each target counts requests (tlb_req) and
 * answers (tlb_done), so a long series of shootdowns (a revocation in pieces) never waits for
 * another CPU's shootdown, only for its own targets, and two CPUs waiting for each other both
 * answer while they wait.
 */
void Shootdown::run(const Tlb_flush &f)
{
    Cpu &self = Cpu::current();
    set_cr3(get_cr3());  // this CPU: user entries are not global
    // The PDs' tlb_gen went up before (locked adds); Sched's load_space() publishes a CPU's
    // space before it reads tlb_gen. So either we see the CPU in the PD, or it sees the new
    // generation (and a CPU without PCIDs flushes on every CR3 load anyway).
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    auto target = [&](const Cpu &c) {
        if (!c.online || &c == &self)
            return false;
        if (f.all)
            return true;
        const Pd *s = __atomic_load_n(&c.space, __ATOMIC_ACQUIRE);
        for (unsigned i = 0; i < f.n; i++)
            if (f.pd[i] == s)
                return true;
        return false;
    };
    // Request, then wait for each target in turn (its answer may have come already).
    constexpr unsigned BATCH = 64;
    for (unsigned first = 0; first < Cpu::count; first += BATCH) {
        u64 want[BATCH];
        unsigned end = first + BATCH < Cpu::count ? first + BATCH : Cpu::count;
        for (unsigned i = first; i < end; i++) {
            Cpu &c = *Cpu::table[i];
            want[i - first] = 0;
            if (!target(c))
                continue;
            want[i - first] = __atomic_add_fetch(&c.tlb_req, 1, __ATOMIC_ACQ_REL);
            Lapic::send_ipi(c.apic_id, Vec::IPI_TLB);
        }
        for (unsigned i = first; i < end; i++)
            if (u64 w = want[i - first])
                while (__atomic_load_n(&Cpu::table[i]->tlb_done, __ATOMIC_ACQUIRE) < w)
                    wait_step(self);
    }
}

void Shootdown::answer() { tlb_service(Cpu::current()); }
