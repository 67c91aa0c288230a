/*
 * ELF64 file headers (System V gABI), the parts user-level loaders and checks read: the launcher
 * (user/lib/launch.cpp) and the conformance suite's boot tests (ABI 9.2).
 */
#pragma once

#include "types.hpp"

namespace nova {

struct Elf_ehdr
{
    u8 ident[16];
    u16 type, machine;
    u32 version;
    u64 entry, phoff, shoff;
    u32 flags;
    u16 ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};

struct Elf_phdr
{
    u32 type, flags;
    u64 offset, vaddr, paddr, filesz, memsz, align;
};

static_assert(sizeof(Elf_ehdr) == 64 && sizeof(Elf_phdr) == 56);

constexpr u32 PT_LOAD = 1, PF_X = 1, PF_W = 2, PF_R = 4;

}  // namespace nova
