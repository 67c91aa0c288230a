/*
 * Message transfer descriptor bits (ABI 5): which architectural state a
 * portal's event message carries and, on reply, which state is written back.
 */
#pragma once

#include "../types.hpp"

struct Mtd
{
    static constexpr u64 GPR_ACDB = 1ull << 0;  // rax, rcx, rdx, rbx
    static constexpr u64 GPR_BSD = 1ull << 1;   // rbp, rsi, rdi
    static constexpr u64 RSP = 1ull << 2;
    static constexpr u64 RIP_LEN = 1ull << 3;  // rip (+ inst_len for vCPUs)
    static constexpr u64 RFLAGS = 1ull << 4;
    static constexpr u64 DS_ES = 1ull << 5;
    static constexpr u64 FS_GS = 1ull << 6;
    static constexpr u64 CS_SS = 1ull << 7;
    static constexpr u64 TR = 1ull << 8;
    static constexpr u64 LDTR = 1ull << 9;
    static constexpr u64 GDTR = 1ull << 10;
    static constexpr u64 IDTR = 1ull << 11;
    static constexpr u64 CR = 1ull << 12;  // cr0, cr2, cr3, cr4, xcr0
    static constexpr u64 DR = 1ull << 13;  // dr7
    static constexpr u64 SYSENTER = 1ull << 14;
    static constexpr u64 QUAL = 1ull << 15;  // qual[0], qual[1] (read only)
    static constexpr u64 CTRL = 1ull << 16;  // execution controls (write only)
    static constexpr u64 INJ = 1ull << 17;
    static constexpr u64 STA = 1ull << 18;  // interruptibility / activity state
    static constexpr u64 TSC = 1ull << 19;
    static constexpr u64 EFER_PAT = 1ull << 20;
    static constexpr u64 PDPTE = 1ull << 21;
    static constexpr u64 GPR_R8_R15 = 1ull << 22;
    static constexpr u64 SYSCALL_SWAPGS = 1ull << 23;
    static constexpr u64 VINTR = 1ull << 26;
    static constexpr u64 EOI = 1ull << 27;
    static constexpr u64 TPR = 1ull << 28;
    static constexpr u64 TLB = 1ull << 30;  // write only: flush the guest TLB
    static constexpr u64 FPU = 1ull << 31;

    // The only bits that mean something for exception messages (note 3).
    static constexpr u64 EXC_STATE = GPR_ACDB | GPR_BSD | GPR_R8_R15 | RSP | RIP_LEN | RFLAGS | QUAL | FPU;
    // Every defined bit.
    static constexpr u64 ALL = 0xdcffffffull;
};

static_assert(Mtd::ALL ==
              (Mtd::FPU | Mtd::TLB | Mtd::TPR | Mtd::EOI | Mtd::VINTR | (Mtd::SYSCALL_SWAPGS * 2 - 1)));
