/*
 * The hypercall fuzzer (user/fuzz, docs/testing.md): what the root task's
 * controller, the workers in the child PDs and the server PD share.
 *
 * All PDs run this one image at the same addresses (the children get our
 * memory nodes delegated, nova::share_memory), so the structures below are
 * shared memory. Only the root PD owns the serial port: workers and servers
 * never print (unless `trace` gave them the port); they record violations
 * in the table below, which the controller reports.
 */
#pragma once

#include <nova/nova.hpp>

using namespace nova;

extern "C" char _start[], _image_end[];  // user/linker.ld: the program image

namespace fuzz {

inline bool in_image(u64 a)
{
    return a >= reinterpret_cast<u64>(_start) && a < reinterpret_cast<u64>(_image_end);
}

// ---- limits -------------------------------------------------------------------------------

constexpr unsigned MAX_CPUS = 8;     // CPUs that get workers and servers (the first online ones)
constexpr unsigned MAX_PER_CPU = 2;  // workers per CPU
constexpr unsigned MAX_WORKERS = MAX_CPUS * MAX_PER_CPU;
constexpr unsigned MAX_SIBLINGS = 4;  // other workers' PD capabilities a worker gets

// ---- the child PDs' object spaces (workers) -----------------------------------------------

constexpr u64 C_EVT = 0;        // 32 event portals (exceptions, startup, recall) to the handler EC
constexpr u64 C_SELF = 32;      // the child's own PD
constexpr u64 C_SMS = 0x40;     // 4 semaphores shared by everyone (order 2)
constexpr u64 C_SIBS = 0x48;    // PD capabilities of up to 4 other workers
constexpr u64 C_SRV = 0x80;     // echo portals 0x80 + cpu, probe portals 0x88 + cpu (order 4)
constexpr u64 C_WORK = 0x1000;  // where the worker creates objects (C_WORK_N selectors)
constexpr u64 C_WORK_N = 0x1000;
constexpr u64 C_UTCB = 0x500000000000ull;       // worker UTCB; the handler's is the next page
constexpr u64 C_UTCB_POOL = 0x500100000000ull;  // UTCBs of ECs the worker creates (4096 pages)
constexpr u64 C_SCRATCH = 0x600000000000ull;    // receive windows for memory (2^18 pages)
constexpr u64 NO_EVT = 0x3ffff00;               // an event base without portals (handlers)

// ---- the server PD (echo and probe ECs, one of each kind per CPU) --------------------------

constexpr u64 S_EVT = 0;  // 32 event portals per CPU: the server EC of CPU c has base 32 c
constexpr u64 S_SELF = 0x100;
constexpr u64 S_RECV = 0x400;  // object receive window (order 10)
constexpr unsigned S_RECV_ORDER = 10;
constexpr u64 S_UTCB = 0x500000000000ull;  // server EC of CPU c: + 0x2000 c, its handler + 0x1000
constexpr u64 S_MEM = 0x600000000000ull;   // memory receive window (order S_MEM_ORDER pages)
constexpr unsigned S_MEM_ORDER = 12;
constexpr u64 S_PROBE_VA = 0x510000000000ull;  // the controller's probe page, delegated here

constexpr u64 ECHO_ID = 0xec40000000000000ull;   // portal id: ECHO_ID | cpu
constexpr u64 PROBE_ID = 0x9b0be00000000000ull;  // portal id: PROBE_ID | cpu
constexpr u64 ID_MASK = 0xffffffffffff0000ull;
constexpr u64 NO_FAULT = ~u64{0};  // probe reply: the read did not fault

// ---- a deterministic random number generator (splitmix64) ----------------------------------

struct Rng
{
    u64 s;

    u64 next()
    {
        u64 z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    u64 below(u64 n) { return n ? next() % n : 0; }                // [0, n)
    u64 range(u64 lo, u64 hi) { return lo + below(hi - lo + 1); }  // [lo, hi]
    bool chance(unsigned per_mille) { return below(1000) < per_mille; }
    // Small numbers much more often than large ones: 0..2^bits-1, the bit count uniform.
    u64 skewed(unsigned bits) { return next() & ((u64{1} << below(bits + 1)) - 1); }
};

// A stream derived from the seed: independent streams for (kind, index, generation).
inline u64 derive(u64 seed, u64 kind, u64 index, u64 gen)
{
    Rng r{seed ^ kind * 0xd1b54a32d192ed03ull ^ index * 0x8cb92ba72f3d8dd7ull ^ gen * 0xaef17502108ef2d9ull};
    r.next();
    return r.next();
}

// ---- catching exceptions (asm.S) -----------------------------------------------------------

struct Jmp
{
    u64 rbx, rbp, r12, r13, r14, r15, rsp, rip;
};

// Registers of one hypercall (asm.S fz_raw): in words 0..13, out words 0..16.
struct Raw
{
    u64 rdi, rsi, rdx, rax, r8, rbx, rbp, r9, r10, r12, r13, r14, r15, rflags, rcx, r11, rsp;
};

/*
 * One EC's exception catching: its event handler (a local EC in the same PD
 * on the same CPU) sends it back to fz_catch when `armed` and the fault's rip
 * is the expected one; any other exception parks the EC (fz_park) or, now
 * and then, gets a bogus reply (docs/testing.md).
 */
struct Catcher
{
    volatile u64 armed;
    u64 lo, hi, alt;         // expected rip: [lo, hi) or alt
    u64 stack_lo, stack_hi;  // the EC's stack: the fault's rsp must be in it
    Jmp jb;
    // Filled by the handler for the EC it caught.
    volatile u64 vec, err, cr2, rip;
    // Start-up of a global EC: the startup message's rsp identifies it.
    volatile u64 start_sp;
    void (*entry)();
    // Counters of the handler (events of every kind it saw).
    u64 caught, parked, bogus, recalls, startups;
    volatile u64 in_call;            // the EC is in a call: an "event" whose rsp is in its stack is a
                                     // plain call to an event portal with stale UTCB contents
    volatile u64 parked_self;        // events of the EC itself that parked it (a worker is dead then)
    u64 last_v, last_rip, last_cr2;  // the last of them
    unsigned slot;                   // the worker's slot, ~0u for a server EC
    const volatile u64 *last_call;   // the worker's last hypercall (Worker::last_rdi...), or null
    Rng rng;                         // the handler's own stream (bogus replies)
    // The stack of fz_report (server.cpp), where the EC reports an exception in fz_raw itself.
    alignas(16) u64 report_stack[256];
};

// ---- shared state ----------------------------------------------------------------------

struct Worker
{
    unsigned slot, cpu, index;  // index: among the workers of its CPU
    volatile u64 gen;           // generation: the controller bumps it at every (re)spawn
    volatile u64 calls;         // hypercalls made, over all generations (written by the worker)
    volatile u64 faults;        // exceptions provoked and caught
    u64 seed;
    volatile u64 last_rdi, last_rsi, last_rdx, last_rax, last_r8;  // the hypercall being made
    Catcher catcher;
    Ec_tls *stack[2], *hstack[2];  // worker and handler stacks, alternating by generation
    volatile bool alive;           // spawned and not killed
    u64 spawned_tsc, killed_tsc;   // controller's bookkeeping
    u64 seen_calls, seen_tsc;      // progress as the controller last saw it
    unsigned prio;
};

struct Server
{
    Catcher catcher[MAX_CPUS];  // the server EC of each CPU
    Ec_tls *stack[MAX_CPUS], *hstack[MAX_CPUS];
    volatile u64 calls[MAX_CPUS];  // echo and probe calls handled
    Rng rng[MAX_CPUS];             // each server EC's stream
    volatile u64 gen;
};

// Violations: a kernel answer that breaks the ABI or the fuzzer's expectations.
enum Vkind : unsigned {
    V_STATUS,      // a status byte above OOM, or rdi's upper bits set on a failure
    V_REGS,        // a register the ABI preserves came back changed
    V_FLAGS,       // RFLAGS after a hypercall: TF, DF or AC set, or IF clear
    V_BAD_HYP,     // hypercall 15 not answered BAD_HYP without kstat
    V_ECHO,        // an echo reply with the wrong data
    V_VECTOR,      // a provoked exception delivered with another vector
    V_ZOMBIE,      // an EC of a revoked PD still ran long after the revoke
    V_REVOKED,     // a revoked page was still readable
    V_PROBE,       // a probe read a wrong value from a page that is mapped
    V_UNEXPECTED,  // an exception at an address where the fuzzer expects none (fz_raw)
    V_COUNT
};

constexpr const char *vkind_name[V_COUNT] = {
    "status codes",
    "preserved registers",
    "RFLAGS after hypercalls",
    "BAD_HYP for number 15",
    "echo replies",
    "exception vectors",
    "ECs of revoked PDs",
    "revoked pages",
    "probe reads",
    "exceptions in the raw hypercall",
};

// The slot of the self-test's catcher (main.cpp selftest): its V_UNEXPECTED reports are expected
// and counted apart (Shared::selftest_unexpected), not as violations.
constexpr unsigned SELFTEST_SLOT = ~1u;

struct Violation
{
    unsigned kind, slot;
    u64 gen, a, b, c;
    u64 call[5];  // V_UNEXPECTED: the worker's last hypercall (rdi rsi rdx rax r8), else 0
};

constexpr unsigned MAX_VIOL_LOG = 32;

struct Shared
{
    u64 seed;
    bool trace, kstat_on;
    bool iret_pf;            // QEMU's TCG with SMAP: a failing user-mode IRETQ may raise #PF (main.cpp)
    unsigned ncpus;          // CPUs in use
    unsigned cpu[MAX_CPUS];  // their numbers
    unsigned nworkers;
    Worker worker[MAX_WORKERS];
    Server server;
    volatile u64 viol_count[V_COUNT];
    volatile u64 viol_logged;
    Violation viol_log[MAX_VIOL_LOG];
    volatile u64 selftest_unexpected;  // V_UNEXPECTED reports of the self-test's catcher
    u64 selftest_last[3];              // the last one: event, rip, cr2
    volatile bool stop;                // the run is over: workers park
    u64 tsc_khz;
    u64 image_first, image_pages;  // our image, in pages
    u64 stack_first, stack_pages;  // the stack pool, in pages
};

extern Shared sh;

void violation(unsigned kind, unsigned slot, u64 gen, u64 a, u64 b, u64 c,
               const volatile u64 *call = nullptr);

// ---- asm.S ----------------------------------------------------------------------------------

extern "C" {
void fz_raw(const Raw *in, Raw *out);
void fz_raw_rsp(const Raw *in, Raw *out);
int fz_try(void (*fn)(u64), u64 arg, Jmp *jb);
void fz_catch();
void fz_park();
[[noreturn]] void fz_park_on(u64 rsp);  // fz_park with this rsp
extern char fz_raw_ret[], fz_raw_end[], fz_raw_rsp_end[];
}

// ---- events (server.cpp) ----------------------------------------------------------------------

// Portal handler of every event portal (portal id = event number); tls->arg is the Catcher.
void event_handler(u64 id, Utcb &u);
// Portal handler of the server ECs: echo and probe.
void server_handler(u64 id, Utcb &u);

// Run fn(arg) with exceptions expected at rip [lo, hi) or alt; returns the vector or -1.
long catch_fault(Catcher &c, void (*fn)(u64), u64 arg, u64 lo, u64 hi, u64 alt);

// ---- workers (worker.cpp) -------------------------------------------------------------------

// Whether a revoke of crd may take event portals away from a worker's PD (selectors C_EVT and up,
// NUM_EXC of them; selectors wrap). Workers never revoke those with `self` (worker.cpp op_revoke).
bool hits_events(Crd crd);

// Entry of a worker's global EC (set by its startup event); finds its Worker through Ec_tls::arg.
[[noreturn]] void worker_main();

inline u64 rdtsc() { return __builtin_ia32_rdtsc(); }
inline u64 ms_to_tsc(u64 ms) { return ms * sh.tsc_khz; }
inline u64 tsc_to_ms(u64 t) { return sh.tsc_khz ? t / sh.tsc_khz : 0; }

}  // namespace fuzz
