/*
 * Checklist I (the parts that need no device to fire): assign_gsi and
 * assign_pci validation (ABI 7.14, 7.15, 11). GSI semaphores come from the
 * kernel with the H bit (9.6).
 */
#include "suite.hpp"

namespace {

// GSI numbers: one on an I/O APIC (not 0-4, 8, 9) and one on none (an MSI GSI); ~0u if none.
unsigned gsi_on_ioapic(bool on)
{
    bool covered[NUM_GSI] = {};
    for (unsigned i = 0; i < NUM_IOAPIC; i++) {
        const Hip_ioapic *io = hip()->ioapic(i);
        if (!io || !io->base)
            continue;
        unsigned n = (io->version >> 16 & 0xff) + 1;
        for (unsigned g = 0; g < n; g++)
            if (io->gsi_base + g < NUM_GSI)
                covered[io->gsi_base + g] = true;
    }
    for (unsigned g = on ? 5 : NUM_GSI - 1; g < NUM_GSI; on ? g++ : g--)
        if (covered[g] == on && g != 8 && g != 9)
            return g;
    return ~0u;
}

bool gsi_sm(Test &t, u64 &sel, unsigned gsi)
{
    sel = t.sel();
    if (!sel)
        return false;
    Status s = request_kernel_cap(ksel_gsi_sm(gsi), sel);
    if (s != Status::SUCCESS)
        t.fail("GSI semaphore %u from the kernel: %s", gsi, status_name(s));
    return s == Status::SUCCESS;
}

void i127(Test &t)
{
    u64 s = t.sel();
    REQUIRE(s);
    CHECK_ST(assign_gsi(s, 0, 64).status, Status::BAD_CPU, "assign_gsi to CPU 64 with an empty selector");
}

void i128(Test &t)
{
    u64 s = t.sel();
    REQUIRE(s);
    CHECK_ST(create_sm(s, SEL_ROOT_PD, 0), Status::SUCCESS, "create_sm");
    CHECK_ST(assign_gsi(s, 0, boot_cpu()).status, Status::BAD_CAP, "assign_gsi on a user semaphore");
    CHECK_ST(assign_gsi(SEL_ROOT_PD, 0, boot_cpu()).status, Status::BAD_CAP, "assign_gsi on a PD capability");
}

void i129(Test &t)
{
    unsigned g = gsi_on_ioapic(true);
    if (g == ~0u) {
        t.skip("no I/O APIC GSI");
        return;
    }
    u64 s;
    REQUIRE(gsi_sm(t, s, g));
    // Selector 0 holds the root EC's #DE portal here, not a semaphore: BAD_CAP either way.
    CHECK_ST(assign_gsi(s, 0, boot_cpu(), 0).status, Status::BAD_CAP, "assign_gsi chained to selector 0");
    u64 other;
    REQUIRE(gsi_sm(t, other, g + 1 < NUM_GSI ? g + 1 : g - 1));
    CHECK_ST(assign_gsi(s, 0, boot_cpu(), other).status, Status::BAD_CAP,
             "assign_gsi chained to another GSI semaphore");
}

void i130(Test &t)
{
    unsigned g = gsi_on_ioapic(true);
    if (g == ~0u) {
        t.skip("no I/O APIC GSI");
        return;
    }
    u64 s;
    REQUIRE(gsi_sm(t, s, g));
    Regs r{};
    r.rdi = Hypercall_id(Hypercall::ASSIGN_GSI, 0, s).value();
    r.rsi = 0x1234000;
    r.rdx = boot_cpu();
    r.rax = ~u64{0};
    r.r8 = 0x88;
    hypercall(r);
    CHECK(r.rdi == 0, "assign_gsi: rdi %#lx, expected SUCCESS (0)", r.rdi);
    CHECK(r.rsi == 0 && r.rdx == 0, "I/O APIC GSI %u: rsi %#lx rdx %#lx, expected 0 and 0", g, r.rsi, r.rdx);
    t.note("GSI %u", g);
}

void i131(Test &t)
{
    unsigned g = gsi_on_ioapic(false);
    if (g == ~0u) {
        t.skip("every GSI is on an I/O APIC");
        return;
    }
    u64 s;
    REQUIRE(gsi_sm(t, s, g));
    static u64 plain_page[512] __attribute__((aligned(4096)));
    plain_page[0] = 1;
    CHECK_ST(assign_gsi(s, reinterpret_cast<u64>(plain_page), boot_cpu()).status, Status::BAD_DEV,
             "assign_gsi on MSI GSI with an ordinary RAM page");
    CHECK_ST(assign_gsi(s, alloc_virt(PAGE_SIZE), boot_cpu()).status, Status::BAD_DEV,
             "assign_gsi on MSI GSI with an unmapped address");
    t.note("GSI %u", g);
}

// 7.15 step 4 and 11.3: chaining to a user semaphore; a down on a chained GSI returns at once.
void i_chain(Test &t)
{
    unsigned g = gsi_on_ioapic(true);
    if (g == ~0u) {
        t.skip("no I/O APIC GSI");
        return;
    }
    u64 s, user = t.sel();
    REQUIRE(user && gsi_sm(t, s, g));
    CHECK_ST(create_sm(user, SEL_ROOT_PD, 0), Status::SUCCESS, "create_sm");
    CHECK_ST(assign_gsi(s, 0, boot_cpu(), user).status, Status::SUCCESS,
             "assign_gsi chained to a user semaphore");
    u64 t0 = rdtsc();
    CHECK_ST(sm_down(s, deadline_ms(1000)).status, Status::SUCCESS, "down on the chained GSI semaphore");
    CHECK(rdtsc() - t0 < ms_ticks(500), "the down on a chained GSI semaphore blocked");
    CHECK_ST(assign_gsi(s, 0, boot_cpu(), s).status, Status::SUCCESS,
             "assign_gsi chained to itself (unchain)");
}

void i134(Test &t)
{
    u64 s = t.sel();
    REQUIRE(s);
    CHECK_ST(create_sm(s, SEL_ROOT_PD, 0), Status::SUCCESS, "create_sm");
    CHECK_ST(assign_pci(s, HIP_ADDR, 0), Status::BAD_CAP, "assign_pci with an SM as PD");
    CHECK_ST(assign_pci(SEL_ROOT_EC, HIP_ADDR, 0), Status::BAD_CAP, "assign_pci with an EC as PD");
}

void i135(Test &t)
{
    if (iommu_expected) {
        t.skip("the module command line says the kernel runs with iommu");
        return;
    }
    const Hip *h = hip();
    u64 cfg = 0;
    if (h->mcfg_base && h->mcfg_size) {
        void *p = map_phys(h->mcfg_base, PAGE_SIZE, Perm_mem::RW);  // device 00:00.0
        if (p && is_mapped(p, PAGE_SIZE)) {
            cfg = reinterpret_cast<u64>(p);
            t.own_mem(cfg, 0);
        }
    }
    if (cfg)
        CHECK_ST(assign_pci(SEL_ROOT_PD, cfg, 0), Status::BAD_DEV,
                 "assign_pci of device 00:00.0 without iommu");
    static u64 plain_page[512] __attribute__((aligned(4096)));
    plain_page[0] = 1;
    CHECK_ST(assign_pci(SEL_ROOT_PD, reinterpret_cast<u64>(plain_page), 0), Status::BAD_DEV,
             "assign_pci with an ordinary RAM page");
    if (!cfg)
        t.note("no MMCONFIG region: only the RAM page was tried");
}

const Test_case list[] = {
    {"I.127", "assign_gsi to CPU 64 gives BAD_CPU before looking at the semaphore", i127, 0},
    {"I.128", "assign_gsi on a user semaphore gives BAD_CAP", i128, 0},
    {"I.129", "assign_gsi chained to a non-SM or another GSI semaphore gives BAD_CAP", i129, 0},
    {"I.130", "assign_gsi on an I/O APIC GSI gives SUCCESS with rsi = rdx = 0", i130, 0},
    {"I.131", "assign_gsi on an MSI GSI with a non-device page gives BAD_DEV", i131, 0},
    {"I.chain", "a GSI chained to a user semaphore: down returns at once; unchaining works", i_chain, 0},
    {"I.134", "assign_pci with a non-PD capability gives BAD_CAP", i134, 0},
    {"I.135", "assign_pci without iommu gives BAD_DEV", i135, 0},
};

}  // namespace

const Test_section sec_irq = {list, sizeof(list) / sizeof(list[0])};
