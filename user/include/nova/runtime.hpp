/*
 * The SDK's small runtime (user/lib): start-up state, exit, a bump
 * allocator, selector and virtual-address allocators, resources from the
 * kernel (ports, physical memory, kernel objects; root PD only), and helpers
 * for handler ECs, portals and child PDs.
 */
#pragma once

#include "abi/constants.hpp"
#include "abi/crd.hpp"
#include "abi/hip.hpp"
#include "abi/mtd.hpp"
#include "abi/utcb.hpp"
#include "nova/hypercalls.hpp"

// The program's entry point: crt0 calls it on the root EC's own stack with
// the HIP and the boot CPU number (ABI 9.4). Its return value goes to exit().
int main(const Hip *hip, unsigned cpu);

namespace nova {

using namespace Abi;

// isa-debug-exit codes of this project's QEMU tests (test/qemu/scenarios.py).
constexpr u32 EXIT_PASS = 0x10;
constexpr u32 EXIT_FAIL = 0x11;
constexpr u16 DEBUG_EXIT_PORT = 0xf4;  // QEMU: -device isa-debug-exit,iobase=0xf4,iosize=0x04

// ---- start-up state -------------------------------------------------------

const Hip *hip();
unsigned boot_cpu();
u64 self_pd();  // selector of our own PD: Abi::SEL_ROOT_PD in a root task

// Every register as the kernel started the program (ABI 9.4), recorded by crt0 first thing.
struct Start_regs
{
    u64 rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp, r8, r9, r10, r11, r12, r13, r14, r15, rflags;
};

const Start_regs &start_regs();

// ---- per-EC block -----------------------------------------------------------

/*
 * Every SDK stack is STACK_SIZE bytes, aligned to STACK_SIZE, with an Ec_tls
 * at its top; so the running EC finds its block (and UTCB) from rsp. The
 * root EC's stack comes from crt0, others' from alloc().
 */
constexpr size_t STACK_SIZE = 0x4000;  // must match user/lib/crt0.S

// A portal handler runs on its EC's stack; when it returns the runtime replies
// with whatever the handler left in its UTCB.
using Portal_handler = void (*)(u64 portal_id, Utcb &utcb);

struct Ec_tls
{
    Utcb *utcb;  // address of the EC's UTCB in its own PD
    Portal_handler handler;
    void *arg;  // free for the program
    u64 reserved;
};

static_assert(sizeof(Ec_tls) % 16 == 0);

inline Ec_tls *ec_tls()
{
    u64 sp;
    asm("mov %%rsp, %0" : "=r"(sp));
    return reinterpret_cast<Ec_tls *>((sp & ~(STACK_SIZE - 1)) + STACK_SIZE - sizeof(Ec_tls));
}

inline Utcb &utcb() { return *ec_tls()->utcb; }

// ---- ending ----------------------------------------------------------------

// Leave QEMU through isa-debug-exit (QEMU's exit status is code << 1 | 1). Returns if the port
// could not be obtained (the status says why), if QEMU has no such device, and on QEMU 9.1 and
// later, where the write only requests the shutdown. The first code written is final: later
// calls do not write.
Status exit_qemu(u32 code);

// exit_qemu(code), and if that returns, park(). In a launched program (nova/launch.hpp): the code
// goes to the launcher, then stop().
[[noreturn]] void exit(u32 code);

// Block the calling global EC for good (reply without a caller, ABI 7.2).
[[noreturn]] void park();
// Block the calling EC for good, a handler EC too (whose caller then waits for ever: a reply
// would let it run on), on a semaphore of its own; park() when there is none.
[[noreturn]] void stop();

// ---- allocators -----------------------------------------------------------

constexpr size_t HEAP_SIZE = size_t{256} * 1024;

// Bump allocation from a static arena; align must be a power of two. nullptr when exhausted.
void *alloc(size_t size, size_t align = 16);
size_t heap_free();

// Free capability selectors of our object space, from 0x100 upward, `count` aligned to the
// next power of two (so they can form one CRD range). 0 when exhausted.
u64 alloc_sel(unsigned count = 1);

// Unused virtual address range [VIRT_BASE, VIRT_END) for mappings and UTCBs. 0 when exhausted.
constexpr u64 VIRT_BASE = 0x100000000000ull;
constexpr u64 VIRT_END = 0x700000000000ull;
u64 alloc_virt(u64 size, u64 align = PAGE_SIZE);

// ---- resources from the kernel (H bit; root PD only, ABI 9.6) --------------
// These fail with BAD_PAR when the kernel's result CRD is null (nothing delegated).

// I/O ports base .. base + 2^order - 1 for our own PD.
Status request_ports(u16 base, unsigned order);

// Map physical [phys, phys + size) at virt, whole pages, in naturally aligned chunks; phys and virt
// must have the same offset within their page.
Status map_phys_at(u64 phys, u64 virt, u64 size, unsigned rights = Perm_mem::RW);

// Map physical memory at a free virtual address; returns the address of `phys` or nullptr.
void *map_phys(u64 phys, u64 size, unsigned rights = Perm_mem::RW);

// A kernel object capability (idle SC: ksel_idle_sc(cpu), GSI semaphore: ksel_gsi_sm(gsi)) at `sel`.
Status request_kernel_cap(u64 kernel_sel, u64 sel);

// ---- ECs, portals, child PDs ------------------------------------------------

// Entry of every SDK portal (crt0.S): finds the EC's Ec_tls, runs its handler, replies.
extern "C" void nova_portal_entry();

struct Handler_ec
{
    u64 sel;        // EC capability in our object space
    Ec_tls *tls;    // on its stack (allocated from our heap)
    u64 utcb_addr;  // UTCB address in the EC's PD
};

/*
 * A local EC in `pd` on `cpu` that runs `handler` for each portal call. Its
 * stack comes from our heap, so `pd` must see our heap at the same address
 * (our own PD, or a child made by create_child). `evt` is its event base.
 * OOM (this SDK's use of the status) when our heap or address range is exhausted.
 */
Status create_handler_ec(Handler_ec &out, u64 sel, u64 pd, unsigned cpu, Portal_handler handler, u64 evt = 0);

// A portal at `sel` to handler EC `ec`, entered at nova_portal_entry with `mtd`; `id` via pt_ctrl.
Status create_portal(u64 sel, u64 ec, u64 mtd = 0, u64 id = 0);

struct Child
{
    u64 pd, ec, pt;  // selectors in our object space
    u64 utcb_addr;   // the child EC's UTCB address (mapped in the child only)
};

/*
 * A child PD that shares our program image (text, data and heap at the same
 * addresses, by delegating our own memory nodes), one handler EC in it on
 * `cpu`, and a portal to that EC in our object space. A thread in a separate
 * PD for demos and tests; it is not isolated from us.
 */
Status create_child(Child &out, unsigned cpu, Portal_handler handler, u64 mtd = 0);

// Delegate our memory nodes in [virt, virt + size) to `pd` at the same addresses (pages we do not
// own, such as the holes between program segments, are skipped).
Status share_memory(u64 pd, u64 virt, u64 size);

/*
 * Exception portals for the root EC (event base 0): each exception 0..29
 * prints what happened (vector, rip, rsp, error code, cr2) and exits QEMU
 * with EXIT_FAIL. Handled by a new local EC on `cpu`.
 */
Status catch_exceptions(unsigned cpu);

/*
 * A thread in our own PD: a global EC on `cpu` with its own stack and UTCB, an SC of priority
 * `prio`, and a handler EC whose startup portal starts it in fn() (which must not return).
 * One start at a time (the start state is shared). False if a resource is missing.
 */
bool start_thread(unsigned cpu, unsigned prio, void (*fn)());

}  // namespace nova
