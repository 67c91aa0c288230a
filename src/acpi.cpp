// host-testable
/*
 * ACPI discovery: the RSDP (loader copy or BIOS scan), table headers and checksums, the
 * RSDT/XSDT walk that hands each known table to its parser, and the GSI routing rules of
 * ABI 11.1 that combine the MADT overrides with the FADT's SCI.
 */
#include "acpi.hpp"
#include "diag.hpp"
#include "string.hpp"

namespace {

/* Copies n bytes for printing; anything unprintable becomes '?', trailing blanks are dropped. */
void printable(char *dst, u8 const *src, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? static_cast<char>(src[i]) : '?';
    while (n && dst[n - 1] == ' ')
        n--;
    dst[n] = 0;
}

bool sig_is(Acpi_table_record const &rec, char const *sig) { return !memcmp(rec.signature, sig, 4); }

void log_table(Acpi_info &info, Acpi_table_record const &rec)
{
    diag("ACPI: %s at %#lx len %#x rev %u OEM %s", rec.signature, rec.phys, rec.length, rec.revision,
         rec.oem_id);
    if (info.num_tables < Acpi_info::MAX_TABLES)
        info.tables[info.num_tables++] = rec;
}

/* Checks the extended part of a v2 RSDP once the v1 part is known to be good. */
Acpi::Rsdp_check check_v2(u8 const *p, size_t len, Acpi_rsdp &out)
{
    if (len < Acpi::RSDP_V2_LEN)
        return Acpi::RSDP_V2_BAD_LENGTH;
    Acpi_bytes b{p, Acpi::RSDP_V2_LEN};
    u32 full = b.d(20);
    if (full < Acpi::RSDP_V2_LEN || full > Acpi::RSDP_MAX_LEN || full > len)
        return Acpi::RSDP_V2_BAD_LENGTH;
    if (Acpi::checksum(p, full))
        return Acpi::RSDP_V2_BAD_CHECKSUM;
    out.xsdt = b.q(24);
    return Acpi::RSDP_OK;
}

/* Reports why a candidate is unusable; true if it gives a root table. */
bool usable_rsdp(Acpi::Rsdp_check st, Acpi_rsdp const &rsdp, char const *where)
{
    if (st == Acpi::RSDP_V2_BAD_LENGTH)
        diag("ACPI: RSDP (%s) rev %u has a bad length, using the RSDT", where, rsdp.revision);
    else if (st == Acpi::RSDP_V2_BAD_CHECKSUM)
        diag("ACPI: RSDP (%s) has a bad extended checksum, using the RSDT", where);
    if (rsdp.xsdt || rsdp.rsdt)
        return true;
    diag("ACPI: RSDP (%s) names no root table, ignored", where);
    return false;
}

/* Checks the candidate at phys whose first 20 bytes already passed; maps what v2 needs. */
Acpi::Rsdp_check check_at(Phys_reader const &r, u64 phys, Acpi_rsdp &out)
{
    auto p = static_cast<u8 const *>(r.map(phys, Acpi::RSDP_V1_LEN));
    if (!p)
        return Acpi::RSDP_BAD;
    Acpi::Rsdp_check st = Acpi::parse_rsdp(p, Acpi::RSDP_V1_LEN, phys, out);
    if (st == Acpi::RSDP_BAD || out.revision < 2)
        return st;
    p = static_cast<u8 const *>(r.map(phys, Acpi::RSDP_V2_LEN));
    if (!p)
        return Acpi::RSDP_V2_BAD_LENGTH;
    u32 full = Acpi_bytes{p, Acpi::RSDP_V2_LEN}.d(20);
    if (full < Acpi::RSDP_V2_LEN || full > Acpi::RSDP_MAX_LEN)
        return Acpi::RSDP_V2_BAD_LENGTH;
    p = static_cast<u8 const *>(r.map(phys, full));
    return p ? Acpi::parse_rsdp(p, full, phys, out) : Acpi::RSDP_V2_BAD_LENGTH;
}

/* Scans [start, end) on 16-byte boundaries; counts candidates whose checksum fails. */
bool scan(Phys_reader const &r, u64 start, u64 end, Acpi_rsdp &out, unsigned &bad)
{
    for (u64 a = start; a + Acpi::RSDP_V1_LEN <= end; a += 16) {
        auto p = static_cast<u8 const *>(r.map(a, Acpi::RSDP_V1_LEN));
        if (!p || memcmp(p, "RSD PTR ", 8) != 0)
            continue;
        if (Acpi::checksum(p, Acpi::RSDP_V1_LEN)) {
            if (!bad++)
                diag("ACPI: RSDP candidate at %#lx has a bad checksum, skipped", a);
            continue;
        }
        Acpi::Rsdp_check st = check_at(r, a, out);
        if (st != Acpi::RSDP_BAD && usable_rsdp(st, out, "BIOS area"))
            return true;
    }
    return false;
}

bool scan_bios(Phys_reader const &r, Acpi_rsdp &out)
{
    constexpr u64 EBDA_PTR = 0x40e, EBDA_SCAN = 1024, LOW_END = 0xa0000;
    constexpr u64 BIOS_START = 0xe0000, BIOS_END = 0x100000;

    unsigned bad = 0;
    auto p = static_cast<u8 const *>(r.map(EBDA_PTR, 2));
    u64 ebda = p ? u64{Acpi_bytes{p, 2}.w(0)} << 4 : 0;

    // A missing EBDA reads as 0; one at or above 640 KiB is junk.
    if (ebda >= 0x400 && ebda < LOW_END) {
        u64 end = ebda + EBDA_SCAN < LOW_END ? ebda + EBDA_SCAN : LOW_END;
        if (scan(r, ebda, end, out, bad))
            return true;
    }
    if (scan(r, BIOS_START, BIOS_END, out, bad))
        return true;
    if (bad > 1)
        diag("ACPI: %u RSDP candidates with bad checksums skipped", bad);
    return false;
}

enum Kind { MADT, FADT, HPET, MCFG, DMAR, IVRS, OTHER };

Kind kind_of(Acpi_table_record const &rec)
{
    static constexpr char const *sigs[] = {"APIC", "FACP", "HPET", "MCFG", "DMAR", "IVRS"};
    for (unsigned k = 0; k < OTHER; k++)
        if (sig_is(rec, sigs[k]))
            return static_cast<Kind>(k);
    return OTHER;
}

/* Where a known table's result lives; first valid table wins. */
struct Slot
{
    bool const *present;
    u64 const *phys;
};

Slot slot_of(Acpi_info const &info, Kind k)
{
    switch (k) {
    case MADT: return {&info.madt.present, &info.madt.phys};
    case FADT: return {&info.fadt.present, &info.fadt.phys};
    case HPET: return {&info.hpet.present, &info.hpet.phys};
    case MCFG: return {&info.mcfg.present, &info.mcfg.phys};
    case DMAR: return {&info.dmar.present, &info.dmar.phys};
    case IVRS: return {&info.ivrs.present, &info.ivrs.phys};
    default: return {nullptr, nullptr};
    }
}

void parse_known(Kind k, Acpi_bytes t, u64 phys, Acpi_info &info)
{
    switch (k) {
    case MADT: Acpi::parse_madt(t, phys, info.madt); break;
    case FADT: Acpi::parse_fadt(t, phys, info.fadt); break;
    case HPET: Acpi::parse_hpet(t, phys, info.hpet); break;
    case MCFG: Acpi::parse_mcfg(t, phys, info.mcfg); break;
    case DMAR: Acpi::parse_dmar(t, phys, info.dmar); break;
    case IVRS: Acpi::parse_ivrs(t, phys, info.ivrs); break;
    default: break;
    }
}

void handle_table(Phys_reader const &r, u64 phys, Acpi_info &info)
{
    Acpi_table_record rec;
    if (!Acpi::read_header(r, phys, Acpi::MAX_ANY_LEN, rec))
        return;
    log_table(info, rec);

    Kind k = kind_of(rec);
    if (k == OTHER)
        return;
    u32 cap = k == MADT ? Acpi::MAX_MADT_LEN : Acpi::MAX_TABLE_LEN;
    if (rec.length > cap) {
        diag("ACPI: %s at %#lx is too long (%#x bytes), skipped", rec.signature, phys, rec.length);
        return;
    }
    u8 const *p = Acpi::map_table(r, rec);
    if (!p)
        return;
    Slot s = slot_of(info, k);
    if (*s.present) {  // NOLINT(clang-analyzer-core.NullDereference): k is not OTHER here
        diag("ACPI: duplicate %s at %#lx ignored, using the one at %#lx", rec.signature, phys, *s.phys);
        return;
    }
    parse_known(k, Acpi_bytes{p, rec.length}, phys, info);
}

bool walk_root(Phys_reader const &r, u64 phys, bool xsdt, Acpi_info &info)
{
    char const *name = xsdt ? "XSDT" : "RSDT";
    Acpi_table_record rec;
    if (!Acpi::read_header(r, phys, Acpi::MAX_TABLE_LEN, rec))
        return false;
    if (!sig_is(rec, name)) {
        diag("ACPI: expected %s at %#lx, found '%s', ignored", name, phys, rec.signature);
        return false;
    }
    if (!Acpi::map_table(r, rec))
        return false;
    log_table(info, rec);
    info.root_phys = phys;
    info.root_is_xsdt = xsdt;

    u32 width = xsdt ? 8 : 4;
    u32 count = (rec.length - Acpi::HEADER_LEN) / width;
    if ((rec.length - Acpi::HEADER_LEN) % width)
        diag("ACPI: %s at %#lx has a partial entry at its end, ignored", name, phys);
    if (count > Acpi::MAX_ROOT_ENTRIES) {
        diag("ACPI: %s at %#lx lists %u tables, only the first %u used", name, phys, count,
             Acpi::MAX_ROOT_ENTRIES);
        count = Acpi::MAX_ROOT_ENTRIES;
    }
    for (u32 i = 0; i < count; i++) {
        // Re-mapped per entry: parsing a table may have replaced the root table's mapping.
        auto e = static_cast<u8 const *>(r.map(phys + Acpi::HEADER_LEN + u64{i} * width, width));
        if (!e) {
            diag("ACPI: %s at %#lx became inaccessible", name, phys);
            break;
        }
        Acpi_bytes b{e, width};
        u64 addr = xsdt ? b.q(0) : b.d(0);
        if (!addr) {
            diag("ACPI: %s entry %u is null, skipped", name, i);
            continue;
        }
        handle_table(r, addr, info);
    }
    return true;
}

void log_dsdt(Phys_reader const &r, Acpi_info &info)
{
    Acpi_table_record rec;
    if (!info.fadt.dsdt || !Acpi::read_header(r, info.fadt.dsdt, Acpi::MAX_ANY_LEN, rec))
        return;
    if (!sig_is(rec, "DSDT"))
        diag("ACPI: FADT's DSDT at %#lx has signature '%s'", rec.phys, rec.signature);
    log_table(info, rec);
}

}  // namespace

Acpi_gas Acpi_gas::read(Acpi_bytes const &t, u32 off)
{
    return {t.b(off), t.b(off + 1), t.b(off + 2), t.b(off + 3), t.q(off + 4)};
}

u8 Acpi::checksum(u8 const *p, size_t len)
{
    u8 sum = 0;
    for (size_t i = 0; i < len; i++)
        sum = static_cast<u8>(sum + p[i]);
    return sum;
}

Acpi::Rsdp_check Acpi::parse_rsdp(u8 const *p, size_t len, u64 phys, Acpi_rsdp &out)
{
    if (!p || len < RSDP_V1_LEN || memcmp(p, "RSD PTR ", 8) != 0 || checksum(p, RSDP_V1_LEN))
        return RSDP_BAD;
    Acpi_bytes b{p, RSDP_V1_LEN};
    memset(&out, 0, sizeof out);
    out.phys = phys;
    out.revision = b.b(15);
    printable(out.oem_id, p + 9, 6);
    out.rsdt = b.d(16);
    return out.revision < 2 ? RSDP_OK : check_v2(p, len, out);
}

bool Acpi::find_rsdp(Phys_reader const &r, u8 const *copy, size_t copy_len, bool allow_bios_scan,
                     Acpi_rsdp &out)
{
    if (copy && copy_len) {
        Rsdp_check st = parse_rsdp(copy, copy_len, 0, out);
        if (st == RSDP_BAD)
            diag("ACPI: loader's RSDP copy (%zu bytes) is invalid", copy_len);
        else if (usable_rsdp(st, out, "loader copy")) {
            out.from_loader = true;
            return true;
        }
    }
    if (!allow_bios_scan)
        return false;
    return scan_bios(r, out);
}

bool Acpi::read_header(Phys_reader const &r, u64 phys, u32 max_len, Acpi_table_record &rec)
{
    auto h = static_cast<u8 const *>(r.map(phys, HEADER_LEN));
    if (!h) {
        diag("ACPI: table at %#lx is not accessible, skipped", phys);
        return false;
    }
    Acpi_bytes b{h, HEADER_LEN};
    printable(rec.signature, h, 4);
    printable(rec.oem_id, h + 10, 6);
    rec.length = b.d(4);
    rec.revision = b.b(8);
    rec.phys = phys;
    if (rec.length < HEADER_LEN || rec.length > max_len) {
        diag("ACPI: %s at %#lx has a bad length %#x, skipped", rec.signature, phys, rec.length);
        return false;
    }
    return true;
}

u8 const *Acpi::map_table(Phys_reader const &r, Acpi_table_record const &rec)
{
    auto p = static_cast<u8 const *>(r.map(rec.phys, rec.length));
    if (!p) {
        diag("ACPI: %s at %#lx is truncated (%#x bytes not accessible), skipped", rec.signature, rec.phys,
             rec.length);
        return nullptr;
    }
    // The header is read again from this mapping, so a table changing under us is caught too.
    if (Acpi_bytes{p, rec.length}.d(4) != rec.length || checksum(p, rec.length)) {
        diag("ACPI: %s at %#lx has a bad checksum, skipped", rec.signature, rec.phys);
        return nullptr;
    }
    return p;
}

u32 Acpi::for_each_cpu(Phys_reader const &r, Acpi_info const &info, Madt_cpu_fn fn, void *ctx)
{
    Madt_info const &m = info.madt;
    if (!m.present)
        return 0;
    auto p = static_cast<u8 const *>(r.map(m.phys, m.length));
    if (!p || checksum(p, m.length) || m.walk_len > m.length) {
        diag("ACPI: MADT at %#lx changed since boot", m.phys);
        return 0;
    }
    return for_each_cpu(Acpi_bytes{p, m.walk_len}, fn, ctx);
}

u32 Acpi_info::isa_to_gsi(u8 irq) const
{
    for (u32 i = 0; i < madt.num_override; i++)
        if (madt.overrides[i].source == irq)
            return madt.overrides[i].gsi;
    return irq;
}

u32 Acpi_info::sci_gsi() const
{
    if (!fadt.present)
        return ~0u;
    return fadt.sci_int < 16 ? isa_to_gsi(static_cast<u8>(fadt.sci_int)) : fadt.sci_int;
}

Irq_mode Acpi_info::gsi_mode(u32 gsi) const
{
    for (u32 i = 0; i < madt.num_override; i++) {
        Madt_override const &o = madt.overrides[i];
        if (o.gsi != gsi)
            continue;
        // "Conforming" means the bus default: ISA is edge/high, but the SCI is level/low.
        bool sci = fadt.present && o.source == fadt.sci_int;
        unsigned pol = o.flags & Madt_inti::POL_MASK;
        unsigned trg = (o.flags & Madt_inti::TRG_MASK) >> Madt_inti::TRG_SHIFT;
        Irq_mode m;
        m.polarity = pol == Madt_inti::POL_LOW    ? Irq_mode::LOW
                     : pol == Madt_inti::POL_HIGH ? Irq_mode::HIGH
                     : sci                        ? Irq_mode::LOW
                                                  : Irq_mode::HIGH;
        m.trigger = trg == Madt_inti::TRG_LEVEL  ? Irq_mode::LEVEL
                    : trg == Madt_inti::TRG_EDGE ? Irq_mode::EDGE
                    : sci                        ? Irq_mode::LEVEL
                                                 : Irq_mode::EDGE;
        return m;
    }
    if (gsi < 16)
        return {Irq_mode::EDGE, Irq_mode::HIGH};
    return {Irq_mode::LEVEL, Irq_mode::LOW};
}

bool acpi_parse(Phys_reader const &r, u8 const *rsdp_copy, size_t rsdp_copy_len, bool allow_bios_scan,
                Acpi_info &out)
{
    memset(&out, 0, sizeof out);
    if (!Acpi::find_rsdp(r, rsdp_copy, rsdp_copy_len, allow_bios_scan, out.rsdp)) {
        diag("ACPI: no RSDP found");
        return false;
    }
    Acpi_rsdp const &rsdp = out.rsdp;
    if (rsdp.from_loader)
        diag("ACPI: RSDP from the loader rev %u OEM %s", rsdp.revision, rsdp.oem_id);
    else
        diag("ACPI: RSDP at %#lx rev %u OEM %s", rsdp.phys, rsdp.revision, rsdp.oem_id);

    bool root = rsdp.xsdt && walk_root(r, rsdp.xsdt, true, out);
    if (!root && rsdp.xsdt && rsdp.rsdt)
        diag("ACPI: XSDT unusable, falling back to the RSDT");
    if (!root && rsdp.rsdt)
        root = walk_root(r, rsdp.rsdt, false, out);
    if (!root) {
        diag("ACPI: no usable root table");
        return false;
    }
    log_dsdt(r, out);
    out.valid = true;
    return true;
}
