/*
 * Helpers for the ACPI tests: a fake physical memory whose reader hands out one exact-size
 * copy per map() (so ASan catches reads past a mapping and use of a stale mapping), and
 * builders for RSDPs, tables and MADT/DMAR entries.
 */
#pragma once

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "acpi.hpp"

using Bytes = std::vector<u8>;

struct Fake_phys
{
    u64 base;
    Bytes mem;
    std::unique_ptr<u8[]> window;  // the only live mapping
    unsigned maps = 0;

    Fake_phys(u64 b, size_t size) : base(b), mem(size, 0) {}

    static const void *map_fn(void *ctx, u64 phys, u64 len)
    {
        auto *f = static_cast<Fake_phys *>(ctx);
        f->maps++;
        if (phys < f->base || phys - f->base > f->mem.size() || len > f->mem.size() - (phys - f->base))
            return nullptr;
        f->window.reset();
        f->window.reset(new u8[len]);
        std::memcpy(f->window.get(), f->mem.data() + (phys - f->base), len);
        return f->window.get();
    }

    Phys_reader reader() { return {map_fn, this}; }

    void put(u64 phys, Bytes const &b) { std::memcpy(mem.data() + (phys - base), b.data(), b.size()); }
    void put16(u64 phys, u16 v) { std::memcpy(mem.data() + (phys - base), &v, 2); }
    void put32(u64 phys, u32 v) { std::memcpy(mem.data() + (phys - base), &v, 4); }
};

/* Appends little-endian values to a byte vector. */
struct Writer
{
    Bytes b;

    Writer &u8_(unsigned v)
    {
        b.push_back(static_cast<u8>(v));
        return *this;
    }
    Writer &u16_(unsigned v) { return u8_(v & 0xff).u8_(v >> 8 & 0xff); }
    Writer &u32_(u32 v) { return u16_(v & 0xffff).u16_(v >> 16); }
    Writer &u64_(u64 v) { return u32_(static_cast<u32>(v)).u32_(static_cast<u32>(v >> 32)); }
    Writer &str(char const *s, size_t n)
    {
        for (size_t i = 0; i < n; i++)
            u8_(static_cast<u8>(s[i]));
        return *this;
    }
    Writer &bytes(Bytes const &x)
    {
        b.insert(b.end(), x.begin(), x.end());
        return *this;
    }
    Writer &zeros(size_t n)
    {
        b.insert(b.end(), n, 0);
        return *this;
    }
    Writer &gas(unsigned space, u64 addr, unsigned width = 32, unsigned access = 3)
    {
        return u8_(space).u8_(width).u8_(0).u8_(access).u64_(addr);
    }
};

inline u8 sum_of(Bytes const &b, size_t n)
{
    u8 s = 0;
    for (size_t i = 0; i < n; i++)
        s = static_cast<u8>(s + b[i]);
    return s;
}

inline void fix_sum(Bytes &b, size_t at, size_t n)
{
    b[at] = 0;
    b[at] = static_cast<u8>(-sum_of(b, n));
}

/* An ACPI table: header + body; build() fills in length and checksum. */
struct Table : Writer
{
    explicit Table(char const *sig, unsigned rev = 1, char const *oem = "TESTOE")
    {
        str(sig, 4).u32_(0).u8_(rev).u8_(0).str(oem, 6).str("TESTTABL", 8).u32_(1).str("TEST", 4).u32_(1);
    }

    Bytes build() const
    {
        Bytes t = b;
        u32 len = static_cast<u32>(t.size());
        std::memcpy(&t[4], &len, 4);
        fix_sum(t, 9, t.size());
        return t;
    }
};

inline Bytes make_rsdp(unsigned rev, u32 rsdt, u64 xsdt = 0, char const *oem = "TESTOE")
{
    Writer w;
    w.str("RSD PTR ", 8).u8_(0).str(oem, 6).u8_(rev).u32_(rsdt);
    if (rev >= 2)
        w.u32_(36).u64_(xsdt).u8_(0).zeros(3);
    fix_sum(w.b, 8, 20);
    if (rev >= 2)
        fix_sum(w.b, 32, 36);
    return w.b;
}

/* MADT entries. */
inline Bytes lapic(unsigned acpi_id, unsigned apic_id, u32 flags = 1)
{
    return Writer().u8_(0).u8_(8).u8_(acpi_id).u8_(apic_id).u32_(flags).b;
}
inline Bytes ioapic(unsigned id, u32 addr, u32 gsi_base)
{
    return Writer().u8_(1).u8_(12).u8_(id).u8_(0).u32_(addr).u32_(gsi_base).b;
}
inline Bytes iso(unsigned source, u32 gsi, unsigned flags, unsigned bus = 0)
{
    return Writer().u8_(2).u8_(10).u8_(bus).u8_(source).u32_(gsi).u16_(flags).b;
}
inline Bytes nmi_source(unsigned flags, u32 gsi) { return Writer().u8_(3).u8_(8).u16_(flags).u32_(gsi).b; }
inline Bytes lapic_nmi(unsigned uid, unsigned flags, unsigned lint)
{
    return Writer().u8_(4).u8_(6).u8_(uid).u16_(flags).u8_(lint).b;
}
inline Bytes lapic_addr(u64 addr) { return Writer().u8_(5).u8_(12).u16_(0).u64_(addr).b; }
inline Bytes x2apic(u32 id, u32 flags, u32 uid)
{
    return Writer().u8_(9).u8_(16).u16_(0).u32_(id).u32_(flags).u32_(uid).b;
}
inline Bytes x2apic_nmi(unsigned flags, u32 uid, unsigned lint)
{
    return Writer().u8_(0xa).u8_(12).u16_(flags).u32_(uid).u8_(lint).zeros(3).b;
}

inline Bytes make_madt(std::vector<Bytes> const &entries, u32 lapic_base = 0xfee00000, u32 flags = 1)
{
    Table t("APIC", 4);
    t.u32_(lapic_base).u32_(flags);
    for (auto const &e : entries)
        t.bytes(e);
    return t.build();
}

/* DMAR pieces. */
inline Bytes dev_scope(unsigned type, unsigned enum_id, unsigned bus,
                       std::vector<std::pair<unsigned, unsigned>> path)
{
    Writer w;
    w.u8_(type).u8_(static_cast<unsigned>(6 + 2 * path.size())).u16_(0).u8_(enum_id).u8_(bus);
    for (auto [d, f] : path)
        w.u8_(d).u8_(f);
    return w.b;
}
inline Bytes drhd(unsigned flags, unsigned seg, u64 base, std::vector<Bytes> const &scopes)
{
    Writer body;
    for (auto const &s : scopes)
        body.bytes(s);
    return Writer()
        .u16_(0)
        .u16_(static_cast<unsigned>(16 + body.b.size()))
        .u8_(flags)
        .u8_(0)
        .u16_(seg)
        .u64_(base)
        .bytes(body.b)
        .b;
}
inline Bytes rmrr(unsigned seg, u64 base, u64 limit, std::vector<Bytes> const &scopes)
{
    Writer body;
    for (auto const &s : scopes)
        body.bytes(s);
    return Writer()
        .u16_(1)
        .u16_(static_cast<unsigned>(24 + body.b.size()))
        .u16_(0)
        .u16_(seg)
        .u64_(base)
        .u64_(limit)
        .bytes(body.b)
        .b;
}
inline Bytes make_dmar(std::vector<Bytes> const &structs, unsigned haw = 38, unsigned flags = 1)
{
    Table t("DMAR", 1);
    t.u8_(haw).u8_(flags).zeros(10);
    for (auto const &s : structs)
        t.bytes(s);
    return t.build();
}

/* A machine: 2 MiB of fake memory, tables placed from 1 MiB up. */
struct Platform
{
    Fake_phys mem{0, 0x200000};
    u64 next = 0x100000;

    u64 place(Bytes const &t)
    {
        u64 a = next;
        mem.put(a, t);
        next = align_up(a + t.size(), 16);
        return a;
    }

    u64 root(bool xsdt, std::vector<u64> const &tables)
    {
        Table t(xsdt ? "XSDT" : "RSDT");
        for (u64 a : tables)
            xsdt ? t.u64_(a) : t.u32_(static_cast<u32>(a));
        return place(t.build());
    }

    Phys_reader reader() { return mem.reader(); }
};
