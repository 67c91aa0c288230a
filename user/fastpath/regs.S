/*
 * Register-exact hypercalls and portal entries of the fast-path test
 * (layout of Frame in frame.h). Between the instruction under test and the
 * point where RFLAGS is stored only mov and lea run, so every recorded
 * value is what the kernel left behind.
 */
#include "frame.h"

.text

/*
 * fp_call_root/fp_call_nested(const Frame *in, Frame *out): load everything
 * from *in (rsp and the FPU part included), execute syscall, store
 * everything into *out (RAW_INSN, nova/regs.h). Each copy has its own save
 * slots, so two may be in flight at once (the root's call and a callee's
 * nested call).
 */
RAW_INSN fp_call_root, 1, 1, , syscall
RAW_INSN fp_call_nested, 1, 1, , syscall
RAW_INSN fp_ud2_root, 1, 1, , ud2       /* the #UD handler resumes at fp_ud2_root_ret */

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
    REGS_STORE_RIP fp_cin+\n*F_SIZE
    lea     fp_stack + (\n+1)*CALLEE_STACK(%rip), %rsp
    pushfq
    popq    fp_cin + \n*F_SIZE + REGS_RFLAGS(%rip)
    FPU_STORE fp_cin+\n*F_SIZE, %rip
    FPU_DEFAULTS
    cld
    xor     %ebp, %ebp
    mov     $\n, %edi
    call    fp_callee_work
    FPU_LOAD fp_cout+\n*F_SIZE, %rip
    pushq   fp_cout + \n*F_SIZE + REGS_RFLAGS(%rip)
    popfq
    REGS_LOAD_RIP fp_cout+\n*F_SIZE
    mov     fp_cout + \n*F_SIZE + REGS_GPR(5)(%rip), %rdi
    syscall
    ud2
.endm

ENTRY 1
ENTRY 2
ENTRY 3

.section .note.GNU-stack, "", @progbits
