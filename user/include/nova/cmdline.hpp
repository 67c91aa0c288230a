/*
 * The root task's own command line: the string the loader attached to its
 * multiboot module (QEMU: `-initrd "<file> <words>"`, GRUB: the words after
 * the path of `module`/`module2`). The kernel reports its physical address
 * in the module's HIP memory descriptor (type MODULE, field aux, ABI 8.5);
 * the first such descriptor is the root task's. Words are separated by
 * blanks; the first word is usually the module's file name, which the
 * helpers below simply never match (they compare whole words).
 *
 * Root PD (the string is mapped with an H-bit delegation from the kernel; it is
 * read up to the end of the page it starts in) or a program started by a launcher
 * (nova/launch.hpp: the launcher's copy of the program's module words).
 */
#pragma once

#include "types.hpp"

namespace nova {

// The command line, mapped read-only on first use (later calls return the same string), or
// nullptr when there is no module descriptor, no string, or it could not be mapped. `len`
// receives its length (the bytes before the first NUL, at most up to the end of its page).
const char *module_cmdline(size_t *len = nullptr);

// The word `name` is on the command line.
bool cmdline_flag(const char *name);

// The value of the first word `name=value`, or nullptr; `len` receives the value's length.
const char *cmdline_value(const char *name, size_t &len);

// `name=<number>` (decimal, or hexadecimal with 0x) into `out`; false (out unchanged) when the
// word is missing or its value is not a number that fits into 64 bits.
bool cmdline_u64(const char *name, u64 &out);

// The same for any string s[0, n) of words (a module's command line).
bool words_flag(const char *s, size_t n, const char *name);
const char *words_value(const char *s, size_t n, const char *name, size_t &len);
bool words_u64(const char *s, size_t n, const char *name, u64 &out);

}  // namespace nova
