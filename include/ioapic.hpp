/*
 * I/O APICs: every pin masked at boot; a GSI is routed to one CPU with the
 * trigger mode and polarity ACPI gives (ABI 11.1), vector 32 + GSI.
 */
#pragma once

#include "acpi.hpp"
#include "types.hpp"

namespace Ioapic {
void init(const Acpi_info &acpi);
unsigned count();
bool route(u32 gsi, u32 apic_id, Irq_mode mode, bool masked);
void mask(u32 gsi, bool masked);
bool present(u32 gsi);
/* Unit i as the HIP reports it (ABI 8.4); false past the last unit. */
bool describe(unsigned i, u32 &id, u32 &version, u32 &gsi_base, u32 &base);
}  // namespace Ioapic

namespace Pic {
void disable();  // remap the 8259s away from the exception vectors and mask every line
}
