/*
 * Multiboot headers and the 32-bit entry. Both loaders (multiboot 1 via
 * QEMU -kernel or GRUB `multiboot`, multiboot 2 via GRUB `multiboot2`, also
 * under UEFI) enter here in 32-bit protected mode with paging off, EAX =
 * loader magic, EBX = physical address of the boot information.
 *
 * We build boot page tables (identity map and direct map of the first
 * 4 GiB, kernel image at -2 GiB; 2 MiB pages), switch to long mode and jump
 * to the kernel linked in the upper half.
 */
#include "memory_asm.hpp"

#define MB1_MAGIC   0x1badb002
#define MB1_FLAGS   0x00000003              /* page-aligned modules, memory info */
#define MB2_MAGIC   0xe85250d6

.section .multiboot, "a"
.align 4
mb1_header:
    .long MB1_MAGIC
    .long MB1_FLAGS
    .long -(MB1_MAGIC + MB1_FLAGS)

.align 8
mb2_header:
    .long MB2_MAGIC
    .long 0                                 /* i386 protected mode entry */
    .long mb2_header_end - mb2_header
    .long -(MB2_MAGIC + (mb2_header_end - mb2_header))
    .align 8                                /* information request (optional) */
    .short 1, 1
    .long 8 + 4 * 6
    .long 1, 3, 6, 14, 15, 17               /* cmdline, modules, mmap, ACPI old/new, EFI mmap */
    .align 8                                /* modules page aligned */
    .short 6, 0
    .long 8
    .align 8                                /* end */
    .short 0, 0
    .long 8
mb2_header_end:

.section .boot.text, "ax"
.code32
.global __start_phys
__start_phys:
    cli
    cld
    mov %eax, boot_magic
    mov %ebx, boot_mbi
    mov $boot_stack_top, %esp

    /* Long mode is required; say so instead of faulting. */
    mov $0x80000000, %eax
    cpuid
    cmp $0x80000001, %eax
    jb no_long_mode
    mov $0x80000001, %eax
    cpuid
    bt $29, %edx
    jnc no_long_mode

    /* Clear the boot page tables (the loader may not have zeroed them). */
    mov $boot_pt_start, %edi
    mov $(boot_pt_end - boot_pt_start) / 4, %ecx
    xor %eax, %eax
    rep stosl

    /* 4 page directories of 2 MiB pages cover 0..4 GiB. */
    mov $boot_pd, %edi
    mov $0x83, %eax                         /* present, writable, 2 MiB */
    xor %edx, %edx
    mov $2048, %ecx
1:  mov %eax, (%edi)
    mov %edx, 4(%edi)
    add $0x200000, %eax
    adc $0, %edx
    add $8, %edi
    loop 1b

    /*
     * The page below the boot stack stays unmapped, so that an overflow faults instead of
     * overwriting the page tables: its 2 MiB page becomes a table of 4 KiB pages without it.
     * The identity map, the direct map and the image all use boot_pd, so no view has it.
     */
    mov $boot_stack_guard, %eax
    shr $21, %eax
    lea boot_pd(,%eax,8), %edi              /* its 2 MiB entry */
    shl $21, %eax
    or $3, %eax                             /* present, writable */
    xor %edx, %edx
    mov $512, %ecx
3:  mov %eax, boot_pt_guard(,%edx,8)
    add $0x1000, %eax
    inc %edx
    loop 3b
    mov $boot_stack_guard, %eax
    shr $12, %eax
    and $0x1ff, %eax
    movl $0, boot_pt_guard(,%eax,8)
    movl $boot_pt_guard + 3, (%edi)

    /* PDPT for the identity/direct map: 4 entries. */
    mov $boot_pdpt_low, %edi
    mov $boot_pd + 3, %eax
    mov $4, %ecx
2:  mov %eax, (%edi)
    add $0x1000, %eax
    add $8, %edi
    loop 2b

    /* PDPT for -2 GiB: entry 510 maps the first GiB. */
    movl $boot_pd + 3, boot_pdpt_high + 510 * 8

    movl $boot_pdpt_low + 3, boot_pml4 + 0 * 8          /* identity (boot only) */
    movl $boot_pdpt_low + 3, boot_pml4 + 256 * 8        /* direct map */
    movl $boot_pdpt_high + 3, boot_pml4 + 511 * 8       /* kernel image */

.global boot_enter_long_mode
boot_enter_long_mode:
    mov %cr4, %eax
    or $0x20, %eax                          /* PAE */
    mov %eax, %cr4
    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov $0xc0000080, %ecx                   /* EFER.LME */
    rdmsr
    or $0x100, %eax
    wrmsr
    mov %cr0, %eax
    or $0x80010001, %eax                    /* PG, WP, PE */
    mov %eax, %cr0
    lgdt boot_gdtr
    ljmp $0x08, $long_entry

.code64
long_entry:
    mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    xor %eax, %eax
    mov %eax, %fs
    mov %eax, %gs
    movabs $kernel_entry, %rax
    jmp *%rax

.code32
/* Print a message on serial (0x3f8) and VGA, then stop. */
no_long_mode:
    mov $msg_no_lm, %esi
    mov $0xb8000, %edi
3:  lodsb
    test %al, %al
    jz 5f
    mov %al, %bl
    mov $0x3fd, %dx
4:  in %dx, %al
    test $0x20, %al
    jz 4b
    mov $0x3f8, %dx
    mov %bl, %al
    out %al, %dx
    mov $0x4f, %ah
    mov %bl, %al
    mov %ax, (%edi)
    add $2, %edi
    jmp 3b
5:  cli
    hlt
    jmp 5b

.section .boot.data, "aw"
.align 8
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff                /* 0x08 code, 64-bit */
    .quad 0x00cf92000000ffff                /* 0x10 data */
boot_gdtr:
    .short boot_gdtr - boot_gdt - 1
    .long boot_gdt
.global boot_magic, boot_mbi
boot_magic: .long 0
boot_mbi:   .long 0
msg_no_lm:  .asciz "hypervisor: this CPU does not support 64-bit long mode; halted."

.section .boot.bss, "aw", @nobits
.align 4096
.global boot_pml4, boot_pdpt_low
boot_pt_start:
boot_pml4:      .skip 4096
boot_pdpt_low:  .skip 4096
boot_pdpt_high: .skip 4096
boot_pd:        .skip 4096 * 4
boot_pt_guard:  .skip 4096                  /* 4 KiB pages around the boot stack's guard */
boot_pt_end:
.global boot_stack_top, boot_stack_guard
boot_stack_guard: .skip 4096                /* unmapped */
boot_stack:     .skip 16384
boot_stack_top:

.section .text
.code64
/* Upper half from here on; the BSP's first C++ code. */
kernel_entry:
    movabs $(boot_stack_top + KERNEL_VIRT_ASM), %rsp
    xor %ebp, %ebp
    /* .bss is NOLOAD: clear it ourselves, loaders differ. */
    movabs $__bss_start, %rdi
    movabs $__bss_end, %rcx
    sub %rdi, %rcx
    xor %eax, %eax
    rep stosb
    mov boot_magic, %edi
    mov boot_mbi, %esi
    call kernel_main
6:  cli
    hlt
    jmp 6b
