#!/usr/bin/env python3
"""unit_filter.py PROGRAM ARGS...: runs PROGRAM as the shipped systemd
unit would confine it (contrib/systemd/talknetd.service.in): no
capability at all (CapabilityBoundingSet= empty, NoNewPrivileges=yes)
and capset(2) refused with EPERM (SystemCallFilter=~@privileged,
SystemCallErrorNumber=EPERM).  Only capset is filtered: the point is
what talknetd does when the unit refuses it.  x86_64 and aarch64."""

import ctypes
import os
import platform
import struct
import sys

PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7fff0000
SECCOMP_RET_ERRNO = 0x00050000
EPERM = 1
# (audit arch, capset's number) per machine.
ARCHES = {"x86_64": (0xc000003e, 126), "aarch64": (0xc00000b7, 91)}


def insn(code, jt, jf, k):
    """One classic BPF instruction."""
    return struct.pack("HBBI", code, jt, jf, k)


def main():
    arch, nr = ARCHES[platform.machine()]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break           # past the last capability this kernel has
    # ld arch; jne -> allow; ld nr; jne -> allow; ret EPERM; ret allow
    prog = (insn(0x20, 0, 0, 4) + insn(0x15, 0, 3, arch) +
            insn(0x20, 0, 0, 0) + insn(0x15, 0, 1, nr) +
            insn(0x06, 0, 0, SECCOMP_RET_ERRNO | EPERM) +
            insn(0x06, 0, 0, SECCOMP_RET_ALLOW))
    buf = ctypes.create_string_buffer(prog)
    fprog = struct.pack("HxxxxxxQ", len(prog) // 8, ctypes.addressof(buf))
    fbuf = ctypes.create_string_buffer(fprog)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or \
            libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER,
                       ctypes.addressof(fbuf), 0, 0) != 0:
        sys.exit("unit_filter: prctl: %s" % os.strerror(ctypes.get_errno()))
    os.execv(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
