"""A scenario's `prepare` command: exit status 3 (SKIP) unless qemu-system-x86_64 is at least
the version given (major[.minor]), e.g. `python3 test/qemu/need_qemu.py 10` for x2APIC under TCG."""

import re
import subprocess
import sys


def main():
    want = tuple(int(x) for x in sys.argv[1].split('.'))
    try:
        out = subprocess.run(['qemu-system-x86_64', '--version'], capture_output=True, text=True).stdout
    except OSError as e:
        print(f'qemu-system-x86_64: {e}', file=sys.stderr)
        return 3
    m = re.search(r'version (\d+)\.(\d+)', out)
    have = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    if have[:len(want)] < want:
        print(f'needs QEMU {sys.argv[1]} or later (x2APIC under TCG), found {".".join(map(str, have))}',
              file=sys.stderr)
        return 3
    return 0


if __name__ == '__main__':
    sys.exit(main())
