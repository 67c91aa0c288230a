/*
 * Kernel entry points: exception/interrupt stubs and the syscall entry.
 * Every entry builds an Exc_frame (include/idt.hpp) and calls C++ with a
 * pointer to it. An entry from user mode builds it in the running EC itself
 * (Ec::regs: TSS.rsp0 and %gs:CPU_FRAME point at its end), then moves to the
 * CPU's kernel stack; so switching ECs never copies registers. An entry from
 * kernel mode stays on the kernel stack. GS is swapped only when coming from
 * user mode (CS RPL 3), so kernel-mode faults keep the kernel's GS base.
 *
 * NMI, #DF and #MC are different (paranoid_entry): they can arrive at any
 * instruction, also in the few where the kernel runs with the user's GS base
 * or stack (right after syscall, between swapgs and sysretq/iretq). They run
 * on IST stacks, and they decide whether to swapgs by comparing the GS base
 * MSR with this CPU's Cpu pointer, which sits right above the frame at the
 * top of every IST stack (Cpu::set_ist), never by trusting CS.
 *
 * AC: syscall clears it (FMASK), every other entry clears it with clac where
 * the CPU has SMAP (CLEAR_AC below), so user mode cannot make the kernel run with
 * SMAP suspended. The kernel itself never opens a stac window: it reaches
 * every user-visible page through the direct map (docs/architecture.md).
 */
#include "memory_asm.hpp"

.macro SAVE_GPRS
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
.endm

.macro RESTORE_GPRS
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rbp
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rbx
    pop %rax
.endm

/* Clear RFLAGS.AC where SMAP is on (clac is #UD without SMAP); needs the kernel's GS base. */
.macro CLEAR_AC
    testb $CPU_FLAG_SMAP, %gs:CPU_FLAGS
    jz 9f
    clac
9:
.endm

/* One 16-byte stub per vector; vectors 8, 10-14, 17, 21, 29, 30 get a CPU-pushed error code. */
.section .text
.align 16
.global idt_stubs
idt_stubs:
.set vec, 0
.rept 256
    .align 16
    .if (vec == 8) || (vec >= 10 && vec <= 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    .else
    push $0
    .endif
    push $vec
    .if (vec == 2) || (vec == 8) || (vec == 18)
    jmp paranoid_entry
    .else
    jmp interrupt_common
    .endif
    .set vec, vec + 1
.endr

interrupt_common:
    testb $3, 24(%rsp)              /* CS of the interrupted context */
    jz 1f
    swapgs
    addq $1, %gs:CPU_QS             /* was in user mode: quiescent (include/rcu.hpp) */
1:  cld
    CLEAR_AC
    SAVE_GPRS
    mov %rsp, %rdi
    mov %rsp, %rbx                  /* callee-saved: the frame after the call */
    testb $3, 18*8(%rsp)            /* from user mode: the frame is the EC's, leave it */
    jz 2f
    mov %gs:CPU_KSTACK, %rsp
2:  call handle_interrupt
    mov %rbx, %rsp
.global interrupt_return
interrupt_return:
    RESTORE_GPRS
    add $16, %rsp                   /* vector, error */
    testb $3, 8(%rsp)
    jz 2f
    swapgs
2:  iretq

/*
 * NMI, #DF, #MC (IST stacks, include/idt.hpp). Registers first, then the GS
 * base: equal to the Cpu pointer above the frame = the kernel's already, else
 * it is the user's (from user mode, or one of the instructions around
 * syscall/sysretq/iretq) and is swapped, and swapped back on the way out.
 * rbx (callee-saved) remembers which. An NMI is handled on its IST stack and
 * returns where it came from, never schedules. A #MC from user mode is an
 * event of the EC (ABI 10.2): its frame moves into the EC and it continues as
 * an ordinary exception from user mode; any other one panics (handle_paranoid).
 */
paranoid_entry:
    cld
    SAVE_GPRS
    mov $0xc0000101, %ecx           /* IA32_GS_BASE */
    rdmsr
    shl $32, %rdx
    or %rax, %rdx
    xor %ebx, %ebx
    cmp %rdx, 22*8(%rsp)            /* the Cpu pointer right above the frame */
    je 1f
    swapgs
    mov $1, %ebx
1:  CLEAR_AC
    cmpq $18, 15*8(%rsp)            /* #MC ... */
    jne 2f
    testb $3, 18*8(%rsp)            /* ... from user mode (CS pushed by the CPU) */
    jnz mc_from_user
2:  mov %rsp, %rdi
    mov %ebx, %esi
    call handle_paranoid
    test %ebx, %ebx
    jz 3f
    swapgs
3:  RESTORE_GPRS
    add $16, %rsp                   /* vector, error */
    iretq

/* The frame becomes the EC's (Ec::regs, ends at %gs:CPU_FRAME); then as interrupt_common. */
mc_from_user:
    addq $1, %gs:CPU_QS
    mov %rsp, %rsi
    mov %gs:CPU_FRAME, %rdi
    sub $22*8, %rdi
    mov %rdi, %rbx
    mov $22, %ecx
    rep movsq
    mov %rbx, %rdi
    mov %gs:CPU_KSTACK, %rsp
    call handle_interrupt
    mov %rbx, %rsp
    jmp interrupt_return

/*
 * syscall: RCX = user RIP, R11 = user RFLAGS (discarded, ABI 1.3). Build an
 * iret-shaped frame so exception and syscall paths share Exc_frame.
 */
.global syscall_entry
syscall_entry:
    swapgs
    mov %rsp, %gs:CPU_USER_RSP
    mov %gs:CPU_FRAME, %rsp         /* the running EC's frame (Ec::regs) */
    addq $1, %gs:CPU_QS             /* was in user mode: quiescent (include/rcu.hpp) */
    push $0x23                      /* ss */
    push %gs:CPU_USER_RSP           /* rsp */
    push $0x202                     /* rflags */
    push $0x2b                      /* cs */
    push %rcx                       /* rip */
    push $0                         /* error */
    push $-1                        /* vector: syscall */
    SAVE_GPRS
    mov %rsp, %rbx                  /* callee-saved: the frame after the calls */
    mov %edi, %eax
    mov %rsp, %rdi
    mov %gs:CPU_KSTACK, %rsp
    and $0xf, %eax
    cmp $1, %eax                    /* call or reply: the IPC fast paths */
    ja 2f
    call ipc_fast                   /* returns when the general path is needed */
    jmp 3f
2:  cmp $0xc, %eax                  /* sm_ctrl: the semaphore fast path */
    jne 1f
    call sm_fast
3:  mov %rbx, %rdi
1:  call handle_syscall
    mov %rbx, %rsp
.global syscall_return
syscall_return:
    /*
     * A non-canonical RIP (a portal IP or a reply's RIP is any value user mode chose) would
     * make sysretq or iretq fault in kernel mode with the user GS base: kill the EC instead
     * (ABI 1.1, 10.6). The frame at rsp is the running EC's.
     */
    mov 17*8(%rsp), %rcx
    mov %rcx, %rax
    sar $47, %rax
    add $1, %rax
    cmp $1, %rax
    ja 1f
    RESTORE_GPRS
    mov 2*8+0*8(%rsp), %rcx         /* rip */
    mov $0x200, %r11
    mov 2*8+3*8(%rsp), %rsp         /* user rsp */
    swapgs
    sysretq
1:  mov %rsp, %rdi
    mov %gs:CPU_KSTACK, %rsp
    call kill_noncanonical          /* does not return */
    ud2

/* Return to user mode with the hypercall frame at rdi (sysretq): the fast paths' exit. */
.global ret_syscall
ret_syscall:
    mov %rdi, %rsp
    jmp syscall_return

/*
 * Return to user mode with the frame at rdi (an EC's Ec::regs): a frame saved by a hypercall
 * (vector ~0) leaves with sysretq, any other with iretq.
 */
.global ret_user
ret_user:
    mov %rdi, %rsp
    cmpq $-1, 15*8(%rsp)
    je syscall_return
    mov 17*8(%rsp), %rax            /* iretq to a non-canonical RIP: killed as above */
    sar $47, %rax
    add $1, %rax
    cmp $1, %rax
    ja 1b
    jmp interrupt_return
