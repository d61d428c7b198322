"""The daemon: Server, a talknetd in the foreground on loopback, and its
variants for the operational tests (listen addresses from a file or from
systemd, extra environment, socket activation)."""

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from . import runner
from .config import (LIFT_LIMITS, LOOPBACK, SANITIZER_PATTERNS,
                     START_TIMEOUT, STOP_TIMEOUT, TALKNETD, TIMEOUT)
from .procfs import (children_of, descendants_of, is_spare, nfds,
                     pid_alive, proc_title, socket_holders)
from .runner import Scoped, Skip, wait_until

_LISTEN_RE = re.compile(r"listening on (\[[^\]]*\]|[^\s\[\]]+?):(\d+)")


def control_path():
    """A control socket path of the caller's own (talknetctl): daemons of
    tests that run at once never share the default /run/talknetd/control."""
    d = tempfile.mkdtemp(prefix="tnc-")
    # Sticky and open to all, as /tmp is: some tests start the daemon
    # as another user (setpriv), and it must bind its socket here.
    os.chmod(d, 0o1777)
    atexit.register(shutil.rmtree, d, True)
    return os.path.join(d, "ctl")


def control_opts(opts):
    """["--control", PATH] unless opts set one already."""
    if "--control" in opts:
        return []
    return ["--control", control_path()]


class Server(Scoped):
    """A talknetd in the foreground on loopback, port chosen by the kernel."""

    def __init__(self, *opts, listen=("127.0.0.1:0",), start=True, env=None):
        self.opts = list(opts)
        self.listen = list(listen)
        self.env = env         # added to the daemon's environment
        self.opts = control_opts(self.opts) + self.opts
        self.control = self.opts[self.opts.index("--control") + 1]
        self.proc = None
        self.pid = None
        self.log = []          # decoded stderr lines
        self.addrs = []        # [(host, port)] from "listening on" lines
        self.port = None
        self.problems = []     # reasons to fail the test, found at stop
        self.exit_status = None
        self.stopped = False
        self.terminated = False
        self._cond = threading.Condition()
        self._threads = []
        self._eof = 0
        runner.ctx().servers.append(self)
        if start:
            self.start()

    def argv(self):
        # Every test client comes from 127.0.0.1 and many send fast: lift
        # the per-address cap and the rate limit unless a test sets them.
        a = [TALKNETD, "-f"] + LIFT_LIMITS
        for l in self.listen:
            a += ["-l", l]
        return a + self.opts

    def _reader(self, stream, prefix):
        try:
            for raw in iter(stream.readline, b""):
                line = prefix + raw.decode("utf-8", "replace").rstrip("\n")
                with self._cond:
                    self.log.append(line)
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self._eof += 1
                self._cond.notify_all()

    def start(self):
        if not os.access(TALKNETD, os.X_OK):
            raise Skip("talknetd not found at %s" % TALKNETD)
        env = dict(os.environ, **self.env) if self.env else None
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        self.pid = self.proc.pid
        for stream, prefix in ((self.proc.stderr, ""),
                               (self.proc.stdout, "[stdout] ")):
            t = threading.Thread(target=self._reader, args=(stream, prefix),
                                 daemon=True)
            t.start()
            self._threads.append(t)
        want = len(self.listen)
        deadline = time.monotonic() + START_TIMEOUT
        with self._cond:
            while True:
                self.addrs = []
                for line in self.log:
                    m = _LISTEN_RE.search(line)
                    if m:
                        self.addrs.append((m.group(1).strip("[]"),
                                           int(m.group(2))))
                if len(self.addrs) >= want:
                    break
                if self.proc.poll() is not None:
                    raise AssertionError(
                        "talknetd exited with status %s before listening"
                        % self.proc.returncode)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "talknetd did not log 'listening on' within %.0f s"
                        % START_TIMEOUT)
                self._cond.wait(min(left, 0.1))
        self.port = self.addrs[0][1]
        return self

    def end(self):
        self.stop()

    def settle(self):
        """Nothing to wait for: one node has no path to another in flight
        (tntest.cluster.Cluster waits for its nodes)."""

    def log_text(self):
        with self._cond:
            return "\n".join(self.log)

    def wait_log(self, pattern, timeout=TIMEOUT):
        """Waits for a log line matching the regex; returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.log:
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no log line matching %r within "
                                         "%.1f s" % (pattern, timeout))
                self._cond.wait(min(left, 0.1))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def children(self):
        """Direct children of the master (zombies included), but the
        idle spare workers: the hub and the workers of clients."""
        return [p for p in children_of(self.pid) if not is_spare(p)]

    def spares(self):
        """The master's idle spare workers, forked ahead of clients."""
        return [p for p in children_of(self.pid) if is_spare(p)]

    def descendants(self, spares=True):
        """Every process under the master; spares=False leaves out the
        idle spare workers (what serves no client)."""
        return [p for p in descendants_of(self.pid)
                if spares or not is_spare(p)]

    def master_nfds(self):
        """The master's open fds, less one per idle spare (the master's
        end of its hand-off socket): flat unless something leaks."""
        return nfds(self.pid) - len(self.spares())

    def master_nfds_settled(self, timeout=TIMEOUT):
        """master_nfds once it holds still over 0.2 s: a baseline.  Just
        after a reload the spares it replaced are still exiting, titled
        spares while the master has closed their ends already, so a
        count taken then is low by as many."""
        last = self.master_nfds()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.2)
            now = self.master_nfds()
            if now == last:
                return now
            last = now
        return last

    def titled(self, title):
        """PIDs of the master's descendants whose title is exactly title."""
        return [p for p in self.descendants() if proc_title(p) == title]

    def hub_pid(self, timeout=TIMEOUT):
        pids = wait_until(lambda: self.titled("talknetd: hub"), timeout,
                          what="a 'talknetd: hub' child")
        return pids[0]

    def worker_pid(self, client, timeout=TIMEOUT):
        """The worker serving client: by its title (ends in the client's
        address), or else by who holds the server side of its socket."""
        suffix = " %s:%d" % (LOOPBACK, client.local_port)

        def find():
            hits = []
            for p in self.descendants():
                t = proc_title(p)
                if t and "worker" in t and t.endswith(suffix):
                    hits.append(p)
            if len(hits) == 1:
                return hits[0]
            holders = socket_holders(self.descendants(), self.port,
                                     client.local_port)
            holders = [p for p in holders if p != self.pid]
            if len(holders) == 1:
                return holders[0]
            return None
        return wait_until(find, timeout, what="the worker of port %d"
                          % client.local_port)

    def terminate(self, timeout=5):
        """Sends SIGTERM and waits for the master's exit; returns its
        status, or None if it is still running after timeout."""
        os.kill(self.pid, signal.SIGTERM)
        self.terminated = True
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, expect_status=0):
        """SIGTERM, wait, SIGKILL if needed; records problems found.
        Returns the log."""
        if self.proc is None or self.stopped:
            return self.log_text()
        self.stopped = True
        kids = []
        if self.proc.poll() is not None:
            if not self.terminated:
                self.problems.append("talknetd exited on its own during the "
                                     "test (status %s)" % self.proc.returncode)
        else:
            kids = self.descendants()
            # The test is over: its clients close first.  Left open, each
            # worker would linger up to 0.5 s for its client's EOF before
            # it exits (worker_finish), and the master waits for them.
            for cl in runner.ctx().clients:
                if getattr(cl, "server", None) is self:
                    cl.close()
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.problems.append("talknetd did not exit within %.0f s of "
                                     "SIGTERM; killed" % STOP_TIMEOUT)
                self.proc.kill()
                self.proc.wait(5)
            if expect_status is not None and \
                    self.proc.returncode != expect_status:
                self.problems.append("talknetd exited with status %s after "
                                     "SIGTERM (expected %s)"
                                     % (self.proc.returncode, expect_status))
        self.exit_status = self.proc.returncode
        # Children must go with the master.
        deadline = time.monotonic() + 3
        left = [k for k in kids if pid_alive(k)]
        while left and time.monotonic() < deadline:
            time.sleep(0.02)
            left = [k for k in left if pid_alive(k)]
        for k in left:
            t = proc_title(k) or ""
            if "talknetd" in t:
                self.problems.append("child %d (%r) still running after the "
                                     "master exited; killed" % (k, t))
                try:
                    os.kill(k, signal.SIGKILL)
                except OSError:
                    pass
        for t in self._threads:
            t.join(3)
        for s in (self.proc.stdout, self.proc.stderr):
            try:
                s.close()
            except OSError:
                pass
        self.check_sanitizers()
        return self.log_text()

    def check_sanitizers(self):
        text = self.log_text()
        for pat in SANITIZER_PATTERNS:
            if pat in text:
                self.problems.append("sanitizer report in the daemon log (%r)"
                                     % pat)



# ---------------------------------------------------------------------------
# Variants: listen addresses from the config file or systemd

def free_port():
    """A loopback TCP port that was free a moment ago."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]
    finally:
        s.close()


class FileServer(Server):
    """A foreground talknetd whose listen addresses come from its config
    file (no -l), or from systemd: argv is TALKNETD -f OPTS."""

    def __init__(self, *opts, nlisten=1, env=None, start=True):
        super().__init__(*opts, listen=["-"] * nlisten, start=start,
                         env=dict(env or {}))

    def argv(self):
        return [TALKNETD, "-f"] + LIFT_LIMITS + self.opts


class EnvServer(Server):
    """Server (TALKNETD -f -l 127.0.0.1:0 OPTS) with extra
    environment variables."""

    def __init__(self, *opts, env=None, start=True, **kw):
        super().__init__(*opts, start=start, env=dict(env or {}), **kw)


SSA = shutil.which("systemd-socket-activate")


class ActivatedServer(Server):
    """talknetd -f OPTS started by systemd-socket-activate -l
    127.0.0.1:PORT.  systemd-socket-activate waits for the first
    connection before it execs talknetd (in its own pid), so start()
    connects first: that connection is self.trigger, a plain socket that
    went through the passed listening socket."""

    def __init__(self, *opts, setenv=None, port=None):
        if SSA is None:
            raise Skip("systemd-socket-activate is not installed")
        self.ssa_port = port or free_port()
        self.setenv = dict(setenv or {})
        self.trigger = None
        super().__init__(*opts, listen=["-"], start=False)
        self.start()

    def argv(self):
        a = [SSA, "-l", "127.0.0.1:%d" % self.ssa_port]
        for k, v in self.setenv.items():
            a += ["-E", "%s=%s" % (k, v)]
        return a + [TALKNETD, "-f"] + LIFT_LIMITS + self.opts

    def start(self):
        if not os.access(TALKNETD, os.X_OK):
            raise Skip("talknetd not found at %s" % TALKNETD)
        done = threading.Event()

        def knock():
            deadline = time.monotonic() + START_TIMEOUT
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

