/*
 * The test guest of user/vmtest (docs/testing.md, "vmtest"): 64-bit code that the VMM copies to
 * guest-physical GUEST_CODE and starts in long mode with its own page tables (identity map of
 * the first GiB), GDT and IDT, all set up by the VMM. Position independent (only rip-relative
 * references and absolute guest-physical addresses of the data page). It walks through the
 * steps one by one, %r15 holding the step number, so that the VMM knows what each exit must be;
 * a check that fails in the guest ends in `out %al, $0xee` with the step in %r15.
 *
 * Guest-physical layout (user/vmtest/main.cpp): 0x1000 PML4, 0x2000 PDPT, 0x3000 PD,
 * 0x4000 data, 0x5000 GDT, 0x6000 IDT, 0x7000..0x8000 stack, 0x10000 this code.
 */
#define DATA_VECTOR 0x4000
#define DATA_ERROR 0x4008
#define DATA_TSC 0x4020
#define DATA_XSAVE 0x4030
#define DATA_RECALLED 0x4040
#define DATA_STRING 0x4100
#define DATA_LOOPS 0x4200

.text
.code64
.global guest_start, guest_end, guest_gp, guest_vec30, guest_vec31, guest_nmi
guest_start:
    mov $1, %r15d

    /* 1: CPUID leaf 0x4711; the VMM answers a, b, c, d. XMM0 keeps its value across the exit
       (the VMM's handler runs with its own FPU state). */
    movabs $0x0123456789abcdef, %rax
    movq %rax, %xmm0
    mov $0x4711, %eax
    xor %ecx, %ecx
    cpuid
    movq %xmm0, %rsi
    movabs $0x0123456789abcdef, %rdi
    cmp %rdi, %rsi
    jne fail
    cmp $0xa, %eax
    jne fail
    cmp $0xb, %ebx
    jne fail
    cmp $0xc, %ecx
    jne fail
    cmp $0xd, %edx
    jne fail
    inc %r15d

    /* 2: OUT of a byte to port 0x80. */
    mov $0x5a, %al
    out %al, $0x80
    inc %r15d

    /* 3: IN of a byte from port 0x81; the VMM answers 0xa5. */
    in $0x81, %al
    cmp $0xa5, %al
    jne fail
    inc %r15d

    /* 4: REP OUTSB of "abc" to port 0x82; the VMM emulates it. */
    mov $DATA_STRING, %esi
    mov $3, %ecx
    mov $0x82, %dx
    rep outsb
    test %ecx, %ecx
    jne fail
    cmp $DATA_STRING + 3, %esi
    jne fail
    inc %r15d

    /* 5: RDMSR 0x12345; the VMM answers 0xdead:0xbeef. */
    mov $0x12345, %ecx
    rdmsr
    cmp $0xbeef, %eax
    jne fail
    cmp $0xdead, %edx
    jne fail
    inc %r15d

    /* 6: WRMSR 0x12346 = 2:1. */
    mov $0x12346, %ecx
    mov $1, %eax
    mov $2, %edx
    wrmsr
    inc %r15d

    /* 7: a read of guest-physical 2 MiB, where nothing is mapped: the VMM maps a page there. */
    mov $0x200000, %ebx
    mov (%rbx), %rax
    movabs $0x1122334455667788, %rcx
    cmp %rcx, %rax
    jne fail
    inc %r15d

    /* 8: HLT; the VMM injects #GP with error code 0x1234 behind it. */
    movq $0, DATA_VECTOR
    hlt
    out %al, $0xe2
    inc %r15d

    /* 9: HLT with interrupts on; the VMM injects external interrupt 0x30. */
    movq $0, DATA_VECTOR
    sti
    hlt
    cli
    out %al, $0xe2
    inc %r15d

    /* 10: HLT; the VMM injects an NMI. */
    movq $0, DATA_VECTOR
    hlt
    out %al, $0xe2
    inc %r15d

    /* 11: HLT; the VMM injects software interrupt 0x30 (INT n, type 4). */
    movq $0, DATA_VECTOR
    hlt
    out %al, $0xe1
    inc %r15d

    /* 12: the VMM asks for an interrupt window while interrupts are off; it opens after STI. */
    movq $0, DATA_VECTOR
    out %al, $0xe3
    nop
    sti
    nop
    nop
    cli
    out %al, $0xe2
    inc %r15d

    /* 13: the VMM adds 2^50 to the TSC offset; the guest reads the TSC. */
    out %al, $0xe4
    rdtsc
    shl $32, %rdx
    or %rdx, %rax
    mov %rax, DATA_TSC
    out %al, $0xe5
    inc %r15d

    /* 14: XSETBV of x87|SSE (where the host has XSAVE): the VMM validates and sets it. */
    cmpq $0, DATA_XSAVE
    je 1f
    xor %ecx, %ecx
    mov $3, %eax
    xor %edx, %edx
    xsetbv
    xor %ecx, %ecx
    xgetbv
    cmp $3, %eax
    jne fail
1:  inc %r15d

    /* 15: spin until the VMM, recalled from another EC, sets the flag. */
    movq $0, DATA_RECALLED
    out %al, $0xe6
2:  pause
    cmpq $0, DATA_RECALLED
    je 2b
    inc %r15d

    /* 16: the VMM replies with a state the CPU refuses, then repairs it. */
    out %al, $0xe7
    inc %r15d

    /* 17: the VMM revokes the page it mapped at 2 MiB: the next read faults again, and it maps it again. */
    out %al, $0xea
    mov $0x200000, %ebx
    mov (%rbx), %rax
    movabs $0x1122334455667788, %rcx
    cmp %rcx, %rax
    jne fail
    inc %r15d

    /* 18: an interrupt injected while the stack is at an unmapped page: a nested page fault
       during its delivery, with the event pending; the VMM maps the page, the kernel injects
       the event again. */
    movq $0, DATA_VECTOR
    mov %rsp, %rbx
    mov $0x210000, %esp
    hlt
    mov %rbx, %rsp
    out %al, $0xe2
    inc %r15d

    /* 19: port 0x80 given to the guest (a G-bit I/O delegation): OUT no longer exits; after the
       revoke it does again. */
    out %al, $0xeb
    mov $0x11, %al
    out %al, $0x80
    out %al, $0xec
    out %al, $0x80
    out %al, $0xed
    inc %r15d

    /* 20: the exit benchmark: DATA_LOOPS CPUIDs, TSC before and after. */
    out %al, $0xe8
    mov DATA_LOOPS, %r14
    rdtsc
    shl $32, %rdx
    or %rdx, %rax
    mov %rax, %r13
3:  mov $0x4712, %eax
    cpuid
    dec %r14
    jnz 3b
    rdtsc
    shl $32, %rdx
    or %rdx, %rax
    sub %r13, %rax
    mov %rax, DATA_TSC
    out %al, $0xe9
    inc %r15d

    /* 21: done; then a triple fault (no IDT) ends in a shutdown exit. */
    out %al, $0xef
    lidt null_idt(%rip)
    int3
    jmp .

fail:
    out %al, $0xee
    hlt
    jmp fail

/* #GP: record vector and error code. */
guest_gp:
    movq $13, DATA_VECTOR
    popq DATA_ERROR
    iretq
guest_vec30:
    movq $0x30, DATA_VECTOR
    iretq
guest_vec31:
    movq $0x31, DATA_VECTOR
    iretq
guest_nmi:
    movq $2, DATA_VECTOR
    iretq

.balign 8
null_idt:
    .word 0
    .quad 0
guest_end:

.section .note.GNU-stack, "", @progbits
