/* Fills the Hypervisor Information Page (ABI 8) from what the boot learned. */
#pragma once

struct Hip;

namespace Hip_builder {
// CPUs the HIP describes: every CPU (up to Hip::MAX_CPUS); hypercalls accept these numbers.
unsigned cpus();
// Fills Hip::pages_for(cpus()) pages at hip.
void build(Hip &hip);
}  // namespace Hip_builder
