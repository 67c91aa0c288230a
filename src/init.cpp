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
#include "iommu.hpp"
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
#include "svm.hpp"
#include "time.hpp"
#include "vga.hpp"
#include "vmx.hpp"
#include "vtd.hpp"
#include "x86.hpp"

Cmdline Boot::cmdline;
Boot_info Boot::info;
Acpi_info Boot::acpi;
Phys_reader Boot::phys;
u64 Boot::entry_tsc;
u64 Boot::trampoline_page;
u64 Boot::pool_base, Boot::pool_end, Boot::hyp_base, Boot::hyp_end, Boot::hip_phys;
unsigned Boot::hip_pages;

namespace {

/* The boot page tables of src/start.S through the -2 GiB window, which follows the image when
   it moves (their symbols are link addresses, reachable through the identity map only before). */
template <typename T> T *boot_virt(T *linked)
{
    return reinterpret_cast<T *>(reinterpret_cast<u64>(linked) + KERNEL_VIRT);
}

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
        u64 &e = boot_virt(boot_pdpt_low)[a / GB];
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
 * The kernel's own memory is one pool of free RAM with the image right above it, so that pool
 * and image form the single hypervisor region of the HIP (ABI 8.5); all other RAM is left to
 * the root task. Size: 1/8 of RAM up to 256 MiB, but at least 2 MiB plus 64 KiB for every CPU
 * of the MADT (a CPU takes about 44 KiB: its Cpu, kernel and IST stacks and their page tables);
 * less only when no free range below 4 GiB holds that much, never less than 2 MiB. The loaders
 * put the image low (linker.ld, LOAD_ADDR), where there is no room for a pool below it; so the
 * image moves: to the top of the chosen range, right above the pool.
 */
void setup_pool()
{
    constexpr u64 MIN = 2ull << 20, MAX = 256ull << 20, PER_CPU = 64ull << 10, LIMIT = 4ull << 30;
    const u64 link = reinterpret_cast<u64>(__image_start_phys);
    const u64 size = reinterpret_cast<u64>(__image_end_phys) - link;
    u64 cpus = Boot::acpi.madt.num_cpus_enabled ? Boot::acpi.madt.num_cpus_enabled : 1;
    u64 want = align_down(memmap.bytes_ram() / 8 < MAX ? memmap.bytes_ram() / 8 : MAX, PAGE_SIZE);
    if (want < MIN + cpus * PER_CPU)
        want = MIN + cpus * PER_CPU;

    // The loader put the image where its map has no RAM: say so (we still run, so the memory
    // exists), then leave the place as the image moves anyway.
    if (!memmap.is_ram(link, size))
        trace("MEM: the loader put the kernel image at %#lx-%#lx, which its memory map does not list as "
              "available RAM",
              link, link + size);

    // The window maps the image with 4 KiB pages: any page boundary will do.
    Memmap::Placement p = memmap.place_kernel(want, MIN, size, PAGE_SIZE, LIMIT);
    if (!p.size)
        panic("MEM: not enough memory for the kernel: it needs %llu KiB of free RAM in one range below 4 GiB "
              "(a pool of at least %llu KiB and the %llu KiB image); the largest free range holds %llu KiB "
              "(%llu MiB RAM in all)",
              static_cast<unsigned long long>((MIN + size) >> 10), static_cast<unsigned long long>(MIN >> 10),
              static_cast<unsigned long long>(size >> 10), static_cast<unsigned long long>(p.largest >> 10),
              static_cast<unsigned long long>(memmap.bytes_ram() >> 20));
    if (p.size < want)
        trace("MEM: no free range below 4 GiB holds a kernel pool of %llu KiB (%llu CPUs); it gets %llu KiB",
              static_cast<unsigned long long>(want >> 10), static_cast<unsigned long long>(cpus),
              static_cast<unsigned long long>(p.size >> 10));

    relocate_image(reinterpret_cast<u64>(phys_to_virt(p.image)), reinterpret_cast<u64>(phys_to_virt(link)),
                   p.image - link);

    Boot::pool_base = p.pool_base;
    Boot::pool_end = p.pool_base + p.size;
    Boot::hyp_base = p.pool_base;
    Boot::hyp_end = p.image + size;
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
    // A loader may put a module where there is no RAM (QEMU -kernel on a small machine): say so,
    // the root task's checks will fail on what is there.
    for (u32 i = 0; i < bi.module_count; i++)
        if (bi.modules[i].end > bi.modules[i].start &&
            !memmap.is_ram(bi.modules[i].start, bi.modules[i].end - bi.modules[i].start))
            trace("MEM: module %u at %#lx-%#lx does not lie in available RAM (the machine is too small for "
                  "it?)",
                  i, bi.modules[i].start, bi.modules[i].end);

    setup_pool();
    // Free for user mode: what the memory map left free, less pool and image, plus the image's
    // old place (reserved above, now dead) if the map calls it RAM.
    u64 image_size = image_phys_end() - image_phys_begin();
    u64 user = memmap.bytes_free() - (Boot::hyp_end - Boot::hyp_base);
    if (memmap.is_ram(reinterpret_cast<u64>(__image_start_phys), image_size))
        user += align_up(image_size, PAGE_SIZE);
    trace("MEM: %llu MiB RAM, kernel pool %llu KiB at %#lx-%#lx, image moved from %#lx to %#lx, "
          "%llu MiB left for user mode, direct map to %#lx",
          static_cast<unsigned long long>(memmap.bytes_ram() >> 20),
          static_cast<unsigned long long>((Boot::pool_end - Boot::pool_base) >> 10), Boot::pool_base,
          Boot::pool_end, reinterpret_cast<u64>(__image_start_phys), image_phys_begin(),
          static_cast<unsigned long long>(user >> 20), direct_limit);

    // The MMIO window's PDPT must exist before the first address space copies the kernel half.
    u64 *master = boot_virt(boot_pml4);
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

/*
 * x2APIC where the CPU has it, except that with `iommu` a DMAR table with X2APIC_OPT_OUT asks us to
 * stay in xAPIC mode: we do where the firmware left the APIC in xAPIC mode and every CPU has an
 * xAPIC ID; otherwise x2APIC stays, and interrupt remapping then uses xAPIC destinations anyway
 * (no EIM: src/dmar.cpp, docs/iommu.md).
 */
bool use_x2apic(const Cpu &boot)
{
    const Dmar_info &d = Boot::acpi.dmar;
    bool opt_out = Boot::cmdline.iommu && d.present && d.x2apic_opt_out();
    if (!boot.feat.x2apic || !opt_out)
        return boot.feat.x2apic;
    bool firmware_x2 = rdmsr(Msr::APIC_BASE) & (1u << 10);
    u32 max_id = 0;
    for (unsigned i = 0; i < Cpu::count; i++)
        max_id = Cpu::table[i]->apic_id > max_id ? Cpu::table[i]->apic_id : max_id;
    bool stay = Vtd::Irte::stay_xapic(opt_out, firmware_x2, max_id);
    trace("IOMMU: the DMAR table opts out of x2APIC: %s", stay ? "xAPIC mode"
                                                          : firmware_x2
                                                              ? "x2APIC kept (enabled by the firmware)"
                                                              : "x2APIC kept (APIC IDs above 255)");
    return !stay;
}

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
          Vmx::usable       ? "VMX with EPT and unrestricted guest (not run on hardware)"
          : f.vmx           ? "VMX (unusable)"
          : Svm::usable     ? "SVM with nested paging"
          : f.svm && !f.npt ? "SVM without nested paging (unusable)"
          : f.svm           ? "SVM (unusable)"
                            : "none");
}

}  // namespace

bool Boot::is_ram(u64 base, u64 size) { return memmap.is_ram(base, size); }

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
                 use_x2apic(boot));
    Pic::disable();
    Smp::init_this_cpu();
    report_features(boot_cpu_features());
    Time::calibrate(Boot::acpi);
    trace("TIME: TSC %u kHz, LAPIC timer %u kHz (%s), %s timer", Time::tsc_khz, Lapic::bus_khz, Time::source,
          Lapic::timer_uses_deadline() ? "TSC-deadline" : "LAPIC one-shot");
    Lapic::timer_setup(Lapic::timer_uses_deadline());
    Lapic::timer_arm_tsc(rdtsc() + Time::ms_to_tsc(100));
    Iommu::init();  // first: with interrupt remapping the I/O APIC pins are programmed remappable
    Ioapic::init(Boot::acpi);
    Keyb::init();

    Smp::boot_aps(Boot::trampoline_page);
    Gsi::init();                  // needs the online CPUs (idle SCs)
    boot_virt(boot_pml4)[0] = 0;  // identity map no longer needed
    set_cr3(get_cr3());

    if (Boot::cmdline.kfault) {
        trace("KFAULT: touching an unmapped kernel address on purpose (command-line option kfault)");
        *reinterpret_cast<volatile u64 *>(0xdead000) = 1;
    }
    Ktest::run();
    Lockup::start();
    start_root_task();
}
