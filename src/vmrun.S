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
    mov F_RDI(%rdi), %rdi

    clgi
    sti
    vmload %rax
    vmrun %rax
    vmsave %rax

    push %rdi                       /* the guest's rdi */
    mov 8(%rsp), %rdi               /* the frame */
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
