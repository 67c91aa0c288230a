// host-testable
/*
 * The VMCS side of VMX vCPUs (include/vmx_state.hpp, docs/vmx.md).
 */
#include "vmx_state.hpp"
#include "abi/constants.hpp"
#include "abi/mtd.hpp"
#include "mtd_xfer.hpp"
#include "x86.hpp"

using namespace Vmcs;
using Vmx_state::Host;

namespace {

constexpr u32 MSR_INDEX[Vmx_guest_msr::COUNT] = {Msr::STAR, Msr::LSTAR, Msr::FMASK, Msr::KERNEL_GS_BASE,
                                                 Msr::TSC_AUX};
constexpr Seg SEG_OF[] = {ES, CS, SS, DS, FS, GS, LDTR, TR};
constexpr u64 SEG_MTD[] = {Mtd::DS_ES, Mtd::CS_SS, Mtd::CS_SS, Mtd::DS_ES,
                           Mtd::FS_GS, Mtd::FS_GS, Mtd::LDTR,  Mtd::TR};  // the MTD bit of each, by Seg

Utcb_segment *utcb_seg(Utcb &u, Seg s)
{
    Utcb_segment *t[] = {&u.es, &u.cs, &u.ss, &u.ds, &u.fs, &u.gs, &u.ldtr, &u.tr};
    return t[s];
}
const Utcb_segment &utcb_seg(const Utcb &u, Seg s) { return *utcb_seg(const_cast<Utcb &>(u), s); }

void write_seg(const Vmcs_io &io, Seg s, const Vmx_seg &v)
{
    io.write(guest_sel(s), v.sel);
    io.write(guest_limit(s), v.limit);
    io.write(guest_ar(s), v.ar);
    io.write(guest_base(s), v.base);
}

Vmx_seg read_seg(const Vmcs_io &io, Seg s)
{
    return {static_cast<u16>(io.read(guest_sel(s))), static_cast<u32>(io.read(guest_limit(s))),
            static_cast<u32>(io.read(guest_ar(s))), io.read(guest_base(s))};
}

/* The value the guest and the VMM see of CR0/CR4: the shadow where the kernel owns the bit. */
u64 visible_cr(const Vmcs_io &io, u32 guest, u32 shadow, u32 mask)
{
    return vmx_cr_visible(io.read(guest), io.read(shadow), io.read(mask));
}

void write_cr0(const Vmcs_io &io, const Host &h, u64 value, u64 mon)
{
    Vmx_cr c = vmx_cr0(h.caps, value, mon, true);
    io.write(GUEST_CR0, c.guest);
    io.write(CR0_SHADOW, c.shadow);
    io.write(CR0_MASK, c.mask);
}

void write_cr4(const Vmcs_io &io, const Host &h, u64 value, u64 mon)
{
    Vmx_cr c = vmx_cr4(h.caps, value, mon, h.cr4_deny);
    io.write(GUEST_CR4, c.guest);
    io.write(CR4_SHADOW, c.shadow);
    io.write(CR4_MASK, c.mask);
}

void write_efer(const Vmcs_io &io, const Host &h, u64 efer)
{
    io.write(GUEST_EFER, efer);
    u32 base = vmx_base_controls(h.caps, Vmx_vcpu_cfg{}).entry;
    io.write(ENTRY_CONTROLS, vmx_entry_controls(h.caps, base, efer));
}
}  // namespace

Vmx_vcpu_cfg Vmx_state::cfg_of(const Vcpu &v)
{
    return {v.tag != 0, v.vapic_phys != 0, v.apic_access && v.vapic_phys, v.io_bitmaps};
}

void Vmx_state::write_proc_controls(const Vmcs_io &io, const Host &h, const Vcpu &v)
{
    Vmx_proc p = vmx_proc_controls(h.caps, cfg_of(v), v.ctrl0, v.ctrl1, v.intr_window, v.nmi_window);
    io.write(PROC_CONTROLS, p.cpu1);
    io.write(PROC_CONTROLS2, p.cpu2);
}

void Vmx_state::init(const Vmcs_io &io, const Host &h, Vcpu &v, u64 msrs_phys, u64 host_msrs_phys, u64 eptp,
                     u64 apic_access_phys)
{
    Vmx_controls k = vmx_base_controls(h.caps, cfg_of(v));
    io.write(PIN_CONTROLS, k.pin);
    io.write(EXIT_CONTROLS, k.exit);
    write_proc_controls(io, h, v);
    io.write(EXCEPTION_BITMAP, vmx_exc_bitmap(0));
    io.write(PF_ERROR_MASK, 0);
    io.write(PF_ERROR_MATCH, 0);
    io.write(CR3_TARGET_COUNT, 0);
    io.write(VMCS_LINK_PTR, ~u64{0});
    io.write(EPT_POINTER, eptp);
    io.write(VPID, v.tag);
    if (v.vapic_phys) {
        io.write(VIRTUAL_APIC_ADDR, v.vapic_phys);
        io.write(TPR_THRESHOLD, 0);
    }
    if (v.apic_access && v.vapic_phys)
        io.write(APIC_ACCESS_ADDR, apic_access_phys);

    // The guest's SYSCALL MSRs, KERNEL_GS_BASE and TSC_AUX: VMX does not switch them, so the
    // entry loads them from the vCPU's area, the exit stores them there and loads the host's.
    for (unsigned i = 0; i < Vmx_guest_msr::COUNT; i++)
        v.msrs[i] = Vmx_msr_entry{MSR_INDEX[i], 0, 0};
    io.write(ENTRY_MSR_LOAD_ADDR, msrs_phys);
    io.write(ENTRY_MSR_LOAD_COUNT, h.msrs);
    io.write(EXIT_MSR_STORE_ADDR, msrs_phys);
    io.write(EXIT_MSR_STORE_COUNT, h.msrs);
    io.write(EXIT_MSR_LOAD_ADDR, host_msrs_phys);
    io.write(EXIT_MSR_LOAD_COUNT, h.msrs);

    // The reset state (SDM 10.1.1), so that a startup reply with only RIP (and CS) starts a
    // real-mode guest, as on SVM.
    v.cr0_mon = v.cr4_mon = 0;
    write_cr0(io, h, Cr0::CD | Cr0::NW | (1u << 4), 0);  // ET
    write_cr4(io, h, 0, 0);
    io.write(GUEST_CR3, 0);
    v.cr2 = 0;
    write_efer(io, h, 0);
    io.write(GUEST_PAT, 0x0007040600070406ull);
    io.write(GUEST_DEBUGCTL, 0);
    io.write(GUEST_DR7, 0x400);
    io.write(GUEST_RFLAGS, 2);
    io.write(GUEST_RIP, 0xfff0);
    io.write(GUEST_RSP, 0);
    write_seg(io, CS, {0xf000, 0xffff, 0x9b, 0xffff0000});
    for (Seg s : SEG_OF)
        if (s != CS && s != LDTR && s != TR)
            write_seg(io, s, {0, 0xffff, 0x93, 0});
    write_seg(io, LDTR, {0, 0xffff, 0x82, 0});
    write_seg(io, TR, {0, 0xffff, 0x8b, 0});
    io.write(GUEST_GDTR_BASE, 0);
    io.write(GUEST_GDTR_LIMIT, 0xffff);
    io.write(GUEST_IDTR_BASE, 0);
    io.write(GUEST_IDTR_LIMIT, 0xffff);
    io.write(GUEST_SYSENTER_CS, 0);
    io.write(GUEST_SYSENTER_ESP, 0);
    io.write(GUEST_SYSENTER_EIP, 0);
    io.write(GUEST_INTERRUPTIBILITY, 0);
    io.write(GUEST_ACTIVITY, Vmx_activity::ACTIVE);
    io.write(GUEST_PENDING_DBG, 0);
    io.write(ENTRY_INTR_INFO, 0);
    io.write(ENTRY_EXC_ERROR, 0);
    io.write(ENTRY_INST_LEN, 0);
    io.write(TSC_OFFSET, 0);
    // Fields of controls the VMM may turn on (XSAVES, PAUSE-loop exiting, virtual-interrupt
    // delivery) get defined values; where the CPU lacks them the write fails harmlessly.
    io.write(XSS_EXIT_BITMAP, 0);
    io.write(PLE_GAP, 0);
    io.write(PLE_WINDOW, 0);
    io.write(GUEST_INTR_STATUS, 0);
    for (unsigned i = 0; i < 4; i++)
        io.write(eoi_exit_bitmap(i), 0);
    v.xcr0 = 1;
}

int Vmx_state::event_of(u32 exit_reason)
{
    u32 basic = exit_reason & Vmx_exit::BASIC_MASK;
    return basic < Abi::Vmi::SVM_NPT ? static_cast<int>(basic) : -1;
}

bool Vmx_state::host_nmi(u32 exit_reason, u32 info)
{
    return (exit_reason & Vmx_exit::BASIC_MASK) == Vmx_exit::EXC_NMI && (info & Vmx_intr::VALID) &&
           Vmx_intr::type(info) == Vmx_intr::TYPE_NMI;
}

bool Vmx_state::host_mce(u32 exit_reason, u32 info)
{
    if (exit_reason == (Vmx_exit::ENTRY_FAILURE | Vmx_exit::MACHINE_CHECK))
        return true;
    return (exit_reason & Vmx_exit::BASIC_MASK) == Vmx_exit::EXC_NMI && (info & Vmx_intr::VALID) &&
           Vmx_intr::type(info) == Vmx_intr::TYPE_HW_EXC && (info & Vmx_intr::VECTOR) == 18;
}

void Vmx_state::after_exit(const Vmcs_io &io, const Host &h, u32 exit_reason)
{
    u32 vect = static_cast<u32>(io.read(IDT_VECTORING_INFO));
    Vmx_event ev;
    if (vmx_reinjection(vect, static_cast<u32>(io.read(IDT_VECTORING_ERROR)),
                        static_cast<u32>(io.read(EXIT_INST_LEN)), ev)) {
        io.write(ENTRY_INTR_INFO, ev.info);
        io.write(ENTRY_EXC_ERROR, ev.error);
        io.write(ENTRY_INST_LEN, ev.inst_len);
        // An NMI whose delivery was interrupted left blocking by NMI set; injecting it with that
        // bit fails the entry (SDM 26.3.1.5, 31.7.1.2).
        if (h.caps.vnmi && Vmx_intr::type(ev.info) == Vmx_intr::TYPE_NMI) {
            u32 state = static_cast<u32>(io.read(GUEST_INTERRUPTIBILITY));
            if (state & Vmx_intr_state::NMI)
                io.write(GUEST_INTERRUPTIBILITY, state & ~Vmx_intr_state::NMI);
        }
        return;
    }
    if (!h.caps.vnmi)
        return;
    u32 state = static_cast<u32>(io.read(GUEST_INTERRUPTIBILITY));
    u32 fixed = vmx_nmi_unblock_fixup(exit_reason, static_cast<u32>(io.read(EXIT_INTR_INFO)),
                                      io.read(EXIT_QUALIFICATION), vect, state, true);
    if (fixed != state)
        io.write(GUEST_INTERRUPTIBILITY, fixed);
}

Vmx_vmcs_image Vmx_state::image(const Vmcs_io &io, u8 vtpr)
{
    auto r32 = [&](u32 f) { return static_cast<u32>(io.read(f)); };
    auto r16 = [&](u32 f) { return static_cast<u16>(io.read(f)); };
    Vmx_vmcs_image v{};
    Vmx_control_state &c = v.c;
    c.ctl = {r32(PIN_CONTROLS), r32(PROC_CONTROLS), r32(PROC_CONTROLS2), r32(EXIT_CONTROLS),
             r32(ENTRY_CONTROLS)};
    c.entry_intr_info = r32(ENTRY_INTR_INFO);
    c.entry_error = r32(ENTRY_EXC_ERROR);
    c.entry_inst_len = r32(ENTRY_INST_LEN);
    c.tpr_threshold = r32(TPR_THRESHOLD);
    c.vtpr = vtpr;
    c.vpid = r16(VPID);
    c.posted_intr_vector = r16(POSTED_INTR_VECTOR);
    c.cr3_target_count = r32(CR3_TARGET_COUNT);
    c.eptp = io.read(EPT_POINTER);
    c.io_bitmap_a = io.read(IO_BITMAP_A);
    c.io_bitmap_b = io.read(IO_BITMAP_B);
    c.msr_bitmap = io.read(MSR_BITMAP);
    c.vapic_addr = io.read(VIRTUAL_APIC_ADDR);
    c.apic_access_addr = io.read(APIC_ACCESS_ADDR);
    c.posted_intr_desc = io.read(POSTED_INTR_DESC);
    c.exit_msr_store_count = r32(EXIT_MSR_STORE_COUNT);
    c.exit_msr_load_count = r32(EXIT_MSR_LOAD_COUNT);
    c.entry_msr_load_count = r32(ENTRY_MSR_LOAD_COUNT);
    c.exit_msr_store_addr = io.read(EXIT_MSR_STORE_ADDR);
    c.exit_msr_load_addr = io.read(EXIT_MSR_LOAD_ADDR);
    c.entry_msr_load_addr = io.read(ENTRY_MSR_LOAD_ADDR);

    Vmx_host_state &h = v.h;
    h.cr0 = io.read(HOST_CR0);
    h.cr3 = io.read(HOST_CR3);
    h.cr4 = io.read(HOST_CR4);
    h.efer = io.read(HOST_EFER);
    h.pat = io.read(HOST_PAT);
    h.sysenter_esp = io.read(HOST_SYSENTER_ESP);
    h.sysenter_eip = io.read(HOST_SYSENTER_EIP);
    h.fs_base = io.read(HOST_FS_BASE);
    h.gs_base = io.read(HOST_GS_BASE);
    h.tr_base = io.read(HOST_TR_BASE);
    h.gdtr_base = io.read(HOST_GDTR_BASE);
    h.idtr_base = io.read(HOST_IDTR_BASE);
    h.rip = io.read(HOST_RIP);
    h.es = r16(HOST_ES_SEL);
    h.cs = r16(HOST_CS_SEL);
    h.ss = r16(HOST_SS_SEL);
    h.ds = r16(HOST_DS_SEL);
    h.fs = r16(HOST_FS_SEL);
    h.gs = r16(HOST_GS_SEL);
    h.tr = r16(HOST_TR_SEL);

    Vmx_guest_state &g = v.g;
    g.cr0 = io.read(GUEST_CR0);
    g.cr3 = io.read(GUEST_CR3);
    g.cr4 = io.read(GUEST_CR4);
    g.dr7 = io.read(GUEST_DR7);
    g.debugctl = io.read(GUEST_DEBUGCTL);
    g.efer = io.read(GUEST_EFER);
    g.pat = io.read(GUEST_PAT);
    g.sysenter_esp = io.read(GUEST_SYSENTER_ESP);
    g.sysenter_eip = io.read(GUEST_SYSENTER_EIP);
    for (Seg s : SEG_OF)
        g.seg[s] = read_seg(io, s);
    g.gdtr_base = io.read(GUEST_GDTR_BASE);
    g.idtr_base = io.read(GUEST_IDTR_BASE);
    g.gdtr_limit = r32(GUEST_GDTR_LIMIT);
    g.idtr_limit = r32(GUEST_IDTR_LIMIT);
    g.rip = io.read(GUEST_RIP);
    g.rflags = io.read(GUEST_RFLAGS);
    g.activity = r32(GUEST_ACTIVITY);
    g.intr_state = r32(GUEST_INTERRUPTIBILITY);
    g.pending_dbg = io.read(GUEST_PENDING_DBG);
    g.link_ptr = io.read(VMCS_LINK_PTR);
    for (unsigned i = 0; i < 4; i++)
        g.pdpte[i] = io.read(guest_pdpte(i));
    return v;
}

void Vmx_state::to_utcb(const Vmcs_io &io, const Exc_frame &r, const Vcpu &v, u64 mtd, Utcb &u)
{
    unsigned n = static_cast<unsigned>(r.vector);
    u.items = Utcb::EVENT_ITEMS;
    u.mtd = mtd;
    Mtd_xfer::copy_gprs(mtd, r, u);  // VMX switches no GPR but RSP: all of them are in the frame
    if (mtd & Mtd::RSP)
        u.rsp = io.read(GUEST_RSP);
    if (mtd & Mtd::RIP_LEN) {
        u.rip = io.read(GUEST_RIP);
        u.inst_len = io.read(EXIT_INST_LEN);
    }
    if (mtd & Mtd::RFLAGS)
        u.rflags = io.read(GUEST_RFLAGS);
    for (Seg s : SEG_OF) {
        if (mtd & SEG_MTD[s])
            *utcb_seg(u, s) = vmx_seg_to_utcb(read_seg(io, s));
    }
    if (mtd & Mtd::GDTR)
        u.gdtr = Utcb_segment{0, 0, static_cast<u32>(io.read(GUEST_GDTR_LIMIT)), io.read(GUEST_GDTR_BASE)};
    if (mtd & Mtd::IDTR)
        u.idtr = Utcb_segment{0, 0, static_cast<u32>(io.read(GUEST_IDTR_LIMIT)), io.read(GUEST_IDTR_BASE)};
    if (mtd & Mtd::CR) {
        u.cr0 = visible_cr(io, GUEST_CR0, CR0_SHADOW, CR0_MASK);
        u.cr2 = v.cr2;
        u.cr3 = io.read(GUEST_CR3);
        u.cr4 = visible_cr(io, GUEST_CR4, CR4_SHADOW, CR4_MASK);
        u.xcr0 = v.xcr0;
    }
    if (mtd & Mtd::DR)
        u.dr7 = io.read(GUEST_DR7);
    if (mtd & Mtd::SYSENTER) {
        u.sysenter_cs = io.read(GUEST_SYSENTER_CS);
        u.sysenter_rsp = io.read(GUEST_SYSENTER_ESP);
        u.sysenter_rip = io.read(GUEST_SYSENTER_EIP);
    }
    if (mtd & Mtd::QUAL) {
        u.qual[0] = io.read(EXIT_QUALIFICATION);
        u.qual[1] = io.read(GUEST_PHYS_ADDR);
    }
    if (mtd & Mtd::INJ) {  // ABI 5 note 2
        bool pending = n == Abi::Vmi::VMX_INVALID_STATE || n == Abi::Vmi::RECALL;
        u.intr_info = static_cast<u32>(io.read(pending ? ENTRY_INTR_INFO : EXIT_INTR_INFO));
        u.intr_error = static_cast<u32>(io.read(pending ? ENTRY_EXC_ERROR : EXIT_INTR_ERROR));
        u.vect_info = static_cast<u32>(io.read(IDT_VECTORING_INFO));
        u.vect_error = static_cast<u32>(io.read(IDT_VECTORING_ERROR));
    }
    if (mtd & Mtd::STA) {
        u.intr_state = static_cast<u32>(io.read(GUEST_INTERRUPTIBILITY));
        u.actv_state = static_cast<u32>(io.read(GUEST_ACTIVITY));
    }
    if (mtd & Mtd::TSC) {
        u.tsc_val = v.exit_tsc;
        u.tsc_off = io.read(TSC_OFFSET);
        u.tsc_aux = static_cast<u32>(v.msrs[Vmx_guest_msr::TSC_AUX].value);
    }
    if (mtd & Mtd::EFER_PAT) {
        u.efer = io.read(GUEST_EFER);
        u.pat = io.read(GUEST_PAT);
    }
    if (mtd & Mtd::PDPTE)
        for (unsigned i = 0; i < 4; i++)
            u.pdpte[i] = io.read(guest_pdpte(i));
    if (mtd & Mtd::SYSCALL_SWAPGS) {
        u.star = v.msrs[Vmx_guest_msr::STAR].value;
        u.lstar = v.msrs[Vmx_guest_msr::LSTAR].value;
        u.fmask = v.msrs[Vmx_guest_msr::FMASK].value;
        u.kernel_gs_base = v.msrs[Vmx_guest_msr::KERNEL_GS_BASE].value;
    }
    if (mtd & Mtd::VINTR)
        u.vintr_status = static_cast<u16>(io.read(GUEST_INTR_STATUS));
    if (mtd & Mtd::EOI)
        for (unsigned i = 0; i < 4; i++)
            u.eoi_bitmap[i] = io.read(eoi_exit_bitmap(i));
    if (mtd & Mtd::TPR)
        u.tpr_threshold = static_cast<u32>(io.read(TPR_THRESHOLD));
}

const char *Vmx_state::from_utcb(const Vmcs_io &io, const Host &h, const Utcb &u, Exc_frame &r, Vcpu &v)
{
    u64 mtd = u.mtd;
    if (mtd & Mtd::CR) {
        u64 host = h.xsave ? h.xcr0 : 1;
        Xcr0_check x = xcr0_sanitise(u.xcr0, host);
        if (!x.ok)
            return "Invalid XCR0";
        v.xcr0 = x.value;
    }
    Mtd_xfer::copy_gprs(mtd, u, r);
    if (mtd & Mtd::RSP)
        io.write(GUEST_RSP, u.rsp);
    if (mtd & Mtd::RIP_LEN) {
        io.write(GUEST_RIP, u.rip);
        io.write(ENTRY_INST_LEN, u.inst_len);
    }
    if (mtd & Mtd::RFLAGS)
        io.write(GUEST_RFLAGS, u.rflags);
    // Segments, descriptor tables and the guest's control registers are its own: what the CPU
    // rejects ends in an invalid-state event (33) for the VMM, never harms the host.
    for (Seg s : SEG_OF) {
        if (mtd & SEG_MTD[s])
            write_seg(io, s, vmx_seg_from_utcb(utcb_seg(u, s)));
    }
    if (mtd & Mtd::GDTR) {
        io.write(GUEST_GDTR_LIMIT, u.gdtr.limit);
        io.write(GUEST_GDTR_BASE, u.gdtr.base);
    }
    if (mtd & Mtd::IDTR) {
        io.write(GUEST_IDTR_LIMIT, u.idtr.limit);
        io.write(GUEST_IDTR_BASE, u.idtr.base);
    }
    bool proc = false;
    if (mtd & Mtd::CTRL) {
        v.ctrl0 = u.ctrl[0];
        v.ctrl1 = u.ctrl[1];
        io.write(EXCEPTION_BITMAP, vmx_exc_bitmap(u.exc_bitmap));
        v.cr0_mon = u.cr0_mon;
        v.cr4_mon = u.cr4_mon;
        proc = true;
        if (!(mtd & Mtd::CR)) {  // new intercepts on the values the guest has now
            write_cr0(io, h, visible_cr(io, GUEST_CR0, CR0_SHADOW, CR0_MASK), v.cr0_mon);
            write_cr4(io, h, visible_cr(io, GUEST_CR4, CR4_SHADOW, CR4_MASK), v.cr4_mon);
        }
    }
    if (mtd & Mtd::CR) {
        write_cr0(io, h, u.cr0, v.cr0_mon);
        write_cr4(io, h, u.cr4, v.cr4_mon);
        v.cr2 = u.cr2;
        io.write(GUEST_CR3, u.cr3);
    }
    if (mtd & Mtd::DR)
        io.write(GUEST_DR7, u.dr7);
    if (mtd & Mtd::SYSENTER) {
        io.write(GUEST_SYSENTER_CS, u.sysenter_cs);
        io.write(GUEST_SYSENTER_ESP, u.sysenter_rsp);
        io.write(GUEST_SYSENTER_EIP, u.sysenter_rip);
    }
    if (mtd & Mtd::INJ) {
        Vmx_injection j = vmx_injection(u.intr_info, u.intr_error, u.inst_len);
        v.intr_window = j.intr_window;
        v.nmi_window = j.nmi_window;
        io.write(ENTRY_INTR_INFO, j.event.info);
        io.write(ENTRY_EXC_ERROR, j.event.error);
        io.write(ENTRY_INST_LEN, j.event.inst_len);
        proc = true;
    }
    if (proc)
        write_proc_controls(io, h, v);
    if (mtd & Mtd::STA) {
        io.write(GUEST_INTERRUPTIBILITY, u.intr_state);
        io.write(GUEST_ACTIVITY, u.actv_state);
    }
    if (mtd & Mtd::TSC) {
        io.write(TSC_OFFSET, u.tsc_off);  // absolute on VMX (ABI 5)
        v.msrs[Vmx_guest_msr::TSC_AUX].value = u.tsc_aux;
    }
    if (mtd & Mtd::EFER_PAT) {
        write_efer(io, h, u.efer);
        io.write(GUEST_PAT, u.pat);
    }
    if (mtd & Mtd::PDPTE)
        for (unsigned i = 0; i < 4; i++)
            io.write(guest_pdpte(i), u.pdpte[i]);
    if (mtd & Mtd::SYSCALL_SWAPGS) {
        v.msrs[Vmx_guest_msr::STAR].value = u.star;
        v.msrs[Vmx_guest_msr::LSTAR].value = u.lstar;
        v.msrs[Vmx_guest_msr::FMASK].value = u.fmask;
        v.msrs[Vmx_guest_msr::KERNEL_GS_BASE].value = u.kernel_gs_base;
    }
    if (mtd & Mtd::VINTR)
        io.write(GUEST_INTR_STATUS, u.vintr_status);
    if (mtd & Mtd::EOI)
        for (unsigned i = 0; i < 4; i++)
            io.write(eoi_exit_bitmap(i), u.eoi_bitmap[i]);
    if (mtd & Mtd::TPR)
        io.write(TPR_THRESHOLD, u.tpr_threshold);
    if (mtd & Mtd::TLB)
        v.flush_tlb = true;
    return nullptr;
}
