/*
 * What a CPU loads to run an EC: its PD's address space (CR3, with a PCID where enabled), the
 * PD's I/O bitmap in the TSS, the EC's FPU state and its register frame as the target of
 * entries from user mode. Used by the scheduler, the IPC fast paths and the idle loop.
 */
#pragma once

#include "cpu.hpp"
#include "fpu.hpp"
#include "memory.hpp"
#include "objects.hpp"
#include "paging.hpp"

/* Bumped by every change of any PD's I/O ports; a CPU whose copy is older syncs again. */
extern u64 io_generation;
/* Copy pd's I/O bitmap into this CPU's TSS (a different PD or a newer version). */
void load_io_bitmap(Cpu &c, const Pd *pd);

/* Back to the kernel's page table (no EC runs here; the last PD may go away). */
inline void unload_space(Cpu &c)
{
    if (c.space) {
        asm volatile("mov %0, %%cr3" : : "r"(virt_to_phys(Paging::kernel_pml4())) : "memory");
        c.space = nullptr;
    }
}

/* Make pd's page table this CPU's address space (with a PCID where enabled, include/pcid.hpp). */
inline void load_space(Cpu &c, const Pd *pd)
{
    // Published before tlb_gen is read (a full barrier): see Shootdown::run().
    __atomic_store_n(&c.space, pd, __ATOMIC_SEQ_CST);
    u64 cr3 = pd->pml4_phys;
    if (c.pcid_on)
        cr3 = c.pcids.cr3(cr3, pd->id, __atomic_load_n(&pd->tlb_gen, __ATOMIC_ACQUIRE));
    asm volatile("mov %0, %%cr3" : : "r"(cr3) : "memory");
}

/* Before returning to user mode: give this CPU's TSS the I/O bitmap of the current EC's PD. */
inline void sync_io_bitmap(Cpu &c)
{
    c.io_gen = __atomic_load_n(&io_generation, __ATOMIC_ACQUIRE);
    const Pd *pd = c.ec ? c.ec->pd : nullptr;
    if (!pd || !pd->io_bitmap) {
        // No ports: point the TSS past its limit (every port faults), keep the copy for later.
        c.tss.iomap_base = 0xffff;
        return;
    }
    if (c.io_pd != pd || c.io_version != __atomic_load_n(&pd->io_version, __ATOMIC_ACQUIRE))
        load_io_bitmap(c, pd);
    c.tss.iomap_base = sizeof(Tss);
}

/* At a kernel exit with the same EC: sync only if some PD's ports changed since the last sync. */
inline void resync_io_bitmap(Cpu &c)
{
    if (c.io_gen != __atomic_load_n(&io_generation, __ATOMIC_ACQUIRE))
        sync_io_bitmap(c);
}

/*
 * Make ec the EC this CPU runs: its FPU state (the previous EC's is saved already), its PD's
 * address space, its register frame as the target of entries from user mode. True if the PD
 * changed (the caller syncs the I/O bitmap).
 */
inline bool activate(Cpu &c, Ec *ec)
{
    Fpu::load(ec->fpu);
    c.ec = ec;
    c.tss.rsp[0] = c.frame_top = reinterpret_cast<u64>(&ec->regs + 1);
    if (c.space == ec->pd)
        return false;
    load_space(c, ec->pd);
    return true;
}
