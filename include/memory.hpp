/*
 * Virtual memory layout of the kernel (see docs/boot.md).
 *
 *   0x0000_0000_0000_0000 .. 0x0000_7fff_ffff_efff  user space (per PD)
 *   0xffff_8000_0000_0000 .. +64 TiB                 direct map of all physical memory
 *   0xffff_c000_0000_0000 ..                         device (MMIO) window, uncached
 *   0xffff_d000_0000_0000 ..                         kernel stacks with guard pages (src/smp.cpp)
 *   0xffff_ffff_8000_0000 ..                         kernel image (-mcmodel=kernel), linked at
 *                                                    LOAD_ADDR + this, shown wherever it was moved
 */
#pragma once

#include "types.hpp"

constexpr u64 USER_ADDR = 0x00007ffffffff000ull;
constexpr u64 DIRECT_MAP = 0xffff800000000000ull;
constexpr u64 DIRECT_MAP_MAX = u64{1} << 46;
constexpr u64 MMIO_WINDOW = 0xffffc00000000000ull;
constexpr u64 KSTACK_WINDOW = 0xffffd00000000000ull;
constexpr u64 KERNEL_VIRT = 0xffffffff80000000ull;

#ifdef HOST_TEST
/* Host unit tests put "physical memory" into a buffer: the direct map is that buffer's offset. */
extern u64 host_direct_map;
#define DIRECT_MAP_BASE host_direct_map
#else
#define DIRECT_MAP_BASE DIRECT_MAP
#endif

template <typename T = void> inline T *phys_to_virt(u64 phys)
{
    return reinterpret_cast<T *>(phys + DIRECT_MAP_BASE);
}

/* Physical address of the image minus its link address (src/start.S: relocate_image). */
extern "C" u64 image_phys_delta;

inline u64 virt_to_phys(const void *v)
{
    auto a = reinterpret_cast<u64>(v);
#ifdef HOST_TEST
    return a - DIRECT_MAP_BASE;
#else
    return a >= KERNEL_VIRT ? a - KERNEL_VIRT + image_phys_delta : a - DIRECT_MAP_BASE;
#endif
}

/* Linker symbols: the link (= load) extent of the image including .bss. */
extern "C" char __image_start_phys[], __image_end_phys[];

/* Where the image is now: its load address until relocate_image moved it next to the pool. */
inline u64 image_phys_begin() { return reinterpret_cast<u64>(__image_start_phys) + image_phys_delta; }
inline u64 image_phys_end() { return reinterpret_cast<u64>(__image_end_phys) + image_phys_delta; }
