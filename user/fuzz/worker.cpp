/*
 * A worker: a global EC in a child PD that makes random hypercalls until the
 * controller kills its PD. Every hypercall goes through fz_raw (asm.S), which
 * loads every register and records every register the kernel returned, so
 * each one is also checked against what the ABI fixes (1.4, 1.5): a status
 * byte the ABI knows, full-width status on failure, preserved registers,
 * RFLAGS, BAD_HYP for number 15. The arguments come from pools that mix
 * valid values (our own objects, shared objects, siblings' PDs) with edge
 * and random ones (docs/testing.md).
 *
 * A worker's random stream depends only on the seed, its slot and its
 * generation, so a seed replays the same sequence of attempted hypercalls
 * per worker; what the kernel answers also depends on the other CPUs.
 */
#include "fuzz.hpp"

#define FAULT_DECL(n)                                                                                        \
    extern "C" void fz_f_##n(u64);                                                                           \
    extern "C" char fz_f_##n##_end[];
FAULT_DECL(ud2)
FAULT_DECL(int3)
FAULT_DECL(int4)
FAULT_DECL(int80)
FAULT_DECL(int2)
FAULT_DECL(icebp)
FAULT_DECL(into)
FAULT_DECL(lock_nop)
FAULT_DECL(hlt)
FAULT_DECL(cli)
FAULT_DECL(rdmsr)
FAULT_DECL(mov_cr0)
FAULT_DECL(swapgs)
FAULT_DECL(sysenter)
FAULT_DECL(lgdt)
FAULT_DECL(div0)
FAULT_DECL(idiv_ovf)
FAULT_DECL(in_port)
FAULT_DECL(out_port)
FAULT_DECL(read)
FAULT_DECL(write)
FAULT_DECL(jump)
FAULT_DECL(call)
FAULT_DECL(push_bad_rsp)
FAULT_DECL(iret_kernel_cs)
FAULT_DECL(load_ss_kernel)
FAULT_DECL(movaps_unaligned)
FAULT_DECL(x87_div0)
FAULT_DECL(sse_div0)
FAULT_DECL(ldmxcsr_reserved)
FAULT_DECL(tf_syscall)
#undef FAULT_DECL

namespace fuzz {

namespace {

constexpr u64 RF_TF = 0x100, RF_IF = 0x200, RF_DF = 0x400, RF_NT = 0x4000, RF_AC = 0x40000;

// ---- what a worker remembers ----------------------------------------------------------------

struct Known
{
    u64 sel;
    Obj_type type;
};

constexpr unsigned MAX_KNOWN = 32;

struct Ctx
{
    Worker &w;
    u64 gen;
    Rng r;
    Known known[MAX_KNOWN];
    unsigned nknown;
    u64 n;  // hypercalls of this generation
};

void remember(Ctx &c, u64 sel, Obj_type t)
{
    c.known[c.nknown % MAX_KNOWN] = {sel, t};
    c.nknown++;
}

// ---- argument pools -------------------------------------------------------------------------

u64 any_known(Ctx &c, Obj_type t, u64 fallback)
{
    unsigned n = c.nknown < MAX_KNOWN ? c.nknown : MAX_KNOWN;
    if (!n)
        return fallback;
    for (unsigned tries = 0; tries < 4; tries++) {
        const Known &k = c.known[c.r.below(n)];
        if (k.type == t)
            return k.sel;
    }
    return fallback;
}

u64 work_sel(Ctx &c) { return C_WORK + c.r.below(C_WORK_N); }

u64 edge_sel(Ctx &c)
{
    static constexpr u64 pool[] = {0,
                                   1,
                                   SEL_NUM - 1,
                                   SEL_NUM,
                                   SEL_NUM + C_SELF,  // wraps to our PD
                                   SEL_NUM * 3 + C_SMS,
                                   (u64{1} << 56) - 1,
                                   u64{1} << 55};
    return pool[c.r.below(sizeof(pool) / sizeof(pool[0]))];
}

u64 pick_sel(Ctx &c)
{
    unsigned n = c.nknown < MAX_KNOWN ? c.nknown : MAX_KNOWN;
    switch (c.r.below(16)) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 4: return n ? c.known[c.r.below(n)].sel : work_sel(c);
    case 5:
    case 6:
    case 7: return work_sel(c);
    case 8: return c.r.below(0x100);
    case 9: return C_SELF;
    case 10: return C_SMS + c.r.below(4);
    case 11: return C_SIBS + c.r.below(MAX_SIBLINGS);
    case 12: return C_SRV + c.r.below(16);
    case 13: return edge_sel(c);
    case 14: return c.r.below(SEL_NUM);
    default: return c.r.next() >> 8;
    }
}

u64 pick_pd(Ctx &c)
{
    switch (c.r.below(8)) {
    case 0:
    case 1:
    case 2: return C_SELF;
    case 3:
    case 4: return C_SIBS + c.r.below(MAX_SIBLINGS);
    case 5: return any_known(c, Obj_type::PD, C_SELF);
    default: return pick_sel(c);
    }
}

u64 pick_ec(Ctx &c) { return c.r.chance(700) ? any_known(c, Obj_type::EC, work_sel(c)) : pick_sel(c); }
u64 pick_sc(Ctx &c) { return c.r.chance(700) ? any_known(c, Obj_type::SC, work_sel(c)) : pick_sel(c); }

u64 pick_sm(Ctx &c)
{
    switch (c.r.below(4)) {
    case 0: return C_SMS + c.r.below(4);
    case 1:
    case 2: return any_known(c, Obj_type::SM, C_SMS);
    default: return pick_sel(c);
    }
}

u64 pick_pt(Ctx &c)
{
    switch (c.r.below(8)) {
    case 0:
    case 1: return C_SRV + c.r.below(16);  // echo and probe portals (those of CPUs in use exist)
    case 2: return C_EVT + c.r.below(32);  // our own event portals: a plain call to the handler
    case 3:
    case 4: return any_known(c, Obj_type::PT, C_SRV);
    default: return pick_sel(c);
    }
}

u64 bad_addr(Ctx &c)  // never a user address: non-canonical or kernel
{
    static constexpr u64 pool[] = {0x800000000000ull,     0xdead00000000beefull, 0xffff800000000000ull,
                                   0xffffffff80000000ull, 0xffffffffffffe000ull, 0x7fffffffffff0000ull << 4,
                                   0x8000000000000000ull};
    u64 v = pool[c.r.below(sizeof(pool) / sizeof(pool[0]))];
    return v + (c.r.chance(300) ? c.r.below(0x10000) : 0);
}

u64 pick_page(Ctx &c)
{
    static constexpr u64 edges[] = {0,
                                    1,
                                    (USER_ADDR >> PAGE_BITS) - 1,
                                    USER_ADDR >> PAGE_BITS,
                                    (u64{1} << 36) - 1,
                                    u64{1} << 36,
                                    (u64{1} << 52) - 1};
    switch (c.r.below(12)) {
    case 0:
    case 1:
    case 2: return sh.image_first + c.r.below(sh.image_pages);
    case 3:
    case 4: return (C_SCRATCH >> PAGE_BITS) + c.r.skewed(18);
    case 5: return (C_UTCB_POOL >> PAGE_BITS) + c.r.below(4096);
    case 6: return (C_UTCB >> PAGE_BITS) + c.r.below(2);
    case 7: return sh.stack_first + c.r.below(sh.stack_pages);
    case 8: return edges[c.r.below(sizeof(edges) / sizeof(edges[0]))];
    default: return c.r.below(u64{1} << 35);
    }
}

unsigned pick_order(Ctx &c) { return static_cast<unsigned>(c.r.chance(900) ? c.r.skewed(3) : c.r.below(32)); }

unsigned pick_rights(Ctx &c) { return c.r.chance(500) ? 0x1f : static_cast<unsigned>(c.r.below(32)); }

Crd pick_crd(Ctx &c, int type = -1)
{
    unsigned t = type >= 0 ? static_cast<unsigned>(type) : 0;
    if (type < 0) {
        u64 x = c.r.below(20);
        t = x < 8 ? Crd::OBJ : x < 15 ? Crd::MEM : x < 17 ? Crd::PIO : x < 18 ? Crd::NUL : 4;
    }
    switch (t) {
    case Crd::OBJ: return Crd::obj(pick_sel(c), pick_order(c), pick_rights(c));
    case Crd::MEM: return Crd::mem(pick_page(c), pick_order(c), pick_rights(c));
    case Crd::PIO: {
        u64 port = c.r.chance(500) ? c.r.below(0x10000) : c.r.below(0x400);
        if (port >= 0xf0 && port < 0x100)
            port = 0x80;  // keep clear of isa-debug-exit (0xf4): ending QEMU is the root's business
        return Crd::pio(port, static_cast<unsigned>(c.r.skewed(4)), pick_rights(c));
    }
    case Crd::NUL: return Crd();
    default: return Crd(c.r.next());
    }
}

// A receive window for our own spaces: the work area or the scratch area, now and then anything.
Crd pick_window(Ctx &c)
{
    switch (c.r.below(8)) {
    case 0:
    case 1:
    case 2: return Crd::obj(work_sel(c), static_cast<unsigned>(c.r.skewed(4)), pick_rights(c));
    case 3:
    case 4:
    case 5:
        return Crd::mem((C_SCRATCH >> PAGE_BITS) + c.r.skewed(18), static_cast<unsigned>(c.r.skewed(4)),
                        pick_rights(c));
    case 6: return Crd();
    default: return pick_crd(c);
    }
}

u64 pick_cpu(Ctx &c)
{
    static constexpr u64 bad[] = {64, 255, 256, 0xfff, 0x1000, ~u64{0}};
    if (c.r.chance(800))
        return sh.cpu[c.r.below(sh.ncpus)];
    if (c.r.chance(300))
        return c.r.below(64);
    return bad[c.r.below(sizeof(bad) / sizeof(bad[0]))];
}

u64 pick_deadline(Ctx &c)
{
    u64 now = rdtsc();
    switch (c.r.below(16)) {
    case 0: return 0;  // forever: the controller ups the shared semaphores now and then
    case 1: return 1;  // long past
    case 2: return now;
    case 3: return ~u64{0} >> 1;
    default: return now + ms_to_tsc(c.r.skewed(4)) + c.r.below(sh.tsc_khz);
    }
}

// Portal IPs and stack pointers for ECs the worker creates: nothing in our image but fz_park
// (which uses no stack), so that an EC created with them never runs our code on a stray stack
// (and only the worker itself runs fz_raw on its stack: server.cpp, event_handler).
u64 pick_ip(Ctx &c)
{
    if (c.r.chance(400))
        return reinterpret_cast<u64>(&fz_park);
    u64 const ip = c.r.chance(500) ? bad_addr(c) : c.r.below(u64{1} << 47) & ~u64{0xf};
    return in_image(ip) ? reinterpret_cast<u64>(&fz_park) : ip;
}

u64 pick_sp(Ctx &c)
{
    switch (c.r.below(4)) {
    case 0: return 0;
    case 1: return bad_addr(c);
    case 2: return C_SCRATCH + (c.r.skewed(18) << PAGE_BITS);
    default: return c.r.next();
    }
}

u64 pick_utcb(Ctx &c)
{
    if (c.r.chance(700))
        return C_UTCB_POOL + (c.r.below(4096) << PAGE_BITS);
    return pick_page(c) << PAGE_BITS | (c.r.chance(100) ? c.r.below(PAGE_SIZE) : 0);
}

// ---- the hypercall and its checks -----------------------------------------------------------

u64 id(Hypercall h, u64 flags, u64 sel) { return static_cast<u64>(h) | (flags & 0xf) << 4 | sel << 8; }

bool outputs_rsi(unsigned num, unsigned flags)
{
    return (num == 8 && (flags & 3) == 0) || num == 10 || num == 12 || num == 14 || num == 15;
}
bool outputs_rdx(unsigned num, unsigned flags)
{
    return num == 7 || (num == 8 && (flags & 3) == 2) || num == 10 || num == 12 || num == 14 || num == 15;
}
bool outputs_rax(unsigned num, unsigned flags) { return (num == 8 && (flags & 3) == 2) || num == 15; }

Status hyper(Ctx &c, u64 rdi, u64 rsi = 0, u64 rdx = 0, u64 rax = 0, u64 r8 = 0)
{
    Worker &w = c.w;
    Raw in{}, out{};
    in.rdi = rdi;
    in.rsi = rsi;
    in.rdx = rdx;
    in.rax = rax;
    in.r8 = r8;
    u64 *pre = &in.rbx;  // rbx rbp r9 r10 r12 r13 r14 r15: a fresh pattern each time
    for (unsigned i = 0; i < 8; i++)
        pre[i] = c.r.next();
    in.rflags = 0x202;
    if (c.r.chance(250)) {  // arithmetic flags, DF, AC, NT: the kernel must clear them (1.3)
        in.rflags |= c.r.next() & (0x8d5 | RF_DF | RF_AC | RF_NT);
    }
    bool bad_rsp = c.r.chance(15);
    if (bad_rsp)
        in.rsp = c.r.chance(500) ? bad_addr(c) : c.r.next();

    if (sh.trace)
        printf("T s%u g%lu #%lu rdi=%#lx rsi=%#lx rdx=%#lx rax=%#lx r8=%#lx fl=%#lx%s\n", w.slot, c.gen, c.n,
               rdi, rsi, rdx, rax, r8, in.rflags, bad_rsp ? " bad-rsp" : "");
    w.last_rdi = rdi;
    w.last_rsi = rsi;
    w.last_rdx = rdx;
    w.last_rax = rax;
    w.last_r8 = r8;
    bool const is_call = (rdi & 0xf) == 0;
    if (is_call)
        __atomic_store_n(&w.catcher.in_call, 1, __ATOMIC_RELEASE);
    if (bad_rsp)
        fz_raw_rsp(&in, &out);
    else
        fz_raw(&in, &out);
    if (is_call)
        __atomic_store_n(&w.catcher.in_call, 0, __ATOMIC_RELEASE);
    c.n++;
    __atomic_add_fetch(&w.calls, 1, __ATOMIC_RELAXED);

    unsigned const num = rdi & 0xf, flags = rdi >> 4 & 0xf;
    u64 const st = out.rdi & 0xff;
    bool const call_ok = num == 0 && out.rdi == rdi;
    if (!call_ok && (st > static_cast<u64>(Status::OOM) || out.rdi >> 8))
        violation(V_STATUS, w.slot, c.gen, rdi, out.rdi, 0);
    // Number 15 is BAD_HYP but for kstat (with `kstat` and REPORT) and the quota extension (its
    // flag and key, docs/quota.md).
    bool const quota = (flags & Quota_flag::QUOTA) && in.r8 == QUOTA_KEY;
    if (num == 15 && !quota && !(sh.kstat_on && (flags & Kstat_flag::REPORT)) &&
        out.rdi != static_cast<u64>(Status::BAD_HYP))
        violation(V_BAD_HYP, w.slot, c.gen, rdi, out.rdi, 0);

    u64 const *a = &in.rbx, *b = &out.rbx;
    for (unsigned i = 0; i < 8; i++)
        if (a[i] != b[i] && !(bad_rsp && i == 7))  // fz_raw_rsp keeps its rsp in r15
            violation(V_REGS, w.slot, c.gen, rdi, i + 100, b[i] ^ a[i]);
    if ((!outputs_rsi(num, flags) && out.rsi != in.rsi) || (!outputs_rdx(num, flags) && out.rdx != in.rdx) ||
        (!outputs_rax(num, flags) && out.rax != in.rax) || out.r8 != in.r8)
        violation(V_REGS, w.slot, c.gen, rdi,
                  out.rsi != in.rsi   ? 1
                  : out.rdx != in.rdx ? 2
                  : out.rax != in.rax ? 3
                                      : 4,
                  0);
    if (bad_rsp && out.rsp != in.rsp)
        violation(V_REGS, w.slot, c.gen, rdi, 7, out.rsp ^ in.rsp);
    if (!bad_rsp && ((out.rflags & (RF_TF | RF_DF | RF_AC | RF_NT)) || !(out.rflags & RF_IF)))
        violation(V_FLAGS, w.slot, c.gen, rdi, out.rflags, in.rflags);
    return call_ok ? Status::SUCCESS : static_cast<Status>(st);
}

// ---- operations -----------------------------------------------------------------------------

void op_raw(Ctx &c)
{
    u64 num = c.r.below(16);
    if (num == 1 && !c.r.chance(2))
        num = 15;  // a reply without a caller parks us for good: rare
    u64 flags = c.r.below(16), sel = pick_sel(c);
    auto arg = [&]() {
        switch (c.r.below(6)) {
        case 0: return pick_sel(c);
        case 1: return pick_crd(c).value();
        case 2: return c.r.skewed(12);
        case 3: return bad_addr(c);
        default: return c.r.next();
        }
    };
    u64 a1 = arg(), a2 = arg(), a3 = arg(), a4 = arg();
    hyper(c, num | flags << 4 | sel << 8, a1, a2, a3, a4);
}

void op_create(Ctx &c)
{
    u64 const sel = c.r.chance(900) ? work_sel(c) : pick_sel(c);
    switch (c.r.below(8)) {
    case 0:
        if (hyper(c, id(Hypercall::CREATE_PD, 0, sel), pick_pd(c), pick_crd(c, Crd::OBJ).value()) ==
            Status::SUCCESS)
            remember(c, sel, Obj_type::PD);
        break;
    case 1:
    case 2: {
        u64 flags = c.r.chance(400) ? Create_ec_flag::GLOBAL : 0;
        if (c.r.chance(50))
            flags = c.r.below(16);
        u64 rdx = (pick_utcb(c) & ~u64{0xfff}) | (pick_cpu(c) & 0xfff);
        if (hyper(c, id(Hypercall::CREATE_EC, flags, sel), pick_pd(c), rdx, pick_sp(c),
                  c.r.chance(700) ? C_EVT : pick_sel(c)) == Status::SUCCESS)
            remember(c, sel, Obj_type::EC);
        break;
    }
    case 3: {
        u64 prio = c.r.chance(900) ? c.r.range(1, 127) : c.r.below(256);
        u64 quantum = c.r.chance(900) ? c.r.range(1, 20000) : c.r.below(2) ? c.r.next() : 0;
        if (hyper(c, id(Hypercall::CREATE_SC, 0, sel), pick_pd(c), pick_ec(c), quantum << 12 | prio) ==
            Status::SUCCESS)
            remember(c, sel, Obj_type::SC);
        break;
    }
    case 4:
    case 5:
        if (hyper(c, id(Hypercall::CREATE_PT, 0, sel), pick_pd(c), pick_ec(c), c.r.next() >> c.r.below(64),
                  pick_ip(c)) == Status::SUCCESS)
            remember(c, sel, Obj_type::PT);
        break;
    default: {
        u64 chain = c.r.chance(600) ? 0 : pick_sm(c);
        if (hyper(c, id(Hypercall::CREATE_SM, 0, sel), pick_pd(c), c.r.skewed(8), chain) == Status::SUCCESS)
            remember(c, sel, Obj_type::SM);
        break;
    }
    }
}

// Our own image, stacks and the low selectors (event portals, PD, shared objects) are what we
// run on: revoking them with self kills us. Allowed, but rarely.
bool vital(Crd crd)
{
    if (crd.order() >= 26 && crd.type() != Crd::MEM)
        return crd.type() == Crd::OBJ;
    u64 first = crd.base() & ~(crd.count() - 1), last = first + crd.count() - 1;
    auto hits = [&](u64 lo, u64 n) { return first < lo + n && last >= lo; };
    if (crd.type() == Crd::OBJ)
        return hits(0, C_WORK) || hits(SEL_NUM, C_WORK) || first >= SEL_NUM;  // selectors wrap
    if (crd.type() == Crd::MEM)
        return hits(sh.image_first, sh.image_pages) || hits(sh.stack_first, sh.stack_pages) ||
               hits(C_UTCB >> PAGE_BITS, 2);
    return false;
}

}  // namespace

bool hits_events(Crd crd)
{
    if (crd.type() != Crd::OBJ)
        return false;
    if (crd.order() >= 26)
        return true;
    u64 first = crd.base() & ~(crd.count() - 1), last = first + crd.count() - 1;
    return first >= SEL_NUM || last >= SEL_NUM || first < C_EVT + NUM_EXC;  // selectors wrap
}

namespace {

void op_revoke(Ctx &c)
{
    Crd crd = pick_crd(c);
    u64 flags = c.r.below(4);
    u64 pd = flags & Revoke_flag::REMOTE ? pick_pd(c) : c.r.next();
    // Every worker PD has its image, stacks, UTCBs and low selectors at the same place, so a
    // remote revoke with self is as deadly for a sibling as for us. Event portals never go with
    // self: another capability could take their place then (a delegation into the emptied
    // selector), and an event would reach the handler through a portal whose id is not its
    // number (a recall in a hypercall as event 0 at fz_raw_ret: docs/fuzz-findings.md, F8).
    if ((flags & Revoke_flag::SELF) && (hits_events(crd) || (vital(crd) && !c.r.chance(5))))
        flags &= ~u64{Revoke_flag::SELF};
    u64 sm = c.r.chance(800) ? 0 : pick_sm(c);
    hyper(c, id(Hypercall::REVOKE, flags | (c.r.chance(30) ? c.r.below(16) & ~u64{3} : 0), sm), crd.value(),
          pd);
}

void op_pd_ctrl(Ctx &c)
{
    u64 sub = c.r.below(16);
    switch (c.r.below(8)) {
    case 0: hyper(c, id(Hypercall::PD_CTRL, 0, pick_sel(c)), pick_crd(c).value()); break;
    case 1: {
        Crd crd = c.r.chance(700) ? Crd::mem(pick_page(c), 0, Perm_mem::RW) : pick_crd(c);
        hyper(c, id(Hypercall::PD_CTRL, 1, 0), crd.value());
        break;
    }
    case 2:
        hyper(c, id(Hypercall::PD_CTRL, sub, pick_sel(c)), c.r.next(), c.r.next(), c.r.next(), c.r.next());
        break;
    default: {  // delegate
        Crd send = pick_crd(c);
        Crd window =
            c.r.chance(700) ? pick_crd(c, send.type() <= Crd::OBJ ? send.type() : -1) : pick_window(c);
        u64 hot = c.r.chance(500) ? window.base() : c.r.next() >> 12;
        u64 kind = c.r.below(4);
        u64 fl = c.r.chance(800) ? 0 : c.r.below(8) << 9;  // D, G, H
        u64 meta = hot << 12 | fl | (c.r.chance(100) ? c.r.below(0x80) << 2 : 0) | kind;
        hyper(c, id(Hypercall::PD_CTRL, 2 | (c.r.chance(50) ? c.r.below(4) << 2 : 0), pick_pd(c)), pick_pd(c),
              send.value(), meta, window.value());
        break;
    }
    }
}

void op_ctrl(Ctx &c)
{
    switch (c.r.below(10)) {
    case 0:
    case 1: hyper(c, id(Hypercall::EC_CTRL, 0, pick_ec(c))); break;                 // recall
    case 2: hyper(c, id(Hypercall::EC_CTRL, 1, 0)); break;                          // yield
    case 3: hyper(c, id(Hypercall::EC_CTRL, 2, pick_ec(c)), c.r.skewed(8)); break;  // help
    case 4: hyper(c, id(Hypercall::EC_CTRL, 3 | c.r.below(4) << 2, 0)); break;      // reschedule
    case 5:
    case 6: hyper(c, id(Hypercall::SC_CTRL, c.r.below(16), pick_sc(c))); break;
    default: hyper(c, id(Hypercall::PT_CTRL, c.r.below(16), pick_pt(c)), c.r.next()); break;
    }
}

void op_sm(Ctx &c)
{
    u64 sm = pick_sm(c);
    if (c.r.chance(400)) {
        hyper(c, id(Hypercall::SM_CTRL, c.r.chance(900) ? 0 : c.r.below(16) & ~u64{1}, sm));
        return;
    }
    u64 d = pick_deadline(c);
    bool const shared = sm >= C_SMS && sm < C_SMS + 4;
    if (!shared && (d == 0 || d > rdtsc() + ms_to_tsc(1000)))
        d = rdtsc() + ms_to_tsc(c.r.skewed(4));  // only the shared ones are upped by someone else
    u64 flags =
        Sm_flag::DOWN | (c.r.chance(200) ? Sm_flag::ZC : 0) | (c.r.chance(50) ? c.r.below(4) << 2 : 0);
    u64 rdx = d & 0xffffffff;
    if (c.r.chance(30))
        rdx |= c.r.next() << 32;  // bits 63:32 of rdx must be 0 (7.13): the kernel may object
    hyper(c, id(Hypercall::SM_CTRL, flags, sm), d >> 32, rdx);
}

void op_call(Ctx &c)
{
    Utcb &u = utcb();
    u64 pt = pick_pt(c);
    unsigned nu = static_cast<unsigned>(c.r.skewed(9));
    if (nu > Utcb::DATA_WORDS)
        nu = Utcb::DATA_WORDS;
    unsigned nt = c.r.chance(500) ? 0 : static_cast<unsigned>(c.r.range(1, 4));
    if (c.r.chance(20))
        nu = 0xffff;
    if (c.r.chance(10))
        nt = static_cast<unsigned>(c.r.range(200, 0xffff));
    for (unsigned i = 0; i < 8 && i < Utcb::DATA_WORDS; i++)
        u.data[i] = c.r.next();
    for (unsigned i = 0; i < 4; i++) {
        Crd crd = pick_crd(c);
        u64 meta = (c.r.chance(500) ? crd.base() : c.r.next() >> 12) << 12 | c.r.below(4) |
                   (c.r.chance(200) ? c.r.below(8) << 9 : 0);
        u.item(i).set(crd, Item_meta(meta));
    }
    u64 const sent = u.data[0];
    u.items = (c.r.chance(200) ? c.r.next() << 32 : 0) | u64{nt & 0xffff} << 16 | (nu & 0xffff);
    u.xlt = pick_window(c).value();
    u.del = pick_window(c).value();
    u64 flags = c.r.chance(300) ? Call_flag::DB : 0;
    if (c.r.chance(100))
        flags = c.r.below(16);
    Status s = hyper(c, id(Hypercall::CALL, flags, pt));
    if (s == Status::SUCCESS && nt == 0 && nu >= 1 && (u.items & 0xffffffff) == 2 &&
        (u.data[1] & ID_MASK) == ECHO_ID && u.data[0] != ~sent)
        violation(V_ECHO, c.w.slot, c.gen, pt, sent, u.data[0]);
}

void op_assign(Ctx &c)
{
    if (c.r.chance(500))
        hyper(c, id(Hypercall::ASSIGN_PCI, c.r.below(16), pick_pd(c)), pick_page(c) << PAGE_BITS,
              c.r.below(0x10000));
    else
        hyper(c, id(Hypercall::ASSIGN_GSI, c.r.below(16), pick_sm(c)), pick_page(c) << PAGE_BITS, pick_cpu(c),
              c.r.chance(500) ? ~u64{0} : pick_sm(c));
}

void op_kstat(Ctx &c) { hyper(c, id(Hypercall::KSTAT, c.r.below(16), c.r.below(2) ? 0 : pick_sel(c))); }

/*
 * The quota extension (docs/quota.md): INFO, MOVE and CREATE_PD with the key (now and then
 * without it, or an invalid operation), between our PD, siblings and PDs we made. Limits and
 * moves are mostly small: a PD with a quota of its own keeps its limit from the shared quota
 * until it dies, which is the point, but should not starve the controller for long.
 */
void op_quota(Ctx &c)
{
    u64 const key = c.r.chance(950) ? QUOTA_KEY : c.r.next();
    u64 const bytes = c.r.chance(950) ? c.r.skewed(18) : c.r.next();
    u64 const op = c.r.chance(970) ? c.r.below(3) : 3;
    u64 const flags = Quota_flag::QUOTA | op;
    switch (op) {
    case 0: hyper(c, id(Hypercall::KSTAT, flags, pick_pd(c)), 0, 0, 0, key); break;
    case 1: hyper(c, id(Hypercall::KSTAT, flags, pick_pd(c)), pick_pd(c), bytes, 0, key); break;
    case 2: {
        u64 const sel = c.r.chance(900) ? work_sel(c) : pick_sel(c);
        if (hyper(c, id(Hypercall::KSTAT, flags, sel), pick_pd(c), pick_crd(c, Crd::OBJ).value(), bytes,
                  key) == Status::SUCCESS)
            remember(c, sel, Obj_type::PD);
        break;
    }
    default:
        hyper(c, id(Hypercall::KSTAT, flags, pick_sel(c)), c.r.next(), c.r.next(), c.r.next(), key);
        break;
    }
}

// ---- exceptions -----------------------------------------------------------------------------

enum Arg : u8 { A_NONE, A_READ, A_WRITE, A_JUMP, A_PORT, A_RSP };

struct Fault_op
{
    void (*fn)(u64);
    const char *end;
    int vec;  // expected vector, -1: depends
    Arg arg;
};

#define F(n, v, a) {fz_f_##n, fz_f_##n##_end, v, a}
const Fault_op fault_ops[] = {
    F(ud2, 6, A_NONE),
    F(int3, 3, A_NONE),
    F(int4, 4, A_NONE),
    F(int80, 13, A_NONE),
    F(int2, 13, A_NONE),
    F(icebp, -1, A_NONE),
    F(into, 6, A_NONE),
    F(lock_nop, 6, A_NONE),
    F(hlt, 13, A_NONE),
    F(cli, 13, A_NONE),
    F(rdmsr, 13, A_NONE),
    F(mov_cr0, 13, A_NONE),
    F(swapgs, -1, A_NONE),
    F(sysenter, -1, A_NONE),
    F(lgdt, 13, A_NONE),
    F(div0, 0, A_NONE),
    F(idiv_ovf, 0, A_NONE),
    F(in_port, 13, A_PORT),
    F(out_port, 13, A_PORT),
    F(read, -1, A_READ),
    F(read, -1, A_READ),
    F(write, -1, A_WRITE),
    F(jump, -1, A_JUMP),
    F(call, -1, A_JUMP),
    F(push_bad_rsp, -1, A_RSP),
    F(iret_kernel_cs, 13, A_NONE),
    F(load_ss_kernel, 13, A_NONE),
    F(movaps_unaligned, 13, A_NONE),
    F(x87_div0, 16, A_NONE),
    F(sse_div0, 19, A_NONE),
    F(ldmxcsr_reserved, 13, A_NONE),
    F(tf_syscall, -1, A_NONE),
};
#undef F

void op_fault(Ctx &c)
{
    const Fault_op &f = fault_ops[c.r.below(sizeof(fault_ops) / sizeof(fault_ops[0]))];
    u64 arg = 0, alt = 0;
    switch (f.arg) {
    case A_READ:
        arg = c.r.chance(700) ? pick_page(c) << PAGE_BITS | c.r.below(PAGE_SIZE / 8) * 8 : bad_addr(c);
        break;
    case A_WRITE: arg = bad_addr(c); break;
    case A_JUMP:
        arg = c.r.chance(300) ? USER_ADDR + c.r.below(PAGE_SIZE) : bad_addr(c);
        alt = arg;
        break;
    case A_PORT:
        arg = c.r.below(0x10000);
        if ((arg >= 0x3f8 && arg < 0x400) || (arg >= 0xf0 && arg < 0x100))
            arg = 0x80;  // the UART (trace) and isa-debug-exit stay out of it
        break;
    case A_RSP: arg = c.r.chance(500) ? bad_addr(c) : c.r.below(u64{1} << 47) & ~u64{7}; break;
    case A_NONE: break;
    }
    if (sh.trace)
        printf("T s%u g%lu #%lu fault %p arg %#lx\n", c.w.slot, c.gen, c.n, reinterpret_cast<void *>(f.fn),
               arg);
    long v =
        catch_fault(c.w.catcher, f.fn, arg, reinterpret_cast<u64>(f.fn), reinterpret_cast<u64>(f.end), alt);
    if (v < 0)
        return;
    __atomic_add_fetch(&c.w.faults, 1, __ATOMIC_RELAXED);
    if (f.vec >= 0 && v != f.vec && !(f.fn == fz_f_iret_kernel_cs && v == Evt::PF && sh.iret_pf))
        violation(V_VECTOR, c.w.slot, c.gen, reinterpret_cast<u64>(f.fn), static_cast<u64>(v),
                  static_cast<u64>(f.vec));
}

struct Op
{
    void (*fn)(Ctx &);
    unsigned weight;
};

constexpr Op ops[] = {
    {op_raw, 150},  {op_create, 200}, {op_revoke, 80}, {op_pd_ctrl, 120}, {op_ctrl, 100}, {op_sm, 120},
    {op_call, 130}, {op_fault, 60},   {op_assign, 20}, {op_kstat, 10},    {op_quota, 30},
};

void step(Ctx &c)
{
    static constexpr unsigned total = [] {
        unsigned t = 0;
        for (const Op &o : ops)
            t += o.weight;
        return t;
    }();
    u64 x = c.r.below(total);
    for (const Op &o : ops) {
        if (x < o.weight) {
            o.fn(c);
            return;
        }
        x -= o.weight;
    }
}

[[noreturn]] void stop(Ctx &c)
{
    // Killed (a new generation runs in our slot) or the run is over: never touch anything again.
    if (__atomic_load_n(&c.w.gen, __ATOMIC_ACQUIRE) != c.gen) {
        u64 late = rdtsc() - c.w.killed_tsc;
        if (c.w.killed_tsc && late > ms_to_tsc(2000))
            violation(V_ZOMBIE, c.w.slot, c.gen, tsc_to_ms(late), 0, 0);
    }
    for (;;)
        fz_park();
}

}  // namespace

[[noreturn]] void worker_main()
{
    Worker &w = *static_cast<Worker *>(ec_tls()->arg);
    u64 const gen = __atomic_load_n(&w.gen, __ATOMIC_ACQUIRE);
    Ctx c{w, gen, Rng{derive(sh.seed, 1, w.slot, gen)}, {}, 0, 0};
    for (;;) {
        if (__atomic_load_n(&w.gen, __ATOMIC_ACQUIRE) != c.gen || sh.stop)
            stop(c);
        step(c);
    }
}

}  // namespace fuzz
