/*
 * Grace periods for object destruction (see include/rcu.hpp).
 *
 * Two batches: `waiting` collects deferred objects; when no grace period runs,
 * it becomes the `current` batch and every CPU's quiescent counter is
 * recorded. The batch is due once every online CPU has entered from user mode
 * since (its counter moved), is idle, or is the CPU doing the poll (it is at a
 * safe point).
 */
#include "rcu.hpp"
#include "activate.hpp"
#include "console.hpp"
#include "cpu.hpp"
#include "kmem.hpp"
#include "kobject.hpp"
#include "mapping.hpp"
#include "objects.hpp"
#include "spinlock.hpp"

namespace {

Spinlock lock;
Kobject *waiting;                     // deferred, no grace period started for them yet
Kobject *current;                     // their grace period is running
void *waiting_pages, *current_pages;  // the same for pages (linked through their first word)
bool running;
u64 count;  // objects and pages in both batches

void *&link(void *page) { return *static_cast<void **>(page); }

bool grace_period_over(const Cpu &self)
{
    for (unsigned i = 0; i < Cpu::count; i++) {
        const Cpu &c = *Cpu::table[i];
        if (!c.online || &c == &self)
            continue;
        if (__atomic_load_n(&c.idle, __ATOMIC_ACQUIRE))
            continue;
        if (__atomic_load_n(&c.qs, __ATOMIC_ACQUIRE) != c.qs_snap)
            continue;
        return false;
    }
    return true;
}

}  // namespace

void Rcu::defer(Kobject *obj)
{
    Lock_guard g(lock);
    obj->release_next = waiting;
    waiting = obj;
    __atomic_add_fetch(&count, 1, __ATOMIC_RELAXED);  // decremented outside the lock
}

void Rcu::defer_page(void *page)
{
    Lock_guard g(lock);
    link(page) = waiting_pages;
    waiting_pages = page;
    __atomic_add_fetch(&count, 1, __ATOMIC_RELAXED);
}

u64 Rcu::pending() { return __atomic_load_n(&count, __ATOMIC_RELAXED); }

void Rcu::poll()
{
    Console::flush_suppressed();  // rate-limited console lines: say how many were dropped
    Mapping::settle();            // a piece of the teardown (retired ECs are deferred after theirs)
    if (!__atomic_load_n(&running, __ATOMIC_RELAXED) && !__atomic_load_n(&waiting, __ATOMIC_RELAXED) &&
        !__atomic_load_n(&waiting_pages, __ATOMIC_RELAXED))
        return;
    Cpu &self = Cpu::current();
    Kobject *due = nullptr;
    void *due_pages = nullptr;
    {
        Lock_guard g(lock);
        if (running && grace_period_over(self)) {
            due = current;
            due_pages = current_pages;
            current = nullptr;
            current_pages = nullptr;
            running = false;
        }
        if (!running && (waiting || waiting_pages)) {
            current = waiting;
            current_pages = waiting_pages;
            waiting = nullptr;
            waiting_pages = nullptr;
            running = true;
            for (unsigned i = 0; i < Cpu::count; i++) {
                Cpu &c = *Cpu::table[i];
                c.qs_snap = __atomic_load_n(&c.qs, __ATOMIC_ACQUIRE);
            }
        }
    }
    while (void *p = due_pages) {
        due_pages = link(p);
        __atomic_sub_fetch(&count, 1, __ATOMIC_RELAXED);
        Kmem::free(p, 0);
    }
    if (!due)
        return;
    // A PD about to go may still be this CPU's address space if no EC runs here.
    if (!self.ec)
        unload_space(self);
    while (Kobject *o = due) {
        due = o->release_next;
        o->release_next = nullptr;
        __atomic_sub_fetch(&count, 1, __ATOMIC_RELAXED);
        destroy_object(o);
    }
}
