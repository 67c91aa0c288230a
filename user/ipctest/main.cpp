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
    asm volatile("pxor %%xmm3, %%xmm3" ::: "memory");  // the caller's SSE state must survive this
    u.data[0] = u.data[0] + 1;
    u.set_items(1, 0);
}

void ud_handler(u64, Utcb &u)
{
    u.rip += 2;  // skip the ud2
    u.mtd = Mtd::RIP_LEN;
}

}  // namespace

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
    asm volatile("movq %0, %%xmm3" : : "r"(0x1122334455667788ull));
    s = call(pt_sel);
    u64 xmm;
    asm volatile("movq %%xmm3, %0" : "=r"(xmm));
    check(s == Status::SUCCESS && u.data[0] == 2, "second call reuses the handler");
    check(xmm == 0x1122334455667788ull, "SSE register survives a call to an EC that clobbers it (A.9)");

    // #UD in the root EC: portal at event base 0 + 6.
    Handler_ec eh;
    u64 eh_sel = alloc_sel();
    check(create_handler_ec(eh, eh_sel, self_pd(), cpu, ud_handler) == Status::SUCCESS,
          "exception handler EC");
    check(create_portal(6, eh_sel, Mtd::RIP_LEN) == Status::SUCCESS, "portal at event 6");
    asm volatile("ud2");
    check(true, "resumed after ud2");

    // Semaphore timeout.
    u64 sm = alloc_sel();
    check(create_sm(sm, self_pd(), 0) == Status::SUCCESS, "create_sm");
    u64 now = __builtin_ia32_rdtsc();
    auto r = sm_down(sm, now + hip()->freq_tsc * 20ull);  // 20 ms
    u64 after = __builtin_ia32_rdtsc();
    check(r.status == Status::COM_TIM, "down with deadline times out");
    check(after >= now + hip()->freq_tsc * 20ull, "not before the deadline");

    // Interrupts: the PIT (ISA IRQ 0, GSI 2 on PCs through the usual override) through its GSI
    // semaphore, obtained from the kernel (selector 64 + GSI).
    u64 gsm = alloc_sel(), user_sm = alloc_sel();
    check(assign_gsi(gsm, 0, 64).status == Status::BAD_CPU, "assign_gsi to CPU 64: BAD_CPU");
    check(request_kernel_cap(Abi::ksel_gsi_sm(2), gsm) == Status::SUCCESS, "GSI semaphore 2 from the kernel");
    check(create_sm(user_sm, self_pd(), 0) == Status::SUCCESS &&
              assign_gsi(user_sm, 0, cpu).status == Status::BAD_CAP,
          "assign_gsi on a user semaphore: BAD_CAP");
    auto g = assign_gsi(gsm, 0, cpu);
    check(g.status == Status::SUCCESS && g.msi_addr == 0 && g.msi_data == 0, "assign_gsi of an I/O APIC GSI");
    check(request_ports(0x40, 2) == Status::SUCCESS, "PIT ports");
    // Channel 0, mode 0 (interrupt on terminal count), ~10 ms.
    asm volatile("outb %%al, $0x43" : : "a"(0x30));
    asm volatile("outb %%al, $0x40" : : "a"(11932 & 0xff));
    asm volatile("outb %%al, $0x40" : : "a"(11932 >> 8));
    u64 t0 = __builtin_ia32_rdtsc();
    auto d = sm_down(gsm, t0 + hip()->freq_tsc * 2000ull);  // 2 s at most
    check(d.status == Status::SUCCESS, "the PIT interrupt releases the GSI semaphore");

    printf("%u passed, %u failed\n", passed, failed);
    exit(failed ? EXIT_FAIL : EXIT_PASS);
}
