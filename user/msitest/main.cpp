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
 *
 * Every CPU: the MSI and the INTx pin routed to each online CPU in turn, raised and awaited by a
 * handler EC on that CPU; with `kstat` the kernel's census names the CPU that took each interrupt.
 */
#include <nova/nova.hpp>
#include <nova/pci.hpp>

using namespace nova;
using namespace nova::Pci;

namespace {

using test::check;

constexpr u64 MSI_GSI = 64;        // above the I/O APIC's 24 pins: an MSI GSI
constexpr unsigned PIRQ_GSI = 16;  // q35: PIRQ A..H = GSIs 16..23
constexpr unsigned NUM_PIRQ = 8;

constexpr u64 CPU_MSI_GSI = MSI_GSI + 2;  // the per-CPU part's MSI (no interrupt before it)

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
    program_msi(dev, g);

    mmio[Edu::IRQ_RAISE / 4] = 0x1;
    auto d = sm_down(gsm, after_ms(2000));
    check(d.status == Status::SUCCESS, "the device's MSI releases the GSI semaphore (I.133)");
    check(mmio[Edu::IRQ_STATUS / 4] == 0x1, "interrupt status as raised");
    mmio[Edu::IRQ_ACK / 4] = 0x1;
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
    mmio[Edu::IRQ_RAISE / 4] = 0x1;
    auto d = sm_down(gsm, after_ms(500));
    check(d.status == Status::COM_TIM, "the second edu sending that message: dropped (source-ID check)");
    mmio[Edu::IRQ_ACK / 4] = 0x1;
    g = assign_gsi(gsm, reinterpret_cast<u64>(other), cpu);
    program_msi(other, g);
    mmio[Edu::IRQ_RAISE / 4] = 0x1;
    d = sm_down(gsm, after_ms(2000));
    check(g.status == Status::SUCCESS && d.status == Status::SUCCESS,
          "assign_gsi with its own page: the second edu's MSI arrives");
    mmio[Edu::IRQ_ACK / 4] = 0x1;
    disable_msi(other);
}

// The INTx part: legacy interrupt through the I/O APIC. Returns the device's GSI.
unsigned test_intx(unsigned cpu, volatile u8 *dev, unsigned slot, volatile u32 *mmio)
{
    unsigned pin = dev[INT_PIN], line = dev[INT_LINE];
    printf("INFO: edu at 00:%02x.0, Interrupt Pin %u (INT%c#), Interrupt Line %u (set by the firmware)\n",
           slot, pin, pin >= 1 && pin <= 4 ? static_cast<char>('A' + pin - 1) : '?', line);
    check(pin >= 1 && pin <= 4, "Interrupt Pin register is INTA..INTD");

    // MSI off (capability control bit 0), INTx on (command bit 10 clear).
    unsigned cap = msi_cap(dev);
    cfg16(dev, cap + 2) = static_cast<u16>(cfg16(dev, cap + 2) & ~1u);
    cfg16(dev, COMMAND) = static_cast<u16>(cfg16(dev, COMMAND) & ~CMD_INTX_DISABLE);
    check(!(cfg16(dev, cap + 2) & 1) && !(cfg16(dev, COMMAND) & CMD_INTX_DISABLE) &&
              !(cfg16(dev, STATUS) & STATUS_INTX) && mmio[Edu::IRQ_STATUS / 4] == 0,
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
    mmio[Edu::IRQ_RAISE / 4] = 0x1;
    spin_ms(20);
    check(mmio[Edu::IRQ_STATUS / 4] == 0x1 && (cfg16(dev, STATUS) & STATUS_INTX),
          "edu asserts INTx: interrupt status 1, PCI status bit 3 set");
    mmio[Edu::IRQ_ACK / 4] = 0x1;
    check(mmio[Edu::IRQ_STATUS / 4] == 0 && !(cfg16(dev, STATUS) & STATUS_INTX),
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
    mmio[Edu::IRQ_RAISE / 4] = 0x1;
    spin_ms(20);
    auto d = sm_down(sm, after_ms(2000));
    check(d.status == Status::SUCCESS, "raised again: the down succeeds");
    spin_ms(20);
    mmio[Edu::IRQ_ACK / 4] = 0x1;
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
    mmio[Edu::DMA_SRC / 4] = 0;
    mmio[Edu::DMA_DST / 4] = 0x40000;
    mmio[Edu::DMA_CNT / 4] = 8;
    u64 t0 = __builtin_ia32_rdtsc();
    mmio[Edu::DMA_CMD / 4] = 0x1 | 0x4;  // start, RAM to device, interrupt
    d = sm_down(sm, after_ms(2000));
    u64 ms = (__builtin_ia32_rdtsc() - t0) / ticks_ms(1);
    u32 st = mmio[Edu::IRQ_STATUS / 4];
    printf("INFO: blocked down: %s after %lu ms, interrupt status %#x\n", status_name(d.status), ms, st);
    check(d.status == Status::SUCCESS && st == Edu::DMA_IRQ,
          "a down blocked on the GSI semaphore is released by the device's INTx (DMA done)");
    spin_ms(20);
    mmio[Edu::IRQ_ACK / 4] = Edu::DMA_IRQ;
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
    return gsi;
}

// The per-CPU part's handler EC (one per CPU, called from the boot CPU): raise the device's
// interrupt, wait for it on the GSI semaphore, acknowledge it at the device.
volatile u32 *cpu_mmio;
u64 cpu_sm;
Status cpu_down;

void raise_and_wait(u64, Utcb &u)
{
    cpu_mmio[Edu::IRQ_RAISE / 4] = 0x1;
    cpu_down = sm_down(cpu_sm, after_ms(2000)).status;
    cpu_mmio[Edu::IRQ_ACK / 4] = 0x1;
    u.mtd = 0;
}

// Route GSI semaphore sm (dev: the MSI's configuration page, 0: a pin) to CPU c, let c's handler
// raise and await the interrupt; true if it came, and (census) on CPU c.
bool on_cpu(u64 pt, unsigned c, u64 sm, unsigned gsi, volatile u8 *dev, bool census, const char *what)
{
    auto g = assign_gsi(sm, reinterpret_cast<u64>(dev), c);
    if (dev)
        program_msi(dev, g);
    cpu_sm = sm;
    cpu_down = Status::BAD_PAR;
    Status r = g.status == Status::SUCCESS ? call(pt) : g.status;
    Status k;
    u32 at = gsi_last_cpu(gsi, k);
    count_ups(sm, 5);  // a level pin unmasked while the line was still high fired once more
    if (r == Status::SUCCESS && cpu_down == Status::SUCCESS && (!census || at == c))
        return true;
    printf("INFO: %s (GSI %u) to CPU %u: assign_gsi %s, call %s, down %s, taken on CPU %d\n", what, gsi, c,
           status_name(g.status), status_name(r), status_name(cpu_down), static_cast<int>(at));
    return false;
}

void test_cpus(const Hip *hip, volatile u8 *dev, volatile u32 *mmio, unsigned intx_gsi)
{
    u64 msi_sm = alloc_sel(), intx_sm = alloc_sel();
    check(request_kernel_cap(Abi::ksel_gsi_sm(CPU_MSI_GSI), msi_sm) == Status::SUCCESS &&
              request_kernel_cap(Abi::ksel_gsi_sm(intx_gsi), intx_sm) == Status::SUCCESS,
          "GSI semaphores %lu and %u for the per-CPU part", CPU_MSI_GSI, intx_gsi);
    Status k;
    gsi_last_cpu(CPU_MSI_GSI, k);
    bool census = k == Status::SUCCESS;
    const char *how = census ? "the kernel's census names that CPU" : "no kstat: only the down is checked";
    cpu_mmio = mmio;
    unsigned online = 0, msi_ok = 0, intx_ok = 0;
    for (unsigned c = 0; c < hip->num_cpu_desc(); c++) {
        if (!hip->cpu(c)->online())
            continue;
        online++;
        Handler_ec h;
        u64 pt = alloc_sel();
        if (create_handler_ec(h, alloc_sel(), self_pd(), c, raise_and_wait) != Status::SUCCESS ||
            create_portal(pt, h.sel) != Status::SUCCESS) {
            printf("INFO: no handler EC on CPU %u\n", c);
            continue;
        }
        msi_ok += on_cpu(pt, c, msi_sm, CPU_MSI_GSI, dev, census, "MSI");
        disable_msi(dev);  // INTx again
        intx_ok += on_cpu(pt, c, intx_sm, intx_gsi, nullptr, census, "INTx");
    }
    check(online > 1 && msi_ok == online,
          "the MSI routed to each of the %u CPUs in turn reaches its handler EC there (%s)", online, how);
    check(online > 1 && intx_ok == online,
          "the INTx pin routed to each of the %u CPUs in turn reaches its handler EC there (%s)", online,
          how);
}

}  // namespace

int main(const Hip *hip, unsigned cpu)
{
    Console::init();
    if (!hip->mcfg_base) {
        check(false, "MMCONFIG present (run on q35)");
        test::exit();
    }
    volatile u8 *cfg = map_bus0(hip);
    check(cfg != nullptr, "map bus 0 configuration space");
    if (!cfg)
        test::exit();
    unsigned slot = 0;
    volatile u8 *dev = find(cfg, Edu::VENDOR, Edu::DEVICE, 0, &slot),
                *dev2 = find(cfg, Edu::VENDOR, Edu::DEVICE, 1);
    check(dev != nullptr, "edu device found on bus 0");
    if (!dev)
        test::exit();

    volatile u32 *mmio = Edu::map_regs(dev);
    check(mmio != nullptr, "map the edu registers");
    if (!mmio)
        test::exit();

    test_msi(hip, cpu, dev, mmio);
    if (dev2 && (hip->api_flg & Hip::FEAT_IOMMU)) {
        volatile u32 *mmio2 = Edu::map_regs(dev2);
        check(mmio2 != nullptr, "map the second edu's registers");
        if (mmio2)
            test_msi_source(hip, cpu, dev, dev2, mmio2);
    }
    unsigned intx_gsi = test_intx(cpu, dev, slot, mmio);
    test_cpus(hip, dev, mmio, intx_gsi);
    test::exit();
}
