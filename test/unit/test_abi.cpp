/*
 * Tests of the ABI data layouts in include/abi: CRD and typed-item words,
 * hypercall identifier words, QPD validity, UTCB and HIP layouts and the HIP
 * checksum rule, against the literal values of the ABI contract.
 */
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "abi/constants.hpp"
#include "abi/crd.hpp"
#include "abi/hip.hpp"
#include "abi/hypercall.hpp"
#include "abi/mtd.hpp"
#include "abi/qpd.hpp"
#include "abi/status.hpp"
#include "abi/utcb.hpp"

namespace {

// The checklist's notation (ABI 15): CRD(OBJ, s, o, r) and CRD(MEM, p, o, r).
constexpr u64 crd_obj(u64 s, u64 o, u64 r) { return s << 12 | o << 7 | r << 2 | 3; }
constexpr u64 crd_mem(u64 p, u64 o, u64 r) { return p << 12 | o << 7 | r << 2 | 1; }

}  // namespace

// ---- CRD (3.1) ---------------------------------------------------------------

TEST(Crd, ObjectCrdsEncodeAsTheChecklistFormula)
{
    EXPECT_EQ(Crd::obj(32, 0, 0).value(), crd_obj(32, 0, 0));
    EXPECT_EQ(Crd::obj(0x100, 0, 0x1f).value(), crd_obj(0x100, 0, 0x1f));
    EXPECT_EQ(Crd::obj(0x200, 4, 0x1f).value(), crd_obj(0x200, 4, 0x1f));
    EXPECT_EQ(Crd(Crd::OBJ, 0x200, 0, 0x1f).value(), 0x20007fu);  // result of checklist 85
    EXPECT_EQ(Crd::mem(0x7fffffffe, 0, 0).value(), crd_mem(0x7fffffffe, 0, 0));
    EXPECT_EQ(Crd::pio(0x3f8, 3, 0x1f).value(), (0x3f8ull << 12) | (3 << 7) | (0x1f << 2) | 2);
}

TEST(Crd, TheRootPdLookupResultDecodesToSelector32WithAllRights)
{
    Crd c(0x2007f);
    EXPECT_EQ(c.type(), Crd::OBJ);
    EXPECT_EQ(c.base(), Abi::SEL_ROOT_PD);
    EXPECT_EQ(c.order(), 0u);
    EXPECT_EQ(c.rights(), Perm_pd::ALL);
}

TEST(Crd, TheRootEcLookupResultDecodesToSelector33WithTheNewEcRights)
{
    Crd c(0x21037);
    EXPECT_EQ(c.type(), Crd::OBJ);
    EXPECT_EQ(c.base(), Abi::SEL_ROOT_EC);
    EXPECT_EQ(c.order(), 0u);
    EXPECT_EQ(c.rights(), Perm_ec::CREATED);
    EXPECT_EQ(c.rights(), 0x0du);
}

TEST(Crd, TheRootScLookupResultDecodesToSelector34WithTheCtrlRight)
{
    Crd c(0x22007);
    EXPECT_EQ(c.type(), Crd::OBJ);
    EXPECT_EQ(c.base(), Abi::SEL_ROOT_SC);
    EXPECT_EQ(c.order(), 0u);
    EXPECT_EQ(c.rights(), Perm_sc::CTRL);
}

TEST(Crd, TheHipLookupResultIsAReadOnlyMemoryPageAtTheHipAddress)
{
    Crd c(0x7fffffffe005);
    EXPECT_EQ(c.type(), Crd::MEM);
    EXPECT_EQ(c.base() << PAGE_BITS, Abi::HIP_ADDR);
    EXPECT_EQ(c.order(), 0u);
    EXPECT_EQ(c.rights(), Perm_mem::R);
}

TEST(Crd, TheRootUtcbLookupResultIsAReadWriteMemoryPageAtTheUtcbAddress)
{
    Crd c(0x7fffffffd00d);
    EXPECT_EQ(c.type(), Crd::MEM);
    EXPECT_EQ(c.base() << PAGE_BITS, Abi::ROOT_UTCB_ADDR);
    EXPECT_EQ(c.order(), 0u);
    EXPECT_EQ(c.rights(), Perm_mem::RW);
}

TEST(Crd, EveryFieldSurvivesAnEncodeDecodeRoundTrip)
{
    const Crd::Type types[] = {Crd::NUL, Crd::MEM, Crd::PIO, Crd::OBJ};
    const u64 bases[] = {0, 1, 0x3f8, 0x7fffffffe, (u64{1} << 52) - 1};
    for (auto t : types)
        for (u64 b : bases)
            for (unsigned o = 0; o <= Crd::MAX_ORDER; o += 5)
                for (unsigned r = 0; r <= 0x1f; r += 3) {
                    Crd c(t, b, o, r);
                    EXPECT_EQ(c.type(), t);
                    EXPECT_EQ(c.base(), b);
                    EXPECT_EQ(c.order(), o);
                    EXPECT_EQ(c.rights(), r);
                    EXPECT_EQ(Crd(c.value()), c);
                }
}

TEST(Crd, OrderAndRightsAreCutToFiveBitsInsteadOfSpillingIntoOtherFields)
{
    Crd c(Crd::MEM, 0x10, 0x25, 0x3f);
    EXPECT_EQ(c.order(), 0x05u);
    EXPECT_EQ(c.rights(), 0x1fu);
    EXPECT_EQ(c.base(), 0x10u);
    EXPECT_EQ(c.type(), Crd::MEM);
}

TEST(Crd, TypeZeroIsTheNullCrdWhateverTheOtherBits)
{
    EXPECT_TRUE(Crd().is_null());
    EXPECT_TRUE(Crd(0xfffffffffffffffcull).is_null());
    EXPECT_FALSE(Crd(1).is_null());
}

TEST(Crd, TheWholeSpaceCrdHasBaseZeroOrder31AndAllRights)
{
    Crd w = Crd::whole(Crd::OBJ);
    EXPECT_EQ(w.base(), 0u);
    EXPECT_EQ(w.order(), 0x1fu);
    EXPECT_EQ(w.rights(), 0x1fu);
    EXPECT_EQ(w.count(), u64{1} << 31);
}

// ---- typed-item metadata (3.2) -----------------------------------------------

TEST(ItemMeta, AKernelDelegationOfPortsIsMetadata0x801)
{
    Item_meta m(Item_meta::DELEGATE, 0, Item_meta::H);
    EXPECT_EQ(m.value(), 0x801u);
    EXPECT_EQ(m.kind(), Item_meta::DELEGATE);
    EXPECT_TRUE(m.kernel());
    EXPECT_FALSE(m.dma());
    EXPECT_FALSE(m.guest());
    EXPECT_EQ(m.hotspot(), 0u);
}

TEST(ItemMeta, AMemoryItemsMetadataIsThePageAddressOrItsFlags)
{
    // Checklist 103: fault page number << 12 | 1.
    u64 fault = 0x12345678;
    Item_meta m(Item_meta::DELEGATE, fault >> PAGE_BITS);
    EXPECT_EQ(m.value(), (fault & ~0xfffull) | 1);
    EXPECT_EQ(m.hotspot(), fault >> PAGE_BITS);
}

TEST(ItemMeta, KindsAndTheDGHBitsDecodeFromTheirOwnBits)
{
    EXPECT_EQ(Item_meta(0).kind(), Item_meta::TRANSLATE);
    EXPECT_EQ(Item_meta(2).kind(), Item_meta::TRANSLATE_OR_DELEGATE);
    EXPECT_EQ(Item_meta(3).kind(), Item_meta::INVALID);
    Item_meta m(0x208ull << 12 | 1u << 9 | 1u << 10 | 0x1fcu | 2);
    EXPECT_TRUE(m.dma());
    EXPECT_TRUE(m.guest());
    EXPECT_FALSE(m.kernel());
    EXPECT_EQ(m.hotspot(), 0x208u);
    EXPECT_EQ(m.kind(), Item_meta::TRANSLATE_OR_DELEGATE);
    EXPECT_EQ(Item_meta::D, 0x200u);
    EXPECT_EQ(Item_meta::G, 0x400u);
    EXPECT_EQ(Item_meta::H, 0x800u);
}

TEST(ItemMeta, TheConstructorKeepsOnlyTheDGHFlagBits)
{
    Item_meta m(Item_meta::TRANSLATE, 7, ~u64{0});
    EXPECT_EQ(m.value(), 7ull << 12 | 0xe00);
}

// ---- hypercall identifier word (1.3, 1.6) ---------------------------------

TEST(HypercallId, NumberFlagsAndSelectorPackIntoRdi)
{
    Hypercall_id id(Hypercall::PD_CTRL, static_cast<unsigned>(Pd_op::DELEGATE), Abi::SEL_ROOT_PD);
    EXPECT_EQ(id.value(), 0x2028u);
    EXPECT_EQ(id.number(), 8u);
    EXPECT_EQ(id.flags(), 2u);
    EXPECT_EQ(id.sel(), 32u);
    EXPECT_EQ(Hypercall_id(Hypercall::CREATE_SM, 0, 0x100).value(), 0x10006u);
    EXPECT_EQ(Hypercall_id(Hypercall::SM_CTRL, Sm_flag::DOWN | Sm_flag::ZC, 5).value(), 0x53cu);
    EXPECT_EQ(Hypercall_id(Hypercall::REPLY, 0, 0).value(), 1u);
}

TEST(HypercallId, OnlyTheLowFourBitsSelectTheHypercall)
{
    Hypercall_id id(0x1f);  // checklist 2: number 15 with flag 1
    EXPECT_EQ(id.number(), 15u);
    EXPECT_EQ(id.flags(), 1u);
    EXPECT_EQ(Hypercall_id(Hypercall::CALL, 0x1f, 0).flags(), 0xfu);
}

TEST(HypercallId, NumbersMatchTheAbiTable)
{
    EXPECT_EQ(static_cast<int>(Hypercall::CALL), 0x0);
    EXPECT_EQ(static_cast<int>(Hypercall::REPLY), 0x1);
    EXPECT_EQ(static_cast<int>(Hypercall::CREATE_PD), 0x2);
    EXPECT_EQ(static_cast<int>(Hypercall::CREATE_EC), 0x3);
    EXPECT_EQ(static_cast<int>(Hypercall::CREATE_SC), 0x4);
    EXPECT_EQ(static_cast<int>(Hypercall::CREATE_PT), 0x5);
    EXPECT_EQ(static_cast<int>(Hypercall::CREATE_SM), 0x6);
    EXPECT_EQ(static_cast<int>(Hypercall::REVOKE), 0x7);
    EXPECT_EQ(static_cast<int>(Hypercall::PD_CTRL), 0x8);
    EXPECT_EQ(static_cast<int>(Hypercall::EC_CTRL), 0x9);
    EXPECT_EQ(static_cast<int>(Hypercall::SC_CTRL), 0xa);
    EXPECT_EQ(static_cast<int>(Hypercall::PT_CTRL), 0xb);
    EXPECT_EQ(static_cast<int>(Hypercall::SM_CTRL), 0xc);
    EXPECT_EQ(static_cast<int>(Hypercall::ASSIGN_PCI), 0xd);
    EXPECT_EQ(static_cast<int>(Hypercall::ASSIGN_GSI), 0xe);
    EXPECT_EQ(Create_ec_flag::GLOBAL | Create_ec_flag::VCPU | Create_ec_flag::APIC_ACCESS, 7u);
    EXPECT_EQ(Revoke_flag::SELF, 1u);
    EXPECT_EQ(Revoke_flag::REMOTE, 2u);
    EXPECT_EQ(Call_flag::DB, 1u);
    EXPECT_EQ(static_cast<int>(Ec_op::RESCHEDULE), 3);
    EXPECT_EQ(static_cast<int>(Pd_op::MAP_ACCESS_PAGE), 1);
}

// ---- status (1.5) -------------------------------------------------------------

TEST(Status, ValuesAndNamesMatchTheAbiTable)
{
    const char *names[] = {"SUCCESS", "COM_TIM", "COM_ABT", "BAD_HYP", "BAD_CAP",
                           "BAD_PAR", "BAD_FTR", "BAD_CPU", "BAD_DEV", "OOM"};
    for (unsigned v = 0; v < 10; v++)
        EXPECT_STREQ(status_name(static_cast<Status>(v)), names[v]);
    EXPECT_STREQ(status_name(static_cast<Status>(42)), "(unknown status)");
}

TEST(Status, TheStatusIsTheLowByteOfRdi)
{
    EXPECT_EQ(status_of(3), Status::BAD_HYP);
    EXPECT_EQ(status_of(0x10), static_cast<Status>(0x10));  // successful call with DB (7.1)
    EXPECT_EQ(status_of(0x12300), Status::SUCCESS);
}

// ---- QPD (6.1) --------------------------------------------------------------

TEST(Qpd, PriorityAndQuantumEncodeInTheirBitFields)
{
    Qpd q(1, 10000);
    EXPECT_EQ(q.value(), 10000ull << 12 | 1);
    EXPECT_EQ(q.prio(), 1u);
    EXPECT_EQ(q.quantum(), 10000u);
    EXPECT_TRUE(q.valid());
}

TEST(Qpd, PriorityZeroOr128AndQuantumZeroAreInvalid)
{
    EXPECT_FALSE(Qpd(10000ull << 12).valid());  // checklist 50
    EXPECT_FALSE(Qpd(128, 10000).valid());      // checklist 51
    EXPECT_TRUE(Qpd(127, 10000).valid());
    EXPECT_FALSE(Qpd(u64{1}).valid());  // checklist 52
    EXPECT_FALSE(Qpd(255, 1).valid());
}

TEST(Qpd, Bits11To8And63To44AreIgnored)
{
    Qpd q(0xfffff00000000f05ull | 7ull << 12);
    EXPECT_EQ(q.prio(), 5u);
    EXPECT_EQ(q.quantum(), 7u);
    EXPECT_TRUE(q.valid());
    EXPECT_FALSE(Qpd(0xfffff00000000f05ull).valid());  // quantum bits 43:12 are all 0
}

// ---- MTD (5) ----------------------------------------------------------------

TEST(Mtd, BitsMatchTheAbiTable)
{
    EXPECT_EQ(Mtd::GPR_ACDB, 0x1u);
    EXPECT_EQ(Mtd::RIP_LEN, 0x8u);
    EXPECT_EQ(Mtd::CR, 0x1000u);
    EXPECT_EQ(Mtd::QUAL, 0x8000u);
    EXPECT_EQ(Mtd::CTRL, 0x10000u);
    EXPECT_EQ(Mtd::GPR_R8_R15, 0x400000u);
    EXPECT_EQ(Mtd::SYSCALL_SWAPGS, 0x800000u);
    EXPECT_EQ(Mtd::VINTR, 0x4000000u);
    EXPECT_EQ(Mtd::TPR, 0x10000000u);
    EXPECT_EQ(Mtd::TLB, 0x40000000u);
    EXPECT_EQ(Mtd::FPU, 0x80000000u);
    EXPECT_EQ(Mtd::EXC_STATE, 0x8040801fu);
}

// ---- UTCB (4) ---------------------------------------------------------------

TEST(Utcb, TheHeaderAndTheStateAreaSitAtTheirAbiOffsets)
{
    EXPECT_EQ(sizeof(Utcb), 4096u);
    EXPECT_EQ(offsetof(Utcb, xlt), 0x08u);
    EXPECT_EQ(offsetof(Utcb, del), 0x10u);
    EXPECT_EQ(offsetof(Utcb, tls), 0x18u);
    EXPECT_EQ(offsetof(Utcb, mtd), 0x20u);
    EXPECT_EQ(offsetof(Utcb, inj), 0x48u);
    EXPECT_EQ(offsetof(Utcb, intr_error), 0x4cu);
    EXPECT_EQ(offsetof(Utcb, rax), 0x58u);
    EXPECT_EQ(offsetof(Utcb, r15), 0xd0u);
    EXPECT_EQ(offsetof(Utcb, qual), 0xd8u);
    EXPECT_EQ(offsetof(Utcb, es), 0x190u);
    EXPECT_EQ(offsetof(Utcb, idtr), 0x220u);
    EXPECT_EQ(offsetof(Utcb, tsc_val), 0x230u);
    EXPECT_EQ(offsetof(Utcb, vintr_status), 0x270u);
    EXPECT_EQ(offsetof(Utcb, cr4_mon), 0x280u);
    EXPECT_EQ(sizeof(Utcb_segment), 16u);
}

TEST(Utcb, InjIsTheUnionOfIntrInfoAndIntrError)
{
    Utcb u{};
    u.intr_info = 0x80000b0e;
    u.intr_error = 0x6;
    EXPECT_EQ(u.inj, 0x0000000680000b0eull);
}

TEST(Utcb, TheItemsWordHoldsUntypedAndTypedCounts)
{
    Utcb u{};
    u.set_items(3, 2);
    EXPECT_EQ(u.items, 0x20003u);
    EXPECT_EQ(u.untyped(), 3u);
    EXPECT_EQ(u.typed(), 2u);
    u.items = 0xdead0000ffff0001ull;  // bits 63:32 are carried, not interpreted
    EXPECT_EQ(u.untyped(), 1u);
    EXPECT_EQ(u.typed(), 0xffffu);
    EXPECT_EQ(Utcb::EVENT_ITEMS, 77u);
}

TEST(Utcb, TypedItemsAreStoredFromTheEndOfThePageDownward)
{
    static Utcb u;
    std::memset(&u, 0, sizeof(u));
    u.item(0).set(Crd::obj(0x100), Item_meta(Item_meta::DELEGATE, 0x200));
    u.item(1).set(Crd::mem(0x42, 1, 3), Item_meta(Item_meta::TRANSLATE, 0));
    u.item(253).set(Crd::pio(0x80), Item_meta(Item_meta::DELEGATE, 0, Item_meta::H));

    auto word = [&](size_t off) {
        u64 w;
        std::memcpy(&w, reinterpret_cast<const u8 *>(&u) + off, sizeof(w));
        return w;
    };
    EXPECT_EQ(word(0xff0), Crd::obj(0x100).value());
    EXPECT_EQ(word(0xff8), 0x200001u);
    EXPECT_EQ(word(0xfe0), Crd::mem(0x42, 1, 3).value());
    EXPECT_EQ(word(0xfe8), 0u);
    EXPECT_EQ(word(0x20), Crd::pio(0x80).value());
    EXPECT_EQ(word(0x28), 0x801u);
    for (unsigned i = 0; i < Utcb::MAX_TYPED; i++)
        EXPECT_EQ(Utcb::item_offset(i), 0xff0u - 16 * i);
    EXPECT_EQ(u.item(1).get_crd().order(), 1u);
    EXPECT_EQ(u.item(0).get_meta().hotspot(), 0x200u);
}

TEST(Utcb, TheUntypedDataAreaIs508WordsFromOffset0x20)
{
    static Utcb u;
    std::memset(&u, 0, sizeof(u));
    u.data[0] = 0x1111;
    u.data[Utcb::DATA_WORDS - 1] = 0x2222;
    EXPECT_EQ(u.mtd, 0x1111u);  // data word 0 is the mtd field of an event message
    EXPECT_EQ(u.item(0).meta, 0x2222u);
    EXPECT_EQ(reinterpret_cast<u8 *>(&u.data[Utcb::DATA_WORDS - 1]) - reinterpret_cast<u8 *>(&u), 0xff8);
}

TEST(Utcb, AccessRightsConvertBetweenTheVmcsAndTheCompressedForm)
{
    EXPECT_EQ(utcb_ar_from_vmcs(0xa09b), 0xa9bu);  // 64-bit code segment
    EXPECT_EQ(vmcs_ar_from_utcb(0xa9b), 0xa09bu);
    EXPECT_EQ(utcb_ar_from_vmcs(0x10000), 0x1000u);  // unusable
    EXPECT_EQ(vmcs_ar_from_utcb(0x1000), 0x10000u);
    for (u32 ar = 0; ar < 0x2000; ar++)
        EXPECT_EQ(utcb_ar_from_vmcs(vmcs_ar_from_utcb(static_cast<u16>(ar))), ar);
}

// ---- HIP (8) ------------------------------------------------------------------

namespace {

// A page holding a HIP as the kernel would build it: 2 CPUs, 1 I/O APIC, n memory descriptors.
struct Hip_page
{
    alignas(4096) u8 bytes[4096] = {};

    Hip &hip() { return *reinterpret_cast<Hip *>(bytes); }

    explicit Hip_page(unsigned nmem)
    {
        Hip &h = hip();
        h.signature = Hip::SIGNATURE;
        h.cpu_offs = Hip::CPU_OFFS;
        h.cpu_size = sizeof(Hip_cpu);
        h.ioapic_offs = Hip::IOAPIC_OFFS;
        h.ioapic_size = sizeof(Hip_ioapic);
        h.mem_offs = Hip::MEM_OFFS;
        h.mem_size = sizeof(Hip_mem);
        h.api_ver = Abi::API_VERSION;
        h.sel_num = Abi::SEL_NUM;
        h.sel_exc = Abi::NUM_EXC;
        h.sel_vmi = Abi::NUM_VMI;
        h.sel_gsi = Abi::NUM_GSI;
        h.cfg_page = h.cfg_utcb = 0x1000;
        h.freq_tsc = 2500000;
        h.cpu_desc[0].flags = Hip_cpu::ONLINE;
        h.cpu_desc[1].flags = Hip_cpu::ONLINE;
        h.cpu_desc[1].lapic_id = 1u << 24;
        h.ioapic_desc[0] = {0, 0x20, 0, 0xfec00000};
        for (unsigned i = 0; i < nmem; i++) {
            u32 type = i + 1 == nmem ? Hip_mem::HYPERVISOR : Hip_mem::AVAILABLE;
            h.mem_desc[i] = {0x100000ull * i, 0x1000, type, 0};
        }
        h.length = static_cast<u16>(Hip::MEM_OFFS + nmem * sizeof(Hip_mem));
        h.set_checksum();
    }
};

u16 sum_words(const u8 *p, size_t len)
{
    unsigned sum = 0;
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += static_cast<unsigned>(p[i] | p[i + 1] << 8);
    return static_cast<u16>(sum);
}

}  // namespace

TEST(Hip, TheHeaderFieldsAndArraysSitAtTheirAbiOffsets)
{
    EXPECT_EQ(offsetof(Hip, checksum), 0x04u);
    EXPECT_EQ(offsetof(Hip, api_flg), 0x14u);
    EXPECT_EQ(offsetof(Hip, api_ver), 0x18u);
    EXPECT_EQ(offsetof(Hip, sel_gsi), 0x28u);
    EXPECT_EQ(offsetof(Hip, freq_tsc), 0x34u);
    EXPECT_EQ(offsetof(Hip, mcfg_base), 0x40u);
    EXPECT_EQ(offsetof(Hip, cap_vmx_sec_exec), 0x70u);
    EXPECT_EQ(offsetof(Hip, cpu_desc), 0x78u);
    EXPECT_EQ(offsetof(Hip, ioapic_desc), 0xc78u);
    EXPECT_EQ(offsetof(Hip, mem_desc), 0xcc8u);
    EXPECT_EQ(sizeof(Hip_cpu), 48u);
    EXPECT_EQ(sizeof(Hip_ioapic), 16u);
    EXPECT_EQ(sizeof(Hip_mem), 24u);
    EXPECT_EQ(Hip::MAX_MEM, 34u);
    EXPECT_EQ(Hip::SIGNATURE, 0x41564f4eu);
    EXPECT_EQ(std::memcmp(&Hip::SIGNATURE, "NOVA", 4), 0);
    EXPECT_EQ(Hip_mem::HYPERVISOR, 0xffffffffu);
    EXPECT_EQ(Hip_mem::MODULE, 0xfffffffeu);
    EXPECT_EQ(Hip::FEAT_IOMMU | Hip::FEAT_VMX | Hip::FEAT_SVM, 7u);
}

TEST(Hip, TheChecksumMakesTheWordSumOfTheReportedLengthZero)
{
    Hip_page p(5);
    EXPECT_TRUE(p.hip().checksum_ok());
    EXPECT_EQ(sum_words(p.bytes, p.hip().length), 0u);
    EXPECT_NE(p.hip().checksum, 0u);
}

TEST(Hip, AnyChangedByteInsideTheLengthBreaksTheChecksum)
{
    Hip_page p(3);
    for (size_t off : {size_t{0}, size_t{0x34}, size_t{0x78}, size_t{0xcc8}, size_t{p.hip().length - 1u}}) {
        p.bytes[off] ^= 0x40;
        EXPECT_FALSE(p.hip().checksum_ok()) << "offset " << off;
        p.bytes[off] ^= 0x40;
    }
    p.bytes[p.hip().length] ^= 0x40;  // beyond the length: not covered
    EXPECT_TRUE(p.hip().checksum_ok());
}

TEST(Hip, ComputingTheChecksumIgnoresTheValueAlreadyStored)
{
    Hip_page p(2);
    u16 good = p.hip().checksum;
    p.hip().checksum = 0x1234;
    EXPECT_EQ(Hip::compute_checksum(p.bytes, p.hip().length), good);
    p.hip().set_checksum();
    EXPECT_EQ(p.hip().checksum, good);
}

TEST(Hip, AnOddTrailingByteCountsAsALowByte)
{
    const u8 bytes[] = {0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x03};
    EXPECT_EQ(Hip::word_sum(bytes, sizeof(bytes)), 0x0204u);
    u8 copy[sizeof(bytes)];
    std::memcpy(copy, bytes, sizeof(bytes));
    u16 c = Hip::compute_checksum(copy, sizeof(copy));
    copy[4] = static_cast<u8>(c);
    copy[5] = static_cast<u8>(c >> 8);
    EXPECT_EQ(Hip::word_sum(copy, sizeof(copy)), 0u);
}

TEST(Hip, ALengthShorterThanTheHeaderOrTheArraysIsNotValid)
{
    Hip_page p(1);
    p.hip().length = 0x100;
    p.hip().set_checksum();
    EXPECT_FALSE(p.hip().checksum_ok());
}

TEST(Hip, DescriptorsAreFoundThroughTheOffsetAndSizeFields)
{
    Hip_page p(4);
    const Hip &h = p.hip();
    EXPECT_EQ(h.num_mem_desc(), 4u);
    EXPECT_EQ(h.num_cpu_desc(), Abi::NUM_CPU);
    EXPECT_EQ(h.num_cpus_online(), 2u);
    ASSERT_NE(h.cpu(1), nullptr);
    EXPECT_EQ(h.cpu(1)->lapic_id >> 24, 1u);
    EXPECT_EQ(h.cpu(Abi::NUM_CPU), nullptr);
    ASSERT_NE(h.ioapic(0), nullptr);
    EXPECT_EQ(h.ioapic(0)->base, 0xfec00000u);
    EXPECT_EQ(h.ioapic(Abi::NUM_IOAPIC), nullptr);
    ASSERT_NE(h.mem(3), nullptr);
    EXPECT_EQ(h.mem(3)->type, Hip_mem::HYPERVISOR);
    EXPECT_EQ(h.mem(4), nullptr);  // beyond the length
    EXPECT_EQ(reinterpret_cast<const u8 *>(h.mem(2)) - p.bytes, 0xcc8 + 2 * 24);
}

// The extension beyond 64 CPUs (docs/boot.md "HIP layout"): one descriptor per CPU, the I/O APIC
// and memory arrays behind them, the HIP several pages long; found through the same fields.
TEST(Hip, BeyondSixtyFourCpusTheArraysMoveAndTheHipSpansSeveralPages)
{
    constexpr unsigned N = 300;
    EXPECT_EQ(Hip::pages_for(64), 1u);
    EXPECT_EQ(Hip::pages_for(65), 2u);
    EXPECT_EQ(Hip::pages_for(N), 4u);
    EXPECT_GE(Hip::MAX_CPUS, 1000u);
    alignas(4096) static u8 buf[4 * 4096];
    std::memset(buf, 0, sizeof(buf));
    Hip &h = *reinterpret_cast<Hip *>(buf);
    h.signature = Hip::SIGNATURE;
    h.cpu_offs = Hip::CPU_OFFS;
    h.cpu_size = sizeof(Hip_cpu);
    h.ioapic_offs = static_cast<u16>(Hip::ioapic_offs_for(N));
    h.ioapic_size = sizeof(Hip_ioapic);
    h.mem_offs = static_cast<u16>(Hip::mem_offs_for(N));
    h.mem_size = sizeof(Hip_mem);
    EXPECT_EQ(h.ioapic_offs, 0x78u + N * 48);
    EXPECT_EQ(h.mem_offs, 0x78u + N * 48 + 5 * 16);
    for (unsigned i = 0; i < N; i++)
        reinterpret_cast<Hip_cpu *>(buf + h.cpu_offs)[i] =
            Hip_cpu{Hip_cpu::ONLINE, 0, 0, 0, 0, {}, i, 0, 0, 0, 0, 0, 0, 0, 0, 0};  // x2APIC IDs
    reinterpret_cast<Hip_ioapic *>(buf + h.ioapic_offs)[0] = {0, 0x20, 0, 0xfec00000};
    reinterpret_cast<Hip_mem *>(buf + h.mem_offs)[0] = {0x100000, 0x1000, Hip_mem::HYPERVISOR, 0};
    h.length = static_cast<u16>(h.mem_offs + sizeof(Hip_mem));
    h.set_checksum();
    EXPECT_TRUE(h.checksum_ok());
    EXPECT_EQ(h.mapped_size(), 4u * 4096);
    EXPECT_EQ(h.num_cpu_desc(), N);
    EXPECT_EQ(h.num_cpus_online(), N);
    ASSERT_NE(h.cpu(N - 1), nullptr);
    EXPECT_EQ(h.cpu(N - 1)->lapic_id, N - 1);
    EXPECT_EQ(h.cpu(N), nullptr);
    ASSERT_NE(h.ioapic(0), nullptr);
    EXPECT_EQ(h.ioapic(0)->base, 0xfec00000u);
    EXPECT_EQ(h.num_mem_desc(), 1u);
    EXPECT_EQ(h.mem(0)->type, Hip_mem::HYPERVISOR);
    buf[0x3000] ^= 1;  // a CPU descriptor on the fourth page is covered by the checksum
    EXPECT_FALSE(h.checksum_ok());
}

TEST(Hip, AnEmptyOrInconsistentHipYieldsNoDescriptors)
{
    static Hip_page p(1);
    std::memset(p.bytes, 0, sizeof(p.bytes));
    const Hip &h = p.hip();
    EXPECT_FALSE(h.checksum_ok());
    EXPECT_EQ(h.num_cpu_desc(), 0u);
    EXPECT_EQ(h.num_mem_desc(), 0u);
    EXPECT_EQ(h.num_cpus_online(), 0u);
    EXPECT_EQ(h.cpu(0), nullptr);
    EXPECT_EQ(h.mem(0), nullptr);

    Hip_page q(2);
    q.hip().cpu_size = 16;  // smaller than our descriptor: unusable
    EXPECT_EQ(q.hip().cpu(0), nullptr);
    q.hip().cpu_size = 48;
    q.hip().cpu_offs = 0xff0;  // array would run off the page
    EXPECT_EQ(q.hip().cpu(0), nullptr);
    q.hip().mem_offs = 0xfff0;
    EXPECT_EQ(q.hip().num_mem_desc(), 0u);
    EXPECT_EQ(q.hip().mem(0), nullptr);
}

// ---- constants (1.1, 9.3-9.6, 10) --------------------------------------------

TEST(Constants, AddressesSelectorsAndEventNumbersMatchTheAbi)
{
    EXPECT_EQ(Abi::USER_ADDR, 0x7ffffffff000ull);
    EXPECT_EQ(Abi::HIP_ADDR, 0x7fffffffe000ull);
    EXPECT_EQ(Abi::ROOT_UTCB_ADDR, 0x7fffffffd000ull);
    EXPECT_EQ(Abi::SEL_NUM, 0x4000000ull);
    EXPECT_EQ(Abi::SEL_ROOT_PD, 32u);
    EXPECT_EQ(Abi::SEL_ROOT_EC, 33u);
    EXPECT_EQ(Abi::SEL_ROOT_SC, 34u);
    EXPECT_EQ(Abi::NUM_EXC, 32u);
    EXPECT_EQ(Abi::NUM_VMI, 256u);
    EXPECT_EQ(Abi::NUM_GSI, 192u);
    EXPECT_EQ(Abi::Evt::PF, 14u);
    EXPECT_EQ(Abi::Evt::STARTUP, 30u);
    EXPECT_EQ(Abi::Evt::RECALL, 31u);
    EXPECT_EQ(Abi::Vmi::STARTUP, 254u);
    EXPECT_EQ(Abi::Vmi::RECALL, 255u);
    EXPECT_EQ(Abi::ksel_idle_sc(3), 3u);
    EXPECT_EQ(Abi::ksel_idle_sc(63), 63u);
    EXPECT_EQ(Abi::ksel_idle_sc(64), 256u);  // after the GSI semaphores 64..255
    EXPECT_EQ(Abi::ksel_idle_sc(299), 491u);
    EXPECT_EQ(Abi::ksel_gsi_sm(0), 64u);
    EXPECT_EQ(Abi::ksel_gsi_sm(191), 255u);
    EXPECT_EQ(Abi::Pf_err::USER | Abi::Pf_err::WRITE, 6u);  // checklist 106
}

TEST(Constants, PermissionMasksMatchSection2)
{
    EXPECT_EQ(Perm_pd::CREATE_PD | Perm_pd::CREATE_EC | Perm_pd::CREATE_SC | Perm_pd::CREATE_PT |
                  Perm_pd::CREATE_SM,
              Perm_pd::ALL);
    EXPECT_EQ(Perm_pd::CREATE_SM, 0x10u);
    EXPECT_EQ(Perm_ec::RECALL | Perm_ec::BIND_SC | Perm_ec::BIND_PT, Perm_ec::CREATED);
    EXPECT_EQ(Perm_pt::CTRL | Perm_pt::CALL | Perm_pt::XCPU, 0x13u);
    EXPECT_EQ(Perm_pt::CREATED, 0x13u);
    EXPECT_EQ(Perm_sm::UP | Perm_sm::DOWN, Perm_sm::CREATED);
    EXPECT_EQ(Perm_mem::R | Perm_mem::W | Perm_mem::X, Perm_mem::RWX);
    EXPECT_EQ(static_cast<int>(Obj_type::SM), 4);
}
