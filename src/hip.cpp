/*
 * The Hypervisor Information Page (ABI 8): one page the root task reads to
 * learn about CPUs, I/O APICs, memory and the kernel's features. Built once,
 * after every CPU has come up, and checksummed last.
 */
#include "abi/hip.hpp"
#include "boot.hpp"
#include "console.hpp"
#include "cpu.hpp"
#include "hip_builder.hpp"
#include "ioapic.hpp"
#include "iommu.hpp"
#include "lapic.hpp"
#include "memory.hpp"
#include "string.hpp"
#include "svm.hpp"
#include "time.hpp"
#include "vmx.hpp"
#include "x86.hpp"

namespace {

// Array entry i at offs (the arrays move behind a longer CPU array: docs/boot.md "HIP layout").
template <typename T> T &entry(Hip &h, size_t offs, unsigned i)
{
    return reinterpret_cast<T *>(reinterpret_cast<u8 *>(&h) + offs)[i];
}

void fill_cpus(Hip &h, unsigned ncpu)
{
    for (unsigned i = 0; i < ncpu; i++) {
        const Cpu &c = *Cpu::table[i];
        auto &d = entry<Hip_cpu>(h, h.cpu_offs, i);
        d.flags = c.online ? Hip_cpu::ONLINE : 0;
        d.thread = static_cast<u8>(c.feat.thread);
        d.core = static_cast<u8>(c.feat.core);
        d.package = static_cast<u8>(c.feat.package);
        d.acpi_id = static_cast<u8>(c.acpi_id);
        d.lapic_id = Lapic::x2apic() ? c.apic_id : c.apic_id << 24;  // the ID register's value
        d.lapic_version = c.lapic_version;
        d.lapic_svr = c.lapic_svr;
        d.lvt_timer = c.lvt_timer;
        d.lvt_lint0 = c.lvt_lint0;
        d.lvt_lint1 = c.lvt_lint1;
        d.lvt_error = c.lvt_error;
        d.lvt_perfm = c.lvt_perfm;
        d.lvt_therm = c.lvt_therm;
    }
    if (Cpu::count > ncpu)
        trace("HIP: %u CPUs, the HIP describes the first %u", Cpu::count, ncpu);
}

void fill_memory(Hip &h)
{
    const Boot_info &bi = Boot::info;
    unsigned n = 0, cap = Hip::MAX_MEM;
    // Loader map only when the loader gave one (ABI 8.5), room kept for modules and the kernel.
    bool map = bi.mmap_source == Boot_info::MMAP_MB1 || bi.mmap_source == Boot_info::MMAP_MB2 ||
               bi.mmap_source == Boot_info::MMAP_MB2_EFI;
    unsigned reserve = bi.module_count + 2;
    unsigned map_room = cap > reserve ? cap - reserve : 0;
    if (map) {
        if (bi.mmap_count > map_room)
            trace("HIP: %u memory map entries, %u fit", bi.mmap_count, map_room);
        for (u32 i = 0; i < bi.mmap_count && n < map_room; i++)
            entry<Hip_mem>(h, h.mem_offs, n++) =
                Hip_mem{bi.mmap[i].base, bi.mmap[i].size, bi.mmap[i].type, 0};
    }
    for (u32 i = 0; i < bi.module_count && n < cap - 1; i++) {
        const Boot_module &m = bi.modules[i];
        entry<Hip_mem>(h, h.mem_offs, n++) =
            Hip_mem{m.start, m.end - m.start, Hip_mem::MODULE, static_cast<u32>(m.cmdline_phys)};
    }
    entry<Hip_mem>(h, h.mem_offs, n++) =
        Hip_mem{Boot::hyp_base, Boot::hyp_end - Boot::hyp_base, Hip_mem::HYPERVISOR, 0};
    // Should the pool ever lie away from the image, the image is a region of its own (src/init.cpp
    // keeps them together: the image moves right above the pool).
    u64 img = image_phys_begin(), img_end = image_phys_end();
    if ((img < Boot::hyp_base || img_end > Boot::hyp_end) && n < cap)
        entry<Hip_mem>(h, h.mem_offs, n++) = Hip_mem{img, img_end - img, Hip_mem::HYPERVISOR, 0};
    h.length = static_cast<u16>(h.mem_offs + n * sizeof(Hip_mem));
}

u64 platform_info()
{
    // MSR 0xce exists on Intel family 6 only; reading it elsewhere would fault.
    const Cpu_features &f = Cpu::current().feat;
    return f.vendor[0] == 'G' && f.family == 6 ? rdmsr(Msr::PLATFORM_INFO) : 0;
}

}  // namespace

unsigned Hip_builder::cpus() { return Cpu::count < Hip::MAX_CPUS ? Cpu::count : Hip::MAX_CPUS; }

void Hip_builder::build(Hip &h)
{
    unsigned ncpu = cpus();
    memset(&h, 0, Hip::pages_for(ncpu) * PAGE_SIZE);
    h.signature = Hip::SIGNATURE;
    h.cpu_offs = Hip::CPU_OFFS;
    h.cpu_size = sizeof(Hip_cpu);
    h.ioapic_offs = static_cast<u16>(Hip::ioapic_offs_for(ncpu));
    h.ioapic_size = sizeof(Hip_ioapic);
    h.mem_offs = static_cast<u16>(Hip::mem_offs_for(ncpu));
    h.mem_size = sizeof(Hip_mem);
    // SVM or VMX when every CPU runs vCPUs (src/vcpu.cpp); IOMMU exactly when DMA remapping is on
    // (ABI 8.2; the reference never sets it: docs/iommu.md). docs/virtualization.md lists our
    // choices where the ABI is silent.
    h.api_flg = (Svm::usable ? Hip::FEAT_SVM : 0) | (Vmx::usable ? Hip::FEAT_VMX : 0) |
                (Iommu::active() ? Hip::FEAT_IOMMU : 0);
    h.api_ver = Abi::API_VERSION;
    h.sel_num = static_cast<u32>(Abi::SEL_NUM);
    h.sel_exc = Abi::NUM_EXC;
    h.sel_vmi = Abi::NUM_VMI;
    h.sel_gsi = Abi::NUM_GSI;
    h.cfg_page = PAGE_SIZE;
    h.cfg_utcb = PAGE_SIZE;
    h.freq_tsc = Time::tsc_khz;
    h.freq_bus = Lapic::bus_khz;

    const Acpi_info &a = Boot::acpi;
    if (a.mcfg.has_seg0) {
        h.pci_bus_start = a.mcfg.seg0_bus_start;
        h.mcfg_base = a.mcfg.seg0_base;
        h.mcfg_size = a.mcfg.seg0_size;
    }
    h.dmar_table = a.dmar.present ? a.dmar.phys : 0;
    h.hpet_base = a.hpet.present ? a.hpet.base : 0;
    h.initial_pat = rdmsr(Msr::PAT);
    h.msr_platform_info = platform_info();
    h.cap_vmx_sec_exec = 0;

    fill_cpus(h, ncpu);
    for (unsigned i = 0; i < Abi::NUM_IOAPIC; i++) {
        auto &d = entry<Hip_ioapic>(h, h.ioapic_offs, i);
        if (!Ioapic::describe(i, d.id, d.version, d.gsi_base, d.base))
            break;
    }
    if (Ioapic::count() > Abi::NUM_IOAPIC)
        trace("HIP: %u I/O APICs, the HIP describes %u", Ioapic::count(), Abi::NUM_IOAPIC);
    fill_memory(h);
    h.set_checksum();
}
