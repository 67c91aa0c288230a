// host-testable
/*
 * Intel VMX logic without VMX hardware (see include/vmx_logic.hpp, docs/vmx.md).
 * SDM = Intel SDM volume 3 (chapters 24-28, appendices A-C).
 */
#include "vmx_logic.hpp"
#include "paging.hpp"
#include "x86.hpp"

namespace {
constexpr u64 CR4_CET = u64{1} << 23;
constexpr u64 RFLAGS_TF = 1u << 8, RFLAGS_IF = 1u << 9, RFLAGS_VM = 1u << 17;
constexpr u64 RFLAGS_RESERVED0 = ~u64{0x3fffff} | (1u << 15) | (1u << 5) | (1u << 3);  // must be 0
constexpr u64 RFLAGS_RESERVED1 = 1u << 1;                                              // must be 1
constexpr u64 EFER_VALID = Efer::SCE | Efer::LME | Efer::LMA | Efer::NXE;  // Intel: the rest is reserved
constexpr u64 DEBUGCTL_VALID = 0xffc3;  // LBR, BTF, 15:6 (TR ... RTM_DEBUG); 5:2 and 63:16 reserved
constexpr u64 DEBUGCTL_BTF = 1u << 1;

constexpr u64 XCR0_X87 = 1u << 0, XCR0_SSE = 1u << 1, XCR0_AVX = 1u << 2, XCR0_BNDREGS = 1u << 3,
              XCR0_BNDCSR = 1u << 4, XCR0_AVX512 = 7u << 5, XCR0_TILECFG = 1u << 17, XCR0_TILEDATA = 1u << 18;

/* Bits 63:(bits - 1) all equal. */
constexpr bool canonical(u64 a, unsigned bits)
{
    unsigned s = 64 - bits;
    return static_cast<u64>(static_cast<i64>(a << s) >> s) == a;
}
/* No bit at or above phys_bits. */
constexpr bool fits(u64 a, unsigned phys_bits) { return phys_bits >= 64 || !(a >> phys_bits); }
constexpr bool page_ok(u64 a, unsigned phys_bits) { return !(a & 0xfff) && fits(a, phys_bits); }
constexpr bool fixed_ok(u64 v, u64 fixed0, u64 fixed1) { return (v & fixed0) == fixed0 && !(v & ~fixed1); }

/* Every byte a memory type WRMSR(IA32_PAT) accepts: 0, 1, 4, 5, 6, 7 (SDM 11.12.2). */
constexpr bool pat_ok(u64 pat)
{
    for (unsigned i = 0; i < 8; i++) {
        u64 t = pat >> (8 * i) & 0xff;
        if (t == 2 || t == 3 || t > 7)
            return false;
    }
    return true;
}

/* An MSR-load/store area: 16-byte aligned, first and last byte below MAXPHYADDR (26.2.1.2). */
constexpr bool msr_area_ok(u32 count, u64 addr, unsigned phys_bits)
{
    if (!count)
        return true;
    u64 last = addr + u64{count} * 16 - 1;
    return !(addr & 0xf) && fits(addr, phys_bits) && last > addr && fits(last, phys_bits);
}

/* The granularity bit against the limit (26.3.1.2): limit[11:0] not all ones needs G = 0,
   limit[31:20] not all zeros needs G = 1. */
constexpr bool granularity_ok(const Vmx_seg &s)
{
    bool g = s.ar & Vmx_ar::G;
    if ((s.limit & 0xfff) != 0xfff && g)
        return false;
    return !(s.limit >> 20) || g;
}

constexpr bool usable(const Vmx_seg &s) { return !(s.ar & Vmx_ar::UNUSABLE); }
constexpr u32 seg_type(const Vmx_seg &s) { return s.ar & Vmx_ar::TYPE; }
constexpr bool sw_event(u32 type)
{
    return type == Vmx_intr::TYPE_SW_INT || type == Vmx_intr::TYPE_PRIV_SW_EXC ||
           type == Vmx_intr::TYPE_SW_EXC;
}

constexpr Vmx_violation bad(Vmx_rule r, u32 seg = Vmcs::SEGS) { return {r, static_cast<u8>(seg)}; }
constexpr Vmx_violation OK{Vmx_rule::NONE, Vmcs::SEGS};

#define VMX_RULE_SECTION(name, sdm, text) sdm,
#define VMX_RULE_TEXT(name, sdm, text) text,
constexpr const char *rule_sections[] = {VMX_RULES(VMX_RULE_SECTION)};
constexpr const char *rule_texts[] = {VMX_RULES(VMX_RULE_TEXT)};
#undef VMX_RULE_SECTION
#undef VMX_RULE_TEXT
static_assert(sizeof(rule_texts) / sizeof(rule_texts[0]) == static_cast<size_t>(Vmx_rule::COUNT));
}  // namespace

Vmx_caps vmx_caps(const Vmx_msrs &m)
{
    Vmx_caps c{};
    c.phys_bits = m.phys_bits ? m.phys_bits : 36;
    c.linear_bits = m.linear_bits ? m.linear_bits : 48;
    c.sgx = m.sgx;
    c.rtm = m.rtm;
    c.why = "";
    auto fail = [&c](const char *why) {
        c.usable = false;
        c.why = why;
        return c;
    };
    if (!m.cpuid_vmx)
        return fail("no VMX");
    if ((m.feature_control & Vmx_feature_control::LOCK) &&
        !(m.feature_control & Vmx_feature_control::VMX_OUTSIDE_SMX))
        return fail("disabled in IA32_FEATURE_CONTROL");

    c.basic = m.basic;
    c.revision = static_cast<u32>(m.basic & Vmx_basic::REVISION);
    c.vmcs_size = static_cast<u32>(m.basic >> Vmx_basic::SIZE_SHIFT & Vmx_basic::SIZE_MASK);
    c.true_ctls = m.basic & Vmx_basic::TRUE_CTLS;
    // SDM A.2: with bit 55 the TRUE MSRs hold everything, including which default1 controls may be 0.
    c.pin = Vmx_ctl::from(c.true_ctls ? m.true_pinbased : m.pinbased);
    c.cpu1 = Vmx_ctl::from(c.true_ctls ? m.true_procbased : m.procbased);
    c.cpu2 = c.cpu1.can(Vmx_cpu1::SECONDARY) ? Vmx_ctl::from(m.procbased2) : Vmx_ctl{0, 0};
    c.exit = Vmx_ctl::from(c.true_ctls ? m.true_exit : m.exit);
    c.entry = Vmx_ctl::from(c.true_ctls ? m.true_entry : m.entry);
    c.misc = m.misc;
    c.ept_vpid = m.ept_vpid_cap;
    c.cr0_fixed0 = m.cr0_fixed0;
    c.cr0_fixed1 = m.cr0_fixed1;
    c.cr4_fixed0 = m.cr4_fixed0;
    c.cr4_fixed1 = m.cr4_fixed1;

    u64 cap = c.ept_vpid;
    c.vnmi = c.pin.can(Vmx_pin::VIRT_NMI);
    c.tpr_shadow = c.cpu1.can(Vmx_cpu1::TPR_SHADOW);
    c.ept_2m = cap & Vmx_ept_cap::PAGE_2M;
    c.ept_1g = cap & Vmx_ept_cap::PAGE_1G;
    c.invept_single = cap & Vmx_ept_cap::INVEPT_SINGLE;
    c.invvpid_single = cap & Vmx_ept_cap::INVVPID_SINGLE;
    c.vpid = c.cpu2.can(Vmx_cpu2::VPID) && (cap & Vmx_ept_cap::INVVPID) &&
             (cap & (Vmx_ept_cap::INVVPID_SINGLE | Vmx_ept_cap::INVVPID_ALL));

    if (!c.vmcs_size || c.vmcs_size > PAGE_SIZE)
        return fail("VMCS larger than a page");
    if (m.basic & Vmx_basic::ADDR_32BIT)
        return fail("VMX addresses limited to 32 bits");
    if ((m.basic >> Vmx_basic::MEMTYPE_SHIFT & Vmx_basic::MEMTYPE_MASK) != Ept::WB)
        return fail("VMCS memory type not write-back");
    if (!c.pin.can(Vmx_pin::EXT_INTR | Vmx_pin::NMI))
        return fail("no external-interrupt or NMI exiting");
    if (!c.cpu1.can(Vmx_cpu1::HLT | Vmx_cpu1::UNCOND_IO | Vmx_cpu1::INTR_WINDOW | Vmx_cpu1::CR8_LOAD |
                    Vmx_cpu1::CR8_STORE))
        return fail("no HLT, I/O, interrupt-window or CR8 exiting");
    if (!c.cpu1.can(Vmx_cpu1::SECONDARY))
        return fail("no secondary controls");
    if (!c.cpu2.can(Vmx_cpu2::EPT))
        return fail("no EPT");
    if (!c.cpu2.can(Vmx_cpu2::UNRESTRICTED))
        return fail("no unrestricted guest");
    if (!(cap & Vmx_ept_cap::WALK_4))
        return fail("no 4-level EPT");
    if (!(cap & Vmx_ept_cap::MEMTYPE_WB))
        return fail("no write-back EPT");
    if (!(cap & Vmx_ept_cap::INVEPT) || !(cap & (Vmx_ept_cap::INVEPT_SINGLE | Vmx_ept_cap::INVEPT_ALL)))
        return fail("no INVEPT");
    if (!c.exit.can(Vmx_exit_ctl::HOST_64 | Vmx_exit_ctl::SAVE_DEBUG | Vmx_exit_ctl::SAVE_PAT |
                    Vmx_exit_ctl::LOAD_PAT | Vmx_exit_ctl::SAVE_EFER | Vmx_exit_ctl::LOAD_EFER))
        return fail("no 64-bit host or PAT/EFER save/load on exit");
    if (!c.entry.can(Vmx_entry_ctl::IA32E_GUEST | Vmx_entry_ctl::LOAD_DEBUG | Vmx_entry_ctl::LOAD_PAT |
                     Vmx_entry_ctl::LOAD_EFER))
        return fail("no IA-32e guest or PAT/EFER load on entry");
    c.usable = true;
    return c;
}

Vmx_controls vmx_base_controls(const Vmx_caps &c, const Vmx_vcpu_cfg &cfg)
{
    Vmx_controls v{};
    v.pin = c.pin.adjust(Vmx_pin::EXT_INTR | Vmx_pin::NMI | (c.vnmi ? Vmx_pin::VIRT_NMI : 0));
    Vmx_proc p = vmx_proc_controls(c, cfg, 0, 0, false, false);
    v.cpu1 = p.cpu1;
    v.cpu2 = p.cpu2;
    v.exit = c.exit.adjust(Vmx_exit_ctl::HOST_64 | Vmx_exit_ctl::SAVE_DEBUG | Vmx_exit_ctl::SAVE_PAT |
                           Vmx_exit_ctl::LOAD_PAT | Vmx_exit_ctl::SAVE_EFER | Vmx_exit_ctl::LOAD_EFER);
    v.entry = c.entry.adjust(Vmx_entry_ctl::LOAD_DEBUG | Vmx_entry_ctl::LOAD_PAT | Vmx_entry_ctl::LOAD_EFER);
    return v;
}

u32 vmx_entry_controls(const Vmx_caps &c, u32 base_entry, u64 guest_efer)
{
    u32 e = base_entry & ~Vmx_entry_ctl::IA32E_GUEST;
    if (guest_efer & Efer::LMA)
        e |= Vmx_entry_ctl::IA32E_GUEST;
    return c.entry.adjust(e);
}

Vmx_proc vmx_proc_controls(const Vmx_caps &c, const Vmx_vcpu_cfg &cfg, u32 ctrl0, u32 ctrl1, bool intr_window,
                           bool nmi_window)
{
    u32 w1 = (ctrl0 & VMX_VMM_CPU1) | Vmx_cpu1::HLT | Vmx_cpu1::UNCOND_IO | Vmx_cpu1::SECONDARY;
    if (!cfg.vapic)
        w1 &= ~Vmx_cpu1::TPR_SHADOW;  // the virtual-APIC address would be host frame 0
    if (!cfg.io_bitmaps)
        w1 &= ~Vmx_cpu1::IO_BITMAPS;  // so would the I/O bitmaps
    if (intr_window)
        w1 |= Vmx_cpu1::INTR_WINDOW;
    if (nmi_window && c.vnmi)
        w1 |= Vmx_cpu1::NMI_WINDOW;  // needs virtual NMIs (26.2.1.1)
    w1 &= c.cpu1.may1;
    if (!(w1 & Vmx_cpu1::TPR_SHADOW))
        w1 |= Vmx_cpu1::CR8_LOAD | Vmx_cpu1::CR8_STORE;  // the guest must not reach the host's TPR
    Vmx_proc p;
    p.cpu1 = c.cpu1.adjust(w1);

    u32 w2 = (ctrl1 & VMX_VMM_CPU2) | Vmx_cpu2::EPT | Vmx_cpu2::UNRESTRICTED;
    if (cfg.vpid && c.vpid)
        w2 |= Vmx_cpu2::VPID;
    if (!cfg.apic_access)
        w2 &= ~Vmx_cpu2::VIRT_APIC_ACCESS;
    w2 &= c.cpu2.may1;
    if (!(p.cpu1 & Vmx_cpu1::TPR_SHADOW))
        w2 &= ~(Vmx_cpu2::VIRT_X2APIC | Vmx_cpu2::APIC_REG_VIRT | Vmx_cpu2::VIRT_INTR_DELIVERY);
    if (w2 & Vmx_cpu2::VIRT_APIC_ACCESS)
        w2 &= ~Vmx_cpu2::VIRT_X2APIC;  // the two exclude each other (26.2.1.1); the kernel's page wins
    p.cpu2 = c.cpu2.adjust(w2);
    return p;
}

Vmx_cr vmx_cr0(const Vmx_caps &c, u64 vmm_cr0, u64 cr0_mon, bool unrestricted)
{
    u64 fixed0 = c.cr0_fixed0 & ~(Cr0::CD | Cr0::NW);
    if (unrestricted)
        fixed0 &= ~(Cr0::PE | Cr0::PG);
    constexpr u64 owned = Cr0::CD | Cr0::NW;
    return {((vmm_cr0 | fixed0) & c.cr0_fixed1) & ~owned, vmm_cr0, fixed0 | ~c.cr0_fixed1 | owned | cr0_mon};
}

Vmx_cr vmx_cr4(const Vmx_caps &c, u64 vmm_cr4, u64 cr4_mon, u64 deny)
{
    deny &= ~c.cr4_fixed0;
    return {((vmm_cr4 | c.cr4_fixed0) & c.cr4_fixed1) & ~deny, vmm_cr4,
            c.cr4_fixed0 | ~c.cr4_fixed1 | deny | cr4_mon};
}

Vmx_injection vmx_injection(u32 intr_info, u32 intr_error, u64 inst_len)
{
    Vmx_injection r;
    r.intr_window = intr_info & Inj::REQ_INTR_WINDOW;
    r.nmi_window = intr_info & Inj::REQ_NMI_WINDOW;
    r.event.info = intr_info & ~(Inj::REQ_INTR_WINDOW | Inj::REQ_NMI_WINDOW);
    r.event.error = intr_error;
    r.event.inst_len = inst_len > ~u32{0} ? ~u32{0} : static_cast<u32>(inst_len);
    return r;
}

bool vmx_reinjection(u32 vect_info, u32 vect_error, u32 exit_inst_len, Vmx_event &out)
{
    if (!(vect_info & Vmx_intr::VALID))
        return false;
    // IDT-vectoring bit 12 is undefined and 30:13 are 0 (SDM 24.9.3); keep valid, type, error-code bit,
    // vector.
    out.info = vect_info & (Vmx_intr::VALID | Vmx_intr::ERROR_CODE | Vmx_intr::TYPE_MASK | Vmx_intr::VECTOR);
    out.error = vect_info & Vmx_intr::ERROR_CODE ? vect_error : 0;
    out.inst_len = sw_event(Vmx_intr::type(vect_info)) ? exit_inst_len : 0;
    return true;
}

u32 vmx_nmi_unblock_fixup(u32 exit_reason, u32 exit_intr_info, u64 qual, u32 vect_info, u32 intr_state,
                          bool vnmi)
{
    if (!vnmi || (vect_info & Vmx_intr::VALID))
        return intr_state;  // undefined: NMI exiting without virtual NMIs, or an event was being delivered
    bool unblocked = false;
    switch (exit_reason & Vmx_exit::BASIC_MASK) {
    case Vmx_exit::EXC_NMI:
        unblocked = (exit_intr_info & Vmx_intr::VALID) && (exit_intr_info & Vmx_intr::NMI_UNBLOCK) &&
                    !(Vmx_intr::type(exit_intr_info) == Vmx_intr::TYPE_HW_EXC &&
                      (exit_intr_info & Vmx_intr::VECTOR) == 8);  // #DF: undefined
        break;
    case Vmx_exit::EPT_VIOLATION:
    case Vmx_exit::PML_FULL:
    case Vmx_exit::SPP: unblocked = qual & Vmx_intr::NMI_UNBLOCK; break;
    default: break;
    }
    return unblocked ? intr_state | Vmx_intr_state::NMI : intr_state;
}

Xcr0_check xcr0_sanitise(u64 guest, u64 host)
{
    u64 v = guest | XCR0_X87;
    if (v & XCR0_AVX)
        v |= XCR0_SSE;
    bool ok = !(v & ~host);
    ok = ok && !(v & XCR0_BNDREGS) == !(v & XCR0_BNDCSR);
    ok = ok && (!(v & XCR0_AVX512) || ((v & XCR0_AVX512) == XCR0_AVX512 && (v & XCR0_AVX)));
    ok = ok && !(v & XCR0_TILECFG) == !(v & XCR0_TILEDATA);
    return {ok, v};
}

u64 ept_leaf(u64 phys, unsigned level, unsigned rights, Ept::Mtype type, bool ignore_pat)
{
    if (!(rights & 7) || level > 2)
        return 0;
    u64 size = u64{1} << (PAGE_BITS + 9 * u64{level});
    u64 e = (phys & Ept::ADDR & ~(size - 1)) | Ept::R | u64{type} << Ept::MEMTYPE_SHIFT |
            (ignore_pat ? Ept::IGNORE_PAT : 0);
    if (rights & 2)
        e |= Ept::W;
    if (rights & 4)
        e |= Ept::X;
    if (level)
        e |= Ept::LARGE;
    return e;
}

unsigned ept_max_level(const Vmx_caps &c) { return c.ept_1g ? 2 : c.ept_2m ? 1 : 0; }

Ept::Mtype ept_mtype_from_pte(u64 pte, bool large, u64 host_pat)
{
    unsigned pat_bit = large ? 12 : 7;
    unsigned idx = static_cast<unsigned>((pte >> pat_bit & 1) << 2 | (pte & Pte::PCD ? 2 : 0) |
                                         (pte & Pte::PWT ? 1 : 0));
    switch (host_pat >> (8 * idx) & 7) {
    case Ept::WC: return Ept::WC;
    case Ept::WT: return Ept::WT;
    case Ept::WP: return Ept::WP;
    case Ept::WB: return Ept::WB;
    default: return Ept::UC;  // UC, UC- (7) and the reserved 2 and 3
    }
}

Vmx_rule vmx_check_injection(const Vmx_caps &c, const Vmx_controls &ctl, u64 guest_cr0, u32 info, u32 error,
                             u32 inst_len)
{
    if (!(info & Vmx_intr::VALID))
        return Vmx_rule::NONE;
    u32 type = Vmx_intr::type(info), vec = info & Vmx_intr::VECTOR;
    if (type == 1u << 8 || (type == Vmx_intr::TYPE_OTHER && !c.cpu1.can(Vmx_cpu1::MTF)))
        return Vmx_rule::INJ_TYPE;
    if ((type == Vmx_intr::TYPE_NMI && vec != 2) || (type == Vmx_intr::TYPE_HW_EXC && vec > 31) ||
        (type == Vmx_intr::TYPE_OTHER && vec != 0))
        return Vmx_rule::INJ_VECTOR;
    bool urg = (ctl.cpu1 & Vmx_cpu1::SECONDARY) && (ctl.cpu2 & Vmx_cpu2::UNRESTRICTED);
    bool pe = !urg || (guest_cr0 & Cr0::PE);
    bool any = c.basic & Vmx_basic::ANY_ERROR_CODE;
    bool err_vec = vec == 8 || (vec >= 10 && vec <= 14) || vec == 17;
    bool hw = type == Vmx_intr::TYPE_HW_EXC;
    bool must1 = hw && pe && !any && err_vec;
    bool must0 = !hw || !pe || (!any && !err_vec);
    bool has = info & Vmx_intr::ERROR_CODE;
    if ((has && must0) || (!has && must1))
        return Vmx_rule::INJ_ERROR_CODE_BIT;
    if (info & 0x7ffff000)
        return Vmx_rule::INJ_RESERVED;
    if (has && (error >> 16))
        return Vmx_rule::INJ_ERROR_CODE;
    if (sw_event(type) && (inst_len > 15 || (inst_len == 0 && !(c.misc & Vmx_misc::ZERO_INST_LEN))))
        return Vmx_rule::INJ_INST_LEN;
    return Vmx_rule::NONE;
}

namespace {
Vmx_violation check_controls(const Vmx_caps &c, const Vmx_control_state &k, u64 guest_cr0)
{
    const Vmx_controls &ctl = k.ctl;
    unsigned pb = c.phys_bits;
    // 26.2.1.1 VM-execution controls.
    if (!c.pin.valid(ctl.pin))
        return bad(Vmx_rule::CTL_PIN_RESERVED);
    if (!c.cpu1.valid(ctl.cpu1))
        return bad(Vmx_rule::CTL_CPU1_RESERVED);
    if ((ctl.cpu1 & Vmx_cpu1::SECONDARY) && !c.cpu2.valid(ctl.cpu2))
        return bad(Vmx_rule::CTL_CPU2_RESERVED);
    u32 cpu1 = ctl.cpu1, pin = ctl.pin, cpu2 = cpu1 & Vmx_cpu1::SECONDARY ? ctl.cpu2 : 0;
    if (k.cr3_target_count > (c.misc >> Vmx_misc::CR3_TARGETS_SHIFT & Vmx_misc::CR3_TARGETS_MASK))
        return bad(Vmx_rule::CTL_CR3_TARGET_COUNT);
    if ((cpu1 & Vmx_cpu1::IO_BITMAPS) && (!page_ok(k.io_bitmap_a, pb) || !page_ok(k.io_bitmap_b, pb)))
        return bad(Vmx_rule::CTL_IO_BITMAP_ADDR);
    if ((cpu1 & Vmx_cpu1::MSR_BITMAPS) && !page_ok(k.msr_bitmap, pb))
        return bad(Vmx_rule::CTL_MSR_BITMAP_ADDR);
    if (cpu1 & Vmx_cpu1::TPR_SHADOW) {
        if (!page_ok(k.vapic_addr, pb))
            return bad(Vmx_rule::CTL_VAPIC_ADDR);
        if (!(cpu2 & Vmx_cpu2::VIRT_INTR_DELIVERY)) {
            if (k.tpr_threshold >> 4)
                return bad(Vmx_rule::CTL_TPR_THRESHOLD_HIGH);
            if (!(cpu2 & Vmx_cpu2::VIRT_APIC_ACCESS) && (k.tpr_threshold & 0xf) > (k.vtpr >> 4 & 0xfu))
                return bad(Vmx_rule::CTL_TPR_THRESHOLD_VTPR);
        }
    } else if (cpu2 & (Vmx_cpu2::VIRT_X2APIC | Vmx_cpu2::APIC_REG_VIRT | Vmx_cpu2::VIRT_INTR_DELIVERY))
        return bad(Vmx_rule::CTL_APICV_WITHOUT_TPR_SHADOW);
    if (!(pin & Vmx_pin::NMI) && (pin & Vmx_pin::VIRT_NMI))
        return bad(Vmx_rule::CTL_VNMI_WITHOUT_NMI_EXITING);
    if (!(pin & Vmx_pin::VIRT_NMI) && (cpu1 & Vmx_cpu1::NMI_WINDOW))
        return bad(Vmx_rule::CTL_NMI_WINDOW_WITHOUT_VNMI);
    if ((cpu2 & Vmx_cpu2::VIRT_APIC_ACCESS) && !page_ok(k.apic_access_addr, pb))
        return bad(Vmx_rule::CTL_APIC_ACCESS_ADDR);
    if ((cpu2 & Vmx_cpu2::VIRT_X2APIC) && (cpu2 & Vmx_cpu2::VIRT_APIC_ACCESS))
        return bad(Vmx_rule::CTL_X2APIC_AND_APIC_ACCESS);
    if ((cpu2 & Vmx_cpu2::VIRT_INTR_DELIVERY) && !(pin & Vmx_pin::EXT_INTR))
        return bad(Vmx_rule::CTL_VID_WITHOUT_EXT_INTR);
    if ((pin & Vmx_pin::POSTED_INTR) &&
        (!(cpu2 & Vmx_cpu2::VIRT_INTR_DELIVERY) || !(ctl.exit & Vmx_exit_ctl::ACK_INTR) ||
         (k.posted_intr_vector >> 8) || (k.posted_intr_desc & 0x3f) || !fits(k.posted_intr_desc, pb)))
        return bad(Vmx_rule::CTL_POSTED_INTR);
    if ((cpu2 & Vmx_cpu2::VPID) && !k.vpid)
        return bad(Vmx_rule::CTL_VPID_ZERO);
    if (cpu2 & Vmx_cpu2::EPT) {
        u64 mt = k.eptp & 7, walk = k.eptp >> Ept::EPTP_WALK_SHIFT & 7;
        if (!((mt == Ept::UC && (c.ept_vpid & Vmx_ept_cap::MEMTYPE_UC)) ||
              (mt == Ept::WB && (c.ept_vpid & Vmx_ept_cap::MEMTYPE_WB))))
            return bad(Vmx_rule::CTL_EPTP_MEMTYPE);
        if (!((walk == 3 && (c.ept_vpid & Vmx_ept_cap::WALK_4)) ||
              (walk == 4 && (c.ept_vpid & Vmx_ept_cap::WALK_5))))
            return bad(Vmx_rule::CTL_EPTP_WALK);
        if ((k.eptp & Ept::EPTP_AD) && !(c.ept_vpid & Vmx_ept_cap::AD_FLAGS))
            return bad(Vmx_rule::CTL_EPTP_AD);
        if ((k.eptp & 0xf00) || ((k.eptp & Ept::EPTP_SSS) && !(c.ept_vpid & Vmx_ept_cap::SSS)) ||
            !fits(k.eptp, pb))
            return bad(Vmx_rule::CTL_EPTP_RESERVED);
    }
    if ((cpu2 & Vmx_cpu2::UNRESTRICTED) && !(cpu2 & Vmx_cpu2::EPT))
        return bad(Vmx_rule::CTL_URG_WITHOUT_EPT);
    if ((cpu2 & (Vmx_cpu2::PML | Vmx_cpu2::EPT_MODE_EXEC | Vmx_cpu2::EPT_SPP)) && !(cpu2 & Vmx_cpu2::EPT))
        return bad(Vmx_rule::CTL_EPT_FEATURE_WITHOUT_EPT);

    // 26.2.1.2 VM-exit controls.
    if (!c.exit.valid(ctl.exit))
        return bad(Vmx_rule::CTL_EXIT_RESERVED);
    if (!(pin & Vmx_pin::PREEMPT_TIMER) && (ctl.exit & Vmx_exit_ctl::SAVE_PREEMPT_TIMER))
        return bad(Vmx_rule::CTL_SAVE_TIMER_WITHOUT_TIMER);
    if (!msr_area_ok(k.exit_msr_store_count, k.exit_msr_store_addr, pb))
        return bad(Vmx_rule::CTL_EXIT_MSR_STORE_ADDR);
    if (!msr_area_ok(k.exit_msr_load_count, k.exit_msr_load_addr, pb))
        return bad(Vmx_rule::CTL_EXIT_MSR_LOAD_ADDR);

    // 26.2.1.3 VM-entry controls.
    if (!c.entry.valid(ctl.entry))
        return bad(Vmx_rule::CTL_ENTRY_RESERVED);
    Vmx_rule inj = vmx_check_injection(c, ctl, guest_cr0, k.entry_intr_info, k.entry_error, k.entry_inst_len);
    if (inj != Vmx_rule::NONE)
        return bad(inj);
    if (!msr_area_ok(k.entry_msr_load_count, k.entry_msr_load_addr, pb))
        return bad(Vmx_rule::CTL_ENTRY_MSR_LOAD_ADDR);
    if (ctl.entry & (Vmx_entry_ctl::ENTRY_SMM | Vmx_entry_ctl::DEACT_DUAL_MONITOR))
        return bad(Vmx_rule::CTL_ENTRY_SMM);
    return OK;
}

Vmx_violation check_host(const Vmx_caps &c, const Vmx_host_state &h, u32 exit)
{
    unsigned lb = c.linear_bits;
    // 26.2.2 control registers and MSRs.
    if (!fixed_ok(h.cr0, c.cr0_fixed0, c.cr0_fixed1))
        return bad(Vmx_rule::HOST_CR0_FIXED);
    if (!fixed_ok(h.cr4, c.cr4_fixed0, c.cr4_fixed1))
        return bad(Vmx_rule::HOST_CR4_FIXED);
    if ((h.cr4 & CR4_CET) && !(h.cr0 & Cr0::WP))
        return bad(Vmx_rule::HOST_CR4_CET_WP);
    if (!fits(h.cr3, c.phys_bits))
        return bad(Vmx_rule::HOST_CR3_WIDTH);
    if (!canonical(h.sysenter_esp, lb) || !canonical(h.sysenter_eip, lb))
        return bad(Vmx_rule::HOST_SYSENTER_CANONICAL);
    if ((exit & Vmx_exit_ctl::LOAD_PAT) && !pat_ok(h.pat))
        return bad(Vmx_rule::HOST_PAT);
    bool host64 = exit & Vmx_exit_ctl::HOST_64;
    if (exit & Vmx_exit_ctl::LOAD_EFER) {
        if (h.efer & ~EFER_VALID)
            return bad(Vmx_rule::HOST_EFER_RESERVED);
        if (!(h.efer & Efer::LMA) == host64 || !(h.efer & Efer::LME) == host64)
            return bad(Vmx_rule::HOST_EFER_LMA_LME);
    }
    // 26.2.3 segment and descriptor-table registers.
    const u16 sels[] = {h.es, h.cs, h.ss, h.ds, h.fs, h.gs, h.tr};
    for (u16 sel : sels)
        if (sel & 7)
            return bad(Vmx_rule::HOST_SEL_RPL_TI);
    if (!h.cs)
        return bad(Vmx_rule::HOST_CS_NULL);
    if (!h.tr)
        return bad(Vmx_rule::HOST_TR_NULL);
    const u64 bases[] = {h.fs_base, h.gs_base, h.gdtr_base, h.idtr_base, h.tr_base};
    for (u64 base : bases)
        if (!canonical(base, lb))
            return bad(Vmx_rule::HOST_BASE_CANONICAL);
    // 26.2.4 address-space size: this kernel always runs in IA-32e mode.
    if (!host64)
        return bad(Vmx_rule::HOST_ADDR_SIZE);
    if (!(h.cr4 & Cr4::PAE))
        return bad(Vmx_rule::HOST_PAE);
    if (!canonical(h.rip, lb))
        return bad(Vmx_rule::HOST_RIP_CANONICAL);
    return OK;
}

/* 26.3.1.2: the segment registers. */
Vmx_violation check_segments(const Vmx_guest_state &g, bool urg, bool ia32e, unsigned lb)
{
    const Vmx_seg *s = g.seg;
    using namespace Vmcs;
    bool v86 = g.rflags & RFLAGS_VM;
    const Seg data[] = {DS, ES, FS, GS};
    const Seg cs_to_gs[] = {ES, CS, SS, DS, FS, GS};  // the registers with base, limit and AR checks
    const Seg code_data[] = {CS, SS, DS, ES, FS, GS};
    const Seg tr_fs_gs[] = {TR, FS, GS};
    const Seg ss_ds_es[] = {SS, DS, ES};

    // Selectors.
    if (s[TR].sel & 4)
        return bad(Vmx_rule::G_TR_TI, TR);
    if (usable(s[LDTR]) && (s[LDTR].sel & 4))
        return bad(Vmx_rule::G_LDTR_TI, LDTR);
    if (!v86 && !urg && (s[SS].sel & 3) != (s[CS].sel & 3))
        return bad(Vmx_rule::G_SS_CS_RPL, SS);

    // Bases.
    if (v86)
        for (Seg r : cs_to_gs)
            if (s[r].base != u64{s[r].sel} << 4)
                return bad(Vmx_rule::G_V86_BASE, r);
    for (Seg r : tr_fs_gs)
        if (!canonical(s[r].base, lb))
            return bad(Vmx_rule::G_BASE_CANONICAL, r);
    if (usable(s[LDTR]) && !canonical(s[LDTR].base, lb))
        return bad(Vmx_rule::G_BASE_CANONICAL, LDTR);
    if (s[CS].base >> 32)
        return bad(Vmx_rule::G_BASE_HIGH, CS);
    for (Seg r : ss_ds_es)
        if (usable(s[r]) && (s[r].base >> 32))
            return bad(Vmx_rule::G_BASE_HIGH, r);

    if (v86) {
        for (Seg r : cs_to_gs)
            if (s[r].limit != 0xffff)
                return bad(Vmx_rule::G_V86_LIMIT, r);
        for (Seg r : cs_to_gs)
            if (s[r].ar != 0xf3)
                return bad(Vmx_rule::G_V86_AR, r);
    } else {
        // Types.
        u32 cst = seg_type(s[CS]);
        if (!(cst == 9 || cst == 11 || cst == 13 || cst == 15 || (urg && cst == 3)))
            return bad(Vmx_rule::G_CS_TYPE, CS);
        if (usable(s[SS]) && seg_type(s[SS]) != 3 && seg_type(s[SS]) != 7)
            return bad(Vmx_rule::G_SS_TYPE, SS);
        for (Seg r : data) {
            u32 t = seg_type(s[r]);
            if (usable(s[r]) && (!(t & 1) || ((t & 8) && !(t & 2))))
                return bad(Vmx_rule::G_DATA_TYPE, r);
        }
        // S.
        for (Seg r : code_data)
            if ((r == CS || usable(s[r])) && !(s[r].ar & Vmx_ar::S))
                return bad(Vmx_rule::G_SEG_S, r);
        // DPL.
        u32 cs_dpl = Vmx_ar::dpl(s[CS].ar), ss_dpl = Vmx_ar::dpl(s[SS].ar);
        if ((cst == 3 && cs_dpl != 0) || ((cst == 9 || cst == 11) && cs_dpl != ss_dpl) ||
            ((cst == 13 || cst == 15) && cs_dpl > ss_dpl))
            return bad(Vmx_rule::G_CS_DPL, CS);
        if (!urg && ss_dpl != (s[SS].sel & 3u))
            return bad(Vmx_rule::G_SS_DPL_RPL, SS);
        if ((cst == 3 || !(g.cr0 & Cr0::PE)) && ss_dpl != 0)
            return bad(Vmx_rule::G_SS_DPL_ZERO, SS);
        if (!urg)
            for (Seg r : data)
                if (usable(s[r]) && seg_type(s[r]) <= 11 && Vmx_ar::dpl(s[r].ar) < (s[r].sel & 3u))
                    return bad(Vmx_rule::G_DATA_DPL, r);
        // P, reserved bits, L/D/B, G.
        for (Seg r : code_data)
            if ((r == CS || usable(s[r])) && !(s[r].ar & Vmx_ar::P))
                return bad(Vmx_rule::G_SEG_PRESENT, r);
        for (Seg r : code_data)
            if ((r == CS || usable(s[r])) && (s[r].ar & Vmx_ar::RESERVED))
                return bad(Vmx_rule::G_SEG_AR_RESERVED, r);
        if (ia32e && (s[CS].ar & Vmx_ar::L) && (s[CS].ar & Vmx_ar::DB))
            return bad(Vmx_rule::G_CS_L_DB, CS);
        for (Seg r : code_data)
            if ((r == CS || usable(s[r])) && !granularity_ok(s[r]))
                return bad(Vmx_rule::G_SEG_G, r);
    }

    // TR.
    u32 trt = seg_type(s[TR]);
    if (ia32e ? trt != 11 : (trt != 3 && trt != 11))
        return bad(Vmx_rule::G_TR_TYPE, TR);
    if (s[TR].ar & Vmx_ar::S)
        return bad(Vmx_rule::G_TR_S, TR);
    if (!(s[TR].ar & Vmx_ar::P))
        return bad(Vmx_rule::G_TR_PRESENT, TR);
    if (s[TR].ar & 0xf00)
        return bad(Vmx_rule::G_SEG_AR_RESERVED, TR);
    if (!granularity_ok(s[TR]))
        return bad(Vmx_rule::G_SEG_G, TR);
    if (!usable(s[TR]))
        return bad(Vmx_rule::G_TR_UNUSABLE, TR);
    if (s[TR].ar & Vmx_ar::RESERVED)
        return bad(Vmx_rule::G_SEG_AR_RESERVED, TR);

    // LDTR.
    if (usable(s[LDTR])) {
        if (seg_type(s[LDTR]) != 2)
            return bad(Vmx_rule::G_LDTR_TYPE, LDTR);
        if (s[LDTR].ar & Vmx_ar::S)
            return bad(Vmx_rule::G_LDTR_S, LDTR);
        if (!(s[LDTR].ar & Vmx_ar::P))
            return bad(Vmx_rule::G_LDTR_PRESENT, LDTR);
        if (s[LDTR].ar & 0xf00)
            return bad(Vmx_rule::G_SEG_AR_RESERVED, LDTR);
        if (!granularity_ok(s[LDTR]))
            return bad(Vmx_rule::G_SEG_G, LDTR);
        if (s[LDTR].ar & Vmx_ar::RESERVED)
            return bad(Vmx_rule::G_SEG_AR_RESERVED, LDTR);
    }
    return OK;
}

/* Whether an event may be injected in an activity state (26.3.1.5). */
constexpr bool injectable(u32 activity, u32 info)
{
    u32 type = Vmx_intr::type(info), vec = info & Vmx_intr::VECTOR;
    switch (activity) {
    case Vmx_activity::ACTIVE: return true;
    case Vmx_activity::HLT:
        return type == Vmx_intr::TYPE_EXTINT || type == Vmx_intr::TYPE_NMI ||
               (type == Vmx_intr::TYPE_HW_EXC && (vec == 1 || vec == 18)) ||
               (type == Vmx_intr::TYPE_OTHER && vec == 0);
    case Vmx_activity::SHUTDOWN:
        return type == Vmx_intr::TYPE_NMI || (type == Vmx_intr::TYPE_HW_EXC && vec == 18);
    default: return false;
    }
}

Vmx_violation check_guest(const Vmx_caps &c, const Vmx_control_state &k, const Vmx_guest_state &g)
{
    const Vmx_controls &ctl = k.ctl;
    unsigned lb = c.linear_bits, pb = c.phys_bits;
    u32 cpu2 = ctl.cpu1 & Vmx_cpu1::SECONDARY ? ctl.cpu2 : 0;
    bool urg = cpu2 & Vmx_cpu2::UNRESTRICTED, ia32e = ctl.entry & Vmx_entry_ctl::IA32E_GUEST;
    u32 inj = k.entry_intr_info;
    bool inj_valid = inj & Vmx_intr::VALID;
    bool inj_extint = inj_valid && Vmx_intr::type(inj) == Vmx_intr::TYPE_EXTINT;
    bool inj_nmi = inj_valid && Vmx_intr::type(inj) == Vmx_intr::TYPE_NMI;

    // 26.3.1.1 control registers, debug registers and MSRs. CD and NW are never checked.
    u64 cr0_f0 = c.cr0_fixed0 & ~(Cr0::CD | Cr0::NW), cr0_f1 = c.cr0_fixed1 | Cr0::CD | Cr0::NW;
    if (urg) {
        cr0_f0 &= ~(Cr0::PE | Cr0::PG);
        cr0_f1 |= Cr0::PE | Cr0::PG;
    }
    if (!fixed_ok(g.cr0, cr0_f0, cr0_f1))
        return bad(Vmx_rule::G_CR0_FIXED);
    if ((g.cr0 & Cr0::PG) && !(g.cr0 & Cr0::PE))
        return bad(Vmx_rule::G_CR0_PG_WITHOUT_PE);
    if (!fixed_ok(g.cr4, c.cr4_fixed0, c.cr4_fixed1))
        return bad(Vmx_rule::G_CR4_FIXED);
    if ((g.cr4 & CR4_CET) && !(g.cr0 & Cr0::WP))
        return bad(Vmx_rule::G_CR4_CET_WP);
    if ((ctl.entry & Vmx_entry_ctl::LOAD_DEBUG) && (g.debugctl & ~DEBUGCTL_VALID))
        return bad(Vmx_rule::G_DEBUGCTL);
    if (ia32e && (!(g.cr0 & Cr0::PG) || !(g.cr4 & Cr4::PAE)))
        return bad(Vmx_rule::G_IA32E_PG_PAE);
    if (!ia32e && (g.cr4 & Cr4::PCIDE))
        return bad(Vmx_rule::G_PCIDE_NOT_IA32E);
    if (!fits(g.cr3, pb))
        return bad(Vmx_rule::G_CR3_WIDTH);
    if ((ctl.entry & Vmx_entry_ctl::LOAD_DEBUG) && (g.dr7 >> 32))
        return bad(Vmx_rule::G_DR7_HIGH);
    if (!canonical(g.sysenter_esp, lb) || !canonical(g.sysenter_eip, lb))
        return bad(Vmx_rule::G_SYSENTER_CANONICAL);
    if ((ctl.entry & Vmx_entry_ctl::LOAD_PAT) && !pat_ok(g.pat))
        return bad(Vmx_rule::G_PAT);
    if (ctl.entry & Vmx_entry_ctl::LOAD_EFER) {
        if (g.efer & ~EFER_VALID)
            return bad(Vmx_rule::G_EFER_RESERVED);
        if (!(g.efer & Efer::LMA) == ia32e)
            return bad(Vmx_rule::G_EFER_LMA_IA32E);
        if ((g.cr0 & Cr0::PG) && !(g.efer & Efer::LMA) != !(g.efer & Efer::LME))
            return bad(Vmx_rule::G_EFER_LMA_LME);
    }

    Vmx_violation sv = check_segments(g, urg, ia32e, lb);
    if (sv.rule != Vmx_rule::NONE)
        return sv;

    // 26.3.1.3 descriptor-table registers.
    if (!canonical(g.gdtr_base, lb) || !canonical(g.idtr_base, lb))
        return bad(Vmx_rule::G_DTR_BASE);
    if ((g.gdtr_limit >> 16) || (g.idtr_limit >> 16))
        return bad(Vmx_rule::G_DTR_LIMIT);

    // 26.3.1.4 RIP and RFLAGS.
    if (!ia32e || !(g.seg[Vmcs::CS].ar & Vmx_ar::L)) {
        if (g.rip >> 32)
            return bad(Vmx_rule::G_RIP_HIGH);
    } else if (lb < 64) {
        i64 top = static_cast<i64>(g.rip) >> lb;  // bits 63:N identical
        if (top != 0 && top != -1)
            return bad(Vmx_rule::G_RIP_CANONICAL);
    }
    if ((g.rflags & RFLAGS_RESERVED0) || !(g.rflags & RFLAGS_RESERVED1))
        return bad(Vmx_rule::G_RFLAGS_RESERVED);
    if ((g.rflags & RFLAGS_VM) && (ia32e || !(g.cr0 & Cr0::PE)))
        return bad(Vmx_rule::G_RFLAGS_VM);
    if (inj_extint && !(g.rflags & RFLAGS_IF))
        return bad(Vmx_rule::G_RFLAGS_IF_INJ);

    // 26.3.1.5 non-register state: activity.
    u32 act = g.activity;
    if (act > Vmx_activity::WAIT_SIPI || (act && !(c.misc >> (5 + act) & 1)))
        return bad(Vmx_rule::G_ACTIVITY);
    if (act == Vmx_activity::HLT && Vmx_ar::dpl(g.seg[Vmcs::SS].ar) != 0)
        return bad(Vmx_rule::G_ACTIVITY_HLT_DPL);
    u32 is = g.intr_state;
    if ((is & (Vmx_intr_state::STI | Vmx_intr_state::MOV_SS)) && act != Vmx_activity::ACTIVE)
        return bad(Vmx_rule::G_ACTIVITY_BLOCKING);
    if (inj_valid && !injectable(act, inj))
        return bad(Vmx_rule::G_ACTIVITY_INJ);

    // Interruptibility.
    if (is & Vmx_intr_state::RESERVED)
        return bad(Vmx_rule::G_INTR_RESERVED);
    if ((is & Vmx_intr_state::STI) && (is & Vmx_intr_state::MOV_SS))
        return bad(Vmx_rule::G_INTR_STI_MOVSS);
    if ((is & Vmx_intr_state::STI) && !(g.rflags & RFLAGS_IF))
        return bad(Vmx_rule::G_INTR_STI_IF);
    if (inj_extint && (is & (Vmx_intr_state::STI | Vmx_intr_state::MOV_SS)))
        return bad(Vmx_rule::G_INTR_EXTINT);
    if (inj_nmi && (is & Vmx_intr_state::MOV_SS))
        return bad(Vmx_rule::G_INTR_NMI_MOVSS);
    if (is & Vmx_intr_state::SMI)
        return bad(Vmx_rule::G_INTR_SMI);
    if ((ctl.pin & Vmx_pin::VIRT_NMI) && inj_nmi && (is & Vmx_intr_state::NMI))
        return bad(Vmx_rule::G_INTR_VNMI);
    if ((is & Vmx_intr_state::ENCLAVE) && ((is & Vmx_intr_state::MOV_SS) || !c.sgx))
        return bad(Vmx_rule::G_INTR_ENCLAVE);

    // Pending debug exceptions.
    u64 pd = g.pending_dbg;
    if (pd & Vmx_pending_dbg::RESERVED)
        return bad(Vmx_rule::G_PDBG_RESERVED);
    if ((is & (Vmx_intr_state::STI | Vmx_intr_state::MOV_SS)) || act == Vmx_activity::HLT) {
        bool tf = g.rflags & RFLAGS_TF, btf = g.debugctl & DEBUGCTL_BTF;
        if (tf && !btf && !(pd & Vmx_pending_dbg::BS))
            return bad(Vmx_rule::G_PDBG_BS_SET);
        if ((!tf || btf) && (pd & Vmx_pending_dbg::BS))
            return bad(Vmx_rule::G_PDBG_BS_CLEAR);
    }
    if ((pd & Vmx_pending_dbg::RTM) &&
        ((pd & ~(Vmx_pending_dbg::RTM | Vmx_pending_dbg::ENABLED_BP)) ||
         !(pd & Vmx_pending_dbg::ENABLED_BP) || !c.rtm || (is & Vmx_intr_state::MOV_SS)))
        return bad(Vmx_rule::G_PDBG_RTM);

    // VMCS link pointer (its target's revision identifier cannot be checked here).
    if (g.link_ptr != ~u64{0} && !page_ok(g.link_ptr, pb))
        return bad(Vmx_rule::G_LINK_PTR);

    // 26.3.1.6 PDPTEs: PAE paging with EPT loads them from these fields.
    if ((g.cr0 & Cr0::PG) && (g.cr4 & Cr4::PAE) && !ia32e && (cpu2 & Vmx_cpu2::EPT)) {
        u64 reserved = 0x1e6 | (pb >= 64 ? 0 : ~u64{0} << pb);  // bits 2:1, 8:5, 63:MAXPHYADDR
        for (u64 p : g.pdpte)
            if ((p & 1) && (p & reserved))
                return bad(Vmx_rule::G_PDPTE);
    }
    return OK;
}
}  // namespace

Vmx_violation vmx_check_entry(const Vmx_caps &c, const Vmx_vmcs_image &v)
{
    Vmx_violation r = check_controls(c, v.c, v.g.cr0);
    if (r.rule == Vmx_rule::NONE)
        r = check_host(c, v.h, v.c.ctl.exit);
    if (r.rule == Vmx_rule::NONE)
        r = check_guest(c, v.c, v.g);
    return r;
}

const char *vmx_rule_section(Vmx_rule r)
{
    auto i = static_cast<size_t>(r);
    return i < static_cast<size_t>(Vmx_rule::COUNT) ? rule_sections[i] : "?";
}

const char *vmx_rule_text(Vmx_rule r)
{
    auto i = static_cast<size_t>(r);
    return i < static_cast<size_t>(Vmx_rule::COUNT) ? rule_texts[i] : "unknown rule";
}
