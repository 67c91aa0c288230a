/*
 * Minimal root task for the boot foundation: it proves that user mode runs
 * and reaches the kernel. It makes one hypercall with the invalid number 15,
 * checks the status (BAD_HYP = 3, ABI 1.6), then parks itself with `reply`
 * (ABI 7.2). A wrong status ends in ud2, which the kernel reports as a
 * killed EC with vector 6.
 */
typedef unsigned long mword;

static inline mword hypercall(mword rdi)
{
    asm volatile("syscall" : "+D"(rdi) : : "rcx", "r11", "memory");
    return rdi;
}

extern "C" void main()
{
    if (hypercall(0xf) != 3)
        asm volatile("ud2");
    hypercall(1);  // reply without a caller: blocks for good
    asm volatile("ud2");
}
