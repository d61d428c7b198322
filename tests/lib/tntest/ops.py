"""What the operational tests need besides the daemon: a NOTIFY_SOCKET
receiver, daemons that detach (subreaper, reap, kill by pid), private
temporary directories and files, and commands run to their end.

Importing it gives every child a C locale, so strerror() texts are the
ones the tests expect."""

import atexit
import ctypes
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from .config import TALKNETD, TIMEOUT
from .daemon import EnvServer
from .procfs import pid_alive
from .runner import Skip

os.environ["LC_ALL"] = "C"


# ---------------------------------------------------------------------------
# Files

def tempdir(tag):
    """A private temporary directory, removed at exit."""
    d = tempfile.mkdtemp(prefix="tn-%s-" % tag)
    _TEMPDIRS.append(d)
    return d


_TEMPDIRS = []


def conf_file(tag, text):
    """A talknetd.conf holding text, in a private directory: its path."""
    conf = os.path.join(tempdir(tag), "talknetd.conf")
    write_file(conf, text)
    return conf


def write_file(path, text):
    """Writes path whole (through a new file renamed over it)."""
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


# ---------------------------------------------------------------------------
# Users

def need_root(why="needs root"):
    """Skips the test unless it runs as root."""
    if os.geteuid() != 0:
        raise Skip(why)


def nobody():
    """The passwd entry of the user nobody; skips the test without it."""
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        raise Skip("no user 'nobody'")


def nobody_ids():
    """(uid, gid) of nobody for a test run as root; skips otherwise."""
    need_root()
    pw = nobody()
    return pw.pw_uid, pw.pw_gid


# ---------------------------------------------------------------------------
# Daemons that detach

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
            if not pid_alive(pid):
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
    _signal_alive(pids, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        reap_strays()
        time.sleep(0.02)
    _signal_alive(pids, signal.SIGKILL)
    reap_strays()


def _signal_alive(pids, sig):
    """Sends sig to those of pids that still run."""
    for p in pids:
        if pid_alive(p):
            try:
                os.kill(p, sig)
            except OSError:
                pass


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


def ready_server(conf, *opts):
    """talknetd -c conf OPTS with a NOTIFY_SOCKET, once it said READY=1:
    (the EnvServer, its NotifySocket)."""
    ns = NotifySocket()
    s = EnvServer("-c", conf, *opts, env=ns.env())
    assert ns.next().startswith("READY=1"), ns.texts()
    return s, ns


def next_state(ns, timeout=TIMEOUT):
    return ns.next_state(timeout)


# ---------------------------------------------------------------------------
# Commands

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


def help_default(option):
    """The default talknetd --help names for option (its text is built
    from the same constant the configuration starts from), as an int."""
    rc, out, err = run([TALKNETD, "--help"])
    assert rc == 0, (rc, err)
    m = re.search(r"--%s\b.*\(default (\d+)\)" % re.escape(option), out)
    assert m, "--help names no default for --%s:\n%s" % (option, out)
    return int(m.group(1))


# Our sockets and temporary directories go at exit (after the runner has
# stopped every daemon of every test).
atexit.register(cleanup_ops)
