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
 */
#pragma once

#include "assert.hpp"
#include "types.hpp"

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

  public:
    void lock()
    {
        assert(!held());  // recursive acquisition: would wait for itself forever
        u16 ticket = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED);
        while (__atomic_load_n(&serving, __ATOMIC_ACQUIRE) != ticket)
            __builtin_ia32_pause();
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
