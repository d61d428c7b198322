"""The talknet client under test: driven through pipes (PipeClient) or on
a pseudo-terminal (PtyClient), against raw-socket peers (Peer), and the
runner of tests/client, whose tests take a context: the daemon they
share, its port and a source of short user names."""

import fcntl
import json
import os
import pty
import queue
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import termios
import threading
import time

from .config import (LOOPBACK, PROGRAM_TIMEOUT as TIMEOUT, TALKNET, TALKNETD,
                     sanitizer_report)
from .daemon import Server
from .runner import Scoped, Skip, run_tests

# What a test function returns when a tool it needs is missing.
SKIP = 77


def lines_reader(stream, q, keep):
    """Moves the lines of a binary stream into a queue until EOF."""
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip("\n")
        keep.append(line)
        q.put(line)
    q.put(None)



class Peer(Scoped):
    """A raw-socket TalkNet client, the other side of the tests."""

    def __init__(self, port, name=None):
        self.sock = socket.create_connection((LOOPBACK, port),
                                             timeout=TIMEOUT)
        self.rbuf = b""
        if name is not None:
            self.identify(name)

    def send(self, obj):
        """Sends a dict as one compact JSON line, or a str as it is."""
        if isinstance(obj, dict):
            obj = json.dumps(obj, ensure_ascii=False,
                             separators=(",", ":"))
        if not obj.endswith("\n"):
            obj += "\n"
        self.sock.sendall(obj.encode("utf-8"))

    def recv_line(self, timeout=TIMEOUT):
        """Returns the next line as text, or None on timeout or close."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.rbuf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            except OSError:
                return None
            if not data:
                return None
            self.rbuf += data
        line, self.rbuf = self.rbuf.split(b"\n", 1)
        return line.decode("utf-8")

    def recv(self, timeout=TIMEOUT):
        """Returns the next message as a dict, or None."""
        line = self.recv_line(timeout)
        return None if line is None else json.loads(line)

    def expect(self, want, timeout=TIMEOUT):
        """Waits for a message holding every key and value of want."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            msg = self.recv(max(left, 0)) if left > 0 else None
            if msg is None:
                raise AssertionError("peer never got %r; got %r"
                                     % (want, seen))
            seen.append(msg)
            if all(msg.get(k) == v for k, v in want.items()):
                return msg

    def quiet(self, about, timeout=0.3):
        """Asserts that nothing about these user names (or without a
        user name) arrives for a moment.  Other users' news is skipped:
        a peer of an earlier test may still be going away."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            line = self.recv_line(left)
            if line is None:
                return
            user = json.loads(line).get("username")
            if user is None or user in about:
                raise AssertionError("peer got unexpected %r" % line)

    def new_room(self, room):
        """Creates room: the server must answer SUCCESS."""
        self.send({"type": "NEW_ROOM", "roomname": room})
        self.expect({"type": "RESPONSE", "operation": "NEW_ROOM",
                     "result": "SUCCESS"})

    def identify(self, name):
        self.send({"type": "IDENTIFY", "username": name})
        self.expect({"type": "RESPONSE", "operation": "IDENTIFY",
                     "result": "SUCCESS"})

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    end = close


class PipeClient(Scoped):
    """The built talknet, driven through pipes."""

    def __init__(self, port, *args, host=LOOPBACK, env=None):
        argv = [TALKNET] + list(args)
        if host is not None:
            argv.append(host)
        if port is not None:
            argv.append(str(port))
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        self.out, self.err = [], []
        self.outq, self.errq = queue.Queue(), queue.Queue()
        for stream, q, keep in ((self.proc.stdout, self.outq, self.out),
                                (self.proc.stderr, self.errq, self.err)):
            threading.Thread(target=lines_reader, args=(stream, q, keep),
                             daemon=True).start()

    def send(self, line):
        """Writes one input line."""
        self.proc.stdin.write(line.encode("utf-8") + b"\n")
        self.proc.stdin.flush()

    def close_stdin(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def _expect(self, q, want, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("client never printed %r; stdout %r "
                                     "stderr %r" % (want, self.out,
                                                    self.err))
            try:
                line = q.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                q.put(None)
                raise AssertionError("client output ended before %r; "
                                     "stdout %r stderr %r"
                                     % (want, self.out, self.err))
            if callable(want):
                if want(line):
                    return line
            elif isinstance(want, re.Pattern):
                if want.search(line):
                    return line
            elif line == want:
                return line

    def expect(self, want, timeout=TIMEOUT):
        """Waits for a stdout line: equal to a str, or matching."""
        return self._expect(self.outq, want, timeout)

    def expect_err(self, want, timeout=TIMEOUT):
        """Waits for a stderr line: equal to a str, or matching."""
        return self._expect(self.errq, want, timeout)

    def wait(self, timeout=TIMEOUT):
        """Waits for the exit; returns the status."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("client did not exit; stdout %r stderr %r"
                                 % (self.out, self.err))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.close_stdin()
        time.sleep(0.02)
        rep = sanitizer_report("\n".join(self.err))
        if rep:
            raise AssertionError("client sanitizer report: %s" % rep)

    end = kill


def identified(port, name, *args):
    """Starts a client named with -n and waits until it is identified."""
    c = PipeClient(port, "-n", name, *args)
    c.expect("* identified as " + name)
    return c


class Names:
    """Short unique user names (the protocol allows 8 code points)."""

    def __init__(self):
        self.n = 0

    def __call__(self, base):
        self.n += 1
        return "%s%d" % (base[:4], self.n)



def run(tests, need_daemon=True, daemon_args=()):
    """Runs test functions f(ctx) in turn, sharing one daemon; exits 0, 1
    or 77."""
    if TALKNET is None:
        print("SKIP all: no talknet client (set TALKNET)")
        raise SystemExit(SKIP)
    shared = []
    ctx = {"daemon": None, "port": None, "name": Names()}
    if need_daemon:
        if not os.access(TALKNETD, os.X_OK):
            print("SKIP all: talknetd not found at %s (set TALKNETD)"
                  % TALKNETD)
            raise SystemExit(SKIP)
        shared.append(Server(*daemon_args))
        ctx.update(daemon=shared[0], port=shared[0].port)
    run_tests([(t.__name__, _with_ctx(t, ctx)) for t in tests], shared)


def _with_ctx(t, ctx):
    """t(ctx) as a test of the runner: its SKIP is a Skip."""
    def call():
        if t(ctx) == SKIP:
            raise Skip("a tool it needs is missing")
    return call


def editor():
    """Returns the client's line editor: "libedit" or "basic"."""
    r = subprocess.run([TALKNET, "-V"], capture_output=True, timeout=5)
    m = re.search(r"line editor: (\w+)", r.stdout.decode())
    return m.group(1) if m else None


class PtyClient(Scoped):
    """The built talknet on a pseudo-terminal of 100x30, with keys sent
    as bytes; a thread keeps the output, so the client never blocks."""

    def __init__(self, port, *args, env=None):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ,
                    struct.pack("HHHH", 30, 100, 0, 0))
        e = dict(os.environ, TERM="xterm")
        e.update(env or {})
        self.proc = subprocess.Popen(
            [TALKNET] + list(args) + [LOOPBACK, str(port)],
            stdin=slave, stdout=slave, stderr=slave, env=e,
            start_new_session=True)
        os.close(slave)
        self.buf = b""
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.buf += data

    def text(self):
        with self.lock:
            return self.buf.decode("utf-8", "replace")

    def keys(self, data, pause=0.05):
        """Writes keys; a short pause lets each batch be read alone."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        os.write(self.master, data)
        time.sleep(pause)

    def wait_for(self, what, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if what in self.text():
                return
            time.sleep(0.02)
        raise AssertionError("terminal never showed %r: %r"
                             % (what, self.text()))

    def wait(self, timeout=TIMEOUT):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("client did not exit: %r" % self.text())

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        time.sleep(0.05)
        try:
            os.close(self.master)
        except OSError:
            pass
        rep = sanitizer_report(self.text())
        if rep:
            raise AssertionError("client sanitizer report: %s" % rep)

    end = close


TMUX = shutil.which("tmux")


class Tmux(Scoped):
    """A tmux server of our own: a private socket in a private directory,
    where the client's history file goes too (XDG_STATE_HOME)."""

    def __init__(self, prefix):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.sock = os.path.join(self.dir, "tmux.sock")
        self.env = dict(os.environ, TERM="xterm", XDG_STATE_HOME=self.dir)
        self.env.pop("TMUX", None)

    def tmux(self, *args):
        """Runs a tmux command on our server; returns its output."""
        r = subprocess.run([TMUX, "-S", self.sock] + list(args),
                           env=self.env, capture_output=True, timeout=10)
        if r.returncode != 0:
            raise AssertionError("tmux %r: %s" % (args, r.stderr))
        return r.stdout.decode("utf-8", "replace")

    def close(self):
        """Stops the server and removes its directory."""
        subprocess.run([TMUX, "-S", self.sock, "kill-server"],
                       env=self.env, capture_output=True, timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)

    end = close

