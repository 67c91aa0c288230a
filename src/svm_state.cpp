// host-testable
/*
 * The pure part of SVM vCPUs (include/svm_state.hpp).
 */
#include "svm_state.hpp"
#include "abi/constants.hpp"
#include "abi/mtd.hpp"
#include "mtd_xfer.hpp"
#include "string.hpp"
#include "x86.hpp"

using namespace Svm_bits;

namespace {
void seg_reset(Vmcb_segment &s, u16 attr)
{
    s.sel = 0;
    s.attr = attr;
    s.limit = 0xffff;
    s.base = 0;
}
}  // namespace

void Svm_state::init(Vmcb &m, u64 iopm_phys, u64 msrpm_phys)
{
    memset(&m, 0, sizeof m);
    m.intercept_exc = FORCED_EXC;
    m.intercept[0] = FORCED0;
    m.intercept[1] = FORCED1;
    m.iopm = iopm_phys;
    m.msrpm = msrpm_phys;
    m.int_ctl = V_INTR_MASKING;  // the guest's IF masks only virtual interrupts
    m.np_ctl = 1;
    // The processor's reset state (APM 14.1.3), so that a startup reply with only a RIP (and
    // CS) starts a real-mode guest; the VMM usually sets all of it.
    m.efer = EFER_SVME;
    m.cr0 = Cr0::CD | Cr0::NW | (1u << 4);  // ET
    m.rflags = 2;
    m.rip = 0xfff0;
    m.cs = Vmcb_segment{0xf000, 0x9b, 0xffff, 0xffff0000};
    seg_reset(m.ds, 0x93);
    seg_reset(m.es, 0x93);
    seg_reset(m.fs, 0x93);
    seg_reset(m.gs, 0x93);
    seg_reset(m.ss, 0x93);
    seg_reset(m.ldtr, 0x82);
    seg_reset(m.tr, 0x8b);
    m.gdtr.limit = m.idtr.limit = 0xffff;
    m.dr6 = 0xffff0ff0;
    m.dr7 = 0x400;
    m.g_pat = 0x0007040600070406ull;
}

int Svm_state::event_of(u64 code)
{
    if (static_cast<u32>(code) == EXIT_INVALID)
        return Abi::Vmi::SVM_INVALID_STATE;
    if (code == EXIT_NPF)
        return Abi::Vmi::SVM_NPT;
    if (code < Abi::Vmi::SVM_NPT)
        return static_cast<int>(code);
    return -1;
}

/*
 * An event whose delivery the exit interrupted (EXITINTINFO) is injected again at the next entry,
 * after every kind of exit: external interrupts, NMIs and hardware exceptions. A software
 * interrupt (INT n) and #BP/#OF (INT3, INTO) are not: the guest's RIP is still at the
 * instruction, which raises them again. After a failed VMRUN nothing was injected: EVENTINJ stays
 * what the VMM sees (ABI 5 note 2).
 */
void Svm_state::after_exit(Vmcb &m)
{
    if (static_cast<u32>(m.exitcode) == EXIT_INVALID)
        return;
    m.eventinj = 0;
    u64 ii = m.exitintinfo;
    if (!(ii & EV_VALID))
        return;
    u64 type = (ii & EV_TYPE_MASK) >> EV_TYPE_SHIFT, vec = ii & 0xff;
    if (type == EV_INTR || type == EV_NMI || (type == EV_EXC && vec != 3 && vec != 4))
        m.eventinj = ii;
}

bool Svm_state::xcr0_valid(u64 x, const Host &h)
{
    constexpr u64 X87 = 1, SSE = 2, AVX = 4;
    if (!h.xsave)
        return x == X87;
    return (x & X87) && !(x & ~h.xcr0) && (!(x & AVX) || (x & SSE));
}

void Svm_state::to_utcb(const Vmcb &m, const Exc_frame &r, const Vcpu &v, u64 mtd, bool nrip_save, Utcb &u)
{
    unsigned n = static_cast<unsigned>(r.vector);
    u.items = Utcb::EVENT_ITEMS;
    u.mtd = mtd;
    Mtd_xfer::copy_gprs(mtd, r, u);
    if (mtd & Mtd::GPR_ACDB)
        u.rax = m.rax;  // VMRUN switches RAX: the frame's is not the guest's
    if (mtd & Mtd::RSP)
        u.rsp = m.rsp;
    if (mtd & Mtd::RIP_LEN) {
        u.rip = m.rip;
        // The instruction's length where the CPU tells the next RIP (NRIP save; IOIO always).
        u64 next = nrip_save ? m.nrip : m.exitcode == EXIT_IOIO ? m.exitinfo2 : 0;
        u.inst_len = next > m.rip && next - m.rip <= 15 ? next - m.rip : 0;
    }
    if (mtd & Mtd::RFLAGS)
        u.rflags = m.rflags;
    if (mtd & Mtd::DS_ES) {
        memcpy(&u.ds, &m.ds, sizeof u.ds);
        memcpy(&u.es, &m.es, sizeof u.es);
    }
    if (mtd & Mtd::FS_GS) {
        memcpy(&u.fs, &m.fs, sizeof u.fs);
        memcpy(&u.gs, &m.gs, sizeof u.gs);
    }
    if (mtd & Mtd::CS_SS) {
        memcpy(&u.cs, &m.cs, sizeof u.cs);
        memcpy(&u.ss, &m.ss, sizeof u.ss);
    }
    if (mtd & Mtd::TR)
        memcpy(&u.tr, &m.tr, sizeof u.tr);
    if (mtd & Mtd::LDTR)
        memcpy(&u.ldtr, &m.ldtr, sizeof u.ldtr);
    if (mtd & Mtd::GDTR)
        u.gdtr = Utcb_segment{0, 0, m.gdtr.limit, m.gdtr.base};
    if (mtd & Mtd::IDTR)
        u.idtr = Utcb_segment{0, 0, m.idtr.limit, m.idtr.base};
    if (mtd & Mtd::CR) {
        u.cr0 = m.cr0;
        u.cr2 = m.cr2;
        u.cr3 = m.cr3;
        u.cr4 = m.cr4;
        u.xcr0 = v.xcr0;
    }
    if (mtd & Mtd::DR)
        u.dr7 = m.dr7;
    if (mtd & Mtd::SYSENTER) {
        u.sysenter_cs = m.sysenter_cs;
        u.sysenter_rsp = m.sysenter_esp;
        u.sysenter_rip = m.sysenter_eip;
    }
    if (mtd & Mtd::QUAL) {
        u.qual[0] = m.exitinfo1;
        u.qual[1] = m.exitinfo2;
    }
    if (mtd & Mtd::INJ)  // ABI 5 note 2: the pending injection for invalid state and recall
        u.inj = n == Abi::Vmi::SVM_INVALID_STATE || n == Abi::Vmi::RECALL ? m.eventinj : m.exitintinfo;
    if (mtd & Mtd::STA) {
        u.intr_state = static_cast<u32>(m.int_shadow & 1);
        u.actv_state = 0;
    }
    if (mtd & Mtd::TSC) {
        u.tsc_val = v.exit_tsc;
        u.tsc_off = m.tsc_offset;
    }
    if (mtd & Mtd::EFER_PAT) {  // PAT too: our extension (docs/virtualization.md)
        u.efer = m.efer;
        u.pat = m.g_pat;
    }
    if (mtd & Mtd::SYSCALL_SWAPGS) {  // our extension on SVM
        u.star = m.star;
        u.lstar = m.lstar;
        u.fmask = m.sfmask;
        u.kernel_gs_base = m.kernel_gs_base;
    }
}

const char *Svm_state::from_utcb(const Utcb &u, Vmcb &m, Exc_frame &r, Vcpu &v, const Host &h)
{
    u64 mtd = u.mtd;
    if (mtd & Mtd::CR) {
        if (!xcr0_valid(u.xcr0, h))
            return "Invalid XCR0";
        v.xcr0 = u.xcr0;
        m.cr0 = u.cr0;
        m.cr2 = u.cr2;
        m.cr3 = u.cr3;
        m.cr4 = u.cr4;
    }
    Mtd_xfer::copy_gprs(mtd, u, r);
    if (mtd & Mtd::GPR_ACDB)
        m.rax = u.rax;
    if (mtd & Mtd::RSP)
        m.rsp = u.rsp;
    if (mtd & Mtd::RIP_LEN)
        m.rip = u.rip;
    if (mtd & Mtd::RFLAGS)
        m.rflags = u.rflags;
    // Segments, descriptor tables, control and debug registers are the guest's own: what the
    // CPU rejects ends in an invalid-state event (253) for the VMM, never harms the host.
    if (mtd & Mtd::DS_ES) {
        memcpy(&m.ds, &u.ds, sizeof m.ds);
        memcpy(&m.es, &u.es, sizeof m.es);
    }
    if (mtd & Mtd::FS_GS) {
        memcpy(&m.fs, &u.fs, sizeof m.fs);
        memcpy(&m.gs, &u.gs, sizeof m.gs);
    }
    if (mtd & Mtd::CS_SS) {
        memcpy(&m.cs, &u.cs, sizeof m.cs);
        memcpy(&m.ss, &u.ss, sizeof m.ss);
        m.cpl = static_cast<u8>(u.ss.ar >> 5 & 3);  // SVM takes the CPL from the VMCB: SS.DPL (APM 15.5.1)
    }
    if (mtd & Mtd::TR)
        memcpy(&m.tr, &u.tr, sizeof m.tr);
    if (mtd & Mtd::LDTR)
        memcpy(&m.ldtr, &u.ldtr, sizeof m.ldtr);
    if (mtd & Mtd::GDTR) {
        m.gdtr.limit = u.gdtr.limit;
        m.gdtr.base = u.gdtr.base;
    }
    if (mtd & Mtd::IDTR) {
        m.idtr.limit = u.idtr.limit;
        m.idtr.base = u.idtr.base;
    }
    if (mtd & Mtd::DR)
        m.dr7 = u.dr7;
    if (mtd & Mtd::SYSENTER) {
        m.sysenter_cs = u.sysenter_cs;
        m.sysenter_esp = u.sysenter_rsp;
        m.sysenter_eip = u.sysenter_rip;
    }
    if (mtd & Mtd::CTRL) {
        // The VMM's intercepts on top of the kernel's; the VINTR intercept stays with INJ.
        m.intercept[0] = ((u.ctrl[0] & ~I_VINTR) | FORCED0 | (m.intercept[0] & I_VINTR)) & ~CLEARED0;
        m.intercept[1] = u.ctrl[1] | FORCED1;
        m.intercept_exc = u.exc_bitmap | FORCED_EXC;
    }
    if (mtd & Mtd::INJ) {
        // ABI 4.5: bit 12 asks for an exit as soon as the guest can take an interrupt.
        if (u.intr_info & Inj::REQ_INTR_WINDOW) {
            m.int_ctl |= V_IRQ | V_IGN_TPR;
            m.intercept[0] |= I_VINTR;
        } else {
            m.int_ctl &= ~(V_IRQ | V_IGN_TPR);
            m.intercept[0] &= ~I_VINTR;
        }
        m.eventinj = u.inj & ~u64{Inj::REQ_INTR_WINDOW | Inj::REQ_NMI_WINDOW};
    }
    if (mtd & Mtd::STA)
        m.int_shadow = (m.int_shadow & ~u64{1}) | (u.intr_state & 1);
    if (mtd & Mtd::TSC)
        m.tsc_offset += u.tsc_off;  // additive on SVM (ABI 5)
    if (mtd & Mtd::EFER_PAT) {
        m.efer = u.efer | EFER_SVME;  // VMRUN requires it; the guest never sees it (RDMSR exits)
        m.g_pat = u.pat;
    }
    if (mtd & Mtd::SYSCALL_SWAPGS) {
        m.star = u.star;
        m.lstar = u.lstar;
        m.sfmask = u.fmask;
        m.kernel_gs_base = u.kernel_gs_base;
    }
    if (mtd & Mtd::TLB)
        v.flush_tlb = true;
    return nullptr;
}
