#!/usr/bin/env python3
"""A compromised worker cannot touch anything but its own client (issue
14, item 4).  Every worker runs under a seccomp filter (Seccomp: 2); a
forbidden system call kills that worker alone, by SIGSYS, and everyone
else keeps chatting; the master and the hub are not dumpable; the
table's name is gone from /dev/shm once it is mapped, so a process of the
daemon's own uid (run without -u) can neither open the table nor read
the hub's or the master's memory.  Parts that need root or gdb skip
without them."""

import ctypes
import errno
import json
import os
import pwd
import re
import shutil
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest import ops  # noqa: E402
import tntest  # noqa: E402
from tntest import req, new_user  # noqa: E402

NOT_BUILT = "built without seccomp"


def _skip_unless_sandboxed(s):
    """Skips when the daemon says its workers are not sandboxed."""
    text = s.log_text()
    if NOT_BUILT in text:
        raise tntest.Skip("talknetd was built --without-seccomp")
    if "running under valgrind" in text:
        raise tntest.Skip("talknetd runs under valgrind: no filter")


def _status(pid, key):
    st = tntest.proc_status(pid)
    assert st is not None, "process %d is gone" % pid
    return st.get(key)


def _wait_filtered(pid):
    """The worker loads its filter once set up: wait for it (bounded)."""
    tntest.wait_until(lambda: _status(pid, "Seccomp") == "2", tntest.TIMEOUT,
                      what=lambda: "worker %d to show Seccomp 2 (has %r)"
                      % (pid, _status(pid, "Seccomp")))


def _shm_lines(pid, master_pid):
    """The lines of /proc/PID/maps that map the master's table."""
    with open("/proc/%d/maps" % pid) as f:
        return [line.rstrip("\n") for line in f
                if tntest.shm_path(master_pid) in line]


def test_worker_runs_filtered():
    """/proc/<worker>/status: Seccomp 2 and NoNewPrivs 1, for an
    identified client's worker and an unidentified one; the hub and the
    master are not filtered.  No worker holds a descriptor of the table,
    and its name is gone while the daemon runs: only mappings remain."""
    s = tntest.Server()
    _skip_unless_sandboxed(s)
    a = tntest.Client(s)
    a.identify("anna")
    b = tntest.Client(s)
    for c, what in ((a, "identified"), (b, "unidentified")):
        w = s.worker_pid(c)
        _wait_filtered(w)
        assert _status(w, "NoNewPrivs") == "1", \
            "%s worker %d: NoNewPrivs %r" % (what, w, _status(w,
                                                              "NoNewPrivs"))
        fds = tntest.fd_targets(w)
        shm = [t for t in fds.values() if t.startswith("/dev/shm")]
        assert not shm, "%s worker %d holds %r" % (what, w, shm)
        maps = _shm_lines(w, s.pid)
        assert maps and all("(deleted)" in m for m in maps), \
            "%s worker %d: the table's mappings %r" % (what, w, maps)
    for pid, what in ((s.hub_pid(), "hub"), (s.pid, "master")):
        assert _status(pid, "Seccomp") == "0", \
            "%s %d: Seccomp %r" % (what, pid, _status(pid, "Seccomp"))
    assert not os.path.exists(tntest.shm_path(s.pid)), \
        "%s exists while the daemon runs" % tntest.shm_path(s.pid)
    # Filtered workers still serve their clients.
    b.identify("ben")
    a.expect(new_user("ben"))
    a.send(req("TEXT", username="ben", text="filtered"))
    b.expect(tntest.text_from("anna", "filtered"))
    assert a.users() == {"anna": "ACTIVE", "ben": "ACTIVE"}


def test_idle_spares_wait_filtered_and_serve():
    """A spare loads the filter before it waits for a client (the load
    is then on no connect): every idle spare shows Seccomp 2 and
    NoNewPrivs 1, and one then takes a client inside the
    filter (recvmsg, getsockopt, dup2) and serves it."""
    s = tntest.Server("--min-spare", "3", "--max-spare", "3")
    _skip_unless_sandboxed(s)
    tntest.wait_until(lambda: len(s.spares()) == 3, tntest.TIMEOUT,
                      what=lambda: "3 spares (%r)" % s.spares())
    idle = s.spares()
    for pid in idle:
        _wait_filtered(pid)
        assert _status(pid, "NoNewPrivs") == "1", pid
    a = tntest.Client(s)
    a.identify("spared")
    w = s.worker_pid(a)
    assert w in idle, "worker %d was not one of the spares %r" % (w, idle)
    assert _status(w, "Seccomp") == "2"
    assert a.users() == {"spared": "ACTIVE"}
    assert "SIGSYS" not in s.log_text()


class UnitFilterServer(tntest.Server):
    """A talknetd confined as the shipped systemd unit confines it: no
    capabilities, capset(2) refused (tests/ops/unit_filter.py)."""

    def argv(self):
        return [sys.executable, os.path.join(os.path.dirname(
            os.path.abspath(__file__)), "unit_filter.py")] + super().argv()


def test_workers_serve_under_the_units_confinement():
    """Under the unit (CapabilityBoundingSet= empty, capset refused by
    SystemCallFilter=~@privileged), workers, plain and from spares,
    serve: one that holds no capability has none to drop and makes no
    capset, which would fail there."""
    s = UnitFilterServer("--min-spare", "1", "--max-spare", "1")
    a = tntest.Client(s)
    a.identify("unit")
    b = tntest.Client(s)
    b.identify("file")
    a.expect(new_user("file"))
    w = s.worker_pid(a)
    assert _status(w, "CapEff") == "0000000000000000", _status(w, "CapEff")
    assert "capset" not in s.log_text() and "crashed" not in s.log_text()


def _probe(master, hub, worker, uid):
    """What a process of uid can reach of the daemon: {check: "ok" or
    the errno's name}.  Runs in a child of ours that became uid."""
    out = {"uid": os.getuid()}

    def attempt(key, fn):
        try:
            fn()
            out[key] = "ok"
        except OSError as e:
            out[key] = errno.errorcode.get(e.errno, str(e.errno))

    def read_mem(pid):
        fd = os.open("/proc/%d/mem" % pid, os.O_RDONLY)
        try:
            with open("/proc/%d/maps" % pid) as f:
                start = int(f.readline().split("-")[0], 16)
            os.lseek(fd, start, os.SEEK_SET)
            os.read(fd, 16)
        finally:
            os.close(fd)

    name = tntest.shm_path(master)
    attempt("shm_rdwr", lambda: os.close(os.open(name, os.O_RDWR)))
    attempt("shm_rdonly", lambda: os.close(os.open(name, os.O_RDONLY)))
    out["shm_ours"] = [n for n in os.listdir("/dev/shm")
                       if os.lstat("/dev/shm/" + n).st_uid == uid]
    for what, pid in (("master", master), ("hub", hub), ("worker", worker)):
        attempt(what + "_mem", lambda: read_mem(pid))
        attempt(what + "_fds", lambda: os.listdir("/proc/%d/fd" % pid))
        out[what + "_owner"] = os.stat("/proc/%d/status" % pid).st_uid
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.restype = ctypes.c_long
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p,
                            ctypes.c_void_p]
    if libc.ptrace(16, hub, None, None) == 0:      # PTRACE_ATTACH
        out["hub_ptrace"] = "ok"
        os.waitpid(hub, 0)
        libc.ptrace(17, hub, None, None)           # PTRACE_DETACH
    else:
        out["hub_ptrace"] = errno.errorcode.get(ctypes.get_errno())
    return out


def _probe_as(uid, gid, *pids):
    """_probe in a forked child that runs as uid:gid (no exec: nothing
    outside this process needs to be reachable by uid)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            os.write(w, json.dumps(_probe(*pids, uid)).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    data = b""
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    assert status == 0 and data, "the probe failed (status %r)" % status
    return json.loads(data)


def _free_uid():
    """A uid no account and no process has: ours alone for the test."""
    used = set()
    for p in tntest.all_pids():
        try:
            used.add(os.stat("/proc/%d" % p).st_uid)
        except OSError:
            pass
    for uid in range(47000 + os.getpid() % 1000, 49000):
        try:
            pwd.getpwuid(uid)
            continue
        except KeyError:
            pass
        if uid not in used:
            return uid
    raise tntest.Skip("no free uid")


class UidServer(tntest.Server):
    """talknetd -f -l 127.0.0.1:0, without -u, run as uid:gid by
    setpriv (which execs it in its own pid)."""

    def __init__(self, uid, gid, tmpdir):
        self.ids = (uid, gid)
        super().__init__(env={"TMPDIR": tmpdir})

    def argv(self):
        uid, gid = self.ids
        return ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid,
                "--clear-groups", "--inh-caps=-all",
                "--bounding-set=-all"] + super().argv()


def test_same_uid_cannot_reach_table():
    """talknetd run as an unprivileged uid, without -u: a process of
    that uid cannot open the table (its name is gone from /dev/shm),
    cannot read the master's, the hub's or a worker's memory or fds
    through /proc, and cannot ptrace the hub; their /proc entries
    belong to root (not dumpable)."""
    if os.geteuid() != 0:
        raise tntest.Skip("needs root to run the daemon as another uid")
    if shutil.which("setpriv") is None:
        raise tntest.Skip("setpriv is not installed")
    uid = _free_uid()
    gid = uid
    d = ops.tempdir("sandbox-uid")
    os.chown(d, uid, gid)
    rc, _, err = ops.run(["setpriv", "--reuid=%d" % uid,
                          "--regid=%d" % gid, "--clear-groups",
                          tntest.TALKNETD, "-V"])
    if rc != 0:
        raise tntest.Skip("uid %d cannot run %s: %s" % (uid, tntest.TALKNETD,
                                                      err.strip()))
    s = UidServer(uid, gid, d)
    a = tntest.Client(s)
    a.identify("anna")
    b = tntest.Client(s)
    b.identify("ben")
    a.expect(new_user("ben"))
    hub, w = s.hub_pid(), s.worker_pid(a)
    for pid in (s.pid, hub, w):
        st = tntest.proc_status(pid)
        assert st["Uid"].split()[0] == str(uid), \
            "process %d runs as %r, not %d" % (pid, st["Uid"], uid)

    got = _probe_as(uid, gid, s.pid, hub, w)
    print("  probe as uid %d: %s" % (uid, json.dumps(got)))
    assert got["uid"] == uid, got
    for key in ("shm_rdwr", "shm_rdonly"):
        assert got[key] == "ENOENT", \
            "%s: %s (expected ENOENT: the name is gone)" % (key, got[key])
    assert got["shm_ours"] == [], \
        "/dev/shm has entries of uid %d: %r" % (uid, got["shm_ours"])
    for what in ("master", "hub", "worker"):
        for kind in ("mem", "fds"):
            key = "%s_%s" % (what, kind)
            assert got[key] in ("EACCES", "EPERM"), \
                "/proc/<%s>/%s: %s (expected EACCES or EPERM)" \
                % (what, kind, got[key])
        assert got[what + "_owner"] == 0, \
            "/proc/<%s>/status belongs to uid %r: dumpable" % (what,
                                                       got[what + "_owner"])
    assert got["hub_ptrace"] == "EPERM", \
        "PTRACE_ATTACH to the hub: %s" % got["hub_ptrace"]
    # Still serving.
    a.send(req("TEXT", username="ben", text="after the probe"))
    b.expect(tntest.text_from("anna", "after the probe"))


def test_forbidden_call_kills_only_that_worker():
    """gdb makes one worker call kill(2) (signal 0 to the master, which
    would do no harm): the filter kills it with SIGSYS, the master logs
    that by name, the others are told DISCONNECTED, and everyone else
    keeps chatting with the same hub."""
    if os.geteuid() != 0:
        raise tntest.Skip("needs root to ptrace a non-dumpable worker")
    gdb = shutil.which("gdb")
    if gdb is None:
        raise tntest.Skip("gdb is not installed")
    s = tntest.Server()
    _skip_unless_sandboxed(s)
    a, b, m = tntest.connect_users(s, "anna", "ben", "mallory")
    tntest.make_room(a, "den", members=[b, m])
    hub = s.hub_pid()
    victim = s.worker_pid(m)
    _wait_filtered(victim)
    # kill(master, 0): SYS_kill is 62 on x86_64; elsewhere ask gdb.
    rc, out, err = ops.run(
        [gdb, "-nx", "-batch", "-p", str(victim),
         "-ex", "call (long)syscall(%s, %d, 0)"
         % ("62" if os.uname().machine == "x86_64" else "__NR_kill",
            s.pid)], timeout=120)
    m1 = s.wait_log(r"worker %d \(.*\) crashed: killed by SIG(\w+)"
                    % victim, timeout=10)
    assert m1.group(1) == "SYS", "worker %d died by SIG%s, not SIGSYS " \
        "(gdb said %r)" % (victim, m1.group(1), out[-500:] + err[-500:])
    tntest.wait_until(lambda: not tntest.pid_alive(victim), tntest.TIMEOUT,
                      what="the worker to be gone")
    m.expect_closed(allow_lines=True)
    for c in (a, b):
        got = c.drain(quiet=0.5)
        assert tntest.disconnected("mallory") in got, \
            "%r was not told mallory left: %r" % (c, got)
    # The others, the hub and the master go on.
    assert s.alive() and tntest.pid_alive(hub) and s.hub_pid() == hub
    a.send(req("TEXT", username="ben", text="still here"))
    b.expect(tntest.text_from("anna", "still here"))
    b.send(req("ROOM_TEXT", roomname="den", text="the den"))
    a.expect(tntest.room_text_from("den", "ben", "the den"))
    c = tntest.Client(s)
    c.identify("mallory")
    a.expect(new_user("mallory"))
    assert a.users() == {"anna": "ACTIVE", "ben": "ACTIVE",
                         "mallory": "ACTIVE"}
    assert len(re.findall(r"crashed: killed by", s.log_text())) == 1, \
        s.log_text()


if __name__ == "__main__":
    tntest.main(globals())
