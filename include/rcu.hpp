/*
 * Deferred destruction of kernel objects (read-copy-update style).
 *
 * Hypercalls look capabilities up without locks, and other CPUs may hold a
 * pointer to an object while its last reference goes. Such an object is
 * therefore not destroyed at once: release() hands it to defer(), and it is
 * destroyed only after a grace period, i.e. once every CPU has passed a
 * quiescent state -- entered the kernel from user mode (Cpu::qs) or sat in the
 * idle loop (Cpu::idle) -- since the object became unreachable. Between two
 * quiescent states a CPU runs one kernel section that keeps no unreferenced
 * object pointer beyond its end.
 *
 * poll() advances grace periods and destroys what is due. It runs at safe
 * points only (scheduler decisions, the idle loop, timer ticks from user
 * mode), never with a lock held.
 */
#pragma once

#include "types.hpp"

class Kobject;

namespace Rcu {
void defer(Kobject *obj);
/*
 * A kernel page that lock-free readers may still see (an emptied object-space or page table,
 * unhooked already): freed with Kmem after a grace period. Its first word becomes the link,
 * a page-aligned pointer, which such a reader takes for an empty entry or slot.
 */
void defer_page(void *page);
void poll();
/* Objects and pages waiting for their grace period (kernel statistics). */
u64 pending();
}  // namespace Rcu
