/*
 * PS/2 keyboard driven by the kernel (command-line option `keyb`):
 * Esc resets the machine, `c` dumps the per-CPU event counters.
 */
#pragma once

#include "types.hpp"

namespace Keyb {
void init();                // route IRQ 1 to the boot CPU (only with `keyb`)
void interrupt(u32 gsi);    // called for every GSI interrupt
[[noreturn]] void reset();  // ACPI reset register, then port 0xcf9, then the 8042
void dump_counters();
}  // namespace Keyb
