#!/usr/bin/env python3
"""Writes the seed corpora of the fuzzers (test/fuzz/corpus/<target>/): small valid inputs
(and a few near misses) in each target's input format; see the comment at the top of each
fuzz_<target>.cpp. Run from anywhere: python3 test/fuzz/make-corpus.py"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
seeds = {}


def seed(target, name, data):
    seeds.setdefault(target, []).append((name, bytes(data)))


# ---------------------------------------------------------------- ACPI (image at 0xe0000)
BASE = 0xe0000


def table(sig, body, rev=1):  # checksum left 0: the harness repairs it (flags bit 0)
    return sig + struct.pack('<IBB6s8sI4sI', 36 + len(body), rev, 0, b'fuzz', b'fuzztbl', 1, b'fuzz', 1) + body


def gas(space, addr, width=32, access=3):
    return struct.pack('<BBBBQ', space, width, 0, access, addr)


def rsdp(rev, rsdt, xsdt):
    r = b'RSD PTR ' + struct.pack('<B6sBI', 0, b'FUZZ', rev, rsdt)
    return r + struct.pack('<IQB3s', 36, xsdt, 0, b'') if rev >= 2 else r + bytes(16)


madt = table(b'APIC', struct.pack('<II', 0xfee00000, 1)
             + struct.pack('<BBBBI', 0, 8, 0, 0, 1) + struct.pack('<BBBBI', 0, 8, 1, 1, 1)
             + struct.pack('<BBBBI', 0, 8, 2, 1, 0)  # a duplicate APIC id, disabled
             + struct.pack('<BBHIII', 9, 16, 0, 0x100, 1, 5)
             + struct.pack('<BBBBII', 1, 12, 2, 0, 0xfec00000, 0)
             + struct.pack('<BBBBIH', 2, 10, 0, 0, 2, 0) + struct.pack('<BBBBIH', 2, 10, 0, 9, 9, 0xf)
             + struct.pack('<BBBHB', 4, 6, 0xff, 5, 1) + struct.pack('<BBHQ', 5, 12, 0, 0xfee00000)
             + struct.pack('<BBHI', 3, 8, 0xd, 2), rev=3)
fadt = bytearray(table(b'FACP', bytes(276 - 36), rev=6))
struct.pack_into('<II', fadt, 36, 0, BASE + 0xe00)
struct.pack_into('<H', fadt, 46, 9)
struct.pack_into('<I', fadt, 76, 0x608)
fadt[91] = 4
struct.pack_into('<HBI', fadt, 109, 3, 0, (1 << 8) | (1 << 10))
fadt[116:128] = gas(1, 0xcf9, 8, 1)
fadt[128] = 6
struct.pack_into('<Q', fadt, 140, BASE + 0xe00)
fadt[208:220] = gas(1, 0x608)
hpet = table(b'HPET', struct.pack('<I', 0x8086a201) + gas(0, 0xfed00000, 64, 0) + struct.pack('<BHB', 0, 0x80, 0))
mcfg = table(b'MCFG', bytes(8) + struct.pack('<QHBBI', 0xb0000000, 0, 0, 0xff, 0)
             + struct.pack('<QHBBI', 0xc0000000, 1, 0, 0x3f, 0))
scope = struct.pack('<BBHBB', 3, 8, 0, 2, 0xf0) + bytes([0x1f, 0])
drhd = struct.pack('<BHBBHQ', 0, 0, 1, 0, 0, 0xfed90000)[:0] + struct.pack('<HHBBHQ', 0, 16 + len(scope), 1, 0, 0, 0xfed90000) + scope
rmrr = struct.pack('<HHHHQQ', 1, 24 + 8, 0, 0, 0x7c000000, 0x7c0fffff) + struct.pack('<BBHBB', 1, 8, 0, 0, 0) + bytes([0x14, 0])
dmar = table(b'DMAR', struct.pack('<BB10s', 38, 1, b'') + drhd + rmrr)
dsdt = table(b'DSDT', bytes([0x10, 0x05, 0x5c, 0x5f, 0x53, 0x42, 0x5f]))
tables = [madt, bytes(fadt), hpet, mcfg, dmar]
addrs = [BASE + 0x100 * (i + 2) for i in range(len(tables))]


def image(root_sig, width):
    img = bytearray(0xf00)
    ent = b''.join(struct.pack('<Q' if width == 8 else '<I', a) for a in addrs)
    img[0x100:0x100 + 36 + len(ent)] = table(root_sig, ent)
    for a, t in zip(addrs, tables):
        img[a - BASE:a - BASE + len(t)] = t
    img[0xe00:0xe00 + len(dsdt)] = dsdt
    return img


xs = image(b'XSDT', 8)
seed('acpi', 'xsdt-loader-copy', bytes([1, 36]) + rsdp(2, 0, BASE + 0x100) + xs)
rs = image(b'RSDT', 4)
seed('acpi', 'rsdt-loader-copy-v1', bytes([1, 20]) + rsdp(0, BASE + 0x100, 0) + rs)
scan = bytearray(rs)
scan[0x80:0x80 + 20] = rsdp(0, BASE + 0x100, 0)[:20]
seed('acpi', 'rsdt-bios-scan', bytes([3, 0]) + bytes(36) + scan)
seed('acpi', 'bad-checksums', bytes([0, 36]) + rsdp(2, 0, BASE + 0x100) + xs)

# ---------------------------------------------------------------- multiboot (memory at 0x10000)
MB = 0x10000
mb1 = bytearray(0x400)
struct.pack_into('<III', mb1, 0, (1 << 0) | (1 << 2) | (1 << 3) | (1 << 6), 639, 130048)
struct.pack_into('<I', mb1, 16, MB + 0x200)  # cmdline
struct.pack_into('<II', mb1, 20, 2, MB + 0x100)  # mods
struct.pack_into('<II', mb1, 44, 3 * 24, MB + 0x180)  # mmap
struct.pack_into('<IIII', mb1, 0x100, MB + 0x300, MB + 0x380, MB + 0x220, 0)
struct.pack_into('<IIII', mb1, 0x110, MB + 0x380, MB + 0x3c0, 0, 0)
for i, (b, l, t) in enumerate([(0, 0x9fc00, 1), (0x100000, 0x7f00000, 1), (0xfffc0000, 0x40000, 2)]):
    struct.pack_into('<IQQI', mb1, 0x180 + 24 * i, 20, b, l, t)
mb1[0x200:0x200 + 30] = b'/boot/hypervisor serial novga\0'
mb1[0x220:0x220 + 9] = b'roottask\0'
seed('multiboot', 'mb1', bytes([0]) + mb1)


def tag(t, body):
    raw = struct.pack('<II', t, 8 + len(body)) + body
    return raw + bytes(-len(raw) % 8)


mmap = struct.pack('<II', 24, 0) + b''.join(struct.pack('<QQII', b, l, t, 0) for b, l, t in
                                           [(0, 0x9fc00, 1), (0x100000, 0x7f00000, 1), (0x7ff00000, 0x100000, 3)])
efi = struct.pack('<II', 48, 1) + b''.join(struct.pack('<IIQQQQQ', t, 0, b, 0, n, 0xf, 0) for t, b, n in
                                          [(7, 0, 0x9f), (7, 0x100000, 0x7f00), (9, 0x8000000, 0x10)])
body = (tag(1, b'hypervisor serial keyb\0') + tag(3, struct.pack('<II', 0x200000, 0x201000) + b'roottask arg\0')
        + tag(4, struct.pack('<II', 639, 130048)) + tag(6, mmap)
        + tag(14, rsdp(0, 0xe0000, 0)[:20]) + tag(15, rsdp(2, 0, 0xe0100)))
mb2 = struct.pack('<II', 8 + len(body) + 8, 0) + body + tag(0, b'')
seed('multiboot', 'mb2-bios', bytes([1]) + mb2)
body = tag(1, b'serial\0') + tag(12, struct.pack('<Q', 0x7e000000)) + tag(17, efi) + tag(18, b'')
mb2 = struct.pack('<II', 8 + len(body) + 8, 0) + body + tag(0, b'')
seed('multiboot', 'mb2-efi', bytes([1]) + mb2)

# ---------------------------------------------------------------- ELF


def elf(phdrs, entry=0x401000, size=0x2000):
    img = bytearray(size)
    img[0:16] = b'\x7fELF\x02\x01\x01' + bytes(9)
    struct.pack_into('<HHIQQQIHHHHHH', img, 16, 2, 62, 1, entry, 64, 0, 0, 64, 56, len(phdrs), 64, 0, 0)
    for i, (t, f, off, va, fs, ms) in enumerate(phdrs):
        struct.pack_into('<IIQQQQQQ', img, 64 + 56 * i, t, f, off, va, va, fs, ms, 0x1000)
    return bytes(img)


seed('elf', 'two-segments', elf([(1, 5, 0x1000, 0x401000, 0x800, 0x800), (1, 6, 0, 0x600000, 0x100, 0x100)]))
seed('elf', 'with-note', elf([(4, 4, 0x200, 0x400200, 0x20, 0x20), (1, 7, 0, 0x400000, 0x2000, 0x2000)], 0x400100))
seed('elf', 'bss-mismatch', elf([(1, 5, 0x1000, 0x401000, 0x800, 0x1000)]))

# ---------------------------------------------------------------- command line (first byte: buffer size)
for i, s in enumerate([b'/boot/hypervisor serial novga', b'hypervisor iommu keyb spinner nopcid nodl kstat',
                       b'serial bogus bogus x/y nofast noxsave novpid kfault', b'\tserial\r\nnovga\0junk']):
    seed('cmdline', 'line%d' % i, bytes([127 - 40 * i]) + s)

# ---------------------------------------------------------------- mapping database (8-byte operations)


def op(*b):
    return bytes(b) + bytes(8 - len(b))


seed('mdb', 'roots-delegate-revoke', op(0, 0, 0, 0, 3, 0x1f) + op(0, 1, 0, 16, 2, 7) + op(1, 0, 1, 0, 0x12, 7, 7, 32)
     + op(1, 1, 2, 32, 0x09, 3, 5, 8) + op(6, 2, 0, 8) + op(2, 0, 0, 0, 3, 1) + op(3, 1, 0, 32, 1, 4) + op(4, 0))
seed('mdb', 'oom', op(0, 0, 0, 0, 5, 0x1f) + op(5, 1) + op(1, 0, 1, 0, 0x1d, 0x1f, 0x1f, 0) + op(6, 1, 0, 0)
     + op(5, 0) + op(1, 0, 0, 0, 0x22, 0x1f, 0x1f, 40))
seed('mdb', 'chain', op(0, 0, 0, 0, 0, 7) + op(1, 0, 1, 0, 0, 7, 7, 1) + op(1, 1, 2, 1, 0, 3, 7, 2)
     + op(1, 2, 0, 2, 0, 1, 7, 3) + op(3, 0, 0, 0, 0, 2) + op(6, 0, 0, 3) + op(2, 0, 0, 0, 0, 7))

for target, files in seeds.items():
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    for name, data in files:
        with open(os.path.join(d, name), 'wb') as f:
            f.write(data)
    print('%s: %d seeds, %d bytes' % (target, len(files), sum(len(x) for _, x in files)))
