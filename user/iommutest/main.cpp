/*
 * IOMMU test (ABI 7.14, 8.2, 9.6, 11.4; docs/iommu.md) with two of QEMU's `edu` devices, whose
 * DMA engine copies between its 4 KiB buffer (device address 0x40000) and a device address
 * (below 2^28, its DMA mask). Needs `-machine q35 -device intel-iommu -device edu -device edu`
 * (or `-device amd-iommu` and the module argument `amd`) and the kernel options `iommu kstat`;
 * without `iommu` (module argument `noiommu`) it checks that nothing is remapped and assign_pci
 * answers BAD_DEV.
 *
 * The root task takes RAM pages from the kernel (H bit) at physical addresses it picks from the
 * HIP's available memory, maps them itself, and delegates them with the D bit to child PDs at
 * device addresses that differ from the physical ones: a DMA that lands where the test looks
 * went through the child's DMA table. A blocked DMA leaves its target unchanged (the kernel
 * prints a DMAR fault line, which the scenario counts).
 */
#include <nova/nova.hpp>

using namespace nova;

namespace {

using test::check;

// edu registers (the edu specification in QEMU's source tree).
constexpr unsigned EDU_DMA_SRC = 0x80, EDU_DMA_DST = 0x88, EDU_DMA_CNT = 0x90, EDU_DMA_CMD = 0x98;
constexpr u64 CMD_START = 1, CMD_TO_RAM = 2;
constexpr u64 EDU_BUF = 0x40000;  // the device's buffer in its own address space

// Device addresses (IOVAs) the test uses in the child PDs: all below 2^28 and none of them a
// physical address of the pages behind them.
constexpr u64 IOVA_A = 0x0123'4000, IOVA_RO = 0x0124'0000, IOVA_W = 0x0125'0000, IOVA_B = 0x0200'0000,
              IOVA_C = 0x0300'0000, IOVA_F = 0x0400'0000, IOVA_LAST = 0x0777'7000;
constexpr unsigned STORM = 16;

struct Edu
{
    volatile u8 *cfg;
    volatile u64 *mmio;  // 64-bit registers from 0x80
    u16 rid;
    u64 cfg_phys;
};

Edu edu[2];
unsigned num_edu;
u64 sleep_sm;

u64 ticks_ms(u64 ms) { return u64{hip()->freq_tsc} * ms; }

void sleep_ms(u64 ms) { sm_down(sleep_sm, __builtin_ia32_rdtsc() + ticks_ms(ms)); }

volatile u64 &reg(const Edu &e, unsigned off) { return e.mmio[off / 8]; }

/* One transfer of `len` bytes; true when the device reports it done within 3 s. */
void dma_start(const Edu &e, u64 iova, unsigned len, bool to_ram)
{
    reg(e, EDU_DMA_SRC) = to_ram ? EDU_BUF : iova;
    reg(e, EDU_DMA_DST) = to_ram ? iova : EDU_BUF;
    reg(e, EDU_DMA_CNT) = len;
    reg(e, EDU_DMA_CMD) = CMD_START | (to_ram ? CMD_TO_RAM : 0);
}

bool dma_wait(const Edu &e)
{
    for (unsigned i = 0; i < 300; i++) {
        if (!(reg(e, EDU_DMA_CMD) & CMD_START))
            return true;
        sleep_ms(10);
    }
    return false;
}

bool dma(const Edu &e, u64 iova, unsigned len, bool to_ram)
{
    dma_start(e, iova, len, to_ram);
    return dma_wait(e);
}

/* A RAM page the root owns, at a physical address it knows. */
struct Page
{
    u64 phys;
    volatile u64 *virt;
};

u64 next_phys;

bool take_page(Page &p)
{
    p.phys = next_phys;
    next_phys += PAGE_SIZE;
    p.virt = static_cast<volatile u64 *>(map_phys(p.phys, PAGE_SIZE));
    return p.virt != nullptr;
}

void fill(const Page &p, u64 pattern)
{
    for (unsigned i = 0; i < PAGE_SIZE / 8; i++)
        p.virt[i] = pattern + i;
}

bool holds(const Page &p, u64 pattern, unsigned words)
{
    for (unsigned i = 0; i < words; i++)
        if (p.virt[i] != pattern + i)
            return false;
    return true;
}

/* Delegate our page p to pd at device address iova with the D bit and `rights`. */
bool give(u64 pd, const Page &p, u64 iova, unsigned rights)
{
    u64 page = reinterpret_cast<u64>(p.virt) >> 12;
    auto r = pd_delegate(self_pd(), pd, Crd::mem(page, 0, rights),
                         Item_meta(Item_meta::DELEGATE, page, Item_meta::D),
                         Crd::mem(iova >> 12, 0, Crd::ALL_RIGHTS));
    return r.status == Status::SUCCESS && !r.crd.is_null();
}

/* Take rights (bits of `rights`) of p away from everybody we gave it to. */
bool take_back(const Page &p, unsigned rights)
{
    return revoke(Crd::mem(reinterpret_cast<u64>(p.virt) >> 12, 0, rights)) == Status::SUCCESS;
}

/* The configuration page of e in pd at address `at` (from the kernel: ABI 9.6). */
bool give_config(u64 pd, const Edu &e, u64 at)
{
    auto r = pd_delegate(self_pd(), pd, Crd::mem(e.cfg_phys >> 12, 0, Perm_mem::RW),
                         Item_meta(Item_meta::DELEGATE, e.cfg_phys >> 12, Item_meta::H),
                         Crd::mem(at >> 12, 0, 0x1f));
    return r.status == Status::SUCCESS && !r.crd.is_null();
}

/*
 * 2 MiB of RAM for our pages: available, used by neither the kernel nor a module, and below 2^28
 * (edu's DMA mask: it would cut the physical addresses the blocked DMAs aim at).
 */
bool find_ram()
{
    const Hip *h = hip();
    constexpr u64 SPAN = u64{2} << 20, LIMIT = u64{1} << 28;
    for (unsigned i = 0; i < h->num_mem_desc(); i++) {
        const Hip_mem *m = h->mem(i);
        if (m->type != Hip_mem::AVAILABLE)
            continue;
        u64 top = (m->addr + m->size < LIMIT ? m->addr + m->size : LIMIT) & ~(SPAN - 1);
        for (u64 c = top; c >= m->addr + SPAN && c >= (u64{16} << 20); c -= SPAN) {
            bool clash = false;
            for (unsigned j = 0; j < h->num_mem_desc() && !clash; j++) {
                const Hip_mem *o = h->mem(j);
                clash = o->type != Hip_mem::AVAILABLE && o->addr < c && o->addr + o->size > c - SPAN;
            }
            if (!clash) {
                next_phys = c - SPAN;
                return true;
            }
        }
    }
    return false;
}

/* Something is mapped at p in our own space (the kernel keeps holes: ABI 9.6). */
bool mapped(const volatile void *p)
{
    return p && !pd_lookup(Crd::mem(reinterpret_cast<u64>(p) >> 12)).crd.is_null();
}

volatile u8 *bus0;

void find_edus(const Hip *h)
{
    bus0 = static_cast<volatile u8 *>(map_phys(h->mcfg_base, 1u << 20));
    for (unsigned d = 0; bus0 && d < 32 && num_edu < 2; d++) {
        volatile u8 *f = bus0 + (d << 15);
        if (!mapped(f) || *reinterpret_cast<volatile u32 *>(f) != 0x11e81234)
            continue;
        Edu &e = edu[num_edu++];
        e.cfg = f;
        e.rid = static_cast<u16>(d << 3);
        e.cfg_phys = h->mcfg_base + (u64{d} << 15);
        u64 bar0 = *reinterpret_cast<volatile u32 *>(f + 0x10) & ~0xfull;
        e.mmio = static_cast<volatile u64 *>(map_phys(bar0, 1u << 20));
        auto &cmd = *reinterpret_cast<volatile u16 *>(f + 4);
        cmd = static_cast<u16>(cmd | 0x6);  // memory space, bus master
    }
}

/* The DRHD register base from the DMAR table the HIP names (0 if none). */
u64 drhd_base(const Hip *h)
{
    if (!h->dmar_table)
        return 0;
    auto t = static_cast<volatile u8 *>(map_phys(h->dmar_table, 2 * PAGE_SIZE, Perm_mem::R));
    if (!t)
        return 0;
    u32 len = *reinterpret_cast<volatile u32 *>(t + 4);
    for (u32 off = 48; off + 16 <= len && off < 2 * PAGE_SIZE - 16;) {
        u16 type = *reinterpret_cast<volatile u16 *>(t + off),
            slen = *reinterpret_cast<volatile u16 *>(t + off + 2);
        if (type == 0)
            return *reinterpret_cast<volatile u64 *>(t + off + 8);
        if (slen < 4)
            break;
        off += slen;
    }
    return 0;
}

u64 new_pd()
{
    u64 sel = alloc_sel();
    return create_pd(sel, self_pd()) == Status::SUCCESS ? sel : 0;
}

void without_iommu(const Hip *h)
{
    check(!(h->api_flg & Hip::FEAT_IOMMU), "HIP: IOMMU flag clear without the option iommu (8.2)");
    u64 pd = new_pd();
    bool cfg = pd && num_edu && give_config(pd, edu[0], 0x10000000);
    check(cfg, "the edu configuration page in a child PD");
    check(assign_pci(pd, 0x10000000, edu[0].rid) == Status::BAD_DEV,
          "assign_pci without iommu: BAD_DEV for a present device (I.135)");
}

void bad_inputs(u64 pd, const Edu &e)
{
    constexpr u64 CFG = 0x10000000, RAM = 0x10010000, ABSENT = 0x10020000;
    check(assign_pci(alloc_sel(), CFG, e.rid) == Status::BAD_CAP, "assign_pci on an empty selector: BAD_CAP");
    check(assign_pci(sleep_sm, CFG, e.rid) == Status::BAD_CAP, "assign_pci on a semaphore: BAD_CAP (I.134)");
    check(assign_pci(pd, CFG, e.rid) == Status::BAD_DEV,
          "assign_pci with rsi not mapped in the target PD: BAD_DEV (the caller maps it: no matter)");
    Page ram{};
    bool ok =
        take_page(ram) && pd_delegate(self_pd(), pd, Crd::mem(reinterpret_cast<u64>(ram.virt) >> 12, 0, 3),
                                      Item_meta(Item_meta::DELEGATE, 0), Crd::mem(RAM >> 12, 0, 0x1f))
                                  .status == Status::SUCCESS;
    check(ok && assign_pci(pd, RAM, e.rid) == Status::BAD_DEV, "assign_pci with a RAM page: BAD_DEV");
    ok = give_config(pd, e, CFG);
    check(ok && assign_pci(pd, CFG, 0xfff8) == Status::BAD_DEV, "assign_pci with an unknown hint: BAD_DEV");
    check(assign_pci(pd, CFG, 0x10000 | e.rid) == Status::BAD_DEV,
          "assign_pci with a hint above 16 bits: BAD_DEV");
    // 00:1f.7 does not exist on q35 (the LPC bridge is 00:1f.0, SMBus 00:1f.3).
    Edu absent{};
    absent.cfg_phys = hip()->mcfg_base + (u64{0xff} << 12);
    ok = give_config(pd, absent, ABSENT);
    check(ok && assign_pci(pd, ABSENT, e.rid) == Status::BAD_DEV,
          "assign_pci with the configuration page of an absent function: BAD_DEV");
}

}  // namespace

int main(const Hip *h, unsigned)
{
    Console::init();
    sleep_sm = alloc_sel();
    check(create_sm(sleep_sm, self_pd(), 0) == Status::SUCCESS, "a semaphore to sleep on");
    bool remap = !cmdline_flag("noiommu");
    if (!h->mcfg_base || !find_ram()) {
        check(false, "MMCONFIG and RAM for the test (run on q35)");
        test::exit();
    }
    find_edus(h);
    check(num_edu == 2 && edu[0].mmio && edu[1].mmio, "two edu devices on bus 0, registers mapped");
    if (num_edu < 2)
        test::exit();
    // ABI 3.2: the result names the window even where nothing was delegated; the lookup tells.
    // AMD-Vi (QEMU's amd-iommu): the HIP names no DMAR table; the unit's registers are at QEMU's
    // fixed address and the unit is a PCI function on bus 0 whose configuration page is a hole
    // (our extension of 9.6).
    bool amd = cmdline_flag("amd");
    u64 unit = amd ? 0xfed80000 : drhd_base(h);
    auto *regs = unit ? map_phys(unit, PAGE_SIZE) : nullptr;
    check(unit && !mapped(regs), "the IOMMU unit's register page (%#lx) is not delegable (9.6)", unit);
    if (amd) {
        check(!h->dmar_table, "HIP: no DMAR table named under AMD-Vi");
        unsigned holes = 0, at = 0;
        for (unsigned d = 0; bus0 && d < 32; d++)
            if (!mapped(bus0 + (d << 15))) {
                holes++;
                at = d;
            }
        check(holes == 1, "one configuration page on bus 0 is not delegable: the AMD IOMMU's own (00:%02x.0)",
              at);
    }
    if (!remap) {
        without_iommu(h);
        test::exit();
    }
    check(h->api_flg & Hip::FEAT_IOMMU, "HIP: IOMMU flag set with remapping on (8.2)");

    u64 pd_a = new_pd(), pd_b = new_pd();
    check(pd_a && pd_b, "two child PDs");
    bad_inputs(pd_a, edu[0]);

    // Assign edu 0 to A, edu 1 to B.
    constexpr u64 CFG_A = 0x10000000, CFG_B = 0x10000000, CFG_B2 = 0x10001000;
    check(assign_pci(pd_a, CFG_A, edu[0].rid) == Status::SUCCESS, "assign_pci edu 0 to PD A: SUCCESS");
    check(give_config(pd_b, edu[1], CFG_B) && assign_pci(pd_b, CFG_B, edu[1].rid) == Status::SUCCESS,
          "assign_pci edu 1 to PD B: SUCCESS");

    // A write lands in the D page at its device address.
    Page pa{}, pq{}, pro{}, pw{}, pb{};
    bool pages = take_page(pa) && take_page(pq) && take_page(pro) && take_page(pw) && take_page(pb);
    check(pages, "five RAM pages");
    if (!pages)
        test::exit();  // nothing below can run without them
    fill(pa, 0x1111'0000);
    check(give(pd_a, pa, IOVA_A, Perm_mem::RW), "page P delegated to A with D at %#lx (physical %#lx)",
          IOVA_A, pa.phys);
    check(dma(edu[0], IOVA_A, 64, false), "edu 0 reads 64 bytes from device address %#lx", IOVA_A);
    fill(pa, 0x2222'0000);
    check(dma(edu[0], IOVA_A + 64, 64, true) && holds(Page{0, pa.virt + 8}, 0x1111'0000, 8),
          "edu 0 writes them back at %#lx: they land in P at offset 64 (DMA remapped)", IOVA_A + 64);

    // Not delegated: blocked. The target is a page the root owns, at its own physical address.
    fill(pq, 0x3333'0000);
    dma(edu[0], pq.phys, 64, true);
    check(holds(pq, 0x3333'0000, 16), "edu 0 writing to physical %#lx (not in A's DMA space): blocked",
          pq.phys);

    // Read-only D: the device reads, cannot write.
    fill(pro, 0x4444'0000);
    check(give(pd_a, pro, IOVA_RO, Perm_mem::R), "a page delegated to A read-only with D");
    check(dma(edu[0], IOVA_RO, 64, false), "edu 0 reads the read-only page");
    dma(edu[0], IOVA_A, 64, true);
    check(holds(pa, 0x4444'0000, 8), "what it read is the read-only page's content");
    fill(pa, 0x5555'0000);
    dma(edu[0], IOVA_A, 64, false);  // buffer := 0x5555...
    dma(edu[0], IOVA_RO, 64, true);
    check(holds(pro, 0x4444'0000, 16), "edu 0 writing to the read-only page: blocked");

    // Downgrade: W taken away after a write warmed the IOTLB.
    fill(pw, 0x6666'0000);
    check(give(pd_a, pw, IOVA_W, Perm_mem::RW), "a writable page delegated to A with D");
    check(dma(edu[0], IOVA_W, 64, true) && holds(pw, 0x5555'0000, 8), "edu 0 writes it (IOTLB warm)");
    fill(pw, 0x6666'0000);
    check(take_back(pw, Perm_mem::W), "revoke W of that page");
    dma(edu[0], IOVA_W, 64, true);
    check(holds(pw, 0x6666'0000, 16), "after revoking W the next write is blocked (IOTLB invalidated)");
    check(dma(edu[0], IOVA_W, 64, false), "reading it still works");

    // Revoke with a warm IOTLB.
    check(dma(edu[0], IOVA_A, 64, true) && holds(pa, 0x6666'0000, 8), "edu 0 writes P again (IOTLB warm)");
    fill(pa, 0x7777'0000);
    check(take_back(pa, Crd::ALL_RIGHTS), "revoke P from A");
    dma(edu[0], IOVA_A, 64, true);
    check(holds(pa, 0x7777'0000, 16), "after the revoke the next write to %#lx is blocked", IOVA_A);

    // Two devices in two PDs: B's page at B's address; A's addresses are not B's.
    fill(pb, 0x8888'0000);
    check(give(pd_b, pb, IOVA_B, Perm_mem::RW), "a page delegated to B with D at %#lx", IOVA_B);
    check(dma(edu[1], IOVA_B, 64, false) && dma(edu[1], IOVA_B + 128, 64, true) &&
              holds(Page{0, pb.virt + 16}, 0x8888'0000, 8),
          "edu 1 (PD B) reads and writes its own page");
    fill(pw, 0x9999'0000);
    dma(edu[1], IOVA_W, 64, true);
    check(holds(pw, 0x9999'0000, 16), "edu 1 writing to A's device address %#lx: blocked", IOVA_W);
    fill(pb, 0xaaaa'0000);
    dma(edu[0], IOVA_B, 64, true);
    check(holds(pb, 0xaaaa'0000, 16), "edu 0 writing to B's device address %#lx: blocked", IOVA_B);

    // Reassignment A -> B: edu 0 now reaches B's page and no longer A's. Its context entry and a
    // translation of A's page are warm in the caches when it moves.
    fill(pw, 0xbbbb'0000);
    check(dma(edu[0], IOVA_W, 64, false), "edu 0 reads A's read-only page (context and IOTLB warm)");
    check(give_config(pd_b, edu[0], CFG_B2) && assign_pci(pd_b, CFG_B2, edu[0].rid) == Status::SUCCESS,
          "assign_pci edu 0 to PD B (reassignment): SUCCESS");
    dma(edu[0], IOVA_B, 64, false);  // the buffer := B's words 0..7
    dma(edu[0], IOVA_W, 64, false);  // blocked: the buffer gets no word of A's
    dma(edu[0], IOVA_B + 256, 64, true);
    check(pb.virt[32] != 0xaaaa'0000 + 32 && pb.virt[32] != 0xbbbb'0000,
          "edu 0 reading A's address after the reassignment: blocked (its write to B's page landed, "
          "without A's data)");
    check(dma(edu[0], IOVA_B, 64, false) && dma(edu[0], IOVA_B + 512, 64, true) &&
              holds(Page{0, pb.virt + 64}, 0xaaaa'0000, 8),
          "edu 0 reads and writes B's page: it reached B's memory");
    dma(edu[0], IOVA_W, 64, true);
    check(holds(pw, 0xbbbb'0000, 16), "edu 0 writing to A's address after the reassignment: blocked");

    // PD destruction with an assigned device; the kernel memory it took comes back (kstat).
    Page pc{};
    check(take_page(pc), "a page for PD C");
    Kstat base{};
    bool have_kstat = kstat(base) == Status::SUCCESS;
    u64 pd_c = new_pd();
    check(pd_c, "PD C");
    fill(pc, 0xcccc'0000);
    check(give_config(pd_c, edu[1], CFG_A) && assign_pci(pd_c, CFG_A, edu[1].rid) == Status::SUCCESS &&
              give(pd_c, pc, IOVA_C, Perm_mem::RW),
          "edu 1 assigned to PD C, a page in C's DMA space");
    check(dma(edu[1], IOVA_C, 64, false), "edu 1 reads C's page");
    check(revoke(Crd::obj(pd_c, 0, Crd::ALL_RIGHTS), Revoke_flag::SELF) == Status::SUCCESS, "PD C destroyed");
    fill(pc, 0xdddd'0000);
    dma(edu[1], IOVA_C, 64, true);
    check(holds(pc, 0xdddd'0000, 16), "edu 1 writing to C's old address after C is gone: blocked");

    if (have_kstat) {
        // C's DMA tables and domain ID went with it; bus 0's context table stays (made by the
        // first assignment, kept for the bus).
        Kstat now{};
        for (unsigned i = 0; i < 100; i++) {
            if (kstat(now) != Status::SUCCESS ||
                (now.pending == 0 && now.objects == base.objects && now.free_pages == base.free_pages))
                break;
            sleep_ms(20);
        }
        printf("INFO: kernel memory: free pages %lu (before PD C %lu), objects %lu (before %lu)\n",
               now.free_pages, base.free_pages, now.objects, base.objects);
        check(now.objects == base.objects && now.free_pages == base.free_pages,
              "kernel memory back at its baseline after PD C's destruction");
    }

    // Revoke during a transfer: edu starts the copy 100 ms (virtual) after the command, so the
    // revoke comes between the command and the copy; the copy must not land.
    Page pf{};
    check(take_page(pf) && give(pd_b, pf, IOVA_F, Perm_mem::RW), "a page delegated to B with D at %#lx",
          IOVA_F);
    check(dma(edu[0], IOVA_F, 64, true), "edu 0 (in B) writes it (IOTLB warm)");
    fill(pf, 0xeeee'0000);
    dma_start(edu[0], IOVA_F, 64, true);
    bool revoked = take_back(pf, Crd::ALL_RIGHTS);
    bool busy = reg(edu[0], EDU_DMA_CMD) & CMD_START;
    check(revoked && busy, "revoked while edu 0's write was in flight");
    check(dma_wait(edu[0]) && holds(pf, 0xeeee'0000, 16), "the in-flight write is blocked");

    // A storm of faults from a device nobody has (edu 1 since C went): every one is recorded and
    // reported, and the unit reports the next fault after it (the scenario counts the lines and
    // expects the last one, at IOVA_LAST).
    for (unsigned i = 0; i < STORM; i++)
        dma(edu[1], IOVA_C + i * PAGE_SIZE, 8, true);
    dma(edu[0], IOVA_LAST, 8, true);
    check(true, "%u blocked writes from edu 1, then one from edu 0 to %#lx (the scenario checks the lines)",
          STORM, IOVA_LAST);
    test::exit();
}
