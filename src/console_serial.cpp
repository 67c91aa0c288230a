/*
 * Serial console sink on a 16550-compatible UART.
 */
#include "console.hpp"
#include "serial.hpp"
#include "x86.hpp"

namespace {

u16 base;

enum Reg : u16 { THR = 0, DLL = 0, IER = 1, DLM = 1, FCR = 2, LCR = 3, MCR = 4, LSR = 5, SCR = 7 };

void putc(char c)
{
    // Bounded wait: a missing or wedged UART must not hang the kernel.
    for (unsigned i = 0; i < 100000 && !(inb(base + LSR) & 0x20); i++)
        pause();
    outb(base + THR, static_cast<u8>(c));
}

void write(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n')
            putc('\r');
        putc(s[i]);
    }
}

Console_sink sink{write, nullptr};

}  // namespace

void Serial::init(u16 port)
{
    // The scratch register must hold what we write, else there is no UART.
    outb(port + SCR, 0x5a);
    if (inb(port + SCR) != 0x5a)
        return;

    base = port;
    outb(base + IER, 0);
    outb(base + LCR, 0x80);  // DLAB: divisor follows
    outb(base + DLL, 1);     // 115200 baud
    outb(base + DLM, 0);
    outb(base + LCR, 0x03);  // 8N1
    outb(base + FCR, 0x07);  // FIFOs on and cleared
    outb(base + MCR, 0x03);  // DTR, RTS
    Console::add(sink);
}
