/*
 * Port I/O. A user PD may only touch ports it holds capabilities for (ABI
 * 2.6); anything else raises #GP (event 13). See nova::request_ports().
 */
#pragma once

#include "types.hpp"

namespace nova {

inline u8 inb(u16 port)
{
    u8 v;
    asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

inline void outb(u16 port, u8 v) { asm volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
inline void outw(u16 port, u16 v) { asm volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
inline void outl(u16 port, u32 v) { asm volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }

inline void pause() { asm volatile("pause"); }

}  // namespace nova
