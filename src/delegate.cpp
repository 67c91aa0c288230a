/*
 * Typed-item transfer and lookup (see include/delegate.hpp).
 */
#include "abi/constants.hpp"
#include "boot.hpp"
#include "delegate.hpp"
#include "gsi.hpp"
#include "ioapic.hpp"
#include "memory.hpp"
#include "objects.hpp"
#include "paging.hpp"
#include "x86.hpp"

namespace {

constexpr u64 PAGES_4K = 1, PAGES_2M = 512, PAGES_1G = 512 * 512;
u64 hip_frame;   // the HIP's page frame: the kernel lets the root PD have it read-only (ABI 9.6)

/*
 * Rights the kernel source holds for `page`, and how many pages from there on have the same
 * rights (bounded by max): the hypervisor region, the local APIC and the I/O APIC pages are
 * never handed out; the HIP is readable (ABI 9.6).
 */
unsigned kernel_rights(u64 page, u64 max, u64 &run)
{
    if (page == hip_frame) {
        run = 1;
        return 1;
    }
    struct Hole { u64 first, end; };
    Hole holes[2 + Madt_info::MAX_IOAPIC];
    unsigned n = 0;
    holes[n++] = {Boot::hyp_base >> 12, (Boot::hyp_end + PAGE_SIZE - 1) >> 12};
    u64 lapic = Boot::acpi.madt.lapic_address ? Boot::acpi.madt.lapic_address : 0xfee00000;
    holes[n++] = {lapic >> 12, (lapic >> 12) + 1};
    for (unsigned i = 0; i < Boot::acpi.madt.num_ioapic && i < Madt_info::MAX_IOAPIC; i++)
        holes[n++] = {Boot::acpi.madt.ioapic[i].address >> 12u, (Boot::acpi.madt.ioapic[i].address >> 12u) + 1};

    u64 end = page + max;
    if (hip_frame > page && hip_frame < end)
        end = hip_frame;
    for (unsigned i = 0; i < n; i++) {
        if (page >= holes[i].first && page < holes[i].end) {
            run = (holes[i].end < end ? holes[i].end : end) - page;
            return 0;
        }
        if (holes[i].first > page && holes[i].first < end)
            end = holes[i].first;
    }
    run = end - page;
    return 7;
}

u64 pte_flags(unsigned rights) { return Pte::U | ((rights & 2) ? Pte::W : 0); }

/* Map [va, va + pages) -> [pa, ...) where nothing is mapped yet, with large pages where possible. */
void map_free(u64 *pml4, u64 va, u64 pa, u64 pages, unsigned rights)
{
    while (pages) {
        u64 step = PAGES_4K;
        static const u64 sizes[] = {PAGES_1G, PAGES_2M};
        for (u64 big : sizes) {
            if (big == PAGES_1G && !Paging::have_1g)
                continue;
            u64 bytes = big << 12;
            if (pages >= big && !(va & (bytes - 1)) && !(pa & (bytes - 1)) &&
                Paging::range_empty(pml4, va, bytes)) {
                step = big;
                break;
            }
        }
        if (va + (step << 12) > USER_ADDR)
            return;                                  // only below USER_ADDR goes to the host table (ABI 1.1)
        if (step > PAGES_4K || Paging::lookup(pml4, va) == ~u64{0})
            if (!Paging::map(pml4, va, pa, step << 12, pte_flags(rights), step > PAGES_4K))
                return;                              // out of memory: the rest stays undelegated
        va += step << 12;
        pa += step << 12;
        pages -= step;
    }
}

void delegate_mem(Pd *src, Pd *dst, const Delegate::Plan &p, bool from_kernel)
{
    u64 pages = u64{1} << p.order;
    Lock_guard g(dst->lock);
    for (u64 i = 0; i < pages;) {
        u64 run = 1;
        u64 pa;
        unsigned r;
        if (from_kernel) {
            pa = (p.src + i) << 12;
            r = kernel_rights(p.src + i, pages - i, run) & p.rights;
            if (pa >> 52)
                break;
        } else {
            u64 flags;
            pa = Paging::lookup(src->pml4, (p.src + i) << 12, &flags);
            r = pa == ~u64{0} ? 0 : (1 | ((flags & Pte::W) ? 2 : 0) | 4) & p.rights;
        }
        if (r & 7)
            map_free(dst->pml4, (p.dst + i) << 12, pa, run, r);
        i += run;
    }
}

void delegate_pio(Pd *src, Pd *dst, const Delegate::Plan &p, bool from_kernel)
{
    u64 first = p.src, count = u64{1} << p.order;
    if (first >= 0x10000 || !(p.rights & 7))
        return;
    if (first + count > 0x10000)
        count = 0x10000 - first;
    for (u64 port = first; port < first + count; port++) {
        if (!from_kernel && !src->port_allowed(static_cast<u32>(port)))
            continue;
        u64 end = port + 1;
        while (end < first + count && (from_kernel || src->port_allowed(static_cast<u32>(end))))
            end++;
        dst->grant_ports(static_cast<u32>(port), static_cast<u32>(end - port));
        port = end;
    }
}

/* The kernel's object space (ABI 9.6): idle SC of CPU c at c, GSI semaphore g at 64 + g. */
void delegate_kernel_obj(Pd *dst, const Delegate::Plan &p)
{
    u64 n = u64{1} << (p.order > 26 ? 26 : p.order);
    for (u64 i = 0; i < n && p.src + i < Gsi::KSEL_BASE + Gsi::COUNT; i++) {
        u64 sel = p.src + i;
        Kobject *obj = sel < Gsi::KSEL_BASE ? static_cast<Kobject *>(Gsi::idle_sc(static_cast<unsigned>(sel)))
                                             : static_cast<Kobject *>(Gsi::sm(static_cast<unsigned>(sel - Gsi::KSEL_BASE)));
        unsigned perm = (sel < Gsi::KSEL_BASE ? 0x1u : 0x3u) & p.rights;
        if (!obj || !perm)
            continue;
        obj->get();
        if (dst->obj.insert(p.dst + i, obj, perm) != Space_obj::Result::OK)
            release(obj);
    }
}

void delegate_obj(Pd *src, Pd *dst, const Delegate::Plan &p)
{
    u64 n = u64{1} << p.order;
    if (n > Space_obj::SELECTORS)
        n = Space_obj::SELECTORS;
    u64 base = p.src % Space_obj::SELECTORS;
    for (u64 i = src->obj.next_used(base, base + n) - base; i < n; i = src->obj.next_used(base + i + 1, base + n) - base) {
        Capability c = src->obj.lookup(base + i);
        unsigned perm = c.perm & p.rights;
        if (c.null() || !perm)
            continue;
        c.obj->get();
        if (dst->obj.insert(p.dst + i, c.obj, perm) != Space_obj::Result::OK)
            release(c.obj);                 // occupied (or no memory): skipped, ABI 3.4 step 5
    }
}

} // namespace

Delegate::Result Delegate::item(Pd *src, Pd *dst, Crd send, Item_meta meta, Crd window)
{
    Result res{Crd(), meta.value() & 0xfff};
    if (meta.kind() == Item_meta::INVALID)
        return res;
    // Translation needs the derivation tree (mapping database, not yet): it finds nothing,
    // so kind 2 falls back to delegation and kind 0 yields null.
    if (meta.kind() == Item_meta::TRANSLATE)
        return res;
    if (meta.kind() == Item_meta::TRANSLATE_OR_DELEGATE)
        res.meta |= 1;

    Plan p = plan(send, window, meta.hotspot());
    if (!p.ok)
        return res;
    bool from_kernel = meta.kernel() && src->privileged;
    if (!hip_frame)
        hip_frame = Boot::hip_phys >> 12;

    switch (send.type()) {
    case Crd::MEM: delegate_mem(src, dst, p, from_kernel); break;
    case Crd::PIO: delegate_pio(src, dst, p, from_kernel); break;
    case Crd::OBJ:
        if (from_kernel)
            delegate_kernel_obj(dst, p);
        else
            delegate_obj(src, dst, p);
        break;
    default: break;
    }
    res.crd = Crd(send.type(), p.dst, p.order, p.rights);
    return res;
}

Crd Delegate::lookup(const Pd *pd, Crd what)
{
    switch (what.type()) {
    case Crd::OBJ: {
        Capability c = pd->obj.lookup(what.base());
        return c.null() ? Crd() : Crd(Crd::OBJ, what.base() % Space_obj::SELECTORS, 0, c.perm);
    }
    case Crd::MEM: {
        u64 flags;
        if (what.base() >= (USER_ADDR >> 12) ||
            Paging::lookup(pd->pml4, what.base() << 12, &flags) == ~u64{0} || !(flags & Pte::U))
            return Crd();
        return Crd(Crd::MEM, what.base(), 0, (flags & Pte::W) ? 3 : 1);
    }
    case Crd::PIO:
        return what.base() < 0x10000 && pd->port_allowed(static_cast<u32>(what.base()))
                   ? Crd(Crd::PIO, what.base(), 0, 7)
                   : Crd();
    default:
        return Crd();
    }
}
