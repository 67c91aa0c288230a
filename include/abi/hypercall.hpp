/*
 * Hypercall numbers, per-call flag bits and the identifier word in rdi
 * (ABI 1.3, 1.6, 7.0). Shared by the kernel (include/syscall.hpp decodes with these) and the
 * user SDK (user/include/nova/hypercalls.hpp encodes with them).
 */
#pragma once

#include "../types.hpp"
#include "constants.hpp"

enum class Hypercall : u8 {
    CALL = 0x0,
    REPLY = 0x1,
    CREATE_PD = 0x2,
    CREATE_EC = 0x3,
    CREATE_SC = 0x4,
    CREATE_PT = 0x5,
    CREATE_SM = 0x6,
    REVOKE = 0x7,
    PD_CTRL = 0x8,
    EC_CTRL = 0x9,
    SC_CTRL = 0xa,
    PT_CTRL = 0xb,
    SM_CTRL = 0xc,
    ASSIGN_PCI = 0xd,
    ASSIGN_GSI = 0xe,
    // 0xf is no hypercall of the ABI: it answers BAD_HYP, except with the command-line option
    // `kstat` and Kstat_flag::REPORT (this project's extension, docs/objects.md), and for the
    // quota extension (Quota_flag::QUOTA and QUOTA_KEY in r8, docs/quota.md).
    KSTAT = 0xf,
};

/*
 * Flag values as they appear in the 4-bit flags field (flag n = rdi bit 4+n).
 */
struct Call_flag
{
    static constexpr unsigned DB = 1u << 0;                // disable blocking: COM_TIM if busy
    static constexpr unsigned DISABLE_DONATION = 1u << 1;  // named by the ABI, ignored by the kernel
    static constexpr unsigned DISABLE_REPLY = 1u << 2;     // named by the ABI, ignored by the kernel
};

struct Create_ec_flag
{
    static constexpr unsigned GLOBAL = 1u << 0;
    static constexpr unsigned VCPU = 1u << 1;
    static constexpr unsigned APIC_ACCESS = 1u << 2;  // vCPU on VMX: use the PD's APIC-access page
};

struct Revoke_flag
{
    static constexpr unsigned SELF = 1u << 0;
    static constexpr unsigned REMOTE = 1u << 1;
};

struct Sm_flag
{
    static constexpr unsigned DOWN = 1u << 0;  // clear = up
    static constexpr unsigned ZC = 1u << 1;    // down: zero the counter instead of decrementing
};

struct Kstat_flag
{
    static constexpr unsigned REPORT = 1u << 0;  // without it number 15 is BAD_HYP even with `kstat`
    static constexpr unsigned CENSUS = 1u << 1;  // also a Kstat_census in the caller's UTCB data words
    static constexpr unsigned DUMP = 1u << 2;    // root PD only: print the objects with serial >= rsi
};

/*
 * The kernel-memory quota extension (docs/quota.md): number 15 with Quota_flag::QUOTA, the
 * operation in flags bits 1:0 and QUOTA_KEY in r8. Without the key (or without the flag)
 * number 15 is what it was (BAD_HYP, or kstat), so no NOVA-2019 binary reaches it by chance.
 */
struct Quota_flag
{
    static constexpr unsigned QUOTA = 1u << 3;
};
constexpr u64 QUOTA_KEY = 0x4154'4f55'514d'454bull;  // "KEMQUOTA" in little-endian bytes
enum class Quota_op : u8 {
    INFO = 0,       // sel: a PD (any permission) -> rsi = limit, rdx = use of its quota (bytes)
    MOVE = 1,       // sel: source PD (CREATE_PD), rsi: destination PD (any), rdx: bytes
    CREATE_PD = 2,  // create_pd's arguments (sel, rsi owner, rdx CRD), rax: the new quota (bytes)
};

/*
 * kstat with Kstat_flag::CENSUS (this project's debugging extension, docs/debugging.md): the
 * kernel's objects by type, written to the caller's UTCB from data word 0 on. Counts are of
 * objects allocated, including those retired and waiting for their grace period.
 */
struct Kstat_census
{
    u64 serial;  // the creation number the next object gets (Kstat_flag::DUMP's mark)
    u64 pds, ecs, clones, scs, pts, sms;  // ecs includes the clones of cross-CPU calls
    u64 nodes;                            // mapping-database nodes
    u64 slab_pages;                       // pages the slab caches of these objects and nodes hold
    u64 dying_pds;                        // PDs whose last capability went and that still exist
    u64 dead_ecs;                         // ECs killed or retired that still exist
    u64 retired_scs;                      // SCs whose last capability went that still exist
    // Where device interrupts arrive (tests of assign_gsi's routing, docs/iommu.md): per GSI the
    // number of the CPU that took its last interrupt, ~0 if none came yet.
    u32 gsi_cpu[Abi::NUM_GSI];
};

// Sub-operations of pd_ctrl and ec_ctrl live in flags bits 1:0.
constexpr unsigned SUB_OP_MASK = 0x3;
enum class Pd_op : u8 { LOOKUP = 0, MAP_ACCESS_PAGE = 1, DELEGATE = 2 };
enum class Ec_op : u8 { RECALL = 0, YIELD = 1, HELP = 2, RESCHEDULE = 3 };

/*
 * The identifier word: number in bits 3:0, flags in 7:4, the first selector
 * argument in 63:8 (56 bits; higher selector bits are cut off).
 */
class Hypercall_id
{
    u64 val;

  public:
    constexpr explicit Hypercall_id(u64 rdi) : val(rdi) {}
    constexpr Hypercall_id(Hypercall h, unsigned flags, u64 sel)
        : val(static_cast<u64>(h) | static_cast<u64>(flags & 0xf) << 4 | sel << 8)
    {
    }

    constexpr unsigned number() const { return static_cast<unsigned>(val & 0xf); }
    constexpr unsigned flags() const { return static_cast<unsigned>(val >> 4 & 0xf); }
    constexpr u64 sel() const { return val >> 8; }
    constexpr u64 value() const { return val; }
};
