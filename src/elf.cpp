// host-testable
/*
 * Root task ELF validation. The image is a multiboot module and therefore
 * untrusted: every offset and size is checked against the image and against
 * user space before the kernel maps a single page of it.
 */
#include "elf.hpp"
#include "diag.hpp"

namespace {

constexpr u64 EHDR_SIZE = 64, PHDR_SIZE = 56;
constexpr u16 ET_EXEC = 2, EM_X86_64 = 62, PN_XNUM = 0xffff;
constexpr u32 PT_LOAD = 1;

u16 rd16(const u8 *p) { return static_cast<u16>(p[0] | p[1] << 8); }

u32 rd32(const u8 *p) { return u32{p[0]} | u32{p[1]} << 8 | u32{p[2]} << 16 | u32{p[3]} << 24; }

u64 rd64(const u8 *p) { return u64{rd32(p)} | u64{rd32(p + 4)} << 32; }

Elf_status fail(Elf_info &out, Elf_status s, const char *reason)
{
    out.reason = reason;
    diag("elf: %s: %s", s == Elf_status::NO_ELF ? "No ELF" : "Bad ELF", reason);
    return s;
}

const char *check_ident(const u8 *image, u64 size)
{
    if (!image || size < EHDR_SIZE)
        return "image smaller than the ELF header";
    if (image[0] != 0x7f || image[1] != 'E' || image[2] != 'L' || image[3] != 'F')
        return "bad ELF magic";
    if (image[4] != 2)
        return "not a 64-bit ELF";
    if (image[5] != 1)
        return "not little-endian";
    if (rd16(image + 16) != ET_EXEC)
        return "not an executable (ET_EXEC)";
    if (rd16(image + 18) != EM_X86_64)
        return "not an x86-64 image";
    return nullptr;
}

const char *check_segment(const Elf_segment &s, u64 size)
{
    if (s.filesz != s.memsz)
        return "PT_LOAD with p_filesz != p_memsz";
    if (s.vaddr % PAGE_SIZE != s.offset % PAGE_SIZE)
        return "PT_LOAD with p_vaddr and p_offset not congruent mod 4096";
    if (s.offset > size || s.filesz > size - s.offset)
        return "PT_LOAD file range outside the image";
    if (s.vaddr > Elf_info::USER_END || s.memsz > Elf_info::USER_END - s.vaddr)
        return "PT_LOAD outside user space";
    return nullptr;
}

bool entry_is_executable(const Elf_info &info)
{
    for (u32 i = 0; i < info.count; i++) {
        const Elf_segment &s = info.segment[i];
        if ((s.flags & ELF_PF_X) && info.entry >= s.vaddr && info.entry - s.vaddr < s.memsz)
            return true;
    }
    return false;
}

}  // namespace

Elf_status elf_check(const u8 *image, u64 size, Elf_info &out)
{
    out.entry = 0;
    out.count = 0;
    out.reason = "ok";

    if (const char *why = check_ident(image, size))
        return fail(out, Elf_status::NO_ELF, why);

    out.entry = rd64(image + 24);
    u64 phoff = rd64(image + 32);
    u16 phentsize = rd16(image + 54), phnum = rd16(image + 56);

    if (phnum == PN_XNUM)
        return fail(out, Elf_status::BAD_ELF, "extended program header numbering");
    if (phnum && phentsize != PHDR_SIZE)
        return fail(out, Elf_status::BAD_ELF, "program header entry size is not 56");
    if (phoff > size || u64{phnum} * PHDR_SIZE > size - phoff)
        return fail(out, Elf_status::BAD_ELF, "program header table outside the image");

    for (u32 i = 0; i < phnum; i++) {
        const u8 *ph = image + phoff + u64{i} * PHDR_SIZE;
        if (rd32(ph) != PT_LOAD)
            continue;
        if (out.count == Elf_info::MAX_SEGMENTS)
            return fail(out, Elf_status::BAD_ELF, "more than 32 PT_LOAD segments");
        Elf_segment s{rd64(ph + 16), rd64(ph + 8), rd64(ph + 32), rd64(ph + 40), rd32(ph + 4)};
        if (const char *why = check_segment(s, size))
            return fail(out, Elf_status::BAD_ELF, why);
        out.segment[out.count++] = s;
    }

    if (!out.count)
        return fail(out, Elf_status::BAD_ELF, "no PT_LOAD segment");
    if (!entry_is_executable(out))
        return fail(out, Elf_status::BAD_ELF, "entry point outside the executable PT_LOAD segments");
    return Elf_status::OK;
}
