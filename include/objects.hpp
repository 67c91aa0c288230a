/*
 * The five kernel object types of the ABI (section 2). Each lives in its own
 * slab cache; create() returns nullptr (never panics) when memory runs out,
 * and the caller turns that into the OOM status (ABI 1.5). Their lifetime
 * (references, retirement, grace periods) is described in docs/objects.md;
 * what a CPU loads to run an EC is include/activate.hpp.
 */
#pragma once

#include "abi/hypercall.hpp"
#include "abi/utcb.hpp"
#include "cpu.hpp"
#include "fpu.hpp"
#include "idt.hpp"
#include "kobject.hpp"
#include "mapping.hpp"
#include "mdb_space.hpp"
#include "memory.hpp"
#include "paging.hpp"
#include "quota.hpp"
#include "space_obj.hpp"
#include "spinlock.hpp"
#include "vcpu.hpp"

class Pd : public Kobject
{
  public:
    static constexpr Obj_type TYPE = Obj_type::PD;
    static constexpr u64 IO_BITMAP_BYTES = 8192;

    Space_obj obj;                      // selector -> capability, the fast path of every hypercall
    Mdb_space mdb_obj{Crd::OBJ, this};  // mapping database: derivation of every capability range
    Mdb_space mdb_mem{Crd::MEM, this};
    Mdb_space mdb_pio{Crd::PIO, this};
    u64 *pml4 = nullptr;  // host page table; upper half shared with the kernel
    Paging::Keep keep;    // its empty tables kept for reuse (under lock)
    u64 pml4_phys = 0;
    /* Guest-physical space of its vCPUs (nested page table, same format): G-bit memory nodes
       (src/mapping.cpp). Allocated with the first vCPU or G-bit mapping, under lock. */
    u64 *gpt = nullptr;
    u64 gpt_phys = 0;
    Paging::Keep gkeep;
    u64 gpt_gen = 0;  // bumped when guest mappings lose rights: vCPUs flush their guest TLB
    /* DMA space of its assigned devices (same format): D-bit memory nodes (src/mapping.cpp), and
       its IOMMU domain ID, 0 until a device is assigned (src/dmar.cpp). */
    u64 *dpt = nullptr;
    Paging::Keep dkeep;
    u16 did = 0;
    u8 *guest_iopm = nullptr;     // its vCPUs' I/O permission map (G-bit port nodes); null: all exit
    void *apic_access = nullptr;  // VMX APIC-access page (ABI 7.9.2), allocated on first use
    u64 id = 0;                   // never reused: names the PD in per-CPU PCID caches
    u64 tlb_gen = 0;              // bumped when mappings lose rights: PCIDs flush (pcid.hpp)
    u8 *io_bitmap = nullptr;      // 1 bit per port, set = no access; allocated on first grant
    u64 io_version = 0;           // bumped on every change, so CPUs know to reload their copy
    bool privileged = false;      // the root PD: H-bit items take the kernel as source (ABI 9.6)
    /*
     * Capabilities to this PD (under Mdb::lock). When the last one goes the PD is dying: its
     * spaces are emptied at once (which breaks reference cycles through its own object space)
     * and take no new nodes; the object itself goes when its ECs are gone too.
     */
    u64 caps = 0;
    bool dying = false;
    Pd *dying_next = nullptr;
    Mdb_walk teardown;      // emptying its spaces (in pieces, src/mapping.cpp)
    u8 teardown_space = 0;  // spaces begun: object, memory, I/O
    Spinlock lock;          // serialises changes to the memory and I/O spaces
    /* The quota its spaces are charged to and the create_* calls of its ECs (docs/quota.md);
       nullptr for the kernel PD. Kobject::payer paid for this structure. */
    Quota *quota = nullptr;

    static Pd *root;
    static Quota root_quota;  // the whole pool at boot (src/roottask.cpp)
    static Pd *kernel;        // source of H-bit items (ABI 9.6); never runs

    Mdb_space &mdb_space(Crd::Type t) { return t == Crd::MEM ? mdb_mem : t == Crd::PIO ? mdb_pio : mdb_obj; }

    /* payer: pays for the structure; uses: its spaces' quota (attached here, detached when it
       is destroyed). Both nullptr: the kernel's. */
    static Pd *create(Quota *payer, Quota *uses);
    /* The kernel PD and its resources (ABI 9.6), once the HIP frame is known (src/kernel_pd.cpp). */
    static void create_kernel(u64 hip_phys, unsigned hip_pages);
    void destroy();

    bool make_gpt();                         // the guest page table exists; false: out of memory
    bool make_apic_access();                 // the APIC-access page exists; false: out of memory
    bool grant_ports(u32 first, u32 count);  // false: out of memory
    bool grant_guest_ports(u32 first, u32 count);
    void revoke_guest_ports(u32 first, u32 count);
    void revoke_ports(u32 first, u32 count);
    bool port_allowed(u32 port) const { return io_bitmap && !(io_bitmap[port / 8] & (1u << (port % 8))); }

  private:
    Pd() : Kobject(TYPE) {}
};

class Ec : public Kobject
{
  public:
    static constexpr Obj_type TYPE = Obj_type::EC;

    Pd *pd;
    Utcb *utcb = nullptr;  // kernel view of the UTCB page (nullptr for vCPUs)
    u64 utcb_addr = 0;     // where the PD sees it
    /* User state. While the EC runs, entries from user mode save into it directly (TSS.rsp0 and
       Cpu::frame_top point at its end; the CPU aligns that to 16 bytes). */
    alignas(16) Exc_frame regs{};
    unsigned cpu;
    u64 evt;      // event selector base (ABI 10.1)
    bool global;  // may have SCs, gets a startup message
    bool dead = false;

    /*
     * Execution state. A local EC waits for portal calls; a caller is blocked while its
     * callee runs on the caller's SC (donation); a caller that found its callee busy helps it
     * (its SC runs the callee's current work until the callee is free, ABI 7.1 step 4); the SC
     * runs the end of that chain (Sc::runner()).
     */
    enum State : u8 { RUNNABLE, WAIT_CALL, IN_CALL, BLOCKED, PARKED };
    State state;
    Ec *caller = nullptr;     // whom this EC's next reply goes to
    Ec *callee = nullptr;     // whom this EC waits for
    Ec *helping = nullptr;    // the busy EC whose work this one's SC runs (holds a reference)
    unsigned helped_by = 0;   // ECs whose `helping` is this one (the reply fast path bails)
    bool event_call = false;  // the pending call is an event message (state writeback)
    bool started = false;     // startup message delivered (global ECs)
    bool recall = false;      // ec_ctrl recall pending
    int pending_event = -1;   // event to deliver when next run (its handler was busy)
    /* SCs whose runner this EC is while it is blocked (Sched::wake readies them; rq_lock). */
    class Sc *sc_waiters = nullptr;
    unsigned sc_count = 0;           // SCs bound to this EC and not retired
    class Sc *blocked_sc = nullptr;  // the SC to make ready again when a semaphore releases us
    class Sm *waiting_on = nullptr;
    Ec *wait_next = nullptr;     // semaphore FIFO
    u64 deadline = 0;            // semaphore timeout (TSC), 0 = none
    Ec *timeout_next = nullptr;  // per-CPU timeout list
    /* Cross-CPU call (ABI 7.1.1): a clone runs the call on the callee's CPU for `xcpu_caller`. */
    Ec *xcpu_caller = nullptr;
    u64 xcpu_sel = 0;
    bool xcpu_db = false, xcpu_started = false, is_clone = false;
    /*
     * The caller: the SC of the clone it waits for, with the call's reference to it. Whoever
     * takes it (compare-and-swap) ends the call: the clone when it is done (it leaves XCPU_DONE
     * while it hands its registers over, then nullptr), or the abandonment of the caller's chain
     * (the clone's SC retires; src/ipc.cpp).
     */
    class Sc *xcpu_sc = nullptr;
    static class Sc *xcpu_done() { return reinterpret_cast<class Sc *>(u64{1}); }
    Ec *utcb_next = nullptr;         // retired, its UTCB still to be unmapped (src/mapping.cpp)
    bool utcb_mapped = false;        // its UTCB node is in its PD's memory space (until finish())
    Mdb_walk utcb_walk;              // that removal, in pieces
    Mapping::Revoke_state revoking;  // its revoke hypercall between two pieces (ABI 7.8)
    u64 cr2 = 0;                     // CR2 at this EC's last exception (qual[1], reply window)
    u64 error = 0;                   // error code of that exception (qual[0])
    Vcpu vcpu;                       // a vCPU's guest state (include/svm.hpp); vcpu.vmcb null for ECs
    alignas(64) u8 fpu[1024];        // XSAVE/FXSAVE image, switched eagerly (include/fpu.hpp)

    /* taken: the UTCB page turned out to be occupied (BAD_PAR rather than OOM). */
    static Ec *create(Pd *pd, unsigned cpu, u64 utcb_addr, u64 sp, u64 evt, bool global, bool &taken,
                      Quota *payer = nullptr);
    /* A vCPU (ABI 7.4): no UTCB, its guest state in a VMCB, the PD's guest page table. */
    static Ec *create_vcpu(Pd *pd, unsigned cpu, u64 evt, bool global, u64 vapic_addr, bool apic_access,
                           bool &taken, Quota *payer = nullptr);
    /* A clone of `of` on `cpu` sharing its PD and UTCB, for one cross-CPU call. */
    static Ec *create_clone(Ec *of, unsigned cpu);
    /* The last reference went: off every wait list. False when the grace period must wait
       until its UTCB is unmapped everywhere (Mapping::unmap_utcb defers the EC then). */
    bool retire();
    bool is_vcpu() const { return vcpu.vmcb || vcpu.vmcs; }
    void leave_waits();  // off its semaphore queue and timeout list, if on them
    void destroy();      // after the grace period

  private:
    Ec(Pd *p, unsigned c, u64 e, bool g)
        : Kobject(TYPE), pd(p), cpu(c), evt(e), global(g), state(g ? RUNNABLE : WAIT_CALL)
    {
    }
};

class Sc : public Kobject
{
  public:
    static constexpr Obj_type TYPE = Obj_type::SC;

    Ec *ec;  // nullptr for the kernel's idle SCs
    unsigned cpu;
    unsigned prio;
    u64 quantum_ticks;                    // budget per turn (TSC ticks)
    u64 consumed = 0;                     // TSC ticks used so far (ABI 7.11 reports microseconds)
    u64 left;                             // budget left in this turn
    Sc *next = nullptr, *prev = nullptr;  // ready queue links
    bool queued = false;
    /*
     * Set (under its CPU's rq_lock) when the last reference went: the SC is never queued again,
     * its CPU stops running it and finishes it (Sched::finish_retired), then the grace period.
     */
    bool retired = false;
    Sc *retired_next = nullptr;
    /* Not queued because its runner is blocked: on that EC's sc_waiters list (rq_lock). */
    Ec *waits_for = nullptr;
    Sc *wait_next = nullptr, *wait_prev = nullptr;

    /*
     * The EC this SC runs: the end of its EC's call chain (donation), where an EC that helps a
     * busy one continues into the chain of the one it helps. A helped EC that is free again (or
     * dead) ends the walk at its helper, which then repeats its call. The links never form a
     * cycle: a call links to a free EC (which has no links), and a help that would close one is
     * refused (ABI 7.1 step 4: Livelock), so the walk ends.
     */
    Ec *runner() const
    {
        Ec *e = ec;
        while (e) {
            if (e->callee)
                e = e->callee;
            else if (e->helping && helped_busy(e->helping))
                e = e->helping;
            else
                break;
        }
        return e;
    }
    /* A helped EC that still has work of its own: its helper's SC follows it. */
    static bool helped_busy(const Ec *h) { return h->state != Ec::WAIT_CALL && !h->dead; }

    static Sc *create(Ec *ec, unsigned cpu, unsigned prio, u64 quantum_us, Quota *payer = nullptr);
    void destroy();

  private:
    Sc(Ec *e, unsigned c, unsigned p, u64 q)
        : Kobject(TYPE), ec(e), cpu(c), prio(p), quantum_ticks(q), left(q)
    {
    }
};

class Pt : public Kobject
{
  public:
    static constexpr Obj_type TYPE = Obj_type::PT;

    Ec *ec;
    u64 mtd;
    u64 ip;
    u64 id = 0;  // delivered in rdi; set by pt_ctrl (ABI 7.12)

    static Pt *create(Ec *ec, u64 mtd, u64 ip, Quota *payer = nullptr);
    void destroy();

  private:
    Pt(Ec *e, u64 m, u64 i) : Kobject(TYPE), ec(e), mtd(m), ip(i) {}
};

class Sm : public Kobject
{
  public:
    static constexpr Obj_type TYPE = Obj_type::SM;

    Spinlock lock;
    u64 counter;
    Sm *chain = nullptr;        // signal: the semaphore it triggers (ABI 12.3)
    u64 value = 0;              // signal: value delivered in rsi
    u64 pending = 0;            // signal: triggers not yet consumed
    Sm *queued_next = nullptr;  // signal: link in the chain target's queue
    bool queued = false;
    Sm *sig_head = nullptr, *sig_tail = nullptr;    // plain SM: queued signals, oldest first
    int gsi = -1;                                   // kernel GSI semaphore (ABI 11.1)
    Sm *gsi_chain = nullptr;                        // GSI semaphore: interrupts up this one instead (11.3)
    Ec *wait_head = nullptr, *wait_tail = nullptr;  // blocked ECs, oldest first
    bool retired = false;                           // set (under lock) by retire(): no new waiters

    bool is_signal() const { return chain != nullptr; }

    static Sm *create(u64 counter, Sm *chain, Quota *payer = nullptr);
    void retire();  // the last reference went: waiters return BAD_CAP
    void destroy();

    /* up (ABI 12.1/12.3): releases the oldest waiter or counts; n ups at once in O(waiters). */
    void up(u64 n = 1);
    /* The fast path's cases: an up that only counts, a down that only takes a count (no
       signal queued); false if the general path must decide. */
    bool up_count()
    {
        Lock_guard g(lock);
        if (wait_head)
            return false;
        counter++;
        return true;
    }
    bool down_count(bool zero)
    {
        Lock_guard g(lock);
        if (!counter || sig_head)
            return false;
        counter = zero ? 0 : counter - 1;
        return true;
    }
    /*
     * down: TOOK if the counter was > 0 (signal value/count in rsi/rdx of `frame` if one was
     * queued); otherwise, if waiter is given, it is QUEUED (atomically with the check), unless
     * the semaphore was retired meanwhile (its last capability went on another CPU after our
     * lookup): then GONE and nothing is queued, for nobody would ever wake it (ABI 7.13: BAD_CAP).
     * Without a waiter, EMPTY.
     */
    enum class Down : u8 { TOOK, QUEUED, EMPTY, GONE };
    Down down(bool zero, Exc_frame &frame, Ec *waiter);
    /* Take the whole count at once (assign_gsi moving pending interrupts to a new chain). */
    u64 take_count();
    /* Remove ec from the waiters; false if an up (or a timeout) got it first. */
    bool dequeue_waiter(Ec *ec);
    /* Retirement: wake every waiter with status (BAD_CAP) and take no new ones. */
    void wake_all(u64 status);

  private:
    Sm(u64 c, Sm *ch) : Kobject(TYPE), counter(c), chain(ch) {}
};

/*
 * Drop a reference taken on obj. When it was the last, the object is retired (taken off every
 * list that does not hold a reference) and destroyed after a grace period (include/rcu.hpp).
 */
void release(Kobject *obj);
/*
 * The undo of a create_* whose commit point failed (include/create.hpp): destroy an object that
 * create() made but that never got a capability. It takes the path of a last reference (retire,
 * grace period), so the references the object holds (its PD, EC, chain target) go too.
 */
void destroy_unpublished(Kobject *obj);
/* Free the object's memory and drop the references it holds (called by Rcu::poll). */
void destroy_object(Kobject *obj);
/* PDs, ECs, SCs, portals and semaphores allocated (kernel statistics). */
u64 objects_in_use();
/*
 * The kernel census (kstat, docs/debugging.md): counts by type and state into k (its slab_pages
 * are added to), and every allocated object of type t, in no particular order, with the type's
 * slab cache locked (fn must not allocate or free objects of that type).
 */
void object_census(Kstat_census &k);
void for_each_object(Obj_type t, void (*fn)(Kobject *, void *), void *arg);
