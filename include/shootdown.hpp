/*
 * TLB shootdown (src/shootdown.cpp).
 */
#pragma once

#include "cpu.hpp"

namespace Shootdown {
/* Flush user TLB entries (and I/O bitmaps) of the CPUs that run one of f's PDs right now;
   returns when all have done so. */
void run(const Tlb_flush &f);
/* The IPI handler: answer a flush request addressed to this CPU. */
void answer();
}  // namespace Shootdown
