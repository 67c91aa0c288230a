/*
 * Ticket spinlock: fair (FIFO) under contention, which matters with many
 * CPUs hammering the console or an allocator. Works in the kernel and in
 * host tests (GCC __atomic builtins only). Interrupt state is the caller's
 * business: the kernel runs with interrupts off in kernel mode.
 *
 * With assertions (debug builds, host tests) a lock records its owner: the
 * CPU (its Cpu structure, %gs:0) or the host thread. held() is then exact,
 * so code can assert(lock.held()); acquiring a lock this CPU holds already
 * (a certain deadlock) and releasing one it does not hold are assertions.
 * Without assertions held() only says that someone holds the lock.
 *
 * A CPU that has to wait notes the lock in its Cpu while it waits, for the
 * lockup detector's report (include/lockup.hpp); the uncontended path does
 * not.
 */
#pragma once

#include "assert.hpp"
#include "types.hpp"

#ifndef HOST_TEST
void lockup_waiting_for(const void *lock);  // src/lockup.cpp: notes it in this CPU's Cpu
#endif

class Spinlock
{
    u16 next = 0;
    u16 serving = 0;
#if ASSERTIONS
    const void *owner = nullptr;

    static const void *self()
    {
#ifdef HOST_TEST
        static thread_local char me;
        return &me;
#else
        const void *c;
        asm volatile("mov %%gs:0, %0" : "=r"(c));  // Cpu::self, set before the first lock
        return c;
#endif
    }
#endif

    static void waiting_for(const Spinlock *l)
    {
#ifdef HOST_TEST
        (void)l;
#else
        lockup_waiting_for(l);
#endif
    }

  public:
    void lock()
    {
        assert(!held());  // recursive acquisition: would wait for itself forever
        u16 ticket = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED);
        if (__atomic_load_n(&serving, __ATOMIC_ACQUIRE) != ticket) [[unlikely]] {
            waiting_for(this);
            while (__atomic_load_n(&serving, __ATOMIC_ACQUIRE) != ticket)
                __builtin_ia32_pause();
            waiting_for(nullptr);
        }
#if ASSERTIONS
        __atomic_store_n(&owner, self(), __ATOMIC_RELAXED);
#endif
    }

    void unlock()
    {
        assert(held());
#if ASSERTIONS
        __atomic_store_n(&owner, nullptr, __ATOMIC_RELAXED);
#endif
        __atomic_store_n(&serving, static_cast<u16>(serving + 1), __ATOMIC_RELEASE);
    }

    bool is_locked() const
    {
        return __atomic_load_n(&next, __ATOMIC_RELAXED) != __atomic_load_n(&serving, __ATOMIC_RELAXED);
    }

    /* For reports (lockup detector): the tickets and, with assertions, the owner (else null). */
    void snapshot(u16 &next_ticket, u16 &now_serving, const void *&holder) const
    {
        next_ticket = __atomic_load_n(&next, __ATOMIC_RELAXED);
        now_serving = __atomic_load_n(&serving, __ATOMIC_RELAXED);
#if ASSERTIONS
        holder = __atomic_load_n(&owner, __ATOMIC_RELAXED);
#else
        holder = nullptr;
#endif
    }

    /* This CPU (host: thread) holds the lock; without assertions: anyone does. For assert(). */
    bool held() const
    {
#if ASSERTIONS
        return __atomic_load_n(&owner, __ATOMIC_RELAXED) == self();
#else
        return is_locked();
#endif
    }
};

class Lock_guard
{
    Spinlock &l;

  public:
    explicit Lock_guard(Spinlock &s) : l(s) { l.lock(); }
    ~Lock_guard() { l.unlock(); }
    Lock_guard(const Lock_guard &) = delete;
    Lock_guard &operator=(const Lock_guard &) = delete;
};
