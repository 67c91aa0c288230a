/*
 * The VMM's emulated devices (docs/vmm.md, "Devices"): 8259A PIC pair, 8254 PIT with port 0x61,
 * 16550A UART, MC146818 RTC. Each is a state machine the exit handler calls with the port and
 * value; interrupts are returned to the caller, which feeds them to the PIC.
 */
#include "vmm.hpp"

namespace vmm {

namespace {
// Fixed-point factors (no 128-bit division in a freestanding program): PIT ticks per TSC tick
// << 32 and TSC ticks per PIT tick << 20.
u64 tsc_start, pit_per_tsc, tsc_per_pit;
}  // namespace

u64 rdtsc() { return __builtin_ia32_rdtsc(); }

void time_init(u64 tsc_khz)
{
    u64 hz = tsc_khz * 1000;
    pit_per_tsc = (PIT_HZ << 32) / hz;
    tsc_per_pit = (hz << 20) / PIT_HZ;
    tsc_start = rdtsc();
}

u64 now_pit()
{
    unsigned __int128 d = rdtsc() - tsc_start;
    return static_cast<u64>(d * pit_per_tsc >> 32);
}

u64 pit_to_tsc(u64 ticks)
{
    unsigned __int128 t = ticks;
    return tsc_start + static_cast<u64>(t * tsc_per_pit >> 20);
}

// ---- PIC ------------------------------------------------------------------------------------

// Highest-priority request of one chip (IRQ 0 first) that no in-service IRQ of equal or higher
// priority blocks; -1 if none.
int Pic::highest(const Chip &c, u8 extra)
{
    u8 req = static_cast<u8>((c.irr | extra) & ~c.imr);
    for (int i = 0; i < 8; i++) {
        if (c.isr & (1u << i))
            return -1;
        if (req & (1u << i))
            return i;
    }
    return -1;
}

void Pic::raise(unsigned irq)
{
    if (irq < 8)
        chip[0].irr = static_cast<u8>(chip[0].irr | 1u << irq);
    else if (irq < 16)
        chip[1].irr = static_cast<u8>(chip[1].irr | 1u << (irq - 8));
}

int Pic::pending() const
{
    int s = highest(chip[1], 0);
    int m = highest(chip[0], s >= 0 ? 4 : 0);
    if (m < 0)
        return -1;
    if (m == 2 && s >= 0)
        return chip[1].base + s;
    return chip[0].base + m;
}

u8 Pic::ack()
{
    int s = highest(chip[1], 0);
    int m = highest(chip[0], s >= 0 ? 4 : 0);
    auto take = [](Chip &c, int i) {
        c.irr = static_cast<u8>(c.irr & ~(1u << i));
        if (!c.auto_eoi)
            c.isr = static_cast<u8>(c.isr | 1u << i);
        return static_cast<u8>(c.base + i);
    };
    if (m == 2 && s >= 0) {
        if (!chip[0].auto_eoi)
            chip[0].isr = static_cast<u8>(chip[0].isr | 4);
        return take(chip[1], s);
    }
    if (m < 0)  // spurious: IRQ 7
        return static_cast<u8>(chip[0].base + 7);
    return take(chip[0], m);
}

u8 Pic::in(u16 port)
{
    Chip &c = chip[port >= 0xa0];
    if (port & 1)
        return c.imr;
    return c.read_isr ? c.isr : c.irr;
}

void Pic::out(u16 port, u8 v)
{
    Chip &c = chip[port >= 0xa0];
    if (port & 1) {
        switch (c.step) {
        case 1:
            c.base = v & 0xf8;
            c.step = 2;
            return;
        case 2:  // ICW3: the cascade wiring is fixed (slave on IRQ 2)
            c.step = c.icw4 ? 3 : 0;
            return;
        case 3:
            c.auto_eoi = (v & 2) != 0;
            c.step = 0;
            return;
        default: c.imr = v; return;
        }
    }
    if (v & 0x10) {  // ICW1
        c.icw4 = v & 1;
        c.step = 1;
        c.imr = 0;
        c.isr = 0;
        c.irr = 0;
        c.read_isr = 0;
        c.auto_eoi = 0;
        return;
    }
    if (v & 0x08) {  // OCW3
        if (v & 2)
            c.read_isr = v & 1;
        return;
    }
    switch (v >> 5) {  // OCW2
    case 1:            // non-specific EOI: the highest-priority IRQ in service
        for (int i = 0; i < 8; i++)
            if (c.isr & (1u << i)) {
                c.isr = static_cast<u8>(c.isr & ~(1u << i));
                break;
            }
        return;
    case 3: c.isr = static_cast<u8>(c.isr & ~(1u << (v & 7))); return;
    default: return;  // rotation and priority commands: not emulated
    }
}

// ---- PIT ------------------------------------------------------------------------------------

u16 Pit::count(const Channel &c, u64 now) const
{
    u64 reload = c.reload ? c.reload : 0x10000;
    u64 e = now - c.start;
    if (c.mode == 2 || c.mode == 3)
        return static_cast<u16>(reload - e % reload);
    return static_cast<u16>(reload - e);  // modes 0, 4: counts down and wraps
}

bool Pit::out2(u64 now) const
{
    const Channel &c = ch[2];
    u64 reload = c.reload ? c.reload : 0x10000;
    u64 e = now - c.start;
    if (!c.armed)
        return c.mode != 0;
    switch (c.mode) {
    case 0: return e >= reload;
    case 3: return e % reload < (reload + 1) / 2;
    case 4: return e != reload;
    default: return e % reload != reload - 1;
    }
}

void Pit::arm(unsigned n, u64 now)
{
    Channel &c = ch[n];
    c.start = now;
    c.armed = 1;
    if (n != 0)
        return;
    u64 reload = c.reload ? c.reload : 0x10000;
    next_irq = now + reload + (c.mode == 4 ? 1 : 0);
}

bool Pit::update(u64 now)
{
    Channel &c = ch[0];
    if (next_irq == ~u64{0} || now < next_irq)
        return false;
    if (c.mode == 2 || c.mode == 3) {
        u64 reload = c.reload ? c.reload : 0x10000;
        // Ticks that went by unseen are coalesced into this one (Linux's clocksource is the TSC).
        next_irq += reload * ((now - next_irq) / reload + 1);
    } else
        next_irq = ~u64{0};
    return true;
}

u8 Pit::in(u16 port)
{
    u64 now = now_pit();
    if (port == 0x61) {
        port61 ^= 0x10;  // refresh toggle
        return static_cast<u8>((port61 & 0x1f) | (out2(now) ? 0x20 : 0));
    }
    if (port > 0x42)
        return 0xff;
    Channel &c = ch[port - 0x40];
    u16 v = c.latched ? c.latch : count(c, now);
    u8 r;
    switch (c.access) {
    case 1:
        r = static_cast<u8>(v);
        c.latched = 0;
        break;
    case 2:
        r = static_cast<u8>(v >> 8);
        c.latched = 0;
        break;
    default:
        r = c.read_hi ? static_cast<u8>(v >> 8) : static_cast<u8>(v);
        if (c.read_hi)
            c.latched = 0;
        c.read_hi ^= 1;
    }
    return r;
}

void Pit::out(u16 port, u8 v)
{
    u64 now = now_pit();
    if (port == 0x61) {
        port61 = static_cast<u8>((port61 & 0x10) | (v & 0x0f));
        return;
    }
    if (port == 0x43) {
        unsigned n = v >> 6;
        if (n == 3) {  // read-back: latch the counts asked for (status is not emulated)
            for (unsigned i = 0; i < 3; i++)
                if (!(v & 0x20) && (v & (2u << i)) && !ch[i].latched) {
                    ch[i].latch = count(ch[i], now);
                    ch[i].latched = 1;
                }
            return;
        }
        Channel &c = ch[n];
        unsigned acc = v >> 4 & 3;
        if (acc == 0) {  // counter latch
            if (!c.latched) {
                c.latch = count(c, now);
                c.latched = 1;
            }
            return;
        }
        c.access = static_cast<u8>(acc);
        c.mode = static_cast<u8>((v >> 1 & 7) > 5 ? (v >> 1 & 3) : (v >> 1 & 7));
        c.read_hi = c.write_hi = 0;
        c.latched = 0;
        c.armed = 0;
        if (n == 0)
            next_irq = ~u64{0};
        return;
    }
    if (port > 0x42)
        return;
    unsigned n = port - 0x40u;
    Channel &c = ch[n];
    switch (c.access) {
    case 1:
        c.reload = v;
        arm(n, now);
        break;
    case 2:
        c.reload = u32{v} << 8;
        arm(n, now);
        break;
    default:
        if (!c.write_hi) {
            c.reload = (c.reload & 0xff00) | v;
            c.write_hi = 1;
            if (c.mode == 0)  // writing the first byte stops the count in mode 0
                c.armed = 0, next_irq = n == 0 ? ~u64{0} : next_irq;
        } else {
            c.reload = (c.reload & 0xff) | u32{v} << 8;
            c.write_hi = 0;
            arm(n, now);
        }
    }
}

// ---- UART -----------------------------------------------------------------------------------

bool Uart::push(u8 c)
{
    u32 t = rx_tail, next = (t + 1) % sizeof rx;
    if (next == __atomic_load_n(&rx_head, __ATOMIC_ACQUIRE))
        return false;
    rx[t] = c;
    __atomic_store_n(&rx_tail, next, __ATOMIC_RELEASE);
    return true;
}

u8 Uart::iir() const
{
    u8 fifo = (fcr & 1) ? 0xc0 : 0;
    if ((ier & 1) && rx_ready())
        return fifo | 0x04;
    if ((ier & 2) && thre_pending)
        return fifo | 0x02;
    return fifo | 0x01;
}

bool Uart::irq_edge()
{
    bool level = !(iir() & 1) && (mcr & 8);  // OUT2 gates the interrupt line on PCs
    bool edge = level && !irq_level;
    irq_level = level;
    return edge;
}

u8 Uart::in(u16 off)
{
    bool dlab = lcr & 0x80;
    switch (off) {
    case 0:
        if (dlab)
            return dll;
        if (rx_ready()) {
            u8 c = rx[rx_head];
            __atomic_store_n(&rx_head, (rx_head + 1) % sizeof rx, __ATOMIC_RELEASE);
            return c;
        }
        return 0;
    case 1: return dlab ? dlm : ier;
    case 2: {
        u8 r = iir();
        if ((r & 0xf) == 0x02)
            thre_pending = false;
        return r;
    }
    case 3: return lcr;
    case 4: return mcr;
    case 5: return static_cast<u8>(0x60 | (rx_ready() ? 1 : 0));  // THRE and TEMT: sent at once
    case 6:
        if (mcr & 0x10)  // loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD
            return static_cast<u8>((mcr & 1) << 5 | (mcr & 2) << 3 | (mcr & 4) << 4 | (mcr & 8) << 4);
        return 0xb0;  // DCD, DSR, CTS
    default: return scr;
    }
}

void Uart::out(u16 off, u8 v)
{
    bool dlab = lcr & 0x80;
    switch (off) {
    case 0:
        if (dlab) {
            dll = v;
            return;
        }
        if (mcr & 0x10)
            push(v);
        else if (sink)
            sink(v);
        thre_pending = true;
        return;
    case 1:
        if (dlab) {
            dlm = v;
            return;
        }
        if ((v & 2) && !(ier & 2))
            thre_pending = true;
        ier = v & 0x0f;
        return;
    case 2: fcr = v & 0xc9; return;
    case 3: lcr = v; return;
    case 4: mcr = v & 0x1f; return;
    case 7: scr = v; return;
    default: return;
    }
}

// ---- RTC ------------------------------------------------------------------------------------

namespace {
u8 bcd(u64 v) { return static_cast<u8>((v / 10 % 10) << 4 | v % 10); }
}  // namespace

u8 Rtc::in(u16 port)
{
    if (port == 0x70)
        return 0xff;
    unsigned i = index & 0x7f;
    // Time of day: 2026-01-01 00:00:00 (a Thursday) plus the seconds since the VMM started.
    u64 s = now_pit() / PIT_HZ;
    u64 days = s / 86400;
    switch (i) {
    case 0x0: return bcd(s % 60);
    case 0x2: return bcd(s / 60 % 60);
    case 0x4: return bcd(s / 3600 % 24);
    case 0x6: return bcd((days + 4) % 7 + 1);
    case 0x7: return bcd(1 + days % 28);  // a month of 28 days: enough for a session
    case 0x8: return bcd(1);
    case 0x9: return bcd(26);
    case 0x32: return bcd(20);
    case 0xa: return 0x26;  // 32.768 kHz, 1024 Hz, never "update in progress"
    case 0xb: return 0x02;  // 24 h, BCD, no interrupts
    case 0xc: return 0;
    case 0xd: return 0x80;  // battery good
    default: return ram[i];
    }
}

void Rtc::out(u16 port, u8 v)
{
    if (port == 0x70) {
        index = v;
        return;
    }
    unsigned i = index & 0x7f;
    if (i >= 0xe)
        ram[i] = v;
}

}  // namespace vmm
