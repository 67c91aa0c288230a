// host-testable
/*
 * Kernel-memory quotas (include/quota.hpp, docs/quota.md).
 */
#include "quota.hpp"
#include "placement_new.hpp"

void *(*Quota::alloc_mem)();
void (*Quota::free_mem)(void *);

static_assert(sizeof(Quota) <= Quota::SIZE, "the cost docs/quota.md names");

void Quota::init_root(u64 l)
{
    Lock_guard g(lock);
    limit = l;
    used = 0;
    pds = 0;
    root = true;
    ended = false;
    parent = nullptr;
}

bool Quota::charge(Quota *q, u64 bytes)
{
    if (!q)
        return true;
    Lock_guard g(q->lock);
    if (q->used > q->limit || bytes > q->limit - q->used)
        return false;
    q->used += bytes;
    return true;
}

void Quota::refund(Quota *q, u64 bytes)
{
    if (!q)
        return;
    bool last;
    {
        Lock_guard g(q->lock);
        assert(q->used >= bytes);
        q->used = q->used >= bytes ? q->used - bytes : 0;
        last = q->done();
        if (last)
            q->ended = true;
    }
    if (last)
        end(q);
}

void Quota::end(Quota *q)
{
    // Iterative: ending a quota refunds its parent's charge for it, which may end the parent.
    while (q) {
        Quota *p = q->parent;
        u64 l = q->limit;
        q->~Quota();
        free_mem(q);
        bool last;
        {
            Lock_guard g(p->lock);
            p->limit += l;
            assert(p->used >= SIZE);
            p->used -= SIZE;
            last = p->done();
            if (last)
                p->ended = true;
        }
        q = last ? p : nullptr;
    }
}

Quota *Quota::create(Quota *from, u64 l)
{
    if (!from || !alloc_mem)
        return nullptr;
    {
        Lock_guard g(from->lock);
        u64 free = from->used <= from->limit ? from->limit - from->used : 0;
        if (free < SIZE || l > free - SIZE)
            return nullptr;
        from->limit -= l;
        from->used += SIZE;
    }
    void *mem = alloc_mem();
    if (!mem) {
        Lock_guard g(from->lock);
        from->limit += l;
        from->used -= SIZE;
        return nullptr;
    }
    auto *q = new (mem) Quota;
    q->limit = l;
    q->parent = from;
    return q;
}

void Quota::attach(Quota *q)
{
    if (!q)
        return;
    Lock_guard g(q->lock);
    q->pds++;
}

void Quota::detach(Quota *q)
{
    if (!q)
        return;
    bool last;
    {
        Lock_guard g(q->lock);
        assert(q->pds);
        q->pds--;
        last = q->done();
        if (last)
            q->ended = true;
    }
    if (last)
        end(q);
}

bool Quota::move(Quota *from, Quota *to, u64 bytes)
{
    if (!from || !to)
        return false;
    if (from == to) {
        Lock_guard g(from->lock);
        return from->used <= from->limit && bytes <= from->limit - from->used;
    }
    Quota *a = from < to ? from : to, *b = from < to ? to : from;
    Lock_guard ga(a->lock);
    Lock_guard gb(b->lock);
    if (from->used > from->limit || bytes > from->limit - from->used || to->limit + bytes < to->limit)
        return false;
    from->limit -= bytes;
    to->limit += bytes;
    return true;
}

Quota::Info Quota::info() const
{
    Lock_guard g(lock);
    return Info{limit, used};
}
