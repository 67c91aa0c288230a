/*
 * The pure part of SVM vCPUs (src/svm.cpp): a new VMCB's state, exit codes as event numbers,
 * the re-injection of interrupted events, and the transfer of guest state between a VMCB (plus
 * the GPRs in the vCPU's Exc_frame) and a handler's UTCB (ABI 4.3, 5), where every write of the
 * VMM is sanitised: the kernel's intercepts stay, EFER.SVME stays, XCR0 is checked. Host-tested
 * (test/unit/test_svm.cpp).
 */
#pragma once

#include "abi/utcb.hpp"
#include "idt.hpp"
#include "svm.hpp"
#include "vmcb.hpp"

namespace Svm_state {
// Intercepts the kernel keeps whatever the VMM writes (ABI 5 note 4, docs/virtualization.md): host
// interrupts, NMIs and INIT end the guest; the VMM sees HLT, I/O, MSRs (both permission maps are
// all ones), INVD and shutdown; the guest can neither run SVM instructions (the APM requires the
// VMRUN intercept) nor change GIF nor XCR0 (the kernel checks it). #AC and #DB always exit (as
// #AC on VMX): their delivery cannot loop in the CPU without a way out for the host.
constexpr u32 FORCED0 = Svm_bits::I_INTR | Svm_bits::I_NMI | Svm_bits::I_INIT | Svm_bits::I_INVD |
                        Svm_bits::I_HLT | Svm_bits::I_IOIO | Svm_bits::I_MSR | Svm_bits::I_SHUTDOWN;
constexpr u32 CLEARED0 = Svm_bits::I_INVLPG;  // nested paging: nothing in it for the VMM (ABI 10.4)
constexpr u32 FORCED1 = Svm_bits::I_VMRUN | Svm_bits::I_VMLOAD | Svm_bits::I_VMSAVE | Svm_bits::I_STGI |
                        Svm_bits::I_CLGI | Svm_bits::I_SKINIT | Svm_bits::I_XSETBV;
constexpr u32 FORCED_EXC = 1u << 1 | 1u << 17 | 1u << 18;  // #DB, #AC (above) and #MC: the host's first

/* What the host allows the guest: XCR0 bits (with XSAVE in use; else only x87). */
struct Host
{
    bool xsave;
    u64 xcr0;
};

/* A new vCPU's VMCB: the kernel's intercepts and maps, nested paging, the reset state. */
void init(Vmcb &m, u64 iopm_phys, u64 msrpm_phys);

/* The event number of an exit code (ABI 10.4), -1 when there is none. */
int event_of(u64 exitcode);

/* After an exit: an injection that was delivered is done; one the exit interrupted goes again. */
void after_exit(Vmcb &m);

/* An XCR0 the host can load for the guest (ABI 10.6). */
bool xcr0_valid(u64 xcr0, const Host &h);

/* Event message: the state the portal's MTD selects; r.vector is the event number. */
void to_utcb(const Vmcb &m, const Exc_frame &r, const Vcpu &v, u64 mtd, bool nrip_save, Utcb &u);

/* Reply: the state the UTCB's mtd selects, sanitised; a kill reason if the vCPU cannot go on. */
const char *from_utcb(const Utcb &u, Vmcb &m, Exc_frame &r, Vcpu &v, const Host &h);
}  // namespace Svm_state
