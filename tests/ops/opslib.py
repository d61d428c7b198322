"""opslib: helpers for the operational tests of talknetd (issue 4).

Python 3, stdlib only.  Builds on tests/e2e/tnlib.py (imported, not
copied): its Server, Client and runner.  Adds what running talknetd as a
service needs: a NOTIFY_SOCKET receiver, systemd-socket-activate, daemon
mode without -f, and /proc inspection.
"""

import atexit
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "e2e"))

import tnlib  # noqa: E402

TALKNETD = tnlib.TALKNETD
TIMEOUT = tnlib.TIMEOUT
SANITIZER_PATTERNS = tnlib.SANITIZER_PATTERNS

# Every child gets a C locale, so strerror() texts are the ones we expect.
os.environ["LC_ALL"] = "C"


# ---------------------------------------------------------------------------
# Small things

def free_port():
    """A loopback TCP port that was free a moment ago."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def tempdir(tag):
    """A private temporary directory, removed at exit."""
    d = tempfile.mkdtemp(prefix="tn-%s-" % tag)
    _TEMPDIRS.append(d)
    return d


_TEMPDIRS = []


def write_file(path, text):
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def sanitizer_problems(text):
    return [p for p in SANITIZER_PATTERNS if p in text]


def padded_identify(name, size):
    """An IDENTIFY line of exactly size bytes (with its "\\n"); the
    padding is an unknown key, which the server ignores."""
    head = '{"type":"IDENTIFY","username":"%s","pad":"' % name
    tail = '"}\n'
    n = size - len(head) - len(tail)
    assert n > 0
    line = (head + "x" * n + tail).encode()
    assert len(line) == size
    return line


# ---------------------------------------------------------------------------
# /proc

def proc_status(pid):
    """/proc/PID/status as {key: value string}; None if pid is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            text = f.read()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def tree_pids(pid):
    """pid's descendants, from /proc/PID/task/PID/children (recursively),
    plus a scan of every ppid, so nothing is missed."""
    out = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open("/proc/%d/task/%d/children" % (p, p)) as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            kids = []
        for k in kids:
            if k not in out:
                out.add(k)
                todo.append(k)
    out.update(tnlib.descendants_of(pid))
    out.discard(pid)
    return sorted(out)


def alive(pid):
    return tnlib.pid_alive(pid)


def listening_ports(pid):
    """TCP ports on which pid holds a listening socket (IPv4 and IPv6)."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            m = re.match(r"socket:\[(\d+)\]$", t)
            if m:
                inodes.add(m.group(1))
    except OSError:
        return set()
    ports = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:   # LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def fd_targets(pid):
    """{fd: readlink target} of pid's open files."""
    out = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out[int(fd)] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            pass
    return out


def shm_path(master_pid):
    """The table's name while the master creates it; it unlinks the name
    once the table is mapped, so the path exists only in /proc/PID/maps,
    marked " (deleted)"."""
    return "/dev/shm/talknetd.%d" % master_pid


def shm_mapped(master_pid):
    """True if the master maps its table and the name is gone."""
    shm = shm_path(master_pid)
    try:
        with open("/proc/%d/maps" % master_pid) as f:
            maps = [line for line in f if shm in line]
    except OSError:
        return False
    return bool(maps) and not os.path.exists(shm) and \
        all(line.rstrip("\n").endswith(" (deleted)") for line in maps)


def become_subreaper():
    """Makes this process the reaper of its orphaned descendants, so a
    daemon that detached from its starting process is still our child
    (we can collect its exit status).  False if unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0    # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def reap(pid, timeout):
    """Waits for pid to end: its exit status if it is our child (see
    become_subreaper), "gone" if it vanished otherwise, None on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            p, status = os.waitpid(pid, os.WNOHANG)
            if p == pid:
                return os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            if not alive(pid):
                return "gone"
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.02)


def reap_strays():
    """Collects zombies of orphans we adopted as subreaper."""
    while True:
        try:
            p, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if p == 0:
            return


def kill_tree(pid, kids=()):
    """Stops pid and the given descendants, by pid: SIGTERM, then SIGKILL
    after 5 s.  For cleanup only."""
    pids = [pid] + [k for k in kids if k != pid]
    for p in pids:
        if alive(p):
            try:
                os.kill(p, signal.SIGTERM)
            except OSError:
                pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        reap_strays()
        time.sleep(0.02)
    for p in pids:
        if alive(p):
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
    reap_strays()


def is_talknetd(pid):
    t = tnlib.proc_title(pid) or ""
    return "talknetd" in t


# ---------------------------------------------------------------------------
# NOTIFY_SOCKET

class NotifySocket:
    """A datagram Unix socket standing in for systemd's notify socket.
    env() gives the NOTIFY_SOCKET value; every datagram is kept, in order,
    with its arrival time."""

    def __init__(self, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "tn-notify-%d-%d" % (os.getpid(), time.monotonic_ns())
            self.sock.bind("\0" + name)
            self.value = "@" + name
        else:
            d = tempdir("notify")
            path = os.path.join(d, "notify")
            self.sock.bind(path)
            self.value = path
        self.msgs = []        # [(monotonic time, text)]
        self.pos = 0          # next() reads from here
        _SOCKETS.append(self)

    def env(self):
        return {"NOTIFY_SOCKET": self.value}

    def _pump(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        self.msgs.append((time.monotonic(), data.decode("utf-8",
                                                        "replace")))
        return True

    def next(self, timeout=TIMEOUT):
        """The next datagram's text; AssertionError if none in time."""
        deadline = time.monotonic() + timeout
        while self.pos >= len(self.msgs):
            left = deadline - time.monotonic()
            if left <= 0 or not self._pump(left):
                if self.pos < len(self.msgs):
                    break
                raise AssertionError("no notify message within %.1f s "
                                     "(so far: %r)"
                                     % (timeout, self.texts()))
        m = self.msgs[self.pos][1]
        self.pos += 1
        return m

    def wait_for(self, pred, timeout=TIMEOUT, what="a notify message"):
        """Reads on until pred(text) is true; returns that text."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out after %.1f s waiting for %s;"
                                     " got %r" % (timeout, what,
                                                  self.texts()))
            try:
                m = self.next(left)
            except AssertionError:
                continue
            if pred(m):
                return m

    def next_state(self, timeout=TIMEOUT):
        """The next message that is not a STATUS= line."""
        return self.wait_for(lambda m: not m.startswith("STATUS="),
                             timeout, what="a state message")

    def drain(self, quiet=0.2):
        while self._pump(quiet):
            pass

    def texts(self):
        return [m for _, m in self.msgs]

    def close(self):
        self.sock.close()


_SOCKETS = []


def next_state(ns, timeout=TIMEOUT):
    return ns.next_state(timeout)


# ---------------------------------------------------------------------------
# Daemons

class FileServer(tnlib.Server):
    """A foreground talknetd whose listen addresses come from its config
    file (no -l), or from systemd: argv is TALKNETD -f OPTS."""

    def __init__(self, *opts, nlisten=1, env=None, start=True):
        super().__init__(*opts, listen=["-"] * nlisten, start=start,
                         env=dict(env or {}))

    def argv(self):
        return [TALKNETD, "-f"] + tnlib.LIFT_LIMITS + self.opts


class EnvServer(tnlib.Server):
    """tnlib.Server (TALKNETD -f -l 127.0.0.1:0 OPTS) with extra
    environment variables."""

    def __init__(self, *opts, env=None, start=True, **kw):
        super().__init__(*opts, start=start, env=dict(env or {}), **kw)


class patched_env:
    """Sets variables in os.environ (which Popen copies) for a while."""

    def __init__(self, env):
        self.env = env
        self.saved = {}

    def __enter__(self):
        for k, v in self.env.items():
            self.saved[k] = os.environ.get(k)
            os.environ[k] = v

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        return False


SSA = shutil.which("systemd-socket-activate")


class ActivatedServer(tnlib.Server):
    """talknetd -f OPTS started by systemd-socket-activate -l
    127.0.0.1:PORT.  systemd-socket-activate waits for the first
    connection before it execs talknetd (in its own pid), so start()
    connects first: that connection is self.trigger, a plain socket that
    went through the passed listening socket."""

    def __init__(self, *opts, setenv=None, port=None):
        if SSA is None:
            raise tnlib.Skip("systemd-socket-activate is not installed")
        self.ssa_port = port or free_port()
        self.setenv = dict(setenv or {})
        self.trigger = None
        super().__init__(*opts, listen=["-"], start=False)
        self.start()

    def argv(self):
        a = [SSA, "-l", "127.0.0.1:%d" % self.ssa_port]
        for k, v in self.setenv.items():
            a += ["-E", "%s=%s" % (k, v)]
        return a + [TALKNETD, "-f"] + tnlib.LIFT_LIMITS + self.opts

    def start(self):
        if not os.access(TALKNETD, os.X_OK):
            raise tnlib.Skip("talknetd not found at %s" % TALKNETD)
        import threading
        done = threading.Event()

        def knock():
            deadline = time.monotonic() + tnlib.START_TIMEOUT
            while not done.is_set() and time.monotonic() < deadline:
                try:
                    s = socket.create_connection(
                        ("127.0.0.1", self.ssa_port), timeout=1)
                    self.trigger = s
                    return
                except OSError:
                    time.sleep(0.02)
        t = threading.Thread(target=knock, daemon=True)
        t.start()
        try:
            super().start()
        finally:
            done.set()
            t.join(5)
        return self


def cleanup_ops():
    """Closes notify sockets and removes temporary directories."""
    for s in _SOCKETS:
        s.close()
    del _SOCKETS[:]
    for d in _TEMPDIRS:
        shutil.rmtree(d, ignore_errors=True)
    del _TEMPDIRS[:]


def run(argv, timeout=10, env=None, **kw):
    """Runs a command to its end: (status, stdout, stderr) as text."""
    with patched_env(env or {}):
        p = subprocess.run(argv, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout, **kw)
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"))


def main(g):
    """tnlib's runner; our sockets and temporary directories go at exit
    (after tnlib has stopped every daemon of every test)."""
    atexit.register(cleanup_ops)
    tnlib.main(g)
