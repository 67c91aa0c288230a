// host-testable
/*
 * DMAR device scopes to requester IDs (include/dmar_scope.hpp). A scope names a start bus and a
 * path of (device, function) pairs: every pair but the last is a PCI-to-PCI bridge whose
 * secondary bus the next pair is on (VT-d 8.3.1). Only segment 0 is translated (the HIP's MMCONFIG
 * region is segment 0's, ABI 8.1).
 */
#include "dmar_scope.hpp"

namespace {
bool pair_rid(u8 bus, const u8 (&p)[2], u16 &rid)
{
    if (p[0] >= 32 || p[1] >= 8)
        return false;
    rid = static_cast<u16>(bus << 8 | p[0] << 3 | p[1]);
    return true;
}
}  // namespace

bool Dmar_scope_map::end_rid(const Dmar_scope &s, Pci_bridge_fn fn, void *ctx, u16 &rid)
{
    if (!s.path_len || s.path_len > Dmar_scope::MAX_PATH)
        return false;
    u8 bus = s.start_bus;
    for (unsigned i = 0; i + 1 < s.path_len; i++) {
        u16 bridge;
        u8 sec, sub;
        if (!pair_rid(bus, s.path[i], bridge) || !fn(ctx, bridge, sec, sub))
            return false;
        bus = sec;
    }
    return pair_rid(bus, s.path[s.path_len - 1], rid);
}

bool Dmar_scope_map::covers(const Dmar_scope &s, u16 rid, Pci_bridge_fn fn, void *ctx)
{
    if (s.type != Dmar_scope::PCI_ENDPOINT && s.type != Dmar_scope::PCI_SUB_HIERARCHY)
        return false;
    u16 end;
    if (!end_rid(s, fn, ctx, end))
        return false;
    if (rid == end)
        return true;
    u8 sec, sub;
    return s.type == Dmar_scope::PCI_SUB_HIERARCHY && fn(ctx, end, sec, sub) && sec <= sub &&
           (rid >> 8) >= sec && (rid >> 8) <= sub;
}

int Dmar_scope_map::unit_for(const Dmar_info &d, u16 rid, Pci_bridge_fn fn, void *ctx)
{
    int all = -1;
    for (unsigned u = 0; u < d.num_drhd && u < Dmar_info::MAX_DRHD; u++) {
        const Dmar_drhd &h = d.drhd[u];
        if (h.segment)
            continue;
        if (h.include_pci_all()) {
            if (all < 0)
                all = static_cast<int>(u);
            continue;
        }
        for (unsigned i = 0; i < h.scopes.count && i < Dmar_scopes::MAX_SCOPES; i++)
            if (covers(h.scopes.scope[i], rid, fn, ctx))
                return static_cast<int>(u);
    }
    return all;
}
