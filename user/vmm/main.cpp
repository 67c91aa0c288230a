/*
 * The VMM (docs/vmm.md): boots a Linux bzImage with an initramfs in a VM of its own.
 *
 * An ordinary PD started by the root task user/vmmroot, one per VM (nova/launch.hpp): the root
 * gives it the guest's RAM (host memory), the bzImage (its module words are the guest's kernel
 * command line) and the initrd read-only, the host CPUs it may use and a console ring; its own
 * words: cpus=N, lapic (mem= is the root's). The VMM builds the VM's PD, gives it the RAM with
 * G-bit delegations, creates the vCPUs and a handler EC with 256 exit portals each, loads Linux
 * by the 64-bit boot protocol and emulates the PC devices Linux needs (devices.cpp). A second EC,
 * the ticker, waits for the PIT's next deadline and for host serial input and recalls the vCPU
 * (or wakes it from HLT) so the handler can inject the interrupt. The VM ends when the guest
 * halts for good (Linux's power-off without ACPI), resets, or misbehaves; the VMM then tells the
 * root, with a status for each (docs/vmm.md).
 */
#include <nova/launch.hpp>
#include <nova/nova.hpp>

#include "decode.hpp"
#include "format.hpp"
#include "lapic.hpp"
#include "smp.hpp"
#include "string.hpp"
#include "vmm.hpp"

using namespace nova;

namespace {

using vmm::now_pit;
using vmm::rdtsc;

// SVM exit codes (AMD APM vol. 2, appendix C) and the ABI's event numbers (10.4).
constexpr u64 EX_VINTR = 0x64, EX_CPUID = 0x72, EX_HLT = 0x78, EX_IOIO = 0x7b, EX_MSR = 0x7c,
              EX_SHUTDOWN = 0x7f, EX_XSETBV = 0x8d, EV_NPF = 252, EV_INVALID = 253, EV_STARTUP = 254,
              EV_RECALL = 255;
constexpr u32 I_CPUID = 1u << 18;
constexpr u64 RFLAGS_IF = 0x200;

// The VM's end, for the root task (which ends QEMU with it when this is the only VM; tools/vm
// maps QEMU's status).
constexpr u32 END_POWEROFF = 0x10, END_FAIL = 0x11, END_RESET = 0x12;

constexpr u64 MTD_IN = Mtd::GPR_ACDB | Mtd::GPR_BSD | Mtd::GPR_R8_R15 | Mtd::RSP | Mtd::RIP_LEN |
                       Mtd::RFLAGS | Mtd::DS_ES | Mtd::FS_GS | Mtd::CS_SS | Mtd::TR | Mtd::LDTR | Mtd::GDTR |
                       Mtd::IDTR | Mtd::CR | Mtd::DR | Mtd::SYSENTER | Mtd::QUAL | Mtd::INJ | Mtd::STA |
                       Mtd::TSC | Mtd::EFER_PAT | Mtd::SYSCALL_SWAPGS;
constexpr u64 MTD_STATE = Mtd::GPR_ACDB | Mtd::GPR_BSD | Mtd::GPR_R8_R15 | Mtd::RSP | Mtd::RIP_LEN |
                          Mtd::RFLAGS | Mtd::DS_ES | Mtd::FS_GS | Mtd::CS_SS | Mtd::TR | Mtd::LDTR |
                          Mtd::GDTR | Mtd::IDTR | Mtd::CR | Mtd::DR | Mtd::SYSENTER | Mtd::STA |
                          Mtd::EFER_PAT | Mtd::SYSCALL_SWAPGS;

constexpr u64 MIB = u64{1} << 20, LARGE = u64{2} << 20;
constexpr unsigned MAX_VCPUS = 4;

// One vCPU: its EC in the VM's PD, its handler EC's host CPU, its local APIC (Vm::lapic[i]).
struct Vcpu
{
    unsigned cpu;  // host CPU of the vCPU and of its handler EC
    u64 ec, wake_sm, sipi_sm;
    u64 kicked;             // the ticker's last kick for this deadline
    volatile bool halted;   // the handler waits in HLT
    volatile bool running;  // started (the BSP at once, an AP by SIPI)
    volatile bool stopped;  // halted with interrupts off
    u8 sipi_vector;
};

struct Vm
{
    unsigned cpu;
    unsigned ncpus;  // vCPUs (VMM word cpus=)
    u64 pd, tick_sm;
    u8 *ram;
    u64 ram_size;
    vmm::Boot_result boot;
    vmm::Pic pic;
    vmm::Pit pit;
    vmm::Uart uart;
    vmm::Rtc rtc;
    vmm::Lapic lapic[MAX_VCPUS];
    vmm::Ioapic ioapic;
    Vcpu v[MAX_VCPUS];
    bool lapic_on;          // VMM command-line word `lapic` (or cpus= above 1): local APICs
    bool smp;               // cpus= above 1: MP table, I/O APIC
    u32 lock;               // the device state, taken by the handler ECs (docs/vmm.md, "SMP guests")
    u32 to_kick, to_start;  // vCPUs to kick / APs to start once the lock is released
    unsigned nmi_logged;
    volatile bool ended;
    u64 exits[256];
    u64 start_tsc, first_out_tsc, guest_bytes;
    bool line_start = true;
    unsigned open_bus_logged, msr_logged;
} vm;

u64 ms_since(u64 tsc) { return (rdtsc() - tsc) / hip()->freq_tsc; }

// The lock of the shared VM state. Held only by handler ECs (never by the ticker, which may preempt
// a handler on its CPU), and never across a blocking call.
void lock()
{
    while (__atomic_exchange_n(&vm.lock, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(&vm.lock, __ATOMIC_RELAXED))
            asm volatile("pause");
}

void unlock() { __atomic_store_n(&vm.lock, 0, __ATOMIC_RELEASE); }

// Make vCPU `i` look at its interrupts: wake its handler from HLT, or recall the vCPU.
void kick(unsigned i)
{
    Vcpu &c = vm.v[i];
    if (!c.running)
        return;
    if (c.halted)
        sm_up(c.wake_sm);
    else
        ec_recall(c.ec);
}

// Release the lock, then kick and start the vCPUs that the work under the lock asked for (`self`
// needs no kick: its handler decides on injection before it replies).
void unlock_and_kick(unsigned self)
{
    u32 k = vm.to_kick & ~(1u << self), s = vm.to_start;
    vm.to_kick = vm.to_start = 0;
    unlock();
    for (unsigned i = 0; i < vm.ncpus; i++) {
        if (s >> i & 1)
            sm_up(vm.v[i].sipi_sm);
        else if (k >> i & 1)
            kick(i);
    }
}

// ---- output -------------------------------------------------------------------------------------

void guest_out(u8 c)
{
    if (!vm.guest_bytes++)
        vm.first_out_tsc = rdtsc();
    Console::putc(static_cast<char>(c));  // through the root task (nova/launch.hpp)
    vm.line_start = c == '\n';
}

// A VMM line on a line of its own, whatever the guest printed last.
template <typename... A> void say(const char *fmt, A... a)
{
    if (!vm.line_start)
        Console::putc('\n');
    vm.line_start = true;
    printf(fmt, a...);
}

void print_stats()
{
    say("vmm: %lu ms since the VMM started; guest's first output after %lu ms\n", ms_since(vm.start_tsc),
        vm.first_out_tsc ? (vm.first_out_tsc - vm.start_tsc) / hip()->freq_tsc : 0);
    u64 total = 0;
    for (u64 n : vm.exits)
        total += n;
    say("vmm: %lu exits: io %lu, msr %lu, cpuid %lu, hlt %lu, window %lu, recall %lu, npf %lu\n", total,
        vm.exits[EX_IOIO], vm.exits[EX_MSR], vm.exits[EX_CPUID], vm.exits[EX_HLT], vm.exits[EX_VINTR],
        vm.exits[EV_RECALL], vm.exits[EV_NPF]);
}

// The VM is over: report, tell the root task, never return to the guest.
[[noreturn]] void end(u32 code, const char *why, const Utcb &u)
{
    vm.ended = true;
    say("vmm: %s (guest RIP %#lx, CR3 %#lx)\n", why, u.rip, u.cr3);
    print_stats();
    say("vmm: VM ended: %s\n", code == END_POWEROFF ? "halted (power-off)"
                               : code == END_RESET  ? "reset"
                                                    : "failure");
    nova::exit(code);
}

// ---- CPUID and MSR policy ----------------------------------------------------------------------

struct Regs4
{
    u32 a, b, c, d;
};

Regs4 host_cpuid(u32 leaf, u32 sub)
{
    Regs4 r;
    asm volatile("cpuid" : "=a"(r.a), "=b"(r.b), "=c"(r.c), "=d"(r.d) : "a"(leaf), "c"(sub));
    return r;
}

Regs4 guest_cpuid(u32 leaf, u32 sub, const Utcb &u, unsigned idx)
{
    Regs4 r = host_cpuid(leaf, sub);
    switch (leaf) {
    case 0: r.a = r.a < 0xd ? r.a : 0xd; break;
    case 1:
        r.b = (r.b & 0xffff) | 1u << 16 | idx << 24;  // one logical CPU per package, APIC ID = index
        // Hidden: MONITOR, VMX, SMX, EST, TM2, PDCM, PCID, DCA, x2APIC, TSC deadline; OSXSAVE follows
        // the guest's CR4; the hypervisor bit is set.
        r.c &= ~(1u << 3 | 1u << 5 | 1u << 6 | 1u << 7 | 1u << 8 | 1u << 15 | 1u << 17 | 1u << 18 | 1u << 21 |
                 1u << 24 | 1u << 27);
        r.c |= (u.cr4 >> 18 & 1) << 27 | 1u << 31;
        // Hidden: MCE, APIC, MTRR, MCA, ACPI, DS, HTT, TM, PBE, PSN.
        r.d &= ~(1u << 7 | 1u << 9 | 1u << 12 | 1u << 14 | 1u << 18 | 1u << 21 | 1u << 22 | 1u << 28 |
                 1u << 29 | 1u << 31);
        if (vm.lapic_on) {
            r.d |= 1u << 9;
            r.c |= 1u << 24;  // TSC deadline: the guest need not calibrate the APIC timer
        }
        break;
    case 7:
        if (sub == 0) {
            r.a = 0;
            // Hidden: TSC_ADJUST, SGX, HLE, INVPCID, RTM, PQM, MPX, PQE, Intel PT.
            r.b &= ~(1u << 1 | 1u << 2 | 1u << 4 | 1u << 10 | 1u << 11 | 1u << 12 | 1u << 14 | 1u << 15 |
                     1u << 25);
            // Hidden: PKU, OSPKE, WAITPKG, LA57, RDPID, SGX_LC.
            r.c &= ~(1u << 3 | 1u << 4 | 1u << 5 | 1u << 16 | 1u << 22 | 1u << 30);
            r.d = 0;  // speculation controls and the rest: MSRs not emulated
        } else
            r = {0, 0, 0, 0};
        break;
    case 0xd:
        if (sub == 0) {  // the XSAVE area for the guest's XCR0
            u32 size = 576;
            for (u32 i = 2; i < 32; i++)
                if (u.xcr0 >> i & 1) {
                    Regs4 s = host_cpuid(0xd, i);
                    size = s.a + s.b > size ? s.a + s.b : size;
                }
            r.b = size;
        } else if (sub == 1)
            r.a &= ~(1u << 3);  // XSAVES: IA32_XSS is not emulated
        break;
    case 0x40000000: r = {0x40000000, 0, 0, 0}; break;
    case 0x80000000: r.a = r.a < 0x80000008 ? r.a : 0x80000008; break;
    case 0x80000001:
        // Hidden: CMP_LEGACY, SVM, ExtApicSpace, OSVW, IBS, SKINIT, WDT, TOPOEXT, PERFCTR_CORE/NB,
        // MWAITX; RDTSCP (TSC_AUX has no UTCB field on SVM).
        r.c &= ~(1u << 1 | 1u << 2 | 1u << 3 | 1u << 9 | 1u << 10 | 1u << 12 | 1u << 13 | 1u << 22 |
                 1u << 23 | 1u << 24 | 1u << 29);
        r.d &= ~(1u << 27);
        break;
    case 0x80000007: r = {0, 0, 0, 1u << 8}; break;  // invariant TSC
    case 0x80000008:
        r.b = 0;  // IBPB and friends: MSRs not emulated
        r.c = 0;  // one core
        break;
    default:
        if ((leaf >= 2 && leaf <= 0xc) || (leaf > 0xd && leaf < 0x40000000) || leaf > 0x80000008 ||
            (leaf > 0x40000000 && leaf < 0x80000000))
            r = {0, 0, 0, 0};
    }
    return r;
}

void inject_gp(Utcb &u)
{
    u.intr_info = Inj::VALID | Inj::TYPE_HW_EXC | Inj::ERROR_CODE | 13;
    u.intr_error = 0;
}

void on_msr(Utcb &u, unsigned idx)
{
    bool write = u.qual[0] & 1;
    u32 msr = static_cast<u32>(u.rcx);
    u64 v = (u.rdx & 0xffffffff) << 32 | (u.rax & 0xffffffff);
    u64 *field = nullptr;
    u64 mtd = 0;
    u64 ignored = 0;
    switch (msr) {
    case 0x1b:  // APIC base: enabled at its reset address (BSP bit on vCPU 0); a move is refused
        if (!vm.lapic_on)
            goto gp;
        if (write) {
            if ((v & ~u64{0xfff}) != vmm::Lapic::BASE || !(v & 0x800))
                goto gp;
            break;
        }
        v = vmm::Lapic::BASE | 0x800 | (idx == 0 ? 0x100 : 0);
        break;
    case 0x6e0:  // TSC deadline of this vCPU's local APIC
        if (!vm.lapic_on)
            goto gp;
        if (write) {
            vm.lapic[idx].write_tsc_deadline(v);
            sm_up(vm.tick_sm);  // the ticker's deadline may have changed
            break;
        }
        v = vm.lapic[idx].read_tsc_deadline();
        break;
    case 0x10:  // TSC: the guest's is the host's (the offset stays 0)
        if (write)
            goto gp;
        v = rdtsc();
        break;
    case 0x174: field = &u.sysenter_cs, mtd = Mtd::SYSENTER; break;
    case 0x175: field = &u.sysenter_rsp, mtd = Mtd::SYSENTER; break;
    case 0x176: field = &u.sysenter_rip, mtd = Mtd::SYSENTER; break;
    case 0x277: field = &u.pat, mtd = Mtd::EFER_PAT; break;
    case 0xc0000080:  // EFER: LMA is the CPU's
        if (write) {
            u.efer = (v & ~u64{0x400}) | (u.efer & 0x400);
            u.mtd |= Mtd::EFER_PAT;
        } else
            v = u.efer & ~u64{0x1000};  // SVME is the host's
        goto done;
    case 0xc0000081: field = &u.star, mtd = Mtd::SYSCALL_SWAPGS; break;
    case 0xc0000082: field = &u.lstar, mtd = Mtd::SYSCALL_SWAPGS; break;
    case 0xc0000083: field = &ignored; break;  // CSTAR: no UTCB field; compat SYSCALL unsupported
    case 0xc0000084: field = &u.fmask, mtd = Mtd::SYSCALL_SWAPGS; break;
    case 0xc0000100: field = &u.fs.base, mtd = Mtd::FS_GS; break;
    case 0xc0000101: field = &u.gs.base, mtd = Mtd::FS_GS; break;
    case 0xc0000102: field = &u.kernel_gs_base, mtd = Mtd::SYSCALL_SWAPGS; break;
    case 0x8b:        // microcode patch level
    case 0xc0010015:  // HWCR
    case 0xc0010055:  // interrupt pending message (C1E): read unchecked by Linux on AMD
        if (write)
            break;
        v = 0;
        break;
    default: goto gp;
    }
    if (field) {
        if (write) {
            *field = v;
            u.mtd |= mtd;
        } else
            v = *field;
    }
done:
    if (!write) {
        u.rax = v & 0xffffffff;
        u.rdx = v >> 32;
        u.mtd |= Mtd::GPR_ACDB;
    }
    u.rip += 2;
    u.mtd |= Mtd::RIP_LEN;
    return;
gp:
    if (vm.msr_logged < 16) {
        vm.msr_logged++;
        say("vmm: %s of MSR %#x (value %#lx): #GP\n", write ? "WRMSR" : "RDMSR", msr, write ? v : 0);
    }
    inject_gp(u);
}

// ---- I/O ----------------------------------------------------------------------------------------

u32 io_in(u16 port, unsigned size, const Utcb &u)
{
    if (port >= 0x3f8 && port <= 0x3ff)
        return vm.uart.in(static_cast<u16>(port - 0x3f8));
    switch (port) {
    case 0x20:
    case 0x21:
    case 0xa0:
    case 0xa1: return vm.pic.in(port);
    case 0x40:
    case 0x41:
    case 0x42:
    case 0x43:
    case 0x61: return vm.pit.in(port);
    case 0x70:
    case 0x71: return vm.rtc.in(port);
    case 0x4d0:
    case 0x4d1: return 0;  // ELCR: every ISA IRQ edge-triggered
    default: break;
    }
    if (port >= 0xcf8 && port <= 0xcff)  // no PCI host bridge: all ones, quietly
        return 0xffffffff;
    if (vm.open_bus_logged < 8 && port != 0x80) {
        vm.open_bus_logged++;
        say("vmm: IN from port %#x (size %u) at RIP %#lx: open bus\n", port, size, u.rip);
    }
    return 0xffffffff;
}

void io_out(u16 port, u32 v, unsigned size, const Utcb &u)
{
    if (port >= 0x3f8 && port <= 0x3ff) {
        vm.uart.out(static_cast<u16>(port - 0x3f8), static_cast<u8>(v));
        return;
    }
    switch (port) {
    case 0x20:
    case 0x21:
    case 0xa0:
    case 0xa1: vm.pic.out(port, static_cast<u8>(v)); return;
    case 0x40:
    case 0x41:
    case 0x42:
    case 0x43:
    case 0x61:
        vm.pit.out(port, static_cast<u8>(v));
        if (port == 0x40 || port == 0x43)
            sm_up(vm.tick_sm);  // the ticker's deadline may have changed
        return;
    case 0x70:
    case 0x71: vm.rtc.out(port, static_cast<u8>(v)); return;
    case 0x80: return;  // POST codes, I/O delays
    case 0x64:
        if ((v & 0xff) == 0xfe)
            end(END_RESET, "reset through the keyboard controller (port 0x64, 0xfe)", u);
        return;
    case 0xcf9:
        if (v & 4)
            end(END_RESET, "reset through port 0xcf9", u);
        return;
    case 0x92:
        if (v & 1)
            end(END_RESET, "reset through port 0x92", u);
        return;
    default: break;
    }
    if (port >= 0xcf8 && port <= 0xcff)
        return;
    if (vm.open_bus_logged < 8) {
        vm.open_bus_logged++;
        say("vmm: OUT %#x to port %#x (size %u) at RIP %#lx: ignored\n", v, port, size, u.rip);
    }
}

void on_io(Utcb &u)
{
    u64 q = u.qual[0];
    u16 port = static_cast<u16>(q >> 16);
    unsigned size = q & 0x10 ? 1 : q & 0x20 ? 2 : 4;
    if (q & 4)
        end(END_FAIL, "string I/O (INS/OUTS) is not emulated", u);
    if (q & 1) {
        u32 v = io_in(port, size, u);
        u64 mask = size == 4 ? 0xffffffffull : (u64{1} << (8 * size)) - 1;
        u.rax = size == 4 ? v : (u.rax & ~mask) | (v & mask);
        u.mtd |= Mtd::GPR_ACDB;
    } else
        io_out(port, static_cast<u32>(u.rax), size, u);
    u.rip = u.qual[1];  // IOIO's EXITINFO2: the next RIP
    u.mtd |= Mtd::RIP_LEN;
}

// ---- interrupts -----------------------------------------------------------------------------------

// Send an interrupt message (ICR or I/O APIC redirection entry layout) to the local APICs it
// addresses: fixed and lowest-priority (the first addressed vCPU) deliveries raise the vector,
// INIT is accepted (APs wait for SIPI anyway), SIPI starts an AP that waits for it.
void apic_message(unsigned self, u32 lo, u8 dest)
{
    u32 t = vmm::apic_targets(vm.lapic, vm.ncpus, self, lo, dest);
    switch (lo >> 8 & 7) {
    case 1: t &= -t; [[fallthrough]];  // lowest priority: the first one
    case 0:
        for (unsigned i = 0; i < vm.ncpus; i++)
            if (t >> i & 1)
                vm.lapic[i].raise(static_cast<u8>(lo));
        vm.to_kick |= t;
        return;
    case 5: return;  // INIT (assert and de-assert): an AP not started waits for SIPI already
    case 6:
        for (unsigned i = 1; i < vm.ncpus; i++)
            if ((t >> i & 1) && !vm.v[i].running) {
                vm.v[i].sipi_vector = static_cast<u8>(lo);
                vm.v[i].running = true;
                vm.to_start |= 1u << i;
            }
        return;
    default:
        if (vm.nmi_logged < 4) {
            vm.nmi_logged++;
            say("vmm: IPI with delivery mode %u (ICR %#x, destination %u) not delivered\n", lo >> 8 & 7, lo,
                dest);
        }
    }
}

// An ISA interrupt: to the PIC, and with an I/O APIC through its redirection entry.
void raise_irq(unsigned irq)
{
    vm.pic.raise(irq);
    if (!vm.smp)
        return;
    u64 r = vm.ioapic.redir[vmm::isa_pin(irq)];
    if (!(r >> 16 & 1) && (r >> 8 & 7) <= 1)  // unmasked, fixed or lowest priority
        apic_message(~0u, static_cast<u32>(r) & 0xfff, static_cast<u8>(r >> 56));
}

void poll_devices(unsigned idx)
{
    if (vm.pit.update(now_pit()))
        raise_irq(0);
    if (vm.uart.irq_edge())
        raise_irq(4);
    if (vm.lapic_on)
        vm.lapic[idx].update(rdtsc());
}

// The host TSC of vCPU idx's next timer event (PIT channel 0 for vCPU 0, its local APIC timer), ~0
// if none.
u64 next_event(unsigned idx)
{
    u64 pit = vm.pit.next_irq, t = pit == ~u64{0} || idx ? ~u64{0} : vmm::pit_to_tsc(pit);
    u64 l = vm.lapic_on ? vm.lapic[idx].deadline : ~u64{0};
    return l < t ? l : t;
}

// The interrupt vCPU idx would take now: its local APIC's (fixed) first, then (vCPU 0 only) the
// PIC's through LINT0 (ExtINT); -1 if none. `take` acknowledges it.
int interrupt(unsigned idx, bool take)
{
    if (vm.lapic_on) {
        vmm::Lapic &l = vm.lapic[idx];
        int v = l.pending();
        if (v >= 0) {
            if (take)
                l.ack(static_cast<u8>(v));
            return v;
        }
        if (!l.extint_open())
            return -1;
    }
    if (idx)
        return -1;
    int v = vm.pic.pending();
    return v >= 0 && take ? vm.pic.ack() : v;
}

// Inject an interrupt if the guest can take it now, else ask for the interrupt window. An event
// already in the injection field (the interrupted delivery, or our #GP) goes first.
void deliver(unsigned idx, Utcb &u)
{
    poll_devices(idx);
    bool busy = u.intr_info & Inj::VALID;
    u32 info = busy ? u.intr_info : 0;
    u32 err = busy ? u.intr_error : 0;
    if (interrupt(idx, false) >= 0) {
        if (!busy && (u.rflags & RFLAGS_IF) && !(u.intr_state & 3)) {
            info = Inj::VALID | Inj::TYPE_EXTINT | static_cast<u32>(interrupt(idx, true));
            if (interrupt(idx, false) >= 0)
                info |= Inj::REQ_INTR_WINDOW;
        } else
            info |= Inj::REQ_INTR_WINDOW;
    }
    u.intr_info = info;
    u.intr_error = err;
    u.mtd |= Mtd::INJ;
}

// HLT: wait (without the lock) for an interrupt or the next timer event. With interrupts off the
// vCPU stops for good; when every running vCPU has stopped, the VM has powered off.
void on_hlt(unsigned idx, Utcb &u)
{
    u.rip += 1;
    u.mtd |= Mtd::RIP_LEN;
    Vcpu &c = vm.v[idx];
    if (!(u.rflags & RFLAGS_IF)) {
        c.stopped = true;
        bool all = true;
        for (unsigned i = 0; i < vm.ncpus; i++)
            all = all && (!vm.v[i].running || vm.v[i].stopped);
        if (all)
            end(END_POWEROFF,
                "the guest halted with interrupts off (Linux's power-off and halt without ACPI)", u);
        unlock_and_kick(idx);
        for (;;)
            sm_down(c.wake_sm);  // no NMI, no INIT to a running AP: stopped for good
    }
    for (;;) {
        poll_devices(idx);
        if (interrupt(idx, false) >= 0)
            return;
        u64 next = next_event(idx);
        c.halted = true;
        unlock_and_kick(idx);
        sm_down(c.wake_sm, next == ~u64{0} ? 0 : next);
        lock();
        c.halted = false;
    }
}

// A nested page fault in the local APIC's or the I/O APIC's page: the access decoded and emulated
// (docs/vmm.md).
bool on_mmio(unsigned idx, Utcb &u)
{
    u64 gpa = u.qual[1], pa = 0;
    bool lapic = vm.lapic_on && gpa >= vmm::Lapic::BASE && gpa < vmm::Lapic::BASE + PAGE_SIZE;
    bool ioapic = vm.smp && gpa >= vmm::Ioapic::BASE && gpa < vmm::Ioapic::BASE + PAGE_SIZE;
    if (!lapic && !ioapic)
        return false;
    vmm::Mmio_insn d{};
    bool long64 = (u.efer & 0x400) && (u.cs.ar & 0x200);
    if (!vmm::guest_translate(vm.ram, vm.ram_size, u.cr0, u.cr3, u.cr4, u.efer, u.rip, pa) ||
        pa + 15 > vm.ram_size || !vmm::decode_mmio(vm.ram + pa, 15, long64, u.cs.ar & 0x400, d) ||
        d.size != 4)
        return false;
    u64 gpr[16] = {u.rax, u.rcx, u.rdx, u.rbx, u.rsp, u.rbp, u.rsi, u.rdi,
                   u.r8,  u.r9,  u.r10, u.r11, u.r12, u.r13, u.r14, u.r15};
    u32 off = static_cast<u32>(gpa & 0xff0);
    vmm::Lapic &l = vm.lapic[idx];
    if (d.write) {
        u32 v = static_cast<u32>(vmm::mmio_store_value(d, gpr));
        if (ioapic)
            vm.ioapic.write(off, v);
        else {
            l.write(off, v, rdtsc());
            if (off == 0x380)
                sm_up(vm.tick_sm);  // the ticker's deadline may have changed
            if (off == 0x300)
                apic_message(idx, l.icr_lo, static_cast<u8>(l.icr_hi >> 24));
        }
    } else {
        vmm::mmio_load_result(d, ioapic ? vm.ioapic.read(off) : l.read(off, rdtsc()), gpr);
        u64 *regs[16] = {&u.rax, &u.rcx, &u.rdx, &u.rbx, &u.rsp, &u.rbp, &u.rsi, &u.rdi,
                         &u.r8,  &u.r9,  &u.r10, &u.r11, &u.r12, &u.r13, &u.r14, &u.r15};
        *regs[d.reg & 15] = gpr[d.reg & 15];
        if (d.high_byte)
            *regs[d.reg - 4] = gpr[d.reg - 4];
        u.mtd |= Mtd::GPR_ACDB | Mtd::GPR_BSD | Mtd::GPR_R8_R15 | Mtd::RSP;
    }
    u.rip += d.len;
    u.mtd |= Mtd::RIP_LEN;
    return true;
}

// An AP's first event: wait (without the lock) for its SIPI, then start in real mode at the
// vector's page (CS = vector << 8, IP 0), as after INIT-SIPI-SIPI.
void on_startup_ap(unsigned idx, Utcb &u)
{
    Vcpu &c = vm.v[idx];
    while (!c.running)
        sm_down(c.sipi_sm);
    auto seg = [](u16 sel, u16 ar) { return Utcb_segment{sel, ar, 0xffff, u64{sel} << 4}; };
    u.cs = seg(static_cast<u16>(c.sipi_vector << 8), 0x9b);
    u.ss = u.ds = u.es = u.fs = u.gs = seg(0, 0x93);
    u.tr = Utcb_segment{0, 0x8b, 0xffff, 0};
    u.ldtr = Utcb_segment{0, 0x82, 0xffff, 0};
    u.gdtr = u.idtr = Utcb_segment{0, 0, 0xffff, 0};
    u.cr0 = 0x10;  // ET
    u.cr2 = u.cr3 = u.cr4 = 0;
    u.xcr0 = 1;
    u.efer = 0;
    u.pat = 0x0007040600070406ull;
    u.star = u.lstar = u.fmask = u.kernel_gs_base = 0;
    u.sysenter_cs = u.sysenter_rsp = u.sysenter_rip = 0;
    u.dr7 = 0x400;
    u.rip = u.rsp = 0;
    u.rflags = 2;
    u.rax = u.rbx = u.rcx = u.rdx = u.rbp = u.rdi = u.rsi = 0;
    u.r8 = u.r9 = u.r10 = u.r11 = u.r12 = u.r13 = u.r14 = u.r15 = 0;
    u.intr_state = 0;
    u.ctrl[0] = I_CPUID;
    u.ctrl[1] = 0;
    u.exc_bitmap = 0;
    u.intr_info = u.intr_error = 0;
    u.mtd = MTD_STATE | Mtd::CTRL | Mtd::INJ;
}

void on_startup(Utcb &u)
{
    auto seg = [](u16 sel, u16 ar) { return Utcb_segment{sel, ar, 0xffffffff, 0}; };
    u.cs = seg(0x10, 0xa9b);
    u.ss = u.ds = u.es = u.fs = u.gs = seg(0x18, 0xc93);
    u.tr = Utcb_segment{0, 0x8b, 0x67, 0};
    u.ldtr = Utcb_segment{0, 0, 0, 0};
    u.gdtr = Utcb_segment{0, 0, 0x2f, vmm::G_GDT};
    u.idtr = Utcb_segment{0, 0, 0, 0};
    u.cr0 = 0x80000033;  // PG NE ET MP PE
    u.cr2 = 0;
    u.cr3 = vmm::G_PML4;
    u.cr4 = 0x20;  // PAE
    u.xcr0 = 1;
    u.efer = 0x500;  // LME LMA
    u.pat = 0x0007040600070406ull;
    u.star = u.lstar = u.fmask = u.kernel_gs_base = 0;
    u.sysenter_cs = u.sysenter_rsp = u.sysenter_rip = 0;
    u.dr7 = 0x400;
    u.rip = vm.boot.entry;
    u.rsp = vmm::G_GDT - 0x10;
    u.rflags = 2;
    u.rax = u.rbx = u.rcx = u.rdx = u.rbp = u.rdi = 0;
    u.rsi = vm.boot.zero_page;
    u.r8 = u.r9 = u.r10 = u.r11 = u.r12 = u.r13 = u.r14 = u.r15 = 0;
    u.intr_state = 0;
    u.ctrl[0] = I_CPUID;
    u.ctrl[1] = 0;
    u.exc_bitmap = 0;
    u.intr_info = u.intr_error = 0;
    u.mtd = MTD_STATE | Mtd::CTRL | Mtd::INJ;
}

// What the instruction at the guest's RIP does, decoded from guest memory (decode.hpp): the
// nested page fault gives neither its bytes nor its length on QEMU's SVM.
void describe_access(const Utcb &u, char *out, size_t size)
{
    u64 pa = 0;
    vmm::Mmio_insn d{};
    bool long64 = (u.efer & 0x400) && (u.cs.ar & 0x200);
    if (!vmm::guest_translate(vm.ram, vm.ram_size, u.cr0, u.cr3, u.cr4, u.efer, u.rip, pa) ||
        pa + 15 > vm.ram_size || (u.rip & 0xfff) > 0xff1 ||
        !vmm::decode_mmio(vm.ram + pa, 15, long64, u.cs.ar & 0x400, d)) {
        format(out, size, "the instruction is not a MOV the VMM decodes");
        return;
    }
    u64 gpr[16] = {u.rax, u.rcx, u.rdx, u.rbx, u.rsp, u.rbp, u.rsi, u.rdi,
                   u.r8,  u.r9,  u.r10, u.r11, u.r12, u.r13, u.r14, u.r15};
    if (d.write)
        format(out, size, "a %u-byte write of %#lx, instruction of %u bytes", d.size,
               vmm::mmio_store_value(d, gpr), d.len);
    else
        format(out, size, "a %u-byte read, instruction of %u bytes", d.size, d.len);
}

void exit_handler(u64 id, Utcb &u)
{
    u64 n = id & 0xff;
    unsigned idx = static_cast<unsigned>(id >> 8);
    u.set_items(0, 0);
    if (vm.ended)
        stop();  // no reply: the vCPU waits for good
    u.mtd = 0;
    if (n == EV_STARTUP && idx) {
        on_startup_ap(idx, u);
        return;
    }
    lock();
    vm.exits[n]++;
    switch (n) {
    case EV_STARTUP:
        on_startup(u);
        unlock();
        return;
    case EX_IOIO: on_io(u); break;
    case EX_MSR: on_msr(u, idx); break;
    case EX_CPUID: {
        Regs4 r = guest_cpuid(static_cast<u32>(u.rax), static_cast<u32>(u.rcx), u, idx);
        u.rax = r.a, u.rbx = r.b, u.rcx = r.c, u.rdx = r.d;
        u.rip += 2;
        u.mtd |= Mtd::GPR_ACDB | Mtd::RIP_LEN;
        break;
    }
    case EX_XSETBV:  // QEMU 10 intercepts it: the kernel checks the value (a bad one kills the vCPU)
        u.xcr0 = (u.rdx & 0xffffffff) << 32 | (u.rax & 0xffffffff);
        u.rip += 3;
        u.mtd |= Mtd::CR | Mtd::RIP_LEN;
        break;
    case EX_HLT: on_hlt(idx, u); break;
    case EX_VINTR:
    case EV_RECALL: break;
    case EX_SHUTDOWN: end(END_FAIL, "the guest's triple fault (shutdown exit)", u);
    case EV_NPF: {
        if (on_mmio(idx, u))
            break;
        char why[192], insn[80];
        u64 gpa = u.qual[1];
        describe_access(u, insn, sizeof insn);
        if (gpa >= vmm::ROM_START && gpa < 0x100000 && (u.qual[0] & 2))
            format(why, sizeof why, "guest write to its ROM at %#lx (nested page fault, error %#lx; %s)", gpa,
                   u.qual[0], insn);
        else
            format(why, sizeof why,
                   "guest access to %#lx outside its RAM (nested page fault, error %#lx; %s)", gpa, u.qual[0],
                   insn);
        end(END_FAIL, why, u);
    }
    case EV_INVALID: end(END_FAIL, "the CPU refused the guest's state (invalid state)", u);
    default: {
        char why[64];
        format(why, sizeof why, "unexpected exit %#lx", n);
        end(END_FAIL, why, u);
    }
    }
    deliver(idx, u);
    unlock_and_kick(idx);
}

// ---- the ticker ----------------------------------------------------------------------------------

// The ticker takes no lock (it may preempt a handler on its CPU): it reads the deadlines and kicks
// the vCPU whose timer is due (the PIT's: vCPU 0, whose handler routes its interrupt), or vCPU 0
// for host input.
[[noreturn]] void ticker()
{
    for (;;) {
        u64 deadline = rdtsc() + u64{hip()->freq_tsc} * 10;  // host input is polled every 10 ms
        for (unsigned i = 0; i < vm.ncpus; i++) {
            u64 next = next_event(i);
            if (next != vm.v[i].kicked && next < deadline)
                deadline = next;
        }
        sm_down(vm.tick_sm, deadline);
        if (vm.ended)
            park();
        u8 in[64];
        u32 got = Console::input(in, sizeof in);  // host serial input, if the root gives it to us
        for (u32 i = 0; i < got; i++)
            vm.uart.push(in[i]);
        bool input = got != 0;
        for (unsigned i = 0; i < vm.ncpus; i++) {
            u64 next = next_event(i);
            bool due = next != ~u64{0} && next != vm.v[i].kicked && rdtsc() >= next;
            if (due)
                vm.v[i].kicked = next;
            if (due || (input && i == 0))
                kick(i);
        }
    }
}

// ---- set-up ---------------------------------------------------------------------------------------

// vCPU idx's exit portals: a handler EC on the vCPU's host CPU (portals are per CPU), 256 portals
// with the exit number and the vCPU's index as id, delegated to the VM's PD at idx * 256 (the
// vCPU's event base).
bool exit_portals(u64 pd, unsigned idx)
{
    u64 hsel = alloc_sel(), base = alloc_sel(256);
    static Handler_ec h[MAX_VCPUS];
    if (!hsel || !base ||
        create_handler_ec(h[idx], hsel, self_pd(), vm.v[idx].cpu, exit_handler) != Status::SUCCESS)
        return false;
    for (u64 n = 0; n < 256; n++)
        if (create_portal(base + n, hsel, MTD_IN, n | u64{idx} << 8) != Status::SUCCESS)
            return false;
    return pd_delegate(self_pd(), pd, Crd::obj(base, 8, Crd::ALL_RIGHTS),
                       Item_meta(Item_meta::DELEGATE, u64{idx} * 256),
                       Crd::obj(u64{idx} * 256, 8, Crd::ALL_RIGHTS))
               .status == Status::SUCCESS;
}

// Guest-physical [from, to) with `rights`: our mapping of that RAM, delegated with the G bit in the
// largest naturally aligned pieces.
bool give_ram(u64 from, u64 to, unsigned rights)
{
    for (u64 at = from; at < to;) {
        unsigned order = 0;
        while (order < 9 && !(at >> 12 & ((u64{2} << order) - 1)) && at + (PAGE_SIZE << (order + 1)) <= to)
            order++;
        u64 src = (reinterpret_cast<u64>(vm.ram) + at) >> 12, dst = at >> 12;
        auto r = pd_delegate(self_pd(), vm.pd, Crd::mem(src, order, rights),
                             Item_meta(Item_meta::DELEGATE, dst, Item_meta::G), Crd::mem(dst, order, rights));
        if (r.status != Status::SUCCESS || r.crd.is_null())
            return false;
        at += PAGE_SIZE << order;
    }
    return true;
}

[[noreturn]] void fail(const char *what)
{
    say("vmm: %s\n", what);
    nova::exit(END_FAIL);
}

}  // namespace

int main(const Hip *hip, unsigned cpu)
{
    Console::init();
    vm.start_tsc = rdtsc();
    vm.cpu = cpu;
    vmm::time_init(hip->freq_tsc);
    const Launch_info *info = launch_info();
    if (!info)  // the root task would own the console and QEMU's exit: not our business
        fail("the VMM runs in a PD of its own, started by user/vmmroot (docs/vmm.md)");
    printf("vmm: the VMM starts on CPU %u (TSC %u kHz), a PD of its own (vm%lu)\n", cpu, hip->freq_tsc,
           info->index);
    if (!hip->has(Hip::FEAT_SVM))
        fail("no vCPUs: the HIP does not announce SVM with nested paging (QEMU -cpu max or an AMD CPU)");

    const u64 *w = info->words;
    vm.ram = reinterpret_cast<u8 *>(w[vmm::W_RAM]);
    vm.ram_size = w[vmm::W_RAM_SIZE];
    u64 mem_mib = vm.ram_size / MIB;
    if (!vm.ram || vm.ram_size < 32 * MIB || vm.ram_size % LARGE)
        fail("no guest RAM from the root task");
    u64 ncpus = 1;
    cmdline_u64("cpus", ncpus);
    if (ncpus < 1 || ncpus > MAX_VCPUS)
        fail("cpus= must be between 1 and 4");
    vm.ncpus = static_cast<unsigned>(ncpus);

    if (!w[vmm::W_KERNEL])
        fail("no kernel: the module after the VMM must be a bzImage");
    auto kernel = reinterpret_cast<const u8 *>(w[vmm::W_KERNEL]);
    auto initrd = reinterpret_cast<const u8 *>(w[vmm::W_INITRD]);
    u64 kernel_size = w[vmm::W_KERNEL_SIZE], initrd_size = initrd ? w[vmm::W_INITRD_SIZE] : 0;
    memset(vm.ram, 0, vm.ram_size);

    // The guest's command line, with the TSC frequency from the HIP (docs/vmm.md, "Time").
    static char cmdline[vmm::CMDLINE_MAX];
    const char *args =
        w[vmm::W_KERNEL_ARGS_LEN] ? reinterpret_cast<const char *>(w[vmm::W_KERNEL_ARGS]) : "console=ttyS0";
    size_t args_len = w[vmm::W_KERNEL_ARGS_LEN] ? w[vmm::W_KERNEL_ARGS_LEN] : strlen(args);
    if (args_len > sizeof cmdline - 64)
        fail("the guest's command line is too long");
    for (size_t i = 0; i < args_len; i++)  // not NUL-terminated in the module's string
        cmdline[i] = args[i];
    u64 ncpus_arg = 1;
    cmdline_u64("cpus", ncpus_arg);
    size_t len = args_len + format(cmdline + args_len, sizeof cmdline - args_len, " tsc_early_khz=%u%s",
                                   hip->freq_tsc, ncpus_arg > 1 ? " no_timer_check tsc=reliable" : "");
    vm.boot = vmm::load_linux(vm.ram, vm.ram_size, kernel, kernel_size, initrd, initrd_size, cmdline, len);
    if (vm.boot.error)
        fail(vm.boot.error);
    printf(
        "vmm: Linux boot protocol %u.%02u, kernel at %#lx-%#lx, entry %#lx, initrd %lu KiB at %#lx, %lu MiB "
        "RAM\n",
        vm.boot.version >> 8, vm.boot.version & 0xff, vm.boot.kernel_at, vm.boot.kernel_end, vm.boot.entry,
        initrd_size >> 10, vm.boot.initrd_at, mem_mib);
    printf("vmm: command line: %s\n", cmdline);

    vm.pit.next_irq = ~u64{0};
    vm.smp = vm.ncpus > 1;
    vm.lapic_on = cmdline_flag("lapic") || vm.smp;
    vm.uart.sink = guest_out;
    if (vm.smp) {  // the MP table and the I/O APIC (docs/vmm.md, "SMP guests")
        vm.ioapic.reset(vm.ncpus);
        Regs4 id = host_cpuid(1, 0);
        if (!vmm::build_mp_table(vm.ram, vmm::G_MP_TABLE, 0x400, vm.ncpus, id.a, id.d & (1u << 0 | 1u << 9)))
            fail("the MP table does not fit");
    }
    vm.pd = alloc_sel();
    vm.tick_sm = alloc_sel();
    if (create_pd(vm.pd, self_pd()) != Status::SUCCESS ||
        create_sm(vm.tick_sm, self_pd(), 0) != Status::SUCCESS)
        fail("cannot create the VM's PD or the ticker's semaphore");
    // Host CPUs for the vCPUs: those the root task gave us, our start CPU first.
    unsigned nonline =
        info->ncpus >= 1 && info->ncpus <= Launch_info::MAX_CPUS ? static_cast<unsigned>(info->ncpus) : 1;
    for (unsigned i = 0; i < vm.ncpus; i++) {
        Vcpu &c = vm.v[i];
        c.cpu = info->cpus[i % nonline];
        c.kicked = ~u64{0};
        c.ec = alloc_sel();
        c.wake_sm = alloc_sel();
        c.sipi_sm = alloc_sel();
        vm.lapic[i].reset(i);
        if (!exit_portals(vm.pd, i) || create_sm(c.wake_sm, self_pd(), 0) != Status::SUCCESS ||
            create_sm(c.sipi_sm, self_pd(), 0) != Status::SUCCESS)
            fail("cannot create a vCPU's exit portals or semaphores");
    }
    vm.v[0].running = true;

    // Guest RAM: G-bit delegations at guest-physical 0; the BIOS area [0xf0000, 0x100000) read
    // only (a write there is reported as the guest's fault, docs/vmm.md).
    if (!give_ram(0, vmm::ROM_START, Perm_mem::RWX) || !give_ram(vmm::ROM_START, 0x100000, Perm_mem::R) ||
        !give_ram(0x100000, vm.ram_size, Perm_mem::RWX))
        fail("cannot delegate the guest's RAM");

    if (!start_thread(cpu, 3, ticker))
        fail("cannot create the ticker");
    for (unsigned i = 0; i < vm.ncpus; i++) {
        u64 sc = alloc_sel();
        if (create_ec(vm.v[i].ec, vm.pd, vm.v[i].cpu, 0, 0, u64{i} * 256,
                      Create_ec_flag::VCPU | Create_ec_flag::GLOBAL) != Status::SUCCESS ||
            create_sc(sc, self_pd(), vm.v[i].ec, Qpd(1, 10000)) != Status::SUCCESS)
            fail("cannot create a vCPU or its SC");
        if (i)
            printf("vmm: vCPU %u on host CPU %u waits for its SIPI\n", i, vm.v[i].cpu);
    }
    printf("vmm: VM set up in %lu ms; %s starts on host CPU %u\n", ms_since(vm.start_tsc),
           vm.ncpus > 1 ? "vCPU 0 (the BSP)" : "the vCPU", vm.v[0].cpu);
    park();
}
