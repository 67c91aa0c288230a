/*
 * SVM guest state (src/svm_state.cpp): what a VMM's reply can and cannot change in a VMCB, the
 * exit codes' event numbers, re-injection after exits, XCR0 checks, the event message's state.
 */
#include <gtest/gtest.h>

#include "abi/constants.hpp"
#include "abi/mtd.hpp"
#include "svm_state.hpp"

using namespace Svm_bits;

namespace {

struct Guest
{
    Vmcb m;
    Exc_frame r{};
    Vcpu v{};
    Utcb u{};
    Svm_state::Host host{true, 7};  // x87 SSE AVX
    Guest() { Svm_state::init(m, 0x1000, 0x5000); }
    const char *reply(u64 mtd)
    {
        u.mtd = mtd;
        return Svm_state::from_utcb(u, m, r, v, host);
    }
};

TEST(Svm, ANewVmcbHasTheKernelsInterceptsMapsNestedPagingAndTheResetState)
{
    Guest g;
    EXPECT_EQ(g.m.intercept[0], Svm_state::FORCED0);
    EXPECT_EQ(g.m.intercept[1], Svm_state::FORCED1);
    EXPECT_TRUE(g.m.intercept[1] & I_VMRUN);  // APM 15.5.1: VMRUN fails without it
    EXPECT_EQ(g.m.iopm, 0x1000u);
    EXPECT_EQ(g.m.msrpm, 0x5000u);
    EXPECT_EQ(g.m.np_ctl, 1u);
    EXPECT_TRUE(g.m.int_ctl & V_INTR_MASKING);
    EXPECT_EQ(g.m.efer, EFER_SVME);
    EXPECT_EQ(g.m.cs.sel, 0xf000);
    EXPECT_EQ(g.m.cs.base, 0xffff0000u);
    EXPECT_EQ(g.m.rip, 0xfff0u);
    EXPECT_EQ(g.m.cr0, 0x60000010u);
    EXPECT_EQ(g.m.asid, 0u);  // the kernel gives one before the first entry
}

TEST(Svm, ControlsTheVmmWritesNeverDropTheKernelsIntercepts)
{
    Guest g;
    g.u.ctrl[0] = I_CPUID | I_INVLPG;  // nothing of the forced ones, and one the kernel clears
    g.u.ctrl[1] = 0;
    g.u.exc_bitmap = 1u << 14;
    EXPECT_EQ(g.reply(Mtd::CTRL), nullptr);
    EXPECT_EQ(g.m.intercept[0], Svm_state::FORCED0 | I_CPUID);
    EXPECT_EQ(g.m.intercept[1], Svm_state::FORCED1);
    EXPECT_EQ(g.m.intercept_exc, Svm_state::FORCED_EXC | 1u << 14);
    g.u.ctrl[0] = ~0u;
    g.u.ctrl[1] = ~0u;
    EXPECT_EQ(g.reply(Mtd::CTRL), nullptr);
    EXPECT_FALSE(g.m.intercept[0] & I_INVLPG);
    EXPECT_FALSE(g.m.intercept[0] & I_VINTR);  // only INJ bit 12 sets it
    EXPECT_EQ(g.m.intercept[1], ~0u);
    // Without the CTRL bit nothing changes.
    g.u.ctrl[0] = 0;
    EXPECT_EQ(g.reply(Mtd::GPR_ACDB), nullptr);
    EXPECT_EQ(g.m.intercept[0], (~0u & ~I_INVLPG & ~I_VINTR));
}

TEST(Svm, TheInterruptWindowBitSetsVirqAndTheVintrInterceptAndIsStrippedFromEventinj)
{
    Guest g;
    g.u.intr_info = Inj::REQ_INTR_WINDOW;
    g.u.intr_error = 0;
    EXPECT_EQ(g.reply(Mtd::INJ), nullptr);
    EXPECT_TRUE(g.m.int_ctl & V_IRQ);
    EXPECT_TRUE(g.m.int_ctl & V_IGN_TPR);
    EXPECT_TRUE(g.m.intercept[0] & I_VINTR);
    EXPECT_EQ(g.m.eventinj, 0u);
    // A CTRL write keeps it; then an injection without bit 12 clears it.
    g.u.ctrl[0] = 0;
    EXPECT_EQ(g.reply(Mtd::CTRL), nullptr);
    EXPECT_TRUE(g.m.intercept[0] & I_VINTR);
    g.u.intr_info = Inj::VALID | Inj::TYPE_HW_EXC | Inj::ERROR_CODE | Inj::REQ_NMI_WINDOW | 13;
    g.u.intr_error = 0x1234;
    EXPECT_EQ(g.reply(Mtd::INJ), nullptr);
    EXPECT_FALSE(g.m.int_ctl & (V_IRQ | V_IGN_TPR));
    EXPECT_FALSE(g.m.intercept[0] & I_VINTR);
    EXPECT_EQ(g.m.eventinj, (u64{0x1234} << 32) | Inj::VALID | Inj::TYPE_HW_EXC | Inj::ERROR_CODE | 13);
    EXPECT_TRUE(g.m.int_ctl & V_INTR_MASKING);  // never touched
}

TEST(Svm, EferKeepsSvmeAndPatGoesToGpat)
{
    Guest g;
    g.u.efer = 0x500;  // LME LMA, no SVME
    g.u.pat = 0x0606060606060606ull;
    EXPECT_EQ(g.reply(Mtd::EFER_PAT), nullptr);
    EXPECT_EQ(g.m.efer, 0x500u | EFER_SVME);
    EXPECT_EQ(g.m.g_pat, 0x0606060606060606ull);
}

TEST(Svm, Xcr0IsCheckedAgainstWhatTheHostAllows)
{
    Svm_state::Host h{true, 7};
    EXPECT_TRUE(Svm_state::xcr0_valid(1, h));
    EXPECT_TRUE(Svm_state::xcr0_valid(3, h));
    EXPECT_TRUE(Svm_state::xcr0_valid(7, h));
    EXPECT_FALSE(Svm_state::xcr0_valid(0, h));     // no x87
    EXPECT_FALSE(Svm_state::xcr0_valid(2, h));     // no x87
    EXPECT_FALSE(Svm_state::xcr0_valid(5, h));     // AVX without SSE
    EXPECT_FALSE(Svm_state::xcr0_valid(0xe7, h));  // AVX-512, which the host does not enable
    Svm_state::Host fx{false, 3};                  // FXSAVE only (noxsave)
    EXPECT_TRUE(Svm_state::xcr0_valid(1, fx));
    EXPECT_FALSE(Svm_state::xcr0_valid(3, fx));

    Guest g;
    g.u.xcr0 = 0;
    g.u.cr0 = 0x12345;
    EXPECT_STREQ(g.reply(Mtd::CR), "Invalid XCR0");
    EXPECT_EQ(g.m.cr0, 0x60000010u);  // nothing of the refused write
    EXPECT_EQ(g.v.xcr0, 1u);
    g.u.xcr0 = 3;
    EXPECT_EQ(g.reply(Mtd::CR), nullptr);
    EXPECT_EQ(g.v.xcr0, 3u);
    EXPECT_EQ(g.m.cr0, 0x12345u);
}

TEST(Svm, TheTscOffsetIsAdditive)
{
    Guest g;
    g.u.tsc_off = 100;
    EXPECT_EQ(g.reply(Mtd::TSC), nullptr);
    EXPECT_EQ(g.reply(Mtd::TSC), nullptr);
    EXPECT_EQ(g.m.tsc_offset, 200u);
}

TEST(Svm, GprsGoToTheVmcbAndTheFrameAndCsSsSetTheCpl)
{
    Guest g;
    g.u.rax = 1;
    g.u.rcx = 2;
    g.u.rdx = 3;
    g.u.rbx = 4;
    g.u.rsp = 5;
    g.u.rip = 6;
    g.u.r15 = 7;
    g.u.rflags = 0x202;
    g.u.ss = Utcb_segment{0x23, 0xf3, 0xffffffff, 0};  // DPL 3
    g.u.cs = Utcb_segment{0x2b, 0xafb, 0xffffffff, 0};
    EXPECT_EQ(g.reply(Mtd::GPR_ACDB | Mtd::RSP | Mtd::RIP_LEN | Mtd::GPR_R8_R15 | Mtd::RFLAGS | Mtd::CS_SS),
              nullptr);
    EXPECT_EQ(g.m.rax, 1u);
    EXPECT_EQ(g.r.rcx, 2u);
    EXPECT_EQ(g.r.rdx, 3u);
    EXPECT_EQ(g.r.rbx, 4u);
    EXPECT_EQ(g.m.rsp, 5u);
    EXPECT_EQ(g.m.rip, 6u);
    EXPECT_EQ(g.r.r15, 7u);
    EXPECT_EQ(g.m.rflags, 0x202u);
    EXPECT_EQ(g.m.cpl, 3);
    EXPECT_EQ(g.m.cs.attr, 0xafb);
}

TEST(Svm, ExitCodesBecomeTheAbisEventNumbers)
{
    EXPECT_EQ(Svm_state::event_of(0x72), 0x72);
    EXPECT_EQ(Svm_state::event_of(0x40 + 14), 0x4e);
    EXPECT_EQ(Svm_state::event_of(EXIT_NPF), int{Abi::Vmi::SVM_NPT});
    EXPECT_EQ(Svm_state::event_of(~u64{0}), int{Abi::Vmi::SVM_INVALID_STATE});
    EXPECT_EQ(Svm_state::event_of(0xffffffffu), int{Abi::Vmi::SVM_INVALID_STATE});  // QEMU's form
    EXPECT_EQ(Svm_state::event_of(0x401), -1);                                      // AVIC: never enabled
    EXPECT_EQ(Svm_state::event_of(0xfc), -1);
}

TEST(Svm, AnInterruptedEventIsInjectedAgainAfterEveryExitExceptSoftwareOnes)
{
    Guest g;
    auto info = [](u64 type, u64 vec) { return EV_VALID | type << EV_TYPE_SHIFT | vec; };
    for (u64 code : {EXIT_INTR, EXIT_NPF, EXIT_CPUID}) {
        g.m.exitcode = code;
        g.m.eventinj = info(EV_INTR, 0x99);  // delivered: gone
        g.m.exitintinfo = 0;
        Svm_state::after_exit(g.m);
        EXPECT_EQ(g.m.eventinj, 0u);
        g.m.exitintinfo = info(EV_INTR, 0x30);
        Svm_state::after_exit(g.m);
        EXPECT_EQ(g.m.eventinj, info(EV_INTR, 0x30));
        g.m.exitintinfo = info(EV_NMI, 2);
        Svm_state::after_exit(g.m);
        EXPECT_EQ(g.m.eventinj, info(EV_NMI, 2));
        g.m.exitintinfo = info(EV_EXC, 14) | EV_ERROR | u64{6} << 32;
        Svm_state::after_exit(g.m);
        EXPECT_EQ(g.m.eventinj, g.m.exitintinfo);
        for (u64 soft : {info(EV_EXC, 3), info(EV_EXC, 4), info(EV_SWINT, 0x80)}) {
            g.m.exitintinfo = soft;
            Svm_state::after_exit(g.m);
            EXPECT_EQ(g.m.eventinj, 0u);  // the instruction raises it again
        }
    }
    // A failed VMRUN injected nothing: the pending injection stays.
    g.m.exitcode = 0xffffffff;
    g.m.eventinj = info(EV_INTR, 0x31);
    g.m.exitintinfo = 0;
    Svm_state::after_exit(g.m);
    EXPECT_EQ(g.m.eventinj, info(EV_INTR, 0x31));
}

TEST(Svm, TheEventMessageCarriesTheSelectedStateAndTheInstructionLength)
{
    Guest g;
    g.m.rip = 0x1000;
    g.m.rax = 0x11;
    g.r.rbx = 0x22;
    g.m.exitcode = EXIT_IOIO;
    g.m.exitinfo1 = 0x800010;
    g.m.exitinfo2 = 0x1002;  // IOIO: the next RIP
    g.m.exitintinfo = 0x80000030;
    g.m.eventinj = 0x80000031;
    g.r.vector = EXIT_IOIO;
    Svm_state::to_utcb(g.m, g.r, g.v, Mtd::GPR_ACDB | Mtd::RIP_LEN | Mtd::QUAL | Mtd::INJ, false, g.u);
    EXPECT_EQ(g.u.items, Utcb::EVENT_ITEMS);
    EXPECT_EQ(g.u.mtd, Mtd::GPR_ACDB | Mtd::RIP_LEN | Mtd::QUAL | Mtd::INJ);
    EXPECT_EQ(g.u.rax, 0x11u);
    EXPECT_EQ(g.u.rbx, 0x22u);
    EXPECT_EQ(g.u.rip, 0x1000u);
    EXPECT_EQ(g.u.inst_len, 2u);
    EXPECT_EQ(g.u.qual[0], 0x800010u);
    EXPECT_EQ(g.u.qual[1], 0x1002u);
    EXPECT_EQ(g.u.inj, 0x80000030u);  // EXITINTINFO
    g.r.vector = Abi::Vmi::RECALL;    // recall and invalid state: the pending injection (ABI 5 note 2)
    Svm_state::to_utcb(g.m, g.r, g.v, Mtd::INJ, false, g.u);
    EXPECT_EQ(g.u.inj, 0x80000031u);
    // Other exits without next-RIP save: length 0; with it: nRIP - RIP.
    g.m.exitcode = EXIT_CPUID;
    g.m.nrip = 0x1002;
    Svm_state::to_utcb(g.m, g.r, g.v, Mtd::RIP_LEN, false, g.u);
    EXPECT_EQ(g.u.inst_len, 0u);
    Svm_state::to_utcb(g.m, g.r, g.v, Mtd::RIP_LEN, true, g.u);
    EXPECT_EQ(g.u.inst_len, 2u);
    // Fields the MTD does not select keep their contents.
    g.u.cr3 = 0x77;
    Svm_state::to_utcb(g.m, g.r, g.v, Mtd::RIP_LEN, true, g.u);
    EXPECT_EQ(g.u.cr3, 0x77u);
}

}  // namespace
