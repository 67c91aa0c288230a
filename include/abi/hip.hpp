/*
 * Hypervisor information page (ABI 8): the header, the CPU, I/O APIC and
 * memory descriptors, the feature flags and the checksum rule. The kernel
 * fills it; the root task finds it at its initial rsp (Abi::HIP_ADDR with up
 * to Abi::NUM_CPU CPUs; lower with more, docs/boot.md "HIP layout").
 */
#pragma once

#include <stddef.h>

#include "../types.hpp"
#include "constants.hpp"

struct Hip_cpu
{
    static constexpr u8 ONLINE = 1u << 0;

    u8 flags;
    u8 thread, core, package;
    u8 acpi_id;
    u8 reserved_05[3];
    u32 lapic_id;  // LAPIC ID register value: the id is in bits 31:24
    u32 lapic_version;
    u32 lapic_svr;
    u32 reserved_14;
    u32 lvt_timer, lvt_lint0, lvt_lint1, lvt_error, lvt_perfm, lvt_therm;

    constexpr bool online() const { return flags & ONLINE; }
};

struct Hip_ioapic
{
    u32 id;
    u32 version;
    u32 gsi_base;
    u32 base;  // physical MMIO address
};

struct Hip_mem
{
    // Types 1..5 (and any other positive value) come from the multiboot memory map.
    static constexpr u32 AVAILABLE = 1;
    static constexpr u32 RESERVED = 2;
    static constexpr u32 ACPI_RECLAIM = 3;
    static constexpr u32 ACPI_NVS = 4;
    static constexpr u32 BAD = 5;
    static constexpr u32 HYPERVISOR = 0xffffffff;  // kernel image and kernel memory pool
    static constexpr u32 MODULE = 0xfffffffe;      // multiboot module; aux = its command line

    u64 addr;
    u64 size;
    u32 type;
    u32 aux;
};

struct Hip
{
    static constexpr u32 SIGNATURE = 0x41564f4e;  // "NOVA"
    static constexpr u32 FEAT_IOMMU = 1u << 0;
    static constexpr u32 FEAT_VMX = 1u << 1;
    static constexpr u32 FEAT_SVM = 1u << 2;
    static constexpr u16 CPU_OFFS = 0x78;
    static constexpr u16 IOAPIC_OFFS = 0xc78;
    static constexpr u16 MEM_OFFS = 0xcc8;
    static constexpr unsigned MAX_MEM = (PAGE_SIZE - MEM_OFFS) / sizeof(Hip_mem);  // 34

    /*
     * Extension (docs/boot.md "HIP layout"): with more than Abi::NUM_CPU CPUs
     * the CPU array holds one descriptor per CPU; the I/O APIC and memory
     * arrays follow it and the HIP spans several pages. Up to NUM_CPU CPUs
     * the layout is exactly the reference's (the struct below).
     */
    static constexpr unsigned cpu_slots(unsigned ncpu) { return ncpu > Abi::NUM_CPU ? ncpu : Abi::NUM_CPU; }
    static constexpr size_t ioapic_offs_for(unsigned ncpu) { return CPU_OFFS + size_t{cpu_slots(ncpu)} * 48; }
    static constexpr size_t mem_offs_for(unsigned ncpu)
    {
        return ioapic_offs_for(ncpu) + size_t{Abi::NUM_IOAPIC} * 16;
    }
    static constexpr size_t size_for(unsigned ncpu) { return mem_offs_for(ncpu) + size_t{MAX_MEM} * 24; }
    static constexpr unsigned pages_for(unsigned ncpu)
    {
        return static_cast<unsigned>((size_for(ncpu) + PAGE_SIZE - 1) / PAGE_SIZE);
    }
    // The most CPUs the 16-bit offset and length fields can describe.
    static constexpr unsigned MAX_CPUS = (0xffff - CPU_OFFS - Abi::NUM_IOAPIC * 16 - MAX_MEM * 24) / 48;

    u32 signature;
    u16 checksum;
    u16 length;  // bytes up to the end of the last memory descriptor
    u16 cpu_offs, cpu_size;
    u16 ioapic_offs, ioapic_size;
    u16 mem_offs, mem_size;
    u32 api_flg;
    u32 api_ver;
    u32 sel_num, sel_exc, sel_vmi, sel_gsi;
    u32 cfg_page, cfg_utcb;
    u32 freq_tsc;  // kHz
    u32 freq_bus;  // LAPIC timer, kHz
    u32 pci_bus_start;
    u64 mcfg_base, mcfg_size;
    u64 dmar_table;
    u64 hpet_base;
    u64 initial_pat;
    u64 msr_platform_info;
    u64 cap_vmx_sec_exec;
    Hip_cpu cpu_desc[Abi::NUM_CPU];
    Hip_ioapic ioapic_desc[Abi::NUM_IOAPIC];
    Hip_mem mem_desc[MAX_MEM];

    /*
     * Consumers locate the arrays through the offset/size fields (8.1). These
     * return nullptr for an index beyond the array, the reported length (or
     * for the I/O APICs the page), or when the reported descriptor size is
     * smaller than ours. The CPU array ends where the I/O APIC array starts
     * (64 descriptors in the reference layout, one per CPU beyond that).
     */
    const Hip_cpu *cpu(unsigned i) const
    {
        return static_cast<const Hip_cpu *>(
            element(cpu_offs, cpu_size, sizeof(Hip_cpu), i, ~0u, cpu_array_end()));
    }
    const Hip_ioapic *ioapic(unsigned i) const
    {
        return static_cast<const Hip_ioapic *>(
            element(ioapic_offs, ioapic_size, sizeof(Hip_ioapic), i, Abi::NUM_IOAPIC, bounded_length()));
    }
    const Hip_mem *mem(unsigned i) const
    {
        return static_cast<const Hip_mem *>(
            element(mem_offs, mem_size, sizeof(Hip_mem), i, ~0u, bounded_length()));
    }

    unsigned num_cpu_desc() const { return count(cpu_offs, cpu_size, sizeof(Hip_cpu), ~0u, cpu_array_end()); }
    unsigned num_mem_desc() const
    {
        return count(mem_offs, mem_size, sizeof(Hip_mem), ~0u, bounded_length());
    }

    unsigned num_cpus_online() const
    {
        unsigned n = 0;
        for (unsigned i = 0; i < num_cpu_desc(); i++)
            n += cpu(i)->online();
        return n;
    }

    bool has(u32 feature) const { return (api_flg & feature) == feature; }

    /*
     * Checksum rule (8.6): the 16-bit wrap-around sum of all little-endian
     * words in [0, length) is 0. An odd trailing byte counts as a word with a
     * zero high byte.
     */
    static constexpr u16 word_sum(const u8 *p, size_t len)
    {
        u16 sum = 0;
        for (size_t i = 0; i < len; i += 2)
            sum = static_cast<u16>(sum + (p[i] | (i + 1 < len ? p[i + 1] << 8 : 0)));
        return sum;
    }

    // The value to store in `checksum` for the first `len` bytes at p (the stored field counts as 0).
    static constexpr u16 compute_checksum(const u8 *p, size_t len)
    {
        u16 stored = len >= 6 ? static_cast<u16>(p[4] | p[5] << 8) : 0;
        return static_cast<u16>(0 - static_cast<u16>(word_sum(p, len) - stored));
    }

    // length covering the header and the memory array's start, and every word summing to zero.
    bool checksum_ok() const
    {
        return length >= MEM_OFFS && length >= mem_offs && word_sum(bytes(), length) == 0;
    }

    // Bytes the HIP spans (what the kernel maps for the root): whole pages.
    size_t mapped_size() const { return (size_t{length} + PAGE_SIZE - 1) / PAGE_SIZE * PAGE_SIZE; }

    // Fill in `checksum`; call after every other field is final.
    void set_checksum() { checksum = compute_checksum(bytes(), length); }

  private:
    const u8 *bytes() const { return reinterpret_cast<const u8 *>(this); }
    size_t bounded_length() const { return length; }
    size_t cpu_array_end() const { return ioapic_offs < length ? ioapic_offs : length; }

    // Entries of `size` bytes (at least min_size) from offs that fit below limit, at most max.
    static unsigned count(size_t offs, size_t size, size_t min_size, unsigned max, size_t limit = PAGE_SIZE)
    {
        if (size < min_size || offs >= limit)
            return 0;
        size_t n = (limit - offs) / size;
        return n < max ? static_cast<unsigned>(n) : max;
    }

    const void *element(size_t offs, size_t size, size_t min_size, unsigned i, unsigned max,
                        size_t limit = PAGE_SIZE) const
    {
        if (i >= count(offs, size, min_size, max, limit))
            return nullptr;
        return bytes() + offs + static_cast<size_t>(i) * size;
    }
};

static_assert(sizeof(Hip_cpu) == 48);
static_assert(sizeof(Hip_ioapic) == 16);
static_assert(sizeof(Hip_mem) == 24);
static_assert(sizeof(Hip) <= PAGE_SIZE);
static_assert(Hip::MAX_MEM == 34);
static_assert(Hip::size_for(Abi::NUM_CPU) <= PAGE_SIZE && Hip::pages_for(Abi::NUM_CPU) == 1);
static_assert(Hip::ioapic_offs_for(Abi::NUM_CPU) == Hip::IOAPIC_OFFS &&
              Hip::mem_offs_for(1) == Hip::MEM_OFFS);
static_assert(Hip::size_for(Hip::MAX_CPUS) <= 0xffff);

static_assert(offsetof(Hip_cpu, flags) == 0x00 && offsetof(Hip_cpu, thread) == 0x01);
static_assert(offsetof(Hip_cpu, core) == 0x02 && offsetof(Hip_cpu, package) == 0x03);
static_assert(offsetof(Hip_cpu, acpi_id) == 0x04 && offsetof(Hip_cpu, lapic_id) == 0x08);
static_assert(offsetof(Hip_cpu, lapic_version) == 0x0c && offsetof(Hip_cpu, lapic_svr) == 0x10);
static_assert(offsetof(Hip_cpu, lvt_timer) == 0x18 && offsetof(Hip_cpu, lvt_lint0) == 0x1c);
static_assert(offsetof(Hip_cpu, lvt_lint1) == 0x20 && offsetof(Hip_cpu, lvt_error) == 0x24);
static_assert(offsetof(Hip_cpu, lvt_perfm) == 0x28 && offsetof(Hip_cpu, lvt_therm) == 0x2c);

static_assert(offsetof(Hip_ioapic, id) == 0x0 && offsetof(Hip_ioapic, version) == 0x4);
static_assert(offsetof(Hip_ioapic, gsi_base) == 0x8 && offsetof(Hip_ioapic, base) == 0xc);

static_assert(offsetof(Hip_mem, addr) == 0x00 && offsetof(Hip_mem, size) == 0x08);
static_assert(offsetof(Hip_mem, type) == 0x10 && offsetof(Hip_mem, aux) == 0x14);

static_assert(offsetof(Hip, signature) == 0x00);
static_assert(offsetof(Hip, checksum) == 0x04);
static_assert(offsetof(Hip, length) == 0x06);
static_assert(offsetof(Hip, cpu_offs) == 0x08);
static_assert(offsetof(Hip, cpu_size) == 0x0a);
static_assert(offsetof(Hip, ioapic_offs) == 0x0c);
static_assert(offsetof(Hip, ioapic_size) == 0x0e);
static_assert(offsetof(Hip, mem_offs) == 0x10);
static_assert(offsetof(Hip, mem_size) == 0x12);
static_assert(offsetof(Hip, api_flg) == 0x14);
static_assert(offsetof(Hip, api_ver) == 0x18);
static_assert(offsetof(Hip, sel_num) == 0x1c);
static_assert(offsetof(Hip, sel_exc) == 0x20);
static_assert(offsetof(Hip, sel_vmi) == 0x24);
static_assert(offsetof(Hip, sel_gsi) == 0x28);
static_assert(offsetof(Hip, cfg_page) == 0x2c);
static_assert(offsetof(Hip, cfg_utcb) == 0x30);
static_assert(offsetof(Hip, freq_tsc) == 0x34);
static_assert(offsetof(Hip, freq_bus) == 0x38);
static_assert(offsetof(Hip, pci_bus_start) == 0x3c);
static_assert(offsetof(Hip, mcfg_base) == 0x40);
static_assert(offsetof(Hip, mcfg_size) == 0x48);
static_assert(offsetof(Hip, dmar_table) == 0x50);
static_assert(offsetof(Hip, hpet_base) == 0x58);
static_assert(offsetof(Hip, initial_pat) == 0x60);
static_assert(offsetof(Hip, msr_platform_info) == 0x68);
static_assert(offsetof(Hip, cap_vmx_sec_exec) == 0x70);
static_assert(offsetof(Hip, cpu_desc) == Hip::CPU_OFFS);
static_assert(offsetof(Hip, ioapic_desc) == Hip::IOAPIC_OFFS);
static_assert(offsetof(Hip, mem_desc) == Hip::MEM_OFFS);
