/*
 * SDK runtime: start-up, exit, allocators and resources from the kernel.
 */
#include "nova/runtime.hpp"
#include "nova/console.hpp"
#include "nova/io.hpp"
#include "nova/launch.hpp"
#include "nova/regs.h"

namespace nova {

namespace {

const Hip *start_hip;
unsigned start_cpu;
const Launch_info *launched;  // set when a launcher started us (nova/launch.hpp)

alignas(PAGE_SIZE) u8 arena[HEAP_SIZE];
u64 heap_used;
u64 next_sel = 0x100;
u64 next_virt = VIRT_BASE;  // absolute addresses (base 0)
bool debug_exit_port;
bool exit_written;  // a code went to isa-debug-exit: the verdict, never overwritten

/*
 * Advance `cursor` (an offset from `base`) by `size` after aligning
 * base + cursor to `align` (a power of two); returns the aligned offset, or
 * `fail` when the end would pass `end`. Handler ECs may run on other CPUs,
 * hence the compare-and-swap.
 */
u64 bump(u64 &cursor, u64 base, u64 size, u64 align, u64 end, u64 fail)
{
    u64 cur = __atomic_load_n(&cursor, __ATOMIC_RELAXED);
    for (;;) {
        u64 start = ((base + cur + align - 1) & ~(align - 1)) - base;
        if (start < cur || start > end || size > end - start)
            return fail;
        if (__atomic_compare_exchange_n(&cursor, &cur, start + size, false, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED))
            return start;
    }
}

constexpr bool pow2(u64 v) { return v && !(v & (v - 1)); }

// Largest order such that both page numbers are aligned to it and it fits into `pages`.
unsigned chunk_order(u64 a, u64 b, u64 pages)
{
    u64 m = a | b;
    unsigned o = m ? static_cast<unsigned>(__builtin_ctzll(m)) : 63;
    unsigned fit = 63 - static_cast<unsigned>(__builtin_clzll(pages));
    if (fit < o)
        o = fit;
    return o < Crd::MAX_ORDER ? o : Crd::MAX_ORDER;
}

Status from_kernel(Crd send, Crd window, u64 pd = SEL_ROOT_PD)
{
    Item_meta meta(Item_meta::DELEGATE, 0, Item_meta::H);
    Delegate_result r = pd_delegate(self_pd(), pd, send, meta, window);
    if (r.status != Status::SUCCESS)
        return r.status;
    return r.crd.is_null() ? Status::BAD_PAR : Status::SUCCESS;
}

}  // namespace

extern "C" Start_regs nova_start_regs;                                                          // crt0.S
static_assert(sizeof(Start_regs) == REGS_SIZE && offsetof(Start_regs, rflags) == REGS_RFLAGS);  // crt0.S

const Start_regs &start_regs() { return nova_start_regs; }

const Hip *hip() { return start_hip; }
const Launch_info *launch_info() { return launched; }
unsigned boot_cpu() { return start_cpu; }
u64 self_pd() { return SEL_ROOT_PD; }

Status exit_qemu(u32 code)
{
    if (!debug_exit_port) {
        Status s = request_ports(DEBUG_EXIT_PORT, 2);
        if (s != Status::SUCCESS)
            return s;
        debug_exit_port = true;
    }
    // Up to QEMU 9.0 the write ends QEMU at once. Since 9.1 it only requests a shutdown with that
    // code: the CPU goes on until QEMU's main loop acts, and a second write in between (main's
    // return value going to exit(), another CPU's verdict) replaces the code. So only the first
    // call writes, whatever CPU it runs on.
    if (__atomic_exchange_n(&exit_written, true, __ATOMIC_SEQ_CST))
        return Status::SUCCESS;
    outl(DEBUG_EXIT_PORT, code);
    return Status::SUCCESS;  // still here: QEMU has no isa-debug-exit device, or ends shortly
}

void park()
{
    for (;;)
        reply();
}

void stop()
{
    u64 sm = alloc_sel();
    if (sm && create_sm(sm, self_pd(), 0) == Status::SUCCESS)
        for (;;)
            sm_down(sm);
    park();
}

void exit(u32 code)
{
    if (launched) {  // our launcher decides what happens next (nova/launch.hpp)
        auto *ring = reinterpret_cast<Launch_ring *>(launched->ring);
        __atomic_store_n(&ring->code, code, __ATOMIC_RELAXED);
        __atomic_store_n(&ring->ended, 1, __ATOMIC_RELEASE);
        sm_up(LAUNCH_SEL_NOTIFY);
        stop();  // a handler EC too: its caller (a vCPU) must not be answered
    }
    exit_qemu(code);
    park();
}

void *alloc(size_t size, size_t align)
{
    if (!pow2(align) || size == 0)
        return nullptr;
    u64 off = bump(heap_used, reinterpret_cast<uintptr>(arena), size, align, HEAP_SIZE, ~u64{0});
    return off == ~u64{0} ? nullptr : arena + off;
}

size_t heap_free() { return HEAP_SIZE - __atomic_load_n(&heap_used, __ATOMIC_RELAXED); }

u64 alloc_sel(unsigned count)
{
    if (count == 0 || count > SEL_NUM)
        return 0;
    u64 n = u64{1} << (count == 1 ? 0 : 64 - __builtin_clzll(u64{count} - 1));
    return bump(next_sel, 0, n, n, SEL_NUM, 0);
}

u64 alloc_virt(u64 size, u64 align)
{
    if (size == 0 || size > VIRT_END || !pow2(align) || align < PAGE_SIZE)
        return 0;
    return bump(next_virt, 0, align_up(size, PAGE_SIZE), align, VIRT_END, 0);
}

Status request_ports(u16 base, unsigned order)
{
    if (order > 16)
        return Status::BAD_PAR;
    return from_kernel(Crd::pio(base, order), Crd::pio(base, order));
}

Status map_phys_at(u64 phys, u64 virt, u64 size, unsigned rights)
{
    return map_phys_into(self_pd(), phys, virt, size, rights);
}

Status map_phys_into(u64 pd, u64 phys, u64 virt, u64 size, unsigned rights)
{
    if (size == 0)
        return Status::SUCCESS;
    u64 end = phys + size;
    if (end < phys || (phys & (PAGE_SIZE - 1)) != (virt & (PAGE_SIZE - 1)))
        return Status::BAD_PAR;
    u64 ppage = phys >> PAGE_BITS, vpage = virt >> PAGE_BITS;
    u64 pages = (align_up(end, PAGE_SIZE) >> PAGE_BITS) - ppage;
    if (vpage + pages < vpage || vpage + pages > USER_ADDR >> PAGE_BITS)
        return Status::BAD_PAR;

    while (pages) {
        unsigned o = chunk_order(ppage, vpage, pages);
        unsigned r = rights & Perm_mem::RWX;
        Status s = from_kernel(Crd::mem(ppage, o, r), Crd::mem(vpage, o, r), pd);
        if (s != Status::SUCCESS)
            return s;
        ppage += u64{1} << o;
        vpage += u64{1} << o;
        pages -= u64{1} << o;
    }
    return Status::SUCCESS;
}

void *map_phys(u64 phys, u64 size, unsigned rights)
{
    if (size == 0 || phys + size < phys)
        return nullptr;
    u64 first = align_down(phys, PAGE_SIZE);
    u64 len = align_up(phys + size, PAGE_SIZE) - first;
    // Keep virt congruent to phys modulo a large power of two so the chunks stay large.
    u64 align = PAGE_SIZE;
    while (align < (u64{1} << 30) && align * 2 <= len)
        align *= 2;
    u64 area = alloc_virt(len + align, align);
    if (!area)
        return nullptr;
    u64 virt = area + (first & (align - 1));
    if (map_phys_at(first, virt, len, rights) != Status::SUCCESS)
        return nullptr;
    return reinterpret_cast<void *>(virt + (phys - first));
}

Status request_kernel_cap(u64 kernel_sel, u64 sel)
{
    return from_kernel(Crd::obj(kernel_sel), Crd::obj(sel));
}

}  // namespace nova

extern "C" [[noreturn]] void nova_start(unsigned cpu, const Hip *hip)
{
    nova::start_hip = hip;
    nova::start_cpu = cpu;
    nova::Ec_tls *tls = nova::ec_tls();
    // Right below the HIP: Abi::ROOT_UTCB_ADDR, lower beyond 64 CPUs (docs/boot.md "HIP layout").
    tls->utcb = reinterpret_cast<Utcb *>(reinterpret_cast<u64>(hip) - PAGE_SIZE);
    tls->handler = nullptr;
    const nova::Start_regs &r = nova::start_regs();
    if (r.rdx == nova::LAUNCH_MAGIC && r.rsi &&
        reinterpret_cast<const nova::Launch_info *>(r.rsi)->magic == r.rdx)
        nova::launched = reinterpret_cast<const nova::Launch_info *>(r.rsi);
    nova::exit(static_cast<u32>(main(hip, cpu)));
}

// Called for a pure virtual function; there is nothing sensible to continue with.
extern "C" void __cxa_pure_virtual()
{
    nova::printf("nova: pure virtual function called\n");
    nova::exit(nova::EXIT_FAIL);
}
