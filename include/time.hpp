/*
 * Time keeping: TSC frequency calibrated once at boot against the best
 * reference available (HPET, then ACPI PM timer, then PIT channel 2).
 */
#pragma once

#include "types.hpp"

struct Acpi_info;

namespace Time {
extern u32 tsc_khz;
extern const char *source;  // which reference calibrated the TSC
void calibrate(const Acpi_info &acpi);
void udelay(u64 us);  // busy wait using the TSC (after calibration)
inline u64 ms_to_tsc(u64 ms) { return ms * tsc_khz; }
}  // namespace Time
