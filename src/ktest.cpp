/*
 * Command-line test hooks (include/ktest.hpp). The scenarios kernel-smap, kernel-smep,
 * kernel-stack-overflow and kernel-nmi-gs (test/qemu/scenarios.py) check what they print.
 */
#include "ktest.hpp"
#include "boot.hpp"
#include "console.hpp"
#include "cpu.hpp"
#include "kmem.hpp"
#include "memory.hpp"
#include "paging.hpp"
#include "x86.hpp"

namespace {

constexpr u64 USER_VA = 0x10000000;

/* A fresh page at USER_VA, user-accessible, in the kernel's table (CR3 at the end of boot). */
u8 *map_user_page()
{
    auto p = static_cast<u8 *>(Kmem::alloc_page());
    if (!p ||
        !Paging::map(Paging::kernel_pml4(), USER_VA, virt_to_phys(p), PAGE_SIZE, Pte::U | Pte::W, false))
        panic("KTEST: out of memory for a user page");
    p[0] = 0xc3;  // ret (written through the direct map)
    return p;
}

void unmap_user_page(u8 *p)
{
    Paging::unmap_range(Paging::kernel_pml4(), USER_VA, PAGE_SIZE);
    invlpg(reinterpret_cast<const void *>(USER_VA));
    Kmem::free(p, 0);
}

void smap()
{
    u8 *p = map_user_page();
    trace("KSMAP: reading the user page at %#lx from kernel mode, SMAP %s", USER_VA,
          get_cr4() & Cr4::SMAP ? "on" : "off");
    u64 v = *reinterpret_cast<volatile u64 *>(USER_VA);
    trace("KSMAP: read %#lx without a fault", v);
    unmap_user_page(p);
}

void smep()
{
    u8 *p = map_user_page();
    trace("KSMEP: calling the user page at %#lx from kernel mode, SMEP %s", USER_VA,
          get_cr4() & Cr4::SMEP ? "on" : "off");
    reinterpret_cast<void (*)()>(USER_VA)();
    trace("KSMEP: executed it without a fault");
    unmap_user_page(p);
}

[[noreturn]] void stack()
{
    u64 top = Cpu::current().kstack_top;
    trace("KSTACK: overflowing this CPU's kernel stack (top %#lx)", top);
    asm volatile("mov %0, %%rsp\n"
                 "1: push %%rax\n"
                 "jmp 1b"
                 :
                 : "r"(top)
                 : "memory");
    __builtin_unreachable();
}

void nmi()
{
    Cpu &c = Cpu::current();
    u64 n = c.nmis, g = c.nmis_user_gs;
    // An NMI in kernel mode with the kernel's GS base, then one as if it came right after syscall
    // or right before sysretq: the user's GS base (swapgs) and a user stack pointer.
    asm volatile("int $2" ::: "memory");
    asm volatile("swapgs\n"
                 "mov %%rsp, %%rbx\n"
                 "mov %0, %%rsp\n"
                 "int $2\n"
                 "mov %%rbx, %%rsp\n"
                 "swapgs"
                 :
                 : "r"(USER_ADDR - 64)
                 : "rbx", "memory");
    bool gs_ok = rdmsr(Msr::GS_BASE) == reinterpret_cast<u64>(&c) && rdmsr(Msr::KERNEL_GS_BASE) == 0;
    trace("KNMI: %llu NMIs taken, %llu of them with the user's GS base in kernel mode; GS base %s",
          static_cast<unsigned long long>(c.nmis - n), static_cast<unsigned long long>(c.nmis_user_gs - g),
          gs_ok ? "intact" : "WRONG");
}

}  // namespace

void Ktest::run()
{
    const Cmdline &c = Boot::cmdline;
    if (c.knmi)
        nmi();
    if (c.ksmap)
        smap();
    if (c.ksmep)
        smep();
    if (c.kstack)
        stack();
}
