/*
 * AMD-Vi encodings (AMD I/O Virtualization Technology (IOMMU) Specification, 48882: "MMIO
 * registers", "Device table entry", "Commands", "Event log"): register offsets and bits, device
 * table entries, the commands we send and the event log entries we read. Pure data and arithmetic,
 * host-tested (test/unit/test_amdvi.cpp); the driver that uses them is src/amdvi.cpp.
 */
#pragma once

#include "types.hpp"

namespace Amdvi {

namespace Reg {
constexpr unsigned DEV_TABLE = 0x00, CMD_BASE = 0x08, EVT_BASE = 0x10, CONTROL = 0x18, EXCL_BASE = 0x20,
                   EXCL_LIMIT = 0x28, EFR = 0x30;
constexpr unsigned CMD_HEAD = 0x2000, CMD_TAIL = 0x2008, EVT_HEAD = 0x2010, EVT_TAIL = 0x2018,
                   STATUS = 0x2020;
constexpr unsigned SIZE = 0x4000;  // the register block (16 KiB)
}  // namespace Reg

/* Control register. GA_EN: interrupt remapping entries have the 128-bit format (guest virtual
   APIC mode stays off: GAMEn 0, GuestMode 0 in every entry); XT_EN: their destinations are 32-bit
   x2APIC IDs. INTCAP_XT_EN (the unit's own interrupts through its XT interrupt registers instead of
   the MSI capability) stays clear: its MSI goes to CPU 0 (APIC ID 0) in the xAPIC format. */
namespace Ctl {
constexpr u64 IOMMU_EN = 1, EVT_LOG_EN = 1u << 2, EVT_INT_EN = 1u << 3, COHERENT = 1u << 10,
              CMD_BUF_EN = 1u << 12, GA_EN = 1u << 17, XT_EN = u64{1} << 50, INTCAP_XT_EN = u64{1} << 51;
}  // namespace Ctl

/* Status register: EVT_OVF, EVT_INT and COMWAIT_INT are write-1-to-clear. */
namespace Sts {
constexpr u64 EVT_OVF = 1, EVT_INT = 2, COMWAIT_INT = 4, EVT_RUN = 8, CMD_RUN = 16;
constexpr u64 CLEAR = EVT_OVF | EVT_INT | COMWAIT_INT;
}  // namespace Sts

/* The IOMMU capability header in PCI configuration space (dword 0 at the IVHD's offset). */
namespace Cap_hdr {
constexpr u32 NP_CACHE = 1u << 26, EFR_SUP = 1u << 27;
}

/* Extended feature register fields we use. */
struct Efr
{
    u64 v;
    constexpr bool xt() const { return v & (1u << 2); }  // XTSup: x2APIC destinations (XTEn)
    constexpr bool ia() const { return v & (1u << 6); }  // INVALIDATE_IOMMU_ALL
    constexpr bool ga() const { return v & (1u << 7); }  // GASup: the 128-bit entries (GAEn)
    /* Host address translation size: the most levels the unit walks (4 + HATS; 3 is reserved). */
    constexpr unsigned max_levels() const { return 4 + static_cast<unsigned>((v >> 10) & 3); }
};

/* Command buffer and event log base registers: address | log2(entries) << 56. */
constexpr unsigned CMD_LEN = 8;  // 256 commands of 16 bytes: one page
constexpr unsigned EVT_LEN = 9;  // 512 events of 16 bytes: two pages
constexpr u64 ring_base(u64 phys, unsigned len) { return phys | u64{len} << 56; }

/* The device table: one 32-byte entry per device ID, all 2^16 of them (2 MiB, size field 0x1ff). */
constexpr unsigned DEVICES = 0x10000;
constexpr unsigned DEV_TABLE_ORDER = 9;
constexpr u64 dev_table_base(u64 phys) { return phys | 0x1ff; }

struct Dte
{
    u64 q[4];
};
namespace Dte_bits {
constexpr u64 V = 1, TV = 2, IR = u64{1} << 61, IW = u64{1} << 62;
constexpr unsigned MODE_SHIFT = 9;
constexpr u64 ROOT = 0x000ffffffffff000ull;
}  // namespace Dte_bits
/* Translation through a `levels`-level table at `root` with read and write allowed (leaves decide),
   or (`rw` false) blocked: every access denied before the walk, a page fault event each. */
constexpr u64 dte_q0(u64 root, unsigned levels, bool rw)
{
    return Dte_bits::V | Dte_bits::TV | u64{levels} << Dte_bits::MODE_SHIFT | root |
           (rw ? Dte_bits::IR | Dte_bits::IW : 0);
}
constexpr u64 dte_q1(u16 domain) { return domain; }
constexpr u16 dte_domain(const Dte &d) { return static_cast<u16>(d.q[1]); }
constexpr bool dte_translates(const Dte &d)
{
    return (d.q[0] & (Dte_bits::V | Dte_bits::IR)) == (Dte_bits::V | Dte_bits::IR);
}

/* Commands (16 bytes; the opcode in bits 63:60 of the first quadword). */
struct Cmd
{
    u64 lo, hi;
};
namespace Op {
constexpr u64 COMPLETION_WAIT = 1, INV_DEVTAB_ENTRY = 2, INV_IOMMU_PAGES = 3, INV_INTERRUPT_TABLE = 5,
              INV_IOMMU_ALL = 8;
}
constexpr u64 op(u64 code) { return code << 60; }
/* Store `data` to `phys` (8-byte aligned) once every command before it is done (S = 1). */
constexpr Cmd completion_wait(u64 phys, u64 data)
{
    return {op(Op::COMPLETION_WAIT) | (phys & 0x000ffffffffffff8ull) | 1, data};
}
constexpr Cmd inv_devtab_entry(u16 devid) { return {op(Op::INV_DEVTAB_ENTRY) | devid, 0}; }
/* Every page of a domain, the page-directory caches with them (S = 1, PDE = 1, all addresses). */
constexpr u64 ALL_PAGES = 0x7ffffffffffff000ull;
constexpr Cmd inv_domain(u16 domain) { return {op(Op::INV_IOMMU_PAGES) | u64{domain} << 32, ALL_PAGES | 3}; }
constexpr Cmd inv_interrupt_table(u16 devid) { return {op(Op::INV_INTERRUPT_TABLE) | devid, 0}; }
constexpr Cmd inv_all() { return {op(Op::INV_IOMMU_ALL), 0}; }

/* An event log entry decoded. */
struct Event
{
    u8 code;
    u16 devid;
    u16 domain;  // IO_PAGE_FAULT: the domain (or PASID) of the request
    u16 flags;   // bits 27:16 of the second dword
    u64 addr;
};
constexpr Event event(u64 lo, u64 hi)
{
    return {static_cast<u8>(lo >> 60), static_cast<u16>(lo), static_cast<u16>(lo >> 16),
            static_cast<u16>((lo >> 48) & 0xfff), hi};
}
/*
 * Read the event log from entry `head` on, up to the first empty (all-zero) entry: fn(Event) for
 * each, which is then cleared so that the next round ends there; head advances modulo `entries`.
 * Returns how many were read. Polling the entries rather than the tail register: QEMU 7.2's tail
 * register does not follow its writes.
 */
template <class Fn> unsigned drain_log(u64 *log, unsigned entries, unsigned &head, Fn fn)
{
    unsigned n = 0;
    for (; n < entries; n++) {
        volatile u64 *e = &log[size_t{2} * head];
        u64 lo = e[0], hi = e[1];
        if (!lo && !hi)
            break;
        fn(event(lo, hi));
        e[0] = 0;
        e[1] = 0;
        head = (head + 1) % entries;
    }
    return n;
}

namespace Ev {
constexpr u8 ILLEGAL_DEV_TABLE_ENTRY = 1, IO_PAGE_FAULT = 2;
/* IO_PAGE_FAULT flags: the request was a write (RW), the entry was present (PR), interrupt (I). */
constexpr u16 INTERRUPT = 1u << 3, PRESENT = 1u << 4, WRITE = 1u << 5, PERMISSION = 1u << 6;
}  // namespace Ev
constexpr const char *event_name(u8 code)
{
    switch (code) {
    case 1: return "illegal device table entry";
    case 2: return "I/O page fault";
    case 3: return "device table hardware error";
    case 4: return "page table hardware error";
    case 5: return "illegal command";
    case 6: return "command hardware error";
    case 7: return "IOTLB invalidation timeout";
    case 8: return "invalid device request";
    default: return "other";
    }
}

/*
 * Interrupt remapping: a table of entries per requester (IntTabLen 8: 256 entries, 64-byte
 * aligned), indexed by bits 10:0 of the MSI data (an I/O APIC's: the RTE's vector). The third
 * quadword of a device table entry: IV, IntTabLen, the table, IntCtl 2 (fixed and arbitrated
 * interrupts remapped); without a table IV alone (IntCtl 0: every such interrupt aborted).
 *
 * Entries are 32 bits (xAPIC destinations, 8 bits) or, with GAEn, 128 bits; with XTEn as well
 * their destination is a 32-bit x2APIC ID (bits 31:8 of the first quadword: destination 23:0;
 * bits 63:56 of the second: destination 31:24; the vector in bits 7:0 of the second).
 */
namespace Intr {
constexpr unsigned LEN = 8, ENTRIES = 1u << LEN;
constexpr u64 IV = 1, INTCTL_REMAP = u64{2} << 60;
constexpr u64 dte_q2(u64 table_phys)
{
    return table_phys ? IV | u64{LEN} << 1 | (table_phys & 0x000fffffffffffc0ull) | INTCTL_REMAP : IV;
}
/* RemapEn, fixed delivery, physical destination `apic_id`, `vector`. */
constexpr u32 irte(u8 vector, u8 apic_id) { return 1 | u32{apic_id} << 8 | u32{vector} << 16; }
/* The same as a 128-bit entry (GuestMode 0) with a 32-bit destination: {first, second quadword}. */
struct Irte128
{
    u64 lo, hi;
};
constexpr Irte128 irte128(u8 vector, u32 apic_id)
{
    return {1 | u64{apic_id & 0xffffff} << 8, vector | u64{apic_id >> 24} << 56};
}
/* x2APIC destinations (GAEn and XTEn) where every unit has XTSup and GASup and the local APICs
   run in x2APIC mode (the destinations are x2APIC IDs); else 32-bit entries, xAPIC IDs. */
constexpr bool use_x2apic(bool units_xt_ga, bool x2apic) { return units_xt_ga && x2apic; }
/* An entry can name the CPU with this APIC ID: any with x2APIC destinations, else 0-255. */
constexpr bool reachable(u32 apic_id, bool x2) { return x2 || apic_id <= 0xff; }
}  // namespace Intr

/* The unit's MSI capability (PCI capability ID 5): message control bits. */
namespace Msi {
constexpr u8 CAP_ID = 5;
constexpr u16 ENABLE = 1, ADDR64 = 1u << 7;
/* Offset of the data register from the capability. */
constexpr unsigned data_offset(u16 control) { return (control & ADDR64) ? 0xc : 0x8; }
}  // namespace Msi

}  // namespace Amdvi
