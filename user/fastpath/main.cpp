/*
 * Fast path versus general path: a fixed, deterministic series of IPC exchanges and semaphore
 * operations, each made with a distinct value in every register (raw syscalls, regs.S). For each
 * one the root task prints `DIGEST <name>.<part>: key=value ...` lines with everything user mode
 * can observe of it (registers of caller and callee, RFLAGS, MXCSR, FCW, xmm0-15, the UTCB's
 * items word, header words and a hash of its data area) and PASS/FAIL lines for the values the
 * ABI fixes. The QEMU runner boots it twice, with the fast paths on and with `nofast`, and
 * compares the DIGEST lines of the two boots (docs/testing.md); nothing here depends on timing.
 *
 * Owners of UTCBs and portal entries: 0 the root EC; 1 (A) a local EC in the root PD; 2 (B) a
 * local EC in a child PD; 3 (C) a local EC in the child PD on another CPU (only with two CPUs).
 */
#include <nova/nova.hpp>

#include "format.hpp"
#include "frame.h"
#include "string.hpp"

using namespace nova;

extern "C" {
Frame fp_cin[CALLEES], fp_cout[CALLEES];
alignas(16) u8 fp_stack[CALLEES][CALLEE_STACK];
}

namespace {

constexpr unsigned W = Utcb::DATA_WORDS;  // 508
constexpr unsigned ROOT = 0, A = 1, B = 2, C = 3;
const char *const reg_name[16] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
                                  "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};

// Register patterns: role, exchange number and register in every value.
enum Role : unsigned { CALLER = 1, REPLIER = 2, RAW = 3 };
// CF PF AF ZF SF DF OF AC set before the syscall (IF and bit 1 as user mode has them).
constexpr u64 FLAGS_CALLER = 0x202 | 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x400 | 0x800 | 0x40000;
constexpr u64 FLAGS_REPLIER = 0x202 | 0x1 | 0x40 | 0x400 | 0x800;
constexpr u64 FLAGS_AFTER = 0x202;  // ABI 1.4

u64 pat(unsigned role, unsigned seq, unsigned k)
{
    return u64{0xa0 + role} << 56 | u64{seq & 0xffff} << 40 | u64{k} << 32 |
           u64{static_cast<u32>(0x9e3779b9u * (seq * 64 + k + 1))};  // wraps in 32 bits on purpose
}

// A canonical, deliberately misaligned and unmapped rsp: nothing may use it as a stack.
u64 rsp_pat(unsigned role, unsigned seq)
{
    return 0x00006f0000000000ull | u64{role} << 36 | u64{seq} << 16 | 0xff5;
}

Frame make_frame(unsigned role, unsigned seq, u64 rdi)
{
    Frame f{};
    for (unsigned i = 0; i < 16; i++)
        f.gpr[i] = pat(role, seq, i);
    f.gpr[RSP] = rsp_pat(role, seq);
    f.gpr[RDI] = rdi;
    f.rflags = role == REPLIER ? FLAGS_REPLIER : FLAGS_CALLER;
    f.mxcsr = role == REPLIER ? 0x5f84 : 0x3f81;  // rounding mode and a sticky flag differ
    f.fcw = role == REPLIER ? 0x0c7f : 0x027f;
    for (unsigned i = 0; i < 32; i++)
        f.xmm[i] = pat(role + 4, seq, 16 + i);
    return f;
}

// UTCB data words: kind, owner, exchange and index in every word.
u64 word(unsigned kind, unsigned owner, unsigned seq, unsigned i)
{
    return u64{0xd0 + kind} << 56 | u64{owner} << 52 | u64{seq & 0xfff} << 40 | u64{i} << 24 |
           (0x85ebca6bu * (seq * 512 + i + 1) & 0xffffff);
}

u64 hash(const u64 *w, unsigned n)
{
    u64 h = 0xcbf29ce484222325ull;
    for (unsigned i = 0; i < n; i++) {
        h ^= w[i];
        h *= 0x100000001b3ull;
        h ^= h >> 31;
    }
    return h;
}

// ---- owners: UTCBs, models of their data areas, portals ---------------------------------------

Utcb *owner_utcb[CALLEES];
u64 shadow[CALLEES][W];  // what each data area holds, by the ABI's copy rules (4.2)
u64 win_sel[CALLEES];    // each owner's delegate receive window (a selector in its PD)

u64 hdr_xlt(unsigned o) { return u64{0x5a0 + o} << 12; }  // a null CRD with a pattern
u64 hdr_del(unsigned o) { return Crd::obj(win_sel[o], 0, Crd::ALL_RIGHTS).value(); }
u64 hdr_tls(unsigned o) { return 0x7157000000000000ull | o; }

void set_header(unsigned o)
{
    Utcb &u = *owner_utcb[o];
    u.xlt = hdr_xlt(o);
    u.del = hdr_del(o);
    u.tls = hdr_tls(o);
}

struct Plan
{
    const char *name;
    unsigned callee;
    u64 items;                     // the caller's items word
    u64 reply_items;               // the callee's
    unsigned flags = 0;            // rdi[7:4] of the call
    u64 sel_add = 0;               // added to the portal selector (lookups wrap at 2^26, ABI 1.7)
    u64 new_id = 0;                // pt_ctrl the portal to this id first
    u64 reply_sel = 0;             // rdi[63:8] of the reply
    bool typed = false;            // one delegate item in the call and one in the reply
    const Plan *nested = nullptr;  // the callee makes this call before it replies
};

struct Utcb_obs
{
    u64 items, xlt, del, tls;
    u64 n, t;                // untyped words and typed items the items word announces (clamped)
    u64 hash_msg, hash_all;  // of the received words, of the whole data area
    u64 bad, first_bad;      // data words that differ from the model (typed results excluded)
    u64 item_crd, item_meta;
};

struct Exchange
{
    const Plan *plan;
    unsigned caller, seq;
    bool first;  // the callee's first portal entry
    u64 id;
    Frame in, out;  // caller before and after the syscall
    Frame prev;     // callee registers at its previous reply
    Frame entry;    // callee registers at portal entry
    Frame reply;    // callee registers at its reply
    Utcb_obs at_callee, at_caller;
    bool ran;  // the callee saw it
};

struct Callee
{
    u64 ec, pt;  // selectors in the root PD
    u64 id;
    u64 sp0;  // create_ec's stack pointer
    char *entry;
    bool entered;
    Frame last_reply;
    Exchange *current;
};

Callee callees[CALLEES];
Exchange ex_top, ex_nested;
unsigned seq_counter;
char why[256];

// "PASS: <name> <what>", or "FAIL: <name> <what>: <why>".
void check(bool ok, const char *name, const char *what)
{
    if (ok)
        test::check(true, "%s %s", name, what);
    else
        test::check(false, "%s %s: %s", name, what, why);
}

// The item this exchange sends: a delegation from the sender's window selector.
void put_item(unsigned o, Utcb &u)
{
    u64 sel = o == ROOT ? win_sel[ROOT] + 1 : win_sel[o];  // root: the SM it hands out
    u.item(0).set(Crd::obj(sel, 0, Crd::ALL_RIGHTS), Item_meta(Item_meta::DELEGATE, 0));
}

// A message in owner o's UTCB: the whole data area gets new words (so copies are recognisable).
void prepare_message(unsigned o, unsigned seq, u64 items, bool typed)
{
    Utcb &u = *owner_utcb[o];
    for (unsigned i = 0; i < W; i++)
        u.data[i] = word(0, o, seq, i);
    u.items = items;
    if (typed)
        put_item(o, u);
    memcpy(shadow[o], u.data, sizeof(shadow[o]));
}

// A reply from owner o: only the announced words are written; the rest of its area stays.
void prepare_reply(unsigned o, unsigned seq, u64 items, bool typed)
{
    Utcb &u = *owner_utcb[o];
    unsigned n = static_cast<unsigned>((items & 0xffff) < W ? items & 0xffff : W);
    for (unsigned i = 0; i < n; i++)
        u.data[i] = word(1, o, seq, i);
    u.items = items;
    if (typed)
        put_item(o, u);
    memcpy(shadow[o], u.data, sizeof(shadow[o]));
}

/*
 * Owner `me` received a message of `items` from owner `from` (or, with from == me, nothing):
 * compare its data area with the model (words below U from the sender's area, the rest as they
 * were, typed-item results excluded) and take what is there as the new model.
 */
void receive(unsigned me, unsigned from, u64 items, Utcb_obs &o)
{
    const Utcb &u = *owner_utcb[me];
    o.items = u.items;
    o.xlt = u.xlt;
    o.del = u.del;
    o.tls = u.tls;
    u64 U = items & 0xffff, T = items >> 16 & 0xffff;
    o.n = U < W ? U : W;
    o.t = T < Utcb::MAX_TYPED ? T : Utcb::MAX_TYPED;
    o.hash_msg = hash(u.data, static_cast<unsigned>(o.n));
    o.hash_all = hash(u.data, W);
    o.bad = 0;
    o.first_bad = ~0ull;
    unsigned typed_from = static_cast<unsigned>(W - 2 * o.t);
    for (unsigned i = 0; i < typed_from; i++) {
        u64 want = i < o.n ? shadow[from][i] : shadow[me][i];
        if (u.data[i] != want && o.bad++ == 0)
            o.first_bad = i;
    }
    o.item_crd = o.t ? u.item(0).crd : 0;
    o.item_meta = o.t ? u.item(0).meta : 0;
    memcpy(shadow[me], u.data, sizeof(shadow[me]));
}

// ---- one exchange ---------------------------------------------------------------------------

void run_exchange(unsigned me, const Plan &p, Exchange &x, void (*make_syscall)(const Frame *, Frame *))
{
    Callee &ce = callees[p.callee];
    memset(&x, 0, sizeof(x));
    x.plan = &p;
    x.caller = me;
    x.seq = ++seq_counter;
    if (p.new_id) {
        pt_ctrl(ce.pt, p.new_id);
        ce.id = p.new_id;
    }
    x.id = ce.id;
    x.first = !ce.entered;
    x.prev = ce.last_reply;
    prepare_message(me, x.seq, p.items, p.typed);
    x.in = make_frame(CALLER, x.seq, (ce.pt + p.sel_add) << 8 | u64{p.flags} << 4 | 0);
    x.reply = make_frame(REPLIER, x.seq, p.reply_sel << 8 | 1);
    fp_cout[p.callee] = x.reply;
    ce.current = &x;
    make_syscall(&x.in, &x.out);
    ce.current = nullptr;
    if (x.ran) {
        ce.entered = true;
        ce.last_reply = x.reply;
    }
    receive(me, p.callee, p.reply_items, x.at_caller);
}

}  // namespace

// Runs in the callee on its own stack (regs.S): look at the message, maybe call on, prepare the reply.
extern "C" void fp_callee_work(unsigned n)
{
    Callee &ce = callees[n];
    Exchange *x = ce.current;
    if (!x) {  // not called by this test: reply empty
        owner_utcb[n]->items = 0;
        return;
    }
    x->ran = true;
    x->entry = fp_cin[n];
    receive(n, x->caller, x->plan->items, x->at_callee);
    set_header(n);
    if (x->plan->nested)
        run_exchange(n, *x->plan->nested, ex_nested, fp_call_nested);
    prepare_reply(n, x->seq, x->plan->reply_items, x->plan->typed);
}

namespace {

// ---- digests and checks ---------------------------------------------------------------------

void digest_gpr(const char *name, const char *part, const Frame &f)
{
    char line[512];
    size_t l = format(line, sizeof(line), "DIGEST %s.%s.gpr:", name, part);
    for (unsigned i = 0; i < 16; i++)
        l += format(line + l, sizeof(line) - l, " %s=%016lx", reg_name[i], f.gpr[i]);
    format(line + l, sizeof(line) - l, " rflags=%016lx", f.rflags);
    printf("%s\n", line);
}

void digest_fpu(const char *name, const char *part, const Frame &f)
{
    for (unsigned half = 0; half < 2; half++) {
        char line[512];
        size_t l = format(line, sizeof(line), "DIGEST %s.%s.fpu%u:", name, part, half);
        if (half == 0)
            l += format(line + l, sizeof(line) - l, " mxcsr=%08x fcw=%04x", f.mxcsr, f.fcw);
        for (unsigned i = half * 8; i < half * 8 + 8; i++)
            l += format(line + l, sizeof(line) - l, " xmm%u=%016lx_%016lx", i, f.xmm[2 * size_t{i} + 1],
                        f.xmm[2 * size_t{i}]);
        printf("%s\n", line);
    }
}

void digest_utcb(const char *name, const char *part, const Utcb_obs &o)
{
    printf(
        "DIGEST %s.%s.utcb: items=%016lx n=%lx t=%lx msg=%016lx all=%016lx bad=%lx first_bad=%lx xlt=%016lx "
        "del=%016lx tls=%016lx item_crd=%016lx item_meta=%016lx\n",
        name, part, o.items, o.n, o.t, o.hash_msg, o.hash_all, o.bad, o.first_bad, o.xlt, o.del, o.tls,
        o.item_crd, o.item_meta);
}

// Every register of `got` against `want`; the first difference goes to `why`.
bool same_frame(const Frame &got, const Frame &want, bool fpu)
{
    for (unsigned i = 0; i < 16; i++)
        if (got.gpr[i] != want.gpr[i]) {
            format(why, sizeof(why), "%s %#lx, expected %#lx", reg_name[i], got.gpr[i], want.gpr[i]);
            return false;
        }
    if (got.rflags != want.rflags) {
        format(why, sizeof(why), "RFLAGS %#lx, expected %#lx", got.rflags, want.rflags);
        return false;
    }
    if (!fpu)
        return true;
    if (got.mxcsr != want.mxcsr || got.fcw != want.fcw) {
        format(why, sizeof(why), "MXCSR %#x FCW %#x, expected %#x %#x", got.mxcsr, got.fcw, want.mxcsr,
               want.fcw);
        return false;
    }
    for (unsigned i = 0; i < 32; i++)
        if (got.xmm[i] != want.xmm[i]) {
            format(why, sizeof(why), "xmm%u %s %#lx, expected %#lx", i / 2, i & 1 ? "high" : "low",
                   got.xmm[i], want.xmm[i]);
            return false;
        }
    return true;
}

// The caller after a hypercall that returned (ABI 1.4): rdi as given, the rest preserved.
Frame after_syscall(const Frame &in, const char *ret, u64 rdi)
{
    Frame f = in;
    f.gpr[RCX] = reinterpret_cast<u64>(ret);
    f.gpr[R11] = 0x200;
    f.gpr[RDI] = rdi;
    f.rflags = FLAGS_AFTER;
    return f;
}

bool utcb_ok(const Utcb_obs &o, u64 items, unsigned owner, bool header_set)
{
    if (o.items != items) {
        format(why, sizeof(why), "items %#lx, expected %#lx", o.items, items);
        return false;
    }
    if (o.bad) {
        format(why, sizeof(why), "%lu data words differ from the model, the first at index %lu", o.bad,
               o.first_bad);
        return false;
    }
    u64 x = header_set ? hdr_xlt(owner) : 0, d = header_set ? hdr_del(owner) : 0,
        t = header_set ? hdr_tls(owner) : 0;
    if (o.xlt != x || o.del != d || o.tls != t) {
        format(why, sizeof(why), "header xlt/del/tls %#lx %#lx %#lx, expected %#lx %#lx %#lx", o.xlt, o.del,
               o.tls, x, d, t);
        return false;
    }
    return true;
}

void report(const char *name, const Exchange &x, const char *ret)
{
    const Plan &p = *x.plan;
    const Callee &ce = callees[p.callee];
    digest_gpr(name, "caller", x.out);
    digest_fpu(name, "caller", x.out);
    digest_utcb(name, "caller", x.at_caller);
    digest_gpr(name, "callee", x.entry);
    digest_fpu(name, "callee", x.entry);
    digest_utcb(name, "callee", x.at_callee);

    // rdi is unchanged after a successful call, whatever its flags (7.1).
    Frame want = after_syscall(x.in, ret, x.in.gpr[RDI]);
    check(same_frame(x.out, want, true), name, "caller registers, RFLAGS and FPU state after the call");
    if (!x.ran) {
        format(why, sizeof(why), "the callee did not run");
        check(false, name, "callee entry");
        return;
    }
    check(utcb_ok(x.at_caller, p.reply_items, x.caller, true), name,
          "caller UTCB: the reply's items and words");

    // Callee entry (7.1): rip/rcx = portal IP, rdi = id, r11 = 0x200, RFLAGS 0x202, the other
    // registers as at its previous reply (0 at the first entry; rsp then create_ec's).
    Frame e = x.first ? Frame{} : x.prev;
    e.gpr[RCX] = reinterpret_cast<u64>(ce.entry);
    e.gpr[RDI] = x.id;
    e.gpr[R11] = 0x200;
    if (x.first)
        e.gpr[RSP] = ce.sp0;
    e.rflags = FLAGS_AFTER;
    check(same_frame(x.entry, e, !x.first), name,
          x.first ? "callee registers at its first portal entry"
                  : "callee registers and FPU state at portal entry");
    check(utcb_ok(x.at_callee, p.items, p.callee, !x.first), name, "callee UTCB: the call's items and words");
}

void exchange(const Plan &p)
{
    run_exchange(ROOT, p, ex_top, fp_call_root);
    report(p.name, ex_top, fp_call_root_ret);
    if (p.nested)
        report(p.nested->name, ex_nested, fp_call_nested_ret);
}

/*
 * A hypercall that returns at once (sm_ctrl, failing calls): every register set, the outcome
 * digested and checked. rdi is written in full with the status (1.4); rsi/rdx are as given
 * unless `out_rsi`/`out_rdx` name the values the call defines.
 */
struct Raw
{
    const char *name;
    u64 rdi, rsi, rdx;
    Status want;
    bool outputs = false;
    u64 out_rsi = 0, out_rdx = 0;
};

void raw(const Raw &r)
{
    unsigned seq = ++seq_counter;
    u64 items = 0x0123000000000000ull | 3;  // must stay as it is
    prepare_message(ROOT, seq, items, false);
    Frame in = make_frame(RAW, seq, r.rdi), out;
    in.gpr[RSI] = r.rsi;
    in.gpr[RDX] = r.rdx;
    fp_call_root(&in, &out);
    Utcb_obs o;
    receive(ROOT, ROOT, 0, o);
    digest_gpr(r.name, "raw", out);
    digest_fpu(r.name, "raw", out);
    digest_utcb(r.name, "raw", o);
    Frame want = after_syscall(in, fp_call_root_ret, static_cast<u64>(r.want));
    if (r.outputs) {
        want.gpr[RSI] = r.out_rsi;
        want.gpr[RDX] = r.out_rdx;
    }
    char what[96];
    format(what, sizeof(what), "gives %s, registers and FPU state as the ABI says", status_name(r.want));
    check(same_frame(out, want, true), r.name, what);
    check(utcb_ok(o, items, ROOT, true), r.name, "UTCB unchanged");
}

u64 id_call(u64 sel, unsigned flags = 0)
{
    return sel << 8 | u64{flags} << 4 | static_cast<u64>(Hypercall::CALL);
}
u64 id_sm(u64 sel, unsigned flags)
{
    return sel << 8 | u64{flags} << 4 | static_cast<u64>(Hypercall::SM_CTRL);
}

[[noreturn]] void setup_failed(const char *what, Status s)
{
    test::check(false, "setup: %s: %s", what, status_name(s));
    test::exit();
}

void need(Status s, const char *what)
{
    if (s != Status::SUCCESS)
        setup_failed(what, s);
}

void no_handler(u64, Utcb &u) { u.set_items(0, 0); }

// A callee with a raw portal entry: local EC `o` in `pd` on `cpu`.
void make_callee(unsigned o, u64 pd, unsigned cpu, char *entry)
{
    Callee &ce = callees[o];
    ce.ec = alloc_sel();
    ce.pt = alloc_sel();
    u64 utcb_addr = alloc_virt(PAGE_SIZE);
    ce.sp0 = 0x00006e0000000000ull | u64{o} << 32 | 0xff8;
    ce.entry = entry;
    ce.id = 0xd000000000000000ull | u64{o} << 40 | 0x1d;
    owner_utcb[o] = reinterpret_cast<Utcb *>(utcb_addr);
    if (!ce.ec || !ce.pt || !utcb_addr)
        setup_failed("selectors or addresses", Status::OOM);
    need(create_ec_local(ce.ec, pd, cpu, utcb_addr, ce.sp0, 0), "create_ec");
    need(create_pt(ce.pt, self_pd(), ce.ec, 0, reinterpret_cast<u64>(entry)), "create_pt");
    need(pt_ctrl(ce.pt, ce.id), "pt_ctrl");
}

bool same(const char *a, const char *b) { return strlen(a) == strlen(b) && !memcmp(a, b, strlen(a)); }

unsigned other_cpu(const Hip *hip, unsigned self)
{
    for (unsigned i = 0; i < hip->num_cpu_desc(); i++)
        if (i != self && hip->cpu(i) && hip->cpu(i)->online())
            return i;
    return ~0u;
}

// ---- the series -----------------------------------------------------------------------------

constexpr u64 U_HI = 0xfeed000000000000ull, R_HI = 0xbeef000000000000ull;

const Plan nested_inner = {"A.nested.B", B, 6, 7};

#define CALL_SERIES(X, N)                                                                                    \
    {N ".u0", X, 0, 0}, {N ".u1", X, 1, 1}, {N ".u2", X, 2, 3}, {N ".u17", X, 17, 0}, {N ".u508", X, W, W},  \
        {N ".upper-bits", X, U_HI | 5, R_HI | 2}, {N ".u600-clamped", X, 600, 0xffff},                       \
        {N ".db", X, 4, 1, Call_flag::DB},                                                                   \
        {N ".ignored-flags", X, 1, 2, Call_flag::DISABLE_DONATION | Call_flag::DISABLE_REPLY},               \
        {N ".sel-wrap", X, 2, 2, 0, u64{1} << 26}, {N ".sel-wrap-high", X, 1, 1, 0, u64{0xabcdef} << 26},    \
        {N ".new-id", X, 1, 1, 0, 0, 0x8000000000000000ull | u64{X} << 48 | 0x1d}

Plan plans_a[] = {CALL_SERIES(A, "A"),
                  {"A.reply-sm", A, 1, 2},  // reply_sel: a valid SM (set in main)
                  {"A.nested", A, 3, 4, 0, 0, 0, 0, false, &nested_inner},
                  {"A.after-nested", A, 2, 2}};

Plan plans_b[] = {CALL_SERIES(B, "B"),
                  {"B.typed", B, 2 | 1u << 16, 1 | 1u << 16, 0, 0, 0, 0, true},
                  {"B.after-typed", B, 1, 1},
                  {"B.reply-sm", B, 1, 2},  // reply_sel: the SM it received
                  {"B.reply-bad-sel", B, 1, 1, 0, 0, 0, 0x1234}};

const Plan plans_c[] = {{"C.u0", C, 0, 0},
                        {"C.u2", C, 2, 3},
                        {"C.u17", C, 17, 0},
                        {"C.u508", C, W, W},
                        {"C.upper-bits", C, U_HI | 5, R_HI | 2}};

/*
 * An exception round trip (10.2, 5): a #UD with every register set goes to a handler portal; the
 * handler's reply (which the reply fast path must hand to the general path: it is an event reply)
 * writes some registers back through the UTCB's mtd.
 */
constexpr u64 UD_MTD = Mtd::GPR_ACDB | Mtd::GPR_BSD | Mtd::GPR_R8_R15 | Mtd::RSP | Mtd::RIP_LEN | Mtd::RFLAGS;
constexpr u64 UD_REPLY_MTD = Mtd::GPR_ACDB | Mtd::GPR_R8_R15 | Mtd::RIP_LEN | Mtd::RFLAGS;
constexpr u64 RFLAGS_RF = 1ull << 16;  // resume flag
constexpr u64 UD_RAX = 0xe0e0e0e0e0e0e0e0ull, UD_R15 = 0x1515151515151515ull, UD_RFLAGS = 0x202 | 0x1 | 0x80;

struct Ud_seen
{
    u64 calls, id, items, mtd, rip, rflags, hash;
    u64 gpr[16];
} ud_seen;

void ud_handler(u64 id, Utcb &u)
{
    ud_seen.calls++;
    ud_seen.id = id;
    ud_seen.items = u.items;
    ud_seen.mtd = u.mtd;
    ud_seen.rip = u.rip;
    ud_seen.rflags = u.rflags;
    ud_seen.hash = hash(u.data, static_cast<unsigned>(Utcb::STATE_WORDS));
    const u64 g[16] = {u.rax, u.rbx, u.rcx, u.rdx, u.rsi, u.rdi, u.rbp, u.rsp,
                       u.r8,  u.r9,  u.r10, u.r11, u.r12, u.r13, u.r14, u.r15};
    memcpy(ud_seen.gpr, g, sizeof(g));
    if (u.rip != reinterpret_cast<u64>(fp_ud2_root_insn)) {
        test::check(false, "unexpected #UD at %#lx", u.rip);
        test::finish();
    }
    u.rip += 2;  // past the ud2
    u.rax = UD_RAX;
    u.r15 = UD_R15;
    u.rflags = UD_RFLAGS;
    u.mtd = UD_REPLY_MTD;
    u.set_items(0, 0);
}

void exception_round_trip(unsigned cpu)
{
    const char *name = "exc.ud2";
    Handler_ec h;
    u64 ec = alloc_sel();
    need(revoke(Crd::obj(Abi::Evt::UD, 0, Crd::ALL_RIGHTS), Revoke_flag::SELF), "revoke the #UD portal");
    need(create_handler_ec(h, ec, self_pd(), cpu, ud_handler), "#UD handler EC");
    need(create_portal(Abi::Evt::UD, ec, UD_MTD, 0x0dd0000000000006ull), "#UD portal");

    unsigned seq = ++seq_counter;
    u64 items = 0x0456000000000002ull;
    prepare_message(ROOT, seq, items, false);
    Frame in = make_frame(RAW, seq, pat(RAW, seq, RDI)), out;
    fp_ud2_root(&in, &out);
    Utcb_obs o;
    receive(ROOT, ROOT, 0, o);
    digest_gpr(name, "resumed", out);
    digest_fpu(name, "resumed", out);
    digest_utcb(name, "resumed", o);
    const Ud_seen &v = ud_seen;
    printf("DIGEST %s.handler.state: calls=%lx id=%016lx items=%016lx mtd=%016lx rip=%016lx rflags=%016lx "
           "hash=%016lx\n",
           name, v.calls, v.id, v.items, v.mtd, v.rip, v.rflags, v.hash);
    Frame seen{};
    memcpy(seen.gpr, v.gpr, sizeof(seen.gpr));
    seen.rflags = v.rflags;
    digest_gpr(name, "handler", seen);
    // RF (bit 16) in the message is the CPU's: the kernel passes the RFLAGS image of the exception
    // frame on. The SDM (Vol. 3B 17.3.1.1, "Instruction-Breakpoint Exception Condition") has RF
    // pushed as 1 for every fault-class exception but an instruction breakpoint, so 1 for #UD;
    // older emulators (QEMU TCG 7.2) push 0. Neither value says anything about the kernel, so the
    // comparison below ignores RF; the DIGEST lines keep it (both boots run on the same CPU).
    seen.rflags &= ~RFLAGS_RF;

    Frame want = in;  // as at the fault, plus what the reply's mtd selects
    want.gpr[RAX] = UD_RAX;
    want.gpr[R15] = UD_R15;
    want.rflags = UD_RFLAGS;
    check(same_frame(out, want, true), name, "registers and FPU state after the handler's reply");
    check(utcb_ok(o, items, ROOT, true), name, "the faulting EC's UTCB unchanged");
    bool ok = v.calls == 1 && v.id == 0x0dd0000000000006ull && v.items == Utcb::EVENT_ITEMS &&
              v.mtd == UD_MTD && v.rip == reinterpret_cast<u64>(fp_ud2_root_insn);
    format(why, sizeof(why), "calls %lu id %#lx items %#lx mtd %#lx rip %#lx", v.calls, v.id, v.items, v.mtd,
           v.rip);
    if (ok)
        ok = same_frame(seen, in, false);  // gprs, rsp and RFLAGS at the ud2
    check(ok, name, "the handler sees the faulting state");
}

// Timing, for information only (never in a DIGEST line): median TSC ticks of a same-PD call.
void timing(unsigned cpu)
{
    Handler_ec h;
    u64 ec = alloc_sel(), pt = alloc_sel();
    if (!ec || !pt || create_handler_ec(h, ec, self_pd(), cpu, no_handler) != Status::SUCCESS ||
        create_portal(pt, ec) != Status::SUCCESS)
        return;
    constexpr unsigned N = 301;
    static u64 t[N];
    utcb().set_items(0, 0);
    for (unsigned i = 0; i < N; i++) {
        u64 t0 = __builtin_ia32_rdtsc();
        call(pt);
        t[i] = __builtin_ia32_rdtsc() - t0;
    }
    for (unsigned i = 1; i < N; i++)
        for (unsigned j = i; j > 0 && t[j] < t[j - 1]; j--) {
            u64 v = t[j];
            t[j] = t[j - 1];
            t[j - 1] = v;
        }
    printf("TIME: same-PD call+reply median %lu TSC ticks (not compared)\n", t[N / 2]);
}

}  // namespace

int main(const Hip *hip, unsigned cpu)
{
    Console::init();
    printf("fastpath: start on CPU %u, %u CPUs\n", cpu, hip->num_cpus_online());
    need(catch_exceptions(cpu), "exception portals");

    owner_utcb[ROOT] = &utcb();
    win_sel[ROOT] = alloc_sel(2);  // the window, and the SM the typed call hands out
    win_sel[A] = alloc_sel();
    win_sel[B] = 0x100;  // selectors in the child PD (its space is empty)
    win_sel[C] = 0x101;
    set_header(ROOT);

    make_callee(A, self_pd(), cpu, fp_entry1);
    Child child;
    need(create_child(child, cpu, no_handler), "child PD");
    make_callee(B, child.pd, cpu, fp_entry2);
    unsigned cpu2 = other_cpu(hip, cpu);
    if (cpu2 != ~0u)
        make_callee(C, child.pd, cpu2, fp_entry3);

    u64 sm_reply = alloc_sel();
    need(create_sm(sm_reply, self_pd(), 0), "create_sm");
    need(create_sm(win_sel[ROOT] + 1, self_pd(), 0), "create_sm");
    for (Plan &p : plans_a)
        if (same(p.name, "A.reply-sm"))
            p.reply_sel = sm_reply;
    for (Plan &p : plans_b)
        if (same(p.name, "B.reply-sm"))
            p.reply_sel = win_sel[B];  // arrives with B.typed

    // Calls and replies without typed items: the fast paths' business.
    for (const Plan &p : plans_a)
        exchange(p);
    for (const Plan &p : plans_b) {
        exchange(p);
        if (p.typed) {
            Lookup_result l = pd_lookup(Crd::obj(win_sel[ROOT], 0, 0));
            format(why, sizeof(why), "lookup of the window gives %#lx", l.crd.value());
            check(l.status == Status::SUCCESS && l.crd.type() == Crd::OBJ, p.name,
                  "the reply's delegation arrived in the caller's window");
        }
    }
    // Cross-CPU calls (7.1.1) never take the fast path, but their results must not change either.
    if (cpu2 != ~0u)
        for (const Plan &p : plans_c)
            exchange(p);
    else
        printf("fastpath: one CPU: no cross-CPU calls\n");

    // Calls that fail at once.
    u64 empty = alloc_sel();
    raw({"call.empty-sel", id_call(empty), pat(9, 1, 4), pat(9, 1, 3), Status::BAD_CAP});
    raw({"call.db-empty-sel", id_call(empty, Call_flag::DB), pat(9, 2, 4), pat(9, 2, 3), Status::BAD_CAP});
    raw({"call.sm-cap", id_call(sm_reply), pat(9, 3, 4), pat(9, 3, 3), Status::BAD_CAP});
    if (cpu2 != ~0u) {
        u64 no_xcpu = alloc_sel();
        Delegate_result d = pd_delegate(self_pd(), self_pd(), Crd::obj(callees[C].pt, 0, Crd::ALL_RIGHTS),
                                        Item_meta(Item_meta::DELEGATE, no_xcpu),
                                        Crd::obj(no_xcpu, 0, Perm_pt::CTRL | Perm_pt::CALL));
        need(d.status, "portal without PERM_XCPU");
        raw({"call.xcpu-without-perm", id_call(no_xcpu), pat(9, 4, 4), pat(9, 4, 3), Status::BAD_CPU});
    }

    // Semaphores (7.13, 12): the counting cases are the fast path's, the others the general path's.
    u64 s = alloc_sel(8);
    for (unsigned i = 0; i < 4; i++)
        need(create_sm(s + i, self_pd(), 0), "create_sm");
    constexpr u64 DL_HI = 0x7eadbeef, DL_LO = 0x12345678;  // a far deadline: must not matter
    constexpr unsigned DOWN = Sm_flag::DOWN, ZC = Sm_flag::ZC;
    raw({"sm.up-fresh", id_sm(s, 0), pat(9, 10, 4), pat(9, 10, 3), Status::SUCCESS});
    raw({"sm.down-count1", id_sm(s, DOWN), DL_HI, DL_LO, Status::SUCCESS});
    raw({"sm.down-empty-past-deadline", id_sm(s, DOWN), 0, 1, Status::COM_TIM});
    raw({"sm.up-1of3", id_sm(s + 1, 0), pat(9, 11, 4), pat(9, 11, 3), Status::SUCCESS});
    raw({"sm.up-2of3", id_sm(s + 1, 0), pat(9, 12, 4), pat(9, 12, 3), Status::SUCCESS});
    raw({"sm.up-3of3", id_sm(s + 1, 0), pat(9, 13, 4), pat(9, 13, 3), Status::SUCCESS});
    raw({"sm.zc-down-count3", id_sm(s + 1, DOWN | ZC), DL_HI, DL_LO, Status::SUCCESS});
    raw({"sm.down-after-zc-past-deadline", id_sm(s + 1, DOWN), 0, 2, Status::COM_TIM});
    raw({"sm.up-with-zc-flag", id_sm(s + 2, ZC), pat(9, 14, 4), pat(9, 14, 3), Status::SUCCESS});
    raw({"sm.down-after-up-zc-flag", id_sm(s + 2, DOWN), 0, 3, Status::SUCCESS});
    raw({"sm.up-sel-wrap", id_sm(s + 3 + (u64{1} << 26), 0), pat(9, 15, 4), pat(9, 15, 3), Status::SUCCESS});
    raw({"sm.down-sel-wrap", id_sm(s + 3 + (u64{0x777} << 26), DOWN), DL_HI, DL_LO, Status::SUCCESS});

    // Missing rights and wrong types: the fast path must hand these on untouched.
    u64 up_only = s + 4, down_only = s + 5;
    need(pd_delegate(self_pd(), self_pd(), Crd::obj(s, 0, Crd::ALL_RIGHTS),
                     Item_meta(Item_meta::DELEGATE, up_only), Crd::obj(up_only, 0, Perm_sm::UP))
             .status,
         "SM with the up right only");
    need(pd_delegate(self_pd(), self_pd(), Crd::obj(s, 0, Crd::ALL_RIGHTS),
                     Item_meta(Item_meta::DELEGATE, down_only), Crd::obj(down_only, 0, Perm_sm::DOWN))
             .status,
         "SM with the down right only");
    raw({"sm.down-without-down-right", id_sm(up_only, DOWN), 0, 4, Status::BAD_CAP});
    raw({"sm.up-without-up-right", id_sm(down_only, 0), pat(9, 16, 4), pat(9, 16, 3), Status::BAD_CAP});
    raw({"sm.up-with-up-right-only", id_sm(up_only, 0), pat(9, 17, 4), pat(9, 17, 3), Status::SUCCESS});
    raw({"sm.down-with-down-right-only", id_sm(down_only, DOWN), 0, 5, Status::SUCCESS});
    raw({"sm.up-pt-cap", id_sm(callees[A].pt, 0), pat(9, 18, 4), pat(9, 18, 3), Status::BAD_CAP});
    raw({"sm.down-empty-sel", id_sm(empty, DOWN), 0, 6, Status::BAD_CAP});

    // Signals (12.3): a down that delivers one defines rsi and rdx.
    u64 target = s + 6, signal = s + 7;
    need(create_sm(target, self_pd(), 0), "create_sm (signal target)");
    need(create_sm(signal, self_pd(), 0x5157a1, target), "create_sm (signal)");
    raw({"sm.up-signal", id_sm(signal, 0), pat(9, 19, 4), pat(9, 19, 3), Status::SUCCESS});
    raw({"sm.down-delivers-signal", id_sm(target, DOWN), DL_HI, DL_LO, Status::SUCCESS, true, 0x5157a1, 1});
    raw({"sm.down-on-signal", id_sm(signal, DOWN), 0, 7, Status::BAD_CAP});
    raw({"sm.down-target-empty-past-deadline", id_sm(target, DOWN), 0, 8, Status::COM_TIM});

    // An exception: its reply is an event reply, which only the general path handles.
    exception_round_trip(cpu);

    // The same calls once more, after everything else.
    exchange({"A.final", A, 5, 5});
    exchange({"B.final", B, 5, 5});

    timing(cpu);
    return static_cast<int>(test::finish());
}
