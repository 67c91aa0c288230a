/*
 * vCPUs on Intel VMX with EPT (ABI 7.4, 10.3; docs/vmx.md). Not run on hardware (QEMU's TCG has
 * no VMX). The VMCS-side logic is in include/vmx_state.hpp and include/vmx_logic.hpp.
 */
#pragma once

#include "abi/utcb.hpp"
#include "types.hpp"
#include "vcpu.hpp"

class Ec;
struct Cpu;

namespace Vmx {
/* The HIP's VMX flag (ABI 8.2): every CPU has usable VMX (vmx_caps) and is in VMX operation. */
extern bool usable;

/* Every CPU, after its descriptors and features: VMXON. False: unusable. */
bool init_cpu(Cpu &c);

/* A new vCPU's VMCS (initialised on its CPU when first used); false when out of memory. */
bool create(Ec &ec);
/* Its VMCS goes back to the pool after its CPU has cleared it (reap). */
void destroy(Ec &ec);
/* Clear and free the VMCS regions of destroyed vCPUs queued for this CPU. */
void reap(Cpu &c);

/* The largest EPT leaf level (0: 4 KiB, 1: 2 MiB, 2: 1 GiB) every CPU supports. */
unsigned ept_max_level();

[[noreturn]] void run(Ec *ec);
void to_utcb(Ec &ec, u64 mtd, Utcb &u);
const char *from_utcb(const Utcb &u, Ec &ec);
}  // namespace Vmx
