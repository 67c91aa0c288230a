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

volatile unsigned pending;  // CPUs that have not flushed yet
bool busy;                  // one shootdown at a time

/* Answer a flush request addressed to this CPU, if there is one. */
void tlb_service(Cpu &c)
{
    if (!__atomic_exchange_n(&c.tlb_req, false, __ATOMIC_ACQ_REL))
        return;
    set_cr3(get_cr3());
    __atomic_sub_fetch(&pending, 1, __ATOMIC_RELEASE);
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

void Shootdown::run(const Tlb_flush &f)
{
    Cpu &self = Cpu::current();
    // One shootdown at a time; a CPU that waits still answers the others' requests.
    while (__atomic_exchange_n(&busy, true, __ATOMIC_ACQUIRE))
        wait_step(self);
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
    unsigned others = 0;
    for (unsigned i = 0; i < Cpu::count; i++)
        if (target(*Cpu::table[i])) {
            Cpu::table[i]->shootdown_mark = true;
            others++;
        }
    if (!others) {
        __atomic_store_n(&busy, false, __ATOMIC_RELEASE);
        return;
    }
    __atomic_store_n(&pending, others, __ATOMIC_RELEASE);
    for (unsigned i = 0; i < Cpu::count; i++)
        if (Cpu *c = Cpu::table[i]; c->shootdown_mark) {
            c->shootdown_mark = false;
            __atomic_store_n(&c->tlb_req, true, __ATOMIC_RELEASE);
            Lapic::send_ipi(c->apic_id, Vec::IPI_TLB);
        }
    while (__atomic_load_n(&pending, __ATOMIC_ACQUIRE))
        wait_step(self);
    __atomic_store_n(&busy, false, __ATOMIC_RELEASE);
}

void Shootdown::answer() { tlb_service(Cpu::current()); }
