/* Unit tests of the multiboot 1/2 parser (src/multiboot.cpp). */
#include <cstring>
#include <gtest/gtest.h>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "diag_capture.hpp"
#include "multiboot.hpp"

namespace {

// Fake physical memory [base, base + size). Every map() returns a fresh
// exact-size copy, so ASan reports any read beyond what the parser mapped.
struct Fake_phys
{
    u64 base;
    std::vector<u8> mem;
    std::vector<std::unique_ptr<u8[]>> maps;

    Fake_phys(u64 b, size_t size) : base(b), mem(size, 0) {}

    static const void *map_fn(void *ctx, u64 phys, u64 len)
    {
        auto *self = static_cast<Fake_phys *>(ctx);
        if (phys < self->base || phys - self->base > self->mem.size() ||
            len > self->mem.size() - (phys - self->base))
            return nullptr;
        auto copy = std::make_unique<u8[]>(len);
        memcpy(copy.get(), &self->mem[phys - self->base], len);
        self->maps.push_back(std::move(copy));
        return self->maps.back().get();
    }

    Phys_reader reader() { return Phys_reader{map_fn, this}; }

    void put(u64 phys, const void *p, size_t n)
    {
        (void)mem.at(phys - base + n - 1);  // throws instead of writing out of bounds
        memcpy(&mem.at(phys - base), p, n);
    }
    void put32(u64 phys, u32 v) { put(phys, &v, 4); }
    void put64(u64 phys, u64 v) { put(phys, &v, 8); }
    void put_str(u64 phys, const std::string &s) { put(phys, s.c_str(), s.size() + 1); }
};

// Little-endian byte string builder for tag payloads.
struct Bytes
{
    std::vector<u8> b;
    Bytes &u8_(u8 v)
    {
        b.push_back(v);
        return *this;
    }
    Bytes &u32_(u32 v)
    {
        for (int i = 0; i < 4; i++)
            b.push_back(static_cast<u8>(v >> 8 * i));
        return *this;
    }
    Bytes &u64_(u64 v) { return u32_(static_cast<u32>(v)).u32_(static_cast<u32>(v >> 32)); }
    Bytes &str(const std::string &s)
    {
        b.insert(b.end(), s.begin(), s.end());
        b.push_back(0);
        return *this;
    }
    Bytes &raw(const std::vector<u8> &v)
    {
        b.insert(b.end(), v.begin(), v.end());
        return *this;
    }
};

// Multiboot 2 information builder: tags are 8-byte aligned after an 8-byte header.
struct Mb2
{
    std::vector<u8> b = std::vector<u8>(8, 0);

    Mb2 &tag(u32 type, const Bytes &payload, u32 size_override = 0)
    {
        while (b.size() % 8)
            b.push_back(0);
        Bytes h;
        h.u32_(type).u32_(size_override ? size_override : static_cast<u32>(8 + payload.b.size()));
        b.insert(b.end(), h.b.begin(), h.b.end());
        b.insert(b.end(), payload.b.begin(), payload.b.end());
        return *this;
    }
    Mb2 &end() { return tag(0, Bytes{}); }

    // Writes the structure to phys, with total_size = the built size unless overridden.
    void store(Fake_phys &m, u64 phys, u32 total_override = 0)
    {
        u32 total = total_override ? total_override : static_cast<u32>(b.size());
        memcpy(&b[0], &total, 4);
        m.put(phys, b.data(), b.size());
    }
};

Bytes mmap_entry(u64 base, u64 len, u32 type) { return Bytes().u64_(base).u64_(len).u32_(type).u32_(0); }

Bytes efi_desc(u32 type, u64 start, u64 pages)
{
    return Bytes().u32_(type).u32_(0).u64_(start).u64_(0).u64_(pages).u64_(0xf);
}

constexpr u64 BASE = 0x10000, MBI = 0x10000;

std::unique_ptr<Boot_info> parse(u32 magic, u64 mbi, Fake_phys &m, bool expect = true)
{
    auto bi = std::make_unique<Boot_info>();
    memset(bi.get(), 0xa5, sizeof *bi);  // the parser must initialise everything
    diag_clear();
    EXPECT_EQ(parse_multiboot(magic, mbi, m.reader(), *bi), expect);
    return bi;
}

/* ---- Multiboot 1 helpers: info at MBI, mmap at 0x11000, modules at 0x12000, strings at 0x13000 */

constexpr u64 MB1_MMAP = 0x11000, MB1_MODS = 0x12000, STRINGS = 0x13000;

void mb1_mmap(Fake_phys &m, const std::vector<u8> &entries)
{
    m.put32(MBI, m.mem[0] | (1u << 6));
    m.put32(MBI + 44, static_cast<u32>(entries.size()));
    m.put32(MBI + 48, MB1_MMAP);
    m.put(MB1_MMAP, entries.data(), entries.size());
}

Bytes mb1_entry(u64 base, u64 len, u32 type, u32 size = 20)
{
    Bytes e;
    e.u32_(size).u64_(base).u64_(len).u32_(type);
    for (u32 i = 20; i < size; i++)
        e.u8_(0xee);
    return e;
}

}  // namespace

TEST(Multiboot, AnUnknownLoaderMagicIsRejected)
{
    Fake_phys m(BASE, 0x10000);
    auto bi = parse(0x1badb002, MBI, m, false);
    EXPECT_TRUE(diag_contains("multiboot: bad loader magic 0x1badb002"));
}

TEST(Multiboot, AnEmptyMb1InfoGivesNothingButIsValid)
{
    Fake_phys m(BASE, 0x10000);
    auto bi = parse(MULTIBOOT1_LOADER_MAGIC, MBI, m);
    EXPECT_EQ(bi->loader, 1u);
    EXPECT_EQ(bi->mbi_phys, MBI);
    EXPECT_EQ(bi->mbi_len, 116u);
    EXPECT_EQ(bi->cmdline_phys, 0u);
    EXPECT_EQ(bi->mmap_count, 0u);
    EXPECT_EQ(bi->mmap_source, Boot_info::MMAP_NONE);
    EXPECT_EQ(bi->module_count, 0u);
    EXPECT_EQ(bi->rsdp_len, 0u);
    EXPECT_FALSE(bi->efi);
    EXPECT_FALSE(bi->has_framebuffer);
}

TEST(Multiboot, AnUnreadableMb1InfoIsAnError)
{
    Fake_phys m(BASE, 0x10000);
    parse(MULTIBOOT1_LOADER_MAGIC, 0x8000, m, false);
    EXPECT_TRUE(diag_contains("info structure at 0x8000 is not readable"));
}

TEST(Multiboot, AnMb1InfoAtTheEndOfMemoryIsReadWithoutTheFramebufferPart)
{
    Fake_phys m(BASE, 0x1000);
    u64 mbi = BASE + 0x1000 - 60;
    m.put32(mbi, (1u << 12) | 1u);
    m.put32(mbi + 4, 639);
    m.put32(mbi + 8, 1024);
    auto bi = parse(MULTIBOOT1_LOADER_MAGIC, mbi, m);
    EXPECT_EQ(bi->mbi_len, 52u);
    EXPECT_FALSE(bi->has_framebuffer);
    EXPECT_TRUE(diag_contains("framebuffer fields are not readable"));
    EXPECT_EQ(bi->mmap_count, 2u);
}

TEST(Multiboot, TheMb1CommandLineIsFoundWithItsLength)
{
    Fake_phys m(BASE, 0x10000);
    m.put32(MBI, 1u << 2);
    m.put32(MBI + 16, STRINGS);
    m.put_str(STRINGS, "/boot/hypervisor serial");
    auto bi = parse(MULTIBOOT1_LOADER_MAGIC, MBI, m);
    EXPECT_EQ(bi->cmdline_phys, STRINGS);
    EXPECT_EQ(bi->cmdline_len, 23u);
    EXPECT_TRUE(g_diag_lines.empty());
}

TEST(Multiboot, TheMb1BootLoaderNameIsFoundWhenFlagged)
{
    Fake_phys m(BASE, 0x10000);
    m.put32(MBI, (1u << 2) | (1u << 9));
    m.put32(MBI + 16, STRINGS);
    m.put_str(STRINGS, "/boot/hypervisor serial");
    m.put32(MBI + 64, STRINGS + 0x100);
    m.put_str(STRINGS + 0x100, "qemu");
    auto bi = parse(MULTIBOOT1_LOADER_MAGIC, MBI, m);
    EXPECT_EQ(bi->loader_name_phys, STRINGS + 0x100);
    EXPECT_EQ(bi->loader_name_len, 4u);
    EXPECT_TRUE(g_diag_lines.empty());
    Mem_range r[8];
    u32 n = bi->reserved_ranges(r, 8);
    bool covered = false;
    for (u32 i = 0; i < n; i++)
        covered |= r[i].base <= STRINGS + 0x100 && STRINGS + 0x105 <= r[i].base + r[i].size;
    EXPECT_TRUE(covered) << "the name (with its NUL) is reserved";

    m.put32(MBI, 1u << 2);  // same pointer, flag clear: no name
    bi = parse(MULTIBOOT1_LOADER_MAGIC, MBI, m);
    EXPECT_EQ(bi->loader_name_phys, 0u);
    EXPECT_EQ(bi->loader_name_len, 0u);
}

TEST(Multiboot, AnMb1LoaderNameOutsideTheReadableInfoIsNotRead)
{
    Fake_phys m(BASE, 0x1000);
    u64 mbi = BASE + 0x1000 - 60;  // only the first 52 bytes are read: offset 64 is beyond
    m.put32(mbi, 1u << 9);
    auto bi = parse(MULTIBOOT1_LOADER_MAGIC, mbi, m);
    EXPECT_EQ(bi->mbi_len, 52u);
    EXPECT_EQ(bi->loader_name_phys, 0u);
}

TEST(Multiboot, AnUnterminatedCommandLineIsCutAtTheScanLimit)
{
    Fake_phys m(BASE, 0x10000);
    m.put32(MBI, 1u << 2);
    m.put32(MBI + 16, STRINGS);
    memset(&m.mem[STRINGS - BASE], 'x', 0x2000);
    auto bi = parse(MULTIBOOT1_LOADER_MAGIC, MBI, m);
    EXPECT_EQ(bi->cmdline_phys, STRINGS);
    EXPECT_EQ(bi->cmdline_len, Boot_info::MAX_STRING);
    EXPECT_TRUE(diag_contains("not terminated within 4096 bytes"));
}

TEST(Multiboot, ACommandLineRunningIntoUnreadableMemoryIsCutThere)
{
    Fake_phys m(BASE, 0x10000);
    u64 s = BASE + 0x10000 - 5;  // "abcde" at the very end, no NUL
    m.put32(MBI, 1u << 2);
    m.put32(MBI + 16, static_cast<u32>(s));
    memcpy(&m.mem[s - BASE], "abcde", 5);
    auto bi = parse(MULTIBOOT1_LOADER_MAGIC, MBI, m);
    EXPECT_EQ(bi->cmdline_phys, s);
    EXPECT_EQ(bi->cmdline_len, 5u);
    EXPECT_TRUE(diag_contains("not readable beyond 5 bytes"));
}

TEST(Multiboot, AShortStringAtTheEndOfReadableMemoryIsFound)
{
    Fake_phys m(BASE, 0x10000);
    u64 s = BASE + 0x10000 - 4;
    m.put32(MBI, 1u << 2);
    m.put32(MBI + 16, static_cast<u32>(s));
    m.put_str(s, "abc");
    auto bi = parse(MULTIBOOT1_LOADER_MAGIC, MBI, m);
    EXPECT_EQ(bi->cmdline_len, 3u);
    EXPECT_TRUE(g_diag_lines.empty());
}

TEST(Multiboot, AnUnreadableCommandLineIsDropped)
{
    Fake_phys m(BASE, 0x10000);
    m.put32(MBI, 1u << 2);
    m.put32(MBI + 16, 0x500000);
    auto bi = parse(MULTIBOOT1_LOADER_MAGIC, MBI, m);
    EXPECT_EQ(bi->cmdline_phys, 0u);
    EXPECT_EQ(bi->cmdline_len, 0u);
    EXPECT_TRUE(diag_contains("command line at 0x500000 is not readable"));
}

TEST(Multiboot, TheMb1MemoryMapIsCopiedInLoaderOrderIncludingHighMemory)
{
    Fake_phys m(BASE, 0x10000);
    Bytes e;
    e.raw(mb1_entry(0, 0x9fc00, 1).b)
        .raw(mb1_entry(0x100000, 0x7ee0000, 1).b)
        .raw(mb1_entry(0xfffc0000, 0x40000, 2).b)
        .raw(mb1_entry(0x100000000, 0x40000000, 1).b);
    mb1_mmap(m, e.b);
    auto bi = parse(MULTIBOOT1_LOADER_MAGIC, MBI, m);
    EXPECT_EQ(bi->mmap_source, Boot_info::MMAP_MB1);
    ASSERT_EQ(bi->mmap_count, 4u);
    EXPECT_EQ(bi->mmap[1].base, 0x100000u);
    EXPECT_EQ(bi->mmap[1].size, 0x7ee0000u);
    EXPECT_EQ(bi->mmap[2].type, 2u);
    EXPECT_EQ(bi->mmap[3].base, 0x100000000u);
    EXPECT_EQ(bi->mmap[3].size, 0x40000000u);
    EXPECT_EQ(bi->mb1_mmap_phys, MB1_MMAP);
    EXPECT_EQ(bi->mb1_mmap_len, 96u);
    EXPECT_TRUE(g_diag_lines.empty());
}

TEST(Multiboot, Mb1MapEntriesLargerThanTwentyBytesAreSkippedByTheirSize)
{
    Fake_phys m(BASE, 0x10000);
    Bytes e;
    e.raw(mb1_entry(0, 0x1000, 1, 28).b).raw(mb1_entry(0x5000, 0x2000, 3, 20).b);
    mb1_mmap(m, e.b);
    auto bi = parse(MULTIBOOT1_LOADER_MAGIC, MBI, m);
    ASSERT_EQ(bi->mmap_count, 2u);
    EXPECT_EQ(bi->mmap[1].base, 0x5000u);
    EXPECT_EQ(bi->mmap[1].type, 3u);
}

TEST(Multiboot, AnMb1MapEntryWithATooSmallSizeStopsTheMap)
{
    Fake_phys m(BASE, 0x10000);
    Bytes e;
    e.raw(mb1_entry(0, 0x1000, 1).b).raw(mb1_entry(0x5000, 0x2000, 1, 20).b);
    e.b[24] = 0;  // second entry's size field: 0 would loop forever if trusted
    mb1_mmap(m, e.b);
    auto bi = parse(MULTIBOOT1_LOADER_MAGIC, MBI, m);
    EXPECT_EQ(bi->mmap_count, 1u);
    EXPECT_TRUE(diag_contains("memory map entry at offset 24 has bad size 0"));
}

TEST(Multiboot, AnMb1MapEntryOverrunningTheMapIsDropped)
{
    Fake_phys m(BASE, 0x10000);
    Bytes e;
    e.raw(mb1_entry(0, 0x1000, 1).b).raw(mb1_entry(0x5000, 0x2000, 1, 0x1000).b);
    e.b.resize(48);  // the map length claims only the first 24 bytes of the big entry
    mb1_mmap(m, e.b);
    auto bi = parse(MULTIBOOT1_LOADER_MAGIC, MBI, m);
    EXPECT_EQ(bi->mmap_count, 1u);
    EXPECT_TRUE(diag_contains("overruns the map"));
}

TEST(Multiboot, TrailingBytesAfterTheLastMb1MapEntryAreReported)
{
    Fake_phys m(BASE, 0x10000);
    Bytes e;
    e.raw(mb1_entry(0, 0x1000, 1).b).u32_(20).u32_(0);
    mb1_mmap(m, e.b);
    auto bi = parse(MULTIBOOT1_LOADER_MAGIC, MBI, m);
    EXPECT_EQ(bi->mmap_count, 1u);
    EXPECT_TRUE(diag_contains("8 trailing bytes"));
}

TEST(Multiboot, AnUnreadableMb1MapFallsBackToMemLowerAndUpper)
{
    Fake_phys m(BASE, 0x10000);
    m.put32(MBI, (1u << 6) | 1u);
    m.put32(MBI + 4, 639);
    m.put32(MBI + 8, 130048);
    m.put32(MBI + 44, 0x1000);
    m.put32(MBI + 48, 0x1f800);  // runs past the end of fake memory
    auto bi = parse(MULTIBOOT1_LOADER_MAGIC, MBI, m);
    EXPECT_TRUE(diag_contains("memory map at 0x1f800+0x1000 is not readable"));
    EXPECT_EQ(bi->mmap_source, Boot_info::MMAP_MB1_MEMINFO);
    ASSERT_EQ(bi->mmap_count, 2u);
    EXPECT_EQ(bi->mmap[0].base, 0u);
    EXPECT_EQ(bi->mmap[0].size, 639u * 1024);
    EXPECT_EQ(bi->mmap[1].base, 0x100000u);
    EXPECT_EQ(bi->mmap[1].size, 130048ull * 1024);
    EXPECT_EQ(bi->mmap[1].type, MEM_AVAILABLE);
    EXPECT_EQ(bi->mb1_mmap_len, 0u);
}

TEST(Multiboot, AnAbsurdMemLowerIsClampedTo640KiB)
{
    Fake_phys m(BASE, 0x10000);
    m.put32(MBI, 1u);
    m.put32(MBI + 4, 0xffffffff);
    m.put32(MBI + 8, 0);
    auto bi = parse(MULTIBOOT1_LOADER_MAGIC, MBI, m);
    ASSERT_EQ(bi->mmap_count, 1u);
    EXPECT_EQ(bi->mmap[0].size, 640u * 1024);
    EXPECT_TRUE(diag_contains("clamped"));
}

TEST(Multiboot, AnMb1MapWithTooManyEntriesIsTruncated)
{
    Fake_phys m(BASE, 0x20000);
    Bytes e;
    for (u32 i = 0; i < Boot_info::MAX_MMAP + 10; i++)
        e.raw(mb1_entry(u64{i} << 20, 0x1000, 1).b);
    mb1_mmap(m, e.b);
    auto bi = parse(MULTIBOOT1_LOADER_MAGIC, MBI, m);
    EXPECT_EQ(bi->mmap_count, Boot_info::MAX_MMAP);
    EXPECT_EQ(bi->mmap[Boot_info::MAX_MMAP - 1].base, u64{Boot_info::MAX_MMAP - 1} << 20);
    EXPECT_TRUE(diag_contains("memory map truncated to 256 entries"));
}

TEST(Multiboot, Mb1ModulesAreListedWithTheirStrings)
{
    Fake_phys m(BASE, 0x10000);
    m.put32(MBI, 1u << 3);
    m.put32(MBI + 20, 2);
    m.put32(MBI + 24, MB1_MODS);
    u32 mods[8] = {0x100000, 0x180000, STRINGS, 0, 0x180000, 0x181234, 0, 0};
    m.put(MB1_MODS, mods, sizeof mods);
    m.put_str(STRINGS, "roottask arg");
    auto bi = parse(MULTIBOOT1_LOADER_MAGIC, MBI, m);
    ASSERT_EQ(bi->module_count, 2u);
    EXPECT_EQ(bi->modules[0].start, 0x100000u);
    EXPECT_EQ(bi->modules[0].end, 0x180000u);
    EXPECT_EQ(bi->modules[0].cmdline_phys, STRINGS);
    EXPECT_EQ(bi->modules[0].cmdline_len, 12u);
    EXPECT_EQ(bi->modules[1].end, 0x181234u);
    EXPECT_EQ(bi->modules[1].cmdline_phys, 0u);  // no string
    EXPECT_EQ(bi->mb1_mods_phys, MB1_MODS);
    EXPECT_EQ(bi->mb1_mods_len, 32u);
    EXPECT_TRUE(g_diag_lines.empty());
}

TEST(Multiboot, AnAbsurdMb1ModuleCountIsCapped)
{
    Fake_phys m(BASE, 0x10000);
    m.put32(MBI, 1u << 3);
    m.put32(MBI + 20, 0xffffffff);
    m.put32(MBI + 24, MB1_MODS);
    auto bi = parse(MULTIBOOT1_LOADER_MAGIC, MBI, m);
    EXPECT_EQ(bi->module_count, Boot_info::MAX_MODULES);
    EXPECT_TRUE(diag_contains("4294967295 modules, only the first 64 are used"));
}

TEST(Multiboot, AnUnreadableMb1ModuleTableGivesNoModules)
{
    Fake_phys m(BASE, 0x10000);
    m.put32(MBI, 1u << 3);
    m.put32(MBI + 20, 3);
    m.put32(MBI + 24, 0x1fff0);  // 48 bytes from here run past the end
    auto bi = parse(MULTIBOOT1_LOADER_MAGIC, MBI, m);
    EXPECT_EQ(bi->module_count, 0u);
    EXPECT_TRUE(diag_contains("module table at 0x1fff0 is not readable"));
}

TEST(Multiboot, AModuleEndingBeforeItsStartIsTreatedAsEmpty)
{
    Fake_phys m(BASE, 0x10000);
    m.put32(MBI, 1u << 3);
    m.put32(MBI + 20, 1);
    m.put32(MBI + 24, MB1_MODS);
    u32 mod[4] = {0x200000, 0x100000, 0, 0};
    m.put(MB1_MODS, mod, sizeof mod);
    auto bi = parse(MULTIBOOT1_LOADER_MAGIC, MBI, m);
    ASSERT_EQ(bi->module_count, 1u);
    EXPECT_EQ(bi->modules[0].start, 0x200000u);
    EXPECT_EQ(bi->modules[0].end, 0x200000u);
    EXPECT_TRUE(diag_contains("treated as empty"));
}

TEST(Multiboot, TheMb1FramebufferIsRecordedWhenFlagged)
{
    Fake_phys m(BASE, 0x10000);
    m.put32(MBI, 1u << 12);
    m.put64(MBI + 88, 0xb8000);
    m.put32(MBI + 96, 160);
    m.put32(MBI + 100, 80);
    m.put32(MBI + 104, 25);
    m.mem[MBI - BASE + 108] = 16;
    m.mem[MBI - BASE + 109] = 2;
    auto bi = parse(MULTIBOOT1_LOADER_MAGIC, MBI, m);
    ASSERT_TRUE(bi->has_framebuffer);
    EXPECT_EQ(bi->fb.addr, 0xb8000u);
    EXPECT_EQ(bi->fb.pitch, 160u);
    EXPECT_EQ(bi->fb.width, 80u);
    EXPECT_EQ(bi->fb.height, 25u);
    EXPECT_EQ(bi->fb.bpp, 16);
    EXPECT_EQ(bi->fb.type, 2);
}

TEST(Multiboot, Mb1ReservedRangesCoverAllLoaderData)
{
    Fake_phys m(BASE, 0x10000);
    m.put32(MBI, (1u << 2) | (1u << 3) | (1u << 6));
    m.put32(MBI + 16, STRINGS);
    m.put_str(STRINGS, "hv");
    m.put32(MBI + 20, 1);
    m.put32(MBI + 24, MB1_MODS);
    u32 mod[4] = {0x400000, 0x401000, STRINGS + 0x10, 0};
    m.put(MB1_MODS, mod, sizeof mod);
    m.put_str(STRINGS + 0x10, "rt");
    mb1_mmap(m, mb1_entry(0, 0x1000, 1).b);
    m.put32(MBI, (1u << 2) | (1u << 3) | (1u << 6));
    auto bi = parse(MULTIBOOT1_LOADER_MAGIC, MBI, m);

    Mem_range r[Boot_info::MAX_RESERVED_RANGES];
    u32 n = bi->reserved_ranges(r, Boot_info::MAX_RESERVED_RANGES);
    ASSERT_EQ(n, 6u);
    EXPECT_EQ(r[0].base, MBI);
    EXPECT_EQ(r[0].size, 116u);
    EXPECT_EQ(r[1].base, MB1_MMAP);
    EXPECT_EQ(r[1].size, 24u);
    EXPECT_EQ(r[2].base, MB1_MODS);
    EXPECT_EQ(r[3].base, STRINGS);
    EXPECT_EQ(r[3].size, 3u);
    EXPECT_EQ(r[4].base, 0x400000u);
    EXPECT_EQ(r[4].size, 0x1000u);
    EXPECT_EQ(r[5].base, STRINGS + 0x10);

    diag_clear();
    EXPECT_EQ(bi->reserved_ranges(r, 4), 4u);
    EXPECT_TRUE(diag_contains("reserved range list full"));
}

/* ---------------------------------------------------------------- Multiboot 2 */

TEST(Multiboot2, ACompleteInfoIsParsed)
{
    Fake_phys m(BASE, 0x10000);
    Mb2 b;
    b.tag(1, Bytes().str("/boot/hypervisor serial"))
        .tag(2, Bytes().str("GRUB 2.06"))
        .tag(3, Bytes().u32_(0x200000).u32_(0x280000).str("roottask"))
        .tag(3, Bytes().u32_(0x280000).u32_(0x290000).str(""))
        .tag(6, Bytes()
                    .u32_(24)
                    .u32_(0)
                    .raw(mmap_entry(0, 0x9f000, 1).b)
                    .raw(mmap_entry(0x100000, 0x3ff00000, 1).b)
                    .raw(mmap_entry(0x100000000, 0x1000, 4).b))
        .tag(8, Bytes().u64_(0xfd000000).u32_(4096).u32_(1024).u32_(768).u8_(32).u8_(1).u8_(0).u8_(0))
        .tag(15, Bytes().str("RSD PTR").raw(std::vector<u8>(28, 7)))
        .tag(12, Bytes().u64_(0x7fe00000))
        .end()
        .store(m, MBI);
    auto bi = parse(MULTIBOOT2_LOADER_MAGIC, MBI, m);
    EXPECT_TRUE(g_diag_lines.empty()) << g_diag_lines.front();
    EXPECT_EQ(bi->loader, 2u);
    EXPECT_EQ(bi->mbi_len, b.b.size());
    EXPECT_EQ(bi->cmdline_phys, MBI + 16);
    EXPECT_EQ(bi->cmdline_len, 23u);
    auto string_at = [&m](u64 phys) { return std::string(reinterpret_cast<char *>(&m.mem[phys - BASE])); };
    EXPECT_EQ(string_at(bi->cmdline_phys), "/boot/hypervisor serial");
    EXPECT_EQ(bi->loader_name_len, 9u);
    EXPECT_EQ(string_at(bi->loader_name_phys), "GRUB 2.06");

    ASSERT_EQ(bi->module_count, 2u);
    EXPECT_EQ(bi->modules[0].start, 0x200000u);
    EXPECT_EQ(bi->modules[0].end, 0x280000u);
    EXPECT_EQ(bi->modules[0].cmdline_len, 8u);
    EXPECT_EQ(string_at(bi->modules[0].cmdline_phys), "roottask");
    EXPECT_EQ(bi->modules[1].cmdline_len, 0u);

    EXPECT_EQ(bi->mmap_source, Boot_info::MMAP_MB2);
    ASSERT_EQ(bi->mmap_count, 3u);
    EXPECT_EQ(bi->mmap[1].size, 0x3ff00000u);
    EXPECT_EQ(bi->mmap[2].base, 0x100000000u);
    EXPECT_EQ(bi->mmap[2].type, 4u);

    ASSERT_TRUE(bi->has_framebuffer);
    EXPECT_EQ(bi->fb.addr, 0xfd000000u);
    EXPECT_EQ(bi->fb.width, 1024u);
    EXPECT_EQ(bi->fb.bpp, 32);
    EXPECT_EQ(bi->fb.type, 1);

    EXPECT_EQ(bi->rsdp_len, 36u);
    EXPECT_EQ(memcmp(bi->rsdp_copy, "RSD PTR", 8), 0);
    EXPECT_EQ(bi->rsdp_copy[35], 7);
    EXPECT_TRUE(bi->efi);
    EXPECT_EQ(bi->efi_systab, 0x7fe00000u);
    EXPECT_FALSE(bi->efi_boot_services);
}

TEST(Multiboot2, AMisalignedInfoIsRejected)
{
    Fake_phys m(BASE, 0x10000);
    Mb2().end().store(m, MBI + 4);
    parse(MULTIBOOT2_LOADER_MAGIC, MBI + 4, m, false);
    EXPECT_TRUE(diag_contains("not 8-byte aligned"));
}

TEST(Multiboot2, ATotalSizeTooSmallForTheEndTagIsRejected)
{
    Fake_phys m(BASE, 0x10000);
    Mb2().end().store(m, MBI, 8);
    parse(MULTIBOOT2_LOADER_MAGIC, MBI, m, false);
    EXPECT_TRUE(diag_contains("total size 8 is too small"));
}

TEST(Multiboot2, ATotalSizeBeyondReadableMemoryIsRejected)
{
    Fake_phys m(BASE, 0x10000);
    Mb2().end().store(m, MBI, 0x20000);
    parse(MULTIBOOT2_LOADER_MAGIC, MBI, m, false);
    EXPECT_TRUE(diag_contains("is not readable"));
}

TEST(Multiboot2, AnAbsurdTotalSizeIsCutToTheLimit)
{
    Fake_phys m(BASE, 2 << 20);
    Mb2().tag(1, Bytes().str("serial")).end().store(m, MBI, 0xfffffff8);
    auto bi = parse(MULTIBOOT2_LOADER_MAGIC, MBI, m);
    EXPECT_TRUE(diag_contains("too large, cut to 0x100000"));
    EXPECT_EQ(bi->mbi_len, Boot_info::MAX_MBI);
    EXPECT_EQ(bi->cmdline_len, 6u);
}

TEST(Multiboot2, ATagSmallerThanItsHeaderStopsTheWalk)
{
    Fake_phys m(BASE, 0x10000);
    Mb2().tag(1, Bytes().str("serial")).tag(3, Bytes().u32_(1).u32_(2).str(""), 4).end().store(m, MBI);
    auto bi = parse(MULTIBOOT2_LOADER_MAGIC, MBI, m);
    EXPECT_TRUE(diag_contains("tag 3 at offset 0x18 has bad size 4, parsing stopped"));
    EXPECT_EQ(bi->cmdline_len, 6u);
    EXPECT_EQ(bi->module_count, 0u);
}

TEST(Multiboot2, ATagOverrunningTheTotalSizeStopsTheWalk)
{
    Fake_phys m(BASE, 0x10000);
    Mb2().tag(1, Bytes().str("serial"), 0x1000).end().store(m, MBI);
    auto bi = parse(MULTIBOOT2_LOADER_MAGIC, MBI, m);
    EXPECT_TRUE(diag_contains("has bad size 4096"));
    EXPECT_EQ(bi->cmdline_phys, 0u);
}

TEST(Multiboot2, AMissingEndTagIsReported)
{
    Fake_phys m(BASE, 0x10000);
    Mb2().tag(1, Bytes().str("serial")).store(m, MBI);
    auto bi = parse(MULTIBOOT2_LOADER_MAGIC, MBI, m);
    EXPECT_TRUE(diag_contains("no end tag"));
    EXPECT_EQ(bi->cmdline_len, 6u);
}

TEST(Multiboot2, ATruncatedTagHeaderIsReported)
{
    Fake_phys m(BASE, 0x10000);
    Mb2 b;
    b.tag(1, Bytes().str("serial"));  // 15 bytes: ends at 0x17, the next tag would start at 0x18
    b.store(m, MBI, 0x1c);
    auto bi = parse(MULTIBOOT2_LOADER_MAGIC, MBI, m);
    EXPECT_TRUE(diag_contains("tag header at offset 0x18 is truncated"));
}

TEST(Multiboot2, TheStandardMemoryMapIsPreferredOverTheEfiMapAndBasicInfo)
{
    Fake_phys m(BASE, 0x10000);
    Mb2()
        .tag(4, Bytes().u32_(639).u32_(1000))
        .tag(17, Bytes().u32_(48).u32_(1).raw(efi_desc(7, 0x200000, 16).b).u64_(0))
        .tag(6, Bytes().u32_(24).u32_(0).raw(mmap_entry(0x100000, 0x100000, 1).b))
        .end()
        .store(m, MBI);
    auto bi = parse(MULTIBOOT2_LOADER_MAGIC, MBI, m);
    EXPECT_EQ(bi->mmap_source, Boot_info::MMAP_MB2);
    ASSERT_EQ(bi->mmap_count, 1u);
    EXPECT_EQ(bi->mmap[0].base, 0x100000u);
    EXPECT_TRUE(bi->efi);
}

TEST(Multiboot2, TheEfiMapIsConvertedToMultibootTypesAndMerged)
{
    Fake_phys m(BASE, 0x10000);
    Bytes d;
    d.u32_(48).u32_(1);  // descriptors bigger than 40 bytes
    auto add = [&](u32 type, u64 start, u64 pages) { d.raw(efi_desc(type, start, pages).b).u64_(0); };
    add(7, 0x0, 0x9f);        // conventional
    add(0, 0x9f000, 1);       // reserved
    add(1, 0x100000, 0x10);   // loader code    \ contiguous, all available:
    add(4, 0x110000, 0x10);   // boot data      | merged into one range
    add(7, 0x120000, 0x100);  // conventional   /
    add(9, 0x220000, 2);      // ACPI reclaim
    add(10, 0x222000, 2);     // ACPI NVS
    add(8, 0x224000, 1);      // unusable
    add(11, 0xfee00000, 1);   // MMIO
    add(7, 0x100000000, 0x40000);
    Mb2().tag(4, Bytes().u32_(639).u32_(1000)).tag(17, d).end().store(m, MBI);
    auto bi = parse(MULTIBOOT2_LOADER_MAGIC, MBI, m);
    EXPECT_EQ(bi->mmap_source, Boot_info::MMAP_MB2_EFI);
    EXPECT_TRUE(bi->efi);
    const Mem_range want[] = {{0, 0x9f000, 1},         {0x9f000, 0x1000, 2},        {0x100000, 0x120000, 1},
                              {0x220000, 0x2000, 3},   {0x222000, 0x2000, 4},       {0x224000, 0x1000, 5},
                              {0xfee00000, 0x1000, 2}, {0x100000000, 0x40000000, 1}};
    ASSERT_EQ(bi->mmap_count, 8u);
    for (u32 i = 0; i < 8; i++) {
        EXPECT_EQ(bi->mmap[i].base, want[i].base) << i;
        EXPECT_EQ(bi->mmap[i].size, want[i].size) << i;
        EXPECT_EQ(bi->mmap[i].type, want[i].type) << i;
    }
    EXPECT_TRUE(g_diag_lines.empty());
}

TEST(Multiboot2, AnEfiDescriptorWithAnAbsurdPageCountIsSkipped)
{
    Fake_phys m(BASE, 0x10000);
    Bytes d;
    d.u32_(40).u32_(1).raw(efi_desc(7, 0x1000, 0x0010000000000001).b).raw(efi_desc(7, 0x100000, 16).b);
    Mb2().tag(17, d).end().store(m, MBI);
    auto bi = parse(MULTIBOOT2_LOADER_MAGIC, MBI, m);
    EXPECT_TRUE(diag_contains("absurd page count"));
    ASSERT_EQ(bi->mmap_count, 1u);
    EXPECT_EQ(bi->mmap[0].base, 0x100000u);
    EXPECT_EQ(bi->mmap[0].size, 0x10000u);
}

TEST(Multiboot2, ATooSmallEfiDescriptorSizeFallsBackToBasicMemoryInfo)
{
    Fake_phys m(BASE, 0x10000);
    Mb2()
        .tag(17, Bytes().u32_(8).u32_(1).u64_(0).u64_(0))
        .tag(4, Bytes().u32_(600).u32_(2048))
        .end()
        .store(m, MBI);
    auto bi = parse(MULTIBOOT2_LOADER_MAGIC, MBI, m);
    EXPECT_TRUE(diag_contains("EFI memory descriptor size 8 is too small"));
    EXPECT_EQ(bi->mmap_source, Boot_info::MMAP_MB2_MEMINFO);
    ASSERT_EQ(bi->mmap_count, 2u);
    EXPECT_EQ(bi->mmap[1].base, 0x100000u);
    EXPECT_EQ(bi->mmap[1].size, 2048u * 1024);
}

TEST(Multiboot2, AZeroMemoryMapEntrySizeIsRejectedWithoutLooping)
{
    Fake_phys m(BASE, 0x10000);
    Mb2().tag(6, Bytes().u32_(0).u32_(0).raw(mmap_entry(0, 0x1000, 1).b)).end().store(m, MBI);
    auto bi = parse(MULTIBOOT2_LOADER_MAGIC, MBI, m);
    EXPECT_TRUE(diag_contains("memory map entry size 0 is too small"));
    EXPECT_EQ(bi->mmap_count, 0u);
    EXPECT_EQ(bi->mmap_source, Boot_info::MMAP_NONE);
}

TEST(Multiboot2, MemoryMapEntriesLargerThan24BytesAreHonoured)
{
    Fake_phys m(BASE, 0x10000);
    Mb2()
        .tag(6, Bytes()
                    .u32_(32)
                    .u32_(0)
                    .raw(mmap_entry(0, 0x1000, 1).b)
                    .u64_(~u64{0})
                    .raw(mmap_entry(0x5000, 0x1000, 2).b)
                    .u64_(~u64{0})
                    .u32_(0))
        .end()
        .store(m, MBI);
    auto bi = parse(MULTIBOOT2_LOADER_MAGIC, MBI, m);
    ASSERT_EQ(bi->mmap_count, 2u);
    EXPECT_EQ(bi->mmap[1].base, 0x5000u);
    EXPECT_EQ(bi->mmap[1].type, 2u);
    EXPECT_TRUE(diag_contains("4 trailing bytes"));
}

TEST(Multiboot2, TheNewRsdpCopyWinsOverTheOldOneInAnyOrder)
{
    Fake_phys m(BASE, 0x10000);
    std::vector<u8> v1(20, 1), v2(36, 2);
    Mb2().tag(15, Bytes().raw(v2)).tag(14, Bytes().raw(v1)).end().store(m, MBI);
    auto bi = parse(MULTIBOOT2_LOADER_MAGIC, MBI, m);
    EXPECT_EQ(bi->rsdp_len, 36u);
    EXPECT_EQ(bi->rsdp_copy[0], 2);

    Mb2().tag(14, Bytes().raw(v1)).tag(15, Bytes().raw(v2)).end().store(m, MBI);
    bi = parse(MULTIBOOT2_LOADER_MAGIC, MBI, m);
    EXPECT_EQ(bi->rsdp_len, 36u);
    EXPECT_EQ(bi->rsdp_copy[0], 2);
}

TEST(Multiboot2, AnOldRsdpCopyAloneIsKeptWithItsLength)
{
    Fake_phys m(BASE, 0x10000);
    std::vector<u8> v1(20, 9);
    Mb2().tag(14, Bytes().raw(v1)).end().store(m, MBI);
    auto bi = parse(MULTIBOOT2_LOADER_MAGIC, MBI, m);
    EXPECT_EQ(bi->rsdp_len, 20u);
    EXPECT_EQ(bi->rsdp_copy[19], 9);
    EXPECT_FALSE(bi->efi);
}

TEST(Multiboot2, AnOversizedRsdpTagIsCopiedOnlyUpToTheRsdpSize)
{
    Fake_phys m(BASE, 0x10000);
    Mb2().tag(15, Bytes().raw(std::vector<u8>(100, 3))).end().store(m, MBI);
    auto bi = parse(MULTIBOOT2_LOADER_MAGIC, MBI, m);
    EXPECT_EQ(bi->rsdp_len, Boot_info::MAX_RSDP);
}

TEST(Multiboot2, TooShortTagsAreReportedAndIgnored)
{
    Fake_phys m(BASE, 0x10000);
    Mb2()
        .tag(14, Bytes().raw(std::vector<u8>(10, 1)))
        .tag(3, Bytes().u32_(0x1000))
        .tag(8, Bytes().u64_(0xb8000))
        .end()
        .store(m, MBI);
    auto bi = parse(MULTIBOOT2_LOADER_MAGIC, MBI, m);
    EXPECT_TRUE(diag_contains("tag 14 is too short (18 bytes)"));
    EXPECT_TRUE(diag_contains("tag 3 is too short"));
    EXPECT_TRUE(diag_contains("tag 8 is too short"));
    EXPECT_EQ(bi->rsdp_len, 0u);
    EXPECT_EQ(bi->module_count, 0u);
    EXPECT_FALSE(bi->has_framebuffer);
}

TEST(Multiboot2, EfiBootServicesAndA32BitSystemTableAreRecorded)
{
    Fake_phys m(BASE, 0x10000);
    Mb2().tag(11, Bytes().u32_(0x7f000000)).tag(18, Bytes()).end().store(m, MBI);
    auto bi = parse(MULTIBOOT2_LOADER_MAGIC, MBI, m);
    EXPECT_TRUE(bi->efi);
    EXPECT_TRUE(bi->efi_boot_services);
    EXPECT_EQ(bi->efi_systab, 0x7f000000u);
}

TEST(Multiboot2, ADuplicateCommandLineIsReportedAndTheFirstKept)
{
    Fake_phys m(BASE, 0x10000);
    Mb2().tag(1, Bytes().str("first")).tag(1, Bytes().str("second one")).end().store(m, MBI);
    auto bi = parse(MULTIBOOT2_LOADER_MAGIC, MBI, m);
    EXPECT_TRUE(diag_contains("duplicate tag 1 ignored"));
    EXPECT_EQ(bi->cmdline_len, 5u);
}

TEST(Multiboot2, AStringWithoutNulInItsTagIsBoundedByTheTag)
{
    Fake_phys m(BASE, 0x10000);
    Bytes mod;
    mod.u32_(0x100000).u32_(0x200000).raw(std::vector<u8>{'a', 'b', 'c'});
    Mb2 b;
    b.tag(3, mod).tag(1, Bytes().raw(std::vector<u8>(13, 'x'))).end().store(m, MBI);
    auto bi = parse(MULTIBOOT2_LOADER_MAGIC, MBI, m);
    ASSERT_EQ(bi->module_count, 1u);
    EXPECT_EQ(bi->modules[0].cmdline_len, 3u);
    EXPECT_EQ(bi->cmdline_len, 13u);
    EXPECT_TRUE(diag_contains("module string is not terminated within its tag"));
    EXPECT_TRUE(diag_contains("command line is not terminated within its tag"));
}

TEST(Multiboot2, MoreModulesThanTheLimitAreReported)
{
    Fake_phys m(BASE, 0x10000);
    Mb2 b;
    for (u32 i = 0; i < Boot_info::MAX_MODULES + 2; i++)
        b.tag(3, Bytes().u32_(0x100000 + i * 0x1000).u32_(0x101000 + i * 0x1000).str(""));
    b.end().store(m, MBI);
    auto bi = parse(MULTIBOOT2_LOADER_MAGIC, MBI, m);
    EXPECT_EQ(bi->module_count, Boot_info::MAX_MODULES);
    EXPECT_TRUE(diag_contains("more than 64 modules"));
}

TEST(Multiboot2, UnknownTagsAreSkipped)
{
    Fake_phys m(BASE, 0x10000);
    Mb2()
        .tag(21, Bytes().u32_(0x100000))
        .tag(0x1234, Bytes().raw(std::vector<u8>(77, 0)))
        .tag(1, Bytes().str("serial"))
        .end()
        .store(m, MBI);
    auto bi = parse(MULTIBOOT2_LOADER_MAGIC, MBI, m);
    EXPECT_EQ(bi->cmdline_len, 6u);
    EXPECT_TRUE(g_diag_lines.empty()) << g_diag_lines.front();
}

TEST(Multiboot2, ReservedRangesAreTheInfoAndTheModules)
{
    Fake_phys m(BASE, 0x10000);
    Mb2 b;
    b.tag(1, Bytes().str("serial"))
        .tag(3, Bytes().u32_(0x200000).u32_(0x201000).str("rt"))
        .tag(3, Bytes().u32_(0x300000).u32_(0x300000).str("empty"))
        .end()
        .store(m, MBI);
    auto bi = parse(MULTIBOOT2_LOADER_MAGIC, MBI, m);
    Mem_range r[Boot_info::MAX_RESERVED_RANGES];
    u32 n = bi->reserved_ranges(r, Boot_info::MAX_RESERVED_RANGES);
    ASSERT_EQ(n, 2u);  // strings are inside the info; the empty module needs nothing
    EXPECT_EQ(r[0].base, MBI);
    EXPECT_EQ(r[0].size, b.b.size());
    EXPECT_EQ(r[1].base, 0x200000u);
    EXPECT_EQ(r[1].size, 0x1000u);
    EXPECT_EQ(r[1].type, MEM_RESERVED);
}

TEST(Multiboot2, RandomCorruptionNeverCrashesOrReadsOutOfBounds)
{
    Mb2 good;
    good.tag(1, Bytes().str("serial"))
        .tag(3, Bytes().u32_(0x200000).u32_(0x201000).str("rt"))
        .tag(6, Bytes()
                    .u32_(24)
                    .u32_(0)
                    .raw(mmap_entry(0, 0x9f000, 1).b)
                    .raw(mmap_entry(0x100000, 0x1000000, 1).b))
        .tag(17, Bytes().u32_(40).u32_(1).raw(efi_desc(7, 0, 16).b))
        .tag(15, Bytes().raw(std::vector<u8>(36, 1)))
        .tag(8, Bytes().u64_(0xb8000).u32_(160).u32_(80).u32_(25).u8_(16).u8_(2).u8_(0).u8_(0))
        .end();
    u32 seed = 1;
    auto rnd = [&seed] { return seed = seed * 1103515245 + 12345, seed >> 8; };
    for (int round = 0; round < 2000; round++) {
        Fake_phys m(BASE, 0x1000);
        Mb2 b = good;
        for (int k = 1 + rnd() % 4; k > 0; k--)
            b.b[8 + rnd() % (b.b.size() - 8)] = static_cast<u8>(rnd());
        b.store(m, MBI, round % 3 ? 0 : rnd() % 0x1100);
        Boot_info bi;
        diag_clear();
        if (parse_multiboot(MULTIBOOT2_LOADER_MAGIC, MBI, m.reader(), bi)) {
            ASSERT_LE(bi.mmap_count, Boot_info::MAX_MMAP);
            ASSERT_LE(bi.module_count, Boot_info::MAX_MODULES);
            ASSERT_LE(bi.rsdp_len, Boot_info::MAX_RSDP);
            ASSERT_LE(bi.mbi_len, 0x1000u);
            if (bi.cmdline_phys) {
                ASSERT_LE(bi.cmdline_phys + bi.cmdline_len, MBI + bi.mbi_len);
            }
        }
    }
}

TEST(Multiboot, RandomMb1InfoNeverCrashesOrReadsOutOfBounds)
{
    std::mt19937 rng(777);
    for (int round = 0; round < 2000; round++) {
        Fake_phys m(BASE, 0x3000);
        for (auto &byte : m.mem)
            byte = static_cast<u8>(rng() % 4 ? rng() : 0);
        // Pointers aim into (and just past) the fake memory, with plausible flags.
        auto ptr = [&] { return static_cast<u32>(BASE + rng() % 0x3400); };
        m.put32(MBI, static_cast<u32>(rng() | 0x4d));
        m.put32(MBI + 16, ptr());
        m.put32(MBI + 20, static_cast<u32>(rng() % 8 ? rng() % 8 : rng()));
        m.put32(MBI + 24, ptr());
        m.put32(MBI + 44, static_cast<u32>(rng() % 8 ? rng() % 0x200 : rng()));
        m.put32(MBI + 48, ptr());
        Boot_info bi;
        diag_clear();
        ASSERT_TRUE(parse_multiboot(MULTIBOOT1_LOADER_MAGIC, MBI, m.reader(), bi));
        ASSERT_LE(bi.mmap_count, Boot_info::MAX_MMAP);
        ASSERT_LE(bi.module_count, Boot_info::MAX_MODULES);
        for (u32 i = 0; i < bi.module_count; i++)
            ASSERT_LE(bi.modules[i].start, bi.modules[i].end);
        if (bi.cmdline_phys) {
            ASSERT_LE(bi.cmdline_len, Boot_info::MAX_STRING);
            ASSERT_LE(bi.cmdline_phys + bi.cmdline_len, BASE + 0x3000);
        }
    }
}

// A command-line or loader-name tag of 8 bytes holds no string, not even its NUL: there is no
// string to point at (the address after the tag may be the end of readable memory; fuzz-multiboot
// found that).
TEST(Multiboot2, StringTagsWithoutAnyByteGiveNoString)
{
    Fake_phys m(BASE, 0x10000);
    Mb2().tag(1, Bytes()).tag(2, Bytes()).end().store(m, MBI);
    auto bi = parse(MULTIBOOT2_LOADER_MAGIC, MBI, m);
    EXPECT_EQ(bi->cmdline_phys, 0u);
    EXPECT_EQ(bi->cmdline_len, 0u);
    EXPECT_EQ(bi->loader_name_phys, 0u);
    EXPECT_TRUE(diag_contains("multiboot2: command line tag holds no string"));
    EXPECT_TRUE(diag_contains("multiboot2: boot loader name tag holds no string"));
}
