"""The QEMU boot scenarios: one declarative table, read by runner.py.

A scenario boots the kernel once and watches its serial log (and, where asked, the VGA text
memory). It passes when all `expect` patterns have been seen, every `count` pattern matched the
exact number of lines, and the `steps` that follow have completed; or when the root task ends
QEMU through isa-debug-exit with the pass code and the log holds "N passed, 0 failed" while all
expectations were met. See docs/testing.md.

Fields of Scenario (all but name optional):
  boot      kernel (QEMU -kernel/-initrd, multiboot1), iso-bios, iso-uefi (GRUB rescue ISO),
            pxe-bios, pxe-uefi (GRUB over QEMU's built-in TFTP)
  mb        loader protocol GRUB uses: 2 = multiboot2 (default), 1 = multiboot1 (BIOS only)
  machine   pc or q35;  smp  number of CPUs;  mem  -m value;  cpu  -cpu value (None: default)
  cmdline   kernel command line (13.1);  extra  more QEMU arguments
  module    first module: 'roottask', a build-relative path ('user/demo/demo'; words after it are
            the module's command line: 'user/conformance/conformance mce'), None (no
            module), ('text', s) a text file, ('truncate', n) the first n bytes of the root
            task, ('patch', offset, bytes) the root task with bytes replaced at offset,
            ('build', path) any file below the build directory
  expect    regexes that must each match a line (any order)
  count     {regex: n}: exactly n lines must match once the expectations are met
  steps     run in order after expect/count are met:
              ('vga', rx)        wait until the VGA text memory (0xb8000..0xbffff) matches rx
              ('no-vga', rx)     the VGA text memory must not match rx
              ('screen', 'blank'|'nonblank')   QMP screendump, check for a uniform picture
              ('key', qcode)     press and release a key (QMP send-key), e.g. 'esc'
              ('nmi', n)         inject an NMI into every CPU n times (QMP inject-nmi)
              ('hmp', command)   a QEMU monitor command (QMP human-monitor-command), e.g. 'mce ...'
              ('expect', rx)     wait for a further serial line matching rx
              ('exit', status)   wait for QEMU to end with this exit status
              ('sleep', s)       let the guest run on for s seconds
  silent    the serial log must stay empty (no `serial` option)
  allow     default forbidden patterns this scenario expects (e.g. 'Killed EC')
  forbid    further forbidden regexes
  unsupported  [(regex, unless, reason)]: a line matching regex, before any line matching unless,
            shows that this machine cannot run the scenario (its firmware lacks the feature under
            test); the scenario is then reported as SKIP with the reason and counted neither as
            passed nor as failed. Only for evidence in the log, never for a timeout.
  figures   [(label, regex with one group)]: printed after PASS
  timeout   wall-clock seconds (TCG on 2 host cores)
  tags      names for selecting groups on the command line (runner.py iso)
  optional  not part of the default run (only when named on the command line)
  kvm       needs a usable /dev/kvm (runs with -accel kvm); fails when KVM is unusable
  tcg       TCG threading: 'multi' (one host thread per vCPU), 'single' (all vCPUs round robin in
            one thread) or None: multi up to 2 vCPUs per host core, else single. Many vCPU
            threads on 2 host cores starve each other (smp255: minutes instead of seconds).
  build     variant whose build to boot: None = the runner's --build directory (build-default),
            'debug' = its sibling build-debug (configs/debug.config: assertions on; tools/test builds
            it). Logs stay in the --build directory's test-logs.
  same_as   name of another scenario: once both have run, the lines of this scenario's serial log
            that start with `DIGEST ` must equal those of the other one, in number and order;
            a difference, a failed partner or no DIGEST lines at all fail this scenario (only
            this one: the partner keeps its own verdict). Selecting this scenario runs the
            partner too. Both should end with an exit step so that the logs are complete.
"""

from dataclasses import dataclass, field

# Maximum CPUs the kernel brings up (xAPIC IDs 0..254; lower this if the kernel caps the count).
NUM_CPU = 255

# Lines the kernel prints (ABI 13.3 and the boot log).
BANNER = r'NOVA Microhypervisor v7-[0-9a-f]{7} \(x86_64\)'
CORE = r'^\[\s*\d+\] CORE:'
ROOT_LOADED = r'ROOT: loaded'
# The root task is running: the kernel logs the first hypercall from user mode. Scenarios made
# with boots() wait for it; suites that report "N passed, 0 failed" and exit are their own
# scenarios (conformance-*, leak-*, ...).
ROOT_RUNNING = r'HYP: first hypercall'
# Kernel output on the VGA console. The screen scrolls, so VGA checks look for late lines.
# A line of the command-line option hyptrace (a failed hypercall check and its reason).
HYPTRACE = r'HYP: \w+ sel 0x[0-9a-f]+: .* -> [A-Z_]+'
VGA_ANY = r'CORE:|ROOT: loaded|HYP: |NOVA Microhypervisor'
# The demo's last line (user/demo): both clients have called the console and timer servers.
DEMO_DONE = r'^demo: all clients done'
BOOT_TIME = ('boot', r'BOOT: root task after \d+ TSC ticks \((\d+ ms)\)')

# Tests the conformance suite counts with one CPU (cross-CPU tests skipped) and with four. The
# README and docs/conformance.md quote these numbers; tools/check-docs compares them.
CONFORMANCE_SMP1 = 203
CONFORMANCE_SMP4 = 217
# The kill line of G.help-livelock-self (user/conformance/t_helping.cpp): a #UD whose handler is
# the faulting EC itself (ABI 7.1 step 4, 10.5, 13.3). The suite cannot read the console.
LIVELOCK_KILL = r'Killed EC:0x[0-9a-f]+ SC:0x[0-9a-f]+ V:0x6 CS:0x2b EIP:0x[0-9a-f]+ CR2:0x[0-9a-f]+ ERR:0x0 \(Livelock\)'

# Release builds rate-limit console lines user mode can provoke (the leak test floods overmap
# attempts) and say how many they dropped (src/console.cpp); debug builds print them all.
SUPPRESSED = r'console: \d+ lines suppressed'

# Conformance tests that need more kernel memory than a small machine has (16 MiB and less): they
# skip themselves there (user/conformance: needs_kernel_memory), as in mem-8M-conformance-smp1.
CONFORMANCE_BIG = 5

# The kernel census (docs/debugging.md) the leak test asks for: the nine objects of a round, by
# type, and the last line (the round's nodes are listed as well).
CENSUS = [r'KSTAT: census: PD \d+ \(\d+ dying\), EC \d+ \(0 clones', r'KSTAT: PD #\d+ 0x[0-9a-f]+ refs \d+ caps 2 ',
          r'KSTAT: EC #\d+ 0x[0-9a-f]+ refs \d+ PD #\d+ cpu \d+ global ', r'KSTAT: SC #\d+ 0x[0-9a-f]+ refs 1 EC #\d+ .* prio 1',
          r'KSTAT: PT #\d+ ', r'KSTAT: SM #\d+ ', r'KSTAT: node 0x[0-9a-f]+ obj PD #\d+ ',
          r'KSTAT: end of census: \d+ listed, 0 more not listed']

# user/iommutest: its checks, and the DMA writes it expects the IOMMU to block with a fault line of
# reason 5. It blocks seven; QEMU records no fault for the write to the read-only page, whose
# translation its IOTLB holds from the read before (it checks permissions only when it walks).
# Then a storm of IOMMU_STORM writes from an unassigned device (reason 2, each one a line).
IOMMU_TESTS = 52
IOMMU_BLOCKED_WRITES = 8
IOMMU_STORM = 16

# Pass/fail exit codes the root task writes to isa-debug-exit; QEMU exits with (code << 1) | 1.
EXIT_PASS = 0x10 * 2 + 1    # 33
EXIT_FAIL = 0x11 * 2 + 1    # 35


@dataclass
class Scenario:
    name: str
    desc: str = ''
    boot: str = 'kernel'
    mb: int = 2
    machine: str = 'pc'
    smp: int = 2
    mem: str = '256M'
    cpu: str | None = None
    cmdline: str = 'serial'
    extra: list = field(default_factory=list)
    module: object = 'roottask'
    expect: list = field(default_factory=list)
    count: dict = field(default_factory=dict)
    steps: list = field(default_factory=list)
    silent: bool = False
    allow: list = field(default_factory=list)
    forbid: list = field(default_factory=list)
    unsupported: list = field(default_factory=list)
    figures: list = field(default_factory=list)
    timeout: float = 60
    tags: list = field(default_factory=list)
    optional: bool = False
    kvm: bool = False
    tcg: str | None = None
    build: str | None = None
    same_as: str | None = None
    # Further multiboot modules after `module` ("path words..."; "{guest}" is the directory that
    # `prepare` fills), and a command that runs first (exit status 3: cannot run here, SKIP).
    modules: list = field(default_factory=list)
    prepare: list | None = None
    serial_input: bool = False  # the serial port is a socket: steps ('type', text) write to it



def vmm_scenario(name, desc, vmm='mem=128', modules=(), root='', **kw):
    """A VMM scenario: the root task user/vmmroot (its words `root`) starts the VMM (user/vmm, its
    words `vmm`) in a PD of its own; `modules` (the guest's kernel and initrd, further VMs) follow
    the VMM's module."""
    return Scenario(name, desc, module=f'user/vmmroot/vmmroot {root}'.strip(),
                    modules=[f'{{build}}/user/vmm/vmm {vmm}', *modules], **kw)

def boots(name, desc, smp=2, expect=(), **kw):
    """A scenario that boots to a running root task on all CPUs."""
    online = min(smp, NUM_CPU)
    hip_cpus = online            # one HIP CPU descriptor per CPU (docs/boot.md "HIP layout")
    exp = [BANNER, rf'SMP: {online} of {smp} CPUs online', ROOT_LOADED,
           rf'HIP: {hip_cpus} CPUs online, \d+ memory descriptors, length 0x[0-9a-f]+, checksum ok']
    exp.append(ROOT_RUNNING)
    count = {CORE: online, **kw.pop('count', {})}
    return Scenario(name, desc, smp=smp, expect=exp + list(expect), count=count, **kw)


def option(opt, desc, **kw):
    """A scenario for one command-line option: the kernel reports it and still boots."""
    return boots(f'cmdline-{opt}', desc, cmdline=f'serial {opt}',
                 expect=[rf'CMDLINE:.*\b{opt}\b'] + list(kw.pop('expect', [])),
                 tags=['cmdline'] + list(kw.pop('tags', [])), **kw)


# What the fuzzer (user/fuzz, docs/testing.md) checks with `kstat` on n CPUs: its self-test (3), the
# baseline, that every CPU made hypercalls, one per kind of violation (10), the server, three per
# CPU (echo, a revoked page, create/call/delegate/revoke), reclamation and the two comparisons.
def fuzz_checks(cpus):
    return 3 + 1 + 1 + 10 + 1 + 3 * min(cpus, 8) + 1 + 2


def fuzz(name, desc, smp, seed, secs=60, args='', **kw):
    """The hypercall fuzzer with a seed for secs seconds; killed ECs are part of it. `LOCKUP:` lines
    are not forbidden while the mapping database's lock can be held for seconds (docs/fuzz-findings.md,
    F3): strict=True forbids them."""
    forbid = [r'LOCKUP:'] if kw.pop('strict', False) else []
    return Scenario(name, desc, smp=smp, cmdline=kw.pop('cmdline', 'serial kstat'),
                    module=f'user/fuzz/fuzz seed={seed} time={secs} kstat {args}'.strip(),
                    expect=[BANNER, rf'^{fuzz_checks(smp)} passed, 0 failed$'], steps=[('exit', EXIT_PASS)],
                    allow=['Killed EC'], forbid=forbid, timeout=kw.pop('timeout', 2 * secs + 150),
                    tags=['fuzz-optional' if kw.get('optional') else 'fuzz'] + kw.pop('tags', []), **kw)


def bad_module(name, desc, module, reason):
    """The root task image is refused: the root EC is killed with `reason`."""
    return Scenario(name, desc, smp=1, module=module, expect=[BANNER, rf'Killed EC:.*\({reason}\)'],
                    allow=['Killed EC'], tags=['module'])


SCENARIOS = [
    # CPU counts (QEMU -kernel, multiboot1). Boot time printed for the larger ones.
    boots('kernel-smp1', 'one CPU', smp=1, tags=['smp']),
    boots('kernel-smp2', 'two CPUs (the default elsewhere)', smp=2, tags=['smp']),
    boots('kernel-smp4', 'four CPUs', smp=4, figures=[BOOT_TIME], tags=['smp']),
    boots('kernel-smp16', 'sixteen CPUs', smp=16, figures=[BOOT_TIME], timeout=90, tags=['smp']),
    boots('kernel-smp64', '64 CPUs (ABI NUM_CPU)', smp=64, figures=[BOOT_TIME], timeout=120, tags=['smp']),
    boots('kernel-smp255', 'the most CPUs with xAPIC IDs', smp=255, mem='512M', figures=[BOOT_TIME],
          timeout=180, tags=['smp']),
    boots('q35-smp4', 'q35 chipset (PCIe, MCFG)', smp=4, machine='q35', tags=['machine']),

    # Memory sizes; 6G puts RAM above 4 GiB (pc: 3 GiB below, the rest from 4 GiB up).
    boots('mem-128M', 'small machine', mem='128M', tags=['mem']),
    boots('mem-2G', '2 GiB', mem='2G', tags=['mem']),
    boots('mem-6G', 'memory above 4 GiB', mem='6G', tags=['mem']),
    # Small machines (docs/boot.md): the image loads at 2 MiB and moves next to its pool. The demo
    # runs in 32 MiB from every loader (UEFI: OVMF and GRUB themselves need 52 MiB), the
    # conformance suite in 8 MiB (its tests that need more kernel memory than that skip
    # themselves); a machine too small for the kernel says so on serial and VGA instead of
    # staying silent.
    Scenario('mem-32M-demo', 'the demo in 32 MiB, QEMU -kernel (multiboot1)', mem='32M',
             module='user/demo/demo', expect=[BANNER, DEMO_DONE], steps=[('exit', EXIT_PASS)],
             tags=['mem', 'small', 'demo']),
    Scenario('mem-32M-demo-grub-bios', 'the demo in 32 MiB, GRUB ISO, BIOS, multiboot2', mem='32M',
             boot='iso-bios', module='user/demo/demo', expect=[BANNER, DEMO_DONE], steps=[('exit', EXIT_PASS)],
             timeout=90, tags=['mem', 'small', 'demo', 'grub']),
    # Debian 13's GRUB 2.12 under OVMF 2025.02 needs about 20 MiB more than Debian 12's before it
    # loads anything: skipped there, on that evidence (GRUB's own message, no kernel banner).
    Scenario('mem-56M-demo-grub-uefi', 'the demo in 56 MiB, GRUB ISO, UEFI (OVMF, GRUB need 52 MiB)', mem='56M',
             boot='iso-uefi', module='user/demo/demo', expect=[BANNER, DEMO_DONE], steps=[('exit', EXIT_PASS)],
             unsupported=[(r'could not allocate all requested memory', r'NOVA Microhypervisor',
                           'the loader itself needs more than 56 MiB (GRUB: could not allocate all requested '
                           'memory)')],
             timeout=150, tags=['mem', 'small', 'demo', 'grub', 'uefi']),
    Scenario('mem-8M-conformance-smp1', 'ABI conformance suite in 8 MiB, one CPU', smp=1, mem='8M',
             module='user/conformance/conformance',
             expect=[BANNER, rf'^{CONFORMANCE_SMP1 - CONFORMANCE_BIG} passed, 0 failed$'],
             count={r'^SKIP .*: needs \d+ MiB of kernel memory, the kernel has \d+ KiB': CONFORMANCE_BIG},
             steps=[('exit', EXIT_PASS)], allow=['Killed EC'], forbid=[HYPTRACE], timeout=120,
             tags=['mem', 'small', 'conformance']),
    Scenario('mem-4M-too-small', '4 MiB: no room for pool and image; the kernel says so on serial and VGA',
             mem='4M', smp=1, module='user/demo/demo',
             expect=[BANNER, r'PANIC: MEM: not enough memory for the kernel: .* the largest free range holds \d+ KiB'],
             steps=[('vga', r'not enough memory for the kernel')], allow=['PANIC'], tags=['mem', 'small']),

    # Loaders: GRUB from an ISO (BIOS and UEFI), GRUB over the network (PXE / UEFI netboot).
    boots('grub-iso-bios', 'GRUB ISO, BIOS, multiboot2', boot='iso-bios', timeout=90, tags=['grub']),
    boots('grub-iso-bios-mb1', 'GRUB ISO, BIOS, multiboot1', boot='iso-bios', mb=1, timeout=90,
          tags=['grub']),
    boots('grub-iso-uefi', 'GRUB ISO, UEFI (OVMF), multiboot2', boot='iso-uefi', timeout=150,
          tags=['grub', 'uefi']),
    boots('pxe-bios', 'GRUB over PXE (iPXE ROM), BIOS', boot='pxe-bios', timeout=120,
          tags=['grub', 'pxe']),
    # Debian 13's OVMF has no network boot: its boot manager starts the EFI shell without trying
    # PXE (docs/testing.md). A firmware that tries PXE and fails still fails the scenario.
    boots('pxe-uefi', 'GRUB over UEFI network boot (OVMF)', boot='pxe-uefi', timeout=180,
          unsupported=[(r'BdsDxe: (loading|starting) Boot[0-9A-F]+ "EFI Internal Shell"', r'PXE',
                        'the UEFI firmware offers no network boot (its boot manager went to the EFI shell '
                        'without trying PXE)')],
          tags=['grub', 'pxe', 'uefi']),

    # Command-line options (ABI 13.1).
    boots('cmdline-unknown-tokens', 'unknown and wrongly cased tokens are ignored',
          cmdline='serial Serial NOVGA iommu=1 novga-x --keyb',
          expect=[r'CMDLINE: serial\s*$'] + [rf"cmdline: ignoring unknown option '{w}'$"
                                             for w in ('Serial', 'NOVGA', 'iommu=1', 'novga-x', '--keyb')],
          count={r'cmdline: ignoring unknown option': 5}, allow=['unknown option'], tags=['cmdline']),
    option('iommu', 'IOMMU on with an Intel IOMMU (DMAR) present', machine='q35',
           extra=['-device', 'intel-iommu'], expect=[r'IOMMU: DMA remapping on: 1 unit']),
    option('keyb', 'kernel drives the keyboard; c dumps counters, Esc resets the machine',
           steps=[('key', 'c'), ('expect', r'COUNTERS: CPU 0 timer \d+'), ('key', 'esc'), ('exit', 0)]),
    option('spinner', 'event counters on the VGA console', steps=[('vga', ROOT_RUNNING)]),
    option('nodl', 'LAPIC one-shot timer instead of TSC deadline',
           expect=[r'TSC-deadline (off \(nodl\)|unsupported)', r'TIME: .*LAPIC one-shot timer']),
    option('nopcid', 'no PCIDs', cpu='max', expect=[r'PCID (off \(nopcid\)|unsupported)']),
    option('novpid', 'no VPIDs', expect=[r'VPID (off \(novpid\)|unsupported)']),
    option('noxsave', 'FXSAVE instead of XSAVE', cpu='max', expect=[r'XSAVE off \(noxsave\)']),
    boots('xsave-default', 'XSAVE used when the CPU has it', cpu='max', expect=[r'XSAVE on'],
          tags=['cmdline']),
    Scenario('kernel-fault', 'kfault: a kernel page fault prints the register dump and halts',
             cmdline='serial kfault', smp=4,
             expect=[BANNER, r'SMP: 4 of 4 CPUs online', r'PANIC: kernel #PF page fault',
                     r'CR2 0x000000000dead000', r'RIP 0xffffffff8', r'PANIC: system halted'],
             allow=['PANIC'], tags=['cmdline']),
    # Hardening (docs/architecture.md, "Protection"), through the kernel's test hooks (src/ktest.cpp).
    # -cpu max has SMEP, SMAP and UMIP; its SVM is left out where the conformance suite runs (the
    # kernel reports no SVM support in the HIP, C.40).
    Scenario('kernel-smap', 'ksmap: a kernel read of a user page outside a stac window faults (SMAP)',
             cmdline='serial ksmap', cpu='max',
             expect=[BANNER, r'FEATURES: .*SMEP on, SMAP on, UMIP on',
                     r'KSMAP: reading the user page at 0x10000000 from kernel mode, SMAP on',
                     r'PANIC: kernel #PF page fault \(vector 0xe\) error 0x1 on CPU 0', r'CR2 0x0000000010000000',
                     r'PANIC: system halted'],
             forbid=[r'KSMAP: read .* without a fault'], allow=['PANIC'], tags=['cmdline', 'harden']),
    Scenario('kernel-smep', 'ksmep: a kernel call into a user page faults (SMEP)',
             cmdline='serial ksmep', cpu='max',
             expect=[BANNER, r'KSMEP: calling the user page at 0x10000000 from kernel mode, SMEP on',
                     r'PANIC: kernel #PF page fault \(vector 0xe\) error 0x11 on CPU 0', r'CR2 0x0000000010000000',
                     r'RIP 0x0000000010000000', r'PANIC: system halted'],
             forbid=[r'KSMEP: executed it without a fault'], allow=['PANIC'], tags=['cmdline', 'harden']),
    boots('kernel-smap-smep-absent', 'ksmap ksmep on a CPU without SMAP and SMEP: both hooks run unhindered',
          cmdline='serial ksmap ksmep', cpu='qemu64',
          expect=[r'FEATURES: .*SMEP unsupported, SMAP unsupported, UMIP unsupported',
                  r'KSMAP: read 0xc3 without a fault', r'KSMEP: executed it without a fault'],
          tags=['cmdline', 'harden']),
    Scenario('kernel-stack-overflow', 'kstack: a kernel stack overflow hits the guard page; #DF on its IST stack '
             'reports it with the registers', cmdline='serial kstack', smp=2,
             expect=[BANNER, r'KSTACK: overflowing this CPU.s kernel stack',
                     r'PANIC: kernel stack overflow: CR2 0xffffd0000000[0-3][0-9a-f]{3} is in the guard page below '
                     r'CPU 0.s kernel stack',
                     r'PANIC: kernel #DF double fault \(vector 0x8\)', r'RSP 0xffffd00000004000', r'PANIC: system halted'],
             allow=['PANIC'], tags=['cmdline', 'harden']),
    boots('kernel-nmi-gs', 'knmi: NMIs in kernel mode with the user GS base and stack (paranoid entry)',
          cmdline='serial knmi', smp=2,
          expect=[r'KNMI: 2 NMIs taken, 1 of them with the user.s GS base in kernel mode; GS base intact'],
          tags=['cmdline', 'harden']),
    option('novga', 'no VGA console: no kernel output in VGA memory',
           steps=[('no-vga', VGA_ANY)]),
    boots('vga-console', 'VGA console on by default: the log is in VGA text memory',
          steps=[('vga', ROOT_RUNNING), ('screen', 'nonblank')], tags=['cmdline']),
    Scenario('cmdline-noserial', 'without `serial` the serial port stays silent; VGA has the log',
             cmdline='', silent=True, steps=[('vga', ROOT_RUNNING), ('sleep', 1)], tags=['cmdline']),

    # The SDK example: ports by H-bit delegation, HIP, object lookups, semaphores; exits through
    # isa-debug-exit with the pass code.
    Scenario('sdk-example-smp1', 'SDK example root task on one CPU', smp=1, module='user/example/example',
             expect=[BANNER, r'hello from the root task', r'PASS: HIP checksum', r'^10 passed, 0 failed$'],
             steps=[('exit', EXIT_PASS)], tags=['sdk']),
    Scenario('sdk-example-smp4', 'SDK example root task on four CPUs', smp=4, module='user/example/example',
             expect=[BANNER, r'HIP: 4 CPUs online', r'^10 passed, 0 failed$'],
             steps=[('exit', EXIT_PASS)], tags=['sdk']),

    # Every CPU usable (docs/boot.md "HIP layout"): the HIP describes each CPU, spanning several
    # pages beyond 64; a cross-CPU call to a local EC and a global EC with an SC on every CPU, each
    # calling back to the boot CPU. 100 and 255 CPUs (2 and 4 HIP pages; 2 s and 8 s) exercise the
    # extension under QEMU 7.2 (xAPIC); 300 need x2APIC, which QEMU emulates under TCG from version
    # 10 on (SKIP with older QEMU). Then the PIT's pin (and on 300 CPUs an edu MSI, through VT-d or
    # AMD-Vi interrupt remapping with x2APIC destinations) routed to the last CPU; `kstat`'s census
    # names the CPU that took each interrupt.
    Scenario('allcpus-smp4', 'every CPU takes ECs, SCs and cross-CPU calls (HIP of one page)', smp=4,
             cmdline='serial kstat', module='user/allcpus/allcpus',
             expect=[BANNER, r'allcpus: HIP at 0x7fffffffe000, 64 CPU descriptors, 4 online',
                     r'allcpus: 4 of 4 CPUs used', r"PASS: the PIT's pin .* routed to CPU 3 .* census names that CPU",
                     r'^9 passed, 0 failed$'],
             steps=[('exit', EXIT_PASS)], tags=['sdk', 'smp']),
    Scenario('allcpus-smp100', '100 CPUs: HIP of two pages, ECs, SCs and cross-CPU calls on each',
             smp=100, mem='512M', cmdline='serial kstat', module='user/allcpus/allcpus',
             expect=[BANNER, r'HIP: 100 CPUs online', r'allcpus: HIP at 0x7fffffffd000, 100 CPU descriptors, 100 online',
                     r'allcpus: 100 of 100 CPUs used', r"PASS: the PIT's pin .* routed to CPU 99 .* census names that CPU",
                     r'^9 passed, 0 failed$'],
             steps=[('exit', EXIT_PASS)], figures=[BOOT_TIME, ('run', r'CPUs used in (\d+ ms)')],
             timeout=300, tags=['smp']),
    Scenario('allcpus-smp255', '255 CPUs (the most with xAPIC): HIP of four pages, ECs, SCs, calls on each',
             smp=255, mem='512M', cmdline='serial kstat', module='user/allcpus/allcpus',
             expect=[BANNER, r'HIP: 255 CPUs online', r'allcpus: HIP at 0x7fffffffb000, 255 CPU descriptors, 255 online',
                     r'allcpus: 255 of 255 CPUs used', r"PASS: the PIT's pin .* routed to CPU 254 .* census names that CPU",
                     r'^9 passed, 0 failed$'],
             steps=[('exit', EXIT_PASS)], figures=[BOOT_TIME, ('run', r'CPUs used in (\d+ ms)')],
             timeout=240, tags=['smp']),
    # The same through AMD-Vi (allcpus-smp300-x2apic-amd): 128-bit remapping entries with x2APIC
    # destinations (GAEn, XTEn; amd-iommu's xtsup=on).
    *[Scenario(f'allcpus-smp300-x2apic{suffix}',
               f'300 CPUs with x2APIC (QEMU 10 or later): all used, remapped interrupts ({unit}) to APIC ID 299',
               smp=300, mem='1G', machine='q35', cpu='Westmere,x2apic=on', module='user/allcpus/allcpus',
               cmdline='serial iommu kstat',
               extra=['-machine', 'kernel-irqchip=split', '-device', device, '-device', 'edu'],
               prepare=['python3', 'test/qemu/need_qemu.py', '10'],
               expect=[BANNER, r'SMP: 300 of 300 CPUs online', r'HIP: 300 CPUs online',
                       r'IOMMU: interrupt remapping on: ' + on,
                       r'allcpus: HIP at 0x7fffffffb000, 300 CPU descriptors, 300 online',
                       r'allcpus: 300 of 300 CPUs used',
                       r"PASS: the PIT's pin \(GSI 2, assign_gsi SUCCESS\) routed to CPU 299 \(APIC ID 299\) .* census names that CPU",
                       r"PASS: the edu's MSI \(GSI 64, assign_gsi SUCCESS, remapped\) routed to CPU 299 \(APIC ID 299\) .* census names that CPU",
                       r'^10 passed, 0 failed$'],
               count={CORE: 300}, steps=[('exit', EXIT_PASS)],
               figures=[BOOT_TIME, ('run', r'CPUs used in (\d+ ms)')], timeout=900, tags=['smp'])
      for suffix, unit, device, on in (
          ('', 'VT-d', 'intel-iommu,intremap=on,eim=on', r'256 entries, x2APIC destinations \(EIM\)'),
          ('-amd', 'AMD-Vi', 'amd-iommu,intremap=on,xtsup=on',
           r'AMD-Vi tables of 256 entries per device, x2APIC destinations \(128-bit entries, GAEn, XTEn\)'))],

    # IPC smoke test: call/reply, an exception handled through its portal, a semaphore timeout.
    Scenario('ipc-smoke-smp1', 'portal call/reply, #UD handler, semaphore timeout', smp=1,
             module='user/ipctest/ipctest', expect=[BANNER, r'PASS: resumed after ud2', r'PASS: the PIT interrupt', r'\b19 passed, 0 failed'],
             steps=[('exit', EXIT_PASS)], tags=['sdk', 'ipc']),
    Scenario('ipc-smoke-smp4', 'the same on four CPUs', smp=4,
             module='user/ipctest/ipctest', expect=[BANNER, r'\b19 passed, 0 failed'],
             steps=[('exit', EXIT_PASS)], tags=['sdk', 'ipc']),

    # vCPUs on SVM with nested paging (user/vmtest, docs/virtualization.md): -cpu max has both. The
    # VMM checks every exit kind of its test guest; the kernel kills the two doomed vCPUs.
    *[Scenario(f'{b}vmtest-smp{n}', f'{b and "debug build: "}vCPU exits, injection, recall, guest memory on SVM '
               f'({n} CPU{"s" * (n > 1)})', smp=n, cpu='max', module='user/vmtest/vmtest', build=b and 'debug',
               expect=[BANNER, r'SVM: nested paging', r'virtualization SVM with nested paging',
                       r'Killed EC:.*\(PT not found\)', r'Killed EC:.*\(Invalid XCR0\)',
                       rf'PASS: one recall \(255\) while the guest spun, from the EC on CPU {n - 1}',
                       r'^49 passed, 0 failed$'],
               figures=[('vm exit', r'BENCH vm-exit round trip .* (\d+) ticks')],
               count={r'Killed EC': 2}, steps=[('exit', EXIT_PASS)], allow=['Killed EC'], tags=['sdk', 'vm'])
      for b, n in (('', 1), ('', 2), ('debug-', 2))],

    # The VMM (user/vmm, docs/vmm.md) boots Debian's own kernel with a busybox initramfs, both
    # fetched with apt-get download by tools/debian-guest (SKIP where that is impossible), on one
    # vCPU to the final line of its /init, which powers off; the VMM then ends QEMU.
    *[vmm_scenario(f'{b}vmm-linux-smp1{suffix}', f'{b and "debug build: "}VMM: Debian 12 kernel + busybox initramfs to the '
               f'final line on 1 vCPU ({n} host CPU{"s" * (n > 1)})', smp=n, build=b and 'debug',
               cpu='max', mem='512M', vmm='mem=128', prepare=['tools/debian-guest', '{guest}'],
               modules=['{guest}/vmlinuz console=ttyS0 earlyprintk=serial', '{guest}/initramfs.cpio'],
               expect=[BANNER, r'vmm: Linux boot protocol 2\.\d+, kernel at', r'Linux version 6\.\d+\.\d+[-+]\w+-amd64',
                       r'tsc: Detected \d+\.\d+ MHz processor', r'serial8250: ttyS0 at I/O 0x3f8 \(irq = 4',
                       r'Run /init as init process', r'^init: CPUs online: 1$', r'^init: arithmetic: 6\*7=42',
                       r'^init: timer: sleep 2 took 2(\.[0-2]\d*)? s by the guest.s clock, [23] s by the RTC \(clocks agree\)$',
                       r'^init: serial: uart:16550A',
                       r'^init: all checks done, powering off$', r'vmm: VM ended: halted \(power-off\)'],
               forbid=[r'unchecked MSR access', r'Call Trace', r'Kernel panic'],
               figures=[('first line', r'guest.s first output after (\d+) ms'),
                        ('VMM start to power-off', r'vmm: (\d+) ms since the VMM started'),
                        ('exits', r'vmm: (\d+) exits')],
               steps=[('exit', EXIT_PASS)], timeout=240, tags=['vm', 'vmm'])
      for b, n, suffix in (('', 1, ''), ('debug-', 2, '-host2'))],

    # Two vCPUs (VMM word cpus=2) on two host CPUs: Linux finds the MP table (two processors, the
    # I/O APIC), starts the AP by INIT-SIPI-SIPI, routes the PIT and the UART through the I/O APIC,
    # and /init checks that it sees two CPUs (vmcpus=2).
    vmm_scenario('vmm-linux-smp2', 'VMM: the guest on 2 vCPUs (MP table, local and I/O APICs, SIPI) to the final line',
             smp=2, cpu='max', mem='512M', vmm='mem=128 cpus=2',
             prepare=['tools/debian-guest', '{guest}'],
             modules=['{guest}/vmlinuz console=ttyS0 vmcpus=2', '{guest}/initramfs.cpio'],
             expect=[BANNER, r'vmm: vCPU 1 on host CPU 1 waits for its SIPI', r'found SMP MP-table at',
                     r'IOAPIC\[0\]: apic_id 2, version 32, address 0xfec00000, GSI 0-23',
                     r'TSC deadline timer available', r'smp: Brought up 1 node, 2 CPUs',
                     r'serial8250: ttyS0 at I/O 0x3f8 \(irq = 4', r'^init: CPUs online: 2$',
                     r'^init: CPU count: 2 as expected$',
                     r'^init: timer: sleep 2 took 2(\.[0-2]\d*)? s by the guest.s clock, [23] s by the RTC \(clocks agree\)$',
                     r'^init: all checks done, powering off$', r'vmm: VM ended: halted \(power-off\)'],
             forbid=[r'unchecked MSR access', r'Call Trace', r'Kernel panic', r'FAILED', r'not delivered'],
             figures=[('first line', r'guest.s first output after (\d+) ms'),
                      ('VMM start to power-off', r'vmm: (\d+) ms since the VMM started'),
                      ('exits', r'vmm: (\d+) exits')],
             steps=[('exit', EXIT_PASS)], timeout=240, tags=['vm', 'vmm']),

    # The VMM's local APIC (VMM word `lapic`): Linux finds it (CPUID, the APIC base MSR), sets it up
    # in virtual-wire mode through MMIO that the VMM decodes from nested page faults, and boots on.
    vmm_scenario('vmm-linux-lapic', 'VMM: the guest with a local APIC (MMIO decoded from nested page faults)', smp=1,
             cpu='max', mem='512M', vmm='mem=128 lapic', prepare=['tools/debian-guest', '{guest}'],
             modules=['{guest}/vmlinuz console=ttyS0 apic=verbose', '{guest}/initramfs.cpio'],
             expect=[BANNER, r'APIC: Switch to virtual wire mode setup with no configuration',
                     r'\.\.\. APIC VERSION: 00050014', r'^init: CPUs online: 1$',
                     r'^init: timer: sleep 2 took 2(\.[0-2]\d*)? s by the guest.s clock, [23] s by the RTC \(clocks agree\)$',
                     r'^init: all checks done, powering off$', r'vmm: \d+ exits: .* npf [1-9]\d*$',
                     r'vmm: VM ended: halted \(power-off\)'],
             forbid=[r'unchecked MSR access', r'Call Trace', r'Kernel panic', r'No local APIC present'],
             steps=[('exit', EXIT_PASS)], timeout=240, tags=['vm', 'vmm']),

    # Serial input from the host: commands typed into busybox's shell in the guest (vmshell) run.
    vmm_scenario('vmm-linux-shell', 'VMM: commands typed on the host serial line run in the guest shell', smp=1,
             cpu='max', mem='512M', vmm='mem=128', prepare=['tools/debian-guest', '{guest}'],
             modules=['{guest}/vmlinuz console=ttyS0 vmshell', '{guest}/initramfs.cpio'], serial_input=True,
             expect=[BANNER, r'^init: vmshell: a shell on the console'],
             steps=[('sleep', 1), ('type', 'echo typed-$((6*7)) $(uname -m)\r'), ('expect', r'^typed-42 x86_64'),
                    ('type', 'exit\r'), ('expect', r'^init: all checks done, powering off$'),
                    ('exit', EXIT_PASS)],
             timeout=240, tags=['vm', 'vmm']),

    # Misbehaving guests: /init reads where there is no RAM, writes to the ROM, or reboots with
    # reboot=t (a triple fault); the VMM reports it and ends the VM with a failure, the host goes on.
    *[vmm_scenario(f'vmm-guest-{t}', f'VMM: the guest {what}: reported, the VM stopped', smp=1, cpu='max', mem='512M',
               vmm='mem=128', prepare=['tools/debian-guest', '{guest}'],
               modules=[f'{{guest}}/vmlinuz console=ttyS0 vmtest={t} reboot=t', '{guest}/initramfs.cpio'],
               expect=[BANNER, rf'^init: vmtest: ', rf'^vmm: {line}.* \(guest RIP 0x[0-9a-f]+',
                       r'vmm: VM ended: failure'],
               forbid=[r'init: all checks done'], steps=[('exit', EXIT_FAIL)], timeout=240, tags=['vm', 'vmm'])
      for t, what, line in (('npf', 'reads guest-physical memory beyond its RAM',
                             r'guest access to 0x40000000 outside its RAM \(nested page fault, error 0x[0-9a-f]+; '
                             r'a 4-byte read, instruction of \d+ bytes\)'),
                            ('rom', 'writes to its ROM (0xf0000)',
                             r'guest write to its ROM at 0xf0000 \(.*; a 4-byte write of 0x12345678, instruction'),
                            ('reboot', 'triple-faults (reboot=t)', r"the guest's triple fault"))],
    # Two VMs at once on four host CPUs: user/vmmroot starts two VMMs, each in a PD of its own with
    # its own guest RAM and host CPUs; their output comes line by line with a prefix per VM. Three
    # busy vCPUs on a loaded two-core TCG host: `sleep 2` may take up to 3 s by both clocks.
    # The two-VM scenarios are optional (run them by name): QEMU 7.2's TCG SVM now and then resumes a
    # vCPU with the host's own state after a port-I/O exit, about 1 run in 8 (docs/vmm.md, Limits).
    # Single-threaded TCG is too slow for them (300 s were not enough).
    vmm_scenario('vmm-linux-two', 'VMM: two VMs at once (two VMM PDs, 1 + 2 vCPUs on host CPUs 0 and 1-2) to '
                 'their final lines', smp=4, optional=True, cpu='max', mem='768M', vmm='mem=128',
                 prepare=['tools/debian-guest', '{guest}'],
                 modules=['{guest}/vmlinuz console=ttyS0', '{guest}/initramfs.cpio',
                          '{build}/user/vmm/vmm mem=128 cpus=2 hostcpu=1',
                          '{guest}/vmlinuz console=ttyS0 vmcpus=2', '{guest}/initramfs.cpio'],
                 expect=[BANNER, r'^vmmroot: 2 VMs, each with a VMM of its own; host serial input goes to vm0$',
                         r'^vmmroot: vm0: a VMM in a PD of its own on host CPU 0, 128 MiB',
                         r'^vmmroot: vm1: a VMM in a PD of its own on host CPUs 1 2, 128 MiB',
                         r'^vm0\| vmm: the VMM starts on CPU 0 .*\(vm0\)$', r'^vm1\| vmm: the VMM starts on CPU 1 .*\(vm1\)$',
                         r'^vm0\| init: CPUs online: 1$', r'^vm1\| init: CPUs online: 2$',
                         r'^vm1\| init: CPU count: 2 as expected$',
                         r'^vm0\| init: timer: sleep 2 took \d+(\.\d+)? s by the guest.s clock, \d+ s by the RTC \(clocks agree\)$',
                         r'^vm1\| init: timer: sleep 2 took \d+(\.\d+)? s by the guest.s clock, \d+ s by the RTC \(clocks agree\)$',
                         r'^vm0\| init: all checks done, powering off$', r'^vm1\| init: all checks done, powering off$',
                         r'^vm0\| vmm: VM ended: halted \(power-off\)$', r'^vm1\| vmm: VM ended: halted \(power-off\)$',
                         r'^vmmroot: every VM has ended \(all powered off\)$'],
                 forbid=[r'unchecked MSR access', r'Call Trace', r'Kernel panic', r'FAILED', r'not delivered'],
                 steps=[('exit', EXIT_PASS)], timeout=300, tags=['vm', 'vmm']),
    # One VM misbehaves (its guest reads beyond its RAM) while the other runs a shell: the VMM of the
    # first reports it and ends that VM; then the second VM, which gets the host's serial input
    # (vmmroot input=1), runs a typed command and powers off: it and the host were unaffected.
    vmm_scenario('vmm-guest-npf-two', 'VMM: one VM misbehaves while another runs: reported, the other VM and the '
                 'host unaffected', smp=4, optional=True, cpu='max', mem='768M', vmm='mem=128', root='input=1',
                 prepare=['tools/debian-guest', '{guest}'],
                 modules=['{guest}/vmlinuz console=ttyS0 vmtest=npf', '{guest}/initramfs.cpio',
                          '{build}/user/vmm/vmm mem=128', '{guest}/vmlinuz console=ttyS0 vmshell',
                          '{guest}/initramfs.cpio'], serial_input=True,
                 expect=[BANNER, r'^vmmroot: 2 VMs, each with a VMM of its own; host serial input goes to vm1$',
                         r'^vm0\| init: vmtest: ',
                         r'^vm0\| vmm: guest access to 0x40000000 outside its RAM \(nested page fault',
                         r'^vm0\| vmm: VM ended: failure$',
                         r'^vm1\| init: timer: sleep 2 took \d+(\.\d+)? s by the guest.s clock, \d+ s by the RTC \(clocks agree\)$',
                         r'^vm1\| init: vmshell: a shell on the console'],
                 forbid=[r'^vm0\| init: all checks done', r'unchecked MSR access', r'Call Trace', r'Kernel panic'],
                 # vm1's first prompt may already be out, and broken by vm0's lines, when vm0 ends: an
                 # empty command line makes the shell print a fresh prompt, the last line from then on.
                 steps=[('expect', r'^vmmroot: vm0 ended: failure; 1 VM still running$'),
                        ('type', '\r'), ('prompt', r'^vm1\| / # '),
                        ('type', 'echo typed-$((6*7)) $(uname -m)\r'), ('expect', r'^vm1\| typed-42 x86_64'),
                        ('type', 'exit\r'), ('expect', r'^vm1\| init: all checks done, powering off$'),
                        ('expect', r'^vm1\| vmm: VM ended: halted \(power-off\)$'),
                        ('expect', r'^vmmroot: vm1 ended: halted \(power-off\); 0 VMs still running$'),
                        ('expect', r'^vmmroot: every VM has ended \(not all powered off\)$'),
                        ('exit', EXIT_FAIL)], timeout=300, tags=['vm', 'vmm']),
    # A reboot the default way (no ACPI: the keyboard controller's reset line) ends the VM as a reset.
    vmm_scenario('vmm-guest-reset', 'VMM: the guest reboots through the keyboard controller: the VM ends as a reset',
             smp=1, cpu='max', mem='512M', vmm='mem=128', prepare=['tools/debian-guest', '{guest}'],
             modules=['{guest}/vmlinuz console=ttyS0 vmtest=reboot', '{guest}/initramfs.cpio'],
             expect=[BANNER, r'^init: vmtest: rebooting', r'^vmm: reset through the keyboard controller',
                     r'vmm: VM ended: reset'],
             forbid=[r'init: all checks done'], steps=[('exit', 0x12 * 2 + 1)], timeout=240, tags=['vm', 'vmm']),
    # The loader's errors (boot protocol checks) end the VMM with a clear line before any guest runs.
    *[vmm_scenario(f'vmm-load-{t}', f'VMM: {what}', smp=1, cpu='max', mem='512M', vmm=f'mem={mem}',
               prepare=['tools/debian-guest', '{guest}'], modules=mods, expect=[BANNER, rf'^vmm: {line}'],
               forbid=[r'vmm: the vCPU starts'], steps=[('exit', EXIT_FAIL)], timeout=60, tags=['vm', 'vmm'])
      for t, what, mem, mods, line in (
          ('not-bzimage', 'a kernel module that is not a bzImage is refused', 128, ['{guest}/initramfs.cpio'],
           r'not a bzImage'),
          ('small', 'too little guest RAM for the kernel is refused', 48,
           ['{guest}/vmlinuz', '{guest}/initramfs.cpio'], r'too little RAM for the kernel'))],

    # MSI from QEMU's edu device through a GSI semaphore (ABI 7.15, 11.2). Then the MSI and the INTx
    # pin routed to each CPU in turn, raised and awaited by a handler EC there; `kstat`'s census
    # names the CPU that took each interrupt, which must be the one assign_gsi named.
    Scenario('msi-edu', 'edu raises an MSI and an INTx that release their GSI semaphores, on each CPU', smp=2,
             machine='q35', cmdline='serial kstat', extra=['-device', 'edu'], module='user/msitest/msitest',
             expect=[BANNER, r'PASS: the device.s MSI releases the GSI semaphore',
                     r'PASS: the MSI routed to each of the 2 CPUs in turn reaches its handler EC there \(the kernel',
                     r'PASS: the INTx pin routed to each of the 2 CPUs', r'^26 passed, 0 failed$'],
             steps=[('exit', EXIT_PASS)], tags=['sdk', 'irq']),
    # The same through VT-d interrupt remapping (docs/iommu.md): remappable MSIs, I/O APIC pins in
    # the remappable format, a second edu sending the first one's message is dropped. The INTx part's
    # DMA from an unassigned edu is blocked (one fault line), its interrupt still comes. On four CPUs
    # the remapping entries' destinations are what moves the interrupts from CPU to CPU.
    # The same through AMD-Vi interrupt remapping (msi-edu-amd): per-device tables, so the second edu
    # sending the first one's message finds no entry in its own table and is aborted.
    *[Scenario(f'msi-edu-{suffix}', f'edu MSI and INTx through {unit} interrupt remapping, {how}, each of {smp} CPUs',
               smp=smp, machine='q35', cmdline='serial iommu kstat',
               extra=['-device', device, '-device', 'edu', '-device', 'edu'],
               module='user/msitest/msitest',
               expect=[BANNER, r'IOMMU: interrupt remapping on' + on, r'PASS: the second edu sending that message: dropped',
                       rf'PASS: the MSI routed to each of the {smp} CPUs in turn reaches its handler EC there \(the kernel',
                       rf'PASS: the INTx pin routed to each of the {smp} CPUs', r'^31 passed, 0 failed$'],
               steps=[('exit', EXIT_PASS)], tags=['irq', 'iommu'])
      for suffix, unit, how, smp, device, on in (
          ('iommu', 'VT-d', 'source-ID check', 2, 'intel-iommu', ': 256 entries, xAPIC destinations'),
          ('iommu-smp4', 'VT-d', 'source-ID check', 4, 'intel-iommu,intremap=on', ': 256 entries, xAPIC destinations'),
          ('amd', 'AMD-Vi', 'per-device tables', 2, 'amd-iommu', ': AMD-Vi'))],

    # DMA remapping with VT-d (docs/iommu.md): two edu devices in child PDs, their DMA confined to
    # what was delegated with the D bit (user/iommutest). Every blocked write prints a DMAR fault line
    # naming the device and reason 5 (write not permitted); the count is exact.
    *[Scenario(f'{build or ""}{"-" if build else ""}iommu-vtd{suffix}',
               f'VT-d DMA remapping{desc}: assign_pci, D-bit delegation, revoke, reassignment, PD destruction',
               smp=2, machine='q35', cmdline='serial iommu kstat', build=build,
               extra=['-device', f'intel-iommu{opts}', '-device', 'edu', '-device', 'edu'],
               module='user/iommutest/iommutest',
               expect=[BANNER, r'IOMMU: DMA remapping on: 1 unit, ' + levels, r'^%d passed, 0 failed$' % IOMMU_TESTS,
                       r'DMAR:0x[0-9a-f]+ FRR:\d+ FR:0x5 BDF:0:[0-9a-f]+:0 FI:0x7777000 \(write'],
               count={r'DMAR:0x[0-9a-f]+ FRR:\d+ FR:0x5 BDF:0:[0-9a-f]+:0 FI:0x[0-9a-f]+ \(write, write not permitted\)':
                      IOMMU_BLOCKED_WRITES,
                      r'DMAR:0x[0-9a-f]+ FRR:\d+ FR:0x6 BDF:0:[0-9a-f]+:0 FI:0x[0-9a-f]+ \(read, read not permitted\)': 1,
                      r'DMAR:0x[0-9a-f]+ FRR:\d+ FR:0x2 BDF:0:[0-9a-f]+:0 FI:0x[0-9a-f]+ \(write, context entry not present\)':
                      1 + IOMMU_STORM},
               steps=[('exit', EXIT_PASS)], tags=['iommu'])
      for build, suffix, desc, opts, levels in (
          # aw-bits=39 named: QEMU 7.2 defaults to it, QEMU 10 to 48 (4-level tables).
          (None, '', '', ',aw-bits=39', r'3-level'), ('debug', '', ' (debug build)', ',aw-bits=39', r'3-level'),
          (None, '-cm', ' in caching mode', ',caching-mode=on,aw-bits=39', r'3-level.*caching mode'),
          (None, '-aw48', ' with 48-bit device addresses', ',aw-bits=48', r'4-level'))],
    # AMD-Vi DMA remapping under QEMU's amd-iommu (docs/iommu.md): the same test as iommu-vtd, and
    # two more checks (no DMAR table in the HIP; the unit's PCI configuration page is a hole). QEMU
    # 7.2 writes no event log entries at all (its overflow test is always true), so there are no
    # fault lines to count: the blocked writes show only in the memory they did not change.
    Scenario('iommu-amd', 'AMD-Vi DMA remapping: assign_pci, D-bit delegation, revoke, reassignment, PD destruction',
             smp=2, machine='q35', cmdline='serial iommu kstat',
             extra=['-device', 'amd-iommu', '-device', 'edu', '-device', 'edu'],
             module='user/iommutest/iommutest amd',
             expect=[BANNER, r'IOMMU: AMD-Vi unit at 0x[0-9a-f]+ \(IVHD type 0x1[01], device 00:[0-9a-f]{2}\.0, \d+ device ranges, 1 special devices\)',
                     r'IOMMU: DMA remapping on: 1 AMD-Vi unit, 4-level', r'^%d passed, 0 failed$' % (IOMMU_TESTS + 2)],
             steps=[('exit', EXIT_PASS)], tags=['iommu']),
    Scenario('iommu-amd-off', 'AMD-Vi without the option iommu: no remapping, assign_pci BAD_DEV, unit registers hidden',
             smp=1, machine='q35', cmdline='serial kstat',
             extra=['-device', 'amd-iommu', '-device', 'edu', '-device', 'edu'],
             module='user/iommutest/iommutest noiommu amd', expect=[BANNER, r'^8 passed, 0 failed$'],
             forbid=[r'IOMMU: DMA remapping on', r'AMD-Vi unit'], steps=[('exit', EXIT_PASS)], tags=['iommu']),
    Scenario('iommu-vtd-off', 'without the option iommu: no remapping, assign_pci BAD_DEV, unit registers hidden',
             smp=1, machine='q35', cmdline='serial kstat',
             extra=['-device', 'intel-iommu', '-device', 'edu', '-device', 'edu'],
             module='user/iommutest/iommutest noiommu', expect=[BANNER, r'^6 passed, 0 failed$'],
             forbid=[r'IOMMU: DMA remapping on'], steps=[('exit', EXIT_PASS)], tags=['iommu']),

    # Fast paths (user/fastpath, docs/testing.md): the same exchanges (call/reply with 0..508
    # untyped words, flags, selector wrap-around, nested and cross-CPU calls, typed items, an
    # exception reply; sm_ctrl up/down/ZC, deadlines, rights, signals) with the fast paths on and
    # with `nofast`; every register, the FPU state and the UTCBs are printed as DIGEST lines, which
    # must be the same in both boots (same_as).
    Scenario('fastpath-smp1', 'fast paths on: exchanges digested, ABI values checked', smp=1,
             module='user/fastpath/fastpath', expect=[BANNER, r'^190 passed, 0 failed$'],
             steps=[('exit', EXIT_PASS)], tags=['sdk', 'ipc', 'fastpath']),
    Scenario('fastpath-nofast-smp1', 'nofast: the general path gives the same DIGEST lines', smp=1,
             cmdline='serial nofast', module='user/fastpath/fastpath',
             expect=[BANNER, r'CMDLINE:.*\bnofast\b', r'^190 passed, 0 failed$'], steps=[('exit', EXIT_PASS)],
             same_as='fastpath-smp1', tags=['sdk', 'ipc', 'fastpath']),
    Scenario('fastpath-smp2', 'the same on two CPUs, with cross-CPU calls', smp=2,
             module='user/fastpath/fastpath', expect=[BANNER, r'^212 passed, 0 failed$'],
             steps=[('exit', EXIT_PASS)], tags=['sdk', 'ipc', 'fastpath']),
    Scenario('fastpath-nofast-smp2', 'nofast on two CPUs: the same DIGEST lines as fastpath-smp2', smp=2,
             cmdline='serial nofast', module='user/fastpath/fastpath',
             expect=[BANNER, r'CMDLINE:.*\bnofast\b', r'^212 passed, 0 failed$'], steps=[('exit', EXIT_PASS)],
             same_as='fastpath-smp2', tags=['sdk', 'ipc', 'fastpath']),

    # The demo booted by tools/run: console and timer servers, clients on two CPUs.
    Scenario('demo-smp2', 'the multi-server demo of tools/run', smp=2, module='user/demo/demo',
             expect=[BANNER, r'^\[console\] client 0: tick 3', r'^\[console\] client 1: tick 3',
                     r'demo: all clients done'], steps=[('exit', EXIT_PASS)], tags=['sdk', 'demo']),

    # The ABI conformance suite (user/conformance, docs/conformance.md): every test passes; the
    # counts are exact so that a test silently dropped from the suite shows up too.
    # Without `hyptrace` the kernel logs no failed hypercall, however many the suite provokes.
    Scenario('conformance-smp1', 'ABI conformance suite, one CPU', smp=1, module='user/conformance/conformance',
             expect=[BANNER, LIVELOCK_KILL, rf'^{CONFORMANCE_SMP1} passed, 0 failed$'], steps=[('exit', EXIT_PASS)], allow=['Killed EC'],
             forbid=[HYPTRACE], timeout=120, tags=['conformance']),
    Scenario('conformance-smp4', 'ABI conformance suite, four CPUs', smp=4, module='user/conformance/conformance',
             expect=[BANNER, LIVELOCK_KILL, rf'^{CONFORMANCE_SMP4} passed, 0 failed$'], steps=[('exit', EXIT_PASS)], allow=['Killed EC'],
             forbid=[HYPTRACE], timeout=120, tags=['conformance']),
    # With `iommu` on q35 with intel-iommu: DMA and interrupt remapping on (the PIT and every other
    # I/O APIC pin through remapping entries); I.135 skips itself (the module says `iommu`).
    # conformance-amd-smp4: the same with amd-iommu (AMD-Vi; the PIT's pin through the I/O APIC's
    # interrupt remapping table).
    *[Scenario(f'conformance-{suffix}-smp4', f'ABI conformance suite with {unit} DMA and interrupt remapping, four CPUs',
               smp=4, machine='q35', cmdline='serial iommu', extra=['-device', device],
               module=f'user/conformance/conformance iommu{extra_arg}',
               expect=[BANNER, LIVELOCK_KILL, r'IOMMU: interrupt remapping on', rf'^{CONFORMANCE_SMP4 - 1} passed, 0 failed$'],
               steps=[('exit', EXIT_PASS)], allow=['Killed EC'], forbid=[HYPTRACE], timeout=120,
               tags=['conformance', 'iommu'])
      for suffix, unit, device, extra_arg in (('iommu', 'VT-d', 'intel-iommu', ''), ('amd', 'AMD-Vi', 'amd-iommu', ' amd'))],
    # With `hyptrace` every failed check the suite provokes is logged with its reason, and the
    # suite's verdict is the same.
    Scenario('conformance-hyptrace-smp1', 'hyptrace: failed hypercall checks of the conformance suite logged',
             smp=1, cmdline='serial hyptrace', module='user/conformance/conformance',
             expect=[BANNER, r'CMDLINE:.*\bhyptrace\b',
                     r'HYP: create_sc sel 0x[0-9a-f]+: the EC is not a global EC -> BAD_CAP \(EC 0x[0-9a-f]+ PD 0x[0-9a-f]+\)',
                     r'HYP: create_ec sel 0x[0-9a-f]+: the CPU is not online -> BAD_CPU',
                     r'HYP: kstat sel 0x0: number 15 is no hypercall \(no kstat option\) -> BAD_HYP',
                     rf'^{CONFORMANCE_SMP1} passed, 0 failed$'],
             steps=[('exit', EXIT_PASS)], allow=['Killed EC'], timeout=180, tags=['conformance', 'cmdline']),

    # Hardening under load (section K of the conformance suite, docs/conformance.md): hypercalls in
    # a loop on two CPUs while QEMU injects 300 NMIs into every CPU, some of them between syscall
    # and the stack switch or between swapgs and sysretq (the kernel's NMI lines count those), on
    # a CPU with SMEP, SMAP and UMIP (K.umip runs); and a machine check injected while the root EC
    # spins in user mode, which must become its #MC event.
    Scenario('harden-nmi-storm', 'hypercall loops under 300 NMIs; SMEP, SMAP, UMIP on', smp=2, cpu='max,-svm',
             module='user/conformance/conformance nmistorm',
             expect=[BANNER, r'FEATURES: .*SMEP on, SMAP on, UMIP on'],
             steps=[('expect', r'K.nmi-loop: hypercalls for \d+ ms on CPU \d+ and another CPU'), ('nmi', 300),
                    ('expect', r'NMI: \d+ taken on this CPU'), ('expect', r'^PASS K.umip '),
                    ('expect', r'^PASS K.nmi-loop '), ('expect', r'^\d+ passed, 0 failed$'), ('exit', EXIT_PASS)],
             allow=['Killed EC'], timeout=150, tags=['conformance', 'harden']),
    Scenario('harden-mce', 'a machine check injected into user mode is the EC\'s #MC event', smp=1,
             module='user/conformance/conformance mce', expect=[BANNER, r'FEATURES: .*machine check on'],
             steps=[('expect', r'K.mce: spinning in user mode'), ('sleep', 0.2),
                    ('hmp', 'mce 0 1 0xb000000000000000 0x5 0 0'),
                    ('expect', r'MCE: bank 1 status 0xb000000000000000'), ('expect', r'^PASS K.mce '),
                    ('expect', r'^\d+ passed, 0 failed$'), ('exit', EXIT_PASS)],
             allow=['Killed EC'], timeout=150, tags=['conformance', 'harden']),

    # Leak test (user/leaktest): 100 000 objects created and destroyed, an exhaustion of kernel
    # memory; free pages and objects of the kstat hypercall back at the baseline each time; the
    # kernel census of a round (CENSUS). The
    # rounds' global ECs have no startup portal; should one ever run it is killed, which is allowed.
    Scenario('leak-kstat-smp1', 'kernel memory back at its baseline after 100 000 objects, one CPU', smp=1,
             cmdline='serial kstat', module='user/leaktest/leaktest', expect=[BANNER, r'^31 passed, 0 failed$', SUPPRESSED, *CENSUS],
             steps=[('exit', EXIT_PASS)], allow=['Killed EC'], timeout=120, tags=['sdk', 'leak']),
    Scenario('leak-kstat-smp4', 'the same on four CPUs (ECs on a second CPU, TLB shootdowns)', smp=4,
             cmdline='serial kstat', module='user/leaktest/leaktest', expect=[BANNER, r'^31 passed, 0 failed$', SUPPRESSED, *CENSUS],
             steps=[('exit', EXIT_PASS)], allow=['Killed EC'], timeout=120, tags=['sdk', 'leak']),

    # The debug build (configs/debug.config: -Og, assertions on, docs/debugging.md) under the
    # workloads that exercise the asserted invariants most: the conformance suite (call chains,
    # run queues, the mapping database, references, locks) and the leak test (object lifetime).
    # Any failed assertion panics ("Assertion ... failed"), which fails the scenario.
    Scenario('debug-conformance-smp1', 'debug build: ABI conformance suite, one CPU', smp=1,
             module='user/conformance/conformance', build='debug',
             expect=[BANNER, LIVELOCK_KILL, rf'^{CONFORMANCE_SMP1} passed, 0 failed$'], steps=[('exit', EXIT_PASS)], allow=['Killed EC'],
             timeout=150, tags=['conformance', 'debug']),
    Scenario('debug-conformance-smp4', 'debug build: ABI conformance suite, four CPUs', smp=4,
             module='user/conformance/conformance', build='debug',
             expect=[BANNER, LIVELOCK_KILL, rf'^{CONFORMANCE_SMP4} passed, 0 failed$'], steps=[('exit', EXIT_PASS)], allow=['Killed EC'],
             timeout=150, tags=['conformance', 'debug']),
    Scenario('debug-leak-kstat-smp4', 'debug build: the leak test on four CPUs', smp=4, build='debug',
             cmdline='serial kstat', module='user/leaktest/leaktest', expect=[BANNER, r'^31 passed, 0 failed$', *CENSUS],
             steps=[('exit', EXIT_PASS)], allow=['Killed EC'], timeout=150, tags=['sdk', 'leak', 'debug']),

    # The hypercall fuzzer (user/fuzz, docs/testing.md): seeded random hypercalls from two child
    # PDs per CPU for 60 s (all numbers, edge arguments, typed items, delegations and revokes,
    # recalls, semaphores with timeouts, exceptions, bogus portal IPs, PDs killed and re-created),
    # then create, call, delegate and revoke on every CPU, a revoked page unreadable, and kernel
    # memory back at its baseline. Seeds that fail today are optional until their bug is fixed
    # (docs/fuzz-findings.md). The long run is optional: 10 million hypercalls on four CPUs.
    fuzz('fuzz-smp4-seed1', 'hypercall fuzzer, four CPUs, seed 1', 4, 1),
    fuzz('debug-fuzz-smp4-seed2', 'debug build: hypercall fuzzer, four CPUs, seed 2', 4, 2, build='debug',
         tags=['debug']),
    fuzz('fuzz-smp1-seed3', 'hypercall fuzzer, one CPU, seed 3', 1, 3),
    # With DMA and interrupt remapping on: random D-bit items fill and empty DMA tables (written back
    # with clflush for QEMU's non-coherent unit), PDs die with them; kernel memory back at the baseline.
    fuzz('fuzz-iommu-smp2-seed7', 'hypercall fuzzer with VT-d remapping on, two CPUs, seed 7', 2, 7,
         cmdline='serial kstat iommu', machine='q35', extra=['-device', 'intel-iommu'], tags=['iommu']),
    fuzz('fuzz-smp1-seed4', 'hypercall fuzzer, one CPU, seed 4', 1, 4),
    fuzz('fuzz-smp1-seed5', 'hypercall fuzzer, one CPU, seed 5', 1, 5),
    # With SVM (-cpu max): random vCPUs, G-bit items into nested page tables and guest port maps.
    fuzz('fuzz-svm-smp2-seed6', 'hypercall fuzzer with SVM, two CPUs, seed 6', 2, 6, cpu='max'),
    fuzz('fuzz-long-smp4', 'hypercall fuzzer: 10 million hypercalls on four CPUs', 4, 7, secs=0,
         args='calls=10000000 progress=60', timeout=4 * 3600, optional=True),
    # Seeds that found something (docs/fuzz-findings.md); optional until it is fixed.
    fuzz('fuzz-smp4-seed13', 'hypercall fuzzer, four CPUs, seed 13 (F2, fixed: kernel memory back at the baseline)',
         4, 13),
    fuzz('fuzz-strict-smp4-seed11', 'F3: no CPU spins for seconds on the mapping database lock', 4, 11,
         strict=True, optional=True),

    # Lockup detector (include/lockup.hpp, docs/debugging.md): with `lockuptest` (debug builds) CPU 1
    # spins holding a lock with interrupts off and CPU 2 waits for that lock; another CPU reports
    # both (RIP, interrupts off, the lock and its holder, kernel text on the stack) and again when
    # they go on. The release build ignores the option.
    Scenario('debug-lockup-smp4', 'debug build: stalled CPUs are reported with RIP, state and lock', smp=4,
             build='debug', cmdline='serial lockuptest',
             expect=[BANNER, ROOT_RUNNING, r'LOCKUPTEST: CPU 1 holds a lock and spins with interrupts off',
                     r'LOCKUP: CPU 1 made no progress for \d+ ms: RIP 0xffffffff8[0-9a-f]+ in kernel mode, '
                     r'RFLAGS 0x[0-9a-f]+ \(interrupts off\)',
                     r'LOCKUP: CPU 1 kernel text on its stack: 0xffffffff8',
                     r'LOCKUP: CPU 2 made no progress for \d+ ms: RIP 0xffffffff8[0-9a-f]+ in kernel mode',
                     r'LOCKUP: CPU 2 waits for lock 0x[0-9a-f]+ \(ticket next 2, serving 0, held by CPU 1\)',
                     r'LOCKUP: CPU 1 made progress again after \d+ ms',
                     r'LOCKUP: CPU 2 made progress again after \d+ ms'],
             timeout=150, tags=['debug', 'lockup']),
    boots('cmdline-lockuptest', 'lockuptest does nothing in a release build', smp=4, cmdline='serial lockuptest',
          expect=[r'LOCKUPTEST: ignored: it needs a debug build'], forbid=[r'LOCKUP:'],
          tags=['cmdline', 'lockup']),

    # Root task image checks (ABI 9.2).
    bad_module('module-none', 'no multiboot module', None, 'No ELF'),
    bad_module('module-text', 'a text file as root task', ('text', 'This is not an ELF file.\n' * 40),
               'No ELF'),
    bad_module('module-elf32', 'a 32-bit ELF as root task', ('build', 'hypervisor.elf32'), 'No ELF'),
    bad_module('module-not-exec', 'e_type ET_DYN', ('patch', 16, b'\x03\x00'), 'No ELF'),
    bad_module('module-wrong-machine', 'e_machine i386', ('patch', 18, b'\x03\x00'), 'No ELF'),
    bad_module('module-truncated', 'the first 200 bytes of the root task', ('truncate', 200),
               'Bad ELF'),

    # CPU models. Note: QEMU 7.2 TCG emulates neither x2APIC nor PCID nor the TSC-deadline
    # timer; requesting them only prints a warning (the kvm-* scenarios cover them).
    boots('cpu-qemu64', 'QEMU default model: no x2APIC, PCID, XSAVE, SVM', cpu='qemu64', tags=['cpu']),
    boots('cpu-max', 'all TCG features (SVM, XSAVE, 1G pages)', cpu='max', tags=['cpu']),
    boots('cpu-epyc', 'AMD EPYC: SVM', cpu='EPYC', tags=['cpu']),
    # SVM without nested paging cannot run vCPUs: the HIP must not announce it (ABI 8.2).
    Scenario('cpu-max-nonpt', 'SVM without nested paging: no vCPUs, the HIP says so', smp=1, cpu='max,-npt',
             module='user/vmtest/vmtest', expect=[BANNER, r'virtualization SVM without nested paging \(unusable\)',
                                                  r'FAIL: the HIP announces SVM'],
             forbid=[r'SVM: nested paging'], allow=['test failures'], steps=[('exit', EXIT_FAIL)], tags=['cpu', 'vm']),
    boots('cpu-westmere', 'Intel Westmere: no x2APIC, PCID, XSAVE', cpu='Westmere', tags=['cpu']),
    boots('cpu-qemu64-x2apic-pcid', 'x2APIC and PCID requested (absent under TCG)',
          cpu='qemu64,+x2apic,+pcid', tags=['cpu']),

    # Hardware virtualization (only with a usable /dev/kvm; not in the default run).
    boots('kvm-host', 'KVM with the host CPU model (x2APIC, PCID, TSC deadline)',
          cpu='host,-arch-capabilities', kvm=True, optional=True, smp=2, figures=[BOOT_TIME],
          tags=['kvm']),
    boots('kvm-x2apic-smp4', 'KVM, x2APIC on 4 CPUs', cpu='qemu64,+x2apic', kvm=True, optional=True,
          smp=4, tags=['kvm']),
]
