#!/usr/bin/env python3
"""Work per wake-up (issue 15): the system calls an idle worker makes for
each line the hub routes to it, counted with strace.  A line costs the
wait that ends, the read of the hub channel, the write into the send
pipe and the splice to the client: four calls.  A line that comes after
a quiet time longer than --stall-timeout may add the stall check's
look at the socket (SIOCOUTQ), but no wake-up of its own.

On 94596bb each such line also cost a second wake-up, stall-timeout
later, for the check: six calls and two wake-ups a line.  Skipped
without strace, or when it cannot attach."""

import os
import re
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest import ops  # noqa: E402
import tntest  # noqa: E402
from tntest import req  # noqa: E402

T = tntest.TIMEOUT

# One strace output line per system call; with -f a pid comes first.
_CALL_RE = re.compile(r"^(?:\[?pid\s+)?(?:\d+\]?\s+)?([a-z_0-9]+)\(")


class Strace:
    """strace -f -p pid, writing to a file, until stop()."""

    def __init__(self, pid, path):
        if shutil.which("strace") is None:
            raise tntest.Skip("strace is not installed")
        self.path = path
        self.p = subprocess.Popen(["strace", "-f", "-o", path, "-p",
                                   str(pid)], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)
        # strace says "Process N attached" once it traces the worker.
        line = b""
        deadline = time.monotonic() + T
        while b"attached" not in line and time.monotonic() < deadline:
            line = self.p.stderr.readline()
            if not line:
                break
        if b"attached" not in line:
            self.p.kill()
            self.p.wait()
            raise tntest.Skip("strace cannot attach: %r" % line)

    def stop(self):
        """Detaches and returns the names of the calls seen."""
        self.p.terminate()
        try:
            self.p.wait(T)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.p.stderr.close()
        with open(self.path) as f:
            calls = [m.group(1) for m in map(_CALL_RE.match, f) if m]
        os.unlink(self.path)
        return calls


def _lines(s, sender, reader, pid, n, gap, tag):
    """Traces reader's worker while sender sends n lines, gap s apart;
    returns the calls the worker made."""
    path = os.path.join(ops.tempdir("wakeup"), "strace.%s" % tag)
    st = Strace(pid, path)
    try:
        for i in range(n):
            text = "%s %d" % (tag, i)
            sender.send(req("PUBLIC_TEXT", text=text))
            reader.expect(tntest.public_from("sender", text))
            time.sleep(gap)
    finally:
        calls = st.stop()
    return calls


def _per_line(calls, n):
    counts = {}
    for c in calls:
        counts[c] = counts.get(c, 0) + 1
    return "%d calls for %d lines: %s" % (len(calls), n, ", ".join(
        "%s %d" % kv for kv in sorted(counts.items())))


WAITS = ("epoll_pwait", "ppoll", "poll", "epoll_wait")


def _check(calls, n, what):
    """At most one wake-up per line, four calls per line besides the
    stall check's SIOCOUTQ, and at most one of those per line.  Over the
    lines' own: the wait under way when strace detached, and a stall
    check left from before the lines."""
    waits = sum(1 for c in calls if c in WAITS)
    looks = sum(1 for c in calls if c == "ioctl")
    print("  lines %s: %s" % (what, _per_line(calls, n)))
    assert waits <= n + 1, "reader's worker woke up more than once a " \
        "line (%s): %s" % (what, _per_line(calls, n))
    assert len(calls) - looks <= 4 * n + 1, "reader's worker made more " \
        "than four calls a line (%s): %s" % (what, _per_line(calls, n))
    assert looks <= n + 1, "more than one stall check a line (%s): %s" \
        % (what, _per_line(calls, n))


def test_calls_per_delivered_line():
    """Lines 50 ms apart, and lines further apart than --stall-timeout
    (1 s here): one wake-up and four calls a line, and at most one look
    at the socket for the stall check."""
    s = tntest.Server("--stall-timeout", "1")
    text = s.log_text()
    if "running under valgrind" in text:
        raise tntest.Skip("talknetd runs under valgrind")
    reader, sender = tntest.connect_users(s, "reader", "sender")
    pid = s.worker_pid(reader)
    # Past the first lines' stall check: the worker is idle.
    time.sleep(1.5)
    n = 10
    _check(_lines(s, sender, reader, pid, n, 0.05, "close"), n,
           "50 ms apart")
    n = 4
    _check(_lines(s, sender, reader, pid, n, 1.5, "apart"), n,
           "1.5 s apart")
    tntest.expect_nothing(reader, sender)
    assert s.terminate() == 0


if __name__ == "__main__":
    tntest.main(globals())
