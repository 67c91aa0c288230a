/*
 * Mapping database (include/mdb.hpp): roots, delegation per ABI 3.4 (checklist
 * F 84-93), translation per ABI 3.5 (F 102), revocation per ABI 7.8, the
 * out-of-memory guarantee at every allocation and observer refusal, deep
 * chains without recursion, and a randomized comparison with a naive model.
 */
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <gtest/gtest.h>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include "diag_capture.hpp"
#include "mdb.hpp"
#include "mdb_space.hpp"

namespace {

std::atomic<long> live;    // nodes allocated and not freed
std::atomic<long> budget;  // allocations left; negative: unlimited

/* Nodes charged per space (the kernel charges the space's PD's quota, docs/quota.md). */
std::map<const Mdb_space *, long> charged;
std::mutex charged_lock;

void *test_alloc(Mdb_space &s)
{
    if (budget.load() >= 0 && budget.fetch_sub(1) <= 0)
        return nullptr;
    live++;
    std::lock_guard g(charged_lock);
    charged[&s]++;
    return malloc(sizeof(Mdb_node));
}

void test_free(void *p, Mdb_space *s)
{
    if (p) {
        live--;
        free(p);
    }
    if (s) {
        std::lock_guard g(charged_lock);
        charged[s]--;
    }
}

/* Every space is charged exactly for the nodes it holds. */
bool charges_match(std::initializer_list<const Mdb_space *> spaces)
{
    std::lock_guard g(charged_lock);
    for (const Mdb_space *s : spaces)
        if (charged[s] != static_cast<long>(s->count()))
            return false;
    return true;
}

Crd obj(u64 s, unsigned o = 0, unsigned r = 0x1f) { return Crd::obj(s, o, r); }
Crd mem(u64 p, unsigned o = 0, unsigned r = 0x1f) { return Crd::mem(p, o, r); }
Crd pio(u64 p, unsigned o = 0, unsigned r = 0x1f) { return Crd::pio(p, o, r); }
u64 object(unsigned i) { return 0x10000 + 0x40 * static_cast<u64>(i); }  // stands in for a Kobject *

struct Pd
{
    Mdb_space obj, mem, pio;
    Pd() : obj(Crd::OBJ, this), mem(Crd::MEM, this), pio(Crd::PIO, this) {}
    Mdb_space &space(Crd::Type t) { return t == Crd::OBJ ? obj : t == Crd::MEM ? mem : pio; }
};

/* Mirrors what the kernel would have mapped, and checks the reports add up. */
struct Recorder : Mdb_observer
{
    std::map<std::pair<const Mdb_space *, u64>, unsigned> state;  // (space, base) -> rights
    std::vector<std::tuple<const Mdb_space *, u64, unsigned, Skip>> skips;
    std::map<const Mdb_node *, u64> serial;  // live node -> creation number (walk tests)
    u64 serials = 0;
    int mapped_calls = 0, demoted_calls = 0;
    int fail_at = -1;  // this mapped() call fails

    bool mapped(Mdb_node &n) override
    {
        if (mapped_calls++ == fail_at)
            return false;
        EXPECT_EQ(state.count({n.space, n.base}), 0u);
        EXPECT_NE(n.rights, 0);
        state[{n.space, n.base}] = n.rights;
        serial[&n] = serials++;
        return true;
    }
    void demoted(Mdb_node &n, unsigned removed) override
    {
        demoted_calls++;
        if (!n.rights)
            serial.erase(&n);
        auto it = state.find({n.space, n.base});
        EXPECT_NE(it, state.end());
        if (it == state.end())
            return;
        EXPECT_NE(removed, 0u);
        EXPECT_EQ(n.rights & removed, 0u);
        EXPECT_EQ(it->second, n.rights | removed);
        if (n.rights)
            it->second = n.rights;
        else
            state.erase(it);
    }
    void skipped(Mdb_space &s, u64 base, unsigned order, Skip why) override
    {
        skips.emplace_back(&s, base, order, why);
    }
};

using Snapshot = std::vector<std::tuple<const Mdb_space *, u64, unsigned, unsigned, u64, const Mdb_node *>>;

class Mdb_test : public testing::Test
{
  protected:
    std::vector<std::unique_ptr<Pd>> pds;
    Recorder rec;

    Pd &new_pd()
    {
        pds.push_back(std::make_unique<Pd>());
        return *pds.back();
    }

    void SetUp() override
    {
        Mdb::alloc_node = test_alloc;
        Mdb::free_node = test_free;
        charged.clear();
        live = 0;
        budget = -1;
        diag_clear();
    }

    void TearDown() override
    {
        // Quota accounting (docs/quota.md): every space paid for exactly the nodes it holds,
        // whatever the test did (delegations, revocations, OOM withdrawals, paused walks).
        for (auto &p : pds)
            EXPECT_TRUE(charges_match({&p->obj, &p->mem, &p->pio}))
                << "a space is charged for nodes it does not hold";
        for (auto &p : pds)
            for (Mdb_space *s : {&p->obj, &p->mem, &p->pio})
                Mdb::destroy(*s, &rec);
        for (auto &[space, n] : charged)
            EXPECT_EQ(n, 0) << "a space's node charges were not all refunded";
        EXPECT_EQ(live.load(), 0) << "leaked nodes";
        EXPECT_TRUE(rec.state.empty()) << "observer not told about every freed node";
    }

    Snapshot snapshot()
    {
        Snapshot s;
        for (auto &p : pds)
            for (Mdb_space *sp : {&p->obj, &p->mem, &p->pio})
                for (Mdb_node *n = sp->next(0); n; n = sp->next(n->end()))
                    s.emplace_back(sp, n->base, n->order, n->rights, n->payload, n->parent);
        return s;
    }

    u64 nodes()
    {
        u64 c = 0;
        for (auto &p : pds)
            c += p->obj.count() + p->mem.count() + p->pio.count();
        return c;
    }

    Mdb::Status root(Mdb_space &s, u64 base, unsigned order, unsigned rights, u64 payload = 0)
    {
        return Mdb::insert_root(s, base, order, rights, payload, &rec);
    }

    Mdb::Result del(Mdb_space &src, Crd send, Mdb_space &dst, Crd win, u64 hot = 0)
    {
        return Mdb::delegate(src, send, dst, win, hot, &rec);
    }
};

/* Structure every database must have (checked after random steps). */
void check_invariants(const std::vector<Mdb_space *> &spaces, long expect_live)
{
    long total = 0;
    for (Mdb_space *s : spaces) {
        u64 count = 0, prev_end = 0;
        for (Mdb_node *n = s->next(0); n; n = s->next(n->end())) {
            count++;
            ASSERT_GE(n->base, prev_end);
            prev_end = n->end();
            ASSERT_EQ(n->space, s);
            ASSERT_NE(n->rights, 0);
            ASSERT_EQ(n->base & (n->size() - 1), 0u);
            ASSERT_LE(n->end(), u64{1} << s->bits());
            if (Mdb_node *p = n->parent) {
                ASSERT_EQ(n->rights & ~p->rights, 0) << "a child has a right its parent lacks";
                ASSERT_EQ(p->space->type(), s->type());
                if (s->type() == Crd::OBJ)
                    ASSERT_EQ(n->payload, p->payload);
                else
                    ASSERT_TRUE(n->payload - p->payload < p->size() &&
                                n->payload - p->payload + n->size() <= p->size());
                bool found = false;
                for (Mdb_node *c = p->child; c; c = c->next)
                    found |= c == n;
                ASSERT_TRUE(found);
            }
            // Siblings: next runs first to last, prev is circular (the first child's is the last).
            Mdb_node *prev = nullptr;
            for (Mdb_node *c = n->child; c; prev = c, c = c->next) {
                ASSERT_EQ(c->parent, n);
                if (prev) {
                    ASSERT_EQ(c->prev, prev);
                }
            }
            if (n->child) {
                ASSERT_EQ(n->child->prev, prev);
            }
        }
        ASSERT_EQ(count, s->count());
        total += static_cast<long>(count);
    }
    ASSERT_EQ(total, expect_live);
}

}  // namespace

// ---------------------------------------------------------------- roots and lookup

TEST_F(Mdb_test, ARootIsFoundByLookupWithItsAlignedBaseOrderAndRights)
{
    Pd &p = new_pd();
    ASSERT_EQ(root(p.mem, 0x100, 4, 0x7, 0x5000), Mdb::Status::OK);
    EXPECT_EQ(Mdb::lookup(p.mem, 0x10a), mem(0x100, 4, 0x7));  // not the queried selector (ABI 7.9.1)
    EXPECT_EQ(Mdb::lookup(p.mem, 0x110), Crd());
    EXPECT_EQ(p.mem.lookup(0x10a)->payload, 0x5000u);
    EXPECT_EQ(p.mem.lookup(0x10a)->parent, nullptr);
    EXPECT_EQ(rec.state.size(), 1u);
}

TEST_F(Mdb_test, LookupOfAnEmptySlotIsTheNullCrd)
{
    Pd &p = new_pd();
    EXPECT_EQ(Mdb::lookup(p.obj, 0x42).value(), 0u);
    EXPECT_EQ(Mdb::lookup(p.pio, 0x80).value(), 0u);
}

TEST_F(Mdb_test, InsertRootIntoAnOccupiedRangeFailsWithOccupiedAndChangesNothing)
{
    Pd &p = new_pd();
    ASSERT_EQ(root(p.obj, 0x100, 0, 0x1f, object(1)), Mdb::Status::OK);
    ASSERT_EQ(root(p.mem, 0x10, 0, 7), Mdb::Status::OK);
    Snapshot before = snapshot();
    EXPECT_EQ(root(p.obj, 0x100, 0, 0x3, object(2)), Mdb::Status::OCCUPIED);
    EXPECT_EQ(root(p.mem, 0x0, 8, 7), Mdb::Status::OCCUPIED);
    EXPECT_EQ(snapshot(), before);
    EXPECT_EQ(p.obj.lookup(0x100)->payload, object(1));
    EXPECT_EQ(live.load(), 2);
}

TEST_F(Mdb_test, InsertRootRejectsZeroRightsMisalignmentObjectRangesAndRangesBeyondTheSpace)
{
    Pd &p = new_pd();
    EXPECT_EQ(root(p.obj, 1, 0, 0), Mdb::Status::BAD_PARAM);
    EXPECT_EQ(root(p.obj, 1, 0, 0x20), Mdb::Status::BAD_PARAM);  // only bits 4:0 are rights
    EXPECT_EQ(root(p.mem, 0x101, 1, 7), Mdb::Status::BAD_PARAM);
    EXPECT_EQ(root(p.obj, 0x100, 1, 0x1f), Mdb::Status::BAD_PARAM);  // one object, one selector
    EXPECT_EQ(root(p.pio, 0x10000, 0, 7), Mdb::Status::BAD_PARAM);
    EXPECT_EQ(root(p.pio, 0, 17, 7), Mdb::Status::BAD_PARAM);
    EXPECT_EQ(root(p.mem, u64{1} << 52, 0, 7), Mdb::Status::BAD_PARAM);
    EXPECT_EQ(root(p.mem, 0, 64, 7), Mdb::Status::BAD_PARAM);
    EXPECT_EQ(root(p.mem, 0, 52, 7), Mdb::Status::OK);  // the whole memory space is fine
    EXPECT_EQ(root(p.pio, 0, 16, 7), Mdb::Status::OK);
    EXPECT_EQ(live.load(), 2);
}

TEST_F(Mdb_test, ObjectRootsAreStoredAtTheSelectorModulo2To26)
{
    Pd &p = new_pd();
    ASSERT_EQ(root(p.obj, (u64{1} << 26) + 0x40, 0, 0x1f, object(1)), Mdb::Status::OK);
    EXPECT_EQ(Mdb::lookup(p.obj, 0x40), obj(0x40, 0, 0x1f));
    EXPECT_EQ(root(p.obj, 0x40, 0, 0x1f), Mdb::Status::OCCUPIED);
}

TEST_F(Mdb_test, InsertRootOutOfMemoryChangesNothing)
{
    Pd &p = new_pd();
    budget = 0;
    EXPECT_EQ(root(p.obj, 0x100, 0, 0x1f, object(1)), Mdb::Status::OOM);
    EXPECT_TRUE(p.obj.empty());
    EXPECT_EQ(live.load(), 0);
    Mdb::alloc_node = nullptr;  // no allocator at all behaves the same
    budget = -1;
    EXPECT_EQ(root(p.obj, 0x100, 0, 0x1f, object(1)), Mdb::Status::OOM);
    EXPECT_TRUE(p.obj.empty());
}

TEST_F(Mdb_test, ARootTheObserverCannotMapIsWithdrawnWithOom)
{
    Pd &p = new_pd();
    rec.fail_at = 0;
    EXPECT_EQ(root(p.mem, 0x100, 0, 7), Mdb::Status::OOM);
    EXPECT_TRUE(p.mem.empty());
    EXPECT_EQ(live.load(), 0);
    EXPECT_EQ(root(p.mem, 0x100, 0, 7), Mdb::Status::OK);
}

TEST_F(Mdb_test, InsertRootsCoversAnUnalignedRangeWithTheFewestAlignedBlocks)
{
    Pd &k = new_pd();
    ASSERT_EQ(Mdb::insert_roots(k.mem, 3, 29, 7, 0x1003, &rec), Mdb::Status::OK);  // [3, 32)
    std::vector<std::pair<u64, unsigned>> blocks;
    for (Mdb_node *n = k.mem.next(0); n; n = k.mem.next(n->end())) {
        blocks.emplace_back(n->base, n->order);
        EXPECT_EQ(n->payload, 0x1000 + n->base);  // the payload advances with the base
    }
    EXPECT_EQ(blocks, (std::vector<std::pair<u64, unsigned>>{{3, 0}, {4, 2}, {8, 3}, {16, 4}}));
}

TEST_F(Mdb_test, KernelMemoryCanBeDescribedUpTo2To52BytesWithHoles)
{
    Pd &k = new_pd();
    const u64 top = u64{1} << 40;  // 2^52 bytes in pages
    ASSERT_EQ(Mdb::insert_roots(k.mem, 0, 0x100, 7, 0, &rec), Mdb::Status::OK);
    ASSERT_EQ(Mdb::insert_roots(k.mem, 0x200, top - 0x200, 7, 0x200, &rec), Mdb::Status::OK);
    EXPECT_LE(k.mem.count(), 40u);
    EXPECT_EQ(Mdb::lookup(k.mem, 0x180), Crd());
    EXPECT_EQ(k.mem.lookup(top - 1)->payload + (top - 1 - k.mem.lookup(top - 1)->base), top - 1);
    EXPECT_EQ(k.mem.lookup(top), nullptr);
}

TEST_F(Mdb_test, IoNodesCarryTheirPortNumberAsPayload)
{
    Pd &k = new_pd();
    ASSERT_EQ(root(k.pio, 0x60, 4, 7, 0xdead), Mdb::Status::OK);
    EXPECT_EQ(k.pio.lookup(0x65)->payload, 0x60u);
}

// ---------------------------------------------------------------- delegation (ABI 3.4, checklist F)

TEST_F(Mdb_test, F84_F85_DelegatingAnObjectMakesTheNewSelectorReferToTheSameObject)
{
    Pd &root_pd = new_pd();
    ASSERT_EQ(root(root_pd.obj, 0x100, 0, 0x1f, object(7)), Mdb::Status::OK);
    Mdb::Result r = del(root_pd.obj, obj(0x100), root_pd.obj, obj(0x200));
    EXPECT_EQ(r.status, Mdb::Status::OK);
    EXPECT_EQ(r.crd, obj(0x200, 0, 0x1f));
    Mdb_node *copy = root_pd.obj.lookup(0x200);
    ASSERT_NE(copy, nullptr);
    EXPECT_EQ(copy->payload, object(7));
    EXPECT_EQ(copy->rights, 0x1f);
    EXPECT_EQ(copy->parent, root_pd.obj.lookup(0x100));
}

TEST_F(Mdb_test, F86_WindowRightsLimitTheDelegatedRights)
{
    Pd &p = new_pd();
    ASSERT_EQ(root(p.obj, 0x100, 0, 0x3, object(1)), Mdb::Status::OK);  // an SM: up | down
    Mdb::Result r = del(p.obj, obj(0x100), p.obj, obj(0x200, 0, 0x01));
    EXPECT_EQ(r.crd, obj(0x200, 0, 0x01));
    EXPECT_EQ(p.obj.lookup(0x200)->rights, 0x01);
}

TEST_F(Mdb_test, StoredRightsAreSourceAndSendAndWindowRightsWhileTheResultOmitsTheSource)
{
    Pd &a = new_pd(), &b = new_pd();
    ASSERT_EQ(root(a.obj, 0x10, 0, 0x0d, object(1)), Mdb::Status::OK);  // an EC: 0x0d
    Mdb::Result r = del(a.obj, obj(0x10, 0, 0x1e), b.obj, obj(0x20, 0, 0x17));
    EXPECT_EQ(r.crd, obj(0x20, 0, 0x16));         // send AND window (ABI 3.2)
    EXPECT_EQ(b.obj.lookup(0x20)->rights, 0x04);  // AND source rights
}

TEST_F(Mdb_test, F87_ATypeMismatchYieldsTheNullCrdAndCreatesNothing)
{
    Pd &p = new_pd();
    ASSERT_EQ(root(p.obj, 0x100, 0, 0x1f, object(1)), Mdb::Status::OK);
    Mdb::Result r = del(p.obj, obj(0x100), p.obj, mem(0x200));
    EXPECT_EQ(r.status, Mdb::Status::OK);
    EXPECT_EQ(r.crd.value(), 0u);
    EXPECT_EQ(live.load(), 1);
}

TEST_F(Mdb_test, DisjointSendAndWindowRightsYieldTheNullCrd)
{
    Pd &p = new_pd();
    ASSERT_EQ(root(p.obj, 0x100, 0, 0x1f, object(1)), Mdb::Status::OK);
    EXPECT_EQ(del(p.obj, obj(0x100, 0, 0x0c), p.obj, obj(0x200, 0, 0x03)).crd, Crd());
    EXPECT_EQ(del(p.obj, Crd(), p.obj, Crd()).crd, Crd());
    EXPECT_EQ(live.load(), 1);
}

TEST_F(Mdb_test, SpacesOfTheWrongTypeAreABadParameter)
{
    Pd &p = new_pd();
    EXPECT_EQ(del(p.mem, obj(0x100), p.obj, obj(0x200)).status, Mdb::Status::BAD_PARAM);
    EXPECT_EQ(del(p.obj, obj(0x100), p.pio, obj(0x200)).status, Mdb::Status::BAD_PARAM);
}

TEST_F(Mdb_test, F88_AnOrder2RangeIntoAnOrder4WindowWithHotspot0x208LandsAt0x208)
{
    Pd &a = new_pd(), &b = new_pd();
    for (unsigned i = 0; i < 4; i++)
        ASSERT_EQ(root(a.obj, 0x40 + i, 0, 0x1f, object(i)), Mdb::Status::OK);
    Mdb::Result r = del(a.obj, obj(0x40, 2), b.obj, obj(0x200, 4), 0x208);
    EXPECT_EQ(r.crd, obj(0x208, 2, 0x1f));
    for (unsigned i = 0; i < 16; i++) {
        Mdb_node *n = b.obj.lookup(0x200 + i);
        if (i >= 8 && i < 12) {
            ASSERT_NE(n, nullptr) << i;
            EXPECT_EQ(n->payload, object(i - 8));
        } else
            EXPECT_EQ(n, nullptr) << i;
    }
}

TEST_F(Mdb_test, ASendRangeLargerThanTheWindowSendsTheHotspotPartOfTheSource)
{
    Pd &a = new_pd(), &b = new_pd();
    for (unsigned i = 0; i < 16; i++)
        ASSERT_EQ(root(a.obj, 0x100 + i, 0, 0x1f, object(i)), Mdb::Status::OK);
    Mdb::Result r = del(a.obj, obj(0x100, 4), b.obj, obj(0x300, 2), 0x10c);
    EXPECT_EQ(r.crd, obj(0x300, 2, 0x1f));
    for (unsigned i = 0; i < 4; i++)
        EXPECT_EQ(b.obj.lookup(0x300 + i)->payload, object(12 + i));
    EXPECT_EQ(b.obj.count(), 4u);
}

TEST_F(Mdb_test, F89_DelegationIntoAnOccupiedSelectorLeavesTheDestinationUnchanged)
{
    Pd &a = new_pd(), &b = new_pd();
    ASSERT_EQ(root(a.obj, 0x100, 0, 0x1f, object(1)), Mdb::Status::OK);
    ASSERT_EQ(root(b.obj, 0x200, 0, 0x03, object(2)), Mdb::Status::OK);
    Mdb::Result r = del(a.obj, obj(0x100), b.obj, obj(0x200));
    EXPECT_EQ(r.status, Mdb::Status::OK);
    EXPECT_EQ(r.crd, obj(0x200, 0, 0x1f));  // reported although nothing was inserted (ABI 3.2)
    EXPECT_EQ(b.obj.lookup(0x200)->payload, object(2));
    EXPECT_EQ(b.obj.lookup(0x200)->rights, 0x03);
    EXPECT_EQ(b.obj.lookup(0x200)->parent, nullptr);
    EXPECT_TRUE(diag_contains("overmap attempt OBJ - tree - PD:"));
    ASSERT_EQ(rec.skips.size(), 1u);
    EXPECT_EQ(std::get<3>(rec.skips[0]), Mdb_observer::Skip::OVERMAP);
    EXPECT_EQ(live.load(), 2);
}

TEST_F(Mdb_test, OnlyTheOccupiedPiecesOfARangeAreSkipped)
{
    Pd &a = new_pd(), &b = new_pd();
    for (unsigned i = 0; i < 4; i++)
        ASSERT_EQ(root(a.obj, 0x100 + i, 0, 0x1f, object(i)), Mdb::Status::OK);
    ASSERT_EQ(root(b.obj, 0x202, 0, 0x1f, object(9)), Mdb::Status::OK);
    del(a.obj, obj(0x100, 2), b.obj, obj(0x200, 2));
    EXPECT_EQ(b.obj.lookup(0x200)->payload, object(0));
    EXPECT_EQ(b.obj.lookup(0x201)->payload, object(1));
    EXPECT_EQ(b.obj.lookup(0x202)->payload, object(9));
    EXPECT_EQ(b.obj.lookup(0x203)->payload, object(3));
}

TEST_F(Mdb_test, AMemoryPieceOverlappingAnySmallerReceiverNodeIsSkippedWhole)
{
    Pd &a = new_pd(), &b = new_pd();
    ASSERT_EQ(root(a.mem, 0, 4, 7, 0x100), Mdb::Status::OK);
    ASSERT_EQ(root(b.mem, 0x1005, 0, 7, 0x999), Mdb::Status::OK);
    del(a.mem, mem(0, 4), b.mem, mem(0x1000, 4));
    EXPECT_EQ(b.mem.count(), 1u);
    EXPECT_EQ(Mdb::lookup(b.mem, 0x1000), Crd());
}

TEST_F(Mdb_test, SelectorsTheSourceDoesNotHoldAreSimplySkipped)
{
    Pd &a = new_pd(), &b = new_pd();
    ASSERT_EQ(root(a.obj, 0x101, 0, 0x1f, object(1)), Mdb::Status::OK);
    ASSERT_EQ(root(a.obj, 0x10e, 0, 0x1f, object(2)), Mdb::Status::OK);
    Mdb::Result r = del(a.obj, obj(0x100, 4), b.obj, obj(0x500, 4));
    EXPECT_EQ(r.crd, obj(0x500, 4, 0x1f));
    EXPECT_EQ(b.obj.count(), 2u);
    EXPECT_EQ(b.obj.lookup(0x501)->payload, object(1));
    EXPECT_EQ(b.obj.lookup(0x50e)->payload, object(2));
    EXPECT_TRUE(rec.skips.empty());
}

TEST_F(Mdb_test, RepeatingADelegationChangesNothingAndPrintsNoOvermapLine)
{
    Pd &a = new_pd(), &b = new_pd();
    ASSERT_EQ(root(a.obj, 0x100, 0, 0x1f, object(1)), Mdb::Status::OK);
    del(a.obj, obj(0x100), b.obj, obj(0x200));
    Snapshot before = snapshot();
    del(a.obj, obj(0x100), b.obj, obj(0x200));
    EXPECT_EQ(snapshot(), before);
    EXPECT_FALSE(diag_contains("overmap"));
    EXPECT_EQ(rec.skips.size(), 1u);
}

TEST_F(Mdb_test, DelegatingARangeOntoItselfCreatesNothing)
{
    Pd &a = new_pd();
    ASSERT_EQ(root(a.obj, 0x100, 0, 0x1f, object(1)), Mdb::Status::OK);
    del(a.obj, obj(0x100), a.obj, obj(0x100));
    EXPECT_EQ(live.load(), 1);
}

TEST_F(Mdb_test, CreatePdStyleDelegationPlacesTheSourceRangeAtSelectorZero)
{
    Pd &parent = new_pd(), &child = new_pd();
    for (unsigned i = 0; i < 8; i++)
        ASSERT_EQ(root(parent.obj, 0x48 + i, 0, 0x1f, object(i)), Mdb::Status::OK);
    Mdb::Result r = del(parent.obj, obj(0x48, 3), child.obj, Crd::whole(Crd::OBJ), 0);  // ABI 7.3
    EXPECT_EQ(r.crd, obj(0, 3, 0x1f));
    for (unsigned i = 0; i < 8; i++)
        EXPECT_EQ(child.obj.lookup(i)->payload, object(i));
    EXPECT_EQ(child.obj.count(), 8u);
}

TEST_F(Mdb_test, TheWholeObjectSpaceDelegatesEveryCapabilityToTheSameSelector)
{
    Pd &parent = new_pd(), &child = new_pd();
    ASSERT_EQ(root(parent.obj, 0, 0, 0x1f, object(0)), Mdb::Status::OK);
    ASSERT_EQ(root(parent.obj, 0x3ffffff, 0, 0x1f, object(1)), Mdb::Status::OK);
    Mdb::Result r = del(parent.obj, Crd::whole(Crd::OBJ), child.obj, Crd::whole(Crd::OBJ));
    EXPECT_EQ(r.crd, obj(0, 31, 0x1f));
    EXPECT_EQ(child.obj.lookup(0)->payload, object(0));
    EXPECT_EQ(child.obj.lookup(0x3ffffff)->payload, object(1));
}

TEST_F(Mdb_test, ObjectRangesWrapModulo2To26)
{
    Pd &a = new_pd(), &b = new_pd();
    ASSERT_EQ(root(a.obj, 0x100, 0, 0x1f, object(1)), Mdb::Status::OK);
    Mdb::Result r = del(a.obj, obj((u64{1} << 26) + 0x100), b.obj, obj((u64{2} << 26) + 0x300));
    EXPECT_EQ(r.crd, obj((u64{2} << 26) + 0x300));  // the result carries the window's selector
    EXPECT_EQ(b.obj.lookup(0x300)->payload, object(1));
}

TEST_F(Mdb_test, MemoryReceiverPagesMapToTheSourcesPhysicalPages)
{
    Pd &a = new_pd(), &b = new_pd();
    ASSERT_EQ(root(a.mem, 0x400, 4, 7, 0x9000), Mdb::Status::OK);
    del(a.mem, mem(0x404, 2), b.mem, mem(0x20, 2));
    Mdb_node *n = b.mem.lookup(0x22);
    ASSERT_NE(n, nullptr);
    EXPECT_EQ(n->base, 0x20u);
    EXPECT_EQ(n->order, 2);
    EXPECT_EQ(n->payload, 0x9004u);
}

TEST_F(Mdb_test, ALargeMemoryNodeThroughASmallWindowGivesOneChildForTheHotspotPart)
{
    Pd &k = new_pd(), &r = new_pd();
    ASSERT_EQ(root(k.mem, 0, 10, 7, 0x80000), Mdb::Status::OK);
    Mdb::Result res = del(k.mem, mem(0, 10), r.mem, mem(0x500, 2), 0x123);
    EXPECT_EQ(res.crd, mem(0x500, 2, 0x1f));
    ASSERT_EQ(r.mem.count(), 1u);
    Mdb_node *n = r.mem.lookup(0x500);
    EXPECT_EQ(n->order, 2);
    EXPECT_EQ(n->payload, 0x80120u);
    EXPECT_EQ(n->rights, 7);  // bits 4:3 never stored (ABI 2.6)
}

TEST_F(Mdb_test, AMemoryRangeOverManyNodesGivesOneAlignedChildPerNode)
{
    Pd &a = new_pd(), &b = new_pd();
    ASSERT_EQ(root(a.mem, 0x100, 0, 7, 0x1000), Mdb::Status::OK);
    ASSERT_EQ(root(a.mem, 0x104, 2, 3, 0x2000), Mdb::Status::OK);
    ASSERT_EQ(root(a.mem, 0x108, 3, 1, 0x3000), Mdb::Status::OK);
    ASSERT_EQ(root(a.mem, 0x200, 0, 7, 0x4000), Mdb::Status::OK);  // outside the range
    del(a.mem, mem(0x100, 4), b.mem, mem(0x7000, 8), 0x12b0);      // hotspot bits 7:4 pick 0x70b0
    std::vector<std::tuple<u64, unsigned, unsigned, u64>> got;
    for (Mdb_node *n = b.mem.next(0); n; n = b.mem.next(n->end()))
        got.emplace_back(n->base, n->order, n->rights, n->payload);
    EXPECT_EQ(got, (std::vector<std::tuple<u64, unsigned, unsigned, u64>>{
                       {0x70b0, 0, 7, 0x1000}, {0x70b4, 2, 3, 0x2000}, {0x70b8, 3, 1, 0x3000}}));
}

TEST_F(Mdb_test, TheTopPagesOfThe52BitMemorySpaceCanBeDelegated)
{
    Pd &a = new_pd(), &b = new_pd();
    const u64 last = (u64{1} << 52) - 1;
    ASSERT_EQ(root(a.mem, last, 0, 7, 0x77), Mdb::Status::OK);
    Mdb::Result r = del(a.mem, mem(last), b.mem, mem(last - 0x10));
    EXPECT_EQ(r.crd, mem(last - 0x10, 0, 0x1f));
    EXPECT_EQ(b.mem.lookup(last - 0x10)->payload, 0x77u);
    del(b.mem, mem(last - 0x10), a.mem, mem(0, 31), last - 0x10);  // into a window of order 31
    EXPECT_EQ(a.mem.lookup(0x7fffffef)->payload, 0x77u);           // hotspot bits below 31 kept
}

TEST_F(Mdb_test, F96_TheKernelSourceHasNothingToGiveInItsHoles)
{
    Pd &kernel = new_pd(), &root_pd = new_pd();
    ASSERT_EQ(Mdb::insert_roots(kernel.mem, 0, 0x100, 7, 0, &rec), Mdb::Status::OK);
    ASSERT_EQ(Mdb::insert_roots(kernel.mem, 0x180, 0x80, 7, 0x180, &rec), Mdb::Status::OK);
    Mdb::Result r = del(kernel.mem, mem(0x100, 7), root_pd.mem, mem(0x1000, 7));  // the hole
    EXPECT_EQ(r.crd, mem(0x1000, 7, 0x1f));  // rights granted in the result ...
    EXPECT_TRUE(root_pd.mem.empty());        // ... but nothing mapped
    del(kernel.mem, mem(0, 9), root_pd.mem, mem(0x2000, 9));
    EXPECT_EQ(root_pd.mem.count(), 2u);
    EXPECT_EQ(root_pd.mem.lookup(0x20ff)->payload, 0u);
    EXPECT_EQ(root_pd.mem.lookup(0x2180)->payload, 0x180u);
    EXPECT_EQ(root_pd.mem.lookup(0x2100), nullptr);
}

TEST_F(Mdb_test, F97_IoDelegationIsIdentityWithTheSmallerOrder)
{
    Pd &kernel = new_pd(), &r = new_pd();
    ASSERT_EQ(root(kernel.pio, 0, 16, 7), Mdb::Status::OK);
    Mdb::Result res = del(kernel.pio, pio(0x80), r.pio, pio(0, 16), 0x1234);  // the hotspot plays no role
    EXPECT_EQ(res.crd, pio(0x80, 0, 0x1f));
    EXPECT_EQ(Mdb::lookup(r.pio, 0x80), pio(0x80, 0, 7));
    EXPECT_EQ(r.pio.count(), 1u);
}

TEST_F(Mdb_test, AnIoWindowInsideTheSendRangeSelectsThosePorts)
{
    Pd &kernel = new_pd(), &r = new_pd();
    ASSERT_EQ(root(kernel.pio, 0, 16, 7), Mdb::Status::OK);
    Mdb::Result res = del(kernel.pio, pio(0, 16), r.pio, pio(0x60, 4, 1));
    EXPECT_EQ(res.crd, pio(0x60, 4, 1));
    EXPECT_EQ(Mdb::lookup(r.pio, 0x6f), pio(0x60, 4, 1));
}

TEST_F(Mdb_test, IoRangesThatDoNotNestTransferNothing)
{
    Pd &kernel = new_pd(), &r = new_pd();
    ASSERT_EQ(root(kernel.pio, 0, 16, 7), Mdb::Status::OK);
    Mdb::Result res = del(kernel.pio, pio(0x80), r.pio, pio(0x100, 4));
    EXPECT_EQ(res.crd, Crd());
    EXPECT_TRUE(r.pio.empty());
    del(kernel.pio, pio(0x10080), r.pio, pio(0x10080));  // ports beyond 0xffff do not exist
    EXPECT_TRUE(r.pio.empty());
}

// ---------------------------------------------------------------- translation (ABI 3.5)

TEST_F(Mdb_test, F102_TranslationYieldsTheReceiversOriginalSelector)
{
    Pd &server = new_pd(), &client = new_pd();
    ASSERT_EQ(root(server.obj, 0x100, 0, 0x1f, object(1)), Mdb::Status::OK);
    del(server.obj, obj(0x100), client.obj, obj(0x300, 0, 0x3));
    Crd r = Mdb::translate(client.obj, obj(0x300), server.obj, Crd::whole(Crd::OBJ));
    EXPECT_EQ(r, obj(0x100, 0, 0x3));  // rights of the sender's node
}

TEST_F(Mdb_test, TranslationFindsAnAncestorSeveralDelegationsUp)
{
    Pd &a = new_pd(), &b = new_pd(), &c = new_pd();
    ASSERT_EQ(root(a.obj, 0x10, 0, 0x1f, object(1)), Mdb::Status::OK);
    del(a.obj, obj(0x10), b.obj, obj(0x20));
    del(b.obj, obj(0x20), c.obj, obj(0x30));
    EXPECT_EQ(Mdb::translate(c.obj, obj(0x30), a.obj, obj(0, 8)), obj(0x10, 0, 0x1f));
    EXPECT_EQ(Mdb::translate(c.obj, obj(0x30), b.obj, obj(0, 8)), obj(0x20, 0, 0x1f));
}

TEST_F(Mdb_test, TranslationSkipsAncestorsOutsideTheWindow)
{
    Pd &a = new_pd(), &b = new_pd(), &c = new_pd();
    ASSERT_EQ(root(a.obj, 0x10, 0, 0x1f, object(1)), Mdb::Status::OK);
    del(a.obj, obj(0x10), a.obj, obj(0x80));  // a holds the object twice
    del(a.obj, obj(0x80), c.obj, obj(0x30));
    EXPECT_EQ(Mdb::translate(c.obj, obj(0x30), a.obj, obj(0, 5)), obj(0x10, 0, 0x1f));
    EXPECT_EQ(Mdb::translate(c.obj, obj(0x30), a.obj, obj(0x80, 4)), obj(0x80, 0, 0x1f));
    EXPECT_EQ(Mdb::translate(c.obj, obj(0x30), a.obj, obj(0x40, 4)), Crd());
    EXPECT_EQ(Mdb::translate(c.obj, obj(0x30), b.obj, obj(0, 31)), Crd());
}

TEST_F(Mdb_test, TranslationWithANullWindowOrAnotherTypeIsNull)
{
    Pd &a = new_pd(), &b = new_pd();
    ASSERT_EQ(root(a.obj, 0x10, 0, 0x1f, object(1)), Mdb::Status::OK);
    del(a.obj, obj(0x10), b.obj, obj(0x20));
    EXPECT_EQ(Mdb::translate(b.obj, obj(0x20), a.obj, Crd()), Crd());
    EXPECT_EQ(Mdb::translate(b.obj, obj(0x20), a.obj, Crd::whole(Crd::MEM)), Crd());
    EXPECT_EQ(Mdb::translate(b.obj, obj(0x21), a.obj, Crd::whole(Crd::OBJ)), Crd());  // nothing there
}

TEST_F(Mdb_test, TranslationWithinOnePdReturnsTheSameSelector)
{
    Pd &a = new_pd();
    ASSERT_EQ(root(a.obj, 0x10, 0, 0x1f, object(1)), Mdb::Status::OK);
    EXPECT_EQ(Mdb::translate(a.obj, obj(0x10), a.obj, Crd::whole(Crd::OBJ)), obj(0x10, 0, 0x1f));
    EXPECT_EQ(Mdb::translate(a.obj, obj(0x10), a.obj, obj(0x20, 4)), Crd());  // not in the window
}

TEST_F(Mdb_test, TranslationOfACapabilityNotDerivedFromTheReceiverIsNull)
{
    Pd &a = new_pd(), &b = new_pd();
    ASSERT_EQ(root(a.obj, 0x10, 0, 0x1f, object(1)), Mdb::Status::OK);
    EXPECT_EQ(Mdb::translate(a.obj, obj(0x10), b.obj, Crd::whole(Crd::OBJ)), Crd());
}

TEST_F(Mdb_test, MemoryTranslationFindsTheCorrespondingPageWithAClampedOrder)
{
    Pd &r = new_pd(), &s = new_pd();
    ASSERT_EQ(root(r.mem, 0x100, 4, 7, 0x5000), Mdb::Status::OK);
    del(r.mem, mem(0x100, 4), s.mem, mem(0x800, 4, 5));
    EXPECT_EQ(Mdb::translate(s.mem, mem(0x805), r.mem, mem(0, 20)), mem(0x105, 0, 5));
    EXPECT_EQ(Mdb::translate(s.mem, mem(0x800, 4), r.mem, mem(0x104, 2)), mem(0x104, 2, 5));
    EXPECT_EQ(Mdb::translate(s.mem, mem(0x800, 6), r.mem, mem(0, 20)), mem(0x100, 4, 5));
    EXPECT_EQ(Mdb::translate(s.mem, mem(0x80c), r.mem, mem(0x104, 2)), Crd());
}

TEST_F(Mdb_test, TranslationChangesNothing)
{
    Pd &a = new_pd(), &b = new_pd();
    ASSERT_EQ(root(a.obj, 0x10, 0, 0x1f, object(1)), Mdb::Status::OK);
    del(a.obj, obj(0x10), b.obj, obj(0x20));
    Snapshot before = snapshot();
    Mdb::translate(b.obj, obj(0x20), a.obj, Crd::whole(Crd::OBJ));
    EXPECT_EQ(snapshot(), before);
}

// ---------------------------------------------------------------- revocation (ABI 7.8)

class Revoke_test : public Mdb_test
{
  protected:
    Pd *a = nullptr, *b = nullptr, *c = nullptr;

    void SetUp() override
    {
        Mdb_test::SetUp();
        a = &new_pd(), b = &new_pd(), c = &new_pd();
        ASSERT_EQ(root(a->obj, 0x100, 0, 0x3, object(1)), Mdb::Status::OK);  // an SM
        del(a->obj, obj(0x100), a->obj, obj(0x200));
    }
};

TEST_F(Revoke_test, F90_RevokeWithoutSelfRemovesTheCopyButKeepsTheOriginal)
{
    Mdb::revoke(a->obj, obj(0x100), false, &rec);
    EXPECT_EQ(Mdb::lookup(a->obj, 0x200), Crd());
    EXPECT_EQ(Mdb::lookup(a->obj, 0x100), obj(0x100, 0, 0x3));
    EXPECT_EQ(live.load(), 1);
}

TEST_F(Revoke_test, F91_RevokeWithSelfRemovesBothAndFreesTheSelector)
{
    Mdb::revoke(a->obj, obj(0x100), true, &rec);
    EXPECT_EQ(Mdb::lookup(a->obj, 0x100), Crd());
    EXPECT_EQ(Mdb::lookup(a->obj, 0x200), Crd());
    EXPECT_EQ(live.load(), 0);
    EXPECT_EQ(root(a->obj, 0x100, 0, 0x3, object(2)), Mdb::Status::OK);
}

TEST_F(Revoke_test, F92_RevokingSomeRightsLeavesTheRest)
{
    Mdb::revoke(a->obj, obj(0x200, 0, 0x02), true, &rec);
    EXPECT_EQ(Mdb::lookup(a->obj, 0x200), obj(0x200, 0, 0x01));  // up stays, down goes
    EXPECT_EQ(Mdb::lookup(a->obj, 0x100), obj(0x100, 0, 0x03));
    EXPECT_EQ(rec.demoted_calls, 1);
}

TEST_F(Revoke_test, F93_RevokeOfANullCrdOrNoRightsDoesNothing)
{
    Snapshot before = snapshot();
    Mdb::revoke(a->obj, Crd(), true, &rec);
    Mdb::revoke(a->obj, mem(0x100), true, &rec);        // another type
    Mdb::revoke(a->obj, obj(0x100, 0, 0), true, &rec);  // no rights
    Mdb::revoke(a->obj, obj(0x300, 4), true, &rec);     // nothing there
    EXPECT_EQ(snapshot(), before);
    EXPECT_EQ(rec.demoted_calls, 0);
}

TEST_F(Revoke_test, GrandchildrenGoWithTheirParent)
{
    del(a->obj, obj(0x200), b->obj, obj(0x10));
    del(b->obj, obj(0x10), c->obj, obj(0x20));
    Mdb::revoke(a->obj, obj(0x100), false, &rec);
    EXPECT_TRUE(b->obj.empty());
    EXPECT_TRUE(c->obj.empty());
    EXPECT_EQ(live.load(), 1);
}

TEST_F(Revoke_test, RevokingSomeRightsOfAChildTakesThemFromTheGrandchildrenToo)
{
    del(a->obj, obj(0x200), b->obj, obj(0x10));
    del(b->obj, obj(0x10), c->obj, obj(0x20, 0, 0x2));
    Mdb::revoke(a->obj, obj(0x200, 0, 0x1), true, &rec);
    EXPECT_EQ(Mdb::lookup(a->obj, 0x200), obj(0x200, 0, 0x2));
    EXPECT_EQ(Mdb::lookup(b->obj, 0x10), obj(0x10, 0, 0x2));
    EXPECT_EQ(Mdb::lookup(c->obj, 0x20), obj(0x20, 0, 0x2));  // had only 0x2: untouched
    Mdb::revoke(a->obj, obj(0x200, 0, 0x2), true, &rec);
    EXPECT_EQ(live.load(), 1);
}

TEST_F(Revoke_test, RevokingACapabilityInAnotherPdLeavesTheOriginal)
{
    del(a->obj, obj(0x100), b->obj, obj(0x10));
    Mdb::revoke(b->obj, obj(0x10), true, &rec);
    EXPECT_TRUE(b->obj.empty());
    EXPECT_EQ(Mdb::lookup(a->obj, 0x100), obj(0x100, 0, 0x3));
    EXPECT_EQ(Mdb::lookup(a->obj, 0x200), obj(0x200, 0, 0x3));
}

TEST_F(Revoke_test, EveryNodeInARevokedRangeIsCovered)
{
    ASSERT_EQ(root(a->obj, 0x101, 0, 0x1f, object(2)), Mdb::Status::OK);
    ASSERT_EQ(root(a->obj, 0x107, 0, 0x1f, object(3)), Mdb::Status::OK);
    ASSERT_EQ(root(a->obj, 0x108, 0, 0x1f, object(4)), Mdb::Status::OK);
    Mdb::revoke(a->obj, obj(0x100, 3), true, &rec);
    EXPECT_EQ(Mdb::lookup(a->obj, 0x100), Crd());
    EXPECT_EQ(Mdb::lookup(a->obj, 0x101), Crd());
    EXPECT_EQ(Mdb::lookup(a->obj, 0x107), Crd());
    EXPECT_NE(Mdb::lookup(a->obj, 0x108), Crd());
    EXPECT_EQ(Mdb::lookup(a->obj, 0x200), Crd());  // outside the range, but derived from 0x100
}

TEST_F(Revoke_test, RevokingAnObjectsRootReportsEveryCapabilityToItAsGone)
{
    del(a->obj, obj(0x100), b->obj, obj(0x10));
    del(a->obj, obj(0x200), c->obj, obj(0x20));
    rec.demoted_calls = 0;
    Mdb::revoke(a->obj, obj(0x100), true, &rec);
    EXPECT_EQ(rec.demoted_calls, 4);  // the kernel drops one reference each
    EXPECT_TRUE(rec.state.empty());
}

TEST_F(Mdb_test, RevokeWithoutSelfTouchesOnlyChildrenDerivedFromTheRevokedPart)
{
    Pd &a = new_pd(), &b = new_pd();
    ASSERT_EQ(root(a.mem, 0, 8, 7, 0x1000), Mdb::Status::OK);
    del(a.mem, mem(0x10, 4), b.mem, mem(0x100, 4));
    del(a.mem, mem(0x80, 4), b.mem, mem(0x200, 4));
    Mdb::revoke(a.mem, mem(0x85), false, &rec);  // one page of the second child's source
    EXPECT_EQ(Mdb::lookup(b.mem, 0x100), mem(0x100, 4, 7));
    EXPECT_EQ(Mdb::lookup(b.mem, 0x200), Crd());  // whole node revoked (ABI 7.8)
    EXPECT_EQ(Mdb::lookup(a.mem, 0x85), mem(0, 8, 7));
}

TEST_F(Mdb_test, RevokeWithSelfTakesTheRightsFromTheWholeNodeAndAllItsChildren)
{
    Pd &a = new_pd(), &b = new_pd();
    ASSERT_EQ(root(a.mem, 0, 8, 7, 0x1000), Mdb::Status::OK);
    del(a.mem, mem(0x10, 4), b.mem, mem(0x100, 4));
    Mdb::revoke(a.mem, mem(0x85, 0, 0x2), true, &rec);
    EXPECT_EQ(Mdb::lookup(a.mem, 0x0), mem(0, 8, 5));
    EXPECT_EQ(Mdb::lookup(b.mem, 0x100), mem(0x100, 4, 5));
}

TEST_F(Mdb_test, DelegationsWithinOneSpaceRevokeCleanly)
{
    Pd &a = new_pd();
    ASSERT_EQ(root(a.obj, 0x0, 0, 0x1f, object(1)), Mdb::Status::OK);
    del(a.obj, obj(0x0), a.obj, obj(0x1));
    del(a.obj, obj(0x1), a.obj, obj(0x2));
    del(a.obj, obj(0x2), a.obj, obj(0x3, 0, 0x3));
    Mdb::revoke(a.obj, obj(0, 2, 0x1c), false, &rec);
    EXPECT_EQ(Mdb::lookup(a.obj, 0), obj(0, 0, 0x1f));
    EXPECT_EQ(Mdb::lookup(a.obj, 1), obj(1, 0, 0x03));
    EXPECT_EQ(Mdb::lookup(a.obj, 2), obj(2, 0, 0x03));
    EXPECT_EQ(Mdb::lookup(a.obj, 3), obj(3, 0, 0x03));
    Mdb::revoke(a.obj, obj(0, 2), false, &rec);
    EXPECT_EQ(live.load(), 1);
}

TEST_F(Mdb_test, DestroyingASpaceFreesEverythingDerivedFromItButNotWhatItWasGiven)
{
    Pd &a = new_pd(), &b = new_pd(), &c = new_pd();
    ASSERT_EQ(root(a.obj, 0x1, 0, 0x1f, object(1)), Mdb::Status::OK);
    ASSERT_EQ(root(b.obj, 0x2, 0, 0x1f, object(2)), Mdb::Status::OK);
    del(a.obj, obj(0x1), b.obj, obj(0x10));
    del(b.obj, obj(0x10), c.obj, obj(0x20));
    del(b.obj, obj(0x2), c.obj, obj(0x21));
    Mdb::destroy(b.obj, &rec);
    EXPECT_TRUE(b.obj.empty());
    EXPECT_TRUE(c.obj.empty());
    EXPECT_EQ(a.obj.count(), 1u);
    EXPECT_EQ(a.obj.lookup(1)->child, nullptr);
    EXPECT_EQ(live.load(), 1);
}

TEST_F(Mdb_test, RevokingOnlyTheChildrenOfAWholeSpaceKeepsItsOwnNodes)
{
    Pd &a = new_pd(), &b = new_pd();
    ASSERT_EQ(root(a.mem, 0, 4, 7, 0), Mdb::Status::OK);
    ASSERT_EQ(root(a.pio, 0x60, 4, 7), Mdb::Status::OK);
    del(a.mem, mem(0, 4), b.mem, mem(0x10, 4));
    del(a.pio, pio(0x60, 4), b.pio, pio(0x60, 4));
    Mdb::revoke(a.mem, Crd::whole(Crd::MEM), false, &rec);
    Mdb::revoke(a.pio, Crd::whole(Crd::PIO), false, &rec);
    EXPECT_TRUE(b.mem.empty());
    EXPECT_TRUE(b.pio.empty());
    EXPECT_EQ(a.mem.count() + a.pio.count(), 2u);
}

// ---------------------------------------------------------------- scale: no recursion

TEST_F(Mdb_test, AChainOf100000DelegationsTranslatesAndRevokesWithoutRecursion)
{
    Pd &top = new_pd(), &x = new_pd(), &y = new_pd();
    ASSERT_EQ(root(top.obj, 0, 0, 0x1f, object(1)), Mdb::Status::OK);
    Mdb_space *from = &top.obj;
    u64 sel = 0;
    const int depth = 100000;
    for (int i = 1; i <= depth; i++) {  // top:0 -> x:1 -> y:2 -> x:3 -> ...
        Mdb_space *to = (i & 1) ? &x.obj : &y.obj;
        ASSERT_EQ(del(*from, obj(sel), *to, obj(static_cast<u64>(i))).status, Mdb::Status::OK);
        from = to;
        sel = static_cast<u64>(i);
    }
    EXPECT_EQ(live.load(), depth + 1);
    // The deepest node's only ancestor in top's space is the root: a walk of the whole chain.
    EXPECT_EQ(Mdb::translate(*from, obj(sel), top.obj, Crd::whole(Crd::OBJ)), obj(0, 0, 0x1f));
    Mdb::revoke(top.obj, obj(0, 0, 0x4), false, &rec);  // demotes the whole chain
    EXPECT_EQ(Mdb::lookup(*from, sel), obj(sel, 0, 0x1b));
    Mdb::revoke(top.obj, obj(0), false, &rec);
    EXPECT_EQ(live.load(), 1);
    EXPECT_TRUE(x.obj.empty());
    EXPECT_TRUE(y.obj.empty());
}

TEST_F(Mdb_test, ANodeWith100000ChildrenIsRevokedInOneCall)
{
    Pd &a = new_pd(), &b = new_pd();
    ASSERT_EQ(root(a.obj, 0, 0, 0x1f, object(1)), Mdb::Status::OK);
    for (u64 i = 0; i < 100000; i++)
        ASSERT_EQ(del(a.obj, obj(0), b.obj, obj(i)).status, Mdb::Status::OK);
    EXPECT_EQ(b.obj.count(), 100000u);
    Mdb::revoke(a.obj, obj(0), false, &rec);
    EXPECT_TRUE(b.obj.empty());
    EXPECT_EQ(live.load(), 1);
}

TEST_F(Mdb_test, AWholeObjectSpaceOf65536CapabilitiesDelegatesAndDies)
{
    Pd &a = new_pd(), &b = new_pd();
    for (unsigned i = 0; i < 65536; i++)
        ASSERT_EQ(root(a.obj, static_cast<u64>(i) * 1024, 0, 0x1f, object(i)), Mdb::Status::OK);
    del(a.obj, Crd::whole(Crd::OBJ), b.obj, Crd::whole(Crd::OBJ));
    EXPECT_EQ(b.obj.count(), 65536u);
    EXPECT_EQ(b.obj.lookup(1024 * 65535)->payload, object(65535));
    Mdb::destroy(a.obj, &rec);
    EXPECT_TRUE(b.obj.empty());
}

// ---------------------------------------------------------------- out of memory (ABI 1.5)

TEST_F(Mdb_test, RunningOutOfMemoryAtAnyAllocationOfADelegationChangesNothing)
{
    Pd &a = new_pd(), &b = new_pd();
    for (unsigned i = 0; i < 16; i += 2)
        ASSERT_EQ(root(a.obj, 0x100 + static_cast<u64>(i), 0, 0x1f, object(i)), Mdb::Status::OK);
    ASSERT_EQ(root(b.obj, 0x204, 0, 0x1f, object(99)), Mdb::Status::OK);  // one piece is skipped
    const long pieces = 7;
    Snapshot before = snapshot();
    long live_before = live.load();
    for (long n = 0; n < pieces; n++) {
        budget = n;
        Mdb::Result r = del(a.obj, obj(0x100, 4), b.obj, obj(0x200, 4));
        EXPECT_EQ(r.status, Mdb::Status::OOM) << n;
        EXPECT_EQ(snapshot(), before) << n;
        EXPECT_EQ(live.load(), live_before) << n;
        check_invariants({&a.obj, &b.obj}, live.load());
    }
    budget = pieces;
    EXPECT_EQ(del(a.obj, obj(0x100, 4), b.obj, obj(0x200, 4)).status, Mdb::Status::OK);
    EXPECT_EQ(live.load(), live_before + pieces);
}

TEST_F(Mdb_test, AnObserverRefusingAnyNodeOfADelegationWithdrawsTheWholeItem)
{
    Pd &a = new_pd(), &b = new_pd();
    ASSERT_EQ(root(a.mem, 0x0, 2, 7, 0x100), Mdb::Status::OK);
    ASSERT_EQ(root(a.mem, 0x4, 2, 7, 0x200), Mdb::Status::OK);
    ASSERT_EQ(root(a.mem, 0x8, 3, 7, 0x300), Mdb::Status::OK);
    Snapshot before = snapshot();
    auto state_before = rec.state;
    for (int j = 0; j < 3; j++) {
        rec.fail_at = rec.mapped_calls + j;
        EXPECT_EQ(del(a.mem, mem(0, 4), b.mem, mem(0x40, 4)).status, Mdb::Status::OOM) << j;
        EXPECT_EQ(snapshot(), before) << j;
        EXPECT_EQ(rec.state, state_before) << j;  // what was mapped got unmapped again
    }
    rec.fail_at = -1;
    EXPECT_EQ(del(a.mem, mem(0, 4), b.mem, mem(0x40, 4)).status, Mdb::Status::OK);
    EXPECT_EQ(b.mem.count(), 3u);
}

// ---------------------------------------------------------------- concurrency

TEST_F(Mdb_test, ConcurrentDelegationsAndRevocationsKeepTheDatabaseConsistent)
{
    Pd &a = new_pd(), &b = new_pd(), &c = new_pd();
    for (unsigned i = 0; i < 64; i++)
        ASSERT_EQ(Mdb::insert_root(a.obj, static_cast<u64>(i), 0, 0x1f, object(i)), Mdb::Status::OK);
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < 2; t++)  // more threads than CPUs make a ticket lock crawl
        threads.emplace_back([&, t] {
            std::mt19937 rng(t);
            Mdb_space *sp[] = {&a.obj, &b.obj, &c.obj};
            for (int i = 0; i < 3000; i++) {
                Mdb_space &s = *sp[rng() % 3], &d = *sp[rng() % 3];
                if (rng() % 3)
                    Mdb::delegate(s, obj(rng() % 64, static_cast<unsigned>(rng() % 3)), d,
                                  obj(rng() % 64, static_cast<unsigned>(rng() % 3)), rng() % 64);
                else
                    Mdb::revoke(s, obj(rng() % 64, rng() % 2, rng() % 32), rng() % 2);
            }
        });
    for (auto &t : threads)
        t.join();
    check_invariants({&a.obj, &b.obj, &c.obj}, live.load());
    for (Mdb_space *s : {&a.obj, &b.obj, &c.obj})
        Mdb::destroy(*s);  // the recorder saw none of these nodes
    EXPECT_EQ(live.load(), 0);
}

// ---------------------------------------------------------------- resumable revocation (Mdb_walk)

namespace {

/* The shape of a set of PDs: per space, (base, order, rights, payload, parent base) in base order. */
std::vector<std::tuple<u64, unsigned, unsigned, u64, u64>> shape(const std::vector<Mdb_space *> &spaces)
{
    std::vector<std::tuple<u64, unsigned, unsigned, u64, u64>> out;
    for (Mdb_space *s : spaces)
        for (Mdb_node *n = s->next(0); n; n = s->next(n->end()))
            out.emplace_back(n->base, n->order, n->rights, n->payload, n->parent ? n->parent->base : ~u64{0});
    return out;
}

/* Random delegations among three PDs' object spaces from 64 roots in the first (the same for a seed). */
void grow(Mdb_space &a, Mdb_space &b, Mdb_space &c, unsigned seed, int steps, Mdb_observer *obs)
{
    std::mt19937 rng(seed);
    Mdb_space *sp[] = {&a, &b, &c};
    for (int i = 0; i < steps; i++) {
        Mdb_space &s = *sp[rng() % 3], &d = *sp[1 + rng() % 2];
        Mdb::delegate(
            s, Crd::obj(rng() % 64, static_cast<unsigned>(rng() % 3), static_cast<unsigned>(rng() % 32)), d,
            Crd::obj(rng() % 256, static_cast<unsigned>(rng() % 3)), rng() % 256, obs);
    }
}

}  // namespace

TEST_F(Mdb_test, ARevocationInStepsOfOneEndsExactlyLikeOneInOneGo)
{
    unsigned most = 0;  // steps of the longest walk
    for (unsigned seed = 1; seed <= 12; seed++) {
        SCOPED_TRACE(seed);
        Pd &a1 = new_pd(), &b1 = new_pd(), &c1 = new_pd(), &a2 = new_pd(), &b2 = new_pd(), &c2 = new_pd();
        for (unsigned i = 0; i < 64; i++) {
            ASSERT_EQ(root(a1.obj, i, 0, 0x1f, object(i)), Mdb::Status::OK);
            ASSERT_EQ(root(a2.obj, i, 0, 0x1f, object(i)), Mdb::Status::OK);
        }
        grow(a1.obj, b1.obj, c1.obj, seed, 200, &rec);
        grow(a2.obj, b2.obj, c2.obj, seed, 200, &rec);
        ASSERT_EQ(shape({&a1.obj, &b1.obj, &c1.obj}), shape({&a2.obj, &b2.obj, &c2.obj}));
        std::mt19937 rng(seed);
        u64 base = rng() % 64;
        unsigned order = static_cast<unsigned>(rng() % 5), rights = 1 + static_cast<unsigned>(rng() % 31);
        bool self = rng() % 2;
        Mdb_space &s1 = seed % 3 ? a1.obj : b1.obj, &s2 = seed % 3 ? a2.obj : b2.obj;
        Mdb::revoke(s1, base, order, rights, self, &rec);
        Mdb_walk w;
        Mdb::walk_begin(w, s2, base, order, rights, self);
        unsigned calls = 0;
        for (bool done = false; !done; calls++) {
            u64 one = 1;
            done = Mdb::walk(w, one, &rec);
            ASSERT_NO_FATAL_FAILURE(
                check_invariants({&a2.obj, &b2.obj, &c2.obj},
                                 live.load() - long(a1.obj.count() + b1.obj.count() + c1.obj.count())));
        }
        EXPECT_FALSE(w.active());
        most = std::max(most, calls);
        EXPECT_EQ(shape({&a1.obj, &b1.obj, &c1.obj}), shape({&a2.obj, &b2.obj, &c2.obj}));
        for (Pd *p : {&a1, &b1, &c1, &a2, &b2, &c2})
            Mdb::destroy(p->obj, &rec);
    }
    EXPECT_GT(most, 50u);
}

/*
 * Everything a walk was asked to revoke (the nodes in its scope when it began, and whatever was
 * derived from them since) lacks its rights once it finished, however the database changed between
 * its steps: delegations from anywhere (also from nodes in the scope not yet visited), other walks,
 * revocations that free the node a walk is paused at.
 */
TEST_F(Mdb_test, WalksInterleavedWithDelegationsAndOtherRevocationsRevokeEverythingInTheirScope)
{
    for (unsigned seed = 1; seed <= 30; seed++) {
        SCOPED_TRACE(seed);
        std::mt19937 rng(seed);
        Pd &a = new_pd(), &b = new_pd(), &c = new_pd();
        std::vector<Mdb_space *> all = {&a.obj, &b.obj, &c.obj};
        for (unsigned i = 0; i < 64; i++)
            ASSERT_EQ(root(a.obj, i, 0, 0x1f, object(i)), Mdb::Status::OK);
        grow(a.obj, b.obj, c.obj, seed, 300, &rec);

        struct Job
        {
            Mdb_walk w;
            Mdb_space *s;
            unsigned rights;
            std::set<u64> scope;  // serials of the nodes in scope at the start
        };
        auto start = [&](Job &j) {
            j.s = all[rng() % 3];
            u64 base = rng() % 64;
            unsigned order = static_cast<unsigned>(rng() % 4);
            j.rights = 1 + static_cast<unsigned>(rng() % 31);
            bool self = rng() % 2;
            Mdb::walk_begin(j.w, *j.s, base, order, j.rights, self);
            j.scope.clear();
            for (Mdb_node *n = j.s->next(0); n; n = j.s->next(n->end())) {
                if (!((n->base ^ base) >> std::max<unsigned>(n->order, order) == 0))
                    continue;  // outside the range
                if (self)
                    j.scope.insert(rec.serial.at(n));
                else
                    for (Mdb_node *ch = n->child; ch; ch = ch->next) {
                        u64 from = n->base + (ch->payload - n->payload);  // objects: the node itself
                        if (n->space->type() == Crd::OBJ)
                            from = n->base;
                        if ((from ^ base) >> std::max<unsigned>(ch->order, order) == 0)
                            j.scope.insert(rec.serial.at(ch));
                    }
            }
        };
        // Every live node with an ancestor (or itself) in scope lacks the rights.
        auto verify = [&](const Job &j) {
            for (Mdb_space *sp : all)
                for (Mdb_node *n = sp->next(0); n; n = sp->next(n->end()))
                    for (Mdb_node *up = n; up; up = up->parent)
                        if (j.scope.count(rec.serial.at(up))) {
                            ASSERT_EQ(n->rights & j.rights, 0u) << "a node in scope kept a revoked right";
                            break;
                        }
        };
        Job jobs[2];
        start(jobs[0]);
        start(jobs[1]);
        int finished = 0;
        for (int step = 0; finished < 6 && step < 20000; step++) {
            Job &j = jobs[rng() % 2];
            u64 budget = 1 + rng() % 4;
            if (Mdb::walk(j.w, budget, &rec)) {
                ASSERT_NO_FATAL_FAILURE(verify(j));
                finished++;
                start(j);
            }
            switch (rng() % 4) {
            case 0:
            case 1: {  // a delegation, often from a node a walk is about to visit
                Mdb_space &s = *all[rng() % 3], &d = *all[rng() % 3];
                Mdb::delegate(s, Crd::obj(rng() % 64, static_cast<unsigned>(rng() % 2)), d,
                              Crd::obj(rng() % 256, static_cast<unsigned>(rng() % 2)), rng() % 256, &rec);
                break;
            }
            case 2:
                if (rng() % 8 == 0)  // a revocation in one go: may free a node a walk is paused at
                    Mdb::revoke(*all[rng() % 3],
                                Crd::obj(rng() % 256, static_cast<unsigned>(rng() % 3),
                                         static_cast<unsigned>(rng() % 32)),
                                rng() % 2, &rec);
                break;
            default: break;
            }
            // Nodes that died while a walk is paused at them are still allocated.
            std::set<const Mdb_node *> dead;
            for (const Job &k : jobs)
                if (k.w.at && k.w.at->dead())
                    dead.insert(k.w.at);
            ASSERT_NO_FATAL_FAILURE(check_invariants(all, live.load() - long(dead.size())));
        }
        EXPECT_EQ(finished, 6);
        Mdb::walk_cancel(jobs[0].w);
        Mdb::walk_cancel(jobs[1].w);
        for (Mdb_space *sp : all)
            Mdb::destroy(*sp, &rec);
        EXPECT_EQ(live.load(), 0);
    }
}

TEST_F(Mdb_test, AWalkWhoseNodeDiedStartsItsTopLevelNodeAgainAndFreesTheDeadNode)
{
    Pd &a = new_pd(), &b = new_pd(), &c = new_pd();
    ASSERT_EQ(root(a.mem, 0, 0, 7, 0x100), Mdb::Status::OK);
    for (u64 i = 0; i < 8; i++) {
        ASSERT_EQ(del(a.mem, mem(0), b.mem, mem(0x10 + i)).status, Mdb::Status::OK);
        ASSERT_EQ(del(b.mem, mem(0x10 + i), c.mem, mem(0x20 + i)).status, Mdb::Status::OK);
    }
    Mdb_walk w;
    Mdb::walk_begin(w, a.mem, 0, 0, 2, false);  // W from everything derived from a's page
    u64 budget = 3;                             // enter b:0x10, enter c:0x20, take W from it
    ASSERT_FALSE(Mdb::walk(w, budget, &rec));
    ASSERT_NE(w.at, nullptr);
    Mdb_node *paused = w.at;
    EXPECT_EQ(paused->pins, 1);
    long before = live.load();
    Mdb::destroy(c.mem, &rec);  // frees the node the walk is paused at (and all of c's)
    EXPECT_TRUE(paused->dead());
    EXPECT_EQ(live.load(), before - 7);  // the paused one stays until the walk lets go
    budget = ~u64{0};
    EXPECT_TRUE(Mdb::walk(w, budget, &rec));
    EXPECT_EQ(live.load(), before - 8);
    for (u64 i = 0; i < 8; i++)
        EXPECT_EQ(Mdb::lookup(b.mem, 0x10 + i), mem(0x10 + i, 0, 5));
    check_invariants({&a.mem, &b.mem, &c.mem}, live.load());
}

TEST_F(Mdb_test, CancellingAPausedWalkLetsGoOfItsNode)
{
    Pd &a = new_pd(), &b = new_pd();
    ASSERT_EQ(root(a.obj, 0, 0, 0x1f, object(1)), Mdb::Status::OK);
    ASSERT_EQ(del(a.obj, obj(0), b.obj, obj(5)).status, Mdb::Status::OK);
    Mdb_walk w;
    Mdb::walk_begin(w, a.obj, 0, 0, 0x1f, true);
    u64 budget = 1;
    ASSERT_FALSE(Mdb::walk(w, budget, &rec));
    Mdb_node *paused = w.at;
    ASSERT_NE(paused, nullptr);
    Mdb::revoke(a.obj, obj(0), true, &rec);  // everything goes; the paused node stays, dead
    EXPECT_EQ(live.load(), 1);
    Mdb::walk_cancel(w);
    EXPECT_FALSE(w.active());
    EXPECT_EQ(live.load(), 0);
}

/* The walk never goes back over what it did: bounded steps take time linear in the tree. */
TEST_F(Mdb_test, ADeepChainAndAWideTreeAreRevokedInStepsWithoutRepeatingWork)
{
    Pd &top = new_pd(), &x = new_pd(), &y = new_pd();
    ASSERT_EQ(root(top.mem, 0, 0, 7, 0x100), Mdb::Status::OK);
    const unsigned depth = 20000, budget_per_call = 16;
    Mdb_space *from = &top.mem;
    u64 page = 0;
    for (unsigned i = 1; i <= depth; i++) {  // top:0 -> x:1 -> y:2 -> x:3 -> ...
        Mdb_space *to = (i & 1) ? &x.mem : &y.mem;
        ASSERT_EQ(del(*from, mem(page), *to, mem(i)).status, Mdb::Status::OK);
        from = to;
        page = i;
    }
    for (unsigned i = 0; i < depth; i++)  // and a wide part: 20000 children of the root
        ASSERT_EQ(del(top.mem, mem(0), x.mem, mem(0x100000 + i)).status, Mdb::Status::OK);
    for (unsigned rights : {2u, 7u}) {  // first only W (everything stays), then everything
        Mdb_walk w;
        Mdb::walk_begin(w, top.mem, 0, 0, rights, false);
        unsigned calls = 0;
        for (bool done = false; !done; calls++) {
            u64 b = budget_per_call;
            done = Mdb::walk(w, b, &rec);
        }
        // Every node is entered once and finished once: two units each.
        EXPECT_LE(calls, 2 * 2 * depth / (budget_per_call - 1) + 2) << rights;
    }
    EXPECT_EQ(live.load(), 1);
}

// ---------------------------------------------------------------- randomized model check

namespace {

/*
 * The reference: a flat list of nodes, every question answered by scanning it.
 * Written from the ABI text, independently of the implementation's tricks.
 */
struct Model
{
    struct Node
    {
        int sp;
        u64 base;
        unsigned order, rights;
        u64 payload;
        int parent;
        u64 src;  // parent selector this node's base came from
        bool alive;
    };
    std::vector<Node> n;
    std::vector<Crd::Type> type;  // per space
    std::vector<unsigned> bits;

    static bool meets(u64 a, unsigned ao, u64 b, unsigned bo)
    {
        u64 ae = a + (u64{1} << ao), be = b + (u64{1} << bo);
        return a < be && b < ae;
    }

    int cover(int sp, u64 sel) const
    {
        for (size_t i = 0; i < n.size(); i++)
            if (n[i].alive && n[i].sp == sp && sel >= n[i].base && sel - n[i].base < (u64{1} << n[i].order))
                return static_cast<int>(i);
        return -1;
    }

    bool free(int sp, u64 b, unsigned o) const
    {
        for (auto &x : n)
            if (x.alive && x.sp == sp && meets(x.base, x.order, b, o))
                return false;
        return true;
    }

    bool clip(int sp, u64 &b, unsigned &o) const
    {
        unsigned w = bits[static_cast<size_t>(sp)];
        if (type[static_cast<size_t>(sp)] == Crd::OBJ) {
            if (o >= w) {
                b = 0, o = w;
                return true;
            }
            b = (b % (u64{1} << w)) / (u64{1} << o) * (u64{1} << o);
            return true;
        }
        b = b / (u64{1} << o) * (u64{1} << o);
        if (o >= w) {
            if (b)
                return false;
            o = w;
            return true;
        }
        return b < (u64{1} << w);
    }

    /* Pieces a delegation would create: (source node, source base, order, dst base, rights). */
    struct Piece
    {
        int from;
        u64 sbase;
        unsigned order;
        u64 dbase;
        unsigned rights;
    };

    bool plan(Crd s, Crd w, u64 h, u64 &sb, u64 &rb, unsigned &o) const
    {
        sb = s.base(), rb = w.base();
        unsigned so = s.order(), ro = w.order();
        if (s.type() == Crd::PIO) {
            unsigned m = std::max(so, ro);
            if ((sb >> m) != (rb >> m))
                return false;
            rb |= sb;
            sb = rb;
            o = std::min(so, ro);
            return true;
        }
        sb -= sb % (u64{1} << so);
        rb -= rb % (u64{1} << ro);
        if (so < ro) {
            rb += h % (u64{1} << ro) / (u64{1} << so) * (u64{1} << so);
            o = so;
        } else {
            sb += h % (u64{1} << so) / (u64{1} << ro) * (u64{1} << ro);
            o = ro;
        }
        return true;
    }

    std::vector<Piece> pieces(int src, u64 sb, int dst, u64 rb, unsigned o, unsigned a) const
    {
        std::vector<Piece> out;
        unsigned so = o, ro = o;
        if (!clip(src, sb, so) || !clip(dst, rb, ro))
            return out;
        std::vector<int> idx;
        for (size_t i = 0; i < n.size(); i++)
            if (n[i].alive && n[i].sp == src && meets(n[i].base, n[i].order, sb, so))
                idx.push_back(static_cast<int>(i));
        std::sort(idx.begin(), idx.end(),
                  [&](int x, int y) { return n[size_t(x)].base < n[size_t(y)].base; });
        for (int i : idx) {
            const Node &x = n[static_cast<size_t>(i)];
            u64 lo = std::max(x.base, sb);
            u64 hi = std::min(x.base + (u64{1} << x.order), sb + (u64{1} << so));
            unsigned po = 0;
            while ((u64{1} << po) < hi - lo)
                po++;
            EXPECT_EQ(u64{1} << po, hi - lo);
            u64 db = lo - sb + rb;
            if (!free(dst, db, po) || !(x.rights & a))
                continue;
            out.push_back({i, lo, po, db, x.rights & a});
        }
        return out;
    }

    void apply(const std::vector<Piece> &ps, int dst)
    {
        for (auto &p : ps) {
            const Node &x = n[static_cast<size_t>(p.from)];
            u64 pay = type[size_t(dst)] == Crd::OBJ ? x.payload : x.payload + (p.sbase - x.base);
            n.push_back({dst, p.dbase, p.order, p.rights, pay, p.from, p.sbase, true});
        }
    }

    bool descends(int i, const std::vector<bool> &top) const
    {
        for (; i >= 0; i = n[size_t(i)].parent)
            if (top[size_t(i)])
                return true;
        return false;
    }

    void revoke(int sp, u64 b, unsigned o, unsigned r, bool self)
    {
        r &= 0x1f;
        if (!r || !clip(sp, b, o))
            return;
        std::vector<bool> top(n.size());
        for (size_t i = 0; i < n.size(); i++) {
            if (!n[i].alive)
                continue;
            if (self && n[i].sp == sp && meets(n[i].base, n[i].order, b, o))
                top[i] = true;
            int p = n[i].parent;
            if (!self && p >= 0 && n[size_t(p)].sp == sp &&
                meets(n[size_t(p)].base, n[size_t(p)].order, b, o) && meets(n[i].src, n[i].order, b, o))
                top[i] = true;
        }
        for (size_t i = 0; i < n.size(); i++)
            if (n[i].alive && descends(static_cast<int>(i), top))
                n[i].rights &= ~r;
        for (size_t i = 0; i < n.size(); i++)
            if (n[i].alive && !n[i].rights) {
                n[i].alive = false;
                for (size_t j = 0; j < n.size(); j++) {  // children hold no more than their parent
                    if (n[j].alive && n[j].parent == static_cast<int>(i)) {
                        EXPECT_EQ(n[j].rights, 0u);
                    }
                }
            }
    }

    Crd translate(int snd, Crd item, int rcv, Crd win) const
    {
        Crd::Type t = item.type();
        if (win.is_null() || win.type() != t)
            return Crd();
        u64 sb = item.base() % (t == Crd::OBJ ? u64{1} << 26 : ~u64{0});
        u64 wb = win.base();
        unsigned wo = win.order(), so = item.order();
        int m = cover(snd, sb);
        if (m < 0 || !clip(rcv, wb, wo))
            return Crd();
        u64 sel = sb;
        int a = -1;
        for (int cur = m; n[size_t(cur)].parent >= 0;) {
            sel = n[size_t(cur)].src + (sel - n[size_t(cur)].base);
            cur = n[size_t(cur)].parent;
            if (n[size_t(cur)].sp == rcv && meets(n[size_t(cur)].base, n[size_t(cur)].order, wb, wo)) {
                a = cur;
                break;
            }
        }
        if (a < 0 && n[size_t(m)].sp == rcv && meets(n[size_t(m)].base, n[size_t(m)].order, wb, wo))
            a = m, sel = sb;
        if (a < 0)
            return Crd();
        const Node &an = n[size_t(a)];
        if (an.order < wo)
            wb = an.base, wo = an.order;
        so = std::min(so, n[size_t(m)].order);
        unsigned mo = std::max(so, wo);
        if ((sel >> mo) != (wb >> mo))
            return Crd();
        return Crd(t, wb | sel, std::min(so, wo), n[size_t(m)].rights);
    }

    long alive() const
    {
        return std::count_if(n.begin(), n.end(), [](const Node &x) { return x.alive; });
    }
};

}  // namespace

class Mdb_model_test : public Mdb_test, public testing::WithParamInterface<unsigned>
{
};

TEST_P(Mdb_model_test, RandomOperationsAgreeWithTheReferenceModelAfterEveryStep)
{
    std::mt19937_64 rng(GetParam());
    auto rnd = [&](u64 n) { return rng() % n; };
    const int npd = 4;
    std::vector<Mdb_space *> sp;
    Model m;
    for (int i = 0; i < npd; i++) {
        Pd &p = new_pd();
        for (Mdb_space *s : {&p.obj, &p.mem, &p.pio}) {
            sp.push_back(s);
            m.type.push_back(s->type());
            m.bits.push_back(s->bits());
        }
    }
    auto sp_of = [&](int pd, Crd::Type t) { return pd * 3 + (t == Crd::OBJ ? 0 : t == Crd::MEM ? 1 : 2); };
    // The "kernel" (pd 0) holds a big memory node and all ports, as for H-bit delegations.
    ASSERT_EQ(root(*sp[1], 0, 10, 7, 0x100000), Mdb::Status::OK);
    m.n.push_back({1, 0, 10, 7, 0x100000, -1, 0, true});
    ASSERT_EQ(root(*sp[2], 0, 16, 7), Mdb::Status::OK);
    m.n.push_back({2, 0, 16, 7, 0, -1, 0, true});

    auto rand_type = [&] { return Crd::Type(1 + rnd(3)); };
    auto pick = [&](int space) {  // a random live node of a space, or -1
        std::vector<int> in;
        for (size_t i = 0; i < m.n.size(); i++)
            if (m.n[i].alive && m.n[i].sp == space)
                in.push_back(int(i));
        return in.empty() ? -1 : in[rnd(in.size())];
    };
    auto near = [&](int i, u64 &b, unsigned &o) {  // a range around part of node i
        const Model::Node &x = m.n[size_t(i)];
        o = std::min(31u, unsigned(std::max(0, int(x.order) + int(rnd(4)) - 2)));
        b = x.base + rnd(u64{1} << x.order);
    };
    long pieces_made = 0, translated = 0;
    auto rand_base = [&](Crd::Type t) -> u64 {
        u64 b = rnd(t == Crd::MEM ? 1024 : 256);
        if (t == Crd::OBJ && !rnd(8))
            b += rnd(4) << 26;  // selectors wrap
        return b;
    };
    auto rand_order = [&] { return rnd(10) ? unsigned(rnd(6)) : unsigned(rnd(32)); };
    auto rand_rights = [&] { return rnd(4) ? unsigned(rnd(32)) : 0x1fu; };
    u64 next_obj = 1;

    for (int step = 0; step < 6000; step++) {
        SCOPED_TRACE(step);
        Crd::Type t = rand_type();
        int pd = int(rnd(npd)), s = sp_of(pd, t);
        unsigned op = unsigned(rnd(100));
        bool starve = !rnd(10);
        long give = starve ? long(rnd(3)) : -1;
        rec.fail_at = !starve && !rnd(20) ? rec.mapped_calls + int(rnd(3)) : -1;
        int fail_rel = rec.fail_at < 0 ? 1 << 30 : rec.fail_at - rec.mapped_calls;

        if (op < 20) {  // insert_root
            unsigned o = t == Crd::OBJ ? 0 : unsigned(rnd(5));
            u64 b = rand_base(t) % (u64{1} << m.bits[size_t(s)]);
            b &= ~((u64{1} << o) - 1);
            unsigned r = 1 + unsigned(rnd(31));
            u64 pay = t == Crd::OBJ   ? object(static_cast<unsigned>(next_obj++))
                      : t == Crd::MEM ? rnd(1 << 20) << 4
                                      : b;
            budget = give;
            Mdb::Status st = root(*sp[size_t(s)], b, o, r, pay);
            budget = -1;
            Mdb::Status want = !m.free(s, b, o)             ? Mdb::Status::OCCUPIED
                               : give == 0 || fail_rel == 0 ? Mdb::Status::OOM
                                                            : Mdb::Status::OK;
            ASSERT_EQ(st, want);
            if (st == Mdb::Status::OK)
                m.n.push_back({s, b, o, r, pay, -1, 0, true});
        } else if (op < 70) {  // delegate
            int dpd = int(rnd(npd)), d = sp_of(dpd, t), from = rnd(4) ? pick(s) : -1;
            u64 sbase = rand_base(t);
            unsigned sord = rand_order();
            if (from >= 0)
                near(from, sbase, sord);
            Crd send(t, sbase, sord, rand_rights());
            unsigned word = std::min(31u, unsigned(std::max(0, int(sord) + int(rnd(5)) - 2)));
            if (!rnd(3))
                word = rand_order();
            u64 wbase = t == Crd::PIO && rnd(2) ? sbase : rand_base(t);  // I/O ranges must nest
            Crd win(rnd(25) ? t : rand_type(), wbase, word, rand_rights());
            u64 hot = rnd(2048);
            u64 sb, rb;
            unsigned o;
            unsigned a = send.rights() & win.rights();
            Crd want;
            std::vector<Model::Piece> ps;
            if (win.type() == t && a && m.plan(send, win, hot, sb, rb, o)) {
                want = Crd(t, rb, o, a);
                ps = m.pieces(s, sb, d, rb, o, a);
            }
            budget = give;
            Mdb::Result r = del(*sp[size_t(s)], send, *sp[size_t(d)], win, hot);
            budget = -1;
            ASSERT_EQ(r.crd, want);
            bool oom = !ps.empty() && ((give >= 0 && give < long(ps.size())) || fail_rel < int(ps.size()));
            ASSERT_EQ(r.status, oom ? Mdb::Status::OOM : Mdb::Status::OK);
            if (!oom) {
                m.apply(ps, d);
                pieces_made += long(ps.size());
            }
        } else if (op < 82) {  // revoke
            u64 b = rand_base(t);
            unsigned o = rand_order();
            if (int at = rnd(3) ? pick(s) : -1; at >= 0)
                near(at, b, o);
            Crd c(t, b, o, rand_rights());
            bool self = rnd(2);
            if (rnd(2))
                Mdb::revoke(*sp[size_t(s)], c, self, &rec);
            else {  // resumable, in small steps: the same result
                Mdb_walk w;
                Mdb::walk_begin(w, *sp[size_t(s)], c.base(), c.order(), c.rights(), self);
                for (bool done = false; !done;) {
                    u64 steps = 1 + rnd(5);
                    done = Mdb::walk(w, steps, &rec);
                }
            }
            m.revoke(s, c.base(), c.order(), c.rights(), self);
        } else if (op < 99) {  // translate
            int r = sp_of(int(rnd(npd)), t), at = pick(s);
            u64 b = rand_base(t);
            unsigned o = rand_order();
            if (at >= 0 && rnd(4)) {
                near(at, b, o);
                for (int up = m.n[size_t(at)].parent; up >= 0 && rnd(3); up = m.n[size_t(up)].parent)
                    r = m.n[size_t(up)].sp;  // mostly ask a PD the item came from
            }
            Crd item(t, b, o, rand_rights() | 1);
            Crd win(rnd(25) ? t : rand_type(), rand_base(t), 4 + unsigned(rnd(8)), 0x1f);
            if (!rnd(3))
                win = Crd::whole(t);
            Crd want = m.translate(s, item, r, win);
            ASSERT_EQ(Mdb::translate(*sp[size_t(s)], item, *sp[size_t(r)], win), want);
            translated += !want.is_null();
        } else {  // a PD loses a space
            Mdb::destroy(*sp[size_t(s)], &rec);
            m.revoke(s, 0, 63, 0x1f, true);
        }
        rec.fail_at = -1;

        // Compare: every model node exists with the same shape and parent, and nothing else does.
        ASSERT_EQ(live.load(), m.alive());
        for (auto &x : m.n) {
            if (!x.alive)
                continue;
            Mdb_node *n = sp[size_t(x.sp)]->lookup(x.base);
            ASSERT_NE(n, nullptr);
            ASSERT_EQ(n->base, x.base);
            ASSERT_EQ(n->order, x.order);
            ASSERT_EQ(n->rights, x.rights);
            ASSERT_EQ(n->payload, x.payload);
            if (x.parent < 0)
                ASSERT_EQ(n->parent, nullptr);
            else {
                const Model::Node &p = m.n[size_t(x.parent)];
                ASSERT_NE(n->parent, nullptr);
                ASSERT_EQ(n->parent->space, sp[size_t(p.sp)]);
                ASSERT_EQ(n->parent->base, p.base);
            }
            ASSERT_EQ(rec.state.at({sp[size_t(x.sp)], x.base}), x.rights);
        }
        ASSERT_EQ(long(rec.state.size()), m.alive());
        for (int k = 0; k < 8; k++) {
            int q = int(rnd(sp.size()));
            u64 sel = rnd(1100);
            int want = m.cover(q, sel);
            Mdb_node *got = sp[size_t(q)]->lookup(sel);
            ASSERT_EQ(got == nullptr, want < 0) << sel;
            if (got) {
                ASSERT_EQ(got->base, m.n[size_t(want)].base);
            }
        }
        if (step % 50 == 0)
            check_invariants(sp, live.load());
    }
    // The generator must reach interesting states, or the comparison proves little.
    EXPECT_GT(pieces_made, 600);
    EXPECT_GT(translated, 130);
    EXPECT_GT(rec.demoted_calls, 1100);
    RecordProperty("pieces", int(pieces_made));
    RecordProperty("translated", int(translated));
}

INSTANTIATE_TEST_SUITE_P(Seeds, Mdb_model_test, testing::Values(1u, 2u, 3u, 42u, 1234u));
