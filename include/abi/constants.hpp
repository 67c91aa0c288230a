/*
 * ABI-wide constants: limits, fixed user addresses, the root task's initial
 * selectors, event numbers and the kernel's selector space for H-bit
 * delegation (ABI table of constants, 1.1, 1.2, 9.3-9.6, 10.2-10.4).
 * In namespace Abi so they cannot clash with the kernel's own names.
 */
#pragma once

#include "../types.hpp"

namespace Abi {

constexpr unsigned API_VERSION = 7;
constexpr unsigned NUM_CPU = 64;
constexpr unsigned NUM_EXC = 32;   // exception event selectors per EC
constexpr unsigned NUM_VMI = 256;  // VM-exit event selectors per vCPU
constexpr unsigned NUM_GSI = 192;
constexpr unsigned NUM_IOAPIC = 5;
constexpr unsigned NUM_PRIORITIES = 128;  // 0 is the idle SC's
constexpr u64 SEL_NUM = u64{1} << 26;

constexpr u64 USER_ADDR = 0x00007ffffffff000ull;    // first address user mode cannot use
constexpr u64 HIP_ADDR = USER_ADDR - 0x1000;        // root PD, read-only; root EC's initial rsp
constexpr u64 ROOT_UTCB_ADDR = USER_ADDR - 0x2000;  // root EC's UTCB

// Segment selectors visible to user mode (1.2).
constexpr u16 SEG_USER_CS_IRET = 0x1b;  // after iretq (startup/exception replies of global ECs)
constexpr u16 SEG_USER_DS = 0x23;
constexpr u16 SEG_USER_CS = 0x2b;  // after sysretq

// The root task's object space at start-up (9.5).
constexpr u64 SEL_ROOT_PD = NUM_EXC + 0;
constexpr u64 SEL_ROOT_EC = NUM_EXC + 1;
constexpr u64 SEL_ROOT_SC = NUM_EXC + 2;

// Root SC parameters (6.2).
constexpr unsigned ROOT_SC_PRIO = 1;
constexpr unsigned ROOT_SC_QUANTUM_US = 10000;

// The kernel's object selectors the root PD can delegate from with the H bit (9.6).
constexpr u64 KSEL_GSI_BASE = 64;
// Idle SCs: CPUs 0..63 at their number (the reference), CPUs from 64 on after the GSI semaphores.
constexpr u64 ksel_idle_sc(unsigned cpu)
{
    return cpu < NUM_CPU ? cpu : KSEL_GSI_BASE + NUM_GSI + (cpu - NUM_CPU);
}
constexpr u64 ksel_gsi_sm(unsigned gsi) { return KSEL_GSI_BASE + gsi; }

// Event numbers of ECs, added to the EC's event base (10.2).
namespace Evt {
constexpr unsigned DE = 0x00, DB = 0x01, BP = 0x03, OF = 0x04, BR = 0x05, UD = 0x06, NM = 0x07;
constexpr unsigned TS = 0x0a, NP = 0x0b, SS = 0x0c, GP = 0x0d, PF = 0x0e;
constexpr unsigned MF = 0x10, AC = 0x11, MC = 0x12, XM = 0x13;
constexpr unsigned STARTUP = 0x1e;
constexpr unsigned RECALL = 0x1f;
}  // namespace Evt

// Event numbers of vCPUs beyond the architectural exit reasons (10.3, 10.4).
namespace Vmi {
constexpr unsigned VMX_INVALID_STATE = 33;
constexpr unsigned VMX_EPT_VIOLATION = 48;
constexpr unsigned SVM_NPT = 0xfc;
constexpr unsigned SVM_INVALID_STATE = 0xfd;
constexpr unsigned STARTUP = 0xfe;
constexpr unsigned RECALL = 0xff;
}  // namespace Vmi

// Page-fault error code bits as delivered in qual[0] (10.2).
namespace Pf_err {
constexpr u64 PRESENT = 1u << 0, WRITE = 1u << 1, USER = 1u << 2, RSVD = 1u << 3, FETCH = 1u << 4;
}  // namespace Pf_err

}  // namespace Abi
