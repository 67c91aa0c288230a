/*
 * Checklist E: communication (ABI 7.1, 7.2, 7.12, 4.2): call/reply message
 * transfer, the callee's entry registers (through pe_entry, which records
 * them), the caller's rdi, portal ids and rights, busy and dead callees,
 * cross-CPU calls. E.83 (reply of the root EC) runs last, in suite.cpp.
 */
#include "suite.hpp"

namespace {

// ---- handlers -----------------------------------------------------------------------------

u64 msg_pattern(unsigned i) { return 0x1000000000000000ull | static_cast<u64>(i) * 0x01010101ull; }

struct Msg_seen
{
    u64 calls;
    u64 id, items, mismatches, first_bad;
};
Msg_seen seen;

// Checks the caller's words against msg_pattern, answers with their complement.
void msg_handler(u64 id, Utcb &u)
{
    __atomic_fetch_add(&seen.calls, 1, __ATOMIC_SEQ_CST);
    seen.id = id;
    seen.items = u.items;
    seen.mismatches = 0;
    unsigned n = u.untyped() < Utcb::DATA_WORDS ? u.untyped() : Utcb::DATA_WORDS;
    for (unsigned i = 0; i < n; i++)
        if (u.data[i] != msg_pattern(i) && !seen.mismatches++)
            seen.first_bad = i;
    for (unsigned i = 0; i < Utcb::DATA_WORDS; i++)
        u.data[i] = ~msg_pattern(i);
    u.items = Utcb::DATA_WORDS | 0xfeed000000000000ull;
}

void id_handler(u64 id, Utcb &u)
{
    __atomic_fetch_add(&seen.calls, 1, __ATOMIC_SEQ_CST);
    seen.id = id;
    u.set_items(0, 0);
}

bool echo_portal(Test &t, u64 &pt, unsigned cpu, Portal_handler h, u64 id = 0)
{
    Worker w;
    return make_worker(t, w, SEL_ROOT_PD, cpu, h, service_evt(cpu)) && make_portal(t, pt, w.ec, 0, id);
}

void fill_message(unsigned n, u64 upper)
{
    for (unsigned i = 0; i < Utcb::DATA_WORDS; i++)
        utcb().data[i] = msg_pattern(i);
    utcb().items = n | upper;
}

// ---- E.67 ----------------------------------------------------------------------------------

void e67(Test &t)
{
    u64 s = t.sel(2);
    REQUIRE(s);
    CHECK_ST(create_sm(s, SEL_ROOT_PD, 0), Status::SUCCESS, "create_sm");
    utcb().set_items(0, 0);
    CHECK_ST(call(s + 1), Status::BAD_CAP, "call to an empty selector");
    CHECK_ST(call(s), Status::BAD_CAP, "call to an SM capability");
    CHECK_ST(call(SEL_ROOT_PD), Status::BAD_CAP, "call to a PD capability");
    CHECK_ST(call(SEL_ROOT_EC), Status::BAD_CAP, "call to an EC capability");
}

// ---- E.68, E.73, E.74: the callee's registers at portal entry ---------------------------------

struct Entry_run
{
    u64 sp, id;
    Raw_regs first, second;
};

bool run_entries(Test &t, Entry_run &r)
{
    Ec_tls *tls = t.stack();
    u64 ec = t.sel(), pt;
    if (!tls || !ec)
        return false;
    r.sp = reinterpret_cast<u64>(tls) - 0x40;
    r.id = 0x8765432112345678ull;
    Status s =
        create_ec_local(ec, SEL_ROOT_PD, boot_cpu(), alloc_virt(PAGE_SIZE), r.sp, service_evt(boot_cpu()));
    if (s != Status::SUCCESS) {
        t.fail("create_ec: %s", status_name(s));
        return false;
    }
    if (!make_portal(t, pt, ec, 0, r.id, reinterpret_cast<u64>(pe_entry)))
        return false;
    u64 *w = reinterpret_cast<u64 *>(&pe_out);
    for (unsigned i = 0; i < 16; i++)
        w[i] = 0x3c00000000000000ull | static_cast<u64>(i) << 40 | 0x77;
    pe_out.rsp = r.sp - 0x1230;  // pe_entry uses no stack: any value will do
    pe_count = 0;
    utcb().set_items(0, 0);
    s = call(pt);
    if (s != Status::SUCCESS || pe_count != 1) {
        t.fail("first call: %s, %lu portal entries", status_name(s), pe_count);
        return false;
    }
    r.first = pe_in;
    s = call(pt);
    if (s != Status::SUCCESS || pe_count != 2) {
        t.fail("second call: %s, %lu portal entries", status_name(s), pe_count);
        return false;
    }
    r.second = pe_in;
    return true;
}

void e68(Test &t)
{
    Entry_run r;
    REQUIRE(run_entries(t, r));
    CHECK(r.first.rcx == reinterpret_cast<u64>(pe_entry), "rcx at entry %#lx, expected the portal IP %p",
          r.first.rcx, pe_entry);
    CHECK(r.first.rdi == r.id, "rdi at entry %#lx, expected the portal id %#lx", r.first.rdi, r.id);
    CHECK(r.first.rsp == r.sp, "rsp at first entry %#lx, expected create_ec's stack pointer %#lx",
          r.first.rsp, r.sp);
    CHECK(r.first.r11 == 0x200, "r11 at entry %#lx, expected 0x200", r.first.r11);
}

void e_entry_initial(Test &t)
{
    Entry_run r;
    REQUIRE(run_entries(t, r));
    static const char *const names[] = {"rax", "rbx", "rdx", "rsi", "rbp", "r8",
                                        "r9",  "r10", "r12", "r13", "r14", "r15"};
    const u64 v[] = {r.first.rax, r.first.rbx, r.first.rdx, r.first.rsi, r.first.rbp, r.first.r8,
                     r.first.r9,  r.first.r10, r.first.r12, r.first.r13, r.first.r14, r.first.r15};
    for (unsigned i = 0; i < 12; i++)
        CHECK(v[i] == 0, "%s = %#lx at the first portal entry, expected 0", names[i], v[i]);
}

void e73(Test &t)
{
    Entry_run r;
    REQUIRE(run_entries(t, r));
    static const unsigned regs[] = {0, 1, 3, 4, 6, 8, 9, 10, 12, 13, 14, 15};  // all but rcx rdi rsp r11
    static const char *const names[16] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
                                          "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
    const u64 *got = reinterpret_cast<const u64 *>(&r.second), *want = reinterpret_cast<const u64 *>(&pe_out);
    for (unsigned i : regs)
        CHECK(got[i] == want[i], "%s at the second entry %#lx, expected its value at the reply %#lx",
              names[i], got[i], want[i]);
    CHECK(r.second.rdi == r.id && r.second.rcx == reinterpret_cast<u64>(pe_entry) && r.second.r11 == 0x200,
          "second entry: rdi %#lx rcx %#lx r11 %#lx", r.second.rdi, r.second.rcx, r.second.r11);
}

void e74(Test &t)
{
    Entry_run r;
    REQUIRE(run_entries(t, r));
    CHECK(r.second.rsp == pe_out.rsp, "rsp at the second entry %#lx, expected the rsp of the reply %#lx",
          r.second.rsp, pe_out.rsp);
}

// ---- E.69, E.70: message transfer ------------------------------------------------------------

void e69(Test &t)
{
    u64 pt;
    REQUIRE(echo_portal(t, pt, boot_cpu(), msg_handler));
    seen.calls = 0, seen.id = seen.items = seen.mismatches = seen.first_bad = 0;
    u64 items = Utcb::DATA_WORDS | 0xabcd123400000000ull;
    fill_message(Utcb::DATA_WORDS, 0xabcd123400000000ull);
    CHECK_ST(call(pt), Status::SUCCESS, "call");
    CHECK(seen.calls == 1, "the handler ran %lu times", seen.calls);
    CHECK(seen.items == items, "the handler's items %#lx, expected the caller's %#lx", seen.items, items);
    CHECK(seen.mismatches == 0, "%lu of 508 words differ at the handler, the first at offset %#lx",
          seen.mismatches, 0x20 + 8 * seen.first_bad);
    static const unsigned counts[] = {1, 17};
    for (unsigned u : counts) {
        fill_message(u, 0);
        CHECK_ST(call(pt), Status::SUCCESS, "call");
        CHECK(seen.items == u && seen.mismatches == 0, "%u words: handler saw items %#lx, %lu bad words", u,
              seen.items, seen.mismatches);
    }
}

void e70(Test &t)
{
    u64 pt;
    REQUIRE(echo_portal(t, pt, boot_cpu(), msg_handler));
    fill_message(3, 0);
    CHECK_ST(call(pt), Status::SUCCESS, "call");
    u64 want = Utcb::DATA_WORDS | 0xfeed000000000000ull;
    CHECK(utcb().items == want, "the caller's items %#lx after the reply, expected the replier's %#lx",
          utcb().items, want);
    for (unsigned i = 0; i < Utcb::DATA_WORDS; i++)
        CHECK(utcb().data[i] == ~msg_pattern(i), "reply word %u (offset %#x) is %#lx, expected %#lx", i,
              0x20 + 8 * i, utcb().data[i], ~msg_pattern(i));
}

void e_untyped_max(Test &t)
{
    u64 pt;
    REQUIRE(echo_portal(t, pt, boot_cpu(), msg_handler));
    fill_message(0xffff, 0);
    CHECK_ST(call(pt), Status::SUCCESS, "call");
    CHECK(seen.items == 0xffff, "the handler's items %#lx, expected 0xffff", seen.items);
    CHECK(seen.mismatches == 0, "%lu words differ at the handler", seen.mismatches);
}

// ---- E.71, E.72: rdi after a successful call ------------------------------------------------

void raw_call_rdi(Test &t, unsigned flags)
{
    u64 pt;
    REQUIRE(echo_portal(t, pt, boot_cpu(), id_handler));
    Raw_regs in{}, out;
    in.rflags = 0x202;
    in.rdi = Hypercall_id(Hypercall::CALL, flags, pt).value();
    utcb().set_items(0, 0);
    u64 calls = seen.calls;
    raw_syscall(&in, &out);
    CHECK(seen.calls == calls + 1, "the handler did not run (rdi after the call %#lx)", out.rdi);
    CHECK(out.rdi == in.rdi, "rdi %#lx after the call, expected it unchanged (%#lx)", out.rdi, in.rdi);
}

void e71(Test &t) { raw_call_rdi(t, 0); }
void e72(Test &t) { raw_call_rdi(t, Call_flag::DB); }

// ---- E.75 - E.77: portal ids and rights ------------------------------------------------------

void e75(Test &t)
{
    u64 pt;
    REQUIRE(echo_portal(t, pt, boot_cpu(), id_handler));
    utcb().set_items(0, 0);
    static const u64 ids[] = {0x1234, 0xfedcba9876543210ull};
    for (u64 id : ids) {
        CHECK_ST(pt_ctrl(pt, id), Status::SUCCESS, "pt_ctrl");
        CHECK_ST(call(pt), Status::SUCCESS, "call");
        CHECK(seen.id == id, "the handler saw id %#lx, expected %#lx", seen.id, id);
    }
}

void e76(Test &t)
{
    u64 pt;
    REQUIRE(echo_portal(t, pt, boot_cpu(), id_handler));
    u64 s = t.sel(2);
    REQUIRE(s && copy_cap(t, pt, s, 0x12));
    CHECK_ST(pt_ctrl(s, 0x99), Status::BAD_CAP, "pt_ctrl with a PT capability of rights 0x12");
    CHECK_ST(create_sm(s + 1, SEL_ROOT_PD, 0), Status::SUCCESS, "create_sm");
    CHECK_ST(pt_ctrl(s + 1, 0x99), Status::BAD_CAP, "pt_ctrl with an SM capability");
    utcb().set_items(0, 0);
    CHECK_ST(call(s), Status::SUCCESS, "call through the reduced capability");
    CHECK(seen.id == 0, "a failed pt_ctrl changed the portal id to %#lx", seen.id);
}

void e77(Test &t)
{
    u64 pt;
    REQUIRE(echo_portal(t, pt, boot_cpu(), id_handler, 0x77));
    u64 s = t.sel();
    REQUIRE(s && copy_cap(t, pt, s, Perm_pt::CTRL));
    CHECK(lookup_obj(s) == Crd::obj(s, 0, Perm_pt::CTRL).value(),
          "the copy has rights other than 0x01 (%#lx)", lookup_obj(s));
    utcb().set_items(0, 0);
    u64 calls = seen.calls;
    CHECK_ST(call(s), Status::SUCCESS, "call through a PT capability without the call right");
    CHECK(seen.calls == calls + 1 && seen.id == 0x77, "the handler did not run");
}

// ---- E.78: busy callee ------------------------------------------------------------------------

u64 gate_sm;

void gated_handler(u64, Utcb &u)
{
    __atomic_fetch_add(&seen.calls, 1, __ATOMIC_SEQ_CST);
    sm_down(gate_sm);  // stays busy with this call until the root EC opens the gate
    u.set_items(0, 0);
}

void busy_caller(Thread &th)
{
    utcb().set_items(0, 0);
    th.result[0] = static_cast<u64>(call(th.arg[0]));
}

void e78(Test &t)
{
    u64 pt, s = t.sel();
    REQUIRE(s && echo_portal(t, pt, boot_cpu(), gated_handler));
    CHECK_ST(create_sm(s, SEL_ROOT_PD, 0), Status::SUCCESS, "create_sm");
    gate_sm = s;
    seen.calls = 0;
    static Thread th;
    th.arg[0] = pt;
    th.result[0] = 0xff;
    REQUIRE(spawn(&t, th, boot_cpu(), 2, busy_caller));  // runs first: calls and blocks in the handler
    CHECK(wait_for(seen.calls, 1, 1000), "the higher-priority thread's call did not reach the handler");
    utcb().set_items(0, 0);
    Status busy = call(pt, Call_flag::DB);
    sm_up(gate_sm);
    bool done = join(th, 2000);
    CHECK(busy == Status::COM_TIM, "call with DB to a busy portal: expected COM_TIM, got %s",
          status_name(busy));
    CHECK(done && th.result[0] == 0, "the first caller did not complete its call (status %lu)", th.result[0]);
}

// ---- E.79, E.80: killed callee ---------------------------------------------------------------

void crash_handler(u64, Utcb &u)
{
    __atomic_fetch_add(&seen.calls, 1, __ATOMIC_SEQ_CST);
    probe_write8(reinterpret_cast<void *>(0x10), 1);  // no portal at evt + 14: the kernel kills us
    u.set_items(0, 0);
    seen.id = 0xdead;  // not reached
}

bool crash_portal(Test &t, u64 &pt)
{
    u64 empty_evt = t.sel(NUM_EXC);  // an event block with nothing in it
    Worker w;
    return empty_evt && make_worker(t, w, SEL_ROOT_PD, boot_cpu(), crash_handler, empty_evt) &&
           make_portal(t, pt, w.ec, 0, 0);
}

void e79(Test &t)
{
    u64 pt;
    REQUIRE(crash_portal(t, pt));
    seen.calls = 0, seen.id = seen.items = seen.mismatches = seen.first_bad = 0;
    utcb().set_items(0, 0);
    CHECK_ST(call(pt), Status::COM_ABT, "call whose handler is killed");
    CHECK(seen.calls == 1 && seen.id != 0xdead, "the handler did not die at its fault");
}

void e80(Test &t)
{
    u64 pt;
    REQUIRE(crash_portal(t, pt));
    utcb().set_items(0, 0);
    Status first = call(pt);
    CHECK(first == Status::COM_ABT, "first call: expected COM_ABT, got %s", status_name(first));
    CHECK_ST(call(pt), Status::COM_TIM, "call to the portal of a killed EC");
    CHECK_ST(call(pt, Call_flag::DB), Status::COM_TIM, "call with DB to the portal of a killed EC");
}

// ---- E.81, E.82: cross-CPU calls --------------------------------------------------------------

void e81(Test &t)
{
    unsigned c = other_cpu();
    if (c == NO_CPU) {
        t.skip("only one CPU online");
        return;
    }
    u64 pt, s = t.sel();
    REQUIRE(s && echo_portal(t, pt, c, msg_handler));
    REQUIRE(copy_cap(t, pt, s, Perm_pt::CTRL | Perm_pt::CALL));
    seen.calls = 0;
    fill_message(1, 0);
    CHECK_ST(call(s), Status::BAD_CPU, "call to a portal on another CPU without PERM_XCPU");
    CHECK(seen.calls == 0, "the handler ran anyway");
}

void e82(Test &t)
{
    unsigned c = other_cpu();
    if (c == NO_CPU) {
        t.skip("only one CPU online");
        return;
    }
    u64 pt;
    REQUIRE(echo_portal(t, pt, c, msg_handler, 0x82));
    seen.calls = 0, seen.id = seen.items = seen.mismatches = seen.first_bad = 0;
    fill_message(5, 0x0123000000000000ull);
    CHECK_ST(call(pt), Status::SUCCESS, "cross-CPU call with rights 0x13");
    CHECK(seen.calls == 1 && seen.id == 0x82, "the handler on CPU %u did not run", c);
    CHECK(seen.items == (5 | 0x0123000000000000ull) && seen.mismatches == 0,
          "the handler saw items %#lx, %lu bad words", seen.items, seen.mismatches);
    CHECK(utcb().items == (Utcb::DATA_WORDS | 0xfeed000000000000ull), "the reply's items %#lx", utcb().items);
    for (unsigned i = 0; i < Utcb::DATA_WORDS; i++)
        CHECK(utcb().data[i] == ~msg_pattern(i), "reply word %u differs", i);
}

const Test_case list[] = {
    {"E.67", "call to an empty selector or a non-PT capability gives BAD_CAP", e67, 0},
    {"E.68", "portal entry: rip/rcx = portal IP, rdi = id, rsp = create_ec's stack pointer", e68, 0},
    {"E.entry-initial", "portal entry: other GPRs are 0 at the first entry (7.1)", e_entry_initial, 0},
    {"E.69", "508 untyped words and the full items word reach the handler", e69, 0},
    {"E.70", "the reply's words and items reach the caller", e70, 0},
    {"E.untyped-max", "U = 0xffff transfers 508 words and the items word verbatim", e_untyped_max, 0},
    {"E.71", "after a successful call without flags rdi is unchanged", e71, 0},
    {"E.72", "after a successful call with DB rdi is unchanged (status byte 0x10)", e72, 0},
    {"E.73", "the handler's registers at entry are those of its previous reply", e73, 0},
    {"E.74", "the handler's rsp at the second entry is its rsp at the first reply", e74, 0},
    {"E.75", "pt_ctrl sets the id delivered in rdi (also a full 64-bit id)", e75, 0},
    {"E.76", "pt_ctrl needs PT rights 0x01; on an SM capability BAD_CAP", e76, 0},
    {"E.77", "a PT capability with rights 0x01 only can be called", e77, 0},
    {"E.78", "call with DB to a busy portal gives COM_TIM", e78, 0},
    {"E.79", "the caller gets COM_ABT when the handler is killed during the call", e79, 0},
    {"E.80", "a later call to a killed EC's portal gives COM_TIM", e80, 0},
    {"E.81", "cross-CPU call without PERM_XCPU gives BAD_CPU", e81, 0},
    {"E.82", "cross-CPU call with PERM_XCPU succeeds and transfers the message", e82, 0},
};

}  // namespace

const Test_section sec_ipc = {list, sizeof(list) / sizeof(list[0])};
