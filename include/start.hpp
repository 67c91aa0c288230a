/*
 * Symbols of the boot code (src/start.S) and the AP start-up trampoline (src/trampoline.S)
 * that C++ uses.
 */
#pragma once

#include "types.hpp"

extern "C" {
/* Boot page tables of src/start.S: the BSP's first address space, copied for the APs. The
   symbols are link addresses: once the image has moved, reach them through the -2 GiB window
   (link address + KERNEL_VIRT) and take their physical address with virt_to_phys. */
extern u64 boot_pml4[512];
extern u64 boot_pdpt_low[512];
/* The page right below the BSP's boot stack (its guard), unmapped in the -2 GiB window. */
extern char boot_stack_guard[];

/* Move the image from its load address (direct-map address src) by delta (a multiple of 4 KiB)
   to the physical address whose direct-map address is dst and continue there (src/start.S).
   Once, on the boot CPU, interrupts off, no APs. */
void relocate_image(u64 dst, u64 src, u64 delta);

/* The real-mode trampoline, copied below 1 MiB and patched at these offsets (src/smp.cpp). */
extern char trampoline_start[], trampoline_end[];
extern u32 tr_gdtr_base, tr_far32, tr_far64, tr_cr3;
extern char tr_gdt_off[], tr_pm32_off[], tr_pm64_off[];
extern u64 *ap_stacks;

/* C++ entries from the assembly. */
[[noreturn]] void kernel_main(u32 magic, u32 mbi);
[[noreturn]] void ap_main(unsigned ticket);
}
