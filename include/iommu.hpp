/*
 * The IOMMU (ABI 7.14, 11.4; docs/iommu.md): DMA remapping with Intel VT-d (src/dmar.cpp) or
 * AMD-Vi (src/amdvi.cpp, where there is an IVRS table and no DMAR table), only with the
 * command-line option `iommu`. Each PD has a DMA page table (Pd::dpt; the host table's format
 * for VT-d, Paging::Amd for AMD-Vi), filled by src/mapping.cpp from D-bit memory nodes;
 * assign_pci points a device's context entry (device table entry) at it. Devices not assigned
 * are blocked. Every change that takes rights away is out of every unit's caches before sync()
 * returns.
 */
#pragma once

#include "types.hpp"

class Pd;

namespace Iommu {
/* Discovery and enabling, after ACPI, the allocator, the LAPIC and the I/O APICs; before the kernel PD. */
void init();
/* DMA remapping is on (HIP feature bit 0). */
bool active();
/* Device addresses below this page number are translated (the units' common address width). */
u64 dma_pages();
/* Leaf sizes every unit walks in DMA tables: bit 0 2 MiB, bit 1 1 GiB. */
unsigned large_pages();
/* pd->dpt exists (created under pd->lock); false: out of memory. */
bool make_table(Pd *pd);
/*
 * pd->dpt changed in [va, va + size) (pd->lock held): write the entries back for units that do
 * not snoop, and with `lost` (rights went) or in caching mode invalidate the PD's domain in
 * every unit's IOTLB and wait for it.
 */
void sync(Pd *pd, u64 va, u64 size, bool lost);
/* A PCI function answers at rid and a unit translates it. */
bool known(u16 rid);
/* rid's DMA goes through pd->dpt from now on (caches invalidated); false: out of memory or domain IDs. */
bool assign(Pd *pd, u16 rid);
/* The PD goes: its devices are blocked, the caches cleaned, its domain ID free for reuse. */
void release(Pd *pd);
/* The units' register pages (ABI 9.6: never delegable): fn(first page, pages) for each DRHD, and
   for each IVHD its registers and its PCI configuration page. */
void for_each_register_range(void (*fn)(u64 first, u64 pages, void *ctx), void *ctx);
/* The fault event interrupt (Vec::IOMMU): report and clear the recorded faults. */
void interrupt();

/*
 * Interrupt remapping (on with DMA remapping where every unit and the DMAR table allow it;
 * x2APIC destinations with EIM, docs/iommu.md). Remapping entry `index` = GSI; set_irte() programs
 * it and invalidates it in every unit (false: no remapping, or a CPU it cannot name). sid: the
 * requester ID the unit must see, -1: not checked. AMD-Vi (x2APIC destinations with GAEn and XTEn):
 * the entry is in sid's own table (-1: the IVRS HPET's), at the vector for an I/O APIC.
 */
bool remaps_interrupts();
/* A device interrupt can be sent to the CPU with this APIC ID: with remapping and EIM (AMD-Vi: XTEn)
   any, else xAPIC IDs 0-255 only. */
bool reaches(u32 apic_id);
bool set_irte(u32 index, u32 apic_id, u8 vector, bool level, int sid);
/* The requester ID of I/O APIC `id` from the DMAR scopes, -1 if none lists it. */
int ioapic_sid(u32 id);
/* Remappable formats naming entry `index`: an I/O APIC RTE's upper half; the MSI address (the
   MSI data is the index: ABI 7.15's 0xfee00018 and GSI). */
u32 rte_hi(u32 index);
constexpr u32 MSI_REMAPPED = 0xfee00018;

/* PCI configuration space of rid through segment 0's MMCONFIG (mapped on first use), nullptr if
   outside it; whether a function answers there. For both backends. */
volatile u8 *pci_config(u16 rid);
bool pci_present(u16 rid);

/*
 * The AMD-Vi backend (src/amdvi.cpp). The functions above dispatch to it when it is active; its
 * DMA tables have the Paging::Amd format.
 */
namespace Amd {
void init();
bool active();
u64 dma_pages();
unsigned large_pages();
bool make_table(Pd *pd);
void sync(Pd *pd, bool lost);
bool known(u16 rid);
bool assign(Pd *pd, u16 rid);
void release(Pd *pd);
void interrupt();
bool remaps_interrupts();
bool reaches(u32 apic_id);
bool set_irte(u32 index, u32 apic_id, u8 vector, int sid);
int ioapic_sid(u32 id);
}  // namespace Amd
}  // namespace Iommu
