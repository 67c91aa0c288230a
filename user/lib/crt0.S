/*
 * Program entry and portal entry of the SDK runtime.
 *
 * Every SDK stack is a STACK_SIZE block aligned to STACK_SIZE with an Ec_tls
 * (TLS_SIZE bytes) at its top; both values must match nova/runtime.hpp.
 */
#include "nova/regs.h"

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
    REGS_STORE_RIP nova_start_regs
    mov     %rsp, %rsi
    lea     nova_root_stack + STACK_SIZE - TLS_SIZE(%rip), %rsp
    pushfq
    popq    nova_start_regs + REGS_RFLAGS(%rip)
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
    .skip REGS_SIZE
