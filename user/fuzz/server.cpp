/*
 * Event handling and the server PD's portals.
 *
 * event_handler serves every event portal of a worker PD and of the server
 * PD (portal id = event number). It knows one EC it works for (its Catcher):
 * an exception of that EC at an expected rip goes back to fz_catch, its
 * start-up goes to its entry point, a recall changes nothing. Everything
 * else (ECs the workers created, faults nobody expected, plain calls to an
 * event portal) is parked at fz_park, or now and then sent somewhere bogus,
 * which the kernel must survive (ABI 1.1: it kills the EC). An exception in
 * fz_raw after the hypercall is a violation, which the EC reports itself
 * from where the reply sends it (report_unexpected): a plain call to the
 * portal can look like it, but its caller does not go there.
 *
 * server_handler serves the echo and probe portals of the server PD.
 */
#include "fuzz.hpp"

extern "C" u64 fz_f_read(u64);
extern "C" char fz_f_read_end[];

namespace fuzz {

namespace {

constexpr u64 RF_TF = 0x100;

bool in(u64 v, u64 lo, u64 hi) { return v >= lo && v < hi; }

u64 bogus_rip(Rng &r)
{
    static constexpr u64 pool[] = {0x0,
                                   0x1,
                                   0x7ffffffff000ull,  // the last user page: never mapped (ABI 1.1)
                                   0x7fffffffffffull,
                                   0x800000000000ull,  // non-canonical
                                   0xdead00000000beefull,
                                   0xffff800000000000ull,  // kernel half
                                   0xffffffff80000000ull,
                                   0xfffffffffffffff0ull};
    u64 const rip = r.chance(200) ? r.next() : pool[r.below(sizeof(pool) / sizeof(pool[0]))];
    return in_image(rip) ? 0 : rip;  // none of our code (only the worker runs fz_raw on its stack)
}

// Park the EC that raised an event nobody expected; one time in eight something bogus instead.
void park(Catcher &c, Utcb &u)
{
    c.parked++;
    u.rip = reinterpret_cast<u64>(&fz_park);
    u.mtd = Mtd::RIP_LEN;
    switch (c.rng.below(16)) {
    case 0:  // resume at a bogus rip: the kernel must kill the EC, not crash (ABI 1.1)
        u.rip = bogus_rip(c.rng);
        c.bogus++;
        break;
    case 1:  // park with a bogus rsp (fz_park uses no stack)
        u.rsp = bogus_rip(c.rng);
        u.mtd |= Mtd::RSP;
        c.bogus++;
        break;
    case 2:  // park with random flags (the kernel keeps IF and clears IOPL, VM, ...; not TF)
        u.rflags = c.rng.next() & ~RF_TF;
        u.mtd |= Mtd::RFLAGS;
        c.bogus++;
        break;
    default: break;
    }
}

u64 probe_value[MAX_CPUS];

void probe_read(u64 arg)
{
    u64 k = arg & 0xf, addr = arg >> 4 << 4;  // the server's CPU index travels in the low bits
    probe_value[k] = fz_f_read(addr);
}

/*
 * Where the handler sends an EC that raised an exception in fz_raw after its hypercall (a
 * V_UNEXPECTED, event_handler), on the catcher's report stack: only an EC that waits for the reply
 * to its event gets here (a plain call to the portal gets the reply as a message, ABI 7.2), so the
 * EC itself records the violation; then it parks on its own stack (rsp: where it faulted; a local
 * EC finds its Ec_tls through it at its next portal entry).
 */
[[noreturn]] void report_unexpected(Catcher *c, u64 v, u64 rip, u64 cr2, u64 rsp)
{
    violation(V_UNEXPECTED, c->slot, 0, v, rip, cr2, c->last_call);
    c->last_v = v;
    c->last_rip = rip;
    c->last_cr2 = cr2;
    __atomic_add_fetch(&c->parked_self, 1, __ATOMIC_RELAXED);
    fz_park_on(rsp);
}

}  // namespace

long catch_fault(Catcher &c, void (*fn)(u64), u64 arg, u64 lo, u64 hi, u64 alt)
{
    c.lo = lo;
    c.hi = hi;
    c.alt = alt;
    c.vec = ~u64{0};
    __atomic_store_n(&c.armed, 1, __ATOMIC_SEQ_CST);
    int r = fz_try(fn, arg, &c.jb);
    __atomic_store_n(&c.armed, 0, __ATOMIC_SEQ_CST);
    return r ? static_cast<long>(c.vec) : -1;
}

void event_handler(u64 id, Utcb &u)
{
    auto &c = *static_cast<Catcher *>(ec_tls()->arg);
    u64 const v = id;
    u64 const rip = u.rip, rsp = u.rsp;
    u.set_items(0, 0);

    if (v == Evt::RECALL) {
        c.recalls++;
        u.mtd = 0;  // resume as it was
        return;
    }
    if (v == Evt::STARTUP) {
        u64 sp = __atomic_load_n(&c.start_sp, __ATOMIC_ACQUIRE);
        if (sp && rsp == sp && c.entry) {
            __atomic_store_n(&c.start_sp, 0, __ATOMIC_RELEASE);
            c.startups++;
            u.rip = reinterpret_cast<u64>(c.entry);
            u.mtd = Mtd::RIP_LEN;
            return;
        }
        park(c, u);
        return;
    }
    // The EC we work for raised this event: its rsp is in its stack, and it is not blocked in a
    // call (a plain call to an event portal leaves the rip and rsp of an earlier event in our UTCB).
    bool const own_stack = in(rsp, c.stack_lo, c.stack_hi) && !__atomic_load_n(&c.in_call, __ATOMIC_ACQUIRE);
    if (v < Evt::STARTUP && __atomic_load_n(&c.armed, __ATOMIC_ACQUIRE) &&
        (in(rip, c.lo, c.hi) || (c.alt && rip == c.alt && own_stack))) {
        c.vec = v;
        c.err = u.qual[0];
        c.cr2 = u.qual[1];
        c.rip = rip;
        c.caught++;
        __atomic_store_n(&c.armed, 0, __ATOMIC_RELEASE);
        u.rip = reinterpret_cast<u64>(&fz_catch);
        u.rsp = c.jb.rsp;
        u.rdi = reinterpret_cast<u64>(&c.jb);
        u.rsi = 0;
        u.rbp = 0;
        u.rflags = 0x202;  // clears TF (tf_syscall) and DF/AC, whatever the fault left
        u.mtd = Mtd::RIP_LEN | Mtd::RSP | Mtd::GPR_BSD | Mtd::RFLAGS;
        return;
    }
    // An exception right after a hypercall of fz_raw: the registers the kernel returned made
    // our own code fault, unless the chaos took our stack or code page away. Or a plain call to
    // the portal, whose message leaves the rip and rsp of an earlier event in our UTCB (the recall
    // of an EC in a hypercall: rip = fz_raw_ret), and nothing in the message tells the two apart
    // for sure (ABI 4.2: a caller can send any items word and state words). The reply does: only
    // the EC of an event resumes at the rip we give it, and reports there (docs/fuzz-findings.md,
    // F8).
    if (v < Evt::STARTUP && in(rsp, c.stack_lo, c.stack_hi) &&
        (in(rip, reinterpret_cast<u64>(fz_raw_ret), reinterpret_cast<u64>(fz_raw_end)))) {
        u64 const cr2 = u.qual[1];
        bool const chaos =
            v == Evt::PF && (in(cr2, c.stack_lo, c.stack_hi) ||
                             in(cr2, reinterpret_cast<u64>(_start), reinterpret_cast<u64>(_image_end)));
        if (!chaos) {
            u.rip = reinterpret_cast<u64>(&report_unexpected);
            u.rsp =
                reinterpret_cast<u64>(c.report_stack + sizeof(c.report_stack) / 8) - 8;  // as after a call
            u.rdi = reinterpret_cast<u64>(&c);
            u.rsi = v;
            u.rdx = rip;
            u.rcx = cr2;
            u.r8 = rsp;
            u.rax = u.rbx = u.rbp = u.r9 = u.r10 = u.r11 = u.r12 = u.r13 = u.r14 = u.r15 = 0;
            u.rflags = 0x202;
            u.mtd = Mtd::RIP_LEN | Mtd::RSP | Mtd::GPR_ACDB | Mtd::GPR_BSD | Mtd::GPR_R8_R15 | Mtd::RFLAGS;
            return;
        }
    }
    if (own_stack) {
        c.last_v = v;
        c.last_rip = rip;
        c.last_cr2 = u.qual[1];
        __atomic_add_fetch(&c.parked_self, 1, __ATOMIC_RELAXED);
    }
    park(c, u);
}

void server_handler(u64 id, Utcb &u)
{
    auto &c = *static_cast<Catcher *>(ec_tls()->arg);
    auto const k = static_cast<unsigned>(&c - sh.server.catcher);
    Rng &r = sh.server.rng[k];
    __atomic_add_fetch(&sh.server.calls[k], 1, __ATOMIC_RELAXED);
    u64 const items = u.items;
    unsigned const nu = static_cast<unsigned>(items & 0xffff),
                   nt = static_cast<unsigned>(items >> 16 & 0xffff);

    if ((id & ID_MASK) == PROBE_ID) {
        u64 const addr = u.data[0];
        long v = catch_fault(c, probe_read, (addr & ~u64{0xf}) | k, reinterpret_cast<u64>(&fz_f_read),
                             reinterpret_cast<u64>(fz_f_read_end), 0);
        u.data[0] = v < 0 ? probe_value[k] : 0;
        u.data[1] = v < 0 ? NO_FAULT : static_cast<u64>(v);
        u.data[2] = id;
        u.set_items(3, 0);
        return;
    }

    if (nt == 0 && nu >= 1) {  // the checked echo: the worker compares data[0]
        u.data[0] = ~u.data[0];
        u.data[1] = id;
        u.set_items(2, 0);
    } else {  // a random reply, with typed items out of our spaces
        unsigned ru = static_cast<unsigned>(r.below(5)), rt = static_cast<unsigned>(r.below(3));
        for (unsigned i = 0; i < ru; i++)
            u.data[i] = r.next();
        for (unsigned i = 0; i < rt; i++) {
            Crd crd;
            switch (r.below(4)) {
            case 0:
                crd = Crd::obj(S_RECV + r.below(u64{1} << S_RECV_ORDER), static_cast<unsigned>(r.skewed(3)),
                               static_cast<unsigned>(r.below(32)));
                break;
            case 1:
                crd = Crd::mem((S_MEM >> PAGE_BITS) + r.below(u64{1} << S_MEM_ORDER),
                               static_cast<unsigned>(r.skewed(3)), static_cast<unsigned>(r.below(8)));
                break;
            case 2: crd = Crd::mem(sh.image_first + r.below(sh.image_pages), 0, Perm_mem::R); break;
            default: crd = Crd(r.next()); break;
            }
            auto kind = static_cast<Item_meta::Kind>(r.below(4));
            u.item(i).set(crd, Item_meta(kind, r.skewed(40), r.chance(100) ? Item_meta::H : 0));
        }
        u.set_items(ru, rt);
    }

    // The windows for the next call: inside our receive ranges, so what arrives stays bounded.
    auto window = [&]() {
        switch (r.below(3)) {
        case 0:
            return Crd::obj(S_RECV + r.below(u64{1} << S_RECV_ORDER), static_cast<unsigned>(r.skewed(3)),
                            static_cast<unsigned>(r.below(32)));
        case 1:
            return Crd::mem((S_MEM >> PAGE_BITS) + r.below(u64{1} << S_MEM_ORDER),
                            static_cast<unsigned>(r.skewed(3)), static_cast<unsigned>(r.below(8)));
        default: return Crd();
        }
    };
    u.xlt = window().value();
    u.del = window().value();
    if (r.chance(4)) {  // empty the receive ranges now and then
        revoke(Crd::obj(S_RECV, S_RECV_ORDER), Revoke_flag::SELF);
        revoke(Crd::mem(S_MEM >> PAGE_BITS, S_MEM_ORDER), Revoke_flag::SELF);
    }
}

}  // namespace fuzz
