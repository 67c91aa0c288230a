/* Unit tests of the VMM's Linux loader and devices (user/vmm/linux.cpp, user/vmm/devices.cpp). */
#include <cstring>
#include <gtest/gtest.h>
#include <string>
#include <vector>

#include "../../user/vmm/vmm.hpp"

namespace {

constexpr u64 RAM = u64{64} << 20;

template <typename T> T get(const u8 *p, u64 off)
{
    T v;
    std::memcpy(&v, p + off, sizeof v);
    return v;
}

template <typename T> void put(std::vector<u8> &p, u64 off, T v)
{
    std::memcpy(p.data() + off, &v, sizeof v);
}

// A bzImage as far as the loader looks: one setup sector after the boot sector, then 0x2000 bytes
// of "kernel" that count up.
struct Bzimage
{
    std::vector<u8> img = std::vector<u8>(0x400 + 0x2000, 0);

    Bzimage()
    {
        put<u8>(img, 0x1f1, 1);            // setup_sects
        put<u16>(img, 0x1fe, 0xaa55);      // boot_flag
        put<u8>(img, 0x201, 0x6a);         // jump: the header ends at 0x26c
        put<u32>(img, 0x202, 0x53726448);  // "HdrS"
        put<u16>(img, 0x206, 0x20f);       // version
        put<u8>(img, 0x211, 1);            // LOADED_HIGH
        put<u32>(img, 0x22c, 0x7fffffff);  // initrd_addr_max
        put<u8>(img, 0x234, 1);            // relocatable
        put<u16>(img, 0x236, 1);           // XLF_KERNEL_64
        put<u32>(img, 0x238, 255);         // cmdline_size
        put<u64>(img, 0x258, 0x1000000);   // pref_address
        put<u32>(img, 0x260, 0x400000);    // init_size
        for (u64 i = 0x400; i < img.size(); i++)
            img[i] = static_cast<u8>(i);
    }
};

struct Loader : ::testing::Test
{
    std::vector<u8> ram = std::vector<u8>(RAM, 0xcc);
    std::vector<u8> initrd = std::vector<u8>(0x1800, 0x5a);
    Bzimage bz;

    vmm::Boot_result load(const std::string &cmd = "console=ttyS0", u64 ram_size = RAM)
    {
        return vmm::load_linux(ram.data(), ram_size, bz.img.data(), bz.img.size(), initrd.data(),
                               initrd.size(), cmd.data(), cmd.size());
    }
};

TEST_F(Loader, PlacesKernelZeroPageCommandLineInitrdAndMap)
{
    auto r = load();
    ASSERT_EQ(r.error, nullptr);
    EXPECT_EQ(r.entry, 0x1000200u);
    EXPECT_EQ(r.kernel_at, 0x1000000u);
    EXPECT_EQ(r.kernel_end, 0x1400000u);
    EXPECT_EQ(std::memcmp(ram.data() + 0x1000000, bz.img.data() + 0x400, 0x2000), 0);
    const u8 *zp = ram.data() + vmm::G_ZERO_PAGE;
    EXPECT_EQ(get<u32>(zp, 0x202), 0x53726448u) << "setup header copied";
    EXPECT_EQ(get<u8>(zp, 0x210), 0xff) << "type_of_loader";
    EXPECT_EQ(get<u8>(zp, 0x211), 0x81) << "LOADED_HIGH | CAN_USE_HEAP";
    EXPECT_EQ(get<u32>(zp, 0x228), vmm::G_CMDLINE);
    EXPECT_STREQ(reinterpret_cast<const char *>(ram.data() + vmm::G_CMDLINE), "console=ttyS0");
    // The initrd: page aligned at the top of RAM, below initrd_addr_max.
    EXPECT_EQ(get<u32>(zp, 0x218), RAM - 0x2000);
    EXPECT_EQ(get<u32>(zp, 0x21c), 0x1800u);
    EXPECT_EQ(r.initrd_at, RAM - 0x2000);
    EXPECT_EQ(ram[RAM - 0x2000], 0x5a);
    // E820: low RAM, the reserved BIOS area, RAM from 1 MiB.
    ASSERT_EQ(get<u8>(zp, 0x1e8), 3);
    EXPECT_EQ(get<u64>(zp, 0x2d0 + 8), vmm::LOW_RAM_END);
    EXPECT_EQ(get<u32>(zp, 0x2d0 + 20 + 16), 2u);
    EXPECT_EQ(get<u64>(zp, 0x2d0 + 40), 0x100000u);
    EXPECT_EQ(get<u64>(zp, 0x2d0 + 48), RAM - 0x100000);
    // Identity map and GDT for the 64-bit entry.
    EXPECT_EQ(get<u64>(ram.data(), vmm::G_PML4), vmm::G_PDPT | 3);
    EXPECT_EQ(get<u64>(ram.data(), vmm::G_PD + 0x1000 * 3 + 8 * 511), (u64{3} << 30 | u64{511} << 21) | 0x83);
    EXPECT_EQ(get<u64>(ram.data(), vmm::G_GDT + 0x10), 0x00af9b000000ffffull);
}

TEST_F(Loader, InitrdBelowItsLimit)
{
    put<u32>(bz.img, 0x22c, 0x1fffffff);  // limit at 512 MiB: above RAM, so RAM decides
    ASSERT_EQ(load().error, nullptr);
    put<u32>(bz.img, 0x22c, 0x2ffffff);  // 48 MiB - 1
    auto r = load();
    ASSERT_EQ(r.error, nullptr);
    EXPECT_EQ(r.initrd_at, 0x3000000u - 0x2000);
}

TEST_F(Loader, RefusesWhatIsNotABzImage)
{
    put<u32>(bz.img, 0x202, 0);
    EXPECT_NE(std::string(load().error).find("not a bzImage"), std::string::npos);
    bz = Bzimage();
    put<u16>(bz.img, 0x1fe, 0);
    EXPECT_NE(std::string(load().error).find("not a bzImage"), std::string::npos);
    bz = Bzimage();
    put<u8>(bz.img, 0x211, 0);  // a zImage
    EXPECT_NE(std::string(load().error).find("zImage"), std::string::npos);
}

TEST_F(Loader, RefusesOldProtocolAndNo64BitEntry)
{
    put<u16>(bz.img, 0x206, 0x20b);
    EXPECT_NE(std::string(load().error).find("older than 2.12"), std::string::npos);
    bz = Bzimage();
    put<u16>(bz.img, 0x236, 0);
    EXPECT_NE(std::string(load().error).find("64-bit entry"), std::string::npos);
}

TEST_F(Loader, RefusesTooLittleRamAndAnInitrdThatDoesNotFit)
{
    EXPECT_NE(std::string(load("x", 0x1300000).error).find("too little RAM"), std::string::npos);
    initrd.resize(RAM - 0x1400000 + 1);  // one byte more than there is above the kernel
    EXPECT_NE(std::string(load().error).find("initrd does not fit"), std::string::npos);
    initrd.resize(RAM - 0x1400000);
    EXPECT_EQ(load().error, nullptr);
}

TEST_F(Loader, RefusesACommandLineLongerThanTheKernelTakes)
{
    EXPECT_EQ(load(std::string(255, 'a')).error, nullptr);
    EXPECT_NE(std::string(load(std::string(256, 'a')).error).find("command line"), std::string::npos);
}

// Linux's 8259A set-up: ICW1-4 on both chips, vector bases 0x30 and 0x38, slave on IRQ 2.
vmm::Pic linux_pic()
{
    vmm::Pic p{};
    p.out(0x21, 0xff);
    p.out(0xa1, 0xff);
    p.out(0x20, 0x11);
    p.out(0x21, 0x30);
    p.out(0x21, 0x04);
    p.out(0x21, 0x01);
    p.out(0xa0, 0x11);
    p.out(0xa1, 0x38);
    p.out(0xa1, 0x02);
    p.out(0xa1, 0x01);
    p.out(0x21, 0xfb);  // everything masked but the cascade
    p.out(0xa1, 0xff);
    return p;
}

TEST(VmmPic, MaskReadBackPriorityAndEoi)
{
    vmm::Pic p = linux_pic();
    EXPECT_EQ(p.in(0x21), 0xfb) << "Linux's probe reads the mask back";
    p.raise(0);
    EXPECT_EQ(p.pending(), -1) << "IRQ 0 is masked";
    p.out(0x21, 0xea);  // unmask IRQ 0 and 4
    p.raise(4);
    EXPECT_EQ(p.pending(), 0x30) << "IRQ 0 before IRQ 4";
    EXPECT_EQ(p.ack(), 0x30);
    EXPECT_EQ(p.pending(), -1) << "IRQ 4 waits behind IRQ 0 in service";
    p.out(0x20, 0x0b);  // OCW3: read ISR
    EXPECT_EQ(p.in(0x20), 0x01);
    p.out(0x20, 0x60);  // specific EOI for IRQ 0
    EXPECT_EQ(p.pending(), 0x34);
    EXPECT_EQ(p.ack(), 0x34);
    p.out(0x20, 0x20);  // non-specific EOI
    EXPECT_EQ(p.in(0x20), 0x00);
    EXPECT_EQ(p.pending(), -1);
}

TEST(VmmPic, SlaveThroughTheCascade)
{
    vmm::Pic p = linux_pic();
    p.out(0xa1, 0xfe);  // unmask IRQ 8
    p.raise(8);
    EXPECT_EQ(p.pending(), 0x38);
    EXPECT_EQ(p.ack(), 0x38);
    p.out(0x20, 0x0b);
    EXPECT_EQ(p.in(0x20), 0x04) << "the master has IRQ 2 in service";
    p.out(0x21, 0xfe & 0xfb);
    p.raise(0);
    EXPECT_EQ(p.pending(), 0x30) << "IRQ 0 has priority over the cascade in service";
}

TEST(VmmPit, PeriodicChannelZeroFiresEveryPeriod)
{
    vmm::time_init(2000000);
    vmm::Pit t{};
    t.next_irq = ~u64{0};
    t.out(0x43, 0x34);  // channel 0, lobyte/hibyte, mode 2
    t.out(0x40, 0xa9);  // 1193: 1 ms
    u64 before = vmm::now_pit();
    t.out(0x40, 0x04);
    u64 first = t.next_irq;
    EXPECT_GE(first, before + 1193);
    EXPECT_LE(first, vmm::now_pit() + 1193);
    EXPECT_FALSE(t.update(first - 1));
    EXPECT_TRUE(t.update(first));
    EXPECT_EQ(t.next_irq, first + 1193);
    EXPECT_TRUE(t.update(first + 5 * 1193 + 7)) << "missed periods are coalesced";
    EXPECT_EQ(t.next_irq, first + 6 * 1193);
    t.out(0x43, 0x30);  // mode 0: the count stops until it is written
    EXPECT_EQ(t.next_irq, ~u64{0});
}

TEST(VmmPit, LatchedCountAndPort61)
{
    vmm::time_init(2000000);
    vmm::Pit t{};
    t.next_irq = ~u64{0};
    t.out(0x61, 0x01);  // gate 2 on, speaker off
    t.out(0x43, 0xb0);  // channel 2, lobyte/hibyte, mode 0
    t.out(0x42, 0xff);
    t.out(0x42, 0xff);
    EXPECT_FALSE(t.in(0x61) & 0x20) << "OUT2 low while counting";
    t.out(0x43, 0x80);  // latch channel 2
    u16 c = static_cast<u16>(t.in(0x42) | t.in(0x42) << 8);
    EXPECT_LE(c, 0xffff);
    EXPECT_GT(c, 0xff00) << "a fresh count";
    u8 a = t.in(0x61), b = t.in(0x61);
    EXPECT_NE(a & 0x10, b & 0x10) << "the refresh bit toggles";
    EXPECT_EQ(a & 0x0f, 0x01);
}

TEST(VmmUart, LinuxProbeAndInterrupts)
{
    vmm::Uart u{};
    std::string out;
    static std::string *sink_to;
    sink_to = &out;
    u.sink = [](u8 c) { sink_to->push_back(static_cast<char>(c)); };
    u.out(4, 0x1a);  // loopback with RTS and OUT2
    EXPECT_EQ(u.in(6) & 0xf0, 0x90) << "CTS and DCD looped back";
    u.out(4, 0x08);  // OUT2: the IRQ line is enabled
    u.out(7, 0xa5);
    EXPECT_EQ(u.in(7), 0xa5);
    u.out(2, 0x07);  // FIFO on
    EXPECT_EQ(u.in(2) & 0xc0, 0xc0) << "a 16550A";
    EXPECT_FALSE(u.irq_edge());
    u.out(1, 0x02);  // THRE interrupt
    EXPECT_TRUE(u.irq_edge());
    EXPECT_EQ(u.in(2) & 0x0f, 0x02);
    EXPECT_EQ(u.in(2) & 0x0f, 0x01) << "reading IIR clears THRE";
    EXPECT_FALSE(u.irq_edge());
    u.out(0, 'h');
    EXPECT_EQ(out, "h");
    EXPECT_TRUE(u.irq_edge()) << "THR empty again";
    u.out(1, 0x01);  // RX interrupt only
    EXPECT_EQ(u.in(5) & 1, 0);
    EXPECT_TRUE(u.push('x'));
    EXPECT_EQ(u.in(5) & 0x61, 0x61);
    EXPECT_EQ(u.in(2) & 0x0f, 0x04);
    EXPECT_EQ(u.in(0), 'x');
    EXPECT_EQ(u.in(5) & 1, 0);
}

TEST(VmmRtc, BcdDateAndStatus)
{
    vmm::time_init(2000000);
    vmm::Rtc r{};
    r.out(0x70, 0x09);
    EXPECT_EQ(r.in(0x71), 0x26);
    r.out(0x70, 0x32);
    EXPECT_EQ(r.in(0x71), 0x20);
    r.out(0x70, 0x0b);
    EXPECT_EQ(r.in(0x71), 0x02) << "24 h, BCD";
    r.out(0x70, 0x0a);
    EXPECT_FALSE(r.in(0x71) & 0x80) << "never update in progress";
    r.out(0x70, 0x20);
    r.out(0x71, 0x77);
    EXPECT_EQ(r.in(0x71), 0x77) << "NVRAM";
}

}  // namespace

namespace {

// Garbage in I/O: a seeded random stream of reads and writes on every emulated port must neither
// crash (the build has ASan/UBSan) nor leave a device that Linux's set-up cannot bring back.
TEST(VmmDevices, GarbageInIoThenLinuxSetUpWorks)
{
    vmm::time_init(2000000);
    vmm::Pic p{};
    vmm::Pit t{};
    t.next_irq = ~u64{0};
    vmm::Uart u{};
    u.sink = [](u8) {};
    vmm::Rtc r{};
    const u16 ports[] = {0x20, 0x21, 0xa0, 0xa1, 0x40, 0x41, 0x42, 0x43, 0x61, 0x70, 0x71};
    u64 x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        u8 v = static_cast<u8>(x >> 8);
        bool write = x & 1;
        unsigned which = static_cast<unsigned>(x >> 20) % (sizeof ports / sizeof ports[0] + 8);
        if (which >= sizeof ports / sizeof ports[0]) {
            u16 off = static_cast<u16>(which - sizeof ports / sizeof ports[0]);
            write ? u.out(off, v) : static_cast<void>(u.in(off));
            u.irq_edge();
            continue;
        }
        u16 port = ports[which];
        if (port <= 0xa1)
            write ? p.out(port, v) : static_cast<void>(p.in(port));
        else if (port <= 0x61)
            write ? t.out(port, v) : static_cast<void>(t.in(port));
        else
            write ? r.out(port, v) : static_cast<void>(r.in(port));
        if (p.pending() >= 0 && (x & 6) == 6)
            p.ack();
        t.update(vmm::now_pit() + (x >> 40));
    }
    // Linux's set-up of each device works from whatever state the garbage left.
    p.out(0x20, 0x11);
    p.out(0x21, 0x30);
    p.out(0x21, 0x04);
    p.out(0x21, 0x01);
    p.out(0x21, 0xfe);
    p.raise(0);
    EXPECT_EQ(p.pending(), 0x30);
    t.out(0x43, 0x34);
    t.out(0x40, 0xa9);
    t.out(0x40, 0x04);
    EXPECT_LE(t.next_irq, vmm::now_pit() + 1193);
    u.out(3, 0x03);
    u.out(4, 0x1a);
    EXPECT_EQ(u.in(6) & 0xf0, 0x90);
}

}  // namespace

#include "../../user/vmm/decode.hpp"

namespace {

vmm::Mmio_insn decode64(std::vector<u8> code, bool expect = true)
{
    vmm::Mmio_insn d{};
    EXPECT_EQ(vmm::decode_mmio(code.data(), static_cast<unsigned>(code.size()), true, false, d), expect);
    return d;
}

TEST(VmmDecode, MovStoresAndLoads)
{
    auto d = decode64({0x89, 0x02});  // mov %eax,(%rdx)
    EXPECT_EQ(d.len, 2u);
    EXPECT_EQ(d.size, 4u);
    EXPECT_TRUE(d.write);
    EXPECT_EQ(d.reg, 0u);
    d = decode64({0x8b, 0x82, 0x20, 0x03, 0x00, 0x00});  // mov 0x320(%rdx),%eax
    EXPECT_EQ(d.len, 6u);
    EXPECT_FALSE(d.write);
    d = decode64({0x48, 0x89, 0x04, 0x25, 0x00, 0x00, 0xe0, 0xfe});  // mov %rax,0xfee00000 (SIB, no base)
    EXPECT_EQ(d.len, 8u);
    EXPECT_EQ(d.size, 8u);
    d = decode64({0x44, 0x8b, 0x4b, 0x30});  // mov 0x30(%rbx),%r9d
    EXPECT_EQ(d.len, 4u);
    EXPECT_EQ(d.reg, 9u);
    d = decode64({0x66, 0x89, 0x08});  // mov %cx,(%rax)
    EXPECT_EQ(d.size, 2u);
    EXPECT_EQ(d.reg, 1u);
    d = decode64({0x8b, 0x44, 0x24, 0x08});  // mov 0x8(%rsp),%eax (SIB, disp8)
    EXPECT_EQ(d.len, 4u);
    d = decode64({0x65, 0x8b, 0x04, 0x25, 0x10, 0x00, 0x00, 0x00});  // mov %gs:0x10,%eax
    EXPECT_EQ(d.len, 8u);
}

TEST(VmmDecode, ImmediatesRipRelativeAndMoffs)
{
    auto d = decode64(
        {0xc7, 0x05, 0x10, 0x00, 0x00, 0x00, 0x78, 0x56, 0x34, 0x12});  // movl $0x12345678,0x10(%rip)
    EXPECT_EQ(d.len, 10u);
    EXPECT_TRUE(d.imm_source);
    EXPECT_EQ(d.imm, 0x12345678u);
    d = decode64({0x48, 0xc7, 0x00, 0xff, 0xff, 0xff, 0xff});  // movq $-1,(%rax)
    EXPECT_EQ(d.len, 7u);
    EXPECT_EQ(d.imm, ~u64{0});
    d = decode64({0xc6, 0x40, 0x04, 0xab});  // movb $0xab,4(%rax)
    EXPECT_EQ(d.len, 4u);
    EXPECT_EQ(d.imm, 0xabu);
    d = decode64({0xa1, 0, 0, 0xe0, 0xfe, 0, 0, 0, 0});  // movabs 0xfee00000,%eax
    EXPECT_EQ(d.len, 9u);
    EXPECT_FALSE(d.write);
    vmm::Mmio_insn d32{};
    std::vector<u8> c32{0x8b, 0x05, 0x20, 0x03, 0xe0, 0xfe};  // mov 0xfee00320,%eax (32-bit mode)
    ASSERT_TRUE(vmm::decode_mmio(c32.data(), 6, false, true, d32));
    EXPECT_EQ(d32.len, 6u);
}

TEST(VmmDecode, RegisterSemantics)
{
    u64 gpr[16] = {};
    gpr[0] = 0x1122334455667788ull;
    auto d = decode64({0x88, 0x60, 0x04});  // mov %ah,4(%rax)
    EXPECT_TRUE(d.high_byte);
    EXPECT_EQ(vmm::mmio_store_value(d, gpr), 0x77u);
    d = decode64({0x8b, 0x00});  // mov (%rax),%eax: bits 63:32 cleared
    vmm::mmio_load_result(d, 0xaabbccdd, gpr);
    EXPECT_EQ(gpr[0], 0xaabbccddu);
    gpr[1] = 0xffffffffffffffffull;
    d = decode64({0x66, 0x8b, 0x08});  // mov (%rax),%cx: merged
    vmm::mmio_load_result(d, 0x1234, gpr);
    EXPECT_EQ(gpr[1], 0xffffffffffff1234ull);
    d = decode64({0x0f, 0xb6, 0x48, 0x01});  // movzbl 1(%rax),%ecx
    EXPECT_EQ(d.size, 1u);
    vmm::mmio_load_result(d, 0x1ff, gpr);
    EXPECT_EQ(gpr[1], 0xffu);
}

TEST(VmmDecode, RefusesWhatItDoesNotKnow)
{
    decode64({0xf3, 0xa5}, false);              // rep movsl
    decode64({0x89, 0xc0}, false);              // a register operand
    decode64({0xc7, 0x48, 0x04}, false);        // /1 is no MOV; and truncated
    decode64({0x8b}, false);                    // no ModRM
    decode64({0xc7, 0x00, 0x01, 0x02}, false);  // immediate cut short
}

TEST(VmmDecode, GuestPageWalks)
{
    std::vector<u8> ram(0x200000, 0);
    auto put64 = [&](u64 a, u64 v) { std::memcpy(ram.data() + a, &v, 8); };
    // Long mode: PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000 -> PT 0x4000.
    put64(0x1000 + 8 * 511, 0x2003);    // va bits 47:39 = 511
    put64(0x2000 + 8 * 510, 0x3003);    // 38:30 = 510
    put64(0x3000 + 8 * 0, 0x4003);      // 29:21 = 0: a page table
    put64(0x4000 + 8 * 5, 0x150003);    // 20:12 = 5
    put64(0x3000 + 8 * 1, 0x600083);    // a 2 MiB page
    put64(0x2000 + 8 * 1, 0x40000083);  // a 1 GiB page
    u64 pa = 0;
    const u64 cr0 = 0x80000011, cr4 = 0x20, efer = 0x500;
    ASSERT_TRUE(
        vmm::guest_translate(ram.data(), ram.size(), cr0, 0x1000, cr4, efer, 0xffffffff80005123ull, pa));
    EXPECT_EQ(pa, 0x150123u);
    ASSERT_TRUE(
        vmm::guest_translate(ram.data(), ram.size(), cr0, 0x1000, cr4, efer, 0xffffffff80212345ull, pa));
    EXPECT_EQ(pa, 0x612345u);
    put64(0x1000, 0x2003);
    ASSERT_TRUE(
        vmm::guest_translate(ram.data(), ram.size(), cr0, 0x1000, cr4, efer, 0x7654321ull | 1ull << 30, pa));
    EXPECT_EQ(pa, 0x47654321u);
    EXPECT_FALSE(
        vmm::guest_translate(ram.data(), ram.size(), cr0, 0x1000, cr4, efer, 0xffffffff80006000ull, pa))
        << "not present";
    put64(0x3000 + 8 * 2, 0x7fff0003);  // a table beyond RAM
    EXPECT_FALSE(
        vmm::guest_translate(ram.data(), ram.size(), cr0, 0x1000, cr4, efer, 0xffffffff80400000ull, pa));
    ASSERT_TRUE(vmm::guest_translate(ram.data(), ram.size(), 0x11, 0, 0, 0, 0x12345678, pa)) << "no paging";
    EXPECT_EQ(pa, 0x12345678u);
}

}  // namespace

#include "../../user/vmm/lapic.hpp"

namespace {

TEST(VmmLapic, PrioritiesEoiAndExtint)
{
    vmm::Lapic l;
    l.reset(0);
    EXPECT_TRUE(l.extint_open()) << "software-disabled: the virtual wire passes";
    l.write(0xf0, 0x1ff, 0);  // enable, spurious vector 0xff
    EXPECT_FALSE(l.extint_open()) << "LINT0 masked after reset";
    l.write(0x350, 0x700, 0);  // LINT0: ExtINT, unmasked
    EXPECT_TRUE(l.extint_open());
    EXPECT_EQ(l.read(0x30, 0), 0x00050014u);
    l.write(0x80, 0x20, 0);  // TPR: class 2
    l.raise(0x25);
    EXPECT_EQ(l.pending(), -1) << "class 2 is blocked by TPR 0x20";
    l.raise(0x41);
    EXPECT_EQ(l.pending(), 0x41);
    l.ack(0x41);
    l.raise(0x45);
    EXPECT_EQ(l.pending(), -1) << "same class as the one in service";
    l.raise(0x51);
    EXPECT_EQ(l.pending(), 0x51);
    EXPECT_EQ(l.read(0xa0, 0), 0x40u) << "PPR from the ISR";
    l.write(0xb0, 0, 0);  // EOI clears 0x41
    EXPECT_EQ(l.read(0x100 + 0x20, 0), 0u);
    EXPECT_EQ(l.pending(), 0x51);
    l.write(0xf0, 0xff, 0);  // software disable masks every LVT
    EXPECT_TRUE(l.read(0x350, 0) & (1u << 16));
}

TEST(VmmLapic, TimerOneShotAndPeriodic)
{
    vmm::Lapic l;
    l.reset(0);
    l.write(0xf0, 0x1ff, 1000);
    l.write(0x3e0, 0x3, 1000);   // divide by 16
    l.write(0x320, 0xec, 1000);  // one-shot, vector 0xec
    l.write(0x380, 100, 1000);   // 100 * 16 TSC ticks
    EXPECT_EQ(l.deadline, 1000u + 1600);
    EXPECT_EQ(l.read(0x390, 1000 + 160), 90u);
    EXPECT_FALSE(l.update(2599));
    EXPECT_TRUE(l.update(2600));
    EXPECT_EQ(l.pending(), 0xec);
    EXPECT_EQ(l.deadline, ~u64{0});
    EXPECT_EQ(l.read(0x390, 3000), 0u);
    l.write(0x320, 0x200ec, 3000);  // periodic
    l.write(0x380, 10, 3000);
    EXPECT_TRUE(l.update(3000 + 160 * 3 + 5)) << "missed periods coalesce";
    EXPECT_EQ(l.deadline, 3000u + 160 * 4);
    l.write(0x380, 0, 4000);  // a zero count stops it
    EXPECT_EQ(l.deadline, ~u64{0});
    EXPECT_FALSE(l.update(~u64{0} - 1));
}

TEST(VmmLapic, TscDeadlineMode)
{
    vmm::Lapic l;
    l.reset(0);
    l.write(0xf0, 0x1ff, 0);
    l.write_tsc_deadline(5000);  // not in TSC-deadline mode: ignored
    EXPECT_EQ(l.deadline, ~u64{0});
    l.write(0x320, 0x400ef, 0);  // TSC deadline, vector 0xef
    l.write(0x380, 100, 0);      // the initial count is ignored in this mode
    EXPECT_EQ(l.deadline, ~u64{0});
    l.write_tsc_deadline(5000);
    EXPECT_EQ(l.read_tsc_deadline(), 5000u);
    EXPECT_FALSE(l.update(4999));
    EXPECT_TRUE(l.update(5000));
    EXPECT_EQ(l.pending(), 0xef);
    EXPECT_EQ(l.read_tsc_deadline(), 0u) << "fires once";
    l.write_tsc_deadline(9000);
    l.write_tsc_deadline(0);  // disarms
    EXPECT_FALSE(l.update(10000));
    l.write_tsc_deadline(9000);
    l.write(0x320, 0xef, 0);  // a mode change disarms
    EXPECT_FALSE(l.update(10000));
}

}  // namespace

#include "../../user/vmm/smp.hpp"

namespace {

TEST(VmmSmp, ApicDestinations)
{
    vmm::Lapic a[3];
    for (unsigned i = 0; i < 3; i++) {
        a[i].reset(i);
        a[i].write(0xd0, (1u << i) << 24, 0);  // flat logical IDs 1, 2, 4
    }
    EXPECT_EQ(vmm::apic_targets(a, 3, 0, 0x0030, 1), 2u) << "physical: APIC ID 1";
    EXPECT_EQ(vmm::apic_targets(a, 3, 0, 0x0030, 7), 0u) << "physical: no such ID";
    EXPECT_EQ(vmm::apic_targets(a, 3, 0, 0x0030, 0xff), 7u) << "physical broadcast";
    EXPECT_EQ(vmm::apic_targets(a, 3, 0, 0x0830, 6), 6u) << "flat logical: a mask";
    EXPECT_EQ(vmm::apic_targets(a, 3, 0, 0x0830, 0x11), 1u) << "flat logical: no clusters";
    EXPECT_EQ(vmm::apic_targets(a, 3, 1, 0x40030, 0), 2u) << "shorthand self";
    EXPECT_EQ(vmm::apic_targets(a, 3, 1, 0x80030, 0), 7u) << "shorthand all";
    EXPECT_EQ(vmm::apic_targets(a, 3, 1, 0xc0030, 0), 5u) << "shorthand all but self";
    for (unsigned i = 0; i < 3; i++) {  // cluster model: cluster 1, members 1, 2, 4
        a[i].write(0xe0, 0x0fffffff, 0);
        a[i].write(0xd0, (0x10u | 1u << i) << 24, 0);
    }
    EXPECT_EQ(vmm::apic_targets(a, 3, 0, 0x0830, 0x13), 3u);
    EXPECT_EQ(vmm::apic_targets(a, 3, 0, 0x0830, 0x23), 0u) << "another cluster";
}

TEST(VmmSmp, IoapicRegisters)
{
    vmm::Ioapic io;
    io.reset(2);
    io.write(0, 0);
    EXPECT_EQ(io.read(0x10), 2u << 24);
    io.write(0, 1);
    EXPECT_EQ(io.read(0x10), 0x170020u) << "24 pins, version 0x20";
    io.write(0, 0x10 + 2 * 2);  // pin 2, low half
    EXPECT_EQ(io.read(0x10), 0x10000u) << "masked after reset";
    io.write(0x10, 0xffffffff);
    EXPECT_EQ(io.read(0x10), 0x1afffu) << "delivery status and remote IRR stay 0";
    io.write(0, 0x10 + 2 * 2 + 1);
    io.write(0x10, 0x01ffffff);
    EXPECT_EQ(io.redir[2], 0x010000000001afffull);
    io.write(0, 0x10 + 2 * 24);  // beyond the last pin
    io.write(0x10, 0x30);
    EXPECT_EQ(io.read(0x10), 0u);
    EXPECT_EQ(vmm::isa_pin(0), 2u);
    EXPECT_EQ(vmm::isa_pin(4), 4u);
}

TEST(VmmSmp, MpTable)
{
    std::vector<u8> ram(0x100000, 0);
    u64 n = vmm::build_mp_table(ram.data(), vmm::G_MP_TABLE, 0x400, 2, 0x600f11, 0x201);
    ASSERT_GT(n, 16u);
    const u8 *f = ram.data() + vmm::G_MP_TABLE;
    EXPECT_EQ(std::string(reinterpret_cast<const char *>(f), 4), "_MP_");
    u8 sum = 0;
    for (unsigned i = 0; i < 16; i++)
        sum = static_cast<u8>(sum + f[i]);
    EXPECT_EQ(sum, 0) << "floating pointer checksum";
    EXPECT_EQ(get<u32>(f, 4), vmm::G_MP_TABLE + 16);
    EXPECT_EQ(f[8], 1);  // 16 bytes
    const u8 *c = f + 16;
    EXPECT_EQ(std::string(reinterpret_cast<const char *>(c), 4), "PCMP");
    u16 len = get<u16>(c, 4), entries = get<u16>(c, 34);
    EXPECT_EQ(len + 16u, n);
    sum = 0;
    for (unsigned i = 0; i < len; i++)
        sum = static_cast<u8>(sum + c[i]);
    EXPECT_EQ(sum, 0) << "table checksum";
    EXPECT_EQ(get<u32>(c, 36), 0xfee00000u);
    // Walk the entries: two processors (0 the BSP), one bus, one I/O APIC (ID 2), 16 + 2 interrupts.
    unsigned counts[5] = {}, at = 44;
    int pin_of_irq0 = -1, pin_of_irq4 = -1;
    for (unsigned e = 0; e < entries; e++) {
        u8 type = c[at];
        ASSERT_LT(type, 5);
        counts[type]++;
        if (type == 0) {
            EXPECT_EQ(c[at + 1], counts[0] - 1);
            EXPECT_EQ(c[at + 3], counts[0] == 1 ? 3 : 1) << "enabled, BSP first";
        }
        if (type == 2) {
            EXPECT_EQ(c[at + 1], 2);
            EXPECT_EQ(get<u32>(c + at, 4), 0xfec00000u);
        }
        if (type == 3 && c[at + 1] == 0 && c[at + 5] == 0)
            pin_of_irq0 = c[at + 7];
        if (type == 3 && c[at + 1] == 0 && c[at + 5] == 4)
            pin_of_irq4 = c[at + 7];
        at += type == 0 ? 20 : 8;
    }
    EXPECT_EQ(at, len);
    EXPECT_EQ(counts[0], 2u);
    EXPECT_EQ(counts[1], 1u);
    EXPECT_EQ(counts[2], 1u);
    EXPECT_EQ(counts[3], 16u);
    EXPECT_EQ(counts[4], 2u);
    EXPECT_EQ(pin_of_irq0, 2);
    EXPECT_EQ(pin_of_irq4, 4);
    EXPECT_EQ(vmm::build_mp_table(ram.data(), vmm::G_MP_TABLE, 0x40, 2, 0, 0), 0u) << "too little room";
    EXPECT_EQ(vmm::build_mp_table(ram.data(), vmm::G_MP_TABLE, 0x400, 0, 0, 0), 0u);
}

}  // namespace
