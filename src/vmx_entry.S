/*
 * int vmx_vmrun(Exc_frame *gprs, u64 *cr2, u64 launched)
 *
 * One guest run on Intel VMX (src/vmx.cpp), with the vCPU's VMCS current. VMX switches only RSP,
 * RIP and RFLAGS of the general registers, so all the others (RAX included) come from and go back
 * to the vCPU's Exc_frame (offsets: include/idt.hpp); CR2 is not switched either and goes through
 * *cr2. HOST_RSP is set here, so the exit (HOST_RIP = vmx_exit) lands on this stack with the two
 * pointers on top. Called with interrupts off (they stay off: external interrupts end the guest
 * through the pin controls whatever the host's IF). Returns 0 after a VM exit, 1 if VMLAUNCH or
 * VMRESUME failed (the VM-instruction error field says why; nothing was switched).
 */
#include "guest_gprs_asm.hpp"
#define VMCS_HOST_RSP 0x6c14

.text
.global vmx_vmrun
.type vmx_vmrun, @function
vmx_vmrun:
    push %rbp
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    push %rdi                       /* the guest's GPRs */
    push %rsi                       /* where its CR2 goes */
    mov $VMCS_HOST_RSP, %eax
    vmwrite %rsp, %rax
    mov (%rsi), %rax
    mov %rax, %cr2
    cmp $0, %rdx                    /* flags survive the movs below */

    LOAD_GUEST_GPRS
    mov F_RAX(%rdi), %rax
    mov F_RDI(%rdi), %rdi
    jne 1f
    vmlaunch
    jmp 2f
1:  vmresume
2:  /* VMfailInvalid or VMfailValid: still on our stack, the guest's values in the registers */
    pop %rsi
    pop %rdi
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    pop %rbp
    mov $1, %eax
    ret

.global vmx_exit
.type vmx_exit, @function
vmx_exit:                           /* the VM exit: RSP = HOST_RSP, interrupts off */
    push %rdi                       /* the guest's rdi */
    mov 16(%rsp), %rdi              /* the frame */
    SAVE_GUEST_GPRS
    mov %rax, F_RAX(%rdi)
    popq F_RDI(%rdi)
    pop %rsi                        /* where the guest's CR2 goes */
    mov %cr2, %rax
    mov %rax, (%rsi)
    add $8, %rsp                    /* the frame pointer */
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    pop %rbp
    xor %eax, %eax
    ret
