/*
 * Program entry and portal entry of the SDK runtime.
 *
 * Every SDK stack is a STACK_SIZE block aligned to STACK_SIZE with an Ec_tls
 * (TLS_SIZE bytes) at its top; both values must match nova/runtime.hpp.
 */
#define STACK_SIZE 0x4000
#define TLS_SIZE   32

.section .text.start, "ax"
.global _start
.type _start, @function
_start:
    /*
     * ABI 9.4: rsp = HIP address, rdi = boot CPU. The page right below the
     * HIP is the root UTCB, so nothing may be pushed before the switch.
     * First record every register as the kernel left it (nova_start_regs,
     * layout of nova::Start_regs); mov and lea leave RFLAGS alone.
     */
    mov     %rax, nova_start_regs + 0x00(%rip)
    mov     %rbx, nova_start_regs + 0x08(%rip)
    mov     %rcx, nova_start_regs + 0x10(%rip)
    mov     %rdx, nova_start_regs + 0x18(%rip)
    mov     %rsi, nova_start_regs + 0x20(%rip)
    mov     %rdi, nova_start_regs + 0x28(%rip)
    mov     %rbp, nova_start_regs + 0x30(%rip)
    mov     %rsp, nova_start_regs + 0x38(%rip)
    mov     %r8,  nova_start_regs + 0x40(%rip)
    mov     %r9,  nova_start_regs + 0x48(%rip)
    mov     %r10, nova_start_regs + 0x50(%rip)
    mov     %r11, nova_start_regs + 0x58(%rip)
    mov     %r12, nova_start_regs + 0x60(%rip)
    mov     %r13, nova_start_regs + 0x68(%rip)
    mov     %r14, nova_start_regs + 0x70(%rip)
    mov     %r15, nova_start_regs + 0x78(%rip)
    mov     %rsp, %rsi
    lea     nova_root_stack + STACK_SIZE - TLS_SIZE(%rip), %rsp
    pushfq
    popq    nova_start_regs + 0x80(%rip)
    xor     %ebp, %ebp
    call    nova_start              /* (cpu, hip), does not return */
1:  ud2
    jmp     1b

.text
/*
 * Portal entry (ABI 7.1): rdi = portal id, rsp = the rsp of our last reply,
 * somewhere in this EC's stack block. Restart from the top of the block each
 * time so the stack never grows across calls.
 */
.global nova_portal_entry
.type nova_portal_entry, @function
nova_portal_entry:
    mov     %rsp, %rax
    and     $-STACK_SIZE, %rax
    lea     STACK_SIZE - TLS_SIZE(%rax), %rsp
    mov     %rsp, %rsi              /* Ec_tls */
    xor     %ebp, %ebp
    call    nova_portal_dispatch    /* (id, tls) */
    mov     $1, %edi                /* reply (ABI 7.2) */
    syscall
    ud2

.section .note.GNU-stack, "", @progbits

.bss
.balign STACK_SIZE
.global nova_root_stack
nova_root_stack:
    .skip STACK_SIZE

.balign 8
.global nova_start_regs
nova_start_regs:
    .skip 17 * 8
