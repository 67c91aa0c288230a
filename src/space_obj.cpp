// host-testable
/*
 * Object space radix table (see include/space_obj.hpp).
 */
#include "space_obj.hpp"

void *(*Space_obj::alloc_page)();
void (*Space_obj::free_page)(void *);

namespace {
constexpr unsigned ENTRIES = 512;
}

u64 *Space_obj::slot(u64 sel, bool create)
{
    sel %= SELECTORS;
    auto &mid = top[sel >> (LEAF_BITS + MID_BITS)];
    u64 **m = __atomic_load_n(&mid, __ATOMIC_ACQUIRE);
    if (!m) {
        if (!create)
            return nullptr;
        auto fresh = static_cast<u64 **>(alloc_page());
        if (!fresh)
            return nullptr;
        for (unsigned i = 0; i < ENTRIES; i++)
            fresh[i] = nullptr;
        u64 **expected = nullptr;
        if (__atomic_compare_exchange_n(&mid, &expected, fresh, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            m = fresh;
        else {
            free_page(static_cast<void *>(fresh));  // another CPU was faster
            m = expected;
        }
    }
    auto &leaf = m[(sel >> LEAF_BITS) & (ENTRIES - 1)];
    u64 *l = __atomic_load_n(&leaf, __ATOMIC_ACQUIRE);
    if (!l) {
        if (!create)
            return nullptr;
        auto fresh = static_cast<u64 *>(alloc_page());
        if (!fresh)
            return nullptr;
        for (unsigned i = 0; i < ENTRIES; i++)
            fresh[i] = 0;
        u64 *expected = nullptr;
        if (__atomic_compare_exchange_n(&leaf, &expected, fresh, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            l = fresh;
        else {
            free_page(fresh);
            l = expected;
        }
    }
    return &l[sel & (ENTRIES - 1)];
}

Space_obj::Result Space_obj::insert(u64 sel, Kobject *obj, unsigned perm)
{
    perm &= PERM_MASK;
    if (reinterpret_cast<u64>(obj) & PERM_MASK)
        return Result::OCCUPIED;  // a misaligned object cannot be encoded (kernel bug)
    if (!obj || !perm)
        return Result::OK;  // a null capability occupies nothing
    u64 *s = slot(sel, true);
    if (!s)
        return Result::NO_MEMORY;
    u64 expected = 0;
    u64 v = reinterpret_cast<u64>(obj) | perm;
    return __atomic_compare_exchange_n(s, &expected, v, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)
               ? Result::OK
               : Result::OCCUPIED;
}

unsigned Space_obj::remove(u64 sel, const Kobject *obj)
{
    u64 *s = slot(sel, false);
    if (!s)
        return 0;
    u64 v = __atomic_load_n(s, __ATOMIC_ACQUIRE);
    while (v && reinterpret_cast<Kobject *>(v & ~PERM_MASK) == obj)
        if (__atomic_compare_exchange_n(s, &v, 0, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return static_cast<unsigned>(v & PERM_MASK);
    return 0;
}

bool Space_obj::restrict(u64 sel, const Kobject *obj, unsigned keep)
{
    u64 *s = slot(sel, false);
    if (!s)
        return false;
    u64 v = __atomic_load_n(s, __ATOMIC_ACQUIRE);
    while (v && reinterpret_cast<Kobject *>(v & ~PERM_MASK) == obj) {
        u64 n = (v & ~PERM_MASK) | (v & keep & PERM_MASK);
        if (!(n & PERM_MASK))
            n = 0;
        if (__atomic_compare_exchange_n(s, &v, n, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return true;
    }
    return false;
}

u64 Space_obj::next_used(u64 from, u64 end) const
{
    if (end > SELECTORS)
        end = SELECTORS;
    for (u64 sel = from; sel < end;) {
        u64 **m = __atomic_load_n(&top[sel >> (LEAF_BITS + MID_BITS)], __ATOMIC_ACQUIRE);
        if (!m) {
            sel = ((sel >> (LEAF_BITS + MID_BITS)) + 1) << (LEAF_BITS + MID_BITS);
            continue;
        }
        u64 *l = __atomic_load_n(&m[(sel >> LEAF_BITS) & (ENTRIES - 1)], __ATOMIC_ACQUIRE);
        if (!l) {
            sel = ((sel >> LEAF_BITS) + 1) << LEAF_BITS;
            continue;
        }
        if (__atomic_load_n(&l[sel & (ENTRIES - 1)], __ATOMIC_ACQUIRE))
            return sel;
        sel++;
    }
    return end;
}

void Space_obj::release_tables()
{
    for (auto &mid : top) {
        if (!mid)
            continue;
        for (unsigned i = 0; i < ENTRIES; i++)
            if (mid[i])
                free_page(mid[i]);
        free_page(static_cast<void *>(mid));
        mid = nullptr;
    }
}
