/*
 * Device interrupt test (ABI 7.13, 7.15, 11.1, 11.2, 11.4, checklist I.132/133)
 * with QEMU's `edu` PCI device. Needs `-machine q35 -device edu`. With `iommu` and a second edu
 * it also checks interrupt remapping's source validation (docs/iommu.md).
 *
 * MSI: find the device through MMCONFIG, ask the kernel for the MSI address
 * and data of a GSI that has no I/O APIC pin, program the device's MSI
 * capability, make the device raise its interrupt and wait for it on the
 * GSI semaphore.
 *
 * INTx: with MSI disabled the device drives its INTx pin, which q35 routes
 * to one of PIRQ A..H = I/O APIC GSIs 16..23 (level-triggered, active-low by
 * default, ABI 11.1). We cannot evaluate ACPI _PRT, so we route all eight
 * GSIs to our CPU and see which semaphore the device's interrupt ups. Then
 * the level-triggered rules: the kernel masks the pin when the interrupt
 * fires, and a down unmasks it first (7.13), so
 *   - while the line stays high and nobody downs, there is exactly one up;
 *   - a down while the line is still high lets the interrupt in again;
 *   - after the acknowledge at the device (line low) a down times out;
 *   - a down blocked on the semaphore is released by the device's interrupt
 *     (the edu DMA engine raises it 100 ms after a transfer is started).
 */
#include <nova/nova.hpp>

using namespace nova;

namespace {

using test::check;

constexpr u64 MSI_GSI = 64;        // above the I/O APIC's 24 pins: an MSI GSI
constexpr unsigned PIRQ_GSI = 16;  // q35: PIRQ A..H = GSIs 16..23
constexpr unsigned NUM_PIRQ = 8;

// edu registers (the edu.rst specification in QEMU's source tree), 32-bit accesses below 0x80.
constexpr unsigned EDU_IRQ_STATUS = 0x24, EDU_IRQ_RAISE = 0x60, EDU_IRQ_ACK = 0x64;
constexpr unsigned EDU_DMA_SRC = 0x80, EDU_DMA_DST = 0x88, EDU_DMA_CNT = 0x90, EDU_DMA_CMD = 0x98;
constexpr u32 EDU_DMA_IRQ = 0x100;  // the status value a DMA completion raises

// PCI configuration space.
constexpr unsigned PCI_COMMAND = 0x04, PCI_STATUS = 0x06, PCI_INT_LINE = 0x3c, PCI_INT_PIN = 0x3d;
constexpr u16 CMD_INTX_DISABLE = 1u << 10, STATUS_INTX = 1u << 3;

volatile u16 &cfg16(volatile u8 *dev, unsigned off) { return *reinterpret_cast<volatile u16 *>(dev + off); }

u64 ticks_ms(u64 ms) { return u64{hip()->freq_tsc} * ms; }
u64 after_ms(u64 ms) { return __builtin_ia32_rdtsc() + ticks_ms(ms); }

void spin_ms(u64 ms)
{
    for (u64 end = after_ms(ms); __builtin_ia32_rdtsc() < end;)
        pause();
}

// With the IOMMU flag (8.2) the kernel may remap interrupts: then MSIs use the remappable format.
bool remapped(const Hip *hip, const Gsi_result &g)
{
    return (hip->api_flg & Hip::FEAT_IOMMU) && g.msi_addr == 0xfee00018;
}

// The offset of the MSI capability (id 5) in the capability list, 0 if there is none.
unsigned msi_cap(volatile u8 *dev)
{
    unsigned cap = dev[0x34];
    for (unsigned n = 0; cap && n < 48 && dev[cap] != 5; n++)
        cap = dev[cap + 1];
    return cap && dev[cap] == 5 ? cap : 0;
}

// Downs with a deadline `ms` ahead until one times out (at most 1000): the ups the semaphore had.
unsigned count_ups(u64 sm, u64 ms)
{
    unsigned n = 0;
    while (n < 1000 && sm_down(sm, after_ms(ms)).status == Status::SUCCESS)
        n++;
    return n;
}

// The MSI part. Leaves the device with MSI enabled and bus mastering on.
void test_msi(const Hip *hip, unsigned cpu, volatile u8 *dev, volatile u32 *mmio)
{
    unsigned cap = msi_cap(dev);
    check(cap != 0, "edu has an MSI capability");
    if (!cap)
        test::exit();

    u64 gsm = alloc_sel();
    check(request_kernel_cap(Abi::ksel_gsi_sm(MSI_GSI), gsm) == Status::SUCCESS,
          "GSI semaphore from the kernel");
    static u64 ram_word;  // a page of our data: memory, not a device
    auto bad = assign_gsi(gsm, reinterpret_cast<u64>(&ram_word), cpu);
    check(bad.status == Status::BAD_DEV, "assign_gsi with a non-device page: BAD_DEV (I.131)");
    auto g = assign_gsi(gsm, reinterpret_cast<u64>(dev), cpu);
    u32 apic = hip->cpu(cpu)->lapic_id >> 24;
    if (remapped(hip, g))
        check(g.status == Status::SUCCESS && g.msi_data == MSI_GSI,
              "assign_gsi with interrupt remapping returns 0xfee00018 and the GSI as MSI data (7.15)");
    else
        check(g.status == Status::SUCCESS && g.msi_addr == (0xfee00000ull | u64{apic} << 12) &&
                  g.msi_data == 32 + MSI_GSI,
              "assign_gsi returns the MSI address and data (I.132)");

    // Program the capability: address, data, enable; and let the device master the bus.
    u16 ctrl = cfg16(dev, cap + 2);
    bool is64 = ctrl & (1u << 7);
    *reinterpret_cast<volatile u32 *>(dev + cap + 4) = static_cast<u32>(g.msi_addr);
    if (is64)
        *reinterpret_cast<volatile u32 *>(dev + cap + 8) = 0;
    cfg16(dev, cap + (is64 ? 12 : 8)) = static_cast<u16>(g.msi_data);
    cfg16(dev, cap + 2) = static_cast<u16>(ctrl | 1);
    cfg16(dev, PCI_COMMAND) = static_cast<u16>(cfg16(dev, PCI_COMMAND) | 0x6);

    mmio[EDU_IRQ_RAISE / 4] = 0x1;
    auto d = sm_down(gsm, after_ms(2000));
    check(d.status == Status::SUCCESS, "the device's MSI releases the GSI semaphore (I.133)");
    check(mmio[EDU_IRQ_STATUS / 4] == 0x1, "interrupt status as raised");
    mmio[EDU_IRQ_ACK / 4] = 0x1;
}

// Program dev's MSI capability with g's address and data, enable it and bus mastering.
void program_msi(volatile u8 *dev, const Gsi_result &g)
{
    unsigned cap = msi_cap(dev);
    u16 ctrl = cfg16(dev, cap + 2);
    bool is64 = ctrl & (1u << 7);
    *reinterpret_cast<volatile u32 *>(dev + cap + 4) = static_cast<u32>(g.msi_addr);
    if (is64)
        *reinterpret_cast<volatile u32 *>(dev + cap + 8) = 0;
    cfg16(dev, cap + (is64 ? 12 : 8)) = static_cast<u16>(g.msi_data);
    cfg16(dev, cap + 2) = static_cast<u16>(ctrl | 1);
    cfg16(dev, PCI_COMMAND) = static_cast<u16>(cfg16(dev, PCI_COMMAND) | 0x6);
}

/*
 * With interrupt remapping (a second edu, `iommu`): the remapping entry checks the requester ID,
 * so a device that sends the message assign_gsi made for another device's configuration page is
 * dropped; with its own page the message arrives.
 */
void test_msi_source(const Hip *hip, unsigned cpu, volatile u8 *dev, volatile u8 *other, volatile u32 *mmio)
{
    u64 gsm = alloc_sel();
    check(request_kernel_cap(Abi::ksel_gsi_sm(MSI_GSI + 1), gsm) == Status::SUCCESS,
          "a second MSI GSI semaphore from the kernel");
    auto g = assign_gsi(gsm, reinterpret_cast<u64>(dev), cpu);
    check(g.status == Status::SUCCESS && remapped(hip, g), "assign_gsi with the first edu's page: remapped");
    program_msi(other, g);
    mmio[EDU_IRQ_RAISE / 4] = 0x1;
    auto d = sm_down(gsm, after_ms(500));
    check(d.status == Status::COM_TIM, "the second edu sending that message: dropped (source-ID check)");
    mmio[EDU_IRQ_ACK / 4] = 0x1;
    g = assign_gsi(gsm, reinterpret_cast<u64>(other), cpu);
    program_msi(other, g);
    mmio[EDU_IRQ_RAISE / 4] = 0x1;
    d = sm_down(gsm, after_ms(2000));
    check(g.status == Status::SUCCESS && d.status == Status::SUCCESS,
          "assign_gsi with its own page: the second edu's MSI arrives");
    mmio[EDU_IRQ_ACK / 4] = 0x1;
    unsigned cap = msi_cap(other);
    cfg16(other, cap + 2) = static_cast<u16>(cfg16(other, cap + 2) & ~1u);
}

// The INTx part: legacy interrupt through the I/O APIC.
void test_intx(unsigned cpu, volatile u8 *dev, unsigned slot, volatile u32 *mmio)
{
    unsigned pin = dev[PCI_INT_PIN], line = dev[PCI_INT_LINE];
    printf("INFO: edu at 00:%02x.0, Interrupt Pin %u (INT%c#), Interrupt Line %u (set by the firmware)\n",
           slot, pin, pin >= 1 && pin <= 4 ? static_cast<char>('A' + pin - 1) : '?', line);
    check(pin >= 1 && pin <= 4, "Interrupt Pin register is INTA..INTD");

    // MSI off (capability control bit 0), INTx on (command bit 10 clear).
    unsigned cap = msi_cap(dev);
    cfg16(dev, cap + 2) = static_cast<u16>(cfg16(dev, cap + 2) & ~1u);
    cfg16(dev, PCI_COMMAND) = static_cast<u16>(cfg16(dev, PCI_COMMAND) & ~CMD_INTX_DISABLE);
    check(!(cfg16(dev, cap + 2) & 1) && !(cfg16(dev, PCI_COMMAND) & CMD_INTX_DISABLE) &&
              !(cfg16(dev, PCI_STATUS) & STATUS_INTX) && mmio[EDU_IRQ_STATUS / 4] == 0,
          "MSI disabled, INTx enabled, INTx not asserted");

    // All eight PIRQ GSIs to our CPU (this unmasks their pins, 7.15).
    u64 sms = alloc_sel(NUM_PIRQ);
    bool got = sms != 0, routed = got;
    for (unsigned i = 0; got && i < NUM_PIRQ; i++)
        got = request_kernel_cap(Abi::ksel_gsi_sm(PIRQ_GSI + i), sms + i) == Status::SUCCESS;
    check(got, "GSI semaphores 16..23 from the kernel");
    if (!got)
        test::exit();
    for (unsigned i = 0; i < NUM_PIRQ; i++) {
        auto g = assign_gsi(sms + i, 0, cpu);
        if (g.status != Status::SUCCESS || g.msi_addr || g.msi_data) {
            printf("INFO: assign_gsi GSI %u: %s rsi %#lx rdx %#x\n", PIRQ_GSI + i, status_name(g.status),
                   g.msi_addr, g.msi_data);
            routed = false;
        }
    }
    check(routed, "assign_gsi GSIs 16..23 to our CPU: SUCCESS, rsi = rdx = 0 (I/O APIC GSIs, 7.15)");

    // Nothing may fire while the device is quiet (a wrong polarity would, at once).
    unsigned quiet = 0;
    for (unsigned i = 0; i < NUM_PIRQ; i++) {
        unsigned n = count_ups(sms + i, 5);
        if (n)
            printf("INFO: GSI %u: %u ups without the device\n", PIRQ_GSI + i, n);
        quiet += !n;
    }
    check(quiet == NUM_PIRQ, "no GSI of 16..23 fires while the device's INTx is idle");

    // Raise, leave the line high for 20 ms without any down, then acknowledge.
    mmio[EDU_IRQ_RAISE / 4] = 0x1;
    spin_ms(20);
    check(mmio[EDU_IRQ_STATUS / 4] == 0x1 && (cfg16(dev, PCI_STATUS) & STATUS_INTX),
          "edu asserts INTx: interrupt status 1, PCI status bit 3 set");
    mmio[EDU_IRQ_ACK / 4] = 0x1;
    check(mmio[EDU_IRQ_STATUS / 4] == 0 && !(cfg16(dev, PCI_STATUS) & STATUS_INTX),
          "acknowledged at the device: interrupt status 0, PCI status bit 3 clear");

    // Which semaphore got ups, and how many? The downs unmask the pins, but the line is low.
    unsigned fired = 0, gsi = 0, ups = 0;
    for (unsigned i = 0; i < NUM_PIRQ; i++) {
        unsigned n = count_ups(sms + i, 5);
        if (!n)
            continue;
        fired++;
        gsi = PIRQ_GSI + i;
        ups = n;
        printf("INFO: INT%c# of 00:%02x.0 arrived on GSI %u (PIRQ%c): %u up%s\n",
               pin >= 1 && pin <= 4 ? static_cast<char>('A' + pin - 1) : '?', slot, gsi, 'A' + i, n,
               n == 1 ? "" : "s");
    }
    check(fired == 1, "the device's INTx ups exactly one GSI semaphore of 16..23");
    if (fired != 1)
        test::exit();
    u64 sm = sms + (gsi - PIRQ_GSI);
    check(ups == 1, "one up only while the line stayed high for 20 ms (the level-triggered pin is "
                    "masked when the interrupt comes, 11.1); acknowledged, the unmasking down times out");

    // Raise again: the pin is unmasked (by the last down), the interrupt comes and masks it.
    // The down below unmasks it while the line is still high, so the interrupt comes once more.
    mmio[EDU_IRQ_RAISE / 4] = 0x1;
    spin_ms(20);
    auto d = sm_down(sm, after_ms(2000));
    check(d.status == Status::SUCCESS, "raised again: the down succeeds");
    spin_ms(20);
    mmio[EDU_IRQ_ACK / 4] = 0x1;
    ups = count_ups(sm, 20);
    if (ups != 1)
        printf("INFO: %u ups after the down with the line high\n", ups);
    check(ups == 1, "a down while the line is still high unmasks the pin: the interrupt comes once "
                    "more, and once only (7.13, 11.1)");

    // A waiter blocked on the semaphore: a DMA of 8 bytes from physical address 0 into the
    // device's buffer, which the device completes after 100 ms (virtual clock) with interrupt
    // status 0x100. The semaphore's count is 0 here, so only that interrupt can release the down
    // with the status already 0x100. (The time is printed only: the TSC frequency the kernel
    // calibrates under TCG is off when the host is busy.)
    mmio[EDU_DMA_SRC / 4] = 0;
    mmio[EDU_DMA_DST / 4] = 0x40000;
    mmio[EDU_DMA_CNT / 4] = 8;
    u64 t0 = __builtin_ia32_rdtsc();
    mmio[EDU_DMA_CMD / 4] = 0x1 | 0x4;  // start, RAM to device, interrupt
    d = sm_down(sm, after_ms(2000));
    u64 ms = (__builtin_ia32_rdtsc() - t0) / ticks_ms(1);
    u32 st = mmio[EDU_IRQ_STATUS / 4];
    printf("INFO: blocked down: %s after %lu ms, interrupt status %#x\n", status_name(d.status), ms, st);
    check(d.status == Status::SUCCESS && st == EDU_DMA_IRQ,
          "a down blocked on the GSI semaphore is released by the device's INTx (DMA done)");
    spin_ms(20);
    mmio[EDU_IRQ_ACK / 4] = EDU_DMA_IRQ;
    ups = count_ups(sm, 20);
    if (ups)
        printf("INFO: %u more ups after the release\n", ups);
    check(ups == 0, "the release was the only up (line high for 20 ms more, then acknowledged)");

    // Nothing reached the other seven GSIs in all of this.
    unsigned others = 0;
    for (unsigned i = 0; i < NUM_PIRQ; i++)
        if (PIRQ_GSI + i != gsi && !count_ups(sms + i, 1))
            others++;
    check(others == NUM_PIRQ - 1, "no up on the other seven GSIs");
}

}  // namespace

int main(const Hip *hip, unsigned cpu)
{
    Console::init();
    if (!hip->mcfg_base) {
        check(false, "MMCONFIG present (run on q35)");
        test::exit();
    }
    // Bus 0 configuration space: 32 devices x 8 functions x 4 KiB.
    auto cfg = static_cast<volatile u8 *>(map_phys(hip->mcfg_base, 1u << 20));
    check(cfg != nullptr, "map bus 0 configuration space");
    if (!cfg)
        test::exit();
    volatile u8 *dev = nullptr, *dev2 = nullptr;
    unsigned slot = 0;
    for (unsigned d = 0; d < 32 && !dev2; d++) {
        auto f = cfg + (d << 15);
        // A hole (the kernel keeps the AMD IOMMU's own configuration page: docs/iommu.md) is skipped.
        if (pd_lookup(Crd::mem(reinterpret_cast<u64>(f) >> 12)).crd.is_null() || cfg16(f, 0) != 0x1234 ||
            cfg16(f, 2) != 0x11e8)
            continue;
        if (dev) {
            dev2 = f;
            continue;
        }
        dev = f;
        slot = d;
    }
    check(dev != nullptr, "edu device found on bus 0");
    if (!dev)
        test::exit();

    u64 bar0 = *reinterpret_cast<volatile u32 *>(dev + 0x10) & ~0xfull;
    auto mmio = static_cast<volatile u32 *>(map_phys(bar0, 1u << 20));
    check(mmio != nullptr, "map the edu registers");
    if (!mmio)
        test::exit();

    test_msi(hip, cpu, dev, mmio);
    if (dev2 && (hip->api_flg & Hip::FEAT_IOMMU)) {
        u64 bar = *reinterpret_cast<volatile u32 *>(dev2 + 0x10) & ~0xfull;
        auto mmio2 = static_cast<volatile u32 *>(map_phys(bar, 1u << 20));
        check(mmio2 != nullptr, "map the second edu's registers");
        if (mmio2)
            test_msi_source(hip, cpu, dev, dev2, mmio2);
    }
    test_intx(cpu, dev, slot, mmio);
    test::exit();
}
