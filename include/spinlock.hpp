/*
 * Ticket spinlock: fair (FIFO) under contention, which matters with many
 * CPUs hammering the console or an allocator. Works in the kernel and in
 * host tests (GCC __atomic builtins only). Interrupt state is the caller's
 * business: the kernel runs with interrupts off in kernel mode.
 */
#pragma once

#include "types.hpp"

class Spinlock
{
    u16 next = 0;
    u16 serving = 0;

  public:
    void lock()
    {
        u16 ticket = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED);
        while (__atomic_load_n(&serving, __ATOMIC_ACQUIRE) != ticket)
            __builtin_ia32_pause();
    }

    void unlock() { __atomic_store_n(&serving, static_cast<u16>(serving + 1), __ATOMIC_RELEASE); }

    bool is_locked() const
    {
        return __atomic_load_n(&next, __ATOMIC_RELAXED) != __atomic_load_n(&serving, __ATOMIC_RELAXED);
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
