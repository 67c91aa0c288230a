// host-testable
/*
 * ACPI DMAR (Intel VT-d): remapping hardware units (DRHD), reserved memory regions (RMRR) and
 * their device scopes. A scope list that is malformed or too long to store is marked
 * incomplete rather than guessed at: the IOMMU code must not trust a partial device list.
 */
#include "acpi.hpp"
#include "diag.hpp"
#include "string.hpp"

namespace {

constexpr u32 STRUCTS = 48, SCOPE_MIN = 6;

enum Type : u16 { DRHD = 0, RMRR = 1, ATSR = 2 };

u16 min_len(u16 type)
{
    switch (type) {
    case DRHD: return 16;
    case RMRR: return 24;
    case ATSR: return 8;
    default: return 4;
    }
}

/* Parses the device scopes of structure s (at table offset base) from offset from on. */
void parse_scopes(Acpi_bytes s, u32 from, u32 base, u64 phys, Dmar_scopes &out)
{
    for (u32 off = from; off < s.len;) {
        u8 type = s.b(off), len = s.has(off, 2) ? s.b(off + 1) : 0;
        if (len < SCOPE_MIN || (len - SCOPE_MIN) % 2 || !s.has(off, len)) {
            diag("ACPI: DMAR at %#lx device scope at offset %#x has bad length %u (structure ends at %#x)",
                 phys, base + off, len, base + s.len);
            out.incomplete = true;
            return;
        }
        u32 pairs = (len - SCOPE_MIN) / 2;
        if (!pairs || pairs > Dmar_scope::MAX_PATH || out.count == Dmar_scopes::MAX_SCOPES) {
            diag("ACPI: DMAR at %#lx device scope at offset %#x %s, scope list incomplete", phys, base + off,
                 pairs ? "does not fit" : "has an empty path");
            out.incomplete = true;
            return;
        }
        Dmar_scope &sc = out.scope[out.count++];
        sc.type = type;
        sc.enum_id = s.b(off + 4);
        sc.start_bus = s.b(off + 5);
        sc.path_len = static_cast<u8>(pairs);
        for (u32 i = 0; i < pairs; i++) {
            sc.path[i][0] = s.b(off + SCOPE_MIN + 2 * i);
            sc.path[i][1] = s.b(off + SCOPE_MIN + 2 * i + 1);
        }
        off += len;
    }
}

void add_drhd(Acpi_bytes s, u32 base, u64 phys, Dmar_info &d, u32 &dropped)
{
    u64 reg = s.q(8);
    if (!reg || reg % PAGE_SIZE) {
        diag("ACPI: DMAR at %#lx DRHD at offset %#x has register base %#lx, skipped", phys, base, reg);
        return;
    }
    if (d.num_drhd == Dmar_info::MAX_DRHD) {
        dropped++;
        return;
    }
    Dmar_drhd &u = d.drhd[d.num_drhd++];
    u.flags = s.b(4);
    u.segment = s.w(6);
    u.base = reg;
    parse_scopes(s, 16, base, phys, u.scopes);
}

void add_rmrr(Acpi_bytes s, u32 base, u64 phys, Dmar_info &d, u32 &dropped)
{
    u64 lo = s.q(8), hi = s.q(16);
    if (lo % PAGE_SIZE || (hi + 1) % PAGE_SIZE || hi < lo) {
        diag("ACPI: DMAR at %#lx RMRR %#lx-%#lx is malformed, skipped", phys, lo, hi);
        return;
    }
    if (d.num_rmrr == Dmar_info::MAX_RMRR) {
        dropped++;
        return;
    }
    Dmar_rmrr &r = d.rmrr[d.num_rmrr++];
    r.segment = s.w(6);
    r.base = lo;
    r.limit = hi;
    parse_scopes(s, 24, base, phys, r.scopes);
}

}  // namespace

bool Acpi::parse_dmar(Acpi_bytes t, u64 phys, Dmar_info &d)
{
    if (!t.has(0, STRUCTS)) {
        diag("ACPI: DMAR at %#lx is too short (%u bytes), skipped", phys, t.len);
        return false;
    }
    memset(&d, 0, sizeof d);
    d.phys = phys;
    d.length = t.len;
    d.host_address_width = static_cast<u8>(t.b(36) + 1);
    d.flags = t.b(37);

    u32 drop_drhd = 0, drop_rmrr = 0;
    for (u32 off = STRUCTS; off < t.len;) {
        u16 type = t.w(off), len = t.has(off, 4) ? t.w(off + 2) : 0;
        if (len < min_len(type) || !t.has(off, len)) {
            diag("ACPI: DMAR at %#lx structure type %u at offset %#x has bad length %u, walk stopped", phys,
                 type, off, len);
            d.incomplete = true;
            break;
        }
        Acpi_bytes s{t.p + off, len};
        if (type == DRHD)
            add_drhd(s, off, phys, d, drop_drhd);
        else if (type == RMRR)
            add_rmrr(s, off, phys, d, drop_rmrr);
        else if (type == ATSR)
            d.num_atsr++;
        off += len;
    }
    if (drop_drhd || drop_rmrr) {
        d.incomplete = true;
        diag("ACPI: DMAR at %#lx: %u DRHD and %u RMRR structures beyond the limit ignored", phys, drop_drhd,
             drop_rmrr);
    }
    d.present = true;
    return true;
}
