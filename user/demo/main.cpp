/*
 * Demo: a multi-server system in miniature, booted by `tools/run`.
 *
 *   console server  a PD that owns the serial port (I/O ports delegated to it from the kernel);
 *                   its portal prints the text a client puts into its UTCB
 *   timer server    a PD that owns the PIT (ports and its GSI semaphore); its portal sleeps the
 *                   caller for the number of milliseconds in the first UTCB word, waiting for a
 *                   real interrupt
 *   clients         global ECs with their own scheduling contexts (one per CPU when there are
 *                   several) that call both servers through portals; the servers run on the
 *                   clients' SCs (donation)
 *
 * The root task builds all of it with hypercalls, waits for the clients on a semaphore and ends
 * QEMU. Everything the kernel does here is ordinary NOVA ABI.
 */
#include <nova/nova.hpp>

#include "format.hpp"

using namespace nova;

namespace {

constexpr u64 TIMER_GSI = 2;  // ISA IRQ 0 (PIT) on PCs
constexpr unsigned CLIENTS = 2, ROUNDS = 3;

u64 console_pt, timer_pt, done_sm;
u64 timer_sm_in_child;  // the GSI semaphore's selector in the timer server's PD

void outb(u16 port, u8 v) { asm volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
u8 inb(u16 port)
{
    u8 v;
    asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

/* Console server: runs in its own PD, which owns ports 0x3f8-0x3ff and nothing else. */
void console_handler(u64, Utcb &u)
{
    const char *prefix = "[console] ";
    auto put = [](char c) {
        while (!(inb(0x3fd) & 0x20)) {
        }
        outb(0x3f8, static_cast<u8>(c));
    };
    for (const char *p = prefix; *p; p++)
        put(*p);
    const char *text = reinterpret_cast<const char *>(u.data);
    for (unsigned i = 0; i < u.untyped() * 8 && text[i]; i++) {
        if (text[i] == '\n')
            put('\r');
        put(text[i]);
    }
    u.set_items(0, 0);
}

/* Timer server: one-shot PIT countdown, then wait for its interrupt on the GSI semaphore. */
void timer_handler(u64, Utcb &u)
{
    u64 ms = u.data[0] ? u.data[0] : 1;
    for (u64 left = ms; left;) {
        u64 chunk = left > 50 ? 50 : left;  // the PIT counts at most ~54 ms
        u32 count = static_cast<u32>(1193182 * chunk / 1000);
        outb(0x43, 0x30);  // channel 0, mode 0: interrupt on terminal count
        outb(0x40, count & 0xff);
        outb(0x40, static_cast<u8>(count >> 8));
        sm_down(timer_sm_in_child);
        left -= chunk;
    }
    u.set_items(0, 0);
}

void say(const char *fmt, unsigned a, unsigned b, unsigned c)
{
    Utcb &u = utcb();
    char *text = reinterpret_cast<char *>(u.data);
    size_t n = format(text, 256, fmt, a, b, c);
    u.set_items(static_cast<unsigned>((n + 8) / 8), 0);
    call(console_pt);
}

/* A client: a global EC started through its startup portal. */
[[noreturn]] void client_main()
{
    unsigned id = static_cast<unsigned>(reinterpret_cast<u64>(ec_tls()->arg));
    for (unsigned i = 1; i <= ROUNDS; i++) {
        utcb().data[0] = 100 * (u64{id} + 1);
        utcb().set_items(1, 0);
        call(timer_pt);
        u64 t = __builtin_ia32_rdtsc() / (hip()->freq_tsc ? hip()->freq_tsc : 1);
        say("client %u: tick %u after %u ms of uptime\n", id, i, static_cast<unsigned>(t));
    }
    sm_up(done_sm);
    reply();  // a global EC without a caller stops here for good
}

u64 client_stacks[CLIENTS];

/* Startup portal: set the new client's rip and rsp (ABI 10.2). */
void startup_handler(u64 id, Utcb &u)
{
    u.rip = reinterpret_cast<u64>(&client_main);
    u.rsp = client_stacks[id] - 8;  // as after a call: keeps the ABI's stack alignment
    u.mtd = Mtd::RIP_LEN | Mtd::RSP;
}

bool ok(Status s, const char *what)
{
    if (s != Status::SUCCESS)
        printf("demo: %s failed: %s\n", what, status_name(s));
    return s == Status::SUCCESS;
}

}  // namespace

int main(const Hip *h, unsigned cpu)
{
    Console::init();
    printf("demo: a console server, a timer server and %u clients on %u CPUs\n", CLIENTS,
           h->num_cpus_online());

    Child console, timer;
    if (!ok(create_child(console, cpu, console_handler), "console server PD") ||
        !ok(create_child(timer, cpu, timer_handler), "timer server PD"))
        exit(EXIT_FAIL);
    console_pt = console.pt;
    timer_pt = timer.pt;

    // Resources straight from the kernel into the servers (H bit, ABI 9.6).
    constexpr u64 H_DELEGATE = 0x801;
    auto ports = [&](u64 pd, u16 base, unsigned order) {
        return pd_delegate(self_pd(), pd, Crd::pio(base, order, 7), Item_meta(H_DELEGATE),
                           Crd::pio(base, order, 7))
            .status;
    };
    u64 gsm = alloc_sel();
    timer_sm_in_child = 0x100;
    if (!ok(ports(console.pd, 0x3f8, 3), "serial ports for the console server") ||
        !ok(ports(timer.pd, 0x40, 2), "PIT ports for the timer server") ||
        !ok(request_kernel_cap(Abi::ksel_gsi_sm(TIMER_GSI), gsm), "PIT GSI semaphore") ||
        !ok(pd_delegate(self_pd(), timer.pd, Crd::obj(gsm, 0, 0x1f), Item_meta(Item_meta::DELEGATE, 0),
                        Crd::obj(timer_sm_in_child, 0, 0x1f))
                .status,
            "GSI semaphore for the timer server") ||
        !ok(assign_gsi(gsm, 0, cpu).status, "assign_gsi"))
        exit(EXIT_FAIL);
    printf("demo: servers ready (console PD sel %#llx, timer PD sel %#llx, PIT on GSI %llu)\n",
           static_cast<unsigned long long>(console.pd), static_cast<unsigned long long>(timer.pd),
           static_cast<unsigned long long>(TIMER_GSI));

    done_sm = alloc_sel();
    if (!ok(create_sm(done_sm, self_pd(), 0), "semaphore"))
        exit(EXIT_FAIL);

    for (unsigned i = 0; i < CLIENTS; i++) {
        // Each client: its own event base (only the startup portal is used), stack, UTCB, SC.
        // The startup handler must run on the client's CPU (an event portal of another CPU
        // kills the EC: ABI 10.5 "PT wrong CPU").
        unsigned on = h->num_cpus_online() > 1 ? i % 2 : cpu;
        u64 ebase = alloc_sel(32);
        u64 ec = alloc_sel(), sc = alloc_sel();
        auto stack = static_cast<u8 *>(alloc(STACK_SIZE, STACK_SIZE));
        u64 utcb_addr = alloc_virt(PAGE_SIZE);
        Handler_ec starter;
        if (!stack || !utcb_addr ||
            !ok(create_handler_ec(starter, alloc_sel(), self_pd(), on, startup_handler), "startup EC") ||
            !ok(create_portal(ebase + Abi::Evt::STARTUP, starter.sel, Mtd::RIP_LEN | Mtd::RSP, i),
                "startup portal"))
            exit(EXIT_FAIL);
        auto tls = reinterpret_cast<Ec_tls *>(stack + STACK_SIZE - sizeof(Ec_tls));
        tls->utcb = reinterpret_cast<Utcb *>(utcb_addr);
        tls->arg = reinterpret_cast<void *>(static_cast<u64>(i));
        client_stacks[i] = reinterpret_cast<u64>(tls);
        if (!ok(create_ec_global(ec, self_pd(), on, utcb_addr, client_stacks[i], ebase), "client EC") ||
            !ok(create_sc(sc, self_pd(), ec, Qpd(10, 10000)), "client SC"))
            exit(EXIT_FAIL);
        printf("demo: client %u runs on CPU %u\n", i, on);
    }

    for (unsigned i = 0; i < CLIENTS; i++)
        sm_down(done_sm);
    printf("demo: all clients done; every line above from [console] came through the console server\n");
    exit(EXIT_PASS);
}
