/*
 * Register-exact hypercalls and portal entries of the fast-path test
 * (layout of Frame in frame.h). Between the instruction under test and the
 * point where RFLAGS is stored only mov and lea run, so every recorded
 * value is what the kernel left behind.
 */
#include "frame.h"

.text

/* xmm0-15, MXCSR and the x87 control word from/to the Frame at \disp(\reg). */
.macro LOAD_FPU disp, reg
    .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    movdqu  \disp+F_XMM(\i)(\reg), %xmm\i
    .endr
    ldmxcsr \disp+F_MXCSR(\reg)
    fldcw   \disp+F_FCW(\reg)
.endm

.macro STORE_FPU disp, reg
    .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    movdqu  %xmm\i, \disp+F_XMM(\i)(\reg)
    .endr
    stmxcsr \disp+F_MXCSR(\reg)
    fnstcw  \disp+F_FCW(\reg)
.endm

/* Back to the state compiled code expects: MXCSR and FCW at their defaults, DF clear. */
.macro SANE_STATE
    cld
    ldmxcsr fp_mxcsr_default(%rip)
    fninit
.endm

/*
 * name(const Frame *in, Frame *out): load everything from *in, execute
 * \insn (at name_insn), store everything into *out. Callee-saved registers
 * and rsp go to this copy's own slots, so two copies may be in flight at
 * once (the root's call and a callee's nested call).
 */
.macro RAWCALL name, insn
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
    mov     %rsi, \name\()_out(%rip)
    LOAD_FPU 0, %rdi
    pushq   F_RFLAGS(%rdi)
    popfq
    mov     F_GPR(0)(%rdi), %rax
    mov     F_GPR(1)(%rdi), %rbx
    mov     F_GPR(2)(%rdi), %rcx
    mov     F_GPR(3)(%rdi), %rdx
    mov     F_GPR(4)(%rdi), %rsi
    mov     F_GPR(6)(%rdi), %rbp
    mov     F_GPR(8)(%rdi), %r8
    mov     F_GPR(9)(%rdi), %r9
    mov     F_GPR(10)(%rdi), %r10
    mov     F_GPR(11)(%rdi), %r11
    mov     F_GPR(12)(%rdi), %r12
    mov     F_GPR(13)(%rdi), %r13
    mov     F_GPR(14)(%rdi), %r14
    mov     F_GPR(15)(%rdi), %r15
    mov     F_GPR(7)(%rdi), %rsp
    mov     F_GPR(5)(%rdi), %rdi
\name\()_insn:
    \insn
\name\()_ret:
    mov     %rsp, \name\()_rsp(%rip)
    mov     \name\()_sp(%rip), %rsp
    pushfq
    push    %rax
    mov     \name\()_out(%rip), %rax
    mov     %rbx, F_GPR(1)(%rax)
    mov     %rcx, F_GPR(2)(%rax)
    mov     %rdx, F_GPR(3)(%rax)
    mov     %rsi, F_GPR(4)(%rax)
    mov     %rdi, F_GPR(5)(%rax)
    mov     %rbp, F_GPR(6)(%rax)
    mov     %r8, F_GPR(8)(%rax)
    mov     %r9, F_GPR(9)(%rax)
    mov     %r10, F_GPR(10)(%rax)
    mov     %r11, F_GPR(11)(%rax)
    mov     %r12, F_GPR(12)(%rax)
    mov     %r13, F_GPR(13)(%rax)
    mov     %r14, F_GPR(14)(%rax)
    mov     %r15, F_GPR(15)(%rax)
    pop     %rbx
    mov     %rbx, F_GPR(0)(%rax)
    pop     %rbx
    mov     %rbx, F_RFLAGS(%rax)
    mov     \name\()_rsp(%rip), %rbx
    mov     %rbx, F_GPR(7)(%rax)
    STORE_FPU 0, %rax
    SANE_STATE
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

RAWCALL fp_call_root, syscall
RAWCALL fp_call_nested, syscall
RAWCALL fp_ud2_root, ud2            /* the #UD handler resumes at fp_ud2_root_ret */

/*
 * Portal entry of owner \n (ABI 7.1 callee entry state): record everything
 * with rip-relative stores (rsp is whatever the previous reply left, not
 * necessarily a stack), switch to fp_stack[\n], let fp_callee_work(\n)
 * look at the message and prepare the reply, then load fp_cout[\n] in full
 * (rsp and RFLAGS included; rdi = the reply's identifier word) and reply.
 */
.macro ENTRY n
.global fp_entry\n
.type fp_entry\n, @function
fp_entry\n:
    mov     %rax, fp_cin + \n*F_SIZE + F_GPR(0)(%rip)
    mov     %rbx, fp_cin + \n*F_SIZE + F_GPR(1)(%rip)
    mov     %rcx, fp_cin + \n*F_SIZE + F_GPR(2)(%rip)
    mov     %rdx, fp_cin + \n*F_SIZE + F_GPR(3)(%rip)
    mov     %rsi, fp_cin + \n*F_SIZE + F_GPR(4)(%rip)
    mov     %rdi, fp_cin + \n*F_SIZE + F_GPR(5)(%rip)
    mov     %rbp, fp_cin + \n*F_SIZE + F_GPR(6)(%rip)
    mov     %rsp, fp_cin + \n*F_SIZE + F_GPR(7)(%rip)
    mov     %r8, fp_cin + \n*F_SIZE + F_GPR(8)(%rip)
    mov     %r9, fp_cin + \n*F_SIZE + F_GPR(9)(%rip)
    mov     %r10, fp_cin + \n*F_SIZE + F_GPR(10)(%rip)
    mov     %r11, fp_cin + \n*F_SIZE + F_GPR(11)(%rip)
    mov     %r12, fp_cin + \n*F_SIZE + F_GPR(12)(%rip)
    mov     %r13, fp_cin + \n*F_SIZE + F_GPR(13)(%rip)
    mov     %r14, fp_cin + \n*F_SIZE + F_GPR(14)(%rip)
    mov     %r15, fp_cin + \n*F_SIZE + F_GPR(15)(%rip)
    lea     fp_stack + (\n+1)*CALLEE_STACK(%rip), %rsp
    pushfq
    popq    fp_cin + \n*F_SIZE + F_RFLAGS(%rip)
    STORE_FPU fp_cin+\n*F_SIZE, %rip
    SANE_STATE
    xor     %ebp, %ebp
    mov     $\n, %edi
    call    fp_callee_work
    LOAD_FPU fp_cout+\n*F_SIZE, %rip
    pushq   fp_cout + \n*F_SIZE + F_RFLAGS(%rip)
    popfq
    mov     fp_cout + \n*F_SIZE + F_GPR(0)(%rip), %rax
    mov     fp_cout + \n*F_SIZE + F_GPR(1)(%rip), %rbx
    mov     fp_cout + \n*F_SIZE + F_GPR(2)(%rip), %rcx
    mov     fp_cout + \n*F_SIZE + F_GPR(3)(%rip), %rdx
    mov     fp_cout + \n*F_SIZE + F_GPR(4)(%rip), %rsi
    mov     fp_cout + \n*F_SIZE + F_GPR(6)(%rip), %rbp
    mov     fp_cout + \n*F_SIZE + F_GPR(8)(%rip), %r8
    mov     fp_cout + \n*F_SIZE + F_GPR(9)(%rip), %r9
    mov     fp_cout + \n*F_SIZE + F_GPR(10)(%rip), %r10
    mov     fp_cout + \n*F_SIZE + F_GPR(11)(%rip), %r11
    mov     fp_cout + \n*F_SIZE + F_GPR(12)(%rip), %r12
    mov     fp_cout + \n*F_SIZE + F_GPR(13)(%rip), %r13
    mov     fp_cout + \n*F_SIZE + F_GPR(14)(%rip), %r14
    mov     fp_cout + \n*F_SIZE + F_GPR(15)(%rip), %r15
    mov     fp_cout + \n*F_SIZE + F_GPR(7)(%rip), %rsp
    mov     fp_cout + \n*F_SIZE + F_GPR(5)(%rip), %rdi
    syscall
    ud2
.endm

ENTRY 1
ENTRY 2
ENTRY 3

.section .rodata
.balign 4
fp_mxcsr_default:
    .long   0x1f80

.section .note.GNU-stack, "", @progbits
