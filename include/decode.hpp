/*
 * Hypercall decoding (ABI 7): for every hypercall, read the arguments, look up its
 * capabilities and check permissions and parameters in the order ABI section 7 lists them,
 * changing nothing. The first failing check decides the status and names the check (the
 * reason the command-line option `hyptrace` logs). src/syscall.cpp performs what a successful
 * decode found; the perform step of create_* is in include/create.hpp.
 *
 * Pure logic, host-tested (test/unit/test_decode.cpp): everything is a template over an
 * environment E, the kernel's in src/syscall.cpp, fakes in the tests. E provides
 *
 *   types E::Pd, E::Ec, E::Sc, E::Pt, E::Sm    Kobject subclasses with a TYPE tag
 *   Capability lookup(u64 sel)                  capability at sel in the caller's object space
 *   bool cpu_online(unsigned cpu)               a CPU of the HIP that is online
 *   bool utcb_free(Pd *pd, u64 addr)            no memory capability, UTCB or mapping at the page
 *   Ec *self()                                  the caller (its cpu and pd)
 *   bool kstat()                                the command-line option `kstat`
 *   bool virt()                                 the HIP announces VMX or SVM (vCPUs can be made)
 *
 * and the objects' fields the checks read: Ec::global, cpu, pd, utcb->tls, state (RUNNABLE),
 * callee, dead, is_vcpu(); Sm::is_signal(), gsi. A selector is free when lookup() finds no capability.
 */
#pragma once

#include "abi/constants.hpp"
#include "abi/status.hpp"
#include "kobject.hpp"
#include "syscall.hpp"

/* The outcome of a check: a status and, when it is not SUCCESS, which check failed. */
struct Verdict
{
    Status status;
    const char *reason;  // static text; nullptr on success

    constexpr bool ok() const { return status == Status::SUCCESS; }
};

constexpr Verdict PASS{Status::SUCCESS, nullptr};
constexpr Verdict fail(Status s, const char *reason) { return {s, reason}; }

namespace Decode {

/* What the checks found: the objects the perform step works on (only those the call names). */
template <typename E> struct Found
{
    typename E::Pd *pd = nullptr;
    typename E::Pd *pd2 = nullptr;  // pd_ctrl delegate: destination
    typename E::Ec *ec = nullptr;
    typename E::Sc *sc = nullptr;
    typename E::Pt *pt = nullptr;
    typename E::Sm *sm = nullptr;
    typename E::Sm *sm2 = nullptr;  // create_sm: chain target; assign_gsi: new chain target
    unsigned perm = 0;              // create_pd: the owner capability's permissions
    u16 rid = 0;                    // assign_pci: the device's requester ID
};

template <typename T> T *as(const Capability &c, unsigned need) { return c.template as<T>(need); }

template <typename E> Verdict sel_free(E &e, u64 sel)
{
    return e.lookup(sel).null() ? PASS : fail(Status::BAD_CAP, "the new selector is not free");
}

/* 7.3 */
template <typename E> Verdict create_pd(E &e, const Sys_create_pd &a, Found<E> &d)
{
    Capability owner = e.lookup(a.owner());
    d.pd = as<typename E::Pd>(owner, Perm_pd::CREATE_PD);
    if (!d.pd)
        return fail(Status::BAD_CAP, "rsi is not a PD with CREATE_PD");
    d.perm = owner.perm;
    return sel_free(e, a.sel());
}

/* 7.4 */
template <typename E> Verdict create_ec(E &e, const Sys_create_ec &a, Found<E> &d)
{
    if (!e.cpu_online(a.cpu()))
        return fail(Status::BAD_CPU, "the CPU is not online");
    // A UTCB at 0 is for machines with virtualization only (the reference's rule; we then map
    // it at page 0 like any other address, docs/virtualization.md).
    if (a.vcpu() && !e.virt())
        return fail(Status::BAD_FTR, "vCPUs need VMX or SVM");
    if (!a.vcpu() && !a.utcb() && !e.virt())
        return fail(Status::BAD_FTR, "UTCB address 0 needs VMX or SVM");
    d.pd = as<typename E::Pd>(e.lookup(a.pd()), Perm_pd::CREATE_EC);
    if (!d.pd)
        return fail(Status::BAD_CAP, "rsi is not a PD with CREATE_EC");
    // A vCPU has no UTCB; on VMX rdx[63:12] names its virtual-APIC page, which is checked and
    // mapped like a UTCB (the reference maps it unchecked: docs/vmx.md).
    if (a.vcpu() && !(e.vmx() && a.utcb()))
        return sel_free(e, a.sel());
    if (a.utcb() >= Abi::USER_ADDR)
        return fail(Status::BAD_PAR, "the UTCB address is not below USER_ADDR");
    if (!e.utcb_free(d.pd, a.utcb()))
        return fail(Status::BAD_PAR, "the UTCB page is occupied in the PD");
    return sel_free(e, a.sel());
}

/* 7.5 */
template <typename E> Verdict create_sc(E &e, const Sys_create_sc &a, Found<E> &d)
{
    d.pd = as<typename E::Pd>(e.lookup(a.pd()), Perm_pd::CREATE_SC);
    if (!d.pd)
        return fail(Status::BAD_CAP, "rsi is not a PD with CREATE_SC");
    d.ec = as<typename E::Ec>(e.lookup(a.ec()), Perm_ec::BIND_SC);
    if (!d.ec)
        return fail(Status::BAD_CAP, "rdx is not an EC with BIND_SC");
    if (!d.ec->global)
        return fail(Status::BAD_CAP, "the EC is not a global EC");
    if (!a.qpd().valid())
        return fail(Status::BAD_PAR, "the QPD has priority 0, >= 128 or quantum 0");
    return sel_free(e, a.sel());
}

/* 7.6 */
template <typename E> Verdict create_pt(E &e, const Sys_create_pt &a, Found<E> &d)
{
    d.pd = as<typename E::Pd>(e.lookup(a.pd()), Perm_pd::CREATE_PT);
    if (!d.pd)
        return fail(Status::BAD_CAP, "rsi is not a PD with CREATE_PT");
    d.ec = as<typename E::Ec>(e.lookup(a.ec()), Perm_ec::BIND_PT);
    if (!d.ec)
        return fail(Status::BAD_CAP, "rdx is not an EC with BIND_PT");
    if (d.ec->global)
        return fail(Status::BAD_CAP, "the EC is a global EC");
    if (d.ec->is_vcpu())  // it never takes calls (docs/virtualization.md)
        return fail(Status::BAD_CAP, "the EC is a vCPU");
    return sel_free(e, a.sel());
}

/* 7.7 */
template <typename E> Verdict create_sm(E &e, const Sys_create_sm &a, Found<E> &d)
{
    d.pd = as<typename E::Pd>(e.lookup(a.pd()), Perm_pd::CREATE_SM);
    if (!d.pd)
        return fail(Status::BAD_CAP, "rsi is not a PD with CREATE_SM");
    if (a.chain()) {
        d.sm2 = as<typename E::Sm>(e.lookup(a.chain()), Perm_sm::UP);
        if (!d.sm2)
            return fail(Status::BAD_CAP, "rax is not an SM with UP");
        if (d.sm2->is_signal())
            return fail(Status::BAD_CAP, "the chain target is itself a signal");
    }
    return sel_free(e, a.sel());
}

/* 7.8: only the remote PD can fail; the SM argument is ignored. */
template <typename E> Verdict revoke(E &e, const Sys_revoke &a, Found<E> &d)
{
    if (!a.remote())
        return PASS;
    d.pd = as<typename E::Pd>(e.lookup(a.pd()), 0);
    if (!d.pd)
        return fail(Status::BAD_CAP, "remote: rdx is not a PD");
    return PASS;
}

/* 7.9 */
template <typename E> Verdict pd_ctrl(E &e, const Sys_pd_ctrl &a, Found<E> &d)
{
    switch (a.op()) {
    case Pd_op::LOOKUP: return PASS;
    case Pd_op::MAP_ACCESS_PAGE:  // the APIC-access page exists for VMX guests only
        if (a.crd().type() != Crd::MEM || a.crd().rights() != Perm_mem::RW || a.crd().order())
            return fail(Status::BAD_PAR, "map_access_page: not a memory CRD of order 0 with rights RW");
        if (!e.vmx())
            return fail(Status::BAD_FTR, "map_access_page: no APIC-access page without VMX");
        return PASS;
    case Pd_op::DELEGATE:
        d.pd = as<typename E::Pd>(e.lookup(a.src_pd()), 0);
        if (!d.pd)
            return fail(Status::BAD_CAP, "delegate: the source is not a PD");
        d.pd2 = as<typename E::Pd>(e.lookup(a.dst_pd()), 0);
        if (!d.pd2)
            return fail(Status::BAD_CAP, "delegate: rsi is not a PD");
        return PASS;
    }
    return fail(Status::BAD_PAR, "sub-operation 3 does not exist");
}

/* 7.10 */
template <typename E> Verdict ec_ctrl(E &e, const Sys_ec_ctrl &a, Found<E> &d)
{
    switch (a.op()) {
    case Ec_op::RECALL:
        d.ec = as<typename E::Ec>(e.lookup(a.sel()), Perm_ec::RECALL);
        if (!d.ec)
            return fail(Status::BAD_CAP, "recall: not an EC with RECALL");
        return PASS;
    case Ec_op::HELP: {
        auto *ec = d.ec = as<typename E::Ec>(e.lookup(a.sel()), 0);
        auto *self = e.self();
        if (!ec)
            return fail(Status::BAD_CAP, "help: not an EC");
        if (ec->cpu != self->cpu)
            return fail(Status::BAD_CPU, "help: the EC is on another CPU");
        if (ec->is_vcpu())
            return fail(Status::BAD_PAR, "help: the EC is a vCPU");
        if (ec->state != E::Ec::RUNNABLE)
            return fail(Status::BAD_PAR, "help: the EC is blocked");
        if (ec->callee)
            return fail(Status::BAD_PAR, "help: the EC waits for a reply");
        if (ec->pd != self->pd)
            return fail(Status::BAD_PAR, "help: the EC is in another PD");
        if (ec->utcb->tls != a.tls())
            return fail(Status::BAD_PAR, "help: the EC's TLS word is not rsi");
        if (ec->dead)
            return fail(Status::BAD_PAR, "help: the EC is dead");
        return PASS;
    }
    case Ec_op::YIELD:
    case Ec_op::RESCHEDULE: return PASS;
    }
    return PASS;
}

/* 7.11 */
template <typename E> Verdict sc_ctrl(E &e, const Sys &a, Found<E> &d)
{
    d.sc = as<typename E::Sc>(e.lookup(a.sel()), Perm_sc::CTRL);
    if (!d.sc)
        return fail(Status::BAD_CAP, "not an SC with CTRL");
    return PASS;
}

/* 7.12 */
template <typename E> Verdict pt_ctrl(E &e, const Sys &a, Found<E> &d)
{
    d.pt = as<typename E::Pt>(e.lookup(a.sel()), Perm_pt::CTRL);
    if (!d.pt)
        return fail(Status::BAD_CAP, "not a PT with CTRL");
    return PASS;
}

/*
 * 7.13. The ABI checks for a signal (step 2) after unmasking a GSI semaphore's pin (step 1);
 * a GSI semaphore is never a signal, so checking first gives the same answers with no effect.
 */
template <typename E> Verdict sm_ctrl(E &e, const Sys_sm_ctrl &a, Found<E> &d)
{
    if (!a.down())
        return (d.sm = as<typename E::Sm>(e.lookup(a.sel()), Perm_sm::UP))
                   ? PASS
                   : fail(Status::BAD_CAP, "up: not an SM with UP");
    d.sm = as<typename E::Sm>(e.lookup(a.sel()), Perm_sm::DOWN);
    if (!d.sm)
        return fail(Status::BAD_CAP, "down: not an SM with DOWN");
    if (d.sm->is_signal())
        return fail(Status::BAD_CAP, "down: the SM is a signal");
    return PASS;
}

/*
 * 7.14. Step 2: rsi in the target PD must map a page of the MMCONFIG region (d.rid: the requester
 * ID it stands for). Step 3: a PCI function must answer at rdx behind an IOMMU unit (never without
 * DMA remapping). The function at rsi must too: its context entry is the one set, and one for a
 * function nobody has would only waste a context table (docs/iommu.md).
 */
template <typename E> Verdict assign_pci(E &e, const Sys_assign_pci &a, Found<E> &d)
{
    d.pd = as<typename E::Pd>(e.lookup(a.sel()), 0);
    if (!d.pd)
        return fail(Status::BAD_CAP, "not a PD");
    long rid = e.config_rid(d.pd, a.dev());
    if (rid < 0)
        return fail(Status::BAD_DEV, "rsi maps no PCI configuration page in the target PD");
    if (a.hint() > 0xffff || !e.iommu_device(static_cast<u16>(a.hint())))
        return fail(Status::BAD_DEV, "no PCI device with requester ID rdx behind an IOMMU unit");
    if (!e.iommu_device(static_cast<u16>(rid)))
        return fail(Status::BAD_DEV, "no PCI device behind an IOMMU unit answers at rsi");
    d.rid = static_cast<u16>(rid);
    return PASS;
}

/*
 * 7.15 steps 1 to 4 up to their effects: d.sm2 is the new chain target (d.sm itself: unchain),
 * nullptr if rax is ~0. Step 5 (the device page of an MSI) follows the chaining and is checked
 * by the perform step.
 */
template <typename E> Verdict assign_gsi(E &e, const Sys_assign_gsi &a, Found<E> &d)
{
    if (!e.cpu_online(a.cpu()))
        return fail(Status::BAD_CPU, "the CPU is not online");
    d.sm = as<typename E::Sm>(e.lookup(a.sel()), 0);
    if (!d.sm)
        return fail(Status::BAD_CAP, "not an SM");
    if (d.sm->gsi < 0)
        return fail(Status::BAD_CAP, "the SM is not a GSI semaphore");
    if (a.chain() == ~u64{0})
        return PASS;
    d.sm2 = as<typename E::Sm>(e.lookup(a.chain()), 0);
    if (!d.sm2)
        return fail(Status::BAD_CAP, "rax is not an SM");
    if (d.sm2 != d.sm && d.sm2->gsi >= 0)
        return fail(Status::BAD_CAP, "rax is another GSI semaphore");
    return PASS;
}

/*
 * Number 15 with Quota_flag::QUOTA and QUOTA_KEY (docs/quota.md): INFO and MOVE (CREATE_PD is
 * create_pd's decode). Without the key, kstat's decode decides (BAD_HYP on a NOVA-2019 kernel).
 */
template <typename E> Verdict quota(E &e, const Sys_quota &a, Found<E> &d)
{
    switch (a.op()) {
    case static_cast<unsigned>(Quota_op::INFO):
        d.pd = as<typename E::Pd>(e.lookup(a.pd()), 0);
        return d.pd ? PASS : fail(Status::BAD_CAP, "sel is not a PD");
    case static_cast<unsigned>(Quota_op::MOVE):
        d.pd = as<typename E::Pd>(e.lookup(a.pd()), Perm_pd::CREATE_PD);
        if (!d.pd)
            return fail(Status::BAD_CAP, "sel is not a PD with CREATE_PD (the source of the quota)");
        d.pd2 = as<typename E::Pd>(e.lookup(a.dst_pd()), 0);
        return d.pd2 ? PASS : fail(Status::BAD_CAP, "rsi is not a PD");
    default: return fail(Status::BAD_PAR, "no such quota operation");
    }
}

/* Number 15: BAD_HYP (ABI 1.6) unless `kstat` and Kstat_flag::REPORT (docs/objects.md). */
template <typename E> Verdict kstat(E &e, const Sys_kstat &a, Found<E> &)
{
    if (!e.kstat())
        return fail(Status::BAD_HYP, "number 15 is no hypercall (no kstat option)");
    if (!a.report())
        return fail(Status::BAD_HYP, "number 15 is no hypercall (kstat without REPORT)");
    return PASS;
}

}  // namespace Decode

/* Names for the hyptrace log. */
constexpr const char *hypercall_name(unsigned nr)
{
    constexpr const char *names[16] = {
        "call",    "reply",   "create_pd", "create_ec", "create_sc", "create_pt",  "create_sm",  "revoke",
        "pd_ctrl", "ec_ctrl", "sc_ctrl",   "pt_ctrl",   "sm_ctrl",   "assign_pci", "assign_gsi", "kstat"};
    return names[nr & 0xf];
}
