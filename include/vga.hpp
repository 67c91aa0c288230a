/* VGA text-mode console (80x25 at physical 0xb8000) and the per-CPU spinners. */
#pragma once

#include "types.hpp"

namespace Vga {
void init(bool spinner);
/* Advance CPU cpu's spinner (a rotating glyph in the bottom rows). */
void spin(unsigned cpu);
}  // namespace Vga
