/*
 * Kernel-memory quotas: this project's extension (docs/quota.md). A PD made with a quota of its
 * own pays for what it causes and nothing else: it exhausts its quota by creating objects, by
 * delegating, by spreading selectors and by sparse mappings, and gets OOM each time, while we
 * (the root's quota) and a sibling with a quota of its own go on creating objects and calling
 * portals. Quota moves and their bad inputs, and everything returns when the PDs go.
 */
#include "suite.hpp"

namespace {

constexpr u64 SELF = 1;              // the child's capability to itself, in its own object space
constexpr u64 BASE = 0x10000;        // where the child puts what it makes
constexpr u64 HEADROOM = 32768;      // bytes a child has free once it is set up
constexpr u64 CHILD_QUOTA = 196608;  // what it gets to set itself up (small machines too)
constexpr u64 GIB = u64{1} << 30;

// Grace periods (objects the kernel destroys later).
void settle() { sleep_ms(20); }

enum Op : u64 { OBJECTS, SPREAD, DELEG, SPARSE, FEW };

u64 image_page_dummy = 0x600d;

// Runs in the child: make things of one kind (at selectors from data[1] on) until a hypercall
// fails; data[0] = how many succeeded, data[1] = the status of the first that failed.
void child_handler(u64, Utcb &u)
{
    Op op = static_cast<Op>(u.data[0]);
    u64 base = u.data[1];
    u64 n = 0;
    Status s = Status::SUCCESS;
    u64 page = reinterpret_cast<u64>(&image_page_dummy) >> PAGE_BITS;
    u64 max = op == FEW ? 16 : 100000;
    for (; n < max && s == Status::SUCCESS; n++) {
        switch (op) {
        case OBJECTS:
        case FEW: s = create_sm(base + n, SELF, 0); break;
        case SPREAD: s = create_sm(base + n * 512, SELF, 0); break;  // a leaf table each
        case DELEG:
            s = pd_delegate(SELF, SELF, Crd::obj(SELF, 0, OBJ_ALL), Item_meta(Item_meta::DELEGATE, 0),
                            Crd::obj(base + n, 0, OBJ_ALL))
                    .status;
            break;
        case SPARSE:  // one page a GiB apart: a page table and a page directory each
            s = pd_delegate(SELF, SELF, Crd::mem(page, 0, 1), Item_meta(Item_meta::DELEGATE, 0),
                            Crd::mem(((base + n + 1) * GIB) >> PAGE_BITS, 0, 1))
                    .status;
            break;
        }
    }
    u.data[0] = s == Status::SUCCESS ? n : n - 1;
    u.data[1] = static_cast<u64>(s);
    u.set_items(2, 0);
}

// A child PD with a quota of its own, set up (our image, a worker, a portal, a capability to
// itself) and then left with HEADROOM bytes free: the rest goes back to us.
bool make_quota_child(Test &t, Child_pd &c)
{
    c.pd = t.sel();
    if (!c.pd)
        return false;
    Status s = create_pd_quota(c.pd, SEL_ROOT_PD, CHILD_QUOTA);
    if (s != Status::SUCCESS) {
        t.fail("create_pd with a quota of %lu bytes: %s", CHILD_QUOTA, status_name(s));
        return false;
    }
    s = share_image(c.pd);
    if (s != Status::SUCCESS) {
        t.fail("sharing our image with the child: %s", status_name(s));
        return false;
    }
    if (!make_worker(t, c.w, c.pd, boot_cpu(), child_handler, 0) || !make_portal(t, c.pt, c.w.ec, 0, 0))
        return false;
    if (delegate_obj(c.pd, SELF, OBJ_ALL, SEL_ROOT_PD, c.pd).crd.is_null()) {
        t.fail("delegating the child its own PD capability");
        return false;
    }
    Quota_info q{};
    s = quota_info(c.pd, q);
    if (s != Status::SUCCESS || q.limit != CHILD_QUOTA || q.used == 0 || q.used > q.limit) {
        t.fail("the child's quota: %s, limit %lu used %lu (expected %lu, some used)", status_name(s), q.limit,
               q.used, CHILD_QUOTA);
        return false;
    }
    s = quota_move(c.pd, SEL_ROOT_PD, q.limit - q.used - HEADROOM);
    if (s != Status::SUCCESS) {
        t.fail("moving the child's spare quota back: %s", status_name(s));
        return false;
    }
    return true;
}

// Let the child exhaust its quota by `op`: OOM after at least one success.
bool exhaust(Test &t, const Child_pd &c, Op op, const char *what, u64 &made)
{
    utcb().data[0] = op;
    utcb().data[1] = BASE;
    utcb().set_items(2, 0);
    Status s = call(c.pt);
    if (s != Status::SUCCESS) {
        t.fail("call into the child (%s): %s", what, status_name(s));
        return false;
    }
    made = utcb().data[0];
    auto st = static_cast<Status>(utcb().data[1]);
    if (st != Status::OOM || made == 0) {
        t.fail("%s in a child with %lu bytes of quota free: %lu made, then %s (expected some, then OOM)",
               what, HEADROOM, made, status_name(st));
        return false;
    }
    Quota_info q{};
    if (quota_info(c.pd, q) != Status::SUCCESS || q.limit - q.used >= HEADROOM) {
        t.fail("%s: the child's quota is not used up (limit %lu, used %lu)", what, q.limit, q.used);
        return false;
    }
    return true;
}

// We (and a sibling with its own quota) go on while the child is exhausted.
bool others_go_on(Test &t, const Child_pd &sibling)
{
    u64 sm = t.sel(16);
    if (!sm)
        return false;
    for (u64 i = 0; i < 16; i++)
        if (Status s = create_sm(sm + i, SEL_ROOT_PD, 0); s != Status::SUCCESS) {
            t.fail("our create_sm while a child's quota is exhausted: %s", status_name(s));
            return false;
        }
    utcb().data[0] = FEW;
    utcb().data[1] = BASE;
    utcb().set_items(2, 0);
    Status s = call(sibling.pt);
    if (s != Status::SUCCESS || utcb().data[0] != 16) {
        t.fail("a sibling with its own quota while the other is exhausted: call %s, %lu objects made",
               status_name(s), utcb().data[0]);
        return false;
    }
    return true;
}

// Our quota's use once nothing waits for a grace period (the kernel trims kept tables first).
u64 settled_use()
{
    Quota_info q{};
    for (unsigned i = 0; i < 5; i++)
        settle();
    quota_info(SEL_ROOT_PD, q);
    return q.used;
}

// The child's PD, worker and portal go: the PD dies and its quota comes back to us.
void kill_child(const Child_pd &c)
{
    const u64 sels[] = {c.pt, c.w.ec, c.pd};
    for (u64 sel : sels)
        revoke(Crd::obj(sel, 0, OBJ_ALL), Revoke_flag::SELF);
}

void exhaust_each(Test &t, Op op, const char *what)
{
    Quota_info before{}, after{};
    settled_use();
    CHECK_ST(quota_info(SEL_ROOT_PD, before), Status::SUCCESS, "quota_info of the root PD");
    u64 made = 0;
    Child_pd c, sib;
    REQUIRE(make_quota_child(t, c));
    REQUIRE(make_quota_child(t, sib));
    REQUIRE(exhaust(t, c, op, what, made));
    REQUIRE(others_go_on(t, sib));
    // Still exhausted, still callable: the same again, elsewhere, makes nothing more.
    utcb().data[0] = op;
    utcb().data[1] = op == SPARSE ? 1000 : BASE + 0x100000;
    utcb().set_items(2, 0);
    CHECK_ST(call(c.pt), Status::SUCCESS, "a second call into the exhausted child");
    CHECK(utcb().data[1] == static_cast<u64>(Status::OOM), "the exhausted child's second try: %s",
          status_name(static_cast<Status>(utcb().data[1])));
    kill_child(c);
    kill_child(sib);
    settled_use();
    CHECK_ST(quota_info(SEL_ROOT_PD, after), Status::SUCCESS, "quota_info of the root PD");
    CHECK(after.limit == before.limit, "our limit %lu after the children's death, before %lu", after.limit,
          before.limit);
    t.note("%s: %lu before OOM with %lu bytes of quota; our limit back", what, made, HEADROOM);
}

void exhaust_objects(Test &t) { exhaust_each(t, OBJECTS, "semaphores"); }
void exhaust_spread(Test &t) { exhaust_each(t, SPREAD, "semaphores 512 selectors apart"); }
void exhaust_deleg(Test &t) { exhaust_each(t, DELEG, "delegations of a capability to itself"); }
void exhaust_sparse(Test &t) { exhaust_each(t, SPARSE, "mappings of one page a GiB apart"); }

// ---- info and create ------------------------------------------------------------------------

void info_root(Test &t)
{
    Quota_info a{}, b{}, c{};
    CHECK_ST(quota_info(SEL_ROOT_PD, a), Status::SUCCESS, "quota_info of the root PD");
    CHECK(a.limit > 0 && a.used > 0 && a.used <= a.limit, "the root's quota: limit %lu used %lu", a.limit,
          a.used);
    u64 sm = t.sel();
    REQUIRE(sm);
    CHECK_ST(create_sm(sm, SEL_ROOT_PD, 0), Status::SUCCESS, "create_sm");
    CHECK_ST(quota_info(SEL_ROOT_PD, b), Status::SUCCESS, "quota_info after a create_sm");
    CHECK(b.used > a.used && b.limit == a.limit, "a semaphore costs nothing: used %lu, before %lu", b.used,
          a.used);
    // A PD made the classic way shares our quota: it shows the same numbers.
    u64 pd = t.sel();
    REQUIRE(pd);
    CHECK_ST(create_pd(pd, SEL_ROOT_PD), Status::SUCCESS, "create_pd");
    Quota_info mine{};
    CHECK_ST(quota_info(SEL_ROOT_PD, mine), Status::SUCCESS, "quota_info of the root PD");
    CHECK_ST(quota_info(pd, c), Status::SUCCESS, "quota_info of a classic child");
    CHECK(c.limit == mine.limit && c.used == mine.used,
          "a classic child's quota (%lu/%lu) is not ours (%lu/%lu)", c.used, c.limit, mine.used, mine.limit);
    CHECK_ST(quota_info(sm, c), Status::BAD_CAP, "quota_info of a semaphore");
    // Without the key, number 15 is what the ABI says.
    Regs r{Hypercall_id(Hypercall::KSTAT, Quota_flag::QUOTA, SEL_ROOT_PD).value(), 0, 0, 0, QUOTA_KEY ^ 1};
    hypercall(r);
    CHECK(status_of(r.rdi) == Status::BAD_HYP,
          "number 15 with the quota flag and a wrong key: %s, expected BAD_HYP",
          status_name(status_of(r.rdi)));
    r = {Hypercall_id(Hypercall::KSTAT, Quota_flag::QUOTA | 3, SEL_ROOT_PD).value(), 0, 0, 0, QUOTA_KEY};
    hypercall(r);
    CHECK(status_of(r.rdi) == Status::BAD_PAR, "quota operation 3: %s, expected BAD_PAR",
          status_name(status_of(r.rdi)));
}

void create_and_return(Test &t)
{
    Quota_info a{}, b{}, q{};
    u64 base = settled_use();
    CHECK_ST(quota_info(SEL_ROOT_PD, a), Status::SUCCESS, "quota_info of the root PD");
    u64 pd = t.sel(), bad = t.sel();
    REQUIRE(pd && bad);
    CHECK_ST(create_pd_quota(pd, SEL_ROOT_PD, a.limit - a.used + 1), Status::OOM,
             "create_pd with more quota than we have free");
    CHECK_ST(create_pd_quota(pd, bad, 4096), Status::BAD_CAP, "create_pd with a quota and no owner PD");
    CHECK_ST(create_pd_quota(pd, SEL_ROOT_PD, 65536), Status::SUCCESS, "create_pd with a quota of 64 KiB");
    CHECK_ST(quota_info(pd, q), Status::SUCCESS, "quota_info of the new PD");
    CHECK(q.limit == 65536 && q.used == PAGE_SIZE,
          "the new PD's quota: limit %lu used %lu (expected 65536, its PML4)", q.limit, q.used);
    CHECK_ST(quota_info(SEL_ROOT_PD, b), Status::SUCCESS, "quota_info of the root PD");
    CHECK(b.limit == a.limit - 65536, "our limit %lu, expected %lu (64 KiB less)", b.limit, a.limit - 65536);
    // Its death gives everything back.
    CHECK_ST(revoke(Crd::obj(pd, 0, OBJ_ALL), Revoke_flag::SELF), Status::SUCCESS, "revoke of the PD");
    u64 after = settled_use();
    CHECK_ST(quota_info(SEL_ROOT_PD, b), Status::SUCCESS, "quota_info of the root PD");
    CHECK(b.limit == a.limit && after == base, "after the PD's death: limit %lu used %lu, before %lu and %lu",
          b.limit, after, a.limit, base);
}

void move_inputs(Test &t)
{
    Quota_info a{}, q{};
    u64 pd = t.sel(), weak = t.sel(), sm = t.sel();
    REQUIRE(pd && weak && sm);
    CHECK_ST(create_pd_quota(pd, SEL_ROOT_PD, 65536), Status::SUCCESS, "create_pd with a quota of 64 KiB");
    CHECK_ST(create_sm(sm, SEL_ROOT_PD, 0), Status::SUCCESS, "create_sm");
    CHECK_ST(quota_info(SEL_ROOT_PD, a), Status::SUCCESS, "quota_info of the root PD");
    CHECK_ST(quota_move(SEL_ROOT_PD, pd, 8192), Status::SUCCESS, "moving 8 KiB to the child");
    CHECK_ST(quota_info(pd, q), Status::SUCCESS, "quota_info of the child");
    CHECK(q.limit == 65536 + 8192, "the child's limit after the move: %lu", q.limit);
    CHECK_ST(quota_move(pd, SEL_ROOT_PD, q.limit - q.used + 1), Status::OOM,
             "moving more than the child has free");
    CHECK_ST(quota_move(pd, SEL_ROOT_PD, q.limit - q.used), Status::SUCCESS, "moving all the child has free");
    CHECK_ST(quota_info(pd, q), Status::SUCCESS, "quota_info of the child");
    CHECK(q.limit == q.used, "the child has %lu bytes left", q.limit - q.used);
    CHECK_ST(quota_move(SEL_ROOT_PD, pd, 8192), Status::SUCCESS, "moving 8 KiB to the child again");
    // A capability without CREATE_PD cannot give the PD's quota away; it can receive.
    REQUIRE(copy_cap(t, pd, weak, OBJ_ALL & ~Perm_pd::CREATE_PD));
    CHECK_ST(quota_move(weak, SEL_ROOT_PD, 4096), Status::BAD_CAP,
             "moving from a PD capability without CREATE_PD");
    CHECK_ST(quota_move(SEL_ROOT_PD, weak, 4096), Status::SUCCESS,
             "moving to a PD capability without CREATE_PD");
    CHECK_ST(quota_move(SEL_ROOT_PD, sm, 4096), Status::BAD_CAP, "moving to a semaphore");
    CHECK_ST(quota_move(sm, SEL_ROOT_PD, 4096), Status::BAD_CAP, "moving from a semaphore");
    CHECK_ST(quota_move(SEL_ROOT_PD, SEL_ROOT_PD, 4096), Status::SUCCESS, "moving within one quota");
    // A dead PD: its capabilities are gone.
    CHECK_ST(revoke(Crd::obj(pd, 0, OBJ_ALL), Revoke_flag::SELF), Status::SUCCESS, "revoke of the child");
    CHECK_ST(quota_move(SEL_ROOT_PD, pd, 4096), Status::BAD_CAP, "moving to a dead PD");
    CHECK_ST(quota_move(SEL_ROOT_PD, weak, 4096), Status::BAD_CAP, "moving to a dead PD (the copy)");
    Quota_info b{};
    settled_use();
    CHECK_ST(quota_info(SEL_ROOT_PD, b), Status::SUCCESS, "quota_info of the root PD");
    CHECK(b.limit == a.limit + 65536, "our limit %lu after the child's death, expected %lu", b.limit,
          a.limit + 65536);
}

const Test_case list[] = {
    {"Q.info", "quota_info: the root's quota, a classic child shares it, bad inputs, the key", info_root, 0},
    {"Q.create", "create_pd with a quota: taken from ours, too much is OOM, its death gives it back",
     create_and_return, 0},
    {"Q.move", "quota moves: not enough free (OOM), no CREATE_PD or not a PD (BAD_CAP), to a dead PD",
     move_inputs, 0},
    {"Q.exhaust-objects", "a child exhausts its quota with semaphores: OOM; we and a sibling go on",
     exhaust_objects, 60},
    {"Q.exhaust-spread", "a child exhausts its quota with selectors far apart: OOM; we and a sibling go on",
     exhaust_spread, 60},
    {"Q.exhaust-deleg", "a child exhausts its quota with delegations: OOM; we and a sibling go on",
     exhaust_deleg, 60},
    {"Q.exhaust-sparse",
     "a child exhausts its quota with sparse mappings (page tables): OOM; we and a sibling go on",
     exhaust_sparse, 60},
};

}  // namespace

const Test_section sec_quota = {list, sizeof(list) / sizeof(list[0])};
