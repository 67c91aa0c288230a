/*
 * MTD-selected state transfer of EC events (ABI 5, note 1 and 3).
 */
#include <gtest/gtest.h>

#include "abi/mtd.hpp"
#include "mtd_xfer.hpp"

namespace {
Exc_frame sample()
{
    Exc_frame f{};
    f.rax = 1, f.rcx = 2, f.rdx = 3, f.rbx = 4, f.rbp = 5, f.rsi = 6, f.rdi = 7;
    f.r8 = 8, f.r9 = 9, f.r10 = 10, f.r11 = 11, f.r12 = 12, f.r13 = 13, f.r14 = 14, f.r15 = 15;
    f.rsp = 0x7000, f.rip = 0x401000, f.rflags = 0x246;
    return f;
}
}  // namespace

TEST(Mtd_xfer, DeliveryWritesOnlySelectedStateAndTheHeader)
{
    static Utcb u;
    u.rax = 0xdead;
    u.rip = 0xbeef;
    Mtd_xfer::to_utcb(sample(), Mtd::GPR_BSD | Mtd::QUAL, 0x6, 0x1234, u);
    EXPECT_EQ(u.items, 77u);
    EXPECT_EQ(u.mtd, Mtd::GPR_BSD | Mtd::QUAL);
    EXPECT_EQ(u.rdi, 7u);
    EXPECT_EQ(u.rsi, 6u);
    EXPECT_EQ(u.rbp, 5u);
    EXPECT_EQ(u.qual[0], 6u);
    EXPECT_EQ(u.qual[1], 0x1234u);
    EXPECT_EQ(u.rax, 0xdeadu);  // not selected: keeps its previous contents
    EXPECT_EQ(u.rip, 0xbeefu);
}

TEST(Mtd_xfer, ReplyWritesBackWhatTheUtcbMtdSelects)
{
    static Utcb u;
    Exc_frame f = sample();
    u.mtd = Mtd::RIP_LEN | Mtd::GPR_R8_R15;
    u.rip = 0x401002;
    u.r8 = 0x88;
    u.rax = 0x99;  // not selected
    ASSERT_TRUE(Mtd_xfer::from_utcb(u, f));
    EXPECT_EQ(f.rip, 0x401002u);
    EXPECT_EQ(f.r8, 0x88u);
    EXPECT_EQ(f.rax, 1u);
}

TEST(Mtd_xfer, ReplyRflagsIsSanitised)
{
    // Checklist 111: IOPL 3 requested -> resumed with IOPL 0 and IF 1; VM, RF, VIF, VIP cleared.
    static Utcb u;
    Exc_frame f = sample();
    u.mtd = Mtd::RFLAGS;
    u.rflags = 0x3000 | (1u << 17) | (1u << 16) | (1u << 19) | (1u << 20) | 0x400 | 0x1;
    ASSERT_TRUE(Mtd_xfer::from_utcb(u, f));
    EXPECT_EQ(f.rflags, 0x400u | 0x1u | 0x200u);
}

TEST(Mtd_xfer, AnEmptyMtdLeavesTheStateUnchanged)
{
    static Utcb u;
    Exc_frame f = sample(), before = sample();
    u.mtd = 0;
    u.rip = 0;
    ASSERT_TRUE(Mtd_xfer::from_utcb(u, f));
    EXPECT_EQ(f.rip, before.rip);
    EXPECT_EQ(f.rflags, before.rflags);
}

TEST(Mtd_xfer, NonCanonicalRipCannotBeResumed)
{
    static Utcb u;
    Exc_frame f = sample();
    u.mtd = Mtd::RIP_LEN;
    u.rip = 0x0000800000000000ull;
    EXPECT_FALSE(Mtd_xfer::from_utcb(u, f));
    u.rip = 0xffff800000000000ull;  // canonical (the kernel half, faults in user mode)
    EXPECT_TRUE(Mtd_xfer::from_utcb(u, f));
}
