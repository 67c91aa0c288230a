/*
 * vCPUs on AMD SVM with nested paging (ABI 7.4, 10.4; docs/virtualization.md): a vCPU is an EC
 * whose user state is a guest, kept in a VMCB (include/vmcb.hpp) plus the GPRs VMRUN does not
 * switch (in Ec::regs). It runs from the scheduler like any EC (Sched::run ends in Svm::run for
 * it); every exit the VMM must see becomes an event message to its portal at evt + n, and the
 * reply's state goes back into the VMCB through from_utcb(), which keeps every intercept and
 * control the host needs. The guest-physical space is the PD's guest page table (Pd::gpt),
 * filled by delegations with the G bit (src/mapping.cpp).
 */
#pragma once

#include "abi/utcb.hpp"
#include "types.hpp"
#include "vcpu.hpp"

class Ec;
struct Cpu;
struct Vmcb;

namespace Svm {
/* The HIP's SVM flag (ABI 8.2): every CPU has SVM with nested paging and the kernel enabled it. */
extern bool usable;

/* Every CPU, after its descriptors and features: enable SVM, host save areas. False: unusable. */
bool init_cpu(Cpu &c);

/* A new vCPU's control block in its reset state; false when out of memory. */
bool create(Ec &ec);
void destroy(Ec &ec);

/* Enter the guest and handle its exits until one must go to the VMM (the scheduler's last step). */
[[noreturn]] void run(Ec *ec);

/* Event message (ABI 4.3, 5): the state the portal's MTD selects; ec->regs.vector is the event. */
void to_utcb(const Ec &ec, u64 mtd, Utcb &u);
/* Reply: the state the UTCB's mtd selects, sanitised; a kill reason if the vCPU cannot go on. */
const char *from_utcb(const Utcb &u, Ec &ec);
}  // namespace Svm
