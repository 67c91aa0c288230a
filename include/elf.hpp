/*
 * Checks of the root task's ELF image (ABI 9.2 plus sanity checks), done
 * before anything is mapped. Only image[0..size) is ever read.
 */
#pragma once

#include "types.hpp"

enum class Elf_status { OK, NO_ELF, BAD_ELF };

struct Elf_segment
{
    u64 vaddr, offset, filesz, memsz;
    u32 flags;  // PF_X 1, PF_W 2, PF_R 4
};

struct Elf_info
{
    static constexpr u32 MAX_SEGMENTS = 32;
    static constexpr u64 USER_END = 0x7fff'ffff'f000;  // segments must lie below

    u64 entry;
    u32 count;  // PT_LOAD segments in program header order
    Elf_segment segment[MAX_SEGMENTS];
    const char *reason;  // why the check failed, "ok" otherwise
};

constexpr u32 ELF_PF_X = 1, ELF_PF_W = 2, ELF_PF_R = 4;

// NO_ELF: not a 64-bit little-endian x86-64 executable at all (killed as "No ELF").
// BAD_ELF: such an executable that breaks a rule (killed as "Bad ELF").
// Failures are also reported with a diag line naming the reason.
Elf_status elf_check(const u8 *image, u64 size, Elf_info &out);
