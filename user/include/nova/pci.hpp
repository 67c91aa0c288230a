/*
 * PCI configuration space through MMCONFIG (HIP mcfg_base), MSI programming, and QEMU's `edu`
 * test device (registers as in QEMU's description of the device), for the tests that route device
 * interrupts (user/msitest, user/allcpus). Also the CPU a GSI's last interrupt reached, from
 * kstat's census.
 */
#pragma once

#include "abi/hip.hpp"
#include "abi/utcb.hpp"
#include "nova/hypercalls.hpp"
#include "nova/runtime.hpp"

namespace nova {

namespace Pci {
constexpr unsigned COMMAND = 0x04, STATUS = 0x06, INT_LINE = 0x3c, INT_PIN = 0x3d;
constexpr u16 CMD_INTX_DISABLE = 1u << 10, STATUS_INTX = 1u << 3;

inline volatile u16 &cfg16(volatile u8 *dev, unsigned off)
{
    return *reinterpret_cast<volatile u16 *>(dev + off);
}
inline volatile u32 &cfg32(volatile u8 *dev, unsigned off)
{
    return *reinterpret_cast<volatile u32 *>(dev + off);
}

// Bus 0's configuration space (32 devices x 8 functions x 4 KiB) mapped, nullptr without MMCONFIG.
inline volatile u8 *map_bus0(const Hip *hip)
{
    return hip->mcfg_base ? static_cast<volatile u8 *>(map_phys(hip->mcfg_base, 1u << 20)) : nullptr;
}

// Function 0 of the `nth` device on bus 0 with this vendor and device ID, nullptr if none; *slot
// gets its device number. Holes in the mapping are skipped (the kernel keeps the AMD IOMMU's own
// configuration page: docs/iommu.md).
inline volatile u8 *find(volatile u8 *bus0, u16 vendor, u16 device, unsigned nth = 0,
                         unsigned *slot = nullptr)
{
    for (unsigned d = 0; bus0 && d < 32; d++) {
        volatile u8 *f = bus0 + (d << 15);
        if (pd_lookup(Crd::mem(reinterpret_cast<u64>(f) >> 12)).crd.is_null())
            continue;
        if (cfg16(f, 0) != vendor || cfg16(f, 2) != device || nth--)
            continue;
        if (slot)
            *slot = d;
        return f;
    }
    return nullptr;
}

// The offset of the MSI capability (id 5) in the capability list, 0 if there is none.
inline unsigned msi_cap(volatile u8 *dev)
{
    unsigned cap = dev[0x34];
    for (unsigned n = 0; cap && n < 48 && dev[cap] != 5; n++)
        cap = dev[cap + 1];
    return cap && dev[cap] == 5 ? cap : 0;
}

// Program dev's MSI capability with assign_gsi's address and data, enable it and bus mastering.
inline void program_msi(volatile u8 *dev, const Gsi_result &g)
{
    unsigned cap = msi_cap(dev);
    u16 ctrl = cfg16(dev, cap + 2);
    bool is64 = ctrl & (1u << 7);
    cfg32(dev, cap + 4) = static_cast<u32>(g.msi_addr);
    if (is64)
        cfg32(dev, cap + 8) = 0;
    cfg16(dev, cap + (is64 ? 12 : 8)) = static_cast<u16>(g.msi_data);
    cfg16(dev, cap + 2) = static_cast<u16>(ctrl | 1);
    cfg16(dev, COMMAND) = static_cast<u16>(cfg16(dev, COMMAND) | 0x6);
}

// MSI off (the device drives INTx again unless the command register disables it).
inline void disable_msi(volatile u8 *dev)
{
    unsigned cap = msi_cap(dev);
    cfg16(dev, cap + 2) = static_cast<u16>(cfg16(dev, cap + 2) & ~1u);
}
}  // namespace Pci

// QEMU's edu device: 32-bit registers below 0x80 in BAR 0.
namespace Edu {
constexpr u16 VENDOR = 0x1234, DEVICE = 0x11e8;
constexpr unsigned IRQ_STATUS = 0x24, IRQ_RAISE = 0x60, IRQ_ACK = 0x64;
constexpr unsigned DMA_SRC = 0x80, DMA_DST = 0x88, DMA_CNT = 0x90, DMA_CMD = 0x98;
constexpr u32 DMA_IRQ = 0x100;  // the status value a DMA completion raises

// BAR 0 of an edu function mapped, nullptr if that fails.
inline volatile u32 *map_regs(volatile u8 *dev)
{
    return static_cast<volatile u32 *>(map_phys(Pci::cfg32(dev, 0x10) & ~0xfull, 1u << 20));
}
}  // namespace Edu

/*
 * The number of the CPU that took GSI `gsi`'s last interrupt, from kstat's census (this project's
 * extension: only with the command-line option `kstat`). ~0 if no interrupt came yet; `status`
 * gets kstat's status (BAD_HYP without `kstat`).
 */
inline u32 gsi_last_cpu(unsigned gsi, Status &status)
{
    Kstat k;
    Kstat_census c;
    status = kstat_census(k, c, utcb());
    return status == Status::SUCCESS && gsi < Abi::NUM_GSI ? c.gsi_cpu[gsi] : ~0u;
}

}  // namespace nova
