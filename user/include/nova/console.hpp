/*
 * Console output on the serial port (16550 UART, COM1 by default). The root
 * task must own the ports first: Console::init() obtains them from the
 * kernel with an H-bit delegation. Until that succeeded every output
 * function does nothing, so a program without its port cannot fault on it.
 * A program started by a launcher (nova/launch.hpp) prints into the ring it
 * shares with its launcher instead, and reads its input from there.
 */
#pragma once

#include <stdarg.h>

#include "abi/status.hpp"
#include "types.hpp"

namespace nova {

class Console
{
  public:
    static constexpr u16 COM1 = 0x3f8;

    // Obtain ports base..base+7 (ABI 9.6). The UART is used as the kernel left it.
    static Status init(u16 base = COM1);
    static bool ready();

    static void putc(char c);  // '\n' goes out as "\r\n"
    static void write(const char *s, size_t n);
    static void puts(const char *s);  // no newline added
    // A launched program's host input (what its launcher put into its ring): up to n bytes into
    // buf, their number; always 0 in a root task (read the UART yourself).
    static u32 input(u8 *buf, u32 n);
};

/*
 * printf-style output with the kernel's formatter (include/format.hpp: %s %c
 * %d %i %u %x %X %p %o %%, l/ll/z, '#' '0' '-', width). One call prints at
 * most 511 characters. Returns the number of characters printed.
 */
size_t printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
size_t vprintf(const char *fmt, va_list ap);

}  // namespace nova
