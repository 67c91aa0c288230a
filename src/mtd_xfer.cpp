// host-testable
/*
 * MTD-selected state transfer for EC events (see include/mtd_xfer.hpp).
 */
#include "mtd_xfer.hpp"
#include "abi/mtd.hpp"

namespace {
constexpr u64 RFLAGS_KEEP_OUT =
    (1u << 20) | (1u << 19) | (1u << 17) | (1u << 16) | (3u << 12);  // VIP VIF VM RF IOPL
constexpr u64 RFLAGS_IF = 1u << 9;

bool canonical(u64 a) { return static_cast<u64>(static_cast<i64>(a << 16) >> 16) == a; }
}  // namespace

/* The registers exceptions transfer (note 3), in either direction: Exc_frame and Utcb name them alike. */
template <typename From, typename To> void copy_regs(u64 mtd, const From &f, To &t)
{
    Mtd_xfer::copy_gprs(mtd, f, t);
    if (mtd & Mtd::RSP)
        t.rsp = f.rsp;
    if (mtd & Mtd::RIP_LEN)
        t.rip = f.rip;
}

void Mtd_xfer::to_utcb(const Exc_frame &f, u64 mtd, u64 error, u64 cr2, Utcb &u)
{
    u.items = Utcb::EVENT_ITEMS;
    u.mtd = mtd;
    copy_regs(mtd, f, u);
    if (mtd & Mtd::RFLAGS)
        u.rflags = f.rflags;
    if (mtd & Mtd::QUAL) {
        u.qual[0] = error;
        u.qual[1] = cr2;
    }
}

bool Mtd_xfer::from_utcb(const Utcb &u, Exc_frame &f)
{
    copy_regs(u.mtd, u, f);
    if (u.mtd & Mtd::RFLAGS)
        f.rflags = (u.rflags & ~RFLAGS_KEEP_OUT) | RFLAGS_IF;
    return canonical(f.rip);
}
