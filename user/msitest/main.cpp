/*
 * MSI delivery test (ABI 7.15, 11.2, checklist I.132/133) with QEMU's `edu`
 * PCI device: find it through MMCONFIG, ask the kernel for the MSI address
 * and data of a GSI that has no I/O APIC pin, program the device's MSI
 * capability, make the device raise its interrupt and wait for it on the
 * GSI semaphore. Needs `-machine q35 -device edu`.
 */
#include <nova/nova.hpp>

using namespace nova;

namespace {

unsigned failed, passed;

void check(bool ok, const char *what)
{
    printf("%s: %s\n", ok ? "PASS" : "FAIL", what);
    ok ? passed++ : failed++;
}

[[noreturn]] void finish()
{
    printf("%u passed, %u failed\n", passed, failed);
    exit_qemu(failed ? EXIT_FAIL : EXIT_PASS);
    for (;;) {
    }
}

constexpr u64 MSI_GSI = 64;          // above the I/O APIC's 24 pins: an MSI GSI

} // namespace

int main(const Hip *hip, unsigned cpu)
{
    Console::init();
    if (!hip->mcfg_base) {
        check(false, "MMCONFIG present (run on q35)");
        finish();
    }
    // Bus 0 configuration space: 32 devices x 8 functions x 4 KiB.
    auto cfg = static_cast<volatile u8 *>(map_phys(hip->mcfg_base, 1u << 20));
    check(cfg != nullptr, "map bus 0 configuration space");
    if (!cfg)
        finish();
    volatile u8 *dev = nullptr;
    for (unsigned d = 0; d < 32 && !dev; d++) {
        auto f = cfg + (d << 15);
        if (*reinterpret_cast<volatile u16 *>(f) == 0x1234 && *reinterpret_cast<volatile u16 *>(f + 2) == 0x11e8)
            dev = f;
    }
    check(dev != nullptr, "edu device found on bus 0");
    if (!dev)
        finish();

    // The MSI capability (id 5) in the capability list.
    unsigned cap = dev[0x34];
    for (unsigned n = 0; cap && n < 48 && dev[cap] != 5; n++)
        cap = dev[cap + 1];
    check(cap && dev[cap] == 5, "edu has an MSI capability");
    if (!cap)
        finish();

    u64 gsm = alloc_sel();
    check(request_kernel_cap(Abi::ksel_gsi_sm(MSI_GSI), gsm) == Status::SUCCESS, "GSI semaphore from the kernel");
    auto bad = assign_gsi(gsm, reinterpret_cast<u64>(&passed), cpu);
    check(bad.status == Status::BAD_DEV, "assign_gsi with a non-device page: BAD_DEV (I.131)");
    auto g = assign_gsi(gsm, reinterpret_cast<u64>(dev), cpu);
    u32 apic = hip->cpu(cpu)->lapic_id >> 24;
    check(g.status == Status::SUCCESS && g.msi_addr == (0xfee00000ull | u64{apic} << 12) &&
              g.msi_data == 32 + MSI_GSI, "assign_gsi returns the MSI address and data (I.132)");

    // Program the capability: address, data, enable; and let the device master the bus.
    u16 ctrl = *reinterpret_cast<volatile u16 *>(dev + cap + 2);
    bool is64 = ctrl & (1u << 7);
    *reinterpret_cast<volatile u32 *>(dev + cap + 4) = static_cast<u32>(g.msi_addr);
    if (is64)
        *reinterpret_cast<volatile u32 *>(dev + cap + 8) = 0;
    *reinterpret_cast<volatile u16 *>(dev + cap + (is64 ? 12 : 8)) = static_cast<u16>(g.msi_data);
    *reinterpret_cast<volatile u16 *>(dev + cap + 2) = static_cast<u16>(ctrl | 1);
    *reinterpret_cast<volatile u16 *>(dev + 4) = static_cast<u16>(*reinterpret_cast<volatile u16 *>(dev + 4) | 0x6);

    u64 bar0 = *reinterpret_cast<volatile u32 *>(dev + 0x10) & ~0xfull;
    auto mmio = static_cast<volatile u32 *>(map_phys(bar0, 1u << 20));
    check(mmio != nullptr, "map the edu registers");
    if (!mmio)
        finish();
    mmio[0x60 / 4] = 0x1;                                  // raise interrupt
    auto d = sm_down(gsm, __builtin_ia32_rdtsc() + hip->freq_tsc * 2000ull);
    check(d.status == Status::SUCCESS, "the device's MSI releases the GSI semaphore (I.133)");
    check(mmio[0x24 / 4] == 0x1, "interrupt status as raised");
    mmio[0x64 / 4] = 0x1;                                  // acknowledge
    finish();
}
