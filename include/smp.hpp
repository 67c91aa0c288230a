/*
 * Multiprocessor bring-up: one Cpu per enabled MADT processor, woken with
 * INIT-SIPI-SIPI. All APs are started together (INIT to all, one wait, SIPI
 * to all) so bring-up time does not grow with a per-CPU delay.
 */
#pragma once

#include "acpi.hpp"
#include "phys_reader.hpp"

struct Cmdline;

namespace Smp {
/* Build the CPU table from the MADT; the calling CPU (BSP) becomes its own entry. */
bool setup_cpus(const Phys_reader &r, const Acpi_info &acpi);
/* Per-CPU initialisation shared by BSP and APs (descriptors, APIC, timer, boot line). */
void init_this_cpu();
/* Start every other CPU; returns when all checked in or the deadline passed. */
void boot_aps(u64 trampoline_page);
/* Kernel stack size of every CPU. */
constexpr u64 STACK_ORDER = 2;  // 16 KiB
/* Virtual space of one CPU's stacks and their guard pages in the stack window (src/smp.cpp). */
constexpr u64 STACK_SLOT = 64 << 10;
/* The stack whose guard page holds addr ("kernel stack", "NMI stack", ... of cpu), else nullptr. */
const char *stack_guard(u64 addr, unsigned &cpu);
}  // namespace Smp
