/*
 * Multiboot headers and the 32-bit entry. Both loaders (multiboot 1 via
 * QEMU -kernel or GRUB `multiboot`, multiboot 2 via GRUB `multiboot2`, also
 * under UEFI) enter here in 32-bit protected mode with paging off, EAX =
 * loader magic, EBX = physical address of the boot information.
 *
 * We build boot page tables (identity map and direct map of the first
 * 4 GiB with 2 MiB pages, the image at -2 GiB with 4 KiB pages), switch to long mode and jump
 * to the kernel linked in the upper half. Later the kernel moves its image
 * next to its memory pool (relocate_image below, docs/boot.md).
 */
#include "memory_asm.hpp"

#define BOOT_PT_KERN 2                      /* page tables for the -2 GiB window: 4 MiB image */

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

    /* PDPT for the identity/direct map: 4 entries. */
    mov $boot_pdpt_low, %edi
    mov $boot_pd + 3, %eax
    mov $4, %ecx
2:  mov %eax, (%edi)
    add $0x1000, %eax
    add $8, %edi
    loop 2b

    /*
     * The -2 GiB window (PDPT entry 510) has tables of its own: boot_pd_kern and 4 KiB pages in
     * boot_pt_kern that map the image and nothing else, so the window follows the image when
     * it moves (relocate_image). The page below the boot stack stays unmapped there, so that
     * an overflow of the stack (used through the window from kernel_entry on) faults instead
     * of overwriting the page tables.
     */
    movl $boot_pd_kern + 3, boot_pdpt_high + 510 * 8
    mov $__image_start_phys, %eax
    mov $boot_pt_kern, %edi
3:  lea 3(%eax), %edx                       /* present, writable */
    cmp $boot_stack_guard, %eax
    jne 4f
    xor %edx, %edx
4:  mov %edx, (%edi)
    add $8, %edi
    add $0x1000, %eax
    cmp $__image_end_phys, %eax
    jb 3b
    mov $__image_start_phys, %eax           /* LOAD_ADDR is 2 MiB aligned (linker.ld) */
    shr $21, %eax
    mov $boot_pt_kern + 3, %edx
3:  mov %edx, boot_pd_kern(, %eax, 8)
    add $0x1000, %edx
    inc %eax
    mov %eax, %ecx
    shl $21, %ecx
    cmp $__image_end_phys, %ecx
    jb 3b

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
/* The tables from boot_pml4 to boot_reloc_end point at each other and at the image:
   relocate_image adjusts their entries. boot_pd maps physical memory and stays as it is. */
boot_pml4:      .skip 4096
boot_pdpt_low:  .skip 4096
boot_pdpt_high: .skip 4096
boot_pd_kern:   .skip 4096
.global boot_pt_kern
boot_pt_kern:   .skip 4096 * BOOT_PT_KERN   /* the image's 4 KiB pages (linker.ld checks the size) */
.global boot_reloc_end
boot_reloc_end:
boot_pd:        .skip 4096 * 4
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

/*
 * void relocate_image(u64 dst, u64 src, u64 delta)
 *
 * Move the whole image (boot code, page tables, boot stack, kernel, .bss) from its load address
 * (direct-map address src: the window lacks the boot stack's guard page) by delta bytes (a
 * multiple of 4 KiB) to the physical address whose direct-map address is dst, and continue
 * there: the copy's page-table entries that point into the image are adjusted, CR3 is loaded
 * with the copy's PML4 (global entries flushed too), and the -2 GiB window now shows the copy.
 * Nothing here writes to memory between the copy and the switch (no stack use), so the copy
 * is exact; the return address was pushed before. The caller runs with interrupts off, on the
 * BSP, before any AP exists. The old image is dead afterwards.
 */
.global relocate_image
relocate_image:
    mov %rdx, image_phys_delta(%rip)        /* part of the copy: virt_to_phys sees it there */
    mov %rdi, %r9                           /* destination */
    mov %rdx, %r8                           /* delta */
    mov $__image_end_phys, %ecx
    sub $__image_start_phys, %ecx
    mov %rcx, %r10                          /* image length */
    mov %r9, %rdi
    rep movsb

    /* Entries of the copy's PML4, PDPTs and window tables that point into the image: + delta. */
    mov $boot_pml4, %edi
    sub $__image_start_phys, %edi
    add %r9, %rdi
    mov $((boot_reloc_end - boot_pml4) / 8), %ecx
    movabs $0x000ffffffffff000, %r11
1:  mov (%rdi), %rax
    test $1, %al
    jz 2f
    mov %rax, %rdx
    and %r11, %rdx
    sub $__image_start_phys, %rdx
    cmp %r10, %rdx
    jae 2f
    add %r8, %rax
    mov %rax, (%rdi)
2:  add $8, %rdi
    dec %ecx
    jnz 1b

    mov $boot_pml4, %eax
    add %r8, %rax
    mov %cr4, %rdx
    mov %rdx, %rcx
    and $~0x80, %rcx                        /* clearing CR4.PGE drops global TLB entries too */
    mov %rcx, %cr4
    mov %rax, %cr3
    mov %rdx, %cr4
    ret

.section .bss
.align 8
/* Physical minus linked address of the image (include/memory.hpp: virt_to_phys). */
.global image_phys_delta
image_phys_delta: .quad 0
