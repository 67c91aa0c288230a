/*
 * The kernel's entries and exits in src/entry.S, and the C++ functions they call. A hypercall
 * goes syscall_entry -> ipc_fast (numbers 0, 1) or sm_fast (12), the fast paths, which leave
 * through ret_syscall when they can finish it alone -> else handle_syscall, the general path
 * (all in src/syscall.cpp) -> back to user mode through syscall_return (sysretq). Exceptions
 * and interrupts go idt_stubs -> handle_interrupt (src/exception.cpp) -> interrupt_return; NMI,
 * #DF and #MC go idt_stubs -> paranoid_entry -> handle_paranoid (a #MC from user mode continues as
 * an exception: handle_interrupt -> interrupt_return).
 * docs/architecture.md draws the whole path.
 */
#pragma once

#include "types.hpp"

struct Exc_frame;

extern "C" {
/* Entries (the CPU jumps there): syscall target (MSR LSTAR) and the IDT's 256 stubs. */
void syscall_entry();
extern char idt_stubs[];

/* Called by the entries. The fast paths return when the general path has to do the work. */
void ipc_fast(Exc_frame *f);
void sm_fast(Exc_frame *f);
void handle_syscall(Exc_frame *f);
void handle_interrupt(Exc_frame *f);
/* NMI, #DF, kernel-mode #MC (paranoid_entry, IST stacks); user_gs: it found the user's GS base. */
void handle_paranoid(Exc_frame *f, unsigned user_gs);

/* Exits to user mode with the frame at f: ret_syscall for a frame saved by a hypercall
   (sysretq), ret_user for any frame (iretq unless it was saved by a hypercall). */
[[noreturn]] void ret_syscall(Exc_frame *f);
[[noreturn]] void ret_user(Exc_frame *f);
}
