/*
 * VMX capabilities and control negotiation (src/vmx_logic.cpp) from recorded IA32_VMX_* MSR
 * sets (vmx_msr_sets.hpp): which MSRs are read, whether VMX is usable and why not, the TRUE
 * controls, the kernel's forced bits (ABI 5 note 4) and the masking of a VMM's ctrl[0]/ctrl[1].
 */
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <set>

#include "vmx_msr_sets.hpp"

namespace {

using namespace vmx_sets;

/* A fake rdmsr over a recorded set that remembers what was read. */
struct Fake_msrs
{
    std::map<u32, u64> regs;
    std::set<u32> read;

    explicit Fake_msrs(const Vmx_msrs &m)
    {
        regs = {{Vmx_msr::FEATURE_CONTROL, m.feature_control},
                {Vmx_msr::BASIC, m.basic},
                {Vmx_msr::PINBASED_CTLS, m.pinbased},
                {Vmx_msr::PROCBASED_CTLS, m.procbased},
                {Vmx_msr::EXIT_CTLS, m.exit},
                {Vmx_msr::ENTRY_CTLS, m.entry},
                {Vmx_msr::MISC, m.misc},
                {Vmx_msr::CR0_FIXED0, m.cr0_fixed0},
                {Vmx_msr::CR0_FIXED1, m.cr0_fixed1},
                {Vmx_msr::CR4_FIXED0, m.cr4_fixed0},
                {Vmx_msr::CR4_FIXED1, m.cr4_fixed1}};
        if (m.basic & Vmx_basic::TRUE_CTLS) {
            regs[Vmx_msr::TRUE_PINBASED_CTLS] = m.true_pinbased;
            regs[Vmx_msr::TRUE_PROCBASED_CTLS] = m.true_procbased;
            regs[Vmx_msr::TRUE_EXIT_CTLS] = m.true_exit;
            regs[Vmx_msr::TRUE_ENTRY_CTLS] = m.true_entry;
        }
        if (m.procbased >> 63)
            regs[Vmx_msr::PROCBASED_CTLS2] = m.procbased2;
        if (m.ept_vpid_cap)
            regs[Vmx_msr::EPT_VPID_CAP] = m.ept_vpid_cap;
    }

    /* Like the CPU: reading an MSR that does not exist is a #GP, here a test failure. */
    u64 operator()(u32 msr)
    {
        read.insert(msr);
        auto it = regs.find(msr);
        EXPECT_NE(it, regs.end()) << "rdmsr of a missing MSR 0x" << std::hex << msr << " would #GP";
        return it == regs.end() ? 0 : it->second;
    }
};

Vmx_msrs cpuid_only(const Vmx_msrs &m)
{
    Vmx_msrs c{};
    c.cpuid_vmx = m.cpuid_vmx;
    c.phys_bits = m.phys_bits;
    c.linear_bits = m.linear_bits;
    return c;
}

Vmx_msrs read_back(const Vmx_msrs &m, Fake_msrs &f) { return vmx_read_msrs(cpuid_only(m), std::ref(f)); }

void expect_same(const Vmx_msrs &a, const Vmx_msrs &b)
{
    EXPECT_EQ(a.basic, b.basic);
    EXPECT_EQ(a.procbased, b.procbased);
    EXPECT_EQ(a.procbased2, b.procbased2);
    EXPECT_EQ(a.ept_vpid_cap, b.ept_vpid_cap);
    EXPECT_EQ(a.true_procbased, b.true_procbased);
    EXPECT_EQ(a.true_exit, b.true_exit);
    EXPECT_EQ(a.cr4_fixed1, b.cr4_fixed1);
}

TEST(VmxCaps, ReadsTrueMsrsOnlyWithBasicBit55)
{
    Fake_msrs sky(skylake());
    expect_same(read_back(skylake(), sky), skylake());
    EXPECT_TRUE(sky.read.count(Vmx_msr::TRUE_PROCBASED_CTLS));
    EXPECT_TRUE(sky.read.count(Vmx_msr::EPT_VPID_CAP));

    Fake_msrs old(westmere_untrue());
    expect_same(read_back(westmere_untrue(), old), westmere_untrue());
    for (u32 msr = Vmx_msr::TRUE_PINBASED_CTLS; msr <= Vmx_msr::TRUE_ENTRY_CTLS; msr++)
        EXPECT_FALSE(old.read.count(msr)) << std::hex << msr;
}

TEST(VmxCaps, ReadsSecondaryAndEptCapsOnlyWhenTheyExist)
{
    Fake_msrs f(core2());
    Vmx_msrs m = read_back(core2(), f);
    EXPECT_FALSE(f.read.count(Vmx_msr::PROCBASED_CTLS2));
    EXPECT_FALSE(f.read.count(Vmx_msr::EPT_VPID_CAP));
    EXPECT_EQ(m.procbased2, 0u);
}

TEST(VmxCaps, ReadsNothingWithoutCpuidOrWhenLockedOff)
{
    Vmx_msrs no = skylake();
    no.cpuid_vmx = false;
    Fake_msrs f(no);
    read_back(no, f);
    EXPECT_TRUE(f.read.empty());

    Vmx_msrs locked = skylake();
    locked.feature_control = Vmx_feature_control::LOCK;  // locked with VMX off
    Fake_msrs g(locked);
    Vmx_msrs m = read_back(locked, g);
    EXPECT_EQ(g.read, std::set<u32>{Vmx_msr::FEATURE_CONTROL});
    Vmx_caps c = vmx_caps(m);
    EXPECT_FALSE(c.usable);
    EXPECT_STREQ(c.why, "disabled in IA32_FEATURE_CONTROL");

    Vmx_msrs unlocked = skylake();
    unlocked.feature_control = 0;  // the kernel may enable and lock it
    EXPECT_TRUE(vmx_caps(unlocked).usable);
}

TEST(VmxCaps, SkylakeIsUsableWithEverythingOptional)
{
    Vmx_caps c = vmx_caps(skylake());
    EXPECT_TRUE(c.usable) << c.why;
    EXPECT_STREQ(c.why, "");
    EXPECT_TRUE(c.true_ctls);
    EXPECT_EQ(c.revision, 4u);
    EXPECT_EQ(c.vmcs_size, 0x400u);
    EXPECT_TRUE(c.vpid);
    EXPECT_TRUE(c.invvpid_single);
    EXPECT_TRUE(c.invept_single);
    EXPECT_TRUE(c.vnmi);
    EXPECT_TRUE(c.ept_2m);
    EXPECT_TRUE(c.ept_1g);
    EXPECT_EQ(ept_max_level(c), 2u);
    EXPECT_EQ(c.phys_bits, 39u);
    // TRUE controls: CR3-load/store exiting may be 0 although they are default1.
    EXPECT_EQ(c.cpu1.must1 & (Vmx_cpu1::CR3_LOAD | Vmx_cpu1::CR3_STORE), 0u);
}

TEST(VmxCaps, WestmereIsUsableWithout1GPages)
{
    Vmx_caps c = vmx_caps(westmere());
    EXPECT_TRUE(c.usable) << c.why;
    EXPECT_TRUE(c.vpid);
    EXPECT_TRUE(c.ept_2m);
    EXPECT_FALSE(c.ept_1g);
    EXPECT_EQ(ept_max_level(c), 1u);
    EXPECT_EQ(c.revision, 0xeu);
}

TEST(VmxCaps, NehalemHasNoUnrestrictedGuest)
{
    Vmx_caps c = vmx_caps(nehalem());
    EXPECT_FALSE(c.usable);
    EXPECT_STREQ(c.why, "no unrestricted guest");
}

TEST(VmxCaps, Core2HasNoSecondaryControls)
{
    Vmx_caps c = vmx_caps(core2());
    EXPECT_FALSE(c.usable);
    EXPECT_STREQ(c.why, "no secondary controls");
    EXPECT_FALSE(c.true_ctls);
    EXPECT_EQ(c.cpu2.may1, 0u) << "no secondary controls: none may be set";
}

TEST(VmxCaps, EachRequirementHasItsReason)
{
    struct Case
    {
        const char *why;
        void (*spoil)(Vmx_msrs &);
    };
    const Case cases[] = {
        {"no VMX", [](Vmx_msrs &m) { m.cpuid_vmx = false; }},
        {"VMCS larger than a page", [](Vmx_msrs &m) { m.basic |= u64{0x1001} << 32; }},
        {"VMX addresses limited to 32 bits", [](Vmx_msrs &m) { m.basic |= Vmx_basic::ADDR_32BIT; }},
        {"VMCS memory type not write-back", [](Vmx_msrs &m) { m.basic &= ~(u64{0xf} << 50); }},
        {"no external-interrupt or NMI exiting",
         [](Vmx_msrs &m) { m.true_pinbased &= ~(u64{Vmx_pin::NMI} << 32); }},
        {"no HLT, I/O, interrupt-window or CR8 exiting",
         [](Vmx_msrs &m) { m.true_procbased &= ~(u64{Vmx_cpu1::HLT} << 32); }},
        {"no secondary controls", [](Vmx_msrs &m) { m.true_procbased &= ~(u64{Vmx_cpu1::SECONDARY} << 32); }},
        {"no EPT", [](Vmx_msrs &m) { m.procbased2 &= ~(u64{Vmx_cpu2::EPT} << 32); }},
        {"no unrestricted guest", [](Vmx_msrs &m) { m.procbased2 &= ~(u64{Vmx_cpu2::UNRESTRICTED} << 32); }},
        {"no 4-level EPT", [](Vmx_msrs &m) { m.ept_vpid_cap &= ~Vmx_ept_cap::WALK_4; }},
        {"no write-back EPT", [](Vmx_msrs &m) { m.ept_vpid_cap &= ~Vmx_ept_cap::MEMTYPE_WB; }},
        {"no INVEPT", [](Vmx_msrs &m) { m.ept_vpid_cap &= ~Vmx_ept_cap::INVEPT; }},
        {"no INVEPT",
         [](Vmx_msrs &m) { m.ept_vpid_cap &= ~(Vmx_ept_cap::INVEPT_SINGLE | Vmx_ept_cap::INVEPT_ALL); }},
        {"no 64-bit host or PAT/EFER save/load on exit",
         [](Vmx_msrs &m) { m.true_exit &= ~(u64{Vmx_exit_ctl::SAVE_PAT} << 32); }},
        {"no 64-bit host or PAT/EFER save/load on exit",
         [](Vmx_msrs &m) { m.true_exit &= ~(u64{Vmx_exit_ctl::HOST_64} << 32); }},
        {"no IA-32e guest or PAT/EFER load on entry",
         [](Vmx_msrs &m) { m.true_entry &= ~(u64{Vmx_entry_ctl::LOAD_EFER} << 32); }},
        {"no IA-32e guest or PAT/EFER load on entry",
         [](Vmx_msrs &m) { m.true_entry &= ~(u64{Vmx_entry_ctl::IA32E_GUEST} << 32); }},
    };
    for (const Case &k : cases) {
        Vmx_msrs m = skylake();
        k.spoil(m);
        Vmx_caps c = vmx_caps(m);
        EXPECT_FALSE(c.usable) << k.why;
        EXPECT_STREQ(c.why, k.why);
    }
}

TEST(VmxCaps, VpidNeedsInvvpid)
{
    Vmx_msrs m = skylake();
    m.ept_vpid_cap &= ~Vmx_ept_cap::INVVPID;
    Vmx_caps c = vmx_caps(m);
    EXPECT_TRUE(c.usable) << "VPID is optional";
    EXPECT_FALSE(c.vpid);
    m = skylake();
    m.ept_vpid_cap &= ~(Vmx_ept_cap::INVVPID_SINGLE | Vmx_ept_cap::INVVPID_ALL);
    EXPECT_FALSE(vmx_caps(m).vpid);
    m = skylake();
    m.procbased2 &= ~(u64{Vmx_cpu2::VPID} << 32);
    EXPECT_FALSE(vmx_caps(m).vpid);
}

TEST(VmxCtl, AdjustOrsRequiredAndMasksAllowed)
{
    Vmx_ctl c = Vmx_ctl::from(0x000000ff00000011ull);
    EXPECT_EQ(c.must1, 0x11u);
    EXPECT_EQ(c.may1, 0xffu);
    EXPECT_EQ(c.adjust(0), 0x11u);
    EXPECT_EQ(c.adjust(0x102), 0x13u);
    EXPECT_TRUE(c.valid(0x13));
    EXPECT_FALSE(c.valid(0x12)) << "a required bit is missing";
    EXPECT_FALSE(c.valid(0x111)) << "a bit not allowed";
    EXPECT_TRUE(c.can(0xf0));
    EXPECT_FALSE(c.can(0x100));
}

const Vmx_vcpu_cfg plain{true, false, false, false};

TEST(VmxNegotiation, SkylakeBaseControls)
{
    Vmx_caps c = vmx_caps(skylake());
    Vmx_controls v = vmx_base_controls(c, plain);
    EXPECT_EQ(v.pin, Vmx_pin::EXT_INTR | Vmx_pin::NMI | Vmx_pin::VIRT_NMI | Vmx_pin::DEFAULT1);
    // TRUE controls: the default1 CR3 exits may go; HLT, I/O, secondary and CR8 exits are forced.
    EXPECT_EQ(v.cpu1, (Vmx_cpu1::DEFAULT1 & ~(Vmx_cpu1::CR3_LOAD | Vmx_cpu1::CR3_STORE)) | Vmx_cpu1::HLT |
                          Vmx_cpu1::UNCOND_IO | Vmx_cpu1::SECONDARY | Vmx_cpu1::CR8_LOAD |
                          Vmx_cpu1::CR8_STORE);
    EXPECT_EQ(v.cpu2, Vmx_cpu2::EPT | Vmx_cpu2::UNRESTRICTED | Vmx_cpu2::VPID);
    // Save debug controls is default1 but may be 0 with the TRUE MSR: the kernel wants it anyway.
    EXPECT_EQ(c.exit.must1 & Vmx_exit_ctl::SAVE_DEBUG, 0u);
    EXPECT_EQ(v.exit, Vmx_exit_ctl::DEFAULT1 | Vmx_exit_ctl::HOST_64 | Vmx_exit_ctl::SAVE_PAT |
                          Vmx_exit_ctl::LOAD_PAT | Vmx_exit_ctl::SAVE_EFER | Vmx_exit_ctl::LOAD_EFER);
    EXPECT_EQ(v.exit & Vmx_exit_ctl::ACK_INTR, 0u) << "interrupts are taken through the IDT after the exit";
    EXPECT_EQ(v.entry, Vmx_entry_ctl::DEFAULT1 | Vmx_entry_ctl::LOAD_PAT | Vmx_entry_ctl::LOAD_EFER);
    EXPECT_TRUE(c.pin.valid(v.pin) && c.cpu1.valid(v.cpu1) && c.cpu2.valid(v.cpu2) && c.exit.valid(v.exit) &&
                c.entry.valid(v.entry));
}

TEST(VmxNegotiation, WithoutTrueControlsTheDefault1BitsStay)
{
    Vmx_caps t = vmx_caps(westmere()), u = vmx_caps(westmere_untrue());
    ASSERT_TRUE(t.usable && u.usable);
    EXPECT_FALSE(u.true_ctls);
    Vmx_controls vt = vmx_base_controls(t, plain), vu = vmx_base_controls(u, plain);
    EXPECT_EQ(vt.cpu1 & (Vmx_cpu1::CR3_LOAD | Vmx_cpu1::CR3_STORE), 0u);
    EXPECT_EQ(vu.cpu1 & (Vmx_cpu1::CR3_LOAD | Vmx_cpu1::CR3_STORE), Vmx_cpu1::CR3_LOAD | Vmx_cpu1::CR3_STORE)
        << "IA32_VMX_PROCBASED_CTLS reports every default1 bit as required";
    EXPECT_EQ(vu.cpu1 & Vmx_cpu1::DEFAULT1, Vmx_cpu1::DEFAULT1);
    EXPECT_EQ(vu.exit & Vmx_exit_ctl::DEFAULT1, Vmx_exit_ctl::DEFAULT1);
    EXPECT_EQ(vu.entry & Vmx_entry_ctl::DEFAULT1, Vmx_entry_ctl::DEFAULT1);
    EXPECT_TRUE(u.cpu1.valid(vu.cpu1) && u.exit.valid(vu.exit) && u.entry.valid(vu.entry));
    // Westmere has no APICv: the secondary controls never get them.
    Vmx_proc p = vmx_proc_controls(u, {true, true, true, true}, ~0u, ~0u, true, true);
    EXPECT_EQ(p.cpu2 & ~u.cpu2.may1, 0u);
    EXPECT_EQ(p.cpu2 & Vmx_cpu2::VIRT_INTR_DELIVERY, 0u);
}

TEST(VmxNegotiation, NovpidOrNoVpidSupportMeansNoVpidControl)
{
    Vmx_caps c = vmx_caps(skylake());
    EXPECT_EQ(vmx_base_controls(c, {false, false, false, false}).cpu2 & Vmx_cpu2::VPID, 0u);
    Vmx_msrs m = skylake();
    m.ept_vpid_cap &= ~Vmx_ept_cap::INVVPID;
    EXPECT_EQ(vmx_base_controls(vmx_caps(m), plain).cpu2 & Vmx_cpu2::VPID, 0u);
    // Nor can a VMM turn it on.
    EXPECT_EQ(vmx_proc_controls(c, {false, false, false, false}, 0, Vmx_cpu2::VPID, false, false).cpu2 &
                  Vmx_cpu2::VPID,
              0u);
}

TEST(VmxNegotiation, EntryControlsFollowGuestEferLma)
{
    Vmx_caps c = vmx_caps(skylake());
    u32 base = vmx_base_controls(c, plain).entry;
    EXPECT_EQ(vmx_entry_controls(c, base, Efer::LME | Efer::LMA) & Vmx_entry_ctl::IA32E_GUEST,
              Vmx_entry_ctl::IA32E_GUEST);
    EXPECT_EQ(vmx_entry_controls(c, base, Efer::LME), base) << "LME without LMA: not yet in long mode";
    EXPECT_EQ(vmx_entry_controls(c, base | Vmx_entry_ctl::IA32E_GUEST, 0), base);
}

TEST(VmxNegotiation, VmmCannotClearTheForcedBits)
{
    Vmx_caps c = vmx_caps(skylake());
    Vmx_proc p = vmx_proc_controls(c, plain, 0, 0, false, false);
    const u32 forced1 =
        Vmx_cpu1::HLT | Vmx_cpu1::UNCOND_IO | Vmx_cpu1::SECONDARY | Vmx_cpu1::CR8_LOAD | Vmx_cpu1::CR8_STORE;
    EXPECT_EQ(p.cpu1 & forced1, forced1);
    EXPECT_EQ(p.cpu2 & (Vmx_cpu2::EPT | Vmx_cpu2::UNRESTRICTED | Vmx_cpu2::VPID),
              Vmx_cpu2::EPT | Vmx_cpu2::UNRESTRICTED | Vmx_cpu2::VPID);
}

TEST(VmxNegotiation, VmmCannotSetKernelOwnedControls)
{
    Vmx_caps c = vmx_caps(skylake());
    Vmx_proc p = vmx_proc_controls(c, plain, ~0u, ~0u, false, false);
    // Never from the VMM: MSR bitmaps (address 0 = host frame 0), tertiary controls, the window
    // exits (INJ owns them), TPR shadow/I/O bitmaps without the pages behind them.
    EXPECT_EQ(p.cpu1 & (Vmx_cpu1::MSR_BITMAPS | Vmx_cpu1::TERTIARY | Vmx_cpu1::INTR_WINDOW |
                        Vmx_cpu1::NMI_WINDOW | Vmx_cpu1::TPR_SHADOW | Vmx_cpu1::IO_BITMAPS),
              0u);
    // Nor VM functions, VMCS shadowing, PML, #VE, sub-page permissions, mode-based execute,
    // TSC scaling, PT, ENCLS/ENCLV, user wait, PCONFIG, nor APIC virtualisation without pages.
    const u32 never2 = Vmx_cpu2::VMFUNC | Vmx_cpu2::VMCS_SHADOW | Vmx_cpu2::PML | Vmx_cpu2::EPT_VE |
                       Vmx_cpu2::EPT_SPP | Vmx_cpu2::EPT_MODE_EXEC | Vmx_cpu2::TSC_SCALING |
                       Vmx_cpu2::PT_CONCEAL | Vmx_cpu2::PT_GPA | Vmx_cpu2::ENCLS | Vmx_cpu2::ENCLV |
                       Vmx_cpu2::USER_WAIT | Vmx_cpu2::PCONFIG | Vmx_cpu2::VIRT_APIC_ACCESS |
                       Vmx_cpu2::VIRT_X2APIC | Vmx_cpu2::APIC_REG_VIRT | Vmx_cpu2::VIRT_INTR_DELIVERY;
    EXPECT_EQ(p.cpu2 & never2, 0u);
    // What the VMM may choose reaches the hardware.
    const u32 vmm1 = Vmx_cpu1::TSC_OFFSET | Vmx_cpu1::RDTSC | Vmx_cpu1::INVLPG | Vmx_cpu1::MOV_DR |
                     Vmx_cpu1::MTF | Vmx_cpu1::PAUSE | Vmx_cpu1::CR3_LOAD;
    EXPECT_EQ(p.cpu1 & vmm1, vmm1);
    const u32 vmm2 = Vmx_cpu2::RDTSCP | Vmx_cpu2::INVPCID | Vmx_cpu2::XSAVES | Vmx_cpu2::DESC_TABLE;
    EXPECT_EQ(p.cpu2 & vmm2, vmm2);
    EXPECT_TRUE(c.cpu1.valid(p.cpu1) && c.cpu2.valid(p.cpu2));
}

TEST(VmxNegotiation, TprShadowAndApicVirtualisationNeedTheirPages)
{
    Vmx_caps c = vmx_caps(skylake());
    const u32 apicv = Vmx_cpu2::APIC_REG_VIRT | Vmx_cpu2::VIRT_INTR_DELIVERY;
    // With a virtual-APIC page: TPR shadow allowed, CR8 exits no longer forced, APICv allowed.
    Vmx_proc p = vmx_proc_controls(c, {true, true, false, false}, Vmx_cpu1::TPR_SHADOW, apicv, false, false);
    EXPECT_EQ(p.cpu1 & (Vmx_cpu1::TPR_SHADOW | Vmx_cpu1::CR8_LOAD | Vmx_cpu1::CR8_STORE),
              Vmx_cpu1::TPR_SHADOW);
    EXPECT_EQ(p.cpu2 & apicv, apicv);
    // The VMM may still ask for CR8 exits with TPR shadow.
    p = vmx_proc_controls(c, {true, true, false, false}, Vmx_cpu1::TPR_SHADOW | Vmx_cpu1::CR8_LOAD, 0, false,
                          false);
    EXPECT_EQ(p.cpu1 & (Vmx_cpu1::CR8_LOAD | Vmx_cpu1::CR8_STORE), Vmx_cpu1::CR8_LOAD);
    // TPR shadow requested but not asked for in ctrl[0]: APICv dropped (26.2.1.1).
    p = vmx_proc_controls(c, {true, true, false, false}, 0, apicv | Vmx_cpu2::VIRT_X2APIC, false, false);
    EXPECT_EQ(p.cpu2 & (apicv | Vmx_cpu2::VIRT_X2APIC), 0u);
    // APIC-access virtualisation only with the kernel's page, and then never with x2APIC mode.
    p = vmx_proc_controls(c, {true, true, true, false}, Vmx_cpu1::TPR_SHADOW,
                          Vmx_cpu2::VIRT_APIC_ACCESS | Vmx_cpu2::VIRT_X2APIC, false, false);
    EXPECT_EQ(p.cpu2 & (Vmx_cpu2::VIRT_APIC_ACCESS | Vmx_cpu2::VIRT_X2APIC), Vmx_cpu2::VIRT_APIC_ACCESS);
    p = vmx_proc_controls(c, {true, true, false, false}, Vmx_cpu1::TPR_SHADOW, Vmx_cpu2::VIRT_X2APIC, false,
                          false);
    EXPECT_EQ(p.cpu2 & Vmx_cpu2::VIRT_X2APIC, Vmx_cpu2::VIRT_X2APIC);
}

TEST(VmxNegotiation, IoBitmapsOnlyWhenProgrammed)
{
    Vmx_caps c = vmx_caps(skylake());
    EXPECT_EQ(vmx_proc_controls(c, plain, Vmx_cpu1::IO_BITMAPS, 0, false, false).cpu1 & Vmx_cpu1::IO_BITMAPS,
              0u);
    EXPECT_EQ(vmx_proc_controls(c, {true, false, false, true}, Vmx_cpu1::IO_BITMAPS, 0, false, false).cpu1 &
                  Vmx_cpu1::IO_BITMAPS,
              Vmx_cpu1::IO_BITMAPS);
}

TEST(VmxNegotiation, WindowsFollowTheInjectionRequests)
{
    Vmx_caps c = vmx_caps(skylake());
    Vmx_proc p = vmx_proc_controls(c, plain, 0, 0, true, false);
    EXPECT_EQ(p.cpu1 & (Vmx_cpu1::INTR_WINDOW | Vmx_cpu1::NMI_WINDOW), Vmx_cpu1::INTR_WINDOW);
    p = vmx_proc_controls(c, plain, 0, 0, false, true);
    EXPECT_EQ(p.cpu1 & (Vmx_cpu1::INTR_WINDOW | Vmx_cpu1::NMI_WINDOW), Vmx_cpu1::NMI_WINDOW);
    // Without virtual NMIs the NMI window cannot be had (26.2.1.1): dropped, entry still valid.
    Vmx_msrs m = skylake();
    m.true_pinbased &= ~(u64{Vmx_pin::VIRT_NMI} << 32);
    Vmx_caps nv = vmx_caps(m);
    EXPECT_FALSE(nv.vnmi);
    EXPECT_EQ(vmx_proc_controls(nv, plain, 0, 0, false, true).cpu1 & Vmx_cpu1::NMI_WINDOW, 0u);
    EXPECT_EQ(vmx_base_controls(nv, plain).pin & Vmx_pin::VIRT_NMI, 0u);
}

TEST(VmxNegotiation, ExceptionBitmapAlwaysInterceptsAc)
{
    EXPECT_EQ(vmx_exc_bitmap(0), 1u << 17 | 1u << 1 | 1u << 18);
    EXPECT_EQ(vmx_exc_bitmap(1u << 14 | 1u << 6), 1u << 17 | 1u << 14 | 1u << 6 | 1u << 1 | 1u << 18);
    EXPECT_EQ(vmx_exc_bitmap(~0u), ~0u);
}

}  // namespace
