// host-testable
/*
 * ACPI MADT ("APIC"): local APIC address, I/O APICs, interrupt source overrides, NMI wiring,
 * and the processor walk that lets the kernel size its CPU array before filling it.
 */
#include "acpi.hpp"
#include "diag.hpp"
#include "string.hpp"

namespace {

constexpr u32 ENTRIES = 44;
constexpr u32 CPU_ENABLED = 1, CPU_ONLINE_CAPABLE = 2;

enum Type : u8 {
    LAPIC = 0,
    IOAPIC = 1,
    OVERRIDE = 2,
    NMI_SOURCE = 3,
    LAPIC_NMI = 4,
    LAPIC_ADDR = 5,
    X2APIC = 9,
    X2APIC_NMI = 0xa,
};

u8 min_len(u8 type)
{
    switch (type) {
    case LAPIC: return 8;
    case IOAPIC: return 12;
    case OVERRIDE: return 10;
    case NMI_SOURCE: return 8;
    case LAPIC_NMI: return 6;
    case LAPIC_ADDR: return 12;
    case X2APIC: return 16;
    case X2APIC_NMI: return 12;
    default: return 2;
    }
}

/*
 * Calls fn(type, entry bytes, offset) for each well-formed entry; stops at the first broken one.
 * Returns the offset where the walk stopped, t.len if every entry was good.
 */
template <typename F> u32 walk(Acpi_bytes t, u64 phys, bool report, F const &fn)
{
    u32 off = ENTRIES;
    while (off < t.len) {
        if (!t.has(off, 2)) {
            if (report)
                diag("ACPI: MADT at %#lx has a stray byte at its end", phys);
            break;
        }
        u8 type = t.b(off), len = t.b(off + 1);
        if (len < min_len(type)) {
            if (report)
                diag("ACPI: MADT at %#lx entry type %u at offset %#x has bad length %u, walk stopped", phys,
                     type, off, len);
            break;
        }
        if (!t.has(off, len)) {
            if (report)
                diag("ACPI: MADT at %#lx entry type %u at offset %#x runs past the table end, walk stopped",
                     phys, type, off);
            break;
        }
        fn(type, Acpi_bytes{t.p + off, len}, off);
        off += len;
    }
    return off;
}

bool usable(u32 flags) { return flags & (CPU_ENABLED | CPU_ONLINE_CAPABLE); }

struct Id_bitmap
{
    u64 bits[4];

    void set(u32 id) { bits[id / 64] |= u64{1} << id % 64; }
    bool test(u32 id) const { return id < 256 && (bits[id / 64] >> id % 64 & 1); }
};

/* Is there a usable x2APIC entry for id before offset end? Bounded by MAX_MADT_LEN. */
bool x2apic_listed_before(Acpi_bytes t, u32 end, u32 id)
{
    bool found = false;
    walk(Acpi_bytes{t.p, end}, 0, false, [&](u8 type, Acpi_bytes e, u32) {
        if (type == X2APIC && usable(e.d(8)) && e.d(4) == id)
            found = true;
    });
    return found;
}

u32 emit_cpus(Acpi_bytes t, u64 phys, bool report, Madt_cpu_fn fn, void *ctx)
{
    Id_bitmap xapic{}, seen{};
    walk(t, phys, false, [&](u8 type, Acpi_bytes e, u32) {
        if (type == LAPIC && usable(e.d(4)) && e.b(3) != 0xff)
            xapic.set(e.b(3));
    });

    u32 n = 0;
    walk(t, phys, false, [&](u8 type, Acpi_bytes e, u32 off) {
        Madt_cpu cpu;
        u32 flags;
        if (type == LAPIC) {
            flags = e.d(4);
            u8 id = e.b(3);
            if (!usable(flags))
                return;
            if (id == 0xff || seen.test(id)) {
                if (report)
                    diag("ACPI: MADT at %#lx xAPIC entry for APIC id %#x %s, skipped", phys, id,
                         id == 0xff ? "is invalid" : "is listed twice");
                return;
            }
            seen.set(id);
            cpu = {id, e.b(2), false, false, false};
        } else if (type == X2APIC) {
            flags = e.d(8);
            u32 id = e.d(4);
            if (!usable(flags))
                return;
            if (id == ~0u || xapic.test(id) || x2apic_listed_before(t, off, id)) {
                if (report)
                    diag("ACPI: MADT at %#lx x2APIC entry for APIC id %#x %s, skipped", phys, id,
                         id == ~0u ? "is invalid" : "is listed twice");
                return;
            }
            cpu = {id, e.d(12), false, false, true};
        } else
            return;
        cpu.enabled = flags & CPU_ENABLED;
        cpu.online_capable = flags & CPU_ONLINE_CAPABLE;
        if (fn)
            fn(ctx, cpu);
        n++;
    });
    return n;
}

/* Entries dropped because a fixed array was full; reported once per kind after the walk. */
struct Dropped
{
    u32 ioapic, override_, nmi_source, lapic_nmi;
};

void add_ioapic(Acpi_bytes e, u64 phys, Madt_info &m, Dropped &d)
{
    Madt_ioapic io{e.b(2), e.d(4), e.d(8)};
    if (!io.address) {
        diag("ACPI: MADT at %#lx I/O APIC %u has address 0, skipped", phys, io.id);
        return;
    }
    for (u32 i = 0; i < m.num_ioapic; i++)
        if (m.ioapic[i].address == io.address || m.ioapic[i].id == io.id) {
            diag("ACPI: MADT at %#lx I/O APIC %u at %#x is listed twice, skipped", phys, io.id, io.address);
            return;
        }
    if (m.num_ioapic == Madt_info::MAX_IOAPIC) {
        d.ioapic++;
        return;
    }
    m.ioapic[m.num_ioapic++] = io;
}

/* Reserved polarity/trigger encodings are treated as "conforming". */
u16 sane_inti(u16 flags, u64 phys, char const *what, u32 which)
{
    u16 pol = flags & Madt_inti::POL_MASK, trg = (flags & Madt_inti::TRG_MASK) >> Madt_inti::TRG_SHIFT;
    if (pol == 2 || trg == 2) {
        diag("ACPI: MADT at %#lx %s %u has reserved flags %#x, treated as conforming", phys, what, which,
             flags);
        if (pol == 2)
            flags &= static_cast<u16>(~Madt_inti::POL_MASK);
        if (trg == 2)
            flags &= static_cast<u16>(~Madt_inti::TRG_MASK);
    }
    return flags;
}

void add_override(Acpi_bytes e, u64 phys, Madt_info &m, Dropped &d)
{
    Madt_override o{e.b(2), e.b(3), e.w(8), e.d(4)};
    if (o.bus != 0 || o.source >= 16) {
        diag("ACPI: MADT at %#lx override of bus %u IRQ %u is not ISA, skipped", phys, o.bus, o.source);
        return;
    }
    for (u32 i = 0; i < m.num_override; i++)
        if (m.overrides[i].source == o.source) {
            diag("ACPI: MADT at %#lx IRQ %u overridden twice, GSI %u ignored", phys, o.source, o.gsi);
            return;
        }
    o.flags = sane_inti(o.flags, phys, "override of IRQ", o.source);
    if (m.num_override == Madt_info::MAX_OVERRIDE) {
        d.override_++;
        return;
    }
    m.overrides[m.num_override++] = o;
}

void add_nmi_source(Acpi_bytes e, u64 phys, Madt_info &m, Dropped &d)
{
    Madt_nmi_source n{e.w(2), e.d(4)};
    n.flags = sane_inti(n.flags, phys, "NMI source GSI", n.gsi);
    if (m.num_nmi_source == Madt_info::MAX_NMI_SOURCE) {
        d.nmi_source++;
        return;
    }
    m.nmi_source[m.num_nmi_source++] = n;
}

void add_lapic_nmi(u8 type, Acpi_bytes e, u64 phys, Madt_info &m, Dropped &d)
{
    Madt_lapic_nmi n;
    if (type == LAPIC_NMI)
        n = {e.b(2), e.w(3), e.b(5), false};
    else
        n = {e.d(4), e.w(2), e.b(8), true};
    if (n.lint > 1) {
        diag("ACPI: MADT at %#lx local APIC NMI on LINT%u, skipped", phys, n.lint);
        return;
    }
    n.flags = sane_inti(n.flags, phys, "local APIC NMI of processor", n.acpi_uid);
    if (m.num_lapic_nmi == Madt_info::MAX_LAPIC_NMI) {
        d.lapic_nmi++;
        return;
    }
    m.lapic_nmi[m.num_lapic_nmi++] = n;
}

void add_lapic_addr(Acpi_bytes e, u64 phys, Madt_info &m, bool &overridden)
{
    u64 addr = e.q(4);
    if (!addr || overridden) {
        diag("ACPI: MADT at %#lx local APIC address override %#lx %s, ignored", phys, addr,
             addr ? "is not the first" : "is 0");
        return;
    }
    overridden = true;
    m.lapic_address = addr;
}

void report_dropped(u64 phys, Dropped const &d)
{
    if (d.ioapic)
        diag("ACPI: MADT at %#lx: %u I/O APICs beyond %u ignored", phys, d.ioapic, Madt_info::MAX_IOAPIC);
    if (d.override_)
        diag("ACPI: MADT at %#lx: %u overrides beyond %u ignored", phys, d.override_,
             Madt_info::MAX_OVERRIDE);
    if (d.nmi_source)
        diag("ACPI: MADT at %#lx: %u NMI sources beyond %u ignored", phys, d.nmi_source,
             Madt_info::MAX_NMI_SOURCE);
    if (d.lapic_nmi)
        diag("ACPI: MADT at %#lx: %u local APIC NMIs beyond %u ignored", phys, d.lapic_nmi,
             Madt_info::MAX_LAPIC_NMI);
}

void count_enabled(void *ctx, Madt_cpu const &cpu)
{
    if (cpu.enabled)
        ++*static_cast<u32 *>(ctx);
}

}  // namespace

bool Acpi::parse_madt(Acpi_bytes t, u64 phys, Madt_info &m)
{
    if (!t.has(0, ENTRIES)) {
        diag("ACPI: MADT at %#lx is too short (%u bytes), skipped", phys, t.len);
        return false;
    }
    memset(&m, 0, sizeof m);
    m.phys = phys;
    m.length = t.len;
    m.lapic_address = t.d(36);
    m.flags = t.d(40);

    Dropped dropped{};
    bool addr_overridden = false;
    m.walk_len = walk(t, phys, true, [&](u8 type, Acpi_bytes e, u32) {
        switch (type) {
        case IOAPIC: add_ioapic(e, phys, m, dropped); break;
        case OVERRIDE: add_override(e, phys, m, dropped); break;
        case NMI_SOURCE: add_nmi_source(e, phys, m, dropped); break;
        case LAPIC_NMI:
        case X2APIC_NMI: add_lapic_nmi(type, e, phys, m, dropped); break;
        case LAPIC_ADDR: add_lapic_addr(e, phys, m, addr_overridden); break;
        default: break;  // processors are walked below; unknown types are skipped
        }
    });
    report_dropped(phys, dropped);

    m.num_cpus = emit_cpus(Acpi_bytes{t.p, m.walk_len}, phys, true, count_enabled, &m.num_cpus_enabled);
    m.present = true;
    return true;
}

u32 Acpi::for_each_cpu(Acpi_bytes madt, Madt_cpu_fn fn, void *ctx)
{
    return madt.has(0, ENTRIES) ? emit_cpus(madt, 0, false, fn, ctx) : 0;
}
