/*
 * Handler ECs, portals and child PDs of the SDK runtime, and the optional
 * exception reporter of the root EC.
 */
#include "nova/console.hpp"
#include "nova/runtime.hpp"

extern "C" char _start[];      // crt0: first byte of the program image (linker script puts .text.start first)
extern "C" char _image_end[];  // user/linker.ld: end of the last segment

namespace nova {

namespace {

u64 exc_block_sm;  // handler of a fatal exception waits here if QEMU cannot be left

// Exceptions the kernel delivers to a portal (10.2); the others never reach user mode.
constexpr bool delivered(unsigned v) { return v <= Evt::XM && v != 2 && v != 8 && v != 9 && v != 0xf; }

const char *exc_name(unsigned v)
{
    static const char *const names[] = {"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "-",
                                        "#TS", "#NP", "#SS", "#GP", "#PF", "-",   "#MF", "#AC", "#MC", "#XM"};
    return v < sizeof(names) / sizeof(names[0]) ? names[v] : "?";
}

void report_exception(u64 id, Utcb &u)
{
    unsigned v = static_cast<unsigned>(id);
    printf("nova: exception %u (%s) rip %#lx rsp %#lx err %#lx cr2 %#lx\n", v, exc_name(v), u.rip, u.rsp,
           u.qual[0], u.qual[1]);
    exit_qemu(EXIT_FAIL);
    // No way out: keep the faulting EC blocked rather than let it fault again.
    for (;;)
        sm_down(exc_block_sm);
}

/*
 * Delegate our memory nodes from `page` on to `pd` at the same addresses,
 * until `end` (exclusive) or, with stop_at_gap, the first page we do not own.
 */
Status share_nodes(u64 pd, u64 page, u64 end, bool skip_gaps)
{
    for (unsigned n = 0; page < end; n++) {
        if (n == 4096)
            return Status::BAD_PAR;  // guard against a kernel that reports nonsense
        Lookup_result l = pd_lookup(Crd::mem(page));
        if (l.status != Status::SUCCESS)
            return l.status;
        if (l.crd.type() != Crd::MEM || l.crd.base() > page) {
            if (!skip_gaps)
                return Status::BAD_PAR;
            page++;  // a hole between segments: go on to the end
            continue;
        }
        Crd node = Crd::mem(l.crd.base(), l.crd.order(), l.crd.rights());
        Item_meta meta(Item_meta::DELEGATE, node.base());
        Delegate_result r = pd_delegate(self_pd(), pd, node, meta, node);
        if (r.status != Status::SUCCESS)
            return r.status;
        if (r.crd.is_null())
            return Status::BAD_PAR;
        u64 next = node.base() + node.count();
        if (next <= page)
            return Status::BAD_PAR;
        page = next;
    }
    return Status::SUCCESS;
}

struct Thread_start
{
    void (*fn)();
    u64 rsp;
} start_of;

void start_handler(u64, Utcb &u)
{
    u.rip = reinterpret_cast<u64>(start_of.fn);
    u.rsp = start_of.rsp;
    u.mtd = Mtd::RIP_LEN | Mtd::RSP;
}

}  // namespace

Status create_handler_ec(Handler_ec &out, u64 sel, u64 pd, unsigned cpu, Portal_handler handler, u64 evt)
{
    void *stack = alloc(STACK_SIZE, STACK_SIZE);
    u64 utcb_addr = alloc_virt(PAGE_SIZE);
    if (!stack || !utcb_addr)
        return Status::OOM;
    auto *tls = reinterpret_cast<Ec_tls *>(static_cast<u8 *>(stack) + STACK_SIZE - sizeof(Ec_tls));
    tls->utcb = reinterpret_cast<Utcb *>(utcb_addr);
    tls->handler = handler;
    tls->arg = nullptr;
    tls->reserved = 0;

    Status s = create_ec_local(sel, pd, cpu, utcb_addr, reinterpret_cast<u64>(tls), evt);
    if (s != Status::SUCCESS)
        return s;
    out = {sel, tls, utcb_addr};
    return Status::SUCCESS;
}

Status create_portal(u64 sel, u64 ec, u64 mtd, u64 id)
{
    Status s = create_pt(sel, self_pd(), ec, mtd, reinterpret_cast<u64>(&nova_portal_entry));
    if (s != Status::SUCCESS || id == 0)
        return s;
    return pt_ctrl(sel, id);
}

Status share_memory(u64 pd, u64 virt, u64 size)
{
    if (size == 0)
        return Status::SUCCESS;
    if (virt + size < virt || virt + size > USER_ADDR)
        return Status::BAD_PAR;
    // Holes between the image's segments (a segment aligned above the page size) are skipped.
    return share_nodes(pd, virt >> PAGE_BITS, align_up(virt + size, PAGE_SIZE) >> PAGE_BITS, true);
}

Status create_child(Child &out, unsigned cpu, Portal_handler handler, u64 mtd)
{
    u64 sel = alloc_sel(4);
    if (!sel)
        return Status::OOM;
    Child c{sel, sel + 1, sel + 2, 0};

    Status s = create_pd(c.pd, self_pd());
    if (s == Status::SUCCESS)
        s = share_nodes(c.pd, reinterpret_cast<u64>(_start) >> PAGE_BITS,
                        align_up(reinterpret_cast<u64>(_image_end), PAGE_SIZE) >> PAGE_BITS, true);
    Handler_ec h{};
    if (s == Status::SUCCESS)
        s = create_handler_ec(h, c.ec, c.pd, cpu, handler);
    if (s == Status::SUCCESS)
        s = create_portal(c.pt, c.ec, mtd);
    if (s != Status::SUCCESS)
        return s;
    c.utcb_addr = h.utcb_addr;
    out = c;
    return Status::SUCCESS;
}

Status catch_exceptions(unsigned cpu)
{
    u64 sel = alloc_sel(2);
    if (!sel)
        return Status::OOM;
    Status s = create_sm(sel + 1, self_pd(), 0);
    if (s != Status::SUCCESS)
        return s;
    exc_block_sm = sel + 1;

    Handler_ec h{};
    s = create_handler_ec(h, sel, self_pd(), cpu, report_exception);
    for (unsigned v = 0; s == Status::SUCCESS && v <= Evt::XM; v++)
        if (delivered(v))
            s = create_portal(v, h.sel, Mtd::RIP_LEN | Mtd::RSP | Mtd::QUAL, v);
    return s;
}

bool start_thread(unsigned cpu, unsigned prio, void (*fn)())
{
    u64 evt = alloc_sel(32), hsel = alloc_sel(), ec = alloc_sel(), sc = alloc_sel();
    auto stack = static_cast<u8 *>(alloc(STACK_SIZE, STACK_SIZE));
    u64 utcb_addr = alloc_virt(PAGE_SIZE);
    if (!evt || !sc || !stack || !utcb_addr)
        return false;
    auto tls = reinterpret_cast<Ec_tls *>(stack + STACK_SIZE - sizeof(Ec_tls));
    *tls = Ec_tls{reinterpret_cast<Utcb *>(utcb_addr), nullptr, nullptr, 0};
    start_of = {fn, reinterpret_cast<u64>(tls) - 8};
    Handler_ec h;
    return create_handler_ec(h, hsel, self_pd(), cpu, start_handler) == Status::SUCCESS &&
           create_portal(evt + Evt::STARTUP, hsel, Mtd::RIP_LEN | Mtd::RSP) == Status::SUCCESS &&
           create_ec_global(ec, self_pd(), cpu, utcb_addr, reinterpret_cast<u64>(tls), evt) ==
               Status::SUCCESS &&
           create_sc(sc, self_pd(), ec, Qpd(prio, 10000)) == Status::SUCCESS;
}

}  // namespace nova

// Called by nova_portal_entry (crt0.S) on a fresh stack; the reply follows when this returns.
extern "C" void nova_portal_dispatch(u64 id, nova::Ec_tls *tls)
{
    if (tls->handler)
        tls->handler(id, *tls->utcb);
    else
        tls->utcb->set_items(0, 0);
}
