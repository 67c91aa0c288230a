/*
 * void svm_vmrun(Exc_frame *gprs, u64 vmcb_phys, u64 host_phys)
 *
 * One guest run on AMD SVM (src/svm.cpp). The guest's GPRs other than RAX and RSP (which are in
 * the VMCB) live in the vCPU's Exc_frame (offsets: include/idt.hpp). Called with interrupts
 * off; returns after the #VMEXIT with the guest's registers saved, the host's FS, GS, TR, LDTR
 * and syscall MSRs back (VMLOAD of this CPU's host area) and GIF set again, interrupts off.
 *
 * GIF stays clear from before the guest's VMLOAD until after the host's: no interrupt, NMI or
 * SMI can arrive while the GS base is the guest's. IF is set for VMRUN (the host's IF is what
 * lets physical interrupts end the guest, with V_INTR_MASKING), harmless while GIF is clear.
 */
#include "guest_gprs_asm.hpp"

.text
.global svm_vmrun
.type svm_vmrun, @function
svm_vmrun:
    push %rbp
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    push %rdx                       /* host area */
    push %rdi                       /* the guest's GPRs */
    mov %rsi, %rax                  /* the VMCB: operand of vmload, vmrun, vmsave */

    LOAD_GUEST_GPRS
    mov F_RDI(%rdi), %rdi

    clgi
    sti
    vmload %rax
    vmrun %rax
.global svm_vmrun_next
svm_vmrun_next:                     /* the host RIP VMRUN saves (src/svm.cpp: host_state_check) */
    vmsave %rax

    push %rdi                       /* the guest's rdi */
    mov 8(%rsp), %rdi               /* the frame */
    SAVE_GUEST_GPRS
    popq F_RDI(%rdi)
    add $8, %rsp                    /* the frame pointer */
    pop %rax                        /* host area */
    vmload %rax
    cli
    stgi

    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    pop %rbp
    ret
