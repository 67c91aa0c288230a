/*
 * Programs in PDs of their own (user/lib/launch.cpp, docs/sdk.md "Starting programs"): a root
 * task (the launcher) loads an ELF program from a multiboot module into a new PD and starts it
 * as if it were a root task (rsp = a copy of the HIP, rdi = its CPU, the UTCB right below), with
 * rsi = a Launch_info page and rdx = LAUNCH_MAGIC. The program's console and its end go through
 * a page shared with the launcher (Launch_ring) and a semaphore of the launcher's.
 */
#pragma once
#include "nova/runtime.hpp"

namespace nova {

constexpr u64 LAUNCH_MAGIC = 0x4c41554e43484544ull;  // "LAUNCHED"

// Fixed selectors in a launched program's object space.
constexpr u64 LAUNCH_SEL_NOTIFY = 33;  // semaphore (up): the launcher looks at the ring
constexpr u64 LAUNCH_SEL_EVT = 0;      // the first EC's event base: its startup portal at STARTUP

// A launched program's address space: its ELF segments below LAUNCH_AREA; the info page at
// LAUNCH_AREA, the ring right above it, what give_program maps from LAUNCH_AREA + 1 GiB; its
// own alloc_virt range (VIRT_BASE and up) is untouched; the HIP copy where the launcher's is.
constexpr u64 LAUNCH_AREA = u64{1} << 36;

/*
 * One page shared by the launcher and one program. The program writes its console output into
 * `out` and reads its input from `in`; `ended` (then `code`) is its end. Single producer and
 * single consumer per direction; heads and tails count bytes for ever (mod 2^32).
 */
struct Launch_ring
{
    static constexpr u32 OUT_SIZE = 2048, IN_SIZE = 1024;
    u32 out_head, out_tail;  // written by the program / by the launcher
    u32 in_head, in_tail;    // written by the launcher / by the program
    u32 ended, code;         // the program's end (written by it, `code` first)
    u32 lock;                // the program's writers (its ECs on several CPUs)
    u32 dropped;             // bytes the program could not put into a full `out`
    u8 out[OUT_SIZE];
    u8 in[IN_SIZE];
};
static_assert(sizeof(Launch_ring) <= PAGE_SIZE);

// What the launcher tells a program it started (read-only for the program).
struct Launch_info
{
    static constexpr unsigned MAX_CPUS = 8, MAX_WORDS = 16;
    u64 magic;  // LAUNCH_MAGIC
    u64 index;  // the program's number at its launcher (vm0, vm1, ...)
    u64 ring;   // address of the Launch_ring in the program
    u64 ncpus;  // the host CPUs the program may use, the first one its start CPU
    u32 cpus[MAX_CPUS];
    u64 words[MAX_WORDS];  // for the program (user/vmm: its modules and RAM, vmm.hpp)
    u64 cmdline_len;       // the program's command line: its module's words after the file name
    char cmdline[PAGE_SIZE - 200];
};
static_assert(sizeof(Launch_info) == PAGE_SIZE);

// The launcher's description of the program it started; nullptr in a root task.
const Launch_info *launch_info();

// ---- launcher side (root PD only: it takes memory from the kernel) --------------------------

// Host-physical memory that no HIP descriptor but AVAILABLE covers, `size` bytes aligned to
// `align`; never handed out twice. 0 when there is none.
u64 alloc_phys(u64 size, u64 align = PAGE_SIZE);

// Physical [phys, phys + size) into `pd` at `virt` (H bit: from the kernel), in naturally
// aligned chunks; phys and virt must have the same offset within their page.
Status map_phys_into(u64 pd, u64 phys, u64 virt, u64 size, unsigned rights);

struct Program
{
    u64 pd;             // the program's PD (our selector)
    Launch_ring *ring;  // our mapping of its ring
    Launch_info *info;  // our mapping of its info page (fill words before start_program)
    u64 entry;          // its ELF entry point
    u64 hip;            // where it finds its copy of the HIP (its UTCB is the page below)
    u64 next_virt;      // give_program's next address in the program
    unsigned index;
};

/*
 * Load the ELF64 program `elf` (`size` bytes) into a new PD: every PT_LOAD segment into fresh
 * memory at its address, a copy of the HIP, the info page and the ring. `cmdline` (`len` bytes)
 * becomes its command line, `cpus` its CPUs. The program's PD gets a capability to itself at
 * SEL_ROOT_PD and the launcher's semaphore `notify` at LAUNCH_SEL_NOTIFY. `error` says what went
 * wrong when this returns false.
 */
bool load_program(Program &p, unsigned index, const u8 *elf, u64 size, const char *cmdline, u64 len,
                  const unsigned *cpus, unsigned ncpus, u64 notify, const char *&error);

// Map physical [phys, phys + size) with `rights` into the program at a free address of its own
// (LAUNCH_AREA and up, 1 GiB aligned) and return the address of `phys` there (0 on failure).
u64 give_program(Program &p, u64 phys, u64 size, unsigned rights);

// Start the loaded program's first EC (priority `prio`); false if a resource is missing.
bool start_program(Program &p, unsigned prio);

// The program's console output since the last call into buf (at most n bytes); its number.
u32 program_output(Program &p, u8 *buf, u32 n);
// Host input for the program: false when its ring is full.
bool program_input(Program &p, u8 c);

}  // namespace nova
