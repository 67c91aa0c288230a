// host-testable
/*
 * The small fixed-layout ACPI tables: FADT ("FACP"; SCI, PM timer, reset register, boot
 * architecture flags, DSDT), HPET and MCFG. The FADT grew over many revisions, so every field
 * is read only if the table's length covers it.
 */
#include "acpi.hpp"
#include "diag.hpp"
#include "string.hpp"

namespace {

/* FADT field offsets (ACPI 6.x, 5.2.9). */
enum Fadt : u32 {
    DSDT = 40,
    SCI_INT = 46,
    PM_TMR_BLK = 76,
    PM_TMR_LEN = 91,
    IAPC_BOOT_ARCH = 109,
    FLAGS = 112,
    RESET_REG = 116,
    RESET_VALUE = 128,
    X_DSDT = 140,
    X_PM_TMR_BLK = 208,
};
constexpr u32 FADT_MIN = SCI_INT + 2, FADT_V1_LEN = 116, GAS_LEN = 12;

bool io_port_ok(u64 port, u32 width) { return port && port + width <= 0x10000; }

void fadt_pm_timer(Acpi_bytes t, u64 phys, Fadt_info &f)
{
    if (t.has(X_PM_TMR_BLK, GAS_LEN)) {
        Acpi_gas g = Acpi_gas::read(t, X_PM_TMR_BLK);
        bool ok = (g.space == Acpi_gas::IO && io_port_ok(g.address, 4)) || (g.space == Acpi_gas::MEMORY);
        if (g.address && ok) {
            f.pm_timer = g;
            f.pm_timer_present = true;
            return;
        }
        if (g.address)
            diag("ACPI: FADT at %#lx X_PM_TMR_BLK %#lx in space %u unusable, ignored", phys, g.address,
                 g.space);
    }
    u32 port = t.has(PM_TMR_BLK, 4) ? t.d(PM_TMR_BLK) : 0;
    if (!port)
        return;
    u8 len = t.b(PM_TMR_LEN);
    if (!io_port_ok(port, 4) || len != 4) {
        diag("ACPI: FADT at %#lx PM timer at port %#x with length %u unusable, ignored", phys, port, len);
        return;
    }
    f.pm_timer = {Acpi_gas::IO, 32, 0, 3, port};
    f.pm_timer_present = true;
}

void fadt_reset(Acpi_bytes t, u64 phys, Fadt_info &f)
{
    if (!(f.flags & Fadt_info::FLAG_RESET_REG_SUP))
        return;
    if (!t.has(RESET_REG, GAS_LEN + 1)) {
        diag("ACPI: FADT at %#lx claims a reset register but is too short for it", phys);
        return;
    }
    Acpi_gas g = Acpi_gas::read(t, RESET_REG);
    bool ok =
        g.address && g.space <= Acpi_gas::PCI_CONFIG && (g.space != Acpi_gas::IO || io_port_ok(g.address, 1));
    if (!ok) {
        diag("ACPI: FADT at %#lx reset register %#lx in space %u unusable, ignored", phys, g.address,
             g.space);
        return;
    }
    f.reset_reg = g;
    f.reset_value = t.b(RESET_VALUE);
    f.reset_valid = true;
}

void fadt_dsdt(Acpi_bytes t, u64 phys, Fadt_info &f)
{
    u32 dsdt = t.d(DSDT);
    u64 x_dsdt = t.has(X_DSDT, 8) ? t.q(X_DSDT) : 0;
    if (dsdt && x_dsdt && dsdt != x_dsdt)
        diag("ACPI: FADT at %#lx DSDT %#x and X_DSDT %#lx differ, using X_DSDT", phys, dsdt, x_dsdt);
    f.dsdt = x_dsdt ? x_dsdt : dsdt;
}

}  // namespace

bool Acpi::parse_fadt(Acpi_bytes t, u64 phys, Fadt_info &f)
{
    if (!t.has(0, FADT_MIN)) {
        diag("ACPI: FADT at %#lx is too short (%u bytes), skipped", phys, t.len);
        return false;
    }
    if (t.len < FADT_V1_LEN)
        diag("ACPI: FADT at %#lx is shorter than ACPI 1.0's (%u bytes)", phys, t.len);
    memset(&f, 0, sizeof f);
    f.phys = phys;
    f.length = t.len;
    f.revision = t.b(8);
    f.sci_int = t.w(SCI_INT);
    f.flags = t.has(FLAGS, 4) ? t.d(FLAGS) : 0;
    f.pm_timer_32bit = f.flags & Fadt_info::FLAG_TMR_VAL_EXT;

    // Reserved in ACPI 1.0 (FADT revision 1), so only trusted from revision 2 on.
    if (f.revision >= 2 && t.has(IAPC_BOOT_ARCH, 2)) {
        f.boot_arch_valid = true;
        f.boot_arch = t.w(IAPC_BOOT_ARCH);
    }
    fadt_pm_timer(t, phys, f);
    fadt_reset(t, phys, f);
    fadt_dsdt(t, phys, f);
    f.present = true;
    return true;
}

bool Acpi::parse_hpet(Acpi_bytes t, u64 phys, Hpet_info &h)
{
    constexpr u32 HPET_LEN = 56, BASE = 40;
    if (!t.has(0, HPET_LEN)) {
        diag("ACPI: HPET at %#lx is too short (%u bytes), skipped", phys, t.len);
        return false;
    }
    Acpi_gas g = Acpi_gas::read(t, BASE);
    if (g.space != Acpi_gas::MEMORY || !g.address || g.address % 8) {
        diag("ACPI: HPET at %#lx base %#lx in space %u unusable, skipped", phys, g.address, g.space);
        return false;
    }
    memset(&h, 0, sizeof h);
    h.phys = phys;
    h.base = g.address;
    h.block_id = t.d(36);
    h.number = t.b(52);
    h.min_tick = t.w(53);
    h.page_protection = t.b(55);
    h.present = true;
    return true;
}

namespace {

constexpr u64 MAX_PHYS = u64{1} << 52, BUS_SIZE = u64{256} * 4096;

bool mcfg_entry_ok(Mcfg_entry const &e, u64 phys, u32 i)
{
    if (e.end_bus < e.start_bus) {
        diag("ACPI: MCFG at %#lx entry %u: end bus %u below start bus %u, skipped", phys, i, e.end_bus,
             e.start_bus);
        return false;
    }
    // The base addresses bus 0 even if the range starts later, so bus end+1 must still fit.
    bool fits = e.base < MAX_PHYS && (e.end_bus + 1u) * BUS_SIZE <= MAX_PHYS - e.base;
    if (!e.base || e.base % PAGE_SIZE || !fits) {
        diag("ACPI: MCFG at %#lx entry %u: base %#lx unusable, skipped", phys, i, e.base);
        return false;
    }
    return true;
}

}  // namespace

bool Acpi::parse_mcfg(Acpi_bytes t, u64 phys, Mcfg_info &m)
{
    constexpr u32 ENTRIES = 44, ENTRY_LEN = 16;
    if (!t.has(0, ENTRIES)) {
        diag("ACPI: MCFG at %#lx is too short (%u bytes), skipped", phys, t.len);
        return false;
    }
    memset(&m, 0, sizeof m);
    m.phys = phys;
    u32 count = (t.len - ENTRIES) / ENTRY_LEN;
    if ((t.len - ENTRIES) % ENTRY_LEN)
        diag("ACPI: MCFG at %#lx has a partial entry at its end, ignored", phys);

    u32 dropped = 0;
    for (u32 i = 0; i < count; i++) {
        u32 off = ENTRIES + i * ENTRY_LEN;
        Mcfg_entry e{t.q(off), t.w(off + 8), t.b(off + 10), t.b(off + 11)};
        if (!mcfg_entry_ok(e, phys, i))
            continue;
        if (e.segment == 0 && !m.has_seg0) {
            m.has_seg0 = true;
            m.seg0_bus_start = e.start_bus;
            m.seg0_bus_end = e.end_bus;
            m.seg0_base = e.base + e.start_bus * BUS_SIZE;
            m.seg0_size = (e.end_bus - e.start_bus + 1u) * BUS_SIZE;
        }
        if (m.num_entries < Mcfg_info::MAX_ENTRIES)
            m.entry[m.num_entries++] = e;
        else
            dropped++;
    }
    if (dropped)
        diag("ACPI: MCFG at %#lx: %u entries beyond %u ignored", phys, dropped, Mcfg_info::MAX_ENTRIES);
    m.present = true;
    return true;
}
