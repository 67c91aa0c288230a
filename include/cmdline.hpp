/*
 * Kernel command line (ABI 13.1): space-separated boolean options.
 *
 * The loader's string is untrusted: parse() never reads past maxlen or the
 * first NUL, and unknown words are only reported, never acted upon.
 */
#pragma once

#include "types.hpp"

struct Cmdline
{
    bool iommu, keyb, serial, spinner, nopcid, novga, novpid, nodl, noxsave;
    // Our addition for tests: raise a kernel page fault at the end of boot to show the panic dump.
    bool kfault;
    // Our extension for leak tests: hypercall 15 with flag 0 reports kernel memory statistics.
    bool kstat;
    // Our extension: every hypercall takes the general path (to compare with the fast paths).
    bool nofast;
    // Our extension for debugging: log every hypercall that fails, with the check that failed.
    bool hyptrace;
    // Our additions for tests (src/ktest.cpp), at the end of boot: read a user page (SMAP must
    // stop it), execute one (SMEP), overflow the kernel stack (guard page), take NMIs with the
    // user's GS base in kernel mode (paranoid entry).
    bool ksmap, ksmep, kstack, knmi;
    // Our addition for tests (debug builds only): CPUs 1 and 2 stall on purpose, so the lockup
    // detector reports them (include/lockup.hpp).
    bool lockuptest;

    // Longest token quoted in full in a diagnostic; longer ones are cut.
    static constexpr size_t MAX_QUOTE = 32;
    // Unknown words reported at most this many times, so junk cannot flood the console.
    static constexpr unsigned MAX_REPORTS = 16;

    // Resets every option, then sets those present in s[0..maxlen). With file_name_first, the
    // first word is the kernel's file name as the loader put it there, not an option (unless it
    // is an option's name: a loader that left the file name out).
    void parse(const char *s, size_t maxlen, bool file_name_first = false);

    // Whether a loader puts the kernel's file name before the options: multiboot 1 loaders do
    // (QEMU -kernel: "<path> <-append>", GRUB legacy, iPXE, syslinux), except GRUB 2, which
    // passes only the words after the path of its `multiboot` and `multiboot2` commands; the
    // multiboot 2 command line (whose reference loader is GRUB 2) holds only the options.
    // protocol: 1 or 2; name: the boot loader name (may be null), name[0..name_len).
    static bool loader_passes_file_name(unsigned protocol, const char *name, size_t name_len);

    // Writes the enabled options, e.g. "serial novga", NUL-terminated, whole words only.
    // Returns the string length (excluding the NUL).
    size_t describe(char *buf, size_t len) const;
};
