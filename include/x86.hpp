/*
 * Thin wrappers around x86-64 instructions and the architectural constants
 * the kernel uses. Everything here is inline and has no state.
 */
#pragma once

#include "types.hpp"

namespace Msr {
constexpr u32 APIC_BASE = 0x1b;
constexpr u32 FEATURE_CTRL = 0x3a;
constexpr u32 TSC = 0x10;
constexpr u32 PLATFORM_INFO = 0xce;
constexpr u32 MTRR_CAP = 0xfe;
constexpr u32 MCG_CAP = 0x179;
constexpr u32 MCG_STATUS = 0x17a;
constexpr u32 MCG_CTL = 0x17b;
constexpr u32 MC0_CTL = 0x400;  // bank i: CTL 0x400 + 4i, STATUS +1, ADDR +2, MISC +3
constexpr u32 PAT = 0x277;
constexpr u32 TSC_DEADLINE = 0x6e0;
constexpr u32 X2APIC_BASE = 0x800;
constexpr u32 EFER = 0xc0000080;
constexpr u32 STAR = 0xc0000081;
constexpr u32 LSTAR = 0xc0000082;
constexpr u32 CSTAR = 0xc0000083;
constexpr u32 FMASK = 0xc0000084;
constexpr u32 FS_BASE = 0xc0000100;
constexpr u32 GS_BASE = 0xc0000101;
constexpr u32 KERNEL_GS_BASE = 0xc0000102;
constexpr u32 TSC_AUX = 0xc0000103;
constexpr u32 VM_CR = 0xc0010114;
}  // namespace Msr

namespace Cr0 {
constexpr u64 PE = 1u << 0, MP = 1u << 1, EM = 1u << 2, TS = 1u << 3, NE = 1u << 5, WP = 1u << 16,
              AM = 1u << 18, NW = 1u << 29, CD = 1u << 30, PG = 1u << 31;
}
namespace Cr4 {
constexpr u64 PSE = 1u << 4, PAE = 1u << 5, MCE = 1u << 6, PGE = 1u << 7, OSFXSR = 1u << 9,
              OSXMMEXCPT = 1u << 10, UMIP = 1u << 11, VMXE = 1u << 13, FSGSBASE = 1u << 16, PCIDE = 1u << 17,
              OSXSAVE = 1u << 18, SMEP = 1u << 20, SMAP = 1u << 21, PKE = 1u << 22;
}
namespace Efer {
constexpr u64 SCE = 1u << 0, LME = 1u << 8, LMA = 1u << 10, NXE = 1u << 11, SVME = 1u << 12;
}

struct Cpuid_regs
{
    u32 eax, ebx, ecx, edx;
};

inline Cpuid_regs cpuid(u32 leaf, u32 sub = 0)
{
    Cpuid_regs r;
    asm volatile("cpuid" : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx) : "a"(leaf), "c"(sub));
    return r;
}

inline u64 rdmsr(u32 msr)
{
    u32 lo, hi;
    asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return u64{hi} << 32 | lo;
}

inline void wrmsr(u32 msr, u64 v)
{
    asm volatile("wrmsr" : : "c"(msr), "a"(static_cast<u32>(v)), "d"(static_cast<u32>(v >> 32)) : "memory");
}

inline u64 rdtsc()
{
    u32 lo, hi;
    asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return u64{hi} << 32 | lo;
}

inline void outb(u16 port, u8 v) { asm volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
inline void outw(u16 port, u16 v) { asm volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
inline void outl(u16 port, u32 v) { asm volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
inline u8 inb(u16 port)
{
    u8 v;
    asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
inline u16 inw(u16 port)
{
    u16 v;
    asm volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
inline u32 inl(u16 port)
{
    u32 v;
    asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

#define X86_CR(n)                                                                                            \
    inline u64 get_cr##n()                                                                                   \
    {                                                                                                        \
        u64 v;                                                                                               \
        asm volatile("mov %%cr" #n ", %0" : "=r"(v));                                                        \
        return v;                                                                                            \
    }                                                                                                        \
    inline void set_cr##n(u64 v) { asm volatile("mov %0, %%cr" #n : : "r"(v) : "memory"); }
X86_CR(0)
X86_CR(2)
X86_CR(3)
X86_CR(4)
#undef X86_CR

inline void pause() { asm volatile("pause" ::: "memory"); }
inline void cli() { asm volatile("cli" ::: "memory"); }
inline void sti() { asm volatile("sti" ::: "memory"); }
inline void hlt() { asm volatile("hlt" ::: "memory"); }
inline void invlpg(const void *va) { asm volatile("invlpg (%0)" : : "r"(va) : "memory"); }
inline void barrier() { asm volatile("" ::: "memory"); }

[[noreturn]] inline void halt_forever()
{
    for (;;)
        asm volatile("cli; hlt");
}

inline u64 get_rflags()
{
    u64 f;
    asm volatile("pushfq; pop %0" : "=r"(f));
    return f;
}
