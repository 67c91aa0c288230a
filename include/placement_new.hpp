/* Placement new for the freestanding kernel (there is no <new> without the hosted library). */
#pragma once

#include <stddef.h>

inline void *operator new(size_t, void *p) noexcept { return p; }
inline void operator delete(void *, void *) noexcept {}
