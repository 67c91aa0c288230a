// host-testable
/*
 * Buddy allocator of physical frames; the design is described in include/buddy.hpp.
 */
#include "buddy.hpp"
#include "diag.hpp"
#include "string.hpp"

constinit Buddy Buddy::allocator;

namespace {

constexpr u64 MAX_PHYS = u64{1} << 52;  // architectural limit of physical addresses

constexpr u64 pages(unsigned order) { return u64{1} << order; }

// The largest naturally aligned block starting at frame f that fits into n frames.
unsigned fit_order(u64 f, u64 n)
{
    unsigned o = 63u - static_cast<unsigned>(__builtin_clzll(n));
    if (f && static_cast<unsigned>(__builtin_ctzll(f)) < o)
        o = static_cast<unsigned>(__builtin_ctzll(f));
    return o < Buddy::MAX_ORDER ? o : Buddy::MAX_ORDER;
}

}  // namespace

void Buddy::init(u64 virt_offset)
{
    Lock_guard g(lock);
    if (virt_offset & (PAGE_SIZE - 1))
        diag("buddy: direct-map offset %#lx is not page aligned", virt_offset);
    offset = virt_offset;
    nregions = 0;
    exhausted_reported = false;
    for (auto &h : heads)
        h = nullptr;
    st = Kmem_stats{};
}

bool Buddy::add_range(u64 phys, u64 size)
{
    u64 end = phys + size;
    if (size == 0 || end < phys || end > MAX_PHYS) {
        diag("buddy: invalid range %#lx size %#lx ignored", phys, size);
        return false;
    }
    u64 first = align_up(phys, PAGE_SIZE) >> PAGE_BITS;
    u64 last = align_down(end, PAGE_SIZE) >> PAGE_BITS;
    u64 frames = last > first ? last - first : 0;
    u64 meta_pages = (frames + PAGE_SIZE - 1) / PAGE_SIZE;  // one byte per frame
    if (frames <= meta_pages) {
        diag("buddy: range %#lx size %#lx too small, ignored", phys, size);
        return false;
    }

    Lock_guard g(lock);
    Region r{first, frames, static_cast<u8 *>(phys_to_virt(first << PAGE_BITS))};
    if (!insert_region(r))
        return false;
    memset(r.meta, 0, frames);
    st.meta_pages += meta_pages;
    st.managed_pages += frames - meta_pages;

    Region &reg = regions[find(first)];
    for (u64 f = first + meta_pages; f < last;) {
        unsigned o = fit_order(f, last - f);
        release(reg, f, o);
        f += pages(o);
    }
    return true;
}

// Keep regions sorted by base so find() can bisect; reject overlaps.
bool Buddy::insert_region(const Region &r)
{
    if (nregions == MAX_REGIONS) {
        diag("buddy: more than %u ranges, range at %#lx ignored", MAX_REGIONS, r.base << PAGE_BITS);
        return false;
    }
    unsigned i = nregions;
    while (i && regions[i - 1].base > r.base)
        i--;
    bool clash_below = i && regions[i - 1].base + regions[i - 1].frames > r.base;
    bool clash_above = i < nregions && r.base + r.frames > regions[i].base;
    if (clash_below || clash_above) {
        diag("buddy: range at %#lx overlaps a known range, ignored", r.base << PAGE_BITS);
        return false;
    }
    for (unsigned j = nregions; j > i; j--)
        regions[j] = regions[j - 1];
    regions[i] = r;
    nregions++;
    return true;
}

int Buddy::find(u64 frame) const
{
    unsigned lo = 0, hi = nregions;  // find the first region above frame
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (regions[mid].base <= frame)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || frame - regions[lo - 1].base >= regions[lo - 1].frames)
        return -1;
    return static_cast<int>(lo - 1);
}

void Buddy::push(Region &r, u64 frame, unsigned order)
{
    r.meta[frame - r.base] = static_cast<u8>(FREE | order);
    Block *b = block(frame);
    b->prev = nullptr;
    b->next = heads[order];
    if (b->next)
        b->next->prev = b;
    heads[order] = b;
    st.free_blocks[order]++;
    st.free_pages += pages(order);
}

// Take a free block off its list; the caller rewrites its state byte.
void Buddy::unlink(u64 frame, unsigned order)
{
    Block *b = block(frame);
    if (b->prev)
        b->prev->next = b->next;
    else
        heads[order] = b->next;
    if (b->next)
        b->next->prev = b->prev;
    st.free_blocks[order]--;
    st.free_pages -= pages(order);
}

// Free a block, merging it with its buddy as long as the buddy is a free block of the same order.
void Buddy::release(Region &r, u64 frame, unsigned order)
{
    for (; order < MAX_ORDER; order++) {
        u64 buddy = frame ^ pages(order);
        if (buddy - r.base >= r.frames || r.meta[buddy - r.base] != (FREE | order))
            break;
        unlink(buddy, order);
        r.meta[buddy - r.base] = 0;
        r.meta[frame - r.base] = 0;
        frame &= ~pages(order);
    }
    push(r, frame, order);
}

void *Buddy::alloc(unsigned order, Fill fill)
{
    if (order > MAX_ORDER) {
        diag("buddy: allocation of order %u exceeds the maximum %u", order, MAX_ORDER);
        return nullptr;
    }
    void *p = nullptr;
    bool report = false;
    Kmem_stats now;
    {
        Lock_guard g(lock);
        unsigned k = order;
        while (k <= MAX_ORDER && !heads[k])
            k++;
        if (k > MAX_ORDER) {
            report = !exhausted_reported;
            exhausted_reported = true;
            now = st;
        } else {
            u64 frame = virt_to_phys(heads[k]) >> PAGE_BITS;
            int i = find(frame);
            if (i < 0 || regions[i].meta[frame - regions[i].base] != (FREE | k)) {
                // Someone wrote to a free block: quarantine the list rather than hand out garbage.
                diag("buddy: free list of order %u corrupted at %p, dropped", k,
                     static_cast<void *>(heads[k]));
                heads[k] = nullptr;
                return nullptr;
            }
            Region &r = regions[i];
            unlink(frame, k);
            while (k > order) {
                k--;
                push(r, frame + pages(k), k);
            }
            r.meta[frame - r.base] = static_cast<u8>(USED | order);
            p = block(frame);
        }
    }
    if (!p) {
        // The first time memory runs out, say so (outside the lock): on a small machine the root
        // task may not even get its console any more, and the callers' OOM would go unseen.
        // Once only: the leak test exhausts the kernel pool on purpose.
        if (report)
            diag("buddy: exhausted: no free block of %llu KiB (%llu of %llu KiB free); what needs kernel "
                 "memory "
                 "fails from now on (reported once; is the machine too small?)",
                 static_cast<unsigned long long>((PAGE_SIZE << order) >> 10),
                 static_cast<unsigned long long>(now.free_pages * PAGE_SIZE >> 10),
                 static_cast<unsigned long long>(now.managed_pages * PAGE_SIZE >> 10));
        return nullptr;
    }
    if (fill != NOFILL)
        memset(p, fill == FILL_0 ? 0 : 0xff, PAGE_SIZE << order);
    return p;
}

bool Buddy::free(void *p, unsigned order)
{
    u64 phys = virt_to_phys(p);
    if (order > MAX_ORDER || (phys & ((PAGE_SIZE << order) - 1))) {
        diag("buddy: free of %p order %u: bad order or misaligned", p, order);
        return false;
    }
    Lock_guard g(lock);
    u64 frame = phys >> PAGE_BITS;
    int i = find(frame);
    if (i < 0 || regions[i].meta[frame - regions[i].base] != (USED | order)) {
        diag("buddy: free of %p order %u: not an allocated block (double free?)", p, order);
        return false;
    }
    release(regions[i], frame, order);
    return true;
}

bool Buddy::allocated(const void *p, unsigned order) const
{
    u64 phys = virt_to_phys(p);
    if (order > MAX_ORDER || (phys & ((PAGE_SIZE << order) - 1)))
        return false;
    Lock_guard g(lock);
    u64 frame = phys >> PAGE_BITS;
    int i = find(frame);
    return i >= 0 && regions[i].meta[frame - regions[i].base] == (USED | order);
}

Kmem_stats Buddy::stats() const
{
    Lock_guard g(lock);
    Kmem_stats s = st;
    s.used_pages = s.managed_pages - s.free_pages;
    return s;
}
