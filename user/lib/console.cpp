/*
 * Serial console of the SDK: polled 16550 output through ports the root
 * task obtained from the kernel, and printf on top of the kernel's
 * formatter (src/format.cpp, compiled into the SDK as well).
 */
#include "nova/console.hpp"
#include "format.hpp"
#include "nova/io.hpp"
#include "nova/launch.hpp"
#include "nova/runtime.hpp"
#include "string.hpp"

namespace nova {

namespace {

u16 uart;           // 0: no port yet, print nothing
Launch_ring *ring;  // a launched program prints into its ring instead (nova/launch.hpp)
constexpr u16 THR = 0, LSR = 5;
constexpr u8 LSR_THRE = 0x20;

void out(char c)
{
    // Bounded wait: a missing or wedged UART must not hang the program.
    for (unsigned i = 0; i < 100000 && !(inb(static_cast<u16>(uart + LSR)) & LSR_THRE); i++)
        pause();
    outb(static_cast<u16>(uart + THR), static_cast<u8>(c));
}

/*
 * Into the launcher's ring: whole writes under the ring's lock (our ECs on several CPUs), waiting
 * a bounded time for room when it is full (the launcher drains it), then dropping the rest. The
 * launcher is told at a line's end and when the ring fills; it also looks every few ms.
 */
void ring_write(const char *s, size_t n)
{
    for (unsigned i = 0; __atomic_exchange_n(&ring->lock, 1, __ATOMIC_ACQUIRE); i++)
        if (i == 100000000)
            return;  // a writer that never lets go: drop rather than hang
        else
            pause();
    bool tell = false;
    for (size_t k = 0; k < n; k++) {
        u32 head = ring->out_head;
        for (unsigned i = 0;
             head - __atomic_load_n(&ring->out_tail, __ATOMIC_ACQUIRE) >= Launch_ring::OUT_SIZE; i++) {
            if (i == 0)
                sm_up(LAUNCH_SEL_NOTIFY);
            if (i == 10000000) {
                ring->dropped += static_cast<u32>(n - k);
                k = n;
                break;
            }
            pause();
        }
        if (k == n)
            break;
        ring->out[head % Launch_ring::OUT_SIZE] = static_cast<u8>(s[k]);
        __atomic_store_n(&ring->out_head, head + 1, __ATOMIC_RELEASE);
        tell |= s[k] == '\n';
    }
    __atomic_store_n(&ring->lock, 0, __ATOMIC_RELEASE);
    if (tell)
        sm_up(LAUNCH_SEL_NOTIFY);
}

}  // namespace

u32 Console::input(u8 *buf, u32 n)
{
    if (!ring)
        return 0;
    u32 got = 0, tail = ring->in_tail;
    for (; got < n && tail != __atomic_load_n(&ring->in_head, __ATOMIC_ACQUIRE); got++, tail++)
        buf[got] = ring->in[tail % Launch_ring::IN_SIZE];
    __atomic_store_n(&ring->in_tail, tail, __ATOMIC_RELEASE);
    return got;
}

Status Console::init(u16 base)
{
    if (uart || ring)
        return Status::SUCCESS;
    if (launch_info()) {
        ring = reinterpret_cast<Launch_ring *>(launch_info()->ring);
        return Status::SUCCESS;
    }
    if (base == 0 || base > 0xfff8)
        return Status::BAD_PAR;
    Status s = request_ports(base, 3);
    if (s == Status::SUCCESS)
        uart = base;
    return s;
}

bool Console::ready() { return uart != 0 || ring; }

void Console::putc(char c)
{
    if (ring) {
        ring_write(&c, 1);
        return;
    }
    if (!uart)
        return;
    if (c == '\n')
        out('\r');
    out(c);
}

void Console::write(const char *s, size_t n)
{
    if (ring) {
        ring_write(s, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        putc(s[i]);
}

void Console::puts(const char *s) { write(s, strlen(s)); }

size_t vprintf(const char *fmt, va_list ap)
{
    char buf[512];
    size_t n = vformat(buf, sizeof(buf), fmt, ap);
    Console::write(buf, n);
    return Console::ready() ? n : 0;
}

size_t printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = vprintf(fmt, ap);
    va_end(ap);
    return n;
}

}  // namespace nova
