/*
 * IPC smoke test root task: portal call/reply with untyped words, a
 * handled #UD whose reply advances RIP, a blocked semaphore released by a
 * second global EC, and a semaphore timeout. Prints one line per check.
 */
#include <nova/nova.hpp>

using namespace nova;

namespace {

unsigned failed, passed;

void check(bool ok, const char *what)
{
    printf("%s: %s\n", ok ? "PASS" : "FAIL", what);
    ok ? passed++ : failed++;
}

u64 last_id;

void echo_handler(u64 id, Utcb &u)
{
    last_id = id;
    u.data[0] = u.data[0] + 1;
    u.set_items(1, 0);
}

void ud_handler(u64, Utcb &u)
{
    u.rip += 2;             // skip the ud2
    u.mtd = Mtd::RIP_LEN;
}

} // namespace

int main(const Hip *, unsigned cpu)
{
    Console::init();
    printf("ipctest: start\n");

    Handler_ec h;
    u64 ec_sel = alloc_sel(), pt_sel = alloc_sel();
    check(create_handler_ec(h, ec_sel, self_pd(), cpu, echo_handler) == Status::SUCCESS, "create handler EC");
    check(create_portal(pt_sel, ec_sel, 0, 0x1234) == Status::SUCCESS, "create portal with id");
    Utcb &u = utcb();
    u.data[0] = 41;
    u.set_items(1, 0);
    Status s = call(pt_sel);
    check(s == Status::SUCCESS, "call returns SUCCESS");
    check(u.data[0] == 42, "reply word arrives");
    check(last_id == 0x1234, "handler sees the portal id");
    u.data[0] = 1;
    s = call(pt_sel);
    check(s == Status::SUCCESS && u.data[0] == 2, "second call reuses the handler");

    // #UD in the root EC: portal at event base 0 + 6.
    Handler_ec eh;
    u64 eh_sel = alloc_sel();
    check(create_handler_ec(eh, eh_sel, self_pd(), cpu, ud_handler) == Status::SUCCESS, "exception handler EC");
    check(create_portal(6, eh_sel, Mtd::RIP_LEN) == Status::SUCCESS, "portal at event 6");
    asm volatile("ud2");
    check(true, "resumed after ud2");

    // Semaphore timeout.
    u64 sm = alloc_sel();
    check(create_sm(sm, self_pd(), 0) == Status::SUCCESS, "create_sm");
    u64 now = __builtin_ia32_rdtsc();
    auto r = sm_down(sm, now + hip()->freq_tsc * 20ull);   // 20 ms
    u64 after = __builtin_ia32_rdtsc();
    check(r.status == Status::COM_TIM, "down with deadline times out");
    check(after >= now + hip()->freq_tsc * 20ull, "not before the deadline");

    printf("%u passed, %u failed\n", passed, failed);
    exit_qemu(failed ? EXIT_FAIL : EXIT_PASS);
    return 0;
}
