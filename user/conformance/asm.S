/*
 * Register-level pieces of the conformance suite: the raw hypercall and
 * exception harness (every register set before, stored right after), a
 * portal entry that records the callee's entry registers, single-access
 * probes with fix-up addresses for the exception portals, stackless ECs for
 * the every-CPU test, and x87/SSE load/store. Layouts match Raw_regs
 * (nova/regs.h, whose macros do the register moves), Cpu_probe and
 * Fpu_image in suite.hpp.
 */

#include "nova/regs.h"

.text

/*
 * raw_<name>(const Raw_regs *in, Raw_regs *out): load all registers but rsp
 * from `in` (RFLAGS with popfq), execute the instruction, then store every
 * register, rsp and RFLAGS into `out` (RAW_INSN, nova/regs.h). Each also
 * leaves its rsp at the instruction in raw_saved_rsp.
 */
RAW_INSN raw_syscall, 0, 0, raw_saved_rsp, syscall
RAW_INSN raw_int3, 0, 0, raw_saved_rsp, int3
RAW_INSN raw_ud2, 0, 0, raw_saved_rsp, ud2
RAW_INSN raw_div, 0, 0, raw_saved_rsp, divq %r10     /* #DE with r10 = 0 (3 bytes) */
RAW_INSN raw_hlt, 0, 0, raw_saved_rsp, hlt           /* #GP(0) in user mode (1 byte) */

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
    REGS_STORE_RIP pe_in
    lock incq pe_count(%rip)
    REGS_LOAD_RIP pe_out
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
    XMM_LOAD 0, %rdi
    ldmxcsr 0x100(%rdi)
    fninit
    fldcw   0x104(%rdi)
    fldl    0x108(%rdi)
    ret

.global fpu_store
.type fpu_store, @function
fpu_store:
    XMM_STORE 0, %rdi
    stmxcsr 0x100(%rdi)
    fnstcw  0x104(%rdi)
    fstpl   0x108(%rdi)
    FPU_DEFAULTS                        /* leave the default state behind */
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
.global raw_bad_landing_hit, pe_in, pe_out, pe_count
raw_bad_landing_hit: .skip 8
pe_in:          .skip REGS_SIZE
pe_out:         .skip REGS_SIZE
pe_count:       .skip 8

.section .note.GNU-stack, "", @progbits
