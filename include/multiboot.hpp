/*
 * Multiboot 1 and 2 boot information, normalised into one structure.
 *
 * All loader data is read through a Phys_reader and checked (sizes, counts,
 * offsets); problems are reported with diag() and the offending part is
 * skipped. Strings are kept as physical address + length (no NUL needed).
 */
#pragma once

#include "memmap.hpp"
#include "phys_reader.hpp"
#include "types.hpp"

constexpr u32 MULTIBOOT1_LOADER_MAGIC = 0x2badb002;
constexpr u32 MULTIBOOT2_LOADER_MAGIC = 0x36d76289;

struct Boot_module
{
    u64 start, end;                 // [start, end) as given by the loader (end >= start)
    u64 cmdline_phys, cmdline_len;  // cmdline_phys 0: no string
};

struct Boot_framebuffer
{
    u64 addr;
    u32 pitch, width, height;
    u8 bpp, type;  // type 0 indexed, 1 RGB, 2 EGA text
};

struct Boot_info
{
    static constexpr u32 MAX_MMAP = 256;
    static constexpr u32 MAX_MODULES = 64;
    static constexpr u32 MAX_RSDP = 36;      // ACPI 2.0 RSDP size
    static constexpr u64 MAX_STRING = 4096;  // longest string scanned for its NUL
    static constexpr u64 MAX_MBI = 1 << 20;  // multiboot 2 info larger than this is cut

    enum Mmap_source : u32 {
        MMAP_NONE,
        MMAP_MB1,          // MB1 flags bit 6 (the HIP copies these entries)
        MMAP_MB1_MEMINFO,  // MB1 mem_lower/mem_upper fallback
        MMAP_MB2,          // MB2 tag 6
        MMAP_MB2_EFI,      // MB2 tag 17, converted to multiboot types
        MMAP_MB2_MEMINFO,  // MB2 tag 4 fallback
    };

    u32 loader;             // 1 or 2
    u64 mbi_phys, mbi_len;  // the information structure itself (MB2: all tags)

    u64 cmdline_phys, cmdline_len;  // cmdline_phys 0: no command line
    // The loader's name (MB1 flags bit 9, MB2 tag 2), e.g. "GRUB 2.06" or "qemu"; 0: none given.
    u64 loader_name_phys, loader_name_len;

    u32 mmap_source;
    u32 mmap_count;
    Mem_range mmap[MAX_MMAP];  // loader order (EFI: adjacent equal types merged)

    u32 module_count;
    Boot_module modules[MAX_MODULES];  // the first one is the root task

    // MB1 tables outside the info structure (0 length if absent).
    u64 mb1_mmap_phys, mb1_mmap_len, mb1_mods_phys, mb1_mods_len;

    u8 rsdp_copy[MAX_RSDP];  // MB2 tags 14/15 hold a copy of the RSDP, not a pointer
    u32 rsdp_len;            // 0: none (MB1 never provides one)

    bool efi;                // booted from UEFI (MB2 tags 11, 12, 17 or 18)
    bool efi_boot_services;  // tag 18: boot services were not terminated
    u64 efi_systab;          // tag 11/12 system table pointer, 0 if absent

    bool has_framebuffer;
    Boot_framebuffer fb;

    // Physical ranges of loader data the kernel must not hand out: the info
    // structure, MB1 tables, command lines, modules and their strings.
    // Returns the number written; cap >= MAX_RESERVED_RANGES always suffices.
    static constexpr u32 MAX_RESERVED_RANGES = 4 + 2 * MAX_MODULES;
    u32 reserved_ranges(Mem_range *out, u32 cap) const;
};

// Fills out from the loader's data. False (with a diag line) on a bad magic or
// an unreadable info structure; malformed parts of a readable one are skipped.
bool parse_multiboot(u32 magic, u64 mbi_phys, const Phys_reader &reader, Boot_info &out);
