/*
 * Fuzzes the root task's ELF checks (src/elf.cpp). The image is an exact-size heap copy of the
 * input, so ASan reports any read past it. For an accepted image, every promise the kernel's
 * loader (src/roottask.cpp) relies on is checked: segment file ranges inside the image (their
 * first and last bytes are read), everything below USER_END, the entry in an executable segment.
 */
#include <cstddef>
#include <cstring>
#include <memory>

#include "check.hpp"
#include "elf.hpp"

extern "C" int LLVMFuzzerTestOneInput(const u8 *data, size_t size)
{
    std::unique_ptr<u8[]> img(new u8[size ? size : 1]);
    std::memcpy(img.get(), data, size);
    Elf_info info;
    Elf_status st = elf_check(size ? img.get() : nullptr, size, info);
    check(info.reason != nullptr && info.count <= Elf_info::MAX_SEGMENTS);
    if (st != Elf_status::OK)
        return 0;

    volatile u8 sink = 0;
    bool entry_ok = false;
    for (u32 i = 0; i < info.count; i++) {
        Elf_segment const &s = info.segment[i];
        check(s.offset <= size && s.filesz <= size - s.offset);
        check(s.vaddr < Elf_info::USER_END && s.memsz <= Elf_info::USER_END - s.vaddr);
        check(s.vaddr % 4096 == s.offset % 4096);
        if (s.filesz)
            sink = img[s.offset] ^ img[s.offset + s.filesz - 1];
        if ((s.flags & ELF_PF_X) && info.entry - s.vaddr < s.memsz)
            entry_ok = true;
    }
    (void)sink;
    check(entry_ok);
    return 0;
}
