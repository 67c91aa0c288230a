/* Fills the Hypervisor Information Page (ABI 8) from what the boot learned. */
#pragma once

struct Hip;

namespace Hip_builder {
void build(Hip &hip);
}
