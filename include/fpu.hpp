/*
 * FPU state per EC (ABI 1.4): XSAVE with XCR0 = the CPU's x87|SSE|AVX subset,
 * or FXSAVE (x87/SSE) without XSAVE or with `noxsave`. Switched eagerly on
 * every EC switch. AVX-512 state is not enabled (the save area is fixed at
 * 1 KiB per EC), so AVX-512 instructions fault.
 */
#pragma once

#include "types.hpp"

namespace Fpu {
constexpr unsigned AREA = 1024;

/* Every CPU: program XCR0. The BSP also prepares the initial state image. */
void init_cpu(bool use_xsave);
void save(u8 *area);
void load(const u8 *area);
/* A fresh EC's state: x87 and SSE in their reset configuration. */
void init_state(u8 *area);
bool xsave_used();
u64 xcr0();
}  // namespace Fpu
