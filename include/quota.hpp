/*
 * Kernel-memory quotas (docs/quota.md): every byte of kernel memory a PD causes is charged to
 * one Quota, and an allocation that does not fit the quota fails like one that does not fit the
 * pool (OOM), for that PD only.
 *
 * - A quota has a limit (the bytes it holds) and a use (the bytes charged to it). charge() fails
 *   when use would pass the limit; refund() gives bytes back.
 * - PDs made by create_pd share their creator's quota (`pds` counts them); a PD made with the
 *   quota extension gets a new quota whose limit is taken from its creator's (its creator's
 *   limit shrinks by as much: limits are moved, never made up), and whose structure is charged
 *   to the creator's quota.
 * - A quota ends when no PD uses it and nothing is charged to it any more (objects a PD made can
 *   outlive it: their charge keeps the quota): its limit goes back to the quota it came from,
 *   and so does the charge for its structure. So every byte returns to the root's quota in the
 *   end, which starts with the whole pool.
 * - move() takes free bytes (limit - use) from one quota and adds them to another's limit.
 *
 * All changes of one quota happen under its lock, a leaf lock (taken under every other lock of
 * the kernel, never the other way round); move() takes two, in address order. Pure logic,
 * host-tested (test/unit/test_quota.cpp): the structure's memory comes through two hooks.
 */
#pragma once

#include "spinlock.hpp"
#include "types.hpp"

class Quota
{
  public:
    /* Memory for a quota's structure (the kernel's slab cache; host tests plug in their own). */
    static void *(*alloc_mem)();
    static void (*free_mem)(void *);

    struct Info
    {
        u64 limit, used;
    };

    /* The root quota: the whole pool; it never ends. */
    void init_root(u64 limit);

    /* Charge bytes; false (nothing charged) when they do not fit. A null quota is the kernel's
       own memory (boot structures, the kernel PD): nothing is charged. */
    static bool charge(Quota *q, u64 bytes);
    /* Give charged bytes back; may end the quota (and its ancestors). */
    static void refund(Quota *q, u64 bytes);

    /* A new quota of `limit` bytes taken from `from` (plus its structure, charged to `from`),
       with no PD yet: attach() the PD that uses it. nullptr: `from` has not that much free. */
    static Quota *create(Quota *from, u64 limit);
    /* A PD starts or stops using q; the last detach may end it. */
    static void attach(Quota *q);
    static void detach(Quota *q);

    /* Move `bytes` of limit from `from` to `to`; false: `from` has not that much free. Moving
       within one quota changes nothing and succeeds. */
    static bool move(Quota *from, Quota *to, u64 bytes);

    Info info() const;

    /* Bytes a quota structure costs its parent (docs/quota.md, costs). */
    static constexpr u64 SIZE = 64;

  private:
    mutable Spinlock lock;
    u64 limit = 0;
    u64 used = 0;
    u32 pds = 0;
    bool root = false;
    bool ended = false;
    Quota *parent = nullptr;

    bool done() const { return !root && !pds && !used && !ended; }
    static void end(Quota *q);  // give q back to its parent and free it, up the chain
};
