/*
 * MMIO instruction decoding and guest page walks (decode.hpp; docs/vmm.md, "MMIO").
 */
#include "decode.hpp"

namespace vmm {

namespace {

bool read_entry(const u8 *ram, u64 ram_size, u64 addr, unsigned size, u64 &out)
{
    if (addr + size > ram_size || addr + size < addr)
        return false;
    out = 0;
    for (unsigned i = 0; i < size; i++)
        out |= u64{ram[addr + i]} << (8 * i);
    return true;
}

}  // namespace

bool guest_translate(const u8 *ram, u64 ram_size, u64 cr0, u64 cr3, u64 cr4, u64 efer, u64 va, u64 &pa)
{
    constexpr u64 P = 1, PS = 0x80;
    if (!(cr0 & (u64{1} << 31))) {
        pa = va & 0xffffffff;
        return true;
    }
    u64 e;
    if (!(cr4 & 0x20)) {  // 32-bit paging: 10 + 10 + 12, 4 MiB pages with PSE
        if (!read_entry(ram, ram_size, (cr3 & 0xfffff000) + 4 * (va >> 22 & 0x3ff), 4, e) || !(e & P))
            return false;
        if ((e & PS) && (cr4 & 0x10)) {
            pa = (e & 0xffc00000) | (va & 0x3fffff);
            return true;
        }
        if (!read_entry(ram, ram_size, (e & 0xfffff000) + 4 * (va >> 12 & 0x3ff), 4, e) || !(e & P))
            return false;
        pa = (e & 0xfffff000) | (va & 0xfff);
        return true;
    }
    constexpr u64 ADDR = 0x000ffffffffff000ull;
    bool lm = efer & 0x400;
    u64 table;
    int level;
    if (lm) {
        table = cr3 & ADDR;
        level = 4;
    } else {  // PAE: the PDPTE from the 32-byte table at CR3
        if (!read_entry(ram, ram_size, (cr3 & 0xffffffe0) + 8 * (va >> 30 & 3), 8, e) || !(e & P))
            return false;
        table = e & ADDR;
        level = 2;
    }
    for (; level >= 1; level--) {
        unsigned shift = 12 + 9 * static_cast<unsigned>(level - 1);
        if (!read_entry(ram, ram_size, table + 8 * (va >> shift & 0x1ff), 8, e) || !(e & P))
            return false;
        if (level == 1 || ((level == 2 || level == 3) && (e & PS))) {
            u64 mask = (u64{1} << shift) - 1;
            pa = (e & ADDR & ~mask) | (va & mask);
            return true;
        }
        table = e & ADDR;
    }
    return false;
}

bool decode_mmio(const u8 *code, unsigned avail, bool long64, bool db, Mmio_insn &out)
{
    out = Mmio_insn{};
    unsigned i = 0;
    bool opsize = false, adsize = false;
    u8 rex = 0;
    for (; i < avail && i < 14; i++) {  // legacy prefixes
        u8 b = code[i];
        if (b == 0x66)
            opsize = true;
        else if (b == 0x67)
            adsize = true;
        else if (b == 0x26 || b == 0x2e || b == 0x36 || b == 0x3e || b == 0x64 || b == 0x65)
            continue;
        else
            break;
    }
    if (long64 && i < avail && (code[i] & 0xf0) == 0x40)
        rex = code[i++];
    if (i >= avail)
        return false;
    bool w = rex & 8;
    unsigned osz = w ? 8 : (long64 || db) ? (opsize ? 2 : 4) : (opsize ? 4 : 2);
    unsigned asz = long64 ? (adsize ? 4 : 8) : (db != adsize) ? 4 : 2;
    u8 op = code[i++];
    bool modrm = true, byte = false;
    switch (op) {
    case 0x88: out.write = true, byte = true; break;
    case 0x89: out.write = true; break;
    case 0x8a: byte = true; break;
    case 0x8b: break;
    case 0xc6: out.write = out.imm_source = true, byte = true; break;
    case 0xc7: out.write = out.imm_source = true; break;
    case 0x0f:
        if (i >= avail || (code[i] != 0xb6 && code[i] != 0xb7))
            return false;
        out.size = code[i++] == 0xb6 ? 1 : 2;
        out.dst_size = osz;
        break;
    case 0xa0:
    case 0xa1:
    case 0xa2:
    case 0xa3:  // MOV AL/eAX <-> moffs
        modrm = false;
        out.write = op & 2;
        byte = !(op & 1);
        out.reg = 0;
        i += asz;
        break;
    default: return false;
    }
    if (!out.size)
        out.size = byte ? 1 : osz;
    if (!out.dst_size)
        out.dst_size = out.size;
    if (modrm) {
        if (i >= avail)
            return false;
        u8 m = code[i++];
        unsigned mod = m >> 6, reg = m >> 3 & 7, rm = m & 7;
        if (mod == 3)
            return false;  // a register operand: not a memory access
        if ((op == 0xc6 || op == 0xc7) && reg != 0)
            return false;
        out.reg = reg | (rex & 4 ? 8 : 0);
        out.high_byte = byte && !rex && reg >= 4;
        if (asz == 2) {  // 16-bit addressing: no SIB
            if (mod == 1)
                i += 1;
            else if (mod == 2 || (mod == 0 && rm == 6))
                i += 2;
        } else {
            if (rm == 4) {  // SIB
                if (i >= avail)
                    return false;
                u8 sib = code[i++];
                if (mod == 0 && (sib & 7) == 5)
                    i += 4;
            }
            if (mod == 1)
                i += 1;
            else if (mod == 2 || (mod == 0 && rm == 5))  // disp32 (RIP-relative in 64-bit mode)
                i += 4;
        }
    }
    if (out.imm_source) {
        unsigned n = out.size == 8 ? 4 : out.size;  // imm32 sign-extended for 64-bit stores
        if (i + n > avail)
            return false;
        u64 v = 0;
        for (unsigned k = 0; k < n; k++)
            v |= u64{code[i + k]} << (8 * k);
        if (n == 4 && out.size == 8 && (v & 0x80000000))
            v |= 0xffffffff00000000ull;
        out.imm = v;
        i += n;
    }
    if (i > avail || i > 15)
        return false;
    out.len = i;
    return true;
}

u64 mmio_store_value(const Mmio_insn &in, const u64 *gpr)
{
    if (in.imm_source)
        return in.imm;
    u64 v = in.high_byte ? gpr[in.reg - 4] >> 8 : gpr[in.reg];
    return in.size == 8 ? v : v & ((u64{1} << (8 * in.size)) - 1);
}

void mmio_load_result(const Mmio_insn &in, u64 value, u64 *gpr)
{
    if (in.size < 8)
        value &= (u64{1} << (8 * in.size)) - 1;  // MOVZX: the upper bytes are zero
    if (in.high_byte) {
        u64 &r = gpr[in.reg - 4];
        r = (r & ~u64{0xff00}) | (value & 0xff) << 8;
    } else if (in.dst_size >= 4)
        gpr[in.reg] = in.dst_size == 4 ? value & 0xffffffff : value;
    else {
        u64 mask = (u64{1} << (8 * in.dst_size)) - 1;
        gpr[in.reg] = (gpr[in.reg] & ~mask) | (value & mask);
    }
}

}  // namespace vmm
