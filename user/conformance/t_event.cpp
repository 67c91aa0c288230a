/*
 * Checklist G: event messages (ABI 10): exceptions of the root EC (its
 * portals at selectors 0..31 go to the service EC; tests hook in to shape
 * the reply), exceptions of threads under portals with chosen MTDs (#DE,
 * #GP, #BP: what the message holds, which UTCB fields stay untouched),
 * startup of global ECs, recall, kills without a portal, and what an
 * exception reply may change.
 */
#include "suite.hpp"

namespace {

constexpr u64 RF = 1u << 16;

// ---- hooks shaping the reply ------------------------------------------------------------

u64 hook_rflags;  // written back with MTD RFLAGS when not ~0

bool skip_ud2(u64 v, Utcb &u)
{
    if (v != Evt::UD || u.rip != reinterpret_cast<u64>(raw_ud2_insn))
        return false;
    u.rip += 2;
    if (hook_rflags != ~u64{0}) {
        u.rflags = hook_rflags;
        u.mtd = Mtd::RIP_LEN | Mtd::RFLAGS;
    }
    return true;
}

// int3: change every field of the message but reply with mtd 0: nothing may be written back.
bool scribble_int3(u64 v, Utcb &u)
{
    if (v != Evt::BP)
        return false;
    u64 *gpr = &u.rax;
    for (unsigned i = 0; i < 16; i++)
        if (&gpr[i] != &u.rsp)
            gpr[i] = ~gpr[i];
    u.rip = reinterpret_cast<u64>(raw_bad_landing);
    u.rflags ^= 0x8c1;
    u.mtd = 0;
    return true;
}

Raw_regs pattern()
{
    Raw_regs r;
    u64 *w = reinterpret_cast<u64 *>(&r);
    for (unsigned i = 0; i < 16; i++)
        w[i] = 0x6e00000000000000ull | static_cast<u64>(i + 1) << 32 | (u64{i} * 0x1111);
    r.rsp = 0;
    r.rflags = 0x1 | 0x4 | 0x40 | 0x80 | 0x800 | 0x202;  // CF PF ZF SF OF
    return r;
}

bool need_root_portals(Test &t)
{
    if (!root_portals)
        t.fail("the root EC has no exception portals (setup failed), not faulting on purpose");
    return root_portals;
}

bool run_ud2(Test &t, Raw_regs &in, Raw_regs &out, u64 rflags = ~u64{0})
{
    if (!need_root_portals(t))
        return false;
    in = pattern();
    hook_rflags = rflags;
    exc_hook = skip_ud2;
    u64 before = last_exc.count;
    raw_ud2(&in, &out);
    exc_hook = nullptr;
    if (last_exc.count != before + 1 || last_exc.id != Evt::UD) {
        t.fail("ud2: expected one message for event 6, got %lu (event %lu)", last_exc.count - before,
               last_exc.id);
        return false;
    }
    return true;
}

const char *const names[16] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
                               "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};

// ---- G.104 - G.106 ------------------------------------------------------------------------

void g104(Test &t)
{
    Raw_regs in, out;
    REQUIRE(run_ud2(t, in, out));
    CHECK(last_exc.rip == reinterpret_cast<u64>(raw_ud2_insn), "UTCB rip %#lx, expected the ud2 at %p",
          last_exc.rip, raw_ud2_insn);
    // raw_ud2 returned: execution went on right after the ud2.
}

void g105(Test &t)
{
    Raw_regs in, out;
    REQUIRE(run_ud2(t, in, out));
    CHECK(last_exc.items == 77, "items %#lx in the exception message, expected 77", last_exc.items);
    CHECK(last_exc.mtd == MTD_EXC, "mtd %#lx in the exception message, expected the portal's %#lx",
          last_exc.mtd, MTD_EXC);
}

// 10.2: the message carries the EC's state; replying it unchanged resumes with that state.
void g_exc_state(Test &t)
{
    Raw_regs in, out;
    REQUIRE(run_ud2(t, in, out));
    const Exc_record &e = last_exc;
    const u64 got[16] = {e.rax, e.rbx, e.rcx, e.rdx, e.rsi, e.rdi, e.rbp, e.rsp,
                         e.r8,  e.r9,  e.r10, e.r11, e.r12, e.r13, e.r14, e.r15};
    const u64 *want = reinterpret_cast<const u64 *>(&in);
    for (unsigned i = 0; i < 16; i++)
        if (i != 7)
            CHECK(got[i] == want[i], "message %s = %#lx, expected %#lx", names[i], got[i], want[i]);
    CHECK(e.rsp == raw_saved_rsp, "message rsp %#lx, expected %#lx", e.rsp, raw_saved_rsp);
    CHECK((e.rflags & ~RF) == in.rflags, "message rflags %#lx, expected %#lx", e.rflags, in.rflags);
    CHECK(e.qual0 == 0, "message error code %#lx for #UD, expected 0", e.qual0);
    const u64 *res = reinterpret_cast<const u64 *>(&out);
    for (unsigned i = 0; i < 16; i++)
        if (i != 7)
            CHECK(res[i] == want[i], "after the reply %s = %#lx, expected %#lx", names[i], res[i], want[i]);
    CHECK((out.rflags & ~RF) == in.rflags, "after the reply rflags %#lx, expected %#lx", out.rflags,
          in.rflags);
}

void g106(Test &t)
{
    REQUIRE(need_root_portals(t));
    u64 addr = alloc_virt(PAGE_SIZE) + 0x234;
    u64 before = last_exc.count;
    CHECK(!probe_write8(reinterpret_cast<void *>(addr), 1), "writing unmapped %#lx worked", addr);
    CHECK(last_exc.count == before + 1 && last_exc.id == Evt::PF, "expected a page fault, got event %lu",
          last_exc.id);
    CHECK(last_exc.qual0 == (Pf_err::USER | Pf_err::WRITE), "error code %#lx, expected 6 (user, write)",
          last_exc.qual0);
    CHECK(last_exc.qual1 == addr, "cr2 %#lx, expected %#lx", last_exc.qual1, addr);
}

// ---- G.de, G.gp, G.bp: exceptions with MTD-selected state (ABI 4.2, 5, 10.2) --------------------

/*
 * The faulting EC is a thread with its own event block: every event goes to
 * the service EC (startup, unexpected faults) except `vector`, whose portal
 * (with the MTD under test) leads to a worker that records its whole UTCB
 * state area at entry. The worker's UTCB is filled with a pattern before, so
 * the fields the MTD does not select must still hold it.
 */
constexpr u64 KEEP_MTD = ~u64{0};

struct Exc_run
{
    // Set by the test.
    void (*raw)(const Raw_regs *, Raw_regs *);
    Raw_regs in, out;
    u64 reply_rip;   // 0: leave the UTCB rip as delivered
    u64 reply_mtd;   // KEEP_MTD: reply with the mtd as delivered
    bool flip_gprs;  // invert every GPR in the UTCB before the reply
    // Recorded by the worker.
    u64 calls, id, items;
    u64 state[Utcb::STATE_WORDS];  // UTCB 0x20..0x287 at entry
};

u64 fill_word(unsigned i) { return 0xa5a5f11100000000ull | static_cast<u64>(i) << 8 | i; }

constexpr unsigned word_of(size_t offset)
{
    return static_cast<unsigned>((offset - offsetof(Utcb, mtd)) / 8);
}

const char *field_name(unsigned w)
{
    static const struct
    {
        size_t off;
        const char *name;
    } f[] = {
        {offsetof(Utcb, mtd), "mtd"},
        {offsetof(Utcb, inst_len), "inst_len"},
        {offsetof(Utcb, rip), "rip"},
        {offsetof(Utcb, rflags), "rflags"},
        {offsetof(Utcb, intr_state), "intr_state/actv_state"},
        {offsetof(Utcb, inj), "inj"},
        {offsetof(Utcb, vect_info), "vect_info/vect_error"},
        {offsetof(Utcb, rax), "rax"},
        {offsetof(Utcb, rcx), "rcx"},
        {offsetof(Utcb, rdx), "rdx"},
        {offsetof(Utcb, rbx), "rbx"},
        {offsetof(Utcb, rsp), "rsp"},
        {offsetof(Utcb, rbp), "rbp"},
        {offsetof(Utcb, rsi), "rsi"},
        {offsetof(Utcb, rdi), "rdi"},
        {offsetof(Utcb, r8), "r8"},
        {offsetof(Utcb, r9), "r9"},
        {offsetof(Utcb, r10), "r10"},
        {offsetof(Utcb, r11), "r11"},
        {offsetof(Utcb, r12), "r12"},
        {offsetof(Utcb, r13), "r13"},
        {offsetof(Utcb, r14), "r14"},
        {offsetof(Utcb, r15), "r15"},
        {offsetof(Utcb, qual), "qual[0]"},
        {offsetof(Utcb, qual) + 8, "qual[1]"},
        {offsetof(Utcb, ctrl), "ctrl"},
        {offsetof(Utcb, xcr0), "xcr0"},
        {offsetof(Utcb, cr0), "cr0"},
        {offsetof(Utcb, cr2), "cr2"},
        {offsetof(Utcb, cr3), "cr3"},
        {offsetof(Utcb, cr4), "cr4"},
    };
    for (const auto &e : f)
        if (word_of(e.off) == w)
            return e.name;
    return "a VM-only field";
}

// The state words an exception message with portal MTD `mtd` writes (4.2, 5 note 3): mtd itself,
// and per bit GPRs, rsp, rip (not inst_len), rflags, qual[0..1].
void selected_words(u64 mtd, bool sel[Utcb::STATE_WORDS])
{
    for (unsigned i = 0; i < Utcb::STATE_WORDS; i++)
        sel[i] = false;
    sel[word_of(offsetof(Utcb, mtd))] = true;
    auto mark = [&](size_t off, unsigned n) {
        for (unsigned i = 0; i < n; i++)
            sel[word_of(off) + i] = true;
    };
    if (mtd & Mtd::GPR_ACDB)
        mark(offsetof(Utcb, rax), 4);  // rax rcx rdx rbx
    if (mtd & Mtd::GPR_BSD)
        mark(offsetof(Utcb, rbp), 3);  // rbp rsi rdi
    if (mtd & Mtd::GPR_R8_R15)
        mark(offsetof(Utcb, r8), 8);
    if (mtd & Mtd::RSP)
        mark(offsetof(Utcb, rsp), 1);
    if (mtd & Mtd::RIP_LEN)
        mark(offsetof(Utcb, rip), 1);
    if (mtd & Mtd::RFLAGS)
        mark(offsetof(Utcb, rflags), 1);
    if (mtd & Mtd::QUAL)
        mark(offsetof(Utcb, qual), 2);
}

void exc_catcher(u64 id, Utcb &u)
{
    Exc_run &r = *static_cast<Exc_run *>(ec_tls()->arg);
    if (++r.calls > 1) {  // the EC faulted again: stop it (it parks in abort_stub)
        u.rip = reinterpret_cast<u64>(abort_stub);
        u.mtd = Mtd::RIP_LEN;
        return;
    }
    r.id = id;
    r.items = u.items;
    for (unsigned i = 0; i < Utcb::STATE_WORDS; i++)
        r.state[i] = u.data[i];
    if (r.flip_gprs) {
        u64 *gpr = &u.rax;
        for (unsigned i = 0; i < 16; i++)
            gpr[i] = ~gpr[i];
    }
    if (r.reply_rip)
        u.rip = r.reply_rip;
    if (r.reply_mtd != KEEP_MTD)
        u.mtd = r.reply_mtd;
}

void exc_thread(Thread &th)
{
    Exc_run &r = *reinterpret_cast<Exc_run *>(th.arg[0]);
    r.raw(&r.in, &r.out);
    th.result[0] = 1;
}

// The message's value of a state field.
u64 msg(const Exc_run &r, size_t offset) { return r.state[word_of(offset)]; }

/*
 * Let a thread run r.raw with r.in under a portal at evt + vector with MTD
 * `mtd`. True when exactly one message arrived there and the thread finished.
 */
bool run_exc(Test &t, Exc_run &r, unsigned vector, u64 mtd)
{
    u64 evt = t.sel(NUM_EXC), svc = service_evt(boot_cpu());
    if (!evt)
        return false;
    if (svc == NO_EVT) {
        t.fail("suite: no service EC on the boot CPU");
        return false;
    }
    Delegate_result d = pd_delegate(SEL_ROOT_PD, SEL_ROOT_PD, Crd::obj(svc, 5, OBJ_ALL),
                                    Item_meta(Item_meta::DELEGATE, evt), Crd::obj(evt, 5, OBJ_ALL));
    if (d.status != Status::SUCCESS || Crd(lookup_obj(evt + Evt::STARTUP)).type() != Crd::OBJ) {
        t.fail("copying the service event block: %s", status_name(d.status));
        return false;
    }
    revoke(Crd::obj(evt + vector, 0, OBJ_ALL), Revoke_flag::SELF);  // our portal goes there
    Worker w;
    if (!make_worker(t, w, SEL_ROOT_PD, boot_cpu(), exc_catcher, svc, &r))
        return false;
    Utcb &wu = *reinterpret_cast<Utcb *>(w.utcb);
    for (unsigned i = 0; i < Utcb::STATE_WORDS; i++)
        wu.data[i] = fill_word(i);
    Status s = create_pt(evt + vector, SEL_ROOT_PD, w.ec, mtd, reinterpret_cast<u64>(nova_portal_entry));
    if (s == Status::SUCCESS)
        s = pt_ctrl(evt + vector, 0xe000 + vector);
    if (s != Status::SUCCESS) {
        t.fail("create_pt/pt_ctrl at evt + %u: %s", vector, status_name(s));
        return false;
    }
    r.calls = 0;
    r.out = {};
    static Thread th;
    th.arg[0] = reinterpret_cast<u64>(&r);
    th.result[0] = 0;
    if (!spawn(&t, th, boot_cpu(), 2, exc_thread, evt))
        return false;
    bool done = join(th, 2000);
    if (r.calls == 0) {
        t.fail("no message at evt + %u (the faulting EC %s)", vector, done ? "went on" : "did not finish");
        return false;
    }
    if (r.calls > 1 || !done) {
        t.fail("%lu messages at evt + %u; the EC %s", r.calls, vector,
               done ? "finished" : "did not resume after the instruction");
        return false;
    }
    if (r.id != 0xe000 + vector) {
        t.fail("the message came with portal id %#lx, expected %#x", r.id, 0xe000 + vector);
        return false;
    }
    if (r.items != Utcb::EVENT_ITEMS) {
        t.fail("items %#lx in the message, expected 77", r.items);
        return false;
    }
    if (msg(r, offsetof(Utcb, mtd)) != mtd) {
        t.fail("UTCB mtd %#lx in the message, expected the portal's %#lx", msg(r, offsetof(Utcb, mtd)), mtd);
        return false;
    }
    return true;
}

// Fields the portal MTD does not select still hold the pattern.
void check_unselected(Test &t, const Exc_run &r, u64 mtd)
{
    bool sel[Utcb::STATE_WORDS];
    selected_words(mtd, sel);
    for (unsigned i = 0; i < Utcb::STATE_WORDS; i++)
        CHECK(sel[i] || r.state[i] == fill_word(i),
              "UTCB offset %#x (%s) was written (%#lx) although the portal MTD %#lx does not select it",
              0x20 + 8 * i, field_name(i), r.state[i], mtd);
}

// The message's GPRs (indices of Raw_regs, rsp excluded) in `mask` equal the ones set before.
void check_msg_gprs(Test &t, const Exc_run &r, u32 mask)
{
    static const size_t off[16] = {
        offsetof(Utcb, rax), offsetof(Utcb, rbx), offsetof(Utcb, rcx), offsetof(Utcb, rdx),
        offsetof(Utcb, rsi), offsetof(Utcb, rdi), offsetof(Utcb, rbp), offsetof(Utcb, rsp),
        offsetof(Utcb, r8),  offsetof(Utcb, r9),  offsetof(Utcb, r10), offsetof(Utcb, r11),
        offsetof(Utcb, r12), offsetof(Utcb, r13), offsetof(Utcb, r14), offsetof(Utcb, r15)};
    const u64 *want = reinterpret_cast<const u64 *>(&r.in);
    for (unsigned i = 0; i < 16; i++)
        if (i != 7 && mask >> i & 1)
            CHECK(msg(r, off[i]) == want[i], "message %s = %#lx, expected %#lx", names[i], msg(r, off[i]),
                  want[i]);
}

// After the EC resumed: every GPR (but rsp) and RFLAGS (but RF) as set before the fault.
void check_resumed(Test &t, const Exc_run &r)
{
    const u64 *got = reinterpret_cast<const u64 *>(&r.out), *want = reinterpret_cast<const u64 *>(&r.in);
    for (unsigned i = 0; i < 16; i++)
        if (i != 7)
            CHECK(got[i] == want[i], "after the reply %s = %#lx, expected %#lx", names[i], got[i], want[i]);
    CHECK((r.out.rflags & ~RF) == r.in.rflags, "after the reply rflags %#lx, expected %#lx", r.out.rflags,
          r.in.rflags);
    CHECK(r.out.rsp == raw_saved_rsp, "after the reply rsp %#lx, expected %#lx", r.out.rsp, raw_saved_rsp);
}

// Full exception state (MTD_EXC): rip, GPRs, rsp, rflags, error code 0; unselected fields untouched.
void check_full(Test &t, const Exc_run &r, u64 rip, const char *what)
{
    CHECK(msg(r, offsetof(Utcb, rip)) == rip, "message rip %#lx, expected %#lx (%s)",
          msg(r, offsetof(Utcb, rip)), rip, what);
    check_msg_gprs(t, r, 0xffff);
    if (t.failed)
        return;
    CHECK(msg(r, offsetof(Utcb, rsp)) == raw_saved_rsp, "message rsp %#lx, expected %#lx",
          msg(r, offsetof(Utcb, rsp)), raw_saved_rsp);
    CHECK((msg(r, offsetof(Utcb, rflags)) & ~RF) == r.in.rflags, "message rflags %#lx, expected %#lx",
          msg(r, offsetof(Utcb, rflags)), r.in.rflags);
    CHECK(msg(r, offsetof(Utcb, qual)) == 0, "message error code (qual[0]) %#lx, expected 0",
          msg(r, offsetof(Utcb, qual)));
    check_unselected(t, r, MTD_EXC);
}

Exc_run exc;

void g_de(Test &t)
{
    exc = {};
    exc.raw = raw_div;
    exc.in = pattern();
    exc.in.r10 = 0;  // the divisor
    exc.reply_rip = reinterpret_cast<u64>(raw_div_ret);
    exc.reply_mtd = KEEP_MTD;
    REQUIRE(run_exc(t, exc, Evt::DE, MTD_EXC));
    check_full(t, exc, reinterpret_cast<u64>(raw_div_insn), "the div");
    REQUIRE(!t.failed);
    check_resumed(t, exc);
}

// Portal MTD RIP_LEN | GPR_ACDB; the reply changes the GPRs in the UTCB but its mtd is RIP_LEN.
void g_de_mtd(Test &t)
{
    constexpr u64 mtd = Mtd::RIP_LEN | Mtd::GPR_ACDB;
    exc = {};
    exc.raw = raw_div;
    exc.in = pattern();
    exc.in.r10 = 0;
    exc.reply_rip = reinterpret_cast<u64>(raw_div_ret);
    exc.reply_mtd = Mtd::RIP_LEN;
    exc.flip_gprs = true;
    REQUIRE(run_exc(t, exc, Evt::DE, mtd));
    CHECK(msg(exc, offsetof(Utcb, rip)) == reinterpret_cast<u64>(raw_div_insn),
          "message rip %#lx, expected the div at %p", msg(exc, offsetof(Utcb, rip)), raw_div_insn);
    check_msg_gprs(t, exc, 0xf);  // rax rbx rcx rdx
    REQUIRE(!t.failed);
    check_unselected(t, exc, mtd);
    REQUIRE(!t.failed);
    check_resumed(t, exc);  // the inverted GPRs were not written back
}

void g_gp(Test &t)
{
    exc = {};
    exc.raw = raw_hlt;
    exc.in = pattern();
    exc.reply_rip = reinterpret_cast<u64>(raw_hlt_ret);
    exc.reply_mtd = KEEP_MTD;
    REQUIRE(run_exc(t, exc, Evt::GP, MTD_EXC));
    check_full(t, exc, reinterpret_cast<u64>(raw_hlt_insn), "the hlt");
    REQUIRE(!t.failed);
    check_resumed(t, exc);
}

// Portal MTD QUAL | GPR_R8_R15 plus bits that mean nothing for exceptions (5, note 3); the
// message has no rip, the reply sets it with mtd RIP_LEN.
void g_gp_mtd(Test &t)
{
    constexpr u64 mtd = Mtd::QUAL | Mtd::GPR_R8_R15 | Mtd::DS_ES | Mtd::CS_SS | Mtd::CR | Mtd::STA;
    exc = {};
    exc.raw = raw_hlt;
    exc.in = pattern();
    exc.reply_rip = reinterpret_cast<u64>(raw_hlt_ret);
    exc.reply_mtd = Mtd::RIP_LEN;
    REQUIRE(run_exc(t, exc, Evt::GP, mtd));
    CHECK(msg(exc, offsetof(Utcb, qual)) == 0, "message error code (qual[0]) %#lx, expected 0",
          msg(exc, offsetof(Utcb, qual)));
    check_msg_gprs(t, exc, 0xff00);  // r8..r15
    REQUIRE(!t.failed);
    check_unselected(t, exc, mtd);
    REQUIRE(!t.failed);
    check_resumed(t, exc);
}

// A non-canonical address: #GP(0) at the root EC's selector 13 (the probe's fix-up resumes it).
void g_gp_noncanonical(Test &t)
{
    REQUIRE(need_root_portals(t));
    u64 before = last_exc.count, v;
    const void *addr = reinterpret_cast<const void *>(0x8000000000001000ull);
    CHECK(!probe_read64(addr, &v), "reading non-canonical %p worked", addr);
    CHECK(last_exc.count == before + 1 && last_exc.id == Evt::GP,
          "expected one message for event 13, got %lu (event %lu)", last_exc.count - before, last_exc.id);
    u64 fix;
    CHECK(is_probe_fault(last_exc.rip, &fix), "message rip %#lx is not the faulting load", last_exc.rip);
    CHECK(last_exc.qual0 == 0, "error code %#lx, expected 0", last_exc.qual0);
}

void g_bp(Test &t)
{
    exc = {};
    exc.raw = raw_int3;
    exc.in = pattern();
    exc.reply_mtd = KEEP_MTD;  // unchanged reply
    REQUIRE(run_exc(t, exc, Evt::BP, MTD_EXC));
    check_full(t, exc, reinterpret_cast<u64>(raw_int3_ret), "the instruction after int3");
    REQUIRE(!t.failed);
    check_resumed(t, exc);
}

// Portal MTD RSP | RFLAGS | GPR_BSD (no rip); the unchanged reply writes rsp and rflags back.
void g_bp_mtd(Test &t)
{
    constexpr u64 mtd = Mtd::RSP | Mtd::RFLAGS | Mtd::GPR_BSD;
    exc = {};
    exc.raw = raw_int3;
    exc.in = pattern();
    exc.reply_mtd = KEEP_MTD;
    REQUIRE(run_exc(t, exc, Evt::BP, mtd));
    CHECK(msg(exc, offsetof(Utcb, rsp)) == raw_saved_rsp, "message rsp %#lx, expected %#lx",
          msg(exc, offsetof(Utcb, rsp)), raw_saved_rsp);
    CHECK((msg(exc, offsetof(Utcb, rflags)) & ~RF) == exc.in.rflags, "message rflags %#lx, expected %#lx",
          msg(exc, offsetof(Utcb, rflags)), exc.in.rflags);
    check_msg_gprs(t, exc, 0x70);  // rsi rdi rbp
    REQUIRE(!t.failed);
    check_unselected(t, exc, mtd);
    REQUIRE(!t.failed);
    check_resumed(t, exc);
}

// ---- G.107: no portal ------------------------------------------------------------------------

u64 crashed_calls;

void crash_handler(u64, Utcb &u)
{
    crashed_calls++;
    probe_write8(reinterpret_cast<void *>(0x20), 1);
    u.set_items(0, 0);
    crashed_calls += 100;  // not reached
}

void g107(Test &t)
{
    u64 evt = t.sel(NUM_EXC);
    Worker w;
    u64 pt;
    REQUIRE(evt && make_worker(t, w, SEL_ROOT_PD, boot_cpu(), crash_handler, evt) &&
            make_portal(t, pt, w.ec, 0, 0));
    crashed_calls = 0;
    utcb().set_items(0, 0);
    Status s = call(pt);
    CHECK(crashed_calls == 1, "the handler %s",
          crashed_calls ? "went on after its page fault" : "did not run");
    CHECK(s == Status::COM_ABT, "the caller got %s, expected COM_ABT (the handler killed)", status_name(s));
    CHECK_ST(call(pt), Status::COM_TIM, "a later call (the EC is dead)");
    t.note("the console line is not checked");
}

// ---- G.108: startup ----------------------------------------------------------------------------

struct Startup_seen
{
    u64 calls, rip, rsp, rflags, items, mtd, qual0, qual1, nonzero_gprs;
};
Startup_seen st;

void startup_recorder(u64, Utcb &u)
{
    st.calls++;
    st.rip = u.rip, st.rsp = u.rsp, st.rflags = u.rflags, st.items = u.items, st.mtd = u.mtd;
    st.qual0 = u.qual[0], st.qual1 = u.qual[1];
    const u64 *gpr = &u.rax;
    st.nonzero_gprs = 0;
    for (unsigned i = 0; i < 16; i++)
        if (&gpr[i] != &u.rsp && gpr[i])
            st.nonzero_gprs |= 1u << i;
    u.rip = reinterpret_cast<u64>(thread_main);  // our thread start (its Ec_tls is at rsp)
    u.rsp -= 8;
}

void started(Thread &th) { th.result[0] = 0x108; }

bool run_startup(Test &t, Thread &th)
{
    u64 evt = t.sel(NUM_EXC);
    Worker w;
    if (!evt || !make_worker(t, w, SEL_ROOT_PD, boot_cpu(), startup_recorder, service_evt(boot_cpu())))
        return false;
    Status s =
        create_pt(evt + Evt::STARTUP, SEL_ROOT_PD, w.ec, MTD_EXC, reinterpret_cast<u64>(nova_portal_entry));
    if (s != Status::SUCCESS) {
        t.fail("create_pt: %s", status_name(s));
        return false;
    }
    st = {};
    th.result[0] = 0;
    if (!spawn(&t, th, boot_cpu(), 2, started, evt))
        return false;
    if (!join(th, 2000)) {
        t.fail("the new EC did not run (%lu startup messages)", st.calls);
        return false;
    }
    return true;
}

void g108(Test &t)
{
    static Thread th;
    REQUIRE(run_startup(t, th));
    CHECK(st.calls == 1, "%lu startup messages, expected 1", st.calls);
    CHECK(st.rip == 0, "startup message rip %#lx, expected 0", st.rip);
    CHECK(st.rsp == reinterpret_cast<u64>(th.tls), "startup message rsp %#lx, expected create_ec's %p",
          st.rsp, th.tls);
    CHECK(th.result[0] == 0x108, "the EC did not start at the rip of the reply");
}

void g_startup_state(Test &t)
{
    static Thread th;
    REQUIRE(run_startup(t, th));
    CHECK(st.items == 77 && st.mtd == MTD_EXC, "items %#lx mtd %#lx, expected 77 and the portal's", st.items,
          st.mtd);
    CHECK(st.rflags == 0x200, "startup rflags %#lx, expected 0x200", st.rflags);
    CHECK(st.nonzero_gprs == 0, "startup GPRs not all 0 (mask %#lx)", st.nonzero_gprs);
    CHECK(st.qual0 == 0 && st.qual1 == 0, "startup qual %#lx %#lx, expected 0", st.qual0, st.qual1);
}

// ---- G.109, G.110: recall ----------------------------------------------------------------------

void g109(Test &t)
{
    REQUIRE(need_root_portals(t));
    u64 before = recall_count;
    Status s = ec_recall(SEL_ROOT_EC);
    u64 after = recall_count;
    CHECK(s == Status::SUCCESS, "ec_ctrl recall of the root EC: %s", status_name(s));
    CHECK(after == before + 1, "%lu recall messages arrived before the hypercall returned, expected 1",
          after - before);
    CHECK(last_exc.id == Evt::RECALL, "the message came through selector %lu, expected 31", last_exc.id);
    CHECK(last_exc.rdi == 0, "recall message rdi %#lx, expected the hypercall's status 0", last_exc.rdi);
    CHECK(last_exc.rip == last_exc.rcx,
          "recall message rip %#lx, rcx %#lx: expected the return address in both", last_exc.rip,
          last_exc.rcx);
    // Idempotent, and nothing pending afterwards.
    CHECK_ST(sm_up(0), Status::BAD_CAP, "a later hypercall");
    CHECK(recall_count == after, "a second recall message arrived");
}

void recall_self(Thread &th)
{
    th.result[0] = 1;
    Status s = ec_recall(th.ec);
    th.result[1] = 1 + static_cast<u64>(s);  // only if the EC survived
}

void g109_kill(Test &t)
{
    u64 evt = t.sel(NUM_EXC), svc = service_evt(boot_cpu());
    REQUIRE(evt);
    CHECK(svc != NO_EVT, "no service EC");
    REQUIRE(copy_cap(t, svc + Evt::STARTUP, evt + Evt::STARTUP, 0x1f));  // startup portal only, nothing at 31
    static Thread th;
    th.result[0] = 0;
    th.result[1] = 0;
    REQUIRE(spawn(&t, th, boot_cpu(), 2, recall_self, evt));
    bool done = join(th, 300);
    CHECK(th.result[0] == 1, "the EC did not start");
    CHECK(!done && th.result[1] == 0, "the EC survived a recall without a portal at evt + 31 (status %lu)",
          th.result[1] - 1);
    t.note("the console line is not checked");
}

void g110(Test &t)
{
    u64 s = t.sel(4);
    REQUIRE(s);
    CHECK_ST(create_sm(s, SEL_ROOT_PD, 0), Status::SUCCESS, "create_sm");
    CHECK_ST(ec_recall(s), Status::BAD_CAP, "recall of an SM capability");
    CHECK_ST(ec_recall(SEL_ROOT_PD), Status::BAD_CAP, "recall of a PD capability");
    CHECK_ST(ec_recall(s + 1), Status::BAD_CAP, "recall of an empty selector");
    REQUIRE(copy_cap(t, SEL_ROOT_EC, s + 2, Perm_ec::BIND_SC | Perm_ec::BIND_PT));
    u64 before = recall_count;
    CHECK_ST(ec_recall(s + 2), Status::BAD_CAP, "recall with an EC capability of rights 0x0c");
    CHECK(recall_count == before, "a recall message arrived anyway");
}

// ---- G.111, G.112: what a reply may change ------------------------------------------------------

void g111(Test &t)
{
    Raw_regs in, out;
    REQUIRE(run_ud2(t, in, out, 0x3000));
    CHECK(!(out.rflags & 0x3000), "resumed with IOPL %lu (RFLAGS %#lx)", out.rflags >> 12 & 3, out.rflags);
    CHECK(out.rflags & 0x200, "resumed with IF clear (RFLAGS %#lx)", out.rflags);
}

void g_rflags(Test &t)
{
    constexpr u64 arith = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x800, df = 0x400, id = 0x200000;
    constexpr u64 cleared = 0x3000 | 0x10000 | 0x20000 | 0x80000 | 0x100000;  // IOPL RF VM VIF VIP
    Raw_regs in, out;
    REQUIRE(run_ud2(t, in, out, arith | df | id | cleared));
    u64 want = arith | df | id | 0x202;
    CHECK(out.rflags == want, "resumed with RFLAGS %#lx, expected %#lx", out.rflags, want);
}

void g112(Test &t)
{
    REQUIRE(need_root_portals(t));
    Raw_regs in = pattern(), out;
    raw_bad_landing_hit = 0;
    exc_hook = scribble_int3;
    u64 before = last_exc.count;
    raw_int3(&in, &out);
    exc_hook = nullptr;
    CHECK(last_exc.count == before + 1 && last_exc.id == Evt::BP, "int3: expected one message for event 3");
    CHECK(last_exc.rip == reinterpret_cast<u64>(raw_int3_ret),
          "int3 message rip %#lx, expected the next instruction %p", last_exc.rip, raw_int3_ret);
    CHECK(!raw_bad_landing_hit, "the EC resumed at the rip the handler wrote although mtd was 0");
    const u64 *got = reinterpret_cast<const u64 *>(&out), *want = reinterpret_cast<const u64 *>(&in);
    for (unsigned i = 0; i < 16; i++)
        if (i != 7)
            CHECK(got[i] == want[i], "%s = %#lx after the reply, expected %#lx", names[i], got[i], want[i]);
    CHECK((out.rflags & ~RF) == in.rflags, "RFLAGS %#lx after the reply, expected %#lx", out.rflags,
          in.rflags);
}

const Test_case list[] = {
    {"G.104", "ud2 delivers a message with rip = the ud2; rip + 2 resumes after it", g104, 0},
    {"G.105", "an exception message has items = 77 and mtd = the portal's MTD", g105, 0},
    {"G.exc-state", "the message carries GPRs, rsp, rflags, error code 0; an unchanged reply keeps them",
     g_exc_state, 0},
    {"G.106", "a user write page fault delivers error code 6 and cr2 = the address", g106, 0},
    {"G.de", "#DE: evt + 0 gets rip = the div, GPRs, rsp, rflags, error code 0; rip past it resumes", g_de,
     0},
    {"G.de-mtd", "#DE with MTD RIP_LEN|GPR_ACDB: only those written; reply mtd RIP_LEN keeps the GPRs",
     g_de_mtd, 0},
    {"G.gp", "#GP (hlt in user mode): evt + 13 gets rip = the hlt, GPRs, error code 0", g_gp, 0},
    {"G.gp-mtd", "#GP with MTD QUAL|GPR_R8_R15 and VM-only bits: nothing else written", g_gp_mtd, 0},
    {"G.gp-noncanonical", "a non-canonical load raises #GP with error code 0 at the faulting load",
     g_gp_noncanonical, 0},
    {"G.bp", "#BP: evt + 3 gets rip after the int3 and the GPRs; an unchanged reply goes on after it", g_bp,
     0},
    {"G.bp-mtd", "#BP with MTD RSP|RFLAGS|GPR_BSD: only those written; the unchanged reply resumes", g_bp_mtd,
     0},
    {"G.107", "a page fault without a portal at evt + 14 kills the EC", g107, 0},
    {"G.108", "startup: portal evt + 30 sees rip 0 and the create_ec stack; the reply's rip starts the EC",
     g108, 0},
    {"G.startup-state", "startup message: items 77, rflags 0x200, GPRs and qual 0", g_startup_state, 0},
    {"G.109", "recall of the root EC delivers a message at selector 31 before the call returns", g109, 0},
    {"G.109-kill", "recall of an EC without a portal at evt + 31 kills it", g109_kill, 0},
    {"G.110", "recall of a non-EC or an EC capability without bit 0 gives BAD_CAP", g110, 0},
    {"G.111", "an exception reply with rflags 0x3000 resumes with IOPL 0 and IF 1", g111, 0},
    {"G.rflags", "an exception reply takes all RFLAGS bits but VM VIF VIP RF IOPL, and sets IF", g_rflags, 0},
    {"G.112", "an exception reply with mtd 0 changes nothing, whatever the UTCB holds", g112, 0},
};

}  // namespace

const Test_section sec_event = {list, sizeof(list) / sizeof(list[0])};
