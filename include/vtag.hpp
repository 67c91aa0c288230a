/*
 * TLB tags for vCPUs: VPIDs (VMX) and ASIDs (SVM), one pool per CPU.
 *
 * A tag keeps a vCPU's guest TLB entries apart from the host's (tag 0, never handed out) and
 * from other vCPUs' on the same CPU, so VM entries and exits need not flush. A vCPU runs on
 * one CPU only, so each CPU has its own pool and the same number may be in use on several CPUs.
 *
 *   count = the tags the hardware has, 0 included: VPID 0x10000 (16-bit field), ASID the NASID
 *   of CPUID 8000000AH:EBX. Below 2 (or `novpid`): no tags, alloc() gives 0 (VMX: VPID off).
 *   Tags 1 .. n-1 are handed out exclusively (n = min(count - 1, CAP)); tag n is the shared
 *   tag, given to every vCPU that finds the pool empty: such a vCPU must flush its tag on every
 *   VM entry, because other vCPUs' entries may carry the same tag (VMX may switch VPID off
 *   instead). With n = 1 every vCPU shares tag 1.
 *   A fresh tag needs no flush (the CPU flushes all tagged entries once when it turns VMX or
 *   SVM on: INVVPID all-context, or TLB_CONTROL flush-all on the first VMRUN). A freed tag
 *   may still have entries in this CPU's TLB, so handing it out again sets `flush`: the new
 *   owner flushes the tag (INVVPID single-context, TLB_CONTROL = 3 or 1) before its first
 *   entry. Tags are never recycled wrapping to 0.
 *
 * Pure logic, no locking: the caller serialises (the pool's CPU, or a per-pool lock when a
 * vCPU is created or destroyed from another CPU). Host unit tests: test/unit/test_vtag.cpp.
 */
#pragma once

#include "types.hpp"

class Tag_alloc
{
  public:
    static constexpr u32 CAP = 4096;  // tags per pool at most (the bitmap's size)

    struct Tag
    {
        u32 tag;      // 0: untagged (no tags on this CPU)
        bool flush;   // flush the tag's TLB entries before the first VM entry
        bool shared;  // the shared tag: flush before every VM entry
    };

    Tag_alloc() = default;
    explicit Tag_alloc(u32 count) { init(count); }

    void init(u32 count)
    {
        n = count < 2 ? 0 : count - 1 < CAP ? count - 1 : CAP;
        next = 1;
        for (u64 &w : recycled)
            w = 0;
    }

    Tag alloc()
    {
        if (!n)
            return {0, false, false};
        if (next < n)
            return {next++, false, false};
        for (u32 i = 0; i < WORDS; i++)
            if (recycled[i]) {
                u32 b = static_cast<u32>(__builtin_ctzll(recycled[i]));
                recycled[i] &= recycled[i] - 1;
                return {i * 64 + b, true, false};
            }
        return {n, true, true};
    }

    /* Give an exclusive tag back; 0, the shared tag and tags never handed out are ignored
       (false), as is a second free of the same tag. */
    bool free(u32 tag)
    {
        if (!tag || tag >= n || tag >= next)
            return false;
        u64 bit = u64{1} << (tag % 64);
        if (recycled[tag / 64] & bit)
            return false;
        recycled[tag / 64] |= bit;
        return true;
    }

    u32 shared_tag() const { return n; }
    /* Exclusive tags handed out and not freed. */
    u32 in_use() const
    {
        u32 freed = 0;
        for (u64 w : recycled)
            freed += static_cast<u32>(__builtin_popcountll(w));
        return next - 1 - freed;
    }

  private:
    static constexpr u32 WORDS = CAP / 64;
    u32 n = 0;     // highest tag: the shared one; 0: no tags
    u32 next = 1;  // the next fresh tag
    u64 recycled[WORDS] = {};
};
