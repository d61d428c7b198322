#!/usr/bin/env python3
"""wakecost: CPU time per delivered line per worker, against the bare
wake-up measured in the same run (issue 15).  Not part of make check:
it reports figures, it asserts nothing.

N identified idle clients and one sender; the sender sends K
PUBLIC_TEXTs GAP seconds apart, so every worker wakes once per line.
The workers' CPU time (sum_exec_runtime in /proc/PID/schedstat, kernel
and user, ns) before and after, over K x workers, is the cost of one
line in one worker.  The bare wake-up is tests/bench/wakebare.c: N
processes woken by a byte on a Unix socket, each reading it and
writing it back, with the same N, K and GAP.  Rounds alternate the
daemons given, so machine noise spreads over all of them.

usage: wakecost.py [-n N] [-k K] [-g GAP] [-r ROUNDS]
                   [-a 'ARGS'] TALKNETD...
"""

import argparse
import os
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
import tntest  # noqa: E402
from tntest import ops  # noqa: E402,F401  (C locale)


def is_worker(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return b"worker" in f.read()
    except OSError:
        return False


def cpu_faults(pids):
    """(run time in ns, minor + major faults) summed over pids."""
    ns = faults = 0
    for p in pids:
        try:
            with open("/proc/%d/schedstat" % p) as f:
                ns += int(f.read().split()[0])
            with open("/proc/%d/stat" % p) as f:
                st = f.read().rsplit(")", 1)[1].split()
            faults += int(st[7]) + int(st[9])
        except OSError:
            pass
    return ns, faults


def connect(port):
    """A connection to the daemon, which may still be starting (10 s)."""
    end = time.monotonic() + 10
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=30)
        except ConnectionRefusedError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


class Clients:
    """n + 1 identified clients, read through one epoll."""

    def __init__(self, port, n):
        self.socks = []
        for i in range(n + 1):
            c = connect(port)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c.sendall(b'{"type":"IDENTIFY","username":"w%d"}\n' % i)
            self.socks.append(c)
            if i % 50 == 49:
                time.sleep(0.05)
        self.ep = select.epoll()
        self.byfd = {}
        for c in self.socks:
            c.setblocking(False)
            self.ep.register(c.fileno(), select.EPOLLIN)
            self.byfd[c.fileno()] = c
        self.sender = self.socks[-1]

    def drain(self, t):
        """Reads for t seconds; returns the lines read."""
        end = time.monotonic() + t
        got = 0
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return got
            for fd, _ in self.ep.poll(left):
                try:
                    got += self.byfd[fd].recv(1 << 16).count(b"\n")
                except BlockingIOError:
                    pass

    def close(self):
        for c in self.socks:
            c.close()
        self.ep.close()


def run_daemon(binary, n, k, gap, args):
    port = tntest.free_port()
    p = subprocess.Popen([binary, "-f", "-l", "127.0.0.1:%d" % port,
                          "--max-clients-per-ip", "0", "--rate-limit", "0",
                          "--max-clients", str(n + 100)] + args,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        cl = Clients(port, n)
        cl.drain(3.0)
        workers = [q for q in tntest.children_of(p.pid)
                   if is_worker(q)]
        msg = b'{"type":"PUBLIC_TEXT","text":"' + b"x" * 100 + b'"}\n'
        cl.sender.sendall(msg)
        cl.drain(0.5)
        time.sleep(2.0)
        ns0, f0 = cpu_faults(workers)
        got = 0
        for _ in range(k):
            cl.sender.sendall(msg)
            got += cl.drain(gap)
        got += cl.drain(1.0)
        ns1, f1 = cpu_faults(workers)
        cl.close()
        per = k * len(workers)
        return (ns1 - ns0) / 1000.0 / per, (f1 - f0) / per, got
    finally:
        p.terminate()
        p.wait(30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=500)
    ap.add_argument("-k", type=int, default=100)
    ap.add_argument("-g", type=float, default=0.02)
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("-a", default="", help="more talknetd arguments")
    ap.add_argument("binaries", nargs="+")
    o = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="wakecost-")
    bare_bin = os.path.join(tmp, "wakebare")
    subprocess.check_call([os.environ.get("CC", "cc"), "-O2", "-o", bare_bin,
                           os.path.join(HERE, "wakebare.c")])
    res = {b: [] for b in o.binaries}
    bare = []
    for r in range(o.r):
        out = subprocess.check_output([bare_bin, str(o.n), str(o.k),
                                       str(int(o.g * 1e6))])
        bare.append(float(out))
        print("round %d: bare %.2f us" % (r + 1, bare[-1]), flush=True)
        for b in o.binaries:
            us, faults, got = run_daemon(b, o.n, o.k, o.g, o.a.split())
            res[b].append(us)
            print("round %d: %s %.2f us/line/worker, %.4f faults, "
                  "%d lines delivered" % (r + 1, b, us, faults, got),
                  flush=True)
    os.unlink(bare_bin)
    os.rmdir(tmp)
    mb = statistics.median(bare)
    print("bare wake-up: median %.2f us (%s)"
          % (mb, ", ".join("%.2f" % x for x in bare)))
    for b in o.binaries:
        m = statistics.median(res[b])
        print("%s: median %.2f us/line/worker = %.2f x bare (%s)"
              % (b, m, m / mb, ", ".join("%.2f" % x for x in res[b])))


if __name__ == "__main__":
    sys.exit(main())
