/* Constants shared with assembly files (kept in sync by static_asserts in C++). */
#pragma once
#define KERNEL_VIRT_ASM 0xffffffff80000000

/* Offsets in struct Cpu (include/cpu.hpp), used by src/entry.S. */
#define CPU_SELF 0
#define CPU_KSTACK 8
#define CPU_USER_RSP 16
#define CPU_FRAME 24
#define CPU_QS 32
#define CPU_FLAGS 40
#define CPU_FLAG_SMAP 1 /* CR4.SMAP is on: entries clear RFLAGS.AC with clac */
