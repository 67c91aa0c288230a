/*
 * Fuzzes the multiboot 1 and 2 information parser (src/multiboot.cpp) and what the kernel does
 * with its result at boot (src/init.cpp): the reserved ranges, the memory map sanitiser and the
 * placement of the kernel pool and image (src/memmap.cpp), the command line parser
 * (src/cmdline.cpp).
 *
 * Input: a selector byte (bit 0: multiboot 2, else 1; bit 1: a bad magic; bits 7:4: the info
 * structure's offset into the memory, to reach the alignment check), then physical memory at
 * 0x10000. Pointers in the information (MB1 strings, modules, memory map) land in it or in
 * unreadable memory.
 */
#include <cstddef>
#include <vector>

#include "check.hpp"
#include "cmdline.hpp"
#include "fake_phys.hpp"
#include "memmap.hpp"
#include "multiboot.hpp"

namespace {

constexpr u64 BASE = 0x10000;

/* Free range [base, base + size) shares a page with the reserved range a (which may wrap). */
bool touches(Mem_range const &a, u64 base, u64 size)
{
    u64 last = a.size - 1 > ~u64{0} - a.base ? ~u64{0} : a.base + (a.size - 1);
    return a.size && base <= (last | 0xfff) && (a.base & ~u64{0xfff}) < base + size;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const u8 *data, size_t size)
{
    if (size < 1)
        return 0;
    u8 sel = data[0];
    u32 magic = sel & 2 ? 0x1badb002 : sel & 1 ? MULTIBOOT2_LOADER_MAGIC : MULTIBOOT1_LOADER_MAGIC;
    Fake_phys phys{BASE, data + 1, size - 1, false, {}};
    static Boot_info bi;
    if (!parse_multiboot(magic, BASE + (sel >> 4), phys.reader(), bi))
        return 0;

    check(bi.mmap_count <= Boot_info::MAX_MMAP && bi.module_count <= Boot_info::MAX_MODULES);
    check(bi.rsdp_len <= Boot_info::MAX_RSDP);
    for (u32 i = 0; i < bi.module_count; i++)
        check(bi.modules[i].end >= bi.modules[i].start);

    // The command line as src/init.cpp reads it: len + 1 bytes mapped, else an empty string.
    // (The parser may report a string that ends at the edge of readable memory without a NUL.)
    if (bi.cmdline_phys) {
        // As src/init.cpp maps it: the string's length (parse stops there or at a NUL).
        const void *s = phys.reader().map(bi.cmdline_phys, bi.cmdline_len ? bi.cmdline_len : 1);
        check(s != nullptr);
        Cmdline c;
        c.parse(s ? static_cast<const char *>(s) : "", s ? bi.cmdline_len : 0);
        char buf[128];
        check(c.describe(buf, sizeof buf) < sizeof buf);
    }

    // The memory map as src/init.cpp builds it; no free page may touch loader data.
    static Memmap mm;
    mm = Memmap{};
    for (u32 i = 0; i < bi.mmap_count; i++)
        mm.add_range(bi.mmap[i].base, bi.mmap[i].size, bi.mmap[i].type);
    mm.reserve(0, 0x100000);
    Mem_range rsv[Boot_info::MAX_RESERVED_RANGES];
    u32 n = bi.reserved_ranges(rsv, Boot_info::MAX_RESERVED_RANGES);
    check(n <= Boot_info::MAX_RESERVED_RANGES);
    for (u32 i = 0; i < n; i++)
        mm.reserve(rsv[i].base, rsv[i].size);
    if (!mm.build())
        return 0;
    u64 last_end = 0;
    for (u32 i = 0; i < mm.free_count(); i++) {
        Mem_range const &f = mm.free_range(i);
        check(f.size && !(f.base & 0xfff) && !(f.size & 0xfff) && f.base >= last_end && f.base >= 0x100000);
        last_end = f.base + f.size;
        for (u32 j = 0; j < n; j++)
            check(!touches(rsv[j], f.base, f.size));
    }

    // Where src/init.cpp puts the kernel pool and the image: inside one free range, the image
    // at a page boundary right above the pool, all below 4 GiB; none at all only when no range
    // is big enough for the smallest pool and the image.
    constexpr u64 MIN = 2 << 20, IMAGE = 0x86000, LIMIT = u64{4} << 30;
    u64 want = mm.bytes_ram() / 8 > MIN ? mm.bytes_ram() / 8 & ~u64{0xfff} : MIN;
    Memmap::Placement p = mm.place_kernel(want, MIN, IMAGE, 0x1000, LIMIT);
    check(p.largest <= mm.bytes_free());
    if (!p.size)
        check(p.largest < MIN + IMAGE);
    else {
        check(p.size >= MIN && p.size <= want && p.pool_base + p.size == p.image && !(p.image & 0xfff) &&
              p.image + IMAGE <= LIMIT && p.largest >= p.size + IMAGE);
        bool inside = false;
        for (u32 i = 0; i < mm.free_count(); i++) {
            Mem_range const &f = mm.free_range(i);
            inside |= f.base <= p.pool_base && p.image + IMAGE <= f.base + f.size;
        }
        check(inside);
        check(mm.is_ram(p.pool_base, p.size + IMAGE));
    }
    for (u32 i = 0; i < bi.module_count; i++)
        (void)mm.is_ram(bi.modules[i].start, bi.modules[i].end - bi.modules[i].start);
    return 0;
}
