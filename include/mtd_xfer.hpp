/*
 * Architectural state transfer between an EC's saved user frame and a
 * handler's UTCB for exception, startup and recall messages (ABI 4.3, 5).
 * Exceptions move only GPRs, RSP, RIP, RFLAGS and QUAL (section 5, note 3).
 */
#pragma once

#include "abi/utcb.hpp"
#include "idt.hpp"

namespace Mtd_xfer {
/* Delivery: the state selected by mtd goes into the UTCB; items = 77, mtd field = mtd. */
void to_utcb(const Exc_frame &f, u64 mtd, u64 error, u64 cr2, Utcb &u);
/*
 * Reply: the state selected by the UTCB's mtd field goes back into the frame, RFLAGS
 * sanitised (note 1). False if the result cannot be resumed (non-canonical RIP).
 */
bool from_utcb(const Utcb &u, Exc_frame &f);
}  // namespace Mtd_xfer
