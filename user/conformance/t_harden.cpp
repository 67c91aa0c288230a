/*
 * Section K: the kernel's hardening where the contract is silent (docs/architecture.md,
 * "Protection"). UMIP: with a CPU that has it, sgdt, sidt, sldt, str and smsw in user mode raise
 * #GP, an exception event (10.2). NMIs: hypercalls keep their register contract while NMIs
 * arrive at any instruction (the scenario harden-nmi-storm sends them, module option
 * `nmistorm`). #MC: a machine check that interrupts user mode is the EC's event 0x12 (10.2; the
 * scenario harden-mce injects one, module option `mce`).
 */
#include "suite.hpp"

// One instruction each, then ret; the labels let the #GP hook check the rip and skip it.
asm(R"(
    .text
    .global umip_sgdt, umip_sidt, umip_sldt, umip_str, umip_smsw
    .global umip_sgdt_next, umip_sidt_next, umip_sldt_next, umip_str_next, umip_smsw_next
umip_sgdt:  sgdt (%rdi)
umip_sgdt_next: ret
umip_sidt:  sidt (%rdi)
umip_sidt_next: ret
umip_sldt:  sldt %ax
umip_sldt_next: ret
umip_str:   str %ax
umip_str_next: ret
umip_smsw:  smsw %ax
umip_smsw_next: ret

    /* (const volatile u64 *flag, u64 deadline): spin in user mode until *flag or the TSC passes. */
    .global mce_spin, mce_spin_end
mce_spin:
1:  pause
    cmpq $0, (%rdi)
    jne 2f
    rdtsc
    shl $32, %rdx
    or %rdx, %rax
    cmp %rsi, %rax
    jb 1b
2:  ret
mce_spin_end:
)");

extern "C" {
u64 umip_sgdt(void *buf);
u64 umip_sidt(void *buf);
u64 umip_sldt();
u64 umip_str();
u64 umip_smsw();
extern char umip_sgdt_next[], umip_sidt_next[], umip_sldt_next[], umip_str_next[], umip_smsw_next[];
void mce_spin(const volatile u64 *flag, u64 deadline);
extern char mce_spin_end[];
}

namespace {

// ---- K.umip --------------------------------------------------------------------------------

u64 umip_insn, umip_next;  // the instruction under test and where its #GP resumes

bool skip_umip(u64 v, Utcb &u)
{
    if (v != Evt::GP || u.rip != umip_insn)
        return false;
    u.rip = umip_next;
    u.mtd = Mtd::RIP_LEN;
    return true;
}

void k_umip(Test &t)
{
    u32 r[4];
    cpuid(0, 0, r);
    bool umip = false;
    if (r[0] >= 7) {
        cpuid(7, 0, r);
        umip = r[2] & (1u << 2);
    }
    alignas(16) u8 buf[16] = {};
    struct
    {
        const char *name;
        void (*run)(void *);
        u64 insn;
        char *next;
    } const insns[] = {
        {"sgdt", [](void *b) { umip_sgdt(b); }, reinterpret_cast<u64>(umip_sgdt), umip_sgdt_next},
        {"sidt", [](void *b) { umip_sidt(b); }, reinterpret_cast<u64>(umip_sidt), umip_sidt_next},
        {"sldt", [](void *) { umip_sldt(); }, reinterpret_cast<u64>(umip_sldt), umip_sldt_next},
        {"str", [](void *) { umip_str(); }, reinterpret_cast<u64>(umip_str), umip_str_next},
        {"smsw", [](void *) { umip_smsw(); }, reinterpret_cast<u64>(umip_smsw), umip_smsw_next},
    };
    if (!umip) {
        // Without UMIP they are plain user instructions: they must run without an event.
        u64 before = last_exc.count;
        for (auto &i : insns)
            i.run(buf);
        CHECK(last_exc.count == before, "without UMIP an instruction raised event %lu", last_exc.id);
        t.skip("the CPU has no UMIP (CPUID.7.0:ECX[2]); the five instructions ran in user mode");
        return;
    }
    if (!root_portals) {
        t.fail("the root EC has no exception portals (setup failed), not faulting on purpose");
        return;
    }
    for (auto &i : insns) {
        umip_insn = i.insn;
        umip_next = reinterpret_cast<u64>(i.next);
        exc_hook = skip_umip;
        u64 before = last_exc.count;
        i.run(buf);
        exc_hook = nullptr;
        CHECK(last_exc.count == before + 1, "%s in user mode: %lu event messages, expected one (#GP)", i.name,
              last_exc.count - before);
        CHECK(last_exc.id == Evt::GP && last_exc.qual0 == 0 && last_exc.rip == i.insn,
              "%s: event %#lx error %#lx rip %#lx, expected #GP (0xd) error 0 at %#lx", i.name, last_exc.id,
              last_exc.qual0, last_exc.rip, i.insn);
    }
    t.note("sgdt sidt sldt str smsw: #GP each");
}

// ---- K.nmi-loop ----------------------------------------------------------------------------

const char *const reg_names[16] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
                                   "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};

u64 reg(const Raw_regs &r, unsigned i) { return reinterpret_cast<const u64 *>(&r)[i]; }

// Ups and downs on another CPU's semaphore until told to stop (arg[1]); result[0]: rounds,
// result[1]: statuses other than SUCCESS.
void updown_loop(Thread &th)
{
    u64 rounds = 0, bad = 0;
    while (!__atomic_load_n(&th.arg[1], __ATOMIC_ACQUIRE)) {
        bad += sm_up(th.arg[0]) != Status::SUCCESS;
        bad += sm_down(th.arg[0]).status != Status::SUCCESS;
        rounds++;
    }
    th.result[0] = rounds;
    th.result[1] = bad;
}

void k_nmi_loop(Test &t)
{
    bool storm = module_option("nmistorm");
    u64 ms = storm ? 8000 : 30;
    u64 sm = t.sel(), sm2 = t.sel();
    REQUIRE(sm && sm2);
    CHECK_ST(create_sm(sm, SEL_ROOT_PD, 0), Status::SUCCESS, "create_sm");
    CHECK_ST(create_sm(sm2, SEL_ROOT_PD, 0), Status::SUCCESS, "create_sm");
    static Thread th;
    unsigned c = other_cpu();
    th.arg[0] = sm2;
    th.arg[1] = 0;
    bool helper = c != NO_CPU && spawn(&t, th, c, 1, updown_loop);
    if (storm)
        printf("suite: K.nmi-loop: hypercalls for %lu ms on CPU %u%s (module option nmistorm)\n", ms,
               boot_cpu(), helper ? " and another CPU" : "");
    // sm_ctrl up and down (the fast path) and hypercall 15 (BAD_HYP, the general path), with a
    // distinct value in every register; 1.4 and 7.13 fix what each leaves in them.
    const u64 words[3] = {Hypercall_id(Hypercall::SM_CTRL, 0, sm).value(),
                          Hypercall_id(Hypercall::SM_CTRL, Sm_flag::DOWN, sm).value(), 0xf};
    const u64 want[3] = {0, 0, static_cast<u64>(Status::BAD_HYP)};
    u64 end = deadline_ms(ms), n = 0;
    while (rdtsc() < end) {
        for (unsigned k = 0; k < 3; k++, n++) {
            Raw_regs in, out;
            u64 *w = reinterpret_cast<u64 *>(&in);
            for (unsigned i = 0; i < 16; i++)
                w[i] = 0x4b00000000000000ull | (n & 0xffffff) << 16 | i;
            in.rsp = 0;
            in.rdi = words[k];
            in.rflags = 0x202 | 0x8d5;  // CF PF AF ZF SF OF and DF set before
            raw_syscall(&in, &out);
            CHECK(out.rdi == want[k], "hypercall %lu (rdi %#lx): rdi %#lx, expected %#lx", n, in.rdi, out.rdi,
                  want[k]);
            CHECK(out.rcx == reinterpret_cast<u64>(raw_syscall_ret) && out.r11 == 0x200 &&
                      out.rflags == 0x202,
                  "hypercall %lu: rcx %#lx r11 %#lx rflags %#lx after it", n, out.rcx, out.r11, out.rflags);
            for (unsigned i = 0; i < 16; i++) {
                if (i == 2 || i == 5 || i == 7 || i == 11)  // rcx, rdi, rsp, r11: checked above
                    continue;
                CHECK(reg(out, i) == reg(in, i), "hypercall %lu (rdi %#lx): %s changed from %#lx to %#lx", n,
                      in.rdi, reg_names[i], reg(in, i), reg(out, i));
            }
        }
    }
    if (helper) {
        __atomic_store_n(&th.arg[1], 1, __ATOMIC_RELEASE);
        CHECK(join(th, 2000), "the up/down loop on CPU %u did not stop", c);
        CHECK(th.result[1] == 0, "%lu ups or downs on CPU %u failed", th.result[1], c);
        t.note("%lu hypercalls here, %lu up/down rounds on CPU %u", n, th.result[0], c);
    } else
        t.note("%lu hypercalls", n);
}

// ---- K.mce ---------------------------------------------------------------------------------

volatile u64 mce_seen;
u64 mce_rip, mce_error;

bool record_mce(u64 v, Utcb &u)
{
    if (v != Evt::MC)
        return false;
    mce_rip = u.rip;
    mce_error = u.qual[0];
    mce_seen = 1;
    u.mtd = 0;  // resume where it was
    return true;
}

void k_mce(Test &t)
{
    if (!module_option("mce")) {
        t.skip("no machine check to wait for (module option mce, scenario harden-mce)");
        return;
    }
    if (!root_portals) {
        t.fail("the root EC has no exception portals (setup failed)");
        return;
    }
    mce_seen = 0;
    exc_hook = record_mce;
    printf("suite: K.mce: spinning in user mode on CPU %u until a machine check arrives\n", boot_cpu());
    mce_spin(&mce_seen, deadline_ms(20000));
    exc_hook = nullptr;
    CHECK(mce_seen, "no #MC event (0x12) within 20 s");
    CHECK(mce_rip >= reinterpret_cast<u64>(mce_spin) && mce_rip < reinterpret_cast<u64>(mce_spin_end),
          "#MC event with rip %#lx, outside the spinning loop %p..%p", mce_rip,
          reinterpret_cast<void *>(mce_spin), reinterpret_cast<void *>(mce_spin_end));
    t.note("#MC event at rip %#lx, error %#lx", mce_rip, mce_error);
}

const Test_case cases[] = {
    {"K.umip", "with UMIP, sgdt sidt sldt str smsw in user mode raise #GP events", k_umip, 0},
    {"K.nmi-loop", "hypercalls keep every register while NMIs may arrive (nmistorm: 8 s)", k_nmi_loop, 60},
    {"K.mce", "a machine check in user mode is the EC's event 0x12 (module option mce)", k_mce, 60},
};

}  // namespace

const Test_section sec_harden = {cases, sizeof cases / sizeof cases[0]};
