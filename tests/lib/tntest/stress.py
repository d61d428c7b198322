"""What the stress tests need besides the daemon and the runner: the file
and process limits, memory and fd readings of the daemon's tree, and
Pool, a selector loop over thousands of plain non-blocking sockets that
counts and parses lines without keeping them.

Every figure a test measures is printed as "FIGURE name: value" so the
notes can pick them up with grep.  Importing it gives each test the
longer limit of TN_STRESS_TIMEOUT (240 s)."""

import os
import resource
import selectors
import socket
import struct
import sys
import time

from . import runner
from .client import recv_ready, send_some
from .config import LOOPBACK
from .procfs import nfds, smaps_rollup, status_kb
from .proto import check_line, compact
from .runner import Skip, wait_until

# A stress test takes longer than an e2e test; the runner reads this.
runner.TEST_TIMEOUT = int(os.environ.get("TN_STRESS_TIMEOUT", "240"))


def figure(name, value, unit=""):
    print("FIGURE %s: %s%s" % (name, value, (" " + unit) if unit else ""))
    sys.stdout.flush()


def note(msg):
    print("  " + msg)
    sys.stdout.flush()


# ---------------------------------------------------------------------------
# Limits

def raise_nofile(need):
    """Raises the soft RLIMIT_NOFILE towards the hard limit (the daemon,
    started afterwards, inherits it); skips when the hard limit is below
    need."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        raise Skip("RLIMIT_NOFILE hard limit %d < %d needed"
                         % (hard, need))
    want = hard if hard != resource.RLIM_INFINITY else max(soft, need)
    if soft == resource.RLIM_INFINITY or soft >= want:
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def need_processes(n):
    """Skips when this user may not have n more processes."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    if soft != resource.RLIM_INFINITY and soft < n + 200:
        if hard == resource.RLIM_INFINITY or hard >= n + 200:
            resource.setrlimit(resource.RLIMIT_NPROC,
                               (hard if hard != resource.RLIM_INFINITY
                                else n + 200, hard))
        else:
            raise Skip("RLIMIT_NPROC %d < %d needed" % (soft, n + 200))
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            if int(f.read()) < n + 1000:
                raise Skip("kernel.pid_max too low for %d processes"
                                 % n)
    except OSError:
        pass


# ---------------------------------------------------------------------------
# The daemon's tree

def tree_memory(server):
    """Memory of the daemon's whole tree: a dict with the process count,
    the Rss and Pss sums (kB), the master's and hub's Rss and the hub's
    VmHWM."""
    hub = [p for p in server.titled("talknetd: hub")]
    pids = [server.pid] + server.descendants()
    rss = pss = n = 0
    for p in pids:
        r = smaps_rollup(p)
        if r is None:
            continue
        n += 1
        rss += r[0]
        pss += r[1]
    out = {"procs": n, "rss_sum_kb": rss, "pss_sum_kb": pss,
           "master_rss_kb": status_kb(server.pid, "VmRSS"),
           "hub_rss_kb": None, "hub_hwm_kb": None}
    if hub:
        out["hub_rss_kb"] = status_kb(hub[0], "VmRSS")
        out["hub_hwm_kb"] = status_kb(hub[0], "VmHWM")
    return out


def baseline(server, hub):
    """(fds of master, fds of hub, children of master)."""
    return (server.master_nfds(), nfds(hub), len(server.children()))


def wait_baseline(server, hub, base, timeout=15):
    """Waits until the fd counts of master and hub and the number of the
    master's children are back to base; returns the last reading."""
    last = [None]

    def ok():
        last[0] = baseline(server, hub)
        return last[0] == base
    wait_until(ok, timeout, interval=0.1,
                     what=lambda: "(master fds, hub fds, children) back to "
                     "%r, have %r" % (base, last[0]))
    return last[0]


# ---------------------------------------------------------------------------
# Many connections

class Conn:
    __slots__ = ("sock", "fd", "buf", "out", "eof", "reset", "name", "idx",
                 "nlines", "data", "port", "pool")

    def __repr__(self):
        return "<Conn %s :%d>" % (self.name or "-", self.port)

    def send(self, msg):
        self.pool.send(self, msg)


class Pool:
    """Non-blocking loopback connections multiplexed with one selector.

    on_line(conn, raw) is called for each complete line (bytes without
    the "\\n"); on_eof(conn) when a connection ends.  Lines are not kept.
    """

    def __init__(self, port, on_line=None, on_eof=None):
        self.port = port
        self.sel = selectors.DefaultSelector()
        self.conns = []
        self.on_line = on_line or (lambda c, raw: None)
        self.on_eof = on_eof or (lambda c: None)
        self.nlines = 0
        self.bytes_in = 0

    def connect(self, name=None, rcvbuf=None, timeout=10.0):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        s.connect((LOOPBACK, self.port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        c = Conn()
        c.sock = s
        c.fd = s.fileno()
        c.buf = b""
        c.out = b""
        c.eof = False
        c.reset = False
        c.name = name
        c.idx = len(self.conns)
        c.nlines = 0
        c.data = None
        c.port = s.getsockname()[1]
        c.pool = self
        self.conns.append(c)
        self.sel.register(s, selectors.EVENT_READ, c)
        return c

    def send(self, c, msg):
        if isinstance(msg, dict):
            msg = compact(msg)
        if c.eof:
            return
        if c.out:
            c.out += msg
            return
        try:
            c.out = send_some(c.sock, msg)
        except (BrokenPipeError, ConnectionResetError):
            return
        if c.out:
            self.sel.modify(c.sock, selectors.EVENT_READ |
                            selectors.EVENT_WRITE, c)

    def pending_out(self):
        return sum(len(c.out) for c in self.conns)

    def _read(self, c):
        data, reset = recv_ready(c.sock)
        if data is None:
            return
        if reset:
            c.reset = True
        if not data:
            c.eof = True
            self.sel.unregister(c.sock)
            self.on_eof(c)
            return
        self.bytes_in += len(data)
        buf = c.buf + data if c.buf else data
        start = 0
        while True:
            i = buf.find(b"\n", start)
            if i < 0:
                break
            c.nlines += 1
            self.nlines += 1
            self.on_line(c, buf[start:i])
            start = i + 1
        c.buf = buf[start:]

    def _write(self, c):
        try:
            n = c.sock.send(c.out)
        except BlockingIOError:
            return
        except (BrokenPipeError, ConnectionResetError):
            c.out = b""
            n = 0
        c.out = c.out[n:]
        if not c.out and not c.eof:
            self.sel.modify(c.sock, selectors.EVENT_READ, c)

    def poll(self, timeout):
        """One round: waits up to timeout s, handles what is ready."""
        if not self.sel.get_map():
            time.sleep(timeout)
            return
        for key, ev in self.sel.select(timeout):
            c = key.data
            if ev & selectors.EVENT_WRITE and c.out:
                self._write(c)
            if ev & selectors.EVENT_READ:
                self._read(c)

    def run_until(self, pred, timeout, what="condition", tick=None):
        """Pumps until pred() is true; AssertionError after timeout s.
        tick() runs between rounds."""
        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                if callable(what):
                    what = what()
                raise AssertionError("timed out after %.1f s waiting for %s"
                                     % (timeout, what))
            self.poll(min(left, 0.05))
            if tick:
                tick()

    def pump_for(self, seconds):
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            self.poll(min(left, 0.05))

    def close(self, c, reset=False):
        if reset:
            try:
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                  struct.pack("ii", 1, 0))
            except OSError:
                pass
        if not c.eof:
            try:
                self.sel.unregister(c.sock)
            except (KeyError, ValueError):
                pass
        c.eof = True
        try:
            c.sock.close()
        except OSError:
            pass

    def close_all(self):
        for c in self.conns:
            self.close(c)
        self.conns = []
        self.sel.close()


def parse(raw):
    """A server line (without "\\n") as a dict, checked by check_line."""
    return check_line(raw + b"\n")
