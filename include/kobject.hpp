/*
 * Base of every kernel object (PD, EC, SC, PT, SM). The reference count
 * counts capabilities and kernel references (e.g. an SC's EC, a portal's EC);
 * the object is destroyed when the last one goes (docs/objects.md).
 */
#pragma once

#include "abi/crd.hpp"
#include "types.hpp"

class Kobject
{
    u32 refs = 0;

  public:
    const Obj_type otype;
    Kobject *release_next = nullptr;  // waiting for its grace period (src/rcu.cpp)

    explicit Kobject(Obj_type t) : otype(t) {}
    Kobject(const Kobject &) = delete;
    Kobject &operator=(const Kobject &) = delete;

    void get() { __atomic_add_fetch(&refs, 1, __ATOMIC_RELAXED); }
    /* True when this dropped the last reference: the caller destroys the object. */
    [[nodiscard]] bool put() { return __atomic_sub_fetch(&refs, 1, __ATOMIC_ACQ_REL) == 0; }
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
        if (null() || obj->otype != T::TYPE || (perm & need) != need)
            return nullptr;
        return static_cast<T *>(obj);
    }
};
