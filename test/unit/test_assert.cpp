/*
 * assert() (include/assert.hpp) fails where an invariant is broken: death tests that break one
 * on purpose in each kind of asserted code the host can run (locks, reference counts, run
 * queues, the AVL index, the mapping database) and expect the process to end with the
 * "Assertion "<expr>" failed at <file>:<line>:<function>" line. That the same code passes
 * everywhere else is what the other tests show.
 */
#include <cstdlib>
#include <gtest/gtest.h>
#include <memory>
#include <thread>
#include <vector>

#include "assert.hpp"
#include "kobject.hpp"
#include "mdb.hpp"
#include "mdb_space.hpp"
#include "runqueue.hpp"
#include "spinlock.hpp"

namespace {

// The tests fork; "threadsafe" re-executes the binary for the child, which ASan prefers.
class AssertDeath : public testing::Test
{
  protected:
    void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(AssertDeath, MessageNamesExpressionFileLineAndFunction)
{
    int x = 1;
    EXPECT_DEATH(assert(x == 2), "Assertion \"x == 2\" failed at .*test_assert.cpp:[0-9]+:TestBody");
    assert(x == 1);  // a true one does nothing
}

TEST_F(AssertDeath, SpinlockRecursiveAcquire)
{
    Spinlock l;
    l.lock();
    EXPECT_TRUE(l.held());
    EXPECT_DEATH(l.lock(), "Assertion \"!held\\(\\)\" failed");
    l.unlock();
    EXPECT_FALSE(l.held());
}

TEST_F(AssertDeath, SpinlockReleaseOfALockNotHeld)
{
    Spinlock l;
    EXPECT_DEATH(l.unlock(), "Assertion \"held\\(\\)\" failed");
}

TEST(Assert, SpinlockHeldIsPerThread)
{
    Spinlock l;
    l.lock();
    bool other = true;
    std::thread([&] { other = l.held(); }).join();
    EXPECT_FALSE(other);
    EXPECT_TRUE(l.held());
    l.unlock();
}

struct Obj : Kobject
{
    Obj() : Kobject(Obj_type::SM) {}
};

TEST_F(AssertDeath, KobjectPutBelowZero)
{
    Obj o;
    o.get();
    EXPECT_TRUE(o.put());
    EXPECT_DEATH((void)o.put(), "Assertion \"old != 0\" failed");
}

TEST_F(AssertDeath, KobjectGetAfterTheLastPut)
{
    Obj o;
    o.get();  // from 0: a new object's first reference is fine
    o.get();
    EXPECT_FALSE(o.put());
    EXPECT_TRUE(o.put());
    EXPECT_DEATH(o.get(), "Assertion \"!__atomic_load_n\\(&gone, __ATOMIC_RELAXED\\)\" failed");
}

// unget() undoes a get() without retiring the object: at 0 it may be taken again (the creator's
// destroy_unpublished() after a failed insert, src/mapping.cpp); below 0 is an assertion.
TEST_F(AssertDeath, KobjectUngetToZeroThenBelow)
{
    Obj o;
    o.get();
    o.unget();
    EXPECT_EQ(o.ref_count(), 0u);
    o.get();  // not gone: unget() is no last put()
    EXPECT_TRUE(o.put());
    Obj p;
    EXPECT_DEATH(p.unget(), "Assertion \"old != 0\" failed");
}

struct Item
{
    Item *next = nullptr, *prev = nullptr;
    unsigned prio = 1;
    bool queued = false;
};

TEST_F(AssertDeath, RunQueueEnqueueTwice)
{
    Run_queue<Item> q;
    Item a;
    q.enqueue(&a, false);
    EXPECT_DEATH(q.enqueue(&a, false), "Assertion \"!t->queued\" failed");
}

TEST_F(AssertDeath, RunQueueRemoveOfAnElementNotQueued)
{
    Run_queue<Item> q;
    Item a, b;
    q.enqueue(&a, false);
    EXPECT_DEATH(q.remove(&b), "Assertion \"t->queued\" failed");
    b.queued = true;  // the flag lies: the links give it away
    b.next = b.prev = &a;
    EXPECT_DEATH(q.remove(&b), "Assertion \"t->next->prev == t && t->prev->next == t\" failed");
}

TEST_F(AssertDeath, RunQueuePriorityOutOfRange)
{
    Run_queue<Item> q;
    Item a;
    a.prio = Run_queue<Item>::PRIOS;
    EXPECT_DEATH(q.enqueue(&a, false), "Assertion \"t->prio < PRIOS\" failed");
}

TEST_F(AssertDeath, SpaceInsertOfAMisalignedNode)
{
    Mdb_space s(Crd::MEM);
    Mdb_node n;
    n.space = &s;
    n.base = 0x101;
    n.order = 1;
    n.rights = 1;
    EXPECT_DEATH(s.insert(&n), "Assertion \"x->space == this .* failed");
}

std::vector<std::unique_ptr<Mdb_node>> *pool;
void *alloc_node(Mdb_space &)
{
    pool->push_back(std::make_unique<Mdb_node>());
    return pool->back().get();
}
void free_node(void *, Mdb_space *) {}

// An observer must not call Mdb (the lock is held): the recursive acquisition is caught.
struct Reentrant : Mdb_observer
{
    Mdb_space *s = nullptr;
    bool mapped(Mdb_node &) override
    {
        (void)Mdb::lookup(*s, 0);
        return true;
    }
    void demoted(Mdb_node &, unsigned) override {}
    void skipped(Mdb_space &, u64, unsigned, Skip) override {}
};

class MdbDeath : public AssertDeath
{
    void *(*saved_alloc)(Mdb_space &) = Mdb::alloc_node;
    void (*saved_free)(void *, Mdb_space *) = Mdb::free_node;

  protected:
    std::vector<std::unique_ptr<Mdb_node>> nodes;

    void SetUp() override
    {
        AssertDeath::SetUp();
        pool = &nodes;
        Mdb::alloc_node = alloc_node;
        Mdb::free_node = free_node;
    }
    void TearDown() override
    {
        Mdb::alloc_node = saved_alloc;
        Mdb::free_node = saved_free;
    }
};

TEST_F(MdbDeath, ObserverCallingMdb)
{
    Mdb_space s(Crd::MEM);
    Reentrant r;
    r.s = &s;
    EXPECT_DEATH(Mdb::insert_root(s, 0, 0, 7, 0, &r), "Assertion \"!held\\(\\)\" failed");
}

// A child with a right its parent lacks breaks "rights only shrink down the tree": the next
// revocation that walks it says so.
TEST_F(MdbDeath, ChildWithMoreRightsThanItsParent)
{
    Mdb_space a(Crd::MEM), b(Crd::MEM);
    ASSERT_EQ(Mdb::insert_root(a, 0, 4, 7, 0x100, nullptr), Mdb::Status::OK);
    auto res = Mdb::delegate(a, Crd::mem(0, 4, 5), b, Crd::mem(0x20, 4, 0x1f), 0, nullptr);
    ASSERT_EQ(res.status, Mdb::Status::OK);
    Mdb_node *child = b.lookup(0x20);
    ASSERT_NE(child, nullptr);
    ASSERT_EQ(child->rights, 5);
    child->parent->rights = 3;  // the corruption: the parent lost X behind the database's back
    EXPECT_DEATH(Mdb::revoke(a, Crd::mem(0, 4, 1), true, nullptr),  // child 5 -> 4, parent 3 -> 2
                 "Assertion \"!x->parent \\|\\| !\\(x->rights & ~x->parent->rights\\)\" failed");
}

}  // namespace
