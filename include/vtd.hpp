/*
 * Intel VT-d encodings (Intel VT-d specification, chapters 9 and 10): register offsets and bits,
 * the capability registers, root and context entries, queued-invalidation descriptors and
 * fault records. Pure data and arithmetic, host-tested (test/unit/test_vtd.cpp); the driver
 * that uses them is src/dmar.cpp.
 */
#pragma once

#include "types.hpp"

namespace Vtd {

namespace Reg {
constexpr unsigned VER = 0x00, CAP = 0x08, ECAP = 0x10, GCMD = 0x18, GSTS = 0x1c, RTADDR = 0x20, CCMD = 0x28;
constexpr unsigned IRTA = 0xb8;
constexpr unsigned FSTS = 0x34, FECTL = 0x38, FEDATA = 0x3c, FEADDR = 0x40, FEUADDR = 0x44, PMEN = 0x64;
constexpr unsigned IQH = 0x80, IQT = 0x88, IQA = 0x90, ICS = 0x9c;
}  // namespace Reg

/* Global command and status: the same bit positions. */
namespace Gcmd {
constexpr u32 TE = 1u << 31, SRTP = 1u << 30, SFL = 1u << 29, WBF = 1u << 27, QIE = 1u << 26, IRE = 1u << 25,
              SIRTP = 1u << 24, CFI = 1u << 23;
/* Status bits that are no enables: a command is the enables that are on plus one bit. */
constexpr u32 ONE_SHOT = SRTP | SFL | WBF | SIRTP;
constexpr u32 command(u32 gsts, u32 bit) { return (gsts & ~ONE_SHOT) | bit; }
}  // namespace Gcmd

namespace Fsts {
constexpr u32 PFO = 1u << 0, PPF = 1u << 1, IQE = 1u << 4, ICE = 1u << 5, ITE = 1u << 6;
constexpr u32 CLEAR = PFO | (1u << 2) | (1u << 3) | IQE | ICE | ITE;  // the write-1-to-clear bits
constexpr unsigned fri(u32 v) { return (v >> 8) & 0xff; }
}  // namespace Fsts

constexpr u32 FECTL_IM = 1u << 31, PMEN_EPM = 1u << 31;

struct Cap
{
    u64 v;
    constexpr unsigned nd() const { return v & 7; }
    constexpr bool rwbf() const { return v & (1u << 4); }
    constexpr bool plmr() const { return v & (1u << 5); }
    constexpr bool phmr() const { return v & (1u << 6); }
    constexpr bool cm() const { return v & (1u << 7); }
    constexpr unsigned sagaw() const { return (v >> 8) & 0x1f; }
    constexpr unsigned mgaw() const { return static_cast<unsigned>((v >> 16) & 0x3f) + 1; }
    constexpr unsigned fro() const { return static_cast<unsigned>((v >> 24) & 0x3ff) * 16; }  // bytes
    constexpr unsigned sllps() const { return (v >> 34) & 0xf; }
    constexpr unsigned nfr() const { return static_cast<unsigned>((v >> 40) & 0xff) + 1; }
    constexpr bool dwd() const { return v & (u64{1} << 54); }
    constexpr bool drd() const { return v & (u64{1} << 55); }
    /* Domain IDs the unit decodes: 2^(4 + 2 ND), at most 2^16. */
    constexpr u32 domains() const { return nd() >= 6 ? 0x10000u : 1u << (4 + 2 * nd()); }
};

struct Ecap
{
    u64 v;
    constexpr bool c() const { return v & 1; }  // coherent: table walks snoop caches
    constexpr bool qi() const { return v & 2; }
    constexpr bool ir() const { return v & 8; }
    constexpr bool eim() const { return v & 16; }
    constexpr unsigned iro() const { return static_cast<unsigned>((v >> 8) & 0x3ff) * 16; }  // bytes
};

/*
 * Levels of the second-level tables that every unit walks, from the units' common SAGAW: 4
 * (48-bit device addresses) if all have it, else 3 (39-bit), else 0 (none in common: no DMA
 * remapping). Never 5: our tables have four levels.
 */
constexpr unsigned levels(unsigned common_sagaw)
{
    return (common_sagaw & 4) ? 4 : (common_sagaw & 2) ? 3 : 0;
}
/* The context entry's AW field for those levels (2: 4-level, 1: 3-level). */
constexpr unsigned aw(unsigned levels) { return levels - 2; }

/* Root entry (16 bytes, one per bus): low word present bit and context-table address. */
constexpr u64 root_lo(u64 context_table_phys) { return context_table_phys | 1; }

/* Context entry (16 bytes, one per device function), legacy mode, translation type 0. */
constexpr u64 ctx_lo(u64 table_phys) { return table_phys | 1; }
constexpr u64 ctx_hi(unsigned levels, u16 did) { return aw(levels) | u64{did} << 8; }
constexpr u16 ctx_did(u64 hi) { return static_cast<u16>(hi >> 8); }

/* Queued-invalidation descriptors (128 bits). */
struct Desc
{
    u64 lo, hi;
};
namespace Inv {
constexpr u64 CC = 1, IOTLB = 2, IEC = 4, WAIT = 5;
constexpr unsigned GLOBAL = 1, DOMAIN = 2, DEVICE = 3;  // granularity (context cache; IOTLB: 3 = page)
constexpr Desc context_global() { return {CC | GLOBAL << 4, 0}; }
constexpr Desc context_domain(u16 did) { return {CC | DOMAIN << 4 | u64{did} << 16, 0}; }
constexpr Desc context_device(u16 did, u16 sid)
{
    return {CC | DEVICE << 4 | u64{did} << 16 | u64{sid} << 32, 0};
}
/* Drain reads and writes first where the unit can (CAP.DRD/DWD). */
constexpr u64 drain(Cap c) { return (c.dwd() ? 1u << 6 : 0) | (c.drd() ? 1u << 7 : 0); }
constexpr Desc iotlb_global(Cap c) { return {IOTLB | GLOBAL << 4 | drain(c), 0}; }
constexpr Desc iotlb_domain(Cap c, u16 did) { return {IOTLB | DOMAIN << 4 | drain(c) | u64{did} << 16, 0}; }
/* Status write of `data` to `status_phys` (4-byte aligned) once every earlier descriptor is done;
   fence: later descriptors wait for it. */
constexpr Desc wait(u64 status_phys, u32 data)
{
    return {WAIT | 1u << 5 | 1u << 6 | u64{data} << 32, status_phys};
}
/* Interrupt entry cache: every entry, or one index. */
constexpr Desc iec_global() { return {IEC, 0}; }
constexpr Desc iec_index(u16 index) { return {IEC | 1u << 4 | u64{index} << 32, 0}; }
}  // namespace Inv

/*
 * Interrupt remapping (VT-d 9.10): a table of 2^(S + 1) 16-byte entries, IRTA = table | EIME | S.
 * An entry: present, physical destination mode, fixed delivery, trigger mode, vector, destination;
 * source validation by requester ID (SVT 1, all 16 bits compared) or none (SVT 0). The destination
 * is an x2APIC ID in bits 63:32 in extended interrupt mode (EIME, units with ECAP.EIM), else an
 * xAPIC ID in bits 47:40 (the rest of 63:32 reserved, 0).
 */
namespace Irte {
constexpr unsigned SIZE_BITS = 7;  // S: 256 entries, one page
constexpr unsigned ENTRIES = 2u << SIZE_BITS;
constexpr u64 EIME = u64{1} << 11;
constexpr u64 irta(u64 table_phys, bool eim) { return table_phys | (eim ? EIME : 0) | SIZE_BITS; }
/* EIM where every unit has it, the local APICs run in x2APIC mode (the 32-bit destinations are
   x2APIC IDs) and the DMAR table does not ask to stay out of x2APIC (X2APIC_OPT_OUT). */
constexpr bool use_eim(bool units_eim, bool x2apic, bool opt_out) { return units_eim && x2apic && !opt_out; }
/* With X2APIC_OPT_OUT (and `iommu`) the local APICs stay in xAPIC mode where the firmware left
   them there and every APIC ID fits 8 bits; else x2APIC stays (without EIM). */
constexpr bool stay_xapic(bool opt_out, bool firmware_x2apic, u32 max_apic_id)
{
    return opt_out && !firmware_x2apic && max_apic_id <= 0xff;
}
/* An entry can name the CPU with this APIC ID: any with EIM, else xAPIC IDs 0-255. */
constexpr bool reachable(u32 apic_id, bool eim) { return eim || apic_id <= 0xff; }
constexpr u64 lo(u8 vector, u32 apic_id, bool level, bool eim)
{
    u64 dest = eim ? u64{apic_id} << 32 : u64{apic_id & 0xff} << 40;
    return 1 | (level ? 1u << 4 : 0) | u64{vector} << 16 | dest;
}
constexpr u64 hi(int sid) { return sid < 0 ? 0 : u64{1} << 18 | static_cast<u16>(sid); }
/* Remappable-format requests naming entry `index`: an I/O APIC RTE's upper dword (interrupt
   format bit 48, handle bits 63:49; handle bit 15 is RTE bit 11, and our indices are below 2^15),
   an MSI address with SHV (the data is the subhandle: handle 0 + data = index). */
constexpr u32 rte_hi(u16 index) { return u32{index} << 17 | 1u << 16; }
constexpr u32 MSI_ADDR = 0xfee00018;
}  // namespace Irte

/* A fault recording register (16 bytes) decoded. */
struct Fault
{
    bool valid;  // F
    bool read;   // T: 1 = read request
    u8 reason;   // FR
    u16 sid;     // source: bus << 8 | dev << 3 | fn
    u64 addr;    // FI: the page of the faulting request
};
constexpr Fault fault(u64 lo, u64 hi)
{
    return {static_cast<bool>(hi >> 63), static_cast<bool>((hi >> 62) & 1), static_cast<u8>(hi >> 32),
            static_cast<u16>(hi), lo & ~u64{0xfff}};
}
/* The reason codes of the legacy-mode translation faults (VT-d 7.1.3), for the console. */
constexpr const char *fault_reason(u8 fr)
{
    switch (fr) {
    case 1: return "root entry not present";
    case 2: return "context entry not present";
    case 3: return "invalid context entry";
    case 4: return "address beyond the address width";
    case 5: return "write not permitted";
    case 6: return "read not permitted";
    case 7: return "page-table entry not accessible";
    case 8: return "root table not accessible";
    case 9: return "context table not accessible";
    case 0xa: return "reserved bits in a root entry";
    case 0xb: return "reserved bits in a context entry";
    case 0xc: return "reserved bits in a page-table entry";
    case 0xd: return "translation type blocked";
    case 0x20: return "interrupt index beyond the table";
    case 0x21: return "interrupt entry not present";
    case 0x22: return "interrupt table not accessible";
    case 0x24: return "compatibility-format interrupt blocked";
    case 0x25: return "reserved bits in an interrupt entry";
    case 0x26: return "interrupt source-ID check failed";
    default: return "other";
    }
}

}  // namespace Vtd
