/*
 * The VMM's devices and the Linux loader (docs/vmm.md). Everything here is plain state machines
 * driven by the exit handler; time comes from the host TSC (now() in PIT ticks).
 */
#pragma once

#include "types.hpp"

namespace vmm {

using u8 = ::u8;
using u16 = ::u16;
using u32 = ::u32;
using u64 = ::u64;

constexpr u64 PIT_HZ = 1193182;

// What the root task (user/vmmroot) tells a VMM: the words of its Launch_info (nova/launch.hpp),
// addresses in the VMM's PD.
enum Launch_word : unsigned {
    W_KERNEL,  // the bzImage module (read-only) and its size
    W_KERNEL_SIZE,
    W_KERNEL_ARGS,  // the bzImage module's words after its file name: the guest's command line
    W_KERNEL_ARGS_LEN,
    W_INITRD,  // the initrd module (read-only) and its size; 0 when there is none
    W_INITRD_SIZE,
    W_RAM,  // the guest's RAM (2 MiB aligned host memory, read-write) and its size
    W_RAM_SIZE,
};

// Host TSC <-> PIT ticks, set up from the HIP's TSC frequency.
void time_init(u64 tsc_khz);
u64 now_pit();              // PIT ticks since time_init
u64 pit_to_tsc(u64 ticks);  // absolute host TSC of the PIT tick `ticks`
u64 rdtsc();

// 8259A pair (master 0x20/0x21, slave 0xa0/0xa1), edge-triggered.
struct Pic
{
    struct Chip
    {
        u8 irr, isr, imr, base, step, icw4, read_isr, auto_eoi;
    } chip[2];

    void raise(unsigned irq);
    int pending() const;  // the vector the CPU would take now, or -1
    u8 ack();             // take the highest-priority request: its vector
    u8 in(u16 port);
    void out(u16 port, u8 v);

  private:
    static int highest(const Chip &c, u8 extra);
};

// 8254 PIT: channel 0 (IRQ 0) and channel 2 (port 0x61), modes 0, 2, 3, 4.
struct Pit
{
    struct Channel
    {
        u64 start;  // PIT tick of the last count write
        u32 reload;
        u16 latch;
        u8 mode, access, latched, read_hi, write_hi, armed;
        u8 lo_written;
    } ch[3];
    u8 port61;
    u64 next_irq;  // PIT tick of the next channel-0 interrupt, ~0 if none

    u8 in(u16 port);
    void out(u16 port, u8 v);
    bool update(u64 now);  // true: channel 0 fired (raise IRQ 0)

  private:
    u16 count(const Channel &c, u64 now) const;
    bool out2(u64 now) const;
    void arm(unsigned n, u64 now);
};

// 16550A UART (COM1), output to a sink, input from a ring the VMM fills.
struct Uart
{
    u8 ier, lcr, mcr, scr, dll, dlm, fcr;
    bool thre_pending;
    bool irq_level;
    u8 rx[256];
    u32 rx_head, rx_tail;  // rx_tail is written by the producer only
    void (*sink)(u8);

    bool rx_ready() const { return rx_head != __atomic_load_n(&rx_tail, __ATOMIC_ACQUIRE); }
    bool push(u8 c);  // producer side (the input thread)
    u8 in(u16 off);
    void out(u16 off, u8 v);
    bool irq_edge();  // true when the interrupt line went up since the last call
    u8 iir() const;
};

// MC146818 CMOS RTC, BCD, 24 h: a fixed start date plus the time since the VMM started.
struct Rtc
{
    u8 index;
    u8 ram[128];
    u8 in(u16 port);
    void out(u16 port, u8 v);
};

// The Linux boot protocol (Documentation/arch/x86/boot.rst), 64-bit entry.
struct Boot_result
{
    const char *error;  // nullptr: ok
    u64 entry, zero_page, kernel_at, kernel_end, initrd_at;
    u16 version;
};

Boot_result load_linux(u8 *ram, u64 ram_size, const u8 *image, u64 image_size, const u8 *initrd,
                       u64 initrd_size, const char *cmdline, u64 cmdline_len);

// Guest-physical layout of what the loader builds below 1 MiB.
constexpr u64 G_GDT = 0x6000, G_ZERO_PAGE = 0x7000, G_PML4 = 0x9000, G_PDPT = 0xa000, G_PD = 0xb000,
              G_CMDLINE = 0x20000, CMDLINE_MAX = 0x1000, LOW_RAM_END = 0x9f000, ROM_START = 0xf0000;

}  // namespace vmm
