/*
 * Architectural state transfer between an EC's saved user frame and a
 * handler's UTCB for exception, startup and recall messages (ABI 4.3, 5).
 * Exceptions move only GPRs, RSP, RIP, RFLAGS and QUAL (section 5, note 3).
 */
#pragma once

#include "abi/mtd.hpp"
#include "abi/utcb.hpp"
#include "idt.hpp"

namespace Mtd_xfer {
/* The general-purpose registers (not RSP) that mtd selects, between a frame and a UTCB (either
   way); exceptions and vCPUs share it. */
template <typename From, typename To> void copy_gprs(u64 mtd, const From &f, To &t)
{
    if (mtd & Mtd::GPR_ACDB) {
        t.rax = f.rax;
        t.rcx = f.rcx;
        t.rdx = f.rdx;
        t.rbx = f.rbx;
    }
    if (mtd & Mtd::GPR_BSD) {
        t.rbp = f.rbp;
        t.rsi = f.rsi;
        t.rdi = f.rdi;
    }
    if (mtd & Mtd::GPR_R8_R15) {
        t.r8 = f.r8;
        t.r9 = f.r9;
        t.r10 = f.r10;
        t.r11 = f.r11;
        t.r12 = f.r12;
        t.r13 = f.r13;
        t.r14 = f.r14;
        t.r15 = f.r15;
    }
}

/* Delivery: the state selected by mtd goes into the UTCB; items = 77, mtd field = mtd. */
void to_utcb(const Exc_frame &f, u64 mtd, u64 error, u64 cr2, Utcb &u);
/*
 * Reply: the state selected by the UTCB's mtd field goes back into the frame, RFLAGS
 * sanitised (note 1). False if the result cannot be resumed (non-canonical RIP).
 */
bool from_utcb(const Utcb &u, Exc_frame &f);
}  // namespace Mtd_xfer
