// host-testable
/*
 * ACPI IVRS (AMD-Vi): IOMMU definition blocks (IVHD types 10h, 11h, 40h) with their device
 * entries, and memory definition blocks (IVMD types 20h-22h). Device entries carry their size in
 * their type (bits 7:6: 4, 8 or 16 bytes; type F0h, an ACPI device, says its own); an entry
 * that does not fit, a range end without a start or a start without an end, or more than we
 * store, marks the block incomplete: a driver must not trust a partial device list.
 */
#include "acpi.hpp"
#include "diag.hpp"
#include "string.hpp"

namespace {

constexpr u32 BLOCKS = 48;  // header (36), IVinfo (4), reserved (8)
constexpr u64 BASE_ALIGN = u64{16} << 10;

/* Size of the device entry at off, 0 if it cannot be known or does not fit. */
u32 entry_size(Acpi_bytes s, u32 off)
{
    u8 type = s.b(off);
    u32 n = type < 0x40 ? 4 : type < 0x80 ? 8 : type < 0xc0 ? 16 : 0;
    if (type == 0xf0 && s.has(off, 22))
        n = 22 + s.b(off + 21);  // ACPI HID device: the UID's length at byte 21
    return n && s.has(off, n) ? n : 0;
}

void add_range(Ivrs_ivhd &h, u16 first, u16 last, bool aliased, u16 alias)
{
    if (h.num_ranges == Ivrs_ivhd::MAX_RANGES) {
        h.incomplete = true;
        return;
    }
    h.range[h.num_ranges++] = {first, last, aliased ? alias : u16{0}, aliased};
}

void parse_entries(Acpi_bytes s, u32 from, u32 base, u64 phys, Ivrs_ivhd &h)
{
    bool open = false, aliased = false;
    u16 start = 0, alias = 0;
    for (u32 off = from; off < s.len;) {
        u32 n = entry_size(s, off);
        if (!n) {
            diag("ACPI: IVRS at %#lx IVHD device entry type %#x at offset %#x does not fit, entries "
                 "incomplete",
                 phys, s.b(off), base + off);
            h.incomplete = true;
            return;
        }
        u8 type = s.b(off);
        u16 devid = s.w(off + 1);
        bool starts = type == 0x03 || type == 0x43 || type == 0x47;
        if (open && type != 0x04 && type != 0x00) {
            diag("ACPI: IVRS at %#lx IVHD range at offset %#x has no end, entries incomplete", phys,
                 base + off);
            h.incomplete = true;
            return;
        }
        switch (type) {
        case 0x01: add_range(h, 0, 0xffff, false, 0); break;
        case 0x02:
        case 0x46: add_range(h, devid, devid, false, 0); break;
        case 0x42: add_range(h, devid, devid, true, s.w(off + 5)); break;
        case 0x04:
            if (!open || devid < start) {
                diag("ACPI: IVRS at %#lx IVHD range end at offset %#x without a matching start, entries "
                     "incomplete",
                     phys, base + off);
                h.incomplete = true;
                return;
            }
            add_range(h, start, devid, aliased, alias);
            open = false;
            break;
        case 0x48:
            if (h.num_special == Ivrs_ivhd::MAX_SPECIAL)
                h.incomplete = true;
            else
                h.special[h.num_special++] = {s.b(off + 7), s.b(off + 4), s.w(off + 5)};
            break;
        default: break;  // padding, ACPI devices, types we do not use
        }
        if (starts) {
            open = true;
            start = devid;
            aliased = type == 0x43;
            alias = aliased ? s.w(off + 5) : 0;
        }
        off += n;
    }
    if (open) {
        diag("ACPI: IVRS at %#lx IVHD at offset %#x ends inside a range, entries incomplete", phys, base);
        h.incomplete = true;
    }
}

void add_ivhd(Acpi_bytes s, u32 base, u64 phys, Ivrs_info &v, u32 &dropped)
{
    u8 type = s.b(0);
    u32 header = type == 0x10 ? 24 : 40;
    u64 reg = s.q(8);
    if (s.len < header) {
        diag("ACPI: IVRS at %#lx IVHD type %#x at offset %#x is shorter than its header, skipped", phys, type,
             base);
        v.incomplete = true;
        return;
    }
    if (!reg || reg % BASE_ALIGN) {
        diag("ACPI: IVRS at %#lx IVHD at offset %#x has register base %#lx, skipped", phys, base, reg);
        v.incomplete = true;
        return;
    }
    if (v.num_ivhd == Ivrs_info::MAX_IVHD) {
        dropped++;
        return;
    }
    Ivrs_ivhd &h = v.ivhd[v.num_ivhd++];
    h.type = type;
    h.flags = s.b(1);
    h.devid = s.w(4);
    h.cap_offset = s.w(6);
    h.base = reg;
    h.segment = s.w(16);
    h.info = s.w(18);
    if (type == 0x10)
        h.features = s.d(20);
    else
        h.efr = s.q(24);
    parse_entries(s, header, base, phys, h);
}

void add_ivmd(Acpi_bytes s, u32 base, u64 phys, Ivrs_info &v, u32 &dropped)
{
    Ivrs_ivmd m{s.b(0), s.b(1), 0, 0xffff, s.q(16), s.q(24)};
    if (m.type == 0x21)
        m.first = m.last = s.w(4);
    else if (m.type == 0x22) {
        m.first = s.w(4);
        m.last = s.w(6);
    }
    if (m.base % PAGE_SIZE || m.length % PAGE_SIZE || !m.length || m.base + m.length < m.base ||
        m.first > m.last) {
        diag("ACPI: IVRS at %#lx IVMD at offset %#x (%#lx+%#lx, devices %#x-%#x) is malformed, skipped", phys,
             base, m.base, m.length, m.first, m.last);
        v.incomplete = true;
        return;
    }
    if (v.num_ivmd == Ivrs_info::MAX_IVMD) {
        dropped++;
        return;
    }
    v.ivmd[v.num_ivmd++] = m;
}

}  // namespace

bool Acpi::parse_ivrs(Acpi_bytes t, u64 phys, Ivrs_info &v)
{
    if (!t.has(0, BLOCKS)) {
        diag("ACPI: IVRS at %#lx is too short (%u bytes), skipped", phys, t.len);
        return false;
    }
    memset(&v, 0, sizeof v);
    v.phys = phys;
    v.length = t.len;
    v.iv_info = t.d(36);
    u32 dropped = 0;
    for (u32 off = BLOCKS; off < t.len;) {
        u8 type = t.b(off);
        u16 len = t.has(off, 4) ? t.w(off + 2) : 0;
        u32 min = type == 0x10                     ? 24
                  : (type == 0x11 || type == 0x40) ? 40
                  : (type >= 0x20 && type <= 0x22) ? 32
                                                   : 4;
        if (len < min || !t.has(off, len)) {
            diag("ACPI: IVRS at %#lx block type %#x at offset %#x has bad length %u, walk stopped", phys,
                 type, off, len);
            v.incomplete = true;
            break;
        }
        Acpi_bytes s{t.p + off, len};
        if (type == 0x10 || type == 0x11 || type == 0x40)
            add_ivhd(s, off, phys, v, dropped);
        else if (type >= 0x20 && type <= 0x22)
            add_ivmd(s, off, phys, v, dropped);
        off += len;
    }
    for (u32 i = 0; i < v.num_ivhd; i++)
        v.incomplete |= v.ivhd[i].incomplete;
    if (dropped) {
        v.incomplete = true;
        diag("ACPI: IVRS at %#lx: %u blocks beyond the limits ignored", phys, dropped);
    }
    v.present = true;
    return true;
}
