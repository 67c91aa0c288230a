/*
 * VMX constants (include/vmx_defs.hpp) against the Intel SDM: every VMCS field encoding the
 * kernel names, with the width, type and index the SDM's Appendix B tables give for it (the
 * index column of tables B-1 .. B-15, transcribed independently of the header's hex values),
 * the encoding structure of SDM 24.11.2, control bits, exit reasons and MSR numbers.
 */
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "vmx_defs.hpp"

namespace {

using namespace Vmcs;

struct Field
{
    const char *name;
    u32 enc;  // the header's constant
    u32 sdm;  // the encoding as the SDM table prints it
    u32 width, type, index;
};

// clang-format off
const Field fields[] = {
    // Table B-1: 16-bit control fields.
    {"VPID", VPID, 0x0000, WIDTH_16, TYPE_CONTROL, 0},
    {"POSTED_INTR_VECTOR", POSTED_INTR_VECTOR, 0x0002, WIDTH_16, TYPE_CONTROL, 1},
    {"EPTP_INDEX", EPTP_INDEX, 0x0004, WIDTH_16, TYPE_CONTROL, 2},
    // Table B-2: 16-bit guest-state fields.
    {"GUEST_ES_SEL", GUEST_ES_SEL, 0x0800, WIDTH_16, TYPE_GUEST, 0},
    {"GUEST_CS_SEL", GUEST_CS_SEL, 0x0802, WIDTH_16, TYPE_GUEST, 1},
    {"GUEST_SS_SEL", GUEST_SS_SEL, 0x0804, WIDTH_16, TYPE_GUEST, 2},
    {"GUEST_DS_SEL", GUEST_DS_SEL, 0x0806, WIDTH_16, TYPE_GUEST, 3},
    {"GUEST_FS_SEL", GUEST_FS_SEL, 0x0808, WIDTH_16, TYPE_GUEST, 4},
    {"GUEST_GS_SEL", GUEST_GS_SEL, 0x080a, WIDTH_16, TYPE_GUEST, 5},
    {"GUEST_LDTR_SEL", GUEST_LDTR_SEL, 0x080c, WIDTH_16, TYPE_GUEST, 6},
    {"GUEST_TR_SEL", GUEST_TR_SEL, 0x080e, WIDTH_16, TYPE_GUEST, 7},
    {"GUEST_INTR_STATUS", GUEST_INTR_STATUS, 0x0810, WIDTH_16, TYPE_GUEST, 8},
    {"GUEST_PML_INDEX", GUEST_PML_INDEX, 0x0812, WIDTH_16, TYPE_GUEST, 9},
    // Table B-3: 16-bit host-state fields.
    {"HOST_ES_SEL", HOST_ES_SEL, 0x0c00, WIDTH_16, TYPE_HOST, 0},
    {"HOST_CS_SEL", HOST_CS_SEL, 0x0c02, WIDTH_16, TYPE_HOST, 1},
    {"HOST_SS_SEL", HOST_SS_SEL, 0x0c04, WIDTH_16, TYPE_HOST, 2},
    {"HOST_DS_SEL", HOST_DS_SEL, 0x0c06, WIDTH_16, TYPE_HOST, 3},
    {"HOST_FS_SEL", HOST_FS_SEL, 0x0c08, WIDTH_16, TYPE_HOST, 4},
    {"HOST_GS_SEL", HOST_GS_SEL, 0x0c0a, WIDTH_16, TYPE_HOST, 5},
    {"HOST_TR_SEL", HOST_TR_SEL, 0x0c0c, WIDTH_16, TYPE_HOST, 6},
    // Table B-4: 64-bit control fields (full encodings).
    {"IO_BITMAP_A", IO_BITMAP_A, 0x2000, WIDTH_64, TYPE_CONTROL, 0},
    {"IO_BITMAP_B", IO_BITMAP_B, 0x2002, WIDTH_64, TYPE_CONTROL, 1},
    {"MSR_BITMAP", MSR_BITMAP, 0x2004, WIDTH_64, TYPE_CONTROL, 2},
    {"EXIT_MSR_STORE_ADDR", EXIT_MSR_STORE_ADDR, 0x2006, WIDTH_64, TYPE_CONTROL, 3},
    {"EXIT_MSR_LOAD_ADDR", EXIT_MSR_LOAD_ADDR, 0x2008, WIDTH_64, TYPE_CONTROL, 4},
    {"ENTRY_MSR_LOAD_ADDR", ENTRY_MSR_LOAD_ADDR, 0x200a, WIDTH_64, TYPE_CONTROL, 5},
    {"EXECUTIVE_VMCS_PTR", EXECUTIVE_VMCS_PTR, 0x200c, WIDTH_64, TYPE_CONTROL, 6},
    {"PML_ADDR", PML_ADDR, 0x200e, WIDTH_64, TYPE_CONTROL, 7},
    {"TSC_OFFSET", TSC_OFFSET, 0x2010, WIDTH_64, TYPE_CONTROL, 8},
    {"VIRTUAL_APIC_ADDR", VIRTUAL_APIC_ADDR, 0x2012, WIDTH_64, TYPE_CONTROL, 9},
    {"APIC_ACCESS_ADDR", APIC_ACCESS_ADDR, 0x2014, WIDTH_64, TYPE_CONTROL, 10},
    {"POSTED_INTR_DESC", POSTED_INTR_DESC, 0x2016, WIDTH_64, TYPE_CONTROL, 11},
    {"VMFUNC_CONTROLS", VMFUNC_CONTROLS, 0x2018, WIDTH_64, TYPE_CONTROL, 12},
    {"EPT_POINTER", EPT_POINTER, 0x201a, WIDTH_64, TYPE_CONTROL, 13},
    {"EOI_EXIT_BITMAP0", EOI_EXIT_BITMAP0, 0x201c, WIDTH_64, TYPE_CONTROL, 14},
    {"EOI_EXIT_BITMAP1", EOI_EXIT_BITMAP1, 0x201e, WIDTH_64, TYPE_CONTROL, 15},
    {"EOI_EXIT_BITMAP2", EOI_EXIT_BITMAP2, 0x2020, WIDTH_64, TYPE_CONTROL, 16},
    {"EOI_EXIT_BITMAP3", EOI_EXIT_BITMAP3, 0x2022, WIDTH_64, TYPE_CONTROL, 17},
    {"EPTP_LIST_ADDR", EPTP_LIST_ADDR, 0x2024, WIDTH_64, TYPE_CONTROL, 18},
    {"VMREAD_BITMAP", VMREAD_BITMAP, 0x2026, WIDTH_64, TYPE_CONTROL, 19},
    {"VMWRITE_BITMAP", VMWRITE_BITMAP, 0x2028, WIDTH_64, TYPE_CONTROL, 20},
    {"VE_INFO_ADDR", VE_INFO_ADDR, 0x202a, WIDTH_64, TYPE_CONTROL, 21},
    {"XSS_EXIT_BITMAP", XSS_EXIT_BITMAP, 0x202c, WIDTH_64, TYPE_CONTROL, 22},
    {"ENCLS_EXIT_BITMAP", ENCLS_EXIT_BITMAP, 0x202e, WIDTH_64, TYPE_CONTROL, 23},
    {"SPP_TABLE_PTR", SPP_TABLE_PTR, 0x2030, WIDTH_64, TYPE_CONTROL, 24},
    {"TSC_MULTIPLIER", TSC_MULTIPLIER, 0x2032, WIDTH_64, TYPE_CONTROL, 25},
    {"PROC_CTLS3", PROC_CTLS3, 0x2034, WIDTH_64, TYPE_CONTROL, 26},
    // Table B-5: 64-bit read-only data field.
    {"GUEST_PHYS_ADDR", GUEST_PHYS_ADDR, 0x2400, WIDTH_64, TYPE_EXIT_INFO, 0},
    // Table B-6: 64-bit guest-state fields.
    {"VMCS_LINK_PTR", VMCS_LINK_PTR, 0x2800, WIDTH_64, TYPE_GUEST, 0},
    {"GUEST_DEBUGCTL", GUEST_DEBUGCTL, 0x2802, WIDTH_64, TYPE_GUEST, 1},
    {"GUEST_PAT", GUEST_PAT, 0x2804, WIDTH_64, TYPE_GUEST, 2},
    {"GUEST_EFER", GUEST_EFER, 0x2806, WIDTH_64, TYPE_GUEST, 3},
    {"GUEST_PERF_GLOBAL_CTRL", GUEST_PERF_GLOBAL_CTRL, 0x2808, WIDTH_64, TYPE_GUEST, 4},
    {"GUEST_PDPTE0", GUEST_PDPTE0, 0x280a, WIDTH_64, TYPE_GUEST, 5},
    {"GUEST_PDPTE1", GUEST_PDPTE1, 0x280c, WIDTH_64, TYPE_GUEST, 6},
    {"GUEST_PDPTE2", GUEST_PDPTE2, 0x280e, WIDTH_64, TYPE_GUEST, 7},
    {"GUEST_PDPTE3", GUEST_PDPTE3, 0x2810, WIDTH_64, TYPE_GUEST, 8},
    {"GUEST_BNDCFGS", GUEST_BNDCFGS, 0x2812, WIDTH_64, TYPE_GUEST, 9},
    {"GUEST_RTIT_CTL", GUEST_RTIT_CTL, 0x2814, WIDTH_64, TYPE_GUEST, 10},
    {"GUEST_LBR_CTL", GUEST_LBR_CTL, 0x2816, WIDTH_64, TYPE_GUEST, 11},
    {"GUEST_PKRS", GUEST_PKRS, 0x2818, WIDTH_64, TYPE_GUEST, 12},
    // Table B-7: 64-bit host-state fields.
    {"HOST_PAT", HOST_PAT, 0x2c00, WIDTH_64, TYPE_HOST, 0},
    {"HOST_EFER", HOST_EFER, 0x2c02, WIDTH_64, TYPE_HOST, 1},
    {"HOST_PERF_GLOBAL_CTRL", HOST_PERF_GLOBAL_CTRL, 0x2c04, WIDTH_64, TYPE_HOST, 2},
    {"HOST_PKRS", HOST_PKRS, 0x2c06, WIDTH_64, TYPE_HOST, 3},
    // Table B-8: 32-bit control fields.
    {"PIN_CONTROLS", PIN_CONTROLS, 0x4000, WIDTH_32, TYPE_CONTROL, 0},
    {"PROC_CONTROLS", PROC_CONTROLS, 0x4002, WIDTH_32, TYPE_CONTROL, 1},
    {"EXCEPTION_BITMAP", EXCEPTION_BITMAP, 0x4004, WIDTH_32, TYPE_CONTROL, 2},
    {"PF_ERROR_MASK", PF_ERROR_MASK, 0x4006, WIDTH_32, TYPE_CONTROL, 3},
    {"PF_ERROR_MATCH", PF_ERROR_MATCH, 0x4008, WIDTH_32, TYPE_CONTROL, 4},
    {"CR3_TARGET_COUNT", CR3_TARGET_COUNT, 0x400a, WIDTH_32, TYPE_CONTROL, 5},
    {"EXIT_CONTROLS", EXIT_CONTROLS, 0x400c, WIDTH_32, TYPE_CONTROL, 6},
    {"EXIT_MSR_STORE_COUNT", EXIT_MSR_STORE_COUNT, 0x400e, WIDTH_32, TYPE_CONTROL, 7},
    {"EXIT_MSR_LOAD_COUNT", EXIT_MSR_LOAD_COUNT, 0x4010, WIDTH_32, TYPE_CONTROL, 8},
    {"ENTRY_CONTROLS", ENTRY_CONTROLS, 0x4012, WIDTH_32, TYPE_CONTROL, 9},
    {"ENTRY_MSR_LOAD_COUNT", ENTRY_MSR_LOAD_COUNT, 0x4014, WIDTH_32, TYPE_CONTROL, 10},
    {"ENTRY_INTR_INFO", ENTRY_INTR_INFO, 0x4016, WIDTH_32, TYPE_CONTROL, 11},
    {"ENTRY_EXC_ERROR", ENTRY_EXC_ERROR, 0x4018, WIDTH_32, TYPE_CONTROL, 12},
    {"ENTRY_INST_LEN", ENTRY_INST_LEN, 0x401a, WIDTH_32, TYPE_CONTROL, 13},
    {"TPR_THRESHOLD", TPR_THRESHOLD, 0x401c, WIDTH_32, TYPE_CONTROL, 14},
    {"PROC_CONTROLS2", PROC_CONTROLS2, 0x401e, WIDTH_32, TYPE_CONTROL, 15},
    {"PLE_GAP", PLE_GAP, 0x4020, WIDTH_32, TYPE_CONTROL, 16},
    {"PLE_WINDOW", PLE_WINDOW, 0x4022, WIDTH_32, TYPE_CONTROL, 17},
    // Table B-9: 32-bit read-only data fields.
    {"VM_INSTRUCTION_ERROR", VM_INSTRUCTION_ERROR, 0x4400, WIDTH_32, TYPE_EXIT_INFO, 0},
    {"EXIT_REASON", EXIT_REASON, 0x4402, WIDTH_32, TYPE_EXIT_INFO, 1},
    {"EXIT_INTR_INFO", EXIT_INTR_INFO, 0x4404, WIDTH_32, TYPE_EXIT_INFO, 2},
    {"EXIT_INTR_ERROR", EXIT_INTR_ERROR, 0x4406, WIDTH_32, TYPE_EXIT_INFO, 3},
    {"IDT_VECTORING_INFO", IDT_VECTORING_INFO, 0x4408, WIDTH_32, TYPE_EXIT_INFO, 4},
    {"IDT_VECTORING_ERROR", IDT_VECTORING_ERROR, 0x440a, WIDTH_32, TYPE_EXIT_INFO, 5},
    {"EXIT_INST_LEN", EXIT_INST_LEN, 0x440c, WIDTH_32, TYPE_EXIT_INFO, 6},
    {"EXIT_INST_INFO", EXIT_INST_INFO, 0x440e, WIDTH_32, TYPE_EXIT_INFO, 7},
    // Table B-10: 32-bit guest-state fields.
    {"GUEST_ES_LIMIT", GUEST_ES_LIMIT, 0x4800, WIDTH_32, TYPE_GUEST, 0},
    {"GUEST_CS_LIMIT", GUEST_CS_LIMIT, 0x4802, WIDTH_32, TYPE_GUEST, 1},
    {"GUEST_SS_LIMIT", GUEST_SS_LIMIT, 0x4804, WIDTH_32, TYPE_GUEST, 2},
    {"GUEST_DS_LIMIT", GUEST_DS_LIMIT, 0x4806, WIDTH_32, TYPE_GUEST, 3},
    {"GUEST_FS_LIMIT", GUEST_FS_LIMIT, 0x4808, WIDTH_32, TYPE_GUEST, 4},
    {"GUEST_GS_LIMIT", GUEST_GS_LIMIT, 0x480a, WIDTH_32, TYPE_GUEST, 5},
    {"GUEST_LDTR_LIMIT", GUEST_LDTR_LIMIT, 0x480c, WIDTH_32, TYPE_GUEST, 6},
    {"GUEST_TR_LIMIT", GUEST_TR_LIMIT, 0x480e, WIDTH_32, TYPE_GUEST, 7},
    {"GUEST_GDTR_LIMIT", GUEST_GDTR_LIMIT, 0x4810, WIDTH_32, TYPE_GUEST, 8},
    {"GUEST_IDTR_LIMIT", GUEST_IDTR_LIMIT, 0x4812, WIDTH_32, TYPE_GUEST, 9},
    {"GUEST_ES_AR", GUEST_ES_AR, 0x4814, WIDTH_32, TYPE_GUEST, 10},
    {"GUEST_CS_AR", GUEST_CS_AR, 0x4816, WIDTH_32, TYPE_GUEST, 11},
    {"GUEST_SS_AR", GUEST_SS_AR, 0x4818, WIDTH_32, TYPE_GUEST, 12},
    {"GUEST_DS_AR", GUEST_DS_AR, 0x481a, WIDTH_32, TYPE_GUEST, 13},
    {"GUEST_FS_AR", GUEST_FS_AR, 0x481c, WIDTH_32, TYPE_GUEST, 14},
    {"GUEST_GS_AR", GUEST_GS_AR, 0x481e, WIDTH_32, TYPE_GUEST, 15},
    {"GUEST_LDTR_AR", GUEST_LDTR_AR, 0x4820, WIDTH_32, TYPE_GUEST, 16},
    {"GUEST_TR_AR", GUEST_TR_AR, 0x4822, WIDTH_32, TYPE_GUEST, 17},
    {"GUEST_INTERRUPTIBILITY", GUEST_INTERRUPTIBILITY, 0x4824, WIDTH_32, TYPE_GUEST, 18},
    {"GUEST_ACTIVITY", GUEST_ACTIVITY, 0x4826, WIDTH_32, TYPE_GUEST, 19},
    {"GUEST_SMBASE", GUEST_SMBASE, 0x4828, WIDTH_32, TYPE_GUEST, 20},
    {"GUEST_SYSENTER_CS", GUEST_SYSENTER_CS, 0x482a, WIDTH_32, TYPE_GUEST, 21},
    {"PREEMPTION_TIMER", PREEMPTION_TIMER, 0x482e, WIDTH_32, TYPE_GUEST, 23},
    // Table B-11: 32-bit host-state field.
    {"HOST_SYSENTER_CS", HOST_SYSENTER_CS, 0x4c00, WIDTH_32, TYPE_HOST, 0},
    // Table B-12: natural-width control fields.
    {"CR0_MASK", CR0_MASK, 0x6000, WIDTH_NATURAL, TYPE_CONTROL, 0},
    {"CR4_MASK", CR4_MASK, 0x6002, WIDTH_NATURAL, TYPE_CONTROL, 1},
    {"CR0_SHADOW", CR0_SHADOW, 0x6004, WIDTH_NATURAL, TYPE_CONTROL, 2},
    {"CR4_SHADOW", CR4_SHADOW, 0x6006, WIDTH_NATURAL, TYPE_CONTROL, 3},
    {"CR3_TARGET0", CR3_TARGET0, 0x6008, WIDTH_NATURAL, TYPE_CONTROL, 4},
    {"CR3_TARGET1", CR3_TARGET1, 0x600a, WIDTH_NATURAL, TYPE_CONTROL, 5},
    {"CR3_TARGET2", CR3_TARGET2, 0x600c, WIDTH_NATURAL, TYPE_CONTROL, 6},
    {"CR3_TARGET3", CR3_TARGET3, 0x600e, WIDTH_NATURAL, TYPE_CONTROL, 7},
    // Table B-13: natural-width read-only data fields.
    {"EXIT_QUALIFICATION", EXIT_QUALIFICATION, 0x6400, WIDTH_NATURAL, TYPE_EXIT_INFO, 0},
    {"IO_RCX", IO_RCX, 0x6402, WIDTH_NATURAL, TYPE_EXIT_INFO, 1},
    {"IO_RSI", IO_RSI, 0x6404, WIDTH_NATURAL, TYPE_EXIT_INFO, 2},
    {"IO_RDI", IO_RDI, 0x6406, WIDTH_NATURAL, TYPE_EXIT_INFO, 3},
    {"IO_RIP", IO_RIP, 0x6408, WIDTH_NATURAL, TYPE_EXIT_INFO, 4},
    {"GUEST_LINEAR_ADDR", GUEST_LINEAR_ADDR, 0x640a, WIDTH_NATURAL, TYPE_EXIT_INFO, 5},
    // Table B-14: natural-width guest-state fields.
    {"GUEST_CR0", GUEST_CR0, 0x6800, WIDTH_NATURAL, TYPE_GUEST, 0},
    {"GUEST_CR3", GUEST_CR3, 0x6802, WIDTH_NATURAL, TYPE_GUEST, 1},
    {"GUEST_CR4", GUEST_CR4, 0x6804, WIDTH_NATURAL, TYPE_GUEST, 2},
    {"GUEST_ES_BASE", GUEST_ES_BASE, 0x6806, WIDTH_NATURAL, TYPE_GUEST, 3},
    {"GUEST_CS_BASE", GUEST_CS_BASE, 0x6808, WIDTH_NATURAL, TYPE_GUEST, 4},
    {"GUEST_SS_BASE", GUEST_SS_BASE, 0x680a, WIDTH_NATURAL, TYPE_GUEST, 5},
    {"GUEST_DS_BASE", GUEST_DS_BASE, 0x680c, WIDTH_NATURAL, TYPE_GUEST, 6},
    {"GUEST_FS_BASE", GUEST_FS_BASE, 0x680e, WIDTH_NATURAL, TYPE_GUEST, 7},
    {"GUEST_GS_BASE", GUEST_GS_BASE, 0x6810, WIDTH_NATURAL, TYPE_GUEST, 8},
    {"GUEST_LDTR_BASE", GUEST_LDTR_BASE, 0x6812, WIDTH_NATURAL, TYPE_GUEST, 9},
    {"GUEST_TR_BASE", GUEST_TR_BASE, 0x6814, WIDTH_NATURAL, TYPE_GUEST, 10},
    {"GUEST_GDTR_BASE", GUEST_GDTR_BASE, 0x6816, WIDTH_NATURAL, TYPE_GUEST, 11},
    {"GUEST_IDTR_BASE", GUEST_IDTR_BASE, 0x6818, WIDTH_NATURAL, TYPE_GUEST, 12},
    {"GUEST_DR7", GUEST_DR7, 0x681a, WIDTH_NATURAL, TYPE_GUEST, 13},
    {"GUEST_RSP", GUEST_RSP, 0x681c, WIDTH_NATURAL, TYPE_GUEST, 14},
    {"GUEST_RIP", GUEST_RIP, 0x681e, WIDTH_NATURAL, TYPE_GUEST, 15},
    {"GUEST_RFLAGS", GUEST_RFLAGS, 0x6820, WIDTH_NATURAL, TYPE_GUEST, 16},
    {"GUEST_PENDING_DBG", GUEST_PENDING_DBG, 0x6822, WIDTH_NATURAL, TYPE_GUEST, 17},
    {"GUEST_SYSENTER_ESP", GUEST_SYSENTER_ESP, 0x6824, WIDTH_NATURAL, TYPE_GUEST, 18},
    {"GUEST_SYSENTER_EIP", GUEST_SYSENTER_EIP, 0x6826, WIDTH_NATURAL, TYPE_GUEST, 19},
    // Table B-15: natural-width host-state fields.
    {"HOST_CR0", HOST_CR0, 0x6c00, WIDTH_NATURAL, TYPE_HOST, 0},
    {"HOST_CR3", HOST_CR3, 0x6c02, WIDTH_NATURAL, TYPE_HOST, 1},
    {"HOST_CR4", HOST_CR4, 0x6c04, WIDTH_NATURAL, TYPE_HOST, 2},
    {"HOST_FS_BASE", HOST_FS_BASE, 0x6c06, WIDTH_NATURAL, TYPE_HOST, 3},
    {"HOST_GS_BASE", HOST_GS_BASE, 0x6c08, WIDTH_NATURAL, TYPE_HOST, 4},
    {"HOST_TR_BASE", HOST_TR_BASE, 0x6c0a, WIDTH_NATURAL, TYPE_HOST, 5},
    {"HOST_GDTR_BASE", HOST_GDTR_BASE, 0x6c0c, WIDTH_NATURAL, TYPE_HOST, 6},
    {"HOST_IDTR_BASE", HOST_IDTR_BASE, 0x6c0e, WIDTH_NATURAL, TYPE_HOST, 7},
    {"HOST_SYSENTER_ESP", HOST_SYSENTER_ESP, 0x6c10, WIDTH_NATURAL, TYPE_HOST, 8},
    {"HOST_SYSENTER_EIP", HOST_SYSENTER_EIP, 0x6c12, WIDTH_NATURAL, TYPE_HOST, 9},
    {"HOST_RSP", HOST_RSP, 0x6c14, WIDTH_NATURAL, TYPE_HOST, 10},
    {"HOST_RIP", HOST_RIP, 0x6c16, WIDTH_NATURAL, TYPE_HOST, 11},
};
// clang-format on

TEST(VmxDefs, EveryFieldHasTheSdmEncoding)
{
    for (const Field &f : fields)
        EXPECT_EQ(f.enc, f.sdm) << f.name;
    EXPECT_EQ(sizeof(fields) / sizeof(fields[0]), 161u) << "every field of include/vmx_defs.hpp";
}

TEST(VmxDefs, EncodingStructureMatchesWidthTypeAndIndex)
{
    for (const Field &f : fields) {
        EXPECT_EQ(width(f.enc), f.width) << f.name;
        EXPECT_EQ(type(f.enc), f.type) << f.name;
        EXPECT_EQ(index(f.enc), f.index) << f.name;
        EXPECT_EQ(encode(f.width, f.type, f.index), f.enc) << f.name;
        EXPECT_FALSE(is_high(f.enc)) << f.name << ": every named encoding is the full one";
        EXPECT_EQ(f.enc & (1u << 12), 0u) << f.name << ": bit 12 is reserved";
        EXPECT_EQ(f.enc >> 15, 0u) << f.name << ": bits 31:15 are reserved";
    }
}

TEST(VmxDefs, HighAccessOnlyFor64BitFields)
{
    // SDM 24.11.2: the high half of a 64-bit field is its encoding with bit 0 set.
    EXPECT_EQ(high(TSC_OFFSET), 0x2011u);
    EXPECT_EQ(high(EPT_POINTER), 0x201bu);
    EXPECT_EQ(high(GUEST_EFER), 0x2807u);
    EXPECT_EQ(high(VMCS_LINK_PTR), 0x2801u);
    EXPECT_EQ(high(HOST_PAT), 0x2c01u);
    EXPECT_TRUE(is_high(high(GUEST_PHYS_ADDR)));
    for (const Field &f : fields) {
        if (f.width == WIDTH_64) {
            EXPECT_EQ(index(high(f.enc)), f.index) << f.name;
        }
    }
}

TEST(VmxDefs, EncodingsAreUniqueAndNamesToo)
{
    std::set<u32> encs;
    std::set<std::string> names;
    for (const Field &f : fields) {
        EXPECT_TRUE(encs.insert(f.enc).second) << f.name;
        EXPECT_TRUE(names.insert(f.name).second) << f.name;
    }
}

TEST(VmxDefs, SegmentHelpersWalkTheVmcsOrder)
{
    const u32 sel[] = {GUEST_ES_SEL, GUEST_CS_SEL, GUEST_SS_SEL,   GUEST_DS_SEL,
                       GUEST_FS_SEL, GUEST_GS_SEL, GUEST_LDTR_SEL, GUEST_TR_SEL};
    const u32 lim[] = {GUEST_ES_LIMIT, GUEST_CS_LIMIT, GUEST_SS_LIMIT,   GUEST_DS_LIMIT,
                       GUEST_FS_LIMIT, GUEST_GS_LIMIT, GUEST_LDTR_LIMIT, GUEST_TR_LIMIT};
    const u32 ar[] = {GUEST_ES_AR, GUEST_CS_AR, GUEST_SS_AR,   GUEST_DS_AR,
                      GUEST_FS_AR, GUEST_GS_AR, GUEST_LDTR_AR, GUEST_TR_AR};
    const u32 base[] = {GUEST_ES_BASE, GUEST_CS_BASE, GUEST_SS_BASE,   GUEST_DS_BASE,
                        GUEST_FS_BASE, GUEST_GS_BASE, GUEST_LDTR_BASE, GUEST_TR_BASE};
    for (u32 i = 0; i < SEGS; i++) {
        Seg s = static_cast<Seg>(i);
        EXPECT_EQ(guest_sel(s), sel[i]) << i;
        EXPECT_EQ(guest_limit(s), lim[i]) << i;
        EXPECT_EQ(guest_ar(s), ar[i]) << i;
        EXPECT_EQ(guest_base(s), base[i]) << i;
    }
    EXPECT_EQ(eoi_exit_bitmap(3), EOI_EXIT_BITMAP3);
    EXPECT_EQ(guest_pdpte(2), GUEST_PDPTE2);
}

TEST(VmxDefs, ControlBitsAsTheSdmNumbersThem)
{
    // Table 24-5 (pin), 24-6 (primary), 24-7 (secondary), 24-11/24-13 (exit/entry) of SDM vol. 3C.
    EXPECT_EQ(Vmx_pin::EXT_INTR | Vmx_pin::NMI | Vmx_pin::VIRT_NMI | Vmx_pin::PREEMPT_TIMER |
                  Vmx_pin::POSTED_INTR,
              0xe9u);
    EXPECT_EQ(Vmx_cpu1::HLT, 0x80u);
    EXPECT_EQ(Vmx_cpu1::CR8_LOAD | Vmx_cpu1::CR8_STORE | Vmx_cpu1::TPR_SHADOW | Vmx_cpu1::NMI_WINDOW,
              0x780000u);
    EXPECT_EQ(Vmx_cpu1::UNCOND_IO | Vmx_cpu1::IO_BITMAPS, 0x3000000u);
    EXPECT_EQ(Vmx_cpu1::MSR_BITMAPS, 0x10000000u);
    EXPECT_EQ(Vmx_cpu1::SECONDARY, 0x80000000u);
    EXPECT_EQ(Vmx_cpu2::EPT | Vmx_cpu2::VPID | Vmx_cpu2::UNRESTRICTED, 0xa2u);
    EXPECT_EQ(Vmx_cpu2::VIRT_INTR_DELIVERY, 0x200u);
    EXPECT_EQ(Vmx_cpu2::VMCS_SHADOW | Vmx_cpu2::PML, 0x24000u);
    EXPECT_EQ(Vmx_exit_ctl::HOST_64 | Vmx_exit_ctl::ACK_INTR, 0x8200u);
    EXPECT_EQ(Vmx_exit_ctl::SAVE_PAT | Vmx_exit_ctl::LOAD_PAT | Vmx_exit_ctl::SAVE_EFER |
                  Vmx_exit_ctl::LOAD_EFER,
              0x3c0000u);
    EXPECT_EQ(Vmx_entry_ctl::IA32E_GUEST | Vmx_entry_ctl::LOAD_PAT | Vmx_entry_ctl::LOAD_EFER, 0xc200u);
    // The default1 classes (A.2) are disjoint from the controls the kernel sets on purpose.
    EXPECT_EQ(Vmx_cpu1::DEFAULT1 & (Vmx_cpu1::HLT | Vmx_cpu1::UNCOND_IO | Vmx_cpu1::SECONDARY), 0u);
    EXPECT_EQ(Vmx_cpu1::DEFAULT1 & (Vmx_cpu1::CR3_LOAD | Vmx_cpu1::CR3_STORE),
              Vmx_cpu1::CR3_LOAD | Vmx_cpu1::CR3_STORE);
    EXPECT_EQ(Vmx_exit_ctl::DEFAULT1 & Vmx_exit_ctl::SAVE_DEBUG, Vmx_exit_ctl::SAVE_DEBUG);
    EXPECT_EQ(Vmx_entry_ctl::DEFAULT1 & Vmx_entry_ctl::IA32E_GUEST, 0u);
}

TEST(VmxDefs, ExitReasonsAsAppendixC)
{
    EXPECT_EQ(Vmx_exit::EXC_NMI, 0u);
    EXPECT_EQ(Vmx_exit::EXT_INTR, 1u);
    EXPECT_EQ(Vmx_exit::TRIPLE_FAULT, 2u);
    EXPECT_EQ(Vmx_exit::INTR_WINDOW, 7u);
    EXPECT_EQ(Vmx_exit::NMI_WINDOW, 8u);
    EXPECT_EQ(Vmx_exit::CPUID, 10u);
    EXPECT_EQ(Vmx_exit::HLT, 12u);
    EXPECT_EQ(Vmx_exit::VMCALL, 18u);
    EXPECT_EQ(Vmx_exit::CR_ACCESS, 28u);
    EXPECT_EQ(Vmx_exit::IO, 30u);
    EXPECT_EQ(Vmx_exit::RDMSR, 31u);
    EXPECT_EQ(Vmx_exit::WRMSR, 32u);
    EXPECT_EQ(Vmx_exit::INVALID_STATE, 33u);
    EXPECT_EQ(Vmx_exit::MSR_LOAD_FAIL, 34u);
    EXPECT_EQ(Vmx_exit::MTF, 37u);
    EXPECT_EQ(Vmx_exit::MACHINE_CHECK, 41u);
    EXPECT_EQ(Vmx_exit::TPR_THRESHOLD, 43u);
    EXPECT_EQ(Vmx_exit::EPT_VIOLATION, 48u);
    EXPECT_EQ(Vmx_exit::EPT_MISCONFIG, 49u);
    EXPECT_EQ(Vmx_exit::PREEMPT_TIMER, 52u);
    EXPECT_EQ(Vmx_exit::XSETBV, 55u);
    EXPECT_EQ(Vmx_exit::PML_FULL, 62u);
    EXPECT_EQ(Vmx_exit::XRSTORS, 64u);
}

TEST(VmxDefs, CapabilityMsrNumbers)
{
    EXPECT_EQ(Vmx_msr::FEATURE_CONTROL, 0x3au);
    EXPECT_EQ(Vmx_msr::BASIC, 0x480u);
    EXPECT_EQ(Vmx_msr::PINBASED_CTLS, 0x481u);
    EXPECT_EQ(Vmx_msr::PROCBASED_CTLS, 0x482u);
    EXPECT_EQ(Vmx_msr::EXIT_CTLS, 0x483u);
    EXPECT_EQ(Vmx_msr::ENTRY_CTLS, 0x484u);
    EXPECT_EQ(Vmx_msr::MISC, 0x485u);
    EXPECT_EQ(Vmx_msr::CR0_FIXED0, 0x486u);
    EXPECT_EQ(Vmx_msr::CR0_FIXED1, 0x487u);
    EXPECT_EQ(Vmx_msr::CR4_FIXED0, 0x488u);
    EXPECT_EQ(Vmx_msr::CR4_FIXED1, 0x489u);
    EXPECT_EQ(Vmx_msr::VMCS_ENUM, 0x48au);
    EXPECT_EQ(Vmx_msr::PROCBASED_CTLS2, 0x48bu);
    EXPECT_EQ(Vmx_msr::EPT_VPID_CAP, 0x48cu);
    EXPECT_EQ(Vmx_msr::TRUE_PINBASED_CTLS, 0x48du);
    EXPECT_EQ(Vmx_msr::TRUE_PROCBASED_CTLS, 0x48eu);
    EXPECT_EQ(Vmx_msr::TRUE_EXIT_CTLS, 0x48fu);
    EXPECT_EQ(Vmx_msr::TRUE_ENTRY_CTLS, 0x490u);
    EXPECT_EQ(Vmx_msr::VMFUNC, 0x491u);
}

TEST(VmxDefs, InstructionErrorTexts)
{
    EXPECT_STREQ(Vmx_error::text(7), "invalid control fields");
    EXPECT_STREQ(Vmx_error::text(8), "invalid host-state fields");
    EXPECT_STREQ(Vmx_error::text(26), "events blocked by MOV SS");
    EXPECT_STREQ(Vmx_error::text(5), "VMRESUME with non-launched VMCS");
    // Numbers the SDM does not assign (14, 21, 27) and anything out of range are "unknown".
    for (u32 e : {0u, 14u, 21u, 27u, 29u, 0xffffffffu})
        EXPECT_STREQ(Vmx_error::text(e), "unknown VM-instruction error") << e;
    for (u32 e = 1; e <= 28; e++) {
        if (e != 14 && e != 21 && e != 27) {
            EXPECT_STRNE(Vmx_error::text(e), "unknown VM-instruction error") << e;
        }
    }
}

}  // namespace
