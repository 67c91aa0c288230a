/*
 * Process-context identifiers (PCID) for address spaces, one small cache per CPU.
 *
 * With CR4.PCIDE the TLB keeps entries of several address spaces apart, so a
 * switch of PD need not flush. A CPU maps PDs onto its PCIDs 1..SLOTS directly
 * by PD id (PCID 0 is the kernel's page table). A slot remembers which PD it
 * belongs to and that PD's TLB generation when the slot was last flushed:
 *
 *   - another PD in the slot (first use, or a collision): flush;
 *   - the PD's generation moved on (some of its mappings were revoked or
 *     write-protected since; Pd::tlb_gen): flush;
 *   - otherwise: load CR3 with bit 63 set, keeping the PCID's entries.
 *
 * Stale entries of PDs that are not current are therefore dropped lazily, at
 * their next switch-in, which is why a revoke only needs to flush the PCID a
 * CPU runs right now (the shootdown's CR3 reload). PD ids are never reused
 * (a 64-bit counter), so a freed PD's entries can never be taken for a new
 * PD's. Pure logic: host unit tests in test/unit/test_pcid.cpp.
 */
#pragma once

#include "types.hpp"

class Pcid_cache
{
  public:
    static constexpr unsigned SLOTS = 256;        // PCIDs 1..256 per CPU
    static constexpr u64 NOFLUSH = u64{1} << 63;  // CR3 bit 63: keep the PCID's TLB entries

    /* The CR3 value for a PD's page table (4 KiB aligned) on this CPU. pd_id must not be 0. */
    u64 cr3(u64 pml4_phys, u64 pd_id, u64 tlb_gen)
    {
        unsigned s = static_cast<unsigned>(pd_id % SLOTS);
        u64 v = pml4_phys | (s + 1);
        if (owner[s] == pd_id && gen[s] == tlb_gen)
            return v | NOFLUSH;
        owner[s] = pd_id;
        gen[s] = tlb_gen;
        return v;
    }

  private:
    u64 owner[SLOTS] = {};  // PD id using the slot (0: none)
    u64 gen[SLOTS] = {};
};
