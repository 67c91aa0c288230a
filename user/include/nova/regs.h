/*
 * Register records shared by assembly and C++: every general-purpose
 * register and RFLAGS (nova::Raw_regs), optionally followed by MXCSR, the x87
 * control word and xmm0-15. With -D__ASSEMBLY__ (the SDK's .S files) this
 * header provides the macros that move whole records: crt0's start-up
 * registers, the conformance suite's raw hypercall harness and its
 * recording portal entry, and the fast-path test's frames all use them.
 */
#pragma once

#define REGS_GPR(i) ((i) * 8) /* rax rbx rcx rdx rsi rdi rbp rsp r8 .. r15 */
#define REGS_RFLAGS 0x80
#define REGS_SIZE 0x88  /* nova::Raw_regs */
#define REGS_MXCSR 0x88 /* the FPU part, where a record has one */
#define REGS_FCW 0x8c
#define REGS_XMM(i) (0x90 + (i) * 16)
#define REGS_FPU_END REGS_XMM(16)

#ifdef __ASSEMBLY__

/* clang-format off */

/* Every GPR into the record at \rec (a symbol expression, no spaces), rip-relative. */
.macro REGS_STORE_RIP rec
    mov     %rax, \rec+REGS_GPR(0)(%rip)
    mov     %rbx, \rec+REGS_GPR(1)(%rip)
    mov     %rcx, \rec+REGS_GPR(2)(%rip)
    mov     %rdx, \rec+REGS_GPR(3)(%rip)
    mov     %rsi, \rec+REGS_GPR(4)(%rip)
    mov     %rdi, \rec+REGS_GPR(5)(%rip)
    mov     %rbp, \rec+REGS_GPR(6)(%rip)
    mov     %rsp, \rec+REGS_GPR(7)(%rip)
    mov     %r8, \rec+REGS_GPR(8)(%rip)
    mov     %r9, \rec+REGS_GPR(9)(%rip)
    mov     %r10, \rec+REGS_GPR(10)(%rip)
    mov     %r11, \rec+REGS_GPR(11)(%rip)
    mov     %r12, \rec+REGS_GPR(12)(%rip)
    mov     %r13, \rec+REGS_GPR(13)(%rip)
    mov     %r14, \rec+REGS_GPR(14)(%rip)
    mov     %r15, \rec+REGS_GPR(15)(%rip)
.endm

/* Every GPR but rdi from the record at \rec, rip-relative, rsp last (the caller sets rdi). */
.macro REGS_LOAD_RIP rec
    mov     \rec+REGS_GPR(0)(%rip), %rax
    mov     \rec+REGS_GPR(1)(%rip), %rbx
    mov     \rec+REGS_GPR(2)(%rip), %rcx
    mov     \rec+REGS_GPR(3)(%rip), %rdx
    mov     \rec+REGS_GPR(4)(%rip), %rsi
    mov     \rec+REGS_GPR(6)(%rip), %rbp
    mov     \rec+REGS_GPR(8)(%rip), %r8
    mov     \rec+REGS_GPR(9)(%rip), %r9
    mov     \rec+REGS_GPR(10)(%rip), %r10
    mov     \rec+REGS_GPR(11)(%rip), %r11
    mov     \rec+REGS_GPR(12)(%rip), %r12
    mov     \rec+REGS_GPR(13)(%rip), %r13
    mov     \rec+REGS_GPR(14)(%rip), %r14
    mov     \rec+REGS_GPR(15)(%rip), %r15
    mov     \rec+REGS_GPR(7)(%rip), %rsp
.endm

/* xmm0-15 from/to 16-byte slots at \disp(\reg), \disp+16(\reg), ... */
.macro XMM_LOAD disp, reg
    .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    movdqu  \disp+\i*16(\reg), %xmm\i
    .endr
.endm

.macro XMM_STORE disp, reg
    .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    movdqu  %xmm\i, \disp+\i*16(\reg)
    .endr
.endm

/* The FPU part of the record at \disp(\reg): xmm0-15, MXCSR and the x87 control word. */
.macro FPU_LOAD disp, reg
    XMM_LOAD \disp+REGS_XMM(0), \reg
    ldmxcsr \disp+REGS_MXCSR(\reg)
    fldcw   \disp+REGS_FCW(\reg)
.endm

.macro FPU_STORE disp, reg
    XMM_STORE \disp+REGS_XMM(0), \reg
    stmxcsr \disp+REGS_MXCSR(\reg)
    fnstcw  \disp+REGS_FCW(\reg)
.endm

/* Back to the FPU state compiled code expects: x87 initialised, MXCSR 0x1f80. Needs a stack. */
.macro FPU_DEFAULTS
    fninit
    pushq   $0x1f80
    ldmxcsr (%rsp)
    add     $8, %rsp
.endm

/*
 * \name(const Raw_regs *in, Raw_regs *out): load every register from *in (RFLAGS
 * with popfq, rsp only with load_rsp = 1, the FPU part first with fpu = 1),
 * execute \insn at \name_insn, then store every register, rsp and RFLAGS
 * into *out (and the FPU part with fpu = 1). Only mov runs between the
 * instruction (\name_ret follows it) and pushfq, so RFLAGS is what the
 * instruction left. Each copy has its own save slots (\name_sp: rsp at the
 * instruction unless loaded); \sp, when given, is a further slot that
 * receives the same value. Leaves DF clear (and the FPU at its defaults
 * with fpu = 1).
 */
.macro RAW_INSN name, load_rsp, fpu, sp, insn:vararg
.global \name, \name\()_insn, \name\()_ret
.type \name, @function
\name:
    push    %rbx
    push    %rbp
    push    %r12
    push    %r13
    push    %r14
    push    %r15
    mov     %rsp, \name\()_sp(%rip)
.ifnb \sp
    mov     %rsp, \sp(%rip)
.endif
    mov     %rsi, \name\()_out(%rip)
.if \fpu
    FPU_LOAD 0, %rdi
.endif
    pushq   REGS_RFLAGS(%rdi)
    popfq
    mov     REGS_GPR(0)(%rdi), %rax
    mov     REGS_GPR(1)(%rdi), %rbx
    mov     REGS_GPR(2)(%rdi), %rcx
    mov     REGS_GPR(3)(%rdi), %rdx
    mov     REGS_GPR(4)(%rdi), %rsi
    mov     REGS_GPR(6)(%rdi), %rbp
    mov     REGS_GPR(8)(%rdi), %r8
    mov     REGS_GPR(9)(%rdi), %r9
    mov     REGS_GPR(10)(%rdi), %r10
    mov     REGS_GPR(11)(%rdi), %r11
    mov     REGS_GPR(12)(%rdi), %r12
    mov     REGS_GPR(13)(%rdi), %r13
    mov     REGS_GPR(14)(%rdi), %r14
    mov     REGS_GPR(15)(%rdi), %r15
.if \load_rsp
    mov     REGS_GPR(7)(%rdi), %rsp
.endif
    mov     REGS_GPR(5)(%rdi), %rdi
\name\()_insn:
    \insn
\name\()_ret:
    mov     %rsp, \name\()_rsp(%rip)
    mov     \name\()_sp(%rip), %rsp
    pushfq
    push    %rax
    mov     \name\()_out(%rip), %rax
    mov     %rbx, REGS_GPR(1)(%rax)
    mov     %rcx, REGS_GPR(2)(%rax)
    mov     %rdx, REGS_GPR(3)(%rax)
    mov     %rsi, REGS_GPR(4)(%rax)
    mov     %rdi, REGS_GPR(5)(%rax)
    mov     %rbp, REGS_GPR(6)(%rax)
    mov     %r8, REGS_GPR(8)(%rax)
    mov     %r9, REGS_GPR(9)(%rax)
    mov     %r10, REGS_GPR(10)(%rax)
    mov     %r11, REGS_GPR(11)(%rax)
    mov     %r12, REGS_GPR(12)(%rax)
    mov     %r13, REGS_GPR(13)(%rax)
    mov     %r14, REGS_GPR(14)(%rax)
    mov     %r15, REGS_GPR(15)(%rax)
    pop     %rbx
    mov     %rbx, REGS_GPR(0)(%rax)
    pop     %rbx
    mov     %rbx, REGS_RFLAGS(%rax)
    mov     \name\()_rsp(%rip), %rbx
    mov     %rbx, REGS_GPR(7)(%rax)
.if \fpu
    FPU_STORE 0, %rax
    FPU_DEFAULTS
.endif
    cld
    pop     %r15
    pop     %r14
    pop     %r13
    pop     %r12
    pop     %rbp
    pop     %rbx
    ret

.pushsection .bss
.balign 8
\name\()_sp:  .skip 8
\name\()_out: .skip 8
\name\()_rsp: .skip 8
.popsection
.endm

/* clang-format on */

#else

#include "types.hpp"
#include <stddef.h>

namespace nova {

// The record's first part (REGS_SIZE bytes): what RAW_INSN loads and stores without fpu.
struct Raw_regs
{
    u64 rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp, r8, r9, r10, r11, r12, r13, r14, r15, rflags;
};

// REGS_GPR(i) is i * 8 for the assembly; here the record's layout agrees with it.
static_assert(REGS_GPR(7) == 7 * 8 && REGS_GPR(15) == 15 * 8 && sizeof(u64) == 8);
static_assert(sizeof(Raw_regs) == REGS_SIZE && offsetof(Raw_regs, rsp) == 7 * sizeof(u64));
static_assert(offsetof(Raw_regs, r15) == 15 * sizeof(u64) && offsetof(Raw_regs, rflags) == REGS_RFLAGS);

}  // namespace nova

#endif
