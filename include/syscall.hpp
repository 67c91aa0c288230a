/*
 * Hypercall arguments (ABI 7.0), one accessor class per hypercall. They only
 * slice registers; every check lives in src/syscall.cpp.
 */
#pragma once

#include "abi/crd.hpp"
#include "abi/hypercall.hpp"
#include "abi/qpd.hpp"
#include "idt.hpp"

struct Sys
{
    Exc_frame &f;

    unsigned nr() const { return f.rdi & 0xf; }
    unsigned flags() const { return (f.rdi >> 4) & 0xf; }
    u64 sel() const { return f.rdi >> 8; }
};

struct Sys_create_pd : Sys
{
    u64 owner() const { return f.rsi; }
    Crd crd() const { return Crd(f.rdx); }
};

struct Sys_create_ec : Sys
{
    bool global() const { return flags() & Create_ec_flag::GLOBAL; }
    bool vcpu() const { return flags() & Create_ec_flag::VCPU; }
    bool apic_access() const { return flags() & Create_ec_flag::APIC_ACCESS; }
    u64 pd() const { return f.rsi; }
    unsigned cpu() const { return f.rdx & 0xfff; }
    u64 utcb() const { return f.rdx & ~u64{0xfff}; }
    u64 sp() const { return f.rax; }
    u64 evt() const { return f.r8 & 0xffffffff; }
};

struct Sys_create_sc : Sys
{
    u64 pd() const { return f.rsi; }
    u64 ec() const { return f.rdx; }
    Qpd qpd() const { return Qpd(f.rax); }
};

struct Sys_create_pt : Sys
{
    u64 pd() const { return f.rsi; }
    u64 ec() const { return f.rdx; }
    u64 mtd() const { return f.rax; }
    u64 ip() const { return f.r8; }
};

struct Sys_create_sm : Sys
{
    u64 pd() const { return f.rsi; }
    u64 count() const { return f.rdx; }
    u64 chain() const { return f.rax; }
};

struct Sys_pd_ctrl : Sys
{
    Pd_op op() const { return static_cast<Pd_op>(flags() & SUB_OP_MASK); }
    Crd crd() const { return Crd(f.rsi); }  // lookup
    u64 src_pd() const { return sel(); }    // delegate
    u64 dst_pd() const { return f.rsi; }
    Crd send() const { return Crd(f.rdx); }
    Item_meta meta() const { return Item_meta(f.rax); }
    Crd window() const { return Crd(f.r8); }
};

struct Sys_ec_ctrl : Sys
{
    Ec_op op() const { return static_cast<Ec_op>(flags() & SUB_OP_MASK); }
    u64 tls() const { return f.rsi; }
};

struct Sys_sm_ctrl : Sys
{
    bool down() const { return flags() & Sm_flag::DOWN; }
    bool zero() const { return flags() & Sm_flag::ZC; }
    u64 deadline() const { return (f.rsi << 32) | (f.rdx & 0xffffffff); }
};

struct Sys_call : Sys
{
    bool db() const { return flags() & Call_flag::DB; }
};

struct Sys_revoke : Sys
{
    bool self() const { return flags() & Revoke_flag::SELF; }
    bool remote() const { return flags() & Revoke_flag::REMOTE; }
    Crd crd() const { return Crd(f.rsi); }
    u64 pd() const { return f.rdx; }
};

struct Sys_kstat : Sys
{
    bool report() const { return flags() & Kstat_flag::REPORT; }
    bool census() const { return flags() & Kstat_flag::CENSUS; }
    bool dump() const { return flags() & Kstat_flag::DUMP; }
    u64 since() const { return f.rsi; }  // DUMP: the first serial to list
};

/* Number 15 with Quota_flag::QUOTA (docs/quota.md). */
struct Sys_quota : Sys
{
    bool keyed() const { return (flags() & Quota_flag::QUOTA) && f.r8 == QUOTA_KEY; }
    unsigned op() const { return flags() & SUB_OP_MASK; }
    u64 pd() const { return sel(); }      // INFO, MOVE: source
    u64 dst_pd() const { return f.rsi; }  // MOVE
    u64 bytes() const { return f.rdx; }   // MOVE
    u64 limit() const { return f.rax; }   // CREATE_PD
    Sys_create_pd create() const { return Sys_create_pd{{f}}; }
};

struct Sys_assign_pci : Sys
{
    u64 dev() const { return f.rsi; }   // configuration page, in the target PD
    u64 hint() const { return f.rdx; }  // requester ID that selects the unit
};

struct Sys_assign_gsi : Sys
{
    u64 dev() const { return f.rsi; }
    unsigned cpu() const { return static_cast<unsigned>(f.rdx); }
    u64 chain() const { return f.rax; }
};
