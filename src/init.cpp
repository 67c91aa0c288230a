/*
 * Boot sequence of the bootstrap processor, from the first C++ instruction
 * to the root task (docs/boot.md walks through it).
 */
#include "acpi.hpp"
#include "boot.hpp"
#include "buddy.hpp"
#include "console.hpp"
#include "cpu.hpp"
#include "gsi.hpp"
#include "idt.hpp"
#include "ioapic.hpp"
#include "keyb.hpp"
#include "kmem.hpp"
#include "ktest.hpp"
#include "lapic.hpp"
#include "lockup.hpp"
#include "mapping.hpp"
#include "memmap.hpp"
#include "memory.hpp"
#include "paging.hpp"
#include "serial.hpp"
#include "smp.hpp"
#include "start.hpp"
#include "string.hpp"
#include "time.hpp"
#include "vga.hpp"
#include "x86.hpp"

Cmdline Boot::cmdline;
Boot_info Boot::info;
Acpi_info Boot::acpi;
Phys_reader Boot::phys;
u64 Boot::entry_tsc;
u64 Boot::trampoline_page;
u64 Boot::pool_base, Boot::pool_end, Boot::hyp_base, Boot::hyp_end, Boot::hip_phys;

namespace {

/* Early page-table pages for the direct map above 4 GiB (2 MiB pages need one per GiB). */
constexpr unsigned EARLY_PT_PAGES = 64;
alignas(4096) u64 early_pt[EARLY_PT_PAGES][512];
unsigned early_pt_used;
u64 direct_limit = u64{4} << 30;
alignas(16) u8 boot_ist[3][4096];
Memmap memmap;

const void *read_phys(void *, u64 phys, u64 len)
{
    if (phys >= direct_limit || len > direct_limit - phys)
        return nullptr;
    return phys_to_virt<const void>(phys);
}

/* Extend the direct map (PML4 slot 256, 512 GiB) to cover [0, end). */
void extend_direct_map(u64 end, bool gb_pages)
{
    constexpr u64 GB = u64{1} << 30;
    end = align_up(end, GB);
    if (end > 512 * GB)
        end = 512 * GB;
    for (u64 a = direct_limit; a < end; a += GB) {
        u64 &e = boot_pdpt_low[a / GB];
        if (gb_pages)
            e = a | Pte::P | Pte::W | Pte::PS | Pte::G;
        else {
            if (early_pt_used == EARLY_PT_PAGES) {
                trace("MEM: physical memory above %#lx is not mapped (early table pool exhausted)", a);
                end = a;
                break;
            }
            u64 *pd = early_pt[early_pt_used++];
            for (unsigned i = 0; i < 512; i++)
                pd[i] = (a + (u64{i} << 21)) | Pte::P | Pte::W | Pte::PS | Pte::G;
            e = virt_to_phys(pd) | Pte::P | Pte::W;
        }
    }
    if (end > direct_limit)
        direct_limit = end;
    set_cr3(get_cr3());
}

void banner()
{
    const char *rev = GIT_REV[0] ? GIT_REV : "0000000";
#if defined(__clang__)
    kprint("\fNOVA Microhypervisor v7-%s (x86_64): %s %s [clang %d.%d.%d]\n\n", rev, __DATE__, __TIME__,
           __clang_major__, __clang_minor__, __clang_patchlevel__);
#else
    kprint("\fNOVA Microhypervisor v7-%s (x86_64): %s %s [gcc %d.%d.%d]\n\n", rev, __DATE__, __TIME__,
           __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#endif
}

void setup_consoles()
{
    const Boot_info &bi = Boot::info;
    if (Boot::cmdline.serial) {
        // The BIOS data area names COM1's port; under UEFI it holds junk, so use the PC default.
        u16 port = 0x3f8;
        if (!bi.efi)
            if (u16 bda = *phys_to_virt<volatile u16>(0x400))
                port = bda;
        Serial::init(port);
    }
    bool text_mode = !bi.efi || (bi.has_framebuffer && bi.fb.type == 2);
    if (!Boot::cmdline.novga && text_mode)
        Vga::init(Boot::cmdline.spinner);
}

void parse_cmdline()
{
    const Boot_info &bi = Boot::info;
    const char *s =
        bi.cmdline_phys
            ? static_cast<const char *>(Boot::phys.map(bi.cmdline_phys, bi.cmdline_len ? bi.cmdline_len : 1))
            : nullptr;
    const char *name = bi.loader_name_phys
                           ? static_cast<const char *>(Boot::phys.map(
                                 bi.loader_name_phys, bi.loader_name_len ? bi.loader_name_len : 1))
                           : nullptr;
    bool file_name = Cmdline::loader_passes_file_name(bi.loader, name, name ? bi.loader_name_len : 0);
    Boot::cmdline.parse(s ? s : "", s ? bi.cmdline_len : 0, file_name);
}

/*
 * The kernel's own memory is one pool of free RAM directly below the image, so that pool and
 * image form the single hypervisor region of the HIP (ABI 8.5); all other RAM is left to the
 * root task. Size: 1/8 of RAM, at least 4 MiB, at most what lies free below the image.
 */
void setup_pool()
{
    constexpr u64 MIN = 4ull << 20, MAX = 256ull << 20;
    u64 img = reinterpret_cast<u64>(__image_start_phys);
    u64 want = memmap.bytes_ram() / 8;
    want = align_down(want < MIN ? MIN : want > MAX ? MAX : want, 2ull << 20);

    const Mem_range *below = nullptr, *largest = nullptr;
    for (u32 i = 0; i < memmap.free_count(); i++) {
        const Mem_range &r = memmap.free_range(i);
        if (r.base + r.size == img)
            below = &r;
        if (r.base + r.size <= direct_limit && (!largest || r.size > largest->size))
            largest = &r;
    }
    Boot::hyp_end = reinterpret_cast<u64>(__image_end_phys);
    if (below && below->size >= MIN) {
        Boot::pool_end = img;
        Boot::pool_base = below->size > want ? img - want : below->base;
        Boot::hyp_base = Boot::pool_base;
    } else if (largest && largest->size >= MIN) {
        // Odd firmware map: pool elsewhere. The HIP region then covers only the pool; the image
        // is still never handed out (it is not free memory).
        Boot::pool_end = largest->base + largest->size;
        Boot::pool_base = Boot::pool_end - (largest->size > want ? want : largest->size);
        Boot::hyp_base = Boot::pool_base;
        Boot::hyp_end = Boot::pool_end;
        trace("MEM: no free RAM right below the kernel image; kernel pool placed at %#lx", Boot::pool_base);
    } else
        panic("MEM: not enough contiguous free memory for the kernel (need %llu MiB)",
              static_cast<unsigned long long>(MIN >> 20));

    Kmem::init();
    if (!Kmem::add_free(Boot::pool_base, Boot::pool_end - Boot::pool_base))
        panic("MEM: the kernel pool %#lx-%#lx was refused", Boot::pool_base, Boot::pool_end);
}

void setup_memory()
{
    const Boot_info &bi = Boot::info;
    if (!bi.mmap_count)
        panic("MEM: the boot loader gave no memory map; cannot continue");

    u64 top = 0;
    for (u32 i = 0; i < bi.mmap_count; i++) {
        memmap.add_range(bi.mmap[i].base, bi.mmap[i].size, bi.mmap[i].type);
        if (bi.mmap[i].type == MEM_AVAILABLE && bi.mmap[i].base + bi.mmap[i].size > top)
            top = bi.mmap[i].base + bi.mmap[i].size;
    }
    if (top > direct_limit)
        extend_direct_map(top, Paging::have_1g);

    memmap.reserve(0, 0x100000);  // BIOS, EBDA, AP trampoline: never general-purpose memory
    memmap.reserve(reinterpret_cast<u64>(__image_start_phys),
                   reinterpret_cast<u64>(__image_end_phys) - reinterpret_cast<u64>(__image_start_phys));
    Mem_range rsv[Boot_info::MAX_RESERVED_RANGES];
    u32 n = bi.reserved_ranges(rsv, Boot_info::MAX_RESERVED_RANGES);
    for (u32 i = 0; i < n; i++)
        memmap.reserve(rsv[i].base, rsv[i].size);
    for (u32 i = 0; i < Boot::acpi.num_tables; i++)
        memmap.reserve(Boot::acpi.tables[i].phys, Boot::acpi.tables[i].length);
    if (Boot::acpi.valid && Boot::acpi.rsdp.phys)
        memmap.reserve(Boot::acpi.rsdp.phys, 36);

    if (!memmap.build())
        panic("MEM: no usable memory in the loader's memory map");

    setup_pool();
    trace("MEM: %llu MiB RAM, kernel pool %llu MiB at %#lx-%#lx, %llu MiB left for user mode, direct map to "
          "%#lx",
          static_cast<unsigned long long>(memmap.bytes_ram() >> 20),
          static_cast<unsigned long long>((Boot::pool_end - Boot::pool_base) >> 20), Boot::pool_base,
          Boot::pool_end,
          static_cast<unsigned long long>((memmap.bytes_free() - (Boot::pool_end - Boot::pool_base)) >> 20),
          direct_limit);

    // The MMIO window's PDPT must exist before the first address space copies the kernel half.
    u64 *master = reinterpret_cast<u64 *>(reinterpret_cast<u64>(boot_pml4) + KERNEL_VIRT);
    Paging::set_kernel_pml4(master);
    u64 &mmio_slot = master[(MMIO_WINDOW >> 39) & 0x1ff];
    if (!(mmio_slot & Pte::P)) {
        void *pdpt = Kmem::alloc_page();
        if (!pdpt)
            panic("MEM: out of memory for the MMIO window");
        mmio_slot = virt_to_phys(pdpt) | Pte::P | Pte::W;
    }
}

/* A free page below 1 MiB for the AP trampoline, from the loader's own map. */
u64 find_trampoline_page()
{
    const Boot_info &bi = Boot::info;
    Mem_range rsv[Boot_info::MAX_RESERVED_RANGES];
    u32 n = bi.reserved_ranges(rsv, Boot_info::MAX_RESERVED_RANGES);
    for (u64 page = 0x9f000; page >= 0x1000; page -= PAGE_SIZE) {
        bool ram = false;
        for (u32 i = 0; i < bi.mmap_count; i++) {
            const Mem_range &r = bi.mmap[i];
            if (r.base <= page && page + PAGE_SIZE <= r.base + r.size) {
                if (r.type != MEM_AVAILABLE) {
                    ram = false;
                    break;
                }
                ram = true;
            }
        }
        for (u32 i = 0; ram && i < n; i++)
            if (page < rsv[i].base + rsv[i].size && rsv[i].base < page + PAGE_SIZE)
                ram = false;
        if (ram)
            return page;
    }
    return 0;
}

const Cpu_features &boot_cpu_features() { return Cpu::current().feat; }

const char *use(bool have, bool off, const char *opt) { return !have ? "unsupported" : off ? opt : "on"; }

/* What the kernel uses of the BSP's features, and which command-line option turned what off. */
void report_features(const Cpu_features &f)
{
    const Cmdline &c = Boot::cmdline;
    trace("FEATURES: %s, PCID %s, XSAVE %s, TSC-deadline %s, VPID %s, SMEP %s, SMAP %s, UMIP %s, machine "
          "check %s, virtualization %s",
          Lapic::x2apic() ? "x2APIC" : "xAPIC", use(f.pcid, c.nopcid, "off (nopcid)"),
          use(f.xsave, c.noxsave, "off (noxsave)"), use(f.tsc_deadline, c.nodl, "off (nodl)"),
          use(f.vmx && f.vpid, c.novpid, "off (novpid)"), use(f.smep, false, ""), use(f.smap, false, ""),
          use(f.umip, false, ""), use(f.mce && f.mca, false, ""),
          f.vmx   ? "VMX (not implemented yet)"
          : f.svm ? "SVM (not implemented yet)"
                  : "none");
}

}  // namespace

extern "C" [[noreturn]] void kernel_main(u32 magic, u32 mbi)
{
    Boot::entry_tsc = rdtsc();
    Cpu &boot = Cpu::boot_cpu;
    boot.self = &boot;
    wrmsr(Msr::GS_BASE, reinterpret_cast<u64>(&boot));
    u64 rsp;
    asm volatile("mov %%rsp, %0" : "=r"(rsp));
    boot.kstack_top = rsp;
    for (unsigned i = 0; i < 3; i++)
        boot.set_ist(i + 1, reinterpret_cast<u64>(boot_ist[i]) + sizeof boot_ist[i]);
    Idt::init();
    boot.setup_descriptors();
    boot.detect_features();
    Paging::have_1g = boot.feat.pdpe1gb;

    Boot::phys = Phys_reader{read_phys, nullptr};
    bool mb_ok = parse_multiboot(magic, mbi, Boot::phys, Boot::info);
    if (mb_ok)
        parse_cmdline();  // silent: no console yet
    else
        Boot::cmdline.serial = true;  // say what is wrong on every console we have
    setup_consoles();
    banner();
    if (!mb_ok)
        panic("BOOT: not started by a multiboot loader (magic %#x); cannot continue", magic);
    parse_cmdline();  // again, now unknown words are reported
    char opts[128];
    Boot::cmdline.describe(opts, sizeof opts);
    trace("CMDLINE: %s", opts);
    trace("BOOT: multiboot %u%s, %u modules, %u memory map entries", Boot::info.loader,
          Boot::info.efi ? " (UEFI)" : "", Boot::info.module_count, Boot::info.mmap_count);

    // ACPI first: its tables must be known before memory is handed out.
    if (!acpi_parse(Boot::phys, Boot::info.rsdp_len ? Boot::info.rsdp_copy : nullptr, Boot::info.rsdp_len,
                    !Boot::info.efi, Boot::acpi))
        trace("ACPI: no usable tables; single CPU, legacy interrupt routing");

    Boot::trampoline_page = find_trampoline_page();
    setup_memory();

    Mapping::init();
    Smp::setup_cpus(Boot::phys, Boot::acpi);
    Lapic::setup(Boot::acpi.madt.lapic_address ? Boot::acpi.madt.lapic_address : 0xfee00000,
                 boot.feat.x2apic);
    Pic::disable();
    Smp::init_this_cpu();
    report_features(boot_cpu_features());
    Time::calibrate(Boot::acpi);
    trace("TIME: TSC %u kHz, LAPIC timer %u kHz (%s), %s timer", Time::tsc_khz, Lapic::bus_khz, Time::source,
          Lapic::timer_uses_deadline() ? "TSC-deadline" : "LAPIC one-shot");
    Lapic::timer_setup(Lapic::timer_uses_deadline());
    Lapic::timer_arm_tsc(rdtsc() + Time::ms_to_tsc(100));
    Ioapic::init(Boot::acpi);
    if (Boot::cmdline.iommu)
        trace("IOMMU: 'iommu' given; DMA/interrupt remapping is not implemented yet (DMAR %s)",
              Boot::acpi.dmar.present ? "present" : "absent");
    Keyb::init();

    Smp::boot_aps(Boot::trampoline_page);
    Gsi::init();       // needs the online CPUs (idle SCs)
    boot_pml4[0] = 0;  // identity map no longer needed
    set_cr3(get_cr3());

    if (Boot::cmdline.kfault) {
        trace("KFAULT: touching an unmapped kernel address on purpose (command-line option kfault)");
        *reinterpret_cast<volatile u64 *>(0xdead000) = 1;
    }
    Ktest::run();
    Lockup::start();
    start_root_task();
}
