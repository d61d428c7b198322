#!/usr/bin/env python3
"""The hub's round (issue 15; src/daemon/hub_round.c, "The round" in
doc/design.md): the requester's channel is written before anyone else's,
for an IDENTIFY (its RESPONSE before the NEW_USER broadcast) and for a
DISCONNECT (its CLOSE before DISCONNECTED); and however many requests a
round runs, each worker's channel is written once for all of them.  The
hub is watched from outside, with strace and /proc/<hub>/io, which need
root (the hub is not dumpable): without it, or without strace, the tests
skip."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest import ops  # noqa: E402
import tntest  # noqa: E402
from tntest import (req, new_user, disconnected, public_from,  # noqa: E402
                    text_from)

T = tntest.TIMEOUT


def _need_root():
    """Skips unless root: the hub is not dumpable."""
    if os.geteuid() != 0:
        raise tntest.Skip("needs root to watch the non-dumpable hub")


def _strace_start(pid, out):
    """Attaches strace to pid (reads and writevs, into out); returns the
    process once it says it is attached."""
    if shutil.which("strace") is None:
        raise tntest.Skip("strace is not installed")
    p = subprocess.Popen(["strace", "-p", str(pid), "-e",
                          "trace=read,writev", "-s", "256", "-o", out],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    line = p.stderr.readline().decode("utf-8", "replace")
    if "attached" not in line:
        p.kill()
        p.wait(T)
        raise tntest.Skip("strace could not attach: %r" % line)
    return p


def _strace_stop(p):
    """Detaches strace (SIGTERM, by its pid) and waits for it."""
    p.terminate()
    p.wait(T)
    p.stderr.close()


def _calls(path):
    """The traced calls as (name, fd, text, result) tuples."""
    calls = []
    pat = re.compile(r'^(read|writev)\((\d+), (.*)\) += (-?\d+)')
    with open(path, errors="replace") as f:
        for line in f:
            m = pat.match(line)
            if m:
                calls.append((m.group(1), int(m.group(2)), m.group(3),
                              int(m.group(4))))
    return calls


def _first_write_after(calls, i):
    """The fd of the first writev after calls[i], and its index."""
    for j in range(i + 1, len(calls)):
        if calls[j][0] == "writev":
            return calls[j][1], j
    raise AssertionError("no writev after call %d: %r" % (i, calls[i:]))


def test_requester_written_first():
    """An IDENTIFY's RESPONSE, and a DISCONNECT's CLOSE, leave the hub
    before the broadcast the same request causes: the first channel the
    hub writes after reading the request is the requester's."""
    _need_root()
    s = tntest.Server("--max-clients-per-ip", "0", "--rate-limit", "0")
    observers = []
    for i in range(8):
        c = tntest.Client(s)
        c.identify("obs%d" % i)
        observers.append(c)
    for i, c in enumerate(observers):
        for k in range(i + 1, len(observers)):
            c.expect(new_user("obs%d" % k))
    joiner = tntest.Client(s)
    out = os.path.join(ops.tempdir("rounds"), "hub.trace")
    st = _strace_start(s.hub_pid(), out)
    try:
        joiner.identify("zeta")
        for c in observers:
            c.expect(new_user("zeta"))
        joiner.send(req("DISCONNECT"))
        joiner.expect_closed()
        for c in observers:
            c.expect(disconnected("zeta"))
    finally:
        _strace_stop(st)
    calls = _calls(out)
    ident = [i for i, c in enumerate(calls)
             if c[0] == "read" and c[3] > 0 and "zeta" in c[2]]
    assert ident, "no read of the IDENTIFY in the hub's trace: %r" % calls
    fd = calls[ident[0]][1]
    first, j = _first_write_after(calls, ident[0])
    assert first == fd, "after the IDENTIFY from fd %d the hub wrote fd %d " \
        "first: %r" % (fd, first, calls[ident[0]:j + 1])
    quit_ = [i for i in range(ident[0] + 1, len(calls))
             if calls[i][0] == "read" and calls[i][1] == fd and
             calls[i][3] > 0]
    assert quit_, "no read of the DISCONNECT on fd %d: %r" % (fd, calls)
    first, j = _first_write_after(calls, quit_[0])
    assert first == fd, "after the DISCONNECT from fd %d the hub wrote fd " \
        "%d first (the broadcast before the requester's CLOSE): %r" % (
            fd, first, calls[quit_[0]:j + 1])
    others = {c[1] for c in calls[j + 1:] if c[0] == "writev"}
    assert len(others) >= len(observers), "DISCONNECTED was not written " \
        "to every observer's channel after the CLOSE: %r" % calls[j:]


def _proc_field(path, key):
    """The number after "key" on its line of a /proc file."""
    with open(path) as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    raise AssertionError("no %s in %s" % (key, path))


def _hub_writes(pid):
    """The write calls the hub has made, from /proc/<pid>/io."""
    return _proc_field("/proc/%d/io" % pid, "syscw:")


def test_one_write_per_worker_per_round():
    """Forty texts that reach the hub in one round cost each recipient's
    channel one write, not forty: the hub is stopped while 40 senders
    send, and continued."""
    _need_root()
    s = tntest.Server("--max-clients-per-ip", "0", "--rate-limit", "0")
    nsend, nobs = 40, 20
    clients = []
    for i in range(nsend + nobs):
        c = tntest.Client(s)
        c.identify("u%d" % i)
        clients.append(c)
    names = ["u%d" % i for i in range(len(clients))]
    for i, c in enumerate(clients):
        for k in range(i + 1, len(clients)):
            c.expect(new_user(names[k]))
    hub = s.hub_pid()
    before = _hub_writes(hub)
    os.kill(hub, signal.SIGSTOP)
    try:
        for i in range(nsend):
            clients[i].send(req("PUBLIC_TEXT", text="t%d" % i))
        # Every frame waits in its channel (bounded: the workers forward
        # at once; a second is plenty even under a sanitizer).
        time.sleep(1.0)
    finally:
        os.kill(hub, signal.SIGCONT)
    for i, c in enumerate(clients):
        want = [public_from(names[k], "t%d" % k) for k in range(nsend)
                if k != i]
        c.expect_unordered(want, timeout=T * 2)
    writes = _hub_writes(hub) - before
    lines = sum(nsend - (1 if i < nsend else 0) for i in range(len(clients)))
    # One write per channel per pass; a round's 40 reads may run over
    # two epoll rounds, so allow two per channel, and the log's own.
    assert writes <= 2 * len(clients) + 8, "the hub made %d writes for %d " \
        "lines to %d channels" % (writes, lines, len(clients))


def _pss_kib(pid):
    """Proportional set size of pid, KiB (smaps_rollup)."""
    return _proc_field("/proc/%d/smaps_rollup" % pid, "Pss:")


def test_burst_memory_given_back():
    """A batch the client is slow to take outgrows the worker's queue;
    once the client has read it and a quiet second has passed, that
    worker is no bigger than an idle twin's (measured in the same run):
    the queue's pages went back, the heap it shares with the master
    was never written."""
    _need_root()
    s = tntest.Server("--max-clients-per-ip", "0", "--rate-limit", "0",
                      "--send-buffer", "4096")
    sender = tntest.Client(s)
    sender.identify("sender")
    slow = tntest.Client(s, rcvbuf=4096)
    slow.identify("slow")
    twin = tntest.Client(s)
    twin.identify("twin")
    for c in (sender, slow):
        c.drain()
    n, text = 60, "m" * 1000
    for i in range(n):
        sender.send(req("TEXT", username="slow", text="%02d%s" % (i, text)))
    time.sleep(0.5)                 # the queue fills while slow reads not
    for i in range(n):
        slow.expect(text_from("sender", "%02d%s" % (i, text)), timeout=T)
    # Quiet for more than a second (WORKER_SCRATCH_IDLE_MS): the pages
    # go back then; waited for, within a bound, not slept out.
    t0 = time.monotonic()
    wslow, wtwin = s.worker_pid(slow), s.worker_pid(twin)
    sizes = []

    def given_back():
        sizes[:] = [_pss_kib(wslow), _pss_kib(wtwin)]
        return sizes[0] <= sizes[1] + 16
    tntest.wait_until(given_back, 10, interval=0.1, what=lambda: "after a "
                      "60 KB burst and a quiet while, the worker holds %d "
                      "KiB against its idle twin's %d KiB" % tuple(sizes))
    print("  given back %.2f s after the burst was read"
          % (time.monotonic() - t0))


if __name__ == "__main__":
    tntest.main(globals())
