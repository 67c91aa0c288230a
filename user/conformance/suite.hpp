/*
 * ABI conformance suite (docs/conformance.md): the test harness shared by
 * every test file. A test is a function `void f(Test &t)` in a section table;
 * it reports through t.fail()/t.skip() (the CHECK macros return on the first
 * failure), allocates its selectors, stacks and mappings through `t` so they
 * are revoked and reused after it, and never blocks without a deadline.
 */
#pragma once

#include "nova/elf.hpp"
#include "nova/nova.hpp"

using namespace nova;

// ---- tests and their tables ---------------------------------------------------

class Test;
using Test_fn = void (*)(Test &);

struct Test_case
{
    const char *id;  // checklist number (e.g. "D.41") or a descriptive name
    const char *desc;
    Test_fn fn;
    unsigned limit_s;  // watchdog limit; 0 = the default
};

struct Test_section
{
    const Test_case *cases;
    unsigned count;
};

// Each t_*.cpp defines one section; suite.cpp runs them in this order.
extern const Test_section sec_boot_early, sec_entry, sec_boot, sec_hip, sec_create, sec_ipc, sec_deleg,
    sec_event, sec_sched, sec_helping, sec_xcpu, sec_irq, sec_hostile, sec_system, sec_oom, sec_quota,
    sec_harden, sec_bounded;

class Test
{
  public:
    static constexpr unsigned MAX_OWNED = 48;

    const Test_case *tc = nullptr;
    bool failed = false, skipped = false;
    char msg[320] = {};
    char note_text[160] = {};

    void fail(const char *fmt, ...) __attribute__((format(printf, 2, 3)));
    void skip(const char *fmt, ...) __attribute__((format(printf, 2, 3)));
    void note(const char *fmt, ...) __attribute__((format(printf, 2, 3)));

    // Fresh object selectors (count rounded up to a power of two, aligned to it); the range is
    // revoked with self after the test. 0 (and a failure) when the selector space is exhausted.
    u64 sel(unsigned count = 1);

    // Revoke this memory range (our virtual pages) with self after the test.
    void own_mem(u64 virt, unsigned order);

    // Revoke this range (any type) with self after the test.
    void own(Crd crd);

    // A 16 KiB stack block from the suite's pool, returned after the test (nullptr: fails).
    Ec_tls *stack();

    void cleanup();

  private:
    struct Owned
    {
        Crd crd;
        Ec_tls *stack;
    };
    Owned owned[MAX_OWNED] = {};
    unsigned n_owned = 0;
    bool add(Crd crd, Ec_tls *stack);
};

#define CHECK(cond, ...)                                                                                     \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            t.fail(__VA_ARGS__);                                                                             \
            return;                                                                                          \
        }                                                                                                    \
    } while (0)

// Expect a status; the message names the operation, the expected and the actual status.
#define CHECK_ST(expr, want, what)                                                                           \
    do {                                                                                                     \
        Status st_ = (expr);                                                                                 \
        if (st_ != (want)) {                                                                                 \
            t.fail("%s: expected %s, got %s", what, status_name(want), status_name(st_));                    \
            return;                                                                                          \
        }                                                                                                    \
    } while (0)

// Wait (sleeping 1 ms at a time) until `v` reaches `want`; false after `ms`.
bool wait_for(volatile u64 &v, u64 want, u64 ms);

// A helper returned false after calling t.fail(): stop the test.
#define REQUIRE(expr)                                                                                        \
    do {                                                                                                     \
        if (!(expr))                                                                                         \
            return;                                                                                          \
    } while (0)

// ---- facts about the machine ------------------------------------------------------

constexpr unsigned NO_CPU = ~0u;

extern unsigned tsc_khz;  // HIP freq_tsc, or a fallback when the HIP has none

u64 rdtsc();
inline u64 ms_ticks(u64 ms) { return ms * tsc_khz; }
inline u64 deadline_ms(u64 ms) { return rdtsc() + ms_ticks(ms); }

bool cpu_online(unsigned cpu);
unsigned other_cpu();  // an online CPU other than the boot CPU, or NO_CPU

// Waits `ms` milliseconds on a semaphore nobody ups (false: the kernel did not time out).
bool sleep_ms(u64 ms);

// CPUID leaf `leaf`/`sub`: eax, ebx, ecx, edx.
void cpuid(u32 leaf, u32 sub, u32 out[4]);

// The module command line names options for the suite (docs/conformance.md): "iommu".
bool module_option(const char *name);

// A test that needs `mib` MiB of kernel memory (mappings by the hundred thousand, ECs by the
// thousand) calls this first: false, with the test skipped, when the kernel's memory (the HIP's
// hypervisor region: pool and image) is smaller, as on the small machines of docs/boot.md.
bool needs_kernel_memory(Test &t, u64 mib);

// The first multiboot module (the root task): physical range, and its image mapped read-only.
struct Module
{
    u64 phys, size;
    const u8 *image;  // nullptr when it could not be mapped
};
const Module &root_module();

// Every page of [addr, addr + size) has a memory capability in our PD (pd_ctrl lookup).
bool is_mapped(const void *addr, u64 size);

// ---- capabilities --------------------------------------------------------------------

constexpr unsigned OBJ_ALL = 0x1f;

// The node a lookup in our own PD reports for one selector (0 when none).
u64 lookup_obj(u64 sel);
u64 lookup_mem(u64 page);

// Object capability `from` -> `to` in our own PD with window rights `rights` (a pd_ctrl delegate).
Delegate_result delegate_obj(u64 from, u64 to, unsigned rights = OBJ_ALL, u64 src_pd = SEL_ROOT_PD,
                             u64 dst_pd = SEL_ROOT_PD);

// Delegate with a check that a capability arrived; fails the test otherwise.
bool copy_cap(Test &t, u64 from, u64 to, unsigned rights);

// Is the semaphore `sm` at count 0? (a down with a past deadline times out). Consumes one count if not.
Status try_down(u64 sm);

// ---- memory ----------------------------------------------------------------------------

// A free physical RAM page from the top of the largest available region (never reused), or 0.
u64 scratch_phys();

// A fresh RAM page mapped RW at a new address of ours (unmapped after the test), or nullptr.
void *scratch_page(Test &t);

// Share our program image (text, data, stacks) with `pd` at the same addresses.
Status share_image(u64 pd);

// ---- probes (asm.S): one access that may fault; the exception portal skips it -------

extern "C" {
bool probe_read64(const void *addr, u64 *out);
bool probe_write8(void *addr, u8 value);
bool probe_in8(u16 port);
bool probe_out8(u16 port, u8 value);
}

bool is_probe_fault(u64 rip, u64 *fixup);

// Register image for the raw hypercall/exception harness (asm.S): nova::Raw_regs (nova/regs.h).

extern "C" {
// Load every register from `in` (RFLAGS via popfq; rsp stays), run the instruction, store every
// register and RFLAGS right after it into `out`. Root EC only (uses globals).
void raw_syscall(const Raw_regs *in, Raw_regs *out);
void raw_int3(const Raw_regs *in, Raw_regs *out);
void raw_ud2(const Raw_regs *in, Raw_regs *out);
void raw_div(const Raw_regs *in, Raw_regs *out);  // divq %r10: #DE when in->r10 = 0
void raw_hlt(const Raw_regs *in, Raw_regs *out);  // hlt: #GP(0) in user mode
extern char raw_syscall_ret[], raw_int3_ret[], raw_ud2_insn[], raw_ud2_ret[], raw_bad_landing[];
extern char raw_div_insn[], raw_div_ret[], raw_hlt_insn[], raw_hlt_ret[];
extern u64 raw_bad_landing_hit;
extern u64 raw_saved_rsp;  // rsp at the instruction of the last raw_* call

// Portal entry that stores every register at entry into pe_in (pe_count++), then loads pe_out
// (rsp included) and replies. Lets tests see the exact callee entry state (7.1).
void pe_entry();
extern Raw_regs pe_in, pe_out;
extern u64 pe_count;

// Reply forever: where an EC that faulted unexpectedly is sent (local: answers its caller).
void abort_stub();

// Stackless ECs (H.every-cpu): cpu_probe_start is a startup portal entry for a local EC whose
// stack pointer is its UTCB (replies rip = cpu_probe_entry); cpu_probe_entry runs in a global EC
// whose stack pointer is a Cpu_probe: it stores CPUID leaves, sets `ran`, ups `sm` and parks.
void cpu_probe_start();
void cpu_probe_entry();

// x87/SSE state: xmm0-15, MXCSR, x87 control word and one x87 register.
struct Fpu_image;
void fpu_load(const Fpu_image *in);
void fpu_store(Fpu_image *out);
}

struct Cpu_probe
{
    u64 sm;      // semaphore the EC ups
    u64 leaf0;   // CPUID leaf 0 eax (highest leaf)
    u64 leaf1;   // CPUID leaf 1 ebx (initial APIC ID in bits 31:24)
    u64 x2apic;  // CPUID leaf 0xb edx (x2APIC ID), untouched without leaf 0xb
    u64 ran;     // set to 1 by the EC
};
static_assert(sizeof(Cpu_probe) == 5 * sizeof(u64));

struct Fpu_image
{
    u64 xmm[16][2];
    u32 mxcsr;
    u16 fcw;
    u16 pad;
    u64 st0;  // a double, loaded with fldl
};
static_assert(sizeof(Fpu_image) == 0x110);

// ---- exception handling ------------------------------------------------------------

// Every exception state bit (ABI 5, note 3) except FPU.
constexpr u64 MTD_EXC =
    Mtd::GPR_ACDB | Mtd::GPR_BSD | Mtd::GPR_R8_R15 | Mtd::RSP | Mtd::RIP_LEN | Mtd::RFLAGS | Mtd::QUAL;

// What the last event message delivered to a service portal looked like.
struct Exc_record
{
    u64 count;
    u64 id;  // portal id = event number
    u64 items, mtd;
    u64 rip, rsp, rflags, qual0, qual1;
    u64 rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15;
};

extern Exc_record last_exc;
extern u64 recall_count;    // recall messages seen (event 31)
extern u64 unexpected_exc;  // faults no test expected

/*
 * A test may install a hook that sees each exception message first (the
 * service EC runs it, with the message in `u`); it returns true when it
 * prepared the reply itself. Reset after every test.
 */
using Exc_hook = bool (*)(u64 vector, Utcb &u);
extern Exc_hook exc_hook;

// The service event block of `cpu` (exception and startup portals to that CPU's service EC),
// or ~0 when it could not be set up. Built on first use.
constexpr u64 NO_EVT = ~u64{0};
u64 service_evt(unsigned cpu);

// Root EC's exception and recall portals at selectors 0..31 (event base 0).
extern bool root_portals;
bool install_root_portals();

// ---- ECs ------------------------------------------------------------------------------

// A local EC in `pd` running `handler` for every call (SDK portal entry); UTCB at a new address.
struct Worker
{
    u64 ec;
    Ec_tls *tls;
    u64 utcb;
};
bool make_worker(Test &t, Worker &w, u64 pd, unsigned cpu, Portal_handler handler, u64 evt,
                 void *arg = nullptr);

// A portal to `ec` at the SDK portal entry (or `ip`) with an id.
bool make_portal(Test &t, u64 &pt, u64 ec, u64 mtd, u64 id, u64 ip = 0);

// A global EC with an SC in our PD running fn(thread) on its own stack. When fn returns the
// thread ups `done` and parks. `evt` defaults to the service block of `cpu`.
struct Thread;
using Thread_fn = void (*)(Thread &);

struct Thread
{
    u64 ec, sc, done;
    unsigned cpu;
    Thread_fn fn;
    u64 arg[4];
    volatile u64 result[4];
    volatile u64 progress;
    Ec_tls *tls;
    u64 utcb;
};

// t = nullptr: a permanent thread (stack and selectors are never returned). `quantum_us`: the SC's
// time quantum (6.1).
bool spawn(Test *t, Thread &th, unsigned cpu, unsigned prio, Thread_fn fn, u64 evt = NO_EVT,
           u32 quantum_us = 10000);
bool join(Thread &th, u64 ms);

extern "C" [[noreturn]] void thread_main();

// A PD sharing our image, with one worker EC in it and a portal to that worker in our space.
// exc_portals: the child's selectors 0..31 hold the service block of `cpu` (else it is empty).
struct Child_pd
{
    u64 pd, pt;
    Worker w;
};
bool make_child(Test &t, Child_pd &c, unsigned cpu, Portal_handler handler, bool exc_portals,
                void *arg = nullptr);

// ---- suite -----------------------------------------------------------------------------

extern bool iommu_expected;  // module command line says the kernel runs with `iommu`
extern Ec_tls *root_tls;

[[noreturn]] void root_abort();

// ---- ELF (ABI 9.2) ------------------------------------------------------------------------

// Elf_ehdr, Elf_phdr: nova/elf.hpp

// The root module's ELF header and program header i, checked to lie inside the image (else nullptr).
const Elf_ehdr *module_ehdr();
const Elf_phdr *module_phdr(unsigned i);
