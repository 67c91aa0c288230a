/*
 * Checklist C: the hypervisor information page (ABI 8), read at the address
 * the kernel mapped it (9.3); the root module descriptor is compared with
 * the ELF image we are running from.
 */
#include "string.hpp"
#include "suite.hpp"

extern "C" char _start[];

namespace {

const Hip &h() { return *reinterpret_cast<const Hip *>(HIP_ADDR); }

void c29(Test &t) { CHECK(h().signature == 0x41564f4e, "signature %#x, expected 0x41564f4e", h().signature); }

void c30(Test &t)
{
    CHECK(h().length >= Hip::MEM_OFFS && h().length <= PAGE_SIZE, "length %#x outside [0xcc8, 0x1000]",
          h().length);
    u16 sum = Hip::word_sum(reinterpret_cast<const u8 *>(&h()), h().length);
    CHECK(sum == 0, "the 16-bit word sum over [0, %#x) is %#x, expected 0", h().length, sum);
}

void c31(Test &t)
{
    CHECK(h().api_ver == 7, "api_ver %u, expected 7", h().api_ver);
    CHECK(h().sel_num == 0x4000000, "sel_num %#x, expected 0x4000000", h().sel_num);
    CHECK(h().sel_exc == 32, "sel_exc %u, expected 32", h().sel_exc);
    CHECK(h().sel_vmi == 256, "sel_vmi %u, expected 256", h().sel_vmi);
    CHECK(h().sel_gsi == 192, "sel_gsi %u, expected 192", h().sel_gsi);
}

void c32(Test &t)
{
    CHECK(h().cpu_offs == 0x78 && h().cpu_size == 48, "cpu_offs %#x cpu_size %u, expected 0x78 and 48",
          h().cpu_offs, h().cpu_size);
    CHECK(h().ioapic_offs == 0xc78 && h().ioapic_size == 16,
          "ioapic_offs %#x ioapic_size %u, expected 0xc78 and 16", h().ioapic_offs, h().ioapic_size);
    CHECK(h().mem_offs == 0xcc8 && h().mem_size == 24, "mem_offs %#x mem_size %u, expected 0xcc8 and 24",
          h().mem_offs, h().mem_size);
}

void c33(Test &t)
{
    CHECK(h().cfg_page == 0x1000, "cfg_page %#x, expected 0x1000", h().cfg_page);
    CHECK(h().cfg_utcb == 0x1000, "cfg_utcb %#x, expected 0x1000", h().cfg_utcb);
}

void c34(Test &t)
{
    CHECK(h().length > h().mem_offs, "length %#x leaves no memory descriptors", h().length);
    CHECK((h().length - h().mem_offs) % 24 == 0, "length - mem_offs = %#x is not a multiple of 24",
          h().length - h().mem_offs);
    unsigned n = h().num_mem_desc();
    CHECK(n > 0 && h().mem(n - 1)->type == Hip_mem::HYPERVISOR,
          "the last of %u memory descriptors has type %#x", n, n ? h().mem(n - 1)->type : 0);
}

void c35(Test &t)
{
    unsigned hyp = 0;
    for (unsigned i = 0; i < h().num_mem_desc(); i++)
        hyp += h().mem(i)->type == Hip_mem::HYPERVISOR;
    CHECK(hyp == 1, "%u memory descriptors of type 0xffffffff, expected 1", hyp);
}

// The end of the ELF file: the largest end of header, program headers, segments, section headers.
u64 elf_file_end(const Elf_ehdr *e)
{
    u64 end = sizeof(Elf_ehdr);
    auto upd = [&](u64 v) { end = v > end ? v : end; };
    upd(e->phoff + static_cast<u64>(e->phnum) * e->phentsize);
    if (e->shoff)
        upd(e->shoff + static_cast<u64>(e->shnum) * e->shentsize);
    for (unsigned i = 0; i < e->phnum; i++)
        if (const Elf_phdr *ph = module_phdr(i))
            upd(ph->offset + ph->filesz);
    return end;
}

void c36(Test &t)
{
    const Hip_mem *mod = nullptr;
    for (unsigned i = 0; i < h().num_mem_desc() && !mod; i++)
        if (h().mem(i)->type == Hip_mem::MODULE)
            mod = h().mem(i);
    CHECK(mod, "no memory descriptor of type 0xfffffffe");
    const Elf_ehdr *e = module_ehdr();
    CHECK(e, "the module at %#lx could not be mapped", mod->addr);
    CHECK(!memcmp(e->ident,
                  "\x7f"
                  "ELF",
                  4) &&
              e->entry == reinterpret_cast<u64>(_start),
          "the module at %#lx is not our ELF image (entry %#lx)", mod->addr, e->entry);
    // Our text in memory equals the module's text: the descriptor names the module we run from.
    for (unsigned i = 0; i < e->phnum; i++) {
        const Elf_phdr *ph = module_phdr(i);
        if (ph && ph->type == 1 && !(ph->flags & 2) && ph->filesz)
            CHECK(!memcmp(reinterpret_cast<const void *>(ph->vaddr), root_module().image + ph->offset,
                          ph->filesz),
                  "the module's text differs from the text we run");
    }
    u64 end = elf_file_end(e);
    CHECK(mod->size == end, "size %#lx, but the ELF file is %#lx bytes", mod->size, end);
    CHECK(mod->aux, "aux (command line address) is 0");
    u64 len = PAGE_SIZE - (mod->aux & 0xfff);
    const char *s = static_cast<const char *>(map_phys(mod->aux, len, Perm_mem::R));
    CHECK(s && is_mapped(s, len), "the command line at %#x could not be mapped", mod->aux);
    u64 n = 0;
    while (n < len && s[n] >= 0x20 && s[n] < 0x7f)
        n++;
    CHECK(n < len && s[n] == 0, "no printable NUL-terminated string at aux %#x", mod->aux);
    t.note("command line \"%s\"", s);
    t.own_mem(reinterpret_cast<u64>(s), 0);
}

void c37(Test &t)
{
    CHECK(cpu_online(boot_cpu()), "the boot CPU %u has no online flag", boot_cpu());
    unsigned last_online = 0;
    for (unsigned i = 0; i < NUM_CPU; i++) {
        const Hip_cpu *c = h().cpu(i);
        CHECK(c, "CPU descriptor %u is not inside the HIP", i);
        if (c->online())
            last_online = i;
        else
            CHECK(c->flags == 0, "CPU descriptor %u: flags %#x without the online bit, expected 0", i,
                  c->flags);
    }
    // CPUs are numbered in MADT order: no descriptor beyond the last online one is in use.
    for (unsigned i = last_online + 1; i < NUM_CPU; i++) {
        const u8 *b = reinterpret_cast<const u8 *>(h().cpu(i));
        for (unsigned k = 0; k < sizeof(Hip_cpu); k++)
            CHECK(b[k] == 0, "CPU descriptor %u (after the last online CPU %u) is not all zero", i,
                  last_online);
    }
}

void c38(Test &t) { CHECK(h().freq_tsc != 0, "freq_tsc is 0"); }

void c39(Test &t)
{
    CHECK((h().api_flg & ~7u) == 0, "api_flg %#x has bits 3..31 set", h().api_flg);
    if (!iommu_expected)
        CHECK(!(h().api_flg & Hip::FEAT_IOMMU),
              "api_flg %#x has the IOMMU bit without `iommu` (module command "
              "line names no iommu)",
              h().api_flg);
    // AMD-Vi (module option `amd`): the bit with dmar_table 0 is our extension (docs/iommu.md, "HIP").
    if ((h().api_flg & Hip::FEAT_IOMMU) && !module_option("amd"))
        CHECK(h().dmar_table, "the IOMMU bit is set but dmar_table is 0");
}

void c40(Test &t)
{
    u32 r[4];
    cpuid(1, 0, r);
    bool vmx = r[2] & (1u << 5);
    cpuid(0x80000000, 0, r);
    u32 max_ext = r[0];
    bool svm = false, npt = false;
    if (max_ext >= 0x80000001) {
        cpuid(0x80000001, 0, r);
        svm = r[2] & (1u << 2);
    }
    if (svm && max_ext >= 0x8000000a) {
        cpuid(0x8000000a, 0, r);
        npt = r[3] & 1;
    }
    bool hvmx = h().api_flg & Hip::FEAT_VMX, hsvm = h().api_flg & Hip::FEAT_SVM;
    CHECK(!hvmx || vmx, "api_flg has VMX but CPUID reports no VMX");
    CHECK(hsvm == (svm && npt), "api_flg SVM bit %u, but CPUID reports SVM %u with nested paging %u", hsvm,
          svm, npt);
    t.note("CPUID: VMX %u, SVM %u, NPT %u; HIP VMX %u, SVM %u", vmx, svm, npt, hvmx, hsvm);
}

const Test_case list[] = {
    {"C.29", "HIP signature is 0x41564f4e", c29, 0},
    {"C.30", "HIP 16-bit word sum over [0, length) is 0", c30, 0},
    {"C.31", "api_ver 7, sel_num 2^26, sel_exc 32, sel_vmi 256, sel_gsi 192", c31, 0},
    {"C.32", "array offsets 0x78/0xc78/0xcc8 and sizes 48/16/24", c32, 0},
    {"C.33", "cfg_page and cfg_utcb are 0x1000", c33, 0},
    {"C.34", "memory descriptors fill the length; the last has type -1", c34, 0},
    {"C.35", "exactly one memory descriptor of type -1", c35, 0},
    {"C.36", "the first module descriptor is our image (address, size, command line)", c36, 0},
    {"C.37", "the boot CPU is online; unused CPU descriptors are 0", c37, 0},
    {"C.38", "freq_tsc is not 0", c38, 0},
    {"C.39", "api_flg: no IOMMU bit without iommu, bits 3..31 clear", c39, 0},
    {"C.40", "api_flg VMX/SVM bits agree with CPUID", c40, 0},
};

}  // namespace

const Test_section sec_hip = {list, sizeof(list) / sizeof(list[0])};
