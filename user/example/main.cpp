/*
 * Example root task for the SDK (docs/sdk.md): obtains the serial port,
 * greets, checks and prints the HIP, looks up its initial capabilities,
 * then leaves QEMU through isa-debug-exit (EXIT_PASS when every check held).
 */
#include "nova/nova.hpp"

using namespace nova;

namespace {

unsigned failed;

void check(bool ok, const char *what)
{
    printf("%s: %s\n", ok ? "ok  " : "FAIL", what);
    failed += !ok;
}

void print_hip(const Hip *h)
{
    check(h->signature == Hip::SIGNATURE, "HIP signature is NOVA");
    check(h->checksum_ok(), "HIP checksum");
    check(h->api_ver == API_VERSION, "HIP api_ver is 7");
    printf("HIP: length %#x, api_flg %#x (iommu %u vmx %u svm %u), tsc %u kHz, bus %u kHz\n", h->length,
           h->api_flg, h->has(Hip::FEAT_IOMMU), h->has(Hip::FEAT_VMX), h->has(Hip::FEAT_SVM), h->freq_tsc,
           h->freq_bus);

    for (unsigned i = 0; i < h->num_cpu_desc(); i++) {
        const Hip_cpu *c = h->cpu(i);
        if (c->online())
            printf("HIP: CPU %2u package %u core %u thread %u LAPIC id %u\n", i, c->package, c->core,
                   c->thread, c->lapic_id >> 24);
    }
    check(h->num_cpus_online() > 0, "HIP lists at least one online CPU");
    printf("HIP: %u CPUs online\n", h->num_cpus_online());

    u64 ram = 0;
    unsigned hyp = 0;
    for (unsigned i = 0; i < h->num_mem_desc(); i++) {
        const Hip_mem *m = h->mem(i);
        if (m->type == Hip_mem::AVAILABLE)
            ram += m->size;
        else if (m->type == Hip_mem::HYPERVISOR)
            hyp++;
        else if (m->type == Hip_mem::MODULE)
            printf("HIP: module at %#lx, %lu bytes\n", m->addr, m->size);
    }
    printf("HIP: %u memory descriptors, %lu MiB available RAM\n", h->num_mem_desc(), ram >> 20);
    check(hyp == 1, "HIP has exactly one hypervisor memory descriptor");
}

// ABI 15 B.20-22: the root PD, EC and SC capabilities at selectors 32, 33, 34.
void check_root_caps()
{
    static const struct
    {
        u64 sel, expect;
        const char *what;
    } caps[] = {
        {SEL_ROOT_PD, 0x2007f, "lookup of selector 32 gives the root PD (rights 0x1f)"},
        {SEL_ROOT_EC, 0x21037, "lookup of selector 33 gives the root EC (rights 0x0d)"},
        {SEL_ROOT_SC, 0x22007, "lookup of selector 34 gives the root SC (rights 0x01)"},
    };
    for (auto &c : caps) {
        Lookup_result r = pd_lookup(Crd::obj(c.sel, 0, 0));
        if (r.status != Status::SUCCESS || r.crd.value() != c.expect)
            printf("     %s, crd %#lx\n", status_name(r.status), r.crd.value());
        check(r.status == Status::SUCCESS && r.crd.value() == c.expect, c.what);
    }
}

// A semaphore round trip: up then down must not block.
void check_semaphore()
{
    u64 sm = alloc_sel();
    Status s = create_sm(sm, self_pd(), 0);
    check(s == Status::SUCCESS, "create_sm");
    if (s == Status::SUCCESS)
        check(sm_up(sm) == Status::SUCCESS && sm_down(sm).status == Status::SUCCESS, "sm_up then sm_down");
}

}  // namespace

int main(const Hip *hip, unsigned cpu)
{
    // Without the port nothing can be printed, and leaving QEMU needs a port as well:
    // exit() tries, and parks the root EC if that fails too.
    if (Console::init() != Status::SUCCESS)
        exit(EXIT_FAIL);

    printf("hello from the root task (boot CPU %u, HIP at %p)\n", cpu, hip);
    Status s = catch_exceptions(cpu);
    if (s != Status::SUCCESS)
        printf("note: no exception reporting (%s)\n", status_name(s));

    print_hip(hip);
    check_root_caps();
    check_semaphore();

    printf("example: %u checks failed\n", failed);
    return static_cast<int>(failed ? EXIT_FAIL : EXIT_PASS);
}
