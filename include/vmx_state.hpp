/*
 * The VMCS side of VMX vCPUs that needs no VMX hardware (src/vmx.cpp does the rest): a new vCPU's
 * VMCS fields, exit reasons as event numbers, the work after every exit (re-injection, NMI
 * blocking), and the transfer of guest state between the VMCS (plus the GPRs in the vCPU's
 * Exc_frame and the fields in Vcpu) and a handler's UTCB (ABI 4.3, 5), sanitised with the
 * functions of include/vmx_logic.hpp. The VMCS is reached through Vmcs_io: VMREAD/VMWRITE of the
 * current VMCS in the kernel, a table in the unit tests (test/unit/test_vmx_xfer.cpp).
 */
#pragma once

#include "abi/utcb.hpp"
#include "idt.hpp"
#include "vcpu.hpp"
#include "vmx_logic.hpp"

/* Access to the current VMCS. */
struct Vmcs_io
{
    u64 (*read)(u32 field);
    void (*write)(u32 field, u64 value);
};

namespace Vmx_state {
/* What the host allows and where the vCPU's memory is (physical addresses). */
struct Host
{
    const Vmx_caps &caps;
    bool xsave;     // the kernel uses XSAVE: XCR0 is switched
    u64 xcr0;       // the kernel's XCR0 (what a guest may have)
    u64 cr4_deny;   // CR4 bits a guest must not have (OSXSAVE without XSAVE)
    unsigned msrs;  // guest MSRs switched through the MSR areas (TSC_AUX only with RDTSCP)
};

/* The controls a vCPU's configuration allows now. */
Vmx_vcpu_cfg cfg_of(const Vcpu &v);

/*
 * A new VMCS (VMCLEARed and current): the kernel's controls, the reset state of the processor
 * (SDM 10.1.1: real mode at f000:fff0, run as an unrestricted guest), no injection, VMCS link
 * pointer ~0, the MSR areas (guest: msrs_phys, stored at exit and loaded at entry; host:
 * host_msrs_phys), the EPT pointer, the virtual-APIC and APIC-access pages if the vCPU has them.
 * The host-state fields are the caller's (they need the CPU's registers).
 */
void init(const Vmcs_io &io, const Host &h, Vcpu &v, u64 msrs_phys, u64 host_msrs_phys, u64 eptp,
          u64 apic_access_phys);

/* The event number of an exit reason (ABI 10.3): the basic exit reason; -1 for none. */
int event_of(u32 exit_reason);

/* The exit is a host NMI (exception-or-NMI exit with NMI type): the kernel's, never delivered. */
bool host_nmi(u32 exit_reason, u32 exit_intr_info);

/* The exit is a machine check the host must handle (a #MC intercepted, always, by the exception
   bitmap; or a VM entry that failed on one, reason 41): the kernel logs and clears it first. */
bool host_mce(u32 exit_reason, u32 exit_intr_info);

/*
 * After an exit that was not a failed entry: an event whose delivery it interrupted is programmed
 * for the next entry (ABI 10.3 row 0), and blocking by NMI restored after an interrupted IRET.
 */
void after_exit(const Vmcs_io &io, const Host &h, u32 exit_reason);

/* Event message: the state the portal's MTD selects; r.vector is the event number. */
void to_utcb(const Vmcs_io &io, const Exc_frame &r, const Vcpu &v, u64 mtd, Utcb &u);

/* Reply: the state the UTCB's mtd selects, sanitised; a kill reason if the vCPU cannot go on. */
const char *from_utcb(const Vmcs_io &io, const Host &h, const Utcb &u, Exc_frame &r, Vcpu &v);

/* The current VMCS as an image for vmx_check_entry (the debug kernel checks it before every
   entry); vtpr: byte 0x80 of the virtual-APIC page. */
Vmx_vmcs_image image(const Vmcs_io &io, u8 vtpr);

/* The processor-based controls for the vCPU's current configuration (after CTRL, INJ or a change
   of the PD's guest ports). */
void write_proc_controls(const Vmcs_io &io, const Host &h, const Vcpu &v);
}  // namespace Vmx_state
