/*
 * Out of memory at the commit point of a create_* (ABI 1.5: OOM; docs/objects.md, include/create.hpp):
 * the kernel's memory is exhausted and then arranged so that a new signal and its capability's
 * bookkeeping fit, but the object-space tables of its selector do not. The failed create_sm must
 * leave no trace: above all its chain target keeps its references and lives on.
 *
 * The arrangement uses our kernel's layout (include/space_obj.hpp: a leaf table per 512
 * selectors, a middle table per 2^18; objects and mapping-database nodes in slab caches of single
 * pages) and is checked on the way; where it cannot be made (no OOM within the bound, a page that
 * comes free) the test is skipped with the reason. On any kernel what it checks is the contract:
 * a create_sm that fails changes nothing.
 */
#include "suite.hpp"

namespace {

constexpr u64 LEAF = 512;          // selectors of one leaf table of an object space
constexpr u64 MID = u64{1} << 18;  // selectors of one middle table
constexpr u64 RANGE = u64{1} << 20;
constexpr u64 BOUND = RANGE - RANGE / LEAF;  // semaphores that fit into RANGE besides the holes

// Grace periods (objects the kernel destroys later): long enough for several on every CPU.
void settle() { sleep_ms(20); }

// The selector kept free in leaf k of the exhaustion's range: its tables exist, so a semaphore
// created there needs only the object and its node.
u64 hole(u64 base, u64 k) { return base + k * LEAF + LEAF - 1; }

// Retry an OOM a few times after grace periods (memory that a failed create left comes back).
Status create_retry(u64 sel, u64 count = 0, u64 chain = 0)
{
    Status s = create_sm(sel, SEL_ROOT_PD, count, chain);
    for (unsigned i = 0; i < 10 && s == Status::OOM; i++) {
        settle();
        s = create_sm(sel, SEL_ROOT_PD, count, chain);
    }
    return s;
}

// kstat (a kernel booted with `kstat`) once nothing waits for a grace period; false without it.
bool settled_stats(Kstat &k)
{
    for (unsigned i = 0; i < 100; i++) {
        if (kstat(k) != Status::SUCCESS)
            return false;
        if (!k.pending)
            return true;
        sleep_ms(10);
    }
    return true;  // still pending: the comparison below says so
}

/*
 * 1. Semaphores at base, base + 1, ... until OOM, leaving the last selector of each leaf table
 *    free (a hole). 2. Semaphores in holes, a grace period apart, until three in a row fail: then
 *    no object and no page is left over, except a page that a slab cache takes and gives back
 *    (at most one free page). 3. Revoke one semaphore in the middle: its object and node slots
 *    come free, no page (its slab pages hold its neighbours). A semaphore in a hole fits (checked,
 *    and revoked again). 4. create_sm of a signal at a selector whose middle and leaf tables do
 *    not exist: the object and the node fit, the two table pages do not: OOM. The signal's chain
 *    target must keep its count and stay alive.
 */
void publish_table_oom(Test &t)
{
    u64 base = t.sel(RANGE);  // fresh: no table of it exists
    u64 fresh = t.sel(MID);   // fresh 2^18 block: neither its middle nor any leaf table exists
    u64 target = t.sel();     // the chain target
    REQUIRE(base && fresh && target);
    u64 sel = fresh + MID / 2;
    CHECK_ST(create_sm(target, SEL_ROOT_PD, 0), Status::SUCCESS, "create_sm of the chain target");
    settle();
    Kstat before{};
    bool stats = settled_stats(before);

    // 1.
    u64 i = 0, n = 0;
    Status s = Status::SUCCESS;
    for (; i < RANGE; i++) {
        if (i % LEAF == LEAF - 1)
            continue;
        s = create_sm(base + i, SEL_ROOT_PD, 0);
        if (s != Status::SUCCESS)
            break;
        n++;
    }
    u64 leaves = i / LEAF;  // leaves 0 .. leaves - 1 are full: their holes have tables
    if (i == RANGE) {
        revoke(Crd::obj(base, 20, OBJ_ALL), Revoke_flag::SELF);
        t.skip("no OOM within %lu semaphores: kernel memory cannot be exhausted here", BOUND);
        return;
    }
    CHECK(s == Status::OOM, "create_sm number %lu failed with %s, expected OOM", n + 1, status_name(s));
    if (leaves < 8) {
        revoke(Crd::obj(base, 20, OBJ_ALL), Revoke_flag::SELF);
        t.skip("only %lu semaphores fit: too few for the arrangement", n);
        return;
    }

    // 2.
    u64 next = 0;
    unsigned fails = 0;
    while (fails < 3 && next < leaves) {
        settle();
        s = create_sm(hole(base, next), SEL_ROOT_PD, 0);
        if (s == Status::SUCCESS) {
            next++;
            fails = 0;
            continue;
        }
        CHECK(s == Status::OOM, "create_sm in a hole: %s, expected SUCCESS or OOM", status_name(s));
        fails++;
    }
    if (fails < 3) {
        revoke(Crd::obj(base, 20, OBJ_ALL), Revoke_flag::SELF);
        t.skip("kernel memory did not stay exhausted (%lu holes filled)", next);
        return;
    }

    // 3.
    u64 victim = base + leaves / 2 * LEAF + 1;
    CHECK_ST(revoke(Crd::obj(victim, 0, OBJ_ALL), Revoke_flag::SELF), Status::SUCCESS,
             "revoke of one semaphore");
    s = create_retry(hole(base, next));
    if (s == Status::OOM) {
        revoke(Crd::obj(base, 20, OBJ_ALL), Revoke_flag::SELF);
        t.skip("revoking one semaphore did not make room for another");
        return;
    }
    CHECK(s == Status::SUCCESS, "create_sm in a hole after a revoke: %s", status_name(s));
    CHECK_ST(revoke(Crd::obj(hole(base, next), 0, OBJ_ALL), Revoke_flag::SELF), Status::SUCCESS,
             "revoke of that semaphore");
    settle();

    // 4.
    s = create_sm(sel, SEL_ROOT_PD, 7, target);
    if (s == Status::SUCCESS) {
        revoke(Crd::obj(sel, 0, OBJ_ALL), Revoke_flag::SELF);
        revoke(Crd::obj(base, 20, OBJ_ALL), Revoke_flag::SELF);
        t.skip("a page came free: the signal's tables fit");
        return;
    }
    CHECK(s == Status::OOM, "create_sm of a signal without room for its tables: %s, expected OOM",
          status_name(s));
    CHECK(lookup_obj(sel) == 0, "the failed create_sm left a capability");
    // The unpublished signal goes after a grace period, and its reference to the target with it:
    // once, not twice. A down with a deadline ahead waits on a live semaphore (COM_TIM); one whose
    // last reference went answers BAD_CAP.
    for (unsigned r = 0; r < 5; r++) {
        settle();
        CHECK_ST(sm_down(target, deadline_ms(1)).status, Status::COM_TIM,
                 "down with a deadline on the chain target after the failed create_sm (BAD_CAP: the "
                 "target lost its last reference although we hold a capability)");
    }
    // The object and the node did fit (so the tables were what failed): a semaphore in a hole does.
    s = create_retry(hole(base, next));
    CHECK(s == Status::SUCCESS, "create_sm in a hole after the failed create_sm: %s", status_name(s));

    // The kernel goes on: everything revoked, the signal fits, the target works, and with kstat the
    // kernel's objects and free pages are those from before.
    CHECK_ST(revoke(Crd::obj(base, 20, OBJ_ALL), Revoke_flag::SELF), Status::SUCCESS,
             "revoke of the exhaustion's semaphores");
    CHECK(lookup_obj(base) == 0 && lookup_obj(victim + 1) == 0, "semaphores are left after the revoke");
    s = create_retry(sel, 7, target);
    CHECK(s == Status::SUCCESS, "create_sm of the signal after the revoke: %s", status_name(s));
    CHECK_ST(sm_up(sel), Status::SUCCESS, "up on the signal");
    CHECK_ST(try_down(target), Status::SUCCESS, "down on the chain target (the signal's up)");
    CHECK_ST(try_down(target), Status::COM_TIM, "second down on the chain target");
    for (u64 j = 0; j < 1000; j++) {
        s = create_retry(base + j);
        CHECK(s == Status::SUCCESS, "creating semaphore %lu of 1000 after the revoke: %s", j + 1,
              status_name(s));
    }
    CHECK_ST(revoke(Crd::obj(base, 20, OBJ_ALL), Revoke_flag::SELF), Status::SUCCESS, "second revoke");
    CHECK_ST(revoke(Crd::obj(sel, 0, OBJ_ALL), Revoke_flag::SELF), Status::SUCCESS, "revoke of the signal");
    Kstat after{};
    if (stats && settled_stats(after)) {
        CHECK(after.objects == before.objects && after.free_pages == before.free_pages,
              "kstat: %lu objects and %lu free pages, before %lu and %lu (%lu pending)", after.objects,
              after.free_pages, before.objects, before.free_pages, after.pending);
        t.note("%lu semaphores, then OOM; %lu holes filled; kstat back at its baseline", n, next);
    } else {
        t.note("%lu semaphores, then OOM; %lu holes filled", n, next);
    }
}

const Test_case list[] = {
    {"O.publish-table",
     "create_sm with room for the signal but not for its object-space tables: OOM, "
     "the chain target keeps its references, the kernel goes on",
     publish_table_oom, 300},
};

}  // namespace

const Test_section sec_oom = {list, sizeof(list) / sizeof(list[0])};
