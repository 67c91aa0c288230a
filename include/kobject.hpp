/*
 * Base of every kernel object (PD, EC, SC, PT, SM). The reference count
 * counts capabilities and kernel references (e.g. an SC's EC, a portal's EC);
 * the object is destroyed when the last one goes (docs/objects.md).
 */
#pragma once

#include "abi/crd.hpp"
#include "assert.hpp"
#include "types.hpp"

class Quota;

class Kobject
{
    u32 refs = 0;
    bool gone = false;  // with assertions: put() dropped the last reference (objects start at 0)
    static inline u64 serials = 0;

  public:
    const Obj_type otype;
    /* Creation number, never reused: the kernel census lists the objects made after a mark
       (kstat, docs/debugging.md). */
    const u64 serial;
    Kobject *release_next = nullptr;  // waiting for its grace period (src/rcu.cpp)
    /* The quota that paid for the object (docs/quota.md: the caller of create_*; nullptr: the
       kernel's own); refunded when it is freed. */
    Quota *payer = nullptr;

    explicit Kobject(Obj_type t) : otype(t), serial(__atomic_fetch_add(&serials, 1, __ATOMIC_RELAXED)) {}
    /* The serial the next object gets. */
    static u64 next_serial() { return __atomic_load_n(&serials, __ATOMIC_RELAXED); }
    Kobject(const Kobject &) = delete;
    Kobject &operator=(const Kobject &) = delete;

    /*
     * A new object starts at 0 and its first get() comes with its first capability (or the
     * reference of a failed create_*). A get() after the last put() would revive an object that
     * is already retired and waiting for its destruction: an assertion, as is a put() below 0.
     */
    void get()
    {
        u32 old = __atomic_fetch_add(&refs, 1, __ATOMIC_RELAXED);
        assert(!__atomic_load_n(&gone, __ATOMIC_RELAXED));
        assert(old != ~u32{0});
    }
    /*
     * A reference on an object found by a lock-free lookup (an object-space capability read
     * without a lock): the grace period keeps its memory, but a revoke on another CPU may have
     * dropped its last reference meanwhile, and a get() would revive a retired object (use after
     * free, double free). False, and nothing taken, when the count is already 0: the object is
     * gone and the caller answers as if the capability were not there (BAD_CAP).
     */
    [[nodiscard]] bool try_get()
    {
        u32 old = __atomic_load_n(&refs, __ATOMIC_RELAXED);
        do {
            if (old == 0)
                return false;
            assert(old != ~u32{0});
        } while (
            !__atomic_compare_exchange_n(&refs, &old, old + 1, true, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED));
        return true;
    }
    /*
     * Undo a get() whose reference was never handed out (a capability that could not be
     * inserted, src/mapping.cpp): the count goes back and nothing else happens, even at 0. Only
     * for that: for a new object that is not published yet, whose creator then destroys it
     * (destroy_unpublished(), include/create.hpp), at 0 is right, and a put() would retire and
     * destroy it a first time (docs/objects.md); an existing object keeps the reference of the
     * capability it is copied from. Going below 0 is an assertion, as in put().
     */
    void unget()
    {
        u32 old = __atomic_fetch_sub(&refs, 1, __ATOMIC_RELAXED);
        assert(old != 0);
    }
    /* True when this dropped the last reference: the caller destroys the object. */
    [[nodiscard]] bool put()
    {
        u32 old = __atomic_fetch_sub(&refs, 1, __ATOMIC_ACQ_REL);
        assert(old != 0);
        if constexpr (ASSERTIONS)
            if (old == 1)
                __atomic_store_n(&gone, true, __ATOMIC_RELAXED);
        return old == 1;
    }
    u32 ref_count() const { return __atomic_load_n(&refs, __ATOMIC_RELAXED); }
};

/* A capability: an object and the rights this holder has on it (ABI 1.7, 2). */
struct Capability
{
    Kobject *obj = nullptr;
    unsigned perm = 0;

    bool null() const { return !obj || !perm; }

    /* The object if it has type T's tag and all of `need`, else nullptr (ABI 2: "(perm & P) == P"). */
    template <typename T> T *as(unsigned need) const
    {
        const Kobject *o = obj;  // spelled out (not null()): clang-analyzer then sees o checked
        if (!o || !perm || o->otype != T::TYPE || (perm & need) != need)
            return nullptr;
        return static_cast<T *>(obj);
    }
};
