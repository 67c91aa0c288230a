/* 16550 UART console (115200 8N1, LF sent as CR LF). */
#pragma once

#include "types.hpp"

namespace Serial {
/* port 0 = no UART found; init() then does nothing. */
void init(u16 port);
}  // namespace Serial
