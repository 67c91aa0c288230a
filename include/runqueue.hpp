/*
 * Run_queue: one CPU's ready SCs (ABI 6.2), pure logic.
 *
 * One circular doubly linked list per priority (0..127), head = next to run,
 * and a 128-bit bitmap of non-empty lists, so enqueue, removal and picking
 * the highest priority are O(1). The element type provides `next`, `prev`,
 * `prio` and `queued`; the caller holds the CPU's queue lock. Host unit tests
 * in test/unit/test_runqueue.cpp. Assertions: `queued` agrees with membership
 * (no element enters twice or leaves a queue it is not in), priorities are in
 * range, the neighbours' links point back, the bitmap matches the lists.
 */
#pragma once

#include "assert.hpp"
#include "types.hpp"

template <typename T> class Run_queue
{
  public:
    static constexpr unsigned PRIOS = 128;

    bool empty() const { return !(bits[0] | bits[1]); }

    /* Highest priority with a ready element, 0 when empty (0 is never a user priority). */
    unsigned highest() const
    {
        if (bits[1])
            return 127 - static_cast<unsigned>(__builtin_clzll(bits[1]));
        if (bits[0])
            return 63 - static_cast<unsigned>(__builtin_clzll(bits[0]));
        return 0;
    }

    /* Append t to its priority's list; at the head if `front` (keeps its turn). */
    void enqueue(T *t, bool front)
    {
        assert(!t->queued);
        assert(t->prio < PRIOS);
        T *&h = head[t->prio];
        t->queued = true;
        if (!h) {
            h = t->next = t->prev = t;
            bits[t->prio / 64] |= u64{1} << (t->prio % 64);
            return;
        }
        t->next = h;
        t->prev = h->prev;
        h->prev->next = t;
        h->prev = t;
        if (front)
            h = t;
    }

    void remove(T *t)
    {
        unsigned p = t->prio;
        assert(t->queued);
        assert(p < PRIOS && head[p] && (bits[p / 64] >> (p % 64) & 1));
        assert(t->next->prev == t && t->prev->next == t);
        if (t->next == t) {
            assert(head[p] == t);
            head[p] = nullptr;
            bits[p / 64] &= ~(u64{1} << (p % 64));
        } else {
            t->prev->next = t->next;
            t->next->prev = t->prev;
            if (head[p] == t)
                head[p] = t->next;
        }
        t->queued = false;
    }

    /* Take the next element to run: the head of the highest non-empty list. */
    T *pick()
    {
        if (empty())
            return nullptr;
        T *t = head[highest()];
        assert(t && t->prio == highest());
        remove(t);
        return t;
    }

  private:
    T *head[PRIOS] = {};
    u64 bits[2] = {};
};
