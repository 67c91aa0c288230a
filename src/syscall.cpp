/*
 * Hypercall dispatch. The object layer (PDs, ECs, portals, ...) is not built
 * yet: every hypercall but `reply` answers BAD_HYP, and `reply` without a
 * caller parks the EC as the ABI says (7.2). The first hypercall is logged so
 * the boot log shows that user mode reached the kernel.
 */
#include "console.hpp"
#include "cpu.hpp"
#include "idt.hpp"
#include "smp.hpp"

namespace {
bool logged;

enum Hypercall : unsigned { CALL = 0, REPLY = 1 };
enum Status : u64 { SUCCESS = 0, BAD_HYP = 3 };
} // namespace

extern "C" void handle_syscall(Exc_frame *f)
{
    unsigned nr = f->rdi & 0xf;
    if (!__atomic_exchange_n(&logged, true, __ATOMIC_RELAXED))
        trace("HYP: first hypercall from user mode: nr %u rdi %#lx rip %#lx", nr, f->rdi, f->rip);

    if (nr == REPLY)
        idle();   // no reply target: the EC blocks for good (ABI 7.2 step 3)

    f->rdi = BAD_HYP;
}
