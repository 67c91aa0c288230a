/*
 * The conformance suite's environment: per-test resources, machine facts,
 * capability and memory helpers, the per-CPU service ECs that start threads
 * and handle exceptions, threads, worker ECs and child PDs.
 */
#include "format.hpp"
#include "string.hpp"
#include "suite.hpp"

extern "C" char _start[], _image_end[];  // user/linker.ld
extern "C" const u64 probe_fixups[], probe_fixups_end[];
extern "C" u8 nova_root_stack[];  // crt0.S: the root EC's stack block

unsigned tsc_khz = 1000000;
bool iommu_expected;
Ec_tls *root_tls;
Exc_record last_exc;
u64 recall_count;
u64 unexpected_exc;
Exc_hook exc_hook;
bool root_portals;

namespace {

// ---- stack pool ---------------------------------------------------------------------

constexpr unsigned NUM_STACKS = 40;
alignas(STACK_SIZE) u8 stacks[NUM_STACKS][STACK_SIZE];
bool stack_used[NUM_STACKS];

Ec_tls *tls_of(unsigned i) { return reinterpret_cast<Ec_tls *>(stacks[i] + STACK_SIZE - sizeof(Ec_tls)); }

Ec_tls *get_stack()
{
    for (unsigned i = 0; i < NUM_STACKS; i++)
        if (!stack_used[i]) {
            stack_used[i] = true;
            Ec_tls *tls = tls_of(i);
            *tls = Ec_tls{};
            return tls;
        }
    return nullptr;
}

void put_stack(Ec_tls *tls)
{
    for (unsigned i = 0; i < NUM_STACKS; i++)
        if (tls_of(i) == tls)
            stack_used[i] = false;
}

// The Ec_tls of the stack block containing `sp`, if it is one of ours.
Ec_tls *tls_from_sp(u64 sp)
{
    u64 root = reinterpret_cast<u64>(nova_root_stack);
    if (root_tls && sp > root && sp <= root + STACK_SIZE)
        return root_tls;
    u64 base = reinterpret_cast<u64>(stacks);
    if (sp <= base || sp > base + sizeof(stacks))
        return nullptr;
    return tls_of(static_cast<unsigned>((sp - 1 - base) / STACK_SIZE));
}

}  // namespace

// ---- Test -----------------------------------------------------------------------------

void Test::fail(const char *fmt, ...)
{
    if (failed)
        return;
    failed = true;
    va_list ap;
    va_start(ap, fmt);
    vformat(msg, sizeof(msg), fmt, ap);
    va_end(ap);
}

void Test::skip(const char *fmt, ...)
{
    skipped = true;
    va_list ap;
    va_start(ap, fmt);
    vformat(msg, sizeof(msg), fmt, ap);
    va_end(ap);
}

void Test::note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vformat(note_text, sizeof(note_text), fmt, ap);
    va_end(ap);
}

bool Test::add(Crd crd, Ec_tls *stack)
{
    if (n_owned == MAX_OWNED) {
        fail("suite: too many resources in one test");
        return false;
    }
    owned[n_owned++] = {crd, stack};
    return true;
}

u64 Test::sel(unsigned count)
{
    u64 s = alloc_sel(count);
    if (!s) {
        fail("suite: object selectors exhausted");
        return 0;
    }
    unsigned order = 0;
    while ((1u << order) < count)
        order++;
    return add(Crd::obj(s, order, OBJ_ALL), nullptr) ? s : 0;
}

void Test::own_mem(u64 virt, unsigned order) { add(Crd::mem(virt >> PAGE_BITS, order, OBJ_ALL), nullptr); }

void Test::own(Crd crd) { add(crd, nullptr); }

Ec_tls *Test::stack()
{
    Ec_tls *s = get_stack();
    if (!s) {
        fail("suite: stack pool exhausted");
        return nullptr;
    }
    return add(Crd(), s) ? s : nullptr;
}

void Test::cleanup()
{
    // Newest first: SCs before their ECs, portals before the blocks holding them.
    while (n_owned) {
        Owned &o = owned[--n_owned];
        if (!o.crd.is_null())
            revoke(o.crd, Revoke_flag::SELF);
    }
    // Stacks only once nothing can run on them any more.
    for (unsigned i = 0; i < MAX_OWNED; i++)
        if (owned[i].stack) {
            put_stack(owned[i].stack);
            owned[i].stack = nullptr;
        }
}

// ---- machine facts ----------------------------------------------------------------------

u64 rdtsc()
{
    u32 lo, hi;
    asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return static_cast<u64>(hi) << 32 | lo;
}

void cpuid(u32 leaf, u32 sub, u32 out[4])
{
    asm volatile("cpuid" : "=a"(out[0]), "=b"(out[1]), "=c"(out[2]), "=d"(out[3]) : "a"(leaf), "c"(sub));
}

bool cpu_online(unsigned cpu)
{
    const Hip_cpu *c = hip()->cpu(cpu);
    return c && c->online();
}

unsigned other_cpu()
{
    for (unsigned i = 0; i < NUM_CPU; i++)
        if (i != boot_cpu() && cpu_online(i))
            return i;
    return NO_CPU;
}

namespace {
u64 never_sm;  // a semaphore nobody ups: sleep_ms waits on it
}

bool sleep_ms(u64 ms)
{
    if (!never_sm) {
        u64 s = alloc_sel();
        if (!s || create_sm(s, SEL_ROOT_PD, 0) != Status::SUCCESS)
            return false;
        never_sm = s;
    }
    return sm_down(never_sm, deadline_ms(ms)).status == Status::COM_TIM;
}

bool wait_for(volatile u64 &v, u64 want, u64 ms)
{
    u64 end = deadline_ms(ms);
    while (v != want) {
        if (rdtsc() > end)
            return false;
        sleep_ms(1);
    }
    return true;
}

// ---- capabilities --------------------------------------------------------------------

u64 lookup_obj(u64 sel) { return pd_lookup(Crd::obj(sel, 0, 0)).crd.value(); }
u64 lookup_mem(u64 page) { return pd_lookup(Crd::mem(page, 0, 0)).crd.value(); }

Delegate_result delegate_obj(u64 from, u64 to, unsigned rights, u64 src_pd, u64 dst_pd)
{
    return pd_delegate(src_pd, dst_pd, Crd::obj(from, 0, OBJ_ALL), Item_meta(Item_meta::DELEGATE, to),
                       Crd::obj(to, 0, rights));
}

bool copy_cap(Test &t, u64 from, u64 to, unsigned rights)
{
    Delegate_result r = delegate_obj(from, to, rights);
    if (r.status != Status::SUCCESS) {
        t.fail("delegating capability %#lx to %#lx: %s", from, to, status_name(r.status));
        return false;
    }
    u64 got = lookup_obj(to);
    if (Crd(got).type() != Crd::OBJ) {
        t.fail("delegating capability %#lx to %#lx with rights %#x: nothing arrived (lookup %#lx)", from, to,
               rights, got);
        return false;
    }
    return true;
}

Status try_down(u64 sm) { return sm_down(sm, 1).status; }

// ---- module ---------------------------------------------------------------------------

namespace {
Module module;
bool module_done;

bool overlaps_other(u64 page)
{
    const Hip *h = hip();
    u64 a = page << PAGE_BITS;
    for (unsigned i = 0; i < h->num_mem_desc(); i++) {
        const Hip_mem *m = h->mem(i);
        if (m->type != Hip_mem::AVAILABLE && a + PAGE_SIZE > m->addr && a < m->addr + m->size)
            return true;
    }
    return false;
}

u64 scratch_next;  // next page number to hand out (downward), 0: not set up
u64 scratch_floor;
}  // namespace

const Module &root_module()
{
    if (module_done)
        return module;
    module_done = true;
    const Hip *h = hip();
    for (unsigned i = 0; i < h->num_mem_desc(); i++) {
        const Hip_mem *m = h->mem(i);
        if (m->type == Hip_mem::MODULE) {
            module.phys = m->addr;
            module.size = m->size;
            break;
        }
    }
    if (module.size) {
        const u8 *img = static_cast<const u8 *>(map_phys(module.phys, module.size, Perm_mem::R));
        if (img && is_mapped(img, module.size))
            module.image = img;
    }
    return module;
}

bool is_mapped(const void *addr, u64 size)
{
    u64 a = reinterpret_cast<u64>(addr);
    if (!size || a + size < a)
        return false;
    for (u64 p = a >> PAGE_BITS; p <= (a + size - 1) >> PAGE_BITS; p++) {
        Crd c(lookup_mem(p));
        if (c.type() != Crd::MEM)
            return false;
        p = ((c.base() + c.count()) > p ? c.base() + c.count() : p + 1) - 1;  // skip the whole node
    }
    return true;
}

bool needs_kernel_memory(Test &t, u64 mib)
{
    const Hip *h = hip();
    u64 have = 0;
    for (unsigned i = 0; i < h->num_mem_desc(); i++)
        if (h->mem(i)->type == Hip_mem::HYPERVISOR)
            have += h->mem(i)->size;
    if (have >= mib << 20)
        return true;
    t.skip("needs %lu MiB of kernel memory, the kernel has %lu KiB (a small machine)", mib, have >> 10);
    return false;
}

bool module_option(const char *name)
{
    const Hip *h = hip();
    for (unsigned i = 0; i < h->num_mem_desc(); i++) {
        const Hip_mem *m = h->mem(i);
        if (m->type != Hip_mem::MODULE)
            continue;
        if (!m->aux)
            return false;
        // The string up to the end of its page (command lines are short).
        static const char *cmdline;
        size_t max = PAGE_SIZE - (m->aux & 0xfff);
        if (!cmdline) {
            const char *c = static_cast<const char *>(map_phys(m->aux, max, Perm_mem::R));
            if (c && is_mapped(c, max))
                cmdline = c;
        }
        if (!cmdline)
            return false;
        // Space-separated tokens.
        size_t n = strlen(name);
        for (size_t p = 0; p < max && cmdline[p];) {
            while (p < max && cmdline[p] == ' ')
                p++;
            size_t q = p;
            while (q < max && cmdline[q] && cmdline[q] != ' ')
                q++;
            if (q - p == n && !memcmp(cmdline + p, name, n))
                return true;
            p = q;
        }
        return false;
    }
    return false;
}

// ---- memory -------------------------------------------------------------------------

u64 scratch_phys()
{
    if (!scratch_next) {
        const Hip *h = hip();
        u64 best_end = 0, best_start = 0;
        for (unsigned i = 0; i < h->num_mem_desc(); i++) {
            const Hip_mem *m = h->mem(i);
            if (m->type == Hip_mem::AVAILABLE && m->size > best_end - best_start) {
                best_start = align_up(m->addr, PAGE_SIZE);
                best_end = align_down(m->addr + m->size, PAGE_SIZE);
            }
        }
        if (best_end <= best_start || best_end - best_start < 64 * PAGE_SIZE)
            return 0;
        scratch_next = best_end >> PAGE_BITS;
        scratch_floor = (best_start >> PAGE_BITS) + 1;
        if (scratch_floor < 0x100)
            scratch_floor = 0x100;  // stay above the first MiB
    }
    while (scratch_next > scratch_floor) {
        u64 page = --scratch_next;
        if (!overlaps_other(page))
            return page << PAGE_BITS;
    }
    return 0;
}

void *scratch_page(Test &t)
{
    u64 phys = scratch_phys();
    u64 virt = alloc_virt(PAGE_SIZE);
    if (!phys || !virt) {
        t.fail("suite: no free RAM page or address");
        return nullptr;
    }
    Status s = map_phys_at(phys, virt, PAGE_SIZE, Perm_mem::RW);
    t.own_mem(virt, 0);
    if (s != Status::SUCCESS || Crd(lookup_mem(virt >> PAGE_BITS)).type() != Crd::MEM) {
        t.fail("suite: mapping a RAM page from the kernel (H bit) failed: %s", status_name(s));
        return nullptr;
    }
    return reinterpret_cast<void *>(virt);
}

Status share_image(u64 pd)
{
    // Every node of ours in [_start, _image_end); segments are aligned, so skip the gaps between them.
    u64 page = reinterpret_cast<u64>(_start) >> PAGE_BITS;
    u64 end = align_up(reinterpret_cast<u64>(_image_end), PAGE_SIZE) >> PAGE_BITS;
    unsigned shared = 0;
    for (unsigned n = 0; page < end; n++) {
        if (n == 65536)
            return Status::BAD_PAR;  // a kernel reporting nonsense
        Lookup_result l = pd_lookup(Crd::mem(page));
        if (l.status != Status::SUCCESS)
            return l.status;
        if (l.crd.type() != Crd::MEM || l.crd.base() > page || l.crd.base() + l.crd.count() <= page) {
            page++;
            continue;
        }
        Crd node = Crd::mem(l.crd.base(), l.crd.order(), l.crd.rights());
        Delegate_result r =
            pd_delegate(SEL_ROOT_PD, pd, node, Item_meta(Item_meta::DELEGATE, node.base()), node);
        if (r.status != Status::SUCCESS)
            return r.status;
        if (r.crd.is_null())
            return Status::BAD_PAR;
        page = node.base() + node.count();
        shared++;
    }
    return shared ? Status::SUCCESS : Status::BAD_PAR;
}

// ---- probes ---------------------------------------------------------------------------

bool is_probe_fault(u64 rip, u64 *fixup)
{
    for (const u64 *p = probe_fixups; p < probe_fixups_end; p += 2)
        if (p[0] == rip) {
            *fixup = p[1];
            return true;
        }
    return false;
}

// ---- service ECs ----------------------------------------------------------------------

namespace {

struct Service
{
    bool tried;
    u64 evt;
};
Service service[NUM_CPU];

// Exceptions the kernel delivers to user portals (10.2).
constexpr bool delivered(unsigned v) { return v <= Evt::XM && v != 2 && v != 8 && v != 9 && v != 0xf; }

void record(u64 id, const Utcb &u)
{
    Exc_record &r = last_exc;
    r.id = id;
    r.items = u.items;
    r.mtd = u.mtd;
    r.rip = u.rip;
    r.rsp = u.rsp;
    r.rflags = u.rflags;
    r.qual0 = u.qual[0];
    r.qual1 = u.qual[1];
    r.rax = u.rax, r.rbx = u.rbx, r.rcx = u.rcx, r.rdx = u.rdx;
    r.rsi = u.rsi, r.rdi = u.rdi, r.rbp = u.rbp;
    r.r8 = u.r8, r.r9 = u.r9, r.r10 = u.r10, r.r11 = u.r11;
    r.r12 = u.r12, r.r13 = u.r13, r.r14 = u.r14, r.r15 = u.r15;
    __atomic_fetch_add(&r.count, 1, __ATOMIC_SEQ_CST);
}

/*
 * Every message to a service portal: startup of a suite thread (the initial
 * rsp given to create_ec is the thread's Ec_tls), recall (resume unchanged),
 * or an exception: the test's hook, a probe fix-up, or an unexpected fault.
 */
void service_handler(u64 id, Utcb &u)
{
    if (id == Evt::STARTUP) {
        Ec_tls *tls = tls_from_sp(u.rsp);
        if (!tls || reinterpret_cast<u64>(tls) != u.rsp) {
            printf("suite: startup message with unknown stack %#lx\n", u.rsp);
            u.rip = reinterpret_cast<u64>(abort_stub);
            return;
        }
        u.rip = reinterpret_cast<u64>(thread_main);
        u.rsp -= 8;  // as if called: rsp = 8 mod 16 at function entry
        return;
    }
    record(id, u);
    if (id == Evt::RECALL) {
        __atomic_fetch_add(&recall_count, 1, __ATOMIC_SEQ_CST);
        if (exc_hook && exc_hook(id, u))
            return;
        u.mtd = 0;  // resume exactly as stopped
        return;
    }
    if (exc_hook && exc_hook(id, u))
        return;
    u64 fix;
    if (is_probe_fault(u.rip, &fix)) {
        u.rip = fix;
        return;
    }
    __atomic_fetch_add(&unexpected_exc, 1, __ATOMIC_SEQ_CST);
    Ec_tls *tls = tls_from_sp(u.rsp);
    printf("suite: unexpected exception %lu at rip %#lx (rsp %#lx, error %#lx, cr2 %#lx) in %s\n", id, u.rip,
           u.rsp, u.qual[0], u.qual[1], tls == root_tls ? "the root EC" : "a test EC");
    if (tls && tls == root_tls) {
        u.rip = reinterpret_cast<u64>(root_abort);
        u.rsp = reinterpret_cast<u64>(root_tls) - 8;
    } else
        u.rip = reinterpret_cast<u64>(abort_stub);
    u.rflags = 0x202;
}

bool make_service_portals(u64 block, u64 ec, bool with_recall)
{
    for (unsigned v = 0; v < NUM_EXC; v++) {
        bool want = delivered(v) || v == Evt::STARTUP || (with_recall && v == Evt::RECALL);
        if (!want)
            continue;
        if (create_pt(block + v, SEL_ROOT_PD, ec, MTD_EXC, reinterpret_cast<u64>(nova_portal_entry)) !=
                Status::SUCCESS ||
            pt_ctrl(block + v, v) != Status::SUCCESS)
            return false;
    }
    return true;
}

u64 service_ec[NUM_CPU];

u64 service_ec_of(unsigned cpu)
{
    if (service_ec[cpu])
        return service_ec[cpu];
    Ec_tls *tls = get_stack();
    u64 utcb = alloc_virt(PAGE_SIZE);
    u64 ec = alloc_sel();
    if (!tls || !utcb || !ec)
        return 0;
    tls->utcb = reinterpret_cast<Utcb *>(utcb);
    tls->handler = service_handler;
    if (create_ec_local(ec, SEL_ROOT_PD, cpu, utcb, reinterpret_cast<u64>(tls), 0) != Status::SUCCESS)
        return 0;
    service_ec[cpu] = ec;
    return ec;
}

}  // namespace

u64 service_evt(unsigned cpu)
{
    if (cpu >= NUM_CPU)
        return NO_EVT;
    Service &s = service[cpu];
    if (s.tried)
        return s.evt;
    s.tried = true;
    s.evt = NO_EVT;
    u64 ec = service_ec_of(cpu);
    u64 block = alloc_sel(NUM_EXC);
    if (ec && block && make_service_portals(block, ec, false))
        s.evt = block;
    return s.evt;
}

bool install_root_portals()
{
    u64 ec = service_ec_of(boot_cpu());
    root_portals = ec && make_service_portals(0, ec, true);
    return root_portals;
}

// ---- ECs ------------------------------------------------------------------------------

bool make_worker(Test &t, Worker &w, u64 pd, unsigned cpu, Portal_handler handler, u64 evt, void *arg)
{
    Ec_tls *tls = t.stack();
    u64 ec = t.sel();
    u64 utcb = alloc_virt(PAGE_SIZE);
    if (!tls || !ec)
        return false;
    if (!utcb) {
        t.fail("suite: virtual addresses exhausted");
        return false;
    }
    tls->utcb = reinterpret_cast<Utcb *>(utcb);
    tls->handler = handler;
    tls->arg = arg;
    Status s = create_ec_local(ec, pd, cpu, utcb, reinterpret_cast<u64>(tls), evt);
    if (s != Status::SUCCESS) {
        t.fail("create_ec (local worker on CPU %u): %s", cpu, status_name(s));
        return false;
    }
    w = {ec, tls, utcb};
    return true;
}

bool make_portal(Test &t, u64 &pt, u64 ec, u64 mtd, u64 id, u64 ip)
{
    pt = t.sel();
    if (!pt)
        return false;
    if (!ip)
        ip = reinterpret_cast<u64>(nova_portal_entry);
    Status s = create_pt(pt, SEL_ROOT_PD, ec, mtd, ip);
    if (s != Status::SUCCESS) {
        t.fail("create_pt: %s", status_name(s));
        return false;
    }
    if (id)
        s = pt_ctrl(pt, id);
    if (s != Status::SUCCESS) {
        t.fail("pt_ctrl: %s", status_name(s));
        return false;
    }
    return true;
}

extern "C" void thread_main()
{
    Ec_tls *tls = ec_tls();
    Thread *th = static_cast<Thread *>(tls->arg);
    th->fn(*th);
    sm_up(th->done);
    park();
}

bool spawn(Test *t, Thread &th, unsigned cpu, unsigned prio, Thread_fn fn, u64 evt, u32 quantum_us)
{
    if (evt == NO_EVT)
        evt = service_evt(cpu);
    if (evt == NO_EVT) {
        if (t)
            t->fail("suite: no service EC on CPU %u (create_ec/create_pt failed)", cpu);
        return false;
    }
    Ec_tls *tls = t ? t->stack() : get_stack();
    u64 sels = t ? t->sel(4) : alloc_sel(4);
    u64 utcb = alloc_virt(PAGE_SIZE);
    if (!tls || !sels || !utcb) {
        if (t)
            t->fail("suite: no stack, selectors or address for a thread");
        return false;
    }
    th.done = sels, th.ec = sels + 1, th.sc = sels + 2;
    th.cpu = cpu;
    th.fn = fn;
    th.tls = tls;
    th.utcb = utcb;
    th.progress = 0;
    tls->utcb = reinterpret_cast<Utcb *>(utcb);
    tls->handler = nullptr;
    tls->arg = &th;

    Status s = create_sm(th.done, SEL_ROOT_PD, 0);
    if (s == Status::SUCCESS)
        s = create_ec_global(th.ec, SEL_ROOT_PD, cpu, utcb, reinterpret_cast<u64>(tls), evt);
    if (s == Status::SUCCESS)
        s = create_sc(th.sc, SEL_ROOT_PD, th.ec, Qpd(prio, quantum_us));
    if (s != Status::SUCCESS) {
        if (t)
            t->fail("starting a thread on CPU %u (create_sm/create_ec/create_sc): %s", cpu, status_name(s));
        return false;
    }
    return true;
}

bool join(Thread &th, u64 ms) { return sm_down(th.done, deadline_ms(ms)).status == Status::SUCCESS; }

bool make_child(Test &t, Child_pd &c, unsigned cpu, Portal_handler handler, bool exc_portals, void *arg)
{
    Crd objs;
    if (exc_portals) {
        u64 evt = service_evt(cpu);
        if (evt == NO_EVT) {
            t.fail("suite: no service EC on CPU %u", cpu);
            return false;
        }
        objs = Crd::obj(evt, 5, OBJ_ALL);  // the child's selectors 0..31
    }
    c.pd = t.sel();
    if (!c.pd)
        return false;
    Status s = create_pd(c.pd, SEL_ROOT_PD, objs);
    if (s != Status::SUCCESS) {
        t.fail("create_pd (child): %s", status_name(s));
        return false;
    }
    s = share_image(c.pd);
    if (s != Status::SUCCESS) {
        t.fail("sharing our image with a child PD: %s", status_name(s));
        return false;
    }
    if (!make_worker(t, c.w, c.pd, cpu, handler, 0, arg))
        return false;
    return make_portal(t, c.pt, c.w.ec, 0, 0);
}
