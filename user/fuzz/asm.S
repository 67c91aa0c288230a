/*
 * The fuzzer's assembly: the raw hypercall that loads and records every
 * register, the try/catch pair that exception replies return through, the
 * park stub, and the faulting instructions (one stub each, docs/testing.md).
 *
 * Record layouts (user/fuzz/fuzz.hpp, struct Raw): words
 *   0 rdi  1 rsi  2 rdx  3 rax  4 r8  5 rbx  6 rbp  7 r9  8 r10
 *   9 r12 10 r13 11 r14 12 r15 13 rflags 14 rcx 15 r11 16 rsp
 * fz_raw loads words 0..13 of `in` (rflags first, by popfq) and stores
 * words 0..15 into `out` right after the syscall.
 */

.text

/* Callee-saved registers of the C caller, pushed around the hypercall. */
.macro SAVE_CALLEE
    push    %rbx
    push    %rbp
    push    %r12
    push    %r13
    push    %r14
    push    %r15
.endm

.macro RESTORE_CALLEE
    pop     %r15
    pop     %r14
    pop     %r13
    pop     %r12
    pop     %rbp
    pop     %rbx
.endm

/* Load words 0..13 of the record at %rdi (rdi last). */
.macro LOAD_IN
    pushq   13*8(%rdi)
    popfq
    mov     1*8(%rdi), %rsi
    mov     2*8(%rdi), %rdx
    mov     3*8(%rdi), %rax
    mov     4*8(%rdi), %r8
    mov     5*8(%rdi), %rbx
    mov     6*8(%rdi), %rbp
    mov     7*8(%rdi), %r9
    mov     8*8(%rdi), %r10
    mov     9*8(%rdi), %r12
    mov     10*8(%rdi), %r13
    mov     11*8(%rdi), %r14
    mov     12*8(%rdi), %r15
    mov     0*8(%rdi), %rdi
.endm

/* Store words 1..15 into the record at %rdi (the caller stores rdi and rsp). */
.macro STORE_OUT
    mov     %rsi, 1*8(%rdi)
    mov     %rdx, 2*8(%rdi)
    mov     %rax, 3*8(%rdi)
    mov     %r8, 4*8(%rdi)
    mov     %rbx, 5*8(%rdi)
    mov     %rbp, 6*8(%rdi)
    mov     %r9, 7*8(%rdi)
    mov     %r10, 8*8(%rdi)
    mov     %r12, 9*8(%rdi)
    mov     %r13, 10*8(%rdi)
    mov     %r14, 11*8(%rdi)
    mov     %r15, 12*8(%rdi)
    mov     %rcx, 14*8(%rdi)
    mov     %r11, 15*8(%rdi)
.endm

/* void fz_raw(const Raw *in, Raw *out): one hypercall with every register from `in`. */
.global fz_raw
.type fz_raw, @function
fz_raw:
    SAVE_CALLEE
    push    %rsi                    /* out */
    LOAD_IN
    syscall
.global fz_raw_ret
fz_raw_ret:
    pushfq
    push    %rdi                    /* status */
    mov     16(%rsp), %rdi          /* out */
    STORE_OUT
    popq    0*8(%rdi)
    popq    13*8(%rdi)
    mov     %rsp, 16*8(%rdi)        /* as at the syscall, or we would not have got here */
    add     $8, %rsp
    RESTORE_CALLEE
    ret
.global fz_raw_end
fz_raw_end:

/*
 * void fz_raw_rsp(const Raw *in, Raw *out): the same with rsp = word 16 of `in` during the
 * hypercall (an odd, unmapped or non-canonical user stack pointer; r11 carries it past LOAD_IN).
 * r15 keeps our own rsp, so word 12 of `out` is our rsp and not compared; the rsp the kernel
 * returned is word 16 (and word 14, rcx, too).
 */
.global fz_raw_rsp
.type fz_raw_rsp, @function
fz_raw_rsp:
    SAVE_CALLEE
    push    %rsi
    push    %rdi
    mov     16*8(%rdi), %r11
    LOAD_IN
    mov     %rsp, %r15
    mov     %r11, %rsp
    syscall
    mov     %rsp, %rcx              /* rcx (= return rip) is not compared here */
    mov     %r15, %rsp
    push    %rdi
    mov     16(%rsp), %rdi          /* out (above the saved in) */
    STORE_OUT
    popq    0*8(%rdi)
    mov     %rcx, 16*8(%rdi)
    add     $16, %rsp
    RESTORE_CALLEE
    ret
.global fz_raw_rsp_end
fz_raw_rsp_end:

/*
 * int fz_try(void (*fn)(u64), u64 arg, Jmp *jb): call fn(arg) and return 0; an exception
 * handler that sends the EC to fz_catch with rdi = jb makes fz_try return 1 instead.
 * Jmp: rbx rbp r12 r13 r14 r15 rsp rip.
 */
.global fz_try
.type fz_try, @function
fz_try:
    mov     %rbx, 0*8(%rdx)
    mov     %rbp, 1*8(%rdx)
    mov     %r12, 2*8(%rdx)
    mov     %r13, 3*8(%rdx)
    mov     %r14, 4*8(%rdx)
    mov     %r15, 5*8(%rdx)
    lea     8(%rsp), %rax
    mov     %rax, 6*8(%rdx)         /* rsp after our return */
    mov     (%rsp), %rax
    mov     %rax, 7*8(%rdx)         /* our return address */
    mov     %rdi, %rax
    mov     %rsi, %rdi
    sub     $8, %rsp                /* 16-byte alignment at the call */
    call    *%rax
    add     $8, %rsp
    xor     %eax, %eax
    ret

/* Entered from an exception reply: rdi = jb. The FPU may hold a pending x87/SSE exception. */
.global fz_catch
.type fz_catch, @function
fz_catch:
    mov     6*8(%rdi), %rsp
    fninit
    ldmxcsr fz_mxcsr_default(%rip)
    mov     0*8(%rdi), %rbx
    mov     1*8(%rdi), %rbp
    mov     2*8(%rdi), %r12
    mov     3*8(%rdi), %r13
    mov     4*8(%rdi), %r14
    mov     5*8(%rdi), %r15
    mov     $1, %eax
    jmp     *7*8(%rdi)

/*
 * Park: reply forever. A local EC answers its caller (and waits for the next call); a global
 * EC without a caller blocks for good (ABI 7.2). Uses no stack.
 */
.global fz_park
.type fz_park, @function
fz_park:
    mov     $1, %edi
    syscall
    jmp     fz_park

/* void fz_park_on(u64 rsp): park with that stack pointer. */
.global fz_park_on
.type fz_park_on, @function
fz_park_on:
    mov     %rdi, %rsp
    jmp     fz_park

/* ---- faulting instructions: fz_f_<name>(u64 arg), expected rip in [fz_f_<name>, _end) ---- */

.macro FAULT name
.global fz_f_\name
.global fz_f_\name\()_end
.type fz_f_\name, @function
fz_f_\name:
.endm

.macro END name
    ret
fz_f_\name\()_end:
.endm

FAULT ud2
    ud2
END ud2

FAULT int3
    int3
END int3

FAULT int4                          /* the #OF gate has DPL 3: a trap with vector 4 */
    int     $4
END int4

FAULT int80                         /* DPL 0 gate: #GP */
    int     $0x80
END int80

FAULT int2                          /* the NMI gate (DPL 0): #GP */
    int     $2
END int2

FAULT icebp                         /* int1: #DB */
    .byte   0xf1
END icebp

FAULT into                          /* invalid in 64-bit mode: #UD */
    .byte   0xce
END into

FAULT lock_nop                      /* #UD */
    .byte   0xf0, 0x90
END lock_nop

FAULT hlt
    hlt
END hlt

FAULT cli
    cli
END cli

FAULT rdmsr
    xor     %ecx, %ecx
    rdmsr
END rdmsr

FAULT mov_cr0
    mov     %cr0, %rax
END mov_cr0

FAULT swapgs
    swapgs
END swapgs

FAULT sysenter
    sysenter
END sysenter

FAULT lgdt
    sub     $16, %rsp
    lgdt    (%rsp)
    add     $16, %rsp
END lgdt

FAULT div0
    xor     %ecx, %ecx
    mov     $1, %eax
    xor     %edx, %edx
    div     %rcx
END div0

FAULT idiv_ovf
    mov     $1, %rax
    shl     $63, %rax
    cqo
    mov     $-1, %rcx
    idiv    %rcx
END idiv_ovf

FAULT in_port                       /* arg = port */
    mov     %edi, %edx
    inb     (%dx), %al
END in_port

FAULT out_port
    mov     %edi, %edx
    outb    %al, (%dx)
END out_port

FAULT read                          /* arg = address */
    mov     (%rdi), %rax
END read

FAULT write                         /* arg = address (never a user address: see fuzz.hpp) */
    mov     %rax, (%rdi)
END write

FAULT jump                          /* arg = target: the fault's rip is the target */
    jmp     *%rdi
END jump

FAULT call                          /* pushes a return address first */
    call    *%rdi
END call

FAULT push_bad_rsp                  /* arg = a bad stack pointer */
    mov     %rsp, %rax
    mov     %rdi, %rsp
    push    %rax
    mov     %rax, %rsp
END push_bad_rsp

FAULT iret_kernel_cs                /* iretq to a kernel code selector: #GP */
    mov     %rsp, %rax
    pushq   $0x23
    push    %rax
    pushfq
    pushq   $0x08
    lea     1f(%rip), %rax
    push    %rax
    iretq
1:  ud2
END iret_kernel_cs

FAULT load_ss_kernel                /* a kernel data selector into ss: #GP */
    mov     $0x10, %eax
    mov     %eax, %ss
END load_ss_kernel

FAULT movaps_unaligned              /* #GP */
    lea     -33(%rsp), %rax
    movaps  %xmm0, (%rax)
END movaps_unaligned

FAULT x87_div0                      /* unmasked zero divide: #MF at the next wait */
    sub     $8, %rsp
    movw    $0x37b, (%rsp)
    fldcw   (%rsp)
    add     $8, %rsp
    fldz
    fld1
    fdivp
    fwait
    fninit
END x87_div0

FAULT sse_div0                      /* unmasked SIMD zero divide: #XM */
    sub     $8, %rsp
    movl    $0x1d80, (%rsp)         /* 0x1f80 without the ZE mask */
    ldmxcsr (%rsp)
    add     $8, %rsp
    xorps   %xmm1, %xmm1
    mov     $1, %eax
    cvtsi2ss %eax, %xmm0
    divss   %xmm1, %xmm0
    ldmxcsr fz_mxcsr_default(%rip)
END sse_div0

FAULT ldmxcsr_reserved              /* reserved MXCSR bits: #GP */
    ldmxcsr fz_mxcsr_bad(%rip)
END ldmxcsr_reserved

FAULT tf_syscall                    /* a hypercall (ec_ctrl yield) entered with TF set */
    pushfq
    orq     $0x100, (%rsp)
    mov     $0x19, %edi
    popfq
    syscall
    pushfq
    andq    $~0x100, (%rsp)
    popfq
END tf_syscall

.section .rodata
fz_mxcsr_default: .long 0x1f80
fz_mxcsr_bad:     .long 0xffffffff

.section .note.GNU-stack, "", @progbits
