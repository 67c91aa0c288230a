/*
 * ACPI table discovery and parsing: RSDP, RSDT/XSDT, MADT, FADT, HPET, MCFG, DMAR, IVRS.
 *
 * Firmware tables are untrusted input. Every table is read through a Phys_reader by physical
 * address; its length is bounded and its checksum verified before any field is used, every
 * field read is covered by the validated length, and a malformed table is reported with
 * diag() and skipped. No pointer returned by Phys_reader::map() is used after the next map()
 * call, so the kernel may back the reader with a single temporary mapping window.
 */
#pragma once

#include "phys_reader.hpp"
#include "types.hpp"

/* Little-endian reads from a validated table image; bytes outside it read as 0. */
struct Acpi_bytes
{
    const u8 *p;
    u32 len;

    bool has(u64 off, u64 n) const { return off <= len && n <= len - off; }
    u8 b(u32 off) const { return has(off, 1) ? p[off] : 0; }
    u16 w(u32 off) const { return has(off, 2) ? static_cast<u16>(p[off] | p[off + 1] << 8) : 0; }
    u32 d(u32 off) const { return has(off, 4) ? static_cast<u32>(w(off) | u32{w(off + 2)} << 16) : 0; }
    u64 q(u32 off) const { return has(off, 8) ? d(off) | u64{d(off + 4)} << 32 : 0; }
};

/* Trigger mode and polarity of a global system interrupt (ABI 11.1). */
struct Irq_mode
{
    enum Trigger : u8 { EDGE, LEVEL };
    enum Polarity : u8 { HIGH, LOW };

    Trigger trigger;
    Polarity polarity;
};

/* ACPI generic address structure (12 bytes in tables). */
struct Acpi_gas
{
    enum Space : u8 { MEMORY = 0, IO = 1, PCI_CONFIG = 2 };

    u8 space;
    u8 bit_width;
    u8 bit_offset;
    u8 access_size;
    u64 address;

    static Acpi_gas read(Acpi_bytes const &t, u32 off);
};

/* Root System Description Pointer: where the root table is. */
struct Acpi_rsdp
{
    u64 phys;  // where it was found; 0 for the loader's copy
    u8 revision;
    char oem_id[7];
    u32 rsdt;  // 0 if none
    u64 xsdt;  // 0 unless revision >= 2 and the extended checksum holds
    bool from_loader;
};

/* One line of the boot log's table list. */
struct Acpi_table_record
{
    char signature[5];  // printable copy, NUL-terminated
    char oem_id[7];
    u8 revision;
    u32 length;
    u64 phys;
};

/* A usable processor from the MADT (type 0 or type 9 entry). */
struct Madt_cpu
{
    u32 apic_id;
    u32 acpi_uid;         // ACPI processor id (type 0) or UID (type 9)
    bool enabled;         // flags bit 0: may be started at boot
    bool online_capable;  // flags bit 1: hot-pluggable later
    bool x2apic;          // came from a type 9 entry
};

using Madt_cpu_fn = void (*)(void *ctx, Madt_cpu const &cpu);

struct Madt_ioapic
{
    u8 id;
    u32 address;
    u32 gsi_base;
};

/* MPS INTI flags as in interrupt source overrides and NMI entries. */
struct Madt_inti
{
    enum : u16 { POL_MASK = 0x3, POL_CONFORM = 0, POL_HIGH = 1, POL_LOW = 3 };
    enum : u16 { TRG_SHIFT = 2, TRG_MASK = 0xc, TRG_CONFORM = 0, TRG_EDGE = 1, TRG_LEVEL = 3 };
};

struct Madt_override
{
    u8 bus;
    u8 source;  // ISA IRQ
    u16 flags;  // Madt_inti
    u32 gsi;
};

struct Madt_nmi_source
{
    u16 flags;
    u32 gsi;
};

struct Madt_lapic_nmi
{
    static constexpr u32 ALL_XAPIC = 0xff, ALL_X2APIC = 0xffffffff;

    u32 acpi_uid;  // ALL_XAPIC (type 4) or ALL_X2APIC (type 0xa) means every processor
    u16 flags;
    u8 lint;  // 0 or 1
    bool x2apic;

    bool all() const { return acpi_uid == (x2apic ? ALL_X2APIC : ALL_XAPIC); }
};

struct Madt_info
{
    static constexpr unsigned MAX_IOAPIC = 16, MAX_OVERRIDE = 48, MAX_NMI_SOURCE = 8, MAX_LAPIC_NMI = 32;
    static constexpr u32 FLAG_PCAT_COMPAT = 1;

    bool present;
    u64 phys;
    u32 length;
    u32 walk_len;       // entries before this offset passed validation; the CPU walk stops here
    u64 lapic_address;  // from the header, or a type 5 override
    u32 flags;
    u32 num_cpus;          // unique usable processors (what Acpi::for_each_cpu reports)
    u32 num_cpus_enabled;  // of those, the ones enabled at boot

    u32 num_ioapic;
    u32 num_override;
    u32 num_nmi_source;
    u32 num_lapic_nmi;
    Madt_ioapic ioapic[MAX_IOAPIC];
    Madt_override overrides[MAX_OVERRIDE];
    Madt_nmi_source nmi_source[MAX_NMI_SOURCE];
    Madt_lapic_nmi lapic_nmi[MAX_LAPIC_NMI];

    bool legacy_pic() const { return flags & FLAG_PCAT_COMPAT; }
};

struct Fadt_info
{
    static constexpr u32 FLAG_TMR_VAL_EXT = 1u << 8, FLAG_RESET_REG_SUP = 1u << 10;
    static constexpr u16 BOOT_LEGACY_DEVICES = 1, BOOT_8042 = 2, BOOT_VGA_NOT_PRESENT = 4;

    bool present;
    u64 phys;
    u32 length;
    u8 revision;
    u16 sci_int;  // ISA IRQ of the SCI (a GSI if >= 16)
    u32 flags;    // 0 if the table is too short to hold them
    u64 dsdt;     // X_DSDT if set, else DSDT

    bool pm_timer_present;
    bool pm_timer_32bit;  // TMR_VAL_EXT, else the counter has 24 bits
    Acpi_gas pm_timer;    // X_PM_TMR_BLK if usable, else PM_TMR_BLK as an I/O port

    bool reset_valid;
    Acpi_gas reset_reg;
    u8 reset_value;

    bool boot_arch_valid;  // IAPC_BOOT_ARCH is defined from FADT revision 2 on
    u16 boot_arch;

    bool legacy_devices() const { return !boot_arch_valid || (boot_arch & BOOT_LEGACY_DEVICES); }
    bool has_8042() const { return !boot_arch_valid || (boot_arch & BOOT_8042); }
    bool vga_not_present() const { return boot_arch_valid && (boot_arch & BOOT_VGA_NOT_PRESENT); }
};

struct Hpet_info
{
    bool present;
    u64 phys;
    u64 base;      // MMIO base of the event timer block
    u32 block_id;  // event timer block id (hardware revision, vendor, counts)
    u8 number;
    u16 min_tick;
    u8 page_protection;
};

struct Mcfg_entry
{
    u64 base;  // ECAM address of bus 0 of this segment
    u16 segment;
    u8 start_bus;
    u8 end_bus;
};

struct Mcfg_info
{
    static constexpr unsigned MAX_ENTRIES = 8;

    bool present;
    u64 phys;
    u32 num_entries;
    Mcfg_entry entry[MAX_ENTRIES];

    /* Segment 0's first entry in HIP terms (ABI 8.1): the region starts at bus seg0_bus_start. */
    bool has_seg0;
    u8 seg0_bus_start;
    u8 seg0_bus_end;
    u64 seg0_base;  // entry base + start bus * 1 MiB
    u64 seg0_size;  // (end - start + 1) * 256 * 4096
};

struct Dmar_scope
{
    enum : u8 { PCI_ENDPOINT = 1, PCI_SUB_HIERARCHY = 2, IOAPIC = 3, HPET = 4, ACPI_NAMESPACE = 5 };
    static constexpr unsigned MAX_PATH = 4;

    u8 type;
    u8 enum_id;
    u8 start_bus;
    u8 path_len;  // number of (device, function) pairs
    u8 path[MAX_PATH][2];
};

/* Device scopes of one remapping structure. "incomplete" means the list is not the whole truth. */
struct Dmar_scopes
{
    static constexpr unsigned MAX_SCOPES = 16;

    u8 count;
    bool incomplete;
    Dmar_scope scope[MAX_SCOPES];
};

struct Dmar_drhd
{
    static constexpr u8 FLAG_INCLUDE_PCI_ALL = 1;

    u8 flags;
    u16 segment;
    u64 base;
    Dmar_scopes scopes;

    bool include_pci_all() const { return flags & FLAG_INCLUDE_PCI_ALL; }
};

struct Dmar_rmrr
{
    u16 segment;
    u64 base;
    u64 limit;  // inclusive
    Dmar_scopes scopes;
};

struct Dmar_info
{
    static constexpr unsigned MAX_DRHD = 8, MAX_RMRR = 8;
    static constexpr u8 FLAG_INTR_REMAP = 1, FLAG_X2APIC_OPT_OUT = 2;

    bool present;
    u64 phys;  // HIP dmar_table
    u32 length;
    u8 host_address_width;  // bits of DMA address (the table's field + 1)
    u8 flags;
    bool incomplete;  // a structure was malformed or did not fit: do not claim full coverage
    u32 num_drhd;
    u32 num_rmrr;
    u32 num_atsr;
    Dmar_drhd drhd[MAX_DRHD];
    Dmar_rmrr rmrr[MAX_RMRR];

    bool intr_remap() const { return flags & FLAG_INTR_REMAP; }
    bool x2apic_opt_out() const { return flags & FLAG_X2APIC_OPT_OUT; }
};

/*
 * ACPI IVRS (AMD-Vi, AMD I/O Virtualization Technology specification, chapter 5). An IVHD
 * describes one IOMMU (types 10h, 11h and 40h may describe the same one; software picks the
 * highest type it knows) and the devices it translates, as ranges of device IDs (select, range,
 * all, alias, extended) and special devices (I/O APIC, HPET); an IVMD a unity-mapped or excluded
 * memory range. As with DMAR, anything malformed or too long to store marks the result
 * incomplete rather than guessed at.
 */
struct Ivrs_range
{
    u16 first, last;  // device IDs (bus << 8 | dev << 3 | fn)
    u16 alias;        // the requester ID their DMA carries (alias entries), else = each one's own
    bool aliased;
};

struct Ivrs_special
{
    enum : u8 { IOAPIC = 1, HPET = 2 };
    u8 variety;
    u8 handle;  // I/O APIC ID or HPET number
    u16 devid;
};

struct Ivrs_ivhd
{
    static constexpr unsigned MAX_RANGES = 32, MAX_SPECIAL = 8;

    u8 type;  // 0x10, 0x11, 0x40
    u8 flags;
    u16 devid;       // the IOMMU's own PCI function
    u16 cap_offset;  // its capability block in configuration space
    u16 segment;
    u16 info;
    u64 base;      // MMIO registers (16 KiB aligned)
    u32 features;  // type 10h: IOMMU feature reporting
    u64 efr;       // types 11h, 40h: the extended feature register's image
    bool incomplete;
    u8 num_ranges;
    u8 num_special;
    Ivrs_range range[MAX_RANGES];
    Ivrs_special special[MAX_SPECIAL];
};

struct Ivrs_ivmd
{
    static constexpr u8 UNITY = 1, READ = 2, WRITE = 4, EXCLUSION = 8;
    u8 type;  // 0x20 all devices, 0x21 one, 0x22 a range
    u8 flags;
    u16 first, last;  // devices it applies to
    u64 base, length;
};

struct Ivrs_info
{
    static constexpr unsigned MAX_IVHD = 8, MAX_IVMD = 8;

    bool present;
    u64 phys;
    u32 length;
    u32 iv_info;
    bool incomplete;
    u32 num_ivhd;
    u32 num_ivmd;
    Ivrs_ivhd ivhd[MAX_IVHD];
    Ivrs_ivmd ivmd[MAX_IVMD];
};

/* Everything the kernel needs from ACPI. About 6 KiB: keep it static, not on a stack. */
struct Acpi_info
{
    static constexpr unsigned MAX_TABLES = 32;

    bool valid;  // an RSDP and a usable root table were found
    Acpi_rsdp rsdp;
    u64 root_phys;
    bool root_is_xsdt;
    u32 num_tables;  // recorded in tables[]; more are logged but not recorded
    Acpi_table_record tables[MAX_TABLES];

    Madt_info madt;
    Fadt_info fadt;
    Hpet_info hpet;
    Mcfg_info mcfg;
    Dmar_info dmar;
    Ivrs_info ivrs;

    /* ISA IRQ to GSI: identity unless an interrupt source override says otherwise. */
    u32 isa_to_gsi(u8 irq) const;

    /* GSI of the ACPI SCI, ~0u without a FADT. */
    u32 sci_gsi() const;

    /* Trigger mode and polarity of a GSI following ABI 11.1. */
    Irq_mode gsi_mode(u32 gsi) const;
};

class Acpi
{
  public:
    static constexpr u32 HEADER_LEN = 36;
    static constexpr u32 MAX_TABLE_LEN = 1u << 20;   // tables this file parses
    static constexpr u32 MAX_MADT_LEN = 256u << 10;  // bounds the duplicate-CPU search
    static constexpr u32 MAX_ANY_LEN = 16u << 20;    // DSDT-sized tables we only list
    static constexpr u32 MAX_ROOT_ENTRIES = 1024;
    static constexpr u32 RSDP_V1_LEN = 20, RSDP_V2_LEN = 36, RSDP_MAX_LEN = 1024;

    static u8 checksum(u8 const *p, size_t len);

    enum Rsdp_check : u8 { RSDP_BAD, RSDP_OK, RSDP_V2_BAD_LENGTH, RSDP_V2_BAD_CHECKSUM };

    /*
     * Validates one RSDP image of len accessible bytes; phys is only recorded. Unless RSDP_BAD,
     * out holds the v1 fields, and xsdt only if the v2 part was verified. Reports nothing.
     */
    static Rsdp_check parse_rsdp(u8 const *p, size_t len, u64 phys, Acpi_rsdp &out);

    /* The loader's copy first; then, if allowed, the EBDA and 0xe0000..0xfffff (BIOS only). */
    static bool find_rsdp(Phys_reader const &r, u8 const *copy, size_t copy_len, bool allow_bios_scan,
                          Acpi_rsdp &out);

    /*
     * Maps a table header and fills the record; false (reported) if inaccessible or the
     * length is outside 36..max_len.
     */
    static bool read_header(Phys_reader const &r, u64 phys, u32 max_len, Acpi_table_record &rec);

    /* Maps a whole table whose header was read and checks its checksum; nullptr (reported) if bad. */
    static u8 const *map_table(Phys_reader const &r, Acpi_table_record const &rec);

    /* Table parsers; t is a checksummed table image. False (reported) if it cannot be used. */
    static bool parse_madt(Acpi_bytes t, u64 phys, Madt_info &out);
    static bool parse_fadt(Acpi_bytes t, u64 phys, Fadt_info &out);
    static bool parse_hpet(Acpi_bytes t, u64 phys, Hpet_info &out);
    static bool parse_mcfg(Acpi_bytes t, u64 phys, Mcfg_info &out);
    static bool parse_dmar(Acpi_bytes t, u64 phys, Dmar_info &out);
    static bool parse_ivrs(Acpi_bytes t, u64 phys, Ivrs_info &out);

    /*
     * Calls fn for each unique usable processor of the MADT, in table order (xAPIC duplicates
     * of x2APIC entries and repeated ids are reported once). Returns the number of calls.
     */
    static u32 for_each_cpu(Acpi_bytes madt, Madt_cpu_fn fn, void *ctx);
    static u32 for_each_cpu(Phys_reader const &r, Acpi_info const &info, Madt_cpu_fn fn, void *ctx);

    template <typename F> static u32 for_each_cpu(Phys_reader const &r, Acpi_info const &info, F const &f)
    {
        return for_each_cpu(
            r, info, [](void *c, Madt_cpu const &cpu) { (*static_cast<F const *>(c))(cpu); },
            const_cast<void *>(static_cast<void const *>(&f)));
    }
};

/*
 * Finds and validates the RSDP, the root table and the tables above; logs one line per table.
 * allow_bios_scan must be false under UEFI, where the legacy BIOS areas hold junk.
 * Returns out.valid.
 */
bool acpi_parse(Phys_reader const &r, u8 const *rsdp_copy, size_t rsdp_copy_len, bool allow_bios_scan,
                Acpi_info &out);
