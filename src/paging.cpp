// host-testable
/*
 * Page-table walker and the kernel's MMIO window.
 */
#include "paging.hpp"
#include "kmem.hpp"
#include "memory.hpp"
#include "spinlock.hpp"
#include "string.hpp"
#include "x86.hpp"

bool Paging::have_1g;
void (*Paging::retire_table)(void *page, Quota *q);

namespace {

u64 *master;
Spinlock mmio_lock;
u64 mmio_next = MMIO_WINDOW;

unsigned index(u64 va, unsigned level) { return (va >> (12 + 9 * level)) & 0x1ff; }

using Paging::Amd;

/*
 * Entry at `level` (0 = 4 KiB PTE) for va, creating intermediate tables. *owner: the entry that
 * points to its table (nullptr for the PML4).
 */
template <class F> u64 *walk(u64 *pml4, u64 va, unsigned level, bool create, u64 **owner, Quota *q = nullptr)
{
    u64 *table = pml4, *up = nullptr;
    for (unsigned l = 3; l > level; l--) {
        u64 &e = table[index(va, l)];
        if (!(e & Pte::P)) {
            if (!create)
                return nullptr;
            auto t = static_cast<u64 *>(Kmem::alloc_page(q));
            if (!t)
                return nullptr;
            F::store(e, F::table(virt_to_phys(t), l));  // the new table is empty: count 0
            if (up && F::count(*up) < 512)
                F::add(*up, true);
        } else if (e & Pte::PS)
            return nullptr;  // a large page is in the way; callers do not split
        up = &e;
        table = phys_to_virt<u64>(e & Pte::ADDR);
    }
    *owner = up;
    return &table[index(va, level)];
}

}  // namespace

/* The count of the table e points to: bit 63 of its entries 0-9 (include/paging.hpp). */
u64 Amd::count(u64 const &e)
{
    const u64 *t = phys_to_virt<u64>(e & Pte::ADDR);
    u64 n = 0;
    for (unsigned i = 0; i < 10; i++)
        n |= (t[i] >> 63) << i;
    return n;
}

void Amd::add(u64 &e, bool up)
{
    u64 *t = phys_to_virt<u64>(e & Pte::ADDR);
    u64 n = count(e) + (up ? 1 : u64{0} - 1);
    for (unsigned i = 0; i < 10; i++)
        t[i] = (t[i] & ~KEEP) | ((n >> i) & 1) << 63;
}

template <class F> bool Paging::map(u64 *pml4, u64 virt, u64 phys, u64 size, u64 flags, bool large, Quota *q)
{
    while (size) {
        unsigned level = 0;
        if (large) {
            for (unsigned l = have_1g ? 2 : 1; l > 0; l--) {
                u64 s = u64{1} << (12 + 9 * l);
                if (!(virt & (s - 1)) && !(phys & (s - 1)) && size >= s) {
                    level = l;
                    break;
                }
            }
        }
        u64 *owner;
        u64 *e = walk<F>(pml4, virt, level, true, &owner, q);
        if (!e)
            return false;
        u64 s = u64{1} << (12 + 9 * level);
        if (!(*e & Pte::P) && owner && F::count(*owner) < 512)
            F::add(*owner, true);
        F::store(*e, phys | flags | Pte::P | (level ? Pte::PS : 0));
        virt += s;
        phys += s;
        size -= s;
    }
    return true;
}

/* Leaf entry for virt (any level) and its size; nullptr when nothing is mapped. */
static u64 *leaf(u64 *pml4, u64 virt, u64 &size)
{
    u64 *table = pml4;
    for (unsigned l = 3;; l--) {
        u64 &e = table[index(virt, l)];
        size = u64{1} << (12 + 9 * l);
        if (!(e & Pte::P))
            return nullptr;
        if (l == 0 || (e & Pte::PS))
            return &e;
        table = phys_to_virt<u64>(e & Pte::ADDR);
    }
}

template <class F> void Paging::unmap_range(u64 *pml4, u64 virt, u64 size)
{
    for (u64 end = virt + size; virt < end;) {
        u64 s;
        u64 *e = leaf(pml4, virt, s);
        if (e)
            F::store(*e, 0);
        virt = align_down(virt, s) + s;
    }
}

namespace {

/* The entry at `level` for va; path[l] for the levels above it too. nullptr if a table on the way
   is missing (or a large page is in the way). */
u64 *entry_at(u64 *pml4, u64 va, unsigned level, u64 *path[4])
{
    u64 *table = pml4;
    for (unsigned l = 3;; l--) {
        path[l] = &table[index(va, l)];
        if (l == level)
            return path[l];
        u64 e = *path[l];
        if (!(e & Pte::P) || (e & Pte::PS))
            return nullptr;
        table = phys_to_virt<u64>(e & Pte::ADDR);
    }
}

template <class F> bool emptied(u64 *pml4, u64 va, unsigned lvl, Paging::Keep &keep);

/* Unhook the table of level lvl covering va (its entries are level-lvl entries) if it is empty. */
template <class F> bool release(u64 *pml4, u64 va, unsigned lvl, Paging::Keep &keep)
{
    u64 *path[4];
    u64 *up = entry_at(pml4, va, lvl + 1, path);
    if (!up || !(*up & Pte::P) || (*up & Pte::PS) || F::count(*up))
        return false;  // gone already, or in use again
    void *t = phys_to_virt<u64>(*up & Pte::ADDR);
    F::store(*up, 0);
    Paging::retire_table(t, keep.quota);
    if (lvl + 2 <= 3) {  // the table holding `up` has one entry less
        u64 &owner = *path[lvl + 2];
        if (u64 n = F::count(owner); n > 1)
            F::add(owner, false);
        else if (n == 1) {
            F::add(owner, false);
            emptied<F>(pml4, va, lvl + 1, keep);
        }
    }
    return true;
}

/* The table of level lvl covering va has no entries left: keep it, let the one kept before go. */
template <class F> bool emptied(u64 *pml4, u64 va, unsigned lvl, Paging::Keep &keep)
{
    u64 span = u64{1} << (12 + 9 * (lvl + 1));  // what one table of this level covers
    u64 old = keep.va[lvl];
    if (old != Paging::Keep::NONE && align_down(old, span) == align_down(va, span))
        return false;  // the kept one, emptied again
    keep.va[lvl] = va;
    return old != Paging::Keep::NONE && release<F>(pml4, old, lvl, keep);
}

}  // namespace

template <class F> bool Paging::unmap(u64 *pml4, u64 virt, u64 size, Keep &keep)
{
    bool freed = false;
    for (u64 end = virt + size; virt < end;) {
        u64 *path[4];  // path[l]: the entry at level l for virt
        u64 *table = pml4;
        unsigned l = 3;
        for (;; l--) {
            path[l] = &table[index(virt, l)];
            u64 e = *path[l];
            if (!(e & Pte::P) || l == 0 || (e & Pte::PS))
                break;
            table = phys_to_virt<u64>(e & Pte::ADDR);
        }
        u64 s = u64{1} << (12 + 9 * l);
        if ((*path[l] & Pte::P) && l < 3) {
            F::store(*path[l], 0);
            u64 &up = *path[l + 1];  // its table has one entry less
            if (u64 n = F::count(up); n > 1)
                F::add(up, false);
            else if (n == 1) {  // (0: never counted, kept)
                F::add(up, false);
                freed |= emptied<F>(pml4, virt, l, keep);
            }
        }
        virt = align_down(virt, s) + s;
    }
    return freed;
}

template <class F> bool Paging::trim(u64 *pml4, Keep &keep)
{
    bool freed = false;
    for (unsigned lvl = 0; lvl < 3; lvl++) {  // a page table first: its directory may empty then
        u64 va = keep.va[lvl];
        keep.va[lvl] = Keep::NONE;
        if (va != Keep::NONE)
            freed |= release<F>(pml4, va, lvl, keep);
    }
    return freed;
}

template <class F> void Paging::protect(u64 *pml4, u64 virt, u64 size, bool writable)
{
    for (u64 end = virt + size; virt < end;) {
        u64 s;
        u64 *e = leaf(pml4, virt, s);
        if (e)
            *e = writable ? *e | F::W : *e & ~F::W;
        virt = align_down(virt, s) + s;
    }
}

void Paging::clear_leaf_bits(u64 *pml4, u64 virt, u64 size, u64 bits)
{
    for (u64 end = virt + size; virt < end;) {
        u64 s;
        if (u64 *e = leaf(pml4, virt, s))
            *e &= ~bits;
        virt = align_down(virt, s) + s;
    }
}

bool Paging::range_empty(const u64 *pml4, u64 virt, u64 size)
{
    // The entry that would hold a page of this size must be absent (no table, no page below it).
    unsigned level = size >= (u64{1} << 30) ? 2 : 1;
    const u64 *table = pml4;
    for (unsigned l = 3; l > level; l--) {
        u64 e = table[index(virt, l)];
        if (!(e & Pte::P))
            return true;
        if (e & Pte::PS)
            return false;
        table = phys_to_virt<u64>(e & Pte::ADDR);
    }
    return !(table[index(virt, level)] & Pte::P);
}

u64 Paging::lookup(const u64 *pml4, u64 virt, u64 *flags)
{
    const u64 *table = pml4;
    for (unsigned l = 3;; l--) {
        u64 e = table[index(virt, l)];
        if (!(e & Pte::P))
            return ~u64{0};
        if (l == 0 || (e & Pte::PS)) {
            u64 s = u64{1} << (12 + 9 * l);
            if (flags)
                *flags = e & ~Pte::ADDR;
            return (e & Pte::ADDR & ~(s - 1)) | (virt & (s - 1));
        }
        table = phys_to_virt<u64>(e & Pte::ADDR);
    }
}

// The walker for both formats (the host one is what it was before formats: the same code).
template bool Paging::map<Paging::Host>(u64 *, u64, u64, u64, u64, bool, Quota *);
template bool Paging::map<Amd>(u64 *, u64, u64, u64, u64, bool, Quota *);
template void Paging::unmap_range<Paging::Host>(u64 *, u64, u64);
template void Paging::unmap_range<Amd>(u64 *, u64, u64);
template bool Paging::unmap<Paging::Host>(u64 *, u64, u64, Keep &);
template bool Paging::unmap<Amd>(u64 *, u64, u64, Keep &);
template bool Paging::trim<Paging::Host>(u64 *, Keep &);
template bool Paging::trim<Amd>(u64 *, Keep &);
template void Paging::protect<Paging::Host>(u64 *, u64, u64, bool);
template void Paging::protect<Amd>(u64 *, u64, u64, bool);

u64 *Paging::kernel_pml4() { return master; }
void Paging::set_kernel_pml4(u64 *p) { master = p; }

void *Mmio::map(u64 phys, u64 size)
{
    u64 base = align_down(phys, PAGE_SIZE);
    u64 len = align_up(phys + size, PAGE_SIZE) - base;
    Lock_guard g(mmio_lock);
    u64 va = mmio_next;
    if (!Paging::map(master, va, base, len, Pte::W | Pte::PCD | Pte::PWT | Pte::G, false))
        return nullptr;
    mmio_next += len + PAGE_SIZE;  // guard page between mappings
    return reinterpret_cast<void *>(va + (phys - base));
}
