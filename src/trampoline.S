/*
 * Application-processor start-up code. Copied at boot to a free page below
 * 1 MiB; a SIPI starts each AP here in real mode with CS = page >> 4. The
 * code is position independent: everything that needs a linear address is
 * computed from CS or patched in by the BSP (tr_* words below).
 */

.section .rodata
.align 16
.global trampoline_start, trampoline_end, tr_gdtr_base, tr_far32, tr_far64, tr_cr3
.code16
trampoline_start:
    cli
    cld
    mov %cs, %ax
    mov %ax, %ds
    xor %ebx, %ebx
    mov %cs, %bx
    shl $4, %ebx                            /* ebx = linear base of this page */
    lgdtl tr_gdtr - trampoline_start
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl *(tr_far32 - trampoline_start)

.code32
tr_pm32:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %cr4, %eax
    or $0x20, %eax                          /* PAE */
    mov %eax, %cr4
    mov (tr_cr3 - trampoline_start)(%ebx), %eax
    mov %eax, %cr3
    mov $0xc0000080, %ecx
    rdmsr
    or $0x100, %eax                         /* LME */
    wrmsr
    mov %cr0, %eax
    or $0x80010001, %eax                    /* PG, WP, PE */
    mov %eax, %cr0
    /* No stack here (APs run this concurrently): far jump through a patched pointer. */
    ljmp *(tr_far64 - trampoline_start)(%ebx)

.code64
tr_pm64:
    movabs $ap_entry, %rax
    jmp *%rax

.align 8
tr_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff                /* 0x08 code, 32-bit */
    .quad 0x00cf92000000ffff                /* 0x10 data */
    .quad 0x00af9a000000ffff                /* 0x18 code, 64-bit */
tr_gdtr:
    .short tr_gdtr - tr_gdt - 1
tr_gdtr_base:
    .long 0                                 /* patched: page + (tr_gdt - trampoline_start) */
.align 4
tr_far32:
    .long 0                                 /* patched: page + (tr_pm32 - trampoline_start) */
    .short 0x08
.align 4
tr_far64:
    .long 0                                 /* patched: page + (tr_pm64 - trampoline_start) */
    .short 0x18
.align 4
tr_cr3:
    .long 0                                 /* patched: boot page table (below 4 GiB) */
.global tr_gdt_off, tr_pm32_off, tr_pm64_off
.set tr_gdt_off, tr_gdt - trampoline_start
.set tr_pm32_off, tr_pm32 - trampoline_start
.set tr_pm64_off, tr_pm64 - trampoline_start
trampoline_end:

.section .text
.code64
/* Long mode, boot page tables, no stack yet: take a ticket, then a stack. */
.global ap_entry
ap_entry:
    mov $1, %eax
    lock xadd %eax, ap_ticket(%rip)
    mov ap_stacks(%rip), %rsp
    mov (%rsp, %rax, 8), %rsp
    xor %ebp, %ebp
    mov %eax, %edi
    call ap_main
1:  cli
    hlt
    jmp 1b

.section .data
.align 8
.global ap_ticket, ap_stacks
ap_ticket: .long 0
.align 8
ap_stacks: .quad 0
