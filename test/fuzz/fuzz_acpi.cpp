/*
 * Fuzzes ACPI discovery and every table parser (src/acpi*.cpp) through acpi_parse() and the
 * MADT CPU walk, as the kernel calls them at boot.
 *
 * Input: flags (bit 0: the harness repairs checksums, bit 1: BIOS scan allowed), the length
 * of the loader's RSDP copy (mod 37), 36 bytes of that copy, then physical memory from 0xe0000
 * (the BIOS scan area). With bit 0 the harness fixes the checksum of the loader copy, of every
 * "RSD PTR " at a 16-byte boundary and of every table header whose signature is four capitals at
 * a 16-byte boundary (over its length, as far as the input goes; from the end, so that an enclosing
 * table's sum is fixed last), so mutations reach the parsers
 * instead of dying at the checksum.
 */
#include <cstddef>
#include <cstring>
#include <vector>

#include "acpi.hpp"
#include "fake_phys.hpp"

namespace {

constexpr u64 BASE = 0xe0000;

void fix(u8 *p, size_t len, size_t at)
{
    p[at] = 0;
    p[at] = static_cast<u8>(-Acpi::checksum(p, len));
}

u32 le32(const u8 *p) { return p[0] | p[1] << 8 | p[2] << 16 | static_cast<u32>(p[3]) << 24; }

bool capitals(const u8 *p)
{
    for (int i = 0; i < 4; i++)
        if (p[i] < 'A' || p[i] > 'Z')
            return false;
    return true;
}

void fix_rsdp(u8 *p, size_t avail)
{
    if (avail >= 20)
        fix(p, 20, 8);
    if (avail >= 36 && p[15] >= 2) {
        u32 len = le32(p + 20);
        if (len >= 36 && len <= avail)
            fix(p, len, 32);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const u8 *data, size_t size)
{
    if (size < 38)
        return 0;
    u8 flags = data[0];
    size_t copy_len = data[1] % 37;
    u8 copy[36];
    std::memcpy(copy, data + 2, sizeof copy);
    std::vector<u8> mem(data + 38, data + size);

    if (flags & 1) {
        fix_rsdp(copy, copy_len);
        for (size_t off = mem.size() / 16 * 16; off != 0;) {  // last first: an outer table's sum wins
            off -= 16;
            if (mem.size() - off < 36)
                continue;
            u8 *p = mem.data() + off;
            if (!std::memcmp(p, "RSD PTR ", 8))
                fix_rsdp(p, mem.size() - off);
            else if (capitals(p)) {
                u32 len = le32(p + 4);
                if (len >= 36)
                    fix(p, len < mem.size() - off ? len : mem.size() - off, 9);
            }
        }
    }

    Fake_phys phys{BASE, mem.data(), mem.size(), true, {}};
    static Acpi_info info;  // about 6 KiB, as in the kernel
    if (!acpi_parse(phys.reader(), copy_len ? copy : nullptr, copy_len, flags & 2, info))
        return 0;

    // The walk reports what the parse counted (include/acpi.hpp: num_cpus, num_cpus_enabled).
    u32 enabled = 0;
    u32 calls = Acpi::for_each_cpu(phys.reader(), info, [&](Madt_cpu const &c) { enabled += c.enabled; });
    if (info.madt.present && (calls != info.madt.num_cpus || enabled != info.madt.num_cpus_enabled))
        __builtin_trap();
    volatile u32 sink = info.sci_gsi();
    for (unsigned irq = 0; irq < 16; irq++)
        sink = info.isa_to_gsi(static_cast<u8>(irq));
    for (unsigned i = 0; i < info.madt.num_override; i++)
        sink = info.gsi_mode(info.madt.overrides[i].gsi).trigger;
    (void)sink;
    return 0;
}
