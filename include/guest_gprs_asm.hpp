/*
 * For the world switches (src/vmrun.S on SVM, src/vmx_entry.S on VMX): the offsets of the
 * general registers in a vCPU's Exc_frame (include/idt.hpp; a static_assert there keeps them
 * true) and the moves of the thirteen registers both switches take from and put back into it.
 * %rdi holds the frame; it and %rax (SVM: in the VMCB) are each switch's own business.
 */
#pragma once

#define F_R15 0
#define F_R14 8
#define F_R13 16
#define F_R12 24
#define F_R11 32
#define F_R10 40
#define F_R9 48
#define F_R8 56
#define F_RBP 64
#define F_RDI 72
#define F_RSI 80
#define F_RDX 88
#define F_RCX 96
#define F_RBX 104
#define F_RAX 112

#ifdef __ASSEMBLER__
// clang-format off
/* Guest registers from the frame at %rdi (all but %rdi and %rax). */
.macro LOAD_GUEST_GPRS
    mov F_R15(%rdi), %r15
    mov F_R14(%rdi), %r14
    mov F_R13(%rdi), %r13
    mov F_R12(%rdi), %r12
    mov F_R11(%rdi), %r11
    mov F_R10(%rdi), %r10
    mov F_R9(%rdi), %r9
    mov F_R8(%rdi), %r8
    mov F_RBP(%rdi), %rbp
    mov F_RSI(%rdi), %rsi
    mov F_RDX(%rdi), %rdx
    mov F_RCX(%rdi), %rcx
    mov F_RBX(%rdi), %rbx
.endm

/* Guest registers into the frame at %rdi (all but %rdi and %rax). */
.macro SAVE_GUEST_GPRS
    mov %r15, F_R15(%rdi)
    mov %r14, F_R14(%rdi)
    mov %r13, F_R13(%rdi)
    mov %r12, F_R12(%rdi)
    mov %r11, F_R11(%rdi)
    mov %r10, F_R10(%rdi)
    mov %r9, F_R9(%rdi)
    mov %r8, F_R8(%rdi)
    mov %rbp, F_RBP(%rdi)
    mov %rsi, F_RSI(%rdi)
    mov %rdx, F_RDX(%rdi)
    mov %rcx, F_RCX(%rdi)
    mov %rbx, F_RBX(%rdi)
.endm
// clang-format on
#endif
