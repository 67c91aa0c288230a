/*
 * CPU table, per-CPU set-up and AP start-up.
 */
#include "smp.hpp"
#include "boot.hpp"
#include "cmdline.hpp"
#include "console.hpp"
#include "cpu.hpp"
#include "fpu.hpp"
#include "idt.hpp"
#include "kmem.hpp"
#include "lapic.hpp"
#include "memory.hpp"
#include "paging.hpp"
#include "sched.hpp"
#include "start.hpp"
#include "string.hpp"
#include "time.hpp"
#include "vcpu.hpp"
#include "vga.hpp"
#include "x86.hpp"

namespace {

using namespace Smp;

/*
 * The stacks of CPU n live in the kernel's stack window (include/memory.hpp), in the slot
 * KSTACK_WINDOW + n * STACK_SLOT, with unmapped guard pages below each of them:
 *
 *   offset  0 KiB  guard (16 KiB)
 *          16 KiB  kernel stack (STACK_ORDER: 16 KiB; its top is aligned to its size, ap_main)
 *          32 KiB  guard, 36 KiB  #DF IST stack
 *          40 KiB  guard, 44 KiB  NMI IST stack
 *          48 KiB  guard, 52 KiB  #MC IST stack
 *          56 KiB  guard up to the next slot
 *
 * An overflow writes into a guard page: a #PF, whose frame the CPU cannot push on the exhausted
 * stack either, so a #DF on its own IST stack reports it (kernel_fault). The pages themselves
 * come from the kernel pool (and stay reachable through the direct map too).
 */
constexpr u64 KSTACK_OFF = 16 << 10;
constexpr u64 IST_OFF[3] = {36 << 10, 44 << 10, 52 << 10};  // IST_DF, IST_NMI, IST_MC
static_assert(KSTACK_OFF >= (PAGE_SIZE << STACK_ORDER) &&
              KSTACK_OFF + (PAGE_SIZE << STACK_ORDER) + PAGE_SIZE <= IST_OFF[0]);
static_assert(IST_OFF[2] + 2 * PAGE_SIZE <= STACK_SLOT);

bool map_stack(u64 va, u64 size, void *mem)
{
    return mem && Paging::map(Paging::kernel_pml4(), va, virt_to_phys(mem), size, Pte::W | Pte::G, false);
}

bool alloc_stacks(Cpu &c, unsigned idx)
{
    u64 slot = KSTACK_WINDOW + idx * STACK_SLOT;
    if (!map_stack(slot + KSTACK_OFF, PAGE_SIZE << STACK_ORDER, Kmem::alloc(STACK_ORDER, false)))
        return false;
    c.kstack_top = slot + KSTACK_OFF + (PAGE_SIZE << STACK_ORDER);
    for (unsigned i = 0; i < 3; i++) {
        if (!map_stack(slot + IST_OFF[i], PAGE_SIZE, Kmem::alloc(0, false)))
            return false;
        c.set_ist(i + 1, slot + IST_OFF[i] + PAGE_SIZE);
    }
    static_assert(IST_DF == 1 && IST_NMI == 2 && IST_MC == 3);
    return true;
}

u32 cpuid_apic_id()
{
    if (cpuid(0).eax >= 0xb && cpuid(0xb).ebx)
        return cpuid(0xb).edx;
    return cpuid(1).ebx >> 24;
}

Cpu *find_cpu(u32 apic_id)
{
    for (unsigned i = 0; i < Cpu::count; i++)
        if (Cpu::table[i]->apic_id == apic_id)
            return Cpu::table[i];
    return nullptr;
}

volatile unsigned aps_arrived;

}  // namespace

bool Smp::setup_cpus(const Phys_reader &r, const Acpi_info &acpi)
{
    unsigned n = 0;
    Acpi::for_each_cpu(r, acpi, [&](const Madt_cpu &m) { n += m.enabled; });
    u32 bsp_apic = cpuid_apic_id();
    if (n == 0) {
        trace("SMP: no usable CPU in the MADT, running on the boot CPU only");
        n = 1;
    }

    unsigned pages_order = 0;
    while ((PAGE_SIZE << pages_order) < n * sizeof(Cpu *))
        pages_order++;
    Cpu::table = static_cast<Cpu **>(Kmem::alloc(pages_order));
    if (!Cpu::table)
        panic("SMP: out of memory for the CPU table (%u CPUs)", n);

    unsigned idx = 0;
    bool bsp_listed = false;
    auto add = [&](u32 apic_id, u32 acpi_id) {
        unsigned order = 0;
        while ((PAGE_SIZE << order) < sizeof(Cpu))
            order++;
        auto c = static_cast<Cpu *>(Kmem::alloc(order));
        if (!c || !alloc_stacks(*c, idx))
            panic("SMP: out of memory for CPU %u", idx);
        c->self = c;
        c->id = idx;
        c->apic_id = apic_id;
        c->acpi_id = acpi_id;
        c->bsp = apic_id == bsp_apic;
        bsp_listed |= c->bsp;
        Cpu::table[idx++] = c;
    };
    Acpi::for_each_cpu(r, acpi, [&](const Madt_cpu &m) {
        if (m.enabled && idx < n)
            add(m.apic_id, m.acpi_uid);
    });
    if (!bsp_listed) {
        // Firmware that does not list the boot CPU: run on it anyway, as the last CPU.
        if (idx == n)
            idx--;
        trace("SMP: boot CPU (APIC id %#x) is not in the MADT; adding it", bsp_apic);
        add(bsp_apic, 0xff);
    }
    Cpu::count = idx;

    for (unsigned i = 0; i < Cpu::count; i++)
        if (Cpu::table[i]->bsp) {
            wrmsr(Msr::GS_BASE, reinterpret_cast<u64>(Cpu::table[i]));
            wrmsr(Msr::KERNEL_GS_BASE, 0);
        }
    return true;
}

void Smp::init_this_cpu()
{
    Cpu &c = Cpu::current();
    c.setup_descriptors();
    c.detect_features();
    c.enable_features(Boot::cmdline.nopcid, Boot::cmdline.noxsave);
    Fpu::init_cpu(c.feat.xsave && !Boot::cmdline.noxsave);
    Virt::init_cpu(c);
    Lapic::init_cpu();
    Lapic::timer_setup(c.feat.tsc_deadline && !Boot::cmdline.nodl);
    if (Time::tsc_khz)
        Lapic::timer_arm_tsc(rdtsc() + Time::ms_to_tsc(100));
    if (c.bsp)
        c.print_core_line();
    // APs do not print: with many CPUs on few host cores (TCG), contention on the console
    // lock made bring-up crawl. The BSP prints their lines, in CPU order, when all are up.
    c.online = true;
    __atomic_fetch_add(&Cpu::online_count, 1, __ATOMIC_SEQ_CST);
}

const char *Smp::stack_guard(u64 addr, unsigned &cpu)
{
    static const char *const what[] = {"kernel stack", "#DF stack", "NMI stack", "#MC stack"};
    u64 boot_guard = reinterpret_cast<u64>(boot_stack_guard) + KERNEL_VIRT;  // as kernel_entry uses it
    if (addr >= boot_guard && addr < boot_guard + PAGE_SIZE) {
        cpu = 0;
        return "boot stack";
    }
    if (addr < KSTACK_WINDOW || addr >= KSTACK_WINDOW + u64{Cpu::count} * STACK_SLOT)
        return nullptr;
    cpu = static_cast<unsigned>((addr - KSTACK_WINDOW) / STACK_SLOT);
    u64 off = (addr - KSTACK_WINDOW) % STACK_SLOT;
    if (off < KSTACK_OFF)
        return what[0];
    for (unsigned i = 0; i < 3; i++)
        if (off >= IST_OFF[i] - PAGE_SIZE && off < IST_OFF[i])
            return what[i + 1];
    return nullptr;
}

extern "C" [[noreturn]] void ap_main(unsigned ticket)
{
    (void)ticket;
    Cpu *c = find_cpu(cpuid_apic_id());
    if (!c) {
        // Woken but not ours (should not happen: we only wake MADT CPUs). Park quietly.
        halt_forever();
    }
    wrmsr(Msr::GS_BASE, reinterpret_cast<u64>(c));
    wrmsr(Msr::KERNEL_GS_BASE, 0);
    set_cr3(virt_to_phys(Paging::kernel_pml4()));
    // The stack from the ticket becomes this CPU's stack for good.
    u64 rsp;
    asm volatile("mov %%rsp, %0" : "=r"(rsp));
    c->kstack_top = align_up(rsp, PAGE_SIZE << Smp::STACK_ORDER);
    Smp::init_this_cpu();
    __atomic_fetch_add(&aps_arrived, 1, __ATOMIC_SEQ_CST);
    Sched::idle_loop();
}

void Smp::boot_aps(u64 page)
{
    unsigned aps = Cpu::count - 1;
    if (!aps || !page) {
        if (aps)
            trace("SMP: no page below 1 MiB for the AP trampoline; %u CPUs stay off", aps);
        trace("SMP: %u of %u CPUs online (0 ms)", Cpu::online_count, Cpu::count);
        return;
    }

    // Stacks by ticket: the n-th AP to arrive takes the n-th stack.
    ap_stacks = static_cast<u64 *>(Kmem::alloc(0));
    unsigned order = 0;
    while ((PAGE_SIZE << order) < aps * sizeof(u64))
        order++;
    if (order) {
        Kmem::free(ap_stacks, 0);
        ap_stacks = static_cast<u64 *>(Kmem::alloc(order));
    }
    if (!ap_stacks)
        panic("SMP: out of memory for AP stacks");
    unsigned k = 0;
    for (unsigned i = 0; i < Cpu::count; i++)
        if (!Cpu::table[i]->bsp)
            ap_stacks[k++] = Cpu::table[i]->kstack_top;

    auto tramp = phys_to_virt<u8>(page);
    memcpy(tramp, trampoline_start, static_cast<size_t>(trampoline_end - trampoline_start));
    auto patch = [&](u32 *sym, u32 v) {
        *reinterpret_cast<u32 *>(tramp + (reinterpret_cast<char *>(sym) - trampoline_start)) = v;
    };
    patch(&tr_gdtr_base, static_cast<u32>(page + reinterpret_cast<u64>(tr_gdt_off)));
    patch(&tr_far32, static_cast<u32>(page + reinterpret_cast<u64>(tr_pm32_off)));
    patch(&tr_far64, static_cast<u32>(page + reinterpret_cast<u64>(tr_pm64_off)));
    patch(&tr_cr3, static_cast<u32>(virt_to_phys(Paging::kernel_pml4())));  // below 4 GiB (src/init.cpp)

    u64 t0 = rdtsc();
    for (unsigned i = 0; i < Cpu::count; i++)
        if (!Cpu::table[i]->bsp)
            Lapic::send_init(Cpu::table[i]->apic_id);
    Time::udelay(10000);
    for (unsigned round = 0; round < 2; round++) {
        for (unsigned i = 0; i < Cpu::count; i++)
            if (!Cpu::table[i]->bsp && !Cpu::table[i]->online)
                Lapic::send_sipi(Cpu::table[i]->apic_id, static_cast<u32>(page >> 12));
        Time::udelay(200);
    }

    // Wait for check-in: generous for TCG with hundreds of CPUs on few host cores.
    u64 limit = rdtsc() + Time::ms_to_tsc(5000 + 100 * u64{aps});
    while (aps_arrived < aps && rdtsc() < limit)
        pause();
    u64 ms = (rdtsc() - t0) / (Time::tsc_khz ? Time::tsc_khz : 1);
    for (unsigned i = 0; i < Cpu::count; i++)
        if (Cpu::table[i]->online && !Cpu::table[i]->bsp)
            Cpu::table[i]->print_core_line();
    if (aps_arrived < aps) {
        for (unsigned i = 0; i < Cpu::count; i++)
            if (!Cpu::table[i]->online)
                trace("SMP: CPU %u (APIC id %#x) did not start", i, Cpu::table[i]->apic_id);
    }
    trace("SMP: %u of %u CPUs online (%llu ms)", Cpu::online_count, Cpu::count,
          static_cast<unsigned long long>(ms));
}
