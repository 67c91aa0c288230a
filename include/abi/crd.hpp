/*
 * Capability range descriptors (ABI 3.1), the typed-item metadata word (3.2),
 * and the object types and permission bits of section 2.
 */
#pragma once

#include "../types.hpp"

// Object types; their numbers define which permission bit means what (2).
enum class Obj_type : u8 { PD = 0, EC = 1, SC = 2, PT = 3, SM = 4 };

struct Perm_pd
{
    static constexpr unsigned CREATE_PD = 0x01, CREATE_EC = 0x02, CREATE_SC = 0x04, CREATE_PT = 0x08,
                              CREATE_SM = 0x10, ALL = 0x1f;
};

struct Perm_ec
{
    static constexpr unsigned RECALL = 0x01, BIND_SC = 0x04, BIND_PT = 0x08;
    static constexpr unsigned CREATED = 0x0d;  // mask of a new EC capability
};

struct Perm_sc
{
    static constexpr unsigned CTRL = 0x01, CREATED = 0x01;
};

struct Perm_pt
{
    static constexpr unsigned CTRL = 0x01, CALL = 0x02, XCPU = 0x10;
    static constexpr unsigned CREATED = 0x13;
};

struct Perm_sm
{
    static constexpr unsigned UP = 0x01, DOWN = 0x02, CREATED = 0x03;
};

struct Perm_mem
{
    static constexpr unsigned R = 0x1, W = 0x2, X = 0x4, RW = 0x3, RWX = 0x7;
};

struct Perm_pio
{
    static constexpr unsigned A = 0x1, ALL = 0x7;  // any non-zero mask makes a port accessible
};

/*
 * CRD word: type in bits 1:0, rights 6:2, order 11:7, base selector 63:12.
 * The range covers 2^order selectors (pages, ports or capabilities).
 */
class Crd
{
    u64 val;

  public:
    enum Type : u8 { NUL = 0, MEM = 1, PIO = 2, OBJ = 3 };

    static constexpr unsigned MAX_ORDER = 0x1f;
    static constexpr unsigned ALL_RIGHTS = 0x1f;

    constexpr Crd() : val(0) {}
    constexpr explicit Crd(u64 v) : val(v) {}
    constexpr Crd(Type t, u64 base, unsigned order, unsigned rights)
        : val(base << 12 | static_cast<u64>(order & 0x1f) << 7 | static_cast<u64>(rights & 0x1f) << 2 | t)
    {
    }

    static constexpr Crd obj(u64 sel, unsigned order = 0, unsigned rights = ALL_RIGHTS)
    {
        return Crd(OBJ, sel, order, rights);
    }
    static constexpr Crd mem(u64 page, unsigned order = 0, unsigned rights = ALL_RIGHTS)
    {
        return Crd(MEM, page, order, rights);
    }
    static constexpr Crd pio(u64 port, unsigned order = 0, unsigned rights = ALL_RIGHTS)
    {
        return Crd(PIO, port, order, rights);
    }
    // The kernel's "whole space" CRD of a type (base 0, order 0x1f, rights 0x1f).
    static constexpr Crd whole(Type t) { return Crd(t, 0, MAX_ORDER, ALL_RIGHTS); }

    constexpr Type type() const { return static_cast<Type>(val & 0x3); }
    constexpr unsigned rights() const { return static_cast<unsigned>(val >> 2 & 0x1f); }
    constexpr unsigned order() const { return static_cast<unsigned>(val >> 7 & 0x1f); }
    constexpr u64 base() const { return val >> 12; }
    constexpr u64 value() const { return val; }
    constexpr bool is_null() const { return type() == NUL; }
    constexpr u64 count() const { return u64{1} << order(); }

    constexpr bool operator==(const Crd &o) const { return val == o.val; }
    constexpr bool operator!=(const Crd &o) const { return val != o.val; }
};

/*
 * Typed-item metadata word (sender side): kind in bits 1:0, bits 8:2 are
 * carried back unchanged, D/G/H in bits 9-11, hotspot in 63:12. For a memory
 * item the hotspot is a page number, so the word reads `page_address | flags`.
 */
class Item_meta
{
    u64 val;

  public:
    enum Kind : u8 { TRANSLATE = 0, DELEGATE = 1, TRANSLATE_OR_DELEGATE = 2, INVALID = 3 };

    static constexpr u64 D = 1u << 9;   // also enter into the receiver's IOMMU (DMA) page table
    static constexpr u64 G = 1u << 10;  // also enter into the guest page table / guest I/O bitmap
    static constexpr u64 H = 1u << 11;  // source is the kernel (only honoured for the root PD)
    static constexpr u64 FLAG_MASK = D | G | H;

    constexpr Item_meta() : val(0) {}
    constexpr explicit Item_meta(u64 v) : val(v) {}
    constexpr Item_meta(Kind k, u64 hotspot, u64 flags = 0) : val(hotspot << 12 | (flags & FLAG_MASK) | k) {}

    constexpr Kind kind() const { return static_cast<Kind>(val & 0x3); }
    constexpr bool dma() const { return val & D; }
    constexpr bool guest() const { return val & G; }
    constexpr bool kernel() const { return val & H; }
    constexpr u64 hotspot() const { return val >> 12; }
    constexpr u64 value() const { return val; }

    constexpr bool operator==(const Item_meta &o) const { return val == o.val; }
    constexpr bool operator!=(const Item_meta &o) const { return val != o.val; }
};

// One typed item as stored in the UTCB: the CRD word below the metadata word.
struct Typed_item
{
    u64 crd;
    u64 meta;

    constexpr Crd get_crd() const { return Crd(crd); }
    constexpr Item_meta get_meta() const { return Item_meta(meta); }
    constexpr void set(Crd c, Item_meta m)
    {
        crd = c.value();
        meta = m.value();
    }
};

static_assert(sizeof(Typed_item) == 16);
