/*
 * Intel VT-d DMA remapping (include/iommu.hpp; ABI 7.14, 11.4; docs/iommu.md).
 *
 * All units share one root table; a context table per bus appears with the bus's first
 * assigned device. A context entry points at the assigned PD's DMA page table (Pd::dpt, four
 * levels; with 3-level units at the table below its first entry, and device addresses stay
 * below 2^39) under the PD's domain ID, allocated with its first device and freed when the PD
 * goes. Devices without a context entry are blocked (fault reason 2).
 *
 * Invalidation is queued (a unit without queued invalidation is not used) and always ends with
 * a wait descriptor whose status write the CPU polls, so a change is out of every unit's caches
 * before the caller goes on: rights taken away (revoke, downgrade, PD teardown) invalidate the
 * PD's domain in every IOTLB (with the paging-structure caches); a context entry changed
 * invalidates the context caches and the old and new domains. In caching mode (virtual units)
 * new entries are invalidated too; units that do not snoop (ECAP.C = 0) get their tables
 * written back with clflush, and units that need it (CAP.RWBF) a write-buffer flush.
 *
 * Faults raise the fault event (Vec::IOMMU on CPU 0); each record is printed (rate-limited with
 * the console's other lines user mode can provoke) and cleared, and so is overflow, so the unit
 * keeps recording after any storm.
 *
 * Interrupt remapping (where the DMAR table and every unit allow it): one table, entry = GSI,
 * each change invalidated by index in every unit; I/O APIC pins and MSIs name their entry in the
 * remappable format (src/ioapic.cpp, assign_gsi). Destinations are x2APIC IDs (EIM) where every
 * unit has EIM, the machine runs x2APIC and the DMAR table does not opt out, else xAPIC IDs.
 */
#include "abi/hip.hpp"
#include "boot.hpp"
#include "console.hpp"
#include "cpu.hpp"
#include "dmar_scope.hpp"
#include "idt.hpp"
#include "iommu.hpp"
#include "kmem.hpp"
#include "lapic.hpp"
#include "memory.hpp"
#include "objects.hpp"
#include "paging.hpp"
#include "spinlock.hpp"
#include "string.hpp"
#include "vtd.hpp"
#include "x86.hpp"

namespace {

using namespace Vtd;

constexpr unsigned QUEUE_ENTRIES = PAGE_SIZE / sizeof(Desc);  // IQA.QS = 0
constexpr u16 RMRR_DID = 1;                                   // 0 is reserved in caching mode
constexpr u64 SPIN_LIMIT = u64{1} << 32;                      // a unit that never answers: give up

struct Unit
{
    volatile u8 *regs;
    u64 phys, pages;  // register range
    Cap cap;
    Ecap ecap;
    Desc *queue;
    unsigned tail;  // next free descriptor
    volatile u32 *status;
};

Unit units[Dmar_info::MAX_DRHD];
unsigned num_units;
bool on, coherent = true, caching_mode, write_buffer;
unsigned depth, large;  // table levels the units walk; leaf sizes (Iommu::large_pages)
u32 num_dids;
u64 *root_table;
u64 *ctx_tables[256];        // per bus (16-byte entries as pairs)
volatile u8 *bus_cfg[256];   // MMCONFIG of each bus, mapped on first use
u64 *rmrr_table;             // identity maps of the RMRR regions (domain RMRR_DID)
u64 did_used[0x10000 / 64];  // domain IDs in use
u64 *irt;                    // interrupt remapping table (index = GSI), shared by all units
bool ir_on, eim;             // interrupt remapping; with 32-bit x2APIC destinations
Spinlock lock;               // tables, queues, domain IDs, configuration mappings

u32 rd32(const Unit &u, unsigned off) { return *reinterpret_cast<volatile const u32 *>(u.regs + off); }
u64 rd64(const Unit &u, unsigned off) { return *reinterpret_cast<volatile const u64 *>(u.regs + off); }
void wr32(const Unit &u, unsigned off, u32 v) { *reinterpret_cast<volatile u32 *>(u.regs + off) = v; }
void wr64(const Unit &u, unsigned off, u64 v) { *reinterpret_cast<volatile u64 *>(u.regs + off) = v; }

void clflush(const void *p) { asm volatile("clflush %0" ::"m"(*static_cast<const char *>(p)) : "memory"); }

/* Table memory the units read: written back where they do not snoop. */
void write_back(const void *p, size_t len)
{
    if (coherent)
        return;
    auto a = reinterpret_cast<u64>(p) & ~u64{63};
    for (u64 end = reinterpret_cast<u64>(p) + len; a < end; a += 64)
        clflush(reinterpret_cast<const void *>(a));
    asm volatile("mfence" ::: "memory");
}

/* Set (or clear) one enable of GCMD and wait for GSTS to follow; false if the unit never does. */
bool command(Unit &u, u32 bit, bool set)
{
    u32 gsts = rd32(u, Reg::GSTS);
    wr32(u, Reg::GCMD, set ? Gcmd::command(gsts, bit) : Gcmd::command(gsts, 0) & ~bit);
    // One-shot commands (root pointer, write-buffer flush) report completion differently: SRTP
    // and SIRTP set their status bit, WBF clears it.
    bool want = bit == Gcmd::WBF ? false : set;
    for (u64 i = 0; i < SPIN_LIMIT; i++) {
        if (static_cast<bool>(rd32(u, Reg::GSTS) & bit) == want)
            return true;
        pause();
    }
    trace("IOMMU: unit at %#lx does not complete command %#x", u.phys, bit);
    return false;
}

/* Queue descriptors and a wait descriptor, then poll its status write (lock held). */
bool submit(Unit &u, const Desc *d, unsigned n)
{
    *u.status = 0;
    for (unsigned i = 0; i <= n; i++) {
        u.queue[u.tail] = i < n ? d[i] : Inv::wait(virt_to_phys(const_cast<u32 *>(u.status)), 1);
        write_back(&u.queue[u.tail], sizeof(Desc));
        u.tail = (u.tail + 1) % QUEUE_ENTRIES;
    }
    wr64(u, Reg::IQT, u64{u.tail} << 4);
    for (u64 i = 0; i < SPIN_LIMIT; i++) {
        if (__atomic_load_n(u.status, __ATOMIC_ACQUIRE) == 1)
            return true;
        if (rd32(u, Reg::FSTS) & (Fsts::IQE | Fsts::ITE | Fsts::ICE))
            break;
        pause();
    }
    trace("IOMMU: unit at %#lx: invalidation failed (FSTS %#x, IQH %#lx IQT %#lx)", u.phys,
          rd32(u, Reg::FSTS), rd64(u, Reg::IQH), rd64(u, Reg::IQT));
    return false;
}

void flush_write_buffers()
{
    if (write_buffer)
        for (unsigned i = 0; i < num_units; i++)
            if (units[i].cap.rwbf())
                command(units[i], Gcmd::WBF, true);
}

/* The IOTLB entries (and paging-structure caches) of one domain, in every unit (lock held). */
void invalidate_domain(u16 did)
{
    flush_write_buffers();
    for (unsigned i = 0; i < num_units; i++) {
        Desc d = Inv::iotlb_domain(units[i].cap, did);
        submit(units[i], &d, 1);
    }
}

/* A context entry changed from domain `old` (0: none) to `did` (0: none) (lock held). */
void invalidate_context(u16 old, u16 did)
{
    flush_write_buffers();
    for (unsigned i = 0; i < num_units; i++) {
        Desc d[3] = {Inv::context_global(), Inv::iotlb_domain(units[i].cap, old ? old : did),
                     Inv::iotlb_domain(units[i].cap, did ? did : old)};
        submit(units[i], d, 3);
    }
}

/* Write back what a table change touched: every entry visited, and whole tables below the top. */
void write_back_range(u64 *table, u64 va, u64 size)
{
    if (coherent || !table)
        return;
    u64 done[3] = {~u64{0}, ~u64{0}, ~u64{0}};  // the table of each level written back last
    for (u64 end = va + size; va < end;) {
        u64 *t = table, span = 0;
        for (unsigned l = 3;; l--) {
            if (l < 3 && done[l] != virt_to_phys(t)) {
                write_back(t, PAGE_SIZE);
                done[l] = virt_to_phys(t);
            }
            u64 &e = t[(va >> (12 + 9 * l)) & 0x1ff];
            write_back(&e, sizeof e);
            span = u64{1} << (12 + 9 * l);
            if (!(e & Pte::P) || l == 0 || (e & Pte::PS))
                break;
            t = phys_to_virt<u64>(e & Pte::ADDR);
        }
        va = align_down(va, span) + span;
    }
}

/* A new DMA table; with 3-level units its first PDPT, where the units start their walk, too.
   q pays (a PD's quota; nullptr: the kernel's own, the RMRR table). */
u64 *new_table(Quota *q)
{
    auto *t = static_cast<u64 *>(Kmem::alloc_page(q));
    if (!t || depth == 4)
        return t;
    auto *pdpt = static_cast<u64 *>(Kmem::alloc_page(q));
    if (!pdpt) {
        Kmem::free(t, 0, q);
        return nullptr;
    }
    // Its count stays 0 while empty (Pte::COUNT); it is the only PDPT device addresses below
    // 2^39 use, so Paging::unmap keeps it when it empties, and nobody trims DMA tables.
    t[0] = virt_to_phys(pdpt) | Pte::P | Pte::W | Pte::U;
    return t;
}

u64 walk_root(const u64 *t) { return depth == 4 ? virt_to_phys(t) : t[0] & Pte::ADDR; }

/* PCI configuration space of rid through MMCONFIG, nullptr if outside it (lock held). */
volatile u8 *config(u16 rid)
{
    const Mcfg_info &m = Boot::acpi.mcfg;
    unsigned bus = rid >> 8;
    if (!m.has_seg0 || bus < m.seg0_bus_start || bus > m.seg0_bus_end)
        return nullptr;
    if (!bus_cfg[bus])
        bus_cfg[bus] = static_cast<volatile u8 *>(
            Mmio::map(m.seg0_base + (u64{bus - m.seg0_bus_start} << 20), u64{1} << 20));
    return bus_cfg[bus] ? bus_cfg[bus] + (u64{rid & 0xffu} << 12) : nullptr;
}

bool present(u16 rid)
{
    volatile u8 *c = config(rid);
    return c && *reinterpret_cast<volatile u16 *>(c) != 0xffff;
}

bool bridge_buses(void *, u16 rid, u8 &secondary, u8 &subordinate)
{
    volatile u8 *c = config(rid);
    if (!c || *reinterpret_cast<volatile u16 *>(c) == 0xffff || (c[0xe] & 0x7f) != 1)
        return false;  // absent, or not a PCI-to-PCI bridge (header type 1)
    secondary = c[0x19];
    subordinate = c[0x1a];
    return true;
}

u16 alloc_did()
{
    for (u32 d = RMRR_DID + 1; d < num_dids; d++)
        if (!(did_used[d / 64] & (u64{1} << (d % 64)))) {
            did_used[d / 64] |= u64{1} << (d % 64);
            return static_cast<u16>(d);
        }
    return 0;
}

/* rid's context entry: through `table` in domain did (lock held); false: out of memory. */
bool set_context(u16 rid, const u64 *table, u16 did)
{
    unsigned bus = rid >> 8;
    if (!ctx_tables[bus]) {
        auto *t = static_cast<u64 *>(Kmem::alloc_page());
        if (!t)
            return false;
        write_back(t, PAGE_SIZE);
        ctx_tables[bus] = t;
        root_table[size_t{2} * bus] = root_lo(virt_to_phys(t));
        write_back(&root_table[size_t{2} * bus], 16);
    }
    u64 *ce = &ctx_tables[bus][size_t{2} * (rid & 0xffu)];
    u16 old = 0;
    if (ce[0] & 1) {
        // A present entry changes: not present first, out of the caches, then the new one.
        old = ctx_did(ce[1]);
        __atomic_store_n(&ce[0], 0, __ATOMIC_RELEASE);
        write_back(ce, 16);
        invalidate_context(old, 0);
    }
    ce[1] = ctx_hi(depth, did);
    __atomic_store_n(&ce[0], ctx_lo(walk_root(table)), __ATOMIC_RELEASE);
    write_back(ce, 16);
    invalidate_context(old, did);
    return true;
}

u64 dma_limit() { return depth == 4 ? u64{1} << 36 : u64{1} << 27; }

/* ABI 11.4: RMRR devices get an identity map of their regions (read and write), domain RMRR_DID. */
void setup_rmrr(const Dmar_info &d)
{
    for (unsigned i = 0; i < d.num_rmrr && i < Dmar_info::MAX_RMRR; i++) {
        const Dmar_rmrr &r = d.rmrr[i];
        u64 pages = (r.limit + 1 - r.base) >> 12;
        if (r.segment || ((r.limit + 1) >> 12) > dma_limit()) {
            trace("IOMMU: RMRR %#lx-%#lx beyond the device address width or segment 0, not mapped", r.base,
                  r.limit);
            continue;
        }
        if (!rmrr_table)
            rmrr_table = new_table(nullptr);
        if (!rmrr_table)
            return;
        if (!Paging::map(rmrr_table, r.base, r.base, pages << 12, Pte::W | Pte::U, false)) {
            trace("IOMMU: out of memory for RMRR %#lx-%#lx", r.base, r.limit);
            continue;
        }
        write_back_range(rmrr_table, r.base, pages << 12);
        for (unsigned s = 0; s < r.scopes.count && s < Dmar_scopes::MAX_SCOPES; s++) {
            u16 rid;
            if (r.scopes.scope[s].type != Dmar_scope::PCI_ENDPOINT ||
                !Dmar_scope_map::end_rid(r.scopes.scope[s], bridge_buses, nullptr, rid))
                continue;
            trace("IOMMU: RMRR %#lx-%#lx identity-mapped for %02x:%02x.%x", r.base, r.limit, rid >> 8,
                  (rid >> 3) & 0x1f, rid & 7);
            set_context(rid, rmrr_table, RMRR_DID);
        }
    }
}

/* Report and clear a unit's fault records and error bits (lock held). */
void faults(Unit &u, unsigned idx)
{
    u32 fsts = rd32(u, Reg::FSTS);
    unsigned nfr = u.cap.nfr(), fro = u.cap.fro();
    for (unsigned n = 0, i = Fsts::fri(fsts) % nfr; n < nfr; n++, i = (i + 1) % nfr) {
        Fault f = fault(rd64(u, fro + 16 * i), rd64(u, fro + 16 * i + 8));
        if (!f.valid)
            continue;
        trace_user("DMAR:%#lx FRR:%u FR:%#x BDF:%x:%x:%x FI:%#lx (%s, %s)", u.phys, i, f.reason, f.sid >> 8,
                   (f.sid >> 3) & 0x1f, f.sid & 7, f.addr, f.read ? "read" : "write", fault_reason(f.reason));
        wr32(u, fro + 16 * i + 12, 1u << 31);  // F is write-1-to-clear
    }
    if (fsts & (Fsts::IQE | Fsts::ICE | Fsts::ITE))
        trace("IOMMU: unit %u invalidation error (FSTS %#x)", idx, fsts);
    if (fsts & Fsts::PFO)
        trace_user("IOMMU: unit %u: fault records overflowed, faults were lost", idx);
    wr32(u, Reg::FSTS, fsts & Fsts::CLEAR);
}

/* Take over one DRHD; false if it cannot be used. */
bool probe(const Dmar_drhd &h, Unit &u)
{
    u.phys = h.base;
    u.pages = 1;
    u.regs = static_cast<volatile u8 *>(Mmio::map(h.base, PAGE_SIZE));
    if (!u.regs)
        return false;
    u.cap = Cap{rd64(u, Reg::CAP)};
    u.ecap = Ecap{rd64(u, Reg::ECAP)};
    u32 ver = rd32(u, Reg::VER);
    trace("IOMMU: VT-d unit at %#lx version %u.%u CAP %#lx ECAP %#lx", h.base, (ver >> 4) & 0xf, ver & 0xf,
          u.cap.v, u.ecap.v);
    u64 span = u.cap.fro() + 16 * u.cap.nfr();
    if (u.ecap.iro() + 16 > span)
        span = u.ecap.iro() + 16;
    u.pages = align_up(span, PAGE_SIZE) >> 12;
    if (u.pages > 1)
        u.regs = static_cast<volatile u8 *>(Mmio::map(h.base, u.pages << 12));
    if (!u.regs)
        return false;
    if (!u.ecap.qi()) {
        trace("IOMMU: unit at %#lx has no queued invalidation: not supported", h.base);
        return false;
    }
    if (!Vtd::levels(u.cap.sagaw())) {
        trace("IOMMU: unit at %#lx walks neither 3- nor 4-level tables (SAGAW %#x)", h.base, u.cap.sagaw());
        return false;
    }
    return true;
}

/* Switch the unit to our tables: firmware's translation off, root table, queue, faults, on. */
bool enable(Unit &u, unsigned idx)
{
    u32 gsts = rd32(u, Reg::GSTS);
    if ((gsts & Gcmd::TE) && !command(u, Gcmd::TE, false))
        return false;
    if ((gsts & Gcmd::IRE) && !command(u, Gcmd::IRE, false))  // no interrupt remapping (yet)
        return false;
    if ((gsts & Gcmd::QIE) && !command(u, Gcmd::QIE, false))
        return false;
    if (u.cap.plmr() || u.cap.phmr())
        wr32(u, Reg::PMEN, 0);  // protected memory regions off: our tables decide
    wr64(u, Reg::RTADDR, virt_to_phys(root_table));
    if (!command(u, Gcmd::SRTP, true))
        return false;
    auto *q = static_cast<Desc *>(Kmem::alloc_page());
    if (!q)
        return false;
    u.queue = q;
    u.tail = 0;
    wr64(u, Reg::IQT, 0);
    wr64(u, Reg::IQA, virt_to_phys(q));  // QS 0: 256 descriptors
    if (!command(u, Gcmd::QIE, true))
        return false;
    faults(u, idx);  // what firmware left
    wr32(u, Reg::FEDATA, Vec::IOMMU);
    wr32(u, Reg::FEADDR, 0xfee00000u | (Cpu::table[0]->apic_id & 0xff) << 12);
    wr32(u, Reg::FEUADDR, 0);
    wr32(u, Reg::FECTL, 0);
    flush_write_buffers();
    Desc d[2] = {Inv::context_global(), Inv::iotlb_global(u.cap)};
    if (!submit(u, d, 2))
        return false;
    return command(u, Gcmd::TE, true);
}

/* Interrupt remapping where every unit has it and the DMAR table allows it (lock held). */
void enable_ir(const Dmar_info &d)
{
    const char *why = nullptr;
    if (!d.intr_remap())
        why = "the DMAR table does not allow it";
    for (unsigned i = 0; !why && i < num_units; i++)
        if (!units[i].ecap.ir())
            why = "a unit lacks it";
    if (!why) {
        irt = static_cast<u64 *>(Kmem::alloc_page());
        if (!irt)
            why = "out of memory";
    }
    if (why) {
        trace("IOMMU: interrupt remapping off: %s (MSIs in the compatibility format)", why);
        return;
    }
    write_back(irt, PAGE_SIZE);
    bool units_eim = true;
    for (unsigned i = 0; i < num_units; i++)
        units_eim &= units[i].ecap.eim();
    eim = Irte::use_eim(units_eim, Lapic::x2apic(), d.x2apic_opt_out());
    for (unsigned i = 0; i < num_units; i++) {
        Unit &u = units[i];
        wr64(u, Reg::IRTA, Irte::irta(virt_to_phys(irt), eim));
        Desc iec = Inv::iec_global();
        if (!command(u, Gcmd::SIRTP, true) || !submit(u, &iec, 1) || !command(u, Gcmd::IRE, true))
            panic("IOMMU: unit at %#lx failed while enabling interrupt remapping", u.phys);
    }
    ir_on = true;
    const char *xapic_why = !Lapic::x2apic()     ? "the local APICs run in xAPIC mode"
                            : d.x2apic_opt_out() ? "the DMAR table opts out of x2APIC"
                            : !units_eim         ? "a unit lacks EIM"
                                                 : "";
    trace("IOMMU: interrupt remapping on: %u entries, %s%s%s", Irte::ENTRIES,
          eim ? "x2APIC destinations (EIM)" : "xAPIC destinations: ", eim ? "" : xapic_why,
          eim ? "" : ", no CPU above APIC ID 255");
}

}  // namespace

bool Iommu::active() { return on || Amd::active(); }

bool Iommu::remaps_interrupts() { return ir_on || Amd::remaps_interrupts(); }

// AMD-Vi: RTEs stay in the compatibility format (the entry holds the destination).
u32 Iommu::rte_hi(u32 index) { return Amd::active() ? 0 : Irte::rte_hi(static_cast<u16>(index)); }

static_assert(Iommu::MSI_REMAPPED == Irte::MSI_ADDR);

bool Iommu::reaches(u32 apic_id)
{
    if (Amd::active())
        return Amd::reaches(apic_id);
    return ir_on ? Irte::reachable(apic_id, eim) : apic_id <= 0xff;
}

bool Iommu::set_irte(u32 index, u32 apic_id, u8 vector, bool level, int sid)
{
    if (Amd::active())
        return Amd::set_irte(index, apic_id, vector, sid);
    if (!ir_on || index >= Irte::ENTRIES || !Irte::reachable(apic_id, eim))
        return false;
    Lock_guard g(lock);
    u64 *e = &irt[size_t{2} * index];
    if (e[1] != Irte::hi(sid)) {
        __atomic_store_n(&e[0], 0, __ATOMIC_RELEASE);  // not present while both halves change
        e[1] = Irte::hi(sid);
    }
    __atomic_store_n(&e[0], Irte::lo(vector, apic_id, level, eim), __ATOMIC_RELEASE);
    write_back(e, 16);
    for (unsigned i = 0; i < num_units; i++) {
        Desc iec = Inv::iec_index(static_cast<u16>(index));
        submit(units[i], &iec, 1);
    }
    return true;
}

int Iommu::ioapic_sid(u32 id)
{
    if (Amd::active())
        return Amd::ioapic_sid(id);
    const Dmar_info &d = Boot::acpi.dmar;
    Lock_guard g(lock);
    for (unsigned u = 0; on && u < d.num_drhd && u < Dmar_info::MAX_DRHD; u++)
        for (unsigned i = 0; i < d.drhd[u].scopes.count && i < Dmar_scopes::MAX_SCOPES; i++) {
            const Dmar_scope &s = d.drhd[u].scopes.scope[i];
            u16 rid;
            if (s.type == Dmar_scope::IOAPIC && s.enum_id == id &&
                Dmar_scope_map::end_rid(s, bridge_buses, nullptr, rid))
                return rid;
        }
    return -1;
}

volatile u8 *Iommu::pci_config(u16 rid)
{
    Lock_guard g(lock);
    return config(rid);
}

bool Iommu::pci_present(u16 rid)
{
    Lock_guard g(lock);
    return present(rid);
}

u64 Iommu::dma_pages() { return on ? dma_limit() : Amd::dma_pages(); }

unsigned Iommu::large_pages() { return on ? large : Amd::large_pages(); }

void Iommu::init()
{
    const Dmar_info &d = Boot::acpi.dmar;
    if (!Boot::cmdline.iommu)
        return;
    if (!d.present) {
        Amd::init();  // AMD-Vi where there is an IVRS table (src/amdvi.cpp)
        return;
    }
    if (d.incomplete || !d.num_drhd) {
        trace("IOMMU: the DMAR table is %s: DMA remapping off", d.num_drhd ? "incomplete" : "without units");
        return;
    }
    if (!Boot::acpi.mcfg.has_seg0) {
        trace("IOMMU: no MMCONFIG region for segment 0: DMA remapping off");
        return;
    }
    unsigned sagaw = 0x1f, sllps = 3;
    num_dids = 0x10000;
    for (unsigned i = 0; i < d.num_drhd && i < Dmar_info::MAX_DRHD; i++) {
        Unit &u = units[i];
        if (d.drhd[i].segment) {
            trace("IOMMU: unit at %#lx is on PCI segment %u: DMA remapping off", d.drhd[i].base,
                  d.drhd[i].segment);
            return;
        }
        if (!probe(d.drhd[i], u)) {
            trace("IOMMU: unit at %#lx unusable: DMA remapping off", d.drhd[i].base);
            return;
        }
        num_units++;
        sagaw &= u.cap.sagaw();
        sllps &= u.cap.sllps();
        coherent &= u.ecap.c();
        caching_mode |= u.cap.cm();
        write_buffer |= u.cap.rwbf();
        if (u.cap.domains() < num_dids)
            num_dids = u.cap.domains();
    }
    depth = Vtd::levels(sagaw);
    large = sllps & 3;
    if (!depth) {
        trace("IOMMU: the units have no table depth in common (SAGAW %#x): DMA remapping off", sagaw);
        num_units = 0;
        return;
    }
    root_table = static_cast<u64 *>(Kmem::alloc_page());
    if (!root_table) {
        num_units = 0;
        return;
    }
    auto *status = static_cast<u32 *>(Kmem::alloc_page());  // the wait descriptors' status words
    if (!status) {
        num_units = 0;
        return;
    }
    for (unsigned i = 0; i < num_units; i++)
        units[i].status = status + i;
    write_back(root_table, PAGE_SIZE);
    Lock_guard g(lock);
    for (unsigned i = 0; i < num_units; i++)
        if (!enable(units[i], i))
            panic("IOMMU: unit at %#lx failed while being enabled", units[i].phys);
    did_used[0] = 3;  // 0 (reserved in caching mode) and RMRR_DID
    on = true;
    setup_rmrr(d);
    enable_ir(d);
    trace("IOMMU: DMA remapping on: %u unit%s, %u-level tables (%u-bit device addresses), large pages%s%s, "
          "%scoherent%s%s, %u domains",
          num_units, num_units == 1 ? "" : "s", depth, depth == 4 ? 48 : 39, large & 1 ? " 2M" : "",
          large & 2 ? " 1G" : (large ? "" : " none"), coherent ? "" : "not ",
          caching_mode ? ", caching mode" : "", write_buffer ? ", write-buffer flushes" : "", num_dids);
}

bool Iommu::make_table(Pd *pd)
{
    if (Amd::active())
        return Amd::make_table(pd);
    if (__atomic_load_n(&pd->dpt, __ATOMIC_ACQUIRE))
        return true;
    Lock_guard g(pd->lock);
    if (pd->dpt)
        return true;
    u64 *t = new_table(pd->quota);  // freed with the PD's tables (Pd::destroy)
    if (!t)
        return false;
    __atomic_store_n(&pd->dpt, t, __ATOMIC_RELEASE);
    return true;
}

void Iommu::sync(Pd *pd, u64 va, u64 size, bool lost)
{
    if (!on) {
        Amd::sync(pd, lost);
        return;
    }
    write_back_range(pd->dpt, va, size);
    u16 did = __atomic_load_n(&pd->did, __ATOMIC_SEQ_CST);
    if (!did || !(lost || caching_mode)) {
        if (write_buffer && did) {
            Lock_guard g(lock);
            flush_write_buffers();
        }
        return;
    }
    Lock_guard g(lock);
    invalidate_domain(did);
}

bool Iommu::known(u16 rid)
{
    if (!on)
        return Amd::known(rid);
    Lock_guard g(lock);
    return present(rid) && Dmar_scope_map::unit_for(Boot::acpi.dmar, rid, bridge_buses, nullptr) >= 0;
}

bool Iommu::assign(Pd *pd, u16 rid)
{
    if (Amd::active())
        return Amd::assign(pd, rid);
    if (!on || !make_table(pd))
        return false;
    Lock_guard g(lock);
    if (!pd->did) {
        u16 did = alloc_did();
        if (!did) {
            trace("IOMMU: out of domain IDs (%u)", num_dids);
            return false;
        }
        __atomic_store_n(&pd->did, did, __ATOMIC_SEQ_CST);
    }
    return set_context(rid, pd->dpt, pd->did);
}

void Iommu::release(Pd *pd)
{
    u16 did = pd->did;
    if (!on) {
        Amd::release(pd);
        return;
    }
    if (!did)
        return;
    Lock_guard g(lock);
    for (unsigned bus = 0; bus < 256; bus++) {
        u64 *t = ctx_tables[bus];
        for (size_t i = 0; t && i < 256; i++)
            if ((t[2 * i] & 1) && ctx_did(t[2 * i + 1]) == did) {
                __atomic_store_n(&t[2 * i], 0, __ATOMIC_RELEASE);
                write_back(&t[2 * i], 16);
            }
    }
    invalidate_context(did, 0);  // before the DID can name another PD's table
    did_used[did / 64] &= ~(u64{1} << (did % 64));
    pd->did = 0;
}

void Iommu::for_each_register_range(void (*fn)(u64 first, u64 pages, void *ctx), void *ctx)
{
    const Dmar_info &d = Boot::acpi.dmar;
    for (unsigned i = 0; d.present && i < d.num_drhd && i < Dmar_info::MAX_DRHD; i++)
        fn(d.drhd[i].base >> 12, i < num_units ? units[i].pages : 1, ctx);
    // AMD-Vi: the 16 KiB register block and the IOMMU's own PCI configuration page (its MSI
    // and base address registers), whether or not we drive the unit.
    const Ivrs_info &v = Boot::acpi.ivrs;
    const Mcfg_info &m = Boot::acpi.mcfg;
    for (unsigned i = 0; v.present && i < v.num_ivhd && i < Ivrs_info::MAX_IVHD; i++) {
        fn(v.ivhd[i].base >> 12, 4, ctx);
        u64 bus = v.ivhd[i].devid >> 8;
        if (m.has_seg0 && !v.ivhd[i].segment && bus >= m.seg0_bus_start && bus <= m.seg0_bus_end)
            fn((m.seg0_base >> 12) + (u64{v.ivhd[i].devid} - u64{m.seg0_bus_start} * 256), 1, ctx);
    }
}

void Iommu::interrupt()
{
    Amd::interrupt();
    Lock_guard g(lock);
    for (unsigned i = 0; i < num_units; i++)
        faults(units[i], i);
}
