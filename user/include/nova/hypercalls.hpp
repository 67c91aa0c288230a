/*
 * Hypercall bindings: one inline function per hypercall with the exact
 * register use of ABI 7.0. Arguments go in rdi (identifier word: number |
 * flags << 4 | selector << 8), rsi, rdx, rax, r8; `syscall` clobbers rcx and
 * r11; the UTCB may change, hence "memory". Registers the ABI names as
 * outputs are outputs here; all others are inputs the kernel preserves.
 */
#pragma once

#include "abi/crd.hpp"
#include "abi/hypercall.hpp"
#include "abi/qpd.hpp"
#include "abi/status.hpp"
#include "abi/utcb.hpp"

namespace nova {

namespace detail {
constexpr u64 id(Hypercall h, unsigned flags = 0, u64 sel = 0) { return Hypercall_id(h, flags, sel).value(); }
constexpr u64 id(Hypercall h, Pd_op op, u64 sel = 0) { return id(h, static_cast<unsigned>(op), sel); }
constexpr u64 id(Hypercall h, Ec_op op, u64 sel = 0) { return id(h, static_cast<unsigned>(op), sel); }
}  // namespace detail

// All five argument registers in and out, for tests that check exact register behaviour.
struct Regs
{
    u64 rdi, rsi, rdx, rax, r8;
};

inline void hypercall(Regs &r)
{
    register u64 r8 asm("r8") = r.r8;
    asm volatile("syscall"
                 : "+D"(r.rdi), "+S"(r.rsi), "+d"(r.rdx), "+a"(r.rax), "+r"(r8)
                 :
                 : "rcx", "r11", "memory");
    r.r8 = r8;
}

/*
 * call (7.1). On success the kernel leaves rdi unchanged, so its low byte is
 * the caller's own flags (0x10 with DB); this binding reports SUCCESS then.
 */
inline Status call(u64 pt, unsigned flags = 0)
{
    u64 const in = detail::id(Hypercall::CALL, flags, pt);
    u64 rdi = in;
    asm volatile("syscall" : "+D"(rdi) : : "rcx", "r11", "memory");
    return rdi == in ? Status::SUCCESS : status_of(rdi);
}

// reply (7.2): never returns; the EC's next portal entry starts with the rsp it has here.
[[noreturn]] inline void reply(u64 sm = 0)
{
    asm volatile("syscall" : : "D"(detail::id(Hypercall::REPLY, 0, sm)) : "rcx", "r11", "memory");
    __builtin_unreachable();
}

// reply, first switching to `sp` so the next portal entry starts with rsp = sp.
[[noreturn]] inline void reply_on_stack(u64 sp, u64 sm = 0)
{
    asm volatile("mov %1, %%rsp; syscall"
                 :
                 : "D"(detail::id(Hypercall::REPLY, 0, sm)), "r"(sp)
                 : "rcx", "r11", "memory");
    __builtin_unreachable();
}

// create_pd (7.3): `crd` (object CRD) is delegated into the new PD at selectors 0..2^order-1.
inline Status create_pd(u64 sel, u64 owner_pd, Crd crd = Crd())
{
    u64 rdi = detail::id(Hypercall::CREATE_PD, 0, sel);
    asm volatile("syscall" : "+D"(rdi) : "S"(owner_pd), "d"(crd.value()) : "rcx", "r11", "memory");
    return status_of(rdi);
}

/*
 * create_ec (7.4). `utcb` is the UTCB address in `pd` (vCPU: virtual-APIC page
 * address, 0 = none); `sp` the initial rsp; `evt` the event selector base;
 * `flags` from Create_ec_flag. CPU numbers above 0xfff are passed as 0xfff
 * (invalid) rather than truncated to some other CPU.
 */
inline Status create_ec(u64 sel, u64 pd, unsigned cpu, u64 utcb, u64 sp, u64 evt, unsigned flags)
{
    u64 rdi = detail::id(Hypercall::CREATE_EC, flags, sel);
    u64 const rdx = (utcb & ~u64{0xfff}) | (cpu > 0xfff ? 0xfff : cpu);
    register u64 r8 asm("r8") = evt;
    asm volatile("syscall" : "+D"(rdi) : "S"(pd), "d"(rdx), "a"(sp), "r"(r8) : "rcx", "r11", "memory");
    return status_of(rdi);
}

inline Status create_ec_local(u64 sel, u64 pd, unsigned cpu, u64 utcb, u64 sp, u64 evt)
{
    return create_ec(sel, pd, cpu, utcb, sp, evt, 0);
}

inline Status create_ec_global(u64 sel, u64 pd, unsigned cpu, u64 utcb, u64 sp, u64 evt)
{
    return create_ec(sel, pd, cpu, utcb, sp, evt, Create_ec_flag::GLOBAL);
}

// create_sc (7.5): bind a new SC with `qpd` to the global EC `ec`.
inline Status create_sc(u64 sel, u64 pd, u64 ec, Qpd qpd)
{
    u64 rdi = detail::id(Hypercall::CREATE_SC, 0, sel);
    asm volatile("syscall" : "+D"(rdi) : "S"(pd), "d"(ec), "a"(qpd.value()) : "rcx", "r11", "memory");
    return status_of(rdi);
}

// create_pt (7.6): portal to the local EC `ec`, entered at `ip` with state `mtd`.
inline Status create_pt(u64 sel, u64 pd, u64 ec, u64 mtd, u64 ip)
{
    u64 rdi = detail::id(Hypercall::CREATE_PT, 0, sel);
    register u64 r8 asm("r8") = ip;
    asm volatile("syscall" : "+D"(rdi) : "S"(pd), "d"(ec), "a"(mtd), "r"(r8) : "rcx", "r11", "memory");
    return status_of(rdi);
}

// create_sm (7.7): chain = 0 gives a plain semaphore with `count`, else a signal of value `count`.
inline Status create_sm(u64 sel, u64 pd, u64 count, u64 chain = 0)
{
    u64 rdi = detail::id(Hypercall::CREATE_SM, 0, sel);
    asm volatile("syscall" : "+D"(rdi) : "S"(pd), "d"(count), "a"(chain) : "rcx", "r11", "memory");
    return status_of(rdi);
}

// revoke (7.8): flags from Revoke_flag; `pd` is used with REMOTE. rdx is clobbered.
inline Status revoke(Crd crd, unsigned flags = 0, u64 pd = 0, u64 sm = 0)
{
    u64 rdi = detail::id(Hypercall::REVOKE, flags, sm);
    u64 rdx = pd;
    asm volatile("syscall" : "+D"(rdi), "+d"(rdx) : "S"(crd.value()) : "rcx", "r11", "memory");
    return status_of(rdi);
}

struct Lookup_result
{
    Status status;
    Crd crd;  // the node containing the base, or null
};

// pd_ctrl lookup (7.9.1).
inline Lookup_result pd_lookup(Crd crd)
{
    u64 rdi = detail::id(Hypercall::PD_CTRL, Pd_op::LOOKUP);
    u64 rsi = crd.value();
    asm volatile("syscall" : "+D"(rdi), "+S"(rsi) : : "rcx", "r11", "memory");
    return {status_of(rdi), Crd(rsi)};
}

// pd_ctrl map_access_page (7.9.2): `crd` must be a memory CRD of order 0 with rights 0x3.
inline Status pd_map_access_page(Crd crd)
{
    u64 rdi = detail::id(Hypercall::PD_CTRL, Pd_op::MAP_ACCESS_PAGE);
    asm volatile("syscall" : "+D"(rdi) : "S"(crd.value()) : "rcx", "r11", "memory");
    return status_of(rdi);
}

struct Delegate_result
{
    Status status;
    Crd crd;         // result CRD (null: nothing delegated)
    Item_meta meta;  // result metadata
};

// pd_ctrl delegate (7.9.3): one typed item from `src_pd` to `dst_pd`; `window` is the receive window.
inline Delegate_result pd_delegate(u64 src_pd, u64 dst_pd, Crd send, Item_meta meta, Crd window)
{
    u64 rdi = detail::id(Hypercall::PD_CTRL, Pd_op::DELEGATE, src_pd);
    u64 rdx = send.value(), rax = meta.value();
    register u64 r8 asm("r8") = window.value();
    asm volatile("syscall" : "+D"(rdi), "+d"(rdx), "+a"(rax) : "S"(dst_pd), "r"(r8) : "rcx", "r11", "memory");
    return {status_of(rdi), Crd(rdx), Item_meta(rax)};
}

// ec_ctrl (7.10).
inline Status ec_ctrl(Ec_op op, u64 ec = 0, u64 tls = 0)
{
    u64 rdi = detail::id(Hypercall::EC_CTRL, op, ec);
    asm volatile("syscall" : "+D"(rdi) : "S"(tls) : "rcx", "r11", "memory");
    return status_of(rdi);
}

inline Status ec_recall(u64 ec) { return ec_ctrl(Ec_op::RECALL, ec); }
inline Status ec_yield() { return ec_ctrl(Ec_op::YIELD); }
inline Status ec_help(u64 ec, u64 tls) { return ec_ctrl(Ec_op::HELP, ec, tls); }
inline Status ec_reschedule() { return ec_ctrl(Ec_op::RESCHEDULE); }

struct Sc_time
{
    Status status;
    u64 time_us;  // consumed time: rsi << 32 | rdx[31:0]
};

// sc_ctrl (7.11).
inline Sc_time sc_ctrl(u64 sc)
{
    u64 rdi = detail::id(Hypercall::SC_CTRL, 0, sc);
    u64 rsi, rdx;
    asm volatile("syscall" : "+D"(rdi), "=S"(rsi), "=d"(rdx) : : "rcx", "r11", "memory");
    Status s = status_of(rdi);
    return {s, s == Status::SUCCESS ? rsi << 32 | (rdx & 0xffffffff) : 0};
}

// pt_ctrl (7.12): later calls through `pt` deliver rdi = id.
inline Status pt_ctrl(u64 pt, u64 id)
{
    u64 rdi = detail::id(Hypercall::PT_CTRL, 0, pt);
    asm volatile("syscall" : "+D"(rdi) : "S"(id) : "rcx", "r11", "memory");
    return status_of(rdi);
}

// sm_ctrl up (7.13).
inline Status sm_up(u64 sm)
{
    u64 rdi = detail::id(Hypercall::SM_CTRL, 0, sm);
    asm volatile("syscall" : "+D"(rdi) : : "rcx", "r11", "memory");
    return status_of(rdi);
}

/*
 * Result of a down. rsi/rdx are returned as the kernel left them: a consumed
 * signal (12.3) puts its value in rsi and its pending count (>= 1) in rdx;
 * otherwise they still hold the deadline halves. With deadline 0, rdx != 0
 * therefore means a signal was received.
 */
struct Sm_result
{
    Status status;
    u64 rsi;
    u64 rdx;

    u64 signal_value() const { return rsi; }
    u64 signal_count() const { return rdx; }
};

// sm_ctrl down (7.13): `deadline` is an absolute TSC value, 0 = wait forever; zc zeroes the counter.
inline Sm_result sm_down(u64 sm, u64 deadline = 0, bool zc = false)
{
    u64 rdi = detail::id(Hypercall::SM_CTRL, Sm_flag::DOWN | (zc ? Sm_flag::ZC : 0), sm);
    u64 rsi = deadline >> 32, rdx = deadline & 0xffffffff;
    asm volatile("syscall" : "+D"(rdi), "+S"(rsi), "+d"(rdx) : : "rcx", "r11", "memory");
    return {status_of(rdi), rsi, rdx};
}

// assign_pci (7.14): `cfg_page` is the config-space page's address in the target PD.
inline Status assign_pci(u64 pd, u64 cfg_page, u64 rid_hint)
{
    u64 rdi = detail::id(Hypercall::ASSIGN_PCI, 0, pd);
    asm volatile("syscall" : "+D"(rdi) : "S"(cfg_page), "d"(rid_hint) : "rcx", "r11", "memory");
    return status_of(rdi);
}

struct Gsi_result
{
    Status status;
    u64 msi_addr;  // rsi
    u32 msi_data;  // rdx[31:0]
};

constexpr u64 GSI_KEEP_CHAIN = ~u64{0};

// assign_gsi (7.15): route the GSI semaphore `sm` to `cpu`; `chain` = SM selector or GSI_KEEP_CHAIN.
inline Gsi_result assign_gsi(u64 sm, u64 dev_page, unsigned cpu, u64 chain = GSI_KEEP_CHAIN)
{
    u64 rdi = detail::id(Hypercall::ASSIGN_GSI, 0, sm);
    u64 rsi = dev_page, rdx = cpu;
    asm volatile("syscall" : "+D"(rdi), "+S"(rsi), "+d"(rdx) : "a"(chain) : "rcx", "r11", "memory");
    Status s = status_of(rdi);
    if (s != Status::SUCCESS)
        return {s, 0, 0};
    return {s, rsi, static_cast<u32>(rdx)};
}

/*
 * Kernel statistics: this project's debugging extension (docs/objects.md),
 * hypercall number 15 with flag 0 (rdi = 0x1f). Only a kernel booted with
 * `kstat` answers it; otherwise number 15 is BAD_HYP as the ABI says (1.6).
 */
struct Kstat
{
    u64 free_pages;  // rsi: free pages of the kernel memory pool
    u64 objects;     // rdx: kernel objects in use (PD, EC, SC, PT, SM, mapping-database nodes)
    u64 pending;     // rax: objects waiting for deferred reclamation (freed after a grace period)
};

// kstat: `out` is written only on SUCCESS. `more`: Kstat_flag::CENSUS (the kernel writes a
// Kstat_census to our UTCB's data words: nova::kstat_census) and DUMP (the kernel prints every
// object with a serial >= since on its console; root PD only, ignored for others).
inline Status kstat(Kstat &out, unsigned more = 0, u64 since = 0)
{
    u64 rdi = Hypercall_id(Hypercall::KSTAT, Kstat_flag::REPORT | more, 0).value();
    u64 rsi = since, rdx = 0, rax = 0;
    asm volatile("syscall" : "+D"(rdi), "+S"(rsi), "+d"(rdx), "+a"(rax) : : "rcx", "r11", "memory");
    Status s = status_of(rdi);
    if (s == Status::SUCCESS)
        out = {rsi, rdx, rax};
    return s;
}

/*
 * Kernel-memory quotas: this project's extension (docs/quota.md), number 15 with
 * Quota_flag::QUOTA, the operation in flags bits 1:0 and QUOTA_KEY in r8. Every kernel of this
 * project answers it; a NOVA-2019 kernel answers BAD_HYP.
 */
struct Quota_info
{
    u64 limit;  // bytes the PD's quota holds
    u64 used;   // bytes charged to it
};

namespace detail {
inline u64 quota_id(Quota_op op, u64 sel)
{
    return Hypercall_id(Hypercall::KSTAT, Quota_flag::QUOTA | static_cast<unsigned>(op), sel).value();
}
}  // namespace detail

// The limit and use of the quota of `pd` (any permission); `out` is written only on SUCCESS.
inline Status quota_info(u64 pd, Quota_info &out)
{
    Regs r{detail::quota_id(Quota_op::INFO, pd), 0, 0, 0, QUOTA_KEY};
    hypercall(r);
    Status s = status_of(r.rdi);
    if (s == Status::SUCCESS)
        out = {r.rsi, r.rdx};
    return s;
}

// Move `bytes` of limit from the quota of `from` (a PD capability with CREATE_PD) to that of `to`.
inline Status quota_move(u64 from, u64 to, u64 bytes)
{
    Regs r{detail::quota_id(Quota_op::MOVE, from), to, bytes, 0, QUOTA_KEY};
    hypercall(r);
    return status_of(r.rdi);
}

// create_pd (7.3) with a quota of its own of `limit` bytes, taken from our PD's quota.
inline Status create_pd_quota(u64 sel, u64 owner_pd, u64 limit, Crd crd = Crd())
{
    Regs r{detail::quota_id(Quota_op::CREATE_PD, sel), owner_pd, crd.value(), limit, QUOTA_KEY};
    hypercall(r);
    return status_of(r.rdi);
}

// kstat with the census, copied from `utcb` (the calling EC's UTCB); both written only on SUCCESS.
inline Status kstat_census(Kstat &out, Kstat_census &census, const Utcb &utcb)
{
    Status s = kstat(out, Kstat_flag::CENSUS);
    if (s == Status::SUCCESS)
        __builtin_memcpy(&census, utcb.data, sizeof census);
    return s;
}

}  // namespace nova
