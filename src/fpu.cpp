/*
 * FPU state switching (see include/fpu.hpp).
 */
#include "fpu.hpp"
#include "string.hpp"
#include "x86.hpp"

namespace {
bool use_xsave;
u64 mask = 3;  // x87 | SSE
alignas(64) u8 initial[Fpu::AREA];
bool have_initial;

constexpr u64 X87 = 1, SSE = 2, AVX = 4;
}  // namespace

void Fpu::init_cpu(bool xsave)
{
    use_xsave = xsave;
    if (use_xsave) {
        auto d = cpuid(0xd, 0);
        u64 supported = (u64{d.edx} << 32 | d.eax) & (X87 | SSE | AVX);
        // The save area must hold everything XCR0 enables.
        if (d.ebx > AREA)
            supported &= X87 | SSE;
        mask = supported | X87;
        asm volatile("xsetbv" : : "c"(0), "a"(static_cast<u32>(mask)), "d"(static_cast<u32>(mask >> 32)));
    }
    if (!have_initial) {
        // Reset configuration: FCW 0x37f (fninit), MXCSR 0x1f80, every register 0.
        u32 mxcsr = 0x1f80;
        asm volatile("fninit; ldmxcsr %0" : : "m"(mxcsr));
        memset(initial, 0, sizeof initial);
        save(initial);
        have_initial = true;
    }
}

void Fpu::save(u8 *area)
{
    if (use_xsave)
        asm volatile("xsave64 %0"
                     : "=m"(*reinterpret_cast<u8(*)[AREA]>(area))
                     : "a"(static_cast<u32>(mask)), "d"(static_cast<u32>(mask >> 32)));
    else
        asm volatile("fxsave64 %0" : "=m"(*reinterpret_cast<u8(*)[512]>(area)));
}

void Fpu::load(const u8 *area)
{
    if (use_xsave)
        asm volatile("xrstor64 %0"
                     :
                     : "m"(*reinterpret_cast<const u8(*)[AREA]>(area)), "a"(static_cast<u32>(mask)),
                       "d"(static_cast<u32>(mask >> 32)));
    else
        asm volatile("fxrstor64 %0" : : "m"(*reinterpret_cast<const u8(*)[512]>(area)));
}

void Fpu::init_state(u8 *area) { memcpy(area, initial, AREA); }

bool Fpu::xsave_used() { return use_xsave; }
u64 Fpu::xcr0() { return mask; }
