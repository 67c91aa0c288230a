/*
 * Whole-system properties: isolation of a child PD (selectors, memory, I/O),
 * revocation through a derivation chain root -> child -> grandchild,
 * exhaustion of kernel memory (OOM, ABI 1.5) and recovery, and create/destroy
 * loops that would run the kernel out of memory if anything leaked.
 */
#include "suite.hpp"

namespace {

// Child handlers get their instructions in data[0] and answer in data[0..].
enum Op : u64 { READ, IO, CAPS };

u64 root_sm;  // a semaphore only we hold

void child_handler(u64, Utcb &u)
{
    switch (u.data[0]) {
    case READ: {
        u64 v = 0;
        u.data[0] = probe_read64(reinterpret_cast<void *>(u.data[1]), &v);
        u.data[1] = v;
        u.set_items(2, 0);
        return;
    }
    case IO:
        u.data[0] = probe_in8(static_cast<u16>(u.data[1]));
        u.set_items(1, 0);
        return;
    case CAPS:
        u.data[0] = static_cast<u64>(sm_up(root_sm));
        u.data[1] = static_cast<u64>(create_sm(0x80, SEL_ROOT_PD, 0));
        u.data[2] = pd_lookup(Crd::obj(SEL_ROOT_PD, 0, 0)).crd.value();
        u.data[3] = static_cast<u64>(ec_recall(SEL_ROOT_EC));
        u.data[4] = pd_lookup(Crd::mem(HIP_ADDR >> PAGE_BITS, 0, 0)).crd.value();
        u.set_items(5, 0);
        return;
    default: return;  // no such request: the reply carries what the UTCB holds
    }
}

// Ask child `pt` to read `addr`: true if the read worked, the value in `v`.
bool child_read(u64 pt, u64 addr, u64 &v, Status &s)
{
    utcb().data[0] = READ;
    utcb().data[1] = addr;
    utcb().set_items(2, 0);
    s = call(pt);
    v = utcb().data[1];
    return s == Status::SUCCESS && utcb().data[0] == 1;
}

// ---- isolation -----------------------------------------------------------------------------

void iso_caps(Test &t)
{
    root_sm = t.sel();
    REQUIRE(root_sm);
    CHECK_ST(create_sm(root_sm, SEL_ROOT_PD, 0), Status::SUCCESS, "create_sm");
    Child_pd c;
    REQUIRE(make_child(t, c, boot_cpu(), child_handler, false));
    utcb().data[0] = CAPS;
    utcb().set_items(1, 0);
    CHECK_ST(call(c.pt), Status::SUCCESS, "call into the child");
    const u64 *d = utcb().data;
    CHECK(d[0] == static_cast<u64>(Status::BAD_CAP),
          "the child's up on our semaphore's selector: %s, expected BAD_CAP",
          status_name(static_cast<Status>(d[0])));
    CHECK(d[1] == static_cast<u64>(Status::BAD_CAP),
          "the child's create_sm with selector 32 as PD: %s, expected BAD_CAP",
          status_name(static_cast<Status>(d[1])));
    CHECK(d[2] == 0, "the child's lookup of selector 32 gives %#lx, expected 0 (no capability to itself)",
          d[2]);
    CHECK(d[3] == static_cast<u64>(Status::BAD_CAP),
          "the child's recall of selector 33: %s, expected BAD_CAP", status_name(static_cast<Status>(d[3])));
    CHECK(d[4] == 0, "the child's lookup of the HIP page gives %#lx, expected 0", d[4]);
    CHECK_ST(try_down(root_sm), Status::COM_TIM, "our semaphore (the child must not have upped it)");
}

void iso_memory(Test &t)
{
    Child_pd c;
    REQUIRE(make_child(t, c, boot_cpu(), child_handler, true));
    u64 *mine = static_cast<u64 *>(scratch_page(t));
    REQUIRE(mine);
    mine[0] = 0x15015015;
    const u64 addrs[] = {HIP_ADDR, ROOT_UTCB_ADDR, reinterpret_cast<u64>(mine), alloc_virt(PAGE_SIZE)};
    const char *what[] = {"the HIP", "our UTCB", "a page of ours", "an unused address"};
    for (unsigned i = 0; i < 4; i++) {
        u64 before = last_exc.count, v;
        Status s;
        bool ok = child_read(c.pt, addrs[i], v, s);
        CHECK_ST(s, Status::SUCCESS, "call into the child");
        CHECK(!ok, "the child could read %s at %#lx (%#lx)", what[i], addrs[i], v);
        CHECK(last_exc.count == before + 1 && last_exc.id == Evt::PF && last_exc.qual1 == addrs[i],
              "reading %s: expected a page fault at the child's portal with cr2 %#lx (event %lu, cr2 %#lx)",
              what[i], addrs[i], last_exc.id, last_exc.qual1);
    }
    // Our own image is shared with it (make_child): that read works.
    u64 v;
    Status s;
    static u64 shared = 0x5eed;
    CHECK(child_read(c.pt, reinterpret_cast<u64>(&shared), v, s) && v == 0x5eed,
          "the child cannot read shared memory");
}

void iso_io(Test &t)
{
    Child_pd c;
    REQUIRE(make_child(t, c, boot_cpu(), child_handler, true));
    u64 before = last_exc.count;
    utcb().data[0] = IO;
    utcb().data[1] = Console::COM1 + 5;  // a port we own
    utcb().set_items(2, 0);
    CHECK_ST(call(c.pt), Status::SUCCESS, "call into the child");
    CHECK(utcb().data[0] == 0, "the child could read our serial port");
    CHECK(last_exc.count == before + 1 && last_exc.id == Evt::GP,
          "expected #GP at the child's portal, got event %lu", last_exc.id);
}

void iso_kill(Test &t)
{
    Child_pd c;
    REQUIRE(make_child(t, c, boot_cpu(), child_handler, false));
    u64 v;
    Status s;
    child_read(c.pt, HIP_ADDR, v, s);
    CHECK(s == Status::COM_ABT,
          "a child without exception portals touching our memory: call gave %s, expected "
          "COM_ABT (the child EC killed)",
          status_name(s));
    child_read(c.pt, HIP_ADDR, v, s);
    CHECK(s == Status::COM_TIM, "a later call gave %s, expected COM_TIM", status_name(s));
}

// ---- revocation through a derivation chain -----------------------------------------------------

struct Chain
{
    u64 *page;      // ours
    Child_pd c, g;  // child and grandchild
    u64 xc, xg;     // the page's address in the child and in the grandchild
};

bool make_chain(Test &t, Chain &ch)
{
    ch.page = static_cast<u64 *>(scratch_page(t));
    if (!ch.page || !make_child(t, ch.c, boot_cpu(), child_handler, true) ||
        !make_child(t, ch.g, boot_cpu(), child_handler, true))
        return false;
    ch.page[0] = 0xc4a1c4a1;
    ch.xc = alloc_virt(PAGE_SIZE), ch.xg = alloc_virt(PAGE_SIZE);
    u64 p = reinterpret_cast<u64>(ch.page) >> PAGE_BITS, pc = ch.xc >> PAGE_BITS, pg = ch.xg >> PAGE_BITS;
    Delegate_result r = pd_delegate(SEL_ROOT_PD, ch.c.pd, Crd::mem(p, 0, Perm_mem::RW),
                                    Item_meta(Item_meta::DELEGATE, pc), Crd::mem(pc, 0, Perm_mem::RW));
    if (r.status != Status::SUCCESS || r.crd.is_null()) {
        t.fail("delegating our page to the child: %s, CRD %#lx", status_name(r.status), r.crd.value());
        return false;
    }
    r = pd_delegate(ch.c.pd, ch.g.pd, Crd::mem(pc, 0, Perm_mem::RW), Item_meta(Item_meta::DELEGATE, pg),
                    Crd::mem(pg, 0, Perm_mem::RW));
    if (r.status != Status::SUCCESS || r.crd.is_null()) {
        t.fail("delegating the page from the child to the grandchild: %s, CRD %#lx", status_name(r.status),
               r.crd.value());
        return false;
    }
    return true;
}

// Can child `c` read the chain page at `x`?
bool reads(Test &t, const Child_pd &c, u64 x, bool &ok)
{
    u64 v;
    Status s;
    ok = child_read(c.pt, x, v, s);
    if (s != Status::SUCCESS) {
        t.fail("call into a child: %s", status_name(s));
        return false;
    }
    if (ok && v != 0xc4a1c4a1) {
        t.fail("a child read %#lx from the shared page", v);
        return false;
    }
    return true;
}

void revoke_grandchild(Test &t)
{
    Chain ch;
    REQUIRE(make_chain(t, ch));
    bool c_ok, g_ok;
    REQUIRE(reads(t, ch.c, ch.xc, c_ok) && reads(t, ch.g, ch.xg, g_ok));
    CHECK(c_ok && g_ok, "before the revoke: child reads %u, grandchild reads %u", c_ok, g_ok);
    CHECK_ST(revoke(Crd::mem(reinterpret_cast<u64>(ch.page) >> PAGE_BITS, 0, 0x1f)), Status::SUCCESS,
             "revoke");
    REQUIRE(reads(t, ch.g, ch.xg, g_ok) && reads(t, ch.c, ch.xc, c_ok));
    CHECK(!g_ok, "the grandchild can still read the page after our revoke");
    CHECK(!c_ok, "the child can still read the page after our revoke");
    CHECK(ch.page[0] == 0xc4a1c4a1, "our own page changed");
    CHECK(Crd(lookup_mem(reinterpret_cast<u64>(ch.page) >> PAGE_BITS)).type() == Crd::MEM,
          "we lost our own page");
}

void revoke_remote(Test &t)
{
    Chain ch;
    REQUIRE(make_chain(t, ch));
    bool c_ok, g_ok;
    Crd in_child = Crd::mem(ch.xc >> PAGE_BITS, 0, 0x1f);
    CHECK_ST(revoke(in_child, Revoke_flag::REMOTE, ch.c.pd), Status::SUCCESS, "remote revoke in the child");
    REQUIRE(reads(t, ch.g, ch.xg, g_ok) && reads(t, ch.c, ch.xc, c_ok));
    CHECK(!g_ok, "the grandchild can still read the page after the child's range was revoked");
    CHECK(c_ok, "the child lost the page although self was not set");
    CHECK_ST(revoke(in_child, Revoke_flag::REMOTE | Revoke_flag::SELF, ch.c.pd), Status::SUCCESS,
             "remote revoke with self in the child");
    REQUIRE(reads(t, ch.c, ch.xc, c_ok));
    CHECK(!c_ok, "the child can still read the page after a remote revoke with self");
    CHECK(ch.page[0] == 0xc4a1c4a1 &&
              Crd(lookup_mem(reinterpret_cast<u64>(ch.page) >> PAGE_BITS)).type() == Crd::MEM,
          "we lost our own page");
}

// ---- exhaustion and leaks ---------------------------------------------------------------------

constexpr unsigned BOUND = 1000000;  // 2^20 selectors hold it
unsigned exhaust_n;                  // semaphores that fit (BOUND: no limit found)
bool exhaust_oom;

// Retry an operation that failed with OOM: freed memory may come back after a grace period.
template <typename F> Status retry_oom(F op)
{
    Status s = op();
    for (unsigned i = 0; i < 50 && s == Status::OOM; i++) {
        sleep_ms(10);
        s = op();
    }
    return s;
}

void exhaust(Test &t)
{
    u64 base = t.sel(1u << 20);
    REQUIRE(base);
    unsigned n = 0;
    Status s = Status::SUCCESS;
    for (; n < BOUND; n++) {
        s = create_sm(base + n, SEL_ROOT_PD, 0);
        if (s != Status::SUCCESS)
            break;
    }
    exhaust_n = n;
    exhaust_oom = n < BOUND && s == Status::OOM;
    Status limit = s;
    if (n < BOUND)
        t.note("%u semaphores, then %s", n, status_name(limit));
    else
        t.note("no failure within %u semaphores", BOUND);
    if (n < BOUND) {
        CHECK(s == Status::OOM || s == Status::BAD_CAP,
              "create_sm number %u failed with %s, expected OOM or BAD_CAP", n + 1, status_name(s));
        CHECK(lookup_obj(base + n) == 0, "the failed create_sm left a capability");
        CHECK(n > 0, "not a single semaphore could be created");
        // Still working while exhausted.
        CHECK_ST(sm_up(base), Status::SUCCESS, "up while kernel memory is exhausted");
        CHECK_ST(try_down(base), Status::SUCCESS, "down while kernel memory is exhausted");
    }
    CHECK_ST(revoke(Crd::obj(base, 20, 0x1f), Revoke_flag::SELF), Status::SUCCESS,
             "revoke of all semaphores");
    CHECK(lookup_obj(base) == 0 && lookup_obj(base + n - 1) == 0, "semaphores are left after the revoke");
    unsigned again = n < 10000 ? n : 10000;
    for (unsigned i = 0; i < again; i++) {
        s = retry_oom([&] { return create_sm(base + i, SEL_ROOT_PD, 0); });
        CHECK(s == Status::SUCCESS, "creating semaphore %u of %u again after the revoke: %s", i + 1, again,
              status_name(s));
    }
    CHECK_ST(revoke(Crd::obj(base, 20, 0x1f), Revoke_flag::SELF), Status::SUCCESS, "second revoke");
    if (n < BOUND)
        t.note("%u semaphores, then %s; %u created again", n, status_name(limit), again);
    else
        t.note("no failure within %u semaphores", BOUND);
}

// Create and destroy semaphores: more than fit at once when the limit is known.
void leak_sm(Test &t)
{
    u64 s = t.sel();
    REQUIRE(s);
    unsigned rounds = exhaust_oom ? 2 * exhaust_n + 100 : 20000;
    if (rounds > 2 * BOUND)
        rounds = 2 * BOUND;
    for (unsigned i = 0; i < rounds; i++) {
        Status st = retry_oom([&] { return create_sm(s, SEL_ROOT_PD, i); });
        CHECK(st == Status::SUCCESS, "round %u: create_sm: %s", i + 1, status_name(st));
        CHECK_ST(revoke(Crd::obj(s, 0, 0x1f), Revoke_flag::SELF), Status::SUCCESS, "revoke");
    }
    t.note("%u rounds%s", rounds, exhaust_oom ? " (twice what fits)" : "");
}

// PD, local EC (same UTCB address each time), portal, semaphore: create, use, destroy.
void leak_objects(Test &t)
{
    u64 s = t.sel(4);
    REQUIRE(s);
    u64 pd = s, ec = s + 1, pt = s + 2, sm = s + 3;
    constexpr unsigned ROUNDS = 1000;
    for (unsigned i = 0; i < ROUNDS; i++) {
        Status st = retry_oom([&] { return create_pd(pd, SEL_ROOT_PD); });
        CHECK(st == Status::SUCCESS, "round %u: create_pd: %s", i + 1, status_name(st));
        st = retry_oom([&] { return create_ec_local(ec, pd, boot_cpu(), 0x10000, 0, 0); });
        CHECK(st == Status::SUCCESS, "round %u: create_ec: %s", i + 1, status_name(st));
        st = retry_oom([&] { return create_pt(pt, SEL_ROOT_PD, ec, 0, reinterpret_cast<u64>(abort_stub)); });
        CHECK(st == Status::SUCCESS, "round %u: create_pt: %s", i + 1, status_name(st));
        st = retry_oom([&] { return create_sm(sm, SEL_ROOT_PD, 1); });
        CHECK(st == Status::SUCCESS, "round %u: create_sm: %s", i + 1, status_name(st));
        CHECK(try_down(sm) == Status::SUCCESS, "round %u: the new semaphore does not work", i + 1);
        CHECK_ST(revoke(Crd::obj(s, 2, 0x1f), Revoke_flag::SELF), Status::SUCCESS, "revoke");
    }
    t.note("%u rounds", ROUNDS);
}

void quick(Thread &th) { th.result[0] = th.result[0] + 1; }

// Global ECs with SCs that run and end, reusing selectors and stack. Each round has a new UTCB
// address: an EC (and its UTCB) may be freed only after a grace period (7.8).
void leak_threads(Test &t)
{
    u64 s = t.sel(4);
    Ec_tls *tls = t.stack();
    u64 evt = service_evt(boot_cpu());
    REQUIRE(s && tls);
    CHECK(evt != NO_EVT, "no service EC");
    static Thread th;
    th.done = s, th.ec = s + 1, th.sc = s + 2;
    th.fn = quick;
    th.tls = tls;
    th.result[0] = 0;
    constexpr unsigned ROUNDS = 200;
    for (unsigned i = 0; i < ROUNDS; i++) {
        u64 utcb_addr = alloc_virt(PAGE_SIZE);
        *tls = Ec_tls{reinterpret_cast<Utcb *>(utcb_addr), nullptr, &th, 0};
        Status st = retry_oom([&] { return create_sm(th.done, SEL_ROOT_PD, 0); });
        CHECK(st == Status::SUCCESS, "round %u: create_sm: %s", i + 1, status_name(st));
        st = retry_oom([&] {
            return create_ec_global(th.ec, SEL_ROOT_PD, boot_cpu(), utcb_addr, reinterpret_cast<u64>(tls),
                                    evt);
        });
        CHECK(st == Status::SUCCESS, "round %u: create_ec: %s", i + 1, status_name(st));
        st = retry_oom([&] { return create_sc(th.sc, SEL_ROOT_PD, th.ec, Qpd(2, 1000)); });
        CHECK(st == Status::SUCCESS, "round %u: create_sc: %s", i + 1, status_name(st));
        CHECK(join(th, 1000), "round %u: the thread did not run", i + 1);
        CHECK_ST(revoke(Crd::obj(s, 2, 0x1f), Revoke_flag::SELF), Status::SUCCESS, "revoke");
    }
    CHECK(th.result[0] == ROUNDS, "%lu of %u threads ran", th.result[0], ROUNDS);
    t.note("%u rounds", ROUNDS);
}

const Test_case list[] = {
    {"X.iso-caps", "a child PD cannot use selectors it was not given (BAD_CAP, empty lookups)", iso_caps, 0},
    {"X.iso-memory", "a child touching memory it was not given faults to its exception portal", iso_memory,
     0},
    {"X.iso-io", "a child cannot use our I/O ports (#GP at its portal)", iso_io, 0},
    {"X.iso-kill", "a child without exception portals is killed when it touches foreign memory", iso_kill, 0},
    {"F.revoke-grandchild", "revoking our page removes it from child and grandchild, not from us",
     revoke_grandchild, 0},
    {"F.revoke-remote", "remote revoke: the child's descendants lose the page; with self the child too",
     revoke_remote, 0},
    {"X.exhaust", "creating semaphores until the kernel says no (OOM), revoking them, creating again",
     exhaust, 300},
    {"X.leak-sm", "create/destroy semaphores (more than fit at once)", leak_sm, 300},
    {"X.leak-objects", "create/destroy PD + EC + portal + semaphore 1000 times", leak_objects, 300},
    {"X.leak-threads", "create/run/destroy a global EC with an SC 200 times", leak_threads, 120},
};

}  // namespace

const Test_section sec_system = {list, sizeof(list) / sizeof(list[0])};
