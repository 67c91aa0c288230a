/*
 * What the boot sequence learned, for the rest of the kernel: the loader's
 * data, the command line, ACPI, and timing of the boot itself.
 */
#pragma once

#include "acpi.hpp"
#include "cmdline.hpp"
#include "multiboot.hpp"
#include "phys_reader.hpp"

namespace Boot {
extern Cmdline cmdline;
extern Boot_info info;
extern Acpi_info acpi;
extern Phys_reader phys;  // reads physical memory through the direct map
extern u64 entry_tsc;     // TSC at kernel entry (the BSP's TSC is reset to 0 there)
extern u64 trampoline_page;
extern u64 pool_base, pool_end;  // kernel memory pool (the buddy's only memory)
extern u64 hyp_base, hyp_end;    // pool + kernel image: the HIP's hypervisor region
extern u64 hip_phys;             // the HIP's first page frame
extern unsigned hip_pages;       // its length in pages (more than one beyond 64 CPUs)
/* [base, base + size) is RAM by the sanitised memory map (src/init.cpp). */
bool is_ram(u64 base, u64 size);
}  // namespace Boot

/* The root task: load the first module and enter it in user mode (src/roottask.cpp). */
[[noreturn]] void start_root_task();
