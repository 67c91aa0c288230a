/*
 * The user thread control block (ABI 4): one page per EC. A 4-word header,
 * then 508 data words that are either the untyped message, the
 * architectural state of an event message (4.3), or - counted from the end
 * of the page downward - the typed items (3.2).
 */
#pragma once

#include <stddef.h>

#include "../types.hpp"
#include "crd.hpp"

// Segment register image (4.4).
struct Utcb_segment
{
    u16 sel;
    u16 ar;  // compressed access rights (SVM VMCB attribute format)
    u32 limit;
    u64 base;
};

static_assert(sizeof(Utcb_segment) == 16);
static_assert(offsetof(Utcb_segment, sel) == 0 && offsetof(Utcb_segment, ar) == 2);
static_assert(offsetof(Utcb_segment, limit) == 4 && offsetof(Utcb_segment, base) == 8);

// Access-rights conversion between the UTCB/VMCB form and the VMCS form (4.4).
constexpr u16 utcb_ar_from_vmcs(u32 vmcs_ar)
{
    return static_cast<u16>((vmcs_ar >> 4 & 0x1f00) | (vmcs_ar & 0xff));
}
constexpr u32 vmcs_ar_from_utcb(u16 ar) { return (static_cast<u32>(ar) << 4 & 0x1f000) | (ar & 0xffu); }

// Injection info (intr_info, low half of inj), 4.5.
struct Inj
{
    static constexpr u32 VECTOR_MASK = 0xff;
    static constexpr unsigned TYPE_SHIFT = 8;  // bits 10:8
    static constexpr u32 TYPE_EXTINT = 0u << 8, TYPE_NMI = 2u << 8, TYPE_HW_EXC = 3u << 8,
                         TYPE_SW_INT = 4u << 8, TYPE_PRIV_SW_EXC = 5u << 8, TYPE_SW_EXC = 6u << 8;
    static constexpr u32 ERROR_CODE = 1u << 11;
    static constexpr u32 REQ_INTR_WINDOW = 1u << 12;  // kernel-interpreted, stripped
    static constexpr u32 REQ_NMI_WINDOW = 1u << 13;   // kernel-interpreted, stripped (VMX)
    static constexpr u32 VALID = 1u << 31;
};

struct Utcb
{
    static constexpr unsigned DATA_WORDS = 508;  // 0x20..0xfff
    static constexpr unsigned MAX_TYPED = 254;   // items processed at most
    static constexpr unsigned STATE_WORDS = 77;  // 0x20..0x287
    static constexpr u64 EVENT_ITEMS = 77;       // `items` of a delivered event message

    // Header (4.1).
    u64 items;  // 15:0 untyped words U, 31:16 typed items T, 63:32 carried verbatim
    u64 xlt;    // translate receive window
    u64 del;    // delegate receive window
    u64 tls;    // free for the EC; compared by ec_ctrl help

    union
    {
        u64 data[DATA_WORDS];
        Typed_item typed_area[MAX_TYPED];  // item i is typed_area[MAX_TYPED - 1 - i]
        struct
        {
            u64 mtd, inst_len, rip, rflags;
            u32 intr_state, actv_state;
            union
            {
                struct
                {
                    u32 intr_info, intr_error;
                };
                u64 inj;
            };
            u32 vect_info, vect_error;
            u64 rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi;
            u64 r8, r9, r10, r11, r12, r13, r14, r15;
            u64 qual[2];
            u32 ctrl[2];
            u64 xcr0, cr0, cr2, cr3, cr4;
            u64 pdpte[4];
            u64 cr8;  // reserved, never transferred
            u64 efer, pat, star, lstar, fmask, kernel_gs_base, dr7;
            u64 sysenter_cs, sysenter_rsp, sysenter_rip;
            Utcb_segment es, cs, ss, ds, fs, gs, ldtr, tr, gdtr, idtr;
            u64 tsc_val, tsc_off;
            u32 tsc_aux, exc_bitmap, tpr_threshold, reserved_24c;
            u64 eoi_bitmap[4];
            u16 vintr_status;
            u16 reserved_272[3];
            u64 cr0_mon, cr4_mon;
        };
    };

    constexpr unsigned untyped() const { return static_cast<unsigned>(items & 0xffff); }
    constexpr unsigned typed() const { return static_cast<unsigned>(items >> 16 & 0xffff); }

    // Start a message of u untyped words and t typed items (upper bits cleared).
    constexpr void set_items(unsigned u, unsigned t)
    {
        items = (u & 0xffffu) | static_cast<u64>(t & 0xffffu) << 16;
    }

    // Typed item i (0 = the last 16 bytes of the page); i must be below MAX_TYPED.
    Typed_item &item(unsigned i) { return typed_area[MAX_TYPED - 1 - i]; }
    const Typed_item &item(unsigned i) const { return typed_area[MAX_TYPED - 1 - i]; }

    // UTCB offset of typed item i's CRD word (its metadata word follows).
    static constexpr size_t item_offset(unsigned i) { return 0xff0 - 16 * static_cast<size_t>(i); }
};

static_assert(sizeof(Utcb) == PAGE_SIZE);

// Header and data area (4.1, 3.2).
static_assert(offsetof(Utcb, items) == 0x00 && offsetof(Utcb, xlt) == 0x08);
static_assert(offsetof(Utcb, del) == 0x10 && offsetof(Utcb, tls) == 0x18);
static_assert(offsetof(Utcb, data) == 0x20 && offsetof(Utcb, typed_area) == 0x20);
static_assert(offsetof(Utcb, typed_area[Utcb::MAX_TYPED - 1]) == Utcb::item_offset(0));
static_assert(offsetof(Utcb, typed_area[0]) == Utcb::item_offset(Utcb::MAX_TYPED - 1));

// Architectural state (4.3).
static_assert(offsetof(Utcb, mtd) == 0x020);
static_assert(offsetof(Utcb, inst_len) == 0x028);
static_assert(offsetof(Utcb, rip) == 0x030);
static_assert(offsetof(Utcb, rflags) == 0x038);
static_assert(offsetof(Utcb, intr_state) == 0x040);
static_assert(offsetof(Utcb, actv_state) == 0x044);
static_assert(offsetof(Utcb, intr_info) == 0x048);
static_assert(offsetof(Utcb, intr_error) == 0x04c);
static_assert(offsetof(Utcb, inj) == 0x048);
static_assert(offsetof(Utcb, vect_info) == 0x050);
static_assert(offsetof(Utcb, vect_error) == 0x054);
static_assert(offsetof(Utcb, rax) == 0x058);
static_assert(offsetof(Utcb, rcx) == 0x060);
static_assert(offsetof(Utcb, rdx) == 0x068);
static_assert(offsetof(Utcb, rbx) == 0x070);
static_assert(offsetof(Utcb, rsp) == 0x078);
static_assert(offsetof(Utcb, rbp) == 0x080);
static_assert(offsetof(Utcb, rsi) == 0x088);
static_assert(offsetof(Utcb, rdi) == 0x090);
static_assert(offsetof(Utcb, r8) == 0x098);
static_assert(offsetof(Utcb, r9) == 0x0a0);
static_assert(offsetof(Utcb, r10) == 0x0a8);
static_assert(offsetof(Utcb, r11) == 0x0b0);
static_assert(offsetof(Utcb, r12) == 0x0b8);
static_assert(offsetof(Utcb, r13) == 0x0c0);
static_assert(offsetof(Utcb, r14) == 0x0c8);
static_assert(offsetof(Utcb, r15) == 0x0d0);
static_assert(offsetof(Utcb, qual) == 0x0d8);
static_assert(offsetof(Utcb, ctrl) == 0x0e8);
static_assert(offsetof(Utcb, xcr0) == 0x0f0);
static_assert(offsetof(Utcb, cr0) == 0x0f8);
static_assert(offsetof(Utcb, cr2) == 0x100);
static_assert(offsetof(Utcb, cr3) == 0x108);
static_assert(offsetof(Utcb, cr4) == 0x110);
static_assert(offsetof(Utcb, pdpte) == 0x118);
static_assert(offsetof(Utcb, cr8) == 0x138);
static_assert(offsetof(Utcb, efer) == 0x140);
static_assert(offsetof(Utcb, pat) == 0x148);
static_assert(offsetof(Utcb, star) == 0x150);
static_assert(offsetof(Utcb, lstar) == 0x158);
static_assert(offsetof(Utcb, fmask) == 0x160);
static_assert(offsetof(Utcb, kernel_gs_base) == 0x168);
static_assert(offsetof(Utcb, dr7) == 0x170);
static_assert(offsetof(Utcb, sysenter_cs) == 0x178);
static_assert(offsetof(Utcb, sysenter_rsp) == 0x180);
static_assert(offsetof(Utcb, sysenter_rip) == 0x188);
static_assert(offsetof(Utcb, es) == 0x190);
static_assert(offsetof(Utcb, cs) == 0x1a0);
static_assert(offsetof(Utcb, ss) == 0x1b0);
static_assert(offsetof(Utcb, ds) == 0x1c0);
static_assert(offsetof(Utcb, fs) == 0x1d0);
static_assert(offsetof(Utcb, gs) == 0x1e0);
static_assert(offsetof(Utcb, ldtr) == 0x1f0);
static_assert(offsetof(Utcb, tr) == 0x200);
static_assert(offsetof(Utcb, gdtr) == 0x210);
static_assert(offsetof(Utcb, idtr) == 0x220);
static_assert(offsetof(Utcb, tsc_val) == 0x230);
static_assert(offsetof(Utcb, tsc_off) == 0x238);
static_assert(offsetof(Utcb, tsc_aux) == 0x240);
static_assert(offsetof(Utcb, exc_bitmap) == 0x244);
static_assert(offsetof(Utcb, tpr_threshold) == 0x248);
static_assert(offsetof(Utcb, eoi_bitmap) == 0x250);
static_assert(offsetof(Utcb, vintr_status) == 0x270);
static_assert(offsetof(Utcb, cr0_mon) == 0x278);
static_assert(offsetof(Utcb, cr4_mon) == 0x280);
static_assert(offsetof(Utcb, cr4_mon) + 8 == 0x20 + 8 * Utcb::STATE_WORDS);
