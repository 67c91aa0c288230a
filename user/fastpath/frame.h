/*
 * Register record of the fast-path test, shared by main.cpp and regs.S: every
 * general-purpose register, RFLAGS, MXCSR, the x87 control word and xmm0-15
 * (the layout of nova/regs.h with its FPU part).
 */
#pragma once

#include "nova/regs.h" /* the record's layout: REGS_GPR(i), REGS_RFLAGS, the FPU part */

#define F_SIZE 0x200 /* a Frame: the record with its FPU part, padded */

#define CALLEES 4           /* owners 1..3 have portal entries (0 is the root EC) */
#define CALLEE_STACK 0x4000 /* each callee's C++ stack in fp_stack[] */

#ifndef __ASSEMBLY__
#include "types.hpp"
#include <stddef.h>

struct alignas(16) Frame
{
    u64 gpr[16];
    u64 rflags;
    u32 mxcsr;
    u16 fcw;
    u16 pad;
    u64 xmm[32];  // xmm i: low quadword xmm[2i], high quadword xmm[2i + 1]
    u64 spare[(F_SIZE - REGS_FPU_END) / 8];
};

static_assert(sizeof(Frame) == F_SIZE);
static_assert(offsetof(Frame, rflags) == REGS_RFLAGS && offsetof(Frame, mxcsr) == REGS_MXCSR);
static_assert(offsetof(Frame, fcw) == REGS_FCW && offsetof(Frame, xmm) == REGS_XMM(0));

enum Reg : unsigned { RAX, RBX, RCX, RDX, RSI, RDI, RBP, RSP, R8, R9, R10, R11, R12, R13, R14, R15 };

extern "C" {
// Load every register of *in (rsp included), execute syscall, store every register into *out.
// Two copies with their own save slots: the root EC's and the one a callee uses for a nested call.
void fp_call_root(const Frame *in, Frame *out);
void fp_call_nested(const Frame *in, Frame *out);
extern char fp_call_root_ret[], fp_call_nested_ret[];  // the instruction after each syscall
// The same around ud2: the #UD handler moves rip from fp_ud2_root_insn to fp_ud2_root_ret.
void fp_ud2_root(const Frame *in, Frame *out);
extern char fp_ud2_root_insn[], fp_ud2_root_ret[];

// Portal entries of owners 1..3: record the entry registers in fp_cin[n], run fp_callee_work(n) on
// fp_stack[n], load fp_cout[n] (rdi = the reply's identifier word) and reply.
extern char fp_entry1[], fp_entry2[], fp_entry3[];
extern Frame fp_cin[CALLEES], fp_cout[CALLEES];
void fp_callee_work(unsigned n);
}
#endif
