#!/usr/bin/env python3
"""Attacks on the pool of spare workers (issue 20): a compromised
worker that forges a "client closed" report for an idle spare, spares
that take the master's last fds, a spare stopped while it waits, reload
storms while clients connect, SIGTERM in the middle of a burst."""

import ctypes
import json
import os
import resource
import shutil
import signal
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest import ops  # noqa: E402
import tntest  # noqa: E402
from tntest import wait_until  # noqa: E402

T = tntest.TIMEOUT
WORKER_RELEASE_FD = 4            # src/daemon/worker.h
SYS_PIDFD_GETFD = 438            # the same number on every Linux arch
TALKNETCTL = os.environ.get("TALKNETCTL") or os.path.join(
    os.path.dirname(tntest.TALKNETD), "talknetctl")


def stats(server):
    """talknetctl show stats, as a dict."""
    if not os.access(TALKNETCTL, os.X_OK):
        raise tntest.Skip("talknetctl not found at %s" % TALKNETCTL)
    rc, out, err = ops.run([TALKNETCTL, "-s", server.control, "--json",
                            "show", "stats"], timeout=15)
    assert rc == 0, "talknetctl show stats: exit %d, %r" % (rc, err)
    return json.loads(out)["data"]


def spares(s, n, timeout=T):
    """Waits until the master has exactly n idle spares; their pids."""
    return wait_until(lambda: len(s.spares()) == n and s.spares(), timeout,
                      what="%d idle spares (have %r)" % (n, s.spares()))


def identified(s, name):
    """A client of s, identified as name."""
    c = tntest.Client(s)
    c.identify(name)
    return c


def steal_fd(pid, fd):
    """A copy of fd of process pid (pidfd_getfd): what a compromised
    process of the daemon's uid, with the rights of root, could do."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        got = libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
        if got < 0:
            raise tntest.Skip("pidfd_getfd: %s" %
                              os.strerror(ctypes.get_errno()))
        return got
    finally:
        os.close(pidfd)


def cpu_ticks(pid):
    """utime + stime of pid, in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_a_forged_release_for_an_idle_spare_changes_nothing():
    """Without -u a worker is root, and CAP_SYS_ADMIN lets it put any
    pid in the credentials of a "client closed" datagram.  Claiming an
    idle spare's pid must not count as a client leaving: the spare was
    never counted, so the master's client count would wrap and refuse
    everyone from then on, and the spare would be killed as lingering."""
    ops.need_root("a forged pid in SCM_CREDENTIALS needs CAP_SYS_ADMIN")
    with tntest.Server("--min-spare", "2", "--max-spare", "2",
                       "--max-clients", "4") as s:
        a = identified(s, "anna")
        victims = spares(s, 2)
        fd = steal_fd(s.worker_pid(a), WORKER_RELEASE_FD)
        with socket.socket(fileno=fd) as rel:
            for v in victims:
                cred = struct.pack("iII", v, 0, 0)
                rel.sendmsg([b"forged"], [(socket.SOL_SOCKET,
                                           socket.SCM_CREDENTIALS, cred)])
        # Past the master's linger (500 ms): a spare taken for a released
        # worker would be killed by then.
        wait_until(lambda: stats(s)["clients"] == 1, T,
                   what="one client counted")
        time.sleep(0.8)
        assert all(tntest.pid_alive(v) for v in victims), victims
        others = [identified(s, "u%d" % i) for i in range(3)]
        st = stats(s)
        assert st["clients"] == 4, st
        assert st["spares_lost"] == 0, st
        for c in others + [a]:
            c.close()
        wait_until(lambda: stats(s)["clients"] == 0, T,
                   what="every client gone")
        identified(s, "again")


class LimitedServer(tntest.Server):
    """A talknetd whose open files limit cannot be raised."""

    def __init__(self, nofile, *opts):
        self.nofile = nofile
        super().__init__(*opts)

    def argv(self):
        return ["prlimit", "--nofile=%d:%d" % (self.nofile, self.nofile),
                "--"] + super().argv()


def test_spares_leave_the_master_fds_to_accept_with():
    """Each idle spare holds one of the master's fds.  Under a low hard
    limit (the master could not raise it) a big pool must stop short of
    the limit: with every fd taken by spares, accept fails with EMFILE
    and every client is refused while idle spares wait for one.  Nor
    may the master spin on the fork it cannot make."""
    if shutil.which("prlimit") is None:
        raise tntest.Skip("prlimit not found (util-linux)")
    with LimitedServer(48, "--min-spare", "60", "--max-spare", "60") as s:
        # The pool stops growing: at the limit, or short of it.
        last = [None]

        def still():
            n = len(s.spares())
            same = n == last[0]
            last[0] = n
            return same and n > 0
        wait_until(lambda: (time.sleep(0.3), still())[1], T,
                   what="the pool to stop growing")
        assert tntest.nfds(s.pid) < 48, tntest.nfds(s.pid)
        s.wait_log(r"warning: spare worker: \d+ idle, no more: the open "
                   r"files limit 48 must leave the master 16")
        t0 = cpu_ticks(s.pid)
        time.sleep(1.0)
        hz = os.sysconf("SC_CLK_TCK")
        assert cpu_ticks(s.pid) - t0 < hz // 4, \
            "the master spun: %d ticks in 1 s" % (cpu_ticks(s.pid) - t0)
        # Two talknetctl connections held open, then clients.
        ctl = []
        for _ in range(2):
            u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            u.connect(s.control)
            ctl.append(u)
        clients = [identified(s, "c%d" % i) for i in range(5)]
        assert "out of file descriptors" not in s.log_text(), s.log_text()
        for c in clients + ctl:
            c.close()
        assert s.log_text().count("idle, no more") == 1, s.log_text()


def test_a_stopped_spare_stalls_only_the_client_it_was_given():
    """SIGSTOP every idle spare: the connections handed to them wait
    (as with a stopped worker), the master does not: the pool refills
    and the next clients are served; SIGCONT and the waiting ones are
    served too."""
    with tntest.Server("--min-spare", "2", "--max-spare", "2") as s:
        stopped = spares(s, 2)
        for p in stopped:
            os.kill(p, signal.SIGSTOP)
        try:
            waiting = [tntest.Client(s) for _ in stopped]
            wait_until(lambda: len(set(s.spares()) - set(stopped)) == 2, T,
                       what="two new spares")
            fresh = identified(s, "fresh")
        finally:
            for p in stopped:
                os.kill(p, signal.SIGCONT)
        for i, c in enumerate(waiting):
            c.identify("late%d" % i)
        fresh.close()


def test_a_reload_storm_while_clients_connect():
    """150 SIGHUPs and talknetctl reloads between connections: every
    client is served, every retired spare exits quietly, and after it
    the pool, the master's fds and its children are as before."""
    with tntest.Server("--min-spare", "3", "--max-spare", "6") as s:
        spares(s, 3)
        fds0 = s.master_nfds()
        clients = []
        for i in range(150):
            os.kill(s.pid, signal.SIGHUP)
            if i % 10 == 0:
                clients.append(identified(s, "r%d" % i))
        rc, _, err = ops.run([TALKNETCTL, "-s", s.control, "reload"],
                             timeout=T)
        assert rc == 0, err
        for c in clients:
            c.close()
        wait_until(lambda: len(s.children()) == 1, T,
                   what="only the hub besides the spares (%r)"
                   % s.children())
        spares(s, 3)
        wait_until(lambda: s.master_nfds() == fds0, T,
                   what="the master's fds back to %d (%d)"
                   % (fds0, s.master_nfds()))
        assert "before it had a client" not in s.log_text()
        assert stats(s)["spares_lost"] == 0
        identified(s, "after")


def test_sigterm_in_a_burst_leaves_no_process():
    """SIGTERM while 40 connections arrive and the pool grows: the
    master exits 0 in time and no worker or spare is left."""
    s = tntest.Server("--min-spare", "2", "--max-spare", "16")
    spares(s, 2)
    socks = [socket.create_connection(("127.0.0.1", s.port), timeout=T)
             for _ in range(40)]
    pids = s.descendants()
    assert s.terminate(10) == 0
    wait_until(lambda: not any(tntest.pid_alive(p) for p in pids), T,
               what="no process of the daemon left")
    for so in socks:
        so.close()


if __name__ == "__main__":
    tntest.main(globals())
