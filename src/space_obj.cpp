// host-testable
/*
 * Object space radix table (see include/space_obj.hpp).
 */
#include "space_obj.hpp"

void *(*Space_obj::alloc_page)(Quota *);
void (*Space_obj::free_page)(void *, Quota *);
void (*Space_obj::retire_page)(void *, Quota *);

namespace {
constexpr unsigned ENTRIES = 512;

u64 *fresh_table(Quota *q)
{
    auto t = static_cast<u64 *>(Space_obj::alloc_page(q));
    if (t)
        for (unsigned i = 0; i < ENTRIES; i++)
            t[i] = 0;
    return t;
}
}  // namespace

u64 *Space_obj::slot(u64 sel) const
{
    sel %= SELECTORS;
    u64 m = __atomic_load_n(&top[sel >> (LEAF_BITS + MID_BITS)], __ATOMIC_ACQUIRE);
    if (!(m & PRESENT))
        return nullptr;
    u64 l = __atomic_load_n(&table(m)[(sel >> LEAF_BITS) & (ENTRIES - 1)], __ATOMIC_ACQUIRE);
    if (!(l & PRESENT))
        return nullptr;
    return &table(l)[sel & (ENTRIES - 1)];
}

u64 *Space_obj::make_slot(u64 sel)
{
    if (u64 *s = slot(sel))
        return s;
    sel %= SELECTORS;
    u64 &mid = top[sel >> (LEAF_BITS + MID_BITS)];
    u64 m = __atomic_load_n(&mid, __ATOMIC_ACQUIRE);
    // Both tables first, then publish: a lack of memory leaves nothing behind.
    u64 *new_mid = m & PRESENT ? nullptr : fresh_table(quota);
    u64 *leaf = (m & PRESENT) || new_mid ? fresh_table(quota) : nullptr;
    if (!leaf) {
        if (new_mid)
            free_page(new_mid, quota);
        return nullptr;
    }
    u64 *mt = new_mid ? new_mid : table(m);
    u64 idx = (sel >> LEAF_BITS) & (ENTRIES - 1);
    __atomic_store_n(&mt[idx], reinterpret_cast<u64>(leaf) | PRESENT, __ATOMIC_RELEASE);  // count 0
    u64 base = new_mid ? reinterpret_cast<u64>(new_mid) | PRESENT : m;
    __atomic_store_n(&mid, base + COUNT_ONE, __ATOMIC_RELEASE);  // one more leaf
    return &leaf[sel & (ENTRIES - 1)];
}

void Space_obj::filled(u64 sel)
{
    sel %= SELECTORS;
    u64 *mt = table(top[sel >> (LEAF_BITS + MID_BITS)]);
    u64 &l = mt[(sel >> LEAF_BITS) & (ENTRIES - 1)];
    __atomic_store_n(&l, l + COUNT_ONE, __ATOMIC_RELEASE);
}

void Space_obj::emptied(u64 sel)
{
    sel %= SELECTORS;
    u64 &l = table(top[sel >> (LEAF_BITS + MID_BITS)])[(sel >> LEAF_BITS) & (ENTRIES - 1)];
    __atomic_store_n(&l, l - COUNT_ONE, __ATOMIC_RELEASE);
    if (count(l))
        return;
    // The leaf is empty: keep it, let the one kept before go.
    u64 old = kept_leaf;
    kept_leaf = sel >> LEAF_BITS;
    if (old != NONE && old != kept_leaf)
        release_leaf(old);
}

void Space_obj::release_leaf(u64 leaf)
{
    u64 &mid = top[leaf >> MID_BITS];
    if (!(mid & PRESENT))
        return;
    u64 *mt = table(mid);
    u64 &l = mt[leaf & (ENTRIES - 1)];
    if (!(l & PRESENT) || count(l))
        return;  // gone, or in use again
    u64 *lt = table(l);
    __atomic_store_n(&l, u64{0}, __ATOMIC_RELEASE);
    retire_page(lt, quota);
    __atomic_store_n(&mid, mid - COUNT_ONE, __ATOMIC_RELEASE);
    if (count(mid))
        return;
    u64 old = kept_mid;  // the middle table is empty: keep it, let the one kept before go
    kept_mid = leaf >> MID_BITS;
    if (old != NONE && old != kept_mid)
        release_mid(old);
}

void Space_obj::release_mid(u64 m)
{
    u64 &mid = top[m];
    if (!(mid & PRESENT) || count(mid))
        return;
    u64 *mt = table(mid);
    __atomic_store_n(&mid, u64{0}, __ATOMIC_RELEASE);
    retire_page(mt, quota);
}

void Space_obj::trim()
{
    u64 leaf = kept_leaf;
    kept_leaf = NONE;
    if (leaf != NONE)
        release_leaf(leaf);  // may keep its middle table
    u64 mid = kept_mid;
    kept_mid = NONE;
    if (mid != NONE)
        release_mid(mid);
}

Space_obj::Result Space_obj::insert(u64 sel, Kobject *obj, unsigned perm)
{
    perm &= PERM_MASK;
    if (reinterpret_cast<u64>(obj) & PERM_MASK)
        return Result::OCCUPIED;  // a misaligned object cannot be encoded (kernel bug)
    if (!obj || !perm)
        return Result::OK;  // a null capability occupies nothing
    u64 *s = make_slot(sel);
    if (!s)
        return Result::NO_MEMORY;
    u64 expected = 0;
    u64 v = reinterpret_cast<u64>(obj) | perm;
    if (!__atomic_compare_exchange_n(s, &expected, v, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return Result::OCCUPIED;  // (its tables hold that capability: none is new)
    filled(sel);
    return Result::OK;
}

unsigned Space_obj::remove(u64 sel, const Kobject *obj)
{
    u64 *s = slot(sel);
    if (!s)
        return 0;
    u64 v = __atomic_load_n(s, __ATOMIC_ACQUIRE);
    while (v && reinterpret_cast<Kobject *>(v & ~PERM_MASK) == obj)
        if (__atomic_compare_exchange_n(s, &v, 0, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            emptied(sel);
            return static_cast<unsigned>(v & PERM_MASK);
        }
    return 0;
}

bool Space_obj::restrict(u64 sel, const Kobject *obj, unsigned keep)
{
    u64 *s = slot(sel);
    if (!s)
        return false;
    u64 v = __atomic_load_n(s, __ATOMIC_ACQUIRE);
    while (v && reinterpret_cast<Kobject *>(v & ~PERM_MASK) == obj) {
        u64 n = (v & ~PERM_MASK) | (v & keep & PERM_MASK);
        if (!(n & PERM_MASK))
            n = 0;
        if (__atomic_compare_exchange_n(s, &v, n, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            if (!n)
                emptied(sel);
            return true;
        }
    }
    return false;
}

u64 Space_obj::next_used(u64 from, u64 end) const
{
    if (end > SELECTORS)
        end = SELECTORS;
    for (u64 sel = from; sel < end;) {
        u64 m = __atomic_load_n(&top[sel >> (LEAF_BITS + MID_BITS)], __ATOMIC_ACQUIRE);
        if (!(m & PRESENT)) {
            sel = ((sel >> (LEAF_BITS + MID_BITS)) + 1) << (LEAF_BITS + MID_BITS);
            continue;
        }
        u64 l = __atomic_load_n(&table(m)[(sel >> LEAF_BITS) & (ENTRIES - 1)], __ATOMIC_ACQUIRE);
        if (!(l & PRESENT)) {
            sel = ((sel >> LEAF_BITS) + 1) << LEAF_BITS;
            continue;
        }
        if (__atomic_load_n(&table(l)[sel & (ENTRIES - 1)], __ATOMIC_ACQUIRE))
            return sel;
        sel++;
    }
    return end;
}

u64 Space_obj::tables() const
{
    u64 n = 0;
    for (u64 m : top)
        if (m & PRESENT)
            n += 1 + count(m);
    return n;
}

void Space_obj::release_tables()
{
    kept_leaf = kept_mid = NONE;
    for (u64 &m : top) {
        if (!(m & PRESENT))
            continue;
        u64 *mt = table(m);
        for (unsigned i = 0; i < ENTRIES; i++)
            if (mt[i] & PRESENT)
                free_page(table(mt[i]), quota);
        free_page(mt, quota);
        m = 0;
    }
}
