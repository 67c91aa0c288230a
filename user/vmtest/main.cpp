/*
 * vCPU test root task and VMM (docs/testing.md, "vmtest"; ABI 7.4, 10.4; docs/virtualization.md).
 *
 * A VM PD gets 128 KiB of our memory as guest-physical [0, 128 KiB) (delegations with the G bit)
 * and the 256 exit portals of a handler EC of ours; one vCPU in it runs the guest of
 * user/vmtest/guest.S, which walks through its steps (r15 = step) and makes every kind of exit
 * the VMM checks: startup (reset state), CPUID, IN/OUT incl. REP OUTSB, RDMSR/WRMSR, a nested
 * page fault answered with a G-bit mapping, HLT, injection of a hardware exception with error
 * code, an external interrupt and an NMI, the interrupt window, the TSC offset, XSETBV, recall
 * from another EC (another CPU where there is one) while the guest spins, a state the CPU
 * refuses (invalid state, 253) and its repair, an exit benchmark, and a triple fault (shutdown).
 * Before that, two vCPUs that must be killed: one without exit portals (PT not found) and one
 * whose startup reply sets an XCR0 the host cannot load (Invalid XCR0); the scenario checks
 * those lines.
 */
#include <nova/nova.hpp>

#include "string.hpp"

using namespace nova;
using test::check;

extern "C" char guest_start[], guest_end[], guest_gp[], guest_vec30[], guest_vec31[], guest_nmi[];

namespace {

// Guest-physical layout (user/vmtest/guest.S).
constexpr u64 RAM_ORDER = 5;  // 32 pages
constexpr u64 RAM_SIZE = PAGE_SIZE << RAM_ORDER;
constexpr u64 G_PML4 = 0x1000, G_PDPT = 0x2000, G_PD = 0x3000, G_GDT = 0x5000,
              G_IDT = 0x6000;  // data: 0x4000
constexpr u64 G_STACK = 0x8000, G_CODE = 0x10000;
constexpr u64 D_VECTOR = 0x4000, D_ERROR = 0x4008, D_TSC = 0x4020, D_XSAVE = 0x4030, D_RECALLED = 0x4040,
              D_STRING = 0x4100, D_LOOPS = 0x4200;
constexpr u64 NPF_GPA = 0x200000, STACK_GPA = 0x20f000;
constexpr u64 NPF_MAGIC = 0x1122334455667788ull;
constexpr u64 LOOPS = 2000;
constexpr u64 TSC_BUMP = u64{1} << 50;

alignas(RAM_SIZE) u8 ram[RAM_SIZE];
alignas(PAGE_SIZE) u8 npf_page[PAGE_SIZE];
alignas(PAGE_SIZE) u8 stack_page[PAGE_SIZE];  // mapped at STACK_GPA when the delivery faults there

// SVM exit codes (AMD APM vol. 2, appendix C) and the ABI's event numbers (10.4).
constexpr u64 EX_VINTR = 0x64, EX_CPUID = 0x72, EX_HLT = 0x78, EX_IOIO = 0x7b, EX_MSR = 0x7c,
              EX_SHUTDOWN = 0x7f, EX_XSETBV = 0x8d, EV_NPF = 252, EV_INVALID = 253, EV_STARTUP = 254,
              EV_RECALL = 255;

// What the exit portals receive: all state there is on SVM (not FPU; CTRL and TLB are write only).
constexpr u64 MTD_IN = Mtd::GPR_ACDB | Mtd::GPR_BSD | Mtd::GPR_R8_R15 | Mtd::RSP | Mtd::RIP_LEN |
                       Mtd::RFLAGS | Mtd::DS_ES | Mtd::FS_GS | Mtd::CS_SS | Mtd::TR | Mtd::LDTR | Mtd::GDTR |
                       Mtd::IDTR | Mtd::CR | Mtd::DR | Mtd::SYSENTER | Mtd::QUAL | Mtd::INJ | Mtd::STA |
                       Mtd::TSC | Mtd::EFER_PAT | Mtd::SYSCALL_SWAPGS;
// What a reply that sets the whole guest state writes (not TSC: additive; not INJ, CTRL).
constexpr u64 MTD_STATE = Mtd::GPR_ACDB | Mtd::GPR_BSD | Mtd::GPR_R8_R15 | Mtd::RSP | Mtd::RIP_LEN |
                          Mtd::RFLAGS | Mtd::DS_ES | Mtd::FS_GS | Mtd::CS_SS | Mtd::TR | Mtd::LDTR |
                          Mtd::GDTR | Mtd::IDTR | Mtd::CR | Mtd::DR | Mtd::SYSENTER | Mtd::STA |
                          Mtd::EFER_PAT | Mtd::SYSCALL_SWAPGS;

constexpr u32 I_CPUID = 1u << 18;  // intercept word 0 (ctrl[0])
constexpr u32 INJ_VALID = 1u << 31, INJ_ERROR = 1u << 11;
constexpr u32 T_EXTINT = 0u << 8, T_NMI = 2u << 8, T_EXC = 3u << 8, T_SWINT = 4u << 8;

u64 rdtsc() { return __builtin_ia32_rdtsc(); }
u64 ticks_ms(u64 ms) { return u64{hip()->freq_tsc} * ms; }

template <typename T> T &at(u64 gpa) { return *reinterpret_cast<T *>(ram + gpa); }

struct State
{
    unsigned cpu, recall_cpu;
    u64 vm_pd, vcpu, recall_sm;
    bool xsave;
    u64 events[256];
    u64 tsc_before;
    bool window_asked, invalid_asked, done;
    u64 recalls, port80_exits;
    bool xsetbv_exit_ok;
    Status recall_status;
    Utcb good;  // the guest's state before the refused one (step 15)
} st;

u64 guest_addr(const char *sym) { return G_CODE + static_cast<u64>(sym - guest_start); }

void idt_gate(unsigned vec, const char *handler)
{
    u64 a = guest_addr(handler);
    auto *g = &at<u64>(G_IDT + 16 * u64{vec});
    // 64-bit interrupt gate: selector 0x08, present, DPL 0, type 0xe.
    g[0] = (a & 0xffff) | u64{0x08} << 16 | u64{0x8e00} << 32 | (a >> 16 & 0xffff) << 48;
    g[1] = a >> 32;
}

// Guest memory: page tables (identity map of the first GiB, 2 MiB pages), GDT, IDT, code, data.
void build_guest()
{
    at<u64>(G_PML4) = G_PDPT | 3;
    at<u64>(G_PDPT) = G_PD | 3;
    for (u64 i = 0; i < 512; i++)
        at<u64>(G_PD + 8 * i) = i << 21 | 0x83;
    at<u64>(G_GDT + 0x08) = 0x00af9b000000ffffull;  // 64-bit code
    at<u64>(G_GDT + 0x10) = 0x00cf93000000ffffull;  // data
    idt_gate(2, guest_nmi);
    idt_gate(13, guest_gp);
    idt_gate(0x30, guest_vec30);
    idt_gate(0x31, guest_vec31);
    for (const char *p = guest_start; p < guest_end; p++)
        ram[G_CODE + static_cast<u64>(p - guest_start)] = static_cast<u8>(*p);
    at<char>(D_STRING) = 'a';
    at<char>(D_STRING + 1) = 'b';
    at<char>(D_STRING + 2) = 'c';
    at<u64>(D_XSAVE) = st.xsave;
    for (u64 i = 0; i < PAGE_SIZE / 8; i++)
        reinterpret_cast<u64 *>(npf_page)[i] = NPF_MAGIC;
}

Utcb_segment seg(u16 sel, u16 ar, u32 limit = 0xffffffff) { return Utcb_segment{sel, ar, limit, 0}; }

// The startup reply: 64-bit mode, interrupts off, CPUID intercepted.
void long_mode(Utcb &u)
{
    u.cs = seg(0x08, 0xa9b);
    u.ss = u.ds = u.es = u.fs = u.gs = seg(0x10, 0xc93);
    u.tr = seg(0x18, 0x8b, 0x67);
    u.ldtr = seg(0, 0, 0);
    u.gdtr = Utcb_segment{0, 0, 0x1f, G_GDT};
    u.idtr = Utcb_segment{0, 0, 0xfff, G_IDT};
    u.cr0 = 0x80050033;  // PG WP NE ET MP PE
    u.cr3 = G_PML4;
    u.cr4 = 0x620 | (st.xsave ? 1u << 18 : 0);  // PAE OSFXSR OSXMMEXCPT (OSXSAVE)
    u.cr2 = 0;
    u.xcr0 = 1;
    u.efer = 0x500;  // LME LMA
    u.pat = 0x0007040600070406ull;
    u.dr7 = 0x400;
    u.rip = G_CODE;
    u.rsp = G_STACK;
    u.rflags = 2;
    u.intr_state = 0;
    u.ctrl[0] = I_CPUID;
    u.ctrl[1] = 0;
    u.exc_bitmap = 0;
    u.inj = 0;
    u.mtd = MTD_STATE | Mtd::CTRL | Mtd::INJ;
}

[[noreturn]] void fail_exit(const char *what, u64 n, Utcb &u)
{
    check(false, "%s: event %#lx at step %lu (rip %#lx, qual %#lx %#lx)", what, n, u.r15, u.rip, u.qual[0],
          u.qual[1]);
    test::exit();
}

void on_io(Utcb &u)
{
    u64 q = u.qual[0], port = q >> 16 & 0xffff, step = u.r15;
    bool in = q & 1, str = q & 4, rep = q & 8, size8 = q & 0x10;
    // IOIO's EXITINFO2 is the next RIP; the kernel gives the length (no next-RIP save under TCG).
    bool len_ok = u.qual[1] == u.rip + u.inst_len && u.inst_len == 2;
    u.mtd = Mtd::RIP_LEN;
    u.rip = u.qual[1];
    if (port == 0x80 && step == 19) {  // the guest's port while revoked: exits once
        st.port80_exits++;
        return;
    }
    switch (port) {
    case 0x80:
        check(step == 2 && !in && size8 && !str && !rep && (u.rax & 0xff) == 0x5a && len_ok,
              "OUT: port 0x80, byte 0x5a, out, qualification %#lx, next RIP %#lx, length %lu", q, u.qual[1],
              u.inst_len);
        return;
    case 0x81:
        check(step == 3 && in && size8 && !str && len_ok, "IN: port 0x81, byte, in (qualification %#lx)", q);
        u.rax = (u.rax & ~u64{0xff}) | 0xa5;
        u.mtd |= Mtd::GPR_ACDB;
        return;
    case 0x82: {
        bool text = u.rcx == 3 && u.rsi == D_STRING && !memcmp(ram + D_STRING, "abc", 3);
        check(step == 4 && !in && str && rep && size8 && text && len_ok,
              "REP OUTSB: port 0x82, string and rep bits, rcx 3, rsi at \"abc\" (qualification %#lx)", q);
        u.rsi += u.rcx;  // emulated
        u.rcx = 0;
        u.mtd |= Mtd::GPR_ACDB | Mtd::GPR_BSD;
        return;
    }
    case 0xe2: {
        u64 v = at<u64>(D_VECTOR);
        if (step == 8)
            check(v == 13 && at<u64>(D_ERROR) == 0x1234,
                  "injected #GP with error code 0x1234 reached the guest "
                  "(vector %lu, error %#lx)",
                  v, at<u64>(D_ERROR));
        else if (step == 9)
            check(v == 0x30, "injected external interrupt 0x30 reached the guest (vector %#lx)", v);
        else if (step == 10)
            check(v == 2, "injected NMI reached the guest (vector %lu)", v);
        else if (step == 12)
            check(
                v == 0x31 && st.events[EX_VINTR] == 1,
                "the interrupt window exit came once after STI; interrupt 0x31 injected there (vector %#lx)",
                v);
        else if (step == 18)
            check(v == 0x30 && st.events[EV_NPF] == 3,
                  "after the nested page fault during its delivery, interrupt 0x30 reached the guest (vector "
                  "%#lx)",
                  v);
        else
            fail_exit("injection check out of order", EX_IOIO, u);
        return;
    }
    case 0xe1:
        check(step == 11 && at<u64>(D_VECTOR) == 0x30,
              "injected software interrupt 0x30 (type 4) reached the guest (vector %#lx)", at<u64>(D_VECTOR));
        return;
    case 0xe3:  // ask for the interrupt window (ABI 4.5 bit 12), interrupts are off in the guest
        st.window_asked = true;
        u.intr_info = Inj::REQ_INTR_WINDOW;
        u.intr_error = 0;
        u.mtd |= Mtd::INJ;
        return;
    case 0xe4:
        st.tsc_before = rdtsc();
        u.tsc_off = TSC_BUMP;  // additive on SVM (ABI 5)
        u.mtd |= Mtd::TSC;
        return;
    case 0xe5: {
        u64 g = at<u64>(D_TSC);
        check(g >= st.tsc_before + TSC_BUMP && g < rdtsc() + TSC_BUMP,
              "the guest's TSC includes the offset 2^50 (guest %#lx, host before %#lx)", g, st.tsc_before);
        return;
    }
    case 0xe6:         // the guest spins now: let the recaller recall the vCPU
        if (st.xsave)  // with or without an XSETBV exit, the guest's XCR0 is what it set
            check(u.xcr0 == 3 && (!st.events[EX_XSETBV] || st.xsetbv_exit_ok),
                  "the guest's XCR0 after its XSETBV is 3 (%#lx); XSETBV %s", u.xcr0,
                  !st.events[EX_XSETBV] ? "did not exit (the CPU does not intercept it)"
                  : st.xsetbv_exit_ok   ? "exited (0x8d) with XCR0 := 3 asked and the guest's still 1"
                                        : "exited with wrong operands");
        sm_up(st.recall_sm);
        return;
    case 0xe7:  // reply with CR0.PG without PE: VMRUN's consistency checks refuse it (253)
        st.good = u;
        st.good.rip = u.qual[1];
        st.invalid_asked = true;
        u.cr0 = 0x80000010;
        u.mtd |= Mtd::CR;
        return;
    case 0xea: {  // take the page at 2 MiB away again: revoke reaches the guest's nested page table
        Status r = revoke(Crd::mem(reinterpret_cast<u64>(npf_page) >> 12, 0, Perm_mem::RWX));
        check(r == Status::SUCCESS, "revoke of the page the guest sees at 2 MiB");
        return;
    }
    case 0xeb:  // give port 0x80 to the guest
        check(pd_delegate(self_pd(), st.vm_pd, Crd::pio(0x80, 0),
                          Item_meta(Item_meta::DELEGATE, 0, Item_meta::G), Crd::pio(0x80, 0))
                      .crd == Crd::pio(0x80, 0),
              "port 0x80 delegated to the VM with the G bit");
        return;
    case 0xec:
        check(st.port80_exits == 0, "the guest's OUT to its own port 0x80 does not exit (%lu exits)",
              st.port80_exits);
        check(revoke(Crd::pio(0x80, 0)) == Status::SUCCESS, "revoke of the guest's port 0x80");
        return;
    case 0xed:
        check(st.port80_exits == 1, "after the revoke the OUT to port 0x80 exits again (%lu exits)",
              st.port80_exits);
        return;
    case 0xe8:
        at<u64>(D_LOOPS) = LOOPS;
        st.events[EX_CPUID] = 0;
        return;
    case 0xe9: {
        u64 t = at<u64>(D_TSC);
        check(st.events[EX_CPUID] == LOOPS, "the benchmark's %lu CPUIDs made as many exits (%lu)", LOOPS,
              st.events[EX_CPUID]);
        printf("BENCH vm-exit round trip (guest CPUID -> VMM reply -> guest) %8llu ticks\n",
               static_cast<unsigned long long>(t / LOOPS));
        return;
    }
    case 0xee: fail_exit("a check in the guest failed", EX_IOIO, u);
    case 0xef:
        check(step == 21, "the guest went through all 20 steps");
        if (st.xsave && !st.events[EX_XSETBV])  // QEMU's TCG does not intercept it (docs/virtualization.md)
            test::report(test::Verdict::SKIP, "XSETBV exit: the CPU did not intercept XSETBV");
        st.done = true;
        return;
    default: fail_exit("unexpected port", EX_IOIO, u);
    }
}

void vmm(u64 n, Utcb &u)
{
    st.events[n & 0xff]++;
    u64 step = u.r15;
    u.set_items(0, 0);
    switch (n) {
    case EV_STARTUP:
        check(u.cs.sel == 0xf000 && u.cs.base == 0xffff0000 && u.rip == 0xfff0 && u.cr0 == 0x60000010 &&
                  u.efer == 0x1000 && u.rflags == 2,
              "startup (254): the vCPU's reset state (CS %#x base %#lx, RIP %#lx, CR0 %#lx, EFER %#lx)",
              u.cs.sel, u.cs.base, u.rip, u.cr0, u.efer);
        long_mode(u);
        return;
    case EX_CPUID:
        if (step == 1)
            check(u.rax == 0x4711 && u.qual[0] == 0, "CPUID exit with the guest's leaf (rax %#lx)", u.rax);
        else if (step != 20)
            fail_exit("unexpected CPUID", n, u);
        u.rax = 0xa;
        u.rbx = 0xb;
        u.rcx = 0xc;
        u.rdx = 0xd;
        u.rip += 2;
        u.mtd = Mtd::GPR_ACDB | Mtd::RIP_LEN;
        return;
    case EX_IOIO: on_io(u); return;
    case EX_MSR:
        if (step == 5 && u.qual[0] == 0) {
            check(u.rcx == 0x12345, "RDMSR exit (EXITINFO1 0) for MSR 0x12345 (%#lx)", u.rcx);
            u.rax = 0xbeef;
            u.rdx = 0xdead;
        } else if (step == 6 && u.qual[0] == 1)
            check(u.rcx == 0x12346 && (u.rax & 0xffffffff) == 1 && (u.rdx & 0xffffffff) == 2,
                  "WRMSR exit (EXITINFO1 1) of 2:1 to MSR 0x12346");
        else
            fail_exit("unexpected MSR exit", n, u);
        u.rip += 2;
        u.mtd = Mtd::GPR_ACDB | Mtd::RIP_LEN;
        return;
    case EV_NPF: {
        u64 page = reinterpret_cast<u64>(npf_page), gpa = NPF_GPA;
        if (step == 7 && st.events[EV_NPF] == 1)
            check(u.qual[1] == NPF_GPA && !(u.qual[0] & 3) && (u.qual[0] >> 32 & 1),
                  "nested page fault (252) at guest-physical %#lx: a read of a page not present, final "
                  "translation (EXITINFO1 %#lx)",
                  u.qual[1], u.qual[0]);
        else if (step == 17 && st.events[EV_NPF] == 2)
            check(u.qual[1] == NPF_GPA, "after the revoke, the guest's read at 2 MiB faults again (%#lx)",
                  u.qual[1]);
        else if (step == 18 && st.events[EV_NPF] == 3) {
            // The CPU pushed the interrupt's frame below 0x210000: the event is pending (EXITINTINFO).
            check((u.qual[1] & ~u64{0xfff}) == STACK_GPA && (u.qual[0] & 2) &&
                      u.inj == (INJ_VALID | T_EXTINT | 0x30),
                  "nested page fault during the delivery of interrupt 0x30: a write at %#lx, the event in "
                  "inj (%#lx)",
                  u.qual[1], u.inj);
            page = reinterpret_cast<u64>(stack_page);
            gpa = STACK_GPA;
        } else
            fail_exit("unexpected nested page fault", n, u);
        // The reply's item maps our page there: G bit, window at the fault (ABI 10.2).
        u.set_items(0, 1);
        u.item(0).set(Crd::mem(page >> 12, 0, Perm_mem::RWX),
                      Item_meta(Item_meta::DELEGATE, gpa >> 12, Item_meta::G));
        u.mtd = 0;  // the guest repeats the access; a pending event goes again (the kernel injects it)
        return;
    }
    case EX_HLT:
        u.rip += 1;
        u.mtd = Mtd::RIP_LEN | Mtd::INJ;
        u.intr_error = 0;
        if (step == 8) {
            u.intr_info = INJ_VALID | T_EXC | INJ_ERROR | 13;
            u.intr_error = 0x1234;
        } else if (step == 9 || step == 18)  // at 18 its delivery faults: the stack is not mapped
            u.intr_info = INJ_VALID | T_EXTINT | 0x30;
        else if (step == 10)
            u.intr_info = INJ_VALID | T_NMI | 2;
        else if (step == 11)
            u.intr_info = INJ_VALID | T_SWINT | 0x30;
        else
            fail_exit("unexpected HLT", n, u);
        return;
    case EX_VINTR:
        if (step != 12 || !st.window_asked)
            fail_exit("unexpected interrupt window exit", n, u);
        check((u.rflags & 0x200) && !u.intr_state, "interrupt window exit (0x64): guest IF on, no shadow");
        st.window_asked = false;
        u.intr_info = INJ_VALID | T_EXTINT | 0x31;  // bit 12 clear: no more window exits
        u.intr_error = 0;
        u.mtd = Mtd::INJ;
        return;
    case EX_XSETBV:
        if (step != 14)
            fail_exit("unexpected XSETBV", n, u);
        // Checked with the guest's XCR0 afterwards (one check whether or not the CPU intercepts).
        st.xsetbv_exit_ok =
            u.rcx == 0 && (u.rax & 0xffffffff) == 3 && (u.rdx & 0xffffffff) == 0 && u.xcr0 == 1;
        u.xcr0 = 3;
        u.rip += 3;
        u.mtd = Mtd::CR | Mtd::RIP_LEN;
        return;
    case EV_RECALL:
        if (step == 15) {
            at<u64>(D_RECALLED) = 1;
            st.recalls++;
        }
        u.mtd = 0;
        return;
    case EV_INVALID:
        if (step != 16 || !st.invalid_asked)
            fail_exit("unexpected invalid state", n, u);
        check(true, "a state the CPU refuses (CR0.PG without PE) gives invalid state (253)");
        st.invalid_asked = false;
        u = st.good;  // the whole good state again (QEMU overwrites RIP and RAX, docs/virtualization.md)
        u.set_items(0, 0);
        u.mtd = MTD_STATE;
        return;
    case EX_SHUTDOWN:
        check(st.done, "the guest's triple fault ends in a shutdown exit (0x7f)");
        check(st.recalls == 1 && st.recall_status == Status::SUCCESS,
              "one recall (255) while the guest spun, from the EC on CPU %u (ec_ctrl: %s)", st.recall_cpu,
              status_name(st.recall_status));
        test::exit();
    default: fail_exit("unexpected exit", n, u);
    }
}

// ---- the recaller ------------------------------------------------------------------------------

[[noreturn]] void recaller()
{
    for (;;) {
        sm_down(st.recall_sm);
        for (u64 end = rdtsc() + ticks_ms(20); rdtsc() < end;)  // the guest spins meanwhile
            pause();
        st.recall_status = ec_recall(st.vcpu);  // checked by the VMM (one console writer at a time)
    }
}

// ---- set-up -------------------------------------------------------------------------------------

// 256 exit portals of a new handler EC of ours, delegated into pd at its selectors [evt, evt + 256).
bool exit_portals(u64 pd, u64 evt, Portal_handler handler)
{
    u64 hsel = alloc_sel(), base = alloc_sel(256);
    Handler_ec h;
    if (!hsel || !base || create_handler_ec(h, hsel, self_pd(), st.cpu, handler) != Status::SUCCESS)
        return false;
    for (u64 n = 0; n < 256; n++)
        if (create_portal(base + n, hsel, MTD_IN, n | 0x1000) != Status::SUCCESS)
            return false;
    return pd_delegate(self_pd(), pd, Crd::obj(base, 8, Crd::ALL_RIGHTS), Item_meta(Item_meta::DELEGATE, 0),
                       Crd::obj(evt, 8, Crd::ALL_RIGHTS))
               .status == Status::SUCCESS;
}

void vmm_entry(u64 id, Utcb &u) { vmm(id & 0xfff, u); }

// The startup handler of the vCPU that must die: an XCR0 without x87.
volatile u64 bad_startups;
void bad_xcr0(u64, Utcb &u)
{
    bad_startups = bad_startups + 1;
    u.set_items(0, 0);
    u.xcr0 = 0;
    u.mtd = Mtd::CR;
}

// ---- ASIDs ---------------------------------------------------------------------------------------

// More vCPUs on one CPU than QEMU has ASIDs (16): each spins on CPUID in real mode; the kernel's
// ASID generations turn over while they take turns (docs/virtualization.md). Any exit other than
// CPUID (an invalid state from a bad ASID, say) is counted as unexpected.
constexpr unsigned ASID_VCPUS = 24;
constexpr u64 SPIN_CODE = 0x1f000;  // cpuid; jmp back
volatile u64 spin_exits[ASID_VCPUS], spin_unexpected, spin_started;

void spin_vmm(u64 id, Utcb &u)
{
    u64 n = id & 0xfff;
    u.set_items(0, 0);
    if (n == EV_STARTUP) {
        u64 i = spin_started;
        spin_started = i + 1;
        u.cs = Utcb_segment{0, 0x9b, 0xffff, 0};
        u.rip = SPIN_CODE;
        u.rbx = i;
        u.ctrl[0] = I_CPUID;
        u.ctrl[1] = 0;
        u.exc_bitmap = 0;
        u.mtd = Mtd::CS_SS | Mtd::RIP_LEN | Mtd::GPR_ACDB | Mtd::CTRL;
        u.ss = seg(0, 0x93, 0xffff);
        return;
    }
    if (n == EX_CPUID && u.rbx < ASID_VCPUS) {
        spin_exits[u.rbx] = spin_exits[u.rbx] + 1;
        u.rip += 2;
        u.rax = u.rcx = u.rdx = 0;  // rbx stays: the vCPU's index
        u.mtd = Mtd::RIP_LEN | Mtd::GPR_ACDB;
        return;
    }
    spin_unexpected = spin_unexpected + 1;
    u.mtd = 0;
}

void asid_turnover()
{
    at<u8>(SPIN_CODE) = 0x0f;  // cpuid
    at<u8>(SPIN_CODE + 1) = 0xa2;
    at<u8>(SPIN_CODE + 2) = 0xeb;  // jmp -4
    at<u8>(SPIN_CODE + 3) = 0xfc;
    u64 pd = alloc_sel(), base = alloc_sel(2 * ASID_VCPUS);
    bool ok =
        pd && base && create_pd(pd, self_pd()) == Status::SUCCESS && exit_portals(pd, 0, spin_vmm) &&
        pd_delegate(self_pd(), pd, Crd::mem(reinterpret_cast<u64>(ram) >> 12, RAM_ORDER, Perm_mem::RWX),
                    Item_meta(Item_meta::DELEGATE, 0, Item_meta::G), Crd::mem(0, RAM_ORDER, Perm_mem::RWX))
                .status == Status::SUCCESS;
    for (u64 i = 0; ok && i < ASID_VCPUS; i++)
        ok = create_ec(base + 2 * i, pd, st.cpu, 0, 0, 0, Create_ec_flag::VCPU | Create_ec_flag::GLOBAL) ==
                 Status::SUCCESS &&
             create_sc(base + 2 * i + 1, self_pd(), base + 2 * i, Qpd(1, 1000)) == Status::SUCCESS;
    check(ok, "%u vCPUs on CPU %u, more than its ASIDs", ASID_VCPUS, st.cpu);
    u64 wait = alloc_sel();
    create_sm(wait, self_pd(), 0);
    sm_down(wait, rdtsc() + ticks_ms(300));
    // The SCs first: a vCPU still running when its PD (with the exit portals) goes would be killed.
    for (u64 i = 0; i < ASID_VCPUS; i++)
        revoke(Crd::obj(base + 2 * i + 1, 0), Revoke_flag::SELF);
    for (u64 i = 0; i < ASID_VCPUS; i++)
        revoke(Crd::obj(base + 2 * i, 0), Revoke_flag::SELF);
    revoke(Crd::obj(pd, 0), Revoke_flag::SELF);
    u64 least = ~u64{0};
    for (unsigned i = 0; i < ASID_VCPUS; i++)
        least = spin_exits[i] < least ? spin_exits[i] : least;
    check(
        spin_started == ASID_VCPUS && least >= 2 && !spin_unexpected,
        "each of the %u vCPUs ran with its own ASIDs through the turnovers: %lu started, at least %lu CPUID "
        "exits each, %lu other exits",
        ASID_VCPUS, spin_started, least, spin_unexpected);
}

// Two vCPUs that the kernel must kill (ABI 10.5): no exit portal; an invalid XCR0 in a reply.
void doomed_vcpus()
{
    u64 pd = alloc_sel(), vcpu = alloc_sel(), sc = alloc_sel();
    bool ok = create_pd(pd, self_pd()) == Status::SUCCESS &&
              create_ec(vcpu, pd, st.cpu, 0, 0, 0, Create_ec_flag::VCPU | Create_ec_flag::GLOBAL) ==
                  Status::SUCCESS &&
              create_sc(sc, self_pd(), vcpu, Qpd(1, 1000)) == Status::SUCCESS;
    check(ok, "a vCPU in a PD without exit portals is created and gets an SC (kill: PT not found)");

    u64 pd2 = alloc_sel(), vcpu2 = alloc_sel(), sc2 = alloc_sel();
    ok = create_pd(pd2, self_pd()) == Status::SUCCESS && exit_portals(pd2, 0, bad_xcr0) &&
         create_ec(vcpu2, pd2, st.cpu, 0, 0, 0, Create_ec_flag::VCPU | Create_ec_flag::GLOBAL) ==
             Status::SUCCESS &&
         create_sc(sc2, self_pd(), vcpu2, Qpd(1, 1000)) == Status::SUCCESS;
    check(ok, "a vCPU whose startup reply sets XCR0 0 is created and gets an SC (kill: Invalid XCR0)");
    u64 wait = alloc_sel();
    create_sm(wait, self_pd(), 0);
    sm_down(wait, rdtsc() + ticks_ms(50));  // our SC is of a higher priority: let them run
    check(bad_startups == 1, "the second vCPU's startup message came once (%lu)", bad_startups);
}

// The vCPU cases of the hypercalls (ABI 7.4-7.6, 7.10) on a machine with SVM.
void hypercall_paths()
{
    constexpr unsigned V = Create_ec_flag::VCPU, G = Create_ec_flag::GLOBAL;
    u64 pd = alloc_sel(), s = alloc_sel(), s2 = alloc_sel(), s3 = alloc_sel(), sm = alloc_sel();
    if (!pd || !s || !s2 || !s3 || !sm || create_pd(pd, self_pd()) != Status::SUCCESS ||
        create_sm(sm, self_pd(), 0) != Status::SUCCESS) {
        check(false, "set-up of the vCPU hypercall checks");
        return;
    }
    check(create_ec(s, sm, 64, 0, 0, 0, V | G) == Status::BAD_CPU,
          "create_ec of a vCPU on CPU 64 with a non-PD gives BAD_CPU (the CPU is checked first)");
    check(create_ec(s, sm, st.cpu, 0, 0, 0, V | G) == Status::BAD_CAP,
          "create_ec of a vCPU in a non-PD: BAD_CAP");
    check(create_ec(sm, pd, st.cpu, 0, 0, 0, V | G) == Status::BAD_CAP,
          "create_ec of a vCPU on an occupied selector: BAD_CAP");
    // rdx[63:12] names a virtual-APIC page, which only VMX has: ignored, never checked as a UTCB.
    check(create_ec(s, pd, st.cpu, USER_ADDR, 0, 0, V | G) == Status::SUCCESS,
          "create_ec of a global vCPU with rdx[63:12] beyond USER_ADDR: SUCCESS (no UTCB)");
    check(create_ec(s2, pd, st.cpu, 0, 0, 0, V) == Status::SUCCESS, "create_ec of a local vCPU: SUCCESS");
    check(create_pt(s3, self_pd(), s2, 0, 0x1000) == Status::BAD_CAP, "create_pt bound to a vCPU: BAD_CAP");
    check(create_sc(s3, self_pd(), s2, Qpd(1, 1000)) == Status::BAD_CAP,
          "create_sc for a local vCPU: BAD_CAP");
    check(ec_help(s, 0) == Status::BAD_PAR, "ec_ctrl help of a vCPU: BAD_PAR");
    check(ec_recall(s) == Status::SUCCESS && ec_recall(s) == Status::SUCCESS,
          "ec_ctrl recall of a vCPU that never ran: SUCCESS, twice");
    Crd l = pd_lookup(Crd::obj(s, 0)).crd;
    check(l == Crd::obj(s, 0, 0x0d), "the vCPU's capability has the EC permissions 0x0d (lookup %#lx)",
          l.value());
    check(pd_lookup(Crd::mem(0, 0)).crd.is_null(), "no UTCB of the vCPUs appears at page 0 of our PD");
    revoke(Crd::obj(s, 0), Revoke_flag::SELF);
    revoke(Crd::obj(s2, 0), Revoke_flag::SELF);
    revoke(Crd::obj(pd, 0), Revoke_flag::SELF);
    revoke(Crd::obj(sm, 0), Revoke_flag::SELF);
}

}  // namespace

int main(const Hip *hip, unsigned cpu)
{
    Console::init();
    test::begin("vmtest");
    catch_exceptions(cpu);
    st.cpu = cpu;
    if (!hip->has(Hip::FEAT_SVM)) {
        check(false, "the HIP announces SVM (boot with -cpu max or an AMD CPU with nested paging)");
        test::exit();
    }
    unsigned eax, ebx, ecx, edx;
    __asm__("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(1), "c"(0));
    st.xsave = ecx & (1u << 26);
    st.recall_cpu = cpu;
    for (unsigned i = 0; i < hip->num_cpu_desc(); i++)
        if (i != cpu && hip->cpu(i)->online()) {
            st.recall_cpu = i;
            break;
        }

    hypercall_paths();
    doomed_vcpus();
    check(request_ports(0x80, 0) == Status::SUCCESS, "port 0x80 from the kernel (for the guest)");

    build_guest();
    asid_turnover();
    st.vm_pd = alloc_sel();
    st.vcpu = alloc_sel();
    st.recall_sm = alloc_sel();
    u64 evt = 0x1000, sc = alloc_sel();
    bool ok = create_pd(st.vm_pd, self_pd()) == Status::SUCCESS && exit_portals(st.vm_pd, evt, vmm_entry) &&
              create_sm(st.recall_sm, self_pd(), 0) == Status::SUCCESS;
    check(ok, "VM PD with 256 exit portals");
    // Guest RAM: our 128 KiB at guest-physical 0 (G bit).
    auto r =
        pd_delegate(self_pd(), st.vm_pd, Crd::mem(reinterpret_cast<u64>(ram) >> 12, RAM_ORDER, Perm_mem::RWX),
                    Item_meta(Item_meta::DELEGATE, 0, Item_meta::G), Crd::mem(0, RAM_ORDER, Perm_mem::RWX));
    check(r.status == Status::SUCCESS && r.crd == Crd::mem(0, RAM_ORDER, Perm_mem::RWX),
          "guest RAM delegated with the G bit (result %#lx)", r.crd.value());
    ok = start_thread(st.recall_cpu, 3, reinterpret_cast<void (*)()>(recaller)) &&
         create_ec(st.vcpu, st.vm_pd, cpu, 0, 0, evt, Create_ec_flag::VCPU | Create_ec_flag::GLOBAL) ==
             Status::SUCCESS;
    check(ok, "recaller EC on CPU %u; vCPU on CPU %u", st.recall_cpu, cpu);
    if (!ok)
        test::exit();
    check(create_sc(sc, self_pd(), st.vcpu, Qpd(2, 10000)) == Status::SUCCESS, "the vCPU gets an SC");
    park();  // the VMM's handler ends the test
}
