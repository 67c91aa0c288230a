/*
 * Hypercall decoding (include/decode.hpp) and the perform step of create_* (include/create.hpp)
 * against a fake environment: an object space in a std::map, fake objects with the fields the
 * checks read, an allocator and an insert that can be told to fail.
 *
 * Every hypercall's checks are listed in the order of ABI section 7, each with a way to make
 * it fail. The tests break each check alone (its status), every pair (the earlier check wins)
 * and compare everything the decode could touch before and after (a failed decode changes
 * nothing).
 */
#include <cstring>
#include <functional>
#include <gtest/gtest.h>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "abi/utcb.hpp"
#include "create.hpp"

namespace {

struct Fake_pd : Kobject
{
    static constexpr Obj_type TYPE = Obj_type::PD;
    Fake_pd() : Kobject(TYPE) {}
};

struct Fake_ec : Kobject
{
    static constexpr Obj_type TYPE = Obj_type::EC;
    enum State : u8 { RUNNABLE, WAIT_CALL, IN_CALL, BLOCKED, PARKED };
    Fake_pd *pd = nullptr;
    unsigned cpu = 0;
    bool global = true;
    Utcb *utcb = nullptr;
    State state = RUNNABLE;
    Fake_ec *callee = nullptr;
    bool dead = false;
    bool vcpu = false;
    bool is_vcpu() const { return vcpu; }
    Fake_ec() : Kobject(TYPE) {}
};

struct Fake_sc : Kobject
{
    static constexpr Obj_type TYPE = Obj_type::SC;
    Fake_sc() : Kobject(TYPE) {}
};

struct Fake_pt : Kobject
{
    static constexpr Obj_type TYPE = Obj_type::PT;
    Fake_pt() : Kobject(TYPE) {}
};

struct Fake_sm : Kobject
{
    static constexpr Obj_type TYPE = Obj_type::SM;
    Fake_sm *chain = nullptr;
    int gsi = -1;
    bool is_signal() const { return chain != nullptr; }
    Fake_sm() : Kobject(TYPE) {}
};

constexpr unsigned ALL = 0x1f;
constexpr u64 SEL_PD = 0x20, SEL_GEC = 0x21, SEL_LEC = 0x22, SEL_SC = 0x23, SEL_PT = 0x24, SEL_SM = 0x25,
              SEL_SIG = 0x26, SEL_GSI = 0x27, SEL_GSI2 = 0x28, SEL_NEW = 0x40, SEL_EMPTY = 0x41;
constexpr u64 UTCB_ADDR = 0x7000'0000;
constexpr u64 TLS = 0x1234;

/* The fake environment of include/decode.hpp and include/create.hpp. */
struct Fake_env
{
    using Pd = Fake_pd;
    using Ec = Fake_ec;
    using Sc = Fake_sc;
    using Pt = Fake_pt;
    using Sm = Fake_sm;

    std::map<u64, Capability> space;
    std::set<unsigned> online{0, 1};
    std::set<u64> utcbs_taken;
    Fake_ec *me = nullptr;
    bool kstat_option = false;

    Capability lookup(u64 sel) const
    {
        auto i = space.find(sel % (u64{1} << 26));
        return i == space.end() ? Capability{} : i->second;
    }
    bool cpu_online(unsigned cpu) const { return online.count(cpu) != 0; }
    bool utcb_free(Fake_pd *, u64 addr) const { return utcbs_taken.count(addr) == 0; }
    Fake_ec *self() const { return me; }
    bool kstat() const { return kstat_option; }
    bool virt_option = false;
    bool virt() const { return virt_option || vmx_option; }
    bool vmx_option = false;
    bool vmx() const { return vmx_option; }
    std::map<u64, long> config_pages;  // assign_pci: address in the target PD -> requester ID
    std::set<u16> iommu_devices;       // functions behind an IOMMU unit
    long config_rid(Fake_pd *, u64 va) const
    {
        auto i = config_pages.find(va);
        return i == config_pages.end() ? -1 : i->second;
    }
    bool iommu_device(u16 rid) const { return iommu_devices.count(rid) != 0; }

    // The perform step: an allocator with a budget, an insert with a chosen outcome.
    int alloc_budget = 1 << 30;
    bool utcb_race = false;
    Insert insert_outcome = Insert::OK;
    Fake_sm racer;                             // what a racing CPU put at the selector
    std::vector<std::shared_ptr<void>> owned;  // keeps each fake's own deleter
    std::vector<Kobject *> made, destroyed, populated, started;

    template <typename T> T *make()
    {
        if (alloc_budget-- <= 0)
            return nullptr;
        auto *o = new T;
        owned.emplace_back(std::shared_ptr<T>(o));
        made.push_back(o);
        return o;
    }
    Fake_pd *new_pd(const u64 * = nullptr) { return make<Fake_pd>(); }
    Fake_ec *new_ec(Fake_pd *, const Sys_create_ec &, bool &taken)
    {
        if (utcb_race) {
            taken = true;
            return nullptr;
        }
        return make<Fake_ec>();
    }
    Fake_sc *new_sc(Fake_ec *, Qpd) { return make<Fake_sc>(); }
    Fake_pt *new_pt(Fake_ec *, u64, u64) { return make<Fake_pt>(); }
    Fake_sm *new_sm(u64, Fake_sm *) { return make<Fake_sm>(); }
    Insert insert(u64 sel, Kobject *obj, unsigned perm)
    {
        if (insert_outcome == Insert::TAKEN)
            space[sel] = Capability{&racer, ALL};
        else if (insert_outcome == Insert::OK)
            space[sel] = Capability{obj, perm};
        return insert_outcome;
    }
    void destroy_unpublished(Kobject *obj) { destroyed.push_back(obj); }
    // A racing revoke on another CPU dropped the last reference of the objects in `retired`.
    std::set<const Kobject *> retired;
    std::vector<Kobject *> holds, drops;
    bool hold(Kobject *o)
    {
        if (retired.count(o))
            return false;
        holds.push_back(o);
        return true;
    }
    void drop(Kobject *o) { drops.push_back(o); }
    void populate(Fake_pd *pd, Crd) { populated.push_back(pd); }
    void start(Fake_sc *sc) { started.push_back(sc); }
};

/* A caller with one object of each kind, and a frame whose arguments a test fills in. */
struct World
{
    Fake_env env;
    Fake_pd pd;
    Fake_ec self, gec, lec;
    Fake_sc sc;
    Fake_pt pt;
    Fake_sm sm, sig, gsi, gsi2;
    Utcb utcb{};
    Exc_frame f{};

    World()
    {
        self.pd = gec.pd = lec.pd = &pd;
        lec.global = false;
        gec.utcb = &utcb;
        utcb.tls = TLS;
        sig.chain = &sm;
        gsi.gsi = 5;
        gsi2.gsi = 6;
        env.me = &self;
        env.space = {{SEL_PD, {&pd, ALL}},   {SEL_GEC, {&gec, ALL}}, {SEL_LEC, {&lec, ALL}},
                     {SEL_SC, {&sc, ALL}},   {SEL_PT, {&pt, ALL}},   {SEL_SM, {&sm, ALL}},
                     {SEL_SIG, {&sig, ALL}}, {SEL_GSI, {&gsi, ALL}}, {SEL_GSI2, {&gsi2, ALL}}};
    }

    void id(Hypercall h, unsigned flags, u64 sel) { f.rdi = Hypercall_id(h, flags, sel).value(); }
    void set_sel(u64 sel) { f.rdi = (f.rdi & 0xff) | sel << 8; }
    void take(u64 sel, unsigned perm) { env.space[sel].perm &= ~perm; }

    // Everything a decode could change, to compare before and after.
    struct Snapshot
    {
        std::map<u64, std::pair<Kobject *, unsigned>> space;
        Exc_frame f;
        std::vector<u32> refs;
        size_t made, destroyed;
        bool operator==(const Snapshot &o) const
        {
            return space == o.space && !memcmp(&f, &o.f, sizeof f) && refs == o.refs && made == o.made &&
                   destroyed == o.destroyed;
        }
    };
    Snapshot snapshot() const
    {
        Snapshot s{{}, f, {}, env.made.size(), env.destroyed.size()};
        for (auto &[sel, c] : env.space)
            s.space[sel] = {c.obj, c.perm};
        for (const Kobject *o :
             std::initializer_list<const Kobject *>{&pd, &self, &gec, &lec, &sc, &pt, &sm, &sig, &gsi, &gsi2})
            s.refs.push_back(o->ref_count());
        return s;
    }
};

using Decoder = std::function<Verdict(World &)>;

struct Check
{
    const char *what;
    Status status;
    std::function<void(World &)> breaks;
};

struct Hypercall_case
{
    const char *name;
    std::function<void(World &)> valid;  // fills the frame with arguments every check accepts
    Decoder decode;
    std::vector<Check> checks;  // in the ABI's order
};

template <typename A, typename Fn> Decoder decoder(Fn fn)
{
    return [fn](World &w) {
        Decode::Found<Fake_env> d;
        return fn(w.env, A{Sys{w.f}}, d);
    };
}

std::vector<Hypercall_case> cases()
{
    using namespace Decode;
    auto sel_taken = Check{"the new selector is taken", Status::BAD_CAP, [](World &w) { w.set_sel(SEL_SM); }};
    return {
        {"create_pd",
         [](World &w) {
             w.id(Hypercall::CREATE_PD, 0, SEL_NEW);
             w.f.rsi = SEL_PD;
         },
         decoder<Sys_create_pd>(create_pd<Fake_env>),
         {{"rsi is empty", Status::BAD_CAP, [](World &w) { w.f.rsi = SEL_EMPTY; }},
          {"rsi is an EC", Status::BAD_CAP, [](World &w) { w.f.rsi = SEL_GEC; }},
          {"rsi lacks CREATE_PD", Status::BAD_CAP, [](World &w) { w.take(SEL_PD, Perm_pd::CREATE_PD); }},
          sel_taken}},
        {"create_ec",
         [](World &w) {
             w.id(Hypercall::CREATE_EC, Create_ec_flag::GLOBAL, SEL_NEW);
             w.f.rsi = SEL_PD;
             w.f.rdx = UTCB_ADDR | 1;
         },
         decoder<Sys_create_ec>(create_ec<Fake_env>),
         {{"the CPU is offline", Status::BAD_CPU, [](World &w) { w.f.rdx = (w.f.rdx & ~u64{0xfff}) | 3; }},
          {"the CPU is beyond the HIP's CPUs", Status::BAD_CPU,
           [](World &w) { w.f.rdx = (w.f.rdx & ~u64{0xfff}) | 0xfff; }},
          {"a vCPU is asked for", Status::BAD_FTR,
           [](World &w) { w.f.rdi |= u64{Create_ec_flag::VCPU} << 4; }},
          {"the UTCB address is 0", Status::BAD_FTR, [](World &w) { w.f.rdx &= 0xfff; }},
          {"rsi is an SM", Status::BAD_CAP, [](World &w) { w.f.rsi = SEL_SM; }},
          {"rsi lacks CREATE_EC", Status::BAD_CAP, [](World &w) { w.take(SEL_PD, Perm_pd::CREATE_EC); }},
          {"the UTCB is not below USER_ADDR", Status::BAD_PAR,
           [](World &w) { w.f.rdx = Abi::USER_ADDR | (w.f.rdx & 0xfff); }},
          {"the UTCB page is occupied", Status::BAD_PAR,
           [](World &w) { w.env.utcbs_taken.insert(UTCB_ADDR); }},
          sel_taken}},
        {"create_sc",
         [](World &w) {
             w.id(Hypercall::CREATE_SC, 0, SEL_NEW);
             w.f.rsi = SEL_PD;
             w.f.rdx = SEL_GEC;
             w.f.rax = Qpd(1, 1000).value();
         },
         decoder<Sys_create_sc>(create_sc<Fake_env>),
         {{"rsi is empty", Status::BAD_CAP, [](World &w) { w.f.rsi = SEL_EMPTY; }},
          {"rsi lacks CREATE_SC", Status::BAD_CAP, [](World &w) { w.take(SEL_PD, Perm_pd::CREATE_SC); }},
          {"rdx is a PD", Status::BAD_CAP, [](World &w) { w.f.rdx = SEL_PD; }},
          {"rdx lacks BIND_SC", Status::BAD_CAP, [](World &w) { w.take(SEL_GEC, Perm_ec::BIND_SC); }},
          {"the EC is local", Status::BAD_CAP, [](World &w) { w.gec.global = false; }},
          {"the priority is 0", Status::BAD_PAR, [](World &w) { w.f.rax = Qpd(0, 1000).value(); }},
          {"the priority is 128", Status::BAD_PAR, [](World &w) { w.f.rax = Qpd(128, 1000).value(); }},
          {"the quantum is 0", Status::BAD_PAR, [](World &w) { w.f.rax = Qpd(1, 0).value(); }},
          sel_taken}},
        {"create_pt",
         [](World &w) {
             w.id(Hypercall::CREATE_PT, 0, SEL_NEW);
             w.f.rsi = SEL_PD;
             w.f.rdx = SEL_LEC;
         },
         decoder<Sys_create_pt>(create_pt<Fake_env>),
         {{"rsi is empty", Status::BAD_CAP, [](World &w) { w.f.rsi = SEL_EMPTY; }},
          {"rsi lacks CREATE_PT", Status::BAD_CAP, [](World &w) { w.take(SEL_PD, Perm_pd::CREATE_PT); }},
          {"rdx is an SM", Status::BAD_CAP, [](World &w) { w.f.rdx = SEL_SM; }},
          {"rdx lacks BIND_PT", Status::BAD_CAP, [](World &w) { w.take(SEL_LEC, Perm_ec::BIND_PT); }},
          {"the EC is global", Status::BAD_CAP, [](World &w) { w.lec.global = true; }},
          {"the EC is a vCPU", Status::BAD_CAP, [](World &w) { w.lec.vcpu = true; }},
          sel_taken}},
        {"create_sm",
         [](World &w) {
             w.id(Hypercall::CREATE_SM, 0, SEL_NEW);
             w.f.rsi = SEL_PD;
             w.f.rdx = 7;
             w.f.rax = SEL_SM;
         },
         decoder<Sys_create_sm>(create_sm<Fake_env>),
         {{"rsi is empty", Status::BAD_CAP, [](World &w) { w.f.rsi = SEL_EMPTY; }},
          {"rsi lacks CREATE_SM", Status::BAD_CAP, [](World &w) { w.take(SEL_PD, Perm_pd::CREATE_SM); }},
          {"rax is a PD", Status::BAD_CAP, [](World &w) { w.f.rax = SEL_PD; }},
          {"rax lacks UP", Status::BAD_CAP, [](World &w) { w.take(SEL_SM, Perm_sm::UP); }},
          {"rax is a signal", Status::BAD_CAP, [](World &w) { w.sm.chain = &w.gsi; }},
          sel_taken}},
        {"revoke remote",
         [](World &w) {
             w.id(Hypercall::REVOKE, Revoke_flag::REMOTE | Revoke_flag::SELF, 0);
             w.f.rsi = Crd::obj(SEL_SM).value();
             w.f.rdx = SEL_PD;
         },
         decoder<Sys_revoke>(revoke<Fake_env>),
         {{"rdx is empty", Status::BAD_CAP, [](World &w) { w.f.rdx = SEL_EMPTY; }},
          {"rdx is an EC", Status::BAD_CAP, [](World &w) { w.f.rdx = SEL_GEC; }}}},
        {"pd_ctrl delegate",
         [](World &w) {
             w.id(Hypercall::PD_CTRL, static_cast<unsigned>(Pd_op::DELEGATE), SEL_PD);
             w.f.rsi = SEL_PD;
             w.f.rdx = Crd::obj(SEL_SM).value();
         },
         decoder<Sys_pd_ctrl>(pd_ctrl<Fake_env>),
         {{"the source is an SM", Status::BAD_CAP, [](World &w) { w.set_sel(SEL_SM); }},
          {"the destination is empty", Status::BAD_CAP, [](World &w) { w.f.rsi = SEL_EMPTY; }}}},
        {"ec_ctrl recall",
         [](World &w) { w.id(Hypercall::EC_CTRL, static_cast<unsigned>(Ec_op::RECALL), SEL_GEC); },
         decoder<Sys_ec_ctrl>(ec_ctrl<Fake_env>),
         {{"sel is an SC", Status::BAD_CAP, [](World &w) { w.set_sel(SEL_SC); }},
          {"sel lacks RECALL", Status::BAD_CAP, [](World &w) { w.take(SEL_GEC, Perm_ec::RECALL); }}}},
        {"ec_ctrl help",
         [](World &w) {
             w.id(Hypercall::EC_CTRL, static_cast<unsigned>(Ec_op::HELP), SEL_GEC);
             w.f.rsi = TLS;
             w.env.space[SEL_GEC].perm = 0x1;  // any permission
         },
         decoder<Sys_ec_ctrl>(ec_ctrl<Fake_env>),
         {{"sel is a PD", Status::BAD_CAP, [](World &w) { w.set_sel(SEL_PD); }},
          {"the EC is on another CPU", Status::BAD_CPU, [](World &w) { w.gec.cpu = 1; }},
          {"the EC is a vCPU", Status::BAD_PAR, [](World &w) { w.gec.vcpu = true; }},
          {"the EC is blocked", Status::BAD_PAR, [](World &w) { w.gec.state = Fake_ec::BLOCKED; }},
          {"the EC waits for a reply", Status::BAD_PAR, [](World &w) { w.gec.callee = &w.lec; }},
          {"the EC is in another PD", Status::BAD_PAR, [](World &w) { w.self.pd = nullptr; }},
          {"the TLS word differs", Status::BAD_PAR, [](World &w) { w.f.rsi = TLS + 1; }},
          {"the EC is dead", Status::BAD_PAR, [](World &w) { w.gec.dead = true; }}}},
        {"sc_ctrl",
         [](World &w) { w.id(Hypercall::SC_CTRL, 0, SEL_SC); },
         decoder<Sys>(sc_ctrl<Fake_env>),
         {{"sel is a PT", Status::BAD_CAP, [](World &w) { w.set_sel(SEL_PT); }},
          {"sel lacks CTRL", Status::BAD_CAP, [](World &w) { w.take(SEL_SC, Perm_sc::CTRL); }}}},
        {"pt_ctrl",
         [](World &w) {
             w.id(Hypercall::PT_CTRL, 0, SEL_PT);
             w.f.rsi = 99;
         },
         decoder<Sys>(pt_ctrl<Fake_env>),
         {{"sel is an SC", Status::BAD_CAP, [](World &w) { w.set_sel(SEL_SC); }},
          {"sel lacks CTRL", Status::BAD_CAP, [](World &w) { w.take(SEL_PT, Perm_pt::CTRL); }}}},
        {"sm_ctrl up",
         [](World &w) { w.id(Hypercall::SM_CTRL, 0, SEL_SIG); },  // an up may trigger a signal
         decoder<Sys_sm_ctrl>(sm_ctrl<Fake_env>),
         {{"sel is empty", Status::BAD_CAP, [](World &w) { w.set_sel(SEL_EMPTY); }},
          {"sel lacks UP", Status::BAD_CAP, [](World &w) { w.take(SEL_SIG, Perm_sm::UP); }}}},
        {"sm_ctrl down",
         [](World &w) { w.id(Hypercall::SM_CTRL, Sm_flag::DOWN | Sm_flag::ZC, SEL_SM); },
         decoder<Sys_sm_ctrl>(sm_ctrl<Fake_env>),
         {{"sel is a PD", Status::BAD_CAP, [](World &w) { w.set_sel(SEL_PD); }},
          {"sel lacks DOWN", Status::BAD_CAP, [](World &w) { w.take(SEL_SM, Perm_sm::DOWN); }},
          {"the SM is a signal", Status::BAD_CAP, [](World &w) { w.sm.chain = &w.gsi; }}}},
        {"assign_gsi",
         [](World &w) {
             w.id(Hypercall::ASSIGN_GSI, 0, SEL_GSI);
             w.f.rdx = 1;
             w.f.rax = SEL_SM;
         },
         decoder<Sys_assign_gsi>(assign_gsi<Fake_env>),
         {{"the CPU is offline", Status::BAD_CPU, [](World &w) { w.f.rdx = 2; }},
          {"the CPU is beyond the HIP's CPUs", Status::BAD_CPU, [](World &w) { w.f.rdx = 300; }},
          {"sel is a PD", Status::BAD_CAP, [](World &w) { w.set_sel(SEL_PD); }},
          {"the SM is no GSI semaphore", Status::BAD_CAP, [](World &w) { w.gsi.gsi = -1; }},
          {"rax is empty", Status::BAD_CAP, [](World &w) { w.f.rax = SEL_EMPTY; }},
          {"rax is another GSI semaphore", Status::BAD_CAP, [](World &w) { w.f.rax = SEL_GSI2; }}}},
        {"kstat",
         [](World &w) {
             w.id(Hypercall::KSTAT, Kstat_flag::REPORT, 0);
             w.env.kstat_option = true;
         },
         decoder<Sys_kstat>(kstat<Fake_env>),
         {{"the kstat option is off", Status::BAD_HYP, [](World &w) { w.env.kstat_option = false; }},
          {"the REPORT flag is clear", Status::BAD_HYP, [](World &w) { w.id(Hypercall::KSTAT, 0, 0); }}}},
    };
}

Verdict run(const Hypercall_case &c, std::initializer_list<const Check *> broken,
            World::Snapshot *before = nullptr, World::Snapshot *after = nullptr)
{
    World w;
    c.valid(w);
    for (const Check *k : broken)
        k->breaks(w);
    if (before)
        *before = w.snapshot();
    Verdict v = c.decode(w);
    if (after)
        *after = w.snapshot();
    return v;
}

TEST(Decode, EveryHypercallAcceptsArgumentsThatPassEveryCheck)
{
    for (auto &c : cases()) {
        Verdict v = run(c, {});
        EXPECT_EQ(v.status, Status::SUCCESS) << c.name << ": " << (v.reason ? v.reason : "");
        EXPECT_EQ(v.reason, nullptr) << c.name;
    }
}

TEST(Decode, EachFailingCheckAloneGivesTheAbisStatusAndAReason)
{
    for (auto &c : cases())
        for (auto &k : c.checks) {
            Verdict v = run(c, {&k});
            EXPECT_EQ(v.status, k.status) << c.name << ": " << k.what;
            EXPECT_NE(v.reason, nullptr) << c.name << ": " << k.what;
        }
}

TEST(Decode, WhenTwoChecksFailTheFirstInTheAbisOrderDecides)
{
    for (auto &c : cases())
        for (size_t i = 0; i < c.checks.size(); i++)
            for (size_t j = i + 1; j < c.checks.size(); j++) {
                // The later one is broken first: the earlier one's break is then surely in effect.
                Verdict alone = run(c, {&c.checks[i]});
                Verdict both = run(c, {&c.checks[j], &c.checks[i]});
                EXPECT_EQ(both.status, alone.status)
                    << c.name << ": " << c.checks[i].what << " + " << c.checks[j].what;
                EXPECT_STREQ(both.reason, alone.reason)
                    << c.name << ": " << c.checks[i].what << " + " << c.checks[j].what;
            }
}

TEST(Decode, AFailedDecodeChangesNothing)
{
    for (auto &c : cases())
        for (auto &k : c.checks) {
            World::Snapshot before, after;
            run(c, {&k}, &before, &after);
            EXPECT_TRUE(before == after) << c.name << ": " << k.what;
        }
}

TEST(Decode, ASuccessfulDecodeChangesNothingEither)
{
    for (auto &c : cases()) {
        World::Snapshot before, after;
        run(c, {}, &before, &after);
        EXPECT_TRUE(before == after) << c.name;
    }
}

/* ---- single cases the table does not cover ---- */

Verdict decode_raw(World &w, Verdict (*fn)(Fake_env &, const Sys_pd_ctrl &, Decode::Found<Fake_env> &))
{
    Decode::Found<Fake_env> d;
    return fn(w.env, Sys_pd_ctrl{Sys{w.f}}, d);
}

TEST(Decode, PdCtrlLookupHasNoChecks)
{
    World w;
    w.id(Hypercall::PD_CTRL, static_cast<unsigned>(Pd_op::LOOKUP), SEL_EMPTY);
    w.f.rsi = Crd::obj(SEL_EMPTY).value();
    EXPECT_TRUE(decode_raw(w, Decode::pd_ctrl<Fake_env>).ok());
}

// Every CPU the HIP describes is valid, also beyond the reference's 64 (docs/boot.md "HIP layout").
TEST(Decode, AnOnlineCpuBeyond64IsAccepted)
{
    World a;
    a.id(Hypercall::CREATE_EC, Create_ec_flag::GLOBAL, SEL_NEW);
    a.f.rsi = SEL_PD;
    a.f.rdx = UTCB_ADDR | 299;
    a.env.online.insert(299);
    Decode::Found<Fake_env> d;
    EXPECT_TRUE(Decode::create_ec(a.env, Sys_create_ec{Sys{a.f}}, d).ok());
    a.env.online.erase(299);
    EXPECT_EQ(Decode::create_ec(a.env, Sys_create_ec{Sys{a.f}}, d).status, Status::BAD_CPU);

    World b;
    b.id(Hypercall::ASSIGN_GSI, 0, SEL_GSI);
    b.f.rdx = 64;
    b.f.rax = SEL_SM;
    b.env.online.insert(64);
    Decode::Found<Fake_env> e;
    EXPECT_TRUE(Decode::assign_gsi(b.env, Sys_assign_gsi{Sys{b.f}}, e).ok());
}

TEST(Decode, WithVirtualizationAVcpuPassesWithoutUtcbChecksAndAUtcbAtZeroIsAllowed)
{
    auto decode = [](World &w) {
        Decode::Found<Fake_env> d;
        return Decode::create_ec(w.env, Sys_create_ec{Sys{w.f}}, d);
    };
    auto setup = [](World &w, bool vcpu, u64 utcb) {
        w.id(Hypercall::CREATE_EC, Create_ec_flag::GLOBAL | (vcpu ? Create_ec_flag::VCPU : 0), SEL_NEW);
        w.f.rsi = SEL_PD;
        w.f.rdx = utcb | 1;
        w.env.virt_option = true;
    };
    World a;  // a vCPU: rdx names a virtual-APIC page (VMX), never checked as a UTCB
    setup(a, true, Abi::USER_ADDR);
    a.env.utcbs_taken.insert(Abi::USER_ADDR);
    EXPECT_TRUE(decode(a).ok());
    a.take(SEL_PD, Perm_pd::CREATE_EC);  // the PD check still applies
    EXPECT_EQ(decode(a).status, Status::BAD_CAP);
    World b;  // an EC with its UTCB at page 0
    setup(b, false, 0);
    EXPECT_TRUE(decode(b).ok());
    b.env.utcbs_taken.insert(0);
    EXPECT_EQ(decode(b).status, Status::BAD_PAR);
    World c;  // without virtualization: BAD_FTR for both, after BAD_CPU
    setup(c, true, 0x1000);
    c.env.virt_option = false;
    EXPECT_EQ(decode(c).status, Status::BAD_FTR);
    c.f.rdx = 0x1000 | 3;  // an offline CPU comes first
    EXPECT_EQ(decode(c).status, Status::BAD_CPU);
}

TEST(Decode, OnVmxAVcpusVirtualApicPageIsCheckedLikeAUtcb)
{
    auto decode = [](World &w) {
        Decode::Found<Fake_env> d;
        return Decode::create_ec(w.env, Sys_create_ec{Sys{w.f}}, d);
    };
    auto setup = [](World &w, u64 vapic) {
        w.id(Hypercall::CREATE_EC,
             Create_ec_flag::GLOBAL | Create_ec_flag::VCPU | Create_ec_flag::APIC_ACCESS, SEL_NEW);
        w.f.rsi = SEL_PD;
        w.f.rdx = vapic | 1;
        w.env.vmx_option = true;
    };
    World a;  // none: nothing to check
    setup(a, 0);
    EXPECT_TRUE(decode(a).ok());
    World b;  // below USER_ADDR and free: passes
    setup(b, 0x5000);
    EXPECT_TRUE(decode(b).ok());
    b.env.utcbs_taken.insert(0x5000);  // occupied: the reference would map over it
    EXPECT_EQ(decode(b).status, Status::BAD_PAR);
    World c;  // at or above USER_ADDR: the reference maps it unchecked
    setup(c, Abi::USER_ADDR);
    EXPECT_EQ(decode(c).status, Status::BAD_PAR);
}

TEST(Decode, PdCtrlSubOperation3IsBadPar)
{
    World w;
    w.id(Hypercall::PD_CTRL, 3, SEL_PD);
    EXPECT_EQ(decode_raw(w, Decode::pd_ctrl<Fake_env>).status, Status::BAD_PAR);
}

/* The quota extension's INFO and MOVE (docs/quota.md); CREATE_PD is create_pd's decode. */
TEST(Decode, QuotaInfoNeedsAPdAndMoveAPdWithCreatePdAsSourceAndAnyPdAsDestination)
{
    auto quota = [](World &w, unsigned op, u64 sel, u64 dst = 0) {
        w.id(Hypercall::KSTAT, Quota_flag::QUOTA | op, sel);
        w.f.rsi = dst;
        w.f.r8 = QUOTA_KEY;
        Decode::Found<Fake_env> d;
        EXPECT_TRUE(Sys_quota{Sys{w.f}}.keyed());
        return Decode::quota(w.env, Sys_quota{Sys{w.f}}, d);
    };
    World w;
    EXPECT_TRUE(quota(w, 0, SEL_PD).ok());
    EXPECT_EQ(quota(w, 0, SEL_SM).status, Status::BAD_CAP);
    EXPECT_EQ(quota(w, 0, SEL_EMPTY).status, Status::BAD_CAP);
    EXPECT_TRUE(quota(w, 1, SEL_PD, SEL_PD).ok());
    EXPECT_EQ(quota(w, 1, SEL_PD, SEL_SM).status, Status::BAD_CAP);
    EXPECT_EQ(quota(w, 1, SEL_SM, SEL_PD).status, Status::BAD_CAP);
    EXPECT_EQ(quota(w, 3, SEL_PD, SEL_PD).status, Status::BAD_PAR);
    w.take(SEL_PD, ~Perm_pd::CREATE_PD);  // only CREATE_PD left: still a source and a destination
    EXPECT_TRUE(quota(w, 1, SEL_PD, SEL_PD).ok());
    w.env.space[SEL_PD].perm = Perm_pd::CREATE_EC;  // no CREATE_PD: a destination only
    EXPECT_EQ(quota(w, 1, SEL_PD, SEL_PD).status, Status::BAD_CAP);
    EXPECT_TRUE(quota(w, 0, SEL_PD).ok());
    // Without the flag or with another key it is no quota call (kstat's decode decides).
    w.id(Hypercall::KSTAT, 0, SEL_PD);
    EXPECT_FALSE(Sys_quota{Sys{w.f}}.keyed());
    w.id(Hypercall::KSTAT, Quota_flag::QUOTA, SEL_PD);
    w.f.r8 = QUOTA_KEY + 1;
    EXPECT_FALSE(Sys_quota{Sys{w.f}}.keyed());
}

TEST(Decode, MapAccessPageChecksItsCrdThenAnswersBadFtrWithoutVmx)
{
    World w;
    w.id(Hypercall::PD_CTRL, static_cast<unsigned>(Pd_op::MAP_ACCESS_PAGE), 0);
    w.f.rsi = Crd::mem(0x100, 0, Perm_mem::RW).value();
    EXPECT_EQ(decode_raw(w, Decode::pd_ctrl<Fake_env>).status, Status::BAD_FTR);
    w.env.virt_option = true;  // SVM has no APIC-access page either
    EXPECT_EQ(decode_raw(w, Decode::pd_ctrl<Fake_env>).status, Status::BAD_FTR);
    w.env.vmx_option = true;
    EXPECT_EQ(decode_raw(w, Decode::pd_ctrl<Fake_env>).status, Status::SUCCESS);
    for (Crd bad : {Crd::obj(0x100, 0, Perm_mem::RW), Crd::mem(0x100, 0, Perm_mem::RWX),
                    Crd::mem(0x100, 1, Perm_mem::RW)}) {
        w.f.rsi = bad.value();
        EXPECT_EQ(decode_raw(w, Decode::pd_ctrl<Fake_env>).status, Status::BAD_PAR)
            << std::hex << bad.value();
    }
}

TEST(Decode, EcCtrlYieldAndRescheduleHaveNoChecks)
{
    for (Ec_op op : {Ec_op::YIELD, Ec_op::RESCHEDULE}) {
        World w;
        w.id(Hypercall::EC_CTRL, static_cast<unsigned>(op), SEL_EMPTY);
        Decode::Found<Fake_env> d;
        EXPECT_TRUE(Decode::ec_ctrl(w.env, Sys_ec_ctrl{Sys{w.f}}, d).ok());
    }
}

TEST(Decode, RevokeWithoutTheRemoteFlagDoesNotLookAtRdx)
{
    World w;
    w.id(Hypercall::REVOKE, Revoke_flag::SELF, 0);
    w.f.rdx = SEL_EMPTY;
    Decode::Found<Fake_env> d;
    EXPECT_TRUE(Decode::revoke(w.env, Sys_revoke{Sys{w.f}}, d).ok());
    EXPECT_EQ(d.pd, nullptr);
}

TEST(Decode, CreateSmWithoutAChainLooksUpNoChainTarget)
{
    World w;
    w.id(Hypercall::CREATE_SM, 0, SEL_NEW);
    w.f.rsi = SEL_PD;
    Decode::Found<Fake_env> d;
    EXPECT_TRUE(Decode::create_sm(w.env, Sys_create_sm{Sys{w.f}}, d).ok());
    EXPECT_EQ(d.sm2, nullptr);
}

TEST(Decode, AssignGsiToItselfMeansUnchainAndToNoneLeavesTheChain)
{
    World w;
    w.id(Hypercall::ASSIGN_GSI, 0, SEL_GSI);
    w.f.rdx = 0;
    w.f.rax = SEL_GSI;
    Decode::Found<Fake_env> d;
    EXPECT_TRUE(Decode::assign_gsi(w.env, Sys_assign_gsi{Sys{w.f}}, d).ok());
    EXPECT_EQ(d.sm2, &w.gsi);
    w.f.rax = ~u64{0};
    Decode::Found<Fake_env> e;
    EXPECT_TRUE(Decode::assign_gsi(w.env, Sys_assign_gsi{Sys{w.f}}, e).ok());
    EXPECT_EQ(e.sm2, nullptr);
}

TEST(Decode, AssignPciChecksThePdThenAnswersBadDevWithoutAnIommu)
{
    World w;
    w.id(Hypercall::ASSIGN_PCI, 0, SEL_SM);
    Decode::Found<Fake_env> d;
    EXPECT_EQ(Decode::assign_pci(w.env, Sys_assign_pci{Sys{w.f}}, d).status, Status::BAD_CAP);
    w.set_sel(SEL_PD);
    EXPECT_EQ(Decode::assign_pci(w.env, Sys_assign_pci{Sys{w.f}}, d).status, Status::BAD_DEV);
    w.env.config_pages[0x5000] = 0x20;  // a config page, but no IOMMU covers anything
    w.f.rsi = 0x5000;
    w.f.rdx = 0x20;
    EXPECT_EQ(Decode::assign_pci(w.env, Sys_assign_pci{Sys{w.f}}, d).status, Status::BAD_DEV);
}

TEST(Decode, AssignPciChecksTheConfigPageThenTheHintThenTheDevice)
{
    World w;
    w.id(Hypercall::ASSIGN_PCI, 0, SEL_PD);
    w.env.config_pages[0x5000] = 0x20;
    w.env.config_pages[0x6000] = 0x28;
    w.env.iommu_devices = {0x20, 0x18};
    auto run = [&](u64 rsi, u64 rdx, Decode::Found<Fake_env> &d) {
        w.f.rsi = rsi;
        w.f.rdx = rdx;
        return Decode::assign_pci(w.env, Sys_assign_pci{Sys{w.f}}, d).status;
    };
    Decode::Found<Fake_env> d;
    EXPECT_EQ(run(0x7000, 0x20, d), Status::BAD_DEV);     // rsi: no config page
    EXPECT_EQ(run(0x5000, 0x28, d), Status::BAD_DEV);     // the hint names no known device
    EXPECT_EQ(run(0x5000, 0x10020, d), Status::BAD_DEV);  // the hint is no requester ID
    EXPECT_EQ(run(0x6000, 0x20, d), Status::BAD_DEV);     // nobody answers at rsi
    EXPECT_EQ(run(0x5000, 0x18, d), Status::SUCCESS);     // another device's hint selects the unit
    EXPECT_EQ(d.rid, 0x20);
    EXPECT_EQ(d.pd, &w.pd);
}

TEST(Decode, SelectorsWrapAtTheObjectSpaceSize)
{
    World w;
    w.id(Hypercall::SC_CTRL, 0, SEL_SC + (u64{1} << 26));
    Decode::Found<Fake_env> d;
    EXPECT_TRUE(Decode::sc_ctrl(w.env, Sys{w.f}, d).ok());
}

TEST(Decode, EveryHypercallNumberHasAName)
{
    EXPECT_STREQ(hypercall_name(static_cast<unsigned>(Hypercall::CREATE_SC)), "create_sc");
    EXPECT_STREQ(hypercall_name(static_cast<unsigned>(Hypercall::ASSIGN_GSI)), "assign_gsi");
    EXPECT_STREQ(hypercall_name(static_cast<unsigned>(Hypercall::KSTAT)), "kstat");
}

/* ---- the perform step of create_*: allocation, publish (the commit point), undo ---- */

struct Create_case
{
    const char *name;
    std::function<void(World &)> valid;
    std::function<Verdict(World &)> create;
    unsigned perm;
};

std::vector<Create_case> creates()
{
    auto c = cases();
    auto valid = [&c](const char *n) {
        for (auto &k : c)
            if (!strcmp(k.name, n))
                return k.valid;
        return std::function<void(World &)>{};
    };
    return {
        {"create_pd", valid("create_pd"), [](World &w) { return Create::pd(w.env, Sys_create_pd{Sys{w.f}}); },
         ALL},
        {"create_ec", valid("create_ec"), [](World &w) { return Create::ec(w.env, Sys_create_ec{Sys{w.f}}); },
         Perm_ec::CREATED},
        {"create_sc", valid("create_sc"), [](World &w) { return Create::sc(w.env, Sys_create_sc{Sys{w.f}}); },
         Perm_sc::CREATED},
        {"create_pt", valid("create_pt"), [](World &w) { return Create::pt(w.env, Sys_create_pt{Sys{w.f}}); },
         Perm_pt::CREATED},
        {"create_sm", valid("create_sm"), [](World &w) { return Create::sm(w.env, Sys_create_sm{Sys{w.f}}); },
         Perm_sm::CREATED},
    };
}

TEST(Create, ASuccessfulCreatePublishesTheNewObjectAtTheSelectorWithItsPermissions)
{
    for (auto &c : creates()) {
        World w;
        c.valid(w);
        EXPECT_TRUE(c.create(w).ok()) << c.name;
        ASSERT_EQ(w.env.made.size(), 1u) << c.name;
        Capability cap = w.env.lookup(SEL_NEW);
        EXPECT_EQ(cap.obj, w.env.made[0]) << c.name;
        EXPECT_EQ(cap.perm, c.perm) << c.name;
        EXPECT_TRUE(w.env.destroyed.empty()) << c.name;
    }
}

TEST(Create, OnlyAfterTheCommitPointCreatePdDelegatesAndCreateScStarts)
{
    World w;
    creates()[0].valid(w);
    ASSERT_TRUE(creates()[0].create(w).ok());
    EXPECT_EQ(w.env.populated, w.env.made);
    World v;
    creates()[2].valid(v);
    ASSERT_TRUE(creates()[2].create(v).ok());
    EXPECT_EQ(v.env.started, v.env.made);
}

TEST(Create, AFailedDecodeAllocatesNothing)
{
    for (auto &c : creates()) {
        World w;
        c.valid(w);
        w.set_sel(SEL_SM);
        EXPECT_EQ(c.create(w).status, Status::BAD_CAP) << c.name;
        EXPECT_TRUE(w.env.made.empty()) << c.name;
    }
}

void expect_no_trace(World &w, const World::Snapshot &before, const char *name)
{
    World::Snapshot after = w.snapshot();
    EXPECT_TRUE(before.space == after.space) << name;
    EXPECT_TRUE(before.refs == after.refs) << name;
    EXPECT_TRUE(w.env.populated.empty()) << name;
    EXPECT_TRUE(w.env.started.empty()) << name;
    EXPECT_EQ(w.env.made.size(), w.env.destroyed.size()) << name << ": every object made is destroyed";
}

TEST(Create, WhenTheAllocationFailsTheAnswerIsOomAndNothingChanges)
{
    for (auto &c : creates()) {
        World w;
        c.valid(w);
        w.env.alloc_budget = 0;
        auto before = w.snapshot();
        Verdict v = c.create(w);
        EXPECT_EQ(v.status, Status::OOM) << c.name;
        expect_no_trace(w, before, c.name);
    }
}

TEST(Create, WhenTheInsertRunsOutOfMemoryTheUnpublishedObjectIsDestroyedAndTheAnswerIsOom)
{
    for (auto &c : creates()) {
        World w;
        c.valid(w);
        w.env.insert_outcome = Insert::OOM;
        auto before = w.snapshot();
        Verdict v = c.create(w);
        EXPECT_EQ(v.status, Status::OOM) << c.name;
        ASSERT_EQ(w.env.made.size(), 1u) << c.name;
        EXPECT_EQ(w.env.destroyed, w.env.made) << c.name;
        expect_no_trace(w, before, c.name);
    }
}

TEST(Create, WhenARacingCpuTookTheSelectorTheUnpublishedObjectIsDestroyedAndTheAnswerIsBadCap)
{
    for (auto &c : creates()) {
        World w;
        c.valid(w);
        w.env.insert_outcome = Insert::TAKEN;
        Verdict v = c.create(w);
        EXPECT_EQ(v.status, Status::BAD_CAP) << c.name;
        ASSERT_EQ(w.env.made.size(), 1u) << c.name;
        EXPECT_EQ(w.env.destroyed, w.env.made) << c.name;
        EXPECT_EQ(w.env.lookup(SEL_NEW).obj, &w.env.racer) << c.name << ": the racer's capability stays";
        EXPECT_TRUE(w.env.populated.empty() && w.env.started.empty()) << c.name;
    }
}

TEST(Create, TheObjectTheNewOneRefersToIsHeldAcrossTheAllocationAndDroppedAfter)
{
    for (auto &c : creates()) {
        for (int budget : {1, 0}) {
            World w;
            c.valid(w);
            w.env.alloc_budget = budget;
            c.create(w);
            EXPECT_EQ(w.env.holds, w.env.drops) << c.name << ": every hold is dropped";
            if (strcmp(c.name, "create_pd") != 0) {
                EXPECT_EQ(w.env.holds.size(), 1u) << c.name << ": the PD, EC or chain target is held";
            }
        }
    }
}

TEST(Create, WhenARacingRevokeRetiredTheObjectTheNewOneRefersToTheAnswerIsBadCapAndNothingIsMade)
{
    for (auto &c : creates()) {
        World w;
        c.valid(w);
        ASSERT_TRUE(c.create(w).ok()) << c.name;
        if (w.env.holds.empty())
            continue;  // create_pd refers to nothing
        World v;
        c.valid(v);
        v.env.retired.insert(w.env.holds[0] == &w.pd    ? static_cast<Kobject *>(&v.pd)
                             : w.env.holds[0] == &w.gec ? static_cast<Kobject *>(&v.gec)
                             : w.env.holds[0] == &w.lec ? static_cast<Kobject *>(&v.lec)
                                                        : static_cast<Kobject *>(&v.sm));
        auto before = v.snapshot();
        Verdict r = c.create(v);
        EXPECT_EQ(r.status, Status::BAD_CAP) << c.name;
        EXPECT_TRUE(v.env.made.empty()) << c.name << ": nothing allocated";
        EXPECT_TRUE(v.env.drops.empty()) << c.name << ": nothing to drop";
        expect_no_trace(v, before, c.name);
    }
}

TEST(Create, CreateEcWhoseUtcbPageWasTakenMeanwhileAnswersBadPar)
{
    World w;
    creates()[1].valid(w);
    w.env.utcb_race = true;
    auto before = w.snapshot();
    EXPECT_EQ(creates()[1].create(w).status, Status::BAD_PAR);
    expect_no_trace(w, before, "create_ec");
}

}  // namespace

TEST(Kobject, TryGetTakesAReferenceOnlyWhileTheCountIsAboveZero)
{
    Fake_sm o;
    EXPECT_FALSE(o.try_get()) << "a count of 0: retired (or never published)";
    EXPECT_EQ(o.ref_count(), 0u);
    o.get();
    EXPECT_TRUE(o.try_get());
    EXPECT_EQ(o.ref_count(), 2u);
    EXPECT_FALSE(o.put());
    EXPECT_TRUE(o.put());
    EXPECT_FALSE(o.try_get()) << "after the last put the object must not be revived";
}
