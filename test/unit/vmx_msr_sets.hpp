/*
 * Recorded IA32_VMX_* MSR sets for the VMX unit tests: the values CPUs of these classes report
 * (IA32_VMX_BASIC revision, VMCS size, memory type, TRUE-controls bit; allowed-0/allowed-1
 * control settings; CR fixed bits; EPT/VPID capabilities), written down as data from the bit
 * definitions of the SDM (Appendix A) and what these generations support. They were not read
 * on a machine here (this host has no VMX); they are representative, not a specific part's dump.
 *
 *   skylake    modelled on Skylake (a composite, not one part number): TRUE controls, EPT with
 *              2M/1G pages and A/D, unrestricted guest, VPID, virtual NMIs, APIC-register
 *              virtualization and virtual-interrupt delivery (no posted interrupts), VMCS
 *              shadowing, PML, TSC scaling; CR4 without PKE.
 *   westmere   Westmere: TRUE controls, EPT (2M, no 1G), unrestricted guest, VPID, no APICv.
 *   westmere_untrue  the same without IA32_VMX_BASIC bit 55 (as some nested hypervisors report
 *              it): the default1 controls then must stay 1, CR3-load/store exiting included.
 *   nehalem    Nehalem: EPT and VPID but no unrestricted guest (not usable).
 *   core2      Core 2 (Penryn): no TRUE controls, no secondary controls (not usable).
 */
#pragma once

#include "paging.hpp"
#include "vmx_logic.hpp"

// The architectural bits the tests name (as include/x86.hpp has them; that header's inline
// instructions clash with the C library's pause() on the host, so it is not included here).
namespace Cr0 {
constexpr u64 PE = 1u << 0, MP = 1u << 1, TS = 1u << 3, NE = 1u << 5, WP = 1u << 16, NW = 1u << 29,
              CD = 1u << 30, PG = 1u << 31;
}
namespace Cr4 {
constexpr u64 PAE = 1u << 5, PGE = 1u << 7, OSFXSR = 1u << 9, OSXMMEXCPT = 1u << 10, VMXE = 1u << 13,
              PCIDE = 1u << 17, OSXSAVE = 1u << 18, PKE = 1u << 22;
}
namespace Efer {
constexpr u64 SCE = 1u << 0, LME = 1u << 8, LMA = 1u << 10, NXE = 1u << 11, SVME = 1u << 12;
}

namespace vmx_sets {

inline Vmx_msrs skylake()
{
    Vmx_msrs m{};
    m.cpuid_vmx = true;
    m.phys_bits = 39;
    m.linear_bits = 48;
    m.feature_control = 0x5;  // locked, VMX outside SMX
    m.basic = 0x00da040000000004ull;
    m.pinbased = 0x0000007f00000016ull;
    m.procbased = 0xfff9fffe0401e172ull;
    m.exit = 0x01ffffff00036dffull;
    m.entry = 0x0003ffff000011ffull;
    m.misc = 0x000000007004c1e7ull;
    m.cr0_fixed0 = 0x80000021ull;
    m.cr0_fixed1 = 0xffffffffull;
    m.cr4_fixed0 = 0x2000ull;
    m.cr4_fixed1 = 0x3767ffull;
    m.procbased2 = 0x021fffff00000000ull;
    m.ept_vpid_cap = 0x00000f0106734141ull;
    m.true_pinbased = 0x0000007f00000016ull;
    m.true_procbased = 0xfff9fffe04006172ull;
    m.true_exit = 0x01ffffff00036dfbull;
    m.true_entry = 0x0003ffff000011fbull;
    return m;
}

inline Vmx_msrs westmere()
{
    Vmx_msrs m{};
    m.cpuid_vmx = true;
    m.phys_bits = 40;
    m.linear_bits = 48;
    m.feature_control = 0x5;
    m.basic = 0x00da04000000000eull;
    m.pinbased = 0x0000007f00000016ull;
    m.procbased = 0xfff9fffe0401e172ull;
    m.exit = 0x003fffff00036dffull;
    m.entry = 0x0000ffff000011ffull;
    m.misc = 0x00000000000401e5ull;
    m.cr0_fixed0 = 0x80000021ull;
    m.cr0_fixed1 = 0xffffffffull;
    m.cr4_fixed0 = 0x2000ull;
    m.cr4_fixed1 = 0x67ffull;
    m.procbased2 = 0x000004ff00000000ull;
    m.ept_vpid_cap = 0x00000f0106114141ull;
    m.true_pinbased = 0x0000007f00000016ull;
    m.true_procbased = 0xfff9fffe04006172ull;
    m.true_exit = 0x003fffff00036dfbull;
    m.true_entry = 0x0000ffff000011fbull;
    return m;
}

inline Vmx_msrs westmere_untrue()
{
    Vmx_msrs m = westmere();
    m.basic &= ~Vmx_basic::TRUE_CTLS;
    m.true_pinbased = m.true_procbased = m.true_exit = m.true_entry = 0;  // not readable
    return m;
}

inline Vmx_msrs nehalem()
{
    Vmx_msrs m = westmere();
    m.basic = 0x00da04000000000eull;
    m.procbased2 = 0x0000007f00000000ull;  // no unrestricted guest (bit 7)
    m.ept_vpid_cap = 0x00000f0106114141ull;
    return m;
}

inline Vmx_msrs core2()
{
    Vmx_msrs m{};
    m.cpuid_vmx = true;
    m.phys_bits = 36;
    m.linear_bits = 48;
    m.feature_control = 0x5;
    m.basic = 0x005a08000000000dull;
    m.pinbased = 0x0000003f00000016ull;
    m.procbased = 0x77f9fffe0401e172ull;  // bit 63 clear: no secondary controls
    m.exit = 0x0003ffff00036dffull;
    m.entry = 0x00003fff000011ffull;
    m.misc = 0x00000000000403c0ull;
    m.cr0_fixed0 = 0x80000021ull;
    m.cr0_fixed1 = 0xffffffffull;
    m.cr4_fixed0 = 0x2000ull;
    m.cr4_fixed1 = 0x27ffull;
    return m;
}

}  // namespace vmx_sets
