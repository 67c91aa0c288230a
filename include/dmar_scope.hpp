/*
 * DMAR device scopes to requester IDs (src/dmar_scope.cpp, host-tested in test/unit/test_vtd.cpp):
 * which remapping unit (DRHD) translates a PCI function's DMA. Paths through PCI-to-PCI bridges
 * are followed with the bridges' bus numbers, which the caller reads from configuration space.
 */
#pragma once

#include "acpi.hpp"

/* A bridge's secondary and subordinate bus (config offsets 0x19, 0x1a); false if none answers. */
using Pci_bridge_fn = bool (*)(void *ctx, u16 bridge_rid, u8 &secondary, u8 &subordinate);

namespace Dmar_scope_map {
/* The requester ID the scope's path ends at; false if the path is malformed or a bridge on it is absent. */
bool end_rid(const Dmar_scope &s, Pci_bridge_fn fn, void *ctx, u16 &rid);
/* The scope (endpoint or sub-hierarchy) names rid. I/O APIC, HPET and namespace scopes name no PCI function.
 */
bool covers(const Dmar_scope &s, u16 rid, Pci_bridge_fn fn, void *ctx);
/*
 * The DRHD (index into d.drhd) that translates rid on segment 0: the first whose scopes name it,
 * else the include-all unit; -1 if none.
 */
int unit_for(const Dmar_info &d, u16 rid, Pci_bridge_fn fn, void *ctx);
}  // namespace Dmar_scope_map
