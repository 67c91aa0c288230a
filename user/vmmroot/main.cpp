/*
 * vmmroot: the root task that runs one VMM per VM, each an ordinary PD of its own (docs/vmm.md,
 * "Structure").
 *
 * Modules (multiboot, in this order): this program (its words: `input=N`, the VM that gets the
 * host's serial input, default 0), then for each VM the VMM's ELF (user/vmm/vmm; its words go to
 * the VMM: mem=MiB, cpus=N, lapic, and hostcpu=N for the first host CPU), the guest's bzImage
 * (its words: the guest's command line) and optionally its initrd. Every ELF module begins a VM.
 *
 * Each VMM gets: its program image in fresh memory, a copy of the HIP, a capability to its own
 * PD, the guest's RAM (host memory to hand on with G-bit delegations), its kernel and initrd
 * read-only, the list of host CPUs it may use, and a ring for its console (nova/launch.hpp). It
 * gets no I/O port and no memory from the kernel. The root prints the VMMs' output line by line
 * (with a prefix `vmN| ` when there are several), gives the host's serial input to one VM, and
 * ends QEMU when every VM has ended: with the VM's own status when there is one, else with
 * success only when every VM powered off.
 */
#include <nova/launch.hpp>
#include <nova/nova.hpp>

#include "../vmm/vmm.hpp"
#include "mux.hpp"
#include "string.hpp"

using namespace nova;

namespace {

constexpr unsigned MAX_VMS = 4;
constexpr u64 MIB = u64{1} << 20;
constexpr u32 END_POWEROFF = 0x10, END_FAIL = 0x11, END_RESET = 0x12;  // the VMM's (user/vmm/main.cpp)

struct Module
{
    u64 phys, size;
    const u8 *data;
    u64 words_phys;     // the words after the file name
    const char *words;  // (our mapping)
    size_t words_len;
};

struct Vm
{
    Program p;
    Module vmm, kernel, initrd;
    unsigned extra;  // modules after the VMM's: kernel, initrd
    bool ended;
    u32 code;
};

Vm vms[MAX_VMS];
unsigned nvms, input_vm;
u64 notify;
vmm::Line_mux mux;  // the VMs' output onto the serial line

u64 ms(u64 n) { return n * hip()->freq_tsc; }
u64 rdtsc() { return __builtin_ia32_rdtsc(); }

bool module(unsigned index, Module &m)
{
    const Hip *h = hip();
    unsigned seen = 0;
    for (unsigned i = 0; i < h->num_mem_desc(); i++) {
        const Hip_mem *d = h->mem(i);
        if (d->type != Hip_mem::MODULE || seen++ != index)
            continue;
        m = Module{};
        m.phys = d->addr;
        m.size = d->size;
        m.data = static_cast<const u8 *>(map_phys(d->addr, d->size, Perm_mem::R));
        m.words = "";
        if (d->aux) {
            u64 max = PAGE_SIZE - (d->aux & (PAGE_SIZE - 1));
            auto s = static_cast<const char *>(map_phys(d->aux, max, Perm_mem::R));
            u64 n = 0, p = 0;
            while (s && n < max && s[n])
                n++;
            while (p < n && s[p] != ' ')  // the file name
                p++;
            while (p < n && s[p] == ' ')
                p++;
            if (s) {
                m.words = s + p;
                m.words_len = n - p;
                m.words_phys = d->aux + p;
            }
        }
        return m.data != nullptr;
    }
    return false;
}

// ---- the console: the VMs' output line by line, the host's input to one VM -------------------

__attribute__((format(printf, 1, 2))) void say(const char *fmt, ...)
{
    mux.wire_break();
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
}

void drain(unsigned k)
{
    u8 buf[256];
    // At most two ringfuls a round: a VMM that never stops printing does not keep the others out.
    for (u32 n, round = 0;
         round < 2 * Launch_ring::OUT_SIZE && (n = program_output(vms[k].p, buf, sizeof buf)); round += n)
        mux.put(k, buf, n, rdtsc());
    mux.poll(k, rdtsc());
}

const char *end_name(u32 code)
{
    return code == END_POWEROFF ? "halted (power-off)" : code == END_RESET ? "reset" : "failure";
}

[[noreturn]] void console()
{
    for (;;) {
        sm_down(notify, rdtsc() + ms(10));
        while (inb(0x3fd) & 1) {  // host input, for one VM
            u8 c = inb(0x3f8);
            if (!vms[input_vm].ended)
                program_input(vms[input_vm].p, c);
        }
        unsigned done = 0;
        for (unsigned k = 0; k < nvms; k++) {
            Vm &v = vms[k];
            bool ended = __atomic_load_n(&v.p.ring->ended, __ATOMIC_ACQUIRE);
            drain(k);
            if (ended && !v.ended) {
                mux.end(k);
                v.ended = true;
                v.code = v.p.ring->code;
                unsigned running = 0;
                for (unsigned j = 0; j < nvms; j++)
                    running += !vms[j].ended;
                if (nvms > 1)
                    say("vmmroot: vm%u ended: %s; %u VM%s still running\n", k, end_name(v.code), running,
                        running == 1 ? "" : "s");
            }
            done += v.ended;
        }
        if (done < nvms)
            continue;
        bool all_off = true;
        for (unsigned k = 0; k < nvms; k++)
            all_off &= vms[k].code == END_POWEROFF;
        u32 code = nvms == 1 ? vms[0].code : all_off ? END_POWEROFF : END_FAIL;
        if (nvms > 1)
            say("vmmroot: every VM has ended (%s)\n", all_off ? "all powered off" : "not all powered off");
        exit(code);
    }
}

// ---- set-up ---------------------------------------------------------------------------------------

[[noreturn]] __attribute__((format(printf, 1, 2))) void fail(const char *fmt, ...)
{
    mux.wire_break();
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    exit(END_FAIL);
}

// Host CPUs for VM k: `n` online CPUs from `first` on (wrapping), the first one its VMM's start CPU.
unsigned pick_cpus(unsigned first, unsigned n, unsigned *out)
{
    const Hip *h = hip();
    unsigned online[256], count = 0;
    for (unsigned i = 0; i < h->num_cpu_desc() && count < 256; i++)
        if (h->cpu(i)->online())
            online[count++] = i;
    unsigned at = 0;
    while (at < count && online[at] != first)
        at++;
    if (at == count)
        return 0;
    n = n < count ? n : count;
    for (unsigned i = 0; i < n; i++)
        out[i] = online[(at + i) % count];
    return n;
}

void start_vm(unsigned k, unsigned &next_cpu)
{
    Vm &v = vms[k];
    const char *w = v.vmm.words;
    size_t wl = v.vmm.words_len;
    u64 mem = 256, vcpus = 1, first = next_cpu;
    words_u64(w, wl, "mem", mem);
    words_u64(w, wl, "cpus", vcpus);
    words_u64(w, wl, "hostcpu", first);
    if (mem < 32 || mem > 3072)
        fail("vmmroot: vm%u: mem= must be between 32 and 3072 MiB\n", k);
    unsigned cpus[Launch_info::MAX_CPUS];
    unsigned n =
        pick_cpus(static_cast<unsigned>(first),
                  vcpus >= 1 && vcpus <= Launch_info::MAX_CPUS ? static_cast<unsigned>(vcpus) : 1, cpus);
    if (!n)
        fail("vmmroot: vm%u: hostcpu=%lu is not an online CPU\n", k, first);
    next_cpu = cpus[n - 1] + 1;
    const char *error = nullptr;
    if (!load_program(v.p, k, v.vmm.data, v.vmm.size, w, wl, cpus, n, notify, error))
        fail("vmmroot: vm%u: cannot load the VMM: %s\n", k, error);

    // The guest's RAM, then its modules (read-only), into the VMM's PD.
    u64 size = mem * MIB, phys = alloc_phys(size, 2 * MIB);
    u64 *words = v.p.info->words;
    words[vmm::W_RAM] = phys ? give_program(v.p, phys, size, Perm_mem::RWX) : 0;
    words[vmm::W_RAM_SIZE] = size;
    if (!words[vmm::W_RAM])
        fail("vmmroot: vm%u: too little host RAM for the guest (mem=)\n", k);
    if (v.extra >= 1) {
        words[vmm::W_KERNEL] = give_program(v.p, v.kernel.phys, v.kernel.size, Perm_mem::R);
        words[vmm::W_KERNEL_SIZE] = v.kernel.size;
        if (v.kernel.words_len) {
            words[vmm::W_KERNEL_ARGS] =
                give_program(v.p, v.kernel.words_phys, v.kernel.words_len, Perm_mem::R);
            words[vmm::W_KERNEL_ARGS_LEN] = v.kernel.words_len;
        }
    }
    if (v.extra >= 2) {
        words[vmm::W_INITRD] = give_program(v.p, v.initrd.phys, v.initrd.size, Perm_mem::R);
        words[vmm::W_INITRD_SIZE] = v.initrd.size;
    }
    if ((v.extra >= 1 && !words[vmm::W_KERNEL]) || (v.extra >= 2 && !words[vmm::W_INITRD]) ||
        (v.kernel.words_len && v.extra >= 1 && !words[vmm::W_KERNEL_ARGS]))
        fail("vmmroot: vm%u: cannot give the VMM its modules\n", k);
    if (nvms > 1)
        printf("vmmroot: vm%u: a VMM in a PD of its own on host CPU%s", k, n > 1 ? "s" : "");
    for (unsigned i = 0; nvms > 1 && i < n; i++)
        printf(" %u", cpus[i]);
    if (nvms > 1)
        printf(", %lu MiB of guest RAM at %#lx\n", mem, phys);
    if (!start_program(v.p, 1))
        fail("vmmroot: vm%u: cannot start the VMM\n", k);
}

}  // namespace

int main(const Hip *, unsigned cpu)
{
    Console::init();
    u64 input = 0;
    cmdline_u64("input", input);

    // The modules: every ELF begins a VM, the others are its kernel and initrd.
    Module m{};
    for (unsigned i = 1; module(i, m); i++) {
        bool elf = m.size >= 4 && !memcmp(m.data, "\177ELF", 4);
        if (elf) {
            if (nvms == MAX_VMS)
                fail("vmmroot: more than %u VMs\n", MAX_VMS);
            vms[nvms++].vmm = m;
        } else if (!nvms)
            fail("vmmroot: module %u is not an ELF program (a VMM first, then its kernel and initrd)\n", i);
        else if (vms[nvms - 1].extra == 2)
            fail("vmmroot: module %u: a VMM takes a kernel and an initrd, no more\n", i);
        else
            (vms[nvms - 1].extra++ ? vms[nvms - 1].initrd : vms[nvms - 1].kernel) = m;
    }
    if (!nvms)
        fail("vmmroot: no VMM module (user/vmm/vmm) after the root task\n");
    input_vm = input < nvms ? static_cast<unsigned>(input) : 0;
    if (nvms > 1)
        printf("vmmroot: %u VMs, each with a VMM of its own; host serial input goes to vm%u\n", nvms,
               input_vm);
    // An unfinished line waits 0.5 s for its end when another VM may print, so lines do not mix (a
    // guest prints a byte per exit: a long line can take a while under TCG).
    mux.sink = [](const char *s, size_t n) { Console::write(s, n); };
    mux.nvms = nvms;
    mux.wait = ms(500);

    notify = alloc_sel();
    if (create_sm(notify, self_pd(), 0) != Status::SUCCESS)
        fail("vmmroot: no semaphore\n");
    unsigned next_cpu = cpu;
    for (unsigned k = 0; k < nvms; k++)
        start_vm(k, next_cpu);
    // The console above the VMMs' tickers (priority 3), so a full ring is drained at once.
    if (!start_thread(cpu, 4, console))
        fail("vmmroot: cannot start the console thread\n");
    park();
}
