// host-testable
/*
 * Physical memory map sanitiser: turns the loader's memory map and the
 * kernel's reservations into a clean list of free page ranges.
 *
 * Free = (union of available ranges, shrunk to whole pages)
 *      - (union of non-available ranges and reservations, grown to whole pages)
 * so where ranges overlap, the more restrictive type always wins.
 */
#include "memmap.hpp"
#include "diag.hpp"

namespace {

// Highest page-aligned address; spans are clipped here so that rounding up cannot wrap.
constexpr u64 TOP = ~u64{0} & ~(PAGE_SIZE - 1);

template <typename T, typename Less> void insertion_sort(T *a, u32 n, Less less)
{
    for (u32 i = 1; i < n; i++) {
        T v = a[i];
        u32 j = i;
        for (; j > 0 && less(v, a[j - 1]); j--)
            a[j] = a[j - 1];
        a[j] = v;
    }
}

bool range_less(const Mem_range &a, const Mem_range &b)
{
    if (a.base != b.base)
        return a.base < b.base;
    if (a.size != b.size)
        return a.size < b.size;
    return a.type < b.type;
}

u64 end_of(const Mem_range &r) { return r.base + r.size; }

}  // namespace

void Memmap::add_range(u64 base, u64 size, u32 type)
{
    if (size == 0) {
        diag("memmap: ignoring empty range at %#lx (type %u)", base, type);
        return;
    }
    if (size > ~u64{0} - base) {
        diag("memmap: ignoring range %#lx+%#lx (type %u) that wraps around", base, size, type);
        return;
    }
    if (n_in == MAX_RANGES) {
        diag("memmap: too many ranges, dropping %#lx+%#lx (type %u)", base, size, type);
        if (type == MEM_AVAILABLE)
            dropped_available++;
        else
            dropped_restrictive++;
        return;
    }
    in[n_in++] = Mem_range{base, size, type};
}

void Memmap::reserve(u64 base, u64 size)
{
    if (size == 0)
        return;

    Span s{align_down(base, PAGE_SIZE), 0};
    if (base >= TOP || size > TOP - base) {
        if (size > ~u64{0} - base)
            diag("memmap: reserved range %#lx+%#lx wraps around, reserving to the top", base, size);
        s.end = TOP;
    } else {
        s.end = align_up(base + size, PAGE_SIZE);
    }

    // Fold into an overlapping or adjacent reservation first so the table fills slowly.
    for (u32 i = 0; i < n_rsv; i++)
        if (s.base <= rsv[i].end && rsv[i].base <= s.end) {
            rsv[i].base = s.base < rsv[i].base ? s.base : rsv[i].base;
            rsv[i].end = s.end > rsv[i].end ? s.end : rsv[i].end;
            return;
        }

    if (n_rsv == MAX_RESERVED) {
        diag("memmap: too many reserved ranges, cannot reserve %#lx+%#lx", base, size);
        dropped_restrictive++;
        return;
    }
    rsv[n_rsv++] = s;
}

void Memmap::report_overlaps()
{
    insertion_sort(in, n_in, range_less);

    u32 widest = 0;  // the range reaching furthest so far
    for (u32 i = 1; i < n_in; i++) {
        const Mem_range &a = in[widest], &b = in[i];
        if (b.base < end_of(a))
            diag("memmap: ranges [%#lx, %#lx) type %u and [%#lx, %#lx) type %u overlap, "
                 "the more restrictive type wins",
                 a.base, end_of(a), a.type, b.base, end_of(b), b.type);
        if (end_of(b) > end_of(a))
            widest = i;
    }
}

namespace {

// Sorts spans and merges overlapping or adjacent ones; returns the new count.

template <typename S> u32 merge_spans(S *s, u32 n)
{
    insertion_sort(s, n, [](const S &a, const S &b) { return a.base < b.base; });
    u32 out = 0;
    for (u32 i = 0; i < n; i++) {
        if (out && s[i].base <= s[out - 1].end) {
            if (s[i].end > s[out - 1].end)
                s[out - 1].end = s[i].end;
            continue;
        }
        s[out++] = s[i];
    }
    return out;
}

}  // namespace

// Adjacent available entries may split a page between them, so entries are
// merged before they are shrunk to whole pages.
u32 Memmap::collect_available()
{
    u32 n = 0;
    for (u32 i = 0; i < n_in; i++) {
        const Mem_range &r = in[i];
        if (r.type != MEM_AVAILABLE)
            continue;
        if ((r.base | r.size) & (PAGE_SIZE - 1))
            diag("memmap: available range [%#lx, %#lx) is not page-aligned", r.base, end_of(r));
        avail[n++] = Span{r.base, end_of(r)};
    }
    n = merge_spans(avail, n);

    u32 out = 0;
    for (u32 i = 0; i < n; i++) {
        u64 b = avail[i].base > TOP ? TOP : align_up(avail[i].base, PAGE_SIZE);
        u64 e = align_down(avail[i].end, PAGE_SIZE);
        if (b >= e) {
            diag("memmap: available range [%#lx, %#lx) holds no whole page, ignored", avail[i].base,
                 avail[i].end);
            continue;
        }
        avail[out++] = Span{b, e};
    }
    return out;
}

u32 Memmap::collect_blocked()
{
    u32 n = 0;
    for (u32 i = 0; i < n_in; i++) {
        const Mem_range &r = in[i];
        if (r.type == MEM_AVAILABLE)
            continue;
        u64 end = end_of(r);
        blocked[n++] = Span{align_down(r.base, PAGE_SIZE), end > TOP ? TOP : align_up(end, PAGE_SIZE)};
    }
    for (u32 i = 0; i < n_rsv; i++)
        blocked[n++] = rsv[i];
    return merge_spans(blocked, n);
}

void Memmap::subtract(u32 na, u32 nb)
{
    auto emit = [this](u64 b, u64 e) {
        free_list[n_free++] = Mem_range{b, e - b, MEM_AVAILABLE};
        total_free += e - b;
    };

    u32 j = 0;
    for (u32 i = 0; i < na; i++) {
        const Span &a = avail[i];
        ram += a.end - a.base;

        u64 cur = a.base;
        while (j < nb && blocked[j].end <= cur)
            j++;
        for (u32 k = j; k < nb && blocked[k].base < a.end; k++) {
            if (blocked[k].base > cur)
                emit(cur, blocked[k].base);
            if (blocked[k].end > cur)
                cur = blocked[k].end;
        }
        if (cur < a.end)
            emit(cur, a.end);
    }
}

bool Memmap::build()
{
    n_free = n_avail = 0;
    ram = total_free = 0;

    if (dropped_restrictive) {
        diag("memmap: %u reserved range(s) could not be recorded, refusing to hand out memory",
             dropped_restrictive);
        return false;
    }
    if (n_in == 0) {
        diag("memmap: no usable memory map (the loader provided none)");
        return false;
    }

    report_overlaps();
    u32 na = collect_available();
    if (na == 0) {
        diag("memmap: no usable memory map (no available RAM)");
        return false;
    }
    n_avail = na;
    subtract(na, collect_blocked());
    if (n_free == 0) {
        diag("memmap: no usable memory map (all RAM is reserved)");
        return false;
    }
    return true;
}

bool Memmap::is_ram(u64 base, u64 size) const
{
    if (size == 0 || size > ~u64{0} - base)
        return false;
    if (base + size > TOP)
        return false;
    u64 b = align_down(base, PAGE_SIZE), e = align_up(base + size, PAGE_SIZE);
    bool in_avail = false;
    for (u32 i = 0; i < n_avail && !in_avail; i++)  // sorted, merged: [b, e) must lie in one span
        in_avail = avail[i].base <= b && e <= avail[i].end;
    if (!in_avail)
        return false;
    for (u32 i = 0; i < n_in; i++)  // where the loader's types overlap, the restrictive one wins
        if (in[i].type != MEM_AVAILABLE && in[i].base < e && b < end_of(in[i]))
            return false;
    return true;
}

Memmap::Placement Memmap::place_kernel(u64 want, u64 min, u64 image_size, u64 align, u64 limit) const
{
    Placement best{0, 0, 0, 0};
    if (want < min)
        want = min;
    for (u32 i = 0; i < n_free; i++) {
        const Mem_range &r = free_list[i];
        if (r.base >= limit)
            break;
        u64 end = r.size > limit - r.base ? limit : r.base + r.size;
        if (end - r.base > best.largest)
            best.largest = end - r.base;
        if (end - r.base < image_size)
            continue;
        u64 image = align_down(end - image_size, align);
        if (image < r.base || image - r.base < min)
            continue;
        u64 pool = image - r.base < want ? image - r.base : want;
        if (pool >= best.size)  // ranges come sorted: on a tie the later (higher) one wins
            best = Placement{image - pool, pool, image, best.largest};
    }
    return best;
}
