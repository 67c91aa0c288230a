/*
 * Checklist B: root task start-up (ABI 9). The initial registers come from
 * crt0's record (nova::start_regs), the initial UTCB from a snapshot taken
 * before anything else ran; B.20-B.26 run before the suite installs the
 * root EC's exception portals at selectors 0..31.
 */
#include "string.hpp"
#include "suite.hpp"

extern "C" char _start[];

namespace {

bool utcb_zero;
unsigned utcb_nonzero_at;

constexpr u64 HIP_PAGE = HIP_ADDR >> PAGE_BITS;
constexpr u64 UTCB_PAGE = ROOT_UTCB_ADDR >> PAGE_BITS;

}  // namespace

void snapshot_start_state()
{
    const u64 *w = reinterpret_cast<const u64 *>(ROOT_UTCB_ADDR);
    utcb_zero = true;
    for (unsigned i = 0; i < PAGE_SIZE / 8; i++)
        if (w[i]) {
            utcb_zero = false;
            utcb_nonzero_at = i * 8;
            break;
        }
}

const Elf_ehdr *module_ehdr()
{
    const Module &m = root_module();
    if (!m.image || m.size < sizeof(Elf_ehdr))
        return nullptr;
    return reinterpret_cast<const Elf_ehdr *>(m.image);
}

const Elf_phdr *module_phdr(unsigned i)
{
    const Module &m = root_module();
    const Elf_ehdr *e = module_ehdr();
    if (!e || i >= e->phnum || e->phentsize < sizeof(Elf_phdr))
        return nullptr;
    u64 off = e->phoff + static_cast<u64>(i) * e->phentsize;
    if (off < e->phoff || off + sizeof(Elf_phdr) > m.size)
        return nullptr;
    return reinterpret_cast<const Elf_phdr *>(m.image + off);
}

namespace {

// ---- before the root portals exist ---------------------------------------------------------

void b11_rsp(Test &t)
{
    u64 rsp = start_regs().rsp;
    CHECK(rsp == HIP_ADDR, "initial rsp %#lx, expected %#lx", rsp, HIP_ADDR);
}

void b12_rdi(Test &t)
{
    u64 rdi = start_regs().rdi;
    CHECK(rdi < NUM_CPU && cpu_online(static_cast<unsigned>(rdi)), "initial rdi %lu is not an online CPU",
          rdi);
    // The APIC ID of the CPU we run on: 8 bits from leaf 1 (xAPIC: the ID register's bits 31:24),
    // 32 bits from leaf 0xb (x2APIC: the whole register).
    u32 r[4];
    cpuid(0, 0, r);
    u32 max_leaf = r[0];
    cpuid(1, 0, r);
    u32 apic = r[1] >> 24, x2apic = ~0u;
    if (max_leaf >= 0xb) {
        cpuid(0xb, 0, r);
        x2apic = r[3];
    }
    u32 reg = hip()->cpu(static_cast<unsigned>(rdi))->lapic_id;
    CHECK(reg >> 24 == apic || reg == x2apic,
          "initial rdi %lu: HIP CPU %lu has LAPIC ID register %#x, but we run "
          "on APIC ID %u (x2APIC ID %#x)",
          rdi, rdi, reg, apic, x2apic);
}

void b13_regs(Test &t)
{
    const Start_regs &r = start_regs();
    CHECK(r.rflags == 0x202, "initial RFLAGS %#lx, expected 0x202", r.rflags);
    CHECK(r.rcx == reinterpret_cast<u64>(_start), "initial rcx %#lx, expected the entry point %p", r.rcx,
          _start);
    CHECK(r.r11 == 0x200, "initial r11 %#lx, expected 0x200", r.r11);
    struct
    {
        const char *name;
        u64 v;
    } const zero[] = {{"rax", r.rax}, {"rbx", r.rbx}, {"rdx", r.rdx}, {"rsi", r.rsi},
                      {"rbp", r.rbp}, {"r8", r.r8},   {"r9", r.r9},   {"r10", r.r10},
                      {"r12", r.r12}, {"r13", r.r13}, {"r14", r.r14}, {"r15", r.r15}};
    for (auto &z : zero)
        CHECK(z.v == 0, "initial %s = %#lx, expected 0", z.name, z.v);
}

void b15_utcb(Test &t)
{
    CHECK(utcb_zero, "the root UTCB was not all zero at start-up (first non-zero word at offset %#x)",
          utcb_nonzero_at);
    volatile u64 *w = reinterpret_cast<volatile u64 *>(ROOT_UTCB_ADDR + 0x800);
    *w = 0x5a5aa5a5f00dcafeull;
    u64 v = *w;
    *w = 0;
    CHECK(v == 0x5a5aa5a5f00dcafeull, "write to the root UTCB read back as %#lx", v);
}

void expect_lookup(Test &t, Crd q, u64 want, const char *what)
{
    Lookup_result r = pd_lookup(q);
    CHECK_ST(r.status, Status::SUCCESS, "pd_ctrl lookup");
    CHECK(r.crd.value() == want, "lookup of %s returned %#lx, expected %#lx", what, r.crd.value(), want);
}

void b20(Test &t) { expect_lookup(t, Crd::obj(SEL_ROOT_PD, 0, 0), 0x2007f, "CRD(OBJ, 32)"); }
void b21(Test &t) { expect_lookup(t, Crd::obj(SEL_ROOT_EC, 0, 0), 0x21037, "CRD(OBJ, 33)"); }
void b22(Test &t) { expect_lookup(t, Crd::obj(SEL_ROOT_SC, 0, 0), 0x22007, "CRD(OBJ, 34)"); }

void b23(Test &t)
{
    for (u64 s = 0; s <= 35; s++) {
        if (s >= 32 && s <= 34)
            continue;
        Lookup_result r = pd_lookup(Crd::obj(s, 0, 0));
        CHECK_ST(r.status, Status::SUCCESS, "pd_ctrl lookup");
        CHECK(r.crd.value() == 0, "lookup of selector %lu returned %#lx, expected 0", s, r.crd.value());
    }
}

void b24(Test &t) { expect_lookup(t, Crd::mem(HIP_PAGE, 0, 0), 0x7fffffffe005, "CRD(MEM, 0x7fffffffe)"); }
void b25(Test &t) { expect_lookup(t, Crd::mem(UTCB_PAGE, 0, 0), 0x7fffffffd00d, "CRD(MEM, 0x7fffffffd)"); }

void b26(Test &t)
{
    // Type 0 with other bits set: still the null CRD.
    expect_lookup(t, Crd(HIP_PAGE << 12 | 0x7c), 0, "a null CRD");
}

// ---- with the root portals ------------------------------------------------------------------

bool need_root_portals(Test &t)
{
    if (!root_portals)
        t.fail("the root EC has no exception portals (setup failed), not faulting on purpose");
    return root_portals;
}

void b28_first_pf(Test &t)
{
    REQUIRE(need_root_portals(t));
    u64 addr = alloc_virt(PAGE_SIZE) + 0x10;
    u64 before = last_exc.count, v;
    CHECK(!probe_read64(reinterpret_cast<void *>(addr), &v), "reading unmapped %#lx did not fault", addr);
    CHECK(last_exc.count == before + 1, "no exception message arrived");
    CHECK(last_exc.id == Evt::PF, "the fault arrived at selector %lu, expected 14", last_exc.id);
    CHECK(last_exc.qual1 == addr, "cr2 %#lx, expected %#lx", last_exc.qual1, addr);
}

void b14_hip(Test &t)
{
    REQUIRE(need_root_portals(t));
    u8 *p = reinterpret_cast<u8 *>(HIP_ADDR + 0x100);
    u64 sig;
    CHECK(probe_read64(reinterpret_cast<void *>(HIP_ADDR), &sig), "reading the HIP faulted");
    CHECK(static_cast<u32>(sig) == Hip::SIGNATURE, "HIP signature read %#lx", sig);
    u8 old = *p;
    u64 before = last_exc.count;
    CHECK(!probe_write8(p, old), "writing to the HIP at %p did not fault", p);
    CHECK(last_exc.count == before + 1 && last_exc.id == Evt::PF, "expected a page fault (14), got event %lu",
          last_exc.id);
    CHECK(last_exc.qual0 == (Pf_err::PRESENT | Pf_err::WRITE | Pf_err::USER),
          "error code %#lx, expected 0x7 (present, write, user)", last_exc.qual0);
    CHECK(last_exc.qual1 == reinterpret_cast<u64>(p), "cr2 %#lx, expected %p", last_exc.qual1, p);
}

void b10_entry(Test &t)
{
    const Elf_ehdr *e = module_ehdr();
    CHECK(e, "the root module (HIP memory descriptor type -2) could not be mapped");
    CHECK(!memcmp(e->ident,
                  "\x7f"
                  "ELF",
                  4),
          "the first module does not start with the ELF magic");
    CHECK(e->entry == start_regs().rcx, "e_entry %#lx, but the root EC started at %#lx (rcx)", e->entry,
          start_regs().rcx);
    CHECK(e->entry == reinterpret_cast<u64>(_start), "e_entry %#lx, our entry is %p", e->entry, _start);
}

void b16_segments(Test &t)
{
    REQUIRE(need_root_portals(t));
    const Elf_ehdr *e = module_ehdr();
    const Module &m = root_module();
    CHECK(e, "the root module could not be mapped");
    unsigned loads = 0, ro = 0;
    for (unsigned i = 0; i < e->phnum; i++) {
        const Elf_phdr *ph = module_phdr(i);
        CHECK(ph, "program header %u is outside the module", i);
        if (ph->type != 1 || !ph->filesz)
            continue;
        loads++;
        CHECK(ph->offset + ph->filesz <= m.size, "segment %u is outside the module", i);
        const u8 *mem = reinterpret_cast<const u8 *>(ph->vaddr);
        CHECK(is_mapped(mem, ph->filesz), "segment %u at %#lx is not mapped", i, ph->vaddr);
        // Rights as recorded in our PD: W exactly for PF_W.
        Crd node(lookup_mem(ph->vaddr >> PAGE_BITS));
        bool w = ph->flags & 2;
        // Writable segments have changed since start-up; B.inplace covers them.
        CHECK(w || !memcmp(mem, m.image + ph->offset, ph->filesz), "segment %u at %#lx differs from the file",
              i, ph->vaddr);
        CHECK(!!(node.rights() & Perm_mem::W) == w, "segment %u: mapping rights %#x for p_flags %#x", i,
              node.rights(), ph->flags);
        if (!w) {
            ro++;
            u8 *p = const_cast<u8 *>(mem);
            u64 before = last_exc.count;
            CHECK(!probe_write8(p, *p), "writing to read-only segment %u at %p did not fault", i, p);
            CHECK(last_exc.count == before + 1 && last_exc.id == Evt::PF &&
                      last_exc.qual1 == reinterpret_cast<u64>(p),
                  "the write to %p did not arrive as a page fault (event %lu, cr2 %#lx)", p, last_exc.id,
                  last_exc.qual1);
        }
    }
    CHECK(loads >= 2 && ro >= 1, "expected text and data segments, found %u (%u read-only)", loads, ro);
}

void b27_io(Test &t)
{
    REQUIRE(need_root_portals(t));
    u64 before = last_exc.count;
    CHECK(!probe_in8(0x80), "in from port 0x80 worked without an I/O delegation");
    CHECK(last_exc.count == before + 1 && last_exc.id == Evt::GP, "in 0x80: expected #GP (13), got event %lu",
          last_exc.id);
    CHECK(!probe_out8(0x80, 0), "out to port 0x80 worked without an I/O delegation");
    CHECK(last_exc.count == before + 2 && last_exc.id == Evt::GP,
          "out 0x80: expected #GP (13), got event %lu", last_exc.id);
    CHECK(!probe_in8(0x2f8), "in from port 0x2f8 worked without an I/O delegation");
    CHECK(pd_lookup(Crd::pio(0x80, 0, 0)).crd.value() == 0, "lookup of I/O port 0x80 is not empty");
}

// 9.2: the module is mapped in place, so a writable segment is the module image itself.
volatile u64 inplace_marker = 1;

void b_inplace(Test &t)
{
    const Module &m = root_module();
    const Elf_ehdr *e = module_ehdr();
    CHECK(e, "the root module could not be mapped");
    u64 va = reinterpret_cast<u64>(&inplace_marker);
    for (unsigned i = 0; i < e->phnum; i++) {
        const Elf_phdr *ph = module_phdr(i);
        if (!ph || ph->type != 1 || va < ph->vaddr || va + 8 > ph->vaddr + ph->filesz)
            continue;
        const volatile u64 *file =
            reinterpret_cast<const volatile u64 *>(m.image + ph->offset + (va - ph->vaddr));
        inplace_marker = 0x1badc0ffee15900dull ^ rdtsc();
        CHECK(*file == inplace_marker, "our write to %#lx is not visible in the module image", va);
        return;
    }
    t.fail("no PT_LOAD segment contains our data at %#lx", va);
}

const Test_case early[] = {
    {"B.11", "initial rsp is the HIP address", b11_rsp, 0},
    {"B.12", "initial rdi is the boot CPU (the HIP CPU whose APIC ID we run on)", b12_rdi, 0},
    {"B.13", "initial RFLAGS 0x202, rcx = entry, r11 = 0x200, other GPRs 0", b13_regs, 0},
    {"B.15", "root UTCB is initially zero, readable and writable", b15_utcb, 0},
    {"B.20", "lookup of selector 32 gives the root PD, rights 0x1f", b20, 0},
    {"B.21", "lookup of selector 33 gives the root EC, rights 0x0d", b21, 0},
    {"B.22", "lookup of selector 34 gives the root SC, rights 0x01", b22, 0},
    {"B.23", "selectors 0..31 and 35 are empty at start-up", b23, 0},
    {"B.24", "lookup of the HIP page gives order 0, rights R", b24, 0},
    {"B.25", "lookup of the root UTCB page gives order 0, rights RW", b25, 0},
    {"B.26", "lookup with a null CRD gives 0 and SUCCESS", b26, 0},
};

const Test_case late[] = {
    {"B.28", "the root EC's first page fault goes to selector 14", b28_first_pf, 0},
    {"B.10", "the root task started at the module's ELF entry point", b10_entry, 0},
    {"B.14", "the HIP is readable; writing it raises a page fault", b14_hip, 0},
    {"B.16", "PT_LOAD segments are mapped with their contents; read-only ones fault on write", b16_segments,
     0},
    {"B.27", "the root I/O space is empty: in/out raise #GP", b27_io, 0},
    {"B.inplace", "the module is mapped in place: writable segments are the module image", b_inplace, 0},
};

}  // namespace

const Test_section sec_boot_early = {early, sizeof(early) / sizeof(early[0])};
const Test_section sec_boot = {late, sizeof(late) / sizeof(late[0])};
