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
