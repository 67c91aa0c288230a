/*
 * Checklist A: hypercall entry and exit at register level (ABI 1.3-1.5).
 * A table of hypercalls (successes, failures, calls, each kind of output
 * register) runs through raw_syscall with a distinct value in every register
 * and arithmetic, direction and alignment-check flags set; each A test
 * checks one property over the whole table. A.9 checks x87/SSE state.
 */
#include "string.hpp"
#include "suite.hpp"

namespace {

enum : unsigned { OUT_RSI = 1, OUT_RDX = 2, OUT_RAX = 4, OUT_R8 = 8 };
enum class Kind { ZERO, EXACT, UNCHANGED };  // rdi after: 0 (success), the status exactly, as before

struct Raw_case
{
    const char *name;
    Raw_regs in, out;
    u64 rsp_before;    // rsp at the syscall
    unsigned outputs;  // argument registers the call defines as outputs
    Kind kind;
    Status want;
};

// CF PF AF ZF SF DF OF AC set; IF and bit 1 as user mode has them.
constexpr u64 FLAGS_IN = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x400 | 0x800 | 0x40000 | 0x202;

constexpr unsigned MAX_CASES = 24;
Raw_case cases[MAX_CASES];

const char *const reg_names[16] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
                                   "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
enum : unsigned { RAX, RBX, RCX, RDX, RSI, RDI, RBP, RSP, R8, R9, R10, R11, R12, R13, R14, R15 };

u64 reg(const Raw_regs &r, unsigned i) { return reinterpret_cast<const u64 *>(&r)[i]; }

void nop_handler(u64, Utcb &) {}

// A distinct value in every register (case number and register number in it).
Raw_regs pattern(unsigned c)
{
    Raw_regs r;
    u64 *w = reinterpret_cast<u64 *>(&r);
    for (unsigned i = 0; i < 16; i++)
        w[i] = 0xa5c3000000005a5aull | static_cast<u64>(c) << 32 | static_cast<u64>(i) << 24;
    r.rsp = 0;  // not loaded: the harness keeps its own rsp
    r.rflags = FLAGS_IN;
    return r;
}

u64 hid(Hypercall h, unsigned flags, u64 sel) { return Hypercall_id(h, flags, sel).value(); }

/*
 * Set up the objects and fill the table. Order matters: the up comes before
 * the down, the EC before the portal bound to it.
 */
bool build(Test &t, unsigned &n)
{
    u64 s = t.sel(16);
    if (!s)
        return false;
    u64 sm = s, pd = s + 1, ec = s + 2, pt = s + 3, copy = s + 4, empty = s + 5;
    Worker w;
    u64 call_pt;
    if (!make_worker(t, w, SEL_ROOT_PD, boot_cpu(), nop_handler, service_evt(boot_cpu())) ||
        !make_portal(t, call_pt, w.ec, 0, 0))
        return false;
    u64 utcb = alloc_virt(PAGE_SIZE);

    n = 0;
    auto add = [&](const char *name, const Raw_regs &in, unsigned outputs, Kind kind, Status want) {
        cases[n] = {name, in, {}, 0, outputs, kind, want};
        n++;
    };
    Raw_regs r;

    r = pattern(n), r.rdi = 0xf;
    add("hypercall 15", r, 0, Kind::EXACT, Status::BAD_HYP);

    r = pattern(n), r.rdi = hid(Hypercall::CREATE_SM, 0, sm), r.rsi = SEL_ROOT_PD, r.rax = 0;
    add("create_sm", r, 0, Kind::ZERO, Status::SUCCESS);

    r = pattern(n), r.rdi = hid(Hypercall::CREATE_SM, 0, SEL_ROOT_PD), r.rsi = SEL_ROOT_PD, r.rax = 0;
    add("create_sm on an occupied selector", r, 0, Kind::EXACT, Status::BAD_CAP);

    r = pattern(n), r.rdi = hid(Hypercall::CREATE_PD, 0, pd), r.rsi = SEL_ROOT_PD, r.rdx &= ~u64{3};
    add("create_pd", r, 0, Kind::ZERO, Status::SUCCESS);

    r = pattern(n), r.rdi = hid(Hypercall::CREATE_EC, 0, ec), r.rsi = SEL_ROOT_PD, r.rdx = utcb | boot_cpu(),
    r.rax = 0x7f00dead0000, r.r8 = 0x100;
    add("create_ec (local)", r, 0, Kind::ZERO, Status::SUCCESS);

    r = pattern(n), r.rdi = hid(Hypercall::CREATE_PT, 0, pt), r.rsi = SEL_ROOT_PD, r.rdx = ec, r.rax = 0x3,
    r.r8 = reinterpret_cast<u64>(abort_stub);
    add("create_pt", r, 0, Kind::ZERO, Status::SUCCESS);

    r = pattern(n), r.rdi = hid(Hypercall::PT_CTRL, 0, pt);
    add("pt_ctrl", r, 0, Kind::ZERO, Status::SUCCESS);

    r = pattern(n), r.rdi = hid(Hypercall::SM_CTRL, 0, sm);
    add("sm_ctrl up", r, 0, Kind::ZERO, Status::SUCCESS);

    r = pattern(n), r.rdi = hid(Hypercall::SM_CTRL, Sm_flag::DOWN, sm), r.rsi = 0, r.rdx = 1;
    add("sm_ctrl down (counter 1)", r, 0, Kind::ZERO, Status::SUCCESS);

    r = pattern(n), r.rdi = hid(Hypercall::SM_CTRL, 0, SEL_ROOT_PD);
    add("sm_ctrl up on a PD capability", r, 0, Kind::EXACT, Status::BAD_CAP);

    r = pattern(n), r.rdi = hid(Hypercall::PD_CTRL, 0, 0), r.rsi = Crd::obj(SEL_ROOT_PD, 0, 0).value();
    add("pd_ctrl lookup", r, OUT_RSI, Kind::ZERO, Status::SUCCESS);

    r = pattern(n), r.rdi = hid(Hypercall::PD_CTRL, 2, SEL_ROOT_PD), r.rsi = SEL_ROOT_PD,
    r.rdx = Crd::obj(sm).value(), r.rax = Item_meta(Item_meta::DELEGATE, copy).value(),
    r.r8 = Crd::obj(copy).value();
    add("pd_ctrl delegate", r, OUT_RDX | OUT_RAX, Kind::ZERO, Status::SUCCESS);

    r = pattern(n), r.rdi = hid(Hypercall::REVOKE, 0, 0), r.rsi = 0x123456789abcd000ull;
    add("revoke (null CRD)", r, OUT_RDX, Kind::ZERO, Status::SUCCESS);

    r = pattern(n), r.rdi = hid(Hypercall::EC_CTRL, 0, ec);
    add("ec_ctrl recall (idle local EC)", r, 0, Kind::ZERO, Status::SUCCESS);

    r = pattern(n), r.rdi = hid(Hypercall::EC_CTRL, 1, 0);
    add("ec_ctrl yield", r, 0, Kind::ZERO, Status::SUCCESS);

    r = pattern(n), r.rdi = hid(Hypercall::EC_CTRL, 3, 0);
    add("ec_ctrl reschedule", r, 0, Kind::ZERO, Status::SUCCESS);

    r = pattern(n), r.rdi = hid(Hypercall::SC_CTRL, 0, SEL_ROOT_SC);
    add("sc_ctrl", r, OUT_RSI | OUT_RDX, Kind::ZERO, Status::SUCCESS);

    r = pattern(n), r.rdi = hid(Hypercall::CALL, 0, call_pt);
    add("call", r, 0, Kind::UNCHANGED, Status::SUCCESS);

    r = pattern(n), r.rdi = hid(Hypercall::CALL, Call_flag::DB, call_pt);
    add("call with DB", r, 0, Kind::UNCHANGED, Status::SUCCESS);

    r = pattern(n), r.rdi = hid(Hypercall::CALL, 0, empty);
    add("call to an empty selector", r, 0, Kind::EXACT, Status::BAD_CAP);
    return true;
}

bool run_table(Test &t, unsigned &n)
{
    if (!build(t, n))
        return false;
    for (unsigned i = 0; i < n; i++) {
        utcb().set_items(0, 0);  // calls carry no message
        raw_syscall(&cases[i].in, &cases[i].out);
        cases[i].rsp_before = raw_saved_rsp;
    }
    return true;
}

// ---- A.1, A.2 ------------------------------------------------------------------------------

void a1(Test &t)
{
    Raw_regs in = pattern(0), out;
    in.rdi = 0xf;
    raw_syscall(&in, &out);
    CHECK(out.rdi == 3, "rdi %#lx after hypercall 15, expected exactly 3 (BAD_HYP)", out.rdi);
    for (unsigned i = 0; i < 16; i++) {
        if (i == RCX || i == RDI || i == RSP || i == R11)  // defined by 1.4, checked by A.3
            continue;
        CHECK(reg(out, i) == reg(in, i), "%s changed from %#lx to %#lx", reg_names[i], reg(in, i),
              reg(out, i));
    }
}

void a2(Test &t)
{
    static const u64 ids[] = {0x1f, 0xff, 0xffffffffffffffffull, 0x123456789abcdeffull};
    for (u64 id : ids) {
        Raw_regs in = pattern(1), out;
        in.rdi = id;
        raw_syscall(&in, &out);
        CHECK(out.rdi == 3, "rdi = %#lx: got rdi %#lx, expected BAD_HYP (3)", id, out.rdi);
    }
}

// ---- A.3 - A.8 over the table ------------------------------------------------------------

void a3(Test &t)
{
    unsigned n;
    REQUIRE(run_table(t, n));
    for (unsigned i = 0; i < n; i++) {
        const Raw_case &c = cases[i];
        CHECK(c.out.r11 == 0x200, "%s: r11 %#lx, expected 0x200", c.name, c.out.r11);
        CHECK(c.out.rcx == reinterpret_cast<u64>(raw_syscall_ret), "%s: rcx %#lx, expected %p", c.name,
              c.out.rcx, raw_syscall_ret);
        CHECK(c.out.rsp == c.rsp_before, "%s: rsp %#lx, expected %#lx", c.name, c.out.rsp, c.rsp_before);
    }
    t.note("%u hypercalls", n);
}

void a4(Test &t)
{
    unsigned n;
    REQUIRE(run_table(t, n));
    for (unsigned i = 0; i < n; i++)
        CHECK(cases[i].out.rflags == 0x202,
              "%s: RFLAGS %#lx after the call (set before: %#lx), expected 0x202", cases[i].name,
              cases[i].out.rflags, FLAGS_IN);
    t.note("%u hypercalls", n);
}

void a5(Test &t)
{
    unsigned n;
    REQUIRE(run_table(t, n));
    static const unsigned kept[] = {RBX, RBP, R9, R10, R12, R13, R14, R15};
    for (unsigned i = 0; i < n; i++)
        for (unsigned r : kept)
            CHECK(reg(cases[i].out, r) == reg(cases[i].in, r), "%s: %s changed from %#lx to %#lx",
                  cases[i].name, reg_names[r], reg(cases[i].in, r), reg(cases[i].out, r));
    t.note("%u hypercalls", n);
}

void a6(Test &t)
{
    unsigned n;
    REQUIRE(run_table(t, n));
    static const struct
    {
        unsigned reg, out;
    } args[] = {{RSI, OUT_RSI}, {RDX, OUT_RDX}, {RAX, OUT_RAX}, {R8, OUT_R8}};
    for (unsigned i = 0; i < n; i++)
        for (auto &a : args)
            if (!(cases[i].outputs & a.out))
                CHECK(reg(cases[i].out, a.reg) == reg(cases[i].in, a.reg), "%s: %s changed from %#lx to %#lx",
                      cases[i].name, reg_names[a.reg], reg(cases[i].in, a.reg), reg(cases[i].out, a.reg));
    t.note("%u hypercalls", n);
}

void a7(Test &t)
{
    unsigned n, failing = 0;
    REQUIRE(run_table(t, n));
    for (unsigned i = 0; i < n; i++)
        if (cases[i].kind == Kind::EXACT) {
            failing++;
            CHECK(cases[i].out.rdi == static_cast<u64>(cases[i].want),
                  "%s (rdi %#lx): rdi %#lx, expected exactly %#x (%s)", cases[i].name, cases[i].in.rdi,
                  cases[i].out.rdi, static_cast<unsigned>(cases[i].want), status_name(cases[i].want));
        }
    t.note("%u failing hypercalls", failing);
}

void a8(Test &t)
{
    unsigned n, ok = 0;
    REQUIRE(run_table(t, n));
    for (unsigned i = 0; i < n; i++)
        if (cases[i].kind == Kind::ZERO) {
            ok++;
            CHECK(cases[i].out.rdi == 0, "%s (rdi %#lx): rdi %#lx, expected exactly 0", cases[i].name,
                  cases[i].in.rdi, cases[i].out.rdi);
        }
    t.note("%u successful hypercalls", ok);
}

// 7.8: a successful revoke overwrites rdx with 0 (reference behaviour).
void a_revoke_rdx(Test &t)
{
    unsigned n;
    REQUIRE(run_table(t, n));
    for (unsigned i = 0; i < n; i++)
        if (cases[i].in.rdi == hid(Hypercall::REVOKE, 0, 0))
            CHECK(cases[i].out.rdx == 0, "rdx %#lx after a successful revoke, expected 0", cases[i].out.rdx);
}

// 7.11: sc_ctrl returns rsi = time >> 32 and the full 64-bit time in rdx.
void a_sc_ctrl_regs(Test &t)
{
    unsigned n;
    REQUIRE(run_table(t, n));
    for (unsigned i = 0; i < n; i++)
        if (cases[i].in.rdi == hid(Hypercall::SC_CTRL, 0, SEL_ROOT_SC))
            CHECK(cases[i].out.rdx >> 32 == cases[i].out.rsi,
                  "sc_ctrl: rsi %#lx, rdx %#lx: rdx[63:32] must equal rsi", cases[i].out.rsi,
                  cases[i].out.rdx);
}

// ---- A.9 ---------------------------------------------------------------------------------

Fpu_image fpu_a, fpu_b, fpu_out;

void fill_fpu(Fpu_image &f, u64 seed)
{
    for (unsigned i = 0; i < 16; i++) {
        f.xmm[i][0] = seed ^ (0x0123456789abcdefull + i * 0x1111111111111111ull);
        f.xmm[i][1] = ~seed ^ (0xfedcba9876543210ull - i * 0x0101010101010101ull);
    }
    f.pad = 0;
}

const char *fpu_diff(const Fpu_image &want, const Fpu_image &got)
{
    if (memcmp(want.xmm, got.xmm, sizeof(want.xmm)) != 0)
        return "an xmm register";
    if (want.mxcsr != got.mxcsr)
        return "MXCSR";
    if (want.fcw != got.fcw)
        return "the x87 control word";
    if (want.st0 != got.st0)
        return "x87 register st0";
    return nullptr;
}

void fpu_clobber(Thread &th)
{
    sm_down(th.arg[0]);
    fpu_load(&fpu_b);
    sm_up(th.arg[1]);  // a hypercall of this EC while its values are loaded
    fpu_store(&fpu_out);
}

void a9(Test &t)
{
    fill_fpu(fpu_a, 0x1111);
    fpu_a.mxcsr = 0x3f80;  // rounding down, all exceptions masked
    fpu_a.fcw = 0x027f;    // 53-bit precision, all exceptions masked
    fpu_a.st0 = 0x400921fb54442d18ull;
    fill_fpu(fpu_b, 0x2222);
    fpu_b.mxcsr = 0x5f80;
    fpu_b.fcw = 0x037f;
    fpu_b.st0 = 0xc005bf0a8b145769ull;

    // Across hypercalls of the same EC.
    u64 s = t.sel(4);
    REQUIRE(s);
    Fpu_image got;
    fpu_load(&fpu_a);
    create_sm(SEL_ROOT_PD, SEL_ROOT_PD, 0);
    create_sm(s + 3, SEL_ROOT_PD, 0);
    sm_up(s + 3);
    sm_down(s + 3);
    pd_lookup(Crd::obj(SEL_ROOT_PD));
    ec_yield();
    fpu_store(&got);
    const char *d = fpu_diff(fpu_a, got);
    CHECK(!d, "%s changed across hypercalls", d);

    // Across preemption by a higher-priority EC that loads other values.
    CHECK_ST(create_sm(s, SEL_ROOT_PD, 0), Status::SUCCESS, "create_sm");
    CHECK_ST(create_sm(s + 1, SEL_ROOT_PD, 0), Status::SUCCESS, "create_sm");
    static Thread th;
    th.arg[0] = s, th.arg[1] = s + 1;
    REQUIRE(spawn(&t, th, boot_cpu(), 2, fpu_clobber));
    fpu_load(&fpu_a);
    sm_up(s);  // the thread runs now, on this CPU, and loads fpu_b
    bool done = join(th, 2000);
    fpu_store(&got);
    CHECK(done, "the clobbering thread did not finish");
    d = fpu_diff(fpu_a, got);
    CHECK(!d, "%s changed while another EC ran with different values", d);
    d = fpu_diff(fpu_b, fpu_out);
    CHECK(!d, "the other EC's %s changed while it was preempted", d);
}

const Test_case list[] = {
    {"A.1", "hypercall 15 returns BAD_HYP and changes nothing else", a1, 0},
    {"A.2", "only rdi[3:0] selects the hypercall (0x1f, ~0, ... give BAD_HYP)", a2, 0},
    {"A.3", "after each hypercall r11 = 0x200, rcx = return address, rsp unchanged", a3, 0},
    {"A.4", "after each hypercall RFLAGS = 0x202 (CF ZF DF AC ... set before)", a4, 0},
    {"A.5", "rbx rbp r9 r10 r12-r15 are preserved by each hypercall", a5, 0},
    {"A.6", "rsi rdx rax r8 are preserved unless the hypercall outputs in them", a6, 0},
    {"A.7", "a failing hypercall writes the whole rdi with the status", a7, 0},
    {"A.8", "a successful hypercall (not call) leaves rdi = 0 exactly", a8, 0},
    {"A.revoke-rdx", "a successful revoke sets rdx to 0 (7.8)", a_revoke_rdx, 0},
    {"A.sc_ctrl-rdx", "sc_ctrl: rdx holds the full time, rdx[63:32] = rsi (7.11)", a_sc_ctrl_regs, 0},
    {"A.9", "x87/SSE state survives hypercalls and preemption by another EC", a9, 0},
};

}  // namespace

const Test_section sec_entry = {list, sizeof(list) / sizeof(list[0])};
