/*
 * IPC (ABI 7.1, 7.2, 10): call and reply between ECs on one CPU, event
 * messages (exceptions, startup, recall) to an EC's event portals, and the
 * kill of an EC with its effects on callers (ABI 10.5).
 */
#pragma once

#include "abi/status.hpp"
#include "types.hpp"

class Ec;
class Pt;
class Sc;
struct Exc_frame;

namespace Ipc {
/*
 * Fast paths (issue: call and reply without typed items between ECs of one CPU): no locks, no
 * allocation, no loops over items, no scheduler. They return when anything is unusual (a
 * typed item, a busy or dead callee, an event reply, a recall, a retired SC, ...), and the
 * hypercall continues on the general path, which gives the same result.
 */
void call_fast(Ec *self, u64 sel);
void reply_fast(Ec *self);
/* call: returns only on failure (the status); success leaves through the callee. */
Status call(Ec *self, u64 sel, bool no_block);
[[noreturn]] void reply(Ec *self);
/* An exception of the current EC (frame at the top of the stack) becomes event n. */
[[noreturn]] void exception(Ec *self, unsigned n, u64 error, u64 cr2);
}  // namespace Ipc

/*
 * For the scheduler (src/sched.cpp), when it picks an EC: messages due before it runs user code
 * (the startup message of a global EC, a pending recall, an event whose handler was busy), the
 * next step of a cross-CPU call's clone, and the end of a retired SC's call chain.
 */
[[noreturn]] void deliver_startup(Ec *ec);
[[noreturn]] void deliver_recall(Ec *ec);
[[noreturn]] void deliver_pending(Ec *ec);
[[noreturn]] void xcpu_step(Sc *sc, Ec *clone);
void abandon_chain(Sc *sc);
/* ec stops helping (the EC it helped is free or dead, or ec's activation goes): drop the link. */
void stop_helping(Ec *ec);

/*
 * Kill the current EC (ABI 10.5): print the line, release its caller (a caller waiting for an
 * event reply is killed too, and so on up the chain: iteratively), run something else.
 */
[[noreturn]] void kill_current(const Exc_frame &f, const char *reason);
