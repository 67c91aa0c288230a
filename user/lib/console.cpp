/*
 * Serial console of the SDK: polled 16550 output through ports the root
 * task obtained from the kernel, and printf on top of the kernel's
 * formatter (src/format.cpp, compiled into the SDK as well).
 */
#include "nova/console.hpp"
#include "format.hpp"
#include "nova/io.hpp"
#include "nova/runtime.hpp"

namespace nova {

namespace {

u16 uart;  // 0: no port yet, print nothing
constexpr u16 THR = 0, LSR = 5;
constexpr u8 LSR_THRE = 0x20;

void out(char c)
{
    // Bounded wait: a missing or wedged UART must not hang the program.
    for (unsigned i = 0; i < 100000 && !(inb(static_cast<u16>(uart + LSR)) & LSR_THRE); i++)
        pause();
    outb(static_cast<u16>(uart + THR), static_cast<u8>(c));
}

}  // namespace

Status Console::init(u16 base)
{
    if (uart)
        return Status::SUCCESS;
    if (base == 0 || base > 0xfff8)
        return Status::BAD_PAR;
    Status s = request_ports(base, 3);
    if (s == Status::SUCCESS)
        uart = base;
    return s;
}

bool Console::ready() { return uart != 0; }

void Console::putc(char c)
{
    if (!uart)
        return;
    if (c == '\n')
        out('\r');
    out(c);
}

void Console::write(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        putc(s[i]);
}

void Console::puts(const char *s)
{
    while (*s)
        putc(*s++);
}

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
