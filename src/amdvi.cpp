/*
 * AMD-Vi DMA remapping (include/iommu.hpp; ABI 7.14, 11.4; docs/iommu.md), chosen at boot when
 * `iommu` is given and there is an IVRS table but no DMAR table.
 *
 * All units share one device table (2^16 entries, 2 MiB). Every entry starts blocked: valid and
 * translation valid with neither read nor write allowed, so a device nobody was given gets a page
 * fault event for each access (an entry with V = 0 would let it through untranslated). assign_pci
 * points a device's entry at the PD's DMA table (Pd::dpt in the Paging::Amd format, four levels,
 * 48-bit device addresses) under the PD's domain ID. IVMD unity ranges are identity-mapped for
 * their devices in a domain of their own.
 *
 * Every change goes through the command buffer and ends with a COMPLETION_WAIT whose store the
 * CPU polls, so it is out of every unit's caches before the caller goes on: rights taken away
 * invalidate the PD's domain (INVALIDATE_IOMMU_PAGES, all pages, with the page-directory
 * caches); a device table entry changed is invalidated (INVALIDATE_DEVTAB_ENTRY) with the old and
 * new domains. Units that cache non-present entries (NpCache) get new entries invalidated too.
 *
 * Interrupt remapping (where every I/O APIC has an IVRS entry): a table of entries per requester,
 * indexed by the MSI data (the GSI; an I/O APIC's: the RTE vector), invalidated
 * (INVALIDATE_INTERRUPT_TABLE, COMPLETION_WAIT) after every change; devices without a table have
 * their interrupts aborted. Entries are 128-bit with x2APIC destinations (GAEn, XTEn) where every
 * unit has GASup and XTSup and the machine runs x2APIC, else 32-bit with xAPIC destinations.
 *
 * Events (the unit's own MSI, Vec::IOMMU on CPU 0): each entry of the event log is printed
 * (rate-limited with the console's other lines user mode can provoke) and cleared; after an
 * overflow the log is restarted, so logging goes on after any storm. (QEMU 7.2 logs no events
 * at all: its status check always finds the overflow bit set; docs/iommu.md.)
 */
#include "amdvi.hpp"
#include "acpi.hpp"
#include "boot.hpp"
#include "console.hpp"
#include "cpu.hpp"
#include "idt.hpp"
#include "iommu.hpp"
#include "kmem.hpp"
#include "lapic.hpp"
#include "memory.hpp"
#include "objects.hpp"
#include "paging.hpp"
#include "spinlock.hpp"
#include "time.hpp"
#include "x86.hpp"

namespace {

using namespace Amdvi;

constexpr u64 WAIT_MS = 1000;   // a unit that does not answer within this: give up
constexpr unsigned LEVELS = 4;  // every unit walks at least four levels (EFR.HATS)
constexpr u16 UNITY_DID = 1;    // 0: blocked entries
constexpr unsigned CMD_ENTRIES = 1u << CMD_LEN, EVT_ENTRIES = 1u << EVT_LEN;

struct Unit
{
    volatile u8 *regs;
    u64 phys;
    u16 devid;  // the unit's own PCI function
    Efr efr;
    bool np_cache;
    Cmd *cmds;
    unsigned tail;  // next free command
    u64 *events;    // pairs
    unsigned head;  // next event to read
    volatile u64 *done;
    u64 seq;
};

Unit units[Ivrs_info::MAX_IVHD];
const Ivrs_ivhd *ivhds[Ivrs_info::MAX_IVHD];  // the IVHD each unit came from
unsigned num_units;
bool on, np_cache;
Dte *dev_table;
u64 *empty_table;  // the root of blocked entries: nothing is ever mapped in it
u64 *unity_table;  // IVMD identity maps (domain UNITY_DID)
u64 did_used[0x10000 / 64];
bool ir_on, x2;  // interrupt remapping; with 128-bit entries and x2APIC destinations
/* Interrupt remapping tables, one per requester that has an entry (a page each: 256 entries of
   4 bytes, or with x2 of 16 bytes). */
constexpr unsigned MAX_INTR_TABLES = 64;
struct Intr_table
{
    u16 devid;
    u64 *entries;
};
Intr_table intr_tables[MAX_INTR_TABLES];
unsigned num_intr_tables;
Spinlock lock;  // the device table, the command buffers, the event logs, domain IDs

u64 rd64(const Unit &u, unsigned off) { return *reinterpret_cast<volatile const u64 *>(u.regs + off); }
void wr64(const Unit &u, unsigned off, u64 v) { *reinterpret_cast<volatile u64 *>(u.regs + off) = v; }

/* Queue commands and a COMPLETION_WAIT, then poll its store (lock held); false on a timeout. */
bool submit(Unit &u, const Cmd *c, unsigned n)
{
    u64 seq = ++u.seq;
    for (unsigned i = 0; i <= n; i++) {
        // The buffer is empty when we start (every submit waits for its commands), and n is small.
        u.cmds[u.tail] = i < n ? c[i] : completion_wait(virt_to_phys(const_cast<u64 *>(u.done)), seq);
        u.tail = (u.tail + 1) % CMD_ENTRIES;
    }
    asm volatile("" ::: "memory");
    wr64(u, Reg::CMD_TAIL, u64{u.tail} << 4);
    for (u64 end = rdtsc() + Time::ms_to_tsc(WAIT_MS); rdtsc() < end;) {
        if (__atomic_load_n(u.done, __ATOMIC_ACQUIRE) == seq)
            return true;
        pause();
    }
    trace(
        "IOMMU: AMD-Vi unit at %#lx did not complete its commands within %lu ms (head %#lx tail %#lx status "
        "%#lx): its caches may hold stale translations",
        u.phys, WAIT_MS, rd64(u, Reg::CMD_HEAD), rd64(u, Reg::CMD_TAIL), rd64(u, Reg::STATUS));
    return false;
}

/* The same command to every unit. */
void submit_all(const Cmd *c, unsigned n)
{
    for (unsigned i = 0; i < num_units; i++)
        submit(units[i], c, n);
}

/* The unit covers rid (its IVHD lists it). */
bool covers(const Ivrs_ivhd &h, u16 rid)
{
    for (unsigned i = 0; i < h.num_ranges && i < Ivrs_ivhd::MAX_RANGES; i++)
        if (rid >= h.range[i].first && rid <= h.range[i].last)
            return true;
    return false;
}

/* The requester ID rid's DMA carries (an alias entry names it), else rid. */
u16 requester(u16 rid)
{
    for (unsigned u = 0; u < num_units; u++)
        for (unsigned i = 0; i < ivhds[u]->num_ranges && i < Ivrs_ivhd::MAX_RANGES; i++) {
            const Ivrs_range &r = ivhds[u]->range[i];
            if (r.aliased && rid >= r.first && rid <= r.last)
                return r.alias;
        }
    return rid;
}

/* Device table entry rid: through `root` in `domain`, or blocked (root nullptr) (lock held). */
void set_dte(u16 rid, const u64 *root, u16 domain)
{
    Dte &d = dev_table[rid];
    u16 old = dte_translates(d) ? dte_domain(d) : 0;
    if (old) {
        // A translating entry changes: blocked first, out of the caches, then the new one.
        __atomic_store_n(&d.q[0], dte_q0(virt_to_phys(empty_table), LEVELS, false), __ATOMIC_RELEASE);
        Cmd c[2] = {inv_devtab_entry(rid), inv_domain(old)};
        submit_all(c, 2);
    }
    d.q[1] = dte_q1(root ? domain : 0);
    __atomic_store_n(&d.q[0], dte_q0(virt_to_phys(root ? root : empty_table), LEVELS, root != nullptr),
                     __ATOMIC_RELEASE);
    Cmd c[2] = {inv_devtab_entry(rid), inv_domain(root ? domain : old)};
    submit_all(c, 2);
}

/* pd's domain ID, allocated with its first device (lock held); 0: none is left. */
u16 domain_of(Pd *pd)
{
    for (u32 d = UNITY_DID + 1; !pd->did && d < 0x10000; d++)
        if (!(did_used[d / 64] & (u64{1} << (d % 64)))) {
            did_used[d / 64] |= u64{1} << (d % 64);
            __atomic_store_n(&pd->did, static_cast<u16>(d), __ATOMIC_SEQ_CST);
        }
    return pd->did;
}

constexpr u64 DMA_LIMIT = u64{1} << 36;  // pages below 2^48

/* IVMD unity ranges: identity maps (with the rights the IVMD gives) for the devices it names. */
void setup_unity(const Ivrs_info &v)
{
    for (unsigned i = 0; i < v.num_ivmd && i < Ivrs_info::MAX_IVMD; i++) {
        const Ivrs_ivmd &m = v.ivmd[i];
        if (m.flags & Ivrs_ivmd::EXCLUSION)
            trace("IOMMU: IVMD %#lx+%#lx asks for an exclusion range: not supported, mapped as a unity range",
                  m.base, m.length);
        if (!(m.flags & (Ivrs_ivmd::UNITY | Ivrs_ivmd::EXCLUSION)))
            continue;
        if (((m.base + m.length) >> 12) > DMA_LIMIT) {
            trace("IOMMU: IVMD %#lx+%#lx beyond the device address width, not mapped", m.base, m.length);
            continue;
        }
        if (!unity_table)
            unity_table = static_cast<u64 *>(Kmem::alloc_page());
        u64 rights = Paging::Amd::IR | ((m.flags & Ivrs_ivmd::WRITE) ? Paging::Amd::IW : 0);
        if (!unity_table || !Paging::map<Paging::Amd>(unity_table, m.base, m.base, m.length, rights, false)) {
            trace("IOMMU: out of memory for IVMD %#lx+%#lx", m.base, m.length);
            continue;
        }
        u32 first = m.type == 0x20 ? 0 : m.first, last = m.type == 0x20 ? 0xffff : m.last;
        trace("IOMMU: IVMD %#lx+%#lx identity-mapped for devices %04x-%04x", m.base, m.length, first, last);
        for (u32 rid = first; rid <= last; rid++)
            set_dte(static_cast<u16>(rid), unity_table, UNITY_DID);
    }
}

/* The IVRS special entry of `variety` (I/O APIC, HPET) with `handle` (any: -1): its device ID, or -1. */
int special(u8 variety, int handle)
{
    for (unsigned u = 0; u < num_units; u++)
        for (unsigned i = 0; i < ivhds[u]->num_special && i < Ivrs_ivhd::MAX_SPECIAL; i++) {
            const Ivrs_special &sp = ivhds[u]->special[i];
            if (sp.variety == variety && (handle < 0 || sp.handle == handle))
                return sp.devid;
        }
    return -1;
}

/* Interrupt remapping where every I/O APIC of the MADT has its IVRS entry (a pin of one without
   could not be remapped): every device's interrupts blocked until it gets a table (lock held). */
void enable_ir()
{
    const Madt_info &m = Boot::acpi.madt;
    for (unsigned i = 0; i < m.num_ioapic && i < Madt_info::MAX_IOAPIC; i++)
        if (special(Ivrs_special::IOAPIC, m.ioapic[i].id) < 0) {
            trace("IOMMU: interrupt remapping off: I/O APIC %u has no IVRS entry (MSIs in the compatibility "
                  "format)",
                  m.ioapic[i].id);
            return;
        }
    bool units_xt_ga = true;
    for (unsigned i = 0; i < num_units; i++)
        units_xt_ga &= units[i].efr.xt() && units[i].efr.ga();
    x2 = Intr::use_x2apic(units_xt_ga, Lapic::x2apic());
    // The entry format before any table exists: no interrupt is remapped yet (IV is still 0).
    for (unsigned i = 0; x2 && i < num_units; i++)
        wr64(units[i], Reg::CONTROL, rd64(units[i], Reg::CONTROL) | Ctl::GA_EN | Ctl::XT_EN);
    for (unsigned i = 0; i < DEVICES; i++)
        dev_table[i].q[2] = Intr::dte_q2(0);
    Cmd c = inv_all();  // every unit has it or was invalidated entry by entry at boot
    for (unsigned i = 0; i < num_units; i++)
        if (units[i].efr.ia())
            submit(units[i], &c, 1);
        else
            for (u32 id = 0; id < DEVICES; id++) {
                Cmd d[2] = {inv_devtab_entry(static_cast<u16>(id)),
                            inv_interrupt_table(static_cast<u16>(id))};
                submit(units[i], d, 2);
            }
    ir_on = true;
    trace("IOMMU: interrupt remapping on: AMD-Vi tables of %u entries per device, %s%s", Intr::ENTRIES,
          x2                 ? "x2APIC destinations (128-bit entries, GAEn, XTEn)"
          : !Lapic::x2apic() ? "xAPIC destinations: the local APICs run in xAPIC mode"
                             : "xAPIC destinations: a unit lacks XTSup or GASup",
          x2 ? "" : ", no CPU above APIC ID 255");
}

/* devid's interrupt table, made (and its device table entry pointed at it) on first use (lock held). */
u64 *intr_table(u16 devid)
{
    for (unsigned i = 0; i < num_intr_tables; i++)
        if (intr_tables[i].devid == devid)
            return intr_tables[i].entries;
    auto *t = num_intr_tables < MAX_INTR_TABLES ? static_cast<u64 *>(Kmem::alloc_page()) : nullptr;
    if (!t) {
        trace("IOMMU: no interrupt remapping table for %02x:%02x.%x (out of memory or tables)", devid >> 8,
              (devid >> 3) & 0x1f, devid & 7);
        return nullptr;
    }
    intr_tables[num_intr_tables++] = {devid, t};
    __atomic_store_n(&dev_table[devid].q[2], Intr::dte_q2(virt_to_phys(t)), __ATOMIC_RELEASE);
    Cmd c[2] = {inv_devtab_entry(devid), inv_interrupt_table(devid)};
    submit_all(c, 2);
    return t;
}

/* Print and clear the unit's events, then rewind the log (lock held). */
void events(Unit &u)
{
    u64 sts = rd64(u, Reg::STATUS);
    wr64(u, Reg::STATUS, sts & Sts::CLEAR);
    drain_log(u.events, EVT_ENTRIES, u.head, [&](const Event &ev) {
        trace_user("AMD-Vi:%#lx EV:%#x BDF:%x:%x:%x DOM:%#x ADDR:%#lx FLAGS:%#x (%s)", u.phys, ev.code,
                   ev.devid >> 8, (ev.devid >> 3) & 0x1f, ev.devid & 7, ev.domain, ev.addr, ev.flags,
                   event_name(ev.code));
    });
    wr64(u, Reg::EVT_HEAD, u64{u.head} << 4);
    if (!(sts & Sts::EVT_OVF))
        return;
    // Overflow: the unit logs nothing more until the log is restarted, logging off while the
    // pointers go back to the start (emulations whose log never wraps need the same).
    trace_user("IOMMU: AMD-Vi unit at %#lx: the event log overflowed, events were lost", u.phys);
    u64 ctl = rd64(u, Reg::CONTROL);
    wr64(u, Reg::CONTROL, ctl & ~Ctl::EVT_LOG_EN);
    for (u64 end = rdtsc() + Time::ms_to_tsc(WAIT_MS);
         (rd64(u, Reg::STATUS) & Sts::EVT_RUN) && rdtsc() < end;)
        pause();
    wr64(u, Reg::EVT_HEAD, 0);
    wr64(u, Reg::EVT_TAIL, 0);
    u.head = 0;
    wr64(u, Reg::STATUS, Sts::EVT_OVF);
    wr64(u, Reg::CONTROL, ctl);
}

/* Capability `id` in rid's configuration space (0: none). */
unsigned find_cap(volatile u8 *c, u8 id)
{
    if (!(*reinterpret_cast<volatile u16 *>(c + 6) & 0x10))
        return 0;  // no capability list
    unsigned p = c[0x34] & 0xfc;
    for (unsigned n = 0; p && n < 48; n++, p = c[p + 1] & 0xfc)
        if (c[p] == id)
            return p;
    return 0;
}

/* The unit's event interrupt: its MSI, to CPU 0 on Vec::IOMMU. */
bool route_msi(const Unit &u)
{
    volatile u8 *c = Iommu::pci_config(u.devid);
    unsigned p = c ? find_cap(c, Msi::CAP_ID) : 0;
    if (!p)
        return false;
    auto &ctl = *reinterpret_cast<volatile u16 *>(c + p + 2);
    ctl = static_cast<u16>(ctl & ~Msi::ENABLE);
    *reinterpret_cast<volatile u32 *>(c + p + 4) = 0xfee00000u | (Cpu::table[0]->apic_id & 0xff) << 12;
    if (ctl & Msi::ADDR64)
        *reinterpret_cast<volatile u32 *>(c + p + 8) = 0;
    *reinterpret_cast<volatile u16 *>(c + p + Msi::data_offset(ctl)) = Vec::IOMMU;
    ctl = static_cast<u16>((ctl & ~0x70u) | Msi::ENABLE);  // one message
    return true;
}

/* Take over one IVHD's unit; false if it cannot be used. */
bool probe(const Ivrs_ivhd &h, Unit &u, u64 *done)
{
    u.phys = h.base;
    u.devid = h.devid;
    u.regs = static_cast<volatile u8 *>(Mmio::map(h.base, Reg::SIZE));
    volatile u8 *c = Iommu::pci_config(h.devid);
    if (!u.regs || !c) {
        trace("IOMMU: AMD-Vi unit at %#lx: registers or configuration space %02x:%02x.%x not reachable",
              h.base, h.devid >> 8, (h.devid >> 3) & 0x1f, h.devid & 7);
        return false;
    }
    u32 hdr = *reinterpret_cast<volatile u32 *>(c + h.cap_offset);
    u.efr = Efr{(hdr & Cap_hdr::EFR_SUP) ? rd64(u, Reg::EFR) : 0};
    u.np_cache = hdr & Cap_hdr::NP_CACHE;
    u.done = done;
    trace("IOMMU: AMD-Vi unit at %#lx (IVHD type %#x, device %02x:%02x.%x, %u device ranges, %u special "
          "devices) "
          "capability %#x EFR %#lx",
          h.base, h.type, h.devid >> 8, (h.devid >> 3) & 0x1f, h.devid & 7, h.num_ranges, h.num_special, hdr,
          u.efr.v);
    return true;
}

/* Firmware's setup off, our device table, command buffer and event log, the interrupt, caches
   invalidated, then translation on. */
bool enable(Unit &u)
{
    wr64(u, Reg::CONTROL, 0);
    wr64(u, Reg::EXCL_BASE, 0);  // no exclusion range: our tables decide
    wr64(u, Reg::DEV_TABLE, dev_table_base(virt_to_phys(dev_table)));
    u.cmds = static_cast<Cmd *>(Kmem::alloc_page());
    u.events = static_cast<u64 *>(Kmem::alloc(1));
    if (!u.cmds || !u.events)
        return false;
    wr64(u, Reg::CMD_BASE, ring_base(virt_to_phys(u.cmds), CMD_LEN));
    wr64(u, Reg::CMD_HEAD, 0);
    wr64(u, Reg::CMD_TAIL, 0);
    u.tail = 0;
    wr64(u, Reg::EVT_BASE, ring_base(virt_to_phys(u.events), EVT_LEN));
    wr64(u, Reg::EVT_HEAD, 0);
    wr64(u, Reg::EVT_TAIL, 0);
    u.head = 0;
    wr64(u, Reg::STATUS, Sts::CLEAR);
    if (!route_msi(u))
        trace("IOMMU: AMD-Vi unit at %#lx has no MSI capability: events are read only when another one comes",
              u.phys);
    // Translation on with the rest: every entry blocks already, and QEMU 7.2 runs neither the
    // command buffer nor the event log while IOMMUEn is clear.
    wr64(u, Reg::CONTROL,
         Ctl::IOMMU_EN | Ctl::CMD_BUF_EN | Ctl::EVT_LOG_EN | Ctl::EVT_INT_EN | Ctl::COHERENT);
    // Whatever firmware left in the caches goes: everything at once where the unit can, else every
    // device table entry and every domain.
    if (u.efr.ia()) {
        Cmd c = inv_all();
        if (!submit(u, &c, 1))
            return false;
    } else {
        constexpr unsigned BATCH = 64;
        Cmd c[BATCH];
        for (u32 id = 0; id < DEVICES; id += BATCH / 2) {
            for (size_t i = 0; i < BATCH / 2; i++) {
                c[2 * i] = inv_devtab_entry(static_cast<u16>(id + i));
                c[2 * i + 1] = inv_domain(static_cast<u16>(id + i));
            }
            if (!submit(u, c, BATCH))
                return false;
        }
    }
    return true;
}

}  // namespace

bool Iommu::Amd::active() { return on; }

u64 Iommu::Amd::dma_pages() { return on ? DMA_LIMIT : 0; }

unsigned Iommu::Amd::large_pages() { return on ? 3 : 0; }  // Next Level 0 at the 2 MiB and 1 GiB levels

void Iommu::Amd::init()
{
    const Ivrs_info &v = Boot::acpi.ivrs;
    if (!v.present || !v.num_ivhd) {
        trace("IOMMU: 'iommu' given but neither a DMAR nor an IVRS table%s: DMA remapping off",
              v.present ? " with units" : "");
        return;
    }
    if (v.incomplete) {
        trace("IOMMU: the IVRS table is incomplete: DMA remapping off");
        return;
    }
    if (!Boot::acpi.mcfg.has_seg0) {
        trace("IOMMU: no MMCONFIG region for segment 0: DMA remapping off");
        return;
    }
    // Types 10h, 11h and 40h may describe the same unit: the highest type per register base.
    for (unsigned i = 0; i < v.num_ivhd && i < Ivrs_info::MAX_IVHD; i++) {
        const Ivrs_ivhd &h = v.ivhd[i];
        unsigned j = 0;
        while (j < num_units && ivhds[j]->base != h.base)
            j++;
        if (j == num_units)
            ivhds[num_units++] = &h;
        else if (h.type > ivhds[j]->type)
            ivhds[j] = &h;
    }
    auto *done = static_cast<u64 *>(Kmem::alloc_page());  // the COMPLETION_WAIT stores
    dev_table = static_cast<Dte *>(Kmem::alloc(DEV_TABLE_ORDER));
    empty_table = static_cast<u64 *>(Kmem::alloc_page());
    if (!done || !dev_table || !empty_table) {
        trace("IOMMU: out of memory for the AMD-Vi device table: DMA remapping off");
        num_units = 0;
        return;
    }
    for (unsigned i = 0; i < num_units; i++) {
        if (ivhds[i]->segment) {
            trace("IOMMU: AMD-Vi unit at %#lx is on PCI segment %u: DMA remapping off", ivhds[i]->base,
                  ivhds[i]->segment);
            num_units = 0;
            return;
        }
        if (!probe(*ivhds[i], units[i], done + i) || units[i].efr.max_levels() < LEVELS) {
            trace("IOMMU: AMD-Vi unit at %#lx unusable: DMA remapping off", ivhds[i]->base);
            num_units = 0;
            return;
        }
        np_cache |= units[i].np_cache;
    }
    for (unsigned i = 0; i < DEVICES; i++)
        dev_table[i] = Dte{{dte_q0(virt_to_phys(empty_table), LEVELS, false), 0, 0, 0}};
    Lock_guard g(lock);
    for (unsigned i = 0; i < num_units; i++)
        if (!enable(units[i]))
            panic("IOMMU: AMD-Vi unit at %#lx failed while being enabled", units[i].phys);
    did_used[0] = 3;  // 0 (blocked entries) and UNITY_DID
    on = true;
    setup_unity(v);
    enable_ir();
    trace("IOMMU: DMA remapping on: %u AMD-Vi unit%s, %u-level tables (48-bit device addresses), large pages "
          "2M "
          "1G%s",
          num_units, num_units == 1 ? "" : "s", LEVELS, np_cache ? ", non-present entries cached" : "");
}

bool Iommu::Amd::make_table(Pd *pd)
{
    if (__atomic_load_n(&pd->dpt, __ATOMIC_ACQUIRE))
        return true;
    Lock_guard g(pd->lock);
    if (pd->dpt)
        return true;
    auto *t = static_cast<u64 *>(Kmem::alloc_page(pd->quota));  // freed with the PD's tables (Pd::destroy)
    if (!t)
        return false;
    __atomic_store_n(&pd->dpt, t, __ATOMIC_RELEASE);
    return true;
}

void Iommu::Amd::sync(Pd *pd, bool lost)
{
    if (!on)
        return;
    u16 did = __atomic_load_n(&pd->did, __ATOMIC_SEQ_CST);
    if (!did || !(lost || np_cache))
        return;
    Lock_guard g(lock);
    Cmd c = inv_domain(did);
    submit_all(&c, 1);
}

bool Iommu::Amd::known(u16 rid)
{
    if (!on || !Iommu::pci_present(rid))
        return false;
    for (unsigned i = 0; i < num_units; i++)
        if (rid == units[i].devid)
            return false;  // the unit itself: its DMA is its own table walks
    for (unsigned i = 0; i < num_units; i++)
        if (covers(*ivhds[i], rid))
            return true;
    return false;
}

bool Iommu::Amd::assign(Pd *pd, u16 rid)
{
    if (!on || !make_table(pd))
        return false;
    Lock_guard g(lock);
    if (!domain_of(pd)) {
        trace("IOMMU: out of AMD-Vi domain IDs");
        return false;
    }
    set_dte(rid, pd->dpt, pd->did);
    u16 alias = requester(rid);
    if (alias != rid)
        set_dte(alias, pd->dpt, pd->did);  // its DMA carries the alias's ID
    return true;
}

void Iommu::Amd::release(Pd *pd)
{
    u16 did = pd->did;
    if (!on || !did)
        return;
    Lock_guard g(lock);
    for (u32 rid = 0; rid < DEVICES; rid++) {
        Dte &d = dev_table[rid];
        if (dte_translates(d) && dte_domain(d) == did) {
            __atomic_store_n(&d.q[0], dte_q0(virt_to_phys(empty_table), LEVELS, false), __ATOMIC_RELEASE);
            d.q[1] = dte_q1(0);
            Cmd c = inv_devtab_entry(static_cast<u16>(rid));
            submit_all(&c, 1);
        }
    }
    Cmd c = inv_domain(did);  // before the domain ID can name another PD's table
    submit_all(&c, 1);
    did_used[did / 64] &= ~(u64{1} << (did % 64));
    pd->did = 0;
}

void Iommu::Amd::interrupt()
{
    if (!on)
        return;
    Lock_guard g(lock);
    for (unsigned i = 0; i < num_units; i++)
        events(units[i]);
}

bool Iommu::Amd::remaps_interrupts() { return ir_on; }

bool Iommu::Amd::reaches(u32 apic_id) { return Intr::reachable(apic_id, ir_on && x2); }

int Iommu::Amd::ioapic_sid(u32 id) { return on ? special(Ivrs_special::IOAPIC, static_cast<int>(id)) : -1; }

/*
 * Entry `index` (a GSI) for the requester sid: an MSI's data is the index (ABI 7.15's outputs);
 * an I/O APIC's is its RTE's vector, so its table is indexed by the vector. No requester ID (the
 * HPET's MSIs): the IVRS HPET entry's. Each device's table is its own: a device sending another's
 * message finds no entry there and the unit aborts the interrupt.
 */
bool Iommu::Amd::set_irte(u32 index, u32 apic_id, u8 vector, int sid)
{
    if (!ir_on || !Intr::reachable(apic_id, x2))
        return false;
    Lock_guard g(lock);
    int devid = sid >= 0 ? sid : special(Ivrs_special::HPET, -1);
    if (devid < 0)
        return false;
    bool ioapic = false;
    for (unsigned u = 0; u < num_units; u++)
        for (unsigned i = 0; i < ivhds[u]->num_special && i < Ivrs_ivhd::MAX_SPECIAL; i++)
            ioapic |=
                ivhds[u]->special[i].variety == Ivrs_special::IOAPIC && ivhds[u]->special[i].devid == devid;
    u32 entry = ioapic ? vector : index;
    u64 *t = entry < Intr::ENTRIES ? intr_table(static_cast<u16>(devid)) : nullptr;
    if (!t)
        return false;
    if (x2) {
        // RemapEn clear while the second quadword (vector, destination 31:24) changes: only for a
        // new entry (its vector is fixed by the index) or a CPU above APIC ID 2^24 - 1, else one store.
        Intr::Irte128 e = Intr::irte128(vector, apic_id);
        u64 *p = &t[size_t{2} * entry];
        if (p[1] != e.hi) {
            __atomic_store_n(&p[0], u64{0}, __ATOMIC_RELEASE);
            __atomic_store_n(&p[1], e.hi, __ATOMIC_RELEASE);
        }
        __atomic_store_n(&p[0], e.lo, __ATOMIC_RELEASE);
    } else {
        __atomic_store_n(&reinterpret_cast<u32 *>(t)[entry], Intr::irte(vector, static_cast<u8>(apic_id)),
                         __ATOMIC_RELEASE);
    }
    Cmd c = inv_interrupt_table(static_cast<u16>(devid));
    submit_all(&c, 1);
    return true;
}
