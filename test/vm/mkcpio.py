#!/usr/bin/env python3
"""Write a cpio archive in the "newc" format (the initramfs format Linux reads) from a list of
entries: dir:PATH, node:PATH:MAJOR:MINOR (character device), file:PATH:SOURCE:MODE (octal)."""
import sys


def entry(out, ino, name, mode, data=b'', rdev=(0, 0)):
    name_b = name.encode() + b'\0'
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0]
    out.write(b'070701' + b''.join(b'%08x' % f for f in fields))
    out.write(name_b)
    out.write(b'\0' * (-(110 + len(name_b)) % 4))
    out.write(data)
    out.write(b'\0' * (-len(data) % 4))


def main():
    target, specs = sys.argv[1], sys.argv[2:]
    with open(target, 'wb') as out:
        for ino, spec in enumerate(specs, 1):
            kind, _, rest = spec.partition(':')
            if kind == 'dir':
                entry(out, ino, rest.lstrip('/'), 0o040755)
            elif kind == 'node':
                path, major, minor = rest.split(':')
                entry(out, ino, path.lstrip('/'), 0o020600, rdev=(int(major), int(minor)))
            elif kind == 'file':
                path, source, mode = rest.split(':')
                with open(source, 'rb') as f:
                    entry(out, ino, path.lstrip('/'), 0o100000 | int(mode, 8), f.read())
            else:
                sys.exit(f'mkcpio: unknown entry {spec!r}')
        entry(out, 0, 'TRAILER!!!', 0)


if __name__ == '__main__':
    main()
