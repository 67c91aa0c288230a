/*
 * Checklist G: event messages (ABI 10): exceptions of the root EC (its
 * portals at selectors 0..31 go to the service EC; tests hook in to shape
 * the reply), startup of global ECs, recall, kills without a portal, and
 * what an exception reply may change.
 */
#include "suite.hpp"

namespace {

constexpr u64 RF = 1u << 16;

// ---- hooks shaping the reply ------------------------------------------------------------

u64 hook_rflags; // written back with MTD RFLAGS when not ~0

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
        w[i] = 0x6e00000000000000ull | static_cast<u64>(i + 1) << 32 | (i * 0x1111);
    r.rsp = 0;
    r.rflags = 0x1 | 0x4 | 0x40 | 0x80 | 0x800 | 0x202; // CF PF ZF SF OF
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

// ---- G.107: no portal ------------------------------------------------------------------------

u64 crashed_calls;

void crash_handler(u64, Utcb &u)
{
    crashed_calls++;
    probe_write8(reinterpret_cast<void *>(0x20), 1);
    u.set_items(0, 0);
    crashed_calls += 100; // not reached
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
    u.rip = reinterpret_cast<u64>(thread_main); // our thread start (its Ec_tls is at rsp)
    u.rsp -= 8;
}

void started(Thread &th)
{
    th.result[0] = 0x108;
}

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
    th.result[1] = 1 + static_cast<u64>(s); // only if the EC survived
}

void g109_kill(Test &t)
{
    u64 evt = t.sel(NUM_EXC), svc = service_evt(boot_cpu());
    REQUIRE(evt);
    CHECK(svc != NO_EVT, "no service EC");
    REQUIRE(copy_cap(t, svc + Evt::STARTUP, evt + Evt::STARTUP, 0x1f)); // startup portal only, nothing at 31
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
    constexpr u64 cleared = 0x3000 | 0x10000 | 0x20000 | 0x80000 | 0x100000; // IOPL RF VM VIF VIP
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

} // namespace

const Test_section sec_event = {list, sizeof(list) / sizeof(list[0])};
