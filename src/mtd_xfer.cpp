// host-testable
/*
 * MTD-selected state transfer for EC events (see include/mtd_xfer.hpp).
 */
#include "abi/mtd.hpp"
#include "mtd_xfer.hpp"

namespace {
constexpr u64 RFLAGS_KEEP_OUT = (1u << 20) | (1u << 19) | (1u << 17) | (1u << 16) | (3u << 12);   // VIP VIF VM RF IOPL
constexpr u64 RFLAGS_IF = 1u << 9;

bool canonical(u64 a) { return static_cast<u64>(static_cast<i64>(a << 16) >> 16) == a; }
} // namespace

void Mtd_xfer::to_utcb(const Exc_frame &f, u64 mtd, u64 error, u64 cr2, Utcb &u)
{
    u.items = Utcb::EVENT_ITEMS;
    u.mtd = mtd;
    if (mtd & Mtd::GPR_ACDB) {
        u.rax = f.rax;
        u.rcx = f.rcx;
        u.rdx = f.rdx;
        u.rbx = f.rbx;
    }
    if (mtd & Mtd::GPR_BSD) {
        u.rbp = f.rbp;
        u.rsi = f.rsi;
        u.rdi = f.rdi;
    }
    if (mtd & Mtd::GPR_R8_R15) {
        u.r8 = f.r8;
        u.r9 = f.r9;
        u.r10 = f.r10;
        u.r11 = f.r11;
        u.r12 = f.r12;
        u.r13 = f.r13;
        u.r14 = f.r14;
        u.r15 = f.r15;
    }
    if (mtd & Mtd::RSP)
        u.rsp = f.rsp;
    if (mtd & Mtd::RIP_LEN)
        u.rip = f.rip;
    if (mtd & Mtd::RFLAGS)
        u.rflags = f.rflags;
    if (mtd & Mtd::QUAL) {
        u.qual[0] = error;
        u.qual[1] = cr2;
    }
}

bool Mtd_xfer::from_utcb(const Utcb &u, Exc_frame &f)
{
    u64 mtd = u.mtd;
    if (mtd & Mtd::GPR_ACDB) {
        f.rax = u.rax;
        f.rcx = u.rcx;
        f.rdx = u.rdx;
        f.rbx = u.rbx;
    }
    if (mtd & Mtd::GPR_BSD) {
        f.rbp = u.rbp;
        f.rsi = u.rsi;
        f.rdi = u.rdi;
    }
    if (mtd & Mtd::GPR_R8_R15) {
        f.r8 = u.r8;
        f.r9 = u.r9;
        f.r10 = u.r10;
        f.r11 = u.r11;
        f.r12 = u.r12;
        f.r13 = u.r13;
        f.r14 = u.r14;
        f.r15 = u.r15;
    }
    if (mtd & Mtd::RSP)
        f.rsp = u.rsp;
    if (mtd & Mtd::RIP_LEN)
        f.rip = u.rip;
    if (mtd & Mtd::RFLAGS)
        f.rflags = (u.rflags & ~RFLAGS_KEEP_OUT) | RFLAGS_IF;
    return canonical(f.rip);
}
