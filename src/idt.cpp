/*
 * The IDT: one stub per vector (src/entry.S), gates DPL 0 except #BP and #OF
 * which user mode may raise with int3/into (ABI 10.2). #DF, NMI and #MC run
 * on their own IST stacks so a corrupt kernel stack still yields a dump.
 */
#include "idt.hpp"
#include "entry.hpp"

namespace {

struct Gate
{
    u64 lo, hi;
};

alignas(16) Gate idt[256];

}  // namespace

void Idt::init()
{
    for (unsigned v = 0; v < 256; v++) {
        u64 a = reinterpret_cast<u64>(idt_stubs) + 16 * u64{v};
        unsigned dpl = (v == 3 || v == 4) ? 3 : 0;
        unsigned ist = v == 8 ? IST_DF : v == 2 ? IST_NMI : v == 18 ? IST_MC : 0;
        idt[v].lo = (a & 0xffff) | u64{0x08} << 16 | u64{ist} << 32 | u64{0x8e | dpl << 5} << 40 |
                    ((a >> 16) & 0xffff) << 48;
        idt[v].hi = a >> 32;
    }
}

void Idt::load()
{
    struct [[gnu::packed]]
    {
        u16 limit;
        u64 base;
    } idtr{sizeof idt - 1, reinterpret_cast<u64>(idt)};
    asm volatile("lidt %0" : : "m"(idtr));
}
