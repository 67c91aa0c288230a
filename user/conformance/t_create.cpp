/*
 * Checklist D: the creation hypercalls (ABI 7.3-7.7): success, every
 * validation step, and the order of the steps where their statuses differ
 * (the first failing step decides). Capabilities with reduced rights are
 * made with pd_ctrl delegate into our own object space.
 */
#include "suite.hpp"

namespace {

constexpr u64 QUANTUM = 10000;

bool new_sm(Test &t, u64 sel, u64 count = 0)
{
    Status s = create_sm(sel, SEL_ROOT_PD, count);
    if (s != Status::SUCCESS)
        t.fail("create_sm(%#lx): %s", sel, status_name(s));
    return s == Status::SUCCESS;
}

// A local EC in `pd` that is never called (fresh UTCB address).
bool new_local(Test &t, u64 sel, u64 pd = SEL_ROOT_PD, unsigned cpu = NO_CPU)
{
    Status s = create_ec_local(sel, pd, cpu == NO_CPU ? boot_cpu() : cpu, alloc_virt(PAGE_SIZE), 0, 0);
    if (s != Status::SUCCESS)
        t.fail("create_ec (local): %s", status_name(s));
    return s == Status::SUCCESS;
}

// A global EC without an SC: it never runs.
bool new_global(Test &t, u64 sel)
{
    Status s = create_ec_global(sel, SEL_ROOT_PD, boot_cpu(), alloc_virt(PAGE_SIZE), 0, 0);
    if (s != Status::SUCCESS)
        t.fail("create_ec (global): %s", status_name(s));
    return s == Status::SUCCESS;
}

// `from` delegated to a fresh selector with `rights`; 0 (test failed) when nothing arrived.
u64 reduced(Test &t, u64 from, unsigned rights)
{
    u64 s = t.sel();
    return s && copy_cap(t, from, s, rights) ? s : 0;
}

u64 obj_crd(u64 sel, unsigned rights) { return Crd::obj(sel, 0, rights).value(); }

unsigned offline_cpu()
{
    for (unsigned i = 0; i < NUM_CPU; i++)
        if (!cpu_online(i))
            return i;
    return NO_CPU;
}

bool has_virt() { return hip()->api_flg & (Hip::FEAT_VMX | Hip::FEAT_SVM); }

// ---- create_sm ---------------------------------------------------------------------------

void d41(Test &t)
{
    u64 s = t.sel();
    REQUIRE(s);
    CHECK_ST(create_sm(s, SEL_ROOT_PD, 0), Status::SUCCESS, "create_sm on a free selector");
    CHECK_ST(create_sm(s, SEL_ROOT_PD, 0), Status::BAD_CAP, "create_sm again on the same selector");
    u64 l = lookup_obj(s);
    CHECK(l == obj_crd(s, 0x03), "lookup of the new semaphore gives %#lx, expected %#lx (rights 0x03)", l,
          obj_crd(s, 0x03));
}

void d42(Test &t)
{
    CHECK_ST(create_sm(SEL_ROOT_PD, SEL_ROOT_PD, 0), Status::BAD_CAP, "create_sm at selector 32");
}

void d43(Test &t)
{
    u64 s = t.sel();
    REQUIRE(s);
    CHECK_ST(create_sm(s, SEL_ROOT_EC, 0), Status::BAD_CAP, "create_sm with rsi = EC capability 33");
    CHECK(lookup_obj(s) == 0, "the failed create_sm left a capability");
}

void d44(Test &t)
{
    u64 s = t.sel(2);
    REQUIRE(s);
    CHECK_ST(create_sm(s, s + 1, 0), Status::BAD_CAP, "create_sm with rsi = an empty selector");
}

void d45(Test &t)
{
    u64 s = t.sel(), pd = reduced(t, SEL_ROOT_PD, 0x0f);
    REQUIRE(s && pd);
    CHECK_ST(create_sm(s, pd, 0), Status::BAD_CAP, "create_sm with a PD capability of rights 0x0f");
    u64 pd2 = reduced(t, SEL_ROOT_PD, 0x10);
    REQUIRE(pd2);
    CHECK_ST(create_sm(s, pd2, 0), Status::SUCCESS, "create_sm with a PD capability of rights 0x10");
}

void d_sm_chain(Test &t)
{
    u64 s = t.sel(4);
    REQUIRE(s && new_sm(t, s));
    u64 down_only = reduced(t, s, Perm_sm::DOWN);
    REQUIRE(down_only);
    CHECK_ST(create_sm(s + 1, SEL_ROOT_PD, 1, down_only), Status::BAD_CAP,
             "create_sm chained to an SM capability without the up right (0x01)");
    CHECK_ST(create_sm(s + 1, SEL_ROOT_PD, 1, SEL_ROOT_PD), Status::BAD_CAP,
             "create_sm chained to a PD capability");
    u64 up_only = reduced(t, s, Perm_sm::UP);
    REQUIRE(up_only);
    CHECK_ST(create_sm(s + 1, SEL_ROOT_PD, 1, up_only), Status::SUCCESS,
             "create_sm chained to an SM capability with only the up right");
    CHECK_ST(create_sm(s + 1, SEL_ROOT_PD, 1, up_only), Status::BAD_CAP,
             "create_sm of a signal on an occupied selector");
}

// ---- create_pt ---------------------------------------------------------------------------

void d46(Test &t)
{
    u64 s = t.sel(2);
    u64 pd = reduced(t, SEL_ROOT_PD, 0x17);
    REQUIRE(s && pd && new_local(t, s));
    CHECK_ST(create_pt(s + 1, pd, s, 0, reinterpret_cast<u64>(abort_stub)), Status::BAD_CAP,
             "create_pt with a PD capability of rights 0x17");
}

void d47(Test &t)
{
    u64 s = t.sel();
    REQUIRE(s);
    CHECK_ST(create_pt(s, SEL_ROOT_PD, SEL_ROOT_EC, 0, reinterpret_cast<u64>(abort_stub)), Status::BAD_CAP,
             "create_pt bound to the root EC");
    u64 g = t.sel();
    REQUIRE(g && new_global(t, g));
    CHECK_ST(create_pt(s, SEL_ROOT_PD, g, 0, reinterpret_cast<u64>(abort_stub)), Status::BAD_CAP,
             "create_pt bound to a new global EC");
}

void d48(Test &t)
{
    u64 s = t.sel(2);
    REQUIRE(s && new_local(t, s));
    u64 ec = reduced(t, s, 0x05);
    REQUIRE(ec);
    CHECK_ST(create_pt(s + 1, SEL_ROOT_PD, ec, 0, reinterpret_cast<u64>(abort_stub)), Status::BAD_CAP,
             "create_pt with an EC capability of rights 0x05");
    u64 ec2 = reduced(t, s, 0x08);
    REQUIRE(ec2);
    CHECK_ST(create_pt(s + 1, SEL_ROOT_PD, ec2, 0, reinterpret_cast<u64>(abort_stub)), Status::SUCCESS,
             "create_pt with an EC capability of rights 0x08");
}

void d_pt_errors(Test &t)
{
    u64 s = t.sel(4);
    REQUIRE(s && new_local(t, s) && new_sm(t, s + 1));
    u64 ip = reinterpret_cast<u64>(abort_stub);
    CHECK_ST(create_pt(s + 2, SEL_ROOT_EC, s, 0, ip), Status::BAD_CAP,
             "create_pt with rsi = an EC capability");
    CHECK_ST(create_pt(s + 2, SEL_ROOT_PD, s + 1, 0, ip), Status::BAD_CAP,
             "create_pt with rdx = an SM capability");
    CHECK_ST(create_pt(s + 2, SEL_ROOT_PD, s + 3, 0, ip), Status::BAD_CAP,
             "create_pt with rdx = an empty selector");
    CHECK_ST(create_pt(SEL_ROOT_SC, SEL_ROOT_PD, s, 0, ip), Status::BAD_CAP,
             "create_pt on an occupied selector");
    CHECK_ST(create_pt(s + 2, SEL_ROOT_PD, s, 0, ip), Status::SUCCESS, "create_pt");
    u64 l = lookup_obj(s + 2);
    CHECK(l == obj_crd(s + 2, 0x13), "lookup of the new portal gives %#lx, expected %#lx (rights 0x13)", l,
          obj_crd(s + 2, 0x13));
}

// ---- create_sc ---------------------------------------------------------------------------

void d49(Test &t)
{
    u64 s = t.sel(2);
    REQUIRE(s && new_local(t, s));
    CHECK_ST(create_sc(s + 1, SEL_ROOT_PD, s, Qpd(1, QUANTUM)), Status::BAD_CAP,
             "create_sc bound to a local EC");
}

void d50(Test &t)
{
    u64 s = t.sel(2);
    REQUIRE(s && new_global(t, s));
    CHECK_ST(create_sc(s + 1, SEL_ROOT_PD, s, Qpd(QUANTUM << 12)), Status::BAD_PAR,
             "create_sc with priority 0");
}

void nothing(Thread &th) { th.result[0] = 1; }

void d51(Test &t)
{
    u64 s = t.sel(2);
    REQUIRE(s && new_global(t, s));
    CHECK_ST(create_sc(s + 1, SEL_ROOT_PD, s, Qpd(128, QUANTUM)), Status::BAD_PAR,
             "create_sc with priority 128");
    CHECK_ST(create_sc(s + 1, SEL_ROOT_PD, s, Qpd(0xff, QUANTUM)), Status::BAD_PAR,
             "create_sc with priority 255");
    static Thread th;
    th.result[0] = 0;
    REQUIRE(spawn(&t, th, boot_cpu(), 127, nothing));
    CHECK(join(th, 2000) && th.result[0] == 1, "the EC with a priority-127 SC did not run");
    u64 l = lookup_obj(th.sc);
    CHECK(l == obj_crd(th.sc, 0x01), "lookup of the new SC gives %#lx, expected %#lx (rights 0x01)", l,
          obj_crd(th.sc, 0x01));
}

void d52(Test &t)
{
    u64 s = t.sel(2);
    REQUIRE(s && new_global(t, s));
    CHECK_ST(create_sc(s + 1, SEL_ROOT_PD, s, Qpd(1)), Status::BAD_PAR, "create_sc with quantum 0 (rax = 1)");
    // Quantum bits above 43 do not count: still quantum 0.
    CHECK_ST(create_sc(s + 1, SEL_ROOT_PD, s, Qpd(u64{1} << 44 | 1)), Status::BAD_PAR,
             "create_sc with quantum bits only above bit 43");
}

void d53(Test &t)
{
    u64 s = t.sel(4);
    REQUIRE(s && new_global(t, s));
    CHECK_ST(create_sc(s + 1, s + 2, s, Qpd(0)), Status::BAD_CAP,
             "create_sc with an empty PD selector and QPD 0");
}

// 7.5: PD, EC, EC kind, QPD, selector - in this order.
void d_sc_order(Test &t)
{
    u64 s = t.sel(8);
    REQUIRE(s && new_global(t, s) && new_local(t, s + 1) && new_sm(t, s + 2));
    u64 pd = reduced(t, SEL_ROOT_PD, 0x1b), ec = reduced(t, s, 0x09);
    REQUIRE(pd && ec);
    Qpd bad(0);
    CHECK_ST(create_sc(SEL_ROOT_PD, pd, s + 2, bad), Status::BAD_CAP,
             "PD without 0x04, SM as EC, bad QPD, occupied selector");
    CHECK_ST(create_sc(SEL_ROOT_PD, SEL_ROOT_PD, s + 2, bad), Status::BAD_CAP,
             "SM as EC, bad QPD, occupied selector");
    CHECK_ST(create_sc(SEL_ROOT_PD, SEL_ROOT_PD, ec, bad), Status::BAD_CAP,
             "EC capability without 0x04, bad QPD, occupied selector");
    CHECK_ST(create_sc(SEL_ROOT_PD, SEL_ROOT_PD, s + 1, bad), Status::BAD_CAP,
             "local EC, bad QPD, occupied selector");
    CHECK_ST(create_sc(SEL_ROOT_PD, SEL_ROOT_PD, s, bad), Status::BAD_PAR, "bad QPD, occupied selector");
    CHECK_ST(create_sc(SEL_ROOT_PD, SEL_ROOT_PD, s, Qpd(1, QUANTUM)), Status::BAD_CAP, "occupied selector");
}

// ---- create_ec ---------------------------------------------------------------------------

void d54(Test &t)
{
    u64 s = t.sel();
    REQUIRE(s);
    CHECK_ST(create_ec_local(s, SEL_ROOT_PD, 64, alloc_virt(PAGE_SIZE), 0, 0), Status::BAD_CPU,
             "create_ec on CPU 64");
    CHECK_ST(create_ec_local(s, SEL_ROOT_PD, 0xfff, alloc_virt(PAGE_SIZE), 0, 0), Status::BAD_CPU,
             "create_ec on CPU 0xfff");
}

void d55(Test &t)
{
    unsigned c = offline_cpu();
    if (c == NO_CPU) {
        t.skip("all 64 CPUs are online");
        return;
    }
    u64 s = t.sel();
    REQUIRE(s);
    CHECK_ST(create_ec_local(s, SEL_ROOT_PD, c, alloc_virt(PAGE_SIZE), 0, 0), Status::BAD_CPU,
             "create_ec on an offline CPU");
}

void d56(Test &t)
{
    u64 s = t.sel(2);
    REQUIRE(s);
    CHECK_ST(create_ec_local(s, s + 1, 64, alloc_virt(PAGE_SIZE), 0, 0), Status::BAD_CPU,
             "create_ec on CPU 64 with an empty PD selector");
}

void d57(Test &t)
{
    u64 s = t.sel();
    REQUIRE(s);
    CHECK_ST(create_ec_local(s, SEL_ROOT_PD, boot_cpu(), USER_ADDR, 0, 0), Status::BAD_PAR,
             "create_ec with UTCB 0x7ffffffff000");
    CHECK_ST(create_ec_local(s, SEL_ROOT_PD, boot_cpu(), 0xffff800000000000ull, 0, 0), Status::BAD_PAR,
             "create_ec with UTCB 0xffff800000000000");
    CHECK(lookup_obj(s) == 0, "a failed create_ec left a capability");
}

void d58(Test &t)
{
    u64 s = t.sel();
    REQUIRE(s);
    CHECK_ST(create_ec_local(s, SEL_ROOT_PD, boot_cpu(), ROOT_UTCB_ADDR, 0, 0), Status::BAD_PAR,
             "create_ec with the root UTCB's address");
    CHECK_ST(create_ec_local(s, SEL_ROOT_PD, boot_cpu(), HIP_ADDR, 0, 0), Status::BAD_PAR,
             "create_ec with the HIP's address");
    u64 utcb = alloc_virt(PAGE_SIZE);
    CHECK_ST(create_ec_local(s, SEL_ROOT_PD, boot_cpu(), utcb, 0, 0), Status::SUCCESS, "create_ec");
    u64 s2 = t.sel();
    REQUIRE(s2);
    CHECK_ST(create_ec_local(s2, SEL_ROOT_PD, boot_cpu(), utcb, 0, 0), Status::BAD_PAR,
             "create_ec with the UTCB address of the EC just created");
}

extern "C" char _start[];

void d59(Test &t)
{
    u64 s = t.sel();
    REQUIRE(s);
    CHECK_ST(create_ec_local(s, SEL_ROOT_PD, boot_cpu(), align_down(reinterpret_cast<u64>(_start), PAGE_SIZE),
                             0, 0),
             Status::BAD_PAR, "create_ec with a UTCB address in our text");
    static u64 data_word;
    CHECK_ST(create_ec_local(s, SEL_ROOT_PD, boot_cpu(),
                             align_down(reinterpret_cast<u64>(&data_word), PAGE_SIZE), 0, 0),
             Status::BAD_PAR, "create_ec with a UTCB address in our data");
    void *p = scratch_page(t);
    REQUIRE(p);
    CHECK_ST(create_ec_local(s, SEL_ROOT_PD, boot_cpu(), reinterpret_cast<u64>(p), 0, 0), Status::BAD_PAR,
             "create_ec with a UTCB address in memory delegated from the kernel");
}

void d60(Test &t)
{
    u64 s = t.sel();
    REQUIRE(s);
    u64 utcb = alloc_virt(PAGE_SIZE);
    CHECK_ST(create_ec_local(SEL_ROOT_PD, SEL_ROOT_PD, boot_cpu(), utcb, 0, 0), Status::BAD_CAP,
             "create_ec on occupied selector 32");
    CHECK(lookup_mem(utcb >> PAGE_BITS) == 0, "the failed create_ec left the UTCB mapped");
    CHECK_ST(create_ec_local(s, SEL_ROOT_PD, boot_cpu(), utcb, 0, 0), Status::SUCCESS,
             "create_ec with the same UTCB address and a free selector");
}

void d61(Test &t)
{
    if (has_virt()) {
        t.skip("the HIP reports VMX or SVM");
        return;
    }
    u64 s = t.sel();
    REQUIRE(s);
    CHECK_ST(create_ec(s, SEL_ROOT_PD, boot_cpu(), 0, 0, 0, Create_ec_flag::VCPU), Status::BAD_FTR,
             "create_ec of a vCPU");
    CHECK_ST(create_ec(s, SEL_ROOT_PD, boot_cpu(), 0, 0, 0, Create_ec_flag::VCPU | Create_ec_flag::GLOBAL),
             Status::BAD_FTR, "create_ec of a global vCPU");
}

void d62(Test &t)
{
    u64 s = t.sel();
    REQUIRE(s);
    u64 utcb = alloc_virt(PAGE_SIZE);
    CHECK_ST(create_ec_local(s, SEL_ROOT_PD, boot_cpu(), utcb, 0, 0), Status::SUCCESS, "create_ec");
    u64 l = lookup_mem(utcb >> PAGE_BITS);
    u64 want = Crd::mem(utcb >> PAGE_BITS, 0, Perm_mem::RW).value();
    CHECK(l == want, "lookup of the UTCB page gives %#lx, expected %#lx (order 0, RW)", l, want);
    CHECK(root_portals, "the root EC has no exception portals, not probing");
    const u64 *w = reinterpret_cast<const u64 *>(utcb);
    for (unsigned i = 0; i < PAGE_SIZE / 8; i++) {
        u64 v;
        CHECK(probe_read64(w + i, &v), "reading the new UTCB at %p faulted", w + i);
        CHECK(v == 0, "the new UTCB is not zero at offset %#x", i * 8);
    }
    CHECK(probe_write8(reinterpret_cast<void *>(utcb + 0x100), 0x5a), "writing the new UTCB faulted");
    CHECK(*reinterpret_cast<volatile u8 *>(utcb + 0x100) == 0x5a, "the write to the new UTCB did not stick");
    t.note("UTCB at %#lx", utcb);
}

// 7.4: CPU, feature, PD, UTCB, selector - in this order.
void d_ec_order(Test &t)
{
    u64 s = t.sel(4);
    REQUIRE(s);
    u64 pd = reduced(t, SEL_ROOT_PD, 0x1d);
    REQUIRE(pd);
    u64 empty = s + 3;
    CHECK_ST(create_ec(SEL_ROOT_PD, empty, 64, USER_ADDR, 0, 0, Create_ec_flag::VCPU), Status::BAD_CPU,
             "CPU 64, vCPU, empty PD, bad UTCB, occupied selector");
    if (!has_virt()) {
        CHECK_ST(create_ec(SEL_ROOT_PD, empty, boot_cpu(), USER_ADDR, 0, 0, Create_ec_flag::VCPU),
                 Status::BAD_FTR, "vCPU without VMX/SVM, empty PD, occupied selector");
        CHECK_ST(create_ec(SEL_ROOT_PD, empty, boot_cpu(), 0, 0, 0, 0), Status::BAD_FTR,
                 "UTCB 0 without VMX/SVM, empty PD, occupied selector");
    }
    CHECK_ST(create_ec_local(SEL_ROOT_PD, pd, boot_cpu(), USER_ADDR, 0, 0), Status::BAD_CAP,
             "PD without 0x02, bad UTCB, occupied selector");
    CHECK_ST(create_ec_local(SEL_ROOT_PD, SEL_ROOT_EC, boot_cpu(), USER_ADDR, 0, 0), Status::BAD_CAP,
             "EC as PD, bad UTCB, occupied selector");
    CHECK_ST(create_ec_local(SEL_ROOT_PD, SEL_ROOT_PD, boot_cpu(), USER_ADDR, 0, 0), Status::BAD_PAR,
             "bad UTCB, occupied selector");
    u64 pd2 = reduced(t, SEL_ROOT_PD, 0x02);
    REQUIRE(pd2);
    CHECK_ST(create_ec_local(s, pd2, boot_cpu(), alloc_virt(PAGE_SIZE), 0, 0), Status::SUCCESS,
             "create_ec with a PD capability of rights 0x02");
    u64 l = lookup_obj(s);
    CHECK(l == obj_crd(s, 0x0d), "lookup of the new EC gives %#lx, expected %#lx (rights 0x0d)", l,
          obj_crd(s, 0x0d));
}

// 7.4 step 4 looks at the target PD's memory space, not the caller's.
void d_ec_target_space(Test &t)
{
    u64 s = t.sel(2);
    REQUIRE(s);
    CHECK_ST(create_pd(s, SEL_ROOT_PD), Status::SUCCESS, "create_pd");
    CHECK_ST(create_ec_local(s + 1, s, boot_cpu(), ROOT_UTCB_ADDR, 0, 0), Status::SUCCESS,
             "create_ec in a new PD at the address of our own UTCB");
    CHECK(lookup_obj(s + 1) == obj_crd(s + 1, 0x0d), "the EC capability is not in our space");
}

// ---- create_pd ---------------------------------------------------------------------------

void d63(Test &t)
{
    u64 s = t.sel();
    REQUIRE(s);
    CHECK_ST(create_pd(s, SEL_ROOT_PD), Status::SUCCESS, "create_pd");
    u64 l = lookup_obj(s);
    CHECK(l == obj_crd(s, 0x1f), "lookup of the new PD gives %#lx, expected %#lx (rights 0x1f)", l,
          obj_crd(s, 0x1f));
}

void d64(Test &t)
{
    u64 s = t.sel(), pd = reduced(t, SEL_ROOT_PD, 0x02);
    REQUIRE(s && pd);
    CHECK_ST(create_pd(s, pd), Status::BAD_CAP, "create_pd with an owner of rights 0x02");
}

void d65(Test &t)
{
    u64 s = t.sel(), pd = reduced(t, SEL_ROOT_PD, 0x03);
    REQUIRE(s && pd);
    CHECK_ST(create_pd(s, pd), Status::SUCCESS, "create_pd with an owner of rights 0x03");
    u64 l = lookup_obj(s);
    CHECK(l == obj_crd(s, 0x03), "lookup of the new PD gives %#lx, expected %#lx (rights 0x03)", l,
          obj_crd(s, 0x03));
}

void d_pd_errors(Test &t)
{
    u64 s = t.sel(4);
    REQUIRE(s && new_sm(t, s + 1));
    CHECK_ST(create_pd(s, s + 1), Status::BAD_CAP, "create_pd with an SM as owner");
    CHECK_ST(create_pd(s, s + 2), Status::BAD_CAP, "create_pd with an empty owner selector");
    CHECK_ST(create_pd(s, SEL_ROOT_EC), Status::BAD_CAP, "create_pd with an EC as owner");
    CHECK_ST(create_pd(s + 1, SEL_ROOT_PD), Status::BAD_CAP, "create_pd on an occupied selector");
    CHECK_ST(create_pd(SEL_ROOT_PD, SEL_ROOT_PD), Status::BAD_CAP, "create_pd on selector 32");
}

// 7.3: the CRD's range lands at selectors 0..2^order-1 of the new PD. We fetch it back by delegating
// from the new PD into ours (source PD = the new PD).
void d_pd_crd(Test &t)
{
    u64 s = t.sel(8);
    REQUIRE(s && new_sm(t, s + 4) && new_sm(t, s + 5));
    CHECK_ST(create_pd(s, SEL_ROOT_PD, Crd::obj(s + 4, 1, OBJ_ALL)), Status::SUCCESS,
             "create_pd with CRD(OBJ, sm, 1)");
    for (unsigned i = 0; i < 2; i++) {
        u64 back = s + 6 + i;
        Delegate_result r = delegate_obj(i, back, OBJ_ALL, s, SEL_ROOT_PD);
        CHECK_ST(r.status, Status::SUCCESS, "delegate from the new PD");
        CHECK(Crd(lookup_obj(back)).type() == Crd::OBJ, "the new PD has nothing at selector %u", i);
        CHECK_ST(sm_up(back), Status::SUCCESS, "sm_ctrl up through the capability fetched back");
        CHECK_ST(try_down(s + 4 + i), Status::SUCCESS, "the up is seen on the original semaphore");
    }
    Delegate_result r = delegate_obj(2, s + 2, OBJ_ALL, s, SEL_ROOT_PD);
    CHECK(r.status == Status::SUCCESS && lookup_obj(s + 2) == 0, "the new PD has a capability at selector 2");
    r = delegate_obj(SEL_ROOT_PD, s + 3, OBJ_ALL, s, SEL_ROOT_PD);
    CHECK(r.status == Status::SUCCESS && lookup_obj(s + 3) == 0,
          "the new PD has a capability at selector 32");
}

void portal_id_handler(u64 id, Utcb &u)
{
    u.data[0] = id;
    u.set_items(1, 0);
}

void d66(Test &t)
{
    Worker w;
    u64 pt;
    REQUIRE(make_worker(t, w, SEL_ROOT_PD, boot_cpu(), portal_id_handler, service_evt(boot_cpu())));
    REQUIRE(make_portal(t, pt, w.ec, 0, 0));
    utcb().data[0] = 0xdead;
    utcb().set_items(1, 0);
    CHECK_ST(call(pt), Status::SUCCESS, "call");
    CHECK(utcb().data[0] == 0, "the handler saw portal id %#lx, expected 0", utcb().data[0]);
}

const Test_case list[] = {
    {"D.41", "create_sm succeeds on a free selector, BAD_CAP on the same one again", d41, 0},
    {"D.42", "create_sm at selector 32 (occupied) gives BAD_CAP", d42, 0},
    {"D.43", "create_sm with an EC capability as PD gives BAD_CAP", d43, 0},
    {"D.44", "create_sm with an empty PD selector gives BAD_CAP", d44, 0},
    {"D.45", "create_sm with a PD capability without bit 4 gives BAD_CAP", d45, 0},
    {"D.create_sm-chain", "create_sm: the chain SM needs the up right; occupied selector last", d_sm_chain,
     0},
    {"D.46", "create_pt with a PD capability without bit 3 gives BAD_CAP", d46, 0},
    {"D.47", "create_pt bound to a global EC (the root EC) gives BAD_CAP", d47, 0},
    {"D.48", "create_pt with an EC capability without bit 3 gives BAD_CAP", d48, 0},
    {"D.create_pt-errors", "create_pt: non-PD, non-EC, occupied selector; success gives rights 0x13",
     d_pt_errors, 0},
    {"D.49", "create_sc bound to a local EC gives BAD_CAP", d49, 0},
    {"D.50", "create_sc with priority 0 gives BAD_PAR", d50, 0},
    {"D.51", "create_sc with priority 128 gives BAD_PAR; 127 succeeds and runs", d51, 0},
    {"D.52", "create_sc with quantum 0 gives BAD_PAR", d52, 0},
    {"D.53", "create_sc checks capabilities before the QPD", d53, 0},
    {"D.create_sc-order", "create_sc validation order: PD, EC, EC kind, QPD, selector", d_sc_order, 0},
    {"D.54", "create_ec on CPU 64 gives BAD_CPU", d54, 0},
    {"D.55", "create_ec on an offline CPU gives BAD_CPU", d55, 0},
    {"D.56", "create_ec checks the CPU before the PD", d56, 0},
    {"D.57", "create_ec with a UTCB at or above USER_ADDR gives BAD_PAR", d57, 0},
    {"D.58", "create_ec with the address of an existing UTCB gives BAD_PAR", d58, 0},
    {"D.59", "create_ec with a UTCB inside delegated memory gives BAD_PAR", d59, 0},
    {"D.60", "create_ec on an occupied selector gives BAD_CAP and frees the UTCB address", d60, 0},
    {"D.61", "create_ec of a vCPU without VMX/SVM gives BAD_FTR", d61, 0},
    {"D.62", "a new local EC's UTCB is mapped RW (order 0, rights 0x3) and zero", d62, 0},
    {"D.create_ec-order", "create_ec validation order: CPU, feature, PD, UTCB, selector", d_ec_order, 0},
    {"D.create_ec-target", "create_ec checks the UTCB address in the target PD", d_ec_target_space, 0},
    {"D.63", "create_pd succeeds; the new capability has rights 0x1f", d63, 0},
    {"D.64", "create_pd with an owner of rights 0x02 gives BAD_CAP", d64, 0},
    {"D.65", "create_pd with an owner of rights 0x03 gives a PD capability of rights 0x03", d65, 0},
    {"D.create_pd-errors", "create_pd: non-PD owner, occupied selector give BAD_CAP", d_pd_errors, 0},
    {"D.create_pd-crd", "create_pd delegates its object CRD to selectors 0.. of the new PD", d_pd_crd, 0},
    {"D.66", "a portal without pt_ctrl delivers id 0", d66, 0},
};

}  // namespace

const Test_section sec_create = {list, sizeof(list) / sizeof(list[0])};
