/*
 * Interrupt descriptor table and the register frame every kernel entry
 * (exception, interrupt, syscall) builds on the kernel stack.
 */
#pragma once

#include "guest_gprs_asm.hpp"
#include "types.hpp"

struct Exc_frame
{
    u64 r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
    u64 vector, error;
    u64 rip, cs, rflags, rsp, ss;

    bool from_user() const { return cs & 3; }
};
// The world switches' view of the frame (include/guest_gprs_asm.hpp).
static_assert(__builtin_offsetof(Exc_frame, r15) == F_R15 && __builtin_offsetof(Exc_frame, r8) == F_R8 &&
              __builtin_offsetof(Exc_frame, rbp) == F_RBP && __builtin_offsetof(Exc_frame, rdi) == F_RDI &&
              __builtin_offsetof(Exc_frame, rbx) == F_RBX && __builtin_offsetof(Exc_frame, rax) == F_RAX);

namespace Vec {
constexpr unsigned NMI = 2, DF = 8, GP = 13, PF = 14, MC = 18;
constexpr unsigned GSI_BASE = 32;  // vector = 32 + GSI (ABI 11.1)
constexpr unsigned NUM_GSI = 192;
constexpr unsigned IPI_HALT = 0xf0;     // panic: stop this CPU
constexpr unsigned IPI_RESCHED = 0xf1;  // an SC became ready on this CPU
constexpr unsigned IPI_TLB = 0xf2;      // flush user TLB entries (revoke)
constexpr unsigned IOMMU = 0xf3;        // IOMMU fault event (src/dmar.cpp)
constexpr unsigned TIMER = 0xfd;
constexpr unsigned ERROR = 0xfe;
constexpr unsigned SPURIOUS = 0xff;
}  // namespace Vec

namespace Idt {
void init();  // build the table once (BSP)
void load();  // load it on the calling CPU
}  // namespace Idt

/*
 * IST slots of the TSS: NMI, #DF and #MC always start on their own stack (src/entry.S,
 * paranoid_entry), whatever the stack pointer was; each stack holds the CPU's Cpu pointer right
 * above the frame the CPU pushes (Cpu::set_ist).
 */
constexpr unsigned IST_DF = 1, IST_NMI = 2, IST_MC = 3;
