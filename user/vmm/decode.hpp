/*
 * MMIO instruction decoding for nested page faults (docs/vmm.md, "MMIO"): QEMU's SVM gives
 * neither the instruction bytes nor its length (no decode assists, no next-RIP save), so the VMM
 * translates the guest's RIP through the guest's page tables, fetches the bytes from guest RAM
 * and decodes the MOV forms compilers emit for device registers. Pure logic (host unit tests in
 * test/unit/test_vmm.cpp); used for the local APIC and for the VMM's reports of faulting accesses.
 */
#pragma once

#include "types.hpp"

namespace vmm {

// Guest-virtual to guest-physical with the guest's paging: none (CR0.PG clear), 32-bit, PAE or
// 4-level long mode; 4 KiB, 2/4 MiB and 1 GiB pages. False when an entry is not present or a
// table lies outside RAM. Accessed/dirty bits are not set.
bool guest_translate(const u8 *ram, u64 ram_size, u64 cr0, u64 cr3, u64 cr4, u64 efer, u64 va, u64 &pa);

// One decoded memory access. GPR numbers are the encoding's: 0 rax, 1 rcx, 2 rdx, 3 rbx, 4 rsp,
// 5 rbp, 6 rsi, 7 rdi, 8-15 r8-r15.
struct Mmio_insn
{
    unsigned len;     // bytes of the instruction, prefixes included
    unsigned size;    // bytes accessed: 1, 2, 4, 8
    bool write;       // store to memory (else a load into `reg`)
    bool imm_source;  // a store of `imm` (else of `reg`)
    bool high_byte;   // `reg` 4-7 name AH, CH, DH, BH (8-bit access without REX)
    unsigned reg;
    unsigned dst_size;  // a load writes this many bytes of `reg` (MOVZX: more than `size`)
    u64 imm;
};

// Decode the instruction at `code` (`avail` bytes fetched) executed in 64-bit mode (`long64`) or
// with a 32-bit (`db`) or 16-bit default operand size. Supported: MOV 88/89/8A/8B, MOV C6/C7 /0
// with an immediate, MOVZX 0F B6/B7, MOV A0-A3 with a moffs; prefixes 66, 67, segment overrides,
// REX. False for anything else (the VMM then reports the access as unsupported).
bool decode_mmio(const u8 *code, unsigned avail, bool long64, bool db, Mmio_insn &out);

// The value a store writes (from the register file `gpr`, 16 entries in encoding order).
u64 mmio_store_value(const Mmio_insn &in, const u64 *gpr);

// A load's result into the register file: 32-bit destinations clear bits 63:32, 8- and 16-bit
// ones merge.
void mmio_load_result(const Mmio_insn &in, u64 value, u64 *gpr);

}  // namespace vmm
