/*
 * Register-level pieces of the conformance suite: the raw hypercall and
 * exception harness (every register set before, stored right after), a
 * portal entry that records the callee's entry registers, single-access
 * probes with fix-up addresses for the exception portals, stackless ECs for
 * the every-CPU test, and x87/SSE load/store. Layouts match Raw_regs,
 * Cpu_probe and Fpu_image in suite.hpp.
 */

#define R_RAX    0x00
#define R_RBX    0x08
#define R_RCX    0x10
#define R_RDX    0x18
#define R_RSI    0x20
#define R_RDI    0x28
#define R_RBP    0x30
#define R_RSP    0x38
#define R_R8     0x40
#define R_R9     0x48
#define R_R10    0x50
#define R_R11    0x58
#define R_R12    0x60
#define R_R13    0x68
#define R_R14    0x70
#define R_R15    0x78
#define R_RFLAGS 0x80

.text

/*
 * raw_<name>(const Raw_regs *in, Raw_regs *out): load all registers but rsp
 * from `in` (RFLAGS with popfq), execute the instruction, then store every
 * register, rsp and RFLAGS into `out`. Only mov/lea run between the
 * instruction and pushfq, so RFLAGS is what the instruction left.
 */
.macro RAW name, insn:vararg
.global raw_\name, raw_\name\()_insn, raw_\name\()_ret
.type raw_\name, @function
raw_\name:
    push    %rbx
    push    %rbp
    push    %r12
    push    %r13
    push    %r14
    push    %r15
    mov     %rsp, raw_saved_rsp(%rip)
    mov     %rsi, raw_out(%rip)
    pushq   R_RFLAGS(%rdi)
    popfq
    mov     R_RAX(%rdi), %rax
    mov     R_RBX(%rdi), %rbx
    mov     R_RCX(%rdi), %rcx
    mov     R_RDX(%rdi), %rdx
    mov     R_RSI(%rdi), %rsi
    mov     R_RBP(%rdi), %rbp
    mov     R_R8(%rdi), %r8
    mov     R_R9(%rdi), %r9
    mov     R_R10(%rdi), %r10
    mov     R_R11(%rdi), %r11
    mov     R_R12(%rdi), %r12
    mov     R_R13(%rdi), %r13
    mov     R_R14(%rdi), %r14
    mov     R_R15(%rdi), %r15
    mov     R_RDI(%rdi), %rdi
raw_\name\()_insn:
    \insn
raw_\name\()_ret:
    mov     %rsp, raw_after_rsp(%rip)
    mov     raw_saved_rsp(%rip), %rsp
    pushfq
    push    %rax
    mov     raw_out(%rip), %rax
    mov     %rbx, R_RBX(%rax)
    mov     %rcx, R_RCX(%rax)
    mov     %rdx, R_RDX(%rax)
    mov     %rsi, R_RSI(%rax)
    mov     %rdi, R_RDI(%rax)
    mov     %rbp, R_RBP(%rax)
    mov     %r8, R_R8(%rax)
    mov     %r9, R_R9(%rax)
    mov     %r10, R_R10(%rax)
    mov     %r11, R_R11(%rax)
    mov     %r12, R_R12(%rax)
    mov     %r13, R_R13(%rax)
    mov     %r14, R_R14(%rax)
    mov     %r15, R_R15(%rax)
    pop     %rbx
    mov     %rbx, R_RAX(%rax)
    pop     %rbx
    mov     %rbx, R_RFLAGS(%rax)
    mov     raw_after_rsp(%rip), %rbx
    mov     %rbx, R_RSP(%rax)
    cld
    pop     %r15
    pop     %r14
    pop     %r13
    pop     %r12
    pop     %rbp
    pop     %rbx
    ret
.endm

RAW syscall, syscall
RAW int3, int3
RAW ud2, ud2
RAW div, divq %r10                      /* #DE with r10 = 0 (3 bytes) */
RAW hlt, hlt                            /* #GP(0) in user mode (1 byte) */

/*
 * Where a kernel that wrongly applied a handler's scribbled UTCB would send
 * raw_int3 (G.112): note it and store the registers as they are.
 */
.global raw_bad_landing
raw_bad_landing:
    movq    $1, raw_bad_landing_hit(%rip)
    jmp     raw_int3_ret

/*
 * Portal entry with a register record (7.1 callee entry state): store every
 * register into pe_in, count, load pe_out (rsp included; rdi becomes the
 * reply's identifier word) and reply. Needs no stack.
 */
.global pe_entry
.type pe_entry, @function
pe_entry:
    mov     %rax, pe_in + R_RAX(%rip)
    mov     %rbx, pe_in + R_RBX(%rip)
    mov     %rcx, pe_in + R_RCX(%rip)
    mov     %rdx, pe_in + R_RDX(%rip)
    mov     %rsi, pe_in + R_RSI(%rip)
    mov     %rdi, pe_in + R_RDI(%rip)
    mov     %rbp, pe_in + R_RBP(%rip)
    mov     %rsp, pe_in + R_RSP(%rip)
    mov     %r8, pe_in + R_R8(%rip)
    mov     %r9, pe_in + R_R9(%rip)
    mov     %r10, pe_in + R_R10(%rip)
    mov     %r11, pe_in + R_R11(%rip)
    mov     %r12, pe_in + R_R12(%rip)
    mov     %r13, pe_in + R_R13(%rip)
    mov     %r14, pe_in + R_R14(%rip)
    mov     %r15, pe_in + R_R15(%rip)
    lock incq pe_count(%rip)
    mov     pe_out + R_RAX(%rip), %rax
    mov     pe_out + R_RBX(%rip), %rbx
    mov     pe_out + R_RCX(%rip), %rcx
    mov     pe_out + R_RDX(%rip), %rdx
    mov     pe_out + R_RSI(%rip), %rsi
    mov     pe_out + R_RBP(%rip), %rbp
    mov     pe_out + R_R8(%rip), %r8
    mov     pe_out + R_R9(%rip), %r9
    mov     pe_out + R_R10(%rip), %r10
    mov     pe_out + R_R11(%rip), %r11
    mov     pe_out + R_R12(%rip), %r12
    mov     pe_out + R_R13(%rip), %r13
    mov     pe_out + R_R14(%rip), %r14
    mov     pe_out + R_R15(%rip), %r15
    mov     pe_out + R_RSP(%rip), %rsp
    mov     $1, %edi                    /* reply (7.2), no semaphore */
    syscall
    ud2

/*
 * Stackless ECs for the every-CPU test (H.every-cpu). cpu_probe_start is the
 * startup portal's entry in a local EC whose stack pointer is its own UTCB:
 * it replies rip = cpu_probe_entry (mtd RIP_LEN) and leaves rsp alone.
 * cpu_probe_entry runs in the global EC with rsp = its Cpu_probe record
 * (suite.hpp; never used as a stack): it stores CPUID leaves 0, 1 and 0xb,
 * marks the record, ups the record's semaphore and parks.
 */
#define P_SM     0x00
#define P_LEAF0  0x08
#define P_LEAF1  0x10
#define P_X2APIC 0x18
#define P_RAN    0x20

.global cpu_probe_start
.type cpu_probe_start, @function
cpu_probe_start:
    lea     cpu_probe_entry(%rip), %rax
    mov     %rax, 0x30(%rsp)            /* UTCB rip */
    movq    $8, 0x20(%rsp)              /* UTCB mtd = RIP_LEN */
    mov     $1, %edi                    /* reply */
    syscall
    ud2

.global cpu_probe_entry
.type cpu_probe_entry, @function
cpu_probe_entry:
    xor     %eax, %eax
    xor     %ecx, %ecx
    cpuid
    mov     %rax, P_LEAF0(%rsp)
    mov     $1, %eax
    xor     %ecx, %ecx
    cpuid
    mov     %rbx, P_LEAF1(%rsp)
    cmpq    $0xb, P_LEAF0(%rsp)
    jb      1f
    mov     $0xb, %eax
    xor     %ecx, %ecx
    cpuid
    mov     %rdx, P_X2APIC(%rsp)
1:  movq    $1, P_RAN(%rsp)
    mov     P_SM(%rsp), %rdi
    shl     $8, %rdi
    or      $0xc, %rdi                  /* sm_ctrl up */
    syscall
2:  mov     $1, %edi                    /* reply without a caller: park */
    syscall
    jmp     2b

/* Reply for good: a local EC answers its caller, a global EC parks (7.2). */
.global abort_stub
.type abort_stub, @function
abort_stub:
    mov     $1, %edi
    syscall
    jmp     abort_stub

/*
 * Probes: return 1 when the access worked, 0 when it faulted and the
 * exception portal moved rip to the fix-up (probe_fixups below).
 */
.global probe_read64
.type probe_read64, @function
probe_read64:                           /* (const void *addr, u64 *out) */
.Lread64:
    mov     (%rdi), %rax
    mov     %rax, (%rsi)
    mov     $1, %eax
    ret
.Lread64_fix:
    xor     %eax, %eax
    ret

.global probe_write8
.type probe_write8, @function
probe_write8:                           /* (void *addr, u8 value) */
.Lwrite8:
    movb    %sil, (%rdi)
    mov     $1, %eax
    ret
.Lwrite8_fix:
    xor     %eax, %eax
    ret

.global probe_in8
.type probe_in8, @function
probe_in8:                              /* (u16 port) */
    mov     %edi, %edx
.Lin8:
    inb     %dx, %al
    mov     $1, %eax
    ret
.Lin8_fix:
    xor     %eax, %eax
    ret

.global probe_out8
.type probe_out8, @function
probe_out8:                             /* (u16 port, u8 value) */
    mov     %edi, %edx
    mov     %esi, %eax
.Lout8:
    outb    %al, %dx
    mov     $1, %eax
    ret
.Lout8_fix:
    xor     %eax, %eax
    ret

/* x87/SSE state (Fpu_image): xmm0-15 at 0, MXCSR at 0x100, FCW at 0x104, st0 (double) at 0x108. */
.global fpu_load
.type fpu_load, @function
fpu_load:
    movdqu  0x00(%rdi), %xmm0
    movdqu  0x10(%rdi), %xmm1
    movdqu  0x20(%rdi), %xmm2
    movdqu  0x30(%rdi), %xmm3
    movdqu  0x40(%rdi), %xmm4
    movdqu  0x50(%rdi), %xmm5
    movdqu  0x60(%rdi), %xmm6
    movdqu  0x70(%rdi), %xmm7
    movdqu  0x80(%rdi), %xmm8
    movdqu  0x90(%rdi), %xmm9
    movdqu  0xa0(%rdi), %xmm10
    movdqu  0xb0(%rdi), %xmm11
    movdqu  0xc0(%rdi), %xmm12
    movdqu  0xd0(%rdi), %xmm13
    movdqu  0xe0(%rdi), %xmm14
    movdqu  0xf0(%rdi), %xmm15
    ldmxcsr 0x100(%rdi)
    fninit
    fldcw   0x104(%rdi)
    fldl    0x108(%rdi)
    ret

.global fpu_store
.type fpu_store, @function
fpu_store:
    movdqu  %xmm0, 0x00(%rdi)
    movdqu  %xmm1, 0x10(%rdi)
    movdqu  %xmm2, 0x20(%rdi)
    movdqu  %xmm3, 0x30(%rdi)
    movdqu  %xmm4, 0x40(%rdi)
    movdqu  %xmm5, 0x50(%rdi)
    movdqu  %xmm6, 0x60(%rdi)
    movdqu  %xmm7, 0x70(%rdi)
    movdqu  %xmm8, 0x80(%rdi)
    movdqu  %xmm9, 0x90(%rdi)
    movdqu  %xmm10, 0xa0(%rdi)
    movdqu  %xmm11, 0xb0(%rdi)
    movdqu  %xmm12, 0xc0(%rdi)
    movdqu  %xmm13, 0xd0(%rdi)
    movdqu  %xmm14, 0xe0(%rdi)
    movdqu  %xmm15, 0xf0(%rdi)
    stmxcsr 0x100(%rdi)
    fnstcw  0x104(%rdi)
    fstpl   0x108(%rdi)
    fninit                              /* leave the default state behind */
    pushq   $0x1f80
    ldmxcsr (%rsp)
    add     $8, %rsp
    ret

.section .rodata
.balign 8
.global probe_fixups, probe_fixups_end
probe_fixups:
    .quad   .Lread64, .Lread64_fix
    .quad   .Lwrite8, .Lwrite8_fix
    .quad   .Lin8, .Lin8_fix
    .quad   .Lout8, .Lout8_fix
probe_fixups_end:

.bss
.balign 8
.global raw_saved_rsp
raw_saved_rsp:  .skip 8
raw_after_rsp:  .skip 8
raw_out:        .skip 8
.global raw_bad_landing_hit, pe_in, pe_out, pe_count
raw_bad_landing_hit: .skip 8
pe_in:          .skip 17 * 8
pe_out:         .skip 17 * 8
pe_count:       .skip 8

.section .note.GNU-stack, "", @progbits
