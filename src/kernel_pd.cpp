/*
 * The kernel PD (ABI 9.6): the source of the root task's H-bit delegations. It owns every
 * memory frame but the hypervisor's own, the local APIC, the I/O APICs and the IOMMU units' registers
 * (every DRHD's and IVHD's, and an AMD IOMMU's configuration page, with or without the option
 * `iommu`); every I/O port; the
 * idle SCs and the GSI semaphores. It never runs; its nodes are never mapped anywhere.
 */
#include "abi/constants.hpp"
#include "abi/hip.hpp"
#include "boot.hpp"
#include "console.hpp"
#include "cpu.hpp"
#include "gsi.hpp"
#include "iommu.hpp"
#include "memory.hpp"
#include "objects.hpp"

Pd *Pd::kernel;

void Pd::create_kernel(u64 hip_phys, unsigned hip_pages)
{
    Pd *k = Pd::create(nullptr, nullptr);
    if (!k)
        panic("MDB: out of memory for the kernel PD");
    Pd::kernel = k;

    // Memory: every frame below 2^52 bytes except the holes of ABI 9.6; the HIP read-only.
    struct Hole
    {
        u64 first, end;
    };
    Hole holes[4 + Madt_info::MAX_IOAPIC + Dmar_info::MAX_DRHD + 2 * Ivrs_info::MAX_IVHD];
    unsigned n = 0;
    holes[n++] = {Boot::hyp_base >> 12, (Boot::hyp_end + PAGE_SIZE - 1) >> 12};
    // The image itself, wherever it is (src/init.cpp moves it right above the pool, so the
    // hypervisor region covers it; this hole only makes sure).
    holes[n++] = {image_phys_begin() >> 12, (image_phys_end() + PAGE_SIZE - 1) >> 12};
    u64 lapic = Boot::acpi.madt.lapic_address ? Boot::acpi.madt.lapic_address : 0xfee00000;
    holes[n++] = {lapic >> 12, (lapic >> 12) + 1};
    for (unsigned i = 0; i < Boot::acpi.madt.num_ioapic && i < Madt_info::MAX_IOAPIC; i++)
        holes[n++] = {Boot::acpi.madt.ioapic[i].address >> 12u,
                      (Boot::acpi.madt.ioapic[i].address >> 12u) + 1};
    struct Holes
    {
        Hole *h;
        unsigned &n;
    } into{holes, n};
    Iommu::for_each_register_range(
        [](u64 first, u64 pages, void *ctx) {
            auto &in = *static_cast<Holes *>(ctx);
            in.h[in.n++] = {first, first + pages};
        },
        &into);
    for (unsigned i = 1; i < n; i++)  // sort by start (insertion)
        for (unsigned j = i; j > 0 && holes[j].first < holes[j - 1].first; j--) {
            Hole t = holes[j];
            holes[j] = holes[j - 1];
            holes[j - 1] = t;
        }
    u64 page = 0, top = u64{1} << 40;
    for (unsigned i = 0; i <= n; i++) {
        u64 end = i < n ? holes[i].first : top;
        if (end > page && Mdb::insert_roots(k->mdb_mem, page, end - page, 7, page) != Mdb::Status::OK)
            panic("MDB: out of memory for the kernel's memory nodes");
        if (i < n && holes[i].end > page)
            page = holes[i].end;
    }
    // The HIP frames sit in the hypervisor region: nodes of their own, read-only.
    for (unsigned i = 0; i < hip_pages; i++)
        Mdb::insert_root(k->mdb_mem, (hip_phys >> 12) + i, 0, 1, (hip_phys >> 12) + i);
    Mdb::insert_root(k->mdb_pio, 0, 16, 7, 0);
    for (unsigned c = 0; c < Cpu::count && c < Hip::MAX_CPUS; c++)
        if (Sc *sc = Gsi::idle_sc(c))
            Mdb::insert_root(k->mdb_obj, Abi::ksel_idle_sc(c), 0, 1, reinterpret_cast<u64>(sc));
    for (unsigned g = 0; g < Gsi::COUNT; g++)
        if (Sm *sm = Gsi::sm(g))
            Mdb::insert_root(k->mdb_obj, Abi::ksel_gsi_sm(g), 0, 3, reinterpret_cast<u64>(sm));
}
