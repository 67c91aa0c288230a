/*
 * Per-CPU descriptors (GDT, TSS, syscall MSRs), feature detection and the
 * per-CPU boot line.
 */
#include "cpu.hpp"
#include "console.hpp"
#include "entry.hpp"
#include "idt.hpp"
#include "string.hpp"
#include "x86.hpp"

static_assert(__builtin_offsetof(Cpu, self) == CPU_SELF);
static_assert(__builtin_offsetof(Cpu, kstack_top) == CPU_KSTACK);
static_assert(__builtin_offsetof(Cpu, frame_top) == CPU_FRAME);
static_assert(__builtin_offsetof(Cpu, qs) == CPU_QS);
static_assert(__builtin_offsetof(Cpu, user_rsp) == CPU_USER_RSP);
static_assert(__builtin_offsetof(Cpu, flags) == CPU_FLAGS);
static_assert(sizeof(Tss) == 104);

Cpu Cpu::boot_cpu;
Cpu **Cpu::table;
unsigned Cpu::count;
unsigned Cpu::online_count;

int Cpu::current_id()
{
    Cpu &c = current();
    return &c == &boot_cpu ? -1 : static_cast<int>(c.id);
}

void Cpu::setup_descriptors()
{
    // Flat segments; user code at 0x18 (iretq returns) and 0x28 (sysretq), both 64-bit.
    gdt[0] = 0;
    gdt[1] = 0x00af9a000000ffff;  // 0x08 kernel code, L
    gdt[2] = 0x00cf92000000ffff;  // 0x10 kernel data
    gdt[3] = 0x00affa000000ffff;  // 0x18 user code, DPL 3, L
    gdt[4] = 0x00cff2000000ffff;  // 0x20 user data, DPL 3
    gdt[5] = 0x00affa000000ffff;  // 0x28 user code, DPL 3, L
    static_assert(__builtin_offsetof(Cpu, iobm) == __builtin_offsetof(Cpu, tss) + sizeof(Tss));
    auto t = reinterpret_cast<u64>(&tss);
    u64 lim = sizeof(Tss) + sizeof iobm - 1;
    gdt[6] = (lim & 0xffff) | (t & 0xffffff) << 16 | u64{0x89} << 40 | ((lim >> 16) & 0xf) << 48 |
             ((t >> 24) & 0xff) << 56;
    gdt[7] = t >> 32;
    gdt[8] = 0;

    // The IST pointers stay (set_ist, before): the rest of the TSS is set here.
    tss.reserved0 = 0;
    tss.rsp[0] = frame_top = kstack_top;  // until an EC runs: see Sched::run
    tss.rsp[1] = tss.rsp[2] = 0;
    tss.iomap_base = 0xffff;  // beyond the limit: no port accessible until a PD with ports runs
    for (auto &b : iobm)
        b = 0xff;
    io_pd = nullptr;

    struct [[gnu::packed]]
    {
        u16 limit;
        u64 base;
    } gdtr{sizeof gdt - 1, reinterpret_cast<u64>(gdt)};
    asm volatile("lgdt %0\n"
                 "mov %1, %%ss\n"
                 "mov %1, %%ds\n"
                 "mov %1, %%es\n"
                 "pushq %2\n"
                 "lea 1f(%%rip), %%rax\n"
                 "pushq %%rax\n"
                 "lretq\n"
                 "1:\n"
                 :
                 : "m"(gdtr), "r"(u64{Gdt::KDATA}), "i"(Gdt::KCODE)
                 : "rax", "memory");
    asm volatile("ltr %w0" : : "r"(Gdt::TSS));

    Idt::load();

    // syscall: CS 0x08/SS 0x10 on entry; sysretq: CS 0x18+16|3 = 0x2b, SS 0x18+8|3 = 0x23 (ABI 1.2).
    wrmsr(Msr::STAR, u64{Gdt::SYSRET_BASE} << 48 | u64{Gdt::KCODE} << 32);
    wrmsr(Msr::LSTAR, reinterpret_cast<u64>(syscall_entry));
    wrmsr(Msr::FMASK, 0xffffffff);  // every RFLAGS bit cleared on entry (ABI 1.3)
    wrmsr(Msr::EFER, rdmsr(Msr::EFER) | Efer::SCE);
}

void Cpu::detect_features()
{
    Cpu_features &f = feat;
    auto v = cpuid(0);
    f.max_leaf = v.eax;
    memcpy(f.vendor + 0, &v.ebx, 4);
    memcpy(f.vendor + 4, &v.edx, 4);
    memcpy(f.vendor + 8, &v.ecx, 4);
    f.vendor[12] = 0;

    auto l1 = cpuid(1);
    f.stepping = l1.eax & 0xf;
    f.model = (l1.eax >> 4) & 0xf;
    f.family = (l1.eax >> 8) & 0xf;
    if (f.family == 0xf)
        f.family += (l1.eax >> 20) & 0xff;
    if (f.family >= 6)
        f.model |= ((l1.eax >> 16) & 0xf) << 4;
    f.vmx = l1.ecx & (1u << 5);
    f.pcid = l1.ecx & (1u << 17);
    f.x2apic = l1.ecx & (1u << 21);
    f.tsc_deadline = l1.ecx & (1u << 24);
    f.xsave = l1.ecx & (1u << 26);
    f.mce = l1.edx & (1u << 7);
    f.mca = l1.edx & (1u << 14);

    if (f.max_leaf >= 7) {
        auto l7 = cpuid(7);
        f.fsgsbase = l7.ebx & 1;
        f.smep = l7.ebx & (1u << 7);
        f.invpcid = l7.ebx & (1u << 10);
        f.smap = l7.ebx & (1u << 20);
        f.umip = l7.ecx & (1u << 2);
    }

    f.max_ext_leaf = cpuid(0x80000000).eax;
    if (f.max_ext_leaf >= 0x80000001) {
        auto e1 = cpuid(0x80000001);
        f.svm = e1.ecx & (1u << 2);
        f.nx = e1.edx & (1u << 20);
        f.pdpe1gb = e1.edx & (1u << 26);
    }
    if (f.max_ext_leaf >= 0x80000004) {
        for (u32 i = 0; i < 3; i++) {
            auto b = cpuid(0x80000002 + i);
            memcpy(f.brand + 16 * size_t{i} + 0, &b.eax, 4);
            memcpy(f.brand + 16 * size_t{i} + 4, &b.ebx, 4);
            memcpy(f.brand + 16 * size_t{i} + 8, &b.ecx, 4);
            memcpy(f.brand + 16 * size_t{i} + 12, &b.edx, 4);
        }
    }
    f.brand[48] = 0;
    if (f.max_ext_leaf >= 0x80000007)
        f.invariant_tsc = cpuid(0x80000007).edx & (1u << 8);

    if (f.svm && f.max_ext_leaf >= 0x8000000a) {
        auto s = cpuid(0x8000000a);
        f.npt = s.edx & 1;
        f.svm_asids = s.ebx;
        f.asid = s.ebx > 1;
    }
    if (f.vmx) {
        // Secondary controls tell EPT/VPID/unrestricted guest; readable only if VMX is not locked off.
        u64 fc = rdmsr(Msr::FEATURE_CTRL);
        bool usable = !(fc & 1) || (fc & 4);
        u64 proc = rdmsr(0x482);  // IA32_VMX_PROCBASED_CTLS
        if (usable && (proc >> 63) & 1) {
            u64 sec = rdmsr(0x48b);  // IA32_VMX_PROCBASED_CTLS2
            f.ept = (sec >> 33) & 1;
            f.vpid = (sec >> 37) & 1;
            f.unrestricted = (sec >> 39) & 1;
        }
        f.vmx = usable;
    }

    // Topology: APIC id split by CPUID leaf 0xb where present, else leaf 1/4 widths.
    u32 apic = f.max_leaf >= 0xb && cpuid(0xb).ebx ? cpuid(0xb).edx : l1.ebx >> 24;
    u32 smt_bits = 0, core_bits = 0;
    if (f.max_leaf >= 0xb && cpuid(0xb).ebx) {
        for (u32 sub = 0; sub < 8; sub++) {
            auto t = cpuid(0xb, sub);
            u32 type = (t.ecx >> 8) & 0xff;
            if (!type)
                break;
            if (type == 1)
                smt_bits = t.eax & 0x1f;
            else if (type == 2)
                core_bits = t.eax & 0x1f;
        }
    } else {
        u32 logical = (l1.edx & (1u << 28)) ? (l1.ebx >> 16) & 0xff : 1;
        u32 cores = f.max_leaf >= 4 && f.vendor[0] == 'G' ? ((cpuid(4).eax >> 26) & 0x3f) + 1 : 1;
        u32 threads = cores ? logical / cores : 1;
        while ((1u << smt_bits) < threads)
            smt_bits++;
        core_bits = smt_bits;
        while ((1u << core_bits) < logical)
            core_bits++;
    }
    if (core_bits < smt_bits)
        core_bits = smt_bits;
    f.thread = apic & ((1u << smt_bits) - 1);
    f.core = (apic >> smt_bits) & ((1u << (core_bits - smt_bits)) - 1);
    f.package = apic >> core_bits;

    f.platform = f.vendor[0] == 'G' && f.family == 6 ? (rdmsr(0x17) >> 50) & 7 : 0;
    f.ucode = 0;  // reading IA32_BIOS_SIGN_ID needs a write+cpuid dance; reported as 0
}

static void trace_as(unsigned cpu, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void trace_as(unsigned cpu, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    Console::vprint_as(static_cast<int>(cpu), fmt, ap);
    va_end(ap);
}

void Cpu::print_core_line() const
{
    // ABI 13.3: "[c] CORE:pkg:core:thread family:model:stepping:platform [ucode] brand", then our extras.
    const char *brand = feat.brand;
    while (*brand == ' ')
        brand++;
    const Cpu_features &f = feat;
    trace_as(id, "CORE:%x:%x:%x %x:%x:%x:%x [%x] %s | apic %#x%s%s%s%s%s%s%s%s%s%s%s", f.package, f.core,
             f.thread, f.family, f.model, f.stepping, f.platform, f.ucode, brand, apic_id,
             f.x2apic ? " x2apic" : "", f.vmx ? " vmx" : "", f.ept ? " ept" : "", f.vpid ? " vpid" : "",
             f.svm ? " svm" : "", f.npt ? " npt" : "", f.asid ? " asid" : "", f.pcid ? " pcid" : "",
             f.xsave ? " xsave" : "", f.tsc_deadline ? " tscdl" : "", f.pdpe1gb ? " 1g" : "");
}

void Cpu::set_ist(unsigned n, u64 top)
{
    // The CPU pushes its frame right below tss.ist[n - 1] (16-byte aligned); the word above it
    // names this CPU for the paranoid entry's GS check (src/entry.S).
    auto slot = reinterpret_cast<Cpu **>(top - 16);
    *slot = this;
    tss.ist[n - 1] = top - 16;
}

/* Machine-check architecture: every bank reports, old entries are cleared (Intel SDM 15.8). */
static void enable_mca(const Cpu_features &f)
{
    u64 cap = rdmsr(Msr::MCG_CAP);
    if (cap & (1u << 8))  // MCG_CTL_P
        wrmsr(Msr::MCG_CTL, ~u64{0});
    u32 banks = cap & 0xff;
    // Bank 0 of Intel family 6 before Nehalem is owned by the firmware (SDM 15.8).
    bool skip0 = f.vendor[0] == 'G' && f.family == 6 && f.model < 0x1a;
    for (u32 i = skip0 ? 1 : 0; i < banks; i++)
        wrmsr(Msr::MC0_CTL + 4 * i, ~u64{0});
    for (u32 i = 0; i < banks; i++)
        wrmsr(Msr::MC0_CTL + 4 * i + 1, 0);
    wrmsr(Msr::MCG_STATUS, 0);
}

void Cpu::enable_features(bool nopcid, bool noxsave)
{
    u64 cr4 = get_cr4() | Cr4::PGE | Cr4::OSFXSR | Cr4::OSXMMEXCPT;
    pcid_on = feat.pcid && !nopcid;
    if (pcid_on)
        cr4 |= Cr4::PCIDE;
    if (feat.xsave && !noxsave)
        cr4 |= Cr4::OSXSAVE;
    // Ring 0 never executes (SMEP) nor touches (SMAP) a user page; user mode cannot read the
    // descriptor tables' addresses, TR, LDTR or CR0 (UMIP: sgdt, sidt, sldt, str, smsw raise
    // #GP, an exception event, ABI 10.2). docs/architecture.md, "Protection".
    if (feat.smep)
        cr4 |= Cr4::SMEP;
    if (feat.smap) {
        flags |= CPU_FLAG_SMAP;  // entries clear AC from now on (clac needs only the CPUID bit)
        cr4 |= Cr4::SMAP;
    }
    if (feat.umip)
        cr4 |= Cr4::UMIP;
    if (feat.mce && feat.mca) {
        enable_mca(feat);
        cr4 |= Cr4::MCE;  // a machine check is #MC (src/exception.cpp) instead of a shutdown
    }
    set_cr4(cr4);
    if (feat.nx)
        wrmsr(Msr::EFER, rdmsr(Msr::EFER) | Efer::NXE);
    // x87/SSE usable in user mode; the kernel itself never touches them (-mgeneral-regs-only).
    set_cr0((get_cr0() | Cr0::MP | Cr0::NE | Cr0::WP) & ~(Cr0::EM | Cr0::TS));
}
