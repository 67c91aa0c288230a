// host-testable
/*
 * Multiboot 1 and 2 boot information parser.
 *
 * The information comes from the loader and is treated as hostile: every
 * table is mapped with its claimed size before it is read, every size and
 * count is checked against what was mapped, and strings are scanned for
 * their NUL only up to a bound.
 */
#include "multiboot.hpp"
#include "diag.hpp"

namespace {

// Loader data has no alignment guarantee worth trusting; read bytes.
u32 rd32(const u8 *p) { return u32{p[0]} | u32{p[1]} << 8 | u32{p[2]} << 16 | u32{p[3]} << 24; }

u64 rd64(const u8 *p) { return u64{rd32(p)} | u64{rd32(p + 4)} << 32; }

void zero(void *p, size_t n)
{
    u8 *b = static_cast<u8 *>(p);
    for (size_t i = 0; i < n; i++)
        b[i] = 0;
}

const u8 *map_bytes(const Phys_reader &r, u64 phys, u64 len)
{
    return static_cast<const u8 *>(r.map(phys, len));
}

// Length of the string at phys without its NUL, scanning at most max bytes.
// Maps page by page (falling back to single bytes) so that a short string
// near the end of readable memory is still found. Returns false if not even
// the first byte is readable.
bool scan_string(const Phys_reader &r, u64 phys, u64 max, const char *what, u64 &len)
{
    len = 0;
    while (len < max) {
        u64 p = phys + len;
        u64 chunk = PAGE_SIZE - (p & (PAGE_SIZE - 1));
        if (chunk > max - len)
            chunk = max - len;
        const u8 *m = map_bytes(r, p, chunk);
        if (!m) {
            chunk = 1;
            m = map_bytes(r, p, 1);
        }
        if (!m) {
            diag("multiboot: %s at %#lx is not readable beyond %lu bytes", what, phys, len);
            return len != 0;
        }
        for (u64 i = 0; i < chunk; i++)
            if (!m[i]) {
                len += i;
                return true;
            }
        len += chunk;
    }
    diag("multiboot: %s at %#lx is not terminated within %lu bytes", what, phys, max);
    return true;
}

// Same for a string embedded in already mapped memory (MB2 tags).
u64 string_in(const u8 *s, u64 max, const char *what)
{
    for (u64 i = 0; i < max; i++)
        if (!s[i])
            return i;
    diag("multiboot2: %s is not terminated within its tag", what);
    return max;
}

void set_string(const Phys_reader &r, u64 phys, const char *what, u64 &out_phys, u64 &out_len)
{
    out_phys = out_len = 0;
    u64 len;
    if (phys && scan_string(r, phys, Boot_info::MAX_STRING, what, len)) {
        out_phys = phys;
        out_len = len;
    }
}

bool add_mmap(Boot_info &bi, u64 base, u64 size, u32 type)
{
    if (bi.mmap_count == Boot_info::MAX_MMAP) {
        diag("multiboot: memory map truncated to %u entries", Boot_info::MAX_MMAP);
        return false;
    }
    bi.mmap[bi.mmap_count++] = Mem_range{base, size, type};
    return true;
}

// mem_lower/mem_upper in KiB: [0, lower) and [1 MiB, 1 MiB + upper).
void add_meminfo(Boot_info &bi, u32 lower, u32 upper)
{
    if (lower > 640) {
        diag("multiboot: mem_lower %u KiB exceeds 640 KiB, clamped", lower);
        lower = 640;
    }
    if (lower)
        add_mmap(bi, 0, u64{lower} << 10, MEM_AVAILABLE);
    if (upper)
        add_mmap(bi, 1 << 20, u64{upper} << 10, MEM_AVAILABLE);
}

void add_module(Boot_info &bi, u64 start, u64 end, u64 str_phys, u64 str_len)
{
    Boot_module &m = bi.modules[bi.module_count];
    if (end < start) {
        diag("multiboot: module %u ends at %#lx before its start %#lx, treated as empty", bi.module_count,
             end, start);
        end = start;
    }
    m.start = start;
    m.end = end;
    m.cmdline_phys = str_phys;
    m.cmdline_len = str_len;
    bi.module_count++;
}

/* ---------------------------------------------------------------- Multiboot 1 */

constexpr u32 MB1_MEM = 1u << 0, MB1_CMDLINE = 1u << 2, MB1_MODS = 1u << 3, MB1_MMAP = 1u << 6,
              MB1_LOADER_NAME = 1u << 9, MB1_FB = 1u << 12;
constexpr u64 MB1_INFO_SIZE = 116, MB1_INFO_MIN = 52;  // full structure / up to mmap_addr

void mb1_mmap(const Phys_reader &r, const u8 *h, Boot_info &bi)
{
    u64 len = rd32(h + 44), addr = rd32(h + 48);
    if (len == 0) {
        diag("multiboot: memory map flag set but the map is empty");
        return;
    }
    if (len > Boot_info::MAX_MBI) {
        diag("multiboot: memory map length %#lx too large, cut to %#lx", len, Boot_info::MAX_MBI);
        len = Boot_info::MAX_MBI;
    }
    const u8 *m = map_bytes(r, addr, len);
    if (!m) {
        diag("multiboot: memory map at %#lx+%#lx is not readable", addr, len);
        return;
    }
    bi.mb1_mmap_phys = addr;
    bi.mb1_mmap_len = len;

    // Entries: u32 size (not counting itself), u64 base, u64 length, u32 type, maybe more.
    for (u64 off = 0; off < len;) {
        if (len - off < 24) {
            diag("multiboot: memory map has %lu trailing bytes at offset %lu, ignored", len - off, off);
            return;
        }
        u64 size = rd32(m + off);
        if (size < 20) {
            diag("multiboot: memory map entry at offset %lu has bad size %lu", off, size);
            return;
        }
        if (size + 4 > len - off) {
            diag("multiboot: memory map entry at offset %lu overruns the map", off);
            return;
        }
        if (!add_mmap(bi, rd64(m + off + 4), rd64(m + off + 12), rd32(m + off + 20)))
            return;
        off += size + 4;
    }
}

void mb1_modules(const Phys_reader &r, const u8 *h, Boot_info &bi)
{
    u64 count = rd32(h + 20), addr = rd32(h + 24);
    if (count == 0)
        return;
    if (count > Boot_info::MAX_MODULES) {
        diag("multiboot: %lu modules, only the first %u are used", count, Boot_info::MAX_MODULES);
        count = Boot_info::MAX_MODULES;
    }
    const u8 *m = map_bytes(r, addr, count * 16);
    if (!m) {
        diag("multiboot: module table at %#lx is not readable", addr);
        return;
    }
    bi.mb1_mods_phys = addr;
    bi.mb1_mods_len = count * 16;

    for (u64 i = 0; i < count; i++) {
        const u8 *e = m + i * 16;
        u64 sp, sl;
        set_string(r, rd32(e + 8), "module string", sp, sl);
        add_module(bi, rd32(e), rd32(e + 4), sp, sl);
    }
}

void mb1_framebuffer(const u8 *h, Boot_info &bi)
{
    bi.has_framebuffer = true;
    bi.fb.addr = rd64(h + 88);
    bi.fb.pitch = rd32(h + 96);
    bi.fb.width = rd32(h + 100);
    bi.fb.height = rd32(h + 104);
    bi.fb.bpp = h[108];
    bi.fb.type = h[109];
}

bool parse_mb1(u64 mbi, const Phys_reader &r, Boot_info &bi)
{
    u64 hlen = MB1_INFO_SIZE;
    const u8 *h = map_bytes(r, mbi, hlen);
    if (!h)
        h = map_bytes(r, mbi, hlen = MB1_INFO_MIN);
    if (!h) {
        diag("multiboot: info structure at %#lx is not readable", mbi);
        return false;
    }
    bi.mbi_len = hlen;

    u32 flags = rd32(h);
    if (flags & MB1_CMDLINE)
        set_string(r, rd32(h + 16), "command line", bi.cmdline_phys, bi.cmdline_len);
    if ((flags & MB1_LOADER_NAME) && hlen == MB1_INFO_SIZE)
        set_string(r, rd32(h + 64), "boot loader name", bi.loader_name_phys, bi.loader_name_len);
    if (flags & MB1_MODS)
        mb1_modules(r, h, bi);
    if (flags & MB1_MMAP) {
        mb1_mmap(r, h, bi);
        if (bi.mmap_count)
            bi.mmap_source = Boot_info::MMAP_MB1;
    }
    if (!bi.mmap_count && (flags & MB1_MEM)) {
        add_meminfo(bi, rd32(h + 4), rd32(h + 8));
        if (bi.mmap_count)
            bi.mmap_source = Boot_info::MMAP_MB1_MEMINFO;
    }
    if (flags & MB1_FB) {
        if (hlen == MB1_INFO_SIZE)
            mb1_framebuffer(h, bi);
        else
            diag("multiboot: framebuffer fields are not readable, ignored");
    }
    return true;
}

/* ---------------------------------------------------------------- Multiboot 2 */

enum Mb2_tag : u32 {
    TAG_END = 0,
    TAG_CMDLINE = 1,
    TAG_LOADER_NAME = 2,
    TAG_MODULE = 3,
    TAG_MEMINFO = 4,
    TAG_MMAP = 6,
    TAG_FRAMEBUFFER = 8,
    TAG_EFI32 = 11,
    TAG_EFI64 = 12,
    TAG_ACPI_OLD = 14,
    TAG_ACPI_NEW = 15,
    TAG_EFI_MMAP = 17,
    TAG_EFI_BS = 18,
};

// Smallest size (header included) of the tags we read; 0 = not interpreted.
u32 tag_min_size(u32 type)
{
    switch (type) {
    case TAG_CMDLINE:
    case TAG_LOADER_NAME: return 8;
    case TAG_MODULE:
    case TAG_MEMINFO:
    case TAG_MMAP: return 16;
    case TAG_FRAMEBUFFER: return 30;
    case TAG_EFI32: return 12;
    case TAG_EFI64: return 16;
    case TAG_ACPI_OLD:
    case TAG_ACPI_NEW: return 8 + 20;
    case TAG_EFI_MMAP: return 16;
    case TAG_EFI_BS: return 8;
    default: return 0;
    }
}

// The memory map tags are applied after the walk, in order of preference.
struct Mb2_maps
{
    const u8 *mmap, *efi_mmap, *meminfo;
    u32 mmap_size, efi_mmap_size;
};

void mb2_mmap(const u8 *t, u32 size, Boot_info &bi)
{
    u32 esz = rd32(t + 8);
    if (esz < 24) {
        diag("multiboot2: memory map entry size %u is too small, map ignored", esz);
        return;
    }
    u32 bytes = size - 16;
    if (bytes % esz)
        diag("multiboot2: memory map has %u trailing bytes, ignored", bytes % esz);
    for (u32 i = 0; i < bytes / esz; i++) {
        const u8 *e = t + 16 + u64{i} * esz;
        if (!add_mmap(bi, rd64(e), rd64(e + 8), rd32(e + 16)))
            return;
    }
}

u32 efi_to_multiboot(u32 efi_type)
{
    switch (efi_type) {
    case 1:
    case 2:  // loader code/data
    case 3:
    case 4:  // boot services code/data (free once we run)
    case 7:  // conventional memory
        return MEM_AVAILABLE;
    case 9: return MEM_ACPI_RECLAIM;
    case 10: return MEM_ACPI_NVS;
    case 8: return MEM_BAD;
    default: return MEM_RESERVED;
    }
}

void mb2_efi_mmap(const u8 *t, u32 size, Boot_info &bi)
{
    u32 dsz = rd32(t + 8);
    if (dsz < 40) {
        diag("multiboot2: EFI memory descriptor size %u is too small, map ignored", dsz);
        return;
    }
    u32 bytes = size - 16;
    if (bytes % dsz)
        diag("multiboot2: EFI memory map has %u trailing bytes, ignored", bytes % dsz);

    // EFI maps are fragmented; merging contiguous descriptors of equal type keeps the table small.
    for (u32 i = 0; i < bytes / dsz; i++) {
        const u8 *d = t + 16 + u64{i} * dsz;
        u32 type = efi_to_multiboot(rd32(d));
        u64 base = rd64(d + 8), pages = rd64(d + 24);
        if (pages > (~u64{0} >> PAGE_BITS)) {
            diag("multiboot2: EFI descriptor %u has an absurd page count %#lx, ignored", i, pages);
            continue;
        }
        u64 size_b = pages << PAGE_BITS;
        if (bi.mmap_count) {
            Mem_range &l = bi.mmap[bi.mmap_count - 1];
            bool contiguous = l.base + l.size >= l.base && l.base + l.size == base;
            if (contiguous && l.type == type && size_b <= ~u64{0} - l.base - l.size) {
                l.size += size_b;
                continue;
            }
        }
        if (!add_mmap(bi, base, size_b, type))
            return;
    }
}

void mb2_framebuffer(const u8 *t, Boot_info &bi)
{
    bi.has_framebuffer = true;
    bi.fb.addr = rd64(t + 8);
    bi.fb.pitch = rd32(t + 16);
    bi.fb.width = rd32(t + 20);
    bi.fb.height = rd32(t + 24);
    bi.fb.bpp = t[28];
    bi.fb.type = t[29];
}

void mb2_rsdp(const u8 *t, u32 size, Boot_info &bi)
{
    u32 n = size - 8 < Boot_info::MAX_RSDP ? size - 8 : Boot_info::MAX_RSDP;
    for (u32 i = 0; i < n; i++)
        bi.rsdp_copy[i] = t[8 + i];
    bi.rsdp_len = n;
}

void mb2_module(u64 tag_phys, const u8 *t, u32 size, Boot_info &bi)
{
    if (bi.module_count == Boot_info::MAX_MODULES) {
        diag("multiboot2: more than %u modules, the rest are ignored", Boot_info::MAX_MODULES);
        return;
    }
    u64 sp = tag_phys + 16, sl = string_in(t + 16, size - 16, "module string");
    add_module(bi, rd32(t + 8), rd32(t + 12), sp, sl);
}

// Tags that may appear once; a repeated one is reported and ignored.
bool first_of_kind(u32 type, u32 &seen)
{
    if (type == TAG_MODULE || type >= 32)
        return true;
    if (seen & (1u << type)) {
        diag("multiboot2: duplicate tag %u ignored", type);
        return false;
    }
    seen |= 1u << type;
    return true;
}

void mb2_tag(u64 tag_phys, const u8 *t, u32 type, u32 size, Mb2_maps &maps, Boot_info &bi)
{
    switch (type) {
    case TAG_CMDLINE:
        if (size == 8)  // not even the NUL: no string to point at
            diag("multiboot2: command line tag holds no string");
        else {
            bi.cmdline_phys = tag_phys + 8;
            bi.cmdline_len = string_in(t + 8, size - 8, "command line");
        }
        break;
    case TAG_LOADER_NAME:
        if (size == 8)
            diag("multiboot2: boot loader name tag holds no string");
        else {
            bi.loader_name_phys = tag_phys + 8;
            bi.loader_name_len = string_in(t + 8, size - 8, "boot loader name");
        }
        break;
    case TAG_MODULE: mb2_module(tag_phys, t, size, bi); break;
    case TAG_MEMINFO: maps.meminfo = t; break;
    case TAG_MMAP:
        maps.mmap = t;
        maps.mmap_size = size;
        break;
    case TAG_EFI_MMAP:
        maps.efi_mmap = t;
        maps.efi_mmap_size = size;
        bi.efi = true;
        break;
    case TAG_FRAMEBUFFER: mb2_framebuffer(t, bi); break;
    case TAG_EFI32:
        bi.efi = true;
        bi.efi_systab = rd32(t + 8);
        break;
    case TAG_EFI64:
        bi.efi = true;
        bi.efi_systab = rd64(t + 8);
        break;
    case TAG_ACPI_OLD:
        if (!bi.rsdp_len)  // the new RSDP (tag 15) wins whatever the order
            mb2_rsdp(t, size, bi);
        break;
    case TAG_ACPI_NEW: mb2_rsdp(t, size, bi); break;
    case TAG_EFI_BS: bi.efi = bi.efi_boot_services = true; break;
    default: break;
    }
}

// Walks the tags; stops at the end tag or at the first malformed header.
void mb2_walk(u64 mbi, const u8 *m, u64 total, Mb2_maps &maps, Boot_info &bi)
{
    u32 seen = 0;
    for (u64 off = 8; off < total;) {
        if (total - off < 8) {
            diag("multiboot2: tag header at offset %#lx is truncated", off);
            return;
        }
        u32 type = rd32(m + off), size = rd32(m + off + 4);
        if (size < 8 || size > total - off) {
            diag("multiboot2: tag %u at offset %#lx has bad size %u, parsing stopped", type, off, size);
            return;
        }
        if (type == TAG_END) {
            if (size != 8)
                diag("multiboot2: end tag has size %u instead of 8", size);
            return;
        }
        u32 min = tag_min_size(type);
        if (min && first_of_kind(type, seen)) {
            if (size < min)
                diag("multiboot2: tag %u is too short (%u bytes), ignored", type, size);
            else
                mb2_tag(mbi + off, m + off, type, size, maps, bi);
        }
        off = align_up(off + size, 8);
    }
    diag("multiboot2: no end tag within %#lx bytes", total);
}

void mb2_pick_mmap(const Mb2_maps &maps, Boot_info &bi)
{
    if (maps.mmap) {
        mb2_mmap(maps.mmap, maps.mmap_size, bi);
        bi.mmap_source = Boot_info::MMAP_MB2;
    }
    if (!bi.mmap_count && maps.efi_mmap) {
        mb2_efi_mmap(maps.efi_mmap, maps.efi_mmap_size, bi);
        bi.mmap_source = Boot_info::MMAP_MB2_EFI;
    }
    if (!bi.mmap_count && maps.meminfo) {
        add_meminfo(bi, rd32(maps.meminfo + 8), rd32(maps.meminfo + 12));
        bi.mmap_source = Boot_info::MMAP_MB2_MEMINFO;
    }
    if (!bi.mmap_count)
        bi.mmap_source = Boot_info::MMAP_NONE;  // the memory map sanitiser reports it
}

bool parse_mb2(u64 mbi, const Phys_reader &r, Boot_info &bi)
{
    if (mbi & 7) {
        diag("multiboot2: info structure at %#lx is not 8-byte aligned", mbi);
        return false;
    }
    const u8 *h = map_bytes(r, mbi, 8);
    if (!h) {
        diag("multiboot2: info structure at %#lx is not readable", mbi);
        return false;
    }
    u64 total = rd32(h);
    if (total < 16) {
        diag("multiboot2: total size %lu is too small", total);
        return false;
    }
    if (total > Boot_info::MAX_MBI) {
        diag("multiboot2: total size %#lx too large, cut to %#lx", total, Boot_info::MAX_MBI);
        total = Boot_info::MAX_MBI;
    }
    const u8 *m = map_bytes(r, mbi, total);
    if (!m) {
        diag("multiboot2: info structure at %#lx+%#lx is not readable", mbi, total);
        return false;
    }
    bi.mbi_len = total;

    Mb2_maps maps{};
    mb2_walk(mbi, m, total, maps, bi);
    mb2_pick_mmap(maps, bi);
    return true;
}

}  // namespace

bool parse_multiboot(u32 magic, u64 mbi_phys, const Phys_reader &reader, Boot_info &out)
{
    zero(&out, sizeof out);
    out.mbi_phys = mbi_phys;

    switch (magic) {
    case MULTIBOOT1_LOADER_MAGIC: out.loader = 1; return parse_mb1(mbi_phys, reader, out);
    case MULTIBOOT2_LOADER_MAGIC: out.loader = 2; return parse_mb2(mbi_phys, reader, out);
    default: diag("multiboot: bad loader magic %#x", magic); return false;
    }
}

u32 Boot_info::reserved_ranges(Mem_range *out, u32 cap) const
{
    u32 n = 0;
    bool full = false;
    auto put = [&](u64 base, u64 size) {
        if (!size)
            return;
        if (n == cap)
            full = true;
        else
            out[n++] = Mem_range{base, size, MEM_RESERVED};
    };
    // MB2 strings live inside the info structure, which is reserved as a whole.
    auto add = [&](u64 base, u64 size) {
        bool inside = base >= mbi_phys && base - mbi_phys < mbi_len && size <= mbi_len - (base - mbi_phys);
        if (!inside)
            put(base, size);
    };

    put(mbi_phys, mbi_len);
    add(mb1_mmap_phys, mb1_mmap_len);
    add(mb1_mods_phys, mb1_mods_len);
    if (cmdline_phys)
        add(cmdline_phys, cmdline_len + 1);  // with its NUL
    if (loader_name_phys)
        add(loader_name_phys, loader_name_len + 1);
    for (u32 i = 0; i < module_count; i++) {
        add(modules[i].start, modules[i].end - modules[i].start);
        if (modules[i].cmdline_phys)
            add(modules[i].cmdline_phys, modules[i].cmdline_len + 1);
    }
    if (full)
        diag("multiboot: reserved range list full (%u entries), loader data may be overwritten", cap);
    return n;
}
