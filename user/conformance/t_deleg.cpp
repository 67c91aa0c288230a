/*
 * Checklist F: typed items, delegation, revocation and translation (ABI 3,
 * 7.8, 7.9, 9.6), mostly through pd_ctrl delegate; semaphores make object
 * capabilities observable (an up through one selector is seen by a down
 * through another). F.103 maps memory by replying to a page fault.
 */
#include "string.hpp"
#include "suite.hpp"

namespace {

constexpr u64 META_DELEGATE = 1, META_KERNEL = 0x801;

bool new_sm(Test &t, u64 sel)
{
    Status s = create_sm(sel, SEL_ROOT_PD, 0);
    if (s != Status::SUCCESS)
        t.fail("create_sm: %s", status_name(s));
    return s == Status::SUCCESS;
}

// Does an up through `via` arrive at semaphore `sm` (and nowhere else is asked)?
bool same_sm(u64 via, u64 sm)
{
    return try_down(sm) == Status::COM_TIM && sm_up(via) == Status::SUCCESS &&
           try_down(sm) == Status::SUCCESS;
}

Delegate_result deleg(u64 src, u64 dst, Crd send, u64 meta, Crd window)
{
    return pd_delegate(src, dst, send, Item_meta(meta), window);
}

// ---- F.84 - F.89 -------------------------------------------------------------------------

void f84(Test &t)
{
    u64 a = t.sel(), b = t.sel();
    REQUIRE(a && b && new_sm(t, a));
    Delegate_result r =
        deleg(SEL_ROOT_PD, SEL_ROOT_PD, Crd::obj(a, 0, 0x1f), META_DELEGATE, Crd::obj(b, 0, 0x1f));
    CHECK_ST(r.status, Status::SUCCESS, "pd_ctrl delegate");
    CHECK(same_sm(b, a), "an up through the copy was not seen on the original");
    CHECK(lookup_obj(b) == Crd::obj(b, 0, Perm_sm::CREATED).value(), "lookup of the copy gives %#lx",
          lookup_obj(b));
}

void f85(Test &t)
{
    u64 a = t.sel(), b = t.sel();
    REQUIRE(a && b && new_sm(t, a));
    Delegate_result r =
        deleg(SEL_ROOT_PD, SEL_ROOT_PD, Crd::obj(a, 0, 0x1f), META_DELEGATE, Crd::obj(b, 0, 0x1f));
    CHECK_ST(r.status, Status::SUCCESS, "pd_ctrl delegate");
    CHECK(r.crd == Crd::obj(b, 0, 0x1f), "result CRD %#lx, expected %#lx", r.crd.value(),
          Crd::obj(b, 0, 0x1f).value());
    CHECK(r.meta.value() == 1, "result metadata %#lx, expected 1", r.meta.value());
}

void f86(Test &t)
{
    u64 a = t.sel(), b = t.sel();
    REQUIRE(a && b && new_sm(t, a));
    Delegate_result r =
        deleg(SEL_ROOT_PD, SEL_ROOT_PD, Crd::obj(a, 0, 0x1f), META_DELEGATE, Crd::obj(b, 0, 0x01));
    CHECK_ST(r.status, Status::SUCCESS, "pd_ctrl delegate");
    CHECK(r.crd == Crd::obj(b, 0, 0x01), "result CRD %#lx, expected %#lx", r.crd.value(),
          Crd::obj(b, 0, 0x01).value());
    CHECK(lookup_obj(b) == Crd::obj(b, 0, 0x01).value(),
          "lookup of the copy gives %#lx, expected rights 0x01", lookup_obj(b));
    CHECK_ST(sm_down(b, 1).status, Status::BAD_CAP, "down through the up-only copy");
    CHECK(same_sm(b, a), "up through the up-only copy failed or was not seen");
}

void f87(Test &t)
{
    u64 a = t.sel(), b = t.sel();
    REQUIRE(a && b && new_sm(t, a));
    Delegate_result r =
        deleg(SEL_ROOT_PD, SEL_ROOT_PD, Crd::obj(a, 0, 0x1f), META_DELEGATE, Crd::mem(b, 0, 0x1f));
    CHECK_ST(r.status, Status::SUCCESS, "pd_ctrl delegate");
    CHECK(r.crd.value() == 0, "result CRD %#lx for an object item into a memory window, expected 0",
          r.crd.value());
    CHECK(lookup_obj(b) == 0, "something arrived at %#lx", b);
    CHECK(lookup_mem(b) == 0, "something arrived in the memory space at page %#lx", b);
    r = deleg(SEL_ROOT_PD, SEL_ROOT_PD, Crd::obj(a, 0, 0x1f), META_DELEGATE, Crd::obj(b, 0, 0));
    CHECK(r.status == Status::SUCCESS && r.crd.value() == 0 && lookup_obj(b) == 0,
          "a window with rights 0 gave result %#lx", r.crd.value());
}

void f88(Test &t)
{
    u64 a = t.sel(4), w = t.sel(16);
    REQUIRE(a && w);
    for (unsigned i = 0; i < 4; i++)
        REQUIRE(new_sm(t, a + i));
    Delegate_result r = deleg(SEL_ROOT_PD, SEL_ROOT_PD, Crd::obj(a, 2, 0x1f), (w + 8) << 12 | META_DELEGATE,
                              Crd::obj(w, 4, 0x1f));
    CHECK_ST(r.status, Status::SUCCESS, "pd_ctrl delegate");
    CHECK(r.crd == Crd::obj(w + 8, 2, 0x1f), "result CRD %#lx, expected %#lx", r.crd.value(),
          Crd::obj(w + 8, 2, 0x1f).value());
    for (unsigned i = 0; i < 16; i++) {
        u64 l = lookup_obj(w + i);
        if (i >= 8 && i < 12) {
            CHECK(l == Crd::obj(w + i, 0, 0x03).value(), "window slot %u: lookup %#lx, expected a semaphore",
                  i, l);
            CHECK(same_sm(w + i, a + i - 8), "window slot %u is not semaphore %u", i, i - 8);
        } else
            CHECK(l == 0, "window slot %u is not empty (%#lx)", i, l);
    }
}

void f89(Test &t)
{
    u64 x = t.sel(), y = t.sel(), b = t.sel();
    REQUIRE(x && y && b && new_sm(t, x) && new_sm(t, y) && copy_cap(t, x, b, 0x1f));
    Delegate_result r =
        deleg(SEL_ROOT_PD, SEL_ROOT_PD, Crd::obj(y, 0, 0x1f), META_DELEGATE, Crd::obj(b, 0, 0x1f));
    CHECK_ST(r.status, Status::SUCCESS, "pd_ctrl delegate into an occupied selector");
    CHECK(same_sm(b, x), "the occupied selector no longer refers to its semaphore");
    CHECK(try_down(y) == Status::COM_TIM, "the up reached the delegated semaphore");
}

// ---- F.90 - F.94: revoke ----------------------------------------------------------------------

bool sm_and_copy(Test &t, u64 &a, u64 &b)
{
    a = t.sel(), b = t.sel();
    return a && b && new_sm(t, a) && copy_cap(t, a, b, 0x1f);
}

void f90(Test &t)
{
    u64 a, b;
    REQUIRE(sm_and_copy(t, a, b));
    CHECK_ST(revoke(Crd::obj(a, 0, 0x1f)), Status::SUCCESS, "revoke");
    CHECK_ST(sm_up(b), Status::BAD_CAP, "up through the revoked copy");
    CHECK(lookup_obj(b) == 0, "lookup of the revoked copy gives %#lx", lookup_obj(b));
    CHECK_ST(sm_up(a), Status::SUCCESS, "up through the original");
    CHECK_ST(try_down(a), Status::SUCCESS, "down through the original");
}

void f91(Test &t)
{
    u64 a, b;
    REQUIRE(sm_and_copy(t, a, b));
    CHECK_ST(revoke(Crd::obj(a, 0, 0x1f), Revoke_flag::SELF), Status::SUCCESS, "revoke with self");
    CHECK_ST(sm_up(b), Status::BAD_CAP, "up through the copy");
    CHECK_ST(sm_up(a), Status::BAD_CAP, "up through the original");
    CHECK(lookup_obj(a) == 0, "lookup of the revoked original gives %#lx", lookup_obj(a));
    CHECK_ST(create_sm(a, SEL_ROOT_PD, 0), Status::SUCCESS, "create_sm at the revoked selector");
}

void f92(Test &t)
{
    u64 a, b;
    REQUIRE(sm_and_copy(t, a, b));
    CHECK_ST(revoke(Crd::obj(b, 0, Perm_sm::DOWN), Revoke_flag::SELF), Status::SUCCESS,
             "revoke of the down right");
    CHECK(lookup_obj(b) == Crd::obj(b, 0, Perm_sm::UP).value(),
          "lookup of the copy gives %#lx, expected rights 0x01", lookup_obj(b));
    CHECK_ST(sm_down(b, 1).status, Status::BAD_CAP, "down through the copy");
    CHECK(same_sm(b, a), "up through the copy failed or was not seen");
    CHECK(lookup_obj(a) == Crd::obj(a, 0, Perm_sm::CREATED).value(), "the original lost rights (%#lx)",
          lookup_obj(a));
}

void f93(Test &t)
{
    CHECK_ST(revoke(Crd()), Status::SUCCESS, "revoke of the null CRD");
    CHECK_ST(revoke(Crd(0xfffffffffffff000ull), Revoke_flag::SELF), Status::SUCCESS,
             "revoke of a null CRD with bits");
    CHECK(lookup_obj(SEL_ROOT_PD) == 0x2007f, "the root PD capability changed");
}

void f94(Test &t)
{
    u64 s = t.sel(2);
    REQUIRE(s && new_sm(t, s));
    CHECK_ST(revoke(Crd::obj(s, 0, 0x1f), Revoke_flag::REMOTE, s + 1), Status::BAD_CAP,
             "remote revoke with an empty PD selector");
    CHECK_ST(revoke(Crd::obj(s, 0, 0x1f), Revoke_flag::REMOTE, s), Status::BAD_CAP,
             "remote revoke with an SM as PD");
    CHECK(lookup_obj(s) == Crd::obj(s, 0, 3).value(), "the failed revoke changed our semaphore");
}

// ---- F.95 - F.99: the kernel as source (H bit) ------------------------------------------------

// Kernel memory page `phys` at a fresh page of ours with `rights`; 0 when nothing usable was mapped.
u64 kernel_page(Test &t, u64 phys, unsigned rights, Delegate_result &r)
{
    u64 v = alloc_virt(PAGE_SIZE);
    if (!v)
        return 0;
    t.own_mem(v, 0);
    r = deleg(SEL_ROOT_PD, SEL_ROOT_PD, Crd::mem(phys >> PAGE_BITS, 0, 0x1f), META_KERNEL,
              Crd::mem(v >> PAGE_BITS, 0, rights));
    return v;
}

void f95(Test &t)
{
    const Module &m = root_module();
    CHECK(m.size, "no module descriptor in the HIP");
    Delegate_result r;
    u64 v = kernel_page(t, m.phys, Perm_mem::R, r);
    REQUIRE(v);
    CHECK_ST(r.status, Status::SUCCESS, "pd_ctrl delegate with the H bit");
    CHECK(r.crd == Crd::mem(v >> PAGE_BITS, 0, Perm_mem::R), "result CRD %#lx", r.crd.value());
    CHECK(lookup_mem(v >> PAGE_BITS) == Crd::mem(v >> PAGE_BITS, 0, Perm_mem::R).value(), "lookup gives %#lx",
          lookup_mem(v >> PAGE_BITS));
    u64 w;
    CHECK(probe_read64(reinterpret_cast<void *>(v + (m.phys & 0xfff)), &w),
          "reading the mapped module faulted");
    CHECK(!memcmp(&w,
                  "\x7f"
                  "ELF",
                  4),
          "the mapped page does not start with the ELF magic (%#lx)", w);
}

void f96(Test &t)
{
    const Hip_mem *hyp = nullptr;
    for (unsigned i = 0; i < hip()->num_mem_desc(); i++)
        if (hip()->mem(i)->type == Hip_mem::HYPERVISOR)
            hyp = hip()->mem(i);
    CHECK(hyp && hyp->size, "no hypervisor memory descriptor");
    u64 pages[] = {hyp->addr, hyp->addr + hyp->size / 2, hyp->addr + hyp->size - 1};
    for (u64 phys : pages) {
        Delegate_result r;
        u64 v = kernel_page(t, phys, Perm_mem::RW, r);
        REQUIRE(v);
        CHECK_ST(r.status, Status::SUCCESS, "pd_ctrl delegate with the H bit");
        CHECK(r.crd == Crd::mem(v >> PAGE_BITS, 0, Perm_mem::RW),
              "result CRD %#lx, expected the rights granted", r.crd.value());
        CHECK(lookup_mem(v >> PAGE_BITS) == 0, "hypervisor page %#lx arrived (lookup %#lx)", phys,
              lookup_mem(v >> PAGE_BITS));
        u64 before = last_exc.count, w;
        CHECK(!probe_read64(reinterpret_cast<void *>(v), &w), "hypervisor page %#lx is readable", phys);
        CHECK(last_exc.count == before + 1 && last_exc.id == Evt::PF && last_exc.qual1 == v,
              "expected a page fault at %#lx (event %lu, cr2 %#lx)", v, last_exc.id, last_exc.qual1);
    }
}

void f97(Test &t)
{
    Delegate_result r =
        deleg(SEL_ROOT_PD, SEL_ROOT_PD, Crd::pio(0x80, 0, 0x1f), META_KERNEL, Crd::pio(0x80, 0, 0x1f));
    t.own(Crd::pio(0x80, 0, 0x1f));
    CHECK_ST(r.status, Status::SUCCESS, "pd_ctrl delegate of port 0x80 with the H bit");
    CHECK(r.crd == Crd::pio(0x80, 0, 0x1f), "result CRD %#lx", r.crd.value());
    CHECK(probe_out8(0x80, 0), "out to port 0x80 faulted after the delegation");
    CHECK(probe_in8(0x80), "in from port 0x80 faulted after the delegation");
    CHECK(!probe_in8(0x81), "port 0x81 became accessible too");
}

// An I/O APIC GSI (not 0-2, the timer's pins) for assign_gsi, or ~0u.
unsigned ioapic_gsi()
{
    for (unsigned i = 0; i < NUM_IOAPIC; i++) {
        const Hip_ioapic *io = hip()->ioapic(i);
        if (!io || !io->base)
            continue;
        unsigned n = (io->version >> 16 & 0xff) + 1;
        for (unsigned g = 5; g < n; g++)
            if (io->gsi_base + g < NUM_GSI && g != 8 && g != 9)
                return io->gsi_base + g;
    }
    return ~0u;
}

void f98(Test &t)
{
    unsigned g = ioapic_gsi();
    if (g == ~0u) {
        t.skip("no I/O APIC GSI in the HIP");
        return;
    }
    u64 s = t.sel();
    REQUIRE(s);
    Delegate_result r =
        deleg(SEL_ROOT_PD, SEL_ROOT_PD, Crd::obj(ksel_gsi_sm(g), 0, 0x1f), META_KERNEL, Crd::obj(s, 0, 0x1f));
    CHECK_ST(r.status, Status::SUCCESS, "pd_ctrl delegate of kernel selector 64 + g");
    CHECK(lookup_obj(s) == Crd::obj(s, 0, 0x03).value(), "lookup of the GSI semaphore gives %#lx",
          lookup_obj(s));
    Gsi_result a = assign_gsi(s, 0, boot_cpu());
    CHECK_ST(a.status, Status::SUCCESS, "assign_gsi");
    t.note("GSI %u", g);
}

void f99(Test &t)
{
    u64 s = t.sel();
    REQUIRE(s);
    Delegate_result r = deleg(SEL_ROOT_PD, SEL_ROOT_PD, Crd::obj(ksel_idle_sc(boot_cpu()), 0, 0x1f),
                              META_KERNEL, Crd::obj(s, 0, 0x1f));
    CHECK_ST(r.status, Status::SUCCESS, "pd_ctrl delegate of kernel selector (boot CPU)");
    CHECK(lookup_obj(s) == Crd::obj(s, 0, 0x01).value(), "lookup of the idle SC gives %#lx", lookup_obj(s));
    Sc_time a = sc_ctrl(s);
    CHECK_ST(a.status, Status::SUCCESS, "sc_ctrl on the idle SC");
    sleep_ms(5);
    Sc_time b = sc_ctrl(s);
    CHECK(b.status == Status::SUCCESS && b.time_us >= a.time_us, "idle time went from %lu to %lu us",
          a.time_us, b.time_us);
}

// ---- F.100, F.101 ---------------------------------------------------------------------------

void f100(Test &t)
{
    u64 s = t.sel(4);
    REQUIRE(s && new_sm(t, s));
    Delegate_result r = deleg(s, SEL_ROOT_PD, Crd::obj(s, 0, 0x1f), META_DELEGATE, Crd::obj(s + 1, 0, 0x1f));
    CHECK_ST(r.status, Status::BAD_CAP, "pd_ctrl delegate with an SM as source PD");
    r = deleg(SEL_ROOT_PD, s, Crd::obj(s, 0, 0x1f), META_DELEGATE, Crd::obj(s + 1, 0, 0x1f));
    CHECK_ST(r.status, Status::BAD_CAP, "pd_ctrl delegate with an SM as destination PD");
    r = deleg(s + 2, SEL_ROOT_PD, Crd::obj(s, 0, 0x1f), META_DELEGATE, Crd::obj(s + 1, 0, 0x1f));
    CHECK_ST(r.status, Status::BAD_CAP, "pd_ctrl delegate with an empty source selector");
    CHECK(lookup_obj(s + 1) == 0, "a failed delegation created a capability");
}

void f101(Test &t)
{
    Regs r{};
    r.rdi = Hypercall_id(Hypercall::PD_CTRL, 3, SEL_ROOT_PD).value();
    r.rsi = Crd::obj(SEL_ROOT_PD).value();
    hypercall(r);
    CHECK(r.rdi == static_cast<u64>(Status::BAD_PAR), "pd_ctrl sub-op 3: rdi %#lx, expected BAD_PAR (5)",
          r.rdi);
    r = {};
    r.rdi = Hypercall_id(Hypercall::PD_CTRL, 0xf, 0).value();  // bits 7:6 ignored: still sub-op 3
    hypercall(r);
    CHECK(r.rdi == static_cast<u64>(Status::BAD_PAR), "pd_ctrl flags 0xf: rdi %#lx, expected BAD_PAR (5)",
          r.rdi);
}

// ---- F.102, item kinds ----------------------------------------------------------------------

void f102(Test &t)
{
    u64 a = t.sel(), pd = t.sel();
    REQUIRE(a && pd && new_sm(t, a));
    CHECK_ST(create_pd(pd, SEL_ROOT_PD), Status::SUCCESS, "create_pd");
    const u64 c = 0x40;  // where the new PD gets the semaphore
    Delegate_result r =
        deleg(SEL_ROOT_PD, pd, Crd::obj(a, 0, 0x1f), c << 12 | META_DELEGATE, Crd::obj(c, 0, 0x1f));
    CHECK(r.status == Status::SUCCESS && r.crd == Crd::obj(c, 0, 0x1f),
          "delegation into the new PD: %s, CRD %#lx", status_name(r.status), r.crd.value());
    // Translate the new PD's capability back into our space.
    r = deleg(pd, SEL_ROOT_PD, Crd::obj(c, 0, 0x1f), 0, Crd::obj(0, 31, 0x1f));
    CHECK_ST(r.status, Status::SUCCESS, "pd_ctrl delegate (translate)");
    CHECK(r.crd.type() == Crd::OBJ && r.crd.base() == a && r.crd.order() == 0,
          "translation gave CRD %#lx, expected selector %#lx (CRD(OBJ, %#lx, 0, ..))", r.crd.value(), a, a);
    CHECK(r.crd.rights() == Perm_sm::CREATED, "translation gave rights %#x, expected the node's 0x03",
          r.crd.rights());
    CHECK(r.meta.value() == 0, "translation result metadata %#lx, expected 0", r.meta.value());
    // A window that does not cover the original gives nothing.
    r = deleg(pd, SEL_ROOT_PD, Crd::obj(c, 0, 0x1f), 0, Crd::obj(a + 1, 0, 0x1f));
    CHECK(r.status == Status::SUCCESS && r.crd.value() == 0,
          "translation into a window without the original gave %#lx", r.crd.value());
}

void f_kinds(Test &t)
{
    u64 a = t.sel(), pd = t.sel(), back = t.sel(2);
    REQUIRE(a && pd && back && new_sm(t, a));
    CHECK_ST(create_pd(pd, SEL_ROOT_PD), Status::SUCCESS, "create_pd");
    // Kind 2 into a PD the capability does not come from: falls back to delegation, metadata bit 0 set.
    Delegate_result r =
        deleg(SEL_ROOT_PD, pd, Crd::obj(a, 0, 0x1f), 0x50ull << 12 | 2, Crd::obj(0x50, 0, 0x1f));
    CHECK_ST(r.status, Status::SUCCESS, "translate-or-delegate");
    CHECK(r.crd == Crd::obj(0x50, 0, 0x1f) && r.meta.value() == 3,
          "kind 2 fallback: CRD %#lx meta %#lx, expected %#lx and 3", r.crd.value(), r.meta.value(),
          Crd::obj(0x50, 0, 0x1f).value());
    r = deleg(pd, SEL_ROOT_PD, Crd::obj(0x50, 0, 0x1f), back << 12 | META_DELEGATE, Crd::obj(back, 0, 0x1f));
    CHECK(r.status == Status::SUCCESS && same_sm(back, a), "the new PD did not get the semaphore at 0x50");
    // Kind 2 back to us: translates (no fallback bit).
    r = deleg(pd, SEL_ROOT_PD, Crd::obj(0x50, 0, 0x1f), 2, Crd::obj(0, 31, 0x1f));
    CHECK(r.status == Status::SUCCESS && r.crd.base() == a && r.crd.type() == Crd::OBJ && r.meta.value() == 2,
          "kind 2 translation: CRD %#lx meta %#lx", r.crd.value(), r.meta.value());
    // Kind 3 is invalid: null result, nothing transferred.
    r = deleg(SEL_ROOT_PD, SEL_ROOT_PD, Crd::obj(a, 0, 0x1f), (back + 1) << 12 | 3,
              Crd::obj(back + 1, 0, 0x1f));
    CHECK(r.status == Status::SUCCESS && r.crd.value() == 0 && lookup_obj(back + 1) == 0,
          "kind 3: CRD %#lx, lookup %#lx", r.crd.value(), lookup_obj(back + 1));
    // Bits 8:2 of the metadata come back unchanged.
    r = deleg(SEL_ROOT_PD, SEL_ROOT_PD, Crd::obj(a, 0, 0x1f), (back + 1) << 12 | 0x1fc | META_DELEGATE,
              Crd::obj(back + 1, 0, 0x1f));
    CHECK(r.status == Status::SUCCESS && (r.meta.value() & 0x1ff) == (0x1fc | 1) && !(r.meta.value() >> 12),
          "metadata bits 8:2: result %#lx, expected 0x1fd", r.meta.value());
}

// Reduced rights: an SC capability has only bit 0; delegating rights 0x02 leaves nothing.
void f_rights_sc(Test &t)
{
    u64 s = t.sel();
    REQUIRE(s);
    Delegate_result r =
        deleg(SEL_ROOT_PD, SEL_ROOT_PD, Crd::obj(SEL_ROOT_SC, 0, 0x1f), META_DELEGATE, Crd::obj(s, 0, 0x02));
    CHECK_ST(r.status, Status::SUCCESS, "pd_ctrl delegate");
    CHECK(lookup_obj(s) == 0, "an SC capability with rights 0 arrived (%#lx)", lookup_obj(s));
    CHECK_ST(sc_ctrl(s).status, Status::BAD_CAP, "sc_ctrl through it");
}

// Reduced rights on memory: a read-only copy of a RAM page faults on write, reads work.
void f_rights_mem(Test &t)
{
    CHECK(root_portals, "no root exception portals");
    u8 *p = static_cast<u8 *>(scratch_page(t));
    REQUIRE(p);
    u64 v = alloc_virt(PAGE_SIZE);
    REQUIRE(v);
    t.own_mem(v, 0);
    p[8] = 0x6b;
    Delegate_result r =
        deleg(SEL_ROOT_PD, SEL_ROOT_PD, Crd::mem(reinterpret_cast<u64>(p) >> PAGE_BITS, 0, 0x1f),
              (v >> PAGE_BITS) << 12 | META_DELEGATE, Crd::mem(v >> PAGE_BITS, 0, Perm_mem::R));
    CHECK_ST(r.status, Status::SUCCESS, "pd_ctrl delegate");
    CHECK(lookup_mem(v >> PAGE_BITS) == Crd::mem(v >> PAGE_BITS, 0, Perm_mem::R).value(),
          "lookup of the copy: %#lx", lookup_mem(v >> PAGE_BITS));
    u64 w;
    CHECK(probe_read64(reinterpret_cast<void *>(v + 8), &w) && (w & 0xff) == 0x6b,
          "reading the read-only copy");
    u64 before = last_exc.count;
    CHECK(!probe_write8(reinterpret_cast<void *>(v + 8), 0x6b), "writing the read-only copy worked");
    CHECK(last_exc.count == before + 1 && last_exc.id == Evt::PF && last_exc.qual0 == 7,
          "expected a page fault with error code 7, got event %lu error %#lx", last_exc.id, last_exc.qual0);
}

// ---- F.103: memory in the reply to a page fault ---------------------------------------------

u64 f103_fault_page, f103_backing_page;

bool f103_hook(u64 v, Utcb &u)
{
    if (v != Evt::PF || u.qual[1] >> PAGE_BITS != f103_fault_page)
        return false;
    u.item(0).set(Crd::mem(f103_backing_page, 0, Perm_mem::RW),
                  Item_meta(Item_meta::DELEGATE, f103_fault_page));
    u.set_items(0, 1);
    u.mtd = 0;  // resume unchanged: the access is repeated and now succeeds
    return true;
}

void reader_handler(u64, Utcb &u)
{
    u64 v = 0;
    bool ok = probe_read64(reinterpret_cast<void *>(u.data[0]), &v);
    u.data[0] = ok;
    u.data[1] = v;
    u.set_items(2, 0);
}

void f103(Test &t)
{
    u64 *backing = static_cast<u64 *>(scratch_page(t));
    REQUIRE(backing);
    backing[3] = 0x103103103103ull;
    Child_pd c;
    REQUIRE(make_child(t, c, boot_cpu(), reader_handler, true));
    u64 fault = alloc_virt(PAGE_SIZE);  // not mapped in the child
    f103_fault_page = fault >> PAGE_BITS;
    f103_backing_page = reinterpret_cast<u64>(backing) >> PAGE_BITS;
    exc_hook = f103_hook;
    u64 before = last_exc.count;
    utcb().data[0] = fault + 24;
    utcb().set_items(1, 0);
    CHECK_ST(call(c.pt), Status::SUCCESS, "call into the child");
    CHECK(last_exc.count == before + 1 && last_exc.id == Evt::PF,
          "expected one page fault message, got %lu (event %lu)", last_exc.count - before, last_exc.id);
    CHECK(utcb().data[0] == 1, "the child's read failed after the reply with the memory item");
    CHECK(utcb().data[1] == 0x103103103103ull, "the child read %#lx, expected %#lx", utcb().data[1],
          u64{0x103103103103});
    // The mapping stays: a second read does not fault.
    utcb().data[0] = fault + 24;
    utcb().set_items(1, 0);
    CHECK_ST(call(c.pt), Status::SUCCESS, "second call into the child");
    CHECK(last_exc.count == before + 1 && utcb().data[0] == 1, "the second read faulted again");
}

// ---- translation windows (ABI 3.3, 3.5) ----------------------------------------------------

u64 xlt_item_sel;  // the selector in the child the reply's item names

void kind2_reply_handler(u64, Utcb &u)
{
    u.item(0).set(Crd::obj(xlt_item_sel, 0, 0x1f), Item_meta(Item_meta::TRANSLATE_OR_DELEGATE, 0));
    u.set_items(0, 1);
}

// Kind 2 in a reply translates through the caller's translate window and only falls back to
// its delegate window: a capability that came from us comes back as our original even when
// the delegate window lies elsewhere.
void f_xlt_kind2(Test &t)
{
    u64 a = t.sel(), back = t.sel();
    REQUIRE(a && back && new_sm(t, a));
    Child_pd c;
    REQUIRE(make_child(t, c, boot_cpu(), kind2_reply_handler, false));
    xlt_item_sel = 0x50;
    Delegate_result r = deleg(SEL_ROOT_PD, c.pd, Crd::obj(a, 0, 0x1f), 0x50ull << 12 | META_DELEGATE,
                              Crd::obj(0x50, 0, 0x1f));
    CHECK(r.status == Status::SUCCESS && r.crd == Crd::obj(0x50, 0, 0x1f),
          "delegation to the child: CRD %#lx", r.crd.value());
    Utcb &u = utcb();
    u.set_items(0, 0);
    u.xlt = Crd::obj(a, 0, 0x1f).value();
    u.del = Crd::obj(back, 0, 0x1f).value();
    Status st = call(c.pt);
    u64 crd = u.item(0).crd, meta = u.item(0).meta;
    u.xlt = 0;
    u.del = 0;
    CHECK_ST(st, Status::SUCCESS, "call into the child");
    CHECK(Crd(crd).type() == Crd::OBJ && Crd(crd).base() == a && (meta & 3) == 2,
          "kind 2 reply: CRD %#lx meta %#lx, expected a translation to %#lx with meta 2 (no fallback)", crd,
          meta, a);
    CHECK(lookup_obj(back) == 0, "the item was delegated into the delegate window as well");
}

// The H bit names the kernel as the source of a delegation; a translation still starts at the
// sender's own node (here the root PD translating to itself: its own node, 3.5 step 3).
void f_xlt_hbit(Test &t)
{
    u64 a = t.sel();
    REQUIRE(a && new_sm(t, a));
    Delegate_result r = deleg(SEL_ROOT_PD, SEL_ROOT_PD, Crd::obj(a, 0, 0x1f), 0x800, Crd::obj(0, 31, 0x1f));
    CHECK_ST(r.status, Status::SUCCESS, "pd_ctrl delegate (translate with H)");
    CHECK(r.crd.type() == Crd::OBJ && r.crd.base() == a && r.crd.order() == 0,
          "translation with the H bit gave CRD %#lx, expected selector %#lx", r.crd.value(), a);
}

// An event reply has no translate window (3.3): a kind 2 item from a handler in the faulting
// EC's own PD delegates into the implicit window at the fault address instead of "translating"
// the handler's node to itself, so the access that faulted works when it is repeated.
u64 evt_fault_page, evt_backing_page, evt_faults;

bool evt_kind2_hook(u64 v, Utcb &u)
{
    if (v != Evt::PF || u.qual[1] >> PAGE_BITS != evt_fault_page)
        return false;
    if (++evt_faults > 1)
        return false;  // the mapping did not come: let the probe fail
    u.item(0).set(Crd::mem(evt_backing_page, 0, Perm_mem::RW),
                  Item_meta(Item_meta::TRANSLATE_OR_DELEGATE, evt_fault_page));
    u.set_items(0, 1);
    u.mtd = 0;  // resume unchanged: the access is repeated
    return true;
}

void f_evt_kind2(Test &t)
{
    CHECK(root_portals, "no root exception portals");
    u64 *backing = static_cast<u64 *>(scratch_page(t));
    REQUIRE(backing);
    backing[5] = 0x3b3b3b3b;
    u64 v = alloc_virt(PAGE_SIZE);
    REQUIRE(v);
    t.own_mem(v, 0);
    evt_fault_page = v >> PAGE_BITS;
    evt_backing_page = reinterpret_cast<u64>(backing) >> PAGE_BITS;
    evt_faults = 0;
    exc_hook = evt_kind2_hook;
    u64 w = 0;
    bool ok = probe_read64(reinterpret_cast<void *>(v + 40), &w);
    exc_hook = nullptr;
    CHECK(ok && w == 0x3b3b3b3b,
          "the read after a kind 2 reply to its page fault %s (value %#lx, %lu faults)",
          ok ? "read the wrong value" : "faulted again", w, evt_faults);
}

const Test_case list[] = {
    {"F.84", "delegating an SM capability makes the copy refer to the same semaphore", f84, 0},
    {"F.85", "delegation result: rdx = CRD(OBJ, window, 0, 0x1f), rax = 1", f85, 0},
    {"F.86", "window rights 0x01 give an up-only copy: down BAD_CAP, up works", f86, 0},
    {"F.87", "send type != window type (or window rights 0) gives a null result", f87, 0},
    {"F.88", "order 2 into an order 4 window with hotspot +8 lands at +8..+11", f88, 0},
    {"F.89", "delegating into an occupied selector leaves it unchanged", f89, 0},
    {"F.90", "revoke without self removes the copy, keeps the original", f90, 0},
    {"F.91", "revoke with self removes the original too; the selector is free again", f91, 0},
    {"F.92", "revoke of rights 0x02 with self leaves an up-only capability", f92, 0},
    {"F.93", "revoke of a null CRD gives SUCCESS", f93, 0},
    {"F.94", "remote revoke with a non-PD selector gives BAD_CAP", f94, 0},
    {"F.95", "H-bit memory delegation maps physical memory (the module's ELF header)", f95, 0},
    {"F.96", "H-bit delegation of the hypervisor region maps nothing (access faults)", f96, 0},
    {"F.97", "H-bit I/O delegation of port 0x80 makes in/out work", f97, 0},
    {"F.98", "H-bit object delegation of 64 + g gives a GSI semaphore for assign_gsi", f98, 0},
    {"F.99", "H-bit object delegation of the boot CPU number gives its idle SC", f99, 0},
    {"F.100", "pd_ctrl delegate with a non-PD source or destination gives BAD_CAP", f100, 0},
    {"F.101", "pd_ctrl sub-op 3 gives BAD_PAR", f101, 0},
    {"F.102", "translation gives back the receiver's original selector", f102, 0},
    {"F.kinds", "item kinds: translate-or-delegate falls back (meta 3), invalid gives null", f_kinds, 0},
    {"F.xlt-kind2", "kind 2 in a reply translates through the translate window, not the delegate window",
     f_xlt_kind2, 0},
    {"F.xlt-hbit", "the H bit does not make a translation start at the kernel", f_xlt_hbit, 0},
    {"F.evt-kind2", "kind 2 in an event reply delegates into the implicit window (no translate window)",
     f_evt_kind2, 0},
    {"F.rights-sc", "an SC delegated with rights 0x02 arrives as nothing", f_rights_sc, 0},
    {"F.rights-mem", "a read-only memory copy reads but faults on write", f_rights_mem, 0},
    {"F.103", "memory in the reply to a page fault maps it; the access completes", f103, 0},
};

}  // namespace

const Test_section sec_deleg = {list, sizeof(list) / sizeof(list[0])};
