#!/usr/bin/env python3
"""talknetd out of resources (issue 6): when the master cannot take a
file descriptor (EMFILE) or cannot fork a worker (EAGAIN), the waiting
client gets a clean close at once, the refusal is logged, the master
pauses accepting instead of spinning, and service resumes by itself as
soon as the resource is back.  The limits are lowered on the running
master only (prlimit), so the hub and the workers already there keep
theirs."""

import os
import resource
import shutil
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest import ops  # noqa: E402
import tntest  # noqa: E402

SPIN_CPU_S = 0.3      # master CPU allowed over a 1 s refusal window


def _cpu_s(pid):
    """User plus system CPU seconds of pid."""
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def _fds(pid):
    """The fd numbers pid has open."""
    return set(tntest.fd_targets(pid))


def _soft_limit(pid, name):
    """pid's soft limit called name in /proc/PID/limits, as text."""
    with open("/proc/%d/limits" % pid) as f:
        for ln in f:
            if ln.startswith(name):
                return ln[len(name):].split()[0]
    raise AssertionError("no %r in /proc/%d/limits" % (name, pid))


def _identified(s, name):
    """A new client identified as name, and the seconds that took: the
    same run's measure of how fast this machine serves a connection."""
    t0 = time.monotonic()
    c = tntest.Client(s)
    c.identify(name)
    return c, time.monotonic() - t0


def _refused_then_served(s, limit, restore, what, base):
    """Clients are closed cleanly while the limit holds; the master does
    not spin; after restore() a new client is served within the pause
    (200 ms) and a second, plus ten times what serving a connection took
    (base seconds) earlier in the same run."""
    cpu0 = _cpu_s(s.pid)
    t0 = time.monotonic()
    limit()
    refused = []
    for _ in range(3):
        c = tntest.Client(s)
        c.expect_closed(timeout=5)
        refused.append(c)
    # A client that keeps trying costs the master little: it pauses.
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        c = tntest.Client(s)
        c.expect_closed(timeout=5)
    cpu = _cpu_s(s.pid) - cpu0
    assert cpu < SPIN_CPU_S * (time.monotonic() - t0), \
        "master used %.2f s of CPU in %.1f s while refusing (%s)" \
        % (cpu, time.monotonic() - t0, what)
    restore()
    # Service comes back without a restart; the pause is short.
    ok, took = _identified(s, "back")
    assert took < 1.0 + max(1.0, 10 * base), "service took %.1f s to " \
        "resume; the first client was served in %.2f s" % (took, base)
    for c in refused:
        c.close()


def test_out_of_fds_refuses_politely_and_resumes():
    # No spare: the pool refilling after anna took one would move the
    # master's fds under the snapshot below (test_spare_attack.py has
    # the pool at the fd limit).
    s = tntest.Server("--min-spare", "0", "--max-spare", "0")
    a, base = _identified(s, "anna")
    pid = s.pid
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    # The master closes its copy of anna's socket just after the fork;
    # count its fds only then, or the limit would leave that one free.
    tntest.wait_until(lambda: not tntest.socket_holders(
        [pid], tntest.port_of(s), a.local_port), 5,
        what="the master to close its copy of the client's socket")
    # The next fd the master would take is the lowest free number;
    # capping the limit there makes accept4 fail with EMFILE.
    used = _fds(pid)
    lowest = min(set(range(len(used) + 1)) - used)

    def limit():
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (lowest, hard))

    def restore():
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))

    _refused_then_served(s, limit, restore, "EMFILE", base)
    s.wait_log(r"connection from 127\.0\.0\.1:\d+ refused: out of file "
               r"descriptors")
    # Whoever was already connected never noticed.
    a.expect(tntest.new_user("back"))
    assert a.users() == {"anna": "ACTIVE", "back": "ACTIVE"}
    # As for anna above: the master closes its copy of back's socket
    # just after the fork, which back's IDENTIFY need not wait for.
    tntest.wait_until(lambda: _fds(pid) == used, 5,
                      what=lambda: "master fds %r, were %r"
                      % (_fds(pid), used))
    assert s.terminate() == 0


def _nobody():
    """uid and gid of nobody, when this test may run a master as nobody."""
    if os.geteuid() != 0:
        raise tntest.Skip("needs root (RLIMIT_NPROC does not bind root, so "
                          "the master runs as nobody)")
    for tool in ("setpriv", "prlimit"):
        if shutil.which(tool) is None:
            raise tntest.Skip("%s not found (util-linux)" % tool)
    pw = ops.nobody()
    return pw.pw_uid, pw.pw_gid


def _as(uid, gid):
    """A command prefix that runs what follows as uid:gid."""
    return ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid,
            "--clear-groups", "--"]


class NobodyServer(tntest.Server):
    """A talknetd whose master itself runs as nobody."""

    def __init__(self, uid, gid, *opts):
        self.uid, self.gid = uid, gid
        super().__init__(*opts)

    def argv(self):
        return _as(self.uid, self.gid) + super().argv()


def _set_nproc(uid, gid, pid, soft):
    """Sets pid's soft RLIMIT_NPROC.  As nobody: root here may lack
    CAP_SYS_RESOURCE, and an owner may always set its own soft limit."""
    st = ops.run(_as(uid, gid) + ["prlimit", "--pid", str(pid),
                                  "--nproc=%s:" % soft])
    assert st[0] == 0, "prlimit failed: %r" % (st,)


def test_fork_failure_refuses_politely_and_resumes():
    uid, gid = _nobody()
    if ops.run(_as(uid, gid) + ["test", "-x", tntest.TALKNETD])[0] != 0:
        raise tntest.Skip("nobody cannot run %s" % tntest.TALKNETD)
    # No spare: a spare would take the connection without a fork
    # (test_spare_pool.py covers the pool).
    s = NobodyServer(uid, gid, "--min-spare", "0", "--max-spare", "0")
    a, base = _identified(s, "anna")
    pid = s.pid
    soft = _soft_limit(pid, "Max processes")

    def limit():
        # No room for one more process of nobody's: fork fails, EAGAIN.
        # Not nobody's task count now, which other tests on the machine
        # (their hubs and workers as nobody) change any moment: one, and
        # the master, its hub and anna's worker are over it already.
        _set_nproc(uid, gid, pid, 1)

    def restore():
        _set_nproc(uid, gid, pid, soft)

    _refused_then_served(s, limit, restore, "fork", base)
    s.wait_log(r"connection from 127\.0\.0\.1:\d+ refused: fork: "
               r"Resource temporarily unavailable")
    a.expect(tntest.new_user("back"))
    assert a.users() == {"anna": "ACTIVE", "back": "ACTIVE"}
    assert s.terminate() == 0


class LimitedServer(tntest.Server):
    """A talknetd started with a given RLIMIT_NOFILE."""

    def __init__(self, soft, hard, *opts):
        self.nofile = (soft, hard)
        super().__init__(*opts)

    def argv(self):
        soft, hard = self.nofile
        if hard == resource.RLIM_INFINITY:
            hard = "unlimited"
        return ["prlimit", "--nofile=%s:%s" % (soft, hard), "--"] + \
            super().argv()


def test_fd_limit_raised_for_max_clients_or_warned():
    if shutil.which("prlimit") is None:
        raise tntest.Skip("prlimit not found (util-linux)")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1100:
        raise tntest.Skip("hard open files limit %d is too low" % hard)
    # A soft limit below what --max-clients needs is raised (the hub
    # inherits it), up to the hard limit: 1000 clients, 64 of slack,
    # and two for each of the --max-spare 32 spares of each kind.
    s = LimitedServer(256, hard, "--max-clients", "1000")
    for pid in (s.pid, s.hub_pid()):
        soft = _soft_limit(pid, "Max open files")
        assert soft == "1128", "pid %d: soft open files limit %s" % (pid, soft)
    assert "open files limit" not in s.log_text(), s.log_text()
    assert s.terminate() == 0
    # A hard limit below it cannot be raised: the daemon says so.
    s = LimitedServer(256, 512, "--max-clients", "1000")
    s.wait_log(r"warning: open files limit 512 is below the 1128 that "
               r"--max-clients 1000 and --max-spare 32 need")
    a = tntest.Client(s)
    a.identify("anna")
    assert s.terminate() == 0


if __name__ == "__main__":
    tntest.main(globals())
