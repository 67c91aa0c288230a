/*
 * Root task hand-off (ABI 9): the first multiboot module is an ELF64
 * executable. It is checked before anything is mapped; a bad image is a
 * clear kill line, never a crash. Segments are mapped in place from the
 * module (ABI 9.2), the UTCB and HIP pages at the top of user space.
 */
#include "abi/hip.hpp"
#include "boot.hpp"
#include "console.hpp"
#include "cpu.hpp"
#include "elf.hpp"
#include "hip_builder.hpp"
#include "idt.hpp"
#include "kmem.hpp"
#include "mapping.hpp"
#include "memory.hpp"
#include "objects.hpp"
#include "paging.hpp"
#include "sched.hpp"
#include "smp.hpp"
#include "string.hpp"
#include "time.hpp"
#include "x86.hpp"

namespace {

[[noreturn]] void refuse(const char *reason)
{
    // The root EC never ran in user mode: its frame's vector is the startup event 0x1e (ABI 13.3).
    trace("Killed EC:%#lx SC:%#lx V:0x1e CS:0x0 EIP:0x0 CR2:0x0 ERR:0x0 (%s)",
          reinterpret_cast<u64>(&Cpu::current()), reinterpret_cast<u64>(&Cpu::current()), reason);
    Sched::idle_loop();
}

bool range_free(const u64 *pml4, u64 va, u64 len)
{
    for (u64 a = va; a < va + len; a += PAGE_SIZE)
        if (Paging::lookup(pml4, a) != ~u64{0})
            return false;
    return true;
}

}  // namespace

void start_root_task()
{
    const Boot_info &bi = Boot::info;
    if (!bi.module_count) {
        trace("ROOT: no multiboot module, so there is no root task to start");
        refuse("No ELF");
    }

    const Boot_module &m = bi.modules[0];
    u64 size = m.end - m.start;
    const u8 *image = static_cast<const u8 *>(Boot::phys.map(m.start, size ? size : 1));
    if (!image)
        refuse("No ELF");

    Elf_info elf;
    Elf_status st = elf_check(image, size, elf);
    if (st != Elf_status::OK) {
        trace("ROOT: module 0 at %#lx (%lu bytes) rejected: %s", m.start, size, elf.reason);
        refuse(st == Elf_status::NO_ELF ? "No ELF" : "Bad ELF");
    }

    // Mapping in place needs a page-aligned module; copy the rare unaligned one.
    u64 phys = m.start;
    if (phys & (PAGE_SIZE - 1)) {
        unsigned order = 0;
        while ((PAGE_SIZE << order) < size)
            order++;
        void *copy = Kmem::alloc(order, false);
        if (!copy)
            refuse("Bad ELF");
        memcpy(copy, image, size);
        phys = virt_to_phys(copy);
        trace("ROOT: module not page aligned, copied to %#lx", phys);
    }

    // The root PD's quota is the whole pool left now (docs/quota.md); it pays for itself.
    Pd::root_quota.init_root(Kmem::free_pages() * PAGE_SIZE);
    Pd *pd = Pd::create(&Pd::root_quota, &Pd::root_quota);
    if (!pd)
        panic("ROOT: out of memory for the root PD");
    pd->privileged = true;
    Pd::root = pd;
    u64 *pml4 = pd->pml4;

    // The HIP ends at USER_ADDR and the root UTCB lies right below it: HIP_ADDR and ROOT_UTCB_ADDR
    // with up to 64 CPUs, lower with more (the HIP spans several pages: docs/boot.md "HIP layout").
    unsigned hip_pages = Hip::pages_for(Hip_builder::cpus()), hip_order = 0;
    while ((1u << hip_order) < hip_pages)
        hip_order++;
    void *hip = Kmem::alloc(hip_order);
    if (!hip)
        panic("ROOT: out of memory for the HIP");
    Boot::hip_phys = virt_to_phys(hip);
    Boot::hip_pages = hip_pages;
    Pd::create_kernel(Boot::hip_phys, hip_pages);
    const u64 HIP_ADDR = USER_ADDR - u64{hip_pages} * PAGE_SIZE, UTCB_ADDR = HIP_ADDR - PAGE_SIZE;

    // ELF segments: root nodes of the root PD's memory space, rights from p_flags (ABI 9.2).
    for (u32 i = 0; i < elf.count; i++) {
        const Elf_segment &s = elf.segment[i];
        u64 va = align_down(s.vaddr, PAGE_SIZE);
        u64 pa = align_down(phys + s.offset, PAGE_SIZE);
        u64 len = align_up(s.filesz, PAGE_SIZE);
        unsigned rights =
            (s.flags & ELF_PF_R ? 1 : 0) | (s.flags & ELF_PF_W ? 2 : 0) | (s.flags & ELF_PF_X ? 4 : 0);
        if (!rights || !len)
            continue;
        if (!Mapping::free(pd, Crd::MEM, va >> 12, 0) || !range_free(pml4, va, len)) {
            trace("ROOT: segment %u at %#lx overlaps an earlier one, skipped", i, va);
            continue;
        }
        if (Mapping::insert_roots(pd, Crd::MEM, va >> 12, len >> 12, rights, pa >> 12) != Mdb::Status::OK)
            panic("ROOT: out of memory mapping the root task");
    }

    if (hip) {
        auto &h = *static_cast<Hip *>(hip);
        Hip_builder::build(h);
        trace("HIP: %u CPUs online, %u memory descriptors, length %#x, checksum %s", h.num_cpus_online(),
              h.num_mem_desc(), h.length, h.checksum_ok() ? "ok" : "BAD");
    }
    if (Mapping::insert_roots(pd, Crd::MEM, HIP_ADDR >> 12, hip_pages, 1, Boot::hip_phys >> 12) !=
        Mdb::Status::OK)
        panic("ROOT: out of memory for the HIP");

    // ABI 9.5: PD, EC (global, boot CPU) and SC (priority 1, 10 ms) at selectors 32, 33, 34.
    Cpu &c = Cpu::current();
    bool taken;
    Ec *ec = Ec::create(pd, c.id, UTCB_ADDR, HIP_ADDR, 0, true, taken, &Pd::root_quota);
    Sc *sc = ec ? Sc::create(ec, c.id, Abi::ROOT_SC_PRIO, Abi::ROOT_SC_QUANTUM_US, &Pd::root_quota) : nullptr;
    auto obj = [](Kobject *o) { return reinterpret_cast<u64>(o); };
    if (!sc || Mapping::insert_root(pd, Crd::OBJ, Abi::SEL_ROOT_PD, 0, 0x1f, obj(pd)) != Mdb::Status::OK ||
        Mapping::insert_root(pd, Crd::OBJ, Abi::SEL_ROOT_EC, 0, Perm_ec::CREATED, obj(ec)) !=
            Mdb::Status::OK ||
        Mapping::insert_root(pd, Crd::OBJ, Abi::SEL_ROOT_SC, 0, Perm_sc::CREATED, obj(sc)) != Mdb::Status::OK)
        panic("ROOT: out of memory for the root objects");

    // ABI 9.4: entered with sysretq at the ELF entry, rsp = HIP, rdi = boot CPU; no startup message.
    Exc_frame *f = &ec->regs;
    memset(f, 0, sizeof *f);
    f->rip = elf.entry;
    f->rcx = elf.entry;
    f->rsp = HIP_ADDR;
    f->rdi = c.id;
    f->cs = Gdt::UCODE;
    f->ss = Gdt::UDATA;
    f->rflags = 0x202;
    f->vector = ~u64{0};  // returns like a hypercall (sysretq)
    ec->started = true;

    u64 ticks = rdtsc() - Boot::entry_tsc;
    trace("ROOT: loaded %lu bytes, %u segments, entry %#lx", size, elf.count, elf.entry);
    trace("BOOT: root task after %llu TSC ticks (%llu ms)", static_cast<unsigned long long>(ticks),
          static_cast<unsigned long long>(Time::tsc_khz ? ticks / Time::tsc_khz : 0));

    c.ec = nullptr;
    Sched::run(sc, ec);
}
