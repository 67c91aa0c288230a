/*
 * The launcher side of nova/launch.hpp: physical memory from the kernel, an ELF64 program loaded
 * into a PD of its own and started like a root task, and the rings that carry its console.
 */
#include "nova/launch.hpp"
#include "nova/console.hpp"
#include "nova/elf.hpp"
#include "string.hpp"

namespace nova {

namespace {

constexpr u64 MIB = u64{1} << 20, GIB = u64{1} << 30;
u64 phys_floor = 16 * MIB;  // below: firmware, the loader's structures; never handed out

constexpr unsigned MAX_PROGRAMS = 16;
Program *started[MAX_PROGRAMS];  // by index, for the startup portals

// Fresh memory for the program at [virt, virt + size) (page aligned), also mapped in our PD at
// the returned address (zeroed); nullptr when memory or a delegation fails.
u8 *fresh(const Program &p, u64 virt, u64 size, unsigned rights)
{
    u64 phys = alloc_phys(size);
    auto *ours = phys ? static_cast<u8 *>(map_phys(phys, size, Perm_mem::RW)) : nullptr;
    if (!ours || map_phys_into(p.pd, phys, virt, size, rights) != Status::SUCCESS)
        return nullptr;
    memset(ours, 0, size);
    return ours;
}

bool load_segments(Program &p, const u8 *elf, u64 size, const char *&error)
{
    auto *eh = reinterpret_cast<const Elf_ehdr *>(elf);
    if (size < sizeof(Elf_ehdr) || memcmp(eh->ident, "\177ELF", 4) != 0 || eh->ident[4] != 2 ||
        eh->machine != 62 || eh->phentsize != sizeof(Elf_phdr) || eh->phoff > size ||
        u64{eh->phnum} * sizeof(Elf_phdr) > size - eh->phoff) {
        error = "not an ELF64 x86-64 program";
        return false;
    }
    p.entry = eh->entry;
    unsigned loaded = 0;
    for (unsigned i = 0; i < eh->phnum; i++) {
        Elf_phdr ph;
        memcpy(&ph, elf + eh->phoff + i * sizeof(Elf_phdr), sizeof ph);
        if (ph.type != PT_LOAD)
            continue;
        u64 first = align_down(ph.vaddr, PAGE_SIZE), end = ph.vaddr + ph.memsz;
        if (ph.filesz > ph.memsz || ph.offset > size || ph.filesz > size - ph.offset || end < ph.vaddr ||
            first < PAGE_SIZE || end > LAUNCH_AREA) {
            error = "a PT_LOAD segment outside the file or outside [4 KiB, LAUNCH_AREA)";
            return false;
        }
        u64 len = align_up(end, PAGE_SIZE) - first;
        unsigned rights = (ph.flags & PF_R ? Perm_mem::R : 0) | (ph.flags & PF_W ? Perm_mem::W : 0) |
                          (ph.flags & PF_X ? Perm_mem::X : 0);
        u8 *mem = fresh(p, first, len, rights);
        if (!mem) {
            error = "no memory for a segment";
            return false;
        }
        memcpy(mem + (ph.vaddr - first), elf + ph.offset, ph.filesz);
        loaded++;
    }
    if (!loaded)
        error = "no PT_LOAD segment";
    return loaded != 0;
}

// The startup portal of a program's first EC: it starts as a root task would (ABI 9.4), plus
// rsi = its info page and rdx = LAUNCH_MAGIC.
void startup(u64 id, Utcb &u)
{
    const Program *p = id < MAX_PROGRAMS ? started[id] : nullptr;
    if (!p) {
        u.mtd = 0;
        return;
    }
    u.rip = p->entry;
    u.rsp = p->hip;
    u.rdi = p->info->cpus[0];
    u.rsi = LAUNCH_AREA;
    u.rdx = LAUNCH_MAGIC;
    u.rax = u.rbx = u.rcx = u.rbp = 0;
    u.mtd = Mtd::RIP_LEN | Mtd::RSP | Mtd::GPR_ACDB | Mtd::GPR_BSD;
}

}  // namespace

u64 alloc_phys(u64 size, u64 align)
{
    const Hip *h = hip();
    if (!size || align < PAGE_SIZE || (align & (align - 1)) || size > ~u64{0} / 2)
        return 0;
    size = align_up(size, PAGE_SIZE);
    u64 best = ~u64{0};
    for (unsigned i = 0; i < h->num_mem_desc(); i++) {
        const Hip_mem *d = h->mem(i);
        if (d->type != Hip_mem::AVAILABLE)
            continue;
        u64 s = align_up(d->addr > phys_floor ? d->addr : phys_floor, align), end = d->addr + d->size;
        while (s + size <= end && s < best) {
            u64 clash = 0;
            for (unsigned j = 0; j < h->num_mem_desc(); j++) {
                const Hip_mem *o = h->mem(j);
                if (o->type != Hip_mem::AVAILABLE && o->addr < s + size && s < o->addr + o->size)
                    clash = o->addr + o->size > clash ? o->addr + o->size : clash;
            }
            if (!clash) {
                best = s;
                break;
            }
            s = align_up(clash, align);
        }
    }
    if (best == ~u64{0})
        return 0;
    phys_floor = best + size;
    return best;
}

bool load_program(Program &p, unsigned index, const u8 *elf, u64 size, const char *cmdline, u64 len,
                  const unsigned *cpus, unsigned ncpus, u64 notify, const char *&error)
{
    error = nullptr;
    p = Program{};
    p.index = index;
    p.next_virt = LAUNCH_AREA + GIB;
    if (index >= MAX_PROGRAMS || !ncpus || ncpus > Launch_info::MAX_CPUS || len >= sizeof p.info->cmdline) {
        error = "too many programs, CPUs or command-line bytes";
        return false;
    }
    p.pd = alloc_sel();
    if (!p.pd || create_pd(p.pd, self_pd()) != Status::SUCCESS ||
        pd_delegate(self_pd(), p.pd, Crd::obj(p.pd), Item_meta(Item_meta::DELEGATE, SEL_ROOT_PD),
                    Crd::obj(SEL_ROOT_PD))
            .crd.is_null() ||
        pd_delegate(self_pd(), p.pd, Crd::obj(notify, 0, Perm_sm::UP),
                    Item_meta(Item_meta::DELEGATE, LAUNCH_SEL_NOTIFY), Crd::obj(LAUNCH_SEL_NOTIFY))
            .crd.is_null()) {
        error = "cannot create the program's PD or give it its capabilities";
        return false;
    }
    if (!load_segments(p, elf, size, error))
        return false;

    // The HIP, copied (read-only) to where ours is; the UTCB of the first EC goes below it.
    const Hip *h = hip();
    u64 hip_page = align_down(reinterpret_cast<u64>(h), PAGE_SIZE);
    u64 hip_len = align_up(reinterpret_cast<u64>(h) + h->length, PAGE_SIZE) - hip_page;
    u8 *hip_copy = fresh(p, hip_page, hip_len, Perm_mem::R);
    p.info = reinterpret_cast<Launch_info *>(fresh(p, LAUNCH_AREA, PAGE_SIZE, Perm_mem::R));
    p.ring = reinterpret_cast<Launch_ring *>(fresh(p, LAUNCH_AREA + PAGE_SIZE, PAGE_SIZE, Perm_mem::RW));
    if (!hip_copy || !p.info || !p.ring) {
        error = "no memory for the program's HIP, info page or ring";
        return false;
    }
    memcpy(hip_copy, reinterpret_cast<const u8 *>(hip_page), hip_len);
    p.hip = reinterpret_cast<u64>(h);
    p.info->magic = LAUNCH_MAGIC;
    p.info->index = index;
    p.info->ring = LAUNCH_AREA + PAGE_SIZE;
    p.info->ncpus = ncpus;
    for (unsigned i = 0; i < ncpus; i++)
        p.info->cpus[i] = cpus[i];
    memcpy(p.info->cmdline, cmdline, len);
    p.info->cmdline_len = len;
    return true;
}

u64 give_program(Program &p, u64 phys, u64 size, unsigned rights)
{
    u64 first = align_down(phys, PAGE_SIZE), len = align_up(phys + size, PAGE_SIZE) - first;
    u64 at = p.next_virt;
    if (!size || len > VIRT_BASE - at || map_phys_into(p.pd, first, at, len, rights) != Status::SUCCESS)
        return 0;
    p.next_virt = align_up(at + len, GIB);
    return at + (phys - first);
}

bool start_program(Program &p, unsigned prio)
{
    unsigned cpu = p.info->cpus[0];
    u64 hsel = alloc_sel(), pt = alloc_sel(), ec = alloc_sel(), sc = alloc_sel();
    Handler_ec h;
    if (!sc || started[p.index])
        return false;
    started[p.index] = &p;
    return create_handler_ec(h, hsel, self_pd(), cpu, startup) == Status::SUCCESS &&
           create_portal(pt, hsel, Mtd::RIP_LEN | Mtd::RSP | Mtd::GPR_ACDB | Mtd::GPR_BSD, p.index) ==
               Status::SUCCESS &&
           !pd_delegate(self_pd(), p.pd, Crd::obj(pt),
                        Item_meta(Item_meta::DELEGATE, LAUNCH_SEL_EVT + Evt::STARTUP),
                        Crd::obj(LAUNCH_SEL_EVT + Evt::STARTUP))
                .crd.is_null() &&
           create_ec_global(ec, p.pd, cpu, p.hip - PAGE_SIZE, 0, LAUNCH_SEL_EVT) == Status::SUCCESS &&
           create_sc(sc, self_pd(), ec, Qpd(prio, 10000)) == Status::SUCCESS;
}

u32 program_output(Program &p, u8 *buf, u32 n)
{
    // The program writes the head (and could write the tail): never more than a ringful.
    Launch_ring *r = p.ring;
    u32 head = __atomic_load_n(&r->out_head, __ATOMIC_ACQUIRE), tail = r->out_tail;
    if (head - tail > Launch_ring::OUT_SIZE)
        tail = head - Launch_ring::OUT_SIZE;
    u32 got = 0;
    for (; got < n && tail != head; got++, tail++)
        buf[got] = r->out[tail % Launch_ring::OUT_SIZE];
    __atomic_store_n(&r->out_tail, tail, __ATOMIC_RELEASE);
    return got;
}

bool program_input(Program &p, u8 c)
{
    Launch_ring *r = p.ring;
    u32 head = r->in_head;
    if (head - __atomic_load_n(&r->in_tail, __ATOMIC_ACQUIRE) >= Launch_ring::IN_SIZE)
        return false;
    r->in[head % Launch_ring::IN_SIZE] = c;
    __atomic_store_n(&r->in_head, head + 1, __ATOMIC_RELEASE);
    return true;
}

}  // namespace nova
