#!/usr/bin/env python3
"""Boot the kernel under QEMU in the scenarios of scenarios.py and judge each by its serial log.

Usage: test/qemu/runner.py [options] [NAME|GLOB|TAG ...]      (see --help and docs/testing.md)

Each scenario runs in its own QEMU with a wall-clock limit, the serial port logged to
build-default/test-logs/<name>.log, and a QMP socket for VGA-memory reads, screendumps and key
presses. At most --jobs QEMUs run at once (scenarios with many CPUs take two slots). One line per
scenario, then `N passed, N failed` as the last line; the exit status is 1 on any failure.

A scenario with `same_as` also compares the `DIGEST ` lines of its serial log with those of the
named scenario once both have run (the partner is added to the run when it was not selected); a
difference, a partner that failed, or no DIGEST lines at all make it fail.
"""

import argparse
import dataclasses
import fnmatch
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.dont_write_bytecode = True         # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import scenarios as S  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
QEMU = 'qemu-system-x86_64'
# UEFI firmware: QEMU's firmware descriptors first (docs/interop/firmware.json in QEMU; Debian's
# ovmf installs them), /etc overriding /usr/share; then OVMF_CODE*.fd files with their VARS twin.
FIRMWARE_DESCRIPTOR_DIRS = [Path('/usr/share/qemu/firmware'), Path('/etc/qemu/firmware')]
OVMF_DIRS = [Path('/usr/share/OVMF'), Path('/usr/share/ovmf'), Path('/usr/share/edk2/ovmf'),
             Path('/usr/share/edk2/x64'), Path('/usr/share/qemu')]
OVMF_UNWANTED = {'secure-boot', 'requires-smm', 'enrolled-keys', 'amd-sev-es', 'amd-sev-snp', 'intel-tdx'}
IPXE_ROM = 'efi-e1000.rom'          # QEMU's e1000 option ROM (BIOS PXE and UEFI network boot)
IPXE_DIRS = [Path('/usr/share/qemu'), Path('/usr/lib/ipxe/qemu')]

# Always fatal unless a scenario allows them by name.
FORBIDDEN = {
    'PANIC': r'PANIC',
    'Assertion': r'\bAssertion\b.*\bfailed\b',
    'Out of memory': r'\bOut of memory\b',
    'I/O APICs': r'Could not add all I/O APICs',
    'Killed EC': r'Killed EC',
    'test failures': r'\b\d+ passed, [1-9]\d* failed\b',
    # The allocators' bug catchers (src/slab.cpp, src/buddy.cpp): a double free, or a free of
    # something they never handed out, is a kernel bug whatever the scenario.
    'bad free': r'\b(?:slab \S+|buddy): (?:double free|free of)\b',
    # Loaders put the kernel's file name first (QEMU -kernel, multiboot 1) or leave it out (GRUB 2):
    # a scenario's own command line has no unknown words, so the file name must not show up here.
    'unknown option': r'cmdline: ignoring unknown option',
}
SUMMARY_OK = re.compile(r'\b([1-9]\d*) passed, 0 failed\b')
ANSI = re.compile(r'\x1b(\[[0-9;?=]*[ -/]*[@-~]|[@-Z\\-_])')
CONTROL = re.compile(r'[\x00-\x08\x0b-\x1f\x7f]')

print_lock = threading.Lock()
active = set()          # runs with a QEMU that must be stopped if the runner is interrupted


def say(*lines):
    with print_lock:
        for line in lines:
            print(line, flush=True)


def clean(line):
    """A serial line without CR, form feeds, terminal escapes (GRUB, OVMF) and other controls."""
    return CONTROL.sub('', ANSI.sub('', line))


# ---------------------------------------------------------------------------------------------
# Host capabilities

def kvm_cpu():
    """The -cpu value that works with KVM on this host, or None when KVM is unusable."""
    if not os.access('/dev/kvm', os.R_OK | os.W_OK):
        return None
    # Some nested setups refuse the host's IA32_ARCH_CAPABILITIES MSR; QEMU then aborts.
    for cpu in ('host', 'host,-arch-capabilities'):
        try:
            r = subprocess.run([QEMU, '-accel', 'kvm', '-cpu', cpu, '-S', '-display', 'none',
                                '-nodefaults', '-monitor', 'stdio'], input=b'quit\n',
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if r.returncode == 0:
            return cpu
    return None


def find_ipxe_rom():
    return next((d / IPXE_ROM for d in IPXE_DIRS if (d / IPXE_ROM).exists()), None)


def find_ovmf(machine, descriptor_dirs=None, ovmf_dirs=None):
    """(code, vars template) of an x86-64 UEFI firmware without Secure Boot or SMM for `machine`
    (pc or q35), or None. The code and the vars template belong together (the 2 MiB and the 4 MiB
    builds have differently sized variable stores), so they are only taken as a pair."""
    probe = ('pc-q35-' if machine == 'q35' else 'pc-i440fx-') + '0.0'
    descriptors = {}
    for d in descriptor_dirs if descriptor_dirs is not None else FIRMWARE_DESCRIPTOR_DIRS:
        if d.is_dir():
            descriptors.update((f.name, f) for f in d.glob('*.json'))  # later dirs override
    for name in sorted(descriptors):                                   # the file name is the priority
        try:
            desc = json.loads(descriptors[name].read_text())
            mapping = desc['mapping']
            if ('uefi' not in desc.get('interface-types', []) or mapping.get('device') != 'flash'
                    or OVMF_UNWANTED & set(desc.get('features', []))):
                continue
            if not any(t.get('architecture') == 'x86_64' and
                       any(fnmatch.fnmatch(probe, m) for m in t.get('machines', []))
                       for t in desc.get('targets', [])):
                continue
            code, nvram = mapping['executable'], mapping['nvram-template']
            if code.get('format', 'raw') != 'raw' or nvram.get('format', 'raw') != 'raw':
                continue
            code, nvram = Path(code['filename']), Path(nvram['filename'])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue                                                   # unreadable or split differently
        if code.is_file() and nvram.is_file():
            return code, nvram
    plain = re.compile(r'OVMF_CODE((?:_\d+M)?)\.fd')                   # not .secboot/.ms/.snakeoil
    for d in ovmf_dirs if ovmf_dirs is not None else OVMF_DIRS:
        found = sorted((c for c in d.glob('OVMF_CODE*.fd') if plain.fullmatch(c.name)),
                       key=lambda c: (plain.fullmatch(c.name)[1] == '', c.name))  # sized builds first
        for code in found:
            nvram = d / f'OVMF_VARS{plain.fullmatch(code.name)[1]}.fd'
            if nvram.is_file():
                return code, nvram
    return None


# ---------------------------------------------------------------------------------------------
# QMP

class Qmp:
    """Minimal QMP client: one command at a time, events skipped."""

    def __init__(self, path, deadline):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        while True:
            try:
                self.sock.connect(str(path))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.sock.settimeout(30)
        self.buf = b''
        self._reply()                       # greeting
        self.cmd('qmp_capabilities')

    def _reply(self):
        while True:
            while b'\n' not in self.buf:
                data = self.sock.recv(65536)
                if not data:
                    raise OSError('QMP connection closed')
                self.buf += data
            line, self.buf = self.buf.split(b'\n', 1)
            msg = json.loads(line)
            if 'event' not in msg:
                return msg

    def cmd(self, name, **args):
        self.sock.sendall(json.dumps({'execute': name, 'arguments': args}).encode() + b'\n')
        msg = self._reply()
        if 'error' in msg:
            raise OSError(f"QMP {name}: {msg['error'].get('desc', msg['error'])}")
        return msg.get('return')

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------------------------------------
# One scenario

class Failure(Exception):
    pass


class Unsupported(Exception):
    """The log shows that this machine cannot run the scenario (Scenario.unsupported)."""


class Run:
    def __init__(self, sc, opts):
        self.sc = sc
        self.opts = opts
        # A scenario with `build` boots the sibling variant directory (build-default -> build-debug).
        self.build = opts.build.parent / f'build-{sc.build}' if sc.build else opts.build
        self.variant = f' {sc.build}' if sc.build else ''   # for "run tools/build debug"
        self.logdir = opts.build / 'test-logs'
        self.log = self.logdir / f'{sc.name}.log'
        self.work = self.logdir / sc.name          # generated modules, ISOs, TFTP trees
        self.tmp = Path(tempfile.mkdtemp(prefix='nova-qemu-'))   # short path for the socket
        self.qmp_path = self.tmp / 'qmp'
        self.qmp = None
        self.serial_path = self.tmp / 'serial'
        self.serial = None
        self.proc = None
        self.lines = []
        self.partial = ''
        self.figures = []
        self.seen = {}
        self.timeout = sc.timeout * opts.timeout_scale

    # -- preparation --------------------------------------------------------------------------

    def need(self, path, what):
        if not Path(path).exists():
            what = what.replace('run tools/build', f'run tools/build{self.variant}')
            raise Failure(f'{what} missing: {path}')
        return Path(path)

    def module(self):
        """The file to pass as the first multiboot module, or None."""
        m = self.sc.module
        if m is None:
            return None
        if m == 'roottask':
            return self.need(self.build / 'user/roottask/roottask', 'root task (run tools/build)')
        if isinstance(m, str):
            path, _, args = m.partition(' ')    # words after the path: the module's command line
            found = self.need(self.build / path, 'module (run tools/build)')
            return f'{found} {args}' if args else found
        kind = m[0]
        if kind == 'build':
            return self.need(self.build / m[1], 'module (run tools/build)')
        out = self.work / 'module'
        if kind == 'text':
            out.write_text(m[1])
            return out
        data = self.need(self.build / 'user/roottask/roottask', 'root task (run tools/build)').read_bytes()
        if kind == 'truncate':
            data = data[:m[1]]
        elif kind == 'patch':
            off, new = m[1], m[2]
            data = data[:off] + new + data[off + len(new):]
        else:
            raise Failure(f'unknown module kind {kind!r} in the scenario table')
        out.write_bytes(data)
        return out

    def guest_dir(self):
        """Where `prepare` puts a scenario's guest files (shared by the scenarios, kept as a cache)."""
        return self.opts.build / 'vm-guest'

    def prepare(self):
        """Run the scenario's `prepare` command; exit status 3 means the machine cannot (SKIP)."""
        cmd = [c.replace('{guest}', str(self.guest_dir())) for c in self.sc.prepare]
        start = time.monotonic()
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        out = (r.stderr or r.stdout).strip().splitlines()
        if r.returncode == 3:
            raise Unsupported(out[-1] if out else f'{cmd[0]} cannot run here')
        if r.returncode != 0:
            raise Failure(f'{shlex.join(cmd)} failed: {out[-1] if out else r.returncode}')
        if self.opts.verbose:
            say(f'  {self.sc.name}| prepared in {time.monotonic() - start:.1f} s: {shlex.join(cmd)}')

    def firmware(self):
        found = find_ovmf(self.sc.machine)
        if found is None:
            where = ', '.join(str(d) for d in FIRMWARE_DESCRIPTOR_DIRS + OVMF_DIRS)
            raise Failure(f'OVMF (package ovmf, run tools/setup) missing: no UEFI firmware without '
                          f'Secure Boot in {where}')
        code, template = found
        vars_copy = self.work / template.name          # every VM writes its own copy
        shutil.copyfile(template, vars_copy)
        return ['-drive', f'if=pflash,format=raw,unit=0,readonly=on,file={code}',
                '-drive', f'if=pflash,format=raw,unit=1,file={vars_copy}']

    def grub_tool(self, tool, out, module):
        kernel = self.need(self.build / 'hypervisor', 'kernel (run tools/build)')
        env = dict(os.environ, MB=str(self.sc.mb))
        cmd = [str(ROOT / 'tools' / tool), str(out), str(kernel), str(module or '-')]
        cmd += self.sc.cmdline.split()
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            raise Failure(f'tools/{tool} failed: {(r.stderr or r.stdout).strip()[-300:]}')

    def command(self):
        sc = self.sc
        # With serial input the serial port is a socket that the `type` steps write to; QEMU still
        # logs every byte the guest sends into the log file.
        serial = (['-chardev', f'socket,id=s0,path={self.serial_path},server=on,wait=off,logfile={self.log}',
                   '-serial', 'chardev:s0'] if sc.serial_input else ['-serial', f'file:{self.log}'])
        args = [QEMU, '-machine', sc.machine, '-smp', str(sc.smp), '-m', sc.mem,
                '-display', 'none', '-no-reboot', *serial,
                '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04',
                '-qmp', f'unix:{self.qmp_path},server=on,wait=off',
                '-d', 'cpu_reset,guest_errors', '-D', str(self.log) + '.qemu']
        cpu = sc.cpu
        if sc.kvm:
            host_cpu = self.opts.kvm_cpu
            if host_cpu is None:
                raise Failure('KVM not usable (/dev/kvm missing, not writable, or QEMU -accel kvm fails)')
            args += ['-accel', 'kvm']
            if cpu and cpu.startswith('host'):
                cpu = host_cpu + cpu[4:]
        else:
            args += ['-accel', f'tcg,thread={tcg_thread(sc)}']
        if cpu:
            args += ['-cpu', cpu]
        if sc.boot.startswith('pxe') and find_ipxe_rom() is None:
            raise Failure(f'iPXE ROM {IPXE_ROM} missing (package ipxe-qemu, run tools/setup)')
        module = self.module()
        if sc.boot == 'kernel':
            kernel = self.need(self.build / 'hypervisor.elf32', 'kernel (run tools/build)')
            args += ['-kernel', str(kernel), '-append', sc.cmdline]
            if module:
                if ',' in str(module):
                    raise Failure(f'module path must not contain a comma: {module}')
                # QEMU separates modules with commas; a comma inside a module's words is doubled.
                more = [m.replace('{guest}', str(self.guest_dir())).replace('{build}', str(self.build))
                        .replace(',', ',,') for m in sc.modules]
                args += ['-initrd', ','.join([str(module)] + more)]
        elif sc.boot.startswith('iso-'):
            if sc.boot == 'iso-uefi':
                args += self.firmware()
            iso = self.work / 'boot.iso'
            self.grub_tool('make-iso', iso, module)
            args += ['-cdrom', str(iso), '-boot', 'd']
        elif sc.boot.startswith('pxe-'):
            tftp = self.work / 'tftp'
            self.grub_tool('make-netdir', tftp, module)
            if sc.boot == 'pxe-uefi':
                args += self.firmware()
                bootfile, nic, boot = '/boot/grub/x86_64-efi/core.efi', 'e1000,netdev=n0,bootindex=1', []
            else:
                bootfile, nic, boot = '/boot/grub/i386-pc/core.0', 'e1000,netdev=n0', ['-boot', 'n']
            args += ['-netdev', f'user,id=n0,tftp={tftp},bootfile={bootfile}', '-device', nic] + boot
        else:
            raise Failure(f'unknown boot method {sc.boot!r} in the scenario table')
        return args + list(sc.extra)

    # -- observation --------------------------------------------------------------------------

    def read_log(self, fh):
        data = fh.read()
        if not data:
            return []
        text = self.partial + data.decode('utf-8', 'replace')
        parts = text.split('\n')
        self.partial = parts.pop()
        new = [clean(p) for p in parts]
        self.lines += new
        if self.opts.verbose:
            say(*(f'  {self.sc.name}| {line}' for line in new))
        return new

    def drain_serial(self):
        """Read and drop what the guest sent to the serial socket: the log file has it, and a socket
        nobody reads fills up and stalls the guest's UART (QEMU applies back-pressure)."""
        if self.serial is None:
            return
        try:
            while self.serial.recv(65536):
                pass
        except (BlockingIOError, OSError):
            pass

    def check_forbidden(self, new, forbidden, banner):
        for line in new:
            for name, rx in forbidden:
                if rx.search(line):
                    raise Failure(f'forbidden {name!r}: {line.strip()}')
            if self.sc.silent and line.strip():
                raise Failure(f'serial output although `serial` is off: {line.strip()}')
        if sum(1 for line in self.lines if banner.search(line)) > 1:
            raise Failure('banner printed twice: unexpected reset')

    def check_unsupported(self, new):
        for rx, unless, reason in self.sc.unsupported:
            for line in new:
                if re.search(unless, line):
                    self.tried = True
                elif re.search(rx, line) and not getattr(self, 'tried', False):
                    raise Unsupported(reason)

    def vga_text(self):
        dump = self.tmp / 'vga.bin'
        self.qmp_cmd('pmemsave', val=0xb8000, size=0x8000, filename=str(dump))
        data = dump.read_bytes()
        # Text mode: character/attribute pairs, 80 per row.
        chars = data[0::2].decode('latin-1')
        text = '\n'.join(chars[i:i + 80].rstrip('\0 ') for i in range(0, len(chars), 80))
        (self.work / 'vga.txt').write_text(text + '\n')     # the last look, for the curious
        return text

    def screen_blank(self):
        shot = self.work / 'screen.ppm'
        self.qmp_cmd('screendump', filename=str(shot))
        data = shot.read_bytes()
        fields, pos = [], 0
        while len(fields) < 4:                  # P6 width height maxval, whitespace separated
            m = re.compile(rb'\s*(#[^\n]*\n\s*)*(\S+)').match(data, pos)
            fields.append(m.group(2))
            pos = m.end()
        pixels = data[pos + 1:]
        return len(set(pixels[i:i + 3] for i in range(0, len(pixels), 3))) <= 1

    def qmp_cmd(self, name, **args):
        if self.qmp is None:
            self.qmp = Qmp(self.qmp_path, time.monotonic() + 10)
        return self.qmp.cmd(name, **args)

    # -- the run ------------------------------------------------------------------------------

    def missing(self, expects, counts):
        out = [f'/{rx.pattern}/' for rx in expects]
        out += [f'{n} lines /{rx.pattern}/ (saw {self.seen[rx]})'
                for rx, n in counts.items() if self.seen[rx] != n]
        return out

    def run(self):
        sc = self.sc
        self.work.mkdir(parents=True, exist_ok=True)
        for p in (self.log, Path(str(self.log) + '.qemu')):
            p.unlink(missing_ok=True)
        if sc.prepare:
            self.prepare()
        args = self.command()
        self.log.touch()
        (self.work / 'qemu-command').write_text(shlex.join(args) + '\n')
        stderr = open(self.work / 'qemu-stderr', 'w+')
        start = time.monotonic()
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr)
        forbidden = [(n, re.compile(rx)) for n, rx in FORBIDDEN.items() if n not in sc.allow]
        forbidden += [(rx, re.compile(rx)) for rx in sc.forbid]
        banner = re.compile(S.BANNER)
        expects = [re.compile(rx) for rx in sc.expect]
        counts = {re.compile(rx): n for rx, n in sc.count.items()}
        self.seen = {rx: 0 for rx in counts}
        steps = list(sc.steps)
        step_since = None
        with open(self.log, 'rb') as fh:
            while True:
                status = self.proc.poll()
                self.drain_serial()
                new = self.read_log(fh)
                if status is not None and self.partial:
                    new.append(clean(self.partial))
                    self.lines.append(new[-1])
                    self.partial = ''
                self.check_forbidden(new, forbidden, banner)
                self.check_unsupported(new)
                expects = [rx for rx in expects if not any(rx.search(line) for line in new)]
                for rx in self.seen:
                    self.seen[rx] += sum(1 for line in new if rx.search(line))
                now = time.monotonic()
                if now - start > self.timeout:
                    what = self.missing(expects, counts) or ([f'step {steps[0]}'] if steps else [])
                    if steps and steps[0][0] == 'vga':
                        what.append(f'(VGA text in {self.work / "vga.txt"})')
                    raise Failure(f'timeout after {self.timeout:.0f} s waiting for {", ".join(what)}')
                if not expects and all(self.seen[rx] >= n for rx, n in counts.items()):
                    for rx, n in counts.items():
                        if self.seen[rx] != n:
                            raise Failure(f'expected exactly {n} lines matching /{rx.pattern}/, '
                                          f'saw {self.seen[rx]}')
                    counts = {}
                    # Work through the steps; each either completes now or is retried next round.
                    while steps:
                        if step_since is None:
                            step_since = now
                        if not self.step(steps[0], status, step_since, now):
                            break
                        steps.pop(0)
                        step_since = None
                    if not steps:
                        return self.finish(start)
                if status is not None:
                    return self.exited(status, expects, counts, steps, start)
                time.sleep(0.1)

    def step(self, step, status, since, now):
        kind, arg = step
        if kind == 'exit':
            if status is None:
                return False
            if status != arg:
                raise Failure(f'QEMU exit status {status}, expected {arg}{self.exit_reason(status)}')
            return True
        if kind == 'expect' and any(re.search(arg, line) for line in self.lines):
            return True                     # printed before QEMU ended is as good
        if status is not None:
            raise Failure(f'QEMU exited (status {status}{self.exit_reason(status)}) before step {step}')
        if kind == 'sleep':
            return now - since >= arg
        if kind == 'key':
            self.qmp_cmd('send-key', keys=[{'type': 'qcode', 'data': arg}])
            return True
        if kind == 'type':                  # into the serial port (scenarios with serial_input)
            if self.serial is None:
                self.serial = socket.socket(socket.AF_UNIX)
                self.serial.connect(str(self.serial_path))
                self.serial.setblocking(False)
            self.serial.sendall(arg.encode())
            return True
        if kind == 'nmi':
            for _ in range(arg):
                self.qmp_cmd('inject-nmi')
            return True
        if kind == 'hmp':
            self.qmp_cmd('human-monitor-command', **{'command-line': arg})
            return True
        if kind == 'expect':
            return any(re.search(arg, line) for line in self.lines)
        if kind == 'prompt':                # the unfinished last line: a shell's prompt
            return re.search(arg, clean(self.partial)) is not None
        if kind in ('vga', 'no-vga'):
            found = re.search(arg, self.vga_text(), re.M) is not None
            if kind == 'no-vga':
                if found:
                    raise Failure(f'VGA text memory holds /{arg}/ (see {self.work / "vga.txt"})')
                return True
            if not found:
                time.sleep(0.4)             # pmemsave is not free; poll at about 2 Hz
            return found
        if kind == 'screen':
            blank = self.screen_blank()
            if blank != (arg == 'blank'):
                raise Failure(f'screen is {"blank" if blank else "not blank"}, expected {arg}')
            return True
        raise Failure(f'unknown step {step!r} in the scenario table')

    def exit_reason(self, status):
        if status == S.EXIT_PASS:
            return ': root task reported success'
        if status == S.EXIT_FAIL:
            return ': root task reported failure'
        if status == 0:
            qlog = Path(str(self.log) + '.qemu')
            if qlog.exists() and 'Triple fault' in qlog.read_text(errors='replace'):
                return ': triple fault'
            return ': guest reset or shutdown'
        if status & 1 and status > 1:
            return f': isa-debug-exit code {status >> 1:#x}'
        err = (self.work / 'qemu-stderr').read_text(errors='replace').strip().splitlines()
        errs = [e for e in err if 'warning' not in e]
        return f': {errs[-1]}' if errs else ''

    def exited(self, status, expects, counts, steps, start):
        """QEMU ended before the scenario was complete."""
        summary = any(SUMMARY_OK.search(line) for line in self.lines)
        if status == S.EXIT_PASS and summary and not expects and not counts \
                and all(kind == 'exit' and arg == S.EXIT_PASS for kind, arg in steps):
            return self.finish(start)
        missing = self.missing(expects, counts) + [str(s) for s in steps]
        raise Failure(f'QEMU exited (status {status}{self.exit_reason(status)}) '
                      f'before the expectations were met: missing {", ".join(missing)}')

    def finish(self, start):
        for label, rx in self.sc.figures:
            m = next((m for m in (re.search(rx, line) for line in self.lines) if m), None)
            self.figures.append(f'{label}: {m.group(1) if m else "?"}')
        return time.monotonic() - start

    def stop(self):
        if self.serial:
            self.serial.close()
        if self.qmp:
            try:
                self.qmp.close()
            except OSError:
                pass
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


class Outcome:
    """What run_one found: the verdict, the lines to print, the serial log and the time taken."""

    def __init__(self, ok, out, log, secs, figures=''):
        self.ok, self.out, self.log, self.secs, self.figures = ok, out, log, secs, figures

    def digests(self):
        """The serial log's lines that start with `DIGEST ` (read once QEMU has stopped)."""
        try:
            text = self.log.read_text(errors='replace')
        except OSError:
            return []
        return [line for line in (clean(part) for part in text.split('\n')) if line.startswith('DIGEST ')]


def run_one(sc, opts):
    """Run a scenario; returns an Outcome."""
    r = Run(sc, opts)
    active.add(r)
    start = time.monotonic()
    try:
        secs = r.run()
        figures = ('  ' + '  '.join(r.figures)) if r.figures else ''
        return Outcome(True, [f'PASS {sc.name} ({secs:.1f} s){figures}'], r.log, secs, figures)
    except Unsupported as e:
        return Outcome(None, [f'SKIP {sc.name}: {e} ({time.monotonic() - start:.1f} s)'], r.log,
                       time.monotonic() - start)
    except Failure as e:
        reason = str(e)
    except Exception as e:                              # a runner bug must not hide the others
        reason = f'runner error: {type(e).__name__}: {e}'
    finally:
        r.stop()
        active.discard(r)
    tail = r.lines[-20:] + ([clean(r.partial)] if r.partial else [])
    secs = time.monotonic() - start
    out = [f'FAIL {sc.name}: {reason} ({secs:.1f} s)']
    if tail:
        out += [f'    | {line}' for line in tail[-20:]]
    out.append(f'    log: {r.log}')
    return Outcome(False, out, r.log, secs)


# ---------------------------------------------------------------------------------------------
# Comparing two boots (field same_as)

def digest_diff(a, b):
    """Values of two `DIGEST name: key=value ...` lines that differ, as 'key x vs y' strings."""
    def fields(line):
        head, _, rest = line.partition(': ')
        return head, dict(tok.partition('=')[::2] for tok in rest.split() if '=' in tok)
    (ha, fa), (hb, fb) = fields(a), fields(b)
    if ha != hb or not fa or not fb:
        return []
    return [f'{k} {fa.get(k, "-")} vs {fb.get(k, "-")}' for k in list(fa) + [k for k in fb if k not in fa]
            if fa.get(k) != fb.get(k)]


def digest_differences(sc, own, partner):
    """Compare the DIGEST lines of two boots: (problem or None, lines describing it)."""
    ref = sc.same_as
    mine, theirs = own.digests(), partner.digests()
    for name, lines, log in ((sc.name, mine, own.log), (ref, theirs, partner.log)):
        if not lines:
            return f'no DIGEST lines in the log of {name}', [f'    log: {log}']
    differ = [i for i in range(max(len(mine), len(theirs)))
              if i >= len(mine) or i >= len(theirs) or mine[i] != theirs[i]]
    if not differ:
        return None, [f'{len(mine)} DIGEST lines same as {ref}']
    counts = f'{len(mine)} here, {len(theirs)} in {ref}; ' if len(mine) != len(theirs) else ''
    problem = (f'DIGEST lines differ from {ref} ({counts}{len(differ)} of {max(len(mine), len(theirs))} '
               f'lines differ)')
    def line(lines, i):
        return lines[i] if i < len(lines) else '(no line)'
    width = max(len(sc.name), len(ref))
    first = differ[0]
    out = [f'    first difference, DIGEST line {first + 1}:',
           f'    {ref:{width}} | {line(theirs, first)}',
           f'    {sc.name:{width}} | {line(mine, first)}',
           f'    differing lines (values in {ref} vs in {sc.name}):']
    for i in differ[:10]:
        a, b = line(theirs, i), line(mine, i)
        diffs = digest_diff(a, b)
        if diffs:
            more = f' (+{len(diffs) - 6} more)' if len(diffs) > 6 else ''
            out.append(f'      {a.partition(":")[0][len("DIGEST "):]}: {", ".join(diffs[:6])}{more}')
        else:
            out += [f'      {ref}: {a}', f'      {sc.name}: {b}']
    if len(differ) > 10:
        out.append(f'      ... {len(differ) - 10} more differing lines')
    out += [f'    log: {partner.log}', f'    log: {own.log}']
    return problem, out


def compare(sc, own, partner):
    """
    The verdict of scenario `sc`, which has a same_as partner, once both have run (partner None:
    it did not run): (ok, lines to print). When either boot failed the DIGEST lines are still
    compared, for information; the scenario fails anyway.
    """
    ref = sc.same_as
    if partner is None:
        out = own.out if not own.ok else [f'FAIL {sc.name}: cannot compare DIGEST lines: {ref} did not run '
                                          f'({own.secs:.1f} s)']
        return False, out
    problem, detail = digest_differences(sc, own, partner)
    if not own.ok:
        extra = [f'    and {problem[0].lower() + problem[1:]}:'] + detail if problem else []
        return False, own.out + extra
    if not partner.ok:
        note = f'{problem}' if problem else 'its DIGEST lines are the same'
        return False, [f'FAIL {sc.name}: cannot compare DIGEST lines: {ref} failed; {note} ({own.secs:.1f} s)'] \
            + (detail if problem else [f'    log: {own.log}'])
    if problem:
        return False, [f'FAIL {sc.name}: {problem} ({own.secs:.1f} s)'] + detail
    return True, [f'PASS {sc.name} ({own.secs:.1f} s){own.figures}  {detail[0]}']


# ---------------------------------------------------------------------------------------------
# Selection and scheduling

def select(patterns):
    if not patterns:
        return [sc for sc in S.SCENARIOS if not sc.optional]
    chosen = [sc for sc in S.SCENARIOS
              if any(fnmatch.fnmatchcase(sc.name, p) or p in sc.tags for p in patterns)]
    unknown = [p for p in patterns
               if not any(fnmatch.fnmatchcase(sc.name, p) or p in sc.tags for sc in S.SCENARIOS)]
    if unknown:
        sys.exit(f'runner: no scenario matches {", ".join(unknown)} (see --list)')
    return chosen


def with_partners(chosen, adapt):
    """
    Add the same_as partners (and theirs) of the chosen scenarios, passed through adapt (the --set
    overrides): a comparison needs both boots.
    """
    by_name = {sc.name: sc for sc in S.SCENARIOS}
    names = {sc.name for sc in chosen}
    todo = list(chosen)
    while todo:
        ref = todo.pop().same_as
        if ref and ref not in names and ref in by_name:
            partner = adapt(by_name[ref])
            chosen.append(partner)
            names.add(ref)
            todo.append(partner)
            say(f'runner: running {ref} as well (the DIGEST comparison of a selected scenario needs it)')
    return chosen


def check_table():
    """The scenario table's cross references."""
    names = [sc.name for sc in S.SCENARIOS]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        sys.exit(f'runner: scenario names used twice: {", ".join(sorted(dup))}')
    for sc in S.SCENARIOS:
        if sc.same_as is not None and (sc.same_as not in names or sc.same_as == sc.name):
            sys.exit(f'runner: scenario {sc.name}: same_as {sc.same_as!r} names no other scenario')


def override(sc, settings):
    """A copy of the scenario with FIELD=VALUE settings applied (typed like the field)."""
    changes = {}
    for item in settings:
        name, _, value = item.partition('=')
        if name not in S.Scenario.__dataclass_fields__ or name == 'name':
            sys.exit(f'runner: --set {item}: no such scenario field')
        old = getattr(sc, name)
        if isinstance(old, bool):
            changes[name] = value.lower() in ('1', 'true', 'yes', 'on')
        elif isinstance(old, (int, float)):
            changes[name] = type(old)(value)
        elif isinstance(old, list):
            changes[name] = value.split()
        else:
            changes[name] = value if value else None
    if 'smp' in changes:            # keep the CPU expectations consistent with the new count
        online = min(changes['smp'], S.NUM_CPU)
        changes.setdefault('count', {rx: (online if rx == S.CORE else n) for rx, n in sc.count.items()})
        changes.setdefault('expect', [re.sub(r'SMP: \d+ of \d+', f'SMP: {online} of {changes["smp"]}', rx)
                                      for rx in sc.expect])
    return dataclasses.replace(sc, **changes)


def tcg_thread(sc):
    if sc.tcg:
        return sc.tcg
    return 'multi' if sc.smp <= 2 * (os.cpu_count() or 1) else 'single'


def weight(sc, jobs):
    """Slots a scenario occupies: more busy vCPU threads than host cores want the machine alone."""
    threads = sc.smp if sc.kvm or tcg_thread(sc) == 'multi' else 1
    return min(jobs, 2 if threads > (os.cpu_count() or 1) else 1)


def main():
    ap = argparse.ArgumentParser(description='Boot the kernel in QEMU scenarios (docs/testing.md).')
    ap.add_argument('patterns', nargs='*', help='scenario names, globs or tags (default: all '
                    'non-optional scenarios)')
    ap.add_argument('-l', '--list', action='store_true', help='list the scenarios and exit')
    ap.add_argument('-j', '--jobs', type=int, default=min(2, os.cpu_count() or 1),
                    help='QEMUs at once (default: 2 or the number of host CPUs if fewer)')
    ap.add_argument('-v', '--verbose', action='store_true', help='echo serial lines as they arrive')
    ap.add_argument('--build', type=Path, default=ROOT / 'build-default', help='build directory')
    ap.add_argument('--timeout-scale', type=float, default=float(os.environ.get('QEMU_TIMEOUT_SCALE', 1)),
                    help='multiply every time limit (slow hosts); env QEMU_TIMEOUT_SCALE')
    ap.add_argument('--command', action='store_true', help='print the QEMU command lines and exit')
    ap.add_argument('--set', action='append', default=[], metavar='FIELD=VALUE',
                    help='override a scenario field for this run, e.g. --set cpu=max --set smp=1')
    opts = ap.parse_args()
    opts.build = opts.build.resolve()

    check_table()
    chosen = [override(sc, opts.set) for sc in select(opts.patterns)]
    if opts.list:
        for sc in S.SCENARIOS:
            flags = ' [optional]' if sc.optional else ''
            flags += f' [DIGEST same as {sc.same_as}]' if sc.same_as else ''
            print(f'{sc.name:28} {sc.timeout:4.0f}s  {sc.desc}{flags}')
        return 0
    chosen = with_partners(chosen, lambda sc: override(sc, opts.set))
    if shutil.which(QEMU) is None:
        sys.exit(f'runner: {QEMU} not found (run tools/setup)')
    opts.kvm_cpu = kvm_cpu() if any(sc.kvm for sc in chosen) else None
    (opts.build / 'test-logs').mkdir(parents=True, exist_ok=True)
    if opts.command:
        for sc in chosen:
            r = Run(sc, opts)
            r.work.mkdir(parents=True, exist_ok=True)
            try:
                print(sc.name + ': ' + shlex.join(r.command()))
            except Failure as e:
                print(f'{sc.name}: {e}')
            r.stop()
        return 0

    jobs = max(1, opts.jobs)
    free = [jobs]
    cond = threading.Condition()
    results = []
    outcomes = {}           # name -> Outcome of every finished scenario
    waiting = {}            # name -> Outcome of a scenario with same_as whose verdict is not out yet
    # Longest first keeps the two slots busy until the end.
    queue = sorted(chosen, key=lambda sc: -sc.timeout * weight(sc, jobs))
    by_name = {sc.name: sc for sc in chosen}

    def judge(final=False):
        """Scenarios waiting for a comparison whose partner is done (all of them when final)."""
        for name in list(waiting):
            ref = by_name[name].same_as
            if ref in outcomes or final:
                ok, out = compare(by_name[name], waiting.pop(name), outcomes.get(ref))
                say(*out)
                results.append(ok)

    def worker(sc, w):
        o = run_one(sc, opts)
        with cond:
            outcomes[sc.name] = o
            if sc.same_as:
                waiting[sc.name] = o        # its verdict needs the partner's log too
            else:
                say(*o.out)
                results.append(o.ok)
            judge()
            free[0] += w
            cond.notify_all()

    threads = []
    try:
        for sc in queue:
            w = weight(sc, jobs)
            with cond:
                cond.wait_for(lambda: free[0] >= w)
                free[0] -= w
            t = threading.Thread(target=worker, args=(sc, w), daemon=True)
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
        judge(final=True)
    except KeyboardInterrupt:
        say('interrupted')
        return 130
    finally:
        for r in list(active):
            r.stop()
    passed = sum(1 for ok in results if ok is True)
    skipped = sum(1 for ok in results if ok is None)
    failed = len(chosen) - passed - skipped
    if skipped:
        say(f'runner: {skipped} scenario{"s" if skipped > 1 else ""} skipped (SKIP lines above say why)')
    say(f'{passed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
