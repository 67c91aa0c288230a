/*
 * The Linux x86 boot protocol, 64-bit entry (Documentation/arch/x86/boot.rst; docs/vmm.md): the
 * bzImage's setup header is checked and copied into a zero page, the protected-mode kernel goes
 * to its preferred address, the initrd as high as its limit allows, the command line and an E820
 * map next to the zero page, and an identity map of the first 4 GiB with a flat GDT for the
 * long-mode entry at the kernel's start + 0x200.
 */
#include "string.hpp"
#include "vmm.hpp"

namespace vmm {

namespace {

template <typename T> T get(const u8 *p, u64 off)
{
    T v;
    memcpy(&v, p + off, sizeof v);
    return v;
}

template <typename T> void put(u8 *p, u64 off, T v) { memcpy(p + off, &v, sizeof v); }

// Setup header fields (offsets into the bzImage and into the zero page alike).
constexpr u64 SETUP_SECTS = 0x1f1, BOOT_FLAG = 0x1fe, JUMP = 0x200, HEADER = 0x202, VERSION = 0x206,
              TYPE_OF_LOADER = 0x210, LOADFLAGS = 0x211, RAMDISK_IMAGE = 0x218, RAMDISK_SIZE = 0x21c,
              HEAP_END_PTR = 0x224, CMD_LINE_PTR = 0x228, INITRD_ADDR_MAX = 0x22c, RELOCATABLE = 0x234,
              XLOADFLAGS = 0x236, CMDLINE_SIZE = 0x238, PREF_ADDRESS = 0x258, INIT_SIZE = 0x260;
// Zero page fields outside the setup header.
constexpr u64 EXT_RAMDISK_IMAGE = 0x0c0, EXT_RAMDISK_SIZE = 0x0c4, EXT_CMD_LINE_PTR = 0x0c8,
              E820_ENTRIES = 0x1e8, E820_TABLE = 0x2d0;

void e820(u8 *zp, unsigned &n, u64 addr, u64 size, u32 type)
{
    u64 at = E820_TABLE + 20 * u64{n++};
    put<u64>(zp, at, addr);
    put<u64>(zp, at + 8, size);
    put<u32>(zp, at + 16, type);
}

u64 align_up(u64 v, u64 a) { return (v + a - 1) & ~(a - 1); }

}  // namespace

Boot_result load_linux(u8 *ram, u64 ram_size, const u8 *image, u64 image_size, const u8 *initrd,
                       u64 initrd_size, const char *cmdline, u64 cmdline_len)
{
    Boot_result r{};
    if (image_size < 0x1000 || get<u16>(image, BOOT_FLAG) != 0xaa55 || get<u32>(image, HEADER) != 0x53726448)
        return r.error = "not a bzImage (no boot flag 0xaa55 or no \"HdrS\" header)", r;
    r.version = get<u16>(image, VERSION);
    if (r.version < 0x20c)
        return r.error = "boot protocol older than 2.12 (no 64-bit entry)", r;
    if (!(get<u16>(image, XLOADFLAGS) & 1))
        return r.error = "the kernel has no 64-bit entry (XLF_KERNEL_64 clear)", r;
    if (!(get<u8>(image, LOADFLAGS) & 1))
        return r.error = "not a bzImage (LOADED_HIGH clear: a zImage)", r;
    u64 setup_sects = get<u8>(image, SETUP_SECTS) ? get<u8>(image, SETUP_SECTS) : 4;
    u64 pm_off = (setup_sects + 1) * 512;
    if (pm_off >= image_size)
        return r.error = "bzImage truncated: no protected-mode part", r;
    u64 pm_size = image_size - pm_off;
    u64 init_size = get<u32>(image, INIT_SIZE);
    u64 at = get<u8>(image, RELOCATABLE) ? get<u64>(image, PREF_ADDRESS) : 0x100000;
    if (at < 0x100000)
        at = 0x100000;
    u64 kernel_end = at + (init_size > pm_size ? init_size : pm_size);
    if (kernel_end > ram_size || kernel_end < at)
        return r.error = "too little RAM for the kernel (init_size beyond the end of RAM)", r;
    memcpy(ram + at, image + pm_off, pm_size);
    r.kernel_at = at;
    r.kernel_end = kernel_end;
    r.entry = at + 0x200;

    // Zero page: the setup header as in the image, then what a boot loader fills in.
    u8 *zp = ram + G_ZERO_PAGE;
    memset(zp, 0, 0x1000);
    u64 hdr_end = HEADER + get<u8>(image, JUMP + 1);
    memcpy(zp + SETUP_SECTS, image + SETUP_SECTS, hdr_end - SETUP_SECTS);
    put<u8>(zp, TYPE_OF_LOADER, 0xff);
    put<u8>(zp, LOADFLAGS, static_cast<u8>(get<u8>(zp, LOADFLAGS) | 0x80));  // CAN_USE_HEAP
    put<u16>(zp, HEAP_END_PTR, 0xfe00);

    u64 max_cmd = get<u32>(image, CMDLINE_SIZE);
    if (max_cmd > CMDLINE_MAX - 1)
        max_cmd = CMDLINE_MAX - 1;
    if (cmdline_len > max_cmd)
        return r.error = "command line longer than the kernel accepts (cmdline_size)", r;
    memset(ram + G_CMDLINE, 0, CMDLINE_MAX);
    memcpy(ram + G_CMDLINE, cmdline, cmdline_len);
    put<u32>(zp, CMD_LINE_PTR, static_cast<u32>(G_CMDLINE));
    put<u32>(zp, EXT_CMD_LINE_PTR, 0);

    if (initrd_size) {
        u64 limit = u64{get<u32>(image, INITRD_ADDR_MAX)} + 1;
        if (limit > ram_size)
            limit = ram_size;
        u64 size = align_up(initrd_size, 0x1000);
        if (size > limit || limit - size < align_up(kernel_end, 0x1000))
            return r.error =
                       "the initrd does not fit between the kernel and its limit (initrd_addr_max or RAM)",
                   r;
        u64 ia = (limit - size) & ~u64{0xfff};
        memcpy(ram + ia, initrd, initrd_size);
        put<u32>(zp, RAMDISK_IMAGE, static_cast<u32>(ia));
        put<u32>(zp, RAMDISK_SIZE, static_cast<u32>(initrd_size));
        put<u32>(zp, EXT_RAMDISK_IMAGE, static_cast<u32>(ia >> 32));
        put<u32>(zp, EXT_RAMDISK_SIZE, static_cast<u32>(initrd_size >> 32));
        r.initrd_at = ia;
    }

    unsigned n = 0;
    e820(zp, n, 0, LOW_RAM_END, 1);
    e820(zp, n, LOW_RAM_END, 0x100000 - LOW_RAM_END, 2);  // EBDA, video, BIOS: reserved
    e820(zp, n, 0x100000, ram_size - 0x100000, 1);
    put<u8>(zp, E820_ENTRIES, static_cast<u8>(n));

    // Long-mode entry: identity map of 4 GiB with 2 MiB pages, GDT with __BOOT_CS 0x10 and
    // __BOOT_DS 0x18.
    put<u64>(ram, G_PML4, G_PDPT | 3);
    for (u64 i = 0; i < 4; i++) {
        put<u64>(ram, G_PDPT + 8 * i, (G_PD + 0x1000 * i) | 3);
        for (u64 j = 0; j < 512; j++)
            put<u64>(ram, G_PD + 0x1000 * i + 8 * j, (i << 30 | j << 21) | 0x83);
    }
    memset(ram + G_GDT, 0, 0x30);
    put<u64>(ram, G_GDT + 0x10, 0x00af9b000000ffffull);
    put<u64>(ram, G_GDT + 0x18, 0x00cf93000000ffffull);
    r.zero_page = G_ZERO_PAGE;
    return r;
}

}  // namespace vmm
