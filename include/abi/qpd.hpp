/*
 * Quantum/priority descriptor, ARG4 of create_sc (ABI 6.1): priority in bits
 * 7:0, quantum in microseconds in bits 43:12; bits 11:8 and 63:44 ignored.
 */
#pragma once

#include "../types.hpp"

class Qpd
{
    u64 val;

  public:
    static constexpr unsigned MAX_PRIO = 127;  // priorities 1..127; 0 belongs to the idle SC

    constexpr explicit Qpd(u64 v) : val(v) {}
    constexpr Qpd(unsigned prio, u32 quantum_us) : val(static_cast<u64>(quantum_us) << 12 | (prio & 0xff)) {}

    constexpr unsigned prio() const { return static_cast<unsigned>(val & 0xff); }
    constexpr u32 quantum() const { return static_cast<u32>(val >> 12); }
    constexpr u64 value() const { return val; }

    // create_sc answers BAD_PAR unless this holds.
    constexpr bool valid() const { return prio() != 0 && prio() <= MAX_PRIO && quantum() != 0; }
};
