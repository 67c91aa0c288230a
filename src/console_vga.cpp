/*
 * VGA text console. Writes go to page 0 of text memory (physical 0xb8000,
 * the page that is displayed after a BIOS boot). With `spinner` the bottom
 * rows are reserved: one cell per CPU shows a glyph that turns on every event.
 */
#include "console.hpp"
#include "memory.hpp"
#include "vga.hpp"

namespace {

constexpr unsigned COLS = 80, ROWS = 25, SPIN_ROWS = 4;
constexpr u16 ATTR = 0x0700;

volatile u16 *screen;
unsigned rows = ROWS;  // rows used for text (spinner rows excluded)
unsigned col, row;

void clear_rows(unsigned from, unsigned to)
{
    for (unsigned i = from * COLS; i < to * COLS; i++)
        screen[i] = ATTR | ' ';
}

void newline()
{
    col = 0;
    if (++row < rows)
        return;
    for (unsigned i = 0; i < (rows - 1) * COLS; i++)
        screen[i] = screen[i + COLS];
    clear_rows(rows - 1, rows);
    row = rows - 1;
}

void write(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\n')
            newline();
        else if (c == '\f') {
            clear_rows(0, rows);
            row = col = 0;
        } else if (c == '\r')
            col = 0;
        else {
            screen[row * COLS + col] = ATTR | static_cast<u8>(c);
            if (++col == COLS)
                newline();
        }
    }
}

Console_sink sink{write, nullptr};

}  // namespace

void Vga::init(bool spinner)
{
    screen = phys_to_virt<volatile u16>(0xb8000);
    if (spinner) {
        rows = ROWS - SPIN_ROWS;
        clear_rows(rows, ROWS);
    }
    clear_rows(0, rows);
    Console::add(sink);
}

void Vga::spin(unsigned cpu)
{
    if (!screen || rows == ROWS || cpu >= SPIN_ROWS * COLS)
        return;
    static const char glyph[4] = {'-', '\\', '|', '/'};
    volatile u16 &cell = screen[rows * COLS + cpu];
    unsigned next = 0;
    for (unsigned i = 0; i < 4; i++)
        if ((cell & 0xff) == static_cast<u8>(glyph[i]))
            next = (i + 1) % 4;
    cell = 0x0a00 | static_cast<u8>(glyph[next]);
}
