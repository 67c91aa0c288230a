/*
 * Every CPU usable (docs/boot.md "HIP layout"): the HIP describes each CPU,
 * also beyond the reference's 64, and each of them takes a local EC with a
 * portal that the boot CPU calls across CPUs and a global EC with an SC that
 * calls back to the boot CPU; its idle SC comes from the kernel. One CPU
 * after the other, so that the handler ECs can share one stack. Then device interrupts routed to
 * the last CPU (on 300 CPUs its APIC ID is above 255: interrupt remapping with x2APIC
 * destinations): the PIT's pin and, where an edu device is found, its MSI, raised and awaited by
 * that CPU's local EC; with `kstat` the kernel's census names the CPU that took them. Ends with
 * "N passed, M failed" and isa-debug-exit.
 */
#include "nova/nova.hpp"
#include "nova/pci.hpp"

using namespace nova;

extern "C" [[noreturn]] void global_main_entry();

namespace {

using test::check;

constexpr u64 STARTUP = u64{1} << 32;  // portal id bit: the startup portal of CPU (id & 0xffffffff)
constexpr u64 IRQ = u64{1} << 33;      // portal id bit: raise irq.edu's interrupt or the PIT's, await it
constexpr unsigned PIT_GSI = 2;        // ISA IRQ 0 through the usual override
constexpr unsigned MSI_GSI = 64;       // above the I/O APIC's pins
constexpr u64 MSI_REMAPPED = 0xfee00018;
constexpr size_t GSTACK = 256;  // a global EC's stack: global_main needs little

// The APIC ID of the CPU this runs on: CPUID 0xb (x2APIC ID) where it exists, else CPUID 1.
u32 my_apic_id()
{
    u32 a, b, c, d;
    asm volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0), "c"(0));
    if (a >= 0xb) {
        asm volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0xb), "c"(0));
        if (b != 0)
            return d;
    }
    asm volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
    return b >> 24;
}

// The APIC ID a HIP CPU descriptor names: the register value holds it in bits 31:24 with xAPIC.
u32 hip_apic_id(const Hip_cpu &c) { return (c.lapic_id & 0xffffff) == 0 ? c.lapic_id >> 24 : c.lapic_id; }

constexpr u32 NONE = ~0u;
u32 *called_on;             // per CPU: APIC ID seen by the handler of the cross-CPU call
u32 *global_on;             // per CPU: APIC ID seen by the global EC
Status *back;               // per CPU: the global EC's call to the boot CPU
volatile unsigned current;  // the CPU whose global EC starts next
volatile unsigned home_calls;
u64 home_pt, done_sm, block_sm;
unsigned home_cpu;
u32 home_seen = 0;

struct
{
    volatile u32 *edu;  // the edu's registers, nullptr: the PIT
    u64 sm;             // the GSI semaphore to wait on
    u64 timeout;        // TSC ticks
    Status down;
    u32 apic;  // where the handler ran
} irq;

// Channel 0 of the PIT, mode 0 (interrupt on terminal count), about 10 ms.
void pit_one_shot()
{
    outb(0x43, 0x30);
    outb(0x40, 11932 & 0xff);
    outb(0x40, 11932 >> 8);
}

// Handler of every CPU's local EC (they take turns on one stack).
void remote_handler(u64 id, Utcb &u)
{
    if (id & STARTUP) {
        u.rip = reinterpret_cast<u64>(&global_main_entry);
        u.mtd = Mtd::RIP_LEN;
        return;
    }
    if (id & IRQ) {
        irq.apic = my_apic_id();
        if (irq.edu)
            irq.edu[Edu::IRQ_RAISE / 4] = 0x1;
        else
            pit_one_shot();
        irq.down = sm_down(irq.sm, __builtin_ia32_rdtsc() + irq.timeout).status;
        if (irq.edu)
            irq.edu[Edu::IRQ_ACK / 4] = 0x1;
        u.mtd = 0;
        return;
    }
    called_on[id] = my_apic_id();
    u.mtd = 0;
}

void home_handler(u64, Utcb &u)
{
    home_seen |= my_apic_id() != hip_apic_id(*hip()->cpu(home_cpu));
    home_calls = home_calls + 1;
    u.mtd = 0;
}

/*
 * The GSI semaphore of `gsi` (dev: the MSI's configuration page, nullptr: an I/O APIC pin) routed
 * to CPU c, whose local EC answers portal pt: the interrupt must release the semaphore there and,
 * with `kstat`, the census must name CPU c as the one that took it.
 */
void interrupt_to(const Hip *h, unsigned c, u64 pt, unsigned gsi, volatile u8 *dev, const char *what)
{
    u64 sm = alloc_sel();
    Status r = request_kernel_cap(ksel_gsi_sm(gsi), sm);
    Gsi_result g = r == Status::SUCCESS ? assign_gsi(sm, reinterpret_cast<u64>(dev), c) : Gsi_result{r, 0, 0};
    if (dev && g.status == Status::SUCCESS)
        Pci::program_msi(dev, g);
    irq.sm = sm;
    irq.down = Status::BAD_PAR;
    irq.apic = NONE;
    Status call_s = g.status == Status::SUCCESS ? call(pt) : g.status;
    Status k;
    u32 at = gsi_last_cpu(gsi, k);
    u32 apic = hip_apic_id(*h->cpu(c));
    check(call_s == Status::SUCCESS && irq.down == Status::SUCCESS && irq.apic == apic &&
              (k != Status::SUCCESS || at == c),
          "%s (GSI %u, assign_gsi %s%s) routed to CPU %u (APIC ID %u) reaches its handler EC there (%s)",
          what, gsi, status_name(g.status), g.msi_addr == MSI_REMAPPED ? ", remapped" : "", c, apic,
          k == Status::SUCCESS ? "the kernel's census names that CPU" : "no kstat: only the down is checked");
    if (call_s != Status::SUCCESS || (k == Status::SUCCESS && at != c))
        printf("INFO: %s: call %s, down %s, handler on APIC %#x, taken on CPU %d\n", what,
               status_name(call_s), status_name(irq.down), irq.apic, static_cast<int>(at));
}

}  // namespace

// A global EC: where it runs, a call to the boot CPU, done; then blocked for good.
extern "C" [[noreturn]] void global_main_entry()
{
    unsigned c = current;
    global_on[c] = my_apic_id();
    back[c] = call(home_pt);
    sm_up(done_sm);
    for (;;)
        sm_down(block_sm);
}

int main(const Hip *h, unsigned cpu)
{
    if (Console::init() != Status::SUCCESS)
        exit(EXIT_FAIL);
    Status s = catch_exceptions(cpu);
    if (s != Status::SUCCESS)
        printf("note: no exception reporting (%s)\n", status_name(s));

    // The HIP: every CPU described, the whole HIP mapped right below USER_ADDR, the root UTCB under it.
    unsigned n = h->num_cpu_desc(), online = h->num_cpus_online();
    u64 at = reinterpret_cast<u64>(h);
    printf("allcpus: HIP at %#lx, %u CPU descriptors, %u online, length %#x\n", at, n, online, h->length);
    check(h->checksum_ok(), "HIP checksum over all %lu pages", h->mapped_size() / PAGE_SIZE);
    check(at + h->mapped_size() == USER_ADDR && start_regs().rsp == at &&
              (n > NUM_CPU || (at == HIP_ADDR && n == NUM_CPU)),
          "HIP ends at USER_ADDR, rsp names it (HIP_ADDR with up to 64 CPUs)");
    unsigned hyp = 0;
    for (unsigned i = 0; i < h->num_mem_desc(); i++)
        hyp += h->mem(i)->type == Hip_mem::HYPERVISOR;
    check(hyp == 1 && h->ioapic(0) && h->ioapic(0)->base != 0,
          "I/O APIC and memory descriptors found through their offsets");

    home_cpu = cpu;
    called_on = static_cast<u32 *>(alloc(n * sizeof(u32)));
    global_on = static_cast<u32 *>(alloc(n * sizeof(u32)));
    back = static_cast<Status *>(alloc(n * sizeof(Status)));
    auto *hstack = static_cast<u8 *>(alloc(STACK_SIZE, STACK_SIZE));
    Handler_ec home;
    done_sm = alloc_sel();
    block_sm = alloc_sel();
    home_pt = alloc_sel();
    if (!called_on || !global_on || !back || !hstack || create_sm(done_sm, self_pd(), 0) != Status::SUCCESS ||
        create_sm(block_sm, self_pd(), 0) != Status::SUCCESS ||
        create_handler_ec(home, alloc_sel(), self_pd(), cpu, home_handler) != Status::SUCCESS ||
        create_portal(home_pt, home.sel, 0, 0) != Status::SUCCESS) {
        check(false, "set-up (heap %lu bytes left)", heap_free());
        return static_cast<int>(test::finish());
    }
    auto *tls = reinterpret_cast<Ec_tls *>(hstack + STACK_SIZE - sizeof(Ec_tls));
    *tls = Ec_tls{nullptr, remote_handler, nullptr, 0};

    u64 t0 = __builtin_ia32_rdtsc(), timeout = u64{h->freq_tsc} * 10000;  // 10 s per CPU
    unsigned calls_ok = 0, globals_ok = 0, idle_ok = 0, tried = 0, last = cpu;
    u64 irq_pt = alloc_sel();  // to the last CPU's local EC with IRQ
    for (unsigned c = 0; c < n; c++)
        last = h->cpu(c)->online() ? c : last;
    for (unsigned c = 0; c < n; c++) {  // stops at the first failure: the handler stack may be busy
        const Hip_cpu &d = *h->cpu(c);
        if (!d.online())
            continue;
        tried++;
        called_on[c] = global_on[c] = NONE;
        // Its idle SC from the kernel (ABI 9.6; beyond CPU 63 after the GSI semaphores).
        u64 isc = alloc_sel();
        Status i = request_kernel_cap(ksel_idle_sc(c), isc);
        Sc_time t = i == Status::SUCCESS ? sc_ctrl(isc) : Sc_time{i, 0};
        if (t.status == Status::SUCCESS)
            idle_ok++;
        else
            check(false, "CPU %u: idle SC from the kernel %s, sc_ctrl %s", c, status_name(i),
                  status_name(t.status));
        u64 evt = alloc_sel(32), lec = alloc_sel(), pt = alloc_sel(), gec = alloc_sel(), sc = alloc_sel();
        u64 lutcb = alloc_virt(PAGE_SIZE), gutcb = alloc_virt(PAGE_SIZE);
        auto *gstack = static_cast<u8 *>(alloc(GSTACK, 16));
        if (!sc || !lutcb || !gutcb || !gstack) {
            check(false, "selectors, addresses and stacks for CPU %u (heap %lu bytes left)", c, heap_free());
            break;
        }
        // A local EC on CPU c and a portal to it, called from the boot CPU.
        tls->utcb = reinterpret_cast<Utcb *>(lutcb);
        Status a = create_ec_local(lec, self_pd(), c, lutcb, reinterpret_cast<u64>(tls), 0);
        Status b = a == Status::SUCCESS ? create_portal(pt, lec, 0, c) : a;
        Status r = b == Status::SUCCESS ? call(pt) : b;
        if (c == last && r == Status::SUCCESS)
            r = create_portal(irq_pt, lec, 0, IRQ | c);
        if (r == Status::SUCCESS && called_on[c] == hip_apic_id(d))
            calls_ok++;
        else {
            check(false, "CPU %u: local EC %s, portal %s, call %s, handler on APIC %#x (HIP: %#x)", c,
                  status_name(a), status_name(b), status_name(r), called_on[c], hip_apic_id(d));
            break;
        }
        // A global EC with an SC on CPU c: its startup portal is served by the same local EC.
        current = c;
        Status p = create_portal(evt + Evt::STARTUP, lec, Mtd::RIP_LEN, STARTUP | c);
        Status g = p == Status::SUCCESS ? create_ec_global(gec, self_pd(), c, gutcb,
                                                           reinterpret_cast<u64>(gstack + GSTACK - 8), evt)
                                        : p;
        Status q = g == Status::SUCCESS ? create_sc(sc, self_pd(), gec, Qpd(2, 10000)) : g;
        Sm_result w =
            q == Status::SUCCESS ? sm_down(done_sm, __builtin_ia32_rdtsc() + timeout) : Sm_result{q, 0, 0};
        if (w.status == Status::SUCCESS && global_on[c] == hip_apic_id(d) && back[c] == Status::SUCCESS)
            globals_ok++;
        else {
            check(false,
                  "CPU %u: startup portal %s, global EC %s, SC %s, done %s, ran on APIC %#x, call back %s", c,
                  status_name(p), status_name(g), status_name(q), status_name(w.status), global_on[c],
                  w.status == Status::SUCCESS ? status_name(back[c]) : "-");
            break;
        }
    }
    u64 ms = h->freq_tsc ? (__builtin_ia32_rdtsc() - t0) / h->freq_tsc : 0;
    check(tried == online && calls_ok == online, "cross-CPU calls answered on each of the %u online CPUs",
          online);
    check(globals_ok == online, "global ECs with SCs ran on each of the %u online CPUs", online);
    check(home_calls == online && !home_seen, "each of them called back to the boot CPU (%u calls)",
          home_calls);
    check(idle_ok == online, "the idle SC of each of the %u online CPUs from the kernel, sc_ctrl on it",
          online);
    printf("allcpus: %u of %u CPUs used in %lu ms, heap %lu bytes left\n", globals_ok, online, ms,
           heap_free());

    // Device interrupts to the last CPU: the PIT's pin, and the MSI of an edu device if there is one.
    irq.timeout = timeout;
    check(request_ports(0x40, 2) == Status::SUCCESS, "PIT ports");
    interrupt_to(h, last, irq_pt, PIT_GSI, nullptr, "the PIT's pin");
    volatile u8 *edu = Pci::find(Pci::map_bus0(h), Edu::VENDOR, Edu::DEVICE);
    irq.edu = edu ? Edu::map_regs(edu) : nullptr;
    if (irq.edu)
        interrupt_to(h, last, irq_pt, MSI_GSI, edu, "the edu's MSI");
    else
        printf("allcpus: no edu device: no MSI\n");
    return static_cast<int>(test::finish());
}
